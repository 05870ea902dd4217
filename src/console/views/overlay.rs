//! Dialogs drawn over the screen: help with the live keymap, and the
//! confirmations for cancel, retry and quit.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use crate::config::TaskKind;
use crate::console::app::{App, Confirm, Overlay};
use crate::console::theme::Theme;

pub struct OverlayView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

/// The failed items a confirmation is about: id and path or bounds (in
/// words, cut to `width` columns so the dialog's answer line stays on
/// screen), the first eight, then how many more.
fn item_lines(items: &[(i64, String)], theme: Theme, width: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = items
        .iter()
        .take(8)
        .map(|(id, key)| {
            let id = format!("  #{id} ");
            let room = width.saturating_sub(id.chars().count());
            let key = crate::console::format::item_key(key);
            Line::from(vec![
                Span::styled(id, theme.dim()),
                Span::raw(crate::console::format::fit(&key, room)),
            ])
        })
        .collect();
    if items.len() > 8 {
        lines.push(Line::styled(
            format!("  … and {} more", items.len() - 8),
            theme.dim(),
        ));
    }
    lines
}

/// What cancelling a run of `task_id` leaves behind, in its kind's terms.
fn cancel_effect(app: &App, task_id: &str) -> &'static str {
    match app
        .tasks
        .iter()
        .find(|task| task.id == task_id)
        .map(|task| task.kind)
    {
        Some(TaskKind::TableSync | TaskKind::HttpSync) => {
            " Loaded batches stay, the one loading is rolled back."
        }
        Some(TaskKind::Airbyte) => " The Airbyte job is cancelled too.",
        Some(TaskKind::Sync) | None => " In-flight copies are aborted; nothing partial is left.",
    }
}

/// Every status glyph the lists use, with its meaning, in lines of at
/// most `width` columns.
fn status_legend(width: usize) -> Vec<String> {
    use crate::run::RunStatus;
    let entries = [
        (Some(RunStatus::Succeeded), "ok"),
        (Some(RunStatus::Running), "running"),
        (Some(RunStatus::Partial), "partial"),
        (Some(RunStatus::Failed), "failed"),
        (Some(RunStatus::Cancelled), "cancelled"),
        (Some(RunStatus::Blocked), "blocked"),
        (Some(RunStatus::Interrupted), "interrupted"),
        (Some(RunStatus::Submitted), "submitted (Airbyte)"),
        (None, "not run"),
    ];
    let mut lines = vec![String::new()];
    for (status, meaning) in entries {
        let entry = format!(" {} {meaning} ", crate::console::theme::glyph(status));
        let last = lines.len() - 1;
        if !lines[last].is_empty() && lines[last].chars().count() + entry.chars().count() > width {
            lines.push(String::new());
        }
        let last = lines.len() - 1;
        lines[last].push_str(&entry);
    }
    lines
        .into_iter()
        .map(|line| line.trim_end().to_string())
        .collect()
}

/// A confirmation's answer line: `y` does `yes`, `n` does `no`.
fn answer(theme: Theme, yes: &str, no: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(" y", theme.key()),
        Span::raw(format!(" {yes}   ")),
        Span::styled("n", theme.key()),
        Span::raw(format!(" {no}")),
    ])
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

