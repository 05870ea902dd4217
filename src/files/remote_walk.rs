//! Walking a server's folders (FTP, SFTP) depth first in key order. A
//! server lists a folder in its own order, so each folder's names are
//! sorted as they arrive, through the same sorter as local folders: held
//! up to the cutoff, past it in sorted parts in temporary files.

use std::cmp::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sorted::{Sortable, Sorted, Sorter, Spill};
use super::store::{Entry, ListItem, ListSender, StoreError, stale_on_server};

/// One name a server listed in a folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteName {
    pub name: String,
    pub is_folder: bool,
    /// A link the listing did not resolve (FTP `LIST`):
    /// [`FolderReader::complete`] tells whether it leads to a file.
    pub is_link: bool,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    /// Whether `modified` is exact; an FTP `LIST` line gives minutes at
    /// best, and [`FolderReader::complete`] asks for the second.
    pub exact_time: bool,
}

impl RemoteName {
    /// A name as listed with exact size and time (MLSD, SFTP).
    pub(crate) fn exact(
        name: String,
        is_folder: bool,
        size: u64,
        modified: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            name,
            is_folder,
            is_link: false,
            size,
            modified,
            exact_time: true,
        }
    }
}

const FOLDER: u8 = 1;
const LINK: u8 = 2;
const EXACT_TIME: u8 = 4;
const HAS_TIME: u8 = 8;
/// Flags, size, seconds and nanoseconds before the name's bytes.
const HEADER: usize = 1 + 8 + 8 + 4;

impl Sortable for RemoteName {
    fn order(&self, other: &Self) -> Ordering {
        fn key(listed: &RemoteName) -> impl Iterator<Item = u8> + '_ {
            let slash = listed.is_folder.then_some(b'/');
            listed.name.as_bytes().iter().copied().chain(slash)
        }
        key(self).cmp(key(other))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let flags = [
            (self.is_folder, FOLDER),
            (self.is_link, LINK),
            (self.exact_time, EXACT_TIME),
            (self.modified.is_some(), HAS_TIME),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, flag)| flags | flag);
        let (seconds, nanos) = self
            .modified
            .map(|time| (time.timestamp(), time.timestamp_subsec_nanos()))
            .unwrap_or_default();
        out.push(flags);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&seconds.to_le_bytes());
        out.extend_from_slice(&nanos.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (header, name) = bytes.split_at_checked(HEADER)?;
        let flags = header[0];
        let size = u64::from_le_bytes(header[1..9].try_into().ok()?);
        let seconds = i64::from_le_bytes(header[9..17].try_into().ok()?);
        let nanos = u32::from_le_bytes(header[17..21].try_into().ok()?);
        let modified = if flags & HAS_TIME != 0 {
            Some(DateTime::from_timestamp(seconds, nanos)?)
        } else {
            None
        };
        Some(Self {
            name: String::from_utf8(name.to_vec()).ok()?,
            is_folder: flags & FOLDER != 0,
            is_link: flags & LINK != 0,
            size,
            modified,
            exact_time: flags & EXACT_TIME != 0,
        })
    }
}

/// The names of the folder being read, as a server sends them.
pub(crate) struct FolderNames {
    folder: String,
    sorter: Sorter<RemoteName>,
}

impl FolderNames {
    fn new(folder: &str, spill: &Spill) -> Self {
        Self {
            folder: folder.to_string(),
            sorter: Sorter::new(spill),
        }
    }

    /// Takes one listed name (`.` and `..` are left out).
    pub(crate) fn push(&mut self, listed: RemoteName) -> Result<(), StoreError> {
        if listed.name == "." || listed.name == ".." {
            return Ok(());
        }
        self.sorter
            .push(listed)
            .map_err(|error| spill_error(&self.folder, &error))
    }

    /// Forgets the names taken so far (a listing that starts over on a
    /// new connection), removing any sorted part already written.
    pub(crate) fn clear(&mut self) {
        self.sorter.clear();
    }

