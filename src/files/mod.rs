//! File sync (`type = "sync"`): list the source, select by pattern, decide
//! per file (copy, skip: exists, skip: unchanged), then copy with bounded
//! concurrency, retries and cooperative cancellation.
//!
//! Depends on `config` (properties, locations, patterns), `task` (the run
//! context, retries, final status), `run` (events) and `state` (failed
//! items). `body` plugs it into the engine's contract; the stores live in
//! `store`, `local`, `ftp` and `sftp` (over `ssh`).

mod body;
pub(crate) mod ftp;
pub(crate) mod local;
mod object;
mod s3_api;
pub(crate) mod sftp;
mod ssh;
pub mod store;
mod throttle;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

pub(crate) use body::FileSyncBody;
pub use store::memory_store;

use crate::config::location::{LocationSpec, unsafe_relative_path};
use crate::config::pattern::Pattern;
use crate::config::template::{self, TemplateContext};
use crate::config::{Compare, SyncProperties};
use crate::run::event::{CopyMethod, EngineEvent, SkipReason};
use crate::state::ItemKind;
use crate::task::retry::{Next, Retry};
use crate::task::{RunContext, TaskOutcome, final_status};
use store::{Entry, Store, StoreError};
use throttle::Throttle;

/// First wait before retrying a failed file; doubles each attempt.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// One side of a sync, opened.
struct Location {
    store: Arc<dyn Store>,
    /// Key prefix inside the store ("" or ending with `/` for folders).
    prefix: String,
    /// The path as configured (templates rendered), for messages.
    text: String,
}

/// What a run would do with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not at the destination.
    CopyMissing,
    /// At the destination but different.
    CopyChanged,
    /// `compare = "always"`.
    CopyForced,
    Skip(SkipReason),
}

impl Decision {
    pub fn is_copy(self) -> bool {
        !matches!(self, Self::Skip(_))
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::CopyMissing => "copy (missing)",
            Self::CopyChanged => "copy (changed)",
            Self::CopyForced => "copy (compare = always)",
            Self::Skip(SkipReason::Exists) => "skip: exists",
            Self::Skip(SkipReason::Unchanged) => "skip: unchanged",
        }
    }
}

/// A planned file.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// Path relative to the source folder (the file name for single files).
    pub relative: String,
    pub size: u64,
    pub decision: Decision,
    source: Entry,
    destination_key: String,
}

