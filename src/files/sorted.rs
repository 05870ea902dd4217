//! One folder's names in order, for every store that walks folders (local,
//! FTP, SFTP): held in memory, or past a cutoff sorted in parts in
//! temporary files and merged back as the walk goes on, so memory holds a
//! part, never a folder of millions of names.
//!
//! The parts are removed when the merge (or the sorter) is dropped: at
//! the end of the folder, on an error, or when the walk is abandoned.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Names of one folder held in memory while it is walked; a folder with
/// more goes through sorted temporary files instead (about 50 bytes a
/// name held, so a few MiB at most whatever the folder's size).
pub(crate) const LIST_CUTOFF: usize = 100_000;

/// Where a walk puts the sorted parts of folders too large to hold.
#[derive(Debug, Clone)]
pub(crate) struct Spill {
    /// Names held before a part is written.
    pub cutoff: usize,
    pub dir: PathBuf,
}

impl Spill {
    /// The cutoff (`SYNCDECK_LIST_CUTOFF` can lower it, to exercise the
    /// spilling on small folders) and the system's temporary folder.
    pub(crate) fn from_env() -> Self {
        let cutoff = std::env::var("SYNCDECK_LIST_CUTOFF")
            .ok()
            .and_then(|value| value.parse().ok())
            .filter(|&cutoff| cutoff > 0)
            .unwrap_or(LIST_CUTOFF);
        Self {
            cutoff,
            dir: std::env::temp_dir(),
        }
    }
}

/// A name a folder walk sorts, and how it is written to a part.
pub(crate) trait Sortable: Sized {
    /// The walk's order: by name as bytes, a folder's name followed by
    /// `/`, so paths come out in byte order (`a-b` before `a/x`).
    fn order(&self, other: &Self) -> Ordering;
    fn encode(&self, out: &mut Vec<u8>);
    /// `None` when `bytes` are no encoded name (a damaged part).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Collects one folder's names, writing a sorted part each time the
/// cutoff is reached.
pub(crate) struct Sorter<T> {
    spill: Spill,
    held: Vec<T>,
    parts: Vec<Part>,
    count: u64,
}

impl<T: Sortable> Sorter<T> {
    pub(crate) fn new(spill: &Spill) -> Self {
        Self {
            spill: spill.clone(),
            held: Vec::new(),
            parts: Vec::new(),
            count: 0,
        }
    }

    pub(crate) fn push(&mut self, name: T) -> std::io::Result<()> {
        self.held.push(name);
        self.count += 1;
        if self.held.len() >= self.spill.cutoff {
            self.parts.push(Part::write(&self.spill, &mut self.held)?);
        }
        Ok(())
    }

    /// Forgets what was pushed (a listing that starts over), removing
    /// any part already written.
    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.parts.clear();
        self.count = 0;
    }

    /// How many names were pushed.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// How many sorted parts are on disk.
    pub(crate) fn parts(&self) -> usize {
        self.parts.len()
    }

    /// The names in order.
    pub(crate) fn finish(mut self) -> std::io::Result<Sorted<T>> {
        if self.parts.is_empty() {
            self.held.sort_unstable_by(T::order);
            return Ok(Sorted::Held(self.held.into_iter()));
        }
        if !self.held.is_empty() {
            self.parts.push(Part::write(&self.spill, &mut self.held)?);
        }
        let mut heads = BinaryHeap::new();
        for (part, file) in self.parts.iter_mut().enumerate() {
            if let Some(name) = file.read()? {
                heads.push(Head { name, part });
            }
        }
        Ok(Sorted::Merged {
            parts: self.parts,
            heads,
        })
    }
}

/// A folder's names in order: held, or merged from sorted parts on disk
/// (one name a part held). Only reading a part can fail.
pub(crate) enum Sorted<T> {
    Held(std::vec::IntoIter<T>),
    Merged {
        parts: Vec<Part>,
        heads: BinaryHeap<Head<T>>,
    },
}

impl<T: Sortable> Iterator for Sorted<T> {
    type Item = std::io::Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Held(names) => names.next().map(Ok),
            Self::Merged { parts, heads } => {
                let Head { name, part } = heads.pop()?;
                match parts[part].read() {
                    Ok(Some(next)) => heads.push(Head { name: next, part }),
                    Ok(None) => {}
                    Err(error) => return Some(Err(error)),
                }
                Some(Ok(name))
            }
        }
    }
}

