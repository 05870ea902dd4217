//! The screen: title bar, the current view, the footer, and overlays.
//! Every view reads the model and draws; none changes it.

mod chrome;
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
use ratatui::widgets::Widget;

pub use chrome::{breadcrumbs, fitted_hints, footer_hints};

use super::app::{App, Focus, Overlay, View};
use super::format;
use super::theme::Theme;

/// Rows of tasks the task list shows on a screen this high (the page
/// that page keys move by); follows the layout below.
pub fn task_rows(screen_height: u16) -> usize {
    let [_, body, _] = screen_layout(Rect::new(0, 0, 80, screen_height));
    let [list, _, _] = tasks_layout(body);
    usize::from(list.height.saturating_sub(2)).max(1)
}

/// Screens at least this wide show more columns in the task list.
pub const WIDE: u16 = 120;

/// The header, the body and the footer.
pub fn screen_layout(area: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// The tasks view's panels: the task list, the selected task's summary
/// and the logs below them. A wide screen gives the list more room for
/// its extra columns.
pub fn tasks_layout(body: Rect) -> [Rect; 3] {
    let logs_height = (body.height / 3).max(5).min(body.height.saturating_sub(6));
    let [top, logs] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(logs_height)]).areas(body);
    let list_share = if body.width >= WIDE { 65 } else { 49 };
    let [list, summary] = Layout::horizontal([
        Constraint::Percentage(list_share),
        Constraint::Percentage(100 - list_share),
    ])
    .areas(top);
    [list, summary, logs]
}

/// The whole console, drawn from the model.
pub struct Screen<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        buffer.set_style(area, self.theme.base());
        let [title, body, footer] = screen_layout(area);
        chrome::TitleBar {
            app: self.app,
            theme: self.theme,
        }
        .render(title, buffer);
        match self.app.view {
            View::Tasks => {
                let [left, right, bottom] = tasks_layout(body);
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
        chrome::Footer {
            app: self.app,
            theme: self.theme,
        }
        .render(footer, buffer);
        // A text opened in full covers the body only: the header still
        // says where it is, the footer how to scroll and leave it.
        if let Some(Overlay::FullText(open)) = &self.app.overlay {
            fulltext::FullTextView {
                open,
                theme: self.theme,
            }
            .render(body, buffer);
        } else {
            overlay::OverlayView {
                app: self.app,
                theme: self.theme,
            }
            .render(area, buffer);
        }
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
