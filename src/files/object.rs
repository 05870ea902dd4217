//! The object_store backend of [`Store`]: S3 and S3-compatible servers,
//! GCS, Azure and memory.
//!
//! Every object written keeps the source's modification time as `mtime`
//! user metadata (as rclone does), so a later run compares against the
//! source's time rather than the upload time.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutPayloadMut,
};
use tokio_util::sync::CancellationToken;

use super::s3_api::{OpenUpload, RawObject, S3Api};
use super::store::{
    ByteStream, Entry, ListItem, ListSender, ListStream, Listing, Store, StoreError, list_channel,
};

/// Files up to this size are sent in one request; larger ones in parts.
const SINGLE_PUT_LIMIT: u64 = 8 * 1024 * 1024;
/// Multipart part size: S3 needs at least 5 MiB for all but the last part.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at once per file; with PART_SIZE this bounds the memory a
/// large upload holds to about 40 MiB.
const PARTS_IN_FLIGHT: usize = 4;
/// The user metadata key holding the source's modification time; rclone's
/// name, so either tool sees the other's times.
const MTIME_KEY: &str = "mtime";

pub(crate) struct ObjectStoreBackend {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) name: String,
    pub(crate) identity: u64,
    /// Raw S3 calls, for S3 stores only.
    pub(crate) s3: Option<S3Api>,
}

/// Why syncdeck cannot sync an object named `key`, if it cannot.
pub(crate) fn key_problem(key: &str) -> Option<String> {
    for segment in key.split('/') {
        if segment.is_empty() {
            return Some("the name has an empty path segment (`//` or a leading `/`)".into());
        }
        if segment == "." || segment == ".." {
            return Some(format!(
                "the name has a `{segment}` segment, which could point outside the destination"
            ));
        }
        if let Some(control) = segment.chars().find(|c| c.is_ascii_control()) {
            return Some(format!(
                "the name has a control character (U+{:04X})",
                control as u32
            ));
        }
    }
    None
}

/// A time as rclone writes `mtime` metadata: Unix seconds with a fraction.
fn format_mtime(time: DateTime<Utc>) -> String {
    format!("{}.{:09}", time.timestamp(), time.timestamp_subsec_nanos())
}

fn parse_mtime(text: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let seconds: i64 = seconds.parse().ok()?;
    let digits: String = fraction.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        let value: u32 = digits.parse().ok()?;
        value * 10u32.pow(9 - digits.len() as u32)
    };
    DateTime::from_timestamp(seconds, nanos)
}

