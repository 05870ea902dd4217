//! Table sync (`type = "table_sync"`): PostgreSQL or Redshift into
//! PostgreSQL, in batches with exact, re-readable bounds.
//!
//! Extraction pages through the source with keyset queries ordered by the
//! primary key (or the watermark column, then the key). Every batch is
//! checked row by row against the target's types (a bad row is skipped and
//! recorded), then loaded in its own transaction: a plain `COPY` while the
//! target was empty at the start, otherwise one `INSERT … SELECT FROM
//! unnest(…) ON CONFLICT DO UPDATE` that leaves unchanged rows alone.
//! Several target connections load disjoint batches at once. A failed batch
//! is rolled back and retried with backoff; after `max_retries` its bounds
//! are recorded and the run moves on. Commits do not wait for the target's
//! disk, but a run only ends once the target confirms every batch is
//! flushed (see [`Loader`]). The watermark advances only when a whole run
//! succeeded.

pub(crate) mod coerce;
pub(crate) mod rows;
pub(crate) mod sql;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::config::{TableMode, TableSyncProperties};
use crate::engine::context::{RunContext, TaskOutcome};
use crate::engine::run::RunStatus;
use crate::state::{FailedItem, ItemKind, ItemStatus};
use coerce::ValueType;
pub(crate) use rows::Rows;
use sql::{Dialect, KeyColumn, Read, SourceColumn, SourceRelation};

/// Bad rows kept per run for inspection; more are only counted.
const BAD_ROWS_KEPT: u64 = 100;
/// Batches read ahead of the one being loaded.
const READ_AHEAD: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Database(String),
}

/// Describes a driver error with the server's message and detail.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
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
    dialect: Dialect,
    name: String,
    verify: Option<TlsVerify>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str, role: &str, task_id: &str) -> Result<Self, TableError> {
        let (dialect, url) = match url.strip_prefix("redshift://") {
            Some(rest) => (Dialect::Redshift, format!("postgres://{rest}")),
            None => (Dialect::Postgres, url.to_string()),
        };
        let (url, verify) = split_tls_options(&url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
            TableError::Setup(format!("{role} connection string is not valid: {error}"))
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

    pub(crate) async fn connect(&self) -> Result<Client, TableError> {
        let tls = tls_connector(self.verify.as_ref());
        let (client, connection) = self.config.connect(tls).await.map_err(|error| {
            TableError::Database(format!(
                "cannot connect to {}: {}",
                self.name,
                describe(&error)
            ))
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
                TableError::Database(format!("{}: {}", self.name, describe(&error)))
            })?;
        Ok(client)
    }
}

/// TLS as libpq does it: `sslmode=prefer` (the default) and `require`
/// encrypt without checking the certificate; `verify-ca` and `verify-full`
/// check it against the system's roots and `sslrootcert` when given.
fn tls_connector(verify: Option<&TlsVerify>) -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions();
    let config = match (builder, verify) {
        (Ok(builder), Some(verify)) => builder
            .with_root_certificates(verify.roots.clone())
            .with_no_client_auth(),
        (Ok(builder), None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        (Err(_), _) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Certificate checking for `verify-ca` / `verify-full`.
#[derive(Clone)]
struct TlsVerify {
    roots: rustls::RootCertStore,
}

/// Takes `sslmode=verify-*` and `sslrootcert` out of a URL (the driver
/// knows neither) and returns how to check certificates.
fn split_tls_options(url: &str) -> Result<(String, Option<TlsVerify>), TableError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut kept = Vec::new();
    let mut verify = false;
    let mut root_file = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", "verify-ca" | "verify-full")) => {
                verify = true;
                kept.push("sslmode=require".to_string());
            }
            Some(("sslrootcert", path)) => root_file = Some(path.to_string()),
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    if !verify {
        return Ok((url, None));
    }
    let roots = crate::tls::roots(root_file.as_deref().map(std::path::Path::new))
        .map_err(|error| TableError::Setup(format!("sslrootcert {error}")))?;
    Ok((url, Some(TlsVerify { roots })))
}

/// libpq's `sslmode=require`: the connection is encrypted and signatures
/// are checked, but the certificate's issuer and name are not.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &rustls_pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &rustls_pki_types::CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to a PostgreSQL URL the way table sync does (TLS as the URL's
/// `sslmode` asks, session in UTC), for other parts of syncdeck.
pub(crate) async fn connect(url: &str, role: &str) -> Result<(Client, String), TableError> {
    let endpoint = Endpoint::parse(url, role, "syncdeck")?;
    let client = endpoint.connect().await?;
    Ok((client, endpoint.name))
}

/// One target column and how it is filled.
#[derive(Debug, Clone)]
struct ColumnPlan {
    target: String,
    /// The target column's type, as `format_type` names it.
    target_type: String,
    /// Position of its source column in the extracted row.
    source_index: usize,
    value_type: ValueType,
    required: bool,
    null_if: Vec<String>,
}

/// Everything a run needs to know about both tables.
struct Layout {
    relation: SourceRelation,
    /// Source columns read, in order (mapped ones, then ordering-only ones).
    source_columns: Vec<SourceColumn>,
    columns: Vec<ColumnPlan>,
    /// The ordering key: (watermark,) primary key, with source types.
    keys: Vec<KeyColumn>,
    /// Positions of the key columns in the extracted row.
    key_indexes: Vec<usize>,
    /// Positions of the primary key's target columns in `columns`.
    primary_key: Vec<String>,
    /// Target columns compared as text in the upsert (json, xml).
    target_table: String,
}

/// Where a batch starts and ends in the ordering key: `after` (exclusive,
/// none for the first batch) to `through` (inclusive), plus the watermark
/// floor of its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchBounds {
    pub after: Option<Vec<Option<String>>>,
    pub through: Vec<Option<String>>,
    pub watermark_above: Option<String>,
}

