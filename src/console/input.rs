//! What the operator's keys do to the console's model: key bindings,
//! confirmations, typed input, selection and paging.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::*;
use super::keymap::Action;
use crate::run::event::EngineCommand;

/// The runs view's filter `F` sets: the failures that still need someone.
const FAILING_RUNS: &str = "status:failing";

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
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
            return self.on_unbound_key(key);
        };
        if self.read_only && action.is_mutating() {
            self.set_status(READ_ONLY);
            return Vec::new();
        }
        self.on_action(action)
    }

    pub(super) fn on_overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Command> {
        match overlay {
            Overlay::Help => {
                self.overlay = None;
                Vec::new()
            }
            Overlay::FullText(open) => {
                self.on_full_text_key(open, key);
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

    pub(super) fn confirmed(&mut self, confirm: Confirm) -> Vec<Command> {
        match confirm {
            Confirm::CancelRun { task_id, run_id } => {
                if let Some(active) = self.active_run_mut(&task_id, run_id) {
                    active.cancel_requested = true;
                }
                self.set_status(format!("cancelling {task_id} run {run_id}…"));
                vec![Command::Engine(EngineCommand::CancelRun { run_id })]
            }
            Confirm::Quit { .. } => vec![Command::Quit],
            Confirm::StartDespite { task_id, .. } => {
                self.set_status(format!("starting {task_id}"));
                vec![Command::Engine(EngineCommand::StartTask { task_id })]
            }
            Confirm::Abandon { task_id, items } => {
                self.set_status(format!(
                    "abandoned {} item(s) of {task_id}; errors --all lists them",
                    items.len()
                ));
                let item_ids = items.into_iter().map(|(id, _)| id).collect();
                vec![Command::AbandonItems { task_id, item_ids }]
            }
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

    /// Keys no action is bound to: `:` opens the palette, `]` and `[`
    /// jump to the next and previous failing task.
    fn on_unbound_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char(':') => self.input = Some(Input::Command(String::new())),
            KeyCode::Char(']') => self.jump_to_failing(true),
            KeyCode::Char('[') => self.jump_to_failing(false),
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_input_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Some(input) = &mut self.input else {
            return Vec::new();
        };
        if let Input::Command(text) = input {
            match key.code {
                KeyCode::Tab => self.complete_palette(),
                KeyCode::Enter => {
                    let text = text.clone();
                    self.input = None;
                    return self.run_palette(&text);
                }
                KeyCode::Esc => self.input = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return Vec::new();
        }
        let text = match input {
            Input::TaskFilter(text)
            | Input::ListFilter(text)
            | Input::LogSearch(text)
            | Input::Command(text) => text,
        };
        match key.code {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Esc => {
                match input {
                    Input::TaskFilter(_) => self.task_filter.clear(),
                    Input::ListFilter(_) => {
                        if let Some(filter) = self.list_filter_mut() {
                            filter.clear();
                        }
                    }
                    _ => {
                        self.log_view.search = None;
                        self.log_view.current_match = None;
                    }
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
        // Apply as the operator types; the cursor stays on the chosen
        // row while it matches (see `lists::Chosen`).
        match input.clone() {
            Input::TaskFilter(text) => self.task_filter = text,
            Input::ListFilter(text) => {
                if let Some(filter) = self.list_filter_mut() {
                    *filter = text;
                }
            }
            Input::LogSearch(text) => {
                self.log_view.search = (!text.is_empty()).then_some(text);
                self.log_view.current_match = None;
                self.jump_to_match(true);
            }
            Input::Command(_) => {}
        }
        Vec::new()
    }

    pub(super) fn request_quit(&mut self) -> Vec<Command> {
        // Quitting cancels only this console's own runs: runs followed
        // through the store go on in the process that runs them.
        let active = if self.read_only { 0 } else { self.own_runs() };
        if active > 0 {
            self.overlay = Some(Overlay::Confirm(Confirm::Quit { active }));
            Vec::new()
        } else {
            vec![Command::Quit]
        }
    }

    pub(super) fn on_action(&mut self, action: Action) -> Vec<Command> {
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
            // `5` after `F` shows every run again; a filter typed in
            // the view stays.
            Action::Runs if self.runs_filter == FAILING_RUNS => return self.open_runs(Some("")),
            Action::Runs => return self.open_runs(None),
            Action::FailingRuns => return self.open_runs(Some(FAILING_RUNS)),
            Action::Sort => {
                let sort = self.task_sort.next();
                self.sort_tasks(sort);
            }
            Action::Open => match self.view {
                View::Tasks if self.focus == Focus::Tasks && self.selected_task().is_some() => {
                    self.opened_run = None;
                    self.view = View::Detail
                }
                View::History => {
                    let run = self.visible_history().get(self.history_selected).copied();
                    if let Some(run) = run.cloned() {
                        self.open_run(run, View::History);
                    }
                }
                View::Runs => {
                    let run = self.visible_runs().get(self.runs_selected).copied();
                    if let Some(run) = run.cloned() {
                        self.open_run(run, View::Runs);
                    }
                }
                _ => {
                    if let Some(open) = self.full_text_here() {
                        self.overlay = Some(Overlay::FullText(open));
                    }
                }
            },
            Action::Back => {
                if self.view == View::Detail && self.opened_run.take().is_some() {
                    self.view = self.opened_from;
                } else if self.view == View::Tasks && !self.task_filter.is_empty() {
                    self.task_filter.clear();
                } else if let Some(filter) = self.list_filter_mut().filter(|f| !f.is_empty()) {
                    filter.clear();
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
            Action::PageDown => self.move_by(self.page_rows.max(1) as i64),
            Action::PageUp => self.move_by(-(self.page_rows.max(1) as i64)),
            Action::Top => self.move_to(false),
            Action::Bottom => self.move_to(true),
            Action::Filter => {
                self.input = Some(if self.logs_focused() {
                    Input::LogSearch(self.log_view.search.clone().unwrap_or_default())
                } else if let Some(filter) = self.list_filter_mut() {
                    Input::ListFilter(filter.clone())
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
            Action::Abandon => self.abandon_selected_item(),
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

    pub(super) fn logs_focused(&self) -> bool {
        self.view == View::Logs || (self.view == View::Tasks && self.focus == Focus::Logs)
    }

    /// The filter of the list on screen (errors, history, runs), which
    /// `/` edits.
    pub(super) fn list_filter_mut(&mut self) -> Option<&mut String> {
        match self.view {
            View::Errors => Some(&mut self.errors_filter),
            View::History => Some(&mut self.history_filter),
            View::Runs => Some(&mut self.runs_filter),
            _ => None,
        }
    }

    /// Opens the runs view (with `filter`, when given) and loads it.
    pub(super) fn open_runs(&mut self, filter: Option<&str>) -> Vec<Command> {
        self.view = View::Runs;
        if let Some(filter) = filter {
            self.runs_filter = filter.to_string();
        }
        vec![Command::LoadRunList]
    }

    /// Shows a past run's detail; `esc` goes back to `from`.
    pub(super) fn open_run(&mut self, run: crate::run::RunRecord, from: View) {
        if !self.tasks.iter().any(|task| task.id == run.task_id) {
            self.set_status(format!(
                "{} is no longer in the config; `syncdeck history {}` shows its runs",
                run.task_id, run.task_id
            ));
            return;
        }
        self.opened_run = Some(run);
        self.opened_from = from;
        self.view = View::Detail;
    }

    /// Sorts the task list; the cursor stays on its task.
    pub(super) fn sort_tasks(&mut self, sort: super::lists::TaskSort) {
        self.task_sort = sort;
        self.set_status(match sort.describe() {
            Some(order) => format!("tasks sorted {order}"),
            None => "tasks in config order".to_string(),
        });
    }

    pub(super) fn open_history(&mut self) -> Vec<Command> {
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

    pub(super) fn move_by(&mut self, delta: i64) {
        if self.logs_focused() {
            let offset = self.log_view.offset as i64 - delta;
            self.log_view.offset = offset.max(0) as usize;
            self.log_view.follow = self.log_view.offset == 0;
            return;
        }
        let (cursor, len) = match self.view {
            View::Errors => {
                let len = self.visible_pending_items().len();
                (&mut self.errors_selected, len)
            }
            View::History => {
                let len = self.visible_history().len();
                (&mut self.history_selected, len)
            }
            View::Runs => {
                let len = self.visible_runs().len();
                (&mut self.runs_selected, len)
            }
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

    pub(super) fn move_to(&mut self, end: bool) {
        if self.logs_focused() {
            self.log_view.offset = if end { 0 } else { self.logs.len() };
            self.log_view.follow = end;
            return;
        }
        self.move_by(if end { i64::MAX / 4 } else { -(i64::MAX / 4) });
    }

    /// Moves to the next (or previous) line matching the search.
    pub(super) fn jump_to_match(&mut self, forward: bool) {
        if self.log_view.search.is_none() {
            return;
        }
        let matches: Vec<usize> = {
            let ring = self.logs.lock();
            ring.lines
                .iter()
                .filter(|line| self.log_view.shows(line))
                .enumerate()
                .filter(|(_, line)| self.log_view.matches(line))
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

    pub(super) fn start_selected(&mut self) -> Vec<Command> {
        let Some(task) = self.selected_task() else {
            return Vec::new();
        };
        if task.active.is_some() {
            let message = format!("{} is already running", task.id);
            self.set_status(message);
            return Vec::new();
        }
        let task_id = task.id.clone();
        // As on the command line: a dependency that did not succeed stops
        // the start, unless the operator says otherwise.
        let failed = task.dependencies.iter().find_map(|dependency| {
            let last = self
                .tasks
                .iter()
                .find(|t| &t.id == dependency)?
                .last
                .as_ref()?;
            (!last.status.is_success()).then(|| (dependency.clone(), last.status))
        });
        if let Some((dependency, status)) = failed {
            self.overlay = Some(Overlay::Confirm(Confirm::StartDespite {
                task_id,
                dependency,
                status,
            }));
            return Vec::new();
        }
        self.set_status(format!("starting {task_id}"));
        vec![Command::Engine(EngineCommand::StartTask { task_id })]
    }

    pub(super) fn ask_cancel(&mut self) {
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

    pub(super) fn retry_selected_task(&mut self) {
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

    pub(super) fn retry_selected_item(&mut self) -> Vec<Command> {
        let Some(item) = self
            .visible_pending_items()
            .get(self.errors_selected)
            .copied()
        else {
            self.set_status("nothing to retry");
            return Vec::new();
        };
        let (task_id, items) = (item.task_id.clone(), vec![(item.id, item.key.clone())]);
        if self.read_only {
            self.set_status(READ_ONLY);
            return Vec::new();
        }
        self.ask_retry(task_id, items);
        Vec::new()
    }

    /// Asks before giving up on the failed item selected in the errors
    /// view: runs and retries skip it from then on.
    pub(super) fn abandon_selected_item(&mut self) {
        if self.view != View::Errors {
            let errors = self.keymap.label("errors");
            self.set_status(format!(
                "abandon gives up on a failed item: select it in the errors view ({errors})"
            ));
            return;
        }
        let Some(item) = self
            .visible_pending_items()
            .get(self.errors_selected)
            .copied()
        else {
            self.set_status("nothing to abandon");
            return;
        };
        // A read-only console never gets here: abandoning is mutating.
        let (task_id, items) = (item.task_id.clone(), vec![(item.id, item.key.clone())]);
        self.overlay = Some(Overlay::Confirm(Confirm::Abandon { task_id, items }));
    }

    pub(super) fn ask_retry(&mut self, task_id: String, items: Vec<(i64, String)>) {
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
