//! What a table sync run knows about both tables: the columns it reads
//! and writes, their types, and the ordering key; and a batch's bounds.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::sql::{KeyColumn, Read, SourceColumn, SourceRelation};
use crate::config::jq::{FieldKind, Program};
use crate::config::{TableMode, TableSyncProperties};
use crate::postgres::catalog::{check_conflict_key, required_columns, target_columns};
use crate::postgres::coerce::ValueType;
use crate::postgres::{Dialect, PgError, describe};

/// One target column and how it is filled.
#[derive(Debug, Clone)]
pub(crate) struct ColumnPlan {
    pub(crate) target: String,
    /// The target column's type, as `format_type` names it.
    pub(crate) target_type: String,
    /// Where its value comes from: a source column or jq.
    pub(crate) value: ValueFrom,
    pub(crate) value_type: ValueType,
    pub(crate) required: bool,
    pub(crate) null_if: Vec<String>,
}

/// Where a target column's value comes from.
#[derive(Debug, Clone)]
pub(crate) enum ValueFrom {
    /// The source column at this position in the extracted row.
    Source(usize),
    /// A jq expression run on the row (see [`Layout::row_fields`]).
    Jq(Program),
}

/// Everything a run needs to know about both tables.
pub(crate) struct Layout {
    pub(crate) relation: SourceRelation,
    /// Source columns read, in order (mapped ones, then ordering-only ones).
    pub(crate) source_columns: Vec<SourceColumn>,
    pub(crate) columns: Vec<ColumnPlan>,
    /// The ordering key: (watermark,) primary key, with source types.
    pub(crate) keys: Vec<KeyColumn>,
    /// Whether `keys` starts with the watermark column (incremental mode).
    pub(crate) watermark: bool,
    /// Positions of the key columns in the extracted row.
    pub(crate) key_indexes: Vec<usize>,
    /// Positions of the primary key's target columns in `columns`.
    pub(crate) primary_key: Vec<String>,
    /// Target columns compared as text in the upsert (json, xml).
    pub(crate) target_table: String,
    /// The row as jq sees it: every source column (name, position in the
    /// extracted row, how its text reads). Empty when no jq runs.
    pub(crate) row_fields: Vec<(String, usize, FieldKind)>,
    /// The `filter` expression, run on the row before the columns.
    pub(crate) filter: Option<Program>,
}

/// A failed batch's recorded key (its bounds, JSON) in words, as the log
/// names the batch; `None` for any other key.
pub(crate) fn readable_item_key(key: &str) -> Option<String> {
    serde_json::from_str::<BatchBounds>(key)
        .ok()
        .map(|bounds| bounds.describe())
}

/// Where a batch starts and ends in the ordering key: `after` (exclusive,
/// none for the first batch) to `through` (inclusive), plus the watermark
/// floor of its run (the stored watermark less the look-back).
///
/// Rows whose watermark is NULL cannot be placed above any floor or paged
/// by it, so an incremental run reads them in batches of their own
/// (`null_watermark`), ordered by the primary key alone: their bounds
/// hold only the primary key.
///
/// A run that reads the whole source may split it into key ranges read at
/// once (`range`): their batches are ordered by the primary key alone, hold
/// only the primary key, and read every row of the range whatever its
/// watermark.
///
/// A first load may read the source table in its physical order instead
/// (`pages`, in one snapshot). Such a batch is recorded by the least and
/// greatest primary key it held (`within`): pages are not stable across
/// snapshots, keys are. Reading `within` again reads every row between
/// those keys, a superset of the batch, in batches of the primary key's
/// order (loads upsert, so a superset is safe).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchBounds {
    pub after: Option<Vec<Option<String>>>,
    pub through: Vec<Option<String>>,
    pub watermark_above: Option<String>,
    /// The look-back below `watermark_above`, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback_micros: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub null_watermark: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<KeyRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<KeySpan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRange>,
    /// Read the rows in any order (a whole run of pages, bounded by
    /// syncdeck from their keys): saves the server a sort.
    #[serde(skip)]
    pub any_order: bool,
}

