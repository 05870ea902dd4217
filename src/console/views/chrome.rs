//! The screen's frame: the header (where you are, as breadcrumbs, and
//! what needs attention) and the footer (the keys of the view and panel
//! in focus, most useful first, fitted to the width, ending with help).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::console::app::{App, Focus, Input, Overlay, View};
use crate::console::theme::Theme;

/// Where the operator is: `tasks › mirror_slowly › run 5`.
pub fn breadcrumbs(app: &App) -> Vec<String> {
    let mut crumbs = vec!["tasks".to_string()];
    let selected = app.selected_task().map(|task| task.id.clone());
    match app.view {
        View::Tasks => {
            if !app.task_filter.is_empty() {
                crumbs.push(format!("filter \"{}\"", app.task_filter));
            }
            if app.focus == Focus::Logs {
                crumbs.push("logs".into());
            }
        }
        View::Detail => {
            if let Some(task) = app.selected_task() {
                let opened = app.opened_run.as_ref().filter(|run| run.task_id == task.id);
                if let Some(run) = opened {
                    // The path the operator took: the runs of every task,
                    // or this task's history.
                    if app.opened_from == View::Runs {
                        crumbs.push("runs".into());
                        crumbs.push(task.id.clone());
                    } else {
                        crumbs.push(task.id.clone());
                        crumbs.push("history".into());
                    }
                    crumbs.push(format!("run {}", run.run_id));
                } else {
                    crumbs.push(task.id.clone());
                    if let Some(active) = &task.active {
                        crumbs.push(format!("run {}", active.run_id));
                    } else if let Some(last) = &task.last {
                        crumbs.push(format!("run {}", last.run_id));
                    }
                }
            }
        }
        View::Errors => {
            crumbs.push("errors".into());
            if let Some(item) = app.pending_items().get(app.errors_selected) {
                crumbs.push(item.task_id.clone());
            }
        }
        View::History => {
            if let Some(task) = app.history_task.clone().or(selected) {
                crumbs.push(task);
            }
            crumbs.push("history".into());
        }
        View::Logs => {
            crumbs.push("logs".into());
            if let Some(task) = &app.log_view.task {
                crumbs.push(task.clone());
            }
        }
        View::Runs => crumbs.push("runs".into()),
    }
    match &app.overlay {
        Some(Overlay::Help) => crumbs.push("help".into()),
        Some(Overlay::FullText(_)) => crumbs.push("full text".into()),
        Some(Overlay::Confirm(_)) | None => {}
    }
    crumbs
}

/// `text` cut from the left to `width` characters, starting with `…`
/// when cut: the end of a path of crumbs is where the operator is.
fn fit_left(text: &str, width: usize) -> String {
    let length = text.chars().count();
    if length <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let kept: String = text.chars().skip(length - (width - 1)).collect();
        format!("…{kept}")
    }
}

