//! The screen: title bar, the current view, the footer, and overlays.
//! Every view reads the model and draws; none changes it.

mod detail;
mod errors;
mod fulltext;
mod history;
mod logs;
mod overlay;
mod runs;
mod tasks;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::app::{App, Focus, Input, View};
use super::format;
use super::theme::Theme;

/// Rows of tasks the task list shows on a screen this high (the page
/// that page keys move by); follows the layout below.
pub fn task_rows(screen_height: u16) -> usize {
    let body = screen_height.saturating_sub(2).max(3);
    let logs_height = (body / 3).max(5).min(body.saturating_sub(6));
    usize::from(body.saturating_sub(logs_height).max(6).saturating_sub(2)).max(1)
}

/// The whole console, drawn from the model.
pub struct Screen<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let [title, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);
        TitleBar {
            app: self.app,
            theme: self.theme,
        }
        .render(title, buffer);
        match self.app.view {
            View::Tasks => {
                let logs_height = (body.height / 3).max(5).min(body.height.saturating_sub(6));
                let [top, bottom] =
                    Layout::vertical([Constraint::Min(6), Constraint::Length(logs_height)])
                        .areas(body);
                let [left, right] =
                    Layout::horizontal([Constraint::Percentage(49), Constraint::Percentage(51)])
                        .areas(top);
                tasks::TaskListView {
                    app: self.app,
                    theme: self.theme,
                }
                .render(left, buffer);
                detail::SummaryView {
                    app: self.app,
                    theme: self.theme,
                }
                .render(right, buffer);
                logs::LogsView {
                    app: self.app,
                    theme: self.theme,
                    focused: self.app.focus == Focus::Logs,
                    full: false,
                }
                .render(bottom, buffer);
            }
            View::Detail => detail::DetailView {
                app: self.app,
                theme: self.theme,
            }
            .render(body, buffer),
            View::Errors => errors::ErrorsView {
                app: self.app,
                theme: self.theme,
            }
            .render(body, buffer),
            View::History => history::HistoryView {
                app: self.app,
                theme: self.theme,
            }
            .render(body, buffer),
            View::Logs => logs::LogsView {
                app: self.app,
                theme: self.theme,
                focused: true,
                full: true,
            }
            .render(body, buffer),
            View::Runs => runs::RunsView {
                app: self.app,
                theme: self.theme,
            }
            .render(body, buffer),
        }
        Footer {
            app: self.app,
            theme: self.theme,
        }
        .render(footer, buffer);
        overlay::OverlayView {
            app: self.app,
            theme: self.theme,
        }
        .render(area, buffer);
    }
}

struct TitleBar<'a> {
    app: &'a App,
    theme: Theme,
}

impl Widget for TitleBar<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let app = self.app;
        let view = match app.view {
            View::Tasks => "tasks",
            View::Detail => "detail",
            View::Errors => "errors",
            View::History => "history",
            View::Logs => "logs",
            View::Runs => "runs",
        };
        let mut spans = vec![
            Span::styled(" syncdeck", self.theme.title()),
            Span::raw(format!(
                " · {} · {} · {view}",
                app.config_name, app.state_kind
            )),
        ];
        let running = app.active_runs();
        if running > 0 {
            spans.push(Span::styled(
                format!(" · {running} running"),
                self.theme.running(),
            ));
        }
        let failing = app.failing_tasks();
        if failing > 0 {
            spans.push(Span::styled(
                format!(" · {failing} failing"),
                self.theme.error(),
            ));
            // The key that lists the failing runs.
            spans.push(Span::styled(
                format!(" ({})", app.keymap.label("failing_runs")),
                self.theme.key(),
            ));
        }
        if app.read_only {
            spans.push(Span::styled(" · READ-ONLY", self.theme.warn()));
        }
        let clock = app
            .now
            .with_timezone(&app.utc_offset)
            .format("%H:%M ")
            .to_string();
        Line::from(spans).render(area, buffer);
        let width = clock.chars().count() as u16;
        if area.width > width {
            buffer.set_string(area.x + area.width - width, area.y, clock, self.theme.dim());
        }
    }
}

struct Footer<'a> {
    app: &'a App,
    theme: Theme,
}

impl Widget for Footer<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let app = self.app;
        let line = match (&app.input, &app.status) {
            (Some(Input::TaskFilter(text)), _) => Line::from(vec![
                Span::styled(" filter tasks: ", self.theme.key()),
                Span::raw(format!("{text}▏  (enter keep, esc clear)")),
            ]),
            (Some(Input::ListFilter(text)), _) => Line::from(vec![
                Span::styled(
                    match app.view {
                        View::Errors => " filter errors: ",
                        View::History => " filter history: ",
                        _ => " filter runs: ",
                    },
                    self.theme.key(),
                ),
                Span::raw(format!("{text}▏  (enter keep, esc clear)")),
            ]),
            (Some(Input::Command(text)), _) => Line::from(vec![
                Span::styled(" :", self.theme.key()),
                Span::raw(format!("{text}▏  (tab complete, enter run, esc close)")),
            ]),
            (Some(Input::LogSearch(text)), _) => Line::from(vec![
                Span::styled(" search logs: ", self.theme.key()),
                Span::raw(format!("{text}▏  (enter keep, esc clear)")),
            ]),
            (None, Some((message, _))) => {
                Line::from(Span::styled(format!(" {message}"), self.theme.warn()))
            }
            (None, None) => {
                let keys = &app.keymap;
                let mut hints: Vec<(&str, &str)> = Vec::new();
                if !app.read_only {
                    hints.extend([
                        (keys.label("start"), "start"),
                        (keys.label("retry"), "retry"),
                        (keys.label("cancel"), "cancel"),
                    ]);
                }
                hints.extend([
                    (
                        keys.label("open"),
                        match app.view {
                            View::Tasks if app.focus == Focus::Tasks => "details",
                            View::History | View::Runs => "details",
                            _ => "full text",
                        },
                    ),
                    (
                        keys.label("filter"),
                        if app.view == View::Logs {
                            "search"
                        } else {
                            "filter"
                        },
                    ),
                    (keys.label("help"), "help"),
                    (keys.label("quit"), "quit"),
                ]);
                if app.view == View::Runs {
                    hints.push((keys.label("back"), "back"));
                }
                hints.push((keys.label("focus"), "focus"));
                if app.view == View::Tasks {
                    hints.push((keys.label("sort"), "sort"));
                }
                hints.push(("2-5", "errors/history/logs/runs"));
                // As many hints as fit, most important first.
                let mut spans = Vec::new();
                let mut used = 0;
                for (key, what) in hints {
                    let width = key.chars().count() + what.chars().count() + 3;
                    if used + width > area.width as usize {
                        break;
                    }
                    used += width;
                    spans.push(Span::styled(format!(" {key}"), self.theme.key()));
                    spans.push(Span::raw(format!(" {what} ")));
                }
                Line::from(spans)
            }
        };
        line.render(area, buffer);
    }
}

/// A one-cell-high bar of `width` cells, filled to `fraction`.
pub(crate) fn bar(fraction: f64, width: usize) -> String {
    let eighths = (fraction.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if !eighths.is_multiple_of(8) {
        out.push_str(PARTS[eighths % 8]);
    }
    let filled = out.chars().count();
    out + &" ".repeat(width.saturating_sub(filled))
}

/// `synced 1,204  skipped 388  failed 2`
pub(crate) fn file_counts(counters: &crate::run::RunCounters) -> String {
    format!(
        "synced {} skipped {} failed {}",
        format::count(counters.files_synced),
        format::count(counters.files_skipped()),
        format::count(counters.files_failed)
    )
}
