//! A task's run: counters, progress, throughput, ETA, files in flight,
//! failing items and (in the full view) the most recent items with their
//! decisions. A finished run keeps its detail: the one the console
//! followed (its items and throughput), or a run opened from history.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, Widget, Wrap};

use crate::config::TaskKind;
use crate::console::app::{ActiveRun, App, ItemOutcome, RecentItem, TaskState};
use crate::console::format;
use crate::console::theme::Theme;
use crate::run::event::CopyMethod;
use crate::run::{RunRecord, RunStatus};

/// Files in flight listed by name; more are counted.
const IN_FLIGHT_SHOWN: usize = 5;

/// The right-hand panel of the task list.
pub struct SummaryView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

/// The full-screen run detail.
pub struct DetailView<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

/// The run the detail shows when it is not the live one: a run opened
/// from history, else the task's newest finished run.
fn shown_record<'a>(task: &'a TaskState, app: &'a App) -> Option<&'a RunRecord> {
    app.opened_run
        .as_ref()
        .filter(|run| run.task_id == task.id)
        .or(task.last.as_ref())
}

/// What this console saw of `record` while it ran, if it followed it.
fn followed<'a>(task: &'a TaskState, record: &RunRecord) -> Option<&'a ActiveRun> {
    task.finished
        .as_ref()
        .filter(|run| run.run_id == record.run_id)
}

/// The live run, unless a past run was opened from history.
fn live<'a>(task: &'a TaskState, app: &App) -> Option<&'a ActiveRun> {
    task.active.as_ref().filter(|_| {
        app.opened_run
            .as_ref()
            .is_none_or(|run| run.task_id != task.id)
    })
}

/// The run whose items and throughput the detail shows.
fn shown_run<'a>(task: &'a TaskState, app: &'a App) -> Option<&'a ActiveRun> {
    live(task, app).or_else(|| shown_record(task, app).and_then(|record| followed(task, record)))
}

fn header(task: &TaskState, app: &App, theme: Theme) -> Line<'static> {
    if let Some(active) = live(task, app) {
        let elapsed = format::clock(app.now - active.started_at);
        let what = if active.cancel_requested {
            "cancelling"
        } else {
            "running"
        };
        return Line::from(vec![
            Span::styled(task.id.clone(), theme.title()),
            Span::raw(format!(" · run {} · ", active.run_id)),
            Span::styled(format!("{what} {elapsed}"), theme.running()),
            Span::styled(format!(" · {}", active.trigger), theme.dim()),
        ]);
    }
    match shown_record(task, app) {
        Some(last) => {
            let age = last
                .completed_at
                .map(|at| format::age(app.now - at))
                .unwrap_or_default();
            // An interrupted run has no duration: its process stopped.
            let took = last
                .duration_ms
                .map(|milliseconds| format!(" · took {}", format::duration_ms(milliseconds)))
                .unwrap_or_default();
            Line::from(vec![
                Span::styled(task.id.clone(), theme.title()),
                Span::raw(format!(" · run {} · ", last.run_id)),
                Span::styled(last.status.to_string(), theme.status(last.status)),
                Span::styled(format!(" {age}{took} · {}", last.trigger), theme.dim()),
            ])
        }
        None => Line::from(vec![
            Span::styled(task.id.clone(), theme.title()),
            Span::styled(" · never run", theme.dim()),
        ]),
    }
}

/// Counts of a table run: rows and batches. A finished run that never
/// learnt its total (it failed, or was retried by its batches' bounds)
/// says how many rows it read, not "of counting…".
fn row_lines(
    counters: &crate::run::RunCounters,
    finished: bool,
    theme: Theme,
) -> Vec<Line<'static>> {
    let total = match counters.rows_total {
        Some(total) if counters.rows_total_estimated && !finished => {
            format!(" of ~{} (estimated, counting…)", format::count(total))
        }
        Some(total) if !counters.rows_total_estimated => format!(" of {}", format::count(total)),
        _ if finished => String::new(),
        _ => " of counting…".into(),
    };
    let batches = counters
        .batches_total
        .map(|total| format!(" of {}", format::count(total)))
        .unwrap_or_default();
    vec![
        Line::from(vec![
            Span::styled("rows  ", theme.dim()),
            Span::raw(format!(
                "read {}{total}",
                format::count(counters.rows_extracted)
            )),
        ]),
        Line::from(vec![
            Span::styled("      ", theme.dim()),
            Span::raw(format!(
                "upserted {} unchanged {} skipped {}",
                format::count(counters.rows_upserted),
                format::count(counters.rows_unchanged),
                format::count(counters.rows_skipped)
            )),
        ]),
        Line::from(vec![
            Span::styled("batch ", theme.dim()),
            Span::raw(format!(
                "{} done{batches} · {} failed",
                format::count(counters.batches_done),
                format::count(counters.batches_failed)
            )),
        ]),
    ]
}

