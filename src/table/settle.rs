//! What a finished run settles in the state store: failed items of
//! earlier runs whose rows it read again and loaded are resolved.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::state::{ItemKind, ItemStatus};
use crate::task::RunContext;

/// Marks recorded key spans resolved when they were read to their end and
/// every batch read from them loaded: their rows are all in the target
/// (a span whose rows are gone from the source reads no batch).
pub(super) async fn resolve_spans(
    context: &RunContext,
    read: Mutex<BTreeSet<i64>>,
    failed: Mutex<BTreeSet<i64>>,
) {
    let (Ok(read), Ok(failed)) = (read.into_inner(), failed.into_inner()) else {
        return;
    };
    for id in read.difference(&failed) {
        if let Err(error) = context
            .state
            .set_item_status(*id, ItemStatus::Resolved)
            .await
        {
            tracing::warn!(%error, "could not mark the batch resolved");
        }
    }
}

/// After a run that read to its end: it read every row again (full mode)
/// or every row since the watermark, which stays before failed batches
/// and bad rows (incremental), so it re-checked what earlier runs
/// recorded.
/// - Bad rows it found bad again now carry its run id (the same item, one
///   more attempt); the others loaded, and are resolved. Unless more rows
///   were bad than a run records (an unrecorded one may still be bad), or
///   one of its batches failed (its rows were neither loaded nor checked).
/// - Failed batches: if none of its own batches failed, their rows are
///   loaded now, and they are resolved.
pub(super) async fn earlier_items(context: &RunContext) {
    let counters = context.counters();
    let batches = counters.batches_failed == 0;
    let rows = batches && counters.rows_skipped <= crate::batch::BAD_ROWS_KEPT;
    if !rows && !batches {
        return;
    }
    context
        .resolve_pending(|item| {
            item.run_id != context.run_id
                && match item.kind {
                    ItemKind::Row => rows,
                    ItemKind::Batch => batches,
                    ItemKind::File => false,
                }
        })
        .await;
}
