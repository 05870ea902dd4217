//! What a task body gets while it runs: ids, the cancel token, counters,
//! the event channel and the state store.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::template::TemplateContext;
use crate::run::event::EngineEvent;
use crate::run::{FileInFlight, RunCounters, RunId};
use crate::state::{FailedItem, ItemKind, ItemStatus, NewFailedItem, StateStore};

/// A run's live counters and the files it is copying, shared between its
/// transfers and the progress ticker that publishes snapshots. One lock
/// for both, so a snapshot's bytes done and its files in flight agree.
#[derive(Clone, Default)]
pub(crate) struct SharedCounters(Arc<Mutex<LiveProgress>>);

#[derive(Default)]
struct LiveProgress {
    counters: RunCounters,
    /// Keyed by path: a file is copied by one transfer at a time.
    in_flight: BTreeMap<String, FileInFlight>,
}

impl SharedCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, LiveProgress> {
        match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut RunCounters)) {
        change(&mut self.lock().counters);
    }

    pub(crate) fn snapshot(&self) -> RunCounters {
        self.lock().counters.clone()
    }

    /// The counters and the files in flight, taken together.
    pub(crate) fn snapshot_with_files(&self) -> (RunCounters, Vec<FileInFlight>) {
        let live = self.lock();
        (
            live.counters.clone(),
            live.in_flight.values().cloned().collect(),
        )
    }

    /// Shows `path` as in flight until the returned guard is dropped
    /// (the copy landed, failed or was cancelled).
    pub(crate) fn start_file(&self, path: &str, bytes_total: u64) -> FileProgress {
        self.lock().in_flight.insert(
            path.to_string(),
            FileInFlight {
                path: path.to_string(),
                bytes_done: 0,
                bytes_total,
            },
        );
        FileProgress {
            counters: self.clone(),
            path: path.to_string(),
        }
    }
}

/// A file in flight: counts its bytes as they stream, and stops showing
/// it when dropped.
pub(crate) struct FileProgress {
    counters: SharedCounters,
    path: String,
}

impl FileProgress {
    /// Counts `bytes` more of this file (and of the run).
    pub(crate) fn add(&self, bytes: u64) {
        let mut live = self.counters.lock();
        live.counters.bytes_done += bytes;
        if let Some(file) = live.in_flight.get_mut(&self.path) {
            file.bytes_done += bytes;
        }
    }
}

impl Drop for FileProgress {
    fn drop(&mut self) {
        self.counters.lock().in_flight.remove(&self.path);
    }
}

/// Why a run was stopped when it was not the operator (a lease lost to
/// another worker). Set before the run's cancel token fires, so the record
/// of a run that ends `cancelled` says what really stopped it.
#[derive(Clone, Default)]
pub(crate) struct StopReason(Arc<OnceLock<String>>);

impl StopReason {
    /// Keeps the first reason: later ones are consequences of it.
    pub(crate) fn set(&self, reason: String) {
        let _ = self.0.set(reason);
    }

    pub(crate) fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Bad rows an operator abandoned (`syncdeck abandon`): a run skips them
/// without recording them again or holding the watermark for them.
#[derive(Clone, Default)]
pub(crate) struct AbandonedRows {
    /// Their keys, read from the state store when the run meets its first
    /// bad row.
    keys: Arc<tokio::sync::OnceCell<std::collections::HashSet<String>>>,
    /// How many this run skipped.
    skipped: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Clone)]
pub struct RunContext {
    pub(crate) run_id: RunId,
    pub(crate) task_id: String,
    /// Fires when the run is cancelled; task bodies stop at the next safe point.
    pub(crate) cancel: CancellationToken,
    pub(crate) events: broadcast::Sender<EngineEvent>,
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) templates: TemplateContext,
    pub(crate) base_dir: PathBuf,
    /// For retry runs: the failed items to redo.
    pub(crate) retry_items: Option<Vec<FailedItem>>,
    pub(crate) counters: SharedCounters,
    /// Set when something other than the operator stopped the run.
    pub(crate) stop_reason: StopReason,
    pub(crate) abandoned_rows: AbandonedRows,
    /// Ids of the failed batches this run recorded, for its summary.
    pub(crate) failed_batches: Arc<std::sync::Mutex<Vec<i64>>>,
}

impl RunContext {
    pub(crate) fn emit(&self, event: EngineEvent) {
        // No subscriber is fine: the CLI without progress has none.
        let _ = self.events.send(event);
    }

    /// Tells watchers that attempt `attempt` of `max_attempts` at `path`
    /// (a file, page or batch) failed, and when the next one starts.
    pub(crate) fn emit_item_failed(
        &self,
        path: &str,
        error: &str,
        attempt: u32,
        max_attempts: u32,
        retry_in: Option<std::time::Duration>,
    ) {
        self.emit(EngineEvent::ItemFailed {
            run_id: self.run_id,
            task_id: self.task_id.clone(),
            path: path.to_string(),
            error: error.to_string(),
            attempt,
            max_attempts,
            retry_in,
        });
    }

    /// Publishes the counters now, rather than at the next progress tick:
    /// for moments a watcher should see at once (totals became known).
    pub(crate) fn publish_progress(&self) {
        let (counters, in_flight) = self.counters.snapshot_with_files();
        self.emit(EngineEvent::RunProgress {
            run_id: self.run_id,
            task_id: self.task_id.clone(),
            counters: Box::new(counters),
            in_flight,
            at: chrono::Utc::now(),
        });
    }

