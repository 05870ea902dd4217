//! Keys to actions, built from the config's bindings (defaults merged with
//! `[keys]`). Arrow keys, page keys and home/end always work too.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::keys::{ACTIONS, KeySpec, parse_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Start,
    Retry,
    /// Give up on the selected failed item (errors view), as `syncdeck
    /// abandon` does.
    Abandon,
    Cancel,
    Pause,
    Open,
    Back,
    Filter,
    Sort,
    Focus,
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    Tasks,
    Errors,
    History,
    Logs,
    Runs,
    /// The runs view filtered to failed, partial and blocked runs.
    FailingRuns,
    Follow,
    Level,
    TaskLogs,
    NextMatch,
    PreviousMatch,
    Help,
    Quit,
}

impl Action {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "start" => Self::Start,
            "retry" => Self::Retry,
            "abandon" => Self::Abandon,
            "cancel" => Self::Cancel,
            "pause" => Self::Pause,
            "open" => Self::Open,
            "back" => Self::Back,
            "filter" => Self::Filter,
            "sort" => Self::Sort,
            "focus" => Self::Focus,
            "down" => Self::Down,
            "up" => Self::Up,
            "top" => Self::Top,
            "bottom" => Self::Bottom,
            "tasks" => Self::Tasks,
            "errors" => Self::Errors,
            "history" => Self::History,
            "logs" => Self::Logs,
            "runs" => Self::Runs,
            "failing_runs" => Self::FailingRuns,
            "follow" => Self::Follow,
            "level" => Self::Level,
            "task_logs" => Self::TaskLogs,
            "next_match" => Self::NextMatch,
            "previous_match" => Self::PreviousMatch,
            "help" => Self::Help,
            "quit" => Self::Quit,
            _ => return None,
        })
    }

    /// The action a palette word names (`errors`, `history`, …).
    pub(super) fn from_palette(name: &str) -> Option<Self> {
        Self::from_name(name)
    }

    /// Actions that change something; refused by a read-only console.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Self::Start | Self::Retry | Self::Abandon | Self::Cancel | Self::Pause
        )
    }
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: HashMap<KeySpec, Action>,
    /// Action name → key label, in help order.
    labels: Vec<(&'static str, String, &'static str)>,
}

impl Keymap {
    /// `bound` maps action names to keys (the config's merged `keys`).
    pub fn new(bound: &std::collections::BTreeMap<String, String>) -> Self {
        let mut bindings = HashMap::new();
        let mut labels = Vec::new();
        for (name, default, help) in ACTIONS {
            let key = bound.get(*name).map(String::as_str).unwrap_or(default);
            let spec = parse_key(key).or_else(|_| parse_key(default));
            if let (Ok(spec), Some(action)) = (spec, Action::from_name(name)) {
                bindings.insert(spec, action);
                labels.push((*name, spec.label(), *help));
            }
        }
        let fixed = [
            (KeyCode::Down, Action::Down),
            (KeyCode::Up, Action::Up),
            (KeyCode::Home, Action::Top),
            (KeyCode::End, Action::Bottom),
            (KeyCode::PageDown, Action::PageDown),
            (KeyCode::PageUp, Action::PageUp),
        ];
        for (code, action) in fixed {
            bindings
                .entry(KeySpec {
                    code,
                    modifiers: KeyModifiers::NONE,
                })
                .or_insert(action);
        }
        Self { bindings, labels }
    }

    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        self.bindings
            .get(&KeySpec::from_event(key.code, key.modifiers))
            .copied()
    }

    /// The key label of an action, for hints: `s`, `enter`.
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(action, _, _)| *action == name)
            .map(|(_, label, _)| label.as_str())
            .unwrap_or("?")
    }

    /// (key, action, help) for the help overlay.
    pub fn help(&self) -> impl Iterator<Item = (&str, &'static str, &'static str)> {
        self.labels
            .iter()
            .map(|(name, label, help)| (label.as_str(), *name, *help))
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Self::new(&Default::default())
    }
}
