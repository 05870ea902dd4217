//! SSH connections for the SFTP store: checking the server's host key
//! (a pinned `SHA256:…` fingerprint or a known_hosts file, plain, hashed
//! or `[host]:port` entries) and logging in (a private key file, a
//! password, or the keys of a running SSH agent).
//!
//! A refusal names what to change and never contains a password or
//! passphrase.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use tokio::sync::OnceCell;

use super::store::StoreError;
use crate::config::Secret;
use crate::config::location::sha256_fingerprint_digest;

/// How the server proves who it is.
#[derive(Clone, Debug)]
pub(crate) enum HostKeyCheck {
    Fingerprint(String),
    KnownHosts(PathBuf),
}

/// How syncdeck proves who it is.
pub(crate) enum Login {
    Password(Secret),
    /// A private key file (OpenSSH or PEM: ed25519, ECDSA, RSA), read once
    /// per store: an encrypted key takes a deliberate while to unlock.
    Key {
        path: PathBuf,
        passphrase: Option<Secret>,
        loaded: OnceCell<Arc<PrivateKey>>,
    },
    /// The keys of the agent at `SSH_AUTH_SOCK`.
    Agent,
}

impl Login {
    pub(crate) fn key(path: PathBuf, passphrase: Option<Secret>) -> Self {
        Self::Key {
            path,
            passphrase,
            loaded: OnceCell::new(),
        }
    }
}

/// Where and as whom to connect; `name` (`sftp://host:port`) is for messages.
pub(crate) struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub username: &'a str,
    pub name: &'a str,
}

/// The SSH client side: checks the server's key.
pub(crate) struct Client {
    host: String,
    port: u16,
    check: HostKeyCheck,
    /// Why the server's key was refused, for the error the caller sees.
    refusal: Arc<Mutex<Option<String>>>,
}

impl Client {
    fn judge(&self, key: &russh::keys::PublicKey) -> Result<(), String> {
        let presented = key.fingerprint(HashAlg::Sha256).to_string();
        let algorithm = key.algorithm().to_string();
        match &self.check {
            HostKeyCheck::Fingerprint(expected)
                if sha256_fingerprint_digest(&presented) == sha256_fingerprint_digest(expected) =>
            {
                Ok(())
            }
            HostKeyCheck::Fingerprint(expected) => Err(format!(
                "the server's host key {presented} ({algorithm}) does not match host_key_fingerprint {}; if the server's key was changed on purpose, pin the new one",
                expected.trim()
            )),
            HostKeyCheck::KnownHosts(path) if !path.is_file() => Err(format!(
                "the known_hosts file {} does not exist; fix known_hosts, or pin the server's key with host_key_fingerprint = \"{presented}\" once its operator confirms it",
                path.display()
            )),
            HostKeyCheck::KnownHosts(path) => {
                match russh::keys::check_known_hosts_path(&self.host, self.port, key, path) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!(
                        "the server's host key {presented} ({algorithm}) is not in {}; if that is the server's key (ask its operator, or check with `ssh-keyscan -p {port} {host} | ssh-keygen -lf -`), set host_key_fingerprint = \"{presented}\" or add it to that file",
                        path.display(),
                        port = self.port,
                        host = self.host,
                    )),
                    Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
                        "the server's host key {presented} ({algorithm}) differs from the one recorded at {}:{line}; someone may be intercepting the connection, or the server's key was changed: check with its operator before updating that line",
                        path.display()
                    )),
                    Err(error) => Err(format!("cannot read {}: {error}", path.display())),
                }
            }
        }
    }
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not trusted: only a pinned or known key is.
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = presented else {
            self.set_refusal("the server presented a host certificate; syncdeck trusts only a pinned host_key_fingerprint or a known_hosts entry".into());
            return Ok(false);
        };
        match self.judge(key) {
            Ok(()) => Ok(true),
            Err(reason) => {
                self.set_refusal(reason);
                Ok(false)
            }
        }
    }
}

impl Client {
    fn set_refusal(&self, reason: String) {
        if let Ok(mut refusal) = self.refusal.lock() {
            *refusal = Some(reason);
        }
    }
}

