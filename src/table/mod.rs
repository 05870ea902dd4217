//! Table sync (`type = "table_sync"`): PostgreSQL or Redshift into
//! PostgreSQL, in batches with exact, re-readable bounds.
//!
//! Extraction pages through the source with keyset queries ordered by the
//! primary key (or the watermark column, then the key); a first load of a
//! table larger than the server's cache reads its pages in order instead,
//! in one snapshot (`physical.rs`). Every batch is
//! transformed row by row (the jq `filter` and columns, `transform.rs`) and
//! checked against the target's types (a bad row is skipped and
//! recorded), then loaded in its own transaction: a plain `COPY` while the
//! target was empty at the start, otherwise one `INSERT … SELECT FROM
//! unnest(…) ON CONFLICT DO UPDATE` that leaves unchanged rows alone.
//! Several target connections load disjoint batches at once. A failed batch
//! is rolled back and retried with backoff; after `max_retries` its bounds
//! are recorded and the run moves on. Commits do not wait for the target's
//! disk, but a run only ends once the target confirms every batch is
//! flushed (see `batch::confirm_flushed`). The watermark advances only when a whole run
//! succeeded.

//!
//! Depends on `postgres` (connections, loader, rows), `batch` (loading
//! with retries) and `task` (the run's context).

mod body;
mod count;
mod layout;
mod physical;
mod prune;
mod ranges;
mod reader;
mod settle;
pub(crate) mod sql;
mod stored;
mod transform;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{TableMode, TableSyncProperties};
use crate::postgres::catalog::target_is_empty;
use crate::postgres::{Endpoint, Loader, PgError, Rows};
use crate::run::RunStatus;
use crate::state::{FailedItem, ItemKind, ItemStatus};
use crate::task::{RunContext, TaskOutcome, final_status};
pub(crate) use body::TableSyncBody;
pub(crate) use layout::readable_item_key;
use layout::{BatchBounds, Layout, discover};
use reader::{Reader, read_with_retries};

/// Batches read ahead of the one being loaded.
const READ_AHEAD: usize = 2;

/// A batch read from the source, ready to check and load.
struct Batch {
    number: u64,
    bounds: BatchBounds,
    rows: Rows,
    /// For retries of recorded batches: resolved once this batch loads.
    item_id: Option<i64>,
    /// For retries of a recorded key span read in several batches: the
    /// item is resolved after the run if none of them failed.
    of_item: Option<i64>,
}

/// Runs a table sync task.
pub(crate) async fn run(properties: &TableSyncProperties, context: &RunContext) -> TaskOutcome {
    TaskOutcome::of(run_inner(properties, context).await, &context.cancel)
}

