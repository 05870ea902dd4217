//! The engine with fake task bodies: what it records and publishes,
//! whatever the sync kind.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{self, Resolve, TaskConfig};
use crate::task::{PlanRequest, TaskBody, TaskPlan};

/// A body that ends as told, without touching anything.
struct FakeBody(RunStatus);

#[async_trait]
impl TaskBody for FakeBody {
    async fn run(&self, context: &RunContext) -> TaskOutcome {
        context.update_counters(|counters| counters.files_synced = 3);
        TaskOutcome::new(self.0, None, None)
    }

    async fn plan(&self, _request: &PlanRequest) -> Result<TaskPlan, String> {
        Err("fake tasks have no plan".into())
    }
}

/// A body that works until its run is cancelled.
struct UntilCancelled;

#[async_trait]
impl TaskBody for UntilCancelled {
    async fn run(&self, context: &RunContext) -> TaskOutcome {
        context.cancel.cancelled().await;
        TaskOutcome::cancelled()
    }

    async fn plan(&self, _request: &PlanRequest) -> Result<TaskPlan, String> {
        Err("fake tasks have no plan".into())
    }
}

/// Every task runs a [`FakeBody`]; tasks whose id starts with `fail`
/// fail, those whose id starts with `wait` run until cancelled.
struct FakeBodies;

impl TaskBodies for FakeBodies {
    fn body(&self, task: &TaskConfig) -> Box<dyn TaskBody> {
        if task.id.starts_with("wait") {
            return Box::new(UntilCancelled);
        }
        let status = if task.id.starts_with("fail") {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        Box::new(FakeBody(status))
    }
}

async fn engine(tasks: &str, folder: &std::path::Path) -> Arc<Engine> {
    engine_with(tasks, "", folder).await
}

async fn engine_with(tasks: &str, settings: &str, folder: &std::path::Path) -> Arc<Engine> {
    let text = format!("[engine]\nstate = \"sqlite:state.db\"\n{settings}\n{tasks}");
    let config =
        config::parse(&folder.join("syncdeck.toml"), &text, Resolve::Everything).expect("config");
    let state = crate::state::open("sqlite:state.db", folder)
        .await
        .expect("state");
    Engine::new(Arc::new(config), state, Arc::new(FakeBodies))
        .await
        .expect("engine")
}

fn task(id: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n{extra}\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n"
    )
}

#[tokio::test]
async fn any_task_body_runs_through_the_contract_and_is_recorded() {
    let folder = tempfile::tempdir().expect("temp dir");
    let engine = engine(&(task("ok", "") + &task("fail_b", "")), folder.path()).await;
    let ok = engine
        .run_task("ok", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(ok.status, RunStatus::Succeeded);
    assert_eq!(ok.counters.files_synced, 3, "the body's counters are kept");
    let failed = engine
        .run_task("fail_b", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(failed.status, RunStatus::Failed);
    let history = engine.state().runs(None, 10).await.expect("history");
    assert_eq!(history.len(), 2, "both runs are in the history");
}

/// Waits until `task_id` has a run recorded as running.
async fn running_run(engine: &Engine, task_id: &str) -> RunId {
    loop {
        let runs = engine
            .state()
            .runs(Some(task_id), 1)
            .await
            .expect("history");
        if let Some(run) = runs.first().filter(|run| run.status == RunStatus::Running) {
            return run.run_id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_run_whose_lease_another_worker_took_says_so_rather_than_blaming_the_operator() {
    let folder = tempfile::tempdir().expect("temp dir");
    let engine = engine_with(&task("wait_lease", ""), "lease_ttl = \"1s\"", folder.path()).await;
    let running = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .run_task("wait_lease", Trigger::Manual, RunOptions::default())
                .await
        })
    };
    running_run(&engine, "wait_lease").await;
    // Another worker sharing the store takes the lease over, as it may
    // once this one stops renewing it in time.
    let database = rusqlite::Connection::open(folder.path().join("state.db")).expect("open");
    let taken = database
        .execute(
            "UPDATE leases SET owner = 'other-host:4242' WHERE task_id = 'wait_lease'",
            [],
        )
        .expect("take the lease");
    assert_eq!(taken, 1, "the run holds a lease");

    let record = running.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Cancelled);
    let error = record.error.clone().unwrap_or_default();
    assert!(
        error.contains("another worker took over this task's lease"),
        "{error}"
    );
    assert!(!error.contains("cancelled by the operator"), "{error}");
    let stored = engine
        .state()
        .runs(Some("wait_lease"), 1)
        .await
        .expect("history");
    assert_eq!(stored[0].error, record.error, "the history says the same");
}

#[tokio::test]
async fn a_run_cancelled_by_the_operator_still_says_so() {
    let folder = tempfile::tempdir().expect("temp dir");
    let engine = engine_with(
        &task("wait_cancel", ""),
        "lease_ttl = \"1s\"",
        folder.path(),
    )
    .await;
    let running = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .run_task("wait_cancel", Trigger::Manual, RunOptions::default())
                .await
        })
    };
    let run_id = running_run(&engine, "wait_cancel").await;
    // Wait for the run's cancel token to be registered.
    while !engine.cancel_run(run_id) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let record = running.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Cancelled);
    assert_eq!(record.error.as_deref(), Some("cancelled by the operator"));
}

