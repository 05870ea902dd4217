//! The storage interface file sync works against, and its object_store
//! backend (S3 and S3-compatible servers, GCS, Azure, memory).
//!
//! Keys are `/`-separated and relative to the store's root. Writes are
//! atomic from a reader's point of view: a cancelled or failed write leaves
//! the old object (or none), never a partial one.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use object_store::ObjectStore;
use tokio_util::sync::CancellationToken;

use super::object::ObjectStoreBackend;
pub(crate) use super::s3_api::OpenUpload;
use super::ssh::{HostKeyCheck, Login};
use crate::config::StoreOptions;
use crate::config::location::LocationSpec;

/// A stream of file contents.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// One listed object.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    /// A content checksum when the store gives one (S3 ETag).
    pub checksum: Option<String>,
}

/// A listing: the objects, plus names that could not be listed as objects
/// (they are reported as failed, never dropped).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub entries: Vec<Entry>,
    pub refused: Vec<(String, String)>,
    /// Keys of partial files an earlier run left behind when it died: a
    /// run removes them, a plan only reads.
    pub leftovers: Vec<String>,
    /// Zero-byte `dir/` keys (folders made by the AWS console, Hadoop,
    /// s3fs): folders, not files, so never synced.
    pub folder_markers: Vec<String>,
}

/// One thing a streamed listing found.
#[derive(Debug)]
pub(crate) enum ListItem {
    File(Entry),
    /// A name that cannot be listed as an object, with the reason.
    Refused(String, String),
    /// A partial file a dead earlier run left behind (its key).
    Leftover(String),
    /// A zero-byte `dir/` key.
    FolderMarker(String),
    /// The listed folder itself does not exist (local files, FTP, SFTP).
    /// Object stores have no folders: a prefix with nothing under it is
    /// simply empty and never says this.
    MissingRoot,
}

/// A listing as it arrives. Its files come in one canonical order, by key
/// as bytes, so two listings can be merged without holding either;
/// refused names, leftovers and markers come in any order.
pub(crate) type ListStream = BoxStream<'static, Result<ListItem, StoreError>>;

/// Listed items a producer may run ahead of the consumer.
const LIST_AHEAD: usize = 256;

/// A bounded channel whose receiving end is a [`ListStream`]: the producer
/// stops (its sends fail) once the stream is dropped.
pub(crate) fn list_channel() -> (
    tokio::sync::mpsc::Sender<Result<ListItem, StoreError>>,
    ListStream,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(LIST_AHEAD);
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .boxed();
    (sender, stream)
}

impl Listing {
    /// The listing as a stream, files sorted by key.
    pub(crate) fn into_stream(mut self) -> ListStream {
        self.entries.sort_by(|a, b| a.key.cmp(&b.key));
        let items = self
            .refused
            .into_iter()
            .map(|(name, reason)| ListItem::Refused(name, reason))
            .chain(self.leftovers.into_iter().map(ListItem::Leftover))
            .chain(self.folder_markers.into_iter().map(ListItem::FolderMarker))
            .chain(self.entries.into_iter().map(ListItem::File))
            .map(Ok);
        futures::stream::iter(items).boxed()
    }
}

pub(crate) type ListSender = tokio::sync::mpsc::Sender<Result<ListItem, StoreError>>;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub message: String,
    /// Worth trying again (network, throttling), as opposed to a refusal.
    pub transient: bool,
}

impl StoreError {
    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }
    pub(crate) fn cancelled() -> Self {
        Self::permanent("cancelled")
    }
}

