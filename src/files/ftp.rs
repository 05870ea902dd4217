//! The FTP store (`ftp://host[:port]/path/`, and `ftps://…` for explicit
//! TLS: `AUTH TLS`, then both the control and the data connections
//! encrypted, the server's certificate checked against the system's roots
//! and `tls_ca_file`). Logged-in connections are pooled per store and
//! reused across files (one operation on a connection at a time, so
//! concurrent transfers never share a control channel); a pooled
//! connection the server has closed meanwhile is replaced by a new one.
//! Listings use MLSD (exact sizes and times) when the server offers it
//! (`FEAT`); otherwise `LIST`, Unix- or DOS-style, with each file's exact
//! time from `MDTM` (a listing shows minutes at best, and unchanged files
//! are recognised by their times). Paths are relative to the folder the
//! login lands in, as RFC 1738 has it (`ftp://host/%2Fdata/` for `/data`).
//! Uploads go to a hidden partial name and are renamed into place when
//! complete, so a cancelled or failed upload never shows under the real
//! name.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::local::PARTIAL_PREFIX;
use super::remote_walk::{FolderNames, FolderReader, RemoteName, walk_remote};
use super::sorted::Spill;
use super::store::{
    ByteStream, Entry, ListStream, Store, StoreError, list_channel, read_in_background,
};
use crate::config::Secret;

pub(crate) struct FtpStore {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    /// Set for `ftps://`: how the server's certificate is checked.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `ftp://host:port`, for messages.
    name: String,
    /// `/` when paths are absolute, empty when relative to the login folder.
    root: &'static str,
    /// Whether the server lists with MLSD, learnt from `FEAT` once.
    mlsd: OnceLock<bool>,
    /// Logged-in connections not in use. Logging in costs several round
    /// trips (and a TLS handshake for FTPS), more than sending a small
    /// file; a transfer takes one from here and puts it back when done.
    idle: IdlePool,
    /// Folders this store has made (or found) on the server, so uploads
    /// into one folder do not ask for it again and again.
    made_folders: Mutex<HashSet<String>>,
}

/// Pooled connections, each with when it was last used.
type IdlePool = Arc<Mutex<Vec<(AsyncRustlsFtpStream, Instant)>>>;

/// Connections kept for reuse at most; past that (after a burst of
/// transfers) a returned connection is closed.
const MAX_IDLE: usize = 16;
/// A connection idle this long is checked with NOOP before it is reused:
/// servers drop idle sessions (vsftpd after 300 s by default).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(10);

/// A connection taken for one operation.
struct Taken {
    ftp: AsyncRustlsFtpStream,
    /// Whether it came from the pool (and so may have been closed by the
    /// server since); a new one failing is a real failure.
    reused: bool,
}

/// Puts `ftp` back into `idle` for the next operation, or closes it when
/// enough are kept.
fn give_back(idle: &IdlePool, ftp: AsyncRustlsFtpStream) {
    let mut kept = match idle.lock() {
        Ok(kept) => kept,
        Err(poisoned) => poisoned.into_inner(),
    };
    if kept.len() < MAX_IDLE {
        kept.push((ftp, Instant::now()));
        return;
    }
    drop(kept);
    let mut ftp = ftp;
    tokio::spawn(async move {
        let _ = ftp.quit().await;
    });
}

/// Whether `error` says the connection itself is gone (the server closed
/// it or is closing it), rather than the server refusing the command.
fn connection_lost(error: &suppaftp::FtpError) -> bool {
    match error {
        suppaftp::FtpError::ConnectionError(_) | suppaftp::FtpError::BadResponse => true,
        suppaftp::FtpError::UnexpectedResponse(response) => response.status.code() == 421,
        _ => false,
    }
}

impl FtpStore {
    pub(crate) fn new(
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<Secret>,
        tls: Option<Arc<rustls::ClientConfig>>,
        absolute: bool,
    ) -> Self {
        let scheme = if tls.is_some() { "ftps" } else { "ftp" };
        let name = format!("{scheme}://{host}:{port}");
        Self {
            host,
            port,
            username: username.unwrap_or_else(|| "anonymous".into()),
            password,
            tls,
            name,
            root: if absolute { "/" } else { "" },
            mlsd: OnceLock::new(),
            idle: IdlePool::default(),
            made_folders: Mutex::new(HashSet::new()),
        }
    }

