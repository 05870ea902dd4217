//! Batches of rows loaded into PostgreSQL for a run: the retry rule, the
//! counters, and the failed items a run records (failed batches, bad rows).
//! Table sync and HTTP sync share it.
//!
//! Depends on `postgres` (the loader) and `task` (the run's context).

use std::time::Duration;

use crate::postgres::Loader;
use crate::postgres::loader::FLUSH_POLL;
use crate::postgres::rows::Rows;
use crate::state::ItemKind;
use crate::task::RunContext;
use crate::task::retry::{Next, Retry, backoff};

/// Bad rows (or items) kept per run for inspection; more are only counted.
const BAD_ROWS_KEPT: u64 = 100;
/// How long the end of a run waits at most for the target to confirm that
/// its last commits are on disk. `SYNCDECK_FLUSH_WAIT` (a duration, for
/// tests) shortens it.
const FLUSH_WAIT: Duration = Duration::from_secs(60);

/// Records a row that cannot be loaded under `key` (the primary key's
/// values), while fewer than [`BAD_ROWS_KEPT`] were recorded this run.
/// `skipped_in_batch` counts this batch's bad rows so far, this one too.
pub(crate) async fn record_bad_row(
    context: &RunContext,
    skipped_in_batch: u64,
    key: &str,
    reason: &str,
) {
    if context.counters().rows_skipped + skipped_in_batch <= BAD_ROWS_KEPT {
        context.record_failure(ItemKind::Row, key, reason, 1).await;
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
        let result = tokio::select! {
            _ = context.cancel.cancelled() => return false,
            result = loader.load(&rows, attempt) => result,
        };
        let error = match result {
            Ok(changed) => {
                context.update_counters(|counters| {
                    counters.rows_upserted += changed;
                    counters.rows_unchanged += rows.len() as u64 - changed.min(rows.len() as u64);
                    counters.batches_done += 1;
                });
                loader.committed(rows, label, item_key).await;
                return true;
            }
            Err(error) => error,
        };
        let message = crate::config::redact(&error.to_string()).into_owned();
        loader.forget_closed();
        match retry.failed(&message, true).await {
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