async fn run_inner(
    properties: &TableSyncProperties,
    context: &RunContext,
) -> Result<TaskOutcome, PgError> {
    let source_endpoint = Endpoint::parse(properties.source.expose(), "source", &context.task_id)?;
    let target_endpoint = Endpoint::parse(properties.target.expose(), "target", &context.task_id)?;
    let retries = properties.max_retries;
    let wait = |attempt| crate::task::retry::backoff(properties.retry_backoff, attempt);
    let source = source_endpoint
        .connect_with_retries(retries, wait, &context.cancel)
        .await?;
    let target = target_endpoint
        .connect_with_retries(retries, wait, &context.cancel)
        .await?;
    let layout = Arc::new(
        discover(
            properties,
            source_endpoint.dialect,
            &source_endpoint.name,
            &source,
            &target,
        )
        .await?,
    );
    if source_endpoint.dialect == crate::postgres::Dialect::Postgres {
        layout::warn_without_watermark_index(&source, &layout).await;
    }
    let first_load =
        context.retry_items.is_none() && target_is_empty(&target, &layout.target_table).await?;
    drop(target);

    let incremental = *properties.mode.get_ref() == TableMode::Incremental;
    // Failed batches are read again by their recorded bounds. Bad rows have
    // no bounds of their own: a retry of rows only is a run like any other,
    // which reads them again (they sit after the watermark, which stays
    // before them) and records them again if they are still bad.
    let retrying: Option<Vec<FailedItem>> = context
        .retry_items
        .as_ref()
        .map(|items| {
            items
                .iter()
                .filter(|item| item.kind == ItemKind::Batch)
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|batches| !batches.is_empty());
    // Rows asked for beside batches are not read by this retry.
    let rows_left = match (&retrying, &context.retry_items) {
        (Some(_), Some(items)) => items
            .iter()
            .filter(|item| item.kind == ItemKind::Row)
            .count(),
        _ => 0,
    };
    let scope = stored::scope(&source_endpoint, &layout, &target_endpoint, properties);
    let state_error = |error: crate::state::StateError| PgError::Setup(error.to_string());
    let (watermark, distrusted) = if incremental && retrying.is_none() {
        let stored = context
            .state
            .stored_watermark(&context.task_id)
            .await
            .map_err(state_error)?;
        stored::judge(stored, &scope, first_load)
    } else {
        (None, None)
    };
    if let Some(distrusted) = &distrusted {
        tracing::warn!("{}", distrusted.log_line(&scope));
    }
    let lookback = lookback(properties, &layout)?;
    // Where reading starts: a fresh table whose rows all changed within
    // the look-back window is read whole by every run, which looks like a
    // full reload unless the log says why.
    let reads_from = match (&watermark, lookback) {
        _ if retrying.is_some() => "the failed batches' rows again".to_string(),
        (None, _) if !incremental => "the whole source (full mode)".to_string(),
        (None, _) if let Some(distrusted) = &distrusted => distrusted.reads().to_string(),
        (None, _) => "the whole source (no watermark yet)".to_string(),
        (Some(mark), Some(window)) => format!(
            "rows above {mark} less the {} look-back (watermark_lookback)",
            humantime::format_duration(window)
        ),
        (Some(mark), None) => format!("rows above {mark}"),
    };
    tracing::info!(
        "table sync planned: {} → {}, reading {reads_from}",
        source_endpoint.name,
        target_endpoint.name
    );
    // The run reads the whole source (no watermark yet, or full mode), so
    // what it read must match the source's count.
    let whole_source = retrying.is_none() && watermark.is_none();
    let retrying_batches = retrying.is_some();

    // The total, counted on its own connection while batches flow.
    let counter = if retrying.is_none() {
        Some(count::spawn_count(
            source_endpoint.clone(),
            Arc::clone(&layout),
            watermark.clone(),
            lookback,
            properties,
            context,
        ))
    } else {
        context.update_counters(|counters| {
            counters.batches_total = retrying.as_ref().map(|items| items.len() as u64);
            counters.totals_known = true;
        });
        None
    };

    // A read of the whole source is split into key ranges read at once.
    let ranges = if whole_source && properties.parallel_reads > 1 {
        ranges::plan(
            &source,
            source_endpoint.dialect,
            &layout,
            properties.parallel_reads,
            *properties.batch_size.get_ref(),
        )
        .await?
    } else {
        Vec::new()
    };
    // Ranges are read in key order, not watermark order: the watermark a
    // successful run stores is the greatest one before it started.
    let range_watermark = if ranges.is_empty() || !incremental {
        None
    } else {
        ranges::greatest_watermark(&source, source_endpoint.dialect, &layout).await?
    };
    if !ranges.is_empty() {
        tracing::info!(
            ranges = ranges.len(),
            "reading the source in key ranges at once"
        );
    }
    // Otherwise a first load reads the table in its own order.
    let snapshot = if whole_source && first_load && ranges.is_empty() {
        physical::begin(&source, source_endpoint.dialect, &layout).await?
    } else {
        None
    };
    let range_watermark = match &snapshot {
        Some(snapshot) if incremental => snapshot.greatest_watermark.clone(),
        _ => range_watermark,
    };
    if let Some(snapshot) = &snapshot {
        tracing::info!(
            pages = snapshot.pages,
            "reading the source table in its physical order, in one snapshot"
        );
    }

    let (batches_tx, batches_rx) =
        mpsc::channel::<Result<Batch, PgError>>(READ_AHEAD * ranges.len().max(1));
    let prune_source = source_endpoint.clone();
    let mut reader = Reader {
        endpoint: source_endpoint,
        client: Some(source),
        prepared: std::collections::HashMap::new(),
    };
    let read_layout = Arc::clone(&layout);
    let read_watermark = watermark.clone();
    let lookback_micros = lookback
        .filter(|_| watermark.is_some())
        .map(|lookback| u64::try_from(lookback.as_micros()).unwrap_or(u64::MAX));
    let paging = Paging {
        layout: Arc::clone(&layout),
        batch_size: *properties.batch_size.get_ref(),
        retries: properties.max_retries,
        backoff: properties.retry_backoff,
        cancel: context.cancel.clone(),
        batches: batches_tx,
        numbers: std::sync::atomic::AtomicU64::new(0),
    };
    // Recorded key spans read again in several batches: those read to
    // their end, and those with a batch that failed.
    let spans_read: std::sync::Mutex<std::collections::BTreeSet<i64>> = Default::default();
    let spans_failed: std::sync::Mutex<std::collections::BTreeSet<i64>> = Default::default();
    let spans_read_by_producer = &spans_read;
    // Returns how many rows without a watermark it read.
    let producer = async move {
        let mut null_rows: u64 = 0;
        match retrying {
            Some(items) => {
                for item in items {
                    let bounds: BatchBounds = match serde_json::from_str(&item.key) {
                        Ok(bounds) => bounds,
                        Err(error) => {
                            let _ = paging
                                .batches
                                .send(Err(PgError::Setup(format!(
                                    "failed item #{} has unreadable bounds: {error}",
                                    item.id
                                ))))
                                .await;
                            return null_rows;
                        }
                    };
                    // A batch read by pages is read again by its keys, in
                    // batches of their own.
                    if let Some(within) = bounds.within.clone()
                        && bounds.through.is_empty()
                    {
                        let template = BatchBounds {
                            within: Some(within),
                            ..BatchBounds::default()
                        };
                        match page(&mut reader, template, &paging, Some(item.id)).await {
                            Some(_) => {
                                if let Ok(mut spans) = spans_read_by_producer.lock() {
                                    spans.insert(item.id);
                                }
                                continue;
                            }
                            None => return null_rows,
                        }
                    }
                    let read = read_with_retries(
                        &mut reader,
                        &read_layout,
                        &bounds,
                        None,
                        paging.retries,
                        paging.backoff,
                        &paging.cancel,
                    )
                    .await;
                    let batch = read.map(|rows| Batch {
                        number: paging
                            .numbers
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                            + 1,
                        bounds,
                        rows,
                        item_id: Some(item.id),
                        of_item: None,
                    });
                    if paging.batches.send(batch).await.is_err() {
                        return null_rows;
                    }
                }
            }
            None if !ranges.is_empty() => {
                // Each range on its own source connection, at once.
                let readers = ranges.into_iter().map(|range| {
                    let mut reader = Reader {
                        endpoint: reader.endpoint.clone(),
                        client: None,
                        prepared: std::collections::HashMap::new(),
                    };
                    let template = BatchBounds {
                        range: Some(range),
                        ..BatchBounds::default()
                    };
                    let paging = &paging;
                    async move { page(&mut reader, template, paging, None).await }
                });
                for result in futures::future::join_all(readers).await {
                    null_rows += result.unwrap_or(0);
                }
            }
            None if snapshot.is_some() => {
                if let Some(snapshot) = &snapshot {
                    match physical::read_pages(&mut reader, snapshot, &paging).await {
                        Some(rows) => null_rows += rows,
                        None => return null_rows,
                    }
                }
            }
            None => {
                // Rows with a watermark first, paged by (watermark, key);
                // then those whose watermark is NULL, paged by the key.
                let phases: &[bool] = if read_layout.watermark {
                    &[false, true]
                } else {
                    &[false]
                };
                for &null_watermark in phases {
                    let template = BatchBounds {
                        watermark_above: read_watermark.clone().filter(|_| !null_watermark),
                        lookback_micros: lookback_micros.filter(|_| !null_watermark),
                        null_watermark,
                        ..BatchBounds::default()
                    };
                    match page(&mut reader, template, &paging, None).await {
                        Some(rows) => null_rows += rows,
                        None => return null_rows,
                    }
                }
            }
        }
        null_rows
    };

    // Batches cover disjoint key ranges and commit alone, so several
    // target connections load them at once; the source reads ahead.
    let batches_rx = tokio::sync::Mutex::new(batches_rx);
    let read_error: std::sync::Mutex<Option<PgError>> = std::sync::Mutex::new(None);
    let workers = (0..properties.parallel_loads.max(1)).map(|_| {
        let columns: Vec<(String, String)> = layout
            .columns
            .iter()
            .map(|column| (column.target.clone(), column.target_type.clone()))
            .collect();
        let mut loader = Loader::new(
            target_endpoint.clone(),
            &layout.target_table,
            &columns,
            &layout.primary_key,
        );
        loader.first_load = first_load;
        let (batches_rx, read_error, layout) = (&batches_rx, &read_error, &layout);
        let spans_failed = &spans_failed;
        async move {
            // The highest-numbered batch this worker loaded, with its watermark.
            let mut newest: Option<(u64, Option<String>)> = None;
            loop {
                let next = batches_rx.lock().await.recv().await;
                let Some(batch) = next else { break };
                if context.cancel.is_cancelled() {
                    // Readers waiting to send see the channel closed.
                    batches_rx.lock().await.close();
                    break;
                }
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(error) => {
                        if let Ok(mut slot) = read_error.lock() {
                            *slot = Some(error);
                        }
                        batches_rx.lock().await.close();
                        break;
                    }
                };
                // Batches without a watermark say nothing about it.
                if batch.bounds.watermark_ordered()
                    && newest
                        .as_ref()
                        .is_none_or(|(number, _)| batch.number > *number)
                {
                    newest = Some((
                        batch.number,
                        batch.bounds.through.first().cloned().flatten(),
                    ));
                }
                let of_item = batch.of_item;
                let loaded = load_batch(&mut loader, layout, batch, properties, context).await;
                if !loaded
                    && let Some(id) = of_item
                    && let Ok(mut spans) = spans_failed.lock()
                {
                    spans.insert(id);
                }
            }
            crate::batch::confirm_flushed(
                &mut loader,
                properties.max_retries,
                properties.retry_backoff,
                context,
            )
            .await;
            newest
        }
    });
    let (null_rows, newest) = tokio::join!(producer, futures::future::join_all(workers));
    let newest_watermark = newest
        .into_iter()
        .flatten()
        .max_by_key(|(number, _)| *number)
        .and_then(|(_, watermark)| watermark);
    let newest_watermark = newest_watermark.or(range_watermark).filter(|_| incremental);
    let read_error = read_error.into_inner().ok().flatten();
    if context.cancel.is_cancelled() || read_error.is_some() || !whole_source {
        if let Some(counter) = &counter {
            counter.abort();
        }
    } else if let Some(counter) = counter {
        // Its total is compared with what was read below.
        let _ = counter.await;
    }
    if context.cancel.is_cancelled() {
        return Ok(TaskOutcome::cancelled());
    }
    if read_error.is_none() {
        settle::resolve_spans(context, spans_read, spans_failed).await;
        if !retrying_batches {
            settle::earlier_items(context).await;
        }
    }
    let counters = context.counters();
    if let Some(error) = read_error {
        return Ok(TaskOutcome::failed(format!(
            "stopped after {} batches: {error}",
            counters.batches_done + counters.batches_failed
        )));
    }
    let mut warnings = Vec::new();
    if rows_left > 0 {
        warnings.push(format!(
            "{rows_left} failed row(s) were not retried with the batches and are still pending: `syncdeck run {}` reads them again",
            context.task_id
        ));
    }
    if null_rows > 0
        && let Some(column) = layout.keys.first()
    {
        warnings.push(format!(
            "{null_rows} row(s) have no `{}` (NULL): they are read and compared by key on every run",
            column.name
        ));
    }
    if whole_source
        && !counters.rows_total_estimated
        && let Some(total) = counters.rows_total
        && total != counters.rows_extracted
    {
        warnings.push(format!(
            "read {} row(s) but the source counted {total}: rows changed during the run, or some have a NULL key; compare source and target before relying on this load",
            counters.rows_extracted
        ));
    }
    if let Some(distrusted) = &distrusted {
        warnings.push(distrusted.warning());
    }
    let abandoned = context.abandoned_rows_skipped();
    if abandoned > 0 {
        warnings.push(format!(
            "{abandoned} abandoned row(s) still cannot be loaded and were skipped again; `syncdeck errors {} --all` lists them",
            context.task_id
        ));
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    let status = final_status(
        counters.batches_done,
        counters.batches_failed + counters.rows_skipped,
    );
    if status.is_success() {
        // Only after a run that read the whole source and loaded all of
        // it: a failed batch's rows are missing from the target's view of
        // the source, not from the source.
        if context.retry_items.is_none() && !incremental && properties.deletes_missing() {
            match prune::delete_missing(
                &layout,
                &prune_source,
                &target_endpoint,
                *properties.batch_size.get_ref(),
                context,
            )
            .await
            {
                Ok(deleted) => {
                    tracing::info!(
                        deleted,
                        "deleted target rows whose key the source no longer has"
                    )
                }
                Err(PgError::Cancelled) => return Ok(TaskOutcome::cancelled()),
                Err(error) => {
                    let deleted = context.counters().rows_deleted;
                    return Ok(TaskOutcome::new(
                        RunStatus::Partial,
                        Some(format!(
                            "every batch loaded, but deleting target rows missing at the source stopped after {deleted} deleted: {error}; the next run deletes the rest"
                        )),
                        warning,
                    ));
                }
            }
        }
        if context.retry_items.is_none()
            && incremental
            && let Some(value) = newest_watermark
        {
            stored::save(context, watermark.as_deref(), &value, &scope)
                .await
                .map_err(state_error)?;
        }
        return Ok(TaskOutcome::new(status, None, warning));
    }
    let mut reasons = Vec::new();
    if counters.batches_failed > 0 {
        // By the ids `errors` and `retry --batch` use (the log and the
        // failure lines name batches by their number in the run).
        let items = context.failed_batch_items();
        reasons.push(if items.is_empty() {
            format!("{} batch(es) failed", counters.batches_failed)
        } else {
            format!("{} batch(es) failed ({items})", counters.batches_failed)
        });
    }
    if counters.rows_skipped > crate::batch::BAD_ROWS_KEPT {
        reasons.push(format!(
            "{} row(s) skipped (the first {} are recorded)",
            counters.rows_skipped,
            crate::batch::BAD_ROWS_KEPT
        ));
    } else if counters.rows_skipped > 0 {
        reasons.push(format!("{} row(s) skipped", counters.rows_skipped));
    }
    Ok(TaskOutcome::new(
        status,
        Some(format!(
            "{}{}; see `syncdeck errors {}`",
            reasons.join(", "),
            match (incremental && !retrying_batches, &watermark) {
                (false, _) => "",
                (true, Some(_)) => "; the watermark stays",
                (true, None) =>
                    "; no watermark is stored until they load (or are abandoned), so the next run reads the whole source again",
            },
            context.task_id
        )),
        warning,
    ))
}

/// What every reader of a run shares: how to read a batch, and where
/// batches go.
struct Paging {
    layout: Arc<Layout>,
    batch_size: usize,
    retries: u32,
    backoff: Duration,
    cancel: tokio_util::sync::CancellationToken,
    /// To the loading workers; bounded, so readers stay a few batches ahead.
    batches: mpsc::Sender<Result<Batch, PgError>>,
    /// Numbers batches across readers, in the order they were read.
    numbers: std::sync::atomic::AtomicU64,
}

/// Reads batches from the start of `template`'s rows to their end, each
/// after the last key of the one before, and sends them to the loaders
/// (as part of the recorded item `of_item`, when it reads one again).
/// Returns the rows read without a watermark, or `None` once the run
/// stops (an error sent, cancelled, the loaders gone).
async fn page(
    reader: &mut Reader,
    template: BatchBounds,
    paging: &Paging,
    of_item: Option<i64>,
) -> Option<u64> {
    let layout = &paging.layout;
    let mut null_rows = 0;
    let mut after: Option<Vec<Option<String>>> = None;
    loop {
        if paging.cancel.is_cancelled() {
            return None;
        }
        let bounds = BatchBounds {
            after: after.clone(),
            through: Vec::new(),
            ..template.clone()
        };
        let rows = match read_with_retries(
            reader,
            layout,
            &bounds,
            Some(paging.batch_size),
            paging.retries,
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
        let Some(last) = rows.len().checked_sub(1) else {
            return Some(null_rows);
        };
        if bounds.null_watermark {
            null_rows += rows.len() as u64;
        } else if bounds.range.is_some()
            && layout.watermark
            && let Some(&column) = layout.key_indexes.first()
        {
            null_rows += (0..rows.len())
                .filter(|&row| rows.get(row, column).is_none())
                .count() as u64;
        }
        let through: Vec<Option<String>> = bounds
            .key_indexes(layout)
            .iter()
            .map(|index| rows.get(last, *index).map(str::to_owned))
            .collect();
        let full = rows.len() == paging.batch_size;
        after = Some(through.clone());
        let batch = Batch {
            number: paging
                .numbers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
            bounds: BatchBounds { through, ..bounds },
            rows,
            item_id: None,
            of_item,
        };
        // The loaders stop taking batches once the run is cancelled.
        tokio::select! {
            _ = paging.cancel.cancelled() => return None,
            sent = paging.batches.send(Ok(batch)) => if sent.is_err() {
                return None;
            }
        }
        if !full {
            return Some(null_rows);
        }
    }
}

/// Checks a batch's rows, loads the good ones with retries, and records
/// what could not be loaded.
async fn load_batch(
    loader: &mut Loader,
    layout: &Arc<Layout>,
    batch: Batch,
    properties: &TableSyncProperties,
    context: &RunContext,
) -> bool {
    let extracted = batch.rows.len() as u64;
    let transformed = match transform::batch(layout, batch.rows, context).await {
        Ok(transformed) => transformed,
        Err(error) => {
            context.update_counters(|counters| {
                counters.rows_extracted += extracted;
                counters.batches_failed += 1;
            });
            context
                .record_failure(ItemKind::Batch, &batch.bounds.key(), &error, 1)
                .await;
            return false;
        }
    };
    crate::batch::skip_bad_rows(context, &transformed.bad).await;
    let good = transformed.rows;

    let label = format!("batch {} {}", batch.number, batch.bounds.describe());
    let loaded = crate::batch::load_with_retries(
        loader,
        good,
        properties.max_retries,
        properties.retry_backoff,
        context,
        &label,
        &batch.bounds.key(),
    )
    .await;
    // Counted once the batch is settled, not when it was handed over: the
    // progress (rows done of the total, the ETA) must not reach 100% while
    // the last batches still load or wait out their retries. A batch given
    // up because the run was cancelled is not counted at all, as the
    // progress never showed it.
    if loaded || !context.cancel.is_cancelled() {
        context.update_counters(|counters| {
            counters.rows_extracted += extracted;
            counters.rows_filtered += transformed.filtered;
        });
    }
    if loaded
        && let Some(id) = batch.item_id
        && let Err(error) = context
            .state
            .set_item_status(id, ItemStatus::Resolved)
            .await
    {
        tracing::warn!(%error, "could not mark the batch resolved");
    }
    loaded
}

/// The look-back window of an incremental run, if it applies: the window
/// is a time, so it needs a date or timestamp watermark column.
fn lookback(
    properties: &TableSyncProperties,
    layout: &Layout,
) -> Result<Option<Duration>, PgError> {
    let window = properties.watermark_lookback();
    let Some(column) = layout.keys.first().filter(|_| layout.watermark) else {
        return Ok(None);
    };
    if window.is_zero() {
        return Ok(None);
    }
    if matches!(
        column.type_name.as_str(),
        "timestamptz" | "timestamp" | "date"
    ) {
        return Ok(Some(window));
    }
    if properties.watermark_lookback_text.is_some() {
        return Err(PgError::Setup(format!(
            "watermark_lookback needs a date or timestamp watermark column, but `{}` is {}; remove watermark_lookback",
            column.name, column.type_name
        )));
    }
    tracing::warn!(
        column = %column.name,
        "the watermark column is not a date or timestamp, so no look-back applies: rows committed late with a lower value than the watermark are not read"
    );
    Ok(None)
}