    /// A logged-in connection: the most recently used idle one (checked
    /// with NOOP when it idled long), or a new one.
    async fn take(&self) -> Result<Taken, StoreError> {
        loop {
            let pooled = match self.idle.lock() {
                Ok(mut idle) => idle.pop(),
                Err(poisoned) => poisoned.into_inner().pop(),
            };
            let Some((mut ftp, since)) = pooled else {
                return Ok(Taken {
                    ftp: self.connect().await?,
                    reused: false,
                });
            };
            if since.elapsed() < CHECK_IDLE_AFTER || ftp.noop().await.is_ok() {
                return Ok(Taken { ftp, reused: true });
            }
            // Closed by the server while idle: dropped, try the next.
        }
    }

    fn give_back(&self, ftp: AsyncRustlsFtpStream) {
        give_back(&self.idle, ftp);
    }

    /// Runs `operation` on a pooled connection and hands the connection
    /// back with the result. A reused connection found closed is replaced
    /// by a new one and `operation` runs again, so only operations that
    /// are safe to repeat (nothing sent yet) go through here. The
    /// connection is kept for reuse after a refusal (it is still sound)
    /// and dropped when lost.
    async fn with_connection<T>(
        &self,
        operation: impl for<'c> Fn(
            &'c mut AsyncRustlsFtpStream,
        ) -> BoxFuture<'c, Result<T, suppaftp::FtpError>>
        + Send
        + Sync,
    ) -> Result<Result<(AsyncRustlsFtpStream, T), suppaftp::FtpError>, StoreError> {
        let Taken { mut ftp, reused } = self.take().await?;
        let mut result = operation(&mut ftp).await;
        if reused && result.as_ref().is_err_and(connection_lost) {
            tracing::debug!(server = %self.name, "a pooled connection was closed; using a new one");
            ftp = self.connect().await?;
            result = operation(&mut ftp).await;
        }
        Ok(match result {
            Ok(value) => Ok((ftp, value)),
            Err(error) => {
                if !connection_lost(&error) {
                    self.give_back(ftp);
                }
                Err(error)
            }
        })
    }

    /// The server's path for `key` (a file or folder key, `/` or not at
    /// either end); empty for the login folder itself.
    fn path_of(&self, key: &str) -> String {
        let key = key.trim_matches('/');
        if key.is_empty() {
            return self.root.to_string();
        }
        format!("{}{key}", self.root)
    }

    /// The folders (keys) down to `key` this store has not made yet.
    fn folders_to_make(&self, key: &str) -> Vec<String> {
        let made = match self.made_folders.lock() {
            Ok(made) => made,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut folders = Vec::new();
        let mut current = String::new();
        if let Some((folder, _)) = key.trim_matches('/').rsplit_once('/') {
            for part in folder.split('/').filter(|part| !part.is_empty()) {
                current.push_str(part);
                if !made.contains(&current) {
                    folders.push(current.clone());
                }
                current.push('/');
            }
        }
        folders
    }

    fn folders_made(&self, folders: Vec<String>) {
        match self.made_folders.lock() {
            Ok(mut made) => made.extend(folders),
            Err(poisoned) => poisoned.into_inner().extend(folders),
        }
    }

    fn forget_folders(&self) {
        match self.made_folders.lock() {
            Ok(mut made) => made.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    async fn offers_mlsd(&self, ftp: &mut AsyncRustlsFtpStream) -> bool {
        if let Some(known) = self.mlsd.get() {
            return *known;
        }
        // A server without FEAT is an old one: it has no MLSD either.
        let offered = ftp.feat().await.is_ok_and(|features| {
            features
                .keys()
                .any(|feature| feature.eq_ignore_ascii_case("MLST"))
        });
        *self.mlsd.get_or_init(|| offered)
    }

    /// Lists one folder into `names` line by line as the server sends
    /// it: MLSD (exact sizes and times), or LIST (a file's exact time and
    /// a link's size asked as the walk reaches them, see
    /// `FtpFolders::complete`). `false` when the folder does not exist.
    async fn list_folder(
        &self,
        ftp: &mut AsyncRustlsFtpStream,
        folder: &str,
        names: &mut FolderNames,
        refused: &mut Vec<(String, String)>,
    ) -> Result<bool, StoreError> {
        use tokio::io::AsyncBufReadExt;
        let path = self.path_of(folder);
        let mlsd = self.offers_mlsd(ftp).await;
        let verb = if mlsd { "MLSD" } else { "LIST" };
        let command = match path.is_empty() {
            true => verb.to_string(),
            false => format!("{verb} {path}"),
        };
        let opened = ftp
            .custom_data_command(
                command,
                &[suppaftp::Status::AboutToSend, suppaftp::Status::AlreadyOpen],
            )
            .await;
        let stream = match opened {
            Ok((_, stream)) => stream,
            // A missing folder lists as empty, like the other stores.
            // The server says the folder is not there.
            Err(error) if is_missing(&error) => return Ok(false),
            Err(error) => return Err(self.error(folder, error)),
        };
        let mut lines = tokio::io::BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = lines
                .read_until(b'\n', &mut line)
                .await
                .map_err(|error| self.error(folder, error))?;
            if read == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                continue;
            }
            match listed_name(text, mlsd) {
                Some(Ok(listed)) => names.push(listed)?,
                Some(Err(())) => refused.push((
                    format!("{}/?", folder.trim_end_matches('/')),
                    format!("unreadable listing line: {text}"),
                )),
                None => {}
            }
        }
        ftp.close_data_connection(lines)
            .await
            .map_err(|error| self.error(folder, error))?;
        Ok(true)
    }

    async fn connect(&self) -> Result<AsyncRustlsFtpStream, StoreError> {
        let mut ftp = AsyncRustlsFtpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| {
                StoreError::transient(format!("{}: cannot connect: {error}", self.name))
            })?;
        if let Some(config) = &self.tls {
            let connector =
                AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(Arc::clone(config)));
            ftp = ftp
                .into_secure(connector, &self.host)
                .await
                .map_err(|error| {
                    StoreError::permanent(format!(
                        "{}: TLS refused: {}; check the server's certificate (tls_ca_file) and that it offers AUTH TLS",
                        self.name,
                        error.to_string().trim()
                    ))
                })?;
        }
        let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
        ftp.login(self.username.as_str(), password)
            .await
            .map_err(|error| {
                StoreError::permanent(format!(
                    "{}: login refused for user `{}` ({}); check username and password",
                    self.name,
                    self.username,
                    error.to_string().trim()
                ))
            })?;
        ftp.transfer_type(suppaftp::types::FileType::Binary)
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))?;
        Ok(ftp)
    }

    fn error(&self, key: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::transient(format!("{}/{key}: {}", self.name, error.to_string().trim()))
    }
}

