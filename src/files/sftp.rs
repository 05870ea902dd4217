//! The SFTP store (`sftp://host[:port]/path`, the path absolute on the
//! server). Connecting, the host key check and logging in are in `ssh`.
//! SSH connections with an SFTP session on each are pooled per store and
//! reused across files (a handshake costs more than a small file); a
//! listing walks on a connection of its own. Uploads go to a hidden partial name
//! and are renamed into place when complete (over an existing file in one
//! step where the server offers `posix-rename@openssh.com`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use russh_sftp::client::{RawSftpSession, SftpSession};
use russh_sftp::protocol::{Packet, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::local::PARTIAL_PREFIX;
use super::remote_walk::{FolderNames, FolderReader, RemoteName, walk_remote};
use super::sorted::Spill;
use super::ssh::{self, HostKeyCheck, Login, Target};
use super::store::{
    ByteStream, Entry, ListStream, Store, StoreError, list_channel, read_in_background,
};

pub(crate) struct SftpStore {
    host: String,
    port: u16,
    username: String,
    login: Login,
    host_key: Option<HostKeyCheck>,
    name: String,
    /// Sessions not in use: a transfer takes one and puts it back when
    /// done, so files after the first skip the SSH handshake and login.
    idle: IdleSessions,
    /// Folders known to exist on the server (made or found by an upload),
    /// so uploads into one folder do not ask for each parent again.
    made_folders: Mutex<HashSet<String>>,
}

/// An SSH connection and the SFTP session on it.
struct Session {
    ssh: russh::client::Handle<ssh::Client>,
    sftp: SftpSession,
}

type IdleSessions = Arc<Mutex<Vec<Session>>>;

/// Sessions kept for reuse at most; past that a returned one is closed.
const MAX_IDLE: usize = 16;

/// Puts `session` back for the next operation, or closes it when enough
/// are kept.
fn give_back(idle: &IdleSessions, session: Session) {
    let mut kept = match idle.lock() {
        Ok(kept) => kept,
        Err(poisoned) => poisoned.into_inner(),
    };
    if kept.len() < MAX_IDLE && !session.ssh.is_closed() {
        kept.push(session);
    }
}

/// Whether `error` says the session itself is gone, rather than the
/// server refusing the request with a status.
fn session_lost(error: &russh_sftp::client::error::Error) -> bool {
    !matches!(error, russh_sftp::client::error::Error::Status(_))
}

impl SftpStore {
    pub(crate) fn new(
        host: String,
        port: u16,
        username: Option<String>,
        login: Login,
        host_key: Option<HostKeyCheck>,
    ) -> Self {
        let name = format!("sftp://{host}:{port}");
        let username =
            username.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
        Self {
            host,
            port,
            username,
            login,
            host_key,
            name,
            idle: IdleSessions::default(),
            made_folders: Mutex::new(HashSet::new()),
        }
    }

    fn made_folders(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        match self.made_folders.lock() {
            Ok(made) => made,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn open_session(&self) -> Result<Session, StoreError> {
        let ssh = self.connect().await?;
        let sftp = self.sftp_on(&ssh).await?;
        Ok(Session { ssh, sftp })
    }

    /// A session: the most recently used idle one whose connection is
    /// still open, or a new one; `true` with a reused one (the server may
    /// have ended it since, which only a request tells).
    async fn take(&self) -> Result<(Session, bool), StoreError> {
        loop {
            let pooled = match self.idle.lock() {
                Ok(mut idle) => idle.pop(),
                Err(poisoned) => poisoned.into_inner().pop(),
            };
            match pooled {
                Some(session) if !session.ssh.is_closed() => return Ok((session, true)),
                Some(_) => continue,
                None => return Ok((self.open_session().await?, false)),
            }
        }
    }

    async fn connect(&self) -> Result<russh::client::Handle<ssh::Client>, StoreError> {
        let target = Target {
            host: &self.host,
            port: self.port,
            username: &self.username,
            name: &self.name,
        };
        ssh::connect(&target, self.host_key.as_ref(), &self.login).await
    }

    async fn channel_on<H: russh::client::Handler>(
        &self,
        ssh: &russh::client::Handle<H>,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, StoreError> {
        let channel = ssh
            .channel_open_session()
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|error| {
                StoreError::transient(format!("{}: no SFTP subsystem: {error}", self.name))
            })?;
        Ok(channel.into_stream())
    }

    async fn sftp_on<H: russh::client::Handler>(
        &self,
        ssh: &russh::client::Handle<H>,
    ) -> Result<SftpSession, StoreError> {
        SftpSession::new(self.channel_on(ssh).await?)
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))
    }

    /// A bare SFTP session on `ssh`, for listing folders batch by batch.
    async fn raw_sftp_on<H: russh::client::Handler>(
        &self,
        ssh: &russh::client::Handle<H>,
    ) -> Result<RawSftpSession, StoreError> {
        let sftp = RawSftpSession::new(self.channel_on(ssh).await?);
        sftp.init()
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))?;
        Ok(sftp)
    }

    /// Puts `partial` in the place of an existing `target` in one step
    /// with OpenSSH's `posix-rename@openssh.com`, so readers never find
    /// the file missing; a server without it gets remove, then rename.
    async fn replace<H: russh::client::Handler>(
        &self,
        ssh: &russh::client::Handle<H>,
        sftp: &SftpSession,
        partial: &str,
        target: &str,
    ) -> Result<(), String> {
        // SftpSession does not expose extensions: a raw session on a
        // second channel of the same connection asks for them.
        let raw = RawSftpSession::new(self.channel_on(ssh).await.map_err(|e| e.message)?);
        let offered = raw
            .init()
            .await
            .map(|version| version.extensions.contains_key(POSIX_RENAME))
            .unwrap_or(false);
        if offered {
            let mut request = Vec::new();
            for path in [partial, target] {
                let length = u32::try_from(path.len()).map_err(|_| "path too long".to_string())?;
                request.extend_from_slice(&length.to_be_bytes());
                request.extend_from_slice(path.as_bytes());
            }
            let reply = raw.extended(POSIX_RENAME, request).await;
            let _ = raw.close_session();
            return match reply {
                Ok(Packet::Status(status)) if status.status_code == StatusCode::Ok => Ok(()),
                Ok(Packet::Status(status)) => Err(status.error_message),
                Ok(_) => Err("unexpected reply to posix-rename".into()),
                Err(error) => Err(error.to_string()),
            };
        }
        let _ = raw.close_session();
        let _ = sftp.remove_file(target.to_string()).await;
        sftp.rename(partial.to_string(), target.to_string())
            .await
            .map_err(|error| error.to_string())
    }

    fn error(&self, key: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::transient(format!("{}/{key}: {error}", self.name))
    }
}

