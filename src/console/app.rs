//! The console's model. Everything the views show lives here and changes
//! only in [`App::update`], which does no I/O and no `.await`: it returns
//! the [`Command`]s for the event loop to carry out. The clock is set from
//! outside ([`App::set_now`]) so tests control time.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keymap::{Action, Keymap};
use crate::config::{Config, TaskKind};
use crate::run::event::{CopyMethod, EngineCommand, EngineEvent, SkipReason};
use crate::run::{RunCounters, RunId, RunRecord, RunStatus, Trigger};
use crate::logging::{LogBuffer, LogLine};
use crate::state::{FailedItem, ItemStatus};

/// Recent items kept per run for the detail view.
const RECENT_ITEMS: usize = 200;
/// Seconds of throughput history for the sparkline.
const THROUGHPUT_SECONDS: usize = 60;
/// The window the rate and ETA are computed over.
const RATE_WINDOW: TimeDelta = TimeDelta::seconds(10);
/// Ticks between polls of the state store for other processes' runs.
const POLL_EVERY_TICKS: u32 = 4;
/// How long a status message stays in the footer.
const STATUS_FOR: TimeDelta = TimeDelta::seconds(6);

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Engine(EngineEvent),
    /// Engine events were missed (the console fell behind): reload state.
    EngineLagged,
    Tick,
    LogsChanged,
    Resized,
    /// The newest runs of every task, newest first (start-up, after a lag).
    RunsLoaded(Vec<RunRecord>),
    /// Runs for the history view, newest first.
    HistoryLoaded(Vec<RunRecord>),
    /// Pending failed items of every task.
    FailedItemsLoaded(Vec<FailedItem>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Engine(EngineCommand),
    LoadRuns,
    /// Reload recent runs, to follow runs of other processes.
    PollRuns,
    LoadHistory {
        task_id: String,
    },
    LoadFailedItems,
    /// Pause (true) or resume a task's schedule.
    PauseSchedule {
        task_id: String,
        paused: bool,
    },
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Tasks,
    Detail,
    Errors,
    History,
    Logs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Tasks,
    Logs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Confirm(Confirm),
}

/// A question the operator must answer before something happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    CancelRun {
        task_id: String,
        run_id: RunId,
    },
    Quit {
        active: usize,
    },
    /// Retry these failed items (id, path or bounds) of a task.
    Retry {
        task_id: String,
        items: Vec<(i64, String)>,
    },
}

/// Text being typed at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    TaskFilter(String),
    LogSearch(String),
}

/// What happened to a file or batch in a run, newest last.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Synced {
        bytes: u64,
        method: CopyMethod,
    },
    Skipped(SkipReason),
    Failed {
        error: String,
        attempt: u32,
        max_attempts: u32,
        retry_at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecentItem {
    pub path: String,
    pub outcome: ItemOutcome,
}

/// A run in progress, as the console follows it.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    pub run_id: RunId,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub counters: RunCounters,
    pub recent: VecDeque<RecentItem>,
    /// Items failing right now, by path: the newest attempt.
    pub retrying: HashMap<String, RecentItem>,
    /// (time, bytes done, rows read) samples over the last [`RATE_WINDOW`].
    samples: VecDeque<(DateTime<Utc>, u64, u64)>,
    /// Bytes per second, one value per second, newest last.
    pub throughput: VecDeque<u64>,
    last_second: Option<(DateTime<Utc>, u64)>,
    pub cancel_requested: bool,
    /// Started by another process (a daemon, another console); followed
    /// by polling the state store instead of through engine events.
    pub remote: bool,
}

impl ActiveRun {
    fn new(run_id: RunId, trigger: Trigger, started_at: DateTime<Utc>) -> Self {
        Self {
            run_id,
            trigger,
            started_at,
            counters: RunCounters::default(),
            recent: VecDeque::new(),
            retrying: HashMap::new(),
            samples: VecDeque::new(),
            throughput: VecDeque::new(),
            last_second: None,
            cancel_requested: false,
            remote: false,
        }
    }

    /// Whether this run moves rows (table sync) rather than files.
    pub fn is_rows(&self) -> bool {
        self.counters.rows_total.is_some()
            || self.counters.rows_extracted > 0
            || self.counters.batches_done > 0
    }