/// One FTP connection reading folders: MLSD, or LIST and MDTM (exact
/// sizes and times either way). The connection goes back to the pool when
/// the walk ends.
struct FtpFolders<'a> {
    /// `None` after a failure left it in an unknown state.
    ftp: Option<AsyncRustlsFtpStream>,
    store: &'a FtpStore,
}

#[async_trait]
impl FolderReader for FtpFolders<'_> {
    async fn read_folder(
        &mut self,
        folder: &str,
        names: &mut FolderNames,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let mut refused = Vec::new();
        let mut listed = match self.ftp.as_mut() {
            Some(ftp) => {
                self.store
                    .list_folder(ftp, folder, names, &mut refused)
                    .await
            }
            None => Err(StoreError::transient(String::new())),
        };
        if listed.is_err() {
            // The listing connection idles while copies catch up (or
            // idled in the pool), and a server may have dropped it since:
            // one try on a new one, from the start of the folder.
            tracing::debug!(folder, "listing again on a new connection");
            self.ftp = None;
            names.clear();
            refused.clear();
            let ftp = self.ftp.insert(self.store.connect().await?);
            listed = self
                .store
                .list_folder(ftp, folder, names, &mut refused)
                .await;
        }
        match listed {
            Ok(true) => Ok(Some(refused)),
            Ok(false) => Ok(None),
            Err(error) => {
                self.ftp = None;
                Err(error)
            }
        }
    }

    /// A LIST line shows a time to the minute at best, so the exact one
    /// comes from MDTM (unchanged files are recognised by their times); a
    /// link to a file has a SIZE, a link to a folder is not followed (it
    /// could loop).
    async fn complete(&mut self, path: &str, mut listed: RemoteName) -> Option<RemoteName> {
        let Some(ftp) = self.ftp.as_mut() else {
            return (!listed.is_link).then_some(listed);
        };
        let remote = self.store.path_of(path);
        if listed.is_link {
            listed.size = ftp.size(&remote).await.ok()? as u64;
            listed.is_link = false;
        }
        if !listed.exact_time {
            if let Ok(time) = ftp.mdtm(&remote).await {
                listed.modified = Some(time.and_utc());
            }
            listed.exact_time = true;
        }
        Some(listed)
    }

    async fn close(&mut self) {
        if let Some(ftp) = self.ftp.take() {
            self.store.give_back(ftp);
        }
    }
}