fn attributes(modified: Option<DateTime<Utc>>) -> Attributes {
    modified
        .map(|time| {
            Attributes::from_iter([(
                Attribute::Metadata(Cow::Borrowed(MTIME_KEY)),
                AttributeValue::from(format_mtime(time)),
            )])
        })
        .unwrap_or_default()
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

impl ObjectStoreBackend {
    fn error(&self, key: &str, error: object_store::Error) -> StoreError {
        let transient = matches!(error, object_store::Error::Generic { .. });
        let message = format!("{}/{key}: {}", self.name, first_line(&error.to_string()));
        StoreError { message, transient }
    }

    fn path(&self, key: &str) -> Result<ObjectPath, StoreError> {
        ObjectPath::parse(key)
            .map_err(|error| StoreError::permanent(format!("{}/{key}: {error}", self.name)))
    }

    fn entry(meta: ObjectMeta) -> Entry {
        Entry {
            key: meta.location.to_string(),
            size: meta.size,
            modified: Some(meta.last_modified),
            checksum: meta.e_tag.map(|tag| tag.trim_matches('"').to_string()),
        }
    }

    /// Whether a listed zero-byte object is really a folder marker (`dir/`):
    /// object_store lists `dir/` as `dir`, which then does not exist.
    async fn is_folder_marker(&self, location: &ObjectPath) -> Result<bool, StoreError> {
        match self.store.head(location).await {
            Ok(_) => Ok(false),
            Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(error) => Err(self.error(location.as_ref(), error)),
        }
    }

    /// Lists through object_store; `Ok(None)` when it refused a name.
    async fn list_parsed(
        &self,
        prefix: &str,
        recursive: bool,
    ) -> Result<Option<Vec<ObjectMeta>>, StoreError> {
        let trimmed = prefix.trim_end_matches('/');
        let path = if trimmed.is_empty() {
            None
        } else {
            Some(self.path(trimmed)?)
        };
        let listed = if recursive {
            self.store.list(path.as_ref()).try_collect::<Vec<_>>().await
        } else {
            self.store
                .list_with_delimiter(path.as_ref())
                .await
                .map(|result| result.objects)
        };
        match listed {
            Ok(objects) => Ok(Some(objects)),
            Err(object_store::Error::InvalidPath { .. }) => Ok(None),
            Err(error) => Err(self.error(prefix, error)),
        }
    }

    /// Lists with raw keys (S3 only), refusing bad names one by one.
    async fn list_raw(
        &self,
        s3: &S3Api,
        prefix: &str,
        recursive: bool,
    ) -> Result<Listing, StoreError> {
        let objects = s3
            .list_objects(prefix)
            .await
            .map_err(|error| StoreError::transient(format!("{}/{prefix}: {error}", self.name)))?;
        let mut listing = Listing::default();
        for RawObject {
            key,
            size,
            modified,
            e_tag,
        } in objects
        {
            let below = key.strip_prefix(prefix).unwrap_or(&key);
            if !recursive && below.trim_end_matches('/').contains('/') {
                continue;
            }
            if key.ends_with('/') && size == 0 {
                listing.folder_markers.push(key);
                continue;
            }
            if let Some(problem) = key_problem(key.strip_suffix('/').unwrap_or(&key)) {
                listing.refused.push((
                    key,
                    format!("refused: {problem}; rename or remove the object"),
                ));
                continue;
            }
            if key.ends_with('/') {
                listing.refused.push((
                    key,
                    "refused: the name ends with `/` but the object holds data; rename it".into(),
                ));
                continue;
            }
            listing.entries.push(Entry {
                key,
                size,
                modified,
                checksum: e_tag,
            });
        }
        Ok(listing)
    }

    /// Lists `prefix` whole (one level comes from the server whole anyway).
    async fn list(&self, prefix: &str, recursive: bool) -> Result<Listing, StoreError> {
        let Some(objects) = self.list_parsed(prefix, recursive).await? else {
            // object_store rejects the whole listing page over one name;
            // S3 can be listed raw instead, refusing just that name.
            return match &self.s3 {
                Some(s3) => self.list_raw(s3, prefix, recursive).await,
                None => Err(self.unusable_name(prefix)),
            };
        };
        let mut listing = Listing::default();
        for meta in objects {
            if meta.size == 0 && self.is_folder_marker(&meta.location).await? {
                listing.folder_markers.push(format!("{}/", meta.location));
                continue;
            }
            listing.entries.push(Self::entry(meta));
        }
        // A file `dir` next to a marker `dir/` is listed twice as `dir`.
        listing.entries.sort_by(|a, b| a.key.cmp(&b.key));
        listing.entries.dedup_by(|a, b| a.key == b.key);
        Ok(listing)
    }

    fn unusable_name(&self, prefix: &str) -> StoreError {
        StoreError::permanent(format!(
            "{}/{prefix}: an object under this folder has a name syncdeck cannot use (a `.` or `..` segment, an empty segment or a control character); rename or remove it",
            self.name
        ))
    }

    /// Streams a recursive listing page by page into `sender`, in key order.
    async fn stream_listing(&self, prefix: &str, sender: &ListSender) {
        let trimmed = prefix.trim_end_matches('/');
        let path = match trimmed {
            "" => None,
            trimmed => match self.path(trimmed) {
                Ok(path) => Some(path),
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            },
        };
        let mut listed = self.store.list(path.as_ref());
        let mut last: Option<String> = None;
        while let Some(meta) = listed.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(object_store::Error::InvalidPath { .. }) => {
                    // object_store rejects a whole page over one name; S3
                    // can be listed raw instead, refusing just that name.
                    let rest = match &self.s3 {
                        Some(s3) => self.list_raw(s3, prefix, true).await,
                        None => Err(self.unusable_name(prefix)),
                    };
                    let mut rest = match rest {
                        Ok(rest) => rest,
                        Err(error) => {
                            let _ = sender.send(Err(error)).await;
                            return;
                        }
                    };
                    if let Some(last) = &last {
                        rest.entries.retain(|entry| entry.key > *last);
                    }
                    let mut rest = rest.into_stream();
                    while let Some(item) = rest.next().await {
                        if sender.send(item).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                Err(error) => {
                    let _ = sender.send(Err(self.error(prefix, error))).await;
                    return;
                }
            };
            let item = if meta.size == 0 {
                match self.is_folder_marker(&meta.location).await {
                    Ok(true) => Some(ListItem::FolderMarker(format!("{}/", meta.location))),
                    Ok(false) => None,
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                }
            } else {
                None
            };
            let item = match item {
                Some(marker) => marker,
                None => {
                    let key = meta.location.to_string();
                    // A file `dir` next to a marker `dir/` is listed twice
                    // as `dir`, the second time after `dir-…` keys.
                    if last.as_deref().is_some_and(|last| key.as_str() <= last) {
                        continue;
                    }
                    last = Some(key);
                    ListItem::File(Self::entry(meta))
                }
            };
            if sender.send(Ok(item)).await.is_err() {
                return;
            }
        }
    }

    async fn put_multipart(
        &self,
        path: &ObjectPath,
        key: &str,
        modified: Option<DateTime<Utc>>,
        data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let options = PutMultipartOptions {
            attributes: attributes(modified),
            ..Default::default()
        };
        let mut upload = tokio::select! {
            _ = cancel.cancelled() => return Err(StoreError::cancelled()),
            upload = self.store.put_multipart_opts(path, options) => upload.map_err(|error| self.error(key, error))?,
        };
        let result = self.send_parts(upload.as_mut(), key, data, cancel).await;
        if result.is_err() {
            // Every way out without the object complete (an error, a cancel,
            // a source that changed) aborts, so the server drops the parts.
            // A completion that landed just before a cancel makes this fail
            // harmlessly: the object is then whole.
            if let Err(error) = upload.abort().await {
                tracing::warn!(key, %error, "could not abort a multipart upload");
            }
        }
        result
    }

    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        key: &str,
        mut data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut in_flight: FuturesUnordered<object_store::UploadPart> = FuturesUnordered::new();
        let mut part = PutPayloadMut::new();
        let mut parts = 0usize;
        loop {
            let chunk = tokio::select! {
                _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                chunk = data.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let mut chunk: Bytes = chunk?;
            while !chunk.is_empty() {
                let room = PART_SIZE - part.content_length();
                part.push(chunk.split_to(room.min(chunk.len())));
                if part.content_length() < PART_SIZE {
                    continue;
                }
                while in_flight.len() >= PARTS_IN_FLIGHT {
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                        done = in_flight.next() => if let Some(done) = done {
                            done.map_err(|error| self.error(key, error))?;
                        },
                    }
                }
                in_flight.push(upload.put_part(std::mem::take(&mut part).freeze()));
                parts += 1;
            }
        }
        if parts == 0 || part.content_length() > 0 {
            in_flight.push(upload.put_part(part.freeze()));
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                done = in_flight.next() => match done {
                    Some(done) => done.map_err(|error| self.error(key, error))?,
                    None => break,
                },
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => Err(StoreError::cancelled()),
            done = upload.complete() => done.map(|_| ()).map_err(|error| self.error(key, error)),
        }
    }
}

