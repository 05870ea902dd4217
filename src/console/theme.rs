//! Colours and glyphs. With `NO_COLOR` set, only bold, dim and reverse
//! are used, so every state still reads by its glyph and words.

use ratatui::style::{Color, Modifier, Style};

use crate::run::RunStatus;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(if self.color {
            Modifier::empty()
        } else {
            Modifier::BOLD
        })
    }

    pub fn running(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn highlight(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Yellow)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
        }
    }

    pub fn status(&self, status: RunStatus) -> Style {
        match status {
            RunStatus::Succeeded => self.ok(),
            RunStatus::Partial | RunStatus::Interrupted | RunStatus::Blocked => self.warn(),
            RunStatus::Failed => self.error(),
            RunStatus::Running | RunStatus::Queued | RunStatus::Submitted => self.running(),
            RunStatus::Cancelled => self.dim(),
        }
    }
}

pub fn glyph(status: Option<RunStatus>) -> &'static str {
    match status {
        None => "◌",
        Some(RunStatus::Running | RunStatus::Queued) => "●",
        Some(RunStatus::Succeeded) => "✔",
        Some(RunStatus::Partial) => "◐",
        Some(RunStatus::Failed) => "✖",
        Some(RunStatus::Cancelled) => "■",
        Some(RunStatus::Interrupted) => "!",
        Some(RunStatus::Submitted) => "◔",
        Some(RunStatus::Blocked) => "⊘",
    }
}