    /// Bytes (or, for table runs, rows) per second over the rolling window,
    /// once it spans a second.
    pub fn rate(&self) -> Option<f64> {
        let (first_time, first_bytes, first_rows) = self.samples.front()?;
        let (last_time, last_bytes, last_rows) = self.samples.back()?;
        let seconds = (*last_time - *first_time).num_milliseconds() as f64 / 1000.0;
        let done = if self.is_rows() {
            last_rows.saturating_sub(*first_rows)
        } else {
            last_bytes.saturating_sub(*first_bytes)
        };
        (seconds >= 1.0).then(|| done as f64 / seconds)
    }

    /// Time left at the current rate, when totals and a rate are known.
    pub fn eta(&self) -> Option<TimeDelta> {
        if !self.counters.totals_known {
            return None;
        }
        let remaining = match self.counters.rows_total {
            Some(total) => total.saturating_sub(self.counters.rows_extracted),
            None => self
                .counters
                .bytes_total
                .saturating_sub(self.counters.bytes_done),
        };
        if remaining == 0 {
            return Some(TimeDelta::zero());
        }
        let rate = self.rate().filter(|rate| *rate > 0.0)?;
        Some(TimeDelta::milliseconds(
            (remaining as f64 / rate * 1000.0) as i64,
        ))
    }

    /// Share of the work done, weighted by bytes (files) or rows (tables);
    /// `None` while counting.
    pub fn fraction(&self) -> Option<f64> {
        let counters = &self.counters;
        if !counters.totals_known {
            return None;
        }
        if let Some(total) = counters.rows_total {
            return Some(if total == 0 {
                1.0
            } else {
                (counters.rows_extracted as f64 / total as f64).min(1.0)
            });
        }
        if counters.bytes_total > 0 {
            Some((counters.bytes_done as f64 / counters.bytes_total as f64).min(1.0))
        } else if counters.files_to_copy > 0 {
            Some(
                (counters.files_synced + counters.files_failed) as f64
                    / counters.files_to_copy as f64,
            )
        } else {
            Some(1.0)
        }
    }

    fn sample(&mut self, now: DateTime<Utc>) {
        self.samples
            .push_back((now, self.counters.bytes_done, self.counters.rows_extracted));
        while self
            .samples
            .front()
            .is_some_and(|(time, _, _)| now - *time > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        let bytes = if self.is_rows() {
            self.counters.rows_extracted
        } else {
            self.counters.bytes_done
        };
        match self.last_second {
            None => self.last_second = Some((now, bytes)),
            Some((time, before)) if now - time >= TimeDelta::seconds(1) => {
                self.throughput.push_back(bytes.saturating_sub(before));
                if self.throughput.len() > THROUGHPUT_SECONDS {
                    self.throughput.pop_front();
                }
                self.last_second = Some((now, bytes));
            }
            Some(_) => {}
        }
        self.sample(now);
    }

    fn push_recent(&mut self, item: RecentItem) {
        self.recent.push_back(item);
        if self.recent.len() > RECENT_ITEMS {
            self.recent.pop_front();
        }
    }
}

/// A task as the console shows it.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub id: String,
    pub kind: TaskKind,
    pub name: String,
    pub has_schedule: bool,
    /// The schedule's interval, for display.
    pub every: Option<std::time::Duration>,
    /// The newest finished run.
    pub last: Option<RunRecord>,
    pub active: Option<ActiveRun>,
    /// Pending failed items in the state store.
    pub pending_failures: usize,
    /// When the scheduler will start it next (none: unscheduled or paused).
    pub next_run: Option<DateTime<Utc>>,
    pub paused: bool,
    /// The dependency that kept its last scheduled run from starting.
    pub blocked_by: Option<String>,
}

/// The log view's filters, search and scroll position.
#[derive(Debug, Clone, Default)]
pub struct LogViewState {
    /// Scrolled up this many lines from the newest; 0 follows new lines.
    pub offset: usize,
    pub follow: bool,
    /// Only lines at this level or more severe.
    pub min_level: Option<tracing::Level>,
    /// Only lines of this task.
    pub task: Option<String>,
    pub search: Option<String>,
    /// Position of the current search match in the filtered lines.
    pub current_match: Option<usize>,
}