/// Whether the server said the folder does not exist.
fn is_missing(error: &suppaftp::FtpError) -> bool {
    matches!(error, suppaftp::FtpError::UnexpectedResponse(response)
        if [450, 501, 550].contains(&response.status.code()))
}

/// What one MLSD or LIST line names; `Err` for a line that cannot be
/// read, `None` for one that names nothing (`total N`).
fn listed_name(line: &str, mlsd: bool) -> Option<Result<RemoteName, ()>> {
    let parsed = if mlsd {
        suppaftp::list::ListParser::parse_mlsd(line)
    } else {
        parse_list_line(line)?
    };
    let Ok(file) = parsed else {
        return Some(Err(()));
    };
    let modified = Some(DateTime::<Utc>::from(file.modified()));
    Some(Ok(RemoteName {
        name: file.name().to_string(),
        is_folder: file.is_directory(),
        is_link: !mlsd && file.is_symlink(),
        size: file.size() as u64,
        modified,
        exact_time: mlsd || file.is_directory(),
    }))
}

/// A LIST line, Unix-style (`-rw-r--r-- 1 u g 6 Nov 25 19:30 name`) or
/// DOS-style (`04-08-14  03:09PM  403 name`); `None` for `total N`.
fn parse_list_line(line: &str) -> Option<Result<suppaftp::list::File, suppaftp::list::ParseError>> {
    if line.starts_with("total ") {
        return None;
    }
    Some(
        suppaftp::list::ListParser::parse_posix(line)
            .or_else(|_| suppaftp::list::ListParser::parse_dos(line)),
    )
}

/// The key of the partial file an upload to `key` writes first.
fn partial_key(key: &str) -> String {
    let (folder, name) = match key.rsplit_once('/') {
        Some((folder, name)) => (format!("{folder}/"), name),
        None => (String::new(), key),
    };
    format!("{folder}{PARTIAL_PREFIX}{}-{name}", std::process::id())
}

