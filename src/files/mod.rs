//! File sync (`type = "sync"`): list the source and the destination in the
//! same order, decide per file as pairs arrive (copy, skip: exists, skip:
//! unchanged), and copy with bounded concurrency, retries and cooperative
//! cancellation while the listing goes on.
//!
//! Depends on `config` (properties, locations, patterns), `task` (the run
//! context, retries, final status), `run` (events) and `state` (failed
//! items). `plan` decides, `body` plugs it into the engine's contract; the
//! stores live in `store`, `local`, `object`, `ftp` and `sftp` (over `ssh`).

mod body;
mod cloud;
pub(crate) mod ftp;
mod gone;
pub(crate) mod local;
mod object;
mod plan;
mod remote_walk;
mod s3_api;
pub(crate) mod sftp;
mod sorted;
mod ssh;
pub mod store;
mod throttle;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

pub(crate) use body::FileSyncBody;
pub use plan::{Decision, FilePlan, PlannedFile, SyncError, plan};
pub use store::memory_store;

use crate::config::SyncProperties;
use crate::run::event::{CopyMethod, EngineEvent, SkipReason};
use crate::state::ItemKind;
use crate::task::retry::{Next, Retry};
use crate::task::{RunContext, TaskOutcome, final_status};
use plan::{Found, PlanStream, Sides};
use store::{Entry, OpenUpload, Store, StoreError};
use throttle::Throttle;

/// First wait before retrying a failed file; doubles each attempt.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// How many decided files may wait for a transfer slot while the listing
/// goes on.
const LIST_AHEAD: usize = 512;

/// Runs a file sync task: copies start while the listing goes on, and at
/// most `transfers` files are queued or copying at once, so memory does
/// not grow with the number of files.
pub(crate) async fn run(properties: &SyncProperties, context: &RunContext) -> TaskOutcome {
    let retry_keys: Option<HashSet<String>> = context
        .retry_items
        .as_ref()
        .map(|items| items.iter().map(|item| item.key.clone()).collect());
    let counters = context.clone_for_progress();
    let on_listed = Arc::new(move || counters.update(|counters| counters.files_listed += 1));
    let opened = tokio::select! {
        _ = context.cancel.cancelled() => return TaskOutcome::cancelled(),
        opened = plan::open(properties, &context.base_dir, &context.templates, retry_keys, on_listed) => opened,
    };
    let PlanStream {
        sides: plan,
        mut found,
    } = match opened {
        Ok(plan) => plan,
        Err(error) => return TaskOutcome::failed(error.to_string()),
    };
    tracing::info!(source = %plan.source, destination = %plan.destination, "listing and syncing");

    let mut run = FileRun {
        context,
        stale_uploads: stale_uploads(&plan).await,
        pending: pending_keys(context).await,
        settled: HashSet::new(),
    };
    let throttle = properties
        .bwlimit
        .as_ref()
        .and_then(|limit| crate::config::parse_rate(limit.get_ref()).ok())
        .map(|rate| Arc::new(Throttle::new(rate)));
    let transfer = Transfer {
        same_store: plan.same_store,
        source_store: Arc::clone(&plan.source_store),
        destination_store: Arc::clone(&plan.destination_store),
        properties,
        context,
        throttle,
    };
    let limit = properties.transfers.max(1);
    let mut in_flight = futures::stream::FuturesUnordered::new();
    // Files decided but not started yet: the listing runs up to this many
    // ahead of the copies, so a small tree's totals (and the ETA) are known
    // at once, while memory stays bounded on a huge one.
    let mut decided = VecDeque::new();
    let mut listing = true;
    let mut listing_error = None;
    loop {
        while in_flight.len() < limit
            && !context.cancel.is_cancelled()
            && let Some(file) = decided.pop_front()
        {
            in_flight.push(transfer.copy_with_retries(file));
        }
        tokio::select! {
            biased;
            Some((relative, landed)) = in_flight.next(), if !in_flight.is_empty() => {
                if landed {
                    run.settle(relative);
                }
            }
            _ = context.cancel.cancelled(), if listing => listing = false,
            found = found.next(), if listing && decided.len() < LIST_AHEAD => match found {
                Some(Ok(found)) => {
                    if let Some(file) = run.take(found, &plan).await {
                        decided.push_back(file);
                    }
                }
                Some(Err(error)) => {
                    listing = false;
                    listing_error = Some(error);
                }
                None => {
                    listing = false;
                    context.update_counters(|counters| counters.totals_known = true);
                    context.publish_progress();
                }
            },
            else => break,
        }
    }

    if context.cancel.is_cancelled() {
        return TaskOutcome::cancelled();
    }
    if let Some(error) = listing_error {
        // Midway, say what the stop means; before anything was listed (no
        // connection, no folder) the error says it all.
        if context.counters().files_listed == 0 {
            return TaskOutcome::failed(error.to_string());
        }
        return TaskOutcome::failed(format!(
            "{error} (the listing stopped there: files after that point were not synced; a rerun after the cause is fixed syncs them)"
        ));
    }
    let settled = std::mem::take(&mut run.settled);
    context
        .resolve_pending_of_this_date(|item| {
            item.kind == ItemKind::File && settled.contains(&item.key)
        })
        .await;

    let gone = gone::settle_gone(properties, &plan, context).await;

    let counters = context.counters();
    tracing::info!(source = %plan.source, destination = %plan.destination, listed = counters.files_listed, matched = counters.files_matched, "listed");
    // A retry of files all deleted since matches nothing, as it should.
    let nothing_matched = plan
        .nothing_matched(properties, counters.files_matched)
        .filter(|_| gone.is_empty());
    let warning = match (nothing_matched, gone::warning(&gone)) {
        (Some(nothing), Some(gone)) => Some(format!("{nothing}; {gone}")),
        (nothing, gone) => nothing.or(gone),
    };
    if let Some(warning) = &warning {
        tracing::warn!("{warning}");
    }
    let status = final_status(
        counters.files_synced + counters.files_skipped(),
        counters.files_failed,
    );
    if status.is_success() {
        return TaskOutcome::new(status, None, warning);
    }
    let error = format!(
        "{} of {} files failed; see `syncdeck errors {}`",
        counters.files_failed, counters.files_matched, context.task_id
    );
    TaskOutcome::new(status, Some(error), warning)
}

