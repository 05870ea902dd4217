//! Catalog questions about a target: its columns and types, whether it
//! is empty.

use tokio_postgres::Client;

use super::{PgError, describe, sql};

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
        .map_err(|error| PgError::Setup(format!("cannot read the target table: {}", describe(&error))))?;
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
        .map_err(|error| {
            PgError::Setup(format!(
                "cannot read the target table: {}",
                describe(&error)
            ))
        })?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

pub(crate) async fn target_is_empty(target: &Client, table: &str) -> Result<bool, PgError> {
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {})",
        sql::quote_qualified(table)
    );
    let row = target.query_one(sql.as_str(), &[]).await.map_err(|error| {
        PgError::Setup(format!(
            "cannot read the target table: {}",
            describe(&error)
        ))
    })?;
    Ok(row.get(0))
}
