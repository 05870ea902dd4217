//! The contract between the engine and the sync kinds.
//!
//! A task's config becomes a [`TaskBody`] (in [`crate::kinds`]); the engine
//! runs every task through that trait and never names a sync kind. A body
//! gets a [`RunContext`] (ids, cancel token, counters, events, state store),
//! retries its items with [`retry::Retry`] and ends with a [`TaskOutcome`].
//! Work that goes on after the run is recorded `submitted` (an Airbyte job)
//! is a [`RemoteJob`] the engine keeps watching.
//!
//! Depends on `run` (records and events), `state` (failed items) and
//! `config` (templates); no sync kind and not the engine.

pub mod context;
pub(crate) mod retry;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::Value;

use crate::config::template::TemplateContext;
use crate::run::RunStatus;
use crate::state::StateStore;
pub use context::RunContext;
pub(crate) use context::{SharedCounters, StopReason};

/// One task's work, built from its config.
#[async_trait]
pub trait TaskBody: Send + Sync {
    /// Runs the task once; the engine records the outcome and counters.
    async fn run(&self, context: &RunContext) -> TaskOutcome;

    /// What a run would do now, without changing anything.
    async fn plan(&self, request: &PlanRequest) -> Result<TaskPlan, String>;

    /// A watch on a remote job this task submitted earlier (by a process
    /// that has ended), or `None` for tasks whose work never outlives the
    /// run.
    async fn resume(&self, _remote_job_id: i64) -> Option<Result<Arc<dyn RemoteJob>, String>> {
        None
    }
}

/// Work a run handed to a remote system, watched until it ends.
#[async_trait]
pub trait RemoteJob: Send + Sync {
    /// Waits for the job to end; a cancel of `context` cancels the job.
    async fn until_done(&self, context: &RunContext) -> TaskOutcome;
}

/// Builds task bodies from config; the engine holds one.
pub trait TaskBodies: Send + Sync {
    fn body(&self, task: &crate::config::TaskConfig) -> Box<dyn TaskBody>;
}

/// What `plan` is asked about.
pub struct PlanRequest {
    pub task_id: String,
    pub execution_date: NaiveDate,
    pub base_dir: std::path::PathBuf,
    pub state: Arc<dyn StateStore>,
    /// List the items the run would leave alone (unchanged files), not
    /// only their count.
    pub list_skipped: bool,
}

impl PlanRequest {
    /// Template values of a run that has not started yet.
    pub fn templates(&self) -> TemplateContext {
        TemplateContext {
            execution_date: self.execution_date.format("%Y-%m-%d").to_string(),
            run_id: "next".into(),
            task_id: self.task_id.clone(),
        }
    }
}

/// A plan as the CLI shows it: lines of text, or one JSON value.
pub struct TaskPlan {
    pub lines: Vec<String>,
    pub json: Value,
}

/// How a task body ended; the engine adds counters and times.
#[derive(Clone)]
pub struct TaskOutcome {
    pub(crate) status: RunStatus,
    pub(crate) error: Option<String>,
    pub(crate) warning: Option<String>,
    /// Work that goes on after the run is recorded `submitted`; its outcome
    /// becomes the run's final status.
    pub(crate) follow_up: Option<Arc<dyn RemoteJob>>,
}

impl TaskOutcome {
    pub(crate) fn new(status: RunStatus, error: Option<String>, warning: Option<String>) -> Self {
        Self {
            status,
            error,
            warning,
            follow_up: None,
        }
    }

    pub(crate) fn cancelled() -> Self {
        Self::new(
            RunStatus::Cancelled,
            Some("cancelled by the operator".into()),
            None,
        )
    }

    pub(crate) fn failed(error: String) -> Self {
        Self::new(RunStatus::Failed, Some(error), None)
    }

    /// The outcome of a task body that stops at its first error: an error
    /// after a cancel is the cancel.
    pub(crate) fn of<E: std::fmt::Display>(
        result: Result<TaskOutcome, E>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Self {
        match result {
            Ok(outcome) => outcome,
            Err(_) if cancel.is_cancelled() => Self::cancelled(),
            Err(error) => Self::failed(error.to_string()),
        }
    }

    pub(crate) fn with_follow_up(mut self, job: Arc<dyn RemoteJob>) -> Self {
        self.follow_up = Some(job);
        self
    }
}

/// The one rule for a finished run's status, for every sync kind: nothing
/// failed is a success; something failed and nothing else was done is a
/// failure; both is partial. `done` counts items that landed or were
/// settled (files copied or skipped, batches and pages loaded).
pub(crate) fn final_status(done: u64, failed: u64) -> RunStatus {
    match (done, failed) {
        (_, 0) => RunStatus::Succeeded,
        (0, _) => RunStatus::Failed,
        _ => RunStatus::Partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_partial_only_when_something_landed_and_something_failed() {
        assert_eq!(final_status(0, 0), RunStatus::Succeeded, "empty run");
        assert_eq!(final_status(5, 0), RunStatus::Succeeded);
        assert_eq!(final_status(0, 3), RunStatus::Failed);
        assert_eq!(final_status(5, 3), RunStatus::Partial);
    }
}
