//! Console benchmarks, written to the "Console" section of BENCHMARKS.md:
//! - frame time: the median time to build and draw one frame with 10,000
//!   tasks and 1,000,000 buffered log lines (task view and log view),
//!   against a reference frame with 10 tasks and no logs, in the same run;
//! - memory: resident memory before and after 1,000 such frames, and after
//!   1,000,000 log lines went through the console's log buffer against
//!   after its first 10,000;
//! - idle CPU: the real binary in tmux on a 10,000-task config, doing
//!   nothing for 10 s, against `sleep` measured the same way.
//!
//!   cargo bench --bench console

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use syncdeck::config::{self, Resolve};
use syncdeck::console::app::{App, Msg};
use syncdeck::console::keymap::Keymap;
use syncdeck::console::theme::Theme;
use syncdeck::console::views::Screen;
use syncdeck::logging::{LogBuffer, LogLine};
use syncdeck::run::event::EngineEvent;
use syncdeck::run::{RunCounters, RunRecord, RunStatus, Trigger};
use tracing_subscriber::layer::SubscriberExt;

fn app_with(tasks: usize, log_lines: usize) -> App {
    let mut text = String::new();
    for index in 0..tasks {
        text.push_str(&format!(
            "[[tasks]]\nid = \"task_{index:04}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/{index}/\"\ndestination_path = \"out/{index}/\"\n"
        ));
    }
    let config = config::parse(
        Path::new("/bench/syncdeck.toml"),
        &text,
        Resolve::Everything,
    )
    .expect("config");
    let logs = LogBuffer::new(log_lines.max(1));
    for index in 0..log_lines {
        logs.push(LogLine {
            time: Utc::now(),
            level: if index % 10 == 0 {
                tracing::Level::WARN
            } else {
                tracing::Level::INFO
            },
            task_id: Some(format!("task_{:04}", index % tasks.max(1))),
            run_id: Some(index as i64),
            message: format!("file synced path=data/{index}.csv bytes=4096"),
            origin: None,
        });
    }
    let mut app = App::new(&config, Keymap::default(), logs, "sqlite", false);
    let runs: Vec<RunRecord> = (0..tasks)
        .map(|index| RunRecord {
            run_id: index as i64,
            task_id: format!("task_{index:04}"),
            trigger: Trigger::Schedule,
            status: [RunStatus::Succeeded, RunStatus::Partial, RunStatus::Failed][index % 3],
            started_at: Utc::now(),
            completed_at: Some(Utc::now()),
            duration_ms: Some(1200),
            counters: RunCounters {
                files_synced: 10,
                totals_known: true,
                ..Default::default()
            },
            error: None,
            warning: None,
            execution_date: None,
        })
        .collect();
    app.update(Msg::RunsLoaded(runs));
    for index in (0..tasks).step_by(10) {
        app.update(Msg::Engine(EngineEvent::RunStarted {
            run_id: 100_000 + index as i64,
            task_id: format!("task_{index:04}"),
            trigger: Trigger::Manual,
            started_at: Utc::now(),
        }));
    }
    app
}

