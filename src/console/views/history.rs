//! Past runs of the selected task (`sync_logs`), newest first, with bar
//! charts of duration and bytes per run so a slow or shrinking run stands
//! out.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Cell, Row, StatefulWidget, Table, TableState, Widget,
};

use crate::console::app::App;
use crate::console::format;
use crate::console::lists::position;
use crate::console::theme::Theme;

pub struct HistoryView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for HistoryView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let task = app.history_task.as_deref().unwrap_or("-");
        let runs = app.visible_history();
        let mut title = format!(
            " History · {task} · runs {}",
            position(app.history_selected, runs.len(), app.history.len())
        );
        if !app.history_filter.is_empty() {
            title.push_str(&format!(" · filter \"{}\"", app.history_filter));
        }
        let block = Block::bordered()
            .title(title + " ")
            .border_style(theme.title());
        let inner = block.inner(area);
        block.render(area, buffer);
        if runs.is_empty() {
            let text = if app.history.is_empty() {
                " no runs recorded yet"
            } else {
                " no run matches the filter (esc clears it)"
            };
            Line::styled(text, theme.dim()).render(inner, buffer);
            return;
        }
        let chart_height = (inner.height / 3).clamp(4, 12);
        let [table_area, charts] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(chart_height)]).areas(inner);

        let rows = app.moves_rows(task, &runs[0].counters);
        let rows_of_runs = runs.iter().map(|run| {
            Row::new(vec![
                Cell::from(format!("{}", run.run_id)),
                Cell::from(run.status.to_string()).style(theme.status(run.status)),
                Cell::from(run.trigger.to_string()),
                Cell::from(
                    run.started_at
                        .with_timezone(&app.utc_offset)
                        .format("%m-%d %H:%M")
                        .to_string(),
                ),
                Cell::from(
                    run.duration_ms
                        .map(format::duration_ms)
                        .unwrap_or_else(|| "-".into()),
                ),
                // Rows upserted, skipped (bad rows), failed batches and
                // rows read for a table or HTTP sync.
                Cell::from(format::count(if rows {
                    run.counters.rows_upserted
                } else {
                    run.counters.files_synced
                })),
                Cell::from(format::count(if rows {
                    run.counters.rows_skipped
                } else {
                    run.counters.files_skipped()
                })),
                Cell::from(format::count(if rows {
                    run.counters.batches_failed
                } else {
                    run.counters.files_failed
                })),
                Cell::from(if rows {
                    format::count(run.counters.rows_extracted)
                } else {
                    format::size(run.counters.bytes_done)
                }),
                Cell::from(
                    run.error
                        .clone()
                        .or(run.warning.clone())
                        .unwrap_or_default(),
                ),
            ])
        });
        let header = Row::new(if rows {
            vec![
                "RUN", "STATUS", "TRIGGER", "STARTED", "TOOK", "UPSERT", "SKIPPED", "FAILED",
                "READ", "ERROR",
            ]
        } else {
            vec![
                "RUN", "STATUS", "TRIGGER", "STARTED", "TOOK", "SYNCED", "SKIPPED", "FAILED",
                "BYTES", "ERROR",
            ]
        })
        .style(theme.dim());
        let widths = [
            Constraint::Length(4),
            Constraint::Length(11),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Fill(1),
        ];
        // The table scrolls to keep the selected run in view.
        let mut state = TableState::default().with_selected(Some(app.history_selected));
        StatefulWidget::render(
            Table::new(rows_of_runs, widths)
                .header(header)
                .row_highlight_style(theme.selected()),
            table_area,
            buffer,
            &mut state,
        );

        // Oldest on the left, as many runs as fit.
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(charts);
        let fit = (left.width.saturating_sub(2) / 4).max(1) as usize;
        let runs: Vec<_> = runs.iter().take(fit).rev().collect();
        let durations: Vec<Bar> = runs
            .iter()
            .map(|run| {
                Bar::default()
                    .value(run.duration_ms.unwrap_or(0).max(0) as u64)
                    .text_value(String::new())
                    .label(Line::from(format!("{}", run.run_id % 1000)))
                    .style(theme.status(run.status))
            })
            .collect();
        BarChart::default()
            .block(
                Block::bordered()
                    .title(" duration per run ")
                    .border_style(theme.dim()),
            )
            .data(BarGroup::default().bars(&durations))
            .bar_width(3)
            .render(left, buffer);
        let rows = runs
            .iter()
            .any(|run| run.counters.rows_extracted > 0 || run.counters.rows_total.is_some());
        let bytes: Vec<Bar> = runs
            .iter()
            .map(|run| {
                // Rows for table runs, bytes for file runs.
                Bar::default()
                    .value(if rows {
                        run.counters.rows_extracted
                    } else {
                        run.counters.bytes_done
                    })
                    .text_value(String::new())
                    .label(Line::from(format!("{}", run.run_id % 1000)))
                    .style(theme.running())
            })
            .collect();
        BarChart::default()
            .block(
                Block::bordered()
                    .title(if rows {
                        " rows read per run "
                    } else {
                        " bytes copied per run "
                    })
                    .border_style(theme.dim()),
            )
            .data(BarGroup::default().bars(&bytes))
            .bar_width(3)
            .render(right, buffer);
    }
}
