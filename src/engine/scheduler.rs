//! The interval scheduler. [`Schedules`] decides, for a moment in time,
//! which tasks are due and what to do with each (start, skip because still
//! running, skip because the slot was missed by more than the grace, block
//! because a dependency failed). It does no I/O, so its rules are tested on
//! tokio's paused clock; [`run`] carries its decisions out on the engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Engine, RunOptions};
use crate::config::Config;
use crate::run::event::{EngineEvent, SlotSkipReason};
use crate::run::{RunStatus, Trigger};

/// How often the scheduler reads the pauses other processes stored.
const PAUSE_POLL: Duration = Duration::from_secs(2);

/// How late a run may start before it is skipped, when not configured.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    every: Duration,
    misfire_grace: Duration,
    next_due: Instant,
    dependencies: Vec<String>,
    paused: bool,
}

/// What to do with a task whose slot came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Start(String),
    /// The previous run is still going: at most one instance runs.
    SkipRunning(String),
    /// The slot was missed by more than the grace (process down, machine
    /// asleep, overloaded): skipped, never replayed in a burst.
    SkipMissed {
        task_id: String,
        late_by: Duration,
    },
    /// A dependency's last run did not succeed.
    Blocked {
        task_id: String,
        dependency: String,
    },
    /// Dependencies start in this same slot (or are running): start once
    /// their runs end and succeed, else record the run as blocked. Without
    /// the wait a dependent would run beside its dependency, checking only
    /// the dependency's previous run.
    StartAfter {
        task_id: String,
        dependencies: Vec<String>,
    },
}

/// The schedules of all scheduled tasks.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    entries: BTreeMap<String, Entry>,
}