#[async_trait]
pub(crate) trait Store: Send + Sync + 'static {
    /// A name for messages, with no secrets: `s3://bucket`, `local`.
    fn describe(&self) -> String;
    /// Equal for two stores when one can copy between them server-side.
    fn identity(&self) -> u64;
    /// How precisely the store keeps modification times.
    fn time_precision(&self) -> chrono::TimeDelta;
    /// Whether listed times are when objects were written (object stores),
    /// not a file's own modification time.
    fn lists_upload_times(&self) -> bool {
        false
    }
    /// Lists under `prefix` (empty, or ending with `/`), one level or all,
    /// as a stream whose files come in key order (as bytes): a store walks
    /// folders in that order, or pages of keys that come in it, so memory
    /// holds a folder or a page, never the whole listing.
    fn list_stream(self: Arc<Self>, prefix: &str, recursive: bool) -> ListStream;
    /// The object at `key`, if there is one.
    async fn head(&self, key: &str) -> Result<Option<Entry>, StoreError>;
    async fn get(&self, key: &str) -> Result<ByteStream, StoreError>;
    /// Writes `data` (of `size` bytes) to `key`, all or nothing. `modified`
    /// is the source's time, kept where the store allows.
    async fn put(
        &self,
        key: &str,
        size: u64,
        modified: Option<DateTime<Utc>>,
        data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError>;
    /// Copies within this store, without moving the bytes through syncdeck
    /// where the store can; by default the bytes stream through.
    async fn copy(
        &self,
        from: &Entry,
        to: &str,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let data = self.get(&from.key).await?;
        self.put(to, from.size, from.modified, data, cancel).await
    }
    /// Deletes `key` (a partial file left by a dead run); one already gone is fine.
    async fn remove(&self, key: &str) -> Result<(), StoreError>;
    /// The source modification time kept with the object at `key` when it
    /// was written, where the store keeps one.
    async fn recorded_modified(&self, _key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }
    /// Multipart uploads open under `folder` (a run started before this
    /// one left them, as its process died).
    async fn open_uploads(&self, _folder: &str) -> Result<Vec<OpenUpload>, StoreError> {
        Ok(Vec::new())
    }
    /// Aborts one upload [`Store::open_uploads`] gave; one gone already is fine.
    async fn abort_upload(&self, _upload: &OpenUpload) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How long a partial file on a server must sit untouched before a run
/// removes it: a server cannot tell whether its writer still runs, and
/// FTP and SFTP servers drop idle transfers long before this.
pub(crate) const REMOTE_LEFTOVER_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Whether a partial file last written at `modified` is old enough to be
/// a dead run's leftover on a server.
pub(crate) fn stale_on_server(modified: Option<DateTime<Utc>>) -> bool {
    modified.is_some_and(|modified| Utc::now() - modified >= REMOTE_LEFTOVER_AGE)
}

/// Opens the store a location lives in.
pub(crate) fn open(
    spec: &LocationSpec,
    options: &StoreOptions,
    base_dir: &std::path::Path,
) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        LocationSpec::Local(_) => Ok(Arc::new(super::local::LocalStore::new())),
        LocationSpec::S3 { bucket, .. } => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry_config())
                .with_client_options(client_options());
            if let Some(key) = &options.aws_access_key_id {
                builder = builder.with_access_key_id(key.expose());
            }
            if let Some(secret) = &options.aws_secret_access_key {
                builder = builder.with_secret_access_key(secret.expose());
            }
            if let Some(token) = &options.aws_session_token {
                builder = builder.with_token(token.expose());
            }
            if let Some(region) = &options.region_name {
                builder = builder.with_region(region);
            }
            if let Some(endpoint) = &options.endpoint {
                let allow_http = options
                    .allow_http
                    .unwrap_or(endpoint.starts_with("http://"));
                builder = builder.with_endpoint(endpoint).with_allow_http(allow_http);
            }
            let store = builder
                .clone()
                .build()
                .map_err(|error| StoreError::permanent(format!("s3://{bucket}: {error}")))?;
            let api = super::s3_api::S3Api::new(&builder, &store, bucket, client_options())
                .map_err(|error| StoreError::permanent(format!("s3://{bucket}: {error}")))?;
            let identity = identity_of(&[
                "s3",
                bucket,
                options.endpoint.as_deref().unwrap_or(""),
                options
                    .aws_access_key_id
                    .as_ref()
                    .map(|k| k.expose())
                    .unwrap_or(""),
            ]);
            Ok(Arc::new(ObjectStoreBackend {
                store: Arc::new(store),
                name: format!("s3://{bucket}"),
                identity,
                s3: Some(api),
            }))
        }
        LocationSpec::Gcs { bucket, .. } => {
            Ok(Arc::new(super::cloud::open_gcs(bucket, options, base_dir)?))
        }
        LocationSpec::Azure { container, .. } => {
            Ok(Arc::new(super::cloud::open_azure(container, options)?))
        }
        LocationSpec::Ftp {
            host,
            port,
            tls,
            absolute,
            ..
        } => {
            let tls = match tls {
                false => None,
                true => {
                    let config = crate::tls::roots(options.tls_ca_file.as_deref())
                        .and_then(crate::tls::verifying_client)
                        .map_err(|error| {
                            StoreError::permanent(format!("ftps://{host}: tls_ca_file {error}"))
                        })?;
                    Some(Arc::new(config))
                }
            };
            Ok(Arc::new(super::ftp::FtpStore::new(
                options.host.clone().unwrap_or_else(|| host.clone()),
                options.port.or(*port).unwrap_or(21),
                options.username.clone(),
                options.password.clone(),
                tls,
                *absolute,
            )))
        }
        LocationSpec::Sftp { host, port, .. } => {
            let resolve = |path: &std::path::Path| crate::config::resolve_relative(base_dir, path);
            let host_key = match (&options.host_key_fingerprint, &options.known_hosts) {
                (Some(fingerprint), _) => Some(HostKeyCheck::Fingerprint(fingerprint.clone())),
                (None, Some(path)) => Some(HostKeyCheck::KnownHosts(resolve(path))),
                (None, None) => {
                    crate::config::location::default_known_hosts().map(HostKeyCheck::KnownHosts)
                }
            };
            let login = match (&options.private_key_file, &options.password) {
                (Some(path), _) => {
                    Login::key(resolve(path), options.private_key_passphrase.clone())
                }
                (None, Some(password)) => Login::Password(password.clone()),
                (None, None) => Login::Agent,
            };
            Ok(Arc::new(super::sftp::SftpStore::new(
                options.host.clone().unwrap_or_else(|| host.clone()),
                options.port.or(*port).unwrap_or(22),
                options.username.clone(),
                login,
                host_key,
            )))
        }
        LocationSpec::Memory { name, .. } => Ok(Arc::new(ObjectStoreBackend {
            store: memory_store(name),
            name: format!("memory://{name}"),
            identity: identity_of(&["memory", name]),
            s3: None,
        })),
    }
}

