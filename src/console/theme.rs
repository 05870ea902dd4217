//! Colours and glyphs. Two themes, dark and light, each with explicit RGB
//! colours on an explicit background, so the contrast of every text colour
//! is known (a test checks it against WCAG's 4.5:1). With `NO_COLOR` set,
//! only bold, dim and reverse are used, so every state still reads by its
//! glyph and words.

use ratatui::style::{Color, Modifier, Style};

pub use crate::config::ThemeName;
use crate::run::RunStatus;

/// The colours of one theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub background: Color,
    pub text: Color,
    /// Secondary text: labels, ages, kinds, borders of unfocused panels.
    pub dim: Color,
    pub title: Color,
    pub key: Color,
    pub ok: Color,
    pub warn: Color,
    pub error: Color,
    pub running: Color,
    /// A search match: `match_text` on `match_background`.
    pub match_text: Color,
    pub match_background: Color,
}

impl Palette {
    pub const DARK: Self = Self {
        background: Color::Rgb(0x1c, 0x1c, 0x1c),
        text: Color::Rgb(0xd0, 0xd0, 0xd0),
        dim: Color::Rgb(0x8a, 0x8a, 0x8a),
        title: Color::Rgb(0x5f, 0xd7, 0xff),
        key: Color::Rgb(0xff, 0xd7, 0x5f),
        ok: Color::Rgb(0x87, 0xd7, 0x87),
        warn: Color::Rgb(0xff, 0xaf, 0x5f),
        error: Color::Rgb(0xff, 0x87, 0x87),
        running: Color::Rgb(0x5f, 0xd7, 0xff),
        match_text: Color::Rgb(0x1c, 0x1c, 0x1c),
        match_background: Color::Rgb(0xff, 0xd7, 0x5f),
    };

    pub const LIGHT: Self = Self {
        background: Color::Rgb(0xfa, 0xfa, 0xfa),
        text: Color::Rgb(0x1c, 0x1c, 0x1c),
        dim: Color::Rgb(0x5f, 0x5f, 0x5f),
        title: Color::Rgb(0x00, 0x5f, 0x87),
        key: Color::Rgb(0x87, 0x45, 0x00),
        ok: Color::Rgb(0x00, 0x6f, 0x00),
        warn: Color::Rgb(0x87, 0x45, 0x00),
        error: Color::Rgb(0xaf, 0x00, 0x00),
        running: Color::Rgb(0x00, 0x5f, 0x87),
        match_text: Color::Rgb(0x1c, 0x1c, 0x1c),
        match_background: Color::Rgb(0xff, 0xd7, 0x5f),
    };

    pub fn of(name: ThemeName) -> Self {
        match name {
            ThemeName::Dark => Self::DARK,
            ThemeName::Light => Self::LIGHT,
        }
    }

    /// Every text colour with a name, for the contrast check.
    pub fn text_colours(&self) -> [(&'static str, Color); 8] {
        [
            ("text", self.text),
            ("dim", self.dim),
            ("title", self.title),
            ("key", self.key),
            ("ok", self.ok),
            ("warn", self.warn),
            ("error", self.error),
            ("running", self.running),
        ]
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
    pub palette: Palette,
}

impl Theme {
    /// The named theme, in colour unless `NO_COLOR` is set.
    pub fn from_env(name: ThemeName) -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
            palette: Palette::of(name),
        }
    }

    /// No colours at all: what `NO_COLOR` gives, and what snapshots use.
    pub fn plain() -> Self {
        Self {
            color: false,
            palette: Palette::DARK,
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    /// The whole screen's text on the theme's background.
    pub fn base(&self) -> Style {
        if self.color {
            Style::default()
                .fg(self.palette.text)
                .bg(self.palette.background)
        } else {
            Style::default()
        }
    }

    pub fn title(&self) -> Style {
        self.fg(self.palette.title).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(self.palette.dim)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn key(&self) -> Style {
        self.fg(self.palette.key).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(self.palette.ok)
    }

    pub fn warn(&self) -> Style {
        self.fg(self.palette.warn)
    }

    pub fn error(&self) -> Style {
        self.fg(self.palette.error).add_modifier(if self.color {
            Modifier::empty()
        } else {
            Modifier::BOLD
        })
    }

    pub fn running(&self) -> Style {
        self.fg(self.palette.running)
    }

    pub fn highlight(&self) -> Style {
        if self.color {
            Style::default()
                .fg(self.palette.match_text)
                .bg(self.palette.match_background)
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

/// WCAG 2.x contrast ratio of two RGB colours (1 to 21); none for a
/// colour that is not RGB (its look depends on the terminal).
pub fn contrast_ratio(a: Color, b: Color) -> Option<f64> {
    let (la, lb) = (relative_luminance(a)?, relative_luminance(b)?);
    let (light, dark) = if la > lb { (la, lb) } else { (lb, la) };
    Some((light + 0.05) / (dark + 0.05))
}

fn relative_luminance(color: Color) -> Option<f64> {
    let Color::Rgb(r, g, b) = color else {
        return None;
    };
    let channel = |value: u8| {
        let c = f64::from(value) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    Some(0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG AA for normal text: 4.5:1. Dim text is text the operator
    /// reads too (ages, kinds, labels), so it is held to the same bar.
    const MINIMUM: f64 = 4.5;

    #[test]
    fn every_text_colour_is_readable_on_its_themes_background() {
        for name in [ThemeName::Dark, ThemeName::Light] {
            let palette = Palette::of(name);
            for (what, colour) in palette.text_colours() {
                let ratio = contrast_ratio(colour, palette.background)
                    .unwrap_or_else(|| panic!("{name:?} {what} is not an RGB colour"));
                assert!(
                    ratio >= MINIMUM,
                    "{what} text in the {} theme has contrast {ratio:.2}:1 on its background, under {MINIMUM}:1",
                    name.name()
                );
            }
            let ratio =
                contrast_ratio(palette.match_text, palette.match_background).unwrap_or_default();
            assert!(
                ratio >= MINIMUM,
                "a search match in the {} theme has contrast {ratio:.2}:1",
                name.name()
            );
        }
    }

    #[test]
    fn contrast_ratio_matches_wcag_reference_values() {
        let black = Color::Rgb(0, 0, 0);
        let white = Color::Rgb(255, 255, 255);
        let ratio = contrast_ratio(black, white).unwrap_or_default();
        assert!((ratio - 21.0).abs() < 0.01, "{ratio}");
        // #777777 on white is the classic just-under-AA grey: 4.48:1.
        let grey = contrast_ratio(Color::Rgb(0x77, 0x77, 0x77), white).unwrap_or_default();
        assert!((grey - 4.48).abs() < 0.01, "{grey}");
        assert_eq!(contrast_ratio(Color::DarkGray, white), None);
    }
}
