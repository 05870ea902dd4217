//! The screen's frame and its options: breadcrumbs in the header, the
//! footer of each view and panel, wide layouts, themes and the mouse.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::snapshots::screen;
use super::*;
use crate::console::theme::ThemeName;

fn header(app: &App, width: u16) -> String {
    screen(app, width, 24)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn footer(app: &App, width: u16, height: u16) -> String {
    screen(app, width, height)
        .lines()
        .last()
        .unwrap_or_default()
        .trim_matches('"')
        .trim_end()
        .to_string()
}

/// Every view, panel and overlay with its own footer, as the operator
/// reaches it from the task list.
fn contexts() -> Vec<(&'static str, App)> {
    let reach = |keys: &[Msg]| {
        let mut app = fixture();
        for key in keys {
            app.update(key.clone());
        }
        app.status = None;
        app
    };
    vec![
        ("tasks", reach(&[])),
        ("tasks, logs panel", reach(&[key(KeyCode::Tab)])),
        ("detail", reach(&[key(KeyCode::Enter)])),
        ("errors", reach(&[char_key('2')])),
        ("history", reach(&[char_key('3')])),
        ("logs", reach(&[char_key('4')])),
        ("full text", reach(&[char_key('4'), key(KeyCode::Enter)])),
        ("help", reach(&[char_key('?')])),
        ("confirm", reach(&[char_key('c')])),
        ("read-only tasks", {
            let mut app = fixture_with(true, "");
            app.status = None;
            app
        }),
    ]
}

fn footers_at(width: u16, height: u16) -> String {
    contexts()
        .into_iter()
        .map(|(name, app)| format!("{name:>16}: {}", footer(&app, width, height)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshot_every_views_footer() {
    insta::assert_snapshot!("footers_80x24", footers_at(80, 24));
    insta::assert_snapshot!("footers_160x48", footers_at(160, 48));
}

#[test]
fn every_footer_fits_80_columns_and_ends_with_help() {
    for (name, app) in contexts() {
        let line = footer(&app, 80, 24);
        let expected_end = match name {
            "help" => "close",
            "full text" => "top/end",
            "confirm" => "no",
            _ => "? help",
        };
        assert!(
            line.ends_with(expected_end),
            "the {name} footer at 80 columns lost `{expected_end}`: {line:?}"
        );
    }
}

#[test]
fn the_logs_footer_lists_the_log_keys_and_the_detail_footer_says_esc_back() {
    let contexts = contexts();
    let find = |wanted: &str| {
        contexts
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, app)| footer(app, 80, 24))
            .unwrap_or_default()
    };
    let logs = find("logs");
    for hint in [
        "f follow",
        "l level",
        "t this task",
        "/ search",
        "n/N next/prev match",
    ] {
        assert!(logs.contains(hint), "logs footer lacks `{hint}`: {logs}");
    }
    let detail = find("detail");
    assert!(detail.starts_with(" esc back"), "{detail}");
    assert!(!detail.contains("details"), "{detail}");
    let full_text = find("full text");
    assert!(full_text.contains("esc back") && full_text.contains("j/k scroll"));
}

#[test]
fn the_header_shows_where_the_operator_is_as_breadcrumbs() {
    let mut app = fixture();
    assert!(
        header(&app, 160).contains("syncdeck  tasks ·"),
        "{}",
        header(&app, 160)
    );
    app.update(key(KeyCode::Enter));
    assert!(
        header(&app, 160).contains("tasks › orders_to_s3 › run 46"),
        "{}",
        header(&app, 160)
    );
    app.update(key(KeyCode::Esc));
    app.update(char_key('2'));
    assert!(
        header(&app, 160).contains("tasks › errors › vendor_feed"),
        "{}",
        header(&app, 160)
    );
    app.update(key(KeyCode::Esc));
    select(&mut app, "vendor_feed");
    app.update(char_key('3'));
    assert!(
        header(&app, 160).contains("tasks › vendor_feed › history"),
        "{}",
        header(&app, 160)
    );
}

#[test]
fn a_narrow_header_cuts_the_breadcrumbs_on_the_left_and_keeps_the_failing_count() {
    let mut app = fixture();
    app.update(key(KeyCode::Enter));
    let line = header(&app, 56);
    assert!(line.contains("…"), "{line}");
    assert!(line.contains("run 46"), "{line}");
    assert!(line.contains("2 failing"), "{line}");
    assert!(!line.contains("syncdeck.toml"), "{line}");
}

#[test]
fn a_finished_runs_age_says_ago_and_a_wide_list_says_how_long_it_took() {
    let app = fixture();
    let narrow = screen(&app, 80, 24);
    let row = narrow
        .lines()
        .find(|line| line.contains("daily_backup"))
        .unwrap_or_default();
    assert!(row.contains("ok 2m ago"), "{row}");
    let wide = screen(&app, 200, 48);
    let row = wide
        .lines()
        .find(|line| line.contains("daily_backup"))
        .unwrap_or_default();
    for column in [
        "ok 2m ago",
        "took 12s",
        "120 files 120.0M",
        "in/daily_backup/ → out/daily_backup/",
        "manual",
    ] {
        assert!(row.contains(column), "the wide row lacks `{column}`: {row}");
    }
}

#[test]
fn snapshot_a_never_run_tasks_detail() {
    let mut app = fixture();
    select(&mut app, "new_task");
    super::snapshots::snapshot_views("detail_never_run", &mut app, &[key(KeyCode::Enter)]);
}

#[test]
fn a_never_run_task_says_where_it_reads_and_writes_in_the_summary_too() {
    let mut app = fixture();
    select(&mut app, "new_task");
    let text = screen(&app, 160, 48);
    assert!(
        text.contains("route in/new_task/ → out/new_task/"),
        "{text}"
    );
    assert!(text.contains("sched none: runs when started"), "{text}");
}

#[test]
fn the_palette_switches_the_theme_and_refuses_an_unknown_one() {
    let mut app = fixture();
    assert_eq!(app.theme, ThemeName::Dark);
    press(&mut app, ":theme light");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.theme, ThemeName::Light);
    press(&mut app, ":theme sepia");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.theme, ThemeName::Light);
    let status = app.status.clone().map(|(text, _)| text).unwrap_or_default();
    assert_eq!(status, "no theme `sepia`; themes are dark, light");
    assert!(app.palette_candidates().contains(&"theme dark".to_string()));
}

