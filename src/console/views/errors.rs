//! Failed files and batches: what is failing right now (with attempt n/m
//! and the retry countdown) and what is recorded as pending.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget};

use crate::console::app::{App, ItemOutcome};
use crate::console::format;
use crate::console::lists::position;
use crate::console::theme::Theme;

pub struct ErrorsView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for ErrorsView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let pending = app.visible_pending_items();
        let gone = app.visible_gone_items();
        let mut live = Vec::new();
        for task in &app.tasks {
            if let Some(active) = &task.active {
                let mut items: Vec<_> = active.retrying.values().collect();
                items.sort_by(|a, b| a.path.cmp(&b.path));
                live.extend(items.into_iter().map(|item| (task.id.as_str(), item)));
            }
        }
        let retry = app.keymap.label("retry");
        let gone_count = if gone.is_empty() {
            String::new()
        } else {
            format!(" · {} gone", gone.len())
        };
        let mut title = format!(
            " Errors · pending {}{gone_count}",
            position(
                app.errors_selected,
                pending.len(),
                app.pending_items().len()
            )
        );
        if !app.errors_filter.is_empty() {
            title.push_str(&format!(" · filter \"{}\"", app.errors_filter));
        }
        if app.read_only {
            title.push(' ');
        } else {
            let abandon = app.keymap.label("abandon");
            title.push_str(&format!(
                " · {retry} retry, {abandon} abandon the selected "
            ));
        }
        let block = Block::bordered().title(title).border_style(theme.title());
        let inner = block.inner(area);
        block.render(area, buffer);

        let live_height = if live.is_empty() {
            0
        } else {
            (live.len() as u16 + 1).min(inner.height / 3)
        };
        let live_area = Rect {
            height: live_height,
            ..inner
        };
        let table_area = Rect {
            y: inner.y + live_height,
            height: inner.height - live_height,
            ..inner
        };
        if !live.is_empty() {
            let mut lines = vec![Line::styled("Failing in running runs", theme.error())];
            for (task_id, item) in live {
                if let ItemOutcome::Failed {
                    error,
                    attempt,
                    max_attempts,
                    retry_at,
                } = &item.outcome
                {
                    let next = match retry_at {
                        Some(at) if *at > app.now => {
                            format!("retry in {}s", format::seconds_until(app.now, *at))
                        }
                        Some(_) => "retrying".into(),
                        None => "gave up".into(),
                    };
                    lines.push(Line::raw(format!(
                        " {task_id} {} attempt {attempt}/{max_attempts} · {next} · {error}",
                        item.path
                    )));
                }
            }
            Paragraph::new(lines).render(live_area, buffer);
        }
        if pending.is_empty() && gone.is_empty() {
            let text = if app.errors_filter.is_empty() {
                " no failed items pending"
            } else {
                " no failed item matches the filter (esc clears it)"
            };
            Line::styled(text, theme.dim()).render(table_area, buffer);
            return;
        }
        // The task and item columns as wide as what they hold, up to a
        // share of the width: the error gets the rest (a short key such as
        // `id=7` left it a few characters at 80 columns).
        let share = |percent: u16| table_area.width * percent / 100;
        let longest = |texts: &mut dyn Iterator<Item = usize>, percent: u16| {
            let widest = texts.max().unwrap_or(0).max(4);
            u16::try_from(widest)
                .unwrap_or(u16::MAX)
                .min(share(percent))
        };
        let listed = || pending.iter().chain(gone.iter());
        let task_width = longest(&mut listed().map(|item| item.task_id.chars().count()), 18);
        let item_width = longest(
            &mut listed().map(|item| format::item_key(&item.key).chars().count()),
            28,
        );
        let widths = [
            Constraint::Length(5),
            Constraint::Length(task_width),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(item_width),
            Constraint::Fill(1),
            Constraint::Length(8),
        ];
        // The columns' widths as the table lays them out, so a task id, an
        // item or an error cut at the column's edge ends with `…`.
        let columns = Layout::horizontal(widths)
            .flex(ratatui::layout::Flex::Start)
            .spacing(1)
            .split(Rect::new(0, 0, table_area.width, 1));
        let fit = |text: &str, column: usize| {
            format::fit(
                text,
                columns
                    .get(column)
                    .map_or(0, |area| usize::from(area.width)),
            )
        };
        // Gone items follow the pending ones, which keep their indexes for
        // the selection; there is nothing to retry in them.
        let gone_rows = gone.iter().map(|item| {
            Row::new(vec![
                Cell::from(format!("#{}", item.id)),
                Cell::from(fit(&item.task_id, 1)),
                Cell::from(item.kind.as_str()),
                Cell::from(format!("{}", item.attempts)),
                Cell::from(fit(&format::item_key(&item.key), 4)),
                Cell::from(fit(
                    &format!("gone: deleted at the source · was: {}", item.error),
                    5,
                )),
                Cell::from(format::age(app.now - item.updated_at)),
            ])
            .style(theme.dim())
        });
        let rows = pending.iter().map(|item| {
            Row::new(vec![
                Cell::from(format!("#{}", item.id)),
                Cell::from(fit(&item.task_id, 1)),
                Cell::from(item.kind.as_str()),
                Cell::from(format!("{}", item.attempts)),
                Cell::from(fit(&format::item_key(&item.key), 4)),
                Cell::from(fit(&item.error, 5)).style(theme.error()),
                Cell::from(format::age(app.now - item.updated_at)),
            ])
        });
        // The selected item's whole error, wrapped, under the table.
        let selected = pending.get(app.errors_selected);
        let detail_height = if selected.is_some() {
            4.min(table_area.height / 2)
        } else {
            0
        };
        let detail_area = Rect {
            y: table_area.y + table_area.height - detail_height,
            height: detail_height,
            ..table_area
        };
        let table_area = Rect {
            height: table_area.height - detail_height,
            ..table_area
        };
        if let Some(item) = selected {
            let text = vec![
                Line::styled(
                    format!(
                        "#{} {} · {} attempt(s) · run {}",
                        item.id,
                        format::item_key(&item.key),
                        item.attempts,
                        item.run_id
                    ),
                    theme.dim(),
                ),
                Line::styled(item.error.clone(), theme.error()),
            ];
            Paragraph::new(text)
                .wrap(ratatui::widgets::Wrap { trim: false })
                .render(detail_area, buffer);
        }
        let header = Row::new(vec![
            "ID",
            "TASK",
            "KIND",
            "TRIES",
            "ITEM",
            "LAST ERROR",
            "WHEN",
        ])
        .style(theme.dim());
        // The table scrolls to keep the selected item in view.
        let selected = (!pending.is_empty()).then_some(app.errors_selected);
        let mut state = TableState::default().with_selected(selected);
        StatefulWidget::render(
            Table::new(rows.chain(gone_rows), widths)
                .header(header)
                .row_highlight_style(theme.selected()),
            table_area,
            buffer,
            &mut state,
        );
    }
}