const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// One SFTP session reading folders. It asks for a folder's names batch
/// by batch (OpenDir, then ReadDir until the end), so a folder of millions
/// of names reaches the walk's sorter as the server sends it, never whole.
struct SftpFolders<'a> {
    /// The connection the session runs on, kept open with it.
    ssh: russh::client::Handle<ssh::Client>,
    sftp: RawSftpSession,
    store: &'a SftpStore,
}

impl SftpFolders<'_> {
    /// Reads the open folder `handle` to its end into `names`.
    async fn read_all(
        &self,
        folder: &str,
        handle: &str,
        names: &mut FolderNames,
    ) -> Result<(), StoreError> {
        loop {
            let batch = match self.sftp.readdir(handle).await {
                Ok(batch) => batch,
                Err(russh_sftp::client::error::Error::Status(status))
                    if status.status_code == StatusCode::Eof =>
                {
                    return Ok(());
                }
                Err(error) => return Err(self.store.error(folder, error)),
            };
            for file in batch.files {
                names.push(RemoteName::exact(
                    file.filename,
                    file.attrs.is_dir(),
                    file.attrs.size.unwrap_or(0),
                    modified(file.attrs.mtime),
                ))?;
            }
        }
    }
}

#[async_trait]
impl FolderReader for SftpFolders<'_> {
    async fn read_folder(
        &mut self,
        folder: &str,
        names: &mut FolderNames,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let opened = match self.sftp.opendir(folder).await {
            // The listing session idles while copies catch up, and a server
            // may have dropped it since: one fresh try on a new session.
            Err(error) if session_lost(&error) => {
                tracing::debug!(folder, %error, "listing again on a new session");
                self.ssh = self.store.connect().await?;
                self.sftp = self.store.raw_sftp_on(&self.ssh).await?;
                self.sftp.opendir(folder).await
            }
            opened => opened,
        };
        let handle = match opened {
            Ok(handle) => handle.handle,
            // A missing folder lists as empty, like the other stores.
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                return Ok(None);
            }
            Err(error) => return Err(self.store.error(folder, error)),
        };
        let read = self.read_all(folder, &handle, names).await;
        let _ = self.sftp.close(handle).await;
        read.map(|()| Some(Vec::new()))
    }

    async fn close(&mut self) {
        let _ = self.sftp.close_session();
    }
}

/// Makes the folders down to `folder` where missing (unless `known` to
/// exist), then creates the partial file an upload writes.
async fn create_in(
    sftp: &SftpSession,
    folder: &str,
    known: bool,
    partial: &str,
) -> Result<russh_sftp::client::fs::File, russh_sftp::client::error::Error> {
    let mut current = String::new();
    let parts = folder.split('/').filter(|part| !part.is_empty());
    for part in parts.filter(|_| !known) {
        current.push('/');
        current.push_str(part);
        match sftp.try_exists(current.clone()).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = sftp.create_dir(current.clone()).await;
            }
            Err(error) if session_lost(&error) => return Err(error),
            Err(_) => {}
        }
    }
    sftp.create(partial.to_string()).await
}

fn path_of(key: &str) -> String {
    format!("/{}", key.trim_end_matches('/'))
}

fn modified(mtime: Option<u32>) -> Option<DateTime<Utc>> {
    mtime.and_then(|seconds| DateTime::from_timestamp(i64::from(seconds), 0))
}

