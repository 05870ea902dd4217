//! Reading the SQLite store's rows: a run (`sync_logs`) as a [`RunRecord`],
//! a failed item as a [`FailedItem`]; a value this version cannot read is
//! an error that names its row.

use chrono::NaiveDate;

use super::Failure;
use crate::run::{RunId, RunRecord};
use crate::state::{BadRow, FailedItem, ItemKind, ItemStatus, StoredRow};

/// The columns [`run_from_row`] reads, in the order it reads them.
pub(super) const RUN_COLUMNS: &str = "run_id, task_id, trigger, status, started_at, completed_at, duration_ms, counters, error, warning, execution_date";

/// Column `index` of a row, an error naming the row if it has another type.
pub(super) fn get<T: rusqlite::types::FromSql>(
    stored: &StoredRow,
    row: &rusqlite::Row<'_>,
    index: usize,
) -> Result<T, BadRow> {
    row.get(index).map_err(|error| stored.bad(error))
}

/// Every row of a query, each read by `read`.
pub(super) fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    read: impl Fn(&rusqlite::Row<'_>) -> Result<T, BadRow>,
) -> Result<Vec<T>, Failure> {
    let mut values = Vec::new();
    while let Some(row) = rows.next()? {
        values.push(read(row)?);
    }
    Ok(values)
}

pub(super) fn run_from_row(row: &rusqlite::Row<'_>) -> Result<RunRecord, BadRow> {
    let run_id: RunId = get(&StoredRow::new("sync_logs", "a row"), row, 0)?;
    let stored = StoredRow::run(run_id);
    let trigger: String = get(&stored, row, 2)?;
    let status: String = get(&stored, row, 3)?;
    let started_at: String = get(&stored, row, 4)?;
    let completed_at: Option<String> = get(&stored, row, 5)?;
    let counters: String = get(&stored, row, 7)?;
    let execution_date: Option<String> = get(&stored, row, 10)?;
    let execution_date = execution_date
        .map(|text| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map_err(|_| stored.bad(format!("execution_date {text:?} is not a date")))
        })
        .transpose()?;
    Ok(RunRecord {
        run_id,
        task_id: get(&stored, row, 1)?,
        trigger: stored.word("trigger", &trigger, |text| text.parse().ok())?,
        status: stored.word("status", &status, |text| text.parse().ok())?,
        started_at: stored.time("started_at", &started_at)?,
        completed_at: completed_at
            .map(|text| stored.time("completed_at", &text))
            .transpose()?,
        duration_ms: get(&stored, row, 6)?,
        counters: stored.counters(&counters)?,
        error: get(&stored, row, 8)?,
        warning: get(&stored, row, 9)?,
        execution_date,
    })
}

pub(super) fn item_from_row(row: &rusqlite::Row<'_>) -> Result<FailedItem, BadRow> {
    let id: i64 = get(&StoredRow::new("failed_items", "a row"), row, 0)?;
    let stored = StoredRow::item(id);
    let kind: String = get(&stored, row, 3)?;
    let status: String = get(&stored, row, 7)?;
    let created: String = get(&stored, row, 8)?;
    let updated: String = get(&stored, row, 9)?;
    let attempts: i64 = get(&stored, row, 6)?;
    Ok(FailedItem {
        id,
        run_id: get(&stored, row, 1)?,
        task_id: get(&stored, row, 2)?,
        kind: stored.word("kind", &kind, ItemKind::parse)?,
        key: get(&stored, row, 4)?,
        error: get(&stored, row, 5)?,
        attempts: stored.count("attempts", attempts)?,
        status: stored.word("status", &status, ItemStatus::parse)?,
        created_at: stored.time("created_at", &created)?,
        updated_at: stored.time("updated_at", &updated)?,
    })
}