pub struct TitleBar<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for TitleBar<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let width = area.width as usize;
        // Right: what needs attention, then the clock; the config's name
        // and the store's kind go first when the width is short.
        let mut attention: Vec<Span> = Vec::new();
        let running = app.active_runs();
        if running > 0 {
            attention.push(Span::styled(
                format!(" · {running} running"),
                theme.running(),
            ));
        }
        let failing = app.failing_tasks();
        if failing > 0 {
            attention.push(Span::styled(format!(" · {failing} failing"), theme.error()));
            // The key that lists the failing runs.
            attention.push(Span::styled(
                format!(" ({})", app.keymap.label("failing_runs")),
                theme.key(),
            ));
        }
        if app.read_only {
            attention.push(Span::styled(" · READ-ONLY", theme.warn()));
        }
        let clock = app
            .now
            .with_timezone(&app.utc_offset)
            .format(" %H:%M ")
            .to_string();
        let where_from = format!(" · {} · {}", app.config_name, app.state_kind);
        let name = " syncdeck  ";
        let crumbs = breadcrumbs(app).join(" › ");
        let attention_width: usize = attention.iter().map(Span::width).sum();
        let fixed = name.chars().count() + attention_width + clock.chars().count();
        let crumbs_width = crumbs.chars().count();
        let show_where = fixed + crumbs_width + where_from.chars().count() <= width;
        let room = width.saturating_sub(fixed).saturating_sub(if show_where {
            where_from.chars().count()
        } else {
            0
        });
        let crumbs = fit_left(&crumbs, room);

        let mut spans = vec![Span::styled(name, theme.title())];
        // The last crumb (where you are) stands out; the path before it is dim.
        match crumbs.rsplit_once(" › ") {
            Some((path, here)) => {
                spans.push(Span::styled(format!("{path} › "), theme.dim()));
                spans.push(Span::styled(here.to_string(), theme.title()));
            }
            None => spans.push(Span::styled(crumbs, theme.title())),
        }
        if show_where {
            spans.push(Span::styled(where_from, theme.dim()));
        }
        spans.extend(attention);
        Line::from(spans).render(area, buffer);
        let clock_width = clock.chars().count() as u16;
        if area.width > clock_width {
            buffer.set_string(
                area.x + area.width - clock_width,
                area.y,
                clock,
                theme.dim(),
            );
        }
    }
}

/// The keys of the view and panel in focus, most useful first: (key,
/// what it does). Help is not in the list: the footer always ends with it.
pub fn footer_hints(app: &App) -> Vec<(String, &'static str)> {
    let label = |name: &str| app.keymap.label(name).to_string();
    let matches = format!("{}/{}", label("next_match"), label("previous_match"));
    let mutating = |hints: &mut Vec<(String, &'static str)>, names: &[(&str, &'static str)]| {
        if !app.read_only {
            hints.extend(names.iter().map(|(name, what)| (label(name), *what)));
        }
    };
    let mut hints: Vec<(String, &'static str)> = Vec::new();
    match &app.overlay {
        Some(Overlay::FullText(_)) => {
            return vec![
                ("esc".into(), "back"),
                ("j/k".into(), "scroll"),
                ("pgdn/pgup".into(), "page"),
                ("g/G".into(), "top/end"),
            ];
        }
        Some(Overlay::Help) => return vec![("any key".into(), "close")],
        Some(Overlay::Confirm(_)) => {
            return vec![("y/enter".into(), "yes"), ("n/esc".into(), "no")];
        }
        None => {}
    }
    let logs_keys = |hints: &mut Vec<(String, &'static str)>| {
        hints.extend([
            (label("follow"), "follow"),
            (label("level"), "level"),
            (label("task_logs"), "this task"),
            (label("filter"), "search"),
            (matches.clone(), "next/prev match"),
            (label("open"), "full text"),
        ]);
    };
    match app.view {
        View::Tasks if app.focus == Focus::Logs => {
            logs_keys(&mut hints);
            hints.push((label("focus"), "tasks panel"));
        }
        View::Tasks => {
            hints.push((label("open"), "details"));
            mutating(
                &mut hints,
                &[("start", "start"), ("retry", "retry"), ("cancel", "cancel")],
            );
            hints.extend([
                (label("filter"), "filter"),
                (":".into(), "command"),
                ("]/[".into(), "next/prev failing"),
                (label("sort"), "sort"),
            ]);
            mutating(&mut hints, &[("pause", "pause")]);
            hints.extend([
                (label("focus"), "logs panel"),
                (
                    format!(
                        "{}/{}/{}/{}",
                        label("errors"),
                        label("history"),
                        label("logs"),
                        label("runs")
                    ),
                    "errors/history/logs/runs",
                ),
            ]);
        }
        View::Runs => {
            hints.extend([
                (label("open"), "open run"),
                (label("back"), "back"),
                (label("filter"), "filter"),
                (format!("{}/{}", label("down"), label("up")), "move"),
            ]);
            mutating(&mut hints, &[("start", "start"), ("retry", "retry")]);
            hints.push((label("history"), "task history"));
        }
        View::Detail => {
            hints.push((label("back"), "back"));
            mutating(
                &mut hints,
                &[("start", "start"), ("retry", "retry"), ("cancel", "cancel")],
            );
            hints.extend([
                (label("open"), "full text"),
                (label("history"), "history"),
                (label("logs"), "logs"),
            ]);
        }
        View::Errors => {
            mutating(
                &mut hints,
                &[("retry", "retry item"), ("abandon", "abandon item")],
            );
            hints.extend([
                (label("open"), "full text"),
                (label("back"), "back"),
                (label("filter"), "filter"),
                (format!("{}/{}", label("down"), label("up")), "move"),
                (label("history"), "history"),
                (label("logs"), "logs"),
            ]);
        }
        View::History => {
            hints.extend([
                (label("open"), "open run"),
                (label("back"), "back"),
                (label("filter"), "filter"),
                (format!("{}/{}", label("down"), label("up")), "move"),
                (label("errors"), "errors"),
                (label("logs"), "logs"),
            ]);
        }
        View::Logs => {
            logs_keys(&mut hints);
            hints.push((label("back"), "back"));
        }
    }
    hints.push((label("quit"), "quit"));
    hints
}

