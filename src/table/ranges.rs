//! Splitting a read of the whole source into key ranges read at once, as
//! pgcopydb and PeerDB do: by the first primary key column, evenly between
//! its least and greatest value for integers, at sampled quantiles for
//! other types. Each range has exact bounds, so a batch of it that fails is
//! recorded and read again alone.

use tokio_postgres::Client;

use super::layout::{KeyRange, Layout};
use super::sql::SourceRelation;
use crate::postgres::sql::{quote_ident, quote_qualified};
use crate::postgres::{Dialect, PgError, describe};

/// A range holds at least this many batches: for fewer, another connection
/// costs more than it saves.
const MIN_BATCHES_PER_RANGE: u64 = 10;
/// Rows sampled to place the bounds of a key that is not an integer.
const SAMPLE_ROWS: f64 = 100_000.0;

/// The ranges to read at once, or none to read the source in one pass.
pub(super) async fn plan(
    client: &Client,
    dialect: Dialect,
    layout: &Layout,
    wanted: usize,
    batch_size: usize,
) -> Result<Vec<KeyRange>, PgError> {
    let Some(key) = layout.keys.get(usize::from(layout.watermark)) else {
        return Ok(Vec::new());
    };
    // Without an estimate (a query, or a table never analyzed) there is
    // no telling whether ranges are worth their connections.
    let Some(estimate) = estimate_rows(client, dialect, &layout.relation).await else {
        return Ok(Vec::new());
    };
    let count = (wanted as u64).min(estimate / (batch_size as u64 * MIN_BATCHES_PER_RANGE).max(1));
    if count <= 1 {
        return Ok(Vec::new());
    }
    let column = quote_ident(&key.name);
    let relation = layout.relation.relation_sql();
    let failed = |error: tokio_postgres::Error| {
        PgError::Database(format!(
            "splitting the source into key ranges: {}",
            describe(&error)
        ))
    };
    let mut bounds: Vec<String> = Vec::new();
    if matches!(key.type_name.as_str(), "int2" | "int4" | "int8") {
        let row = client
            .query_one(
                &format!("SELECT CAST(min({column}) AS BIGINT), CAST(max({column}) AS BIGINT) FROM {relation}"),
                &[],
            )
            .await
            .map_err(failed)?;
        let (Some(least), Some(greatest)) = (
            row.try_get::<_, Option<i64>>(0).map_err(failed)?,
            row.try_get::<_, Option<i64>>(1).map_err(failed)?,
        ) else {
            return Ok(Vec::new());
        };
        let step = (i128::from(greatest) - i128::from(least)) / i128::from(count);
        for index in 1..i128::from(count) {
            bounds.push((i128::from(least) + step * index).to_string());
        }
    } else {
        let sample = match &layout.relation {
            SourceRelation::Table(name) if estimate as f64 > SAMPLE_ROWS => {
                format!(
                    "{} TABLESAMPLE SYSTEM ({:.6})",
                    quote_qualified(name),
                    100.0 * SAMPLE_ROWS / estimate as f64
                )
            }
            _ => relation,
        };
        let rows = client
            .query(
                &format!(
                    "SELECT CAST(max({column}) AS {text}) FROM (SELECT {column}, ntile({count}) OVER (ORDER BY {column}) AS syncdeck_part FROM {sample} WHERE {column} IS NOT NULL) AS syncdeck_parts GROUP BY syncdeck_part ORDER BY max({column})",
                    text = dialect.text_type()
                ),
                &[],
            )
            .await
            .map_err(failed)?;
        for row in rows.iter().take(rows.len().saturating_sub(1)) {
            if let Some(bound) = row.try_get::<_, Option<String>>(0).map_err(failed)? {
                bounds.push(bound);
            }
        }
    }
    bounds.dedup();
    if bounds.is_empty() {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut above = None;
    for bound in bounds {
        ranges.push(KeyRange {
            above: above.take(),
            through: Some(bound.clone()),
        });
        above = Some(bound);
    }
    ranges.push(KeyRange {
        above,
        through: None,
    });
    Ok(ranges)
}

/// The planner's estimate of a source table's rows (`reltuples`), when
/// the source is a PostgreSQL table that was analyzed.
pub(super) async fn estimate_rows(
    client: &Client,
    dialect: Dialect,
    relation: &SourceRelation,
) -> Option<u64> {
    let SourceRelation::Table(name) = relation else {
        return None;
    };
    if dialect != Dialect::Postgres {
        return None;
    }
    let row = client
        .query_opt(
            "SELECT CAST(reltuples AS float8) FROM pg_class WHERE oid = to_regclass($1)",
            &[&quote_qualified(name)],
        )
        .await
        .ok()??;
    let rows = row.try_get::<_, f64>(0).ok()?;
    // -1: never analyzed or vacuumed.
    (rows >= 0.0).then_some(rows as u64)
}

/// The greatest watermark at the start of a run that reads the whole
/// source in ranges: rows changed while it runs get a greater one and are
/// read again by the next run.
pub(super) async fn greatest_watermark(
    client: &Client,
    dialect: Dialect,
    layout: &Layout,
) -> Result<Option<String>, PgError> {
    let Some(column) = layout.keys.first().filter(|_| layout.watermark) else {
        return Ok(None);
    };
    let row = client
        .query_one(
            &format!(
                "SELECT CAST(max({}) AS {}) FROM {}",
                quote_ident(&column.name),
                dialect.text_type(),
                layout.relation.relation_sql()
            ),
            &[],
        )
        .await
        .map_err(|error| {
            PgError::Database(format!(
                "reading the greatest watermark: {}",
                describe(&error)
            ))
        })?;
    row.try_get::<_, Option<String>>(0)
        .map_err(|error| PgError::Database(describe(&error)))
}