impl BatchBounds {
    fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

async fn discover(
    properties: &TableSyncProperties,
    dialect: Dialect,
    source: &Client,
    target: &Client,
) -> Result<Layout, TableError> {
    let relation = match (&properties.source_table, &properties.source_query) {
        (Some(table), _) => SourceRelation::Table(table.get_ref().clone()),
        (None, Some(query)) => SourceRelation::Query(query.get_ref().clone()),
        (None, None) => return Err(TableError::Setup("no source_table or source_query".into())),
    };
    let probe = source
        .prepare(&format!(
            "SELECT * FROM {} LIMIT 0",
            relation.relation_sql()
        ))
        .await
        .map_err(|error| {
            TableError::Setup(format!("cannot read the source: {}", describe(&error)))
        })?;
    let source_types: Vec<(String, String)> = probe
        .columns()
        .iter()
        .map(|column| (column.name().to_string(), column.type_().name().to_string()))
        .collect();

    let target_table = properties.target_table.get_ref().clone();
    let target_types = target_columns(target, &target_table).await?;

    let mut source_columns: Vec<SourceColumn> = Vec::new();
    let index_of = |name: &str,
                    source_columns: &mut Vec<SourceColumn>|
     -> Result<usize, TableError> {
        let Some((_, type_name)) = source_types.iter().find(|(column, _)| column == name) else {
            return Err(TableError::Setup(format!("source has no column `{name}`")));
        };
        Ok(
            match source_columns.iter().position(|column| column.name == name) {
                Some(index) => index,
                None => {
                    source_columns.push(SourceColumn {
                        name: name.to_string(),
                        read: Read::for_type(dialect, type_name),
                    });
                    source_columns.len() - 1
                }
            },
        )
    };

    let mut columns = Vec::new();
    if properties.columns.is_empty() {
        for (name, _) in &source_types {
            if let Some((_, type_name)) = target_types.iter().find(|(target, _)| target == name) {
                columns.push(ColumnPlan {
                    target: name.clone(),
                    target_type: type_name.clone(),
                    source_index: index_of(name, &mut source_columns)?,
                    value_type: ValueType::from_type_name(type_name),
                    required: false,
                    null_if: Vec::new(),
                });
            }
        }
    } else {
        for (target_name, column) in &properties.columns {
            let Some((_, type_name)) = target_types
                .iter()
                .find(|(target, _)| target == target_name)
            else {
                return Err(TableError::Setup(format!(
                    "target table `{target_table}` has no column `{target_name}`"
                )));
            };
            let source_name = column.source.as_deref().unwrap_or(target_name);
            columns.push(ColumnPlan {
                target: target_name.clone(),
                target_type: type_name.clone(),
                source_index: index_of(source_name, &mut source_columns)?,
                value_type: ValueType::from_type_name(
                    column.type_name.as_deref().unwrap_or(type_name),
                ),
                required: column.required,
                null_if: column.null_if.clone(),
            });
        }
    }
    if columns.is_empty() {
        return Err(TableError::Setup(format!(
            "no column of the source is in `{target_table}`; map them in [columns]"
        )));
    }

    let primary_key: Vec<String> = properties.primary_key.get_ref().clone();
    let mut key_sources: Vec<String> = Vec::new();
    if properties.mode.get_ref() == &TableMode::Incremental
        && let Some(watermark) = &properties.watermark_column
    {
        key_sources.push(watermark.clone());
    }
    for key in &primary_key {
        let Some(column) = columns.iter().find(|column| &column.target == key) else {
            return Err(TableError::Setup(format!(
                "primary key column `{key}` is not among the synced columns"
            )));
        };
        key_sources.push(source_columns[column.source_index].name.clone());
    }
    let mut keys = Vec::new();
    let mut key_indexes = Vec::new();
    for name in key_sources {
        let type_name = source_types
            .iter()
            .find(|(column, _)| *column == name)
            .map(|(_, type_name)| type_name.clone())
            .ok_or_else(|| TableError::Setup(format!("source has no column `{name}`")))?;
        key_indexes.push(index_of(&name, &mut source_columns)?);
        keys.push(KeyColumn { name, type_name });
    }
    Ok(Layout {
        relation,
        source_columns,
        columns,
        keys,
        key_indexes,
        primary_key,
        target_table,
    })
}

/// The target table's columns with their types (`format_type` names).
pub(crate) async fn target_columns(
    target: &Client,
    table: &str,
) -> Result<Vec<(String, String)>, TableError> {
    let rows = target
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&sql::quote_qualified(table)],
        )
        .await
        .map_err(|error| TableError::Setup(format!("cannot read the target table: {}", describe(&error))))?;
    if rows.is_empty() {
        return Err(TableError::Setup(format!(
            "target table `{table}` does not exist; create it first"
        )));
    }
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Batches kept after an asynchronous commit until the target's WAL is
/// flushed past them, at most this many or this many bytes per loader.
const UNFLUSHED_BATCHES: usize = 64;
const UNFLUSHED_BYTES: usize = 16 << 20;
/// How often the end of a run asks whether the target flushed its WAL, and
/// how long it waits at most.
const FLUSH_POLL: Duration = Duration::from_millis(5);
const FLUSH_WAIT: Duration = Duration::from_secs(60);

