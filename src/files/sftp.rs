//! The SFTP store (`sftp://host[:port]/path`). The server's host key is
//! always checked, against `host_key_fingerprint` (`SHA256:…`, as
//! `ssh-keygen -l` prints it) or a `known_hosts` file; without either the
//! connection is refused. One SSH connection per operation; uploads go to
//! a hidden partial name and are renamed into place when complete.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use russh_sftp::client::SftpSession;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::local::PARTIAL_PREFIX;
use super::store::{ByteStream, Entry, Listed, Listing, Store, StoreError, read_in_background};
use crate::config::Secret;

/// How the server proves who it is.
#[derive(Clone)]
pub(crate) enum HostKeyCheck {
    Fingerprint(String),
    KnownHosts(PathBuf),
}

pub(crate) struct SftpStore {
    host: String,
    port: u16,
    username: String,
    password: Option<Secret>,
    host_key: Option<HostKeyCheck>,
    name: String,
}

struct Client {
    host: String,
    port: u16,
    check: Option<HostKeyCheck>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not trusted: only a pinned or known key is.
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = presented else {
            return Ok(false);
        };
        Ok(match &self.check {
            Some(HostKeyCheck::Fingerprint(expected)) => {
                key.fingerprint(russh::keys::HashAlg::Sha256).to_string() == expected.trim()
            }
            Some(HostKeyCheck::KnownHosts(path)) => {
                russh::keys::check_known_hosts_path(&self.host, self.port, key, path)
                    .unwrap_or(false)
            }
            None => false,
        })
    }
}

impl SftpStore {
    pub(crate) fn new(
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<Secret>,
        host_key: Option<HostKeyCheck>,
    ) -> Self {
        let name = format!("sftp://{host}:{port}");
        let username =
            username.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
        Self {
            host,
            port,
            username,
            password,
            host_key,
            name,
        }
    }

    async fn session(&self) -> Result<SftpSession, StoreError> {
        if self.host_key.is_none() {
            return Err(StoreError::permanent(format!(
                "{}: no way to check the server's host key; set host_key_fingerprint (\"SHA256:…\") or known_hosts in sync_config",
                self.name
            )));
        }
        let handler = Client {
            host: self.host.clone(),
            port: self.port,
            check: self.host_key.clone(),
        };
        let config = Arc::new(russh::client::Config::default());
        let mut handle = russh::client::connect(config, (self.host.as_str(), self.port), handler)
            .await
            .map_err(|error| {
                let reason = match error {
                    russh::Error::UnknownKey => {
                        "the server's host key does not match host_key_fingerprint / known_hosts"
                            .to_string()
                    }
                    other => other.to_string(),
                };
                StoreError::permanent(format!("{}: cannot connect: {reason}", self.name))
            })?;
        let password = self
            .password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or("")
            .to_string();
        let auth = handle
            .authenticate_password(self.username.clone(), password)
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))?;
        if !auth.success() {
            return Err(StoreError::permanent(format!(
                "{}: login refused for user `{}`; check username and password",
                self.name, self.username
            )));
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|error| {
                StoreError::transient(format!("{}: no SFTP subsystem: {error}", self.name))
            })?;
        SftpSession::new(channel.into_stream())
            .await
            .map_err(|error| StoreError::transient(format!("{}: {error}", self.name)))
    }

    fn error(&self, key: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::transient(format!("{}/{key}: {error}", self.name))
    }
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

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Listing, StoreError> {
        let sftp = self.session().await?;
        let mut listing = Listing::default();
        let root = path_of(prefix);
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            let entries = match sftp.read_dir(folder.clone()).await {
                Ok(entries) => entries,
                // A missing folder lists as empty, like the other stores.
                Err(_) if !sftp.try_exists(folder.clone()).await.unwrap_or(true) => {
                    listing.missing |= folder == root;
                    continue;
                }
                Err(error) => return Err(self.error(&folder, error)),
            };
            for entry in entries {
                let name = entry.file_name();
                let metadata = entry.metadata();
                let listed = Listed {
                    folder: &folder,
                    name: &name,
                    is_folder: metadata.is_dir(),
                    size: metadata.size.unwrap_or(0),
                    modified: modified(metadata.mtime),
                };
                listing.add_listed(listed, recursive, &mut folders);
            }
        }
        let _ = sftp.close().await;
        Ok(listing)
    }

    async fn head(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        if key.ends_with('/') || key.is_empty() {
            return Ok(None);
        }
        let sftp = self.session().await?;
        let found = sftp
            .metadata(path_of(key))
            .await
            .ok()
            .filter(|metadata| !metadata.is_dir());
        let _ = sftp.close().await;
        Ok(found.map(|metadata| Entry {
            key: key.to_string(),
            size: metadata.size.unwrap_or(0),
            modified: modified(metadata.mtime),
            checksum: None,
        }))
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let sftp = self.session().await?;
        let file = sftp
            .open(path_of(key))
            .await
            .map_err(|error| self.error(key, error))?;
        // The session lives until the file is read.
        Ok(read_in_background(
            file,
            format!("{}/{key}", self.name),
            |mut file| async move {
                let _ = file.shutdown().await;
                let _ = sftp.close().await;
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
        let sftp = self.session().await?;
        let mut current = String::new();
        for part in folder.split('/').filter(|part| !part.is_empty()) {
            current.push('/');
            current.push_str(part);
            if !sftp.try_exists(current.clone()).await.unwrap_or(false) {
                let _ = sftp.create_dir(current.clone()).await;
            }
        }
        let result: Result<(), StoreError> = async {
            let mut file = sftp
                .create(partial.clone())
                .await
                .map_err(|error| self.error(key, error))?;
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
                let _ = sftp.remove_file(target.clone()).await;
            }
            sftp.rename(partial.clone(), target.clone())
                .await
                .map_err(|error| self.error(key, error))
        }
        .await;
        if result.is_err() {
            let _ = sftp.remove_file(partial).await;
        }
        let _ = sftp.close().await;
        result
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let sftp = self.session().await?;
        let path = path_of(key);
        let removed = match sftp.remove_file(path.clone()).await {
            Ok(()) => Ok(()),
            Err(_) if !sftp.try_exists(path).await.unwrap_or(true) => Ok(()),
            Err(error) => Err(self.error(key, error)),
        };
        let _ = sftp.close().await;
        removed
    }
}
