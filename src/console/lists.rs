//! The lists' rows, order and cursors: the task list's sort orders, the
//! rows the errors, history and runs views show under their filters, the
//! position each list's title shows, and where a cursor goes when its list
//! is filtered, sorted or reloaded (it stays on the row the operator chose).

use std::cmp::Reverse;
use std::collections::HashMap;

use super::app::{App, Msg, TaskState, View};
use super::triage::{Filter, Subject, TaskHealth};
use crate::run::event::EngineEvent;
use crate::run::{RunId, RunRecord, RunStatus, Trigger};
use crate::state::FailedItem;

/// Runs the runs view lists: the newest of every task, bounded so a store
/// with years of runs opens as fast as a new one.
pub const RUNS_LISTED: usize = 500;

/// The task list's order: config order, or by what the operator looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSort {
    #[default]
    Config,
    /// Worst first: failed, partial, blocked, cancelled, running, ok, never.
    Status,
    /// Most recently run first (a running task counts from its start).
    LastRun,
    /// Soonest next scheduled run first.
    NextRun,
    /// Longest last run first.
    Duration,
}

impl TaskSort {
    /// In the order `o` cycles through.
    pub const ALL: [TaskSort; 5] = [
        Self::Config,
        Self::Status,
        Self::LastRun,
        Self::NextRun,
        Self::Duration,
    ];

    /// The word `:sort` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Status => "status",
            Self::LastRun => "last",
            Self::NextRun => "next",
            Self::Duration => "duration",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sort| sort.name() == name)
    }

    pub fn next(self) -> Self {
        let index = Self::ALL.iter().position(|sort| *sort == self).unwrap_or(0);
        Self::ALL[(index + 1) % Self::ALL.len()]
    }

    /// How the task list's title says it (none for config order).
    pub fn describe(self) -> Option<&'static str> {
        match self {
            Self::Config => None,
            Self::Status => Some("by status, worst first"),
            Self::LastRun => Some("by last run, newest first"),
            Self::NextRun => Some("by next run, soonest first"),
            Self::Duration => Some("by last duration, longest first"),
        }
    }

    /// Sorts in place; stable, so equal tasks keep their config order.
    /// Tasks without the value sorted by (never run, unscheduled) go last.
    pub fn sort(self, tasks: &mut [&TaskState]) {
        match self {
            Self::Config => {}
            Self::Status => tasks.sort_by_key(|task| TaskHealth::of(task)),
            Self::LastRun => tasks.sort_by_key(|task| {
                let at = match &task.active {
                    Some(active) => Some(active.started_at),
                    None => task
                        .last
                        .as_ref()
                        .map(|run| run.completed_at.unwrap_or(run.started_at)),
                };
                Reverse(at)
            }),
            Self::NextRun => {
                tasks.sort_by_key(|task| (task.next_run.is_none(), task.next_run));
            }
            Self::Duration => tasks
                .sort_by_key(|task| Reverse(task.last.as_ref().and_then(|run| run.duration_ms))),
        }
    }
}

/// A list's position for its title: `12/200` when every row is shown,
/// `12/20 · 200 total` under a filter; 0 when the list is empty.
pub fn position(selected: usize, shown: usize, total: usize) -> String {
    let at = if shown == 0 {
        0
    } else {
        selected.min(shown - 1) + 1
    };
    if shown == total {
        format!("{at}/{total}")
    } else {
        format!("{at}/{shown} · {total} total")
    }
}

/// The row the operator put a list's cursor on, so the cursor stays on it
/// when the list is filtered, sorted or reloaded.
#[derive(Debug, Clone)]
pub struct Chosen<K> {
    key: Option<K>,
    /// The cursor when it was last settled: a cursor found elsewhere was
    /// moved on purpose (a key, a click), onto the row now chosen.
    at: usize,
}

impl<K> Default for Chosen<K> {
    fn default() -> Self {
        Self { key: None, at: 0 }
    }
}

impl<K: PartialEq + Clone> Chosen<K> {
    pub(super) fn new(key: Option<K>) -> Self {
        Self { key, at: 0 }
    }

    /// Puts the cursor on row `index` of `keys` and remembers its row.
    pub(super) fn choose(&mut self, cursor: &mut usize, index: usize, keys: &[K]) {
        *cursor = index;
        self.key = keys.get(index).cloned();
        self.at = index;
    }

    /// Called before a message is handled: a cursor that moved since it
    /// was last settled chose its row.
    fn notice_move(&mut self, cursor: usize, keys: &[K]) {
        self.key = keys.get(cursor).cloned();
        self.at = cursor;
    }

