//! The console's model. Everything the views show lives here and changes
//! only in [`App::update`], which does no I/O and no `.await`: it returns
//! the [`Command`]s for the event loop to carry out. The clock is set from
//! outside ([`App::set_now`]) so tests control time.

use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

use super::keymap::Keymap;
use super::lists::Chosen;
pub use super::run_state::{ActiveRun, ItemOutcome, RecentItem};
use crate::config::{Config, TaskKind};
use crate::logging::{LogBuffer, LogLine};
use crate::run::event::{EngineCommand, EngineEvent};
use crate::run::{RunId, RunRecord, RunStatus};
use crate::state::{FailedItem, ItemStatus};

/// Ticks between polls of the state store for other processes' runs.
const POLL_EVERY_TICKS: u32 = 4;
/// How long a status message stays in the footer.
const STATUS_FOR: TimeDelta = TimeDelta::seconds(6);
/// How long the errors view keeps listing an item marked gone.
const GONE_SHOWN_DAYS: i64 = 7;

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// A click or a wheel turn (only with mouse support on).
    Mouse(MouseEvent),
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
    /// Runs of every task for the runs view, newest first.
    RunListLoaded(Vec<RunRecord>),
    /// Tasks whose schedule is paused in the state store.
    PausesLoaded(Vec<String>),
    /// The files in flight that the process running a run published.
    FilesInFlightLoaded {
        task_id: String,
        run_id: RunId,
        files: Vec<crate::run::FileInFlight>,
    },
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
    /// The newest runs of every task, for the runs view
    /// ([`super::lists::RUNS_LISTED`] of them).
    LoadRunList,
    /// Read which schedules are paused (a read-only console runs no
    /// scheduler to tell it).
    LoadPauses,
    /// Read the files in flight of a run another process runs.
    LoadFilesInFlight {
        task_id: String,
        run_id: RunId,
    },
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
    /// Runs of every task, newest first.
    Runs,
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
    /// A log line, error or run opened in full (`enter`).
    FullText(super::fulltext::FullText),
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
    /// Start a task although a dependency's last run did not succeed
    /// (`run` on the command line would not start it).
    StartDespite {
        task_id: String,
        dependency: String,
        status: RunStatus,
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
    /// The filter of the list on screen: errors, history or runs.
    ListFilter(String),
    LogSearch(String),
    /// The `:` palette: a task id, a view or an action.
    Command(String),
}

