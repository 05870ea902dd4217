//! `type = "airbyte"` against a local server that follows the Airbyte
//! API's job endpoints (the real service cannot run here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{AIRBYTE_CLIENT_SECRET, FakeAirbyte, Workspace, counter, run_of, stderr, stdout};
use syncdeck::engine::{Engine, RunOptions};
use syncdeck::run::event::EngineEvent;
use syncdeck::run::{RunStatus, Trigger};

fn run_task(workspace: &Workspace, task: &str) -> (std::process::Output, serde_json::Value) {
    let output = workspace
        .command(&["run", "--json", task])
        .env("SYNCDECK_CREDENTIAL_AIRBYTE_SECRET", AIRBYTE_CLIENT_SECRET)
        .output()
        .expect("run");
    let runs = common::json_lines(&output);
    let run = run_of(&runs, task).clone();
    (output, run)
}

#[test]
fn a_synchronous_sync_succeeds_with_the_jobs_counts() {
    let airbyte = FakeAirbyte::start();
    let workspace = Workspace::new();
    workspace.write_config(&airbyte.task("customers", "ok", ""));
    let (output, run) = run_task(&workspace, "customers");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        counter(&run, "rows_upserted"),
        1234,
        "rows the job reported"
    );
    assert_eq!(counter(&run, "bytes_done"), 56789);
    let calls = airbyte.calls();
    assert_eq!(
        calls[..2],
        [
            "POST /applications/token".to_string(),
            "POST /jobs".to_string()
        ]
    );
    assert!(
        calls.iter().filter(|call| *call == "GET /jobs/100").count() >= 4,
        "polled until done: {calls:?}"
    );
}

#[test]
fn a_failed_job_fails_the_run_with_the_remote_reason() {
    let airbyte = FakeAirbyte::start();
    let workspace = Workspace::new();
    workspace.write_config(&airbyte.task("customers", "fail", ""));
    let (output, run) = run_task(&workspace, "customers");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(run["status"], "failed");
    let error = run["error"].as_str().unwrap_or("");
    assert!(
        error.contains("Airbyte job 100 failed: Source connector crashed: the API key expired"),
        "{error}"
    );
}

#[test]
fn a_timeout_cancels_the_remote_job_and_fails() {
    let airbyte = FakeAirbyte::start();
    let workspace = Workspace::new();
    workspace.write_config(&airbyte.task("customers", "slow", "timeout = \"300ms\""));
    let (output, run) = run_task(&workspace, "customers");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(run["status"], "failed");
    let error = run["error"].as_str().unwrap_or("");
    assert!(
        error.contains("timed out after 300ms") && error.contains("job 100 cancelled"),
        "{error}"
    );
    assert!(
        airbyte.calls().contains(&"DELETE /jobs/100".to_string()),
        "the remote job was cancelled"
    );
}

#[test]
fn wrong_credentials_are_named_without_the_secret() {
    let airbyte = FakeAirbyte::start();
    let workspace = Workspace::new();
    workspace.write_config(&airbyte.task("customers", "ok", ""));
    let output = workspace
        .command(&["run", "--json", "customers"])
        .env(
            "SYNCDECK_CREDENTIAL_AIRBYTE_SECRET",
            "wrong-secret-value-123",
        )
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output) + &stderr(&output);
    assert!(text.contains("refused the client credentials"), "{text}");
    assert!(!text.contains("wrong-secret-value-123"), "{text}");
}

async fn engine(directory: &Path, tasks: &str) -> Arc<Engine> {
    let tasks = tasks.replace("${credential:airbyte_secret}", AIRBYTE_CLIENT_SECRET);
    let text = format!("[engine]\nstate = \"sqlite:state.db\"\nlog_dir = \"logs\"\n\n{tasks}");
    let config = syncdeck::config::parse(
        &directory.join("syncdeck.toml"),
        &text,
        syncdeck::config::Resolve::Everything,
    )
    .expect("config");
    let state = syncdeck::state::open(&config.engine.state, &config.base_dir)
        .await
        .expect("state");
    Engine::new(Arc::new(config), state, syncdeck::kinds::all())
        .await
        .expect("engine")
}