/// A batch committed without waiting for the target's disk: kept, so it
/// can be loaded again if the connection is lost before the target
/// confirms its WAL is flushed past the commit.
struct Unflushed {
    rows: Rows,
    label: String,
    item_key: String,
    /// The target's WAL insert position read after the commit, on the
    /// connection that committed it.
    lsn: Option<u64>,
}

/// A connected target and its prepared upsert.
///
/// Batches commit asynchronously (`synchronous_commit = off`) when the
/// target has no synchronous standby: a commit then costs no disk flush.
/// Durability is checked instead: the loader reads the target's WAL
/// positions after each batch and keeps every batch whose commit is not
/// yet flushed. If the connection is lost (the server may have crashed and
/// forgotten them), those batches are loaded again on the new connection
/// before anything else; [`Loader::finish`] waits until the last one is
/// on disk, so a run never ends succeeded on data the target could lose.
pub(crate) struct Loader {
    endpoint: Endpoint,
    client: Option<(Client, tokio_postgres::Statement)>,
    upsert: String,
    /// `COPY target (columns) FROM STDIN`, for first loads.
    copy: String,
    /// The target inserts COPY's rows faster one by one (see `copy_in`).
    copy_row_by_row: bool,
    /// The target was empty when the run started: a batch's first attempt
    /// is a plain COPY (the fastest load); a conflict fails that attempt
    /// and the retry upserts.
    pub(crate) first_load: bool,
    /// Commits on the current connection are asynchronous and tracked.
    async_commit: bool,
    unflushed: std::collections::VecDeque<Unflushed>,
    unflushed_bytes: usize,
    /// The connection was replaced while batches were unflushed: load
    /// them again before the next batch.
    replay: bool,
}

impl Loader {
    /// A loader into `table`; `columns` are (name, type) in row order.
    pub(crate) fn new(
        endpoint: Endpoint,
        table: &str,
        columns: &[(String, String)],
        primary_key: &[String],
    ) -> Self {
        let quoted: Vec<String> = columns
            .iter()
            .map(|(name, _)| sql::quote_ident(name))
            .collect();
        Self {
            endpoint,
            client: None,
            upsert: sql::upsert_from_arrays(table, columns, primary_key),
            copy: format!(
                "COPY {} ({}) FROM STDIN",
                sql::quote_qualified(table),
                quoted.join(", ")
            ),
            first_load: false,
            copy_row_by_row: false,
            async_commit: false,
            unflushed: std::collections::VecDeque::new(),
            unflushed_bytes: 0,
            replay: false,
        }
    }

    async fn connection(&mut self) -> Result<&(Client, tokio_postgres::Statement), TableError> {
        if self
            .client
            .as_ref()
            .is_none_or(|(client, _)| client.is_closed())
        {
            self.client = None;
            self.replay = !self.unflushed.is_empty();
            let client = self.endpoint.connect().await?;
            let statement = client.prepare(&self.upsert).await.map_err(|error| {
                TableError::Database(format!("cannot prepare the upsert: {}", describe(&error)))
            })?;
            self.async_commit = enable_async_commit(&client).await;
            self.copy_row_by_row = server_version(&client)
                .await
                .is_some_and(|version| (120_000..170_000).contains(&version));
            self.client = Some((client, statement));
        }
        self.client
            .as_ref()
            .ok_or_else(|| TableError::Database("no target connection".into()))
    }