/// The next name of one part, ordered for a min-heap (the smallest name
/// on top; equal names by part, so the merge is stable).
pub(crate) struct Head<T> {
    name: T,
    part: usize,
}

impl<T: Sortable> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .name
            .order(&self.name)
            .then(other.part.cmp(&self.part))
    }
}

impl<T: Sortable> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Sortable> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Sortable> Eq for Head<T> {}

/// One sorted part of a large folder's names, in a temporary file
/// (removed when dropped): each name is its length (u32, little endian)
/// then its encoding. Parts are small local files written and read with
/// blocking calls, also from the async walks of FTP and SFTP: a part of
/// 100,000 names is a few MiB through the page cache, milliseconds.
pub(crate) struct Part {
    reader: std::io::BufReader<std::fs::File>,
    buffer: Vec<u8>,
    _file: tempfile::NamedTempFile,
}

impl Part {
    fn write<T: Sortable>(spill: &Spill, names: &mut Vec<T>) -> std::io::Result<Self> {
        names.sort_unstable_by(T::order);
        let file = tempfile::Builder::new()
            .prefix("syncdeck-list-")
            .tempfile_in(&spill.dir)?;
        let mut writer = std::io::BufWriter::new(file.as_file());
        let mut encoded = Vec::new();
        for name in names.drain(..) {
            encoded.clear();
            name.encode(&mut encoded);
            let length = u32::try_from(encoded.len()).map_err(std::io::Error::other)?;
            writer.write_all(&length.to_le_bytes())?;
            writer.write_all(&encoded)?;
        }
        writer.flush()?;
        drop(writer);
        Ok(Self {
            reader: std::io::BufReader::new(file.reopen()?),
            buffer: Vec::new(),
            _file: file,
        })
    }

    fn read<T: Sortable>(&mut self) -> std::io::Result<Option<T>> {
        let mut length = [0; 4];
        match self.reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        self.buffer.resize(u32::from_le_bytes(length) as usize, 0);
        self.reader.read_exact(&mut self.buffer)?;
        T::decode(&self.buffer)
            .map(Some)
            .ok_or_else(|| std::io::Error::other("a sorted part of a listing is damaged"))
    }
}

/// A local name as it sorts: its bytes, with a `/` after a folder's. A
/// name never holds `/`, so the trailing one marks a folder.
impl Sortable for Box<[u8]> {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(bytes.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_cutoff_come_back_in_order_and_their_parts_are_removed() {
        let parts = tempfile::tempdir().expect("temp dir");
        let spill = Spill {
            cutoff: 3,
            dir: parts.path().to_path_buf(),
        };
        let mut sorter = Sorter::new(&spill);
        let names = ["é", "a/", "a-b", "B", "a", " x", "-y", "Z/", "z"];
        for name in names {
            let name: Box<[u8]> = name.as_bytes().into();
            sorter.push(name).expect("push");
        }
        assert_eq!(sorter.parts(), 3);
        let sorted = sorter.finish().expect("finish");
        let left = std::fs::read_dir(parts.path()).expect("parts").count();
        assert_eq!(left, 3, "parts stay while merged");
        let sorted: Vec<String> = sorted
            .map(|name| String::from_utf8(name.expect("read").into()).expect("utf-8"))
            .collect();
        assert_eq!(sorted, [" x", "-y", "B", "Z/", "a", "a-b", "a/", "z", "é"]);
        let left = std::fs::read_dir(parts.path()).expect("parts").count();
        assert_eq!(left, 0, "parts removed after the merge");
    }

    #[test]
    fn a_sorter_dropped_or_cleared_midway_leaves_no_part() {
        let parts = tempfile::tempdir().expect("temp dir");
        let spill = Spill {
            cutoff: 2,
            dir: parts.path().to_path_buf(),
        };
        let mut sorter = Sorter::new(&spill);
        for name in ["c", "b", "a", "d", "e"] {
            let name: Box<[u8]> = name.as_bytes().into();
            sorter.push(name).expect("push");
        }
        assert_eq!(std::fs::read_dir(parts.path()).expect("parts").count(), 2);
        sorter.clear();
        assert_eq!(std::fs::read_dir(parts.path()).expect("parts").count(), 0);
        for name in ["c", "b", "a"] {
            let name: Box<[u8]> = name.as_bytes().into();
            sorter.push(name).expect("push");
        }
        drop(sorter);
        assert_eq!(std::fs::read_dir(parts.path()).expect("parts").count(), 0);
    }
}