#[tokio::test]
async fn an_asynchronous_job_returns_submitted_and_its_end_is_recorded_later() {
    let airbyte = FakeAirbyte::start();
    let directory = tempfile::tempdir().expect("temp dir");
    let engine = engine(
        directory.path(),
        &airbyte.task("customers", "ok", "asynchronous = true"),
    )
    .await;
    let mut events = engine.subscribe();
    let submitted = engine
        .run_task("customers", Trigger::Manual, RunOptions::default())
        .await
        .expect("run");
    assert_eq!(submitted.status, RunStatus::Submitted);
    assert!(
        submitted
            .warning
            .as_deref()
            .is_some_and(|warning| warning.contains("job 100 submitted"))
    );
    let finished = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
            .await
            .expect("the job ends")
            .expect("event")
        {
            EngineEvent::RunFinished { record } if record.status != RunStatus::Submitted => {
                break record;
            }
            _ => continue,
        }
    };
    assert_eq!(
        finished.run_id, submitted.run_id,
        "the same run gets the final status"
    );
    assert_eq!(finished.status, RunStatus::Succeeded);
    let stored = engine
        .state()
        .runs(Some("customers"), 1)
        .await
        .expect("history");
    assert_eq!(stored[0].status, RunStatus::Succeeded);
}

#[tokio::test]
async fn cancelling_the_run_cancels_the_remote_job_and_waits_for_it() {
    let airbyte = FakeAirbyte::start();
    let directory = tempfile::tempdir().expect("temp dir");
    let engine = engine(directory.path(), &airbyte.task("customers", "slow", "")).await;
    let mut events = engine.subscribe();
    let runner = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .run_task("customers", Trigger::Manual, RunOptions::default())
                .await
        })
    };
    let run_id = loop {
        if let EngineEvent::RunStarted { run_id, .. } = events.recv().await.expect("event") {
            break run_id;
        }
    };
    while !airbyte
        .calls()
        .iter()
        .any(|call| call.starts_with("GET /jobs/"))
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(engine.cancel_run(run_id));
    let record = runner.await.expect("join").expect("run");
    assert_eq!(record.status, RunStatus::Cancelled);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|error| error.contains("job 100 cancelled")),
        "{:?}",
        record.error
    );
    assert!(airbyte.calls().contains(&"DELETE /jobs/100".to_string()));
}

#[tokio::test]
async fn a_job_a_headless_run_submitted_is_watched_to_its_end_by_the_next_engine() {
    let airbyte = FakeAirbyte::start();
    let directory = tempfile::tempdir().expect("temp dir");
    let tasks = airbyte.task("customers", "ok", "asynchronous = true");
    let config = directory.path().join("syncdeck.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\nstate = \"sqlite:state.db\"\nlog_dir = \"logs\"\nlease_ttl = \"1s\"\n\n{tasks}"
        ),
    )
    .expect("write config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .arg("-c")
        .arg(&config)
        .args(["run", "--json", "customers"])
        .env("SYNCDECK_CREDENTIAL_AIRBYTE_SECRET", AIRBYTE_CLIENT_SECRET)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let runs = common::json_lines(&output);
    let submitted = run_of(&runs, "customers");
    assert_eq!(
        submitted["status"], "submitted",
        "the headless run returns at once"
    );
    let run_id = submitted["run_id"].as_i64().expect("run id");

    // The headless process has ended; once its hold on the run expires, the
    // next long-lived engine takes the job over.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let engine = engine(directory.path(), &tasks).await;
    let mut events = engine.subscribe();
    assert_eq!(engine.adopt_submitted_runs().await, 1, "the run is adopted");
    let finished = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
            .await
            .expect("the job ends")
            .expect("event")
        {
            EngineEvent::RunFinished { record } => break record,
            _ => continue,
        }
    };
    assert_eq!(
        finished.run_id, run_id,
        "the same run gets the final status"
    );
    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(finished.counters.rows_upserted, 1234, "the job's rows");
    assert_eq!(
        engine.adopt_submitted_runs().await,
        0,
        "nothing is left to adopt"
    );
    let stored = engine
        .state()
        .runs(Some("customers"), 5)
        .await
        .expect("history");
    assert_eq!(stored.len(), 1, "no new run was started");
    assert_eq!(stored[0].status, RunStatus::Succeeded);
}

#[test]
fn the_connection_id_takes_templates_and_environment_values() {
    let airbyte = FakeAirbyte::start();
    let workspace = Workspace::new();
    workspace.write_config(&airbyte.task(
        "customers",
        "${env:AIRBYTE_PLAN}/{{ task_id }}/{{ execution_date }}/run-{{ run_id }}",
        "",
    ));
    let output = workspace
        .command(&[
            "run",
            "--json",
            "--execution-date",
            "2026-03-04",
            "customers",
        ])
        .env("SYNCDECK_CREDENTIAL_AIRBYTE_SECRET", AIRBYTE_CLIENT_SECRET)
        .env("AIRBYTE_PLAN", "ok")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let run_id = common::json_lines(&output)[0]["run_id"]
        .as_i64()
        .expect("run id");
    assert!(
        airbyte
            .calls()
            .contains(&format!("connection ok/customers/2026-03-04/run-{run_id}")),
        "{:?}",
        airbyte.calls()
    );
}