/// What a run keeps while files stream through it.
struct FileRun<'a> {
    context: &'a RunContext,
    /// Multipart uploads a dead run left open, by destination key.
    stale_uploads: HashMap<String, Vec<OpenUpload>>,
    /// Keys of this task's pending failed files, to settle the ones this
    /// run syncs or skips; only those are remembered.
    pending: HashSet<String>,
    settled: HashSet<String>,
}

impl FileRun<'_> {
    fn settle(&mut self, relative: String) {
        if self.pending.contains(&relative) {
            self.settled.insert(relative);
        }
    }

    /// Counts and reports what planning found; a file to copy is handed back.
    async fn take(&mut self, found: Found, plan: &Sides) -> Option<PlannedFile> {
        let context = self.context;
        match found {
            Found::File(file) => {
                self.abort_stale_upload(&file.destination_key, plan).await;
                context.update_counters(|counters| {
                    counters.files_matched += 1;
                    counters.files_planned += 1;
                    match file.decision {
                        Decision::Skip(SkipReason::Exists) => counters.files_skipped_exists += 1,
                        Decision::Skip(SkipReason::Unchanged) => {
                            counters.files_skipped_unchanged += 1
                        }
                        _ => {
                            counters.files_to_copy += 1;
                            counters.bytes_total += file.size;
                        }
                    }
                });
                if let Decision::Skip(reason) = file.decision {
                    context.emit(EngineEvent::ItemSkipped {
                        run_id: context.run_id,
                        task_id: context.task_id.clone(),
                        path: file.relative.clone(),
                        reason,
                    });
                    self.settle(file.relative);
                    return None;
                }
                Some(file)
            }
            Found::Refused(relative, reason) => {
                tracing::warn!(path = %relative, %reason, "file refused");
                context.update_counters(|counters| {
                    counters.files_matched += 1;
                    counters.files_planned += 1;
                    counters.files_failed += 1;
                });
                context.emit_item_failed(&relative, &reason, 1, 1, None);
                context
                    .record_failure(ItemKind::File, &relative, &reason, 1)
                    .await;
                None
            }
            Found::FolderMarker(marker) => {
                tracing::info!(path = %marker, "skipped a folder marker (a zero-byte key ending in `/`)");
                self.settle(marker);
                None
            }
            Found::Leftover(key) => {
                match plan.destination_store.remove(&key).await {
                    Ok(()) => tracing::info!(
                        key = %key,
                        "removed a partial file left by a run whose process died"
                    ),
                    Err(error) => tracing::warn!(
                        key = %key,
                        %error,
                        "could not remove a partial file left by an earlier run"
                    ),
                }
                None
            }
        }
    }

    /// Aborts multipart uploads a dead run of this task left open for a key
    /// this run writes: the task's lease means no live run of it is writing
    /// them, and their parts are billed until aborted.
    async fn abort_stale_upload(&mut self, key: &str, plan: &Sides) {
        let Some(uploads) = self.stale_uploads.remove(key) else {
            return;
        };
        for upload in uploads {
            match plan.destination_store.abort_upload(&upload).await {
                Ok(()) => tracing::info!(
                    destination = %plan.destination,
                    key,
                    "aborted a multipart upload left open by an earlier run"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    "could not abort a multipart upload left open by an earlier run; it stays until the bucket's lifecycle rule removes it"
                ),
            }
        }
    }
}

