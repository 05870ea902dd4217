//! The local filesystem store. Keys are absolute paths without the leading
//! `/`. syncdeck lists and writes local files itself rather than through
//! object_store's local backend, which hides names such as `data#1` (its
//! upload staging names): every name here is synced or reported.
//!
//! Writes go to a hidden partial file beside the target and are renamed
//! into place when complete, so a cancelled or crashed copy never leaves a
//! truncated file under the real name.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::sorted::{Sorted, Sorter, Spill};
use super::store::{ByteStream, Entry, ListItem, ListStream, Store, StoreError};

/// Partial files start with this; listings leave them out.
pub(crate) const PARTIAL_PREFIX: &str = ".syncdeck-partial-";
/// Read buffer for local files.
const READ_CHUNK: usize = 1024 * 1024;

/// Files up to this size are copied on the run's own thread, while such
/// copies stay fast: handing each to a blocking thread and back cost more
/// than the copy itself (two thread wake-ups a file; a tree of 4 KiB files
/// took 1.6 times as long as `cp -a`).
const IN_PLACE_MAX: u64 = 64 * 1024;
/// An in-place copy slower than this (a network or sleeping disk) sends
/// the rest of the run's copies to blocking threads, so the run's thread
/// is held up once at most.
const IN_PLACE_SLOW: std::time::Duration = std::time::Duration::from_millis(2);

/// Local files: one per run (`store::open`).
pub(crate) struct LocalStore {
    /// Small copies are still made in place (see [`IN_PLACE_MAX`]).
    in_place: std::sync::atomic::AtomicBool,
}

impl LocalStore {
    pub(crate) fn new() -> Self {
        Self {
            in_place: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

fn absolute(key: &str) -> PathBuf {
    PathBuf::from(format!("/{}", key.trim_end_matches('/')))
}

fn io_error(path: &Path, error: std::io::Error) -> StoreError {
    use std::io::ErrorKind;
    let transient = matches!(
        error.kind(),
        ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock
    );
    StoreError {
        message: format!("{}: {error}", path.display()),
        transient,
    }
}

/// What went wrong with an I/O call, in words (without the `os error`
/// number, which says nothing more to the operator).
fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::StorageFull => {
            "no space left on device; free space there or choose another destination".into()
        }
        ErrorKind::QuotaExceeded => "disk quota exceeded".into(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::FileTooLarge => "the file is too large for that file system".into(),
        ErrorKind::IsADirectory => "a folder of that name is in the way".into(),
        ErrorKind::NotADirectory => "a part of the path is a file, not a folder".into(),
        _ => error.to_string(),
    }
}

/// A failure to write `target`, named as the destination file the
/// operator knows (never the hidden partial file, nor the source).
fn write_error(target: &Path, error: std::io::Error) -> StoreError {
    StoreError {
        message: format!("cannot write {}: {}", target.display(), describe_io(&error)),
        ..io_error(target, error)
    }
}

/// Whether an error of a copy between two files can only be the writing
/// side's (the reading side cannot run out of space or be read-only).
fn is_write_side(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::StorageFull
            | ErrorKind::QuotaExceeded
            | ErrorKind::ReadOnlyFilesystem
            | ErrorKind::FileTooLarge
    )
}

/// Creates the folder `target` goes into.
fn create_parent(target: &Path) -> Result<(), StoreError> {
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|error| {
        if parent.exists() && !parent.is_dir() {
            StoreError::permanent(format!(
                "cannot write {}: {} is a file, not a folder",
                target.display(),
                parent.display()
            ))
        } else {
            StoreError {
                message: format!(
                    "cannot write {}: cannot create folder {}: {}",
                    target.display(),
                    parent.display(),
                    describe_io(&error)
                ),
                ..io_error(parent, error)
            }
        }
    })
}

fn entry_from(key: String, metadata: &std::fs::Metadata) -> Entry {
    Entry {
        key,
        size: metadata.len(),
        modified: metadata.modified().ok().map(DateTime::<Utc>::from),
        checksum: None,
    }
}

/// The longest file name most filesystems accept, in bytes.
const NAME_MAX: usize = 255;

fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = format!("{}-{:x}", own_pid(), rand_suffix());
    target.with_file_name(partial_name(&unique, &name))
}