#[async_trait]
impl Store for ObjectStoreBackend {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn identity(&self) -> u64 {
        self.identity
    }

    fn time_precision(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(1)
    }

    fn lists_upload_times(&self) -> bool {
        true
    }

    fn list_stream(self: Arc<Self>, prefix: &str, recursive: bool) -> ListStream {
        let (sender, stream) = list_channel();
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            if recursive {
                return self.stream_listing(&prefix, &sender).await;
            }
            // One level comes from the server whole anyway.
            let mut items = match self.list(&prefix, false).await {
                Ok(listing) => listing.into_stream(),
                Err(error) => futures::stream::once(async move { Err(error) }).boxed(),
            };
            while let Some(item) = items.next().await {
                if sender.send(item).await.is_err() {
                    return;
                }
            }
        });
        stream
    }

    async fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        if key.is_empty() || key.ends_with('/') {
            return Ok(None);
        }
        match self.store.head(&self.path(key)?).await {
            Ok(meta) => Ok(Some(Self::entry(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(key, error)),
        }
    }

    async fn recorded_modified(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.store.get_opts(&self.path(key)?, options).await {
            Ok(result) => Ok(result
                .attributes
                .get(&Attribute::Metadata(Cow::Borrowed(MTIME_KEY)))
                .and_then(|value| parse_mtime(value))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(key, error)),
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let result = self
            .store
            .get(&self.path(key)?)
            .await
            .map_err(|error| self.error(key, error))?;
        let name = self.name.clone();
        let key = key.to_string();
        Ok(result
            .into_stream()
            .map_err(move |error| {
                StoreError::transient(format!("{name}/{key}: {}", first_line(&error.to_string())))
            })
            .boxed())
    }

    async fn put(
        &self,
        key: &str,
        size: u64,
        modified: Option<DateTime<Utc>>,
        data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let path = self.path(key)?;
        if size > SINGLE_PUT_LIMIT {
            return self.put_multipart(&path, key, modified, data, cancel).await;
        }
        let chunks: Vec<Bytes> = tokio::select! {
            _ = cancel.cancelled() => return Err(StoreError::cancelled()),
            chunks = data.try_collect() => chunks?,
        };
        let payload = PutPayload::from_iter(chunks);
        let options = PutOptions {
            attributes: attributes(modified),
            ..Default::default()
        };
        tokio::select! {
            _ = cancel.cancelled() => Err(StoreError::cancelled()),
            done = self.store.put_opts(&path, payload, options) => done.map(|_| ()).map_err(|error| self.error(key, error)),
        }
    }

    async fn copy(
        &self,
        from: &Entry,
        to: &str,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let source = self.path(&from.key)?;
        let target = self.path(to)?;
        tokio::select! {
            _ = cancel.cancelled() => Err(StoreError::cancelled()),
            done = self.store.copy(&source, &target) => done.map_err(|error| self.error(to, error)),
        }
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.error(key, error)),
        }
    }

    async fn open_uploads(&self, folder: &str) -> Result<Vec<OpenUpload>, StoreError> {
        let Some(s3) = &self.s3 else {
            return Ok(Vec::new());
        };
        s3.open_uploads(folder).await.map_err(|error| {
            StoreError::transient(format!(
                "{}/{folder}: listing open multipart uploads: {error}",
                self.name
            ))
        })
    }

    async fn abort_upload(&self, upload: &OpenUpload) -> Result<(), StoreError> {
        let Some(s3) = &self.s3 else { return Ok(()) };
        match s3.abort_upload(upload).await {
            Ok(()) => Ok(()),
            // Gone already (completed or aborted meanwhile) is fine.
            Err(error) if error.contains("NoSuchUpload") => Ok(()),
            Err(error) => Err(StoreError::transient(format!(
                "{}/{}: aborting a multipart upload left by an earlier run: {error}",
                self.name, upload.key
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_metadata_reads_back_what_was_written_and_what_rclone_writes() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("time");
        assert_eq!(parse_mtime(&format_mtime(time)), Some(time));
        assert_eq!(
            parse_mtime("1700000000.5"),
            DateTime::from_timestamp(1_700_000_000, 500_000_000)
        );
        assert_eq!(
            parse_mtime("1700000000"),
            DateTime::from_timestamp(1_700_000_000, 0)
        );
        assert_eq!(parse_mtime("yesterday"), None);
    }

    #[test]
    fn key_problems_name_the_actual_problem() {
        assert_eq!(key_problem("data/a.csv"), None);
        assert!(key_problem("data/a/../../x").is_some_and(|p| p.contains("`..`")));
        assert!(key_problem("data/bad\u{1}name").is_some_and(|p| p.contains("U+0001")));
        assert!(key_problem("data//x").is_some_and(|p| p.contains("empty")));
    }
}