/// Multipart uploads open at the destination before this run wrote
/// anything: any open now was left by a dead run.
async fn stale_uploads(plan: &Sides) -> HashMap<String, Vec<OpenUpload>> {
    let mut stale: HashMap<String, Vec<OpenUpload>> = HashMap::new();
    match plan
        .destination_store
        .open_uploads(&plan.destination_folder)
        .await
    {
        Ok(uploads) => {
            for upload in uploads {
                stale.entry(upload.key.clone()).or_default().push(upload);
            }
        }
        Err(error) => tracing::warn!(
            %error,
            "could not list multipart uploads left open by an earlier run; they stay until the bucket's lifecycle rule removes them"
        ),
    }
    stale
}

/// Keys of this task's pending failed files.
async fn pending_keys(context: &RunContext) -> HashSet<String> {
    match context
        .state
        .failed_items(Some(&context.task_id), true)
        .await
    {
        Ok(items) => items
            .into_iter()
            .filter(|item| item.kind == ItemKind::File)
            .map(|item| item.key)
            .collect(),
        Err(error) => {
            tracing::error!(%error, "cannot read pending failed items to resolve them");
            HashSet::new()
        }
    }
}

/// Largest piece a transfer counts and throttles at once, so progress and
/// `bwlimit` stay smooth when a store hands over big chunks.
const PROGRESS_PIECE: usize = 64 * 1024;

/// Splits a chunk into zero-copy pieces of at most `piece` bytes.
fn split_chunk(
    chunk: Result<bytes::Bytes, StoreError>,
    piece: usize,
) -> Vec<Result<bytes::Bytes, StoreError>> {
    match chunk {
        Ok(bytes) if bytes.len() > piece => (0..bytes.len())
            .step_by(piece)
            .map(|start| Ok(bytes.slice(start..(start + piece).min(bytes.len()))))
            .collect(),
        other => vec![other],
    }
}

/// What one run's copies share.
struct Transfer<'a> {
    /// Whether the destination can copy from the source without the bytes
    /// passing through syncdeck.
    same_store: bool,
    source_store: Arc<dyn Store>,
    destination_store: Arc<dyn Store>,
    properties: &'a SyncProperties,
    context: &'a RunContext,
    throttle: Option<Arc<Throttle>>,
}

