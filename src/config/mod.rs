//! The configuration: the TOML model, loading with exact error positions,
//! credential references, path templates and validation.
//!
//! Loading parses the file once into a span-carrying tree, resolves
//! `${credential:…}` references in place, then deserializes each part into
//! typed structs (unknown keys rejected), so every error can name
//! `file:line:col`. Relative paths in the config are relative to the config
//! file's folder.

mod credentials;
pub(crate) mod error;
pub mod jq;
pub mod keys;
pub mod location;
mod parse;
pub mod pattern;
mod schema;
mod table;
pub mod template;
mod urls;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub use credentials::{REDACTED, env_var_name, redact, register_secret};
pub use error::ConfigError;
use error::SourceText;
pub(crate) use parse::TaskSpans;
pub use parse::{Resolve, find_config, load, load_all, parse};
pub use schema::json_schema;
pub use table::{ColumnConfig, TableMode, TableSyncProperties};
pub(crate) use validate::parse_rate;
pub use validate::{missing_local_sources, unreadable_files};

/// Where the config is looked for when `-c` is not given.
pub const CONFIG_ENV: &str = "SYNCDECK_CONFIG";
pub const DEFAULT_CONFIG_FILE: &str = "syncdeck.toml";

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    /// The folder relative paths in the config are resolved against.
    pub base_dir: PathBuf,
    pub engine: EngineConfig,
    pub credentials: CredentialsConfig,
    /// Console key for every action (defaults merged with `[keys]`).
    pub keys: BTreeMap<String, String>,
    /// The console's colours (`[theme]`).
    pub theme: ThemeConfig,
    /// How the console behaves (`[console]`).
    pub console: ConsoleConfig,
    pub tasks: Vec<TaskConfig>,
}

impl Config {
    pub fn task(&self, id: &str) -> Option<&TaskConfig> {
        self.tasks.iter().find(|task| task.id == id)
    }

    /// Says that `id` names no task here, with the closest task id when
    /// one is close (a typo), else where to see them all.
    pub fn unknown_task(&self, id: &str) -> String {
        let ids: Vec<&str> = self.tasks.iter().map(|task| task.id.as_str()).collect();
        let hint = match error::did_you_mean(id, &ids) {
            Some(best) => format!("did you mean `{best}`?"),
            None => "`syncdeck validate` lists the tasks".to_string(),
        };
        format!("no task `{id}` in {}; {hint}", self.file.display())
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        resolve_relative(&self.base_dir, path)
    }
}

pub(crate) fn resolve_relative(base: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// `sqlite:PATH` (embedded) or `postgres://…` (shared).
    #[serde(default = "default_state")]
    pub state: String,
    #[serde(default = "default_log_dir")]
    pub log_dir: PathBuf,
    #[serde(default = "default_max_concurrent_tasks")]
    pub max_concurrent_tasks: usize,
    /// How long a worker's claim on a running task lasts without renewal;
    /// after a crash, another worker may take the task over this much later.
    #[serde(
        default = "default_lease_ttl",
        deserialize_with = "humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "schema::DurationText")]
    pub lease_ttl: Duration,
    /// `HOST:PORT` where `syncdeck daemon` serves `/metrics`, `/healthz`
    /// and `/readyz`; none when unset (`--metrics-addr` overrides it).
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// How log lines are written to stderr and the log file.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, task_id, run_id,
    /// message and fields.
    Json,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            state: default_state(),
            log_dir: default_log_dir(),
            max_concurrent_tasks: default_max_concurrent_tasks(),
            lease_ttl: default_lease_ttl(),
            metrics_addr: None,
            log_format: LogFormat::default(),
        }
    }
}

fn default_state() -> String {
    "sqlite:.syncdeck/state.db".into()
}
fn default_log_dir() -> PathBuf {
    ".syncdeck/logs".into()
}
fn default_max_concurrent_tasks() -> usize {
    4
}
fn default_lease_ttl() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// A TOML file of `name = "value"`; must not be group or world readable.
    pub file: Option<PathBuf>,
}

/// `[theme]`: the console's colours.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThemeConfig {
    /// `dark` (light text on a dark background, the default) or `light`.
    #[serde(default)]
    pub name: ThemeName,
}

/// The console's colour themes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    /// Light text on a dark background.
    #[default]
    Dark,
    /// Dark text on a light background.
    Light,
}

impl ThemeName {
    pub const NAMES: [&'static str; 2] = ["dark", "light"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "dark" => Some(Self::Dark),
            "light" => Some(Self::Light),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Dark => "dark",
            Self::Light => "light",
        }
    }
}

/// `[console]`: how the console behaves.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Mouse support: click selects a row, the wheel scrolls. Off by
    /// default, so the terminal's own text selection keeps working
    /// (`--mouse` turns it on for one session).
    #[serde(default)]
    pub mouse: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Sync,
    TableSync,
    HttpSync,
    Airbyte,
}

