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

use super::store::{ByteStream, Entry, Listing, Store, StoreError};

/// Partial files start with this; listings leave them out.
pub(crate) const PARTIAL_PREFIX: &str = ".syncdeck-partial-";
/// Read buffer for local files.
const READ_CHUNK: usize = 1024 * 1024;

pub(crate) struct LocalStore;

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
    let unique = format!("{}-{:x}", std::process::id(), rand_suffix());
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
    if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
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

/// Removes a partial file, ignoring one that is already gone.
async fn discard(path: &Path) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
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

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Listing, StoreError> {
        let root = absolute(prefix);
        tokio::task::spawn_blocking(move || list_blocking(&root, recursive))
            .await
            .map_err(|error| StoreError::permanent(format!("listing stopped: {error}")))?
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
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|error| io_error(parent, error))?;
        }
        let partial = partial_path(&target);
        let result: Result<(), StoreError> = async {
            let mut file = tokio::fs::File::create(&partial)
                .await
                .map_err(|error| io_error(&partial, error))?;
            loop {
                let chunk = tokio::select! {
                    _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                    chunk = data.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                file.write_all(&chunk?)
                    .await
                    .map_err(|error| io_error(&partial, error))?;
            }
            file.flush()
                .await
                .map_err(|error| io_error(&partial, error))?;
            let file = file.into_std().await;
            set_modified(&file, modified);
            drop(file);
            tokio::fs::rename(&partial, &target)
                .await
                .map_err(|error| io_error(&target, error))
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
        // std::fs::copy uses copy_file_range on Linux: the kernel moves the bytes.
        let copy = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|error| io_error(parent, error))?;
            }
            // Either side can fail; the message names both.
            std::fs::copy(&source, &partial_for_copy).map_err(|error| {
                let message = format!(
                    "copying {} to {}: {error}",
                    source.display(),
                    partial_for_copy.display()
                );
                StoreError {
                    message,
                    ..io_error(&source, error)
                }
            })?;
            if let Ok(file) = std::fs::File::options().write(true).open(&partial_for_copy) {
                set_modified(&file, modified);
            }
            std::fs::rename(&partial_for_copy, &target).map_err(|error| io_error(&target, error))
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

fn list_blocking(root: &Path, recursive: bool) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    match std::fs::metadata(root) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Ok(listing),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            listing.missing = true;
            return Ok(listing);
        }
        Err(error) => return Err(io_error(root, error)),
    }
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(if recursive { usize::MAX } else { 1 })
        .follow_links(true);
    for item in walker {
        let item = match item {
            Ok(item) => item,
            Err(error) => {
                let path = error
                    .path()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default();
                listing
                    .refused
                    .push((path, format!("cannot read: {error}")));
                continue;
            }
        };
        if !item.file_type().is_file() {
            continue;
        }
        let name = item.file_name().to_string_lossy();
        if name.starts_with(PARTIAL_PREFIX) {
            if is_leftover(&name, item.metadata().ok().as_ref())
                && let Some(path) = item.path().to_str()
            {
                listing
                    .leftovers
                    .push(path.trim_start_matches('/').to_string());
            }
            continue;
        }
        let Some(path) = item.path().to_str() else {
            listing.refused.push((
                item.path().to_string_lossy().into_owned(),
                "name is not valid UTF-8; rename the file".into(),
            ));
            continue;
        };
        match item.metadata() {
            Ok(metadata) => listing.entries.push(entry_from(
                path.trim_start_matches('/').to_string(),
                &metadata,
            )),
            Err(error) => listing
                .refused
                .push((path.to_string(), format!("cannot read: {error}"))),
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
