//! Batches of rows loaded into PostgreSQL for a run: the retry rule, the
//! counters, and the failed items a run records (failed batches, bad rows).
//! Table sync and HTTP sync share it.
//!
//! Depends on `postgres` (the loader) and `task` (the run's context).

use std::time::Duration;

use crate::postgres::loader::FLUSH_POLL;
use crate::postgres::rows::Rows;
use crate::postgres::{Loader, PgError};
use crate::state::ItemKind;
use crate::task::RunContext;
use crate::task::retry::{Next, Retry, backoff};

/// Bad rows (or items) kept per run for inspection; more are only counted.
pub(crate) const BAD_ROWS_KEPT: u64 = 100;
/// Rows of one batch the target may reject before the batch counts as
/// failed as a whole: more mean the cause is the target or the mapping
/// (a NOT NULL column nothing fills), not a few rows.
const REJECTED_ROWS_PER_BATCH: u64 = 10;
/// How long the end of a run waits at most for the target to confirm that
/// its last commits are on disk. `SYNCDECK_FLUSH_WAIT` (a duration, for
/// tests) shortens it.
const FLUSH_WAIT: Duration = Duration::from_secs(60);

/// Skips rows that cannot be loaded, each `(key, reason)` (the key names
/// the row by its primary key): counts them (`rows_skipped`) and records
/// the first [`BAD_ROWS_KEPT`] of the run. A row an operator abandoned is
/// only counted apart, so it neither fails the run nor holds the watermark.
pub(crate) async fn skip_bad_rows(context: &RunContext, bad: &[(String, String)]) {
    for (key, reason) in bad {
        if context.skips_abandoned_row(key).await {
            continue;
        }
        context.update_counters(|counters| counters.rows_skipped += 1);
        if context.counters().rows_skipped <= BAD_ROWS_KEPT {
            context.record_failure(ItemKind::Row, key, reason, 1).await;
        }
    }
}

/// Loads a batch, retrying with doubling backoff; counts it done, or after
/// the last attempt records it as a failed batch under `item_key` (a
/// retried batch updates its record). Returns whether it landed; false
/// also when the run was cancelled.
pub(crate) async fn load_with_retries(
    loader: &mut Loader,
    rows: Rows,
    max_retries: u32,
    base: Duration,
    context: &RunContext,
    label: &str,
    item_key: &str,
) -> bool {
    let mut retry = Retry::new(context, "batch", label, max_retries, base);
    loop {
        let attempt = retry.begin();
        let Some(result) = load_watched(loader, &rows, attempt, context, label).await else {
            return false;
        };
        let error = match result {
            Ok(changed) => {
                if attempt > 1 {
                    tracing::info!(item = label, attempt, "batch loaded on attempt {attempt}");
                    context.emit(crate::run::event::EngineEvent::ItemRecovered {
                        run_id: context.run_id,
                        task_id: context.task_id.clone(),
                        path: label.to_string(),
                        attempt,
                    });
                }
                count_loaded(context, &rows, changed);
                context.update_counters(|counters| counters.batches_done += 1);
                loader.committed(rows, label, item_key).await;
                return true;
            }
            Err(PgError::Rejected(message)) => {
                let message = crate::config::redact(&message).into_owned();
                return load_in_halves(loader, rows, message, context, label, item_key).await;
            }
            Err(error) => error,
        };
        let message = crate::config::redact(&error.to_string()).into_owned();
        loader.forget_closed();
        // The schema or permissions refuse the statement: no wait helps.
        let transient = !matches!(error, PgError::Setup(_));
        match retry.failed(&message, transient).await {
            Next::Again => {}
            Next::Cancelled => return false,
            Next::GiveUp { attempts } => {
                context.update_counters(|counters| counters.batches_failed += 1);
                context
                    .record_failure(ItemKind::Batch, item_key, &message, attempts)
                    .await;
                return false;
            }
        }
    }
}

/// One attempt at loading `rows`, watched while slow (a lock it waits for
/// goes into the run's counters, where the progress shows it). `None`
/// when the run was cancelled meanwhile: the server is then asked to stop
/// the statement.
async fn load_watched(
    loader: &mut Loader,
    rows: &Rows,
    attempt: u32,
    context: &RunContext,
    label: &str,
) -> Option<Result<u64, PgError>> {
    let counters = context.counters.clone();
    let on_lock =
        std::sync::Arc::new(move |lock| counters.update(|counters| counters.lock_wait = lock));
    let watch = loader.watch(label, on_lock);
    let result = tokio::select! {
        _ = context.cancel.cancelled() => None,
        result = loader.load(rows, attempt) => Some(result),
    };
    drop(watch);
    if result.is_none() {
        loader.cancel_statement().await;
    }
    result
}

fn count_loaded(context: &RunContext, rows: &Rows, changed: u64) {
    context.update_counters(|counters| {
        counters.rows_upserted += changed;
        counters.rows_unchanged += rows.len() as u64 - changed.min(rows.len() as u64);
    });
}