    /// After a message: a cursor the message moved chose its row; else the
    /// cursor goes back to the chosen row if it is listed, or, when it is
    /// not, to the top after a new filter and to the nearest row otherwise.
    fn settle(&mut self, cursor: &mut usize, before: usize, refiltered: bool, keys: &[K]) {
        if *cursor != before {
            self.key = keys.get(*cursor).cloned();
        } else {
            let chosen = self
                .key
                .as_ref()
                .and_then(|key| keys.iter().position(|row| row == key));
            *cursor = match chosen {
                Some(index) => index,
                None if refiltered => 0,
                None => (*cursor).min(keys.len().saturating_sub(1)),
            };
        }
        self.at = *cursor;
    }
}

/// The cursors and filters as they were before a message.
pub(super) struct Marks {
    task_filter: String,
    sort: TaskSort,
    selected: usize,
    errors_filter: String,
    errors_selected: usize,
    history_filter: String,
    history_selected: usize,
    runs_filter: String,
    runs_selected: usize,
}

/// Messages that can add, remove or reorder rows of a list, after which
/// its cursor is settled. Progress, logs and ticks cannot.
pub(super) fn may_reorder(message: &Msg) -> bool {
    match message {
        Msg::Key(_)
        | Msg::Mouse(_)
        | Msg::EngineLagged
        | Msg::RunsLoaded(_)
        | Msg::HistoryLoaded(_)
        | Msg::FailedItemsLoaded(_)
        | Msg::RunListLoaded(_)
        | Msg::PausesLoaded(_) => true,
        Msg::Engine(event) => matches!(
            event,
            EngineEvent::RunStarted { .. }
                | EngineEvent::RunFinished { .. }
                | EngineEvent::ScheduleChanged { .. }
                | EngineEvent::TaskBlocked { .. }
        ),
        Msg::Tick | Msg::LogsChanged | Msg::Resized | Msg::FilesInFlightLoaded { .. } => false,
    }
}

fn run_failing(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Failed | RunStatus::Interrupted | RunStatus::Partial | RunStatus::Blocked
    )
}

impl App {
    /// Runs of every task the runs view shows under its filter, newest
    /// first.
    pub fn visible_runs(&self) -> Vec<&RunRecord> {
        self.filtered_runs(&self.runs, &self.runs_filter)
    }

    /// The history view's runs under its filter, newest first.
    pub fn visible_history(&self) -> Vec<&RunRecord> {
        self.filtered_runs(&self.history, &self.history_filter)
    }

    /// Pending failed items the errors view lists under its filter (the
    /// rows its cursor moves over).
    pub fn visible_pending_items(&self) -> Vec<&FailedItem> {
        self.filtered_items(self.pending_items())
    }

    /// Items marked gone the errors view lists under its filter.
    pub fn visible_gone_items(&self) -> Vec<&FailedItem> {
        self.filtered_items(self.gone_items())
    }

