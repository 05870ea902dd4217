//! Deciding what a file sync does, as a stream: the source and the
//! destination are listed in the same order (by path, as bytes) and merged
//! as they arrive, so each file is decided as soon as its pair is known
//! and memory holds a folder (or a page of keys) rather than the tree.
//! `plan` collects the stream for previews; a run consumes it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Serialize;

use super::store::{self, Entry, ListItem, Store, StoreError};
use crate::config::location::{LocationSpec, unsafe_relative_path};
use crate::config::pattern::Pattern;
use crate::config::template::{self, TemplateContext};
use crate::config::{Compare, SyncProperties};
use crate::run::event::SkipReason;

/// Heads of object stores at once while deciding.
const RECHECKS_IN_FLIGHT: usize = 16;

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
    pub(crate) source: Entry,
    pub(crate) destination_key: String,
}

/// What a sync would do, file by file (a preview: the whole plan at once).
pub struct FilePlan {
    pub source: String,
    pub destination: String,
    pub files_listed: u64,
    pub files: Vec<PlannedFile>,
    /// Names found at the source that cannot be synced, with the reason.
    pub refused: Vec<(String, String)>,
    /// Set when nothing matched, saying what was looked for where.
    pub nothing_matched: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Location(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// One thing planning found, in the order it was found.
pub(crate) enum Found {
    File(PlannedFile),
    /// A name at the source that cannot be synced (relative), and why.
    Refused(String, String),
    /// A folder marker (`dir/`) at the source, relative: not a file, so a
    /// run settles earlier failures recorded for it.
    FolderMarker(String),
    /// A partial file of a dead earlier run at the destination (its key).
    Leftover(String),
}

/// A plan being made: where it goes, and what it finds as it finds it.
pub(crate) struct PlanStream {
    pub(crate) sides: Sides,
    pub(crate) found: BoxStream<'static, Result<Found, StoreError>>,
}

/// Where a plan goes.
pub(crate) struct Sides {
    pub(crate) source: String,
    pub(crate) destination: String,
    /// The destination folder (key prefix) files are written under.
    pub(crate) destination_folder: String,
    /// The source folder (key prefix) listed; `None` for a single file.
    pub(crate) source_folder: Option<String>,
    pub(crate) same_store: bool,
    pub(crate) source_store: Arc<dyn Store>,
    pub(crate) destination_store: Arc<dyn Store>,
    /// Names listed at the source so far (before the pattern).
    pub(crate) listed: Arc<AtomicU64>,
}

impl Sides {
    /// The warning for a run or plan that matched nothing.
    pub(crate) fn nothing_matched(
        &self,
        properties: &SyncProperties,
        matched: u64,
    ) -> Option<String> {
        let listed = self.listed.load(Ordering::Relaxed);
        (matched == 0).then(|| match &properties.pattern {
            Some(pattern) => format!(
                "0 files matched pattern `{}` in {} ({listed} listed)",
                pattern.get_ref(),
                self.source
            ),
            None => format!("0 files found in {}", self.source),
        })
    }
}

/// One side of a sync, opened.
struct Location {
    store: Arc<dyn Store>,
    /// Key prefix inside the store ("" or ending with `/` for folders).
    prefix: String,
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
    })
}

fn folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

/// A source name, relative to the source folder.
enum Source {
    File(String, Entry),
    Refused(String, String),
    Marker(String),
}