/// `PARTIAL_PREFIX`, the writer's pid and a random part, then the target's
/// name; a name too long to fit within `NAME_MAX` bytes is replaced by its
/// hash (the pid and random part already make the name unique, the target's
/// name is only there for people looking at the folder).
fn partial_name(unique: &str, name: &str) -> String {
    let full = format!("{PARTIAL_PREFIX}{unique}-{name}");
    if full.len() <= NAME_MAX {
        return full;
    }
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    format!("{PARTIAL_PREFIX}{unique}-{:016x}", hasher.finish())
}

/// This process's id, asked of the kernel once (every partial file's
/// name holds it).
fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Creates `partial` for writing `target`, making `target`'s folder first
/// when it is not there. The folder is made only then, not before every
/// file: most files go into a folder an earlier file made, and asking
/// costs two system calls a file (a tenth of a small file's copy on tmpfs).
fn create_partial(partial: &Path, target: &Path) -> Result<std::fs::File, StoreError> {
    match std::fs::File::create(partial) {
        Ok(file) => Ok(file),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            create_parent(target)?;
            std::fs::File::create(partial).map_err(|error| write_error(target, error))
        }
        Err(error) => Err(write_error(target, error)),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (COUNTER.fetch_add(1, Ordering::Relaxed) << 32)
}

/// A partial file is left over when the process that wrote it (its pid is
/// in the name) no longer runs here and it has not been written for a
/// minute: a writer on another machine sharing the folder keeps its file
/// fresh, and a mistaken removal would only fail that copy, to be retried.
fn is_leftover(name: &str, metadata: Option<&std::fs::Metadata>) -> bool {
    let Some(pid) = writer_pid(name) else {
        return false;
    };
    if pid == own_pid() || Path::new(&format!("/proc/{pid}")).exists() {
        return false;
    }
    metadata
        .and_then(|metadata| metadata.modified().ok())
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age >= LEFTOVER_AGE)
}

/// The pid in a partial file's name.
fn writer_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PARTIAL_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse().ok())
}

/// How long a dead writer's partial file must be untouched before a run
/// removes it.
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes a partial file, ignoring one that is already gone or that could
/// never have been made (a file stands where its folder should be).
async fn discard(path: &Path) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && !matches!(
            error.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        )
    {
        tracing::warn!(path = %path.display(), %error, "could not remove a partial file");
    }
}

fn set_modified(file: &std::fs::File, modified: Option<DateTime<Utc>>) {
    if let Some(modified) = modified {
        let _ = file.set_modified(SystemTime::from(modified));
    }
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        "local".into()
    }

    fn identity(&self) -> u64 {
        0
    }

    fn time_precision(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::zero()
    }

    fn list_stream(self: std::sync::Arc<Self>, prefix: &str, recursive: bool) -> ListStream {
        let root = absolute(prefix);
        let (sender, receiver) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        let spill = Spill::from_env();
        tokio::task::spawn_blocking(move || {
            let mut chunks = Chunks {
                sender,
                chunk: Vec::with_capacity(LIST_CHUNK),
            };
            walk_sorted(&root, recursive, &spill, &mut chunks);
            chunks.flush();
        });
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        })
        .flat_map(futures::stream::iter)
        .boxed()
    }

    async fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        if key.ends_with('/') {
            return Ok(None);
        }
        let path = absolute(key);
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_file() => Ok(Some(entry_from(key.to_string(), &metadata))),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) if error.raw_os_error() == Some(20) => Ok(None), // ENOTDIR: a parent is a file
            Err(error) => Err(io_error(&path, error)),
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let path = absolute(key);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|error| io_error(&path, error))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK)
            .map(move |chunk| chunk.map_err(|error| io_error(&path, error)));
        Ok(stream.boxed())
    }

    async fn put(
        &self,
        key: &str,
        _size: u64,
        modified: Option<DateTime<Utc>>,
        mut data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let target = absolute(key);
        let partial = partial_path(&target);
        let result: Result<(), StoreError> = async {
            let (for_partial, for_target) = (partial.clone(), target.clone());
            let file =
                tokio::task::spawn_blocking(move || create_partial(&for_partial, &for_target))
                    .await
                    .map_err(|error| {
                        StoreError::permanent(format!(
                            "creating {} stopped: {error}",
                            target.display()
                        ))
                    })??;
            let mut file = tokio::fs::File::from_std(file);
            loop {
                let chunk = tokio::select! {
                    _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                    chunk = data.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                file.write_all(&chunk?)
                    .await
                    .map_err(|error| write_error(&target, error))?;
            }
            file.flush()
                .await
                .map_err(|error| write_error(&target, error))?;
            let file = file.into_std().await;
            set_modified(&file, modified);
            drop(file);
            tokio::fs::rename(&partial, &target)
                .await
                .map_err(|error| write_error(&target, error))
        }
        .await;
        if result.is_err() {
            discard(&partial).await;
        }
        result
    }

    async fn copy(
        &self,
        from: &Entry,
        to: &str,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let source = absolute(&from.key);
        let target = absolute(to);
        let modified = from.modified;
        let partial = partial_path(&target);
        let partial_for_copy = partial.clone();
        let in_place = &self.in_place;
        if from.size <= IN_PLACE_MAX && in_place.load(std::sync::atomic::Ordering::Relaxed) {
            let started = std::time::Instant::now();
            let result = copy_file(&source, &partial_for_copy, &target, modified);
            if started.elapsed() > IN_PLACE_SLOW {
                in_place.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            if result.is_err() {
                discard(&partial).await;
            }
            // Nothing above waited: let the thread's other tasks (the
            // console, event watchers) run between copies.
            tokio::task::yield_now().await;
            return result;
        }
        let copy = tokio::task::spawn_blocking(move || {
            copy_file(&source, &partial_for_copy, &target, modified)
        });
        let result = tokio::select! {
            _ = cancel.cancelled() => Err(StoreError::cancelled()),
            joined = copy => joined.unwrap_or_else(|error| Err(StoreError::permanent(format!("copy stopped: {error}")))),
        };
        if result.is_err() {
            discard(&partial).await;
        }
        result
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let path = absolute(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error(&path, error)),
        }
    }
}