    /// Task id → type name, for `kind:` on rows that name a task.
    fn task_kinds(&self, filter: &Filter) -> HashMap<&str, &'static str> {
        if !filter.uses_kind() {
            return HashMap::new();
        }
        self.tasks
            .iter()
            .map(|task| (task.id.as_str(), task.kind.name()))
            .collect()
    }

    /// Runs pass on their status (`ok` for succeeded; failed, partial,
    /// interrupted and blocked runs newer than their task's last
    /// successful run are `failing`: what `F` lists is what still needs
    /// the operator; a successful retry of some items does not count),
    /// their task's type, and text in the task id, trigger, error or note.
    fn filtered_runs<'a>(&self, runs: &'a [RunRecord], text: &str) -> Vec<&'a RunRecord> {
        let filter = Filter::parse(text);
        if filter.is_empty() {
            return runs.iter().collect();
        }
        let mut last_success: HashMap<&str, i64> = HashMap::new();
        for run in runs
            .iter()
            .filter(|run| run.status == RunStatus::Succeeded && run.trigger != Trigger::Retry)
        {
            let newest = last_success
                .entry(run.task_id.as_str())
                .or_insert(run.run_id);
            *newest = (*newest).max(run.run_id);
        }
        let kinds = self.task_kinds(&filter);
        runs.iter()
            .filter(|run| {
                let status = run.status.as_str();
                let statuses: &[&str] = if run.status == RunStatus::Succeeded {
                    &[status, "ok"]
                } else {
                    &[status]
                };
                let kind = kinds.get(run.task_id.as_str()).copied().unwrap_or("");
                filter.holds(&Subject {
                    statuses,
                    failing: run_failing(run.status)
                        && last_success
                            .get(run.task_id.as_str())
                            .is_none_or(|success| *success < run.run_id),
                    kinds: &[kind],
                    texts: &[
                        &run.task_id,
                        run.trigger.as_str(),
                        run.error.as_deref().unwrap_or(""),
                        run.warning.as_deref().unwrap_or(""),
                    ],
                })
            })
            .collect()
    }

    /// Items pass on their status (`pending`, `gone`; pending ones are
    /// `failing`), their kind (`file`, `batch`) or their task's type, and
    /// text in the task id, item or error.
    fn filtered_items<'a>(&self, items: Vec<&'a FailedItem>) -> Vec<&'a FailedItem> {
        let filter = Filter::parse(&self.errors_filter);
        if filter.is_empty() {
            return items;
        }
        let kinds = self.task_kinds(&filter);
        items
            .into_iter()
            .filter(|item| {
                let kind = kinds.get(item.task_id.as_str()).copied().unwrap_or("");
                filter.holds(&Subject {
                    statuses: &[item.status.as_str()],
                    failing: item.status == crate::state::ItemStatus::Pending,
                    kinds: &[item.kind.as_str(), kind],
                    texts: &[&item.task_id, &item.key, &item.error],
                })
            })
            .collect()
    }

    fn task_keys(&self) -> Vec<String> {
        self.visible_tasks()
            .iter()
            .map(|task| task.id.clone())
            .collect()
    }

    fn error_keys(&self) -> Vec<i64> {
        self.visible_pending_items()
            .iter()
            .map(|item| item.id)
            .collect()
    }

    fn history_keys(&self) -> Vec<RunId> {
        self.visible_history()
            .iter()
            .map(|run| run.run_id)
            .collect()
    }

    fn run_keys(&self) -> Vec<RunId> {
        self.visible_runs().iter().map(|run| run.run_id).collect()
    }

    /// Puts the task list's cursor on `index` of the visible tasks, as the
    /// operator's choice (jumps, the palette).
    pub(super) fn choose_task(&mut self, index: usize) {
        let keys = self.task_keys();
        self.task_chosen.choose(&mut self.selected, index, &keys);
    }

    /// Before a message: notes cursors moved from outside `update` and
    /// keeps what settling compares against.
    pub(super) fn marks(&mut self) -> Marks {
        if self.selected != self.task_chosen.at {
            let keys = self.task_keys();
            self.task_chosen.notice_move(self.selected, &keys);
        }
        if self.errors_selected != self.errors_chosen.at {
            let keys = self.error_keys();
            self.errors_chosen.notice_move(self.errors_selected, &keys);
        }
        if self.history_selected != self.history_chosen.at {
            let keys = self.history_keys();
            self.history_chosen
                .notice_move(self.history_selected, &keys);
        }
        if self.runs_selected != self.runs_chosen.at {
            let keys = self.run_keys();
            self.runs_chosen.notice_move(self.runs_selected, &keys);
        }
        Marks {
            task_filter: self.task_filter.clone(),
            sort: self.task_sort,
            selected: self.selected,
            errors_filter: self.errors_filter.clone(),
            errors_selected: self.errors_selected,
            history_filter: self.history_filter.clone(),
            history_selected: self.history_selected,
            runs_filter: self.runs_filter.clone(),
            runs_selected: self.runs_selected,
        }
    }

    /// After a message: keeps each cursor on its chosen row (see
    /// [`Chosen`]). The task list in config order without a filter never
    /// reorders, so it is settled only when the cursor moved.
    pub(super) fn settle_cursors(&mut self, before: Marks) {
        let refiltered = before.task_filter != self.task_filter || before.sort != self.task_sort;
        if refiltered
            || self.selected != before.selected
            || !self.task_filter.is_empty()
            || self.task_sort != TaskSort::Config
        {
            let keys = self.task_keys();
            self.task_chosen
                .settle(&mut self.selected, before.selected, refiltered, &keys);
        }
        let refiltered = before.errors_filter != self.errors_filter;
        if refiltered || self.view == View::Errors {
            let keys = self.error_keys();
            self.errors_chosen.settle(
                &mut self.errors_selected,
                before.errors_selected,
                refiltered,
                &keys,
            );
        }
        let refiltered = before.history_filter != self.history_filter;
        if refiltered || self.view == View::History {
            let keys = self.history_keys();
            self.history_chosen.settle(
                &mut self.history_selected,
                before.history_selected,
                refiltered,
                &keys,
            );
        }
        let refiltered = before.runs_filter != self.runs_filter;
        if refiltered || self.view == View::Runs {
            let keys = self.run_keys();
            self.runs_chosen.settle(
                &mut self.runs_selected,
                before.runs_selected,
                refiltered,
                &keys,
            );
        }
    }
}
