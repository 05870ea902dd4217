//! `delete_missing`: after a full run that loaded every batch, target rows
//! whose key the source no longer has are deleted.
//!
//! The target's keys are paged in key order (so each delete covers one key
//! range, never the whole table at once); the source is asked which of a
//! page's keys it still has, by equality only (no ordering is compared
//! across the two databases, whose collations may differ); the target then
//! deletes the page's rows whose key is not among those the source
//! returned, comparing in the target's own types as the load does.

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::layout::Layout;
use super::sql::{KeyColumn, Query};
use crate::postgres::sql::{quote_ident, quote_qualified};
use crate::postgres::{Dialect, Endpoint, PgError, describe};
use crate::task::RunContext;

/// Keys looked up at the source in one statement.
const PAGE: usize = 1000;

/// Deletes the target rows missing at the source; returns how many, or
/// the error that stopped it (rows deleted so far stay deleted, they are
/// missing at the source).
pub(super) async fn delete_missing(
    layout: &Layout,
    source: &Endpoint,
    target: &Endpoint,
    page: usize,
    context: &RunContext,
) -> Result<u64, PgError> {
    let target_keys: Vec<KeyColumn> = layout
        .primary_key
        .iter()
        .map(|name| KeyColumn {
            name: name.clone(),
            type_name: layout
                .columns
                .iter()
                .find(|column| &column.target == name)
                .map(|column| column.target_type.clone())
                .unwrap_or_else(|| "text".into()),
        })
        .collect();
    let source_keys = &layout.keys;
    let page = page.clamp(1, PAGE);
    let source_client = source.connect().await?;
    let target_client = target.connect().await?;
    let table = quote_qualified(&layout.target_table);
    let key_list = target_keys
        .iter()
        .map(|key| quote_ident(&key.name))
        .collect::<Vec<_>>()
        .join(", ");
    // Aliased: an output column named like the key would make `ORDER BY
    // key` sort the text, not the key.
    let as_text = |keys: &[KeyColumn], dialect: Dialect| {
        keys.iter()
            .enumerate()
            .map(|(index, key)| {
                format!(
                    "CAST({} AS {}) AS syncdeck_key_{index}",
                    quote_ident(&key.name),
                    dialect.text_type()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut deleted = 0;
    let mut after: Option<Vec<Option<String>>> = None;
    loop {
        if context.cancel.is_cancelled() {
            return Err(PgError::Cancelled);
        }
        // One page of the target's keys, in its own order.
        let mut query = Query::new(Dialect::Postgres);
        let floor = after
            .as_ref()
            .map(|after| format!(" WHERE {}", query.after(&target_keys, after)))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM {table}{floor} ORDER BY {key_list} LIMIT {page}",
            as_text(&target_keys, Dialect::Postgres)
        );
        let keys = text_rows(&target_client, &sql, &query.params).await?;
        let Some(through) = keys.last().cloned() else {
            break;
        };

        // Which of them the source still has, as the source writes them.
        let mut query = Query::new(source.dialect);
        let wanted: Vec<String> = keys
            .iter()
            .map(|key| query.equals(source_keys, key))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            as_text(source_keys, source.dialect),
            layout.relation.relation_sql(),
            wanted.join(" OR ")
        );
        let present = text_rows(&source_client, &sql, &query.params).await?;

        if present.len() < keys.len() {
            deleted += delete_page(
                &target_client,
                &table,
                &target_keys,
                after.as_deref(),
                &through,
                &present,
            )
            .await?;
            context.update_counters(|counters| counters.rows_deleted = deleted);
        }
        if keys.len() < page {
            break;
        }
        after = Some(through);
    }
    Ok(deleted)
}

/// Deletes the target's rows in the key range `(after, through]` whose key
/// is not in `present`.
async fn delete_page(
    target: &Client,
    table: &str,
    keys: &[KeyColumn],
    after: Option<&[Option<String>]>,
    through: &[Option<String>],
    present: &[Vec<Option<String>>],
) -> Result<u64, PgError> {
    let mut query = Query::new(Dialect::Postgres);
    let mut range = vec![query.through(keys, through)];
    if let Some(after) = after {
        range.push(query.after(keys, after));
    }
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = query
        .params
        .into_iter()
        .map(|param| Box::new(param) as Box<dyn ToSql + Sync + Send>)
        .collect();
    let mut columns = Vec::new();
    let mut matches = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let values: Vec<Option<String>> = present
            .iter()
            .map(|row| row.get(index).cloned().flatten())
            .collect();
        params.push(Box::new(values));
        let column = format!("k{index}");
        matches.push(format!(
            "t.{} = CAST(s.{column} AS {})",
            quote_ident(&key.name),
            key.type_name
        ));
        columns.push((params.len(), column));
    }
    let arrays = columns
        .iter()
        .map(|(number, _)| format!("CAST(${number} AS text[])"))
        .collect::<Vec<_>>()
        .join(", ");
    let names = columns
        .iter()
        .map(|(_, column)| column.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "DELETE FROM {table} AS t WHERE {} AND NOT EXISTS (SELECT 1 FROM unnest({arrays}) AS s({names}) WHERE {})",
        range.join(" AND "),
        matches.join(" AND ")
    );
    let params: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect();
    target
        .execute(sql.as_str(), &params)
        .await
        .map_err(|error| {
            PgError::Database(format!(
                "deleting rows missing at the source: {}",
                describe(&error)
            ))
        })
}

/// Runs a query whose columns are all text.
async fn text_rows(
    client: &Client,
    sql: &str,
    params: &[Option<String>],
) -> Result<Vec<Vec<Option<String>>>, PgError> {
    let params: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|param| param as &(dyn ToSql + Sync))
        .collect();
    let rows = client.query(sql, &params).await.map_err(|error| {
        PgError::Database(format!(
            "finding rows missing at the source: {}",
            describe(&error)
        ))
    })?;
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|index| {
                    row.try_get::<_, Option<String>>(index).map_err(|error| {
                        PgError::Database(format!("reading a key as text: {}", describe(&error)))
                    })
                })
                .collect()
        })
        .collect()
}