#[test]
fn the_config_chooses_the_theme_and_mouse_support() {
    let config = config("[theme]\nname = \"light\"\n[console]\nmouse = true\n");
    assert_eq!(config.theme.name, ThemeName::Light);
    assert!(config.console.mouse);
    let app = App::new(
        &config,
        Keymap::new(&config.keys),
        LogBuffer::new(10),
        "sqlite",
        false,
    );
    assert_eq!(app.theme, ThemeName::Light);
    assert!(!super::config("").console.mouse, "mouse is off by default");
}

#[test]
fn an_unknown_theme_in_the_config_is_an_error_naming_the_themes() {
    let text = "[theme]\nname = \"solarized\"\n";
    let errors = config::parse(
        Path::new("/etc/syncdeck/syncdeck.toml"),
        text,
        Resolve::Everything,
    )
    .err()
    .map(|error| error.to_string())
    .unwrap_or_default();
    assert!(errors.contains("syncdeck.toml:2"), "{errors}");
    assert!(errors.contains("solarized"), "{errors}");
    assert!(
        errors.contains("dark") && errors.contains("light"),
        "{errors}"
    );
}

fn mouse(kind: MouseEventKind, column: u16, row: u16) -> Msg {
    Msg::Mouse(MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    })
}

#[test]
fn a_click_on_a_task_selects_it_and_a_click_on_the_logs_focuses_them() {
    let mut app = fixture();
    app.screen = (80, 24);
    // Header, the list's top border, then one task per row: the fourth
    // task (archive_logs) is on row 5.
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), 10, 5));
    assert_eq!(
        app.selected_task().map(|task| task.id.as_str()),
        Some("archive_logs")
    );
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), 10, 20));
    assert_eq!(app.focus, Focus::Logs);
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), 10, 3));
    assert_eq!(app.focus, Focus::Tasks);
    assert_eq!(
        app.selected_task().map(|task| task.id.as_str()),
        Some("daily_backup")
    );
}

#[test]
fn a_click_in_a_scrolled_list_selects_the_row_under_the_pointer_and_nothing_moves() {
    use ratatui::layout::Rect;
    let mut app = fixture();
    // A short screen: the six tasks do not all fit in the list.
    let (width, height) = (80, 13);
    app.screen = (width, height);
    let [_, body, _] = crate::console::views::screen_layout(Rect::new(0, 0, width, height));
    let [list, _, _] = crate::console::views::tasks_layout(body);
    let rows = usize::from(list.height - 2);
    assert!(rows < 6, "the list must scroll: {rows} rows");
    for _ in 0..5 {
        app.update(char_key('j'));
    }
    screen(&app, width, height);
    let first = app.task_scroll.get();
    assert!(first > 0, "the list scrolled to the last task");
    // A click on the list's first row selects the task drawn there.
    let drawn = app.visible_tasks()[first].id.clone();
    app.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        10,
        list.y + 1,
    ));
    assert_eq!(
        app.selected_task().map(|task| task.id.clone()),
        Some(drawn.clone())
    );
    let after = screen(&app, width, height);
    assert_eq!(app.task_scroll.get(), first, "the list did not scroll");
    let row = after
        .lines()
        .nth(usize::from(list.y) + 1)
        .unwrap_or_default()
        .to_string();
    assert!(row.contains(&drawn) && row.contains('›'), "{after}");
}

#[test]
fn the_wheel_scrolls_the_list_or_the_logs_under_the_pointer() {
    let mut app = fixture();
    app.screen = (80, 24);
    app.update(mouse(MouseEventKind::ScrollDown, 10, 5));
    assert_eq!(app.selected, 3);
    app.update(mouse(MouseEventKind::ScrollUp, 10, 20));
    assert_eq!(app.log_view.offset, 3);
    assert!(!app.log_view.follow);
    assert_eq!(app.focus, Focus::Tasks, "the wheel leaves the focus alone");
    assert_eq!(app.selected, 3);
    app.update(mouse(MouseEventKind::ScrollDown, 10, 20));
    assert!(app.log_view.follow);
    app.update(char_key('2'));
    app.update(mouse(MouseEventKind::ScrollDown, 10, 5));
    assert_eq!(app.errors_selected, 1);
}
