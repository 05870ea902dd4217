//! The engine: owns tasks, runs and the state store. Callers send it
//! commands (start, cancel, retry) and watch its events; it never knows
//! whether a console, the CLI or nobody is watching.
//!
//! Depends on `run` (records, events), `state` (runs, leases, cancel
//! requests), `config` and `task`: every task runs through a `TaskBody`
//! built by the `TaskBodies` it is given, so the engine names no sync kind.
//! `remote` watches and adopts submitted runs; `scheduler` starts
//! scheduled runs.

mod progress;
mod remote;
pub mod scheduler;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::config::template::TemplateContext;
use crate::run::event::{EngineCommand, EngineEvent};
use crate::run::{RunId, RunRecord, RunStatus, Trigger};
use crate::state::{FailedItem, StateError, StateStore};
use crate::task::{RunContext, SharedCounters, StopReason, TaskBodies, TaskOutcome};

/// Events buffered per subscriber; a subscriber that falls further behind
/// misses the oldest ones (progress snapshots make that harmless).
const EVENT_BUFFER: usize = 4096;
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no task `{0}` in the config")]
    UnknownTask(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("task `{0}` is already queued or running; cancel it or wait for it to finish")]
    AlreadyRunning(String),
    #[error("task `{0}` is running on another worker (it holds the task's lease)")]
    RunningElsewhere(String),
    #[error("task `{task_id}` has no pending failed items{which}")]
    NothingToRetry { task_id: String, which: String },
}

/// Options for one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The logical date for `{{ execution_date }}`; today (UTC) when unset.
    pub execution_date: Option<NaiveDate>,
}

/// How a task ended in a multi-task run.
#[derive(Debug, Clone)]
pub enum TaskResult {
    Ran(Box<RunRecord>),
    /// Not started because `dependency` did not succeed; recorded in the
    /// history as run `run_id` (none if the store could not record it).
    Blocked {
        task_id: String,
        dependency: String,
        run_id: Option<RunId>,
    },
    /// The run could not be recorded or started.
    Error {
        task_id: String,
        message: String,
    },
}

impl TaskResult {
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Ran(record) if record.status.is_success())
    }
}

pub(super) struct ActiveRun {
    task_id: String,
    cancel: CancellationToken,
}

pub struct Engine {
    config: Arc<Config>,
    state: Arc<dyn StateStore>,
    /// Turns a task's config into the body the engine runs; the engine
    /// knows no sync kind itself.
    bodies: Arc<dyn TaskBodies>,
    /// Events to every watcher. A broadcast channel, so a slow watcher
    /// loses old events instead of slowing the runs down.
    events: broadcast::Sender<EngineEvent>,
    /// Cancel tokens of the runs in progress, by run id.
    active: Mutex<HashMap<RunId, ActiveRun>>,
    /// Caps runs executing at once at `max_concurrent_tasks`; further runs
    /// wait here as `queued`.
    slots: Arc<Semaphore>,
    /// Parent of every run's cancel token: cancelling it stops all runs.
    shutdown: CancellationToken,
    /// Tasks with a run queued or running: a task runs at most once at a time.
    busy: Mutex<HashSet<String>>,
}

/// Releases a task's place in `Engine::busy` however its run ends.
struct BusyGuard<'a> {
    engine: &'a Engine,
    task_id: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut busy = match self.engine.busy.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        busy.remove(&self.task_id);
    }
}