impl LogViewState {
    pub fn shows(&self, line: &LogLine) -> bool {
        self.min_level.is_none_or(|level| line.level <= level)
            && self
                .task
                .as_ref()
                .is_none_or(|task| line.task_id.as_deref() == Some(task.as_str()))
    }
}

pub struct App {
    pub config_name: String,
    pub state_kind: &'static str,
    pub read_only: bool,
    pub keymap: Keymap,
    pub now: DateTime<Utc>,
    /// Offset of the operator's local time, for the clock and timestamps.
    pub utc_offset: chrono::FixedOffset,
    pub tasks: Vec<TaskState>,
    /// Index into [`App::visible_tasks`].
    pub selected: usize,
    pub view: View,
    pub focus: Focus,
    pub overlay: Option<Overlay>,
    pub input: Option<Input>,
    pub task_filter: String,
    pub logs: LogBuffer,
    pub log_view: LogViewState,
    pub failed_items: Vec<FailedItem>,
    pub errors_selected: usize,
    pub history: Vec<RunRecord>,
    pub history_task: Option<String>,
    pub history_selected: usize,
    pub status: Option<(String, DateTime<Utc>)>,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Ticks since the state store was last polled.
    ticks_since_poll: u32,
}

impl App {
    pub fn new(
        config: &Config,
        keymap: Keymap,
        logs: LogBuffer,
        state_kind: &'static str,
        read_only: bool,
    ) -> Self {
        let tasks = config
            .tasks
            .iter()
            .map(|task| TaskState {
                id: task.id.clone(),
                kind: task.kind,
                name: task.display_name().to_string(),
                has_schedule: task.schedule.is_some(),
                every: task.schedule.map(|schedule| schedule.every),
                last: None,
                active: None,
                pending_failures: 0,
                next_run: None,
                paused: false,
                blocked_by: None,
            })
            .collect();
        let config_name = config
            .file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| config.file.display().to_string());
        Self {
            config_name,
            state_kind,
            read_only,
            keymap,
            now: Utc::now(),
            utc_offset: chrono::Offset::fix(&Utc),
            tasks,
            selected: 0,
            view: View::Tasks,
            focus: Focus::Tasks,
            overlay: None,
            input: None,
            task_filter: String::new(),
            logs,
            log_view: LogViewState {
                follow: true,
                ..Default::default()
            },
            failed_items: Vec::new(),
            errors_selected: 0,
            history: Vec::new(),
            history_task: None,
            history_selected: 0,
            status: None,
            dirty: true,
            ticks_since_poll: 0,
        }
    }

    /// What to load when the console opens.
    pub fn init(&self) -> Vec<Command> {
        vec![Command::LoadRuns, Command::LoadFailedItems]
    }

    pub fn set_now(&mut self, now: DateTime<Utc>) {
        self.now = now;
    }

    /// Tasks matching the filter, in config order.
    pub fn visible_tasks(&self) -> Vec<&TaskState> {
        let filter = self.task_filter.to_lowercase();
        self.tasks
            .iter()
            .filter(|task| {
                filter.is_empty()
                    || task.id.contains(&filter)
                    || task.name.to_lowercase().contains(&filter)
            })
            .collect()
    }

    pub fn selected_task(&self) -> Option<&TaskState> {
        self.visible_tasks().get(self.selected).copied()
    }

    fn selected_task_id(&self) -> Option<String> {
        self.selected_task().map(|task| task.id.clone())
    }

    fn task_mut(&mut self, task_id: &str) -> Option<&mut TaskState> {
        self.tasks.iter_mut().find(|task| task.id == task_id)
    }

    pub fn active_runs(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| task.active.is_some())
            .count()
    }

    /// Tasks whose newest run did not succeed.
    pub fn failing_tasks(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| task.active.is_none())
            .filter(|task| {
                task.last.as_ref().is_some_and(|run| {
                    matches!(
                        run.status,
                        RunStatus::Failed | RunStatus::Partial | RunStatus::Interrupted
                    )
                })
            })
            .count()
    }

    /// Failed items the errors view lists (pending ones, all tasks).
    pub fn pending_items(&self) -> Vec<&FailedItem> {
        self.failed_items
            .iter()
            .filter(|item| item.status == ItemStatus::Pending)
            .collect()
    }

    fn set_status(&mut self, message: impl Into<String>) {
        self.status = Some((message.into(), self.now));
    }

    pub fn update(&mut self, message: Msg) -> Vec<Command> {
        let commands = match message {
            Msg::Key(key) => self.on_key(key),
            Msg::Engine(event) => self.on_engine(event),
            Msg::EngineLagged => vec![Command::LoadRuns, Command::LoadFailedItems],
            Msg::Tick => {
                self.on_tick();
                // Runs started by other processes show through the store.
                self.ticks_since_poll += 1;
                if self.ticks_since_poll >= POLL_EVERY_TICKS {
                    self.ticks_since_poll = 0;
                    return vec![Command::PollRuns];
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
                if self.on_runs_loaded(runs) {
                    self.dirty = true;
                }
                return Vec::new();
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

    fn on_tick(&mut self) {
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
        // Ages ("2m ago") and the clock move once a minute.
        if now.timestamp() % 60 == 0 {
            changed = true;
        }
        self.dirty |= changed;
    }

    /// Takes each task's newest finished run, and follows runs in progress
    /// that another process started. Returns whether anything changed.
    fn on_runs_loaded(&mut self, runs: Vec<RunRecord>) -> bool {
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

    fn on_failed_items(&mut self, items: Vec<FailedItem>) {
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

    fn on_engine(&mut self, event: EngineEvent) -> Vec<Command> {
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
                Vec::new()
            }
            EngineEvent::RunProgress {
                run_id,
                task_id,
                counters,
            } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.counters = *counters;
                    active.sample(now);
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
                    active.push_recent(RecentItem {
                        path,
                        outcome: ItemOutcome::Synced { bytes, method },
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
                    if status != RunStatus::Submitted {
                        task.active = None;
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
        }
    }

    fn active_run_mut(&mut self, task_id: &str, run_id: RunId) -> Option<&mut ActiveRun> {
        self.task_mut(task_id)?
            .active
            .as_mut()
            .filter(|active| active.run_id == run_id)
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return self.request_quit();
        }
        if let Some(overlay) = self.overlay.clone() {
            return self.on_overlay_key(overlay, key);
        }
        if self.input.is_some() {
            return self.on_input_key(key);
        }
        let Some(action) = self.keymap.action(&key) else {
            return Vec::new();
        };
        if self.read_only && action.is_mutating() {
            self.set_status("read-only console: start, retry, cancel and pause are disabled");
            return Vec::new();
        }
        self.on_action(action)
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Command> {
        match overlay {
            Overlay::Help => {
                self.overlay = None;
                Vec::new()
            }
            Overlay::Confirm(confirm) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.overlay = None;
                    self.confirmed(confirm)
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.overlay = None;
                    Vec::new()
                }
                _ => Vec::new(),
            },
        }
    }

    fn confirmed(&mut self, confirm: Confirm) -> Vec<Command> {
        match confirm {
            Confirm::CancelRun { task_id, run_id } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.cancel_requested = true;
                }
                self.set_status(format!("cancelling {task_id} run {run_id}…"));
                vec![Command::Engine(EngineCommand::CancelRun { run_id })]
            }
            Confirm::Quit { .. } => vec![Command::Quit],
            Confirm::Retry { task_id, items } => {
                self.set_status(format!("retrying {} item(s) of {task_id}", items.len()));
                let item_ids = Some(items.into_iter().map(|(id, _)| id).collect());
                vec![Command::Engine(EngineCommand::RetryItems {
                    task_id,
                    item_ids,
                })]
            }
        }
    }

    fn on_input_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Some(input) = &mut self.input else {
            return Vec::new();
        };
        let text = match input {
            Input::TaskFilter(text) | Input::LogSearch(text) => text,
        };
        match key.code {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Esc => {
                if matches!(input, Input::TaskFilter(_)) {
                    self.task_filter.clear();
                } else {
                    self.log_view.search = None;
                    self.log_view.current_match = None;
                }
                self.input = None;
                return Vec::new();
            }
            KeyCode::Enter => {
                self.input = None;
                return Vec::new();
            }
            _ => return Vec::new(),
        }
        // Apply as the operator types.
        match input.clone() {
            Input::TaskFilter(text) => {
                self.task_filter = text;
                self.selected = 0;
            }
            Input::LogSearch(text) => {
                self.log_view.search = (!text.is_empty()).then_some(text);
                self.log_view.current_match = None;
                self.jump_to_match(true);
            }
        }
        Vec::new()
    }

    fn request_quit(&mut self) -> Vec<Command> {
        let active = self.active_runs();
        if active > 0 {
            self.overlay = Some(Overlay::Confirm(Confirm::Quit { active }));
            Vec::new()
        } else {
            vec![Command::Quit]
        }
    }

    fn on_action(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Quit => return self.request_quit(),
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::Tasks => self.view = View::Tasks,
            Action::Errors => {
                self.view = View::Errors;
                return vec![Command::LoadFailedItems];
            }
            Action::History => return self.open_history(),
            Action::Logs => self.view = View::Logs,
            Action::Open => match self.view {
                View::Tasks if self.focus == Focus::Tasks && self.selected_task().is_some() => {
                    self.view = View::Detail
                }
                View::Errors => return self.retry_selected_item(),
                View::History => {}
                _ => {}
            },
            Action::Back => {
                if self.view == View::Tasks && !self.task_filter.is_empty() {
                    self.task_filter.clear();
                } else {
                    self.view = View::Tasks;
                }
            }
            Action::Focus => {
                self.focus = match (self.view, self.focus) {
                    (View::Tasks, Focus::Tasks) => Focus::Logs,
                    _ => Focus::Tasks,
                };
            }
            Action::Down => self.move_by(1),
            Action::Up => self.move_by(-1),
            Action::PageDown => self.move_by(10),
            Action::PageUp => self.move_by(-10),
            Action::Top => self.move_to(false),
            Action::Bottom => self.move_to(true),
            Action::Filter => {
                self.input = Some(if self.logs_focused() {
                    Input::LogSearch(self.log_view.search.clone().unwrap_or_default())
                } else {
                    self.view = View::Tasks;
                    self.focus = Focus::Tasks;
                    Input::TaskFilter(self.task_filter.clone())
                });
            }
            Action::Follow => {
                self.log_view.follow = !self.log_view.follow;
                if self.log_view.follow {
                    self.log_view.offset = 0;
                }
            }
            Action::Level => {
                use tracing::Level;
                self.log_view.min_level = match self.log_view.min_level {
                    None => Some(Level::INFO),
                    Some(Level::INFO) => Some(Level::WARN),
                    Some(Level::WARN) => Some(Level::ERROR),
                    _ => None,
                };
                self.log_view.current_match = None;
            }
            Action::TaskLogs => {
                self.log_view.task = match self.log_view.task {
                    Some(_) => None,
                    None => self.selected_task_id(),
                };
                self.log_view.current_match = None;
            }
            Action::NextMatch => self.jump_to_match(true),
            Action::PreviousMatch => self.jump_to_match(false),
            Action::Start => return self.start_selected(),
            Action::Cancel => self.ask_cancel(),
            Action::Retry => {
                if self.view == View::Errors {
                    return self.retry_selected_item();
                }
                self.retry_selected_task();
            }
            Action::Pause => {
                let Some(task) = self.selected_task() else {
                    return Vec::new();
                };
                if !task.has_schedule {
                    let message = format!("{} has no schedule", task.id);
                    self.set_status(message);
                    return Vec::new();
                }
                let (task_id, paused) = (task.id.clone(), !task.paused);
                self.set_status(format!(
                    "{} {task_id}'s schedule",
                    if paused { "pausing" } else { "resuming" }
                ));
                return vec![Command::PauseSchedule { task_id, paused }];
            }
        }
        Vec::new()
    }

    fn logs_focused(&self) -> bool {
        self.view == View::Logs || (self.view == View::Tasks && self.focus == Focus::Logs)
    }

    fn open_history(&mut self) -> Vec<Command> {
        self.view = View::History;
        self.history_selected = 0;
        match self.selected_task_id() {
            Some(task_id) => {
                if self.history_task.as_deref() != Some(task_id.as_str()) {
                    self.history.clear();
                }
                self.history_task = Some(task_id.clone());
                vec![Command::LoadHistory { task_id }]
            }
            None => Vec::new(),
        }
    }

    fn move_by(&mut self, delta: i64) {
        if self.logs_focused() {
            let offset = self.log_view.offset as i64 - delta;
            self.log_view.offset = offset.max(0) as usize;
            self.log_view.follow = self.log_view.offset == 0;
            return;
        }
        let (cursor, len) = match self.view {
            View::Errors => (
                &mut self.errors_selected,
                self.failed_items
                    .iter()
                    .filter(|i| i.status == ItemStatus::Pending)
                    .count(),
            ),
            View::History => (&mut self.history_selected, self.history.len()),
            _ => {
                let len = self.visible_tasks().len();
                (&mut self.selected, len)
            }
        };
        if len == 0 {
            *cursor = 0;
            return;
        }
        *cursor = (*cursor as i64 + delta).clamp(0, len as i64 - 1) as usize;
    }

    fn move_to(&mut self, end: bool) {
        if self.logs_focused() {
            self.log_view.offset = if end { 0 } else { self.logs.len() };
            self.log_view.follow = end;
            return;
        }
        self.move_by(if end { i64::MAX / 4 } else { -(i64::MAX / 4) });
    }

    /// Moves to the next (or previous) line matching the search.
    fn jump_to_match(&mut self, forward: bool) {
        let Some(search) = self.log_view.search.clone() else {
            return;
        };
        let needle = search.to_lowercase();
        let matches: Vec<usize> = {
            let ring = self.logs.lock();
            ring.lines
                .iter()
                .filter(|line| self.log_view.shows(line))
                .enumerate()
                .filter(|(_, line)| line.message.to_lowercase().contains(&needle))
                .map(|(index, _)| index)
                .collect()
        };
        if matches.is_empty() {
            self.log_view.current_match = None;
            return;
        }
        let next = match self.log_view.current_match {
            None => matches.last().copied(),
            Some(current) if forward => matches
                .iter()
                .copied()
                .find(|index| *index > current)
                .or(matches.first().copied()),
            Some(current) => matches
                .iter()
                .rev()
                .copied()
                .find(|index| *index < current)
                .or(matches.last().copied()),
        };
        self.log_view.current_match = next;
        self.log_view.follow = false;
    }

    fn start_selected(&mut self) -> Vec<Command> {
        let Some(task) = self.selected_task() else {
            return Vec::new();
        };
        if task.active.is_some() {
            let message = format!("{} is already running", task.id);
            self.set_status(message);
            return Vec::new();
        }
        let task_id = task.id.clone();
        self.set_status(format!("starting {task_id}"));
        vec![Command::Engine(EngineCommand::StartTask { task_id })]
    }

    fn ask_cancel(&mut self) {
        let Some(task) = self.selected_task() else {
            return;
        };
        match &task.active {
            Some(active) => {
                self.overlay = Some(Overlay::Confirm(Confirm::CancelRun {
                    task_id: task.id.clone(),
                    run_id: active.run_id,
                }));
            }
            None => {
                let message = format!("{} is not running", task.id);
                self.set_status(message);
            }
        }
    }

    fn retry_selected_task(&mut self) {
        let Some(task_id) = self.selected_task_id() else {
            return;
        };
        let items: Vec<(i64, String)> = self
            .pending_items()
            .into_iter()
            .filter(|item| item.task_id == task_id)
            .map(|item| (item.id, item.key.clone()))
            .collect();
        self.ask_retry(task_id, items);
    }

    fn retry_selected_item(&mut self) -> Vec<Command> {
        let Some(item) = self.pending_items().get(self.errors_selected).copied() else {
            self.set_status("nothing to retry");
            return Vec::new();
        };
        let (task_id, items) = (item.task_id.clone(), vec![(item.id, item.key.clone())]);
        if self.read_only {
            self.set_status("read-only console: start, retry, cancel and pause are disabled");
            return Vec::new();
        }
        self.ask_retry(task_id, items);
        Vec::new()
    }

    fn ask_retry(&mut self, task_id: String, items: Vec<(i64, String)>) {
        if items.is_empty() {
            self.set_status(format!("{task_id} has no failed items to retry"));
        } else if self
            .tasks
            .iter()
            .any(|task| task.id == task_id && task.active.is_some())
        {
            self.set_status(format!("{task_id} is running; retry when it has finished"));
        } else {
            self.overlay = Some(Overlay::Confirm(Confirm::Retry { task_id, items }));
        }
    }
}
