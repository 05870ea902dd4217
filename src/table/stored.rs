//! Whether a stored watermark may be trusted. It says which rows the
//! target already holds, so it is only good for the target it was stored
//! for, read from the same source by the same column, and only while that
//! target still holds them. A task pointed elsewhere (another database,
//! table or watermark column, or another config sharing the state store
//! under the same task id) or an emptied target reads the whole source
//! again instead of loading only the rows above it.

use sha2::{Digest, Sha256};

use super::layout::Layout;
use super::sql::SourceRelation;
use crate::config::TableSyncProperties;
use crate::postgres::Endpoint;
use crate::state::{StateError, Watermark};
use crate::task::RunContext;

/// What a watermark is about, in words (stored beside it, and shown when
/// it no longer applies): source and target by host, port, database and
/// table, and the watermark column. A `source_query` is named by a hash
/// of its text (it may hold literals that are nobody's business).
pub(crate) fn scope(
    source: &Endpoint,
    layout: &Layout,
    target: &Endpoint,
    properties: &TableSyncProperties,
) -> String {
    let column = properties.watermark_column.as_deref().unwrap_or("");
    let relation = match &layout.relation {
        SourceRelation::Table(name) => format!("table {name}"),
        SourceRelation::Query(query) => {
            let digest = Sha256::digest(query.as_bytes());
            let short: String = digest
                .iter()
                .take(8)
                .map(|byte| format!("{byte:02x}"))
                .collect();
            format!("query sha256:{short}")
        }
    };
    format!(
        "{} {relation} to {} table {} by {column}",
        source.name, target.name, layout.target_table
    )
}

/// Why a stored watermark is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Distrusted {
    /// The target is empty: it holds none of the rows below the mark.
    EmptyTarget { mark: String },
    /// The mark was stored for another source, target or column.
    Elsewhere { mark: String, stored_for: String },
}

impl Distrusted {
    /// Where the run reads, for the plan line of the log.
    pub(crate) fn reads(&self) -> &'static str {
        match self {
            Self::EmptyTarget { .. } => "the whole source (the target is empty)",
            Self::Elsewhere { .. } => {
                "the whole source (the watermark was stored for another source, target or column)"
            }
        }
    }

    /// The log's line when the run starts.
    pub(crate) fn log_line(&self, scope: &str) -> String {
        match self {
            Self::EmptyTarget { mark } => format!(
                "the target table is empty although the watermark {mark} is stored: reading the whole source again"
            ),
            Self::Elsewhere { mark, stored_for } => format!(
                "the watermark {mark} was stored for {stored_for}; this task now reads {scope}: reading the whole source again"
            ),
        }
    }

    /// The run's warning.
    pub(crate) fn warning(&self) -> String {
        match self {
            Self::EmptyTarget { mark } => format!(
                "the target was empty although the watermark {mark} was stored: the whole source was read again"
            ),
            Self::Elsewhere { mark, stored_for } => format!(
                "the watermark {mark} was stored for {stored_for}, not for what this task reads now: the whole source was read again"
            ),
        }
    }
}

/// The watermark a run may start from: the stored one, unless the target
/// is empty or it was stored for another scope. A watermark stored
/// without a scope (by a version that did not keep one) is trusted.
pub(crate) fn judge(
    stored: Option<Watermark>,
    scope: &str,
    target_empty: bool,
) -> (Option<String>, Option<Distrusted>) {
    let Some(Watermark {
        value: mark,
        scope: stored_scope,
    }) = stored
    else {
        return (None, None);
    };
    if target_empty {
        return (None, Some(Distrusted::EmptyTarget { mark }));
    }
    match stored_scope {
        Some(stored_for) if stored_for != scope => {
            (None, Some(Distrusted::Elsewhere { mark, stored_for }))
        }
        _ => (Some(mark), None),
    }
}

/// Stores the newest watermark a run read, with its scope, unless it is
/// the one the run started from.
pub(crate) async fn save(
    context: &RunContext,
    trusted: Option<&str>,
    newest: &str,
    scope: &str,
) -> Result<(), StateError> {
    if trusted == Some(newest) {
        tracing::info!(watermark = %newest, "watermark unchanged");
        return Ok(());
    }
    context
        .state
        .set_watermark(&context.task_id, newest, Some(scope))
        .await?;
    // Without a trusted watermark before, the new one may be lower.
    let moved = if trusted.is_some() { "advanced" } else { "set" };
    tracing::info!(watermark = %newest, "watermark {moved}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_is_trusted_only_for_its_scope_and_a_target_that_holds_rows() {
        let stored = |scope: Option<&str>| {
            Some(Watermark {
                value: "2026-01-01".into(),
                scope: scope.map(str::to_string),
            })
        };
        let mark = || Some("2026-01-01".to_string());
        assert_eq!(judge(None, "a", false), (None, None));
        assert_eq!(judge(stored(Some("a")), "a", false), (mark(), None));
        assert_eq!(
            judge(stored(None), "a", false),
            (mark(), None),
            "stored before scopes"
        );
        assert_eq!(
            judge(stored(Some("b")), "a", false),
            (
                None,
                Some(Distrusted::Elsewhere {
                    mark: "2026-01-01".into(),
                    stored_for: "b".into()
                })
            )
        );
        assert_eq!(
            judge(stored(Some("a")), "a", true),
            (
                None,
                Some(Distrusted::EmptyTarget {
                    mark: "2026-01-01".into()
                })
            )
        );
    }
}