#[tokio::test]
async fn a_run_stopped_by_a_shutdown_says_so_rather_than_blaming_the_operator() {
    let folder = tempfile::tempdir().expect("temp dir");
    let engine = engine_with(
        &task("wait_cancel", ""),
        "lease_ttl = \"1s\"",
        folder.path(),
    )
    .await;
    let running = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .run_task("wait_cancel", Trigger::Manual, RunOptions::default())
                .await
        })
    };
    running_run(&engine, "wait_cancel").await;
    while engine.active_runs().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.cancel_all();
    let record = running.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Cancelled);
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("shutting down") && !error.contains("operator"),
        "the history says the run stopped with syncdeck, not by a person: {error}"
    );
}

#[test]
fn a_scheduler_whose_command_channel_closed_idles() {
    // A spinning scheduler never yields its thread, so the check runs on
    // a thread of its own and a watchdog turns a hang into a failure.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        runtime.block_on(scheduler_with_a_closed_command_channel());
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the scheduler spun on its closed command channel and never let the test go on");
}

async fn scheduler_with_a_closed_command_channel() {
    let folder = tempfile::tempdir().expect("temp dir");
    let engine = engine(&task("daily", "schedule = \"1d\""), folder.path()).await;
    let mut events = engine.subscribe();
    let schedules =
        scheduler::Schedules::new(engine.config(), tokio::time::Instant::now(), |every| every);
    let (sender, commands) = mpsc::channel(1);
    drop(sender);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(scheduler::run(
        Arc::clone(&engine),
        schedules,
        commands,
        shutdown.clone(),
    ));
    let count = |events: &mut tokio::sync::broadcast::Receiver<EngineEvent>| {
        let mut published = 0;
        while let Ok(event) = events.try_recv() {
            if matches!(event, EngineEvent::ScheduleChanged { .. }) {
                published += 1;
            }
        }
        published
    };
    // The first schedule is published once the engine's start-up work
    // (on blocking threads, outside the paused clock) is done.
    let mut published = 0;
    let started = std::time::Instant::now();
    while published == 0 && started.elapsed() < Duration::from_secs(20) {
        tokio::task::yield_now().await;
        published += count(&mut events);
    }
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    published += count(&mut events);
    assert!(
        published <= 2,
        "the scheduler published its schedule {published} times in 1000 yields: it spins on the closed command channel"
    );
    // An hour passes at once on the paused clock only when no task is busy.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(count(&mut events), 0, "nothing happened in an idle hour");
    shutdown.cancel();
    running.await.expect("scheduler ends on shutdown");
}
