//! How the console's model changes: [`App::update`] takes each message
//! (a key, a click, an engine event, a tick, a load result) and returns
//! the commands for the event loop to carry out. Keys are handled in
//! `input`, clicks in `mouse`; engine events, ticks and the state store's
//! answers here.

use chrono::{DateTime, TimeDelta, Utc};

use super::app::{ActiveRun, App, Command, ItemOutcome, Msg, RecentItem, View};
use crate::run::event::EngineEvent;
use crate::run::{RunRecord, RunStatus};
use crate::state::{FailedItem, ItemStatus};

/// Ticks between polls of the state store for other processes' runs.
const POLL_EVERY_TICKS: u32 = 4;
/// How long a status message stays in the footer.
const STATUS_FOR: TimeDelta = TimeDelta::seconds(6);

impl App {
    pub fn update(&mut self, message: Msg) -> Vec<Command> {
        let before = super::lists::may_reorder(&message).then(|| self.marks());
        let commands = self.apply(message);
        if let Some(before) = before {
            self.settle_cursors(before);
        }
        commands
    }

    fn apply(&mut self, message: Msg) -> Vec<Command> {
        let commands = match message {
            Msg::Key(key) => self.on_key(key),
            Msg::Mouse(event) => self.on_mouse(event),
            Msg::Engine(event) => self.on_engine(event),
            Msg::EngineLagged => vec![Command::LoadRuns, Command::LoadFailedItems],
            Msg::Tick => {
                self.on_tick();
                // Runs started by other processes show through the store.
                self.ticks_since_poll += 1;
                if self.ticks_since_poll >= POLL_EVERY_TICKS {
                    self.ticks_since_poll = 0;
                    let mut commands = vec![Command::PollRuns];
                    // Without a scheduler of its own, pauses made by
                    // another console or daemon show through the store.
                    if self.read_only {
                        commands.push(Command::LoadPauses);
                    }
                    return commands;
                }
                return Vec::new();
            }
            Msg::LogsChanged => {
                if self.view == View::Logs || self.view == View::Tasks {
                    self.dirty = true;
                }
                return Vec::new();
            }
            Msg::Resized => Vec::new(),
            Msg::RunsLoaded(runs) => {
                let mut commands = Vec::new();
                if self.on_runs_loaded(runs) {
                    self.dirty = true;
                    // Another process's run started or ended.
                    if self.view == View::Runs {
                        commands.push(Command::LoadRunList);
                    }
                }
                commands.extend(self.remote_in_flight_loads());
                return commands;
            }
            Msg::PausesLoaded(paused) => {
                for task in self.tasks.iter_mut().filter(|task| task.has_schedule) {
                    let pause = paused.contains(&task.id);
                    if task.paused != pause {
                        task.paused = pause;
                        self.dirty = true;
                    }
                }
                return Vec::new();
            }
            Msg::FilesInFlightLoaded {
                task_id,
                run_id,
                files,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id)
                    && active.remote
                    && active.in_flight != files
                {
                    active.in_flight = files;
                    self.dirty = true;
                }
                return Vec::new();
            }
            Msg::RunListLoaded(runs) => {
                self.runs = runs;
                Vec::new()
            }
            Msg::HistoryLoaded(runs) => {
                self.history = runs;
                self.history_selected = self
                    .history_selected
                    .min(self.history.len().saturating_sub(1));
                Vec::new()
            }
            Msg::FailedItemsLoaded(items) => {
                self.on_failed_items(items);
                Vec::new()
            }
        };
        self.dirty = true;
        commands
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now;
        let mut changed = false;
        for task in &mut self.tasks {
            if let Some(active) = &mut task.active {
                active.tick(now);
                changed = true;
            }
        }
        if self
            .status
            .as_ref()
            .is_some_and(|(_, since)| now - *since > STATUS_FOR)
        {
            self.status = None;
            changed = true;
        }
        // Ages ("2m ago") and the clock move once a minute; an age or a
        // countdown under a minute ("6s ago", "next in 42s") each second.
        let second = now.timestamp();
        if second != self.drawn_second && (second % 60 == 0 || self.shows_seconds()) {
            self.drawn_second = second;
            changed = true;
        }
        self.dirty |= changed;
    }

    /// Whether a time on screen is counted in seconds: a run that ended,
    /// a scheduled start or a failed item less than a minute away.
    fn shows_seconds(&self) -> bool {
        let minute = TimeDelta::seconds(60);
        let near = |at: DateTime<Utc>| (self.now - at).abs() < minute;
        self.tasks.iter().any(|task| {
            task.last
                .as_ref()
                .and_then(|last| last.completed_at)
                .is_some_and(near)
                || (!task.paused && task.next_run.is_some_and(near))
        }) || self.failed_items.iter().any(|item| near(item.updated_at))
    }

    /// Takes each task's newest finished run, and follows runs in progress
    /// that another process started. Returns whether anything changed.
    pub(super) fn on_runs_loaded(&mut self, runs: Vec<RunRecord>) -> bool {
        let now = self.now;
        let mut changed = false;
        for task in &mut self.tasks {
            let last = runs
                .iter()
                .find(|run| run.task_id == task.id && run.status.is_finished())
                .cloned();
            if last.is_some()
                && last.as_ref().map(|run| run.run_id) != task.last.as_ref().map(|run| run.run_id)
            {
                task.last = last;
                changed = true;
            }
            let running = runs
                .iter()
                .find(|run| run.task_id == task.id && run.status == RunStatus::Running);
            let ours = task.active.as_ref().is_some_and(|active| !active.remote);
            match (running, ours) {
                (_, true) => {}
                (Some(record), false) => {
                    let active = task.active.get_or_insert_with(|| {
                        let mut active =
                            ActiveRun::new(record.run_id, record.trigger, record.started_at);
                        active.remote = true;
                        active
                    });
                    if active.run_id != record.run_id || active.counters != record.counters {
                        if active.run_id != record.run_id {
                            *active = ActiveRun {
                                remote: true,
                                ..ActiveRun::new(record.run_id, record.trigger, record.started_at)
                            };
                        }
                        active.counters = record.counters.clone();
                        active.sample(now);
                        changed = true;
                    }
                }
                (None, false) => {
                    if task.active.take().is_some() {
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Reads of the files in flight of the runs followed through the
    /// store (their process publishes them there).
    fn remote_in_flight_loads(&self) -> Vec<Command> {
        self.tasks
            .iter()
            .filter_map(|task| {
                let active = task.active.as_ref().filter(|active| active.remote)?;
                Some(Command::LoadFilesInFlight {
                    task_id: task.id.clone(),
                    run_id: active.run_id,
                })
            })
            .collect()
    }

    pub(super) fn on_failed_items(&mut self, items: Vec<FailedItem>) {
        for task in &mut self.tasks {
            task.pending_failures = items
                .iter()
                .filter(|item| item.task_id == task.id && item.status == ItemStatus::Pending)
                .count();
        }
        self.failed_items = items;
        self.errors_selected = self
            .errors_selected
            .min(self.pending_items().len().saturating_sub(1));
    }

    pub(super) fn on_engine(&mut self, event: EngineEvent) -> Vec<Command> {
        let now = self.now;
        match event {
            EngineEvent::RunStarted {
                run_id,
                task_id,
                trigger,
                started_at,
            } => {
                if let Some(task) = self.task_mut(&task_id) {
                    task.blocked_by = None;
                }
                if let Some(task) = self.task_mut(&task_id) {
                    let mut active = ActiveRun::new(run_id, trigger, started_at);
                    active.sample(now);
                    task.active = Some(active);
                }
                if self.view == View::Runs {
                    return vec![Command::LoadRunList];
                }
                Vec::new()
            }
            EngineEvent::RunProgress {
                run_id,
                task_id,
                counters,
                in_flight,
                at,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.counters = *counters;
                    active.in_flight = in_flight;
                    active.sample(at);
                }
                Vec::new()
            }
            EngineEvent::ItemSynced {
                run_id,
                task_id,
                path,
                bytes,
                method,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.retrying.remove(&path);
                    active.in_flight.retain(|file| file.path != path);
                    active.push_recent(RecentItem {
                        path,
                        outcome: ItemOutcome::Synced { bytes, method },
                    });
                }
                Vec::new()
            }
            EngineEvent::ItemRecovered {
                run_id,
                task_id,
                path,
                attempt,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.retrying.remove(&path);
                    // Its failed attempts give way to the one that loaded.
                    active.forget_failed_attempts(&path);
                    active.push_recent(RecentItem {
                        path,
                        outcome: ItemOutcome::Recovered { attempt },
                    });
                }
                Vec::new()
            }
            EngineEvent::ItemSkipped {
                run_id,
                task_id,
                path,
                reason,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.push_recent(RecentItem {
                        path,
                        outcome: ItemOutcome::Skipped(reason),
                    });
                }
                Vec::new()
            }
            EngineEvent::ItemFailed {
                run_id,
                task_id,
                path,
                error,
                attempt,
                max_attempts,
                retry_in,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    let retry_at = retry_in
                        .and_then(|wait| TimeDelta::from_std(wait).ok())
                        .map(|wait| now + wait);
                    let item = RecentItem {
                        path: path.clone(),
                        outcome: ItemOutcome::Failed {
                            error,
                            attempt,
                            max_attempts,
                            retry_at,
                        },
                    };
                    // One line per item: its newest attempt.
                    active.forget_failed_attempts(&path);
                    active.retrying.insert(path, item.clone());
                    active.push_recent(item);
                }
                Vec::new()
            }
            EngineEvent::RunFinished { record } => {
                let task_id = record.task_id.clone();
                let status = record.status;
                if let Some(task) = self.task_mut(&task_id) {
                    // A submitted run goes on remotely: keep following it.
                    // A blocked run never started, so it ends no live one.
                    if !matches!(status, RunStatus::Submitted | RunStatus::Blocked)
                        && let Some(mut ended) = task.active.take()
                        && ended.run_id == record.run_id
                    {
                        ended.counters = record.counters.clone();
                        task.finished = Some(ended);
                    }
                    task.last = Some(*record);
                }
                if status != RunStatus::Succeeded {
                    self.set_status(format!("{task_id} {status}"));
                }
                let mut commands = vec![Command::LoadFailedItems];
                if self.history_task.as_deref() == Some(task_id.as_str()) {
                    commands.push(Command::LoadHistory { task_id });
                }
                if self.view == View::Runs {
                    commands.push(Command::LoadRunList);
                }
                commands
            }
            EngineEvent::ScheduleChanged {
                task_id,
                next_run,
                paused,
            } => {
                if let Some(task) = self.task_mut(&task_id) {
                    task.next_run = next_run;
                    task.paused = paused;
                }
                Vec::new()
            }
            EngineEvent::TaskBlocked {
                task_id,
                dependency,
            } => {
                if let Some(task) = self.task_mut(&task_id) {
                    task.blocked_by = Some(dependency.clone());
                }
                self.set_status(format!(
                    "{task_id} blocked: dependency {dependency} did not succeed"
                ));
                Vec::new()
            }
            // The log view already shows why a slot was skipped.
            EngineEvent::SlotSkipped { .. } => Vec::new(),
        }
    }
}