/// object_store's own retries of failed requests. Its default keeps trying
/// for three minutes; an operator should hear about a dead endpoint sooner,
/// and syncdeck retries whole files on top of this.
pub(crate) fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
    }
}

pub(crate) fn client_options() -> object_store::ClientOptions {
    object_store::ClientOptions::new().with_connect_timeout(std::time::Duration::from_secs(5))
}

pub(crate) fn identity_of(parts: &[&str]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

/// The process-wide in-memory store named `name` (`memory://name/…`).
pub fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    let mut stores = match stores.lock() {
        Ok(stores) => stores,
        Err(poisoned) => poisoned.into_inner(),
    };
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(object_store::memory::InMemory::new()))
        .clone()
}

/// Bytes read from a remote download at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Streams a download that holds a connection: a task reads `reader` in
/// chunks into a small channel, then hands it to `finish` (to close the
/// transfer and the connection), reporting a failure there as the last item.
pub(crate) fn read_in_background<R, F, Fut>(mut reader: R, name: String, finish: F) -> ByteStream
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    F: FnOnce(R) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    use tokio::io::AsyncReadExt;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, StoreError>>(4);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) => break,
                Ok(read) => {
                    if sender
                        .send(Ok(Bytes::copy_from_slice(&buffer[..read])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(error) => {
                    let _ = sender
                        .send(Err(StoreError::transient(format!("{name}: {error}"))))
                        .await;
                    break;
                }
            }
        }
        if let Err(error) = finish(reader).await {
            let _ = sender
                .send(Err(StoreError::transient(format!("{name}: {error}"))))
                .await;
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .boxed()
}