fn table_active_lines(
    active: &ActiveRun,
    app: &App,
    theme: Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let mut lines = row_lines(&active.counters, false, theme);
    lines.push(Line::from(vec![
        Span::styled("speed ", theme.dim()),
        Span::raw(active.speed()),
    ]));
    match active.fraction() {
        Some(fraction) => lines.push(Line::from(vec![
            Span::styled("      ", theme.dim()),
            Span::styled(
                super::bar(fraction, width.saturating_sub(12).min(60)),
                theme.running(),
            ),
            Span::raw(format!(" {:>3.0}%", fraction * 100.0)),
        ])),
        None => lines.push(Line::styled("      counting…", theme.running())),
    }
    lines.extend(failing_lines(active, app, theme, "Batch errors", width));
    lines
}

fn active_lines(
    active: &ActiveRun,
    kind: TaskKind,
    app: &App,
    theme: Theme,
    width: usize,
) -> Vec<Line<'static>> {
    // By the task's kind: a table run of another process shows no row
    // counter before its first batch, and is no file run meanwhile.
    if TaskKind::moves_rows(Some(kind), &active.counters) {
        return table_active_lines(active, app, theme, width);
    }
    let counters = &active.counters;
    let mut lines = vec![Line::from(vec![
        Span::styled("files ", theme.dim()),
        Span::raw(super::file_counts(counters)),
    ])];
    if counters.totals_known {
        lines.push(Line::from(vec![
            Span::styled("      ", theme.dim()),
            Span::raw(format!(
                "queued {} active {} of {}",
                format::count(counters.files_queued()),
                format::count(counters.files_active),
                format::count(counters.files_to_copy)
            )),
        ]));
        lines.push(Line::from(vec![
            Span::styled("bytes ", theme.dim()),
            Span::raw(format!(
                "{} of {} · {}",
                format::size(counters.bytes_done),
                format::size(counters.bytes_total),
                active.speed()
            )),
        ]));
        let fraction = active.fraction().unwrap_or(0.0);
        let bar_width = width.saturating_sub(12).min(60);
        lines.push(Line::from(vec![
            Span::styled("      ", theme.dim()),
            Span::styled(super::bar(fraction, bar_width), theme.running()),
            Span::raw(format!(" {:>3.0}%", fraction * 100.0)),
        ]));
        lines.extend(in_flight_lines(active, theme, width));
    } else {
        // Copies start while the listing goes on: what is known so far.
        lines.push(Line::from(vec![
            Span::styled("      ", theme.dim()),
            Span::raw(format!(
                "queued {} active {} of {} to copy so far",
                format::count(counters.files_queued()),
                format::count(counters.files_active),
                format::count(counters.files_to_copy)
            )),
        ]));
        // The speed shows already; the total, percent and time left once
        // the listing ends.
        lines.push(Line::from(vec![
            Span::styled("bytes ", theme.dim()),
            Span::raw(format!(
                "{} so far · {} · ",
                format::size(counters.bytes_done),
                active.speed()
            )),
            Span::styled(
                format!(
                    "counting… ({} listed)",
                    format::count(counters.files_listed)
                ),
                theme.running(),
            ),
        ]));
        lines.extend(in_flight_lines(active, theme, width));
    }
    lines.extend(failing_lines(active, app, theme, "Failing now", width));
    lines
}

/// Files being copied, each with its own percent, biggest share first.
fn in_flight_lines(active: &ActiveRun, theme: Theme, width: usize) -> Vec<Line<'static>> {
    if active.in_flight.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![Line::styled("In flight", theme.dim())];
    let bar_width = 10;
    for file in active.in_flight.iter().take(IN_FLIGHT_SHOWN) {
        let sizes = format!(
            " ({} of {})",
            format::size(file.bytes_done),
            format::size(file.bytes_total)
        );
        let room = width.saturating_sub(bar_width + 7 + sizes.chars().count());
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {:>3.0}% ", file.fraction() * 100.0),
                theme.running(),
            ),
            Span::styled(super::bar(file.fraction(), bar_width), theme.running()),
            Span::raw(format!(" {}{sizes}", format::fit(&file.path, room.max(8)))),
        ]));
    }
    lines.extend(more_line(active.in_flight.len(), IN_FLIGHT_SHOWN, theme));
    lines
}