/// Copies `source` to `target` through `partial`, keeping the source's
/// mode and `modified` as its time.
fn copy_file(
    source: &Path,
    partial: &Path,
    target: &Path,
    modified: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut reader = std::fs::File::open(source).map_err(|error| StoreError {
        message: format!("cannot read {}: {}", source.display(), describe_io(&error)),
        ..io_error(source, error)
    })?;
    let mut writer = create_partial(partial, target)?;
    // std::io::copy between files uses copy_file_range on Linux:
    // the kernel moves the bytes. Its error does not say which side
    // failed, so only errors that can only be the writer's blame it.
    std::io::copy(&mut reader, &mut writer).map_err(|error| {
        if is_write_side(&error) {
            write_error(target, error)
        } else {
            StoreError {
                message: format!(
                    "copying {} to {}: {}",
                    source.display(),
                    target.display(),
                    describe_io(&error)
                ),
                ..io_error(source, error)
            }
        }
    })?;
    // As std::fs::copy would: the copy keeps the source's mode.
    if let Ok(metadata) = reader.metadata() {
        let _ = writer.set_permissions(metadata.permissions());
    }
    set_modified(&writer, modified);
    drop(writer);
    std::fs::rename(partial, target).map_err(|error| write_error(target, error))
}

/// One name in a folder being walked, as it sorts: its bytes, with a `/`
/// after a folder's, so the walk gives paths in byte order (`a-b` before
/// `a/x`). A name never holds `/`, so the trailing one marks a folder.
type Child = Box<[u8]>;

fn is_folder(child: &[u8]) -> bool {
    child.last() == Some(&b'/')
}

fn child_path(folder: &Path, child: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let name = child.strip_suffix(b"/").unwrap_or(child);
    folder.join(std::ffi::OsStr::from_bytes(name))
}

/// Reads one folder's names, sorted; symlinks are followed. Past the
/// spill's cutoff, names go to sorted temporary files merged as the walk
/// goes on.
fn read_sorted(folder: &Path, spill: &Spill) -> std::io::Result<Sorted<Child>> {
    use std::os::unix::ffi::OsStrExt;
    let mut children = Sorter::new(spill);
    for item in std::fs::read_dir(folder)? {
        let item = item?;
        let is_folder = match item.file_type() {
            Ok(kind) if kind.is_symlink() => {
                std::fs::metadata(item.path()).is_ok_and(|m| m.is_dir())
            }
            Ok(kind) => kind.is_dir(),
            Err(_) => false,
        };
        let name = item.file_name();
        let mut child = Vec::with_capacity(name.len() + 1);
        child.extend_from_slice(name.as_bytes());
        if is_folder {
            child.push(b'/');
        }
        children.push(child.into_boxed_slice())?;
    }
    if children.parts() > 0 {
        tracing::info!(
            folder = %folder.display(),
            names = children.count(),
            parts = children.parts(),
            "a folder too large to hold is sorted on disk in parts"
        );
    }
    children.finish()
}

