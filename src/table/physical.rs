//! Reading a first load in the source table's physical order, as pg_dump
//! and pgcopydb do: runs of pages (`ctid` ranges, a TID range scan) inside
//! one snapshot. Paging by the primary key instead visits the table's pages
//! in key order, which for a key that is not the insertion order (a
//! composite key, a uuid) is all over the table: each batch then reads
//! pages the server has already evicted once the table outgrows its cache.
//!
//! Only a table whose rows are not stored in the order keyset paging reads
//! them is read so (the planner's `correlation` statistic of that column
//! says which): one stored in key (or watermark) order is read page after
//! page by keyset paging too, and keyset batches have exact sizes and
//! exact key bounds. Even inside the server's cache, hopping from page to
//! page in key order costs the source: a 100,000-row table with a
//! composite key loaded 10% faster by pages, a 500,000-row one 12%. Below
//! 8 MiB both orders take the same time, so small tables keep exact
//! batches; a table never analyzed (no statistics) is read by pages only
//! once it outgrows `shared_buffers`.
//!
//! One snapshot makes the pages a consistent cut: a row updated during the
//! run moves to another page, and without it could be read twice or not
//! at all. The snapshot lasts as long as the read, so a lost source
//! connection ends the run (a rerun compares by key what is loaded).

use tokio_postgres::Client;

use super::layout::{BatchBounds, KeySpan, Layout, PageRange};
use super::sql::SourceRelation;
use super::{Batch, Paging, reader};
use crate::postgres::sql::quote_qualified;
use crate::postgres::{Dialect, PgError, describe};

/// A run of pages is grown or shrunk towards its aim of rows, but
/// never by more than this factor at once.
const STEP_GROWTH: u64 = 4;
/// Pages of the first batch when the table was never analyzed.
const FIRST_STEP: u64 = 8;
/// A table whose leading ordering column has at least this `correlation`
/// (or at most its negative) is read by key: its pages come in order.
const IN_ORDER: f32 = 0.9;
/// A table the statistics show stored out of key order is read by pages
/// from this size on (8 MiB). Smaller ones load as fast either way.
const SCATTERED_PAGES: i64 = 1024;

/// The source table as the run's snapshot sees it.
pub(super) struct Snapshot {
    /// Pages of the table: every row the snapshot sees is on one of them.
    pub(super) pages: u64,
    /// The planner's rows a page, when the table was analyzed.
    rows_per_page: Option<f64>,
    /// The greatest watermark in the snapshot (incremental tasks).
    pub(super) greatest_watermark: Option<String>,
}

/// Opens the snapshot on `client` (a transaction that stays open until
/// [`read_pages`] ends), or returns `None` when the source is read by key:
/// a table whose rows are stored in the order of the column keyset paging
/// starts with (its `correlation` at least [`IN_ORDER`] either way), one
/// smaller than [`SCATTERED_PAGES`] (or, without statistics, than
/// `shared_buffers`), Redshift, a
/// `source_query`, a view, a partitioned table or one with children (its
/// pages hold only its own rows), or a server before PostgreSQL 14 (no TID
/// range scan: each batch would read the whole table).
pub(super) async fn begin(
    client: &Client,
    dialect: Dialect,
    layout: &Layout,
) -> Result<Option<Snapshot>, PgError> {
    let SourceRelation::Table(name) = &layout.relation else {
        return Ok(None);
    };
    if dialect != Dialect::Postgres {
        return Ok(None);
    }
    let failed = |error: tokio_postgres::Error| {
        PgError::Database(format!(
            "opening a snapshot of the source: {}",
            describe(&error)
        ))
    };
    let table = quote_qualified(name);
    // Tests read small tables by pages, whatever their order.
    let always = std::env::var("SYNCDECK_PHYSICAL_READS").is_ok_and(|value| value == "always");
    let leading = layout.keys.first().map(|key| key.name.clone());
    let fits = client
        .query_opt(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'm')
             AND NOT c.relhassubclass AND current_setting('server_version_num')::int >= 140000
             AND ($2 OR (SELECT coalesce(o.correlation, 0) < $4
                     AND o.pages >= CASE WHEN o.correlation IS NULL
                         THEN (SELECT setting::int8 FROM pg_settings WHERE name = 'shared_buffers')
                         ELSE $5 END
                 FROM (SELECT pg_relation_size(c.oid) / current_setting('block_size')::int8 AS pages,
                              (SELECT abs(s.correlation) FROM pg_stats s
                               WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = $3
                               LIMIT 1) AS correlation) o))",
            &[&table, &always, &leading, &IN_ORDER, &SCATTERED_PAGES],
        )
        .await
        .map_err(failed)?;
    if fits.is_none() {
        return Ok(None);
    }
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(failed)?;
    // The snapshot is taken by this first statement: the size it reads
    // covers every row committed before.
    let row = client
        .query_one(
            "SELECT pg_relation_size(oid) / current_setting('block_size')::int8,
                    CASE WHEN relpages > 0 AND reltuples > 0 THEN CAST(reltuples AS float8) / relpages END
             FROM pg_class WHERE oid = to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(failed)?;
    let pages = row.try_get::<_, i64>(0).map_err(failed)?.max(0) as u64;
    let rows_per_page = row.try_get::<_, Option<f64>>(1).map_err(failed)?;
    let greatest_watermark = super::ranges::greatest_watermark(client, dialect, layout).await?;
    Ok(Some(Snapshot {
        pages,
        rows_per_page,
        greatest_watermark,
    }))
}