#[async_trait]
impl Store for FtpStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn identity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        // Keys are relative to the root: a relative and an absolute
        // location on one server are different stores.
        (&self.name, &self.username, self.root).hash(&mut hasher);
        hasher.finish()
    }

    fn time_precision(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(1)
    }

    fn list_stream(self: Arc<Self>, prefix: &str, recursive: bool) -> ListStream {
        let (sender, stream) = list_channel();
        // Keys are relative to the store's root; `read_folder` maps them.
        let root = prefix.trim_end_matches('/').to_string();
        tokio::spawn(async move {
            match self.take().await {
                Ok(Taken { ftp, .. }) => {
                    let reader = FtpFolders {
                        ftp: Some(ftp),
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
        let path = self.path_of(key);
        let looked = self
            .with_connection(|ftp| {
                let path = path.clone();
                Box::pin(async move {
                    let size = ftp.size(&path).await?;
                    let modified = ftp.mdtm(&path).await.ok().map(|time| time.and_utc());
                    Ok((size, modified))
                })
            })
            .await?;
        match looked {
            Ok((ftp, (size, modified))) => {
                self.give_back(ftp);
                Ok(Some(Entry {
                    key: key.to_string(),
                    size: size as u64,
                    modified,
                    checksum: None,
                }))
            }
            Err(error) if connection_lost(&error) => Err(self.error(key, error)),
            // No SIZE for it: not a file there.
            Err(_) => Ok(None),
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let path = self.path_of(key);
        let (mut ftp, data) = self
            .with_connection(|ftp| {
                let path = path.clone();
                Box::pin(async move { ftp.retr_as_stream(path).await })
            })
            .await?
            .map_err(|error| self.error(key, error))?;
        // The connection lives until the download is read and confirmed,
        // then goes back to the pool.
        let idle = Arc::clone(&self.idle);
        Ok(read_in_background(
            data,
            format!("{}/{key}", self.name),
            |data| async move {
                let confirmed = ftp
                    .finalize_retr_stream(data)
                    .await
                    .map_err(|error| error.to_string());
                if confirmed.is_ok() {
                    give_back(&idle, ftp);
                }
                confirmed
            },
        ))
    }

    async fn put(
        &self,
        key: &str,
        size: u64,
        _modified: Option<DateTime<Utc>>,
        mut data: ByteStream,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let target = self.path_of(key);
        let partial = self.path_of(&partial_key(key));
        let folders = self.folders_to_make(key);
        let (mut ftp, mut upload) = self
            .with_connection(|ftp| {
                let folders: Vec<String> =
                    folders.iter().map(|folder| self.path_of(folder)).collect();
                let partial = partial.clone();
                Box::pin(async move {
                    // Existing folders refuse, which is fine.
                    for folder in &folders {
                        if let Err(error) = ftp.mkdir(folder).await
                            && connection_lost(&error)
                        {
                            return Err(error);
                        }
                    }
                    ftp.put_with_stream(&partial).await
                })
            })
            .await?
            .map_err(|error| self.error(key, error))?;
        self.folders_made(folders);
        let written: Result<(), StoreError> = async {
            loop {
                let chunk = tokio::select! {
                    _ = cancel.cancelled() => return Err(StoreError::cancelled()),
                    chunk = data.next() => chunk,
                };
                let Some(chunk) = chunk else {
                    // Everything written: close the TLS session and wait
                    // for the server to close its side, so it has read
                    // every byte (dropping the stream can lose the last
                    // ones).
                    upload
                        .shutdown()
                        .await
                        .map_err(|error| self.error(key, error))?;
                    let mut rest = Vec::new();
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        tokio::io::AsyncReadExt::read_to_end(&mut upload, &mut rest),
                    )
                    .await;
                    return Ok(());
                };
                upload
                    .write_all(&chunk?)
                    .await
                    .map_err(|error| self.error(key, error))?;
            }
        }
        .await;
        let result = match written {
            Ok(()) => match ftp.finalize_put_stream(upload).await {
                // The server's own count, before the file takes its name
                // (a server without SIZE is taken at its word).
                Ok(()) => match ftp.size(&partial).await {
                    Ok(stored) if stored as u64 != size => Err(self.error(
                        key,
                        format!(
                            "the server stored {stored} of {size} bytes; the upload is retried"
                        ),
                    )),
                    _ => ftp
                        .rename(&partial, &target)
                        .await
                        .map_err(|error| self.error(key, error)),
                },
                Err(error) => Err(self.error(key, error)),
            },
            Err(error) => {
                drop(upload);
                Err(error)
            }
        };
        match result {
            Ok(()) => self.give_back(ftp),
            Err(_) => {
                // The control channel may be mid-transfer: it is not
                // reused, and the cleanup goes over another one. A folder
                // may have gone too: the next upload asks for them again.
                drop(ftp);
                self.forget_folders();
                if let Ok(Ok((ftp, ()))) = self
                    .with_connection(|ftp| {
                        let partial = partial.clone();
                        Box::pin(async move { ftp.rm(partial).await })
                    })
                    .await
                {
                    self.give_back(ftp);
                }
            }
        }
        result
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key);
        let removed = self
            .with_connection(|ftp| {
                let path = path.clone();
                Box::pin(async move { ftp.rm(path).await })
            })
            .await?;
        match removed {
            Ok((ftp, ())) => {
                self.give_back(ftp);
                Ok(())
            }
            // Already gone.
            Err(suppaftp::FtpError::UnexpectedResponse(response))
                if response.status.code() == 550 =>
            {
                Ok(())
            }
            Err(error) => Err(self.error(key, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_and_dos_listings_give_names_sizes_and_kinds() {
        let unix = parse_list_line("-rw-r--r--    1 1001     1001         6 Nov 25 19:30 a b.csv")
            .and_then(Result::ok)
            .expect("unix line");
        assert_eq!(
            (unix.name(), unix.size(), unix.is_directory()),
            ("a b.csv", 6, false)
        );
        let dos = parse_list_line("04-08-14  03:09PM                  403 readme.txt")
            .and_then(Result::ok)
            .expect("dos file");
        assert_eq!(
            (dos.name(), dos.size(), dos.is_directory()),
            ("readme.txt", 403, false)
        );
        let folder = parse_list_line("10-19-20  03:19PM       <DIR>          pub")
            .and_then(Result::ok)
            .expect("dos folder");
        assert!(folder.is_directory());
        assert!(parse_list_line("total 12").is_none());
        assert!(parse_list_line("garbage").is_some_and(|parsed| parsed.is_err()));
    }

    #[test]
    fn partial_files_sit_next_to_their_target() {
        let id = std::process::id();
        assert_eq!(
            partial_key("in/a.csv"),
            format!("in/{PARTIAL_PREFIX}{id}-a.csv")
        );
        assert_eq!(partial_key("a.csv"), format!("{PARTIAL_PREFIX}{id}-a.csv"));
    }
}
