//! Finding trouble among many tasks: a task's health (the worst outcome
//! not yet resolved), the filter every list shares (`status:failed`,
//! `kind:table`, `!text`), jumping between failing tasks and the `:`
//! command palette.

use super::app::{App, Command, Input, READ_ONLY, View};
use super::lists::TaskSort;
use crate::run::{RunStatus, Trigger};

/// What a task's state is, as the operator means it: a failed retry of a
/// partial run leaves the task partial (its other items are still fine),
/// and pending failed items keep it partial until they are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskHealth {
    Failed,
    Partial,
    Blocked,
    Cancelled,
    Running,
    Succeeded,
    NeverRun,
}

impl TaskHealth {
    pub fn of(task: &super::app::TaskState) -> Self {
        if task.active.is_some() {
            return Self::Running;
        }
        if task.blocked_by.is_some() {
            return Self::Blocked;
        }
        let Some(last) = &task.last else {
            return Self::NeverRun;
        };
        match last.status {
            // A retry that failed or was cancelled leaves the task where its
            // last full run left it: with items still pending.
            RunStatus::Failed | RunStatus::Interrupted | RunStatus::Cancelled
                if last.trigger == Trigger::Retry && task.pending_failures > 0 =>
            {
                Self::Partial
            }
            RunStatus::Failed | RunStatus::Interrupted => Self::Failed,
            RunStatus::Partial => Self::Partial,
            RunStatus::Blocked => Self::Blocked,
            RunStatus::Cancelled => Self::Cancelled,
            _ if task.pending_failures > 0 => Self::Partial,
            RunStatus::Running | RunStatus::Queued | RunStatus::Submitted => Self::Running,
            RunStatus::Succeeded => Self::Succeeded,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Partial => "partial",
            Self::Blocked => "blocked",
            Self::Cancelled => "cancelled",
            Self::Running => "running",
            Self::Succeeded => "ok",
            Self::NeverRun => "never",
        }
    }

    /// Needs the operator: what `]` and `[` jump between.
    pub fn is_failing(self) -> bool {
        matches!(self, Self::Failed | Self::Partial | Self::Blocked)
    }
}

/// One word of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// `status:NAME`: a status name starts with NAME (`status:fail`);
    /// `status:failing` is every row that needs the operator.
    Status(String),
    /// `kind:NAME`: a kind (task type, item kind) contains NAME
    /// (`kind:table`).
    Kind(String),
    /// Text in the row (a task's id or name, a run's task and error, …).
    Text(String),
}

/// What a filter looks at in one row of a list.
pub struct Subject<'a> {
    /// Names `status:` matches by prefix (a run: `succeeded` and `ok`).
    pub statuses: &'a [&'a str],
    /// Needs the operator: what `status:failing` keeps.
    pub failing: bool,
    /// Names `kind:` looks in.
    pub kinds: &'a [&'a str],
    /// What plain words are looked for in, ignoring case.
    pub texts: &'a [&'a str],
}

/// A list's filter as typed: words that must all hold; `!` before a word
/// turns it around (`!nightly`, `!status:ok`). The task list, errors,
/// history and runs views share it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<(bool, Term)>,
}