/// A task as the console shows it.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub id: String,
    pub kind: TaskKind,
    pub name: String,
    pub has_schedule: bool,
    /// Tasks that must succeed before this one runs.
    pub dependencies: Vec<String>,
    /// The schedule's interval, for display.
    pub every: Option<std::time::Duration>,
    /// Where it reads and writes: `in/ → s3://bucket/out/`.
    pub route: String,
    /// Which files it takes (file syncs with a `pattern`).
    pub pattern: Option<String>,
    /// The newest finished run.
    pub last: Option<RunRecord>,
    pub active: Option<ActiveRun>,
    /// The last run this console followed to its end, as it stood then
    /// (items, throughput, files in flight when it stopped): its detail
    /// stays readable after the run.
    pub finished: Option<ActiveRun>,
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

    /// Whether a line matches the search: anywhere in the line as shown
    /// (level, task and run, message and fields), ignoring case.
    pub fn matches(&self, line: &LogLine) -> bool {
        let Some(search) = &self.search else {
            return false;
        };
        let run = line.run_id.map(|run| format!("#{run}")).unwrap_or_default();
        let task = line.task_id.as_deref().unwrap_or("");
        format!("{} {task}{run} {}", line.level, line.message)
            .to_lowercase()
            .contains(&search.to_lowercase())
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
    /// The first task row the list drew last: the list scrolls only when
    /// the cursor leaves the rows shown, and a click maps to the row under
    /// the pointer.
    pub task_scroll: std::cell::Cell<usize>,
    pub view: View,
    pub focus: Focus,
    pub overlay: Option<Overlay>,
    pub input: Option<Input>,
    pub task_filter: String,
    pub task_sort: super::lists::TaskSort,
    /// The task the operator chose, which the cursor stays on.
    pub(super) task_chosen: Chosen<String>,
    pub logs: LogBuffer,
    pub log_view: LogViewState,
    pub failed_items: Vec<FailedItem>,
    pub errors_selected: usize,
    pub errors_filter: String,
    pub(super) errors_chosen: Chosen<i64>,
    pub history: Vec<RunRecord>,
    pub history_task: Option<String>,
    pub history_selected: usize,
    pub history_filter: String,
    pub(super) history_chosen: Chosen<RunId>,
    /// The runs view's rows: the newest runs of every task.
    pub runs: Vec<RunRecord>,
    /// Index into [`App::visible_runs`].
    pub runs_selected: usize,
    pub runs_filter: String,
    pub(super) runs_chosen: Chosen<RunId>,
    /// A past run opened from history or the runs view (`enter` on its
    /// row): the detail view shows it instead of the task's live or
    /// newest run.
    pub opened_run: Option<RunRecord>,
    /// The view `esc` goes back to from an opened run.
    pub opened_from: View,
    pub status: Option<(String, DateTime<Utc>)>,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Ticks since the state store was last polled.
    ticks_since_poll: u32,
    /// Rows of tasks on screen: what page keys move by.
    pub page_rows: usize,
    /// The colour theme (`[theme] name`, `:theme`).
    pub theme: super::theme::ThemeName,
    /// Columns and rows of the terminal, to find what a click hit.
    pub screen: (u16, u16),
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
                dependencies: task.dependencies.clone(),
                every: task.schedule.map(|schedule| schedule.every),
                route: super::format::route(&task.properties),
                pattern: match &task.properties {
                    crate::config::TaskProperties::Sync(sync) => sync
                        .pattern
                        .as_ref()
                        .map(|pattern| pattern.get_ref().clone()),
                    _ => None,
                },
                last: None,
                active: None,
                pending_failures: 0,
                next_run: None,
                paused: false,
                blocked_by: None,
                finished: None,
            })
            .collect::<Vec<_>>();
        let first_task = tasks.first().map(|task: &TaskState| task.id.clone());
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
            task_scroll: std::cell::Cell::new(0),
            view: View::Tasks,
            focus: Focus::Tasks,
            overlay: None,
            input: None,
            task_filter: String::new(),
            task_sort: Default::default(),
            task_chosen: Chosen::new(first_task),
            logs,
            log_view: LogViewState {
                follow: true,
                ..Default::default()
            },
            failed_items: Vec::new(),
            errors_selected: 0,
            errors_filter: String::new(),
            errors_chosen: Chosen::default(),
            history: Vec::new(),
            history_task: None,
            history_selected: 0,
            history_filter: String::new(),
            history_chosen: Chosen::default(),
            runs: Vec::new(),
            runs_selected: 0,
            runs_filter: String::new(),
            runs_chosen: Chosen::default(),
            opened_run: None,
            opened_from: View::History,
            status: None,
            dirty: true,
            ticks_since_poll: 0,
            page_rows: 10,
            theme: config.theme.name,
            screen: (80, 24),
        }
    }

    /// What to load when the console opens.
    pub fn init(&self) -> Vec<Command> {
        let mut commands = vec![Command::LoadRuns, Command::LoadFailedItems];
        if self.read_only {
            commands.push(Command::LoadPauses);
        }
        commands
    }

    pub fn set_now(&mut self, now: DateTime<Utc>) {
        self.now = now;
    }

    /// Tasks matching the filter (see [`super::triage::Filter`]), in the
    /// chosen order (see [`super::lists::TaskSort`]).
    pub fn visible_tasks(&self) -> Vec<&TaskState> {
        let filter = super::triage::Filter::parse(&self.task_filter);
        let mut tasks: Vec<&TaskState> = self
            .tasks
            .iter()
            .filter(|task| filter.matches(task))
            .collect();
        self.task_sort.sort(&mut tasks);
        tasks
    }

    /// Whether `task_id`'s runs are told in rows (table and HTTP syncs)
    /// rather than files: by the task's kind, so a run that failed before
    /// reading a row is still a table run; for a task no longer in the
    /// config, by what its counters counted.
    pub fn moves_rows(&self, task_id: &str, counters: &crate::run::RunCounters) -> bool {
        match self.tasks.iter().find(|task| task.id == task_id) {
            Some(task) => matches!(
                task.kind,
                crate::config::TaskKind::TableSync | crate::config::TaskKind::HttpSync
            ),
            None => counters.counts_rows(),
        }
    }

    /// The task the operator is looking at: the one under the task list's
    /// cursor; in the runs view, the selected run's task; in the errors
    /// view, the selected item's task; in the detail of
    /// a run opened from a list, that run's task (so start, retry, cancel
    /// and history act on the task on screen).
    pub fn selected_task(&self) -> Option<&TaskState> {
        let run_task = match self.view {
            View::Detail => self.opened_run.as_ref().map(|run| run.task_id.as_str()),
            View::Runs => self
                .visible_runs()
                .get(self.runs_selected)
                .map(|run| run.task_id.as_str()),
            // The selected failed item's task, so `3`, `s` and `c` there
            // act on the task of the item on screen.
            View::Errors => self
                .visible_pending_items()
                .get(self.errors_selected)
                .map(|item| item.task_id.as_str()),
            _ => None,
        };
        if let Some(task_id) = run_task {
            return self.tasks.iter().find(|task| task.id == task_id);
        }
        if self.view == View::Runs {
            return None;
        }
        self.visible_tasks().get(self.selected).copied()
    }

    pub(super) fn selected_task_id(&self) -> Option<String> {
        self.selected_task().map(|task| task.id.clone())
    }

    pub(super) fn task_mut(&mut self, task_id: &str) -> Option<&mut TaskState> {
        self.tasks.iter_mut().find(|task| task.id == task_id)
    }

    pub fn active_runs(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| task.active.is_some())
            .count()
    }

    /// Runs this console's engine runs (not those followed through the
    /// store): the runs quitting cancels.
    pub fn own_runs(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| task.active.as_ref().is_some_and(|active| !active.remote))
            .count()
    }

    /// Tasks that need the operator: failed, partial (failed items
    /// pending) or blocked.
    pub fn failing_tasks(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| super::triage::TaskHealth::of(task).is_failing())
            .count()
    }

    /// Failed items the errors view lists (pending ones, all tasks).
    pub fn pending_items(&self) -> Vec<&FailedItem> {
        self.failed_items
            .iter()
            .filter(|item| item.status == ItemStatus::Pending)
            .collect()
    }

    /// Failed items deleted at the source in the last week (marked gone),
    /// which the errors view lists after the pending ones.
    pub fn gone_items(&self) -> Vec<&FailedItem> {
        self.failed_items
            .iter()
            .filter(|item| {
                item.status == ItemStatus::Gone
                    && self.now - item.updated_at < TimeDelta::days(GONE_SHOWN_DAYS)
            })
            .collect()
    }

    pub(super) fn set_status(&mut self, message: impl Into<String>) {
        self.status = Some((message.into(), self.now));
    }

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
        // Ages ("2m ago") and the clock move once a minute.
        if now.timestamp() % 60 == 0 {
            changed = true;
        }
        self.dirty |= changed;
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

    pub(super) fn active_run_mut(
        &mut self,
        task_id: &str,
        run_id: RunId,
    ) -> Option<&mut ActiveRun> {
        self.task_mut(task_id)?
            .active
            .as_mut()
            .filter(|active| active.run_id == run_id)
    }
}
