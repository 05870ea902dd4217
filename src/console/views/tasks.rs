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
use crate::console::triage::TaskHealth;
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
        (false, Some(at)) => format!(" · next in {}", format::short_age(at - app.now)),
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
    // "ago": the 6s is how long since the run ended, not how long it took.
    let age = last
        .completed_at
        .map(|at| format::age(app.now - at))
        .unwrap_or_default();
    // A retry that failed leaves the task partial while items are pending:
    // the row describes the task, not only its last retry.
    let partial = TaskHealth::of(task) == TaskHealth::Partial;
    let text = match last.status {
        RunStatus::Failed | RunStatus::Interrupted if partial => {
            format!("retry failed {age}, {} pending", task.pending_failures)
        }
        RunStatus::Succeeded if task.pending_failures > 0 => {
            format!("ok {age}, {} pending", task.pending_failures)
        }
        RunStatus::Succeeded => format!("ok {age}"),
        RunStatus::Partial => {
            let counters = &last.counters;
            match counters.files_failed + counters.batches_failed {
                // A table run whose only trouble was rows it skipped.
                0 if counters.rows_skipped > 0 => {
                    format!("{} rows skipped {age}", counters.rows_skipped)
                }
                0 => format!("partial {age}"),
                failed => format!("{failed} failed {age}"),
            }
        }
        status => format!("{status} {age}"),
    };
    let style = if partial {
        theme.status(RunStatus::Partial)
    } else {
        theme.status(last.status)
    };
    (text + &next, style)
}

/// List rows at least this wide show the extra columns.
const WIDE_ROW: usize = 80;
/// List rows narrower than this leave out the task type.
const NARROW_KIND: usize = 45;

/// The columns a wide list adds after the state: schedule, how long the
/// last run took, what it moved, and where the task reads and writes.
fn wide_columns(task: &TaskState, theme: Theme, width: usize) -> Vec<Span<'static>> {
    let schedule = match (task.every, task.paused) {
        (Some(_), true) => "paused".to_string(),
        (Some(every), false) => format::every(every),
        (None, _) => "manual".to_string(),
    };
    let (took, moved) = match &task.last {
        Some(last) => {
            let took = last
                .duration_ms
                .map(|ms| format!("took {}", format::duration_ms(ms)))
                .unwrap_or_default();
            let counters = &last.counters;
            let moved = if TaskKind::moves_rows(Some(task.kind), counters) {
                format!("{} rows", format::count(counters.rows_upserted))
            } else {
                format!(
                    "{} files {}",
                    format::count(counters.files_synced),
                    format::size(counters.bytes_done)
                )
            };
            (took, moved)
        }
        None => (String::new(), String::new()),
    };
    let route_width = width.saturating_sub(10 + 11 + 17);
    vec![
        Span::styled(format!("{:<10}", format::fit(&schedule, 9)), theme.dim()),
        Span::raw(format!("{:<11}", format::fit(&took, 10))),
        Span::raw(format!("{:<17}", format::fit(&moved, 16))),
        Span::styled(format::fit(&task.route, route_width), theme.dim()),
    ]
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
        // Keep the rows shown where they were unless the cursor left them.
        let first = app
            .task_scroll
            .get()
            .min(app.selected)
            .max(app.selected.saturating_sub(height.saturating_sub(1)))
            .min(tasks.len().saturating_sub(height));
        app.task_scroll.set(first);
        let width = inner.width as usize;
        let longest = app
            .tasks
            .iter()
            .map(|task| task.id.chars().count())
            .max()
            .unwrap_or(8);
        let wide = width >= WIDE_ROW;
        // A narrow list drops the type column before it cuts the state.
        let kind_width = if wide || width >= NARROW_KIND { 6 } else { 0 };
        let id_width = if wide {
            longest.clamp(8, 24)
        } else {
            longest.clamp(8, (width * 45 / 100).max(8))
        };
        for (row, (index, task)) in tasks
            .iter()
            .enumerate()
            .skip(first)
            .take(height)
            .enumerate()
        {
            let status = task.active.as_ref().map(|_| RunStatus::Running).or(task
                .last
                .as_ref()
                .map(|run| {
                    if TaskHealth::of(task) == TaskHealth::Partial {
                        RunStatus::Partial
                    } else {
                        run.status
                    }
                }));
            let state_width = if wide {
                22
            } else {
                width.saturating_sub(id_width + 4 + kind_width)
            };
            let (state_text, state_style) = state(task, app, theme, state_width);
            let marker = if index == app.selected { "›" } else { " " };
            let mut spans = vec![
                Span::raw(marker),
                Span::styled(
                    format!("{} ", glyph(status)),
                    status.map(|s| theme.status(s)).unwrap_or(theme.dim()),
                ),
                Span::raw(format!("{:<id_width$} ", format::fit(&task.id, id_width))),
                Span::styled(
                    format!("{:<kind_width$}", format::fit(kind(task.kind), kind_width)),
                    theme.dim(),
                ),
                Span::styled(
                    if wide {
                        format!(
                            "{:<state_width$}",
                            format::fit(&state_text, state_width.saturating_sub(1))
                        )
                    } else {
                        format::fit(&state_text, state_width)
                    },
                    state_style,
                ),
            ];
            if wide {
                let rest = width.saturating_sub(id_width + 4 + kind_width + state_width);
                spans.extend(wide_columns(task, theme, rest));
            }
            let line = Line::from(spans);
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
