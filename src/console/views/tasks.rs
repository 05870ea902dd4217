//! The task list: one line per task with its state at a glance.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use crate::config::TaskKind;
use crate::console::app::{App, Focus, TaskState};
use crate::console::format;
use crate::console::lists::position;
use crate::console::theme::{Theme, glyph};
use crate::run::RunStatus;

pub struct TaskListView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

fn kind(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Sync => "sync",
        TaskKind::TableSync => "table",
        TaskKind::HttpSync => "http",
        TaskKind::Airbyte => "airbyte",
    }
}

/// The state column: a gauge while running, else the last result.
fn state(task: &TaskState, app: &App, theme: Theme, width: usize) -> (String, Style) {
    if let Some(active) = &task.active {
        if active.cancel_requested {
            return ("cancelling…".into(), theme.warn());
        }
        return match active.fraction() {
            None => ("counting…".into(), theme.running()),
            Some(fraction) => {
                let bar_width = width.saturating_sub(5).min(10);
                (
                    format!(
                        "{}{:>4.0}%",
                        super::bar(fraction, bar_width),
                        fraction * 100.0
                    ),
                    theme.running(),
                )
            }
        };
    }
    if let Some(dependency) = &task.blocked_by {
        return (format!("blocked by {dependency}"), theme.warn());
    }
    let next = match (task.paused, task.next_run) {
        (true, _) => " · paused".to_string(),
        (false, Some(at)) => format!(" · in {}", format::short_age(at - app.now)),
        (false, None) => String::new(),
    };
    let Some(last) = &task.last else {
        let text = match (task.paused, task.next_run) {
            (true, _) => "paused".to_string(),
            (false, Some(at)) => format!("next in {}", format::short_age(at - app.now)),
            (false, None) => "never run".to_string(),
        };
        return (text, theme.dim());
    };
    let age = last
        .completed_at
        .map(|at| format::short_age(app.now - at))
        .unwrap_or_default();
    let text = match last.status {
        RunStatus::Succeeded if task.pending_failures > 0 => {
            format!("ok {age}, {} pending", task.pending_failures)
        }
        RunStatus::Succeeded => format!("ok {age}"),
        RunStatus::Partial => format!(
            "{} failed {age}",
            last.counters.files_failed + last.counters.batches_failed
        ),
        status => format!("{status} {age}"),
    };
    (text + &next, theme.status(last.status))
}

impl Widget for TaskListView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let app = self.app;
        let theme = self.theme;
        let tasks = app.visible_tasks();
        let mut title = format!(
            " Tasks {}",
            position(app.selected, tasks.len(), app.tasks.len())
        );
        if let Some(order) = app.task_sort.describe() {
            title.push_str(&format!(" · {order}"));
        }
        if !app.task_filter.is_empty() {
            title.push_str(&format!(" · filter \"{}\"", app.task_filter));
        }
        title.push(' ');
        let focused = app.focus == Focus::Tasks;
        let block = Block::bordered().title(title).border_style(if focused {
            theme.title()
        } else {
            theme.dim()
        });
        let inner = block.inner(area);
        block.render(area, buffer);
        if tasks.is_empty() {
            Line::styled(" no task matches the filter (esc clears it)", theme.dim())
                .render(inner, buffer);
            return;
        }
        let height = inner.height as usize;
        let first = app.selected.saturating_sub(height.saturating_sub(1));
        let width = inner.width as usize;
        let longest = app
            .tasks
            .iter()
            .map(|task| task.id.chars().count())
            .max()
            .unwrap_or(8);
        let id_width = longest.clamp(8, (width * 45 / 100).max(8));
        for (row, (index, task)) in tasks
            .iter()
            .enumerate()
            .skip(first)
            .take(height)
            .enumerate()
        {
            let status = task
                .active
                .as_ref()
                .map(|_| RunStatus::Running)
                .or(task.last.as_ref().map(|run| run.status));
            let state_width = width.saturating_sub(id_width + 10);
            let (state_text, state_style) = state(task, app, theme, state_width);
            let marker = if index == app.selected { "›" } else { " " };
            let line = Line::from(vec![
                Span::raw(marker),
                Span::styled(
                    format!("{} ", glyph(status)),
                    status.map(|s| theme.status(s)).unwrap_or(theme.dim()),
                ),
                Span::raw(format!("{:<id_width$} ", format::fit(&task.id, id_width))),
                Span::styled(format!("{:<6}", kind(task.kind)), theme.dim()),
                Span::styled(format::fit(&state_text, state_width), state_style),
            ]);
            let y = inner.y + row as u16;
            let line_area = Rect {
                x: inner.x,
                y,
                width: inner.width,
                height: 1,
            };
            line.render(line_area, buffer);
            if index == app.selected && focused {
                buffer.set_style(line_area, theme.selected());
            }
        }
    }
}
