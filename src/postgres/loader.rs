//! Loading batches of rows into one target table: a plain COPY on a
//! first load, otherwise an upsert that leaves unchanged rows alone, with
//! commits that do not wait for the disk and are tracked until the WAL is
//! flushed past them.

use std::time::Duration;

use tokio_postgres::Client;

use super::rows::Rows;
use super::watch::{Backend, SlowLoadWatch};
use super::{Endpoint, PgError, describe, load_error, sql};

/// Batches kept after an asynchronous commit until the target's WAL is
/// flushed past them, at most this many or this many bytes per loader.
const UNFLUSHED_BATCHES: usize = 64;
const UNFLUSHED_BYTES: usize = 16 << 20;
/// How often the end of a run asks whether the target flushed its WAL, and
/// how long it waits at most (see `batch::confirm_flushed`).
pub(crate) const FLUSH_POLL: Duration = Duration::from_millis(5);

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
/// before anything else; `batch::confirm_flushed` waits until the last one is
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
    /// The target accepts the WAL write that `flush_now` makes.
    flush_by_message: bool,
    /// The primary key's columns: name and position in a row.
    key_columns: Vec<(String, usize)>,
    /// The current connection's backend process, for watching slow loads.
    backend: Backend,
    /// Cancels what the current connection runs; known from the moment it
    /// is made (preparing the upsert may already wait for a lock).
    cancel_token: Option<tokio_postgres::CancelToken>,
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
            flush_by_message: true,
            backend: Backend::default(),
            cancel_token: None,
            key_columns: primary_key
                .iter()
                .filter_map(|key| {
                    let position = columns.iter().position(|(name, _)| name == key)?;
                    Some((key.clone(), position))
                })
                .collect(),
        }
    }

    /// Row `row` of `rows` by its primary key, as `syncdeck errors` shows
    /// a bad row: `id=7`, or `tenant=3, id=7`.
    pub(crate) fn row_key(&self, rows: &Rows, row: usize) -> String {
        self.key_columns
            .iter()
            .map(|(name, position)| {
                format!("{name}={}", rows.get(row, *position).unwrap_or("NULL"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn connection(&mut self) -> Result<&(Client, tokio_postgres::Statement), PgError> {
        if self
            .client
            .as_ref()
            .is_none_or(|(client, _)| client.is_closed())
        {
            self.client = None;
            self.backend.set(None);
            self.cancel_token = None;
            self.replay = !self.unflushed.is_empty();
            let client = self.endpoint.connect().await?;
            // Known before preparing: preparing the upsert already takes
            // the target table's lock, and may wait for it.
            self.backend.set(backend_pid(&client).await);
            self.cancel_token = Some(client.cancel_token());
            let statement = client.prepare(&self.upsert).await.map_err(|error| {
                PgError::Database(format!("cannot prepare the upsert: {}", describe(&error)))
            })?;
            self.async_commit = enable_async_commit(&client).await;
            self.copy_row_by_row = server_version(&client)
                .await
                .is_some_and(|version| (120_000..170_000).contains(&version));
            self.client = Some((client, statement));
        }
        self.client
            .as_ref()
            .ok_or_else(|| PgError::Database("no target connection".into()))
    }

    pub(crate) fn forget_closed(&mut self) {
        self.client = self.client.take().filter(|(client, _)| !client.is_closed());
        if self.client.is_none() {
            self.backend.set(None);
            self.cancel_token = None;
        }
    }

    /// Asks the target to stop the statement this loader's connection may
    /// still run (a load given up when the run was cancelled): otherwise
    /// it would go on on the server, or wait there for a lock, after the
    /// run ended. Waits at most a few seconds for the server's answer.
    pub(crate) async fn cancel_statement(&mut self) {
        self.client = None;
        self.backend.set(None);
        if let Some(token) = self.cancel_token.take() {
            self.endpoint.cancel(token).await;
        }
    }

    /// Watches a load of `label` until the watch is dropped: one that
    /// takes long is looked at, and the log says what it waits for.
    pub(crate) fn watch(&self, label: &str, on_lock: super::watch::OnLock) -> SlowLoadWatch {
        super::watch::watch(&self.endpoint, &self.backend, label, on_lock)
    }

    /// Loads rows in one transaction and returns the rows inserted or
    /// changed: a COPY on the first attempt of a first load, otherwise one
    /// upsert with a text array per column. Batches a lost connection may
    /// have taken with it are loaded again first.
    pub(crate) async fn load(&mut self, rows: &Rows, attempt: u32) -> Result<u64, PgError> {
        self.connection().await?;
        if self.replay {
            self.load_unflushed_again().await?;
        }
        if self.first_load && attempt == 1 {
            return self.copy_in(rows).await;
        }
        self.upsert(rows).await
    }

    async fn upsert(&mut self, rows: &Rows) -> Result<u64, PgError> {
        let (client, statement) = self.connection().await?;
        let arrays: Vec<Vec<Option<&str>>> = (0..rows.width())
            .map(|column| rows.column(column))
            .collect();
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = arrays
            .iter()
            .map(|array| array as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let error = |error: tokio_postgres::Error| PgError::Database(describe(&error));
        client.batch_execute("BEGIN").await.map_err(error)?;
        let changed = match client.execute(statement, &params).await {
            Ok(changed) => changed,
            Err(failure) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(load_error(&failure));
            }
        };
        client.batch_execute("COMMIT").await.map_err(error)?;
        Ok(changed)
    }

    async fn copy_in(&mut self, rows: &Rows) -> Result<u64, PgError> {
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
        let error = |error: tokio_postgres::Error| PgError::Database(describe(&error));
        // A COPY outside a transaction block commits on its own, all or nothing.
        let sink = client
            .copy_in::<_, bytes::Bytes>(copy.as_str())
            .await
            .map_err(error)?;
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.map_err(error)?;
        sink.finish().await.map_err(|failure| load_error(&failure))
    }

    /// Upserts every batch not known to be flushed, on the new connection.
    async fn load_unflushed_again(&mut self) -> Result<(), PgError> {
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
    pub(crate) async fn committed(&mut self, rows: Rows, label: &str, item_key: &str) {
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
    async fn track(&mut self) -> Result<(), PgError> {
        if self.unflushed.is_empty() || self.replay {
            return Ok(());
        }
        let Some((client, _)) = self.client.as_ref() else {
            return Err(PgError::Database("no target connection".into()));
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

    /// One step towards confirming the batches kept after asynchronous
    /// commits: reconnects and loads them again if the connection was
    /// lost, then reads the WAL positions. `Ok(true)` when none is left.
    pub(crate) async fn confirm_step(&mut self) -> Result<bool, PgError> {
        if self.unflushed.is_empty() {
            return Ok(true);
        }
        self.connection().await?;
        if self.replay {
            self.load_unflushed_again().await?;
        }
        self.track().await?;
        if !self.unflushed.is_empty() && !self.replay {
            self.flush_now().await?;
            self.track().await?;
        }
        Ok(self.unflushed.is_empty())
    }

    /// Asks the target to write its WAL out now, instead of waiting for
    /// its WAL writer (up to `wal_writer_delay`, 200 ms by default, at the
    /// end of every run that loaded anything). A transaction that commits
    /// synchronously flushes the WAL through its commit record, past every
    /// earlier commit, but only if it wrote WAL before committing (one that
    /// only took an id commits asynchronously). A transactional logical
    /// message is the smallest WAL write any role may make. Where the
    /// target refuses it, the run waits for the WAL writer instead.
    async fn flush_now(&mut self) -> Result<(), PgError> {
        if !self.flush_by_message {
            return Ok(());
        }
        let Some((client, _)) = self.client.as_ref() else {
            return Err(PgError::Database("no target connection".into()));
        };
        let flushed = client
            .batch_execute(
                "BEGIN; SET LOCAL synchronous_commit TO on; \
                 SELECT pg_logical_emit_message(true, 'syncdeck', 'flush'); COMMIT",
            )
            .await;
        match flushed {
            Ok(()) => Ok(()),
            Err(error) if error.as_db_error().is_some() => {
                tracing::debug!(error = %describe(&error), "the target cannot be asked to flush its WAL; waiting for its WAL writer");
                self.flush_by_message = false;
                let _ = client.batch_execute("ROLLBACK").await;
                Ok(())
            }
            Err(error) => Err(PgError::Database(describe(&error))),
        }
    }

    /// Stops tracking every kept batch and returns their (label, item key)
    /// pairs, for the caller to record as failed.
    pub(crate) fn take_unconfirmed(&mut self) -> Vec<(String, String)> {
        self.unflushed_bytes = 0;
        std::mem::take(&mut self.unflushed)
            .into_iter()
            .map(|batch| (batch.label, batch.item_key))
            .collect()
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

/// The connection's backend process id.
async fn backend_pid(client: &Client) -> Option<i32> {
    let messages = client.simple_query("SELECT pg_backend_pid()").await.ok()?;
    messages.iter().find_map(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
        _ => None,
    })
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
async fn wal_positions(client: &Client) -> Result<(u64, u64), PgError> {
    let messages = client
        .simple_query("SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text")
        .await
        .map_err(|error| PgError::Database(describe(&error)))?;
    messages
        .into_iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some((
                row.get(0).and_then(parse_lsn)?,
                row.get(1).and_then(parse_lsn)?,
            )),
            _ => None,
        })
        .ok_or_else(|| PgError::Database("the target did not report its WAL positions".into()))
}

/// `16/B374D848` → a number that orders like the position.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}
