//! syncdeck: an operations console and engine for data syncs.
//!
//! # Layout
//! Each part depends only on parts listed before it
//! (a test in `tests/layering.rs` fails the build on a cycle):
//! - [`run`]: what a run is (ids, statuses, counters) and the events and
//!   commands about runs; depends on nothing of syncdeck.
//! - [`config`]: the TOML model, loading with `file:line:col` errors,
//!   credential references and redaction, path templates, locations and
//!   patterns, validation.
//! - `postgres`: connections with TLS, catalog queries, the batch loader
//!   with WAL-flush tracking, row buffers, type coercion.
//! - [`state`]: the state store (`sync_logs`, `failed_items`,
//!   `watermarks`, leases) behind a trait: SQLite and PostgreSQL.
//! - [`task`]: the contract between the engine and the sync kinds
//!   (`TaskBody`, `RemoteJob`), the run context, the one retry rule and the
//!   one rule for a run's final status. `batch` builds on it: batches
//!   loaded into PostgreSQL with retries, for table and HTTP sync.
//! - [`engine`]: runs any task through the contract: commands in, events
//!   out, cancellation, leases, dependency order, concurrency limits, the
//!   scheduler. It never names a sync kind.
//! - [`files`]: file sync (`type = "sync"`) and the stores it uses: local
//!   files, FTP/FTPS, SFTP, and S3, GCS, Azure and memory through
//!   `object_store`.
//! - [`table`]: table sync (`type = "table_sync"`), PostgreSQL or
//!   Redshift into PostgreSQL in retriable batches.
//! - [`airbyte`]: Airbyte job tasks (`type = "airbyte"`) over its API.
//! - [`http`]: paginated HTTP API sync into PostgreSQL (`type = "http_sync"`).
//! - [`kinds`]: the one place that maps a task's config to its body.
//! - [`logging`]: `tracing` to a rolling file and stderr, redacted, as
//!   text or JSON lines.
//! - [`service`]: the daemon's HTTP endpoint: Prometheus `/metrics` kept
//!   from the engine's events, `/healthz` and `/readyz`.
//! - [`console`]: the terminal UI: model (`app`), keymap, views, theme.
//! - [`cli`]: the command line: `run`, `plan`, `validate`, `history`,
//!   `errors`, `retry`, `daemon`, and `completions`, `man`, `schema`.
#![forbid(unsafe_code)]

pub mod airbyte;
mod batch;
pub mod cli;
pub mod config;
pub mod console;
pub mod engine;
pub mod files;
pub mod http;
pub mod kinds;
pub mod logging;
pub(crate) mod postgres;
pub mod run;
pub mod service;
pub mod state;
pub mod table;
pub mod task;
mod tls;
