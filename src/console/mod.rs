//! The console: an interactive terminal UI over the engine.
//!
//! One loop waits for the next message (a key, an engine event, new log
//! lines, a load result or a tick), then drains whatever else is queued,
//! updates the model and draws at most one frame. Nothing is drawn while
//! nothing changes, so an idle console costs almost no CPU. The terminal
//! is restored on every exit, a panic included.
//!
//! Depends on `engine` (commands, events, scheduler), `run`, `state`,
//! `config` and `logging`; the model in `app` does no I/O.

pub mod app;
pub(crate) mod format;
pub mod fulltext;
mod input;
pub mod keymap;
pub mod lists;
mod mouse;
mod run_state;
pub mod theme;
pub mod triage;
mod update;
pub mod views;

#[cfg(test)]
mod tests;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::{broadcast, mpsc};

use crate::engine::Engine;
use crate::engine::scheduler::{self, ScheduleCommand, Schedules};
use crate::logging::LogBuffer;
use crate::state::{ItemStatus, StateStore};
use app::{App, Command, Msg};
use keymap::Keymap;
use theme::Theme;

/// How often the clock, ETA and countdowns are refreshed.
const TICK: Duration = Duration::from_millis(250);
/// Longest wait for cancelled runs to wind down when quitting.
const QUIT_GRACE: Duration = Duration::from_secs(10);
/// Runs loaded at start to show each task's last result.
const RECENT_RUNS: usize = 1000;
/// Runs read each second to follow other processes' runs.
const POLLED_RUNS: usize = 100;
/// How often the log folder is read for lines other processes logged.
const FOLLOW_LOGS_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the console needs a terminal; use `syncdeck run` for headless runs")]
    NotATerminal,
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// Runs the console until the operator quits.
/// `mouse` turns mouse support on (else `[console] mouse` decides).
pub async fn run(
    engine: Arc<Engine>,
    logs: LogBuffer,
    read_only: bool,
    mouse: bool,
) -> Result<(), ConsoleError> {
    if !io::stdout().is_terminal() {
        return Err(ConsoleError::NotATerminal);
    }
    let config = Arc::clone(engine.config());
    let mut app = App::new(
        &config,
        Keymap::new(&config.keys),
        logs.clone(),
        engine.state().kind(),
        read_only,
    );
    app.utc_offset = *chrono::Local::now().offset();
    let follower = follow_other_logs(config.resolve_path(&config.engine.log_dir), logs.clone());
    let mouse = mouse || config.console.mouse;
    let mut terminal = enter_terminal(mouse)?;
    let result = event_loop(&mut terminal, &mut app, &engine, &logs, read_only).await;
    restore_terminal();
    follower.abort();
    // A read-only console started nothing, so it has nothing to cancel.
    if !read_only && !engine.active_runs().is_empty() {
        engine.cancel_all();
        let deadline = tokio::time::Instant::now() + QUIT_GRACE;
        while !engine.active_runs().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    result
}

/// Merges lines that other processes on this config (a daemon, a
/// headless run) write to the shared log folder into the console's buffer,
/// so the log view is one log; see [`crate::logging::tail`].
fn follow_other_logs(log_dir: std::path::PathBuf, logs: LogBuffer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tail = crate::logging::tail::LogTail::new(&log_dir, std::process::id());
        let mut interval = tokio::time::interval(FOLLOW_LOGS_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // File reads block: off the runtime's threads.
            let read = tokio::task::spawn_blocking(move || {
                let lines = tail.read_new();
                (tail, lines)
            });
            match read.await {
                Ok((kept, lines)) => {
                    tail = kept;
                    logs.merge(lines);
                }
                Err(_) => return,
            }
        }
    })
}

type ConsoleTerminal = Terminal<CrosstermBackend<io::Stdout>>;

