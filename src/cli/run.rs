//! `syncdeck run`: the tasks (and their dependencies) once, headless,
//! with progress bars on a terminal, each run's summary as it ends, and a
//! totals line; ctrl-c cancels the runs cleanly. `--dry-run` shows the plans.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use super::{
    Failure, RunArgs, exit_code, init_logs, load, open_engine, plan_with, progress, report,
    summaries, usage,
};
use crate::config::Resolve;
use crate::engine::{Engine, EngineError, RunOptions};
use crate::logging::StderrLogs;

/// Exit code after ctrl-c (128 + SIGINT), as shells expect.
const EXIT_INTERRUPTED: u8 = 130;

pub(super) async fn run(config_path: Option<&Path>, args: RunArgs) -> Result<u8, Failure> {
    let config = load(config_path, Resolve::Everything)?;
    for task in &args.tasks {
        if config.task(task).is_none() {
            return Err(usage(config.unknown_task(task)));
        }
    }
    if args.dry_run {
        let ids: Vec<String> = if args.tasks.is_empty() {
            config.tasks.iter().map(|t| t.id.clone()).collect()
        } else {
            args.tasks.clone()
        };
        let mut code = 0;
        for task in ids {
            code =
                code.max(plan_with(&config, &task, args.execution_date, args.json, false).await?);
        }
        if !args.json {
            println!("dry run: nothing was copied or loaded");
        }
        return Ok(code);
    }
    let progress = std::io::stderr().is_terminal();
    let _logs = init_logs(
        &config,
        if progress {
            StderrLogs::Off
        } else {
            StderrLogs::Info
        },
    );
    let engine = open_engine(config).await?;
    let started = std::time::Instant::now();
    let width = report::terminal_width();
    let watcher = progress.then(|| progress::spawn(&engine));
    let bars = watcher.as_ref().map(progress::Watcher::bars);
    let summaries = summaries::spawn(&engine, args.json, bars.clone(), width);
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interrupt = spawn_interrupt_handler(Arc::clone(&engine), bars, Arc::clone(&interrupted));
    let options = RunOptions {
        execution_date: args.execution_date,
    };
    let results = engine.run_tasks(&args.tasks, !args.no_deps, options).await;
    interrupt.abort();
    if let Some(watcher) = watcher {
        watcher.finish().await;
    }
    let shown = summaries.finish().await;
    let results = results.map_err(|error| match error {
        EngineError::UnknownTask(_) => usage(error.to_string()),
        other => anyhow::Error::from(other).into(),
    })?;
    report::results(
        &results,
        &report::Kinds::of(engine.config()),
        args.json,
        &shown,
        width,
        started.elapsed(),
    );
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(exit_code(&results))
}

/// First ctrl-c or SIGTERM: cancel every run cleanly (and remember a
/// ctrl-c, for exit code 130). Second ctrl-c: clear the bars, exit now.
fn spawn_interrupt_handler(
    engine: Arc<Engine>,
    bars: Option<indicatif::MultiProgress>,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            _ = terminated => {}
        }
        let say = || eprintln!("syncdeck: cancelling runs (press ctrl-c again to stop at once)");
        match &bars {
            Some(bars) => bars.suspend(say),
            None => say(),
        }
        engine.cancel_all();
        if tokio::signal::ctrl_c().await.is_ok() {
            if let Some(bars) = &bars {
                let _ = bars.clear();
            }
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    })
}
