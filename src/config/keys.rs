//! Console key bindings: the actions, their default keys, and the syntax of
//! a key in `[keys]` (`"s"`, `"S"`, `"enter"`, `"ctrl-x"`, `"f5"`).
//! Defaults avoid ctrl-b and ctrl-a, tmux's and screen's prefixes.

use crossterm::event::{KeyCode, KeyModifiers};

/// Every action a key can trigger: name, default key, help text.
pub const ACTIONS: &[(&str, &str, &str)] = &[
    ("start", "s", "start the selected task"),
    // Descriptions fit the help's column at 80 columns (29 characters).
    ("retry", "r", "retry failed items (previews)"),
    ("cancel", "c", "cancel the task's run (asks)"),
    ("abandon", "a", "errors: give up on an item"),
    ("pause", "p", "pause/resume the schedule"),
    ("open", "enter", "open the selected item"),
    ("back", "esc", "go back, close"),
    ("filter", "/", "filter the list; search logs"),
    ("sort", "o", "sort tasks: status, last, …"),
    ("focus", "tab", "move focus between panels"),
    ("down", "j", "move down"),
    ("up", "k", "move up"),
    ("top", "g", "go to the first line"),
    ("bottom", "G", "go to the last line"),
    ("tasks", "1", "tasks view"),
    ("errors", "2", "errors view"),
    ("history", "3", "history view"),
    ("logs", "4", "logs view"),
    ("runs", "5", "runs of every task"),
    ("failing_runs", "F", "failing runs (header count)"),
    ("follow", "f", "logs: follow new lines"),
    ("level", "l", "logs: cycle the level filter"),
    ("task_logs", "t", "logs: only the selected task"),
    ("next_match", "n", "logs: next search match"),
    ("previous_match", "N", "logs: previous search match"),
    ("help", "?", "this help"),
    ("quit", "q", "quit (asks if runs active)"),
];

pub fn action_names() -> Vec<&'static str> {
    ACTIONS.iter().map(|(name, _, _)| *name).collect()
}

/// A key with its modifiers, as crossterm reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeySpec {
    /// Normalizes a key event: shift is implied by an upper-case letter.
    pub fn from_event(code: KeyCode, modifiers: KeyModifiers) -> Self {
        let modifiers = match code {
            KeyCode::Char(_) => modifiers - KeyModifiers::SHIFT,
            _ => modifiers,
        };
        Self { code, modifiers }
    }

    /// How the key is written in help: `s`, `enter`, `ctrl-x`.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Tab => "tab".into(),
            KeyCode::BackTab => "shift-tab".into(),
            KeyCode::Backspace => "backspace".into(),
            KeyCode::Delete => "delete".into(),
            KeyCode::Up => "up".into(),
            KeyCode::Down => "down".into(),
            KeyCode::Left => "left".into(),
            KeyCode::Right => "right".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::PageUp => "pageup".into(),
            KeyCode::PageDown => "pagedown".into(),
            KeyCode::F(n) => format!("f{n}"),
            other => format!("{other:?}").to_lowercase(),
        };
        let mut label = String::new();
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            label.push_str("ctrl-");
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            label.push_str("alt-");
        }
        label + &base
    }
}

/// Parses a key as written in `[keys]`.
pub fn parse_key(text: &str) -> Result<KeySpec, String> {
    let mut modifiers = KeyModifiers::NONE;
    let mut rest = text;
    loop {
        if let Some(after) = rest.strip_prefix("ctrl-") {
            modifiers |= KeyModifiers::CONTROL;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("alt-") {
            modifiers |= KeyModifiers::ALT;
            rest = after;
        } else {
            break;
        }
    }
    let code = match rest {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "delete" => KeyCode::Delete,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        other if other.chars().count() == 1 => KeyCode::Char(other.chars().next().unwrap_or(' ')),
        other => match other.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
            Some(n) if (1..=12).contains(&n) => KeyCode::F(n),
            _ => {
                return Err(format!(
                    "unknown key `{text}`; write a character, enter, esc, tab, space, up, down, f1…f12, optionally with ctrl- or alt-"
                ));
            }
        },
    };
    Ok(KeySpec { code, modifiers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_label_back() {
        for text in ["s", "G", "enter", "ctrl-x", "alt-f5", "?", "/", "space"] {
            assert_eq!(parse_key(text).expect(text).label(), text);
        }
        assert!(parse_key("hyper-x").is_err());
    }

    #[test]
    fn defaults_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for (name, key, _) in ACTIONS {
            let spec = parse_key(key).expect(name);
            assert!(seen.insert(spec), "two actions share {key}");
            assert!(
                !(spec.modifiers.contains(KeyModifiers::CONTROL)
                    && matches!(spec.code, KeyCode::Char('a' | 'b')))
            );
        }
    }
}