/// `+4 more` under a list cut at `shown` of `total`.
fn more_line(total: usize, shown: usize, theme: Theme) -> Option<Line<'static>> {
    (total > shown).then(|| Line::styled(format!(" +{} more", total - shown), theme.dim()))
}

/// Items failing right now (attempt n/m, retry countdown, last error), at
/// most two lines each (they wrap), cut with `…` (`enter` shows them
/// whole).
fn failing_lines(
    active: &ActiveRun,
    app: &App,
    theme: Theme,
    title: &str,
    width: usize,
) -> Vec<Line<'static>> {
    let mut failing: Vec<&RecentItem> = active.retrying.values().collect();
    if failing.is_empty() {
        return Vec::new();
    }
    failing.sort_by(|a, b| a.path.cmp(&b.path));
    let mut lines = vec![Line::styled(title.to_string(), theme.error())];
    lines.extend(
        failing
            .iter()
            .take(4)
            .map(|item| fit_line(item_line(item, app, theme), (width * 2).saturating_sub(2))),
    );
    lines.extend(more_line(failing.len(), 4, theme));
    lines
}

/// `line` cut to `width` characters, ending with `…` when cut.
fn fit_line(line: Line<'static>, width: usize) -> Line<'static> {
    let mut left = width;
    let mut spans = Vec::new();
    for span in line.spans {
        let length = span.content.chars().count();
        if length <= left {
            left -= length;
            spans.push(span);
            continue;
        }
        spans.push(Span::styled(format::fit(&span.content, left), span.style));
        break;
    }
    Line::from(spans).style(line.style)
}

fn item_line(item: &RecentItem, app: &App, theme: Theme) -> Line<'static> {
    match &item.outcome {
        ItemOutcome::Synced { bytes, method } => {
            let how = if *method == CopyMethod::ServerSide {
                " server-side"
            } else {
                ""
            };
            Line::from(vec![
                Span::styled(" copied  ", theme.ok()),
                Span::raw(format!("{} ({}{how})", item.path, format::size(*bytes))),
            ])
        }
        ItemOutcome::Recovered { attempt } => Line::from(vec![
            Span::styled(" loaded  ", theme.ok()),
            Span::raw(format!("{} on attempt {attempt}", item.path)),
        ]),
        ItemOutcome::Skipped(reason) => Line::from(vec![
            Span::styled(format!(" skip: {:<10}", reason.as_str()), theme.dim()),
            Span::raw(item.path.clone()),
        ]),
        ItemOutcome::Failed {
            error,
            attempt,
            max_attempts,
            retry_at,
        } => {
            let next = match retry_at {
                Some(at) if *at > app.now => {
                    format!(" · retry in {}s", format::seconds_until(app.now, *at))
                }
                Some(_) => " · retrying".into(),
                None => String::new(),
            };
            Line::from(vec![
                Span::styled(
                    format!(" failed {attempt}/{max_attempts}{next} "),
                    theme.error(),
                ),
                Span::raw(format!("{}: {error}", item.path)),
            ])
        }
    }
}