/// Primary key values from `first` through `last`, both included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpan {
    pub first: Vec<Option<String>>,
    pub last: Vec<Option<String>>,
}

/// Pages (blocks) of the source table from `from` up to `to`, excluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRange {
    pub from: u64,
    pub to: u64,
}

/// A range of the first primary key column: above `above` (exclusive, none
/// for the first range) through `through` (inclusive, none for the last).
/// Ranges are read at once, each on its own source connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
}

impl BatchBounds {
    pub(crate) fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn lookback(&self) -> Option<std::time::Duration> {
        self.lookback_micros.map(std::time::Duration::from_micros)
    }

    /// The ordering key these bounds are written in.
    pub(crate) fn keys<'a>(&self, layout: &'a Layout) -> &'a [KeyColumn] {
        &layout.keys[self.key_start(layout)..]
    }

    /// Positions of `keys` in the extracted row.
    pub(crate) fn key_indexes<'a>(&self, layout: &'a Layout) -> &'a [usize] {
        &layout.key_indexes[self.key_start(layout)..]
    }

    fn key_start(&self, layout: &Layout) -> usize {
        usize::from(!self.watermark_ordered() && layout.watermark)
    }

    /// How logs and failed items name the batch.
    pub(crate) fn describe(&self) -> String {
        let bounds = self;
        let show = |values: &[Option<String>]| {
            values
                .iter()
                .map(|value| value.as_deref().unwrap_or("NULL"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let (Some(pages), Some(span)) = (&bounds.pages, &bounds.within) {
            return format!(
                "pages {}..{} of the snapshot, keys [{}]..[{}]",
                pages.from,
                pages.to,
                show(&span.first),
                show(&span.last)
            );
        }
        // A key of several columns is a tuple: `((a, 1)..(a, 9)]`.
        let tuple = |values: &[Option<String>]| match values.len() {
            1 => show(values),
            _ => format!("({})", show(values)),
        };
        let range = match &bounds.after {
            Some(after) => format!("({}..{}]", tuple(after), tuple(&bounds.through)),
            None => format!("(start..{}]", tuple(&bounds.through)),
        };
        if let Some(span) = &bounds.within {
            format!(
                "{range} of the keys [{}]..[{}]",
                show(&span.first),
                show(&span.last)
            )
        } else if bounds.null_watermark {
            format!("{range} of the rows without a watermark")
        } else if let Some(key_range) = &bounds.range {
            format!(
                "{range} of the key range ({}..{}]",
                key_range.above.as_deref().unwrap_or("start"),
                key_range.through.as_deref().unwrap_or("end")
            )
        } else {
            range
        }
    }

    /// Whether the batch's rows were read in watermark order, so its last
    /// row's watermark may become the task's watermark.
    pub(crate) fn watermark_ordered(&self) -> bool {
        !self.null_watermark
            && self.range.is_none()
            && self.within.is_none()
            && self.pages.is_none()
    }
}

/// Warns when no index of a PostgreSQL source table starts with the
/// watermark column: each batch of an incremental run then sorts every
/// row above the watermark.
pub(crate) async fn warn_without_watermark_index(source: &Client, layout: &Layout) {
    let (SourceRelation::Table(table), true, Some(watermark)) =
        (&layout.relation, layout.watermark, layout.keys.first())
    else {
        return;
    };
    let indexed = source
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
             WHERE i.indrelid = to_regclass($1) AND a.attname = $2)",
            &[
                &crate::postgres::sql::quote_qualified(table),
                &watermark.name,
            ],
        )
        .await
        .map(|row| row.get::<_, bool>(0));
    if let Ok(false) = indexed {
        let keys: Vec<&str> = layout.keys.iter().map(|key| key.name.as_str()).collect();
        tracing::warn!(
            "no index of the source table starts with the watermark column `{}`: each batch sorts every row above the watermark; create one on ({})",
            watermark.name,
            keys.join(", ")
        );
    }
}

