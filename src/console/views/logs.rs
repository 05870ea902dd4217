//! Log lines from the in-memory buffer (this console's own, and other
//! processes' read from the log folder, marked with their pid): follow mode, level and task
//! filters, and search that highlights matches without hiding other lines.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use crate::console::app::App;
use crate::console::lists::position;
use crate::console::theme::Theme;
use crate::logging::LogLine;

pub struct LogsView<'a> {
    pub app: &'a App,
    pub theme: Theme,
    pub focused: bool,
    /// The full-screen view (the title lists every filter).
    pub full: bool,
}

fn level_style(level: tracing::Level, theme: Theme) -> Style {
    match level {
        tracing::Level::ERROR => theme.error(),
        tracing::Level::WARN => theme.warn(),
        tracing::Level::INFO => Style::default(),
        _ => theme.dim(),
    }
}

/// Splits `text` into spans, highlighting case-insensitive `needle` matches.
fn highlighted(text: &str, needle: Option<&str>, theme: Theme) -> Vec<Span<'static>> {
    let Some(needle) = needle.filter(|needle| !needle.is_empty()) else {
        return vec![Span::raw(text.to_string())];
    };
    let lower = text.to_lowercase();
    let needle = needle.to_lowercase();
    if lower.len() != text.len() {
        // Case folding changed byte lengths: highlight nothing rather than cut a character.
        return vec![Span::raw(text.to_string())];
    }
    let mut spans = Vec::new();
    let mut start = 0;
    while let Some(found) = lower[start..].find(&needle) {
        let at = start + found;
        spans.push(Span::raw(text[start..at].to_string()));
        spans.push(Span::styled(
            text[at..at + needle.len()].to_string(),
            theme.highlight(),
        ));
        start = at + needle.len();
    }
    spans.push(Span::raw(text[start..].to_string()));
    spans
}

/// The lines the view shows: the whole buffer, or those a filter kept.
struct Shown<'a> {
    all: Option<&'a std::collections::VecDeque<LogLine>>,
    filtered: &'a [&'a LogLine],
}

impl<'a> Shown<'a> {
    fn len(&self) -> usize {
        self.all.map_or(self.filtered.len(), |all| all.len())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, index: usize) -> Option<&'a LogLine> {
        match self.all {
            Some(all) => all.get(index),
            None => self.filtered.get(index).copied(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'a LogLine> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }
}

impl Widget for LogsView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let state = &app.log_view;
        let ring = app.logs.lock();
        // Without a level or task filter every line shows: index the
        // buffer itself rather than collect a million references a frame.
        let unfiltered = state.min_level.is_none() && state.task.is_none();
        let filtered: Vec<&LogLine> = if unfiltered {
            Vec::new()
        } else {
            ring.lines.iter().filter(|line| state.shows(line)).collect()
        };
        let shown = Shown {
            all: unfiltered.then_some(&ring.lines),
            filtered: &filtered,
        };
        let search = state.search.as_deref();
        let matches = search.map(|_| shown.iter().filter(|line| state.matches(line)).count());

        let height = usize::from(area.height.saturating_sub(2));
        // The current match is kept in view; otherwise the offset from the bottom.
        let end = match state.current_match {
            Some(current) if !state.follow => (current + height / 2 + 1)
                .min(shown.len())
                .max(height.min(shown.len())),
            _ => shown
                .len()
                .saturating_sub(if state.follow { 0 } else { state.offset }),
        };
        // The position is the newest line in view.
        let mut title = format!(
            " Logs {}",
            position(end.saturating_sub(1), shown.len(), ring.lines.len())
        );
        if let Some(level) = state.min_level {
            title.push_str(&format!(" · {level} and worse"));
        }
        if let Some(task) = &state.task {
            title.push_str(&format!(" · task {task}"));
        }
        if let (Some(needle), Some(count)) = (search, matches) {
            let position = state.current_match.map(|current| {
                shown
                    .iter()
                    .take(current + 1)
                    .filter(|line| state.matches(line))
                    .count()
            });
            match position {
                Some(position) => title.push_str(&format!(" · \"{needle}\" {position}/{count}")),
                None => title.push_str(&format!(" · \"{needle}\" {count} matches")),
            }
        }
        title.push_str(if state.follow {
            " · following "
        } else {
            " · paused "
        });
        if self.full || self.focused {
            let dropped = ring.total.saturating_sub(ring.lines.len() as u64);
            if dropped > 0 && self.full {
                title.push_str(&format!("· {dropped} older lines dropped "));
            }
        }
        let block = Block::bordered()
            .title(title)
            .border_style(if self.focused {
                theme.title()
            } else {
                theme.dim()
            });
        let inner = block.inner(area);
        block.render(area, buffer);

        let start = end.saturating_sub(height);
        for (row, (index, line)) in (start..end)
            .filter_map(|index| shown.get(index).map(|line| (index, line)))
            .enumerate()
        {
            let time = line
                .time
                .with_timezone(&app.utc_offset)
                .format("%H:%M:%S")
                .to_string();
            let current = state.current_match == Some(index);
            let mut spans = vec![
                Span::styled(if current { "›" } else { " " }, theme.highlight()),
                Span::styled(format!("{time} "), theme.dim()),
                Span::styled(
                    format!("{:<5} ", line.level.as_str()),
                    level_style(line.level, theme),
                ),
            ];
            if let Some(pid) = line.origin {
                // Logged by another process on this config (from the log folder).
                spans.push(Span::styled(format!("pid {pid} "), theme.dim()));
            }
            if let Some(task) = &line.task_id {
                let run = line.run_id.map(|run| format!("#{run}")).unwrap_or_default();
                spans.push(Span::styled(format!("{task}{run} "), theme.running()));
            }
            spans.extend(highlighted(&line.message, search, theme));
            let line_area = Rect {
                y: inner.y + row as u16,
                height: 1,
                ..inner
            };
            let line = Line::from(spans);
            let cut = line.width() > line_area.width as usize;
            line.render(line_area, buffer);
            if cut && line_area.width > 0 {
                // Cut at the edge: say so (enter shows the whole line).
                buffer.set_string(
                    line_area.x + line_area.width - 1,
                    line_area.y,
                    "…",
                    theme.dim(),
                );
            }
            if state.current_match == Some(index) {
                buffer.set_style(
                    Rect {
                        width: 1,
                        ..line_area
                    },
                    theme.highlight(),
                );
            }
        }
        if shown.is_empty() {
            Line::styled(" no log lines yet", theme.dim()).render(inner, buffer);
        }
    }
}