impl Schedules {
    /// Schedules every task that has `schedule`; `first_in` says how long
    /// after `now` a task's first slot comes, given its interval.
    pub fn new(config: &Config, now: Instant, first_in: impl Fn(Duration) -> Duration) -> Self {
        let entries = config
            .tasks
            .iter()
            .filter_map(|task| {
                let schedule = task.schedule?;
                Some((
                    task.id.clone(),
                    Entry {
                        every: schedule.every,
                        misfire_grace: schedule.misfire_grace.unwrap_or(DEFAULT_MISFIRE_GRACE),
                        next_due: now + first_in(schedule.every),
                        dependencies: task.dependencies.clone(),
                        paused: false,
                    },
                ))
            })
            .collect();
        Self { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the next slot of any unpaused task comes.
    pub fn next_wake(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|entry| !entry.paused)
            .map(|entry| entry.next_due)
            .min()
    }

    /// The next slot of a task, unless it is paused or unscheduled.
    pub fn next_run(&self, task_id: &str) -> Option<Instant> {
        self.entries
            .get(task_id)
            .filter(|entry| !entry.paused)
            .map(|entry| entry.next_due)
    }

    pub fn is_paused(&self, task_id: &str) -> bool {
        self.entries.get(task_id).is_some_and(|entry| entry.paused)
    }

    /// Pauses or resumes a task's schedule. Resuming keeps the slots'
    /// rhythm: the next slot is the first one after `now`. Returns whether
    /// the task has a schedule.
    pub fn set_paused(&mut self, task_id: &str, paused: bool, now: Instant) -> bool {
        let Some(entry) = self.entries.get_mut(task_id) else {
            return false;
        };
        entry.paused = paused;
        if !paused {
            advance_past(entry, now);
        }
        true
    }

    /// Decides for every slot that has come by `now`, and moves those
    /// schedules to their next slot after `now`. `is_busy` tells whether a
    /// task has a run queued or running; `last_status` gives a task's
    /// newest finished run.
    pub fn due(
        &mut self,
        now: Instant,
        is_busy: impl Fn(&str) -> bool,
        last_status: impl Fn(&str) -> Option<RunStatus>,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        let starting: std::collections::HashSet<String> = self
            .entries
            .iter()
            .filter(|(task_id, entry)| {
                !entry.paused
                    && entry.next_due <= now
                    && now - entry.next_due <= entry.misfire_grace
                    && !is_busy(task_id)
            })
            .map(|(task_id, _)| task_id.clone())
            .collect();
        for (task_id, entry) in &mut self.entries {
            if entry.paused || entry.next_due > now {
                continue;
            }
            let late_by = now - entry.next_due;
            let (waiting, settled): (Vec<&String>, Vec<&String>) = entry
                .dependencies
                .iter()
                .partition(|dependency| starting.contains(*dependency) || is_busy(dependency));
            let decision = if late_by > entry.misfire_grace {
                Decision::SkipMissed {
                    task_id: task_id.clone(),
                    late_by,
                }
            } else if is_busy(task_id) {
                Decision::SkipRunning(task_id.clone())
            } else if let Some(dependency) = settled.iter().find(|dependency| {
                last_status(dependency).is_some_and(|status| !status.is_success())
            }) {
                Decision::Blocked {
                    task_id: task_id.clone(),
                    dependency: (*dependency).clone(),
                }
            } else if !waiting.is_empty() {
                Decision::StartAfter {
                    task_id: task_id.clone(),
                    dependencies: waiting.into_iter().cloned().collect(),
                }
            } else {
                Decision::Start(task_id.clone())
            };
            decisions.push(decision);
            advance_past(entry, now);
        }
        decisions
    }
}

/// Moves a schedule to its first slot after `now`, keeping its rhythm.
fn advance_past(entry: &mut Entry, now: Instant) {
    if entry.next_due > now {
        return;
    }
    let every = entry.every.as_nanos().max(1);
    let behind = (now - entry.next_due).as_nanos();
    let steps = behind / every + 1;
    let step = Duration::from_nanos(u64::try_from(every.saturating_mul(steps)).unwrap_or(u64::MAX));
    entry.next_due += step;
}

/// How long until the next wall-clock multiple of `every` (slots at :00,
/// :05, :10… for five minutes), so workers started at different times
/// agree on the slots and can claim each one once.
pub fn until_aligned_slot(every: Duration) -> Duration {
    let every_ms = every.as_millis().max(1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    Duration::from_millis(u64::try_from(every_ms - now_ms % every_ms).unwrap_or(0))
}

/// The number of the wall-clock slot a task is in now.
fn current_slot(every: Duration) -> i64 {
    let every_ms = every.as_millis().max(1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    i64::try_from(now_ms / every_ms).unwrap_or(i64::MAX)
}

/// What the console (or a signal) can ask of the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleCommand {
    Pause(String),
    Resume(String),
}

/// Runs the schedules until `shutdown`: starts due tasks on the engine,
/// logs skips and blocks, and publishes each task's next run.
pub async fn run(
    engine: Arc<Engine>,
    mut schedules: Schedules,
    commands: mpsc::Receiver<ScheduleCommand>,
    shutdown: CancellationToken,
) {
    // `None` once every sender is gone: the schedules then only run.
    let mut commands = Some(commands);
    // Pauses live in the state store, so every process on it sees them;
    // this is how soon another process's pause or resume shows here.
    let mut pause_poll = tokio::time::interval(PAUSE_POLL);
    pause_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sync_pauses(&engine, &mut schedules).await;
    publish(&engine, &schedules);
    // Dependents waiting for their dependencies' runs of the same slot: busy
    // for the next slot's decision, as a running task is.
    let waiting = Waiting::default();
    loop {
        let wake = schedules.next_wake();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            command = next_command(&mut commands) => match command {
                Some(ScheduleCommand::Pause(task_id)) => {
                    store_pause(&engine, &task_id, true).await;
                    schedules.set_paused(&task_id, true, Instant::now());
                    tracing::info!(task_id, "schedule paused");
                }
                Some(ScheduleCommand::Resume(task_id)) => {
                    store_pause(&engine, &task_id, false).await;
                    schedules.set_paused(&task_id, false, Instant::now());
                    tracing::info!(task_id, "schedule resumed");
                }
                None => commands = None,
            },
            _ = pause_poll.tick() => {
                if !sync_pauses(&engine, &mut schedules).await {
                    continue;
                }
            }
            _ = sleep_until(wake) => {
                // A pause made elsewhere since the last poll still counts.
                sync_pauses(&engine, &mut schedules).await;
                let mut statuses = BTreeMap::new();
                for task in &engine.config().tasks {
                    match engine.state().runs(Some(&task.id), 1).await {
                        Ok(runs) => {
                            if let Some(run) = runs.first().filter(|run| run.status.is_finished()) {
                                statuses.insert(task.id.clone(), run.status);
                            }
                        }
                        Err(error) => {
                            tracing::error!(task_id = %task.id, %error, "cannot read the task's last run; its dependents' checks treat it as never run");
                        }
                    }
                }
                // Runs of this slot start after this moment.
                let slot_time = chrono::Utc::now();
                let decisions = schedules.due(
                    Instant::now(),
                    |task| engine.is_busy(task) || waiting.contains(task),
                    |task| statuses.get(task).copied(),
                );
                for decision in decisions {
                    carry_out(&engine, &schedules, decision, &waiting, &shutdown, slot_time).await;
                }
            }
        }
        publish(&engine, &schedules);
    }
}

/// Saves a pause or resume in the state store, for every process on it.
async fn store_pause(engine: &Engine, task_id: &str, paused: bool) {
    if let Err(error) = engine.state().set_schedule_paused(task_id, paused).await {
        tracing::error!(
            task_id,
            %error,
            "could not save the schedule's pause in the state store; it holds in this process only"
        );
    }
}

/// Brings the pauses in line with the state store (another console or
/// daemon may have paused or resumed a task). Returns whether any changed.
async fn sync_pauses(engine: &Engine, schedules: &mut Schedules) -> bool {
    let paused: std::collections::HashSet<String> = match engine.state().paused_schedules().await {
        Ok(tasks) => tasks.into_iter().collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot read paused schedules from the state store; keeping the pauses known");
            return false;
        }
    };
    let now = Instant::now();
    let mut changed = false;
    let task_ids: Vec<String> = schedules.entries.keys().cloned().collect();
    for task_id in task_ids {
        let pause = paused.contains(&task_id);
        if schedules.is_paused(&task_id) != pause {
            schedules.set_paused(&task_id, pause, now);
            tracing::info!(
                task_id,
                "schedule {} in the state store",
                if pause { "paused" } else { "resumed" }
            );
            changed = true;
        }
    }
    changed
}

