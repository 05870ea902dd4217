//! Each run's summary line the moment it ends, while other tasks still
//! run: an operator of a long `syncdeck run` sees what finished without
//! waiting for the slowest task.

use std::collections::HashSet;
use std::sync::Arc;

use indicatif::MultiProgress;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::report;
use crate::engine::{Engine, TaskResult};
use crate::run::event::EngineEvent;
use crate::run::{RunId, RunStatus};

pub(super) struct Summaries {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<HashSet<RunId>>,
}

impl Summaries {
    /// Stops after the events already sent; returns the runs printed, so
    /// the final report prints only the others.
    pub(super) async fn finish(self) -> HashSet<RunId> {
        self.stop.cancel();
        self.handle.await.unwrap_or_default()
    }
}

/// Prints each finished run on stdout (as JSON under `json`), above the
/// progress bars when there are some.
pub(super) fn spawn(
    engine: &Arc<Engine>,
    json: bool,
    bars: Option<MultiProgress>,
    width: Option<usize>,
) -> Summaries {
    let mut events = engine.subscribe();
    let kinds = report::Kinds::of(engine.config());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let handle = tokio::spawn(async move {
        let mut shown = HashSet::new();
        loop {
            let event = tokio::select! {
                biased;
                event = events.recv() => event,
                _ = stopped.cancelled() => match events.try_recv() {
                    Ok(event) => Ok(event),
                    Err(_) => break,
                },
            };
            let record = match event {
                // A blocked task is reported at the end, with the
                // dependency that kept it from starting.
                Ok(EngineEvent::RunFinished { record }) if record.status != RunStatus::Blocked => {
                    record
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            shown.insert(record.run_id);
            let result = TaskResult::Ran(record);
            let line = if json {
                crate::config::redact(&report::result_json(&result).to_string()).into_owned()
            } else {
                report::fit(&report::result_line(&result, &kinds), width)
            };
            match &bars {
                Some(bars) => bars.suspend(|| out!("{line}")),
                None => out!("{line}"),
            }
        }
        shown
    });
    Summaries { stop, handle }
}