/// Lists both sides and decides what to do with every matched file, as a
/// stream. `only`, when given, restricts it to those relative paths
/// (retries); `on_listed` is called for every name listed at the source.
pub(crate) async fn open(
    properties: &SyncProperties,
    base_dir: &std::path::Path,
    templates: &TemplateContext,
    only: Option<HashSet<String>>,
    on_listed: Arc<dyn Fn() + Send + Sync>,
) -> Result<PlanStream, SyncError> {
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

    let listed = Arc::new(AtomicU64::new(0));
    let destination_folder;
    let source_folder_listed = single.is_none().then(|| folder(&source.prefix));
    let sources: BoxStream<'static, Result<Source, StoreError>>;
    if let Some(entry) = single {
        listed.store(1, Ordering::Relaxed);
        on_listed();
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
        let relative = if into_folder {
            destination_folder = folder(&destination.prefix);
            name
        } else {
            // The destination names the target file itself.
            let (parent, target_name) = destination
                .prefix
                .rsplit_once('/')
                .unwrap_or(("", &destination.prefix));
            destination_folder = folder(parent);
            target_name.to_string()
        };
        sources = futures::stream::iter([Ok(Source::File(relative, entry))]).boxed();
    } else {
        let source_folder = folder(&source.prefix);
        destination_folder = folder(&destination.prefix);
        let counted = Arc::clone(&listed);
        let named_as_folder = source_text.ends_with('/');
        let shown_folder = if source.store.describe() == "local" {
            format!("/{}", source_folder.trim_end_matches('/'))
        } else {
            source_text.clone()
        };
        sources = Arc::clone(&source.store)
            .list_stream(&source_folder, properties.recursive)
            .filter_map(move |item| {
                let source = relative_to(item, &source_folder, &shown_folder, named_as_folder);
                if matches!(source, Some(Ok(Source::File(..) | Source::Refused(..)))) {
                    counted.fetch_add(1, Ordering::Relaxed);
                    on_listed();
                }
                futures::future::ready(source)
            })
            .boxed();
    }

    // Times closer than the coarser store's precision count as equal: S3
    // keeps whole seconds, so a file written in the same second as its
    // upload must not look newer.
    let modify_window = source
        .store
        .time_precision()
        .max(destination.store.time_precision());
    let merge = Merge {
        sources: sources.fuse(),
        destinations: Arc::clone(&destination.store)
            .list_stream(&destination_folder, properties.recursive)
            .fuse(),
        destination_store: Arc::clone(&destination.store),
        destination_folder: destination_folder.clone(),
        pattern,
        only,
        properties: properties.clone(),
        modify_window,
        recheck_times: !source.store.lists_upload_times(),
        ahead: None,
        destinations_done: false,
        last_source: None,
        last_destination: None,
        ready: VecDeque::new(),
        failed: false,
    };
    let destination_store = Arc::clone(&destination.store);
    let source_precision = source.store.time_precision();
    let found = futures::stream::unfold(merge, |mut merge| async move {
        merge.next().await.map(|step| (step, merge))
    })
    .map(move |step| finish(step, Arc::clone(&destination_store), source_precision))
    .buffered(RECHECKS_IN_FLIGHT)
    .boxed();

    let sides = Sides {
        same_store: source.store.identity() == destination.store.identity()
            && source.store.describe() == destination.store.describe(),
        source: source_text,
        destination: destination_text,
        destination_folder,
        source_folder: source_folder_listed,
        source_store: source.store,
        destination_store: destination.store,
        listed,
    };
    Ok(PlanStream { sides, found })
}

/// A listed source item, relative to the source folder; `None` for what
/// planning ignores (the source's own partial files, the folder itself).
fn relative_to(
    item: Result<ListItem, StoreError>,
    source_folder: &str,
    shown_folder: &str,
    named_as_folder: bool,
) -> Option<Result<Source, StoreError>> {
    let item = match item {
        Ok(item) => item,
        Err(error) => return Some(Err(error)),
    };
    let source = match item {
        ListItem::File(entry) => match entry.key.strip_prefix(source_folder) {
            Some(relative) => Source::File(relative.to_string(), entry),
            None => Source::Refused(entry.key, "listed outside the source folder".into()),
        },
        ListItem::Refused(name, reason) => {
            let relative = name
                .trim_start_matches('/')
                .strip_prefix(source_folder)
                .unwrap_or(&name)
                .to_string();
            Source::Refused(relative, reason)
        }
        ListItem::FolderMarker(marker) => {
            let relative = marker.strip_prefix(source_folder).unwrap_or("");
            let relative = relative.trim_end_matches('/');
            if relative.is_empty() {
                return None;
            }
            Source::Marker(relative.to_string())
        }
        ListItem::Leftover(_) => return None,
        // A folder that is not there (a typo, an unmounted disk) is not an
        // empty folder: succeeding with "0 files" would hide it.
        ListItem::MissingRoot => {
            // Written without a trailing `/`, it may have meant a file.
            let message = if named_as_folder {
                format!(
                    "source folder {shown_folder} does not exist; check source_path, or create the folder"
                )
            } else {
                format!(
                    "source {shown_folder} does not exist (no file or folder of that name); check source_path"
                )
            };
            return Some(Err(StoreError::permanent(message)));
        }
    };
    Some(Ok(source))
}