    /// Loads a batch, retrying with doubling backoff; counts it done, or
    /// after the last attempt records it as a failed batch under
    /// `item_key` (a retried batch updates its record). Returns whether it
    /// landed; false also when the run was cancelled.
    pub(crate) async fn load_with_retries(
        &mut self,
        rows: Rows,
        max_retries: u32,
        backoff: Duration,
        context: &RunContext,
        label: &str,
        item_key: &str,
    ) -> bool {
        let max_attempts = max_retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = tokio::select! {
                _ = context.cancel.cancelled() => return false,
                result = self.load(&rows, attempt) => result,
            };
            let error = match result {
                Ok(changed) => {
                    context.update_counters(|counters| {
                        counters.rows_upserted += changed;
                        counters.rows_unchanged +=
                            rows.len() as u64 - changed.min(rows.len() as u64);
                        counters.batches_done += 1;
                    });
                    self.committed(rows, label, item_key).await;
                    return true;
                }
                Err(error) => error,
            };
            let message = crate::config::redact(&error.to_string()).into_owned();
            let retry_in =
                (attempt < max_attempts).then(|| crate::engine::backoff(backoff, attempt));
            tracing::warn!(batch = label, attempt, max_attempts, error = %message, "batch failed");
            context.emit_item_failed(label, &message, attempt, max_attempts, retry_in);
            self.forget_closed();
            match retry_in {
                Some(wait) => {
                    tokio::select! {
                        _ = context.cancel.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                None => {
                    context.update_counters(|counters| counters.batches_failed += 1);
                    context
                        .record_failure(ItemKind::Batch, item_key, &message, attempt)
                        .await;
                    return false;
                }
            }
        }
    }

    pub(crate) fn forget_closed(&mut self) {
        self.client = self.client.take().filter(|(client, _)| !client.is_closed());
    }

    /// Loads rows in one transaction and returns the rows inserted or
    /// changed: a COPY on the first attempt of a first load, otherwise one
    /// upsert with a text array per column. Batches a lost connection may
    /// have taken with it are loaded again first.
    pub(crate) async fn load(&mut self, rows: &Rows, attempt: u32) -> Result<u64, TableError> {
        self.connection().await?;
        if self.replay {
            self.load_unflushed_again().await?;
        }
        if self.first_load && attempt == 1 {
            return self.copy_in(rows).await;
        }
        self.upsert(rows).await
    }

    async fn upsert(&mut self, rows: &Rows) -> Result<u64, TableError> {
        let (client, statement) = self.connection().await?;
        let arrays: Vec<Vec<Option<&str>>> = (0..rows.width())
            .map(|column| rows.column(column))
            .collect();
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = arrays
            .iter()
            .map(|array| array as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let error = |error: tokio_postgres::Error| TableError::Database(describe(&error));
        client.batch_execute("BEGIN").await.map_err(error)?;
        let changed = match client.execute(statement, &params).await {
            Ok(changed) => changed,
            Err(failure) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(error(failure));
            }
        };
        client.batch_execute("COMMIT").await.map_err(error)?;
        Ok(changed)
    }

    async fn copy_in(&mut self, rows: &Rows) -> Result<u64, TableError> {
        use futures::SinkExt;
        // COPY buffers up to 1,000 rows and inserts them together, but up
        // to PostgreSQL 16 every buffered row pins the table's descriptor
        // in a resource owner that hashes all pins of one descriptor to
        // the same slot, so filling the buffer costs time quadratic in its
        // rows. For 1,000-row batches that is about a third of the load:
        // on PostgreSQL 15, COPY row by row (which a volatile WHERE clause
        // asks for) loads pgbench_accounts 15–20% faster. Newer servers, and
        // those before 12 (no WHERE in COPY), keep COPY's default.
        let copy = if self.copy_row_by_row {
            format!("{} WHERE random() >= 0", self.copy)
        } else {
            self.copy.clone()
        };
        let (client, _) = self.connection().await?;
        let data = rows.copy_text();
        let error = |error: tokio_postgres::Error| TableError::Database(describe(&error));
        // A COPY outside a transaction block commits on its own, all or nothing.
        let sink = client
            .copy_in::<_, bytes::Bytes>(copy.as_str())
            .await
            .map_err(error)?;
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.map_err(error)?;
        sink.finish().await.map_err(error)
    }

    /// Upserts every batch not known to be flushed, on the new connection.
    async fn load_unflushed_again(&mut self) -> Result<(), TableError> {
        tracing::info!(
            batches = self.unflushed.len(),
            "the target connection was replaced before its last commits were on disk; loading those batches again"
        );
        let kept = std::mem::take(&mut self.unflushed);
        let mut result = Ok(());
        for batch in &kept {
            if let Err(error) = self.upsert(&batch.rows).await {
                result = Err(error);
                break;
            }
        }
        self.unflushed = kept;
        result?;
        for batch in &mut self.unflushed {
            batch.lsn = None;
        }
        self.replay = false;
        Ok(())
    }

    /// Keeps a committed batch until the target's WAL is flushed past it,
    /// and waits when too many are kept.
    async fn committed(&mut self, rows: Rows, label: &str, item_key: &str) {
        if !self.async_commit || rows.is_empty() {
            return;
        }
        self.unflushed_bytes += rows.bytes();
        self.unflushed.push_back(Unflushed {
            rows,
            label: label.to_string(),
            item_key: item_key.to_string(),
            lsn: None,
        });
        let _ = self.track().await;
        while self.unflushed.len() > UNFLUSHED_BATCHES || self.unflushed_bytes > UNFLUSHED_BYTES {
            tokio::time::sleep(FLUSH_POLL).await;
            if self.track().await.is_err() || self.replay {
                // The next load reconnects and loads these again.
                break;
            }
        }
    }

    /// Reads the target's WAL positions: batches committed on this
    /// connection get the insert position, and those the flush position
    /// has passed are dropped.
    async fn track(&mut self) -> Result<(), TableError> {
        if self.unflushed.is_empty() || self.replay {
            return Ok(());
        }
        let Some((client, _)) = self.client.as_ref() else {
            return Err(TableError::Database("no target connection".into()));
        };
        let (insert, flushed) = wal_positions(client).await?;
        for batch in &mut self.unflushed {
            batch.lsn.get_or_insert(insert);
        }
        while let Some(batch) = self.unflushed.front() {
            if batch.lsn.is_none_or(|lsn| lsn > flushed) {
                break;
            }
            self.unflushed_bytes = self.unflushed_bytes.saturating_sub(batch.rows.bytes());
            self.unflushed.pop_front();
        }
        Ok(())
    }

    /// Waits until every batch this loader committed is on the target's
    /// disk, loading them again if the connection is lost meanwhile.
    /// Batches that cannot be confirmed are recorded as failed (they can be
    /// retried like any other). Returns whether all were confirmed.
    pub(crate) async fn finish(
        &mut self,
        max_retries: u32,
        backoff: Duration,
        context: &RunContext,
    ) -> bool {
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            if self.unflushed.is_empty() {
                return true;
            }
            let result = async {
                self.connection().await?;
                if self.replay {
                    self.load_unflushed_again().await?;
                }
                self.track().await
            };
            let result = tokio::select! {
                _ = context.cancel.cancelled() => return false,
                result = result => result,
            };
            let wait = match result {
                Ok(()) if started.elapsed() < FLUSH_WAIT => FLUSH_POLL,
                Ok(()) => {
                    self.give_up(
                        &format!(
                            "the target did not confirm writing this batch to disk within {}",
                            humantime::format_duration(FLUSH_WAIT)
                        ),
                        1,
                        context,
                    )
                    .await;
                    return false;
                }
                Err(error) => {
                    attempt += 1;
                    let message = crate::config::redact(&error.to_string()).into_owned();
                    tracing::warn!(attempt, error = %message, "confirming the last batches failed");
                    self.forget_closed();
                    if attempt > max_retries {
                        self.give_up(&message, attempt, context).await;
                        return false;
                    }
                    crate::engine::backoff(backoff, attempt)
                }
            };
            tokio::select! {
                _ = context.cancel.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records every unconfirmed batch as failed.
    async fn give_up(&mut self, error: &str, attempts: u32, context: &RunContext) {
        for batch in std::mem::take(&mut self.unflushed) {
            tracing::warn!(batch = %batch.label, error, "batch not confirmed on disk");
            context.update_counters(|counters| {
                counters.batches_done = counters.batches_done.saturating_sub(1);
                counters.batches_failed += 1;
            });
            context
                .record_failure(ItemKind::Batch, &batch.item_key, error, attempts)
                .await;
        }
        self.unflushed_bytes = 0;
    }
}

/// Turns off waiting for the disk at commit when the target can report
/// its WAL positions and has no synchronous standby (whose guarantee the
/// operator asked for); returns whether it did.
async fn enable_async_commit(client: &Client) -> bool {
    let probe = client
        .simple_query(
            "SELECT current_setting('synchronous_standby_names') = '', pg_current_wal_flush_lsn()::text",
        )
        .await;
    let no_standby = probe.ok().and_then(|messages| {
        messages.into_iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(|value| value == "t"),
            _ => None,
        })
    });
    if no_standby != Some(true) {
        return false;
    }
    client
        .batch_execute("SET synchronous_commit TO off")
        .await
        .is_ok()
}

/// The server's `server_version_num` (150004 for 15.4).
async fn server_version(client: &Client) -> Option<u32> {
    let messages = client.simple_query("SHOW server_version_num").await.ok()?;
    messages.into_iter().find_map(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
        _ => None,
    })
}