/// A column the source does not have, with the closest one it has.
fn no_such_column(name: &str, source_types: &[(String, String)]) -> PgError {
    let names: Vec<&str> = source_types
        .iter()
        .map(|(column, _)| column.as_str())
        .collect();
    let hint = match crate::config::error::did_you_mean(name, &names) {
        Some(best) => format!("; did you mean `{best}`?"),
        None => format!("; it has {}", names.join(", ")),
    };
    PgError::Setup(format!("source has no column `{name}`{hint}"))
}

pub(crate) async fn discover(
    properties: &TableSyncProperties,
    dialect: Dialect,
    source_name: &str,
    source: &Client,
    target: &Client,
) -> Result<Layout, PgError> {
    let relation = match (&properties.source_table, &properties.source_query) {
        (Some(table), _) => SourceRelation::Table(table.get_ref().clone()),
        (None, Some(query)) => SourceRelation::Query(query.get_ref().clone()),
        (None, None) => return Err(PgError::Setup("no source_table or source_query".into())),
    };
    let probe = source
        .prepare(&format!(
            "SELECT * FROM {} LIMIT 0",
            relation.relation_sql()
        ))
        .await
        .map_err(|error| {
            PgError::Setup(format!(
                "cannot read the source ({source_name}): {}",
                describe(&error)
            ))
        })?;
    let source_types: Vec<(String, String)> = probe
        .columns()
        .iter()
        .map(|column| (column.name().to_string(), column.type_().name().to_string()))
        .collect();

    let target_table = properties.target_table.get_ref().clone();
    let target_types = target_columns(target, &target_table).await?;
    check_conflict_key(target, &target_table, properties.primary_key.get_ref()).await?;

    let mut source_columns: Vec<SourceColumn> = Vec::new();
    let index_of = |name: &str, source_columns: &mut Vec<SourceColumn>| -> Result<usize, PgError> {
        let Some((_, type_name)) = source_types.iter().find(|(column, _)| column == name) else {
            return Err(no_such_column(name, &source_types));
        };
        Ok(
            match source_columns.iter().position(|column| column.name == name) {
                Some(index) => index,
                None => {
                    source_columns.push(SourceColumn {
                        name: name.to_string(),
                        read: Read::for_type(dialect, type_name),
                    });
                    source_columns.len() - 1
                }
            },
        )
    };

    // Values read in binary from a PostgreSQL column of a type whose every
    // value the target's check accepts need no check (parsing every
    // timestamp again cost a tenth of a load's time).
    let value_type = |target_type: &str, value: &ValueFrom, source_columns: &[SourceColumn]| {
        let value_type = ValueType::from_type_name(target_type);
        let source_type = match value {
            ValueFrom::Source(index) => source_columns
                .get(*index)
                .and_then(|column| source_types.iter().find(|(name, _)| *name == column.name))
                .map(|(_, type_name)| type_name.as_str()),
            ValueFrom::Jq(_) => None,
        };
        match source_type {
            Some(source_type)
                if dialect == Dialect::Postgres && value_type.holds_every(source_type) =>
            {
                ValueType::Other
            }
            _ => value_type,
        }
    };
    let mut columns = Vec::new();
    if properties.columns.is_empty() {
        for (name, _) in &source_types {
            if let Some((_, type_name)) = target_types.iter().find(|(target, _)| target == name) {
                let value = ValueFrom::Source(index_of(name, &mut source_columns)?);
                columns.push(ColumnPlan {
                    target: name.clone(),
                    target_type: type_name.clone(),
                    value_type: value_type(type_name, &value, &source_columns),
                    value,
                    required: false,
                    null_if: Vec::new(),
                });
            }
        }
    } else {
        for (target_name, column) in &properties.columns {
            let Some((_, type_name)) = target_types
                .iter()
                .find(|(target, _)| target == target_name)
            else {
                return Err(PgError::Setup(format!(
                    "target table `{target_table}` has no column `{target_name}`"
                )));
            };
            let value = match &column.jq {
                Some(expression) => ValueFrom::Jq(super::transform::program(
                    expression,
                    &format!("column `{target_name}`"),
                )?),
                None => ValueFrom::Source(index_of(
                    column.source.as_deref().unwrap_or(target_name),
                    &mut source_columns,
                )?),
            };
            // A `type` in the config is checked as the operator asked.
            let value_type = match &column.type_name {
                Some(type_name) => ValueType::from_type_name(type_name),
                None => value_type(type_name, &value, &source_columns),
            };
            columns.push(ColumnPlan {
                target: target_name.clone(),
                target_type: type_name.clone(),
                value,
                value_type,
                required: column.required,
                null_if: column.null_if.clone(),
            });
        }
    }
    if columns.is_empty() {
        return Err(PgError::Setup(format!(
            "no column of the source is in `{target_table}`; map them in [columns]"
        )));
    }
    // Every row would fail on such a column: say so before reading any.
    let unfilled: Vec<String> = required_columns(target, &target_table)
        .await?
        .into_iter()
        .filter(|name| !columns.iter().any(|column| column.target == *name))
        .map(|name| format!("`{name}`"))
        .collect();
    if !unfilled.is_empty() {
        return Err(PgError::Setup(format!(
            "target column(s) {} of `{target_table}` are NOT NULL without a default, and no source column fills them; map them in [columns] (a source column or jq), or give them a default",
            unfilled.join(", ")
        )));
    }
    if properties.columns.is_empty() {
        let unsynced: Vec<&str> = source_types
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| !columns.iter().any(|column| column.target == *name))
            .collect();
        if !unsynced.is_empty() {
            tracing::warn!(
                columns = %unsynced.join(", "),
                "source columns the target table has no column for are not synced; list the columns to sync in [columns] to choose them and silence this"
            );
        }
    }

    let primary_key: Vec<String> = properties.primary_key.get_ref().clone();
    let mut key_sources: Vec<String> = Vec::new();
    if properties.mode.get_ref() == &TableMode::Incremental
        && let Some(watermark) = &properties.watermark_column
    {
        key_sources.push(watermark.clone());
    }
    let watermark = !key_sources.is_empty();
    for key in &primary_key {
        let Some(column) = columns.iter().find(|column| &column.target == key) else {
            return Err(PgError::Setup(format!(
                "primary key column `{key}` is not among the synced columns"
            )));
        };
        let ValueFrom::Source(index) = column.value else {
            return Err(PgError::Setup(format!(
                "primary key column `{key}` cannot be computed by jq; map it with source"
            )));
        };
        key_sources.push(source_columns[index].name.clone());
    }
    let mut keys = Vec::new();
    let mut key_indexes = Vec::new();
    for name in key_sources {
        let type_name = source_types
            .iter()
            .find(|(column, _)| *column == name)
            .map(|(_, type_name)| type_name.clone())
            .ok_or_else(|| no_such_column(&name, &source_types))?;
        key_indexes.push(index_of(&name, &mut source_columns)?);
        keys.push(KeyColumn { name, type_name });
    }
    let filter = properties
        .filter
        .as_ref()
        .map(|filter| super::transform::program(filter, "filter"))
        .transpose()?;
    let uses_jq = filter.is_some()
        || columns
            .iter()
            .any(|column| matches!(column.value, ValueFrom::Jq(_)));
    let mut row_fields = Vec::new();
    if uses_jq {
        for (name, type_name) in &source_types {
            let index = index_of(name, &mut source_columns)?;
            row_fields.push((name.clone(), index, super::transform::field_kind(type_name)));
        }
    }
    Ok(Layout {
        relation,
        source_columns,
        columns,
        keys,
        watermark,
        key_indexes,
        primary_key,
        target_table,
        row_fields,
        filter,
    })
}
