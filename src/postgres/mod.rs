//! PostgreSQL as syncdeck uses it everywhere: connection URLs with TLS as
//! libpq reads them, the catalog queries, batch loading with WAL-flush
//! tracking, row buffers and type coercion. Table sync, HTTP sync and the
//! state store build on it; it depends on none of them (only on `config`
//! for secret registration and `tls` for the system's roots).

pub(crate) mod binary;
pub(crate) mod catalog;
pub(crate) mod coerce;
pub(crate) mod loader;
pub(crate) mod rows;
pub(crate) mod sql;
mod tls;
pub(crate) mod watch;

use std::time::Duration;

use tokio_postgres::Client;

pub(crate) use loader::Loader;
pub(crate) use rows::Rows;
pub(crate) use sql::Dialect;
use tls::{TlsVerify, split_tls_options, tls_connector};

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The config or the tables do not allow the work (fix, then rerun).
    #[error("{0}")]
    Setup(String),
    /// The server or the connection failed (often worth a retry).
    #[error("{0}")]
    Database(String),
    /// The target refused the rows themselves (a constraint or a value:
    /// SQLSTATE classes 21, 22 and 23): the same rows fail the same way
    /// again, so retrying them is pointless.
    #[error("{0}")]
    Rejected(String),
    #[error("cancelled by the operator")]
    Cancelled,
}

/// The error of a statement that loaded rows: [`PgError::Rejected`] when
/// the server refused the rows themselves, [`PgError::Setup`] when the
/// target's schema or permissions refuse the statement (SQLSTATE class 42:
/// a missing column, no unique index for `ON CONFLICT`, no privilege; it
/// fails the same way for every batch), otherwise [`PgError::Database`]
/// (the connection or the server, worth a retry).
pub(crate) fn load_error(error: &tokio_postgres::Error) -> PgError {
    let Some(db) = error.as_db_error() else {
        return PgError::Database(describe(error));
    };
    let code = db.code().code();
    if ["21", "22", "23"]
        .iter()
        .any(|class| code.starts_with(class))
    {
        // The row's values are in the server's detail ("Failing row
        // contains (…)"): personal data, and the key already names it.
        PgError::Rejected(describe_keeping(error, |detail| {
            !detail.starts_with("Failing row contains")
        }))
    } else if code.starts_with("42") {
        PgError::Setup(describe(error))
    } else {
        PgError::Database(describe(error))
    }
}

/// Describes a driver error with the server's message and detail.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    describe_keeping(error, |_| true)
}

/// [`describe`], with the server's detail only where `keep` says so.
fn describe_keeping(error: &tokio_postgres::Error, keep: impl Fn(&str) -> bool) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail().filter(|detail| keep(detail)) {
                text.push_str(&format!(" ({detail})"));
            }
            text
        }
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// A connection target: the driver config, the dialect, and a name for
/// messages (host, port and database; never the password).
#[derive(Clone)]
pub(crate) struct Endpoint {
    config: tokio_postgres::Config,
    pub(crate) dialect: Dialect,
    pub(crate) name: String,
    verify: Option<TlsVerify>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str, role: &str, task_id: &str) -> Result<Self, PgError> {
        let (dialect, url) = match url.strip_prefix("redshift://") {
            Some(rest) => (Dialect::Redshift, format!("postgres://{rest}")),
            None => (Dialect::Postgres, url.to_string()),
        };
        let (url, verify) = split_tls_options(&url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
            PgError::Setup(format!("{role} connection string is not valid: {error}"))
        })?;
        if let Some(password) = config.get_password() {
            crate::config::register_secret(&String::from_utf8_lossy(password));
        }
        config.application_name(format!("syncdeck:{task_id}:{role}"));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let host = config
            .get_hosts()
            .first()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let database = config.get_dbname().unwrap_or("").to_string();
        Ok(Self {
            config,
            dialect,
            name: format!("{role} {host}:{port}/{database}"),
            verify,
        })
    }

    pub(crate) async fn connect(&self) -> Result<Client, PgError> {
        self.try_connect().await.map_err(|(error, _)| error)
    }

    /// Connects as [`Endpoint::connect`], waiting `backoff(attempt)` and
    /// trying again up to `retries` times while the server cannot be
    /// reached or is starting, stopping or full: a restart or a failover
    /// at the start of a run. Refused logins fail at once.
    pub(crate) async fn connect_with_retries(
        &self,
        retries: u32,
        backoff: impl Fn(u32) -> std::time::Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Client, PgError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let connected = tokio::select! {
                _ = cancel.cancelled() => return Err(PgError::Cancelled),
                connected = self.try_connect() => connected,
            };
            let (error, transient) = match connected {
                Ok(client) => return Ok(client),
                Err(failure) => failure,
            };
            if !transient || attempt > retries {
                return Err(error);
            }
            let wait = backoff(attempt);
            tracing::warn!(attempt, %error, "connecting failed; trying again in {}", humantime::format_duration(wait));
            tokio::select! {
                _ = cancel.cancelled() => return Err(PgError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends a cancel request for what the connection of `token` runs,
    /// waiting at most [`CANCEL_WAIT`] (a cancel is a courtesy: the
    /// connection is dropped anyway).
    pub(crate) async fn cancel(&self, token: tokio_postgres::CancelToken) {
        let tls = tls_connector(self.verify.as_ref());
        match tokio::time::timeout(CANCEL_WAIT, token.cancel_query(tls)).await {
            Ok(Ok(())) => {
                tracing::debug!(target = %self.name, "asked the server to stop a statement")
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "could not ask the server to stop a statement")
            }
            Err(_) => tracing::debug!("the server did not take a cancel request in time"),
        }
    }

    /// A connection, or the error and whether waiting may help.
    async fn try_connect(&self) -> Result<Client, (PgError, bool)> {
        let tls = tls_connector(self.verify.as_ref());
        // The whole handshake, not only the TCP connect, is bounded: a
        // server (or pooler) that accepts and never answers would hold the
        // run forever.
        let limit = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        let Ok(connected) = tokio::time::timeout(limit, self.config.connect(tls)).await else {
            let error = PgError::Database(format!(
                "cannot connect to {}: no answer within {} (connect_timeout in the URL, in seconds, sets this)",
                self.name,
                humantime::format_duration(limit)
            ));
            return Err((error, true));
        };
        let (client, connection) = connected.map_err(|error| {
            // No server answer (refused, reset, timed out), or a server
            // that is starting, shutting down or out of connections.
            let transient = error.as_db_error().is_none_or(|db| {
                let code = db.code().code();
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            });
            let error = PgError::Database(format!(
                "cannot connect to {}: {}",
                self.name,
                describe(&error)
            ));
            (error, transient)
        })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "database connection ended");
            }
        });
        client
            .batch_execute("SET TimeZone TO 'UTC'")
            .await
            .map_err(|error| {
                let error = PgError::Database(format!("{}: {}", self.name, describe(&error)));
                (error, true)
            })?;
        Ok(client)
    }
}

/// How long a cancel request may take.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long connecting (TCP, TLS and the login) may take when the URL
/// gives no `connect_timeout`.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Connects to a PostgreSQL URL the way table sync does (TLS as the URL's
/// `sslmode` asks, session in UTC), for other parts of syncdeck.
pub(crate) async fn connect(url: &str, role: &str) -> Result<(Client, String), PgError> {
    let endpoint = Endpoint::parse(url, role, "syncdeck")?;
    let client = endpoint.connect().await?;
    Ok((client, endpoint.name))
}