/// Connects, checks the host key and logs in.
pub(crate) async fn connect(
    target: &Target<'_>,
    check: Option<&HostKeyCheck>,
    login: &Login,
) -> Result<russh::client::Handle<Client>, StoreError> {
    let name = target.name;
    let Some(check) = check else {
        return Err(StoreError::permanent(format!(
            "{name}: no way to check the server's host key; set host_key_fingerprint (\"SHA256:…\") or known_hosts in sync_config, or add the server to ~/.ssh/known_hosts"
        )));
    };
    // A key that cannot be read fails before the server is bothered.
    let key = match login {
        Login::Key {
            path,
            passphrase,
            loaded,
        } => Some(
            loaded
                .get_or_try_init(|| load_key(path, passphrase.as_ref(), name))
                .await?
                .clone(),
        ),
        _ => None,
    };
    let refusal = Arc::new(Mutex::new(None));
    let handler = Client {
        host: target.host.to_string(),
        port: target.port,
        check: check.clone(),
        refusal: Arc::clone(&refusal),
    };
    let config = Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect(config, (target.host, target.port), handler)
        .await
        .map_err(|error| {
            let refused = refusal.lock().ok().and_then(|mut reason| reason.take());
            match refused {
                Some(reason) => StoreError::permanent(format!("{name}: {reason}")),
                None => StoreError::transient(format!("{name}: cannot connect: {error}")),
            }
        })?;
    let user = target.username.to_string();
    let transient = |error: &dyn std::fmt::Display| {
        StoreError::transient(format!("{name}: logging in: {error}"))
    };
    let accepted = match (login, key) {
        (Login::Key { path, .. }, Some(key)) => {
            let hash = if key.algorithm().is_rsa() {
                rsa_hash(&handle).await
            } else {
                None
            };
            let accepted = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(|error| transient(&error))?
                .success();
            if !accepted {
                return Err(StoreError::permanent(format!(
                    "{name}: login refused for user `{}` with the key in {}; check that its public key is in the user's authorized_keys on the server",
                    target.username,
                    path.display()
                )));
            }
            true
        }
        (Login::Password(password), _) => handle
            .authenticate_password(user, password.expose())
            .await
            .map_err(|error| transient(&error))?
            .success(),
        (Login::Agent, _) | (Login::Key { .. }, None) => agent_login(&mut handle, target).await?,
    };
    if !accepted {
        return Err(StoreError::permanent(format!(
            "{name}: login refused for user `{}`; check username and password (or set private_key_file)",
            target.username
        )));
    }
    Ok(handle)
}

/// The best RSA signature the server takes: SHA-512 or SHA-256, never
/// SHA-1 unless the server says it knows nothing else.
async fn rsa_hash<H: russh::client::Handler>(handle: &russh::client::Handle<H>) -> Option<HashAlg> {
    match handle.best_supported_rsa_hash().await {
        Ok(Some(best)) => best,
        // No `server-sig-algs`: SHA-256 is what current servers accept.
        Ok(None) | Err(_) => Some(HashAlg::Sha256),
    }
}

async fn agent_login<H: russh::client::Handler>(
    handle: &mut russh::client::Handle<H>,
    target: &Target<'_>,
) -> Result<bool, StoreError> {
    let name = target.name;
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|error| {
            StoreError::permanent(format!(
                "{name}: no way to log in: set password or private_key_file in sync_config, or run an SSH agent ({error})"
            ))
        })?;
    let identities = agent.request_identities().await.map_err(|error| {
        StoreError::transient(format!(
            "{name}: the SSH agent did not list its keys: {error}"
        ))
    })?;
    for identity in identities {
        let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        let hash = if key.algorithm().is_rsa() {
            rsa_hash(handle).await
        } else {
            None
        };
        let accepted = handle
            .authenticate_publickey_with(target.username, key, hash, &mut agent)
            .await
            .map(|result| result.success())
            .unwrap_or(false);
        if accepted {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a private key, telling apart a missing file, a key that needs a
/// passphrase, and a passphrase that does not unlock it.
async fn load_key(
    path: &Path,
    passphrase: Option<&Secret>,
    name: &str,
) -> Result<Arc<PrivateKey>, StoreError> {
    let path = path.to_path_buf();
    let passphrase = passphrase.cloned();
    let name = name.to_string();
    // Unlocking runs a deliberately slow key derivation: off the runtime.
    tokio::task::spawn_blocking(move || load_key_now(&path, passphrase.as_ref(), &name))
        .await
        .map_err(|error| StoreError::permanent(format!("reading a private key: {error}")))?
}

fn load_key_now(
    path: &Path,
    passphrase: Option<&Secret>,
    name: &str,
) -> Result<Arc<PrivateKey>, StoreError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|error| {
        StoreError::permanent(format!(
            "{name}: cannot read private_key_file {shown}: {error}"
        ))
    })?;
    let decoded = russh::keys::decode_secret_key(&text, None);
    // An encrypted PKCS#8 key fails without a passphrase with an error of
    // its own, not `KeyIsEncrypted`.
    let encrypted = matches!(decoded, Err(russh::keys::Error::KeyIsEncrypted))
        || (decoded.is_err() && text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    match decoded {
        Ok(key) => Ok(Arc::new(key)),
        Err(_) if encrypted => {
            let Some(passphrase) = passphrase else {
                return Err(StoreError::permanent(format!(
                    "{name}: private_key_file {shown} is protected by a passphrase; set private_key_passphrase = \"${{credential:NAME}}\""
                )));
            };
            russh::keys::decode_secret_key(&text, Some(passphrase.expose()))
                .map(Arc::new)
                .map_err(|_| {
                    StoreError::permanent(format!(
                        "{name}: wrong passphrase for private_key_file {shown}; check the credential private_key_passphrase names"
                    ))
                })
        }
        Err(error) => Err(StoreError::permanent(format!(
            "{name}: private_key_file {shown} is not a private key syncdeck can read ({error}); use an OpenSSH or PEM ed25519, ECDSA or RSA key"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_key_is_named_with_the_formats_that_work() {
        let folder = tempfile::tempdir().expect("temp");
        let path = folder.path().join("id_nothing");
        std::fs::write(&path, "not a key\n").expect("write");
        let error = load_key_now(&path, None, "sftp://h:22").expect_err("refused");
        assert!(error.message.contains("is not a private key"), "{error}");
        assert!(!error.transient);
        let missing =
            load_key_now(&folder.path().join("absent"), None, "sftp://h:22").expect_err("refused");
        assert!(
            missing.message.contains("cannot read private_key_file"),
            "{missing}"
        );
    }
}