    pub(crate) fn update_counters(&self, change: impl FnOnce(&mut RunCounters)) {
        self.counters.update(change);
    }

    pub(crate) fn counters(&self) -> RunCounters {
        self.counters.snapshot()
    }

    /// Records a failed file, batch or row of this run; a pending record of
    /// the same item is updated instead of duplicated.
    pub(crate) async fn record_failure(
        &self,
        kind: ItemKind,
        key: &str,
        error: &str,
        attempts: u32,
    ) {
        let item = NewFailedItem {
            run_id: self.run_id,
            task_id: self.task_id.clone(),
            kind,
            key: key.to_string(),
            error: error.to_string(),
            attempts,
        };
        match self.state.record_failed_item(&item).await {
            // The log names a batch by its number and bounds; `errors` and
            // `retry` by this id: say which is which.
            Ok(id) if kind == ItemKind::Batch => {
                tracing::info!(
                    "the failed batch is recorded as item #{id}: `syncdeck retry {} --batch {id}` loads it again once its cause is fixed",
                    self.task_id
                );
                if let Ok(mut ids) = self.failed_batches.lock()
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, item = key, "could not record a failure"),
        }
    }

    /// The failed batches of this run by their item ids, as its summary
    /// names them: `item #2`, `items #2, #5, #9 …`.
    pub(crate) fn failed_batch_items(&self) -> String {
        let ids = match self.failed_batches.lock() {
            Ok(ids) => ids.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let shown: Vec<String> = ids.iter().take(5).map(|id| format!("#{id}")).collect();
        let more = if ids.len() > 5 { " …" } else { "" };
        match ids.len() {
            0 => String::new(),
            1 => format!("item {}", shown.join(", ")),
            _ => format!("items {}{more}", shown.join(", ")),
        }
    }

    /// Whether the bad row `key` is one an operator abandoned; counts it.
    pub(crate) async fn skips_abandoned_row(&self, key: &str) -> bool {
        let abandoned = self.is_abandoned_row(key).await;
        if abandoned {
            self.abandoned_rows
                .skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        abandoned
    }

    /// Whether the bad row `key` is one an operator abandoned.
    pub(crate) async fn is_abandoned_row(&self, key: &str) -> bool {
        let keys = self
            .abandoned_rows
            .keys
            .get_or_init(|| async {
                match self.state.failed_items(Some(&self.task_id), false).await {
                    Ok(items) => items
                        .into_iter()
                        .filter(|item| {
                            item.kind == ItemKind::Row && item.status == ItemStatus::Abandoned
                        })
                        .map(|item| item.key)
                        .collect(),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read abandoned rows; recording every bad row");
                        std::collections::HashSet::new()
                    }
                }
            })
            .await;
        keys.contains(key)
    }

    /// Abandoned bad rows this run skipped.
    pub(crate) fn abandoned_rows_skipped(&self) -> u64 {
        self.abandoned_rows
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks this task's pending failed items that `settled` picks as resolved.
    pub(crate) async fn resolve_pending(&self, settled: impl Fn(&FailedItem) -> bool) {
        self.resolve_pending_where(settled, false).await;
    }

    /// As [`RunContext::resolve_pending`], for items failed by runs of this
    /// run's execution date only: with `{{ execution_date }}` in a path,
    /// the same key on another date is another file, which this run did
    /// not settle.
    pub(crate) async fn resolve_pending_of_this_date(&self, settled: impl Fn(&FailedItem) -> bool) {
        self.resolve_pending_where(settled, true).await;
    }

    async fn resolve_pending_where(&self, settled: impl Fn(&FailedItem) -> bool, this_date: bool) {
        let items = match self.state.failed_items(Some(&self.task_id), true).await {
            Ok(items) => items,
            Err(error) => {
                tracing::error!(%error, "cannot read pending failed items to resolve them");
                return;
            }
        };
        // Whether each run that failed an item was for this run's date.
        let mut of_this_date: HashMap<RunId, bool> = HashMap::new();
        for item in items.into_iter().filter(|item| settled(item)) {
            if this_date && !self.same_date(item.run_id, &mut of_this_date).await {
                continue;
            }
            if let Err(error) = self
                .state
                .set_item_status(item.id, ItemStatus::Resolved)
                .await
            {
                tracing::warn!(%error, item = item.id, "could not mark a failed item resolved");
            }
        }
    }

    /// Whether `run_id` ran for this run's execution date (a run recorded
    /// before dates were kept counts as the same); read once per run.
    async fn same_date(&self, run_id: RunId, known: &mut HashMap<RunId, bool>) -> bool {
        if let Some(same) = known.get(&run_id) {
            return *same;
        }
        let same = match self.state.execution_date(run_id).await {
            Ok(Some(date)) => date.format("%Y-%m-%d").to_string() == self.templates.execution_date,
            Ok(None) => true,
            Err(error) => {
                tracing::warn!(%error, run_id, "cannot read the date of the run that failed an item; it stays pending");
                false
            }
        };
        known.insert(run_id, same);
        same
    }

    /// A cheap handle for code that outlives a borrow of the context.
    pub(crate) fn clone_for_progress(&self) -> SharedCounters {
        self.counters.clone()
    }
}