#[async_trait]
impl Store for SftpStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn identity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        ("sftp", &self.host, self.port, &self.username).hash(&mut hasher);
        hasher.finish()
    }

    fn time_precision(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(1)
    }

    fn list_stream(self: Arc<Self>, prefix: &str, recursive: bool) -> ListStream {
        let (sender, stream) = list_channel();
        let root = path_of(prefix);
        tokio::spawn(async move {
            let opened = match self.connect().await {
                Ok(ssh) => self.raw_sftp_on(&ssh).await.map(|sftp| (ssh, sftp)),
                Err(error) => Err(error),
            };
            match opened {
                Ok((ssh, sftp)) => {
                    let reader = SftpFolders {
                        ssh,
                        sftp,
                        store: &self,
                    };
                    walk_remote(reader, &root, recursive, &Spill::from_env(), &sender).await;
                }
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                }
            }
        });
        stream
    }

    async fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        if key.ends_with('/') || key.is_empty() {
            return Ok(None);
        }
        let (mut session, reused) = self.take().await?;
        let mut found = session.sftp.metadata(path_of(key)).await;
        if reused && found.as_ref().is_err_and(session_lost) {
            session = self.open_session().await?;
            found = session.sftp.metadata(path_of(key)).await;
        }
        let found = match found {
            Ok(metadata) => Some(metadata).filter(|metadata| !metadata.is_dir()),
            Err(error) if session_lost(&error) => return Err(self.error(key, error)),
            Err(_) => None,
        };
        give_back(&self.idle, session);
        Ok(found.map(|metadata| Entry {
            key: key.to_string(),
            size: metadata.size.unwrap_or(0),
            modified: modified(metadata.mtime),
            checksum: None,
        }))
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let (mut session, reused) = self.take().await?;
        let mut opened = session.sftp.open(path_of(key)).await;
        if reused && opened.as_ref().is_err_and(session_lost) {
            session = self.open_session().await?;
            opened = session.sftp.open(path_of(key)).await;
        }
        let file = match opened {
            Ok(file) => file,
            Err(error) => {
                if !session_lost(&error) {
                    give_back(&self.idle, session);
                }
                return Err(self.error(key, error));
            }
        };
        // The session lives until the file is read, then goes back.
        let idle = Arc::clone(&self.idle);
        Ok(read_in_background(
            file,
            format!("{}/{key}", self.name),
            |mut file| async move {
                let closed = file.shutdown().await;
                if closed.is_ok() {
                    give_back(&idle, session);
                }
                Ok(())
            },
        ))
    }

    async fn put(
        &self,
        key: &str,
        _size: u64,
        _modified: Option<DateTime<Utc>>,
        mut data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let target = path_of(key);
        let (folder, name) = target.rsplit_once('/').unwrap_or(("", &target));
        let partial = format!("{folder}/{PARTIAL_PREFIX}{}-{name}", std::process::id());
        let (mut session, reused) = self.take().await?;
        let known = self.made_folders().contains(folder);
        let mut created = create_in(&session.sftp, folder, known, &partial).await;
        if reused && created.as_ref().is_err_and(session_lost) {
            session = self.open_session().await?;
            created = create_in(&session.sftp, folder, known, &partial).await;
        }
        if created.is_ok() {
            self.made_folders().insert(folder.to_string());
        }
        let Session { ssh, sftp } = &session;
        let result: Result<(), StoreError> = async {
            let mut file = created.map_err(|error| self.error(key, error))?;
            loop {
                let chunk = tokio::select! {
                    _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                    chunk = data.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                file.write_all(&chunk?)
                    .await
                    .map_err(|error| self.error(key, error))?;
            }
            file.shutdown()
                .await
                .map_err(|error| self.error(key, error))?;
            if sftp.try_exists(target.clone()).await.unwrap_or(false) {
                self.replace(ssh, sftp, &partial, &target)
                    .await
                    .map_err(|error| self.error(key, error))
            } else {
                sftp.rename(partial.clone(), target.clone())
                    .await
                    .map_err(|error| self.error(key, error))
            }
        }
        .await;
        match result {
            Ok(()) => give_back(&self.idle, session),
            Err(_) => {
                // A folder may have gone: the next upload asks again.
                self.made_folders().clear();
                // Not reused: the failure may have left the session unsound.
                let _ = session.sftp.remove_file(partial).await;
                let _ = session.sftp.close().await;
            }
        }
        result
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let path = path_of(key);
        let (mut session, reused) = self.take().await?;
        let mut removed = session.sftp.remove_file(path.clone()).await;
        if reused && removed.as_ref().is_err_and(session_lost) {
            session = self.open_session().await?;
            removed = session.sftp.remove_file(path.clone()).await;
        }
        let removed = match removed {
            Ok(()) => Ok(()),
            Err(_) if !session.sftp.try_exists(path).await.unwrap_or(true) => Ok(()),
            Err(error) => Err(self.error(key, error)),
        };
        give_back(&self.idle, session);
        removed
    }
}
