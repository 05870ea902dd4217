//! Properties of `type = "table_sync"` tasks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Secret;

/// Properties of `type = "table_sync"` tasks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSyncProperties {
    /// `postgres://…` or `redshift://…` (credential references allowed).
    pub source: Secret,
    /// `postgres://…`
    pub target: Secret,
    /// A table (`schema.table`), or `source_query` for a query.
    #[schemars(with = "Option<String>")]
    pub source_table: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub source_query: Option<Spanned<String>>,
    #[schemars(with = "String")]
    pub target_table: Spanned<String>,
    #[schemars(with = "Vec<String>")]
    pub primary_key: Spanned<Vec<String>>,
    #[serde(default = "default_mode")]
    #[schemars(with = "TableMode")]
    pub mode: Spanned<TableMode>,
    /// Full mode only: after a run that loaded every batch, delete the
    /// target rows whose key the source no longer has. Without it, rows
    /// deleted at the source stay in the target.
    #[schemars(with = "Option<bool>")]
    pub delete_missing: Option<Spanned<bool>>,
    pub watermark_column: Option<String>,
    /// How far below the stored watermark an incremental run starts
    /// reading, e.g. "5m"; see [`TableSyncProperties::watermark_lookback`].
    #[serde(rename = "watermark_lookback")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    pub watermark_lookback_text: Option<Spanned<String>>,
    #[serde(default = "default_batch_size")]
    #[schemars(with = "usize")]
    pub batch_size: Spanned<usize>,
    /// Attempts after the first for a failed batch.
    #[serde(default = "super::default_max_retries")]
    pub max_retries: u32,
    /// First wait before retrying a batch; doubles each attempt.
    #[serde(
        default = "super::default_retry_backoff",
        deserialize_with = "super::humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "super::schema::DurationText")]
    pub retry_backoff: Duration,
    #[serde(default = "default_commit_per_batch")]
    #[schemars(with = "bool")]
    pub commit_per_batch: Spanned<bool>,
    /// Target connections loading batches at once.
    #[serde(default = "default_parallel_loads")]
    pub parallel_loads: usize,
    /// Source connections reading key ranges at once when a run reads the
    /// whole source (full mode, or no watermark yet).
    #[serde(default = "default_parallel_reads")]
    pub parallel_reads: usize,
    /// Target column → how to fill it. Empty: every source column, same name.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnConfig>,
    /// jq run on each source row (an object of its columns) first: rows it
    /// maps to false or null are not loaded (counted as filtered, not skipped).
    #[schemars(with = "Option<String>")]
    pub filter: Option<super::jq::Expression>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableMode {
    #[default]
    Full,
    Incremental,
}

/// How one target column is filled.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// The source column (default: the target column's name).
    pub source: Option<String>,
    /// Or a jq expression computing the value from the source row (an
    /// object of its columns), e.g. `'.first_name + " " + .last_name'`.
    #[schemars(with = "Option<String>")]
    pub jq: Option<super::jq::Expression>,
    /// The type values must coerce to (default: the target column's type).
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// A NULL here skips the row.
    #[serde(default)]
    pub required: bool,
    /// Values read as NULL.
    #[serde(default)]
    pub null_if: Vec<String>,
}

fn default_batch_size() -> Spanned<usize> {
    Spanned::new(0..0, 1000)
}
fn default_parallel_loads() -> usize {
    2
}
/// One: on 2 cores with one server for both sides, two reading
/// connections were no faster than one (BENCHMARKS.md, table sync at scale).
fn default_parallel_reads() -> usize {
    1
}
fn default_mode() -> Spanned<TableMode> {
    Spanned::new(0..0, TableMode::Full)
}
fn default_commit_per_batch() -> Spanned<bool> {
    Spanned::new(0..0, true)
}

/// Used when `watermark_lookback` is not set. A row's `updated_at = now()`
/// is the time its transaction started, not when it commits: a transaction
/// that commits after a later-stamped one was read falls below the
/// watermark. Five minutes covers transactions that run for up to five
/// minutes, while re-reading only a few minutes of rows each run (unchanged
/// rows are compared, not rewritten).
pub const DEFAULT_WATERMARK_LOOKBACK: Duration = Duration::from_secs(300);

impl TableSyncProperties {
    /// Whether `delete_missing = true` (validation allows it in full mode only).
    pub fn deletes_missing(&self) -> bool {
        self.delete_missing
            .as_ref()
            .is_some_and(|delete| *delete.get_ref())
    }

    /// The look-back window: `watermark_lookback`, or five minutes.
    /// Validation has checked the text, so a bad one cannot reach here.
    pub fn watermark_lookback(&self) -> Duration {
        self.watermark_lookback_text
            .as_ref()
            .and_then(|text| parse_lookback(text.get_ref()).ok())
            .unwrap_or(DEFAULT_WATERMARK_LOOKBACK)
    }
}

/// Parses a `watermark_lookback` value, or says how to write one.
pub(crate) fn parse_lookback(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| {
        format!(
            "invalid watermark_lookback `{text}`: {error}; write a duration like \"5m\" (\"0s\" turns it off)"
        )
    })
}
