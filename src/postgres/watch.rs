//! What a slow load waits for. A batch whose statement has not returned
//! after a while is looked at from a second connection: when the target's
//! session waits for a lock, the log names the sessions holding it (pid,
//! application, state, how long their transaction has been open), so a
//! stalled run says why instead of showing a progress that stopped.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Endpoint, describe};

/// Told what a load waits for while it waits for a lock (a few words),
/// and `None` once it no longer does.
pub(crate) type OnLock = Arc<dyn Fn(Option<String>) + Send + Sync>;

/// How long a load runs before it is looked at; `SYNCDECK_SLOW_LOAD` (a
/// duration) changes it.
const SLOW_LOAD: Duration = Duration::from_secs(10);
/// How often it is looked at again while it still waits.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// The backend process of a loader's connection, 0 while not connected;
/// shared with the watches of its loads.
#[derive(Clone, Default)]
pub(crate) struct Backend(Arc<AtomicI32>);

impl Backend {
    pub(crate) fn set(&self, pid: Option<i32>) {
        self.0.store(pid.unwrap_or(0), Ordering::Relaxed);
    }

    fn get(&self) -> Option<i32> {
        Some(self.0.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
    }
}

/// A watch on one load; it stops when dropped (the load returned), and
/// takes back what it told `on_lock`.
pub(crate) struct SlowLoadWatch {
    task: JoinHandle<()>,
    on_lock: OnLock,
    state: Arc<Mutex<Told>>,
}

/// What a watch told `on_lock`, and whether its load still runs: changed
/// under one lock, so a report made as the load returns is never left
/// behind.
#[derive(Default)]
struct Told {
    ended: bool,
    lock: bool,
}

impl Drop for SlowLoadWatch {
    fn drop(&mut self) {
        self.task.abort();
        let mut told = match self.state.lock() {
            Ok(told) => told,
            Err(poisoned) => poisoned.into_inner(),
        };
        told.ended = true;
        if told.lock {
            (self.on_lock)(None);
        }
    }
}

/// Starts watching the load of `label` on `backend`'s connection; a lock
/// it waits for is logged, and told to `on_lock` (the run's progress then
/// says what it waits for instead of an ETA).
pub(crate) fn watch(
    endpoint: &Endpoint,
    backend: &Backend,
    label: &str,
    on_lock: OnLock,
) -> SlowLoadWatch {
    let (endpoint, backend, label) = (endpoint.clone(), backend.clone(), label.to_string());
    let state = Arc::new(Mutex::new(Told::default()));
    let (shown, told) = (Arc::clone(&on_lock), Arc::clone(&state));
    let first = crate::config::duration_from_env("SYNCDECK_SLOW_LOAD", SLOW_LOAD);
    // In the run's span, so the line names its task and run.
    let task = tokio::spawn(
        async move {
            let started = Instant::now();
            let mut wait = first;
            loop {
                tokio::time::sleep(wait).await;
                wait = LOOK_AGAIN.max(first);
                let Some(pid) = backend.get() else {
                    continue;
                };
                let waited = humantime::format_duration(Duration::from_secs(
                    started.elapsed().as_secs().max(1),
                ));
                match what_it_waits_for(&endpoint, pid).await {
                    Ok(Waiting::Lock { holders, short }) => {
                        tracing::warn!(
                            item = %label,
                            "loading has waited {waited} for a lock on the target table, held by {holders}; it goes on once they commit or roll back (or cancel the run)"
                        );
                        let mut told = match told.lock() {
                            Ok(told) => told,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        if !told.ended {
                            told.lock = true;
                            shown(Some(short));
                        }
                    }
                    Ok(Waiting::Other(what)) => tracing::info!(
                        item = %label,
                        "loading has taken {waited} so far; the target's session {what}"
                    ),
                    Ok(Waiting::Done) => {}
                    Err(error) => tracing::debug!(%error, "could not look at a slow load"),
                }
            }
        }
        .instrument(tracing::Span::current()),
    );
    SlowLoadWatch {
        task,
        on_lock,
        state,
    }
}

enum Waiting {
    /// Waits for a lock held by these sessions: described in full, and
    /// in a few words for a progress line.
    Lock { holders: String, short: String },
    /// Works, or waits for something else (described).
    Other(String),
    /// The statement has returned meanwhile.
    Done,
}

async fn what_it_waits_for(endpoint: &Endpoint, pid: i32) -> Result<Waiting, String> {
    let client = endpoint
        .connect()
        .await
        .map_err(|error| error.to_string())?;
    let row = client
        .query_opt(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .map_err(|error| describe(&error))?;
    let Some(row) = row else {
        return Ok(Waiting::Done);
    };
    let state: Option<String> = row.get(0);
    let wait_type: Option<String> = row.get(1);
    let wait_event: Option<String> = row.get(2);
    if state.as_deref() != Some("active") {
        return Ok(Waiting::Done);
    }
    match wait_type.as_deref() {
        Some("Lock") => {}
        Some(kind) => {
            return Ok(Waiting::Other(format!(
                "waits on {kind} ({})",
                wait_event.as_deref().unwrap_or("unknown")
            )));
        }
        None => return Ok(Waiting::Other("is working on it".into())),
    }
    // Another role's sessions show no state or times without
    // pg_read_all_stats: say so rather than guess.
    let holders = client
        .query(
            "SELECT pid, application_name, state,
                    extract(epoch FROM now() - xact_start)::bigint
             FROM pg_stat_activity WHERE pid = ANY (pg_blocking_pids($1)) ORDER BY pid",
            &[&pid],
        )
        .await
        .map_err(|error| describe(&error))?;
    let described: Vec<String> = holders
        .iter()
        .map(|holder| {
            let application: Option<String> = holder.get(1);
            let state: Option<String> = holder.get(2);
            let open: Option<i64> = holder.get(3);
            format!(
                "pid {} ({}, {}, transaction open for {})",
                holder.get::<_, i32>(0),
                application
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| "no application name".into()),
                state.unwrap_or_else(|| "state not visible to this role".into()),
                open.map(|seconds| humantime::format_duration(Duration::from_secs(
                    seconds.max(0) as u64
                ))
                .to_string())
                    .unwrap_or_else(|| "an unknown time".into()),
            )
        })
        .collect();
    let Some(first) = holders.first() else {
        return Ok(Waiting::Other("waits for a lock".into()));
    };
    let application: Option<String> = first.get(1);
    let short = format!(
        "a lock held by pid {}{}{}",
        first.get::<_, i32>(0),
        application
            .filter(|name| !name.is_empty())
            .map(|name| format!(" ({name})"))
            .unwrap_or_default(),
        if holders.len() > 1 {
            format!(" and {} more", holders.len() - 1)
        } else {
            String::new()
        }
    );
    Ok(Waiting::Lock {
        holders: described.join("; "),
        short,
    })
}