fn finished_lines(task: &TaskState, app: &App, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let record = shown_record(task, app);
    if let Some(last) = record {
        let counters = &last.counters;
        if task.kind == crate::config::TaskKind::TableSync {
            lines.extend(row_lines(counters, true, theme));
        } else {
            lines.push(Line::from(vec![
                Span::styled("files ", theme.dim()),
                Span::raw(super::file_counts(counters)),
            ]));
            lines.push(Line::from(vec![
                Span::styled("      ", theme.dim()),
                // Why files were skipped, when some were.
                Span::raw(if counters.files_skipped() > 0 {
                    format!(
                        "skipped: exists {}, unchanged {} · listed {}",
                        format::count(counters.files_skipped_exists),
                        format::count(counters.files_skipped_unchanged),
                        format::count(counters.files_listed)
                    )
                } else {
                    format!("listed {}", format::count(counters.files_listed))
                }),
            ]));
            let speed = last
                .duration_ms
                .filter(|took| *took > 0 && counters.bytes_done > 0)
                .map(|took| {
                    format!(
                        " · {} on average",
                        format::rate(counters.bytes_done as f64 * 1000.0 / took as f64)
                    )
                })
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled("bytes ", theme.dim()),
                Span::raw(if counters.bytes_total > 0 {
                    format!(
                        "{} of {}{speed}",
                        format::size(counters.bytes_done),
                        format::size(counters.bytes_total)
                    )
                } else {
                    format!("{}{speed}", format::size(counters.bytes_done))
                }),
            ]));
        }
        if let Some(error) = &last.error {
            lines.push(Line::from(vec![
                Span::styled("error ", theme.error()),
                Span::raw(error.clone()),
            ]));
        }
        if let Some(warning) = &last.warning {
            lines.push(Line::from(vec![
                Span::styled("note  ", theme.warn()),
                Span::raw(warning.clone()),
            ]));
        }
        if task.kind != crate::config::TaskKind::TableSync {
            lines.extend(not_copied_lines(last, followed(task, last), theme));
        }
    }
    let opened = app.opened_run.as_ref().filter(|run| run.task_id == task.id);
    let pending: Vec<_> = app
        .pending_items()
        .into_iter()
        .filter(|item| item.task_id == task.id)
        .filter(|item| opened.is_none_or(|run| run.run_id == item.run_id))
        .collect();
    if !pending.is_empty() {
        let retry = app.keymap.label("retry");
        let shown = pending.len().min(3);
        let of_run = if opened.is_some() { " of this run" } else { "" };
        // All of them: the first few follow, then "+N more".
        let count = pending.len();
        lines.push(Line::styled(
            format!("{count} failed item(s){of_run} pending · {retry} to retry"),
            theme.warn(),
        ));
        for item in pending.iter().take(shown) {
            lines.push(Line::from(vec![
                Span::styled(format!(" #{} {}x ", item.id, item.attempts), theme.error()),
                Span::raw(format!("{}: {}", format::item_key(&item.key), item.error)),
            ]));
        }
        lines.extend(more_line(pending.len(), shown, theme));
    }
    lines
}

/// For a run that stopped short: how many files it did not copy, and
/// those it was copying when it stopped (with how far each got).
fn not_copied_lines(
    record: &RunRecord,
    followed: Option<&ActiveRun>,
    theme: Theme,
) -> Vec<Line<'static>> {
    if !matches!(
        record.status,
        RunStatus::Cancelled | RunStatus::Failed | RunStatus::Interrupted | RunStatus::Partial
    ) {
        return Vec::new();
    }
    let counters = &record.counters;
    let never_done = counters
        .files_to_copy
        .saturating_sub(counters.files_synced + counters.files_failed);
    let stopped: &[crate::run::FileInFlight] = followed.map_or(&[], |run| &run.in_flight);
    if never_done == 0 && stopped.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![Line::styled(
        format!(
            "Not copied: {} file(s){}",
            format::count(never_done.max(stopped.len() as u64)),
            if counters.totals_known {
                ""
            } else {
                " (listing had not finished)"
            }
        ),
        theme.error(),
    )];
    for file in stopped.iter().take(IN_FLIGHT_SHOWN) {
        lines.push(Line::raw(format!(
            " {} (stopped at {:.0}%, {} of {})",
            file.path,
            file.fraction() * 100.0,
            format::size(file.bytes_done),
            format::size(file.bytes_total)
        )));
    }
    let named = stopped.len().min(IN_FLIGHT_SHOWN) as u64;
    if never_done > named {
        let never_started = never_done.saturating_sub(stopped.len() as u64);
        lines.push(Line::styled(
            match (named, never_started) {
                (0, _) => " none were in flight when it stopped".to_string(),
                (_, 0) => format!(" +{} more in flight", never_done - named),
                _ => format!(
                    " +{} more: {} never started",
                    never_done - named,
                    format::count(never_started)
                ),
            },
            theme.dim(),
        ));
    }
    lines
}

/// What the task is, from the config: where it reads and writes, which
/// files, and what it waits for.
fn task_lines(task: &TaskState, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        Span::styled("route ", theme.dim()),
        Span::raw(task.route.clone()),
    ])];
    if let Some(pattern) = &task.pattern {
        lines.push(Line::from(vec![
            Span::styled("files ", theme.dim()),
            Span::raw(format!("matching {pattern}")),
        ]));
    }
    if !task.dependencies.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("after ", theme.dim()),
            Span::raw(task.dependencies.join(", ")),
        ]));
    }
    if task.every.is_none() {
        lines.push(Line::from(vec![
            Span::styled("sched ", theme.dim()),
            Span::raw("none: runs when started"),
        ]));
    }
    lines
}