    fn finish(self) -> Result<Sorted<RemoteName>, StoreError> {
        if self.sorter.parts() > 0 {
            tracing::info!(
                folder = %self.folder,
                names = self.sorter.count(),
                parts = self.sorter.parts() + 1,
                "a folder too large to hold is sorted on disk in parts"
            );
        }
        let folder = self.folder;
        self.sorter
            .finish()
            .map_err(|error| spill_error(&folder, &error))
    }
}

/// A sorted part of a large folder's listing could not be written or read.
fn spill_error(folder: &str, error: &std::io::Error) -> StoreError {
    StoreError::permanent(format!(
        "{folder}: cannot sort the listing of this large folder in temporary files in {}: {error}; free space there or set TMPDIR to another folder",
        std::env::temp_dir().display()
    ))
}

/// A connection that reads a server's folders one at a time.
#[async_trait]
pub(crate) trait FolderReader: Send {
    /// Lists `folder` (a `/`-rooted path) into `names` as the server
    /// sends it. `None` when the folder does not exist; otherwise the
    /// lines that could not be read (a name, and why).
    async fn read_folder(
        &mut self,
        folder: &str,
        names: &mut FolderNames,
    ) -> Result<Option<Vec<(String, String)>>, StoreError>;

    /// A listed name that is not a folder, at `path`, made exact where its
    /// listing line did not say enough; `None` when it is no file after
    /// all (a link to a folder). By default, as listed.
    async fn complete(&mut self, _path: &str, listed: RemoteName) -> Option<RemoteName> {
        Some(listed)
    }

    /// Ends the connection politely.
    async fn close(&mut self);
}

/// Reads a folder and sends its unreadable lines; its names come back in
/// the walk's order (`None` when the folder is gone or the stream closed).
async fn read_sorted(
    reader: &mut impl FolderReader,
    folder: &str,
    spill: &Spill,
    sender: &ListSender,
) -> Result<Option<Sorted<RemoteName>>, StoreError> {
    let mut names = FolderNames::new(folder, spill);
    let Some(refused) = reader.read_folder(folder, &mut names).await? else {
        return Ok(None);
    };
    for (name, reason) in refused {
        if sender
            .send(Ok(ListItem::Refused(name, reason)))
            .await
            .is_err()
        {
            return Ok(None);
        }
    }
    names.finish().map(Some)
}