/// What a sync would do, file by file.
pub struct FilePlan {
    pub source: String,
    pub destination: String,
    pub files_listed: u64,
    pub files: Vec<PlannedFile>,
    /// Names found at the source that cannot be synced, with the reason.
    pub refused: Vec<(String, String)>,
    /// Set when nothing matched, saying what was looked for where.
    pub nothing_matched: Option<String>,
    /// Partial files of dead earlier runs at the destination (keys).
    leftovers: Vec<String>,
    /// Folder markers (`dir/`) at the source, relative: not files, so a run
    /// settles earlier failures recorded for them.
    folder_markers: Vec<String>,
    /// The destination folder (key prefix) files are written under.
    destination_folder: String,
    same_store: bool,
    source_store: Arc<dyn Store>,
    destination_store: Arc<dyn Store>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Location(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

fn open_location(
    text: &str,
    options: &crate::config::StoreOptions,
    base_dir: &std::path::Path,
) -> Result<Location, SyncError> {
    let spec = LocationSpec::parse(text).map_err(SyncError::Location)?;
    let store = store::open(&spec, options, base_dir)?;
    Ok(Location {
        store,
        prefix: spec.key_prefix(base_dir),
        text: text.to_string(),
    })
}

fn folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

/// Lists both sides and decides what to do with every matched file.
/// `only`, when given, restricts the plan to those relative paths (retries).
pub async fn plan(
    properties: &SyncProperties,
    base_dir: &std::path::Path,
    templates: &TemplateContext,
    only: Option<&HashSet<String>>,
) -> Result<FilePlan, SyncError> {
    let source_text = template::render(properties.source_path.get_ref(), templates);
    let destination_text = template::render(properties.destination_path.get_ref(), templates);
    let source = open_location(
        &source_text,
        &properties.sync_config.source_config,
        base_dir,
    )?;
    let destination = open_location(
        &destination_text,
        &properties.sync_config.destination_config,
        base_dir,
    )?;
    let pattern = properties
        .pattern
        .as_ref()
        .map(|pattern| Pattern::new(pattern.get_ref()))
        .transpose()
        .map_err(SyncError::Location)?;

    // A source without a trailing slash that names an object is a single file.
    let single = if source.prefix.ends_with('/') || source.prefix.is_empty() {
        None
    } else {
        source.store.head(&source.prefix).await?
    };

    let mut refused = Vec::new();
    let mut folder_markers = Vec::new();
    let mut candidates: Vec<(String, Entry)> = Vec::new();
    let files_listed;
    let destination_folder;
    if let Some(entry) = single {
        files_listed = 1;
        let name = entry
            .key
            .rsplit('/')
            .next()
            .unwrap_or(&entry.key)
            .to_string();
        let into_folder = destination.prefix.ends_with('/')
            || destination.prefix.is_empty()
            || (destination.store.describe() == "local"
                && std::path::Path::new(&format!("/{}", destination.prefix)).is_dir());
        if into_folder {
            destination_folder = folder(&destination.prefix);
            candidates.push((name, entry));
        } else {
            // The destination names the target file itself.
            let (parent, target_name) = destination
                .prefix
                .rsplit_once('/')
                .unwrap_or(("", &destination.prefix));
            destination_folder = folder(parent);
            candidates.push((target_name.to_string(), entry));
        }
    } else {
        let source_folder = folder(&source.prefix);
        destination_folder = folder(&destination.prefix);
        let listing = source
            .store
            .list(&source_folder, properties.recursive)
            .await?;
        files_listed = (listing.entries.len() + listing.refused.len()) as u64;
        for (name, reason) in listing.refused {
            let relative = name
                .trim_start_matches('/')
                .strip_prefix(source_folder.as_str())
                .unwrap_or(&name)
                .to_string();
            refused.push((relative, reason));
        }
        for marker in listing.folder_markers {
            let relative = marker.strip_prefix(source_folder.as_str()).unwrap_or("");
            let relative = relative.trim_end_matches('/');
            if !relative.is_empty() {
                folder_markers.push(relative.to_string());
            }
        }
        for entry in listing.entries {
            let Some(relative) = entry.key.strip_prefix(source_folder.as_str()) else {
                refused.push((entry.key.clone(), "listed outside the source folder".into()));
                continue;
            };
            candidates.push((relative.to_string(), entry));
        }
    }

    candidates.retain(|(relative, _)| {
        pattern
            .as_ref()
            .is_none_or(|pattern| pattern.is_match(relative))
    });
    refused.retain(|(relative, _)| {
        pattern
            .as_ref()
            .is_none_or(|pattern| pattern.is_match(relative))
    });
    if let Some(only) = only {
        candidates.retain(|(relative, _)| only.contains(relative));
        refused.retain(|(relative, _)| only.contains(relative));
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0));

    let destination_listing = destination
        .store
        .list(
            &destination_folder,
            properties.recursive || candidates.iter().any(|(r, _)| r.contains('/')),
        )
        .await?;
    let existing: HashMap<&str, &Entry> = destination_listing
        .entries
        .iter()
        .filter_map(|entry| {
            entry
                .key
                .strip_prefix(destination_folder.as_str())
                .map(|relative| (relative, entry))
        })
        .collect();

    // Times closer than the coarser store's precision count as equal: S3
    // keeps whole seconds, so a file written in the same second as its
    // upload must not look newer.
    let modify_window = source
        .store
        .time_precision()
        .max(destination.store.time_precision());
    let mut files = Vec::with_capacity(candidates.len());
    let mut unchanged_by_time = Vec::new();
    for (relative, entry) in candidates {
        if let Some(reason) = unsafe_relative_path(&relative) {
            refused.push((relative, format!("refused: {reason}")));
            continue;
        }
        let existing = existing.get(relative.as_str()).copied();
        let decision = decide(properties, &entry, existing, modify_window);
        if decision == Decision::Skip(SkipReason::Unchanged)
            && !same_checksum(&entry, existing)
            && !source.store.lists_upload_times()
        {
            unchanged_by_time.push(files.len());
        }
        files.push(PlannedFile {
            size: entry.size,
            decision,
            destination_key: format!("{destination_folder}{relative}"),
            relative,
            source: entry,
        });
    }

    recheck_recorded_times(
        &mut files,
        &unchanged_by_time,
        &destination.store,
        source.store.time_precision(),
    )
    .await?;

    let nothing_matched =
        (files.is_empty() && refused.is_empty()).then(|| match &properties.pattern {
            Some(pattern) => format!(
                "0 files matched pattern `{}` in {source_text} ({files_listed} listed)",
                pattern.get_ref()
            ),
            None => format!("0 files found in {source_text}"),
        });
    Ok(FilePlan {
        same_store: source.store.identity() == destination.store.identity()
            && source.store.describe() == destination.store.describe(),
        source: source.text,
        destination: destination.text,
        files_listed,
        files,
        refused,
        nothing_matched,
        leftovers: destination_listing.leftovers,
        folder_markers,
        destination_folder,
        source_store: source.store,
        destination_store: destination.store,
    })
}

fn same_checksum(source: &Entry, existing: Option<&Entry>) -> bool {
    matches!((&source.checksum, existing.and_then(|e| e.checksum.as_ref())), (Some(a), Some(b)) if a == b)
}

/// Heads of object stores at once while planning.
const RECHECKS_IN_FLIGHT: usize = 16;

/// Files judged unchanged because the destination is newer get a second
/// look where the destination kept the source's time when it was written:
/// an upload's own time says nothing about which version of the source it
/// holds (a file rewritten during its upload is older than the upload).
async fn recheck_recorded_times(
    files: &mut [PlannedFile],
    indexes: &[usize],
    destination: &Arc<dyn Store>,
    precision: chrono::TimeDelta,
) -> Result<(), StoreError> {
    let keys: Vec<(usize, String)> = indexes
        .iter()
        .map(|&index| (index, files[index].destination_key.clone()))
        .collect();
    let lookups = keys.into_iter().map(|(index, key)| {
        let destination = Arc::clone(destination);
        async move { (index, destination.recorded_modified(&key).await) }
    });
    let recorded: Vec<_> = futures::stream::iter(lookups)
        .buffer_unordered(RECHECKS_IN_FLIGHT)
        .collect()
        .await;
    for (index, recorded) in recorded {
        let Some(recorded) = recorded? else { continue };
        let file = &mut files[index];
        let same = file
            .source
            .modified
            .is_some_and(|modified| (modified - recorded).abs() <= precision);
        if !same {
            file.decision = Decision::CopyChanged;
        }
    }
    Ok(())
}

fn decide(
    properties: &SyncProperties,
    source: &Entry,
    existing: Option<&Entry>,
    modify_window: chrono::TimeDelta,
) -> Decision {
    let Some(existing) = existing else {
        return Decision::CopyMissing;
    };
    if !properties.overwrite {
        return Decision::Skip(SkipReason::Exists);
    }
    if properties.compare == Compare::Always {
        return Decision::CopyForced;
    }
    let not_newer = matches!(
        (source.modified, existing.modified),
        (Some(source), Some(existing)) if source <= existing + modify_window
    );
    if source.size == existing.size && (not_newer || same_checksum(source, Some(existing))) {
        Decision::Skip(SkipReason::Unchanged)
    } else {
        Decision::CopyChanged
    }
}

/// Runs a file sync task.
pub(crate) async fn run(properties: &SyncProperties, context: &RunContext) -> TaskOutcome {
    let retry_keys: Option<HashSet<String>> = context
        .retry_items
        .as_ref()
        .map(|items| items.iter().map(|item| item.key.clone()).collect());
    let plan = tokio::select! {
        _ = context.cancel.cancelled() => return TaskOutcome::cancelled(),
        plan = plan(properties, &context.base_dir, &context.templates, retry_keys.as_ref()) => plan,
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(error) => return TaskOutcome::failed(error.to_string()),
    };
    tracing::info!(source = %plan.source, destination = %plan.destination, listed = plan.files_listed, matched = plan.files.len(), "planned");
    for leftover in &plan.leftovers {
        match plan.destination_store.remove(leftover).await {
            Ok(()) => tracing::info!(
                key = %leftover,
                "removed a partial file left by a run whose process died"
            ),
            Err(error) => tracing::warn!(
                key = %leftover,
                %error,
                "could not remove a partial file left by an earlier run"
            ),
        }
    }

    abort_stale_uploads(&plan).await;

    context.update_counters(|counters| {
        counters.files_listed = plan.files_listed;
        counters.files_matched = (plan.files.len() + plan.refused.len()) as u64;
        counters.files_planned = counters.files_matched;
        counters.totals_known = true;
        for file in &plan.files {
            match file.decision {
                Decision::Skip(SkipReason::Exists) => counters.files_skipped_exists += 1,
                Decision::Skip(SkipReason::Unchanged) => counters.files_skipped_unchanged += 1,
                _ => {
                    counters.files_to_copy += 1;
                    counters.bytes_total += file.size;
                }
            }
        }
    });

    let mut settled: HashSet<String> = HashSet::new();
    for file in plan.files.iter().filter(|file| !file.decision.is_copy()) {
        if let Decision::Skip(reason) = file.decision {
            context.emit(EngineEvent::ItemSkipped {
                run_id: context.run_id,
                task_id: context.task_id.clone(),
                path: file.relative.clone(),
                reason,
            });
        }
        settled.insert(file.relative.clone());
    }
    for marker in &plan.folder_markers {
        tracing::info!(path = %marker, "skipped a folder marker (a zero-byte key ending in `/`)");
        settled.insert(marker.clone());
    }
    for (relative, reason) in &plan.refused {
        tracing::warn!(path = %relative, %reason, "file refused");
        context.update_counters(|counters| counters.files_failed += 1);
        context.emit_item_failed(relative, reason, 1, 1, None);
        context
            .record_failure(ItemKind::File, relative, reason, 1)
            .await;
    }

    let throttle = properties
        .bwlimit
        .as_ref()
        .and_then(|limit| crate::config::parse_rate(limit.get_ref()).ok())
        .map(|rate| Arc::new(Throttle::new(rate)));
    let transfer = Transfer {
        plan: &plan,
        properties,
        context,
        throttle,
    };
    let mut copies = plan.files.iter().filter(|file| file.decision.is_copy());
    let mut in_flight = futures::stream::FuturesUnordered::new();
    loop {
        while in_flight.len() < properties.transfers.max(1) {
            match copies.next() {
                Some(file) => in_flight.push(transfer.copy_with_retries(file)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some((relative, true)) => {
                settled.insert(relative);
            }
            Some((_, false)) => {}
            None => break,
        }
    }

    if context.cancel.is_cancelled() {
        return TaskOutcome::cancelled();
    }
    context
        .resolve_pending(|item| item.kind == ItemKind::File && settled.contains(&item.key))
        .await;

    let counters = context.counters();
    let warning = plan.nothing_matched.clone();
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

/// Aborts multipart uploads a dead run of this task left open for the
/// keys this run writes: the task's lease means no live run of it is
/// writing them, and their parts are billed until aborted.
async fn abort_stale_uploads(plan: &FilePlan) {
    let keys: HashSet<String> = plan
        .files
        .iter()
        .map(|file| file.destination_key.clone())
        .collect();
    if keys.is_empty() {
        return;
    }
    match plan
        .destination_store
        .abort_stale_uploads(&plan.destination_folder, &keys)
        .await
    {
        Ok(0) => {}
        Ok(aborted) => tracing::info!(
            destination = %plan.destination,
            aborted,
            "aborted multipart uploads left open by an earlier run"
        ),
        Err(error) => tracing::warn!(
            %error,
            "could not abort multipart uploads left open by an earlier run; they stay until the bucket's lifecycle rule removes them"
        ),
    }
}

/// Largest piece a transfer counts and throttles at once, so progress and
/// `bwlimit` stay smooth when a store hands over big chunks.
const PROGRESS_PIECE: usize = 64 * 1024;

/// Splits a chunk into zero-copy pieces of at most [`PROGRESS_PIECE`] bytes.
fn split_chunk(chunk: Result<bytes::Bytes, StoreError>) -> Vec<Result<bytes::Bytes, StoreError>> {
    match chunk {
        Ok(bytes) if bytes.len() > PROGRESS_PIECE => (0..bytes.len())
            .step_by(PROGRESS_PIECE)
            .map(|start| Ok(bytes.slice(start..(start + PROGRESS_PIECE).min(bytes.len()))))
            .collect(),
        other => vec![other],
    }
}

/// What one run's copies share.
struct Transfer<'a> {
    plan: &'a FilePlan,
    properties: &'a SyncProperties,
    context: &'a RunContext,
    throttle: Option<Arc<Throttle>>,
}

impl Transfer<'_> {
    /// Copies one file, retrying transient failures; returns whether it landed.
    async fn copy_with_retries(&self, file: &PlannedFile) -> (String, bool) {
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
            let result = self.copy_once(file).await;
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
        if self.plan.same_store && self.throttle.is_none() {
            self.plan
                .destination_store
                .copy(&file.source, &file.destination_key, cancel)
                .await?;
            self.context.update_counters(|counters| {
                counters.bytes_done += file.size;
                counters.files_server_side += 1;
            });
            return Ok(CopyMethod::ServerSide);
        }
        let source_store = Arc::clone(&self.plan.source_store);
        // The source as it is now (a retry after a change reads the new
        // version), to tell afterwards whether it changed while read.
        let before = source_store.head(&file.source.key).await?.ok_or_else(|| {
            StoreError::permanent(format!(
                "{}: the source file is gone since it was listed",
                file.relative
            ))
        })?;
        let data = source_store.get(&file.source.key).await?;
        let context = self.context.clone_for_progress();
        let throttle = self.throttle.clone();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sent_in_stream = Arc::clone(&sent);
        let counted = data
            .flat_map(|chunk| futures::stream::iter(split_chunk(chunk)))
            .then(move |chunk| {
                let context = context.clone();
                let throttle = throttle.clone();
                let sent = Arc::clone(&sent_in_stream);
                async move {
                    if let Ok(bytes) = &chunk {
                        let length = bytes.len() as u64;
                        if let Some(throttle) = &throttle {
                            throttle.pass(length).await;
                        }
                        sent.fetch_add(length, std::sync::atomic::Ordering::Relaxed);
                        context.update(|counters| counters.bytes_done += length);
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
            .plan
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