/// Median time to build and draw one 160x48 frame, over `frames` frames.
fn frame_time(app: &App, frames: u32) -> Duration {
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let theme = Theme::from_env(syncdeck::console::theme::ThemeName::Dark);
    for _ in 0..10 {
        terminal
            .draw(|frame| frame.render_widget(Screen { app, theme }, frame.area()))
            .expect("draw");
    }
    let mut times: Vec<Duration> = (0..frames)
        .map(|_| {
            let start = Instant::now();
            terminal
                .draw(|frame| frame.render_widget(Screen { app, theme }, frame.area()))
                .expect("draw");
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Resident memory before and after drawing `frames` frames.
fn memory_over_frames(app: &App, frames: u32) -> (u64, u64) {
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let theme = Theme::from_env(syncdeck::console::theme::ThemeName::Dark);
    terminal
        .draw(|frame| frame.render_widget(Screen { app, theme }, frame.area()))
        .expect("draw");
    let before = rss_kib();
    for _ in 0..frames {
        terminal
            .draw(|frame| frame.render_widget(Screen { app, theme }, frame.area()))
            .expect("draw");
    }
    (before, rss_kib())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs the console in tmux on a 10,000-task config, idle, for 10 s.
fn idle_cpu() -> Option<(f64, f64)> {
    let directory = tempfile::tempdir().ok()?;
    let mut text = String::from("[engine]\nstate = \"sqlite:state.db\"\nlog_dir = \"logs\"\n");
    for index in 0..10_000 {
        text.push_str(&format!(
            "[[tasks]]\nid = \"task_{index:04}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n"
        ));
    }
    std::fs::write(directory.path().join("syncdeck.toml"), text).ok()?;
    let socket = format!("syncdeck-bench-{}", std::process::id());
    let binary = env!("CARGO_BIN_EXE_syncdeck");
    let started = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "48",
            "-c",
        ])
        .arg(directory.path())
        .args([binary, "-c", "syncdeck.toml"])
        .status()
        .ok()?;
    if !started.success() {
        return None;
    }
    // Start-up (reading the config, the first frame) is not idle time.
    std::thread::sleep(Duration::from_secs(5));
    let pane_pid = Command::new("tmux")
        .args(["-L", &socket, "list-panes", "-F", "#{pane_pid}"])
        .output()
        .ok()?;
    let pid: u32 = String::from_utf8_lossy(&pane_pid.stdout)
        .trim()
        .parse()
        .ok()?;
    let before = cpu_seconds(pid)?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let used = cpu_seconds(pid)? - before;
    let wall = start.elapsed().as_secs_f64();
    // Reference: a process that only sleeps, measured the same way.
    let mut sleeper = Command::new("sleep").arg("10").spawn().ok()?;
    let sleeper_before = cpu_seconds(sleeper.id())?;
    std::thread::sleep(Duration::from_secs(10));
    let sleeper_used = cpu_seconds(sleeper.id()).unwrap_or(sleeper_before) - sleeper_before;
    let _ = sleeper.wait();
    let _ = Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
    Some((used / wall * 100.0, sleeper_used / 10.0 * 100.0))
}

fn write_section(section: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let mut kept = String::new();
    let mut skipping = false;
    for line in old.lines() {
        if line.starts_with("## ") {
            skipping = line.starts_with("## Console");
        }
        if !skipping {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let text = format!("{}\n{section}", kept.trim_end());
    if let Err(error) = std::fs::write(&path, text) {
        eprintln!("cannot write {}: {error}", path.display());
    }
}

fn main() {
    // Memory: the same buffer the console uses, fed through tracing.
    let buffer = LogBuffer::new(syncdeck::logging::DEFAULT_LOG_CAPACITY);
    let subscriber =
        tracing_subscriber::registry().with(syncdeck::logging::buffer_layer(buffer.clone()));
    let (after_10k, after_1m) = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("run", task_id = %"bench", run_id = 1i64);
        let _entered = span.enter();
        for index in 0..10_000u64 {
            tracing::info!(path = %format!("data/{index}.csv"), bytes = 4096, "file synced");
        }
        let after_10k = rss_kib();
        for index in 10_000..1_000_000u64 {
            tracing::info!(path = %format!("data/{index}.csv"), bytes = 4096, "file synced");
        }
        (after_10k, rss_kib())
    });
    println!(
        "memory: {after_10k} KiB after 10k lines, {after_1m} KiB after 1M (buffer holds {})",
        buffer.len()
    );

    let reference = app_with(10, 0);
    let big = app_with(10_000, 1_000_000);
    let reference_frame = frame_time(&reference, 1000);
    let big_frame = frame_time(&big, 300);
    let (rss_before_frames, rss_after_frames) = memory_over_frames(&big, 1000);
    let mut logs_view = big;
    logs_view.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('4'),
    )));
    let logs_frame = frame_time(&logs_view, 300);
    println!(
        "frame: reference {reference_frame:?}, 10,000 tasks + 1M lines {big_frame:?}, logs view {logs_frame:?}; memory over 1,000 frames {rss_before_frames} -> {rss_after_frames} KiB"
    );

    let idle = idle_cpu();
    println!("idle CPU: {idle:?}");
    let idle_row = match idle {
        Some((console, sleeper)) => format!("| idle console, 10,000 tasks, 10 s in tmux (the real binary and event loop) | {console:.2}% of a core | `sleep`: {sleeper:.2}% | under 1% of a core |"),
        None => "| idle console, 10,000 tasks, 10 s in tmux | not measured (tmux missing) | | under 1% of a core |".into(),
    };
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let section = format!(
        "## Console\n\n\
         Written by `cargo bench --bench console` on {date} (release build; on a shared machine run\n\
         it under the cargo lock: `flock -o /tmp/syncdeck-cargo.lock cargo bench --bench console`).\n\
         Frames are 160x48, drawn into ratatui's `TestBackend` (build the view from the model and\n\
         diff the buffer; no terminal I/O); frame times are medians.\n\n\
         | measure | syncdeck | reference (same run) | target |\n|---|---:|---:|---|\n\
         | frame, 10,000 tasks + 1,000,000 log lines, task view | {big:.3} ms | 10 tasks, no logs: {reference:.3} ms ({big_ratio:.1}x) | under 2 ms |\n\
         | frame, 10,000 tasks + 1,000,000 log lines, log view | {logs:.3} ms | {logs_ratio:.1}x the reference | under 2 ms |\n\
         {idle_row}\n\
         | resident memory after 1,000 frames (10,000 tasks, 1,000,000 lines) | {rss_after_frames} KiB | before them: {rss_before_frames} KiB ({frames_ratio:.3}x) | flat |\n\
         | resident memory after 1,000,000 log lines through the buffer | {after_1m} KiB | after 10,000: {after_10k} KiB ({memory_ratio:.2}x) | flat (buffer keeps {capacity} lines) |\n",
        date = Utc::now().format("%Y-%m-%d"),
        big = ms(big_frame),
        reference = ms(reference_frame),
        big_ratio = ms(big_frame) / ms(reference_frame),
        logs = ms(logs_frame),
        logs_ratio = ms(logs_frame) / ms(reference_frame),
        frames_ratio = rss_after_frames as f64 / rss_before_frames.max(1) as f64,
        memory_ratio = after_1m as f64 / after_10k.max(1) as f64,
        capacity = syncdeck::logging::DEFAULT_LOG_CAPACITY,
    );
    write_section(&section);
    println!("{section}");
}
