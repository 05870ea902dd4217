//! syncdeck: an operations console and engine for data syncs.
//!
//! # Layout
//! - [`config`]: the TOML model, loading with `file:line:col` errors,
//!   credential references and redaction, path templates, validation.
//! - [`engine`]: runs, their statuses and counters, commands in and events
//!   out, cancellation, dependency order and concurrency limits.
//! - [`files`]: file sync (`type = "sync"`) and the stores it uses: local
//!   files, FTP/FTPS, SFTP, and S3, GCS, Azure and memory through
//!   `object_store`.
//! - [`table`]: table sync (`type = "table_sync"`), PostgreSQL or
//!   Redshift into PostgreSQL in retriable batches.
//! - [`airbyte`]: Airbyte job tasks (`type = "airbyte"`) over its API.
//! - [`http`]: paginated HTTP API sync into PostgreSQL (`type = "http_sync"`).
//! - [`state`]: the state store (`sync_logs`, `failed_items`,
//!   `watermarks`) behind a trait, with the embedded SQLite store.
//! - [`logging`]: `tracing` to a rolling file and stderr, redacted.
//! - [`console`]: the terminal UI: model (`app`), keymap, views, theme.
//! - [`cli`]: the command line: `run`, `plan`, `validate`, `history`,
//!   `errors`, `retry`.
#![forbid(unsafe_code)]

pub mod airbyte;
pub mod cli;
pub mod config;
pub mod console;
pub mod engine;
pub mod files;
pub mod http;
pub mod logging;
pub mod state;
pub mod table;
mod tls;