/// The (device, inode) of a folder, to notice symlink loops.
fn folder_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Walks `root` depth first in key order, sending what it finds; holds
/// the names of the folders on the current path only (or a part of each
/// for folders past the spill's cutoff). Stops when the receiver is gone.
/// Listed items go from the walking thread to the run in chunks of this
/// many: a hand-over between threads costs more than copying a small file
/// on tmpfs, so one per file doubled the time of a tree of small files.
const LIST_CHUNK: usize = 128;
/// Chunks listed ahead of the run (with [`LIST_CHUNK`], about the
/// `LIST_AHEAD` items other stores list ahead).
const CHUNKS_AHEAD: usize = 4;

/// The walking thread's end of the listing: items wait in a chunk until
/// it is full or the walk ends.
struct Chunks {
    sender: tokio::sync::mpsc::Sender<Vec<Result<ListItem, StoreError>>>,
    chunk: Vec<Result<ListItem, StoreError>>,
}

impl Chunks {
    /// Adds an item; false once the run stopped listening.
    fn send(&mut self, item: Result<ListItem, StoreError>) -> bool {
        self.chunk.push(item);
        self.chunk.len() < LIST_CHUNK || self.flush()
    }

    fn flush(&mut self) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(LIST_CHUNK));
        self.sender.blocking_send(chunk).is_ok()
    }
}

/// Walks `root` in key order and sends what it finds, until the end, an
/// error, or the run stops listening.
fn walk_sorted(root: &Path, recursive: bool, spill: &Spill, chunks: &mut Chunks) {
    let mut send = |item: Result<ListItem, StoreError>| chunks.send(item);
    match std::fs::metadata(root) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            send(Ok(ListItem::MissingRoot));
            return;
        }
        Err(error) => {
            send(Err(io_error(root, error)));
            return;
        }
    }
    let children = match read_sorted(root, spill) {
        Ok(children) => children,
        Err(error) => {
            send(Err(io_error(root, error)));
            return;
        }
    };
    let mut stack = vec![(root.to_path_buf(), children)];
    let mut ancestors: Vec<Option<(u64, u64)>> = vec![folder_id(root)];
    while let Some((folder, level)) = stack.last_mut() {
        let child = match level.next() {
            None => {
                stack.pop();
                ancestors.pop();
                continue;
            }
            Some(Ok(child)) => child,
            Some(Err(error)) => {
                // Only a sorted part on disk can fail here.
                let folder = folder.clone();
                send(Err(io_error(&folder, error)));
                return;
            }
        };
        let path = child_path(folder, &child);
        let item = if is_folder(&child) {
            if !recursive {
                continue;
            }
            let id = folder_id(&path);
            if id.is_some() && ancestors.contains(&id) {
                Some(ListItem::Refused(
                    path.display().to_string(),
                    "cannot read: a symlink loops back to a folder above it".into(),
                ))
            } else {
                match read_sorted(&path, spill) {
                    Ok(children) => {
                        stack.push((path, children));
                        ancestors.push(id);
                        None
                    }
                    Err(error) => Some(ListItem::Refused(
                        path.display().to_string(),
                        format!("cannot read: {error}"),
                    )),
                }
            }
        } else {
            file_item(&path)
        };
        if let Some(item) = item
            && !send(Ok(item))
        {
            return;
        }
    }
}

/// What a walk reports for a name that is not a folder: a file, a
/// leftover partial file, a refusal, or nothing (sockets, devices).
fn file_item(path: &Path) -> Option<ListItem> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let metadata = std::fs::metadata(path);
    if name.starts_with(PARTIAL_PREFIX) {
        return (is_leftover(&name, metadata.as_ref().ok()))
            .then(|| path.to_str())
            .flatten()
            .map(|key| ListItem::Leftover(key.trim_start_matches('/').to_string()));
    }
    let metadata = match metadata {
        Ok(metadata) if metadata.is_file() => metadata,
        Ok(_) => return None,
        Err(error) => {
            return Some(ListItem::Refused(
                path.display().to_string(),
                format!("cannot read: {error}"),
            ));
        }
    };
    let Some(key) = path.to_str() else {
        return Some(ListItem::Refused(
            path.to_string_lossy().into_owned(),
            "name is not valid UTF-8; rename the file".into(),
        ));
    };
    Some(ListItem::File(entry_from(
        key.trim_start_matches('/').to_string(),
        &metadata,
    )))
}