/// The next command, or never once the channel is closed (a closed
/// channel answers `None` at once, forever: polling it would spin).
async fn next_command(
    commands: &mut Option<mpsc::Receiver<ScheduleCommand>>,
) -> Option<ScheduleCommand> {
    match commands {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(wake) => tokio::time::sleep_until(wake).await,
        None => std::future::pending().await,
    }
}

/// Claims the task's current slot. Workers sharing a state store each see
/// the slot; one takes it.
async fn claim(engine: &Engine, schedules: &Schedules, task_id: &str) -> bool {
    let every = schedules
        .entries
        .get(task_id)
        .map(|entry| entry.every)
        .unwrap_or(Duration::from_secs(1));
    match engine
        .state()
        .claim_slot(task_id, current_slot(every), &crate::state::owner())
        .await
    {
        Ok(true) => true,
        Ok(false) => {
            tracing::info!(task_id, "scheduled run taken by another worker");
            false
        }
        Err(error) => {
            tracing::warn!(task_id, %error, "could not claim the scheduled slot; skipping it");
            false
        }
    }
}

/// Tasks whose scheduled run waits for its dependencies' runs.
#[derive(Clone, Default)]
struct Waiting(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl Waiting {
    fn contains(&self, task_id: &str) -> bool {
        self.0
            .lock()
            .map(|tasks| tasks.contains(task_id))
            .unwrap_or(false)
    }

    fn set(&self, task_id: &str, waits: bool) {
        if let Ok(mut tasks) = self.0.lock() {
            if waits {
                tasks.insert(task_id.to_string());
            } else {
                tasks.remove(task_id);
            }
        }
    }
}

/// How often a waiting dependent looks at its dependencies' runs.
const DEPENDENCY_POLL: Duration = Duration::from_millis(500);

/// How long a dependent waits for a dependency's run of its slot to
/// appear (another worker may have taken that slot, or skipped it) before
/// it goes by the dependency's last finished run.
const DEPENDENCY_START_GRACE: Duration = Duration::from_secs(10);

/// Waits until every dependency's run of this slot has ended (read from the
/// state store, so a run on another worker counts), then starts `task_id`
/// if they all succeeded, else records it as blocked by the first that did
/// not. Returns early, starting nothing, when the scheduler shuts down.
async fn start_after(
    engine: Arc<Engine>,
    task_id: String,
    dependencies: Vec<String>,
    shutdown: CancellationToken,
    since: chrono::DateTime<chrono::Utc>,
) {
    let waited_from = Instant::now();
    let mut settled: BTreeMap<String, Option<RunStatus>> = BTreeMap::new();
    while settled.len() < dependencies.len() {
        for dependency in &dependencies {
            if settled.contains_key(dependency) || engine.is_busy(dependency) {
                continue;
            }
            let newest = match engine.state().runs(Some(dependency), 1).await {
                Ok(runs) => runs.into_iter().next(),
                Err(error) => {
                    tracing::warn!(task_id, dependency, %error, "cannot read the dependency's last run; waiting");
                    continue;
                }
            };
            let grace_over = waited_from.elapsed() >= DEPENDENCY_START_GRACE;
            match newest {
                Some(run)
                    if run.status.is_finished() && (run.started_at >= since || grace_over) =>
                {
                    settled.insert(dependency.clone(), Some(run.status));
                }
                None if grace_over => {
                    settled.insert(dependency.clone(), None);
                }
                _ => {}
            }
        }
        if settled.len() == dependencies.len() {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(DEPENDENCY_POLL) => {}
        }
    }
    let failed = settled
        .iter()
        .find(|(_, status)| status.is_some_and(|status| !status.is_success()));
    if let Some((dependency, _)) = failed {
        engine.publish(EngineEvent::SlotSkipped {
            task_id: task_id.clone(),
            reason: SlotSkipReason::Blocked,
        });
        if let Err(error) = engine
            .record_blocked(&task_id, Trigger::Schedule, dependency)
            .await
        {
            tracing::warn!(task_id, %error, "could not record the blocked scheduled run");
        }
        return;
    }
    if let Err(error) = engine
        .run_task(&task_id, Trigger::Schedule, RunOptions::default())
        .await
    {
        tracing::warn!(task_id, %error, "scheduled run not started");
    }
}

async fn carry_out(
    engine: &Arc<Engine>,
    schedules: &Schedules,
    decision: Decision,
    waiting: &Waiting,
    shutdown: &CancellationToken,
    slot_time: chrono::DateTime<chrono::Utc>,
) {
    match decision {
        Decision::StartAfter {
            task_id,
            dependencies,
        } => {
            if !claim(engine, schedules, &task_id).await {
                return;
            }
            tracing::info!(task_id, dependencies = ?dependencies, "scheduled run waits for its dependencies' runs of this slot");
            waiting.set(&task_id, true);
            let engine = Arc::clone(engine);
            let waiting = waiting.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                start_after(engine, task_id.clone(), dependencies, shutdown, slot_time).await;
                waiting.set(&task_id, false);
            });
        }
        Decision::Start(task_id) => {
            if !claim(engine, schedules, &task_id).await {
                return;
            }
            let engine = Arc::clone(engine);
            tokio::spawn(async move {
                if let Err(error) = engine
                    .run_task(&task_id, Trigger::Schedule, RunOptions::default())
                    .await
                {
                    tracing::warn!(task_id, %error, "scheduled run not started");
                }
            });
        }
        Decision::SkipRunning(task_id) => {
            tracing::warn!(
                task_id,
                "scheduled run skipped: the previous run is still going"
            );
            engine.publish(EngineEvent::SlotSkipped {
                task_id,
                reason: SlotSkipReason::Overlap,
            });
        }
        Decision::SkipMissed { task_id, late_by } => {
            tracing::warn!(task_id, late_by = %humantime::format_duration(late_by), "scheduled run skipped: missed by more than misfire_grace");
            engine.publish(EngineEvent::SlotSkipped {
                task_id,
                reason: SlotSkipReason::Misfire,
            });
        }
        Decision::Blocked {
            task_id,
            dependency,
        } => {
            // One blocked run per slot, however many workers share the store.
            if !claim(engine, schedules, &task_id).await {
                return;
            }
            engine.publish(EngineEvent::SlotSkipped {
                task_id: task_id.clone(),
                reason: SlotSkipReason::Blocked,
            });
            if let Err(error) = engine
                .record_blocked(&task_id, Trigger::Schedule, &dependency)
                .await
            {
                tracing::warn!(task_id, %error, "could not record the blocked scheduled run");
            }
        }
    }
}

