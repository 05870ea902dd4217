//! Catalog questions about a target: its columns and types, whether it
//! is empty.

use tokio_postgres::Client;

use super::{PgError, describe, sql};

fn unreadable_target(error: tokio_postgres::Error) -> PgError {
    PgError::Setup(format!(
        "cannot read the target table: {}",
        describe(&error)
    ))
}

/// The target table's columns with their types (`format_type` names).
pub(crate) async fn target_columns(
    target: &Client,
    table: &str,
) -> Result<Vec<(String, String)>, PgError> {
    let rows = target
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&sql::quote_qualified(table)],
        )
        .await
        .map_err(unreadable_target)?;
    if rows.is_empty() {
        return Err(PgError::Setup(format!(
            "target table `{table}` does not exist; create it first"
        )));
    }
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The target table's columns that every row must fill: NOT NULL, with
/// no default, not an identity.
pub(crate) async fn required_columns(target: &Client, table: &str) -> Result<Vec<String>, PgError> {
    let rows = target
        .query(
            "SELECT a.attname::text FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' ORDER BY a.attnum",
            &[&sql::quote_qualified(table)],
        )
        .await
        .map_err(unreadable_target)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Checks that the target has a primary key or unique index on exactly
/// the columns of `key` (in any order), which `INSERT … ON CONFLICT (key)`
/// needs: without one every upsert fails.
pub(crate) async fn check_conflict_key(
    target: &Client,
    table: &str,
    key: &[String],
) -> Result<(), PgError> {
    let rows = target
        .query(
            "SELECT array_agg(a.attname::text ORDER BY k.position) \
             FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL \
               AND k.position <= i.indnkeyatts \
             GROUP BY i.indexrelid HAVING bool_and(k.attnum > 0) \
             ORDER BY bool_or(i.indisprimary) DESC, i.indexrelid",
            &[&sql::quote_qualified(table)],
        )
        .await
        .map_err(unreadable_target)?;
    let keys: Vec<Vec<String>> = rows.iter().map(|row| row.get(0)).collect();
    let mut wanted: Vec<&str> = key.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    let matches = keys.iter().any(|columns| {
        let mut columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        columns.sort_unstable();
        columns == wanted
    });
    if matches {
        return Ok(());
    }
    let theirs = if keys.is_empty() {
        "it has none".to_string()
    } else {
        format!(
            "its unique keys are {}",
            keys.iter()
                .map(|columns| format!("({})", columns.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(PgError::Setup(format!(
        "target table `{table}` has no primary key or unique index on exactly ({}), which loading needs (INSERT … ON CONFLICT); {theirs}: set primary_key to one of them, or add one",
        key.join(", ")
    )))
}

pub(crate) async fn target_is_empty(target: &Client, table: &str) -> Result<bool, PgError> {
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {})",
        sql::quote_qualified(table)
    );
    let row = target
        .query_one(sql.as_str(), &[])
        .await
        .map_err(unreadable_target)?;
    Ok(row.get(0))
}