#[cfg(test)]
mod tests {
    use super::super::sorted::LIST_CUTOFF;
    use super::*;

    /// The keys a walk of `root` sends, in order.
    fn walked(root: &Path, spill: &Spill) -> Vec<String> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(10_000);
        let mut chunks = Chunks {
            sender,
            chunk: Vec::new(),
        };
        walk_sorted(root, true, spill, &mut chunks);
        chunks.flush();
        drop(chunks);
        let mut keys = Vec::new();
        while let Ok(chunk) = receiver.try_recv() {
            for item in chunk {
                match item.expect("listed") {
                    ListItem::File(entry) => keys.push(entry.key),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        keys
    }

    #[test]
    fn a_folder_past_the_cutoff_lists_in_the_same_order_from_sorted_parts_then_removes_them() {
        let tree = tempfile::tempdir().expect("temp dir");
        let root = tree.path().join("in");
        // Names whose order by path differs from their order by name
        // (`a-b` < `a/x`, though `a` < `a-b`), spread over many parts.
        for index in (0..200).rev() {
            let name = format!("{}{index:03}", ["a", "a-b", "a.", "b", "é"][index % 5]);
            std::fs::create_dir_all(root.join("deep")).expect("mkdir");
            std::fs::write(root.join(&name), b"x").expect("write");
            if index % 7 == 0 {
                let folder = root.join(format!("{name}-d"));
                std::fs::create_dir_all(&folder).expect("mkdir");
                std::fs::write(folder.join("x"), b"").expect("write");
            }
            std::fs::write(root.join("deep").join(&name), b"").expect("write");
        }
        let parts = tempfile::tempdir().expect("temp dir");
        let spilled = walked(
            &root,
            &Spill {
                cutoff: 7,
                dir: parts.path().to_path_buf(),
            },
        );
        let held = walked(
            &root,
            &Spill {
                cutoff: LIST_CUTOFF,
                dir: parts.path().to_path_buf(),
            },
        );
        let mut sorted = held.clone();
        sorted.sort();
        assert_eq!(held, sorted, "a held walk lists in key order");
        assert_eq!(spilled.len(), 200 + 200 + 29);
        assert_eq!(
            spilled, held,
            "a spilled walk lists the same keys in the same order"
        );
        let left: Vec<_> = std::fs::read_dir(parts.path())
            .expect("read parts folder")
            .collect();
        assert!(left.is_empty(), "sorted parts left behind: {left:?}");
    }

    #[test]
    fn a_long_name_gets_a_partial_name_within_the_limit_that_cleanup_recognises() {
        let long = "é".repeat(120) + ".csv";
        let name = partial_name("4242-1f", &long);
        assert!(name.len() <= NAME_MAX, "{} bytes", name.len());
        assert!(name.starts_with(".syncdeck-partial-4242-1f-"), "{name}");
        assert_eq!(writer_pid(&name), Some(4242), "cleanup finds its writer");
        assert_ne!(name, partial_name("4242-1f", &("é".repeat(119) + "e.csv")));
        assert_eq!(
            partial_name("4242-1f", "a.csv"),
            ".syncdeck-partial-4242-1f-a.csv",
            "a short name is kept as it is"
        );
    }

    #[test]
    fn a_full_or_read_only_disk_names_the_destination_file() {
        let target = Path::new("/dst/a.csv");
        let full = write_error(target, std::io::Error::from_raw_os_error(28));
        assert_eq!(
            full.message,
            "cannot write /dst/a.csv: no space left on device; free space there or choose another destination"
        );
        assert!(!full.transient, "a full disk is not retried at once");
        let read_only = write_error(target, std::io::Error::from_raw_os_error(30));
        assert_eq!(
            read_only.message,
            "cannot write /dst/a.csv: the file system is read-only"
        );
        let denied = write_error(target, std::io::Error::from_raw_os_error(13));
        assert_eq!(denied.message, "cannot write /dst/a.csv: permission denied");
        assert!(is_write_side(&std::io::Error::from_raw_os_error(28)));
        assert!(
            !is_write_side(&std::io::Error::from_raw_os_error(5)),
            "EIO may be either side"
        );
    }
}