/// Loads a batch the target rejected (`first_error`: a constraint or a
/// value) in halves, and halves of those, so its good rows land and each
/// rejected row is recorded as a bad row by its key, as pgloader does.
/// Nothing is retried after a wait: the same rows fail the same way. More
/// than [`REJECTED_ROWS_PER_BATCH`] rejected rows (or a tenth of a larger
/// batch, abandoned rows aside), or any other error,
/// records the batch as failed (the halves already loaded stay: loads
/// upsert, so retrying the batch is safe). Returns whether it landed.
async fn load_in_halves(
    loader: &mut Loader,
    rows: Rows,
    first_error: String,
    context: &RunContext,
    label: &str,
    item_key: &str,
) -> bool {
    tracing::warn!(
        item = label,
        error = %first_error,
        "the target rejected rows of this batch; loading it in halves to find them"
    );
    // A tenth of a large batch, at least REJECTED_ROWS_PER_BATCH.
    let total = rows.len();
    let limit = REJECTED_ROWS_PER_BATCH.max(total as u64 / 10);
    // Parts still to load, the next on top; `true` when the part is known
    // to be rejected already.
    let mut parts = vec![(rows, true, first_error)];
    let mut counted = 0;
    // Rejected rows, by key, with the server's reason: recorded once the
    // batch is settled (a failed batch is recorded as a whole instead).
    let mut rejected: Vec<(String, String)> = Vec::new();
    let mut failure = None;
    while let Some((part, known_rejected, error)) = parts.pop() {
        let error = if known_rejected {
            error
        } else {
            // Not a first attempt: an upsert, never a plain COPY.
            let Some(result) = load_watched(loader, &part, 2, context, label).await else {
                return false;
            };
            match result {
                Ok(changed) => {
                    count_loaded(context, &part, changed);
                    loader.committed(part, label, item_key).await;
                    continue;
                }
                Err(PgError::Rejected(message)) => crate::config::redact(&message).into_owned(),
                Err(other) => {
                    loader.forget_closed();
                    failure = Some(crate::config::redact(&other.to_string()).into_owned());
                    break;
                }
            }
        };
        if part.len() > 1 {
            let (first, second) = part.halves();
            parts.push((second, false, String::new()));
            parts.push((first, false, String::new()));
            continue;
        }
        let key = loader.row_key(&part, 0);
        // Rows an operator abandoned do not count: they are known.
        if !context.is_abandoned_row(&key).await {
            counted += 1;
        }
        if counted > limit {
            let first: Vec<&str> = rejected
                .iter()
                .map(|(key, _)| key.as_str())
                .take(5)
                .collect();
            failure = Some(format!(
                "the target rejected more than {limit} of its {total} rows (first: {} …), so the cause may be the target or the column mapping rather than a few rows; fix that, or lower batch_size to load the rows around them: {error}",
                first.join("; ")
            ));
            break;
        }
        rejected.push((key, error));
    }
    match failure {
        None => {
            for (key, error) in &rejected {
                // Abandoned rows are counted in the run's warning instead.
                if context.is_abandoned_row(key).await {
                    continue;
                }
                tracing::warn!(item = label, row = %key, %error, "the target rejected a row");
                context.emit_item_failed(&format!("row {key}"), error, 1, 1, None);
            }
            skip_bad_rows(context, &rejected).await;
            context.update_counters(|counters| counters.batches_done += 1);
            true
        }
        Some(message) => {
            tracing::warn!(item = label, error = %message, "batch failed");
            context.emit_item_failed(label, &message, 1, 1, None);
            context.update_counters(|counters| counters.batches_failed += 1);
            context
                .record_failure(ItemKind::Batch, item_key, &message, 1)
                .await;
            false
        }
    }
}

/// Waits until every batch `loader` committed is on the target's disk,
/// loading them again if the connection is lost meanwhile. Batches that
/// cannot be confirmed are recorded as failed (they can be retried like
/// any other). Returns whether all were confirmed.
pub(crate) async fn confirm_flushed(
    loader: &mut Loader,
    max_retries: u32,
    base: Duration,
    context: &RunContext,
) -> bool {
    let started = tokio::time::Instant::now();
    let wait_at_most = crate::config::duration_from_env("SYNCDECK_FLUSH_WAIT", FLUSH_WAIT);
    let mut attempt = 0;
    loop {
        let result = tokio::select! {
            _ = context.cancel.cancelled() => return false,
            result = loader.confirm_step() => result,
        };
        let wait = match result {
            Ok(true) => return true,
            Ok(false) if started.elapsed() < wait_at_most => FLUSH_POLL,
            Ok(false) => {
                let error = format!(
                    "the target did not confirm writing this batch to disk within {}",
                    humantime::format_duration(wait_at_most)
                );
                give_up(loader, &error, 1, context).await;
                return false;
            }
            Err(error) => {
                attempt += 1;
                let message = crate::config::redact(&error.to_string()).into_owned();
                tracing::warn!(attempt, error = %message, "confirming the last batches failed");
                loader.forget_closed();
                if attempt > max_retries {
                    give_up(loader, &message, attempt, context).await;
                    return false;
                }
                backoff(base, attempt)
            }
        };
        tokio::select! {
            _ = context.cancel.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Records every unconfirmed batch as failed.
async fn give_up(loader: &mut Loader, error: &str, attempts: u32, context: &RunContext) {
    for (label, item_key) in loader.take_unconfirmed() {
        tracing::warn!(batch = %label, error, "batch not confirmed on disk");
        context.update_counters(|counters| {
            counters.batches_done = counters.batches_done.saturating_sub(1);
            counters.batches_failed += 1;
        });
        context
            .record_failure(ItemKind::Batch, &item_key, error, attempts)
            .await;
    }
}