impl TaskKind {
    pub const NAMES: [&'static str; 4] = ["sync", "table_sync", "http_sync", "airbyte"];

    fn parse(name: &str) -> Option<Self> {
        match name {
            "sync" => Some(Self::Sync),
            "table_sync" => Some(Self::TableSync),
            "http_sync" => Some(Self::HttpSync),
            "airbyte" => Some(Self::Airbyte),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::TableSync => "table_sync",
            Self::HttpSync => "http_sync",
            Self::Airbyte => "airbyte",
        }
    }

    /// Whether a run of a task of `kind` is told in rows (table and HTTP
    /// syncs) rather than files: by the kind, so a table run that failed
    /// before reading a row is still told in rows. An Airbyte connection,
    /// and a task no longer in the config (`None`), go by what the run's
    /// counters counted.
    pub fn moves_rows(kind: Option<Self>, counters: &crate::run::RunCounters) -> bool {
        match kind {
            Some(Self::TableSync | Self::HttpSync) => true,
            Some(Self::Sync) => false,
            Some(Self::Airbyte) | None => counters.counted_any_rows(),
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub id: String,
    pub kind: TaskKind,
    pub name: Option<String>,
    pub description: Option<String>,
    pub dependencies: Vec<String>,
    pub schedule: Option<Schedule>,
    pub properties: TaskProperties,
}

impl TaskConfig {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone)]
pub enum TaskProperties {
    Sync(std::sync::Arc<SyncProperties>),
    TableSync(std::sync::Arc<TableSyncProperties>),
    Airbyte(std::sync::Arc<AirbyteProperties>),
    HttpSync(std::sync::Arc<HttpSyncProperties>),
}

/// Properties of `type = "http_sync"` tasks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSyncProperties {
    pub base_url: String,
    /// May use `{{ execution_date }}`, `{{ run_id }}`, `{{ task_id }}`.
    #[serde(default)]
    pub path: String,
    /// Extra query parameters sent with every page; values may use the
    /// same templates as `path`.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<Secret>,
    #[serde(default = "default_page_param")]
    pub page_param: String,
    #[serde(default = "default_limit_param")]
    pub limit_param: String,
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Dotted path to the array of items in a page.
    #[serde(default = "default_items_path")]
    pub items_path: String,
    /// Dotted path to the total item count, when the API gives one.
    pub total_path: Option<String>,
    /// Cursor pagination: dotted path to the next page's cursor.
    pub cursor_path: Option<String>,
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
    /// Incremental: sent with the start of the last successful run (RFC 3339).
    pub updated_since_param: Option<String>,
    pub target: Secret,
    pub target_table: String,
    pub primary_key: Vec<String>,
    /// Target column = dotted path in an item, or `{ jq = "…" }` run on it.
    #[schemars(with = "BTreeMap<String, schema::ColumnSourceText>")]
    pub columns: BTreeMap<String, jq::ColumnSource>,
    /// jq run on each item first: items it maps to false or null are
    /// dropped (counted as filtered, not skipped).
    #[schemars(with = "Option<String>")]
    pub filter: Option<jq::Expression>,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(
        default = "default_retry_backoff",
        deserialize_with = "humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "schema::DurationText")]
    pub retry_backoff: Duration,
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "schema::DurationText")]
    pub request_timeout: Duration,
}

fn default_page_param() -> String {
    "page".into()
}
fn default_limit_param() -> String {
    "limit".into()
}
fn default_page_size() -> usize {
    100
}
fn default_items_path() -> String {
    "data".into()
}
fn default_cursor_param() -> String {
    "cursor".into()
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Properties of `type = "airbyte"` tasks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AirbyteProperties {
    /// The API's base URL, e.g. `https://api.airbyte.com/v1`.
    pub api_url: String,
    pub connection_id: String,
    pub client_id: Secret,
    pub client_secret: Secret,
    /// End the run `submitted` at once and watch the job in the background.
    #[serde(default)]
    pub asynchronous: bool,
    /// Seconds between polls of the job; fractions allowed.
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: f64,
    /// Then the remote job is cancelled and the run fails.
    #[serde(
        default = "default_airbyte_timeout",
        deserialize_with = "humantime_serde_compat::deserialize"
    )]
    #[schemars(with = "schema::DurationText")]
    pub timeout: Duration,
}

fn default_wait_seconds() -> f64 {
    3.0
}
fn default_airbyte_timeout() -> Duration {
    Duration::from_secs(3600)
}

pub(crate) fn default_retry_backoff() -> Duration {
    Duration::from_secs(1)
}

/// `"1s"`, `"250ms"` as a [`Duration`].
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|error| {
            serde::de::Error::custom(format!(
                "invalid duration `{text}`: {error}; write e.g. \"1s\" or \"250ms\""
            ))
        })
    }
}

