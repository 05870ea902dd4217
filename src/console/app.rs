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

/// How long the errors view keeps listing an item marked gone.
const GONE_SHOWN_DAYS: i64 = 7;
/// What a read-only console says when asked to change something.
pub(super) const READ_ONLY: &str =
    "read-only console: start, retry, abandon, cancel and pause are disabled";

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
    /// Mark failed items of a task abandoned, then read the list again.
    AbandonItems {
        task_id: String,
        item_ids: Vec<i64>,
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
    /// Give up on these failed items (id, path or bounds) of a task.
    Abandon {
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
    /// The second of the last redraw a tick asked for (ages move with it).
    pub drawn_second: i64,
    /// Ticks since the state store was last polled.
    pub(super) ticks_since_poll: u32,
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
            drawn_second: 0,
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

    /// Whether `task_id`'s run with these counters is told in rows rather
    /// than files (see [`TaskKind::moves_rows`]).
    pub fn moves_rows(&self, task_id: &str, counters: &crate::run::RunCounters) -> bool {
        let kind = self
            .tasks
            .iter()
            .find(|task| task.id == task_id)
            .map(|task| task.kind);
        TaskKind::moves_rows(kind, counters)
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