/// A step of the merge: found, or decided pending a look at the time the
/// destination recorded.
enum Step {
    Found(Found),
    Decided { file: PlannedFile, recheck: bool },
}

/// The merge of the two listings.
struct Merge {
    // Fused: the sources are asked again after they end, while the rest
    // of the destination is read.
    sources: futures::stream::Fuse<BoxStream<'static, Result<Source, StoreError>>>,
    destinations: futures::stream::Fuse<store::ListStream>,
    destination_store: Arc<dyn Store>,
    destination_folder: String,
    pattern: Option<Pattern>,
    only: Option<HashSet<String>>,
    properties: SyncProperties,
    modify_window: chrono::TimeDelta,
    /// Whether unchanged-by-time files get a look at the destination's
    /// recorded source time (see [`finish`]).
    recheck_times: bool,
    /// The next destination file not yet passed (relative).
    ahead: Option<(String, Entry)>,
    destinations_done: bool,
    last_source: Option<String>,
    last_destination: Option<String>,
    /// Found while looking for something else (destination leftovers).
    ready: VecDeque<Found>,
    failed: bool,
}

impl Merge {
    fn selected(&self, relative: &str) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|pattern| pattern.is_match(relative))
            && self
                .only
                .as_ref()
                .is_none_or(|only| only.contains(relative))
    }

    async fn next(&mut self) -> Option<Result<Step, StoreError>> {
        loop {
            if let Some(found) = self.ready.pop_front() {
                return Some(Ok(Step::Found(found)));
            }
            if self.failed {
                return None;
            }
            let source = match self.sources.next().await {
                Some(Ok(source)) => source,
                Some(Err(error)) => {
                    self.failed = true;
                    return Some(Err(error));
                }
                // The rest of the destination is read for leftovers.
                None if self.destinations_done => return None,
                None => {
                    if let Err(error) = self.pull_destination().await {
                        self.failed = true;
                        return Some(Err(error));
                    }
                    self.ahead = None;
                    continue;
                }
            };
            match source {
                Source::Marker(marker) => {
                    return Some(Ok(Step::Found(Found::FolderMarker(marker))));
                }
                Source::Refused(relative, reason) => {
                    if self.selected(&relative) {
                        return Some(Ok(Step::Found(Found::Refused(relative, reason))));
                    }
                }
                Source::File(relative, entry) => {
                    if !self.selected(&relative) {
                        continue;
                    }
                    if let Some(reason) = unsafe_relative_path(&relative) {
                        let reason = format!("refused: {reason}");
                        return Some(Ok(Step::Found(Found::Refused(relative, reason))));
                    }
                    let existing = match self.existing(&relative).await {
                        Ok(existing) => existing,
                        Err(error) => {
                            self.failed = true;
                            return Some(Err(error));
                        }
                    };
                    let decision = decide(
                        &self.properties,
                        &entry,
                        existing.as_ref(),
                        self.modify_window,
                    );
                    let recheck = decision == Decision::Skip(SkipReason::Unchanged)
                        && !same_checksum(&entry, existing.as_ref())
                        && self.recheck_times;
                    let file = PlannedFile {
                        size: entry.size,
                        decision,
                        destination_key: format!("{}{relative}", self.destination_folder),
                        relative,
                        source: entry,
                    };
                    return Some(Ok(Step::Decided { file, recheck }));
                }
            }
        }
    }

    /// The destination's file at `relative`, found by walking the
    /// destination listing up to it.
    async fn existing(&mut self, relative: &str) -> Result<Option<Entry>, StoreError> {
        if self
            .last_source
            .as_deref()
            .is_some_and(|last| relative <= last)
        {
            // Out of order (a store that does not list in key order): the
            // merge may have passed it, so the destination is asked.
            tracing::debug!(path = relative, "source listed out of order; looking it up");
            let key = format!("{}{relative}", self.destination_folder);
            return self.destination_store.head(&key).await;
        }
        self.last_source = Some(relative.to_string());
        loop {
            let Some((ahead, _)) = &self.ahead else {
                if self.destinations_done {
                    return Ok(None);
                }
                self.pull_destination().await?;
                continue;
            };
            match ahead.as_str().cmp(relative) {
                std::cmp::Ordering::Less => self.ahead = None,
                std::cmp::Ordering::Equal => return Ok(self.ahead.take().map(|(_, entry)| entry)),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
    }

    /// Reads the next destination item: a file goes to `ahead`, a leftover
    /// to `ready`.
    async fn pull_destination(&mut self) -> Result<(), StoreError> {
        match self.destinations.next().await {
            None => self.destinations_done = true,
            Some(Err(error)) => return Err(error),
            Some(Ok(ListItem::Leftover(key))) => self.ready.push_back(Found::Leftover(key)),
            Some(Ok(ListItem::File(entry))) => {
                let Some(relative) = entry.key.strip_prefix(self.destination_folder.as_str())
                else {
                    return Ok(());
                };
                if self
                    .last_destination
                    .as_deref()
                    .is_some_and(|last| relative <= last)
                {
                    return Ok(());
                }
                self.last_destination = Some(relative.to_string());
                self.ahead = Some((relative.to_string(), entry));
            }
            Some(Ok(ListItem::Refused(..) | ListItem::FolderMarker(_) | ListItem::MissingRoot)) => {
            }
        }
        Ok(())
    }
}

/// Finishes a step. Files judged unchanged because the destination is
/// newer get a second look where the destination kept the source's time
/// when it was written: an upload's own time says nothing about which
/// version of the source it holds (a file rewritten during its upload is
/// older than the upload).
fn finish(
    step: Result<Step, StoreError>,
    destination: Arc<dyn Store>,
    precision: chrono::TimeDelta,
) -> BoxFuture<'static, Result<Found, StoreError>> {
    let (mut file, recheck) = match step {
        Err(error) => return Box::pin(futures::future::ready(Err(error))),
        Ok(Step::Found(found)) => return Box::pin(futures::future::ready(Ok(found))),
        Ok(Step::Decided { file, recheck }) => (file, recheck),
    };
    if !recheck {
        return Box::pin(futures::future::ready(Ok(Found::File(file))));
    }
    Box::pin(async move {
        if let Some(recorded) = destination.recorded_modified(&file.destination_key).await? {
            let same = file
                .source
                .modified
                .is_some_and(|modified| (modified - recorded).abs() <= precision);
            if !same {
                file.decision = Decision::CopyChanged;
            }
        }
        Ok(Found::File(file))
    })
}

fn same_checksum(source: &Entry, existing: Option<&Entry>) -> bool {
    matches!((&source.checksum, existing.and_then(|e| e.checksum.as_ref())), (Some(a), Some(b)) if a == b)
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

/// The whole plan at once, for previews (`syncdeck plan`).
pub async fn plan(
    properties: &SyncProperties,
    base_dir: &std::path::Path,
    templates: &TemplateContext,
    only: Option<&HashSet<String>>,
) -> Result<FilePlan, SyncError> {
    let PlanStream { sides, mut found } = open(
        properties,
        base_dir,
        templates,
        only.cloned(),
        Arc::new(|| {}),
    )
    .await?;
    let mut files = Vec::new();
    let mut refused = Vec::new();
    while let Some(item) = found.next().await {
        match item? {
            Found::File(file) => files.push(file),
            Found::Refused(relative, reason) => refused.push((relative, reason)),
            Found::FolderMarker(_) | Found::Leftover(_) => {}
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    let nothing_matched = sides.nothing_matched(properties, (files.len() + refused.len()) as u64);
    Ok(FilePlan {
        files_listed: sides.listed.load(Ordering::Relaxed),
        source: sides.source,
        destination: sides.destination,
        files,
        refused,
        nothing_matched,
    })
}
