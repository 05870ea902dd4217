//! Runs of every task, newest first (what ran overnight?), under the
//! list's filter; the selected run's whole error under the table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{
    Block, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap,
};

use crate::console::app::App;
use crate::console::format;
use crate::console::lists::{RUNS_LISTED, position};
use crate::console::theme::Theme;
use crate::run::{RunRecord, RunStatus};

pub struct RunsView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

/// Widths of the columns before the error; the error takes the rest.
const RUN: u16 = 5;
const STATUS: u16 = 11;
const STARTED: u16 = 11;
const TOOK: u16 = 7;
const MOVED: u16 = 11;

/// How long a run took, or has been running.
fn took(run: &RunRecord, app: &App) -> String {
    match run.duration_ms {
        Some(milliseconds) => format::duration_ms(milliseconds),
        None if run.status == RunStatus::Running => {
            format::duration_ms((app.now - run.started_at).num_milliseconds().max(0))
        }
        None => "-".into(),
    }
}

/// Rows written for table runs, bytes for file runs.
fn moved(app: &App, run: &RunRecord) -> String {
    if app.moves_rows(&run.task_id, &run.counters) {
        format!("{} rows", format::count(run.counters.rows_upserted))
    } else {
        format::size(run.counters.bytes_done)
    }
}

/// What a run moved, in full: files, or rows for table runs.
fn counts(app: &App, run: &RunRecord) -> String {
    let counters = &run.counters;
    if app.moves_rows(&run.task_id, counters) {
        format!(
            "rows read {} written {}",
            format::count(counters.rows_extracted),
            format::count(counters.rows_upserted)
        )
    } else {
        super::file_counts(counters)
    }
}

fn title(app: &App, shown: usize) -> String {
    let scope = if app.runs.len() >= RUNS_LISTED {
        format!("newest {RUNS_LISTED} of every task")
    } else {
        "every task, newest first".to_string()
    };
    let mut title = format!(
        " Runs {} · {scope}",
        position(app.runs_selected, shown, app.runs.len())
    );
    if !app.runs_filter.is_empty() {
        title.push_str(&format!(" · filter \"{}\"", app.runs_filter));
    }
    title + " "
}

impl Widget for RunsView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let runs = app.visible_runs();
        let block = Block::bordered()
            .title(title(app, runs.len()))
            .border_style(theme.title());
        let inner = block.inner(area);
        block.render(area, buffer);
        if runs.is_empty() {
            let text = if app.runs.is_empty() {
                " no runs recorded yet"
            } else {
                " no run matches the filter (esc clears it)"
            };
            Line::styled(text, theme.dim()).render(inner, buffer);
            return;
        }
        let selected = runs.get(app.runs_selected).copied();
        // The selected run's whole error, wrapped, under the table.
        let detail_height = if inner.height >= 10 { 3 } else { 0 };
        let table_area = Rect {
            height: inner.height - detail_height,
            ..inner
        };
        let detail_area = Rect {
            y: inner.y + table_area.height,
            height: detail_height,
            ..inner
        };

        let longest = runs
            .iter()
            .map(|run| run.task_id.chars().count())
            .max()
            .unwrap_or(4);
        let task_width = longest.clamp(4, (usize::from(inner.width) / 4).max(8)) as u16;
        let fixed = task_width + RUN + STATUS + STARTED + TOOK + MOVED + 6;
        let error_width = usize::from(inner.width.saturating_sub(fixed));
        let rows = runs.iter().map(|run| {
            let (problem, style) = match (&run.error, &run.warning) {
                (Some(error), _) => (error.as_str(), theme.error()),
                (None, Some(warning)) => (warning.as_str(), theme.dim()),
                (None, None) => ("", theme.dim()),
            };
            Row::new(vec![
                Cell::from(format::fit(&run.task_id, usize::from(task_width))),
                Cell::from(run.run_id.to_string()),
                Cell::from(run.status.as_str()).style(theme.status(run.status)),
                Cell::from(
                    run.started_at
                        .with_timezone(&app.utc_offset)
                        .format("%m-%d %H:%M")
                        .to_string(),
                ),
                Cell::from(took(run, app)),
                Cell::from(moved(app, run)),
                Cell::from(format::fit(problem, error_width)).style(style),
            ])
        });
        let header = Row::new(vec![
            "TASK", "RUN", "STATUS", "STARTED", "TOOK", "MOVED", "ERROR",
        ])
        .style(theme.dim());
        let widths = [
            Constraint::Length(task_width),
            Constraint::Length(RUN),
            Constraint::Length(STATUS),
            Constraint::Length(STARTED),
            Constraint::Length(TOOK),
            Constraint::Length(MOVED),
            Constraint::Fill(1),
        ];
        let mut state = TableState::default().with_selected(Some(app.runs_selected));
        StatefulWidget::render(
            Table::new(rows, widths)
                .header(header)
                .row_highlight_style(theme.selected()),
            table_area,
            buffer,
            &mut state,
        );

        if let Some(run) = selected.filter(|_| detail_height > 0) {
            let mut lines = vec![Line::styled(
                format!(
                    "{} · run {} · {} · started {} · {}",
                    run.task_id,
                    run.run_id,
                    run.trigger,
                    run.started_at
                        .with_timezone(&app.utc_offset)
                        .format("%Y-%m-%d %H:%M:%S"),
                    counts(app, run),
                ),
                theme.dim(),
            )];
            match (&run.error, &run.warning) {
                (Some(error), _) => lines.push(Line::styled(error.clone(), theme.error())),
                (None, Some(warning)) => lines.push(Line::raw(format!("note: {warning}"))),
                (None, None) => {}
            }
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .render(detail_area, buffer);
        }
    }
}