impl Transfer<'_> {
    /// Copies one file, retrying transient failures; returns whether it landed.
    async fn copy_with_retries(&self, file: PlannedFile) -> (String, bool) {
        let context = self.context;
        let mut retry = Retry::new(
            context,
            "file",
            &file.relative,
            self.properties.max_retries,
            RETRY_BACKOFF,
        );
        loop {
            if context.cancel.is_cancelled() {
                return (file.relative.clone(), false);
            }
            retry.begin();
            context.update_counters(|counters| counters.files_active += 1);
            let result = self.copy_once(&file).await;
            context.update_counters(|counters| counters.files_active -= 1);
            let error = match result {
                Ok(method) => {
                    context.update_counters(|counters| counters.files_synced += 1);
                    context.emit(EngineEvent::ItemSynced {
                        run_id: context.run_id,
                        task_id: context.task_id.clone(),
                        path: file.relative.clone(),
                        bytes: file.size,
                        method,
                    });
                    return (file.relative.clone(), true);
                }
                Err(error) => error,
            };
            let message = crate::config::redact(&error.message).into_owned();
            match retry.failed(&message, error.transient).await {
                Next::Again => {}
                Next::Cancelled => return (file.relative.clone(), false),
                Next::GiveUp { attempts } => {
                    context.update_counters(|counters| counters.files_failed += 1);
                    context
                        .record_failure(ItemKind::File, &file.relative, &message, attempts)
                        .await;
                    return (file.relative.clone(), false);
                }
            }
        }
    }

    async fn copy_once(&self, file: &PlannedFile) -> Result<CopyMethod, StoreError> {
        let cancel = &self.context.cancel;
        let in_flight = Arc::new(
            self.context
                .clone_for_progress()
                .start_file(&file.relative, file.size),
        );
        if self.same_store && self.throttle.is_none() {
            self.destination_store
                .copy(&file.source, &file.destination_key, cancel)
                .await?;
            self.context.update_counters(|counters| {
                counters.bytes_done += file.size;
                counters.files_server_side += 1;
            });
            return Ok(CopyMethod::ServerSide);
        }
        let source_store = Arc::clone(&self.source_store);
        // The source as it is now (a retry after a change reads the new
        // version), to tell afterwards whether it changed while read.
        let before = source_store.head(&file.source.key).await?.ok_or_else(|| {
            StoreError::permanent(format!(
                "{}: the source file is gone since it was listed",
                file.relative
            ))
        })?;
        let data = source_store.get(&file.source.key).await?;
        let progress = Arc::clone(&in_flight);
        let throttle = self.throttle.clone();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sent_in_stream = Arc::clone(&sent);
        let piece = self
            .throttle
            .as_ref()
            .map_or(PROGRESS_PIECE, |throttle| throttle.piece());
        let counted = data
            .flat_map(move |chunk| futures::stream::iter(split_chunk(chunk, piece)))
            .then(move |chunk| {
                let progress = Arc::clone(&progress);
                let throttle = throttle.clone();
                let sent = Arc::clone(&sent_in_stream);
                async move {
                    if let Ok(bytes) = &chunk {
                        let length = bytes.len() as u64;
                        if let Some(throttle) = &throttle {
                            throttle.pass(length).await;
                        }
                        sent.fetch_add(length, std::sync::atomic::Ordering::Relaxed);
                        progress.add(length);
                    }
                    chunk
                }
            })
            .boxed();
        let checked = counted
            .chain(unchanged_after_read(
                source_store,
                before.clone(),
                Arc::clone(&sent),
                file.relative.clone(),
            ))
            .boxed();
        let result = self
            .destination_store
            .put(
                &file.destination_key,
                before.size,
                before.modified,
                checked,
                cancel,
            )
            .await;
        if result.is_err() {
            // Bytes of a failed attempt do not count as done.
            let undone = sent.load(std::sync::atomic::Ordering::Relaxed);
            self.context.update_counters(|counters| {
                counters.bytes_done = counters.bytes_done.saturating_sub(undone)
            });
        }
        result.map(|()| CopyMethod::Streamed)
    }
}

/// Ends a source's byte stream: once everything was read, checks the
/// source still has the size and time it had before, and that that many
/// bytes came. A file rewritten while it was read would otherwise land as
/// a mix of old and new bytes; the error comes before the destination
/// commits, and is transient so the file is read again.
fn unchanged_after_read(
    source: Arc<dyn Store>,
    before: Entry,
    sent: Arc<std::sync::atomic::AtomicU64>,
    relative: String,
) -> futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>> {
    futures::stream::once(async move {
        let read = sent.load(std::sync::atomic::Ordering::Relaxed);
        let after = source.head(&before.key).await?;
        let changed = match &after {
            None => Some("it was removed".to_string()),
            Some(after) if after.size != before.size || after.modified != before.modified => {
                Some(format!(
                    "size {} -> {} bytes, modified {} -> {}",
                    before.size,
                    after.size,
                    describe_time(before.modified),
                    describe_time(after.modified)
                ))
            }
            Some(_) if read != before.size => Some(format!(
                "{read} bytes read of {} expected",
                before.size
            )),
            Some(_) => None,
        };
        match changed {
            Some(change) => Err(StoreError::transient(format!(
                "{relative}: the source changed while it was read ({change}); nothing was written, it is read again"
            ))),
            None => Ok(None),
        }
    })
    .filter_map(|checked: Result<Option<bytes::Bytes>, StoreError>| async move {
        checked.transpose()
    })
    .boxed()
}

fn describe_time(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map_or_else(|| "unknown".into(), |time| time.to_rfc3339())
}