/// The target's WAL insert and flush positions.
async fn wal_positions(client: &Client) -> Result<(u64, u64), TableError> {
    let messages = client
        .simple_query("SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text")
        .await
        .map_err(|error| TableError::Database(describe(&error)))?;
    messages
        .into_iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some((
                row.get(0).and_then(parse_lsn)?,
                row.get(1).and_then(parse_lsn)?,
            )),
            _ => None,
        })
        .ok_or_else(|| TableError::Database("the target did not report its WAL positions".into()))
}

/// `16/B374D848` → a number that orders like the position.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// Reads batches from the source.
struct Reader {
    endpoint: Endpoint,
    client: Option<Client>,
    /// Batch queries prepared on `client`, by SQL text: every batch after
    /// the first runs the same statement, planned once.
    prepared: std::collections::HashMap<String, tokio_postgres::Statement>,
}

impl Reader {
    async fn read(
        &mut self,
        layout: &Layout,
        after: Option<&[Option<String>]>,
        through: Option<&[Option<String>]>,
        watermark_above: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Rows, TableError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(self.endpoint.connect().await?);
            self.prepared.clear();
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| TableError::Database("no source connection".into()))?;
        let mut query = sql::Query::new(self.endpoint.dialect);
        let mut conditions = Vec::new();
        if let (Some(watermark), Some(key)) = (watermark_above, layout.keys.first()) {
            conditions.push(query.greater(key, watermark));
        }
        if let Some(after) = after {
            conditions.push(query.after(&layout.keys, after));
        }
        if let Some(through) = through {
            conditions.push(query.through(&layout.keys, through));
        }
        let built = sql::select_batch(
            self.endpoint.dialect,
            &layout.relation,
            &layout.source_columns,
            &layout.keys,
            conditions,
            query.params,
            limit,
        );
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = built
            .params
            .iter()
            .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let statement = match self.prepared.get(&built.sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = client.prepare(&built.sql).await.map_err(|error| {
                    TableError::Database(format!(
                        "reading {}: {}",
                        self.endpoint.name,
                        describe(&error)
                    ))
                })?;
                self.prepared.insert(built.sql.clone(), statement.clone());
                statement
            }
        };
        let failed = |error: tokio_postgres::Error| {
            TableError::Database(format!(
                "reading {}: {}",
                self.endpoint.name,
                describe(&error)
            ))
        };
        let stream = client.query_raw(&statement, params).await.map_err(failed)?;
        futures::pin_mut!(stream);
        let width = layout.source_columns.len();
        let mut rows = Rows::with_capacity(width, limit.unwrap_or(0).min(10_000));
        while let Some(row) = futures::TryStreamExt::try_next(&mut stream)
            .await
            .map_err(failed)?
        {
            for (index, column) in layout.source_columns.iter().enumerate() {
                match column.read {
                    Read::Cast | Read::Text => rows.push(row.try_get(index).map_err(failed)?),
                    Read::Char => rows.push(
                        row.try_get::<_, Option<&str>>(index)
                            .map_err(failed)?
                            .map(|text| text.trim_end_matches(' ')),
                    ),
                    Read::Int2 => rows.push_integer(
                        row.try_get::<_, Option<i16>>(index)
                            .map_err(failed)?
                            .map(i64::from),
                    ),
                    Read::Int4 => rows.push_integer(
                        row.try_get::<_, Option<i32>>(index)
                            .map_err(failed)?
                            .map(i64::from),
                    ),
                    Read::Int8 => rows.push_integer(row.try_get(index).map_err(failed)?),
                    Read::Bool => rows.push(
                        row.try_get::<_, Option<bool>>(index)
                            .map_err(failed)?
                            .map(|value| if value { "true" } else { "false" }),
                    ),
                }
            }
        }
        Ok(rows)
    }
}

