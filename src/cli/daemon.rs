//! `syncdeck daemon`: the schedules without the console, optionally with
//! the service endpoint (`--metrics-addr`), until SIGTERM or ctrl-c.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{Failure, init_logs, load, open_state, usage};
use crate::config::Resolve;
use crate::engine::Engine;
use crate::logging::StderrLogs;
use crate::service::{Endpoint, Metrics};

/// How long the daemon waits for cancelled runs to wind down on SIGTERM.
pub const DAEMON_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) async fn run(
    config_path: Option<&Path>,
    metrics_addr: Option<String>,
) -> Result<u8, Failure> {
    use crate::engine::scheduler::{self, Schedules};
    let config = load(config_path, Resolve::Everything)?;
    let schedules = Schedules::new(
        &config,
        tokio::time::Instant::now(),
        scheduler::until_aligned_slot,
    );
    if schedules.is_empty() {
        return Err(usage(format!(
            "no task in {} has a schedule; add schedule = \"5m\" to the tasks the daemon should run",
            config.file.display()
        )));
    }
    let _logs = init_logs(&config, StderrLogs::Warnings);
    let metrics_addr = metrics_addr.or_else(|| config.engine.metrics_addr.clone());
    let metrics = metrics_addr.as_ref().map(|_| {
        Arc::new(Metrics::new(
            config.tasks.iter().map(|task| task.id.as_str()),
        ))
    });
    let mut state = open_state(&config).await?;
    if let Some(metrics) = &metrics {
        state = metrics.count_errors(state);
    }
    let engine = Engine::new(Arc::new(config), state, crate::kinds::all())
        .await
        .context("cannot start the engine")?;
    let stop = tokio_util::sync::CancellationToken::new();
    // Bound (and subscribed to the engine's events) before any run starts.
    let endpoint_stop = CancellationToken::new();
    let endpoint = match (&metrics_addr, metrics) {
        (Some(address), Some(metrics)) => {
            let endpoint = Endpoint::bind(address, metrics, &engine, &endpoint_stop)
                .await
                .map_err(|error| usage(error.to_string()))?;
            if let Some(bound) = endpoint.local_addr() {
                tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
            }
            Some(tokio::spawn(endpoint.serve(endpoint_stop.clone())))
        }
        _ => None,
    };
    engine.spawn_adoption();
    tracing::info!("daemon started");
    // Nothing sends schedule commands to a daemon yet; the channel stays open.
    let (_commands, receiver) = tokio::sync::mpsc::channel(1);
    let scheduler = tokio::spawn(scheduler::run(
        Arc::clone(&engine),
        schedules,
        receiver,
        stop.clone(),
    ));

    // Runs of workers that died show as `interrupted` once their lease expires.
    let sweeper = {
        let (state, every) = (Arc::clone(engine.state()), engine.config().engine.lease_ttl);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                match state.mark_interrupted().await {
                    Ok(0) => {}
                    Ok(count) => {
                        tracing::warn!(count, "runs of stopped workers marked interrupted")
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not check for runs of stopped workers")
                    }
                }
            }
        })
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping: no new runs; cancelling the runs in progress");
    stop.cancel();
    sweeper.abort();
    let _ = scheduler.await;
    engine.cancel_all();
    let deadline = tokio::time::Instant::now() + DAEMON_STOP_GRACE;
    while !engine.active_runs().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left = engine.active_runs().len();
    if left > 0 {
        tracing::error!(
            runs = left,
            "runs still winding down at exit; they will show as interrupted"
        );
    }
    endpoint_stop.cancel();
    if let Some(endpoint) = endpoint {
        let _ = endpoint.await;
    }
    tracing::info!("daemon stopped");
    Ok(0)
}