/// An interval schedule: `schedule = "5m"` or `{ every = "300s", misfire_grace = "60s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub every: Duration,
    pub misfire_grace: Option<Duration>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum ScheduleSpec {
    #[schemars(with = "schema::DurationText")]
    Every(String),
    Table(ScheduleTable),
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleTable {
    #[schemars(with = "schema::DurationText")]
    every: String,
    #[schemars(with = "Option<schema::DurationText>")]
    misfire_grace: Option<String>,
}

/// Properties of `type = "sync"` tasks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncProperties {
    #[schemars(with = "String")]
    pub source_path: Spanned<String>,
    #[schemars(with = "String")]
    pub destination_path: Spanned<String>,
    /// Glob with `{a,b}`; with a `/` it matches the relative path, otherwise the name.
    #[schemars(with = "Option<String>")]
    pub pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub recursive: bool,
    #[serde(default = "yes")]
    pub overwrite: bool,
    #[serde(default)]
    pub compare: Compare,
    /// Files moved at once.
    #[serde(default = "default_transfers")]
    pub transfers: usize,
    /// Attempts after the first for a file that fails with a transient error.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Upper bound on bytes per second across the task's transfers, e.g. "4MiB".
    #[schemars(with = "Option<String>")]
    pub bwlimit: Option<Spanned<String>>,
    #[serde(default)]
    pub sync_config: SyncConnections,
}

fn yes() -> bool {
    true
}
fn default_transfers() -> usize {
    8
}
pub(crate) fn default_max_retries() -> u32 {
    3
}

/// How an existing destination file is judged unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Same size and the source not newer (or equal checksums): skip.
    #[default]
    SizeAndTime,
    /// Copy every matched file.
    Always,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncConnections {
    #[serde(default)]
    pub source_config: StoreOptions,
    #[serde(default)]
    pub destination_config: StoreOptions,
}

/// Connection options for one side of a file sync.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreOptions {
    pub aws_access_key_id: Option<Secret>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    pub region_name: Option<String>,
    /// Where the store's API answers instead of the cloud's own: an
    /// S3-compatible server (`http://127.0.0.1:9000`), an Azure Blob
    /// account URL, or a GCS server (`gs://` with no service account then
    /// sends no credentials, as an emulator expects).
    pub endpoint: Option<String>,
    /// Allow plain HTTP to `endpoint` (defaults to true for http:// endpoints).
    pub allow_http: Option<bool>,
    /// Google Cloud Storage service account key file.
    pub service_account_path: Option<PathBuf>,
    /// Azure storage account and key.
    pub account_name: Option<String>,
    pub access_key: Option<Secret>,
    /// Azure: a shared access signature (`sv=…&sig=…`) instead of the
    /// account key, as a `${credential:NAME}`.
    pub sas_token: Option<Secret>,
    /// Azure: talk to the Azurite emulator (its well-known account and key
    /// unless given; `endpoint` defaults to `http://127.0.0.1:10000`).
    pub use_emulator: Option<bool>,
    /// FTP: overrides the host in the URL.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// SFTP: the server's host key, `SHA256:…` as `ssh-keygen -l` prints it.
    pub host_key_fingerprint: Option<String>,
    /// SFTP: a known_hosts file to check the server's host key against
    /// (by default `~/.ssh/known_hosts` when it exists).
    pub known_hosts: Option<PathBuf>,
    /// SFTP: log in with this private key (OpenSSH or PEM; ed25519, ECDSA
    /// or RSA) instead of a password.
    pub private_key_file: Option<PathBuf>,
    /// SFTP: what unlocks `private_key_file`, as a `${credential:NAME}`.
    pub private_key_passphrase: Option<Secret>,
    /// FTPS: a PEM file of certificates to trust besides the system's
    /// roots (a private CA, or the server's own certificate's issuer).
    pub tls_ca_file: Option<PathBuf>,
}

/// A value that may hold a secret: never shown by `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A duration from the environment variable `name` (humantime, `3s`), or
/// `default` when it is unset or unreadable: for the knobs tests turn.
pub(crate) fn duration_from_env(name: &str, default: std::time::Duration) -> std::time::Duration {
    std::env::var(name)
        .ok()
        .and_then(|text| humantime::parse_duration(&text).ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::TaskKind;
    use crate::run::RunCounters;

    #[test]
    fn a_run_is_told_in_rows_by_its_tasks_kind_or_else_by_its_counters() {
        let nothing = RunCounters::default();
        let rows_synced = RunCounters {
            rows_upserted: 12,
            ..Default::default()
        };
        let files_synced = RunCounters {
            files_synced: 3,
            ..Default::default()
        };
        assert!(
            TaskKind::moves_rows(Some(TaskKind::TableSync), &nothing),
            "a table run that failed before reading a row still reads in rows"
        );
        assert!(TaskKind::moves_rows(Some(TaskKind::HttpSync), &nothing));
        assert!(!TaskKind::moves_rows(Some(TaskKind::Sync), &rows_synced));
        assert!(
            TaskKind::moves_rows(Some(TaskKind::Airbyte), &rows_synced),
            "an Airbyte run that reported rows synced reads in rows"
        );
        assert!(!TaskKind::moves_rows(
            Some(TaskKind::Airbyte),
            &files_synced
        ));
        assert!(
            TaskKind::moves_rows(None, &rows_synced),
            "a task removed from the config goes by its counters"
        );
        assert!(!TaskKind::moves_rows(None, &files_synced));
    }
}