/// Reads every page of the snapshot in runs of about nine tenths of a
/// batch of rows (so the density's spread rarely tips one over a batch),
/// each sorted by the primary key so its first and last rows bound it, and
/// sends them to the loaders. A run of more than twice `batch_size` rows is
/// read in several batches (by key within the run), so memory stays
/// bounded whatever the table's layout: a page-sized run aimed at a whole
/// batch split most runs into a full batch and a few rows, doubling the
/// batches. Returns the rows read without
/// a watermark, or `None` once the run stops (an error sent, cancelled,
/// the loaders gone).
pub(super) async fn read_pages(
    reader: &mut reader::Reader,
    snapshot: &Snapshot,
    paging: &Paging,
) -> Option<u64> {
    let batch_size = paging.batch_size.max(1) as u64;
    let wanted = (batch_size * 9 / 10).max(1);
    let planned = match snapshot.rows_per_page {
        Some(rows) => ((wanted as f64 / rows) as u64).max(1),
        None => FIRST_STEP,
    };
    // Empty stretches (pages freed by a mass delete) grow the run, up to
    // this: a dense stretch after them is then read in a few batches.
    let longest = planned.saturating_mul(STEP_GROWTH);
    let mut step = planned;
    let mut null_rows = 0;
    let mut from = 0;
    while from < snapshot.pages {
        let to = from.saturating_add(step).min(snapshot.pages);
        let pages = PageRange { from, to };
        let (found, nulls) = read_run(reader, pages, batch_size * 2, paging).await?;
        null_rows += nulls;
        // The next run aims at a batch of rows from this run's density.
        let read = to - from;
        step = match found {
            0 => step.saturating_mul(STEP_GROWTH).min(longest),
            found => wanted.saturating_mul(read).div_ceil(found).clamp(
                (step / STEP_GROWTH).max(1),
                step.saturating_mul(STEP_GROWTH).min(longest.max(step)),
            ),
        };
        from = to;
    }
    if let Some(client) = &reader.client
        && let Err(error) = client.batch_execute("COMMIT").await
    {
        tracing::warn!(error = %describe(&error), "closing the source snapshot failed");
    }
    Some(null_rows)
}