fn enter_terminal(mouse: bool) -> Result<ConsoleTerminal, io::Error> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Restore first, so the panic message lands on a normal screen.
        restore_terminal();
        previous(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(
        io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::cursor::Hide
    )?;
    if mouse {
        crossterm::execute!(io::stdout(), crossterm::event::EnableMouseCapture)?;
    }
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    // Harmless when capture was never on.
    let _ = crossterm::execute!(
        io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

async fn event_loop(
    terminal: &mut ConsoleTerminal,
    app: &mut App,
    engine: &Arc<Engine>,
    logs: &LogBuffer,
    read_only: bool,
) -> Result<(), ConsoleError> {
    // Colour or not is fixed for the session; the palette follows `:theme`.
    let color = Theme::from_env(app.theme).color;
    let mut terminal_events = EventStream::new();
    let mut engine_events = engine.subscribe();
    // Results of state-store reads come back here as messages.
    let (loaded_tx, mut loaded_rx) = mpsc::channel::<Msg>(16);
    // The scheduler runs inside the console; `p` reaches it through this.
    // A read-only console watches: it runs no scheduler, so it never takes
    // a slot from a daemon sharing the store.
    let (schedule_tx, schedule_rx) = mpsc::channel(16);
    let stop_scheduler = tokio_util::sync::CancellationToken::new();
    let _stop_on_exit = stop_scheduler.clone().drop_guard();
    if !read_only {
        let schedules = Schedules::new(
            engine.config(),
            tokio::time::Instant::now(),
            scheduler::until_aligned_slot,
        );
        tokio::spawn(scheduler::run(
            Arc::clone(engine),
            schedules,
            schedule_rx,
            stop_scheduler,
        ));
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let mut pending = app.init();
    let mut first_frame = true;
    loop {
        for command in pending.drain(..) {
            if command == Command::Quit {
                return Ok(());
            }
            carry_out(command, engine, &loaded_tx, &schedule_tx);
        }
        if app.dirty {
            app.dirty = false;
            if let Ok(size) = terminal.size() {
                app.page_rows = views::task_rows(size.height);
                app.screen = (size.width, size.height);
            }
            let theme = Theme {
                color,
                palette: theme::Palette::of(app.theme),
            };
            terminal
                .draw(|frame| frame.render_widget(views::Screen { app, theme }, frame.area()))?;
            if first_frame {
                first_frame = false;
                inject_panic_for_tests();
            }
        }
        let message = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => Msg::Key(key),
                Some(Ok(Event::Resize(..))) => Msg::Resized,
                Some(Ok(Event::Mouse(mouse))) => Msg::Mouse(mouse),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
            event = engine_events.recv() => match event {
                Ok(event) => Msg::Engine(event),
                Err(broadcast::error::RecvError::Lagged(_)) => Msg::EngineLagged,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = logs.changed() => Msg::LogsChanged,
            Some(message) = loaded_rx.recv() => message,
            _ = tick.tick() => Msg::Tick,
        };
        app.set_now(chrono::Utc::now());
        pending = app.update(message);
        // Drain what else is queued before drawing once.
        loop {
            match engine_events.try_recv() {
                Ok(event) => pending.extend(app.update(Msg::Engine(event))),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    pending.extend(app.update(Msg::EngineLagged))
                }
                Err(_) => break,
            }
        }
        while let Ok(message) = loaded_rx.try_recv() {
            pending.extend(app.update(message));
        }
    }
}

/// Starts what a command asks for; reads report back through `loaded`.
fn carry_out(
    command: Command,
    engine: &Arc<Engine>,
    loaded: &mpsc::Sender<Msg>,
    schedules: &mpsc::Sender<ScheduleCommand>,
) {
    let state = Arc::clone(engine.state());
    let loaded = loaded.clone();
    match command {
        Command::Quit => {}
        Command::Engine(command) => engine.execute(command),
        Command::PauseSchedule { task_id, paused } => {
            let command = if paused {
                ScheduleCommand::Pause(task_id)
            } else {
                ScheduleCommand::Resume(task_id)
            };
            if schedules.try_send(command).is_err() {
                tracing::warn!("the scheduler is busy; try again");
            }
        }
        Command::LoadRuns | Command::PollRuns => {
            let limit = if command == Command::LoadRuns {
                RECENT_RUNS
            } else {
                POLLED_RUNS
            };
            tokio::spawn(async move {
                match state.runs(None, limit).await {
                    Ok(runs) => {
                        let _ = loaded.send(Msg::RunsLoaded(runs)).await;
                    }
                    Err(error) => tracing::error!(%error, "could not read runs"),
                }
            });
        }
        Command::LoadHistory { task_id } => {
            tokio::spawn(async move {
                match state.runs(Some(&task_id), 200).await {
                    Ok(runs) => {
                        let _ = loaded.send(Msg::HistoryLoaded(runs)).await;
                    }
                    Err(error) => tracing::error!(%error, "could not read history"),
                }
            });
        }
        Command::LoadRunList => {
            tokio::spawn(async move {
                match state.runs(None, lists::RUNS_LISTED).await {
                    Ok(runs) => {
                        let _ = loaded.send(Msg::RunListLoaded(runs)).await;
                    }
                    Err(error) => tracing::error!(%error, "could not read runs"),
                }
            });
        }
        Command::LoadPauses => {
            tokio::spawn(async move {
                match state.paused_schedules().await {
                    Ok(paused) => {
                        let _ = loaded.send(Msg::PausesLoaded(paused)).await;
                    }
                    Err(error) => tracing::warn!(%error, "could not read paused schedules"),
                }
            });
        }
        Command::LoadFilesInFlight { task_id, run_id } => {
            tokio::spawn(async move {
                match state.files_in_flight(run_id).await {
                    Ok(files) => {
                        let message = Msg::FilesInFlightLoaded {
                            task_id,
                            run_id,
                            files,
                        };
                        let _ = loaded.send(message).await;
                    }
                    Err(error) => tracing::warn!(%error, "could not read the files in flight"),
                }
            });
        }
        Command::AbandonItems { task_id, item_ids } => {
            tokio::spawn(async move {
                for id in item_ids {
                    if let Err(error) = state.set_item_status(id, ItemStatus::Abandoned).await {
                        tracing::error!(task_id, item = id, %error, "could not abandon a failed item");
                    }
                }
                load_failed_items(&*state, &loaded).await;
            });
        }
        Command::LoadFailedItems => {
            tokio::spawn(async move { load_failed_items(&*state, &loaded).await });
        }
    }
}

/// Reads the failed items the errors view lists: pending ones, and gone
/// ones too, so it shows what became of a failed file deleted at the
/// source.
async fn load_failed_items(state: &dyn StateStore, loaded: &mpsc::Sender<Msg>) {
    match state.failed_items(None, false).await {
        Ok(mut items) => {
            items.retain(|item| matches!(item.status, ItemStatus::Pending | ItemStatus::Gone));
            let _ = loaded.send(Msg::FailedItemsLoaded(items)).await;
        }
        Err(error) => tracing::error!(%error, "could not read failed items"),
    }
}

/// Debug builds panic after the first frame when `SYNCDECK_DEBUG_PANIC` is
/// set, so tests can check that a panic restores the terminal.
fn inject_panic_for_tests() {
    #[cfg(debug_assertions)]
    if std::env::var_os("SYNCDECK_DEBUG_PANIC").is_some() {
        #[allow(clippy::panic, reason = "the test hook exists to panic")]
        {
            panic!("injected panic (SYNCDECK_DEBUG_PANIC is set)");
        }
    }
}