/// `full`: a detail view with room (30 rows or more), which always says
/// what the task is; otherwise it is said only for a task with no run to
/// show, so a live run's counters and files keep their rows.
fn body_lines(
    task: &TaskState,
    app: &App,
    theme: Theme,
    width: usize,
    full: bool,
) -> Vec<Line<'static>> {
    let mut lines = vec![header(task, app, theme)];
    if full || (live(task, app).is_none() && shown_record(task, app).is_none()) {
        lines.extend(task_lines(task, theme));
    }
    if let Some(every) = task.every {
        let every = humantime::format_duration(every).to_string();
        let text = match (task.paused, task.next_run) {
            (true, _) => format!(
                "every {every} · paused ({} resumes)",
                app.keymap.label("pause")
            ),
            (false, Some(at)) => format!(
                "every {every} · next run in {}",
                format::clock(at - app.now)
            ),
            (false, None) => format!("every {every}"),
        };
        lines.push(Line::from(vec![
            Span::styled("sched ", theme.dim()),
            Span::raw(text),
        ]));
    }
    match live(task, app) {
        Some(active) => lines.extend(active_lines(active, task.kind, app, theme, width)),
        None => lines.extend(finished_lines(task, app, theme)),
    }
    lines
}

impl Widget for SummaryView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let block = Block::bordered()
            .border_style(self.theme.dim())
            .title(" Run ");
        let inner = block.inner(area);
        block.render(area, buffer);
        let Some(task) = self.app.selected_task() else {
            return;
        };
        Paragraph::new(body_lines(
            task,
            self.app,
            self.theme,
            inner.width as usize,
            false,
        ))
        .wrap(Wrap { trim: false })
        .render(inner, buffer);
    }
}

impl Widget for DetailView<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let Some(task) = app.selected_task() else {
            return;
        };
        let block = Block::bordered()
            .border_style(theme.title())
            .title(if task.name == task.id {
                // A task without a `name` shows its id once.
                format!(" {} ", task.id)
            } else {
                format!(" {} · {} ", task.id, task.name)
            });
        let inner = block.inner(area);
        block.render(area, buffer);
        let lines = body_lines(task, app, theme, inner.width as usize, inner.height >= 30);
        let summary_height = (lines.len() as u16 + 1).min(inner.height / 2).max(3);
        let [summary, spark, recent] = Layout::vertical([
            Constraint::Length(summary_height),
            Constraint::Length(3),
            Constraint::Min(1),
        ])
        .areas(inner);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(summary, buffer);

        let shown = shown_run(task, app);
        let throughput: Vec<u64> = shown
            .map(|run| run.throughput.iter().copied().collect())
            .unwrap_or_default();
        let peak = throughput.iter().copied().max().unwrap_or(0);
        let moves_rows = |run: &ActiveRun| TaskKind::moves_rows(Some(task.kind), &run.counters);
        Sparkline::default()
            .block(Block::default().title(match shown.map(moves_rows) {
                None => "throughput: recorded for runs this console followed".to_string(),
                Some(_) if throughput.is_empty() => {
                    "throughput: one value per second, from the first second on".to_string()
                }
                Some(true) => format!(
                    "rows per second, last {}s (peak {})",
                    throughput.len(),
                    format::count(peak)
                ),
                Some(false) => format!(
                    "throughput, last {}s (peak {}/s)",
                    throughput.len(),
                    format::size(peak)
                ),
            }))
            .data(&throughput)
            .style(theme.running())
            .render(spark, buffer);

        // Table runs report a batch only when it fails.
        let rows = shown.is_some_and(moves_rows);
        let title = if rows {
            "Failed batches and rows (newest first)"
        } else {
            "Recent items (newest first)"
        };
        let mut recent_lines = vec![Line::styled(title, theme.dim())];
        match shown {
            Some(active) if !active.recent.is_empty() => {
                recent_lines.extend(
                    active
                        .recent
                        .iter()
                        .rev()
                        .take(recent.height as usize)
                        .map(|item| fit_line(item_line(item, app, theme), recent.width as usize)),
                );
            }
            Some(_) => {
                let running = live(task, app).is_some();
                let none = match (rows, running) {
                    (true, true) => " no batch or row has failed so far",
                    (true, false) => " no batch or row failed",
                    (false, true) => " nothing decided yet",
                    (false, false) => " no file was synced, skipped or failed",
                };
                recent_lines.push(Line::styled(none, theme.dim()));
            }
            None => recent_lines.push(Line::styled(
                " kept for runs this console followed; see the counts above",
                theme.dim(),
            )),
        }
        Paragraph::new(recent_lines).render(recent, buffer);
    }
}