/// A batch read from the source, ready to check and load.
struct Batch {
    number: u64,
    bounds: BatchBounds,
    rows: Rows,
    /// For retries of recorded batches.
    item_id: Option<i64>,
}

/// Runs a table sync task.
pub(crate) async fn run(properties: &TableSyncProperties, context: &RunContext) -> TaskOutcome {
    TaskOutcome::of(run_inner(properties, context).await, &context.cancel)
}

async fn run_inner(
    properties: &TableSyncProperties,
    context: &RunContext,
) -> Result<TaskOutcome, TableError> {
    let source_endpoint = Endpoint::parse(properties.source.expose(), "source", &context.task_id)?;
    let target_endpoint = Endpoint::parse(properties.target.expose(), "target", &context.task_id)?;
    let source = source_endpoint.connect().await?;
    let target = target_endpoint.connect().await?;
    let layout = Arc::new(discover(properties, source_endpoint.dialect, &source, &target).await?);
    let first_load =
        context.retry_items.is_none() && target_is_empty(&target, &layout.target_table).await?;
    drop(target);

    let incremental = *properties.mode.get_ref() == TableMode::Incremental;
    let retrying: Option<Vec<FailedItem>> = context.retry_items.as_ref().map(|items| {
        items
            .iter()
            .filter(|item| item.kind == ItemKind::Batch)
            .cloned()
            .collect()
    });
    let watermark = if incremental && retrying.is_none() {
        context
            .state
            .watermark(&context.task_id)
            .await
            .map_err(|error| TableError::Setup(error.to_string()))?
    } else {
        None
    };
    if retrying.is_none() {
        supersede_bad_rows(context).await;
    }
    tracing::info!(source = %source_endpoint.name, target = %target_endpoint.name, watermark = watermark.as_deref().unwrap_or(""), "table sync planned");

    // The total, counted on its own connection while batches flow.
    let counter = if retrying.is_none() {
        Some(spawn_count(
            source_endpoint.clone(),
            Arc::clone(&layout),
            watermark.clone(),
            properties,
            context,
        ))
    } else {
        context.update_counters(|counters| {
            counters.batches_total = retrying.as_ref().map(|items| items.len() as u64);
            counters.totals_known = true;
        });
        None
    };

    let (batches_tx, batches_rx) = mpsc::channel::<Result<Batch, TableError>>(READ_AHEAD);
    let mut reader = Reader {
        endpoint: source_endpoint,
        client: Some(source),
        prepared: std::collections::HashMap::new(),
    };
    let read_layout = Arc::clone(&layout);
    let batch_size = *properties.batch_size.get_ref();
    let read_watermark = watermark.clone();
    let retries = properties.max_retries;
    let backoff = properties.retry_backoff;
    let cancel = context.cancel.clone();
    let producer = async move {
        match retrying {
            Some(items) => {
                for (number, item) in items.into_iter().enumerate() {
                    let bounds: BatchBounds = match serde_json::from_str(&item.key) {
                        Ok(bounds) => bounds,
                        Err(error) => {
                            let _ = batches_tx
                                .send(Err(TableError::Setup(format!(
                                    "failed item #{} has unreadable bounds: {error}",
                                    item.id
                                ))))
                                .await;
                            return;
                        }
                    };
                    let read = read_with_retries(
                        &mut reader,
                        &read_layout,
                        &bounds,
                        None,
                        retries,
                        backoff,
                        &cancel,
                    )
                    .await;
                    let batch = read.map(|rows| Batch {
                        number: number as u64 + 1,
                        bounds,
                        rows,
                        item_id: Some(item.id),
                    });
                    if batches_tx.send(batch).await.is_err() {
                        return;
                    }
                }
            }
            None => {
                let mut after: Option<Vec<Option<String>>> = None;
                let mut number = 0;
                loop {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let bounds = BatchBounds {
                        after: after.clone(),
                        through: Vec::new(),
                        watermark_above: read_watermark.clone(),
                    };
                    let rows = match read_with_retries(
                        &mut reader,
                        &read_layout,
                        &bounds,
                        Some(batch_size),
                        retries,
                        backoff,
                        &cancel,
                    )
                    .await
                    {
                        Ok(rows) => rows,
                        Err(error) => {
                            let _ = batches_tx.send(Err(error)).await;
                            return;
                        }
                    };
                    let Some(last) = rows.len().checked_sub(1) else {
                        return;
                    };
                    number += 1;
                    let through: Vec<Option<String>> = read_layout
                        .key_indexes
                        .iter()
                        .map(|index| rows.get(last, *index).map(str::to_owned))
                        .collect();
                    let full = rows.len() == batch_size;
                    after = Some(through.clone());
                    let bounds = BatchBounds { through, ..bounds };
                    if batches_tx
                        .send(Ok(Batch {
                            number,
                            bounds,
                            rows,
                            item_id: None,
                        }))
                        .await
                        .is_err()
                        || !full
                    {
                        return;
                    }
                }
            }
        }
    };

    // Batches cover disjoint key ranges and commit alone, so several
    // target connections load them at once; the source reads ahead.
    let batches_rx = tokio::sync::Mutex::new(batches_rx);
    let read_error: std::sync::Mutex<Option<TableError>> = std::sync::Mutex::new(None);
    let workers = (0..properties.parallel_loads.max(1)).map(|_| {
        let columns: Vec<(String, String)> = layout
            .columns
            .iter()
            .map(|column| (column.target.clone(), column.target_type.clone()))
            .collect();
        let mut loader = Loader::new(
            target_endpoint.clone(),
            &layout.target_table,
            &columns,
            &layout.primary_key,
        );
        loader.first_load = first_load;
        let (batches_rx, read_error, layout) = (&batches_rx, &read_error, &layout);
        async move {
            // The highest-numbered batch this worker loaded, with its watermark.
            let mut newest: Option<(u64, Option<String>)> = None;
            loop {
                let next = batches_rx.lock().await.recv().await;
                let Some(batch) = next else { break };
                if context.cancel.is_cancelled() {
                    break;
                }
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(error) => {
                        if let Ok(mut slot) = read_error.lock() {
                            *slot = Some(error);
                        }
                        break;
                    }
                };
                if newest
                    .as_ref()
                    .is_none_or(|(number, _)| batch.number > *number)
                {
                    newest = Some((
                        batch.number,
                        batch.bounds.through.first().cloned().flatten(),
                    ));
                }
                load_batch(&mut loader, layout, batch, properties, context).await;
            }
            loader
                .finish(properties.max_retries, properties.retry_backoff, context)
                .await;
            newest
        }
    });
    let ((), newest) = tokio::join!(producer, futures::future::join_all(workers));
    let newest_watermark = newest
        .into_iter()
        .flatten()
        .max_by_key(|(number, _)| *number)
        .and_then(|(_, watermark)| watermark);
    let newest_watermark = newest_watermark.filter(|_| incremental);
    let read_error = read_error.into_inner().ok().flatten();
    if let Some(counter) = counter {
        counter.abort();
    }
    if context.cancel.is_cancelled() {
        return Ok(TaskOutcome::cancelled());
    }
    let counters = context.counters();
    if let Some(error) = read_error {
        return Ok(TaskOutcome::failed(format!(
            "stopped after {} batches: {error}",
            counters.batches_done + counters.batches_failed
        )));
    }
    let problems = counters.batches_failed > 0 || counters.rows_skipped > 0;
    if !problems {
        if context.retry_items.is_none()
            && incremental
            && let Some(value) = newest_watermark
        {
            context
                .state
                .set_watermark(&context.task_id, &value)
                .await
                .map_err(|error| TableError::Setup(error.to_string()))?;
            tracing::info!(watermark = %value, "watermark advanced");
        }
        return Ok(TaskOutcome::new(RunStatus::Succeeded, None, None));
    }
    let mut reasons = Vec::new();
    if counters.batches_failed > 0 {
        reasons.push(format!("{} batch(es) failed", counters.batches_failed));
    }
    if counters.rows_skipped > 0 {
        reasons.push(format!("{} row(s) skipped", counters.rows_skipped));
    }
    let status =
        if counters.rows_upserted + counters.batches_done == 0 && counters.batches_failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Partial
        };
    Ok(TaskOutcome::new(
        status,
        Some(format!(
            "{}; the watermark stays; see `syncdeck errors {}`",
            reasons.join(", "),
            context.task_id
        )),
        None,
    ))
}