fn publish(engine: &Engine, schedules: &Schedules) {
    let now_instant = Instant::now();
    let now = chrono::Utc::now();
    for task_id in schedules.entries.keys() {
        let next_run = schedules.next_run(task_id).map(|due| {
            now + chrono::TimeDelta::from_std(due.saturating_duration_since(now_instant))
                .unwrap_or_default()
        });
        engine.publish(EngineEvent::ScheduleChanged {
            task_id: task_id.clone(),
            next_run,
            paused: schedules.is_paused(task_id),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, Resolve};

    fn schedules(tasks: &str) -> Schedules {
        let config = config::parse(Path::new("/t/syncdeck.toml"), tasks, Resolve::Everything)
            .expect("config");
        Schedules::new(&config, Instant::now(), |every| every)
    }

    fn task(id: &str, schedule: &str, dependencies: &str) -> String {
        format!(
            "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\nschedule = {schedule}\ndependencies = [{dependencies}]\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n"
        )
    }

    fn idle(_: &str) -> bool {
        false
    }

    fn never_ran(_: &str) -> Option<RunStatus> {
        None
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_runs_once_per_interval() {
        let mut schedules = schedules(&task("every_5m", "\"5m\"", ""));
        assert!(
            schedules.due(Instant::now(), idle, never_ran).is_empty(),
            "nothing at start"
        );
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(schedules.due(Instant::now(), idle, never_ran).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            schedules.due(Instant::now(), idle, never_ran),
            vec![Decision::Start("every_5m".into())]
        );
        assert!(
            schedules.due(Instant::now(), idle, never_ran).is_empty(),
            "once per slot"
        );
        assert_eq!(
            schedules.next_wake(),
            Some(Instant::now() + Duration::from_secs(300))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_while_the_task_runs_is_skipped() {
        let mut schedules = schedules(&task("busy", "\"1m\"", ""));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            schedules.due(Instant::now(), |_| true, never_ran),
            vec![Decision::SkipRunning("busy".into())]
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            schedules.due(Instant::now(), idle, never_ran),
            vec![Decision::Start("busy".into())]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_missed_by_more_than_the_grace_is_skipped_not_replayed() {
        let mut schedules = schedules(&task(
            "nightly",
            "{ every = \"300s\", misfire_grace = \"60s\" }",
            "",
        ));
        // Down for 20 minutes: four slots passed; the newest is 5 minutes late.
        tokio::time::advance(Duration::from_secs(1500)).await;
        let decisions = schedules.due(Instant::now(), idle, never_ran);
        assert_eq!(
            decisions,
            vec![Decision::SkipMissed {
                task_id: "nightly".into(),
                late_by: Duration::from_secs(1200)
            }],
            "one skip, no burst"
        );
        assert_eq!(
            schedules.next_wake(),
            Some(Instant::now() + Duration::from_secs(300)),
            "back in rhythm"
        );
        // Within the grace: runs.
        tokio::time::advance(Duration::from_secs(330)).await;
        assert_eq!(
            schedules.due(Instant::now(), idle, never_ran),
            vec![Decision::Start("nightly".into())]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_dependency_blocks_the_task() {
        let tasks = task("load", "\"1m\"", "") + &task("report", "\"1m\"", "\"load\"");
        let mut schedules = schedules(&tasks);
        tokio::time::advance(Duration::from_secs(60)).await;
        let failed = |task: &str| (task == "load").then_some(RunStatus::Failed);
        // `load` is due in another slot (paused here): its last failure
        // blocks `report`.
        schedules.set_paused("load", true, Instant::now());
        let decisions = schedules.due(Instant::now(), idle, failed);
        assert_eq!(
            decisions,
            vec![Decision::Blocked {
                task_id: "report".into(),
                dependency: "load".into()
            }]
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let succeeded = |task: &str| (task == "load").then_some(RunStatus::Succeeded);
        assert_eq!(
            schedules.due(Instant::now(), idle, succeeded),
            vec![Decision::Start("report".into())]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependent_due_with_its_dependency_waits_for_that_run() {
        let tasks = task("a_report", "\"1m\"", "\"load\"")
            + &task("load", "\"1m\"", "")
            + &task("z_publish", "\"1m\"", "\"a_report\"");
        let mut schedules = schedules(&tasks);
        tokio::time::advance(Duration::from_secs(60)).await;
        // Whatever the last run of `load` was, this slot's run decides.
        let failed = |task: &str| (task == "load").then_some(RunStatus::Failed);
        assert_eq!(
            schedules.due(Instant::now(), idle, failed),
            vec![
                Decision::StartAfter {
                    task_id: "a_report".into(),
                    dependencies: vec!["load".into()]
                },
                Decision::Start("load".into()),
                Decision::StartAfter {
                    task_id: "z_publish".into(),
                    dependencies: vec!["a_report".into()]
                },
            ],
            "each waits for the run before it in the chain, in any id order"
        );
        // A dependency still running from before is waited for too.
        tokio::time::advance(Duration::from_secs(60)).await;
        let load_busy = |task: &str| task == "load";
        assert_eq!(
            schedules.due(Instant::now(), load_busy, never_ran)[0],
            Decision::StartAfter {
                task_id: "a_report".into(),
                dependencies: vec!["load".into()]
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_schedule_does_not_fire_and_resumes_in_rhythm() {
        let mut schedules = schedules(&task("paused", "\"1m\"", ""));
        assert!(schedules.set_paused("paused", true, Instant::now()));
        assert_eq!(schedules.next_run("paused"), None);
        tokio::time::advance(Duration::from_secs(150)).await;
        assert!(schedules.due(Instant::now(), idle, never_ran).is_empty());
        schedules.set_paused("paused", false, Instant::now());
        assert_eq!(
            schedules.next_run("paused"),
            Some(Instant::now() + Duration::from_secs(30)),
            "the next slot of the old rhythm"
        );
        assert!(!schedules.set_paused("unscheduled", true, Instant::now()));
    }
}