/// The hints that fit `width`, in priority order, with help last: the
/// least useful are dropped whole, never cut.
pub fn fitted_hints(app: &App, width: usize) -> Vec<(String, &'static str)> {
    let help = (app.keymap.label("help").to_string(), "help");
    let cost = |(key, what): &(String, &str)| key.chars().count() + what.chars().count() + 3;
    let mut used = cost(&help);
    let mut fitted = Vec::new();
    for hint in footer_hints(app) {
        if used + cost(&hint) > width {
            break;
        }
        used += cost(&hint);
        fitted.push(hint);
    }
    // In an overlay `?` does not open help: its own keys are all there is.
    if used <= width && app.overlay.is_none() {
        fitted.push(help);
    }
    fitted
}

pub struct Footer<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for Footer<'_> {
    fn render(self, area: Rect, buffer: &mut Buffer) {
        let (app, theme) = (self.app, self.theme);
        let typing = |label: String, text: &str, keys: &str| {
            Line::from(vec![
                Span::styled(label, theme.key()),
                Span::raw(format!("{text}▏  ({keys})")),
            ])
        };
        let line = match (&app.input, &app.status) {
            (Some(Input::TaskFilter(text)), _) => typing(
                " filter tasks: ".into(),
                text,
                "enter keep, esc clear; status:failed kind:table !word",
            ),
            (Some(Input::ListFilter(text)), _) => {
                let (label, example) = match app.view {
                    View::Errors => (" filter errors: ", "kind:batch !word"),
                    View::History => (" filter history: ", "status:failed !word"),
                    _ => (" filter runs: ", "status:failed kind:table !word"),
                };
                typing(
                    label.into(),
                    text,
                    &format!("enter keep, esc clear; {example}"),
                )
            }
            (Some(Input::Command(text)), _) => {
                typing(" :".into(), text, "tab complete, enter run, esc close")
            }
            (Some(Input::LogSearch(text)), _) => {
                typing(" search logs: ".into(), text, "enter keep, esc clear")
            }
            (None, Some((message, _))) if app.overlay.is_none() => Line::from(Span::styled(
                crate::console::format::fit(&format!(" {message}"), area.width as usize),
                theme.warn(),
            )),
            (None, _) => {
                let mut spans = Vec::new();
                for (key, what) in fitted_hints(app, area.width as usize) {
                    spans.push(Span::styled(format!(" {key}"), theme.key()));
                    spans.push(Span::raw(format!(" {what} ")));
                }
                Line::from(spans)
            }
        };
        line.render(area, buffer);
    }
}
