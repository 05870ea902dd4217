//! Runs that outlive their process: a submitted run's remote job is
//! watched to its end, and `submitted` runs nobody watches any more (their
//! process ended) are adopted by the next console or daemon.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{ActiveRun, Engine};
use crate::config::template::TemplateContext;
use crate::run::{RunId, RunStatus, Trigger};
use crate::task::{RemoteJob, RunContext, SharedCounters, StopReason};

/// How many recent runs are searched for unwatched submitted ones.
const ADOPT_LOOKBACK: usize = 500;
/// How often a long-lived engine looks for unwatched submitted runs.
const ADOPT_EVERY: Duration = Duration::from_secs(30);

/// The lease a watcher of a submitted run holds.
fn watch_lease(run_id: RunId) -> String {
    format!("watch:run:{run_id}")
}

impl Engine {
    /// Watches a submitted run's remote job until it ends and records the
    /// end on the run. The watcher holds a lease on the run (not on its
    /// task, which may run again meanwhile), so no other process adopts
    /// it. A cancel by id or through the state store cancels the job; the
    /// engine shutting down only stops the watching (the job goes on, and
    /// the next console or daemon adopts the run).
    pub(super) fn watch_in_background(
        self: &Arc<Self>,
        mut context: RunContext,
        trigger: Trigger,
        started_at: chrono::DateTime<Utc>,
        job: Arc<dyn RemoteJob>,
    ) {
        context.cancel = CancellationToken::new();
        self.lock_active().insert(
            context.run_id,
            ActiveRun {
                task_id: context.task_id.clone(),
                cancel: context.cancel.clone(),
            },
        );
        let engine = Arc::clone(self);
        tokio::spawn(
            async move {
                let owner = crate::state::owner();
                let key = watch_lease(context.run_id);
                let ttl = engine.config.engine.lease_ttl;
                if !matches!(engine.state.acquire_lease(&key, &owner, ttl).await, Ok(true)) {
                    tracing::info!("another process watches this submitted run");
                    engine.lock_active().remove(&context.run_id);
                    return;
                }
                let lost = CancellationToken::new();
                let renewal = engine.spawn_lease_renewal(
                    &key,
                    context.run_id,
                    &owner,
                    context.cancel.clone(),
                    lost.clone(),
                    context.stop_reason.clone(),
                );
                let outcome = tokio::select! {
                    outcome = job.until_done(&context) => Some(outcome),
                    _ = lost.cancelled() => None,
                    _ = engine.shutdown.cancelled() => {
                        tracing::info!("stopped watching the submitted job; the next console or daemon takes it over");
                        None
                    }
                };
                renewal.abort();
                match outcome {
                    Some(outcome) => {
                        engine.finish(&context, trigger, started_at, outcome).await;
                    }
                    None => {
                        engine.lock_active().remove(&context.run_id);
                    }
                }
                let _ = engine.state.release_lease(&key, &owner).await;
            }
            .instrument(tracing::Span::current()),
        );
    }

    /// Takes over `submitted` runs that nobody watches any more (the
    /// process that submitted them has ended, as a headless `syncdeck run`
    /// does) and watches their jobs to the end. Returns how many it took.
    pub async fn adopt_submitted_runs(self: &Arc<Self>) -> usize {
        let runs = match self.state.runs(None, ADOPT_LOOKBACK).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::warn!(%error, "could not look for submitted runs");
                return 0;
            }
        };
        let owner = crate::state::owner();
        let ttl = self.config.engine.lease_ttl;
        let mut adopted = 0;
        for record in runs
            .into_iter()
            .filter(|run| run.status == RunStatus::Submitted)
        {
            if self.lock_active().contains_key(&record.run_id) {
                continue;
            }
            let Some(task) = self.config.task(&record.task_id) else {
                continue;
            };
            let Some(job_id) = record.counters.remote_job_id else {
                continue;
            };
            let key = watch_lease(record.run_id);
            if !matches!(self.state.acquire_lease(&key, &owner, ttl).await, Ok(true)) {
                continue;
            }
            let span =
                tracing::info_span!("run", task_id = %record.task_id, run_id = record.run_id);
            let job = match self
                .bodies
                .body(task)
                .resume(job_id)
                .instrument(span.clone())
                .await
            {
                Some(Ok(job)) => job,
                Some(Err(error)) => {
                    span.in_scope(|| tracing::warn!(%error, "cannot watch the submitted job yet; trying again later"));
                    let _ = self.state.release_lease(&key, &owner).await;
                    continue;
                }
                None => {
                    let _ = self.state.release_lease(&key, &owner).await;
                    continue;
                }
            };
            span.in_scope(|| {
                tracing::info!(
                    job_id,
                    "watching a job submitted by a process that has ended"
                )
            });
            // The date the run was started for; its start day for runs
            // recorded before dates were kept.
            let execution_date = match self.state.execution_date(record.run_id).await {
                Ok(Some(date)) => date,
                _ => record.started_at.date_naive(),
            };
            let counters = SharedCounters::default();
            let previous = record.counters.clone();
            counters.update(|counters| *counters = previous);
            let context = RunContext {
                run_id: record.run_id,
                task_id: record.task_id.clone(),
                cancel: self.shutdown.child_token(),
                events: self.events.clone(),
                state: Arc::clone(&self.state),
                templates: TemplateContext {
                    execution_date: execution_date.format("%Y-%m-%d").to_string(),
                    run_id: record.run_id.to_string(),
                    task_id: record.task_id.clone(),
                },
                base_dir: self.config.base_dir.clone(),
                retry_items: None,
                counters,
                stop_reason: StopReason::default(),
                abandoned_rows: Default::default(),
                failed_batches: Default::default(),
            };
            span.in_scope(|| {
                self.watch_in_background(context, record.trigger, record.started_at, job)
            });
            adopted += 1;
        }
        adopted
    }

    /// Adopts unwatched submitted runs now and every half minute, until
    /// the engine shuts down (the console and the daemon run this).
    pub fn spawn_adoption(self: &Arc<Self>) {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                engine.adopt_submitted_runs().await;
                tokio::select! {
                    _ = engine.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(ADOPT_EVERY) => {}
                }
            }
        });
    }
}