/// Walks a server from `root` depth first in key order, sending what it
/// finds: files, and partial files of dead runs (stale ones) as leftovers.
/// Holds the names of the folders on the current path only (a part of
/// each, for folders past the spill's cutoff).
pub(crate) async fn walk_remote(
    mut reader: impl FolderReader,
    root: &str,
    recursive: bool,
    spill: &Spill,
    sender: &ListSender,
) {
    let mut stack = Vec::new();
    match read_sorted(&mut reader, root, spill, sender).await {
        Ok(Some(names)) => stack.push((root.trim_end_matches('/').to_string(), names)),
        Ok(None) => {
            let _ = sender.send(Ok(ListItem::MissingRoot)).await;
        }
        Err(error) => {
            let _ = sender.send(Err(error)).await;
        }
    }
    while let Some((folder, names)) = stack.last_mut() {
        let listed = match names.next() {
            None => {
                stack.pop();
                continue;
            }
            Some(Ok(listed)) => listed,
            Some(Err(error)) => {
                let error = spill_error(folder, &error);
                let _ = sender.send(Err(error)).await;
                break;
            }
        };
        let path = format!("{folder}/{}", listed.name);
        let key = path.trim_start_matches('/').to_string();
        let item = if listed.name.starts_with(super::local::PARTIAL_PREFIX) {
            if !stale_on_server(listed.modified) {
                continue;
            }
            ListItem::Leftover(key)
        } else if listed.is_folder {
            if !recursive {
                continue;
            }
            match read_sorted(&mut reader, &path, spill, sender).await {
                Ok(Some(names)) => stack.push((path, names)),
                Ok(None) => {}
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    break;
                }
            }
            continue;
        } else {
            let Some(listed) = reader.complete(&path, listed).await else {
                continue;
            };
            ListItem::File(Entry {
                key,
                size: listed.size,
                modified: listed.modified,
                checksum: None,
            })
        };
        if sender.send(Ok(item)).await.is_err() {
            break;
        }
    }
    // Any sorted parts still open are removed here, whether the walk
    // ended, failed or was abandoned.
    drop(stack);
    reader.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose root holds `f00`…`f09` and the folder `sub`, whose
    /// listing breaks after ten names.
    struct BreaksInSub;

    #[async_trait]
    impl FolderReader for BreaksInSub {
        async fn read_folder(
            &mut self,
            folder: &str,
            names: &mut FolderNames,
        ) -> Result<Option<Vec<(String, String)>>, StoreError> {
            for index in (0..10).rev() {
                names.push(RemoteName::exact(format!("f{index:02}"), false, 1, None))?;
            }
            if folder.ends_with("sub") {
                return Err(StoreError::transient("sub: connection reset"));
            }
            names.push(RemoteName::exact("sub".into(), true, 0, None))?;
            Ok(Some(Vec::new()))
        }

        async fn close(&mut self) {}
    }

    /// Walks [`BreaksInSub`] with a cutoff of 3 names, taking `take` items.
    async fn walk_taking(
        take: usize,
    ) -> (Vec<Result<ListItem, StoreError>>, Vec<std::fs::DirEntry>) {
        let parts = tempfile::tempdir().expect("temp dir");
        let spill = Spill {
            cutoff: 3,
            dir: parts.path().to_path_buf(),
        };
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        let walk = tokio::spawn(async move {
            walk_remote(BreaksInSub, "/root", true, &spill, &sender).await;
        });
        let mut items = Vec::new();
        while items.len() < take {
            match receiver.recv().await {
                Some(item) => items.push(item),
                None => break,
            }
        }
        drop(receiver);
        walk.await.expect("walk");
        let left = std::fs::read_dir(parts.path())
            .expect("parts folder")
            .map(|entry| entry.expect("entry"))
            .collect();
        (items, left)
    }

    #[tokio::test]
    async fn a_listing_that_breaks_midway_leaves_no_sorted_part() {
        let (items, left) = walk_taking(usize::MAX).await;
        let files = items
            .iter()
            .filter(|item| matches!(item, Ok(ListItem::File(_))))
            .count();
        assert_eq!(files, 10, "the root's files come before `sub/`");
        assert!(
            matches!(items.last(), Some(Err(error)) if error.message == "sub: connection reset"),
            "{items:?}"
        );
        assert!(left.is_empty(), "sorted parts left behind: {left:?}");
    }

    #[tokio::test]
    async fn a_walk_abandoned_midway_leaves_no_sorted_part() {
        let (items, left) = walk_taking(4).await;
        assert_eq!(items.len(), 4);
        assert!(left.is_empty(), "sorted parts left behind: {left:?}");
    }

    #[test]
    fn a_listed_name_survives_a_sorted_part() {
        let names = [
            RemoteName::exact(
                "日本 -x".into(),
                false,
                1024,
                DateTime::from_timestamp(1_700_000_000, 5),
            ),
            RemoteName::exact("a b".into(), true, 0, None),
            RemoteName {
                name: "link".into(),
                is_folder: false,
                is_link: true,
                size: 7,
                modified: DateTime::from_timestamp(-5, 0),
                exact_time: false,
            },
        ];
        for name in names {
            let mut bytes = Vec::new();
            name.encode(&mut bytes);
            assert_eq!(RemoteName::decode(&bytes), Some(name));
        }
        assert_eq!(RemoteName::decode(&[1, 2, 3]), None, "a damaged part");
    }

    #[test]
    fn a_folder_sorts_as_its_name_and_a_slash() {
        let folder = RemoteName::exact("a".into(), true, 0, None);
        let file = RemoteName::exact("a-b".into(), false, 0, None);
        let longer = RemoteName::exact("a0".into(), false, 0, None);
        assert_eq!(file.order(&folder), Ordering::Less, "`a-b` before `a/`");
        assert_eq!(folder.order(&longer), Ordering::Less, "`a/` before `a0`");
    }
}