/// Reads the rows on `pages` in batches of at most `most` rows, in key
/// order, and sends them. Returns the rows found and those without a
/// watermark.
async fn read_run(
    reader: &mut reader::Reader,
    pages: PageRange,
    most: u64,
    paging: &Paging,
) -> Option<(u64, u64)> {
    let layout = &paging.layout;
    let (mut found, mut null_rows) = (0, 0);
    let mut after: Option<Vec<Option<String>>> = None;
    // Integer and uuid keys are bounded here, so the server need not sort
    // the run unless it holds more than `most` rows.
    let mut any_order = key_kinds(layout).is_some();
    loop {
        if paging.cancel.is_cancelled() {
            return None;
        }
        let bounds = BatchBounds {
            pages: Some(pages),
            after: after.take(),
            any_order,
            ..BatchBounds::default()
        };
        let limit = if any_order { most + 1 } else { most };
        let rows = match reader::read_with_retries(
            reader,
            layout,
            &bounds,
            Some(limit as usize),
            0,
            paging.backoff,
            &paging.cancel,
        )
        .await
        {
            Ok(rows) => rows,
            Err(error) => {
                let _ = paging.batches.send(Err(error)).await;
                return None;
            }
        };
        let span = if any_order {
            match key_span(layout, &bounds, &rows) {
                Some(span) if rows.len() as u64 <= most => Some(span),
                // Too many rows for one batch: read the run again, sorted.
                _ => {
                    any_order = false;
                    continue;
                }
            }
        } else {
            None
        };
        found += rows.len() as u64;
        let Some(last) = rows.len().checked_sub(1) else {
            return Some((found, null_rows));
        };
        if layout.watermark
            && let Some(&column) = layout.key_indexes.first()
        {
            null_rows += (0..rows.len())
                .filter(|&row| rows.get(row, column).is_none())
                .count() as u64;
        }
        let key = |row: usize| -> Vec<Option<String>> {
            bounds
                .key_indexes(layout)
                .iter()
                .map(|index| rows.get(row, *index).map(str::to_owned))
                .collect()
        };
        let within = span.unwrap_or_else(|| KeySpan {
            first: key(0),
            last: key(last),
        });
        let full = !any_order && rows.len() as u64 == most;
        if full {
            after = Some(within.last.clone());
        }
        let batch = Batch {
            number: paging
                .numbers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
            bounds: BatchBounds {
                within: Some(within),
                after: None,
                any_order: false,
                ..bounds
            },
            rows,
            item_id: None,
            of_item: None,
        };
        tokio::select! {
            _ = paging.cancel.cancelled() => return None,
            sent = paging.batches.send(Ok(batch)) => if sent.is_err() {
                return None;
            }
        }
        if !full {
            return Some((found, null_rows));
        }
    }
}

/// How a key column's values compare, for keys syncdeck can order itself.
#[derive(Clone, Copy)]
enum KeyKind {
    Integer,
    /// Canonical lowercase text, which orders as PostgreSQL orders uuids.
    Uuid,
}

/// The kinds of the batch key's columns, when syncdeck can order them all
/// (integers and uuids; text follows the server's collation).
fn key_kinds(layout: &Layout) -> Option<Vec<KeyKind>> {
    let start = usize::from(layout.watermark);
    layout.keys[start..]
        .iter()
        .map(|key| match key.type_name.as_str() {
            "int2" | "int4" | "int8" => Some(KeyKind::Integer),
            "uuid" => Some(KeyKind::Uuid),
            _ => None,
        })
        .collect()
}

/// The least and greatest key of `rows`, or `None` when a value does not
/// read as its kind (the run is then read sorted by the server).
fn key_span(
    layout: &Layout,
    bounds: &BatchBounds,
    rows: &crate::postgres::Rows,
) -> Option<KeySpan> {
    use std::cmp::Ordering;
    let kinds = key_kinds(layout)?;
    let indexes = bounds.key_indexes(layout);
    let compare = |a: usize, b: usize| -> Option<Ordering> {
        for (kind, &index) in kinds.iter().zip(indexes) {
            let (left, right) = (rows.get(a, index)?, rows.get(b, index)?);
            let order = match kind {
                KeyKind::Integer => left.parse::<i64>().ok()?.cmp(&right.parse::<i64>().ok()?),
                KeyKind::Uuid => left.cmp(right),
            };
            if order != Ordering::Equal {
                return Some(order);
            }
        }
        Some(Ordering::Equal)
    };
    let (mut least, mut greatest) = (0, 0);
    for row in 1..rows.len() {
        if compare(row, least)? == Ordering::Less {
            least = row;
        }
        if compare(row, greatest)? == Ordering::Greater {
            greatest = row;
        }
    }
    if rows.is_empty() {
        return Some(KeySpan::default());
    }
    let key = |row: usize| -> Vec<Option<String>> {
        indexes
            .iter()
            .map(|index| rows.get(row, *index).map(str::to_owned))
            .collect()
    };
    Some(KeySpan {
        first: key(least),
        last: key(greatest),
    })
}