impl Engine {
    /// Creates the engine over an opened state store. Runs left `running`
    /// by a process that is gone are marked `interrupted`.
    pub async fn new(
        config: Arc<Config>,
        state: Arc<dyn StateStore>,
        bodies: Arc<dyn TaskBodies>,
    ) -> Result<Arc<Self>, EngineError> {
        let interrupted = state.mark_interrupted().await?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "runs of a stopped process marked interrupted"
            );
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Arc::new(Self {
            slots: Arc::new(Semaphore::new(config.engine.max_concurrent_tasks.max(1))),
            config,
            state,
            bodies,
            events,
            active: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            busy: Mutex::new(HashSet::new()),
        }))
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// Sends an event to every watcher (for the scheduler's events).
    pub(crate) fn publish(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Carries out a command without waiting for the run it starts.
    pub fn execute(self: &Arc<Self>, command: EngineCommand) {
        match command {
            EngineCommand::StartTask { task_id } => {
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    if let Err(error) = engine
                        .run_task(&task_id, Trigger::Manual, RunOptions::default())
                        .await
                    {
                        tracing::error!(task_id, %error, "could not start the task");
                    }
                });
            }
            EngineCommand::CancelRun { run_id } => {
                if !self.cancel_run(run_id) {
                    // Not ours: ask the worker running it, through the store.
                    let state = Arc::clone(&self.state);
                    tokio::spawn(async move {
                        match state.request_cancel(run_id).await {
                            Ok(()) => tracing::info!(
                                run_id,
                                "cancel requested from the worker running it"
                            ),
                            Err(error) => {
                                tracing::error!(run_id, %error, "could not request the cancel")
                            }
                        }
                    });
                }
            }
            EngineCommand::RetryItems { task_id, item_ids } => {
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    if let Err(error) = engine
                        .retry(&task_id, item_ids.as_deref(), RunOptions::default())
                        .await
                    {
                        tracing::error!(task_id, %error, "could not retry");
                    }
                });
            }
        }
    }

    /// Asks a run to stop at its next safe point. Returns whether it was running.
    pub fn cancel_run(&self, run_id: RunId) -> bool {
        let active = self.lock_active();
        match active.get(&run_id) {
            Some(run) => {
                tracing::info!(task_id = %run.task_id, run_id, "cancel requested");
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every run in progress and every run that would start.
    pub fn cancel_all(&self) {
        self.shutdown.cancel();
    }

    /// Ids of the runs in progress, with their task ids.
    pub fn active_runs(&self) -> Vec<(RunId, String)> {
        self.lock_active()
            .iter()
            .map(|(id, run)| (*id, run.task_id.clone()))
            .collect()
    }

    /// Whether a run of `task_id` is queued or running.
    pub fn is_busy(&self, task_id: &str) -> bool {
        match self.busy.lock() {
            Ok(busy) => busy.contains(task_id),
            Err(poisoned) => poisoned.into_inner().contains(task_id),
        }
    }

    fn reserve(&self, task_id: &str) -> Result<BusyGuard<'_>, EngineError> {
        let mut busy = match self.busy.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !busy.insert(task_id.to_string()) {
            return Err(EngineError::AlreadyRunning(task_id.to_string()));
        }
        Ok(BusyGuard {
            engine: self,
            task_id: task_id.to_string(),
        })
    }

    pub(super) fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, ActiveRun>> {
        match self.active.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Retries pending failed items of a task: `item_ids`, or all of them.
    ///
    /// Each item is retried for the execution date of the run that failed
    /// it, so `{{ execution_date }}` renders the folder it failed in, not
    /// today's: items of runs for different dates are retried in one run
    /// per date, oldest first. `options.execution_date` overrides that.
    pub async fn retry(
        self: &Arc<Self>,
        task_id: &str,
        item_ids: Option<&[i64]>,
        options: RunOptions,
    ) -> Result<Vec<RunRecord>, EngineError> {
        let pending = self.state.failed_items(Some(task_id), true).await?;
        let chosen: Vec<FailedItem> = match item_ids {
            Some(ids) => pending
                .into_iter()
                .filter(|item| ids.contains(&item.id))
                .collect(),
            None => pending,
        };
        if chosen.is_empty() {
            let which = item_ids
                .map(|ids| {
                    format!(
                        " with id {}",
                        ids.iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .unwrap_or_default();
            return Err(EngineError::NothingToRetry {
                task_id: task_id.to_string(),
                which,
            });
        }
        let mut by_date: std::collections::BTreeMap<Option<NaiveDate>, Vec<FailedItem>> =
            std::collections::BTreeMap::new();
        let mut dates: HashMap<RunId, Option<NaiveDate>> = HashMap::new();
        for item in chosen {
            let date = match options.execution_date {
                Some(date) => Some(date),
                None => match dates.get(&item.run_id) {
                    Some(date) => *date,
                    None => {
                        let date = self.state.execution_date(item.run_id).await?;
                        dates.insert(item.run_id, date);
                        date
                    }
                },
            };
            by_date.entry(date).or_default().push(item);
        }
        let mut records = Vec::new();
        for (date, items) in by_date {
            let options = RunOptions {
                // Runs recorded before dates were kept: today, as then.
                execution_date: date,
            };
            records.push(
                self.start(task_id, Trigger::Retry, options, Some(items))
                    .await?,
            );
        }
        Ok(records)
    }

    /// Records that a task was not started because `dependency` did not
    /// succeed: a finished run with status `blocked` and the reason as its
    /// error, so the history shows why nothing ran.
    pub async fn record_blocked(
        &self,
        task_id: &str,
        trigger: Trigger,
        dependency: &str,
    ) -> Result<RunRecord, EngineError> {
        tracing::warn!(
            task_id,
            dependency,
            %trigger,
            "task blocked: the dependency's last run did not succeed"
        );
        let recorded = self.save_blocked(task_id, trigger, dependency).await;
        // After the run's end, so watchers keep the more specific news.
        let _ = self.events.send(EngineEvent::TaskBlocked {
            task_id: task_id.to_string(),
            dependency: dependency.to_string(),
        });
        recorded
    }

    async fn save_blocked(
        &self,
        task_id: &str,
        trigger: Trigger,
        dependency: &str,
    ) -> Result<RunRecord, EngineError> {
        let now = Utc::now();
        let run_id = self.state.begin_run(task_id, trigger, now).await?;
        let record = RunRecord {
            run_id,
            task_id: task_id.to_string(),
            trigger,
            status: RunStatus::Blocked,
            started_at: now,
            completed_at: Some(now),
            duration_ms: Some(0),
            counters: Default::default(),
            error: Some(format!(
                "blocked: dependency `{dependency}` did not succeed; not started"
            )),
            warning: None,
            execution_date: Some(now.date_naive()),
        };
        self.state.finish_run(&record).await?;
        let _ = self.events.send(EngineEvent::RunFinished {
            record: Box::new(record.clone()),
        });
        Ok(record)
    }

    /// Runs one task now (after waiting for a free slot) and returns its record.
    pub async fn run_task(
        self: &Arc<Self>,
        task_id: &str,
        trigger: Trigger,
        options: RunOptions,
    ) -> Result<RunRecord, EngineError> {
        self.start(task_id, trigger, options, None).await
    }

    async fn start(
        self: &Arc<Self>,
        task_id: &str,
        trigger: Trigger,
        options: RunOptions,
        retry_items: Option<Vec<FailedItem>>,
    ) -> Result<RunRecord, EngineError> {
        let task = self
            .config
            .task(task_id)
            .ok_or_else(|| EngineError::UnknownTask(task_id.to_string()))?
            .clone();
        let _busy = self.reserve(&task.id)?;
        // Closed only if the semaphore is dropped, which the engine never does.
        let _slot = Arc::clone(&self.slots).acquire_owned().await.ok();

        // The lease keeps other workers sharing the state store off this task.
        let owner = crate::state::owner();
        let ttl = self.config.engine.lease_ttl;
        if !self.state.acquire_lease(&task.id, &owner, ttl).await? {
            return Err(EngineError::RunningElsewhere(task.id.clone()));
        }
        let started_at = Utc::now();
        let execution_date = options
            .execution_date
            .unwrap_or_else(|| started_at.date_naive());
        let run_id = match self
            .state
            .begin_run_for(&task.id, trigger, started_at, execution_date)
            .await
        {
            Ok(run_id) => run_id,
            Err(error) => {
                let _ = self.state.release_lease(&task.id, &owner).await;
                return Err(error.into());
            }
        };
        let cancel = self.shutdown.child_token();
        let stop_reason = StopReason::default();
        let renewal = self.spawn_lease_renewal(
            &task.id,
            run_id,
            &owner,
            cancel.clone(),
            cancel.clone(),
            stop_reason.clone(),
        );
        self.lock_active().insert(
            run_id,
            ActiveRun {
                task_id: task.id.clone(),
                cancel: cancel.clone(),
            },
        );

        let context = RunContext {
            run_id,
            task_id: task.id.clone(),
            cancel,
            events: self.events.clone(),
            state: Arc::clone(&self.state),
            templates: TemplateContext {
                execution_date: execution_date.format("%Y-%m-%d").to_string(),
                run_id: run_id.to_string(),
                task_id: task.id.clone(),
            },
            base_dir: self.config.base_dir.clone(),
            retry_items,
            counters: SharedCounters::default(),
            stop_reason,
            abandoned_rows: Default::default(),
            failed_batches: Default::default(),
        };
        let span = tracing::info_span!("run", task_id = %task.id, run_id);
        async {
            tracing::info!(%trigger, "run started");
            let _ = self.events.send(EngineEvent::RunStarted {
                run_id,
                task_id: task.id.clone(),
                trigger,
                started_at,
            });
            let ticker = self.spawn_progress_ticker(run_id, &task.id, context.counters.clone());
            let outcome = self.bodies.body(&task).run(&context).await;
            ticker.abort();
            renewal.abort();
            let follow_up = outcome.follow_up.clone();
            let record = self.finish(&context, trigger, started_at, outcome).await;
            if let Some(watch) = follow_up {
                // Submitted: keep watching in the background; the final
                // status lands on this run.
                self.watch_in_background(context.clone(), trigger, started_at, watch);
            }
            if let Err(error) = self.state.release_lease(&task.id, &owner).await {
                tracing::warn!(%error, "could not release the task's lease; it expires by itself");
            }
            Ok(record)
        }
        .instrument(span)
        .await
    }

    /// Keeps a run's lease alive (renewed every third of its time to live)
    /// and, each second, looks for a cancel asked through the state store by
    /// another process (then cancels `cancel`). A lease found lost (another
    /// worker took it over) cancels `lost`: for a run, the same token, so
    /// the task never runs twice; `reason` then says so, because the run's
    /// record must not blame an operator who never cancelled anything.
    pub(super) fn spawn_lease_renewal(
        &self,
        task_id: &str,
        run_id: RunId,
        owner: &str,
        cancel: CancellationToken,
        lost: CancellationToken,
        reason: StopReason,
    ) -> tokio::task::JoinHandle<()> {
        let state = Arc::clone(&self.state);
        let (task_id, owner) = (task_id.to_string(), owner.to_string());
        let ttl = self.config.engine.lease_ttl;
        tokio::spawn(async move {
            let check = Duration::from_secs(1).min(ttl / 3);
            let mut interval = tokio::time::interval(check);
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                interval.tick().await;
                if let Ok(true) = state.cancel_requested(run_id).await {
                    tracing::info!(task_id, run_id, "cancel requested through the state store");
                    cancel.cancel();
                    return;
                }
                if last_renewal.elapsed() < ttl / 3 {
                    continue;
                }
                last_renewal = tokio::time::Instant::now();
                match state.renew_lease(&task_id, &owner, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(task_id, "lease lost to another worker");
                        reason.set(lease_lost(ttl));
                        lost.cancel();
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(task_id, %error, "could not renew the lease; retrying")
                    }
                }
            }
        })
    }

    pub(super) async fn finish(
        &self,
        context: &RunContext,
        trigger: Trigger,
        started_at: chrono::DateTime<Utc>,
        outcome: TaskOutcome,
    ) -> RunRecord {
        let completed_at = Utc::now();
        let mut counters = context.counters();
        counters.files_active = 0;
        // A run stopped because the whole engine is stopping (SIGTERM,
        // ctrl-c, quitting the console) says so, not "by the operator".
        let shutting_down = (outcome.status == RunStatus::Cancelled
            && self.shutdown.is_cancelled())
        .then_some(SHUTTING_DOWN);
        let error = match (context.stop_reason.get().or(shutting_down), outcome.error) {
            (Some(reason), _) if outcome.status == RunStatus::Cancelled => Some(reason.to_string()),
            (Some(reason), Some(error)) => Some(format!("{error}; {reason}")),
            (Some(reason), None) if !outcome.status.is_success() => Some(reason.to_string()),
            (_, error) => error,
        };
        let record = RunRecord {
            run_id: context.run_id,
            task_id: context.task_id.clone(),
            trigger,
            status: outcome.status,
            started_at,
            completed_at: Some(completed_at),
            duration_ms: Some((completed_at - started_at).num_milliseconds()),
            counters,
            error: error.map(|error| crate::config::redact(&error).into_owned()),
            warning: outcome.warning,
            execution_date: chrono::NaiveDate::parse_from_str(
                &context.templates.execution_date,
                "%Y-%m-%d",
            )
            .ok(),
        };
        if let Err(error) = self.state.finish_run(&record).await {
            tracing::error!(%error, "could not record the run's end");
        }
        if record.status != RunStatus::Submitted {
            // A submitted run stays active: its watch takes it over.
            self.lock_active().remove(&context.run_id);
        }
        let error = record.error.as_deref().unwrap_or("");
        // A failed run is an error, so the console's ERROR filter shows it.
        match record.status {
            RunStatus::Succeeded | RunStatus::Submitted => {
                tracing::info!(status = %record.status, "run finished")
            }
            RunStatus::Failed => tracing::error!(status = %record.status, error, "run finished"),
            _ => tracing::warn!(status = %record.status, error, "run finished"),
        }
        let _ = self.events.send(EngineEvent::RunFinished {
            record: Box::new(record.clone()),
        });
        record
    }

    /// Runs tasks in dependency order: `task_ids` (all tasks when empty)
    /// plus, with `with_dependencies`, everything they depend on.
    /// Independent tasks run concurrently; a task whose dependency did not
    /// succeed is not started.
    pub async fn run_tasks(
        self: &Arc<Self>,
        task_ids: &[String],
        with_dependencies: bool,
        options: RunOptions,
    ) -> Result<Vec<TaskResult>, EngineError> {
        let selected = self.select(task_ids, with_dependencies)?;
        let mut pending: Vec<String> = self
            .config
            .tasks
            .iter()
            .map(|task| task.id.clone())
            .filter(|id| selected.contains(id))
            .collect();
        let mut outcomes: HashMap<String, bool> = HashMap::new();
        let mut results = Vec::new();
        let mut running: JoinSet<TaskResult> = JoinSet::new();
        loop {
            let mut index = 0;
            while index < pending.len() {
                let task = self
                    .config
                    .task(&pending[index])
                    .ok_or_else(|| EngineError::UnknownTask(pending[index].clone()))?;
                let dependencies: Vec<&String> = task
                    .dependencies
                    .iter()
                    .filter(|dependency| selected.contains(*dependency))
                    .collect();
                if let Some(failed) = dependencies
                    .iter()
                    .find(|dependency| outcomes.get(dependency.as_str()) == Some(&false))
                {
                    let run_id = match self.record_blocked(&task.id, Trigger::Manual, failed).await
                    {
                        Ok(record) => Some(record.run_id),
                        Err(error) => {
                            tracing::error!(task_id = %task.id, %error, "could not record the blocked run");
                            None
                        }
                    };
                    let result = TaskResult::Blocked {
                        task_id: task.id.clone(),
                        dependency: (*failed).clone(),
                        run_id,
                    };
                    outcomes.insert(task.id.clone(), false);
                    results.push(result);
                    pending.remove(index);
                } else if dependencies
                    .iter()
                    .all(|dependency| outcomes.get(dependency.as_str()) == Some(&true))
                {
                    let engine = Arc::clone(self);
                    let task_id = task.id.clone();
                    let options = options.clone();
                    running.spawn(async move {
                        match engine.run_task(&task_id, Trigger::Manual, options).await {
                            Ok(record) => TaskResult::Ran(Box::new(record)),
                            Err(error) => TaskResult::Error {
                                task_id,
                                message: error.to_string(),
                            },
                        }
                    });
                    pending.remove(index);
                } else {
                    index += 1;
                }
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let result = match joined {
                Ok(result) => result,
                Err(error) => TaskResult::Error {
                    task_id: String::new(),
                    message: format!("a run stopped unexpectedly: {error}"),
                },
            };
            let task_id = match &result {
                TaskResult::Ran(record) => record.task_id.clone(),
                TaskResult::Blocked { task_id, .. } | TaskResult::Error { task_id, .. } => {
                    task_id.clone()
                }
            };
            outcomes.insert(task_id, result.is_success());
            results.push(result);
        }
        Ok(results)
    }

    fn select(
        &self,
        task_ids: &[String],
        with_dependencies: bool,
    ) -> Result<HashSet<String>, EngineError> {
        if task_ids.is_empty() {
            return Ok(self
                .config
                .tasks
                .iter()
                .map(|task| task.id.clone())
                .collect());
        }
        let mut selected = HashSet::new();
        let mut stack: Vec<String> = task_ids.to_vec();
        while let Some(id) = stack.pop() {
            let task = self
                .config
                .task(&id)
                .ok_or_else(|| EngineError::UnknownTask(id.clone()))?;
            if selected.insert(id) && with_dependencies {
                stack.extend(task.dependencies.iter().cloned());
            }
        }
        Ok(selected)
    }
}

/// The error of a run stopped because its lease was lost.
/// Why a run cancelled by the engine's shutdown stopped.
const SHUTTING_DOWN: &str = "stopped: syncdeck was shutting down (SIGTERM, ctrl-c or quitting the console); a rerun picks the work up";

fn lease_lost(ttl: Duration) -> String {
    format!(
        "stopped: another worker took over this task's lease (it expired after {}s without being renewed, \
         for example while the state store was unreachable or this process was paused); not cancelled by an operator. \
         The task may be running on that worker now: check `syncdeck history` before running it again",
        ttl.as_secs_f64()
    )
}