impl Widget for OverlayView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let Some(overlay) = &app.overlay else { return };
        let (title, lines): (String, Vec<Line>) = match overlay {
            Overlay::FullText(_) => return,
            Overlay::Help => {
                let entries: Vec<(String, &str)> = app
                    .keymap
                    .help()
                    .map(|(key, _, help)| (key.to_string(), help))
                    .collect();
                // Two columns when one does not fit the screen's height.
                let two_columns = entries.len() + 4 > area.height as usize;
                let rows = if two_columns {
                    entries.len().div_ceil(2)
                } else {
                    entries.len()
                };
                let columns = if two_columns { 2 } else { 1 };
                let text_width = ((area.width as usize).saturating_sub(4) / columns)
                    .saturating_sub(8)
                    .min(48);
                let column = |entry: Option<&(String, &str)>| -> Vec<Span<'static>> {
                    match entry {
                        Some((key, help)) => vec![
                            Span::styled(format!(" {key:>6} "), theme.key()),
                            Span::raw(format!(
                                "{:<text_width$}",
                                crate::console::format::fit(help, text_width)
                            )),
                        ],
                        None => Vec::new(),
                    }
                };
                let mut lines: Vec<Line> = (0..rows)
                    .map(|row| {
                        let mut spans = column(entries.get(row));
                        if rows < entries.len() {
                            spans.extend(column(entries.get(row + rows)));
                        }
                        Line::from(spans)
                    })
                    .collect();
                lines.push(Line::styled(
                    " arrows, pgup/pgdn, home/end move too; remap in [keys]",
                    theme.dim(),
                ));
                for (key, help) in [
                    (":", "palette: task ids, views, actions (tab)"),
                    ("] [", "next / previous failing task"),
                    ("", "filters: status:failed kind:table !word"),
                ] {
                    lines.push(Line::from(vec![
                        Span::styled(format!(" {key:>6} "), theme.key()),
                        Span::raw(
                            crate::console::format::fit(help, text_width.max(40)).to_string(),
                        ),
                    ]));
                }
                lines.extend(
                    status_legend((area.width as usize).saturating_sub(4).min(76))
                        .into_iter()
                        .map(|line| Line::styled(line, theme.dim())),
                );
                if app.read_only {
                    lines.push(Line::styled(
                        " read-only: start, retry, abandon, cancel and pause are off",
                        theme.warn(),
                    ));
                }
                (" Keys (any key closes) ".into(), lines)
            }
            Overlay::Confirm(Confirm::CancelRun { task_id, run_id }) => (
                " Cancel run ".into(),
                vec![
                    Line::raw(format!(" Cancel run {run_id} of {task_id}?")),
                    Line::styled(cancel_effect(app, task_id), theme.dim()),
                    Line::raw(""),
                    answer(theme, "cancel the run", "keep it running"),
                ],
            ),
            Overlay::Confirm(Confirm::StartDespite {
                task_id,
                dependency,
                status,
            }) => (
                " Dependency did not succeed ".into(),
                vec![
                    Line::raw(format!(" {task_id} depends on {dependency},")),
                    Line::styled(
                        format!(" and {dependency}'s last run {status}."),
                        theme.warn(),
                    ),
                    Line::raw(format!(" Start {task_id} anyway?")),
                    Line::raw(""),
                    answer(theme, "start it", "not now"),
                ],
            ),
            Overlay::Confirm(Confirm::Quit { active }) => (
                " Quit ".into(),
                vec![
                    Line::raw(format!(
                        " {active} run(s) are active. Quit and cancel them?"
                    )),
                    Line::raw(""),
                    answer(theme, "quit", "stay"),
                ],
            ),
            Overlay::Confirm(Confirm::Retry { task_id, items }) => {
                let mut lines = vec![Line::raw(format!(
                    " Retry {} failed item(s) of {task_id}:",
                    items.len()
                ))];
                lines.extend(item_lines(
                    items,
                    theme,
                    (area.width as usize).saturating_sub(4),
                ));
                lines.push(Line::raw(""));
                lines.push(answer(theme, "retry these", "not now"));
                (" Retry ".into(), lines)
            }
            Overlay::Confirm(Confirm::Abandon { task_id, items }) => {
                let mut lines = vec![Line::raw(format!(
                    " Give up on {} failed item(s) of {task_id}:",
                    items.len()
                ))];
                lines.extend(item_lines(
                    items,
                    theme,
                    (area.width as usize).saturating_sub(4),
                ));
                lines.push(Line::raw(""));
                lines.push(Line::raw(
                    " Retries skip it and the errors view drops it (`syncdeck",
                ));
                lines.push(Line::raw(
                    " errors --all` lists it). Later runs skip an abandoned",
                ));
                lines.push(Line::raw(
                    " row; a batch or file that fails again is recorded anew.",
                ));
                lines.push(Line::raw(" The task stays partial until its next run."));
                lines.push(Line::raw(""));
                lines.push(answer(theme, "abandon", "keep it"));
                (" Abandon ".into(), lines)
            }
        };
        let width = lines
            .iter()
            .map(|line| line.width() as u16)
            .max()
            .unwrap_or(20)
            .saturating_add(4)
            .max(40);
        let mut height = lines.len() as u16 + 2;
        if area.height.saturating_sub(height) == 1 {
            // One row left under the dialog would show the panel's bottom
            // border right under the dialog's.
            height += 1;
        }
        let dialog = centered(area, width, height);
        Clear.render(dialog, buffer);
        buffer.set_style(dialog, theme.base());
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title).border_style(theme.title()))
            .render(dialog, buffer);
    }
}