pub(crate) async fn target_is_empty(target: &Client, table: &str) -> Result<bool, TableError> {
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {})",
        sql::quote_qualified(table)
    );
    let row = target.query_one(sql.as_str(), &[]).await.map_err(|error| {
        TableError::Setup(format!(
            "cannot read the target table: {}",
            describe(&error)
        ))
    })?;
    Ok(row.get(0))
}

async fn read_with_retries(
    reader: &mut Reader,
    layout: &Layout,
    bounds: &BatchBounds,
    limit: Option<usize>,
    retries: u32,
    backoff: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Rows, TableError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let through = (!bounds.through.is_empty()).then_some(bounds.through.as_slice());
        let result = tokio::select! {
            _ = cancel.cancelled() => return Err(TableError::Database("cancelled".into())),
            result = reader.read(layout, bounds.after.as_deref(), through, bounds.watermark_above.as_deref(), limit) => result,
        };
        match result {
            Ok(rows) => return Ok(rows),
            Err(error) if attempt <= retries => {
                let wait = crate::engine::backoff(backoff, attempt);
                tracing::warn!(attempt, error = %error, "reading a batch failed; retrying in {}", humantime::format_duration(wait));
                reader.client = None;
                tokio::select! {
                    _ = cancel.cancelled() => return Err(TableError::Database("cancelled".into())),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Checks a batch's rows, loads the good ones with retries, and records
/// what could not be loaded.
async fn load_batch(
    loader: &mut Loader,
    layout: &Layout,
    batch: Batch,
    properties: &TableSyncProperties,
    context: &RunContext,
) {
    let extracted = batch.rows.len() as u64;
    let mut good = Rows::with_capacity(layout.columns.len(), batch.rows.len());
    let mut skipped = 0;
    for row in 0..batch.rows.len() {
        let Err(reason) = transform(layout, &batch.rows, row, &mut good) else {
            continue;
        };
        skipped += 1;
        let key: Vec<String> = layout
            .key_indexes
            .iter()
            .zip(&layout.keys)
            .map(|(index, key)| {
                format!(
                    "{}={}",
                    key.name,
                    batch.rows.get(row, *index).unwrap_or("NULL")
                )
            })
            .collect();
        let kept = context.counters().rows_skipped + skipped;
        if kept <= BAD_ROWS_KEPT {
            context
                .record_failure(ItemKind::Row, &key.join(", "), &reason, 1)
                .await;
        }
    }
    context.update_counters(|counters| {
        counters.rows_extracted += extracted;
        counters.rows_skipped += skipped;
    });

    let label = format!("batch {} {}", batch.number, describe_bounds(&batch.bounds));
    let loaded = loader
        .load_with_retries(
            good,
            properties.max_retries,
            properties.retry_backoff,
            context,
            &label,
            &batch.bounds.key(),
        )
        .await;
    if loaded
        && let Some(id) = batch.item_id
        && let Err(error) = context
            .state
            .set_item_status(id, ItemStatus::Resolved)
            .await
    {
        tracing::warn!(%error, "could not mark the batch resolved");
    }
}

fn describe_bounds(bounds: &BatchBounds) -> String {
    let show = |values: &[Option<String>]| {
        values
            .iter()
            .map(|value| value.as_deref().unwrap_or("NULL"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &bounds.after {
        Some(after) => format!("({}]..({}]", show(after), show(&bounds.through)),
        None => format!("(start..{}]", show(&bounds.through)),
    }
}

/// Appends the target values of source row `row` to `out`, or says why
/// the row cannot be loaded (and appends nothing).
fn transform(layout: &Layout, rows: &Rows, row: usize, out: &mut Rows) -> Result<(), String> {
    let value = |column: &ColumnPlan| {
        rows.get(row, column.source_index)
            .filter(|value| !column.null_if.iter().any(|null| null == value))
    };
    for column in &layout.columns {
        match value(column) {
            None if column.required => {
                return Err(format!("required column `{}` is NULL", column.target));
            }
            None => {}
            Some(text) => column
                .value_type
                .check(text)
                .map_err(|reason| format!("column `{}`: {reason}", column.target))?,
        }
    }
    out.push_row(layout.columns.iter().map(value));
    Ok(())
}

/// A new run reads every row again (full mode) or every row since the
/// unchanged watermark (incremental), so bad rows recorded by earlier runs
/// are re-checked now; they are recorded again if still bad.
async fn supersede_bad_rows(context: &RunContext) {
    context
        .resolve_pending(|item| item.kind == ItemKind::Row)
        .await;
}

fn spawn_count(
    endpoint: Endpoint,
    layout: Arc<Layout>,
    watermark: Option<String>,
    properties: &TableSyncProperties,
    context: &RunContext,
) -> tokio::task::JoinHandle<()> {
    let counters = context.clone_for_progress();
    let batch_size = *properties.batch_size.get_ref() as u64;
    tokio::spawn(async move {
        let result = async {
            let client = endpoint.connect().await?;
            count_rows(&client, endpoint.dialect, &layout, watermark.as_deref()).await
        }
        .await;
        match result {
            Ok(total) => counters.update(|counters| {
                counters.rows_total = Some(total);
                counters.batches_total = Some(total.div_ceil(batch_size.max(1)));
                counters.totals_known = true;
            }),
            Err(error) => {
                tracing::warn!(%error, "could not count the source rows; progress shows no total")
            }
        }
    })
}

/// Source rows a run reads: all, or those above the watermark.
async fn count_rows(
    client: &Client,
    dialect: Dialect,
    layout: &Layout,
    watermark: Option<&str>,
) -> Result<u64, TableError> {
    let mut query = sql::Query::new(dialect);
    let mut sql = format!("SELECT count(*) FROM {}", layout.relation.relation_sql());
    if let (Some(watermark), Some(key)) = (watermark, layout.keys.first()) {
        sql.push_str(&format!(" WHERE {}", query.greater(key, watermark)));
    }
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = query
        .params
        .iter()
        .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let row = client
        .query_one(sql.as_str(), &params)
        .await
        .map_err(|error| TableError::Database(describe(&error)))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// What `syncdeck plan` shows for a table task.
pub struct TablePlan {
    pub source: String,
    pub target: String,
    pub rows: u64,
    pub batches: u64,
    pub watermark: Option<String>,
    pub columns: Vec<String>,
}

/// Connects, checks both tables and counts what a run would read.
pub async fn plan(
    properties: &TableSyncProperties,
    task_id: &str,
    watermark: Option<String>,
) -> Result<TablePlan, TableError> {
    let source_endpoint = Endpoint::parse(properties.source.expose(), "source", task_id)?;
    let target_endpoint = Endpoint::parse(properties.target.expose(), "target", task_id)?;
    let source = source_endpoint.connect().await?;
    let target = target_endpoint.connect().await?;
    let layout = discover(properties, source_endpoint.dialect, &source, &target).await?;
    let watermark = watermark.filter(|_| *properties.mode.get_ref() == TableMode::Incremental);
    let rows = count_rows(
        &source,
        source_endpoint.dialect,
        &layout,
        watermark.as_deref(),
    )
    .await?;
    Ok(TablePlan {
        source: source_endpoint.name,
        target: format!("{} table {}", target_endpoint.name, layout.target_table),
        rows,
        batches: rows.div_ceil(*properties.batch_size.get_ref() as u64),
        watermark,
        columns: layout
            .columns
            .iter()
            .map(|column| column.target.clone())
            .collect(),
    })
}