impl Filter {
    pub fn parse(text: &str) -> Self {
        let terms = text
            .split_whitespace()
            .filter_map(|word| {
                let (negated, word) = match word.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, word),
                };
                let word = word.to_lowercase();
                let term = if let Some(status) = word.strip_prefix("status:") {
                    Term::Status(status.to_string())
                } else if let Some(kind) = word.strip_prefix("kind:") {
                    Term::Kind(kind.to_string())
                } else {
                    Term::Text(word)
                };
                let empty = matches!(&term, Term::Status(s) | Term::Kind(s) | Term::Text(s) if s.is_empty());
                (!empty).then_some((negated, term))
            })
            .collect();
        Self { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether a `kind:` word is in it (so callers look kinds up only
    /// when they are asked for).
    pub fn uses_kind(&self) -> bool {
        self.terms
            .iter()
            .any(|(_, term)| matches!(term, Term::Kind(_)))
    }

    pub fn holds(&self, subject: &Subject) -> bool {
        self.terms.iter().all(|(negated, term)| {
            let holds = match term {
                Term::Status(name) if name == "failing" => subject.failing,
                Term::Status(name) => subject
                    .statuses
                    .iter()
                    .any(|status| status.starts_with(name.as_str())),
                Term::Kind(name) => subject
                    .kinds
                    .iter()
                    .any(|kind| kind.contains(name.as_str())),
                Term::Text(text) => subject
                    .texts
                    .iter()
                    .any(|field| contains_ignoring_case(field, text)),
            };
            holds != *negated
        })
    }

    /// Whether a task passes: its health, its type, its id and name.
    pub fn matches(&self, task: &super::app::TaskState) -> bool {
        if self.is_empty() {
            return true;
        }
        let health = TaskHealth::of(task);
        self.holds(&Subject {
            statuses: &[health.name()],
            failing: health.is_failing(),
            kinds: &[task.kind.name()],
            texts: &[&task.id, &task.name],
        })
    }
}

/// `needle` is already lower case.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && !haystack.bytes().any(|b| b.is_ascii_uppercase()) {
        haystack.contains(needle)
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

/// Views the palette opens by name.
const VIEWS: [&str; 5] = ["tasks", "errors", "history", "logs", "runs"];
/// Actions the palette runs on a task named after them.
const ACTIONS: [&str; 2] = ["retry-all", "pause"];

impl App {
    /// Moves the cursor to the next (or previous) failing task in the
    /// list, wrapping around; says so when none is failing.
    pub(super) fn jump_to_failing(&mut self, forward: bool) {
        let failing: Vec<usize> = self
            .visible_tasks()
            .iter()
            .enumerate()
            .filter(|(_, task)| TaskHealth::of(task).is_failing())
            .map(|(index, _)| index)
            .collect();
        let next = if forward {
            failing
                .iter()
                .copied()
                .find(|index| *index > self.selected)
                .or(failing.first().copied())
        } else {
            failing
                .iter()
                .rev()
                .copied()
                .find(|index| *index < self.selected)
                .or(failing.last().copied())
        };
        match next {
            Some(index) => {
                self.choose_task(index);
                self.view = View::Tasks;
                let position = failing.iter().position(|i| *i == index).unwrap_or(0) + 1;
                self.set_status(format!("failing task {position} of {}", failing.len()));
            }
            None => self.set_status("no failing task in the list"),
        }
    }

    /// Everything the palette can complete to, in the order offered.
    pub fn palette_candidates(&self) -> Vec<String> {
        let mut candidates: Vec<String> = VIEWS.iter().map(|view| view.to_string()).collect();
        candidates.extend(self.tasks.iter().map(|task| task.id.clone()));
        for action in ACTIONS {
            candidates.extend(
                self.tasks
                    .iter()
                    .map(|task| format!("{action} {}", task.id)),
            );
        }
        candidates.extend(
            TaskSort::ALL
                .iter()
                .map(|sort| format!("sort {}", sort.name())),
        );
        candidates.extend(
            super::theme::ThemeName::NAMES
                .iter()
                .map(|name| format!("theme {name}")),
        );
        candidates
    }

    /// Tab in the palette: the longest text every candidate starting
    /// with what was typed shares (the whole candidate when only one).
    pub(super) fn complete_palette(&mut self) {
        let Some(Input::Command(text)) = &self.input else {
            return;
        };
        let typed = text.trim_start().to_string();
        let matching: Vec<String> = self
            .palette_candidates()
            .into_iter()
            .filter(|candidate| candidate.starts_with(&typed))
            .collect();
        let Some(first) = matching.first() else {
            self.set_status(format!("nothing starts with `{typed}`"));
            return;
        };
        let mut common = first.clone();
        for candidate in &matching[1..] {
            let shared = common
                .chars()
                .zip(candidate.chars())
                .take_while(|(a, b)| a == b)
                .count();
            common = common.chars().take(shared).collect();
        }
        if matching.len() > 1 {
            let shown: Vec<&str> = matching.iter().take(5).map(String::as_str).collect();
            let more = matching.len().saturating_sub(5);
            let tail = if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            };
            self.set_status(format!("{}{tail}", shown.join("  ")));
        }
        self.input = Some(Input::Command(common));
    }

    /// Enter in the palette: a view name opens the view, a task id selects
    /// the task (clearing a filter that hides it), `retry-all TASK` and
    /// `pause TASK` act on it.
    pub(super) fn run_palette(&mut self, text: &str) -> Vec<Command> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let action = |name| super::keymap::Action::from_palette(name);
        match words.as_slice() {
            [] => Vec::new(),
            [view] if VIEWS.contains(view) => match action(view) {
                Some(action) => self.on_action(action),
                None => Vec::new(),
            },
            [task] if self.select_task(task) => Vec::new(),
            ["sort", order] => {
                match TaskSort::from_name(order) {
                    Some(sort) => {
                        self.sort_tasks(sort);
                        self.view = View::Tasks;
                    }
                    None => self.set_status(format!(
                        "unknown sort `{order}`; try :sort status, last, next, duration or config"
                    )),
                }
                Vec::new()
            }
            ["theme", name] => {
                match super::theme::ThemeName::parse(name) {
                    Some(theme) => {
                        self.theme = theme;
                        self.set_status(format!("theme {name}"));
                    }
                    None => self.set_status(format!(
                        "no theme `{name}`; themes are {}",
                        super::theme::ThemeName::NAMES.join(", ")
                    )),
                }
                Vec::new()
            }
            [verb, task] if ACTIONS.contains(verb) => {
                if !self.select_task(task) {
                    self.set_status(format!("no task `{task}`; tab completes task ids"));
                    return Vec::new();
                }
                if self.read_only {
                    self.set_status(READ_ONLY);
                    return Vec::new();
                }
                match *verb {
                    "retry-all" => {
                        self.retry_selected_task();
                        Vec::new()
                    }
                    _ => self.on_action(super::keymap::Action::Pause),
                }
            }
            _ => {
                self.set_status(format!(
                    "unknown command `{}`; try a task id, :errors, :history, :logs, :runs, :sort status, :retry-all TASK, :pause TASK, :theme dark|light (tab completes)",
                    text.trim()
                ));
                Vec::new()
            }
        }
    }

    /// Selects a task by id in the task list; false when there is none.
    fn select_task(&mut self, task_id: &str) -> bool {
        if !self.tasks.iter().any(|task| task.id == task_id) {
            return false;
        }
        if !self.visible_tasks().iter().any(|task| task.id == task_id) {
            self.task_filter.clear();
        }
        if let Some(index) = self
            .visible_tasks()
            .iter()
            .position(|task| task.id == task_id)
        {
            self.choose_task(index);
        }
        self.view = View::Tasks;
        true
    }
}
