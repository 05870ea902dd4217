//! The state store contract: what the engine, the console and the CLI rely
//! on from any state store. Every test runs on the embedded SQLite store
//! and on the shared PostgreSQL one (a fresh database per test), so the two
//! cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::TestDatabase;
use syncdeck::run::{FileInFlight, RunCounters, RunRecord, RunStatus, Trigger};
use syncdeck::state::{
    ItemKind, ItemStatus, NewFailedItem, PostgresStateStore, SqliteStateStore, StateStore, owner,
};

/// A store under test, with a way around the trait to arrange what the
/// trait cannot (a dead worker's run, a row holding a bad value).
struct Store {
    state: Arc<dyn StateStore>,
    raw: Raw,
    /// An SQL literal that a time column can hold but that is no time
    /// syncdeck can read.
    bad_time: &'static str,
}

enum Raw {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Store {
    /// Runs SQL on the store's tables, named without a schema.
    async fn execute(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|connection| connection.execute_batch(sql))
                .unwrap_or_else(|error| panic!("{sql}: {error}")),
            Raw::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect to the test database");
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("SET search_path TO syncdeck; {sql}"))
                    .await
                    .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state/state.db");
    runtime().block_on(async {
        let state = SqliteStateStore::open(&path).await.expect("open sqlite");
        test(Store {
            state: Arc::new(state),
            raw: Raw::Sqlite(path.clone()),
            bad_time: "'yesterday'",
        })
        .await;
    });
}

fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let database = TestDatabase::create("contract");
    runtime().block_on(async {
        let state = PostgresStateStore::open(&database.url)
            .await
            .expect("open postgres");
        test(Store {
            state: Arc::new(state),
            raw: Raw::Postgres(database.url.clone()),
            bad_time: "'infinity'",
        })
        .await;
    });
}

/// Each test once per store: `sqlite::NAME` and `postgres::NAME`.
macro_rules! contract {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::on_sqlite(super::$test)
            })+
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::on_postgres(super::$test)
            })+
        }
    };
}

contract!(
    a_run_is_begun_updated_and_finished,
    a_blocked_run_keeps_its_status_and_reason,
    times_come_back_to_the_millisecond,
    runs_are_listed_newest_first_and_per_task,
    a_pending_failure_is_updated_not_duplicated,
    failed_items_keep_their_kind_and_filter_by_task,
    watermarks_are_kept_per_task,
    a_lease_is_held_by_one_owner_until_released,
    an_expired_lease_can_be_taken_over,
    a_slot_is_claimed_once,
    cancel_requests_are_seen_per_run,
    runs_of_dead_workers_are_marked_interrupted,
    unknown_stored_words_are_errors_naming_the_row,
    bad_stored_times_are_errors_naming_the_row,
    a_run_keeps_its_execution_date_and_failures_are_per_date,
    paused_schedules_are_kept_until_resumed,
    files_in_flight_are_published_while_the_run_runs,
);

/// A time the stores keep exactly (they keep milliseconds).
fn at(hour: u32, millis: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, hour, 0, 0)
        .single()
        .expect("time")
        + chrono::Duration::milliseconds(millis)
}

/// Another worker, on another machine, alive as far as this one knows.
const OTHER: &str = "worker-b.example:4242";

async fn a_run_is_begun_updated_and_finished(store: Store) {
    let state = &store.state;
    let started = at(12, 250);
    let run_id = state
        .begin_run("copy", Trigger::Schedule, started)
        .await
        .expect("begin");
    let runs = state.runs(Some("copy"), 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, run_id);
    assert_eq!(runs[0].task_id, "copy");
    assert_eq!(runs[0].trigger, Trigger::Schedule);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(runs[0].started_at, started);
    assert_eq!(runs[0].completed_at, None);

    let progress = RunCounters {
        files_synced: 3,
        bytes_done: 300,
        ..RunCounters::default()
    };
    state.update_run(run_id, &progress).await.expect("update");
    let runs = state.runs(Some("copy"), 10).await.expect("runs");
    assert_eq!(runs[0].counters, progress);
    assert_eq!(runs[0].status, RunStatus::Running);

    let finished = RunRecord {
        status: RunStatus::Partial,
        completed_at: Some(at(12, 61_500)),
        duration_ms: Some(61_250),
        counters: RunCounters {
            files_synced: 9,
            files_failed: 1,
            bytes_done: 900,
            ..RunCounters::default()
        },
        error: Some("1 file failed: in/b.csv".into()),
        warning: Some("2 files were skipped".into()),
        ..runs[0].clone()
    };
    state.finish_run(&finished).await.expect("finish");
    // A late progress report must not overwrite the final counters.
    state.update_run(run_id, &progress).await.expect("update");
    let runs = state.runs(Some("copy"), 10).await.expect("runs");
    assert_eq!(runs, vec![finished]);
}

/// A run that never started because a dependency failed is history too.
async fn a_blocked_run_keeps_its_status_and_reason(store: Store) {
    let state = &store.state;
    let now = at(9, 0);
    let run_id = state
        .begin_run("report", Trigger::Schedule, now)
        .await
        .expect("begin");
    let blocked = RunRecord {
        run_id,
        task_id: "report".into(),
        trigger: Trigger::Schedule,
        status: RunStatus::Blocked,
        started_at: now,
        completed_at: Some(now),
        duration_ms: Some(0),
        counters: RunCounters::default(),
        error: Some("blocked: dependency `load` did not succeed; not started".into()),
        warning: None,
        execution_date: Some(now.date_naive()),
    };
    state.finish_run(&blocked).await.expect("finish");
    assert_eq!(
        state.runs(Some("report"), 10).await.expect("runs"),
        vec![blocked]
    );
    assert_eq!(
        state.mark_interrupted().await.expect("sweep"),
        0,
        "a blocked run is finished, not left running"
    );
}

/// Both stores give back the same times, so `history` reads the same
/// whichever store a workspace uses.
async fn times_come_back_to_the_millisecond(store: Store) {
    let state = &store.state;
    let fine = chrono::Duration::nanoseconds(123_456_789);
    let run_id = state
        .begin_run("copy", Trigger::Manual, at(12, 0) + fine)
        .await
        .expect("begin");
    let mut record = state.runs(None, 1).await.expect("runs")[0].clone();
    assert_eq!(record.started_at, at(12, 123));
    record.status = RunStatus::Succeeded;
    record.completed_at = Some(at(13, 0) + fine);
    state.finish_run(&record).await.expect("finish");
    let stored = &state.runs(None, 1).await.expect("runs")[0];
    assert_eq!(stored.run_id, run_id);
    assert_eq!(stored.completed_at, Some(at(13, 123)));
}

async fn runs_are_listed_newest_first_and_per_task(store: Store) {
    let state = &store.state;
    let first = state.begin_run("a", Trigger::Manual, at(1, 0)).await;
    let second = state.begin_run("b", Trigger::Retry, at(2, 0)).await;
    let third = state.begin_run("a", Trigger::Manual, at(3, 0)).await;
    let (first, second, third) = (
        first.expect("begin"),
        second.expect("begin"),
        third.expect("begin"),
    );

    let ids = |runs: Vec<RunRecord>| runs.iter().map(|run| run.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(state.runs(None, 10).await.expect("runs")),
        vec![third, second, first]
    );
    assert_eq!(
        ids(state.runs(Some("a"), 10).await.expect("runs")),
        vec![third, first]
    );
    assert_eq!(
        ids(state.runs(None, 2).await.expect("runs")),
        vec![third, second]
    );
    let b = state.runs(Some("b"), 10).await.expect("runs");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].trigger, Trigger::Retry);
    assert!(state.runs(Some("c"), 10).await.expect("runs").is_empty());
}

fn failure(run_id: i64, kind: ItemKind, key: &str, error: &str, attempts: u32) -> NewFailedItem {
    NewFailedItem {
        run_id,
        task_id: "copy".into(),
        kind,
        key: key.into(),
        error: error.into(),
        attempts,
    }
}

async fn a_pending_failure_is_updated_not_duplicated(store: Store) {
    let state = &store.state;
    let first_run = state.begin_run("copy", Trigger::Manual, at(1, 0)).await;
    let first_run = first_run.expect("begin");
    let id = state
        .record_failed_item(&failure(
            first_run,
            ItemKind::File,
            "in/a.csv",
            "timeout",
            2,
        ))
        .await
        .expect("record");
    let second_run = state.begin_run("copy", Trigger::Retry, at(2, 0)).await;
    let second_run = second_run.expect("begin");
    let again = state
        .record_failed_item(&failure(
            second_run,
            ItemKind::File,
            "in/a.csv",
            "refused",
            1,
        ))
        .await
        .expect("record");
    assert_eq!(again, id, "the pending failure is updated");

    let pending = state.failed_items(Some("copy"), true).await.expect("items");
    assert_eq!(pending.len(), 1);
    let item = &pending[0];
    assert_eq!(
        (item.id, item.run_id, item.key.as_str()),
        (id, second_run, "in/a.csv")
    );
    assert_eq!(
        (item.error.as_str(), item.attempts, item.status),
        ("refused", 3, ItemStatus::Pending)
    );
    assert!(item.updated_at >= item.created_at, "{item:?}");

    state
        .set_item_status(id, ItemStatus::Resolved)
        .await
        .expect("resolve");
    assert!(
        state
            .failed_items(Some("copy"), true)
            .await
            .expect("items")
            .is_empty()
    );
    // Once resolved, the same file failing again is a new failure.
    let new = state
        .record_failed_item(&failure(second_run, ItemKind::File, "in/a.csv", "gone", 1))
        .await
        .expect("record");
    assert_ne!(new, id);
    let all = state
        .failed_items(Some("copy"), false)
        .await
        .expect("items");
    let summary: Vec<_> = all
        .iter()
        .map(|item| (item.id, item.status, item.attempts))
        .collect();
    assert_eq!(
        summary,
        vec![(id, ItemStatus::Resolved, 3), (new, ItemStatus::Pending, 1)]
    );
    state
        .set_item_status(new, ItemStatus::Abandoned)
        .await
        .expect("abandon");
    let all = state.failed_items(None, false).await.expect("items");
    assert_eq!(all[1].status, ItemStatus::Abandoned);

    // A failed file deleted at the source since is `gone`: kept in the
    // history, no longer pending.
    let deleted = state
        .record_failed_item(&failure(
            second_run,
            ItemKind::File,
            "in/b.csv",
            "denied",
            1,
        ))
        .await
        .expect("record");
    state
        .set_item_status(deleted, ItemStatus::Gone)
        .await
        .expect("gone");
    assert!(
        state
            .failed_items(Some("copy"), true)
            .await
            .expect("items")
            .iter()
            .all(|item| item.id != deleted),
        "a gone item is not pending"
    );
    let all = state.failed_items(None, false).await.expect("items");
    let stored = all.iter().find(|item| item.id == deleted).expect("kept");
    assert_eq!(stored.status, ItemStatus::Gone);
}

async fn failed_items_keep_their_kind_and_filter_by_task(store: Store) {
    let state = &store.state;
    let run_id = state.begin_run("copy", Trigger::Manual, at(1, 0)).await;
    let run_id = run_id.expect("begin");
    for (kind, key) in [
        (ItemKind::File, "in/a.csv"),
        (ItemKind::Batch, "id 1..=1000"),
        (ItemKind::Row, "id 7"),
    ] {
        state
            .record_failed_item(&failure(run_id, kind, key, "bad", 1))
            .await
            .expect("record");
    }
    // The same key of another kind is another item.
    state
        .record_failed_item(&failure(run_id, ItemKind::Row, "in/a.csv", "bad", 1))
        .await
        .expect("record");
    let other = NewFailedItem {
        task_id: "other".into(),
        ..failure(run_id, ItemKind::File, "in/a.csv", "bad", 1)
    };
    state.record_failed_item(&other).await.expect("record");

    let items = state.failed_items(Some("copy"), true).await.expect("items");
    let kinds: Vec<_> = items
        .iter()
        .map(|item| (item.kind, item.key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ItemKind::File, "in/a.csv"),
            (ItemKind::Batch, "id 1..=1000"),
            (ItemKind::Row, "id 7"),
            (ItemKind::Row, "in/a.csv"),
        ]
    );
    assert_eq!(
        state.failed_items(None, true).await.expect("items").len(),
        5
    );
    let others = state
        .failed_items(Some("other"), true)
        .await
        .expect("items");
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].task_id, "other");
}

async fn watermarks_are_kept_per_task(store: Store) {
    let state = &store.state;
    assert_eq!(state.watermark("orders").await.expect("read"), None);
    assert_eq!(
        state
            .stored_watermark("orders")
            .await
            .expect("read")
            .and_then(|mark| mark.scope),
        None
    );
    state
        .set_watermark("orders", "2024-05-01T00:00:00Z", Some("db1 orders"))
        .await
        .expect("set");
    state.set_watermark("users", "17", None).await.expect("set");
    state
        .set_watermark("orders", "2024-06-01T00:00:00Z", Some("db2 orders"))
        .await
        .expect("set");
    assert_eq!(
        state.watermark("orders").await.expect("read").as_deref(),
        Some("2024-06-01T00:00:00Z")
    );
    assert_eq!(
        state
            .stored_watermark("orders")
            .await
            .expect("read")
            .and_then(|mark| mark.scope)
            .as_deref(),
        Some("db2 orders"),
        "the scope is replaced with the value"
    );
    assert_eq!(
        state.watermark("users").await.expect("read").as_deref(),
        Some("17")
    );
    assert_eq!(
        state
            .stored_watermark("users")
            .await
            .expect("read")
            .and_then(|mark| mark.scope),
        None
    );
    assert_eq!(
        state
            .delete_watermark("orders")
            .await
            .expect("delete")
            .as_deref(),
        Some("2024-06-01T00:00:00Z")
    );
    assert_eq!(state.watermark("orders").await.expect("read"), None);
    assert_eq!(
        state.delete_watermark("orders").await.expect("delete"),
        None
    );
    assert_eq!(
        state.watermark("users").await.expect("read").as_deref(),
        Some("17"),
        "other tasks keep theirs"
    );
}

async fn a_lease_is_held_by_one_owner_until_released(store: Store) {
    let state = &store.state;
    let me = owner();
    let ttl = Duration::from_secs(60);
    assert!(
        state
            .acquire_lease("copy", &me, ttl)
            .await
            .expect("acquire")
    );
    assert!(
        !state
            .acquire_lease("copy", OTHER, ttl)
            .await
            .expect("acquire")
    );
    assert!(
        state
            .acquire_lease("copy", &me, ttl)
            .await
            .expect("acquire"),
        "the owner may take its own lease again"
    );
    assert!(state.renew_lease("copy", &me, ttl).await.expect("renew"));
    assert!(!state.renew_lease("copy", OTHER, ttl).await.expect("renew"));
    assert!(
        state
            .acquire_lease("other", OTHER, ttl)
            .await
            .expect("acquire"),
        "leases are per task"
    );

    state.release_lease("copy", OTHER).await.expect("release");
    assert!(
        !state
            .acquire_lease("copy", OTHER, ttl)
            .await
            .expect("acquire"),
        "only the owner releases a lease"
    );
    state.release_lease("copy", &me).await.expect("release");
    assert!(
        state
            .acquire_lease("copy", OTHER, ttl)
            .await
            .expect("acquire")
    );
    assert!(
        !state.renew_lease("copy", &me, ttl).await.expect("renew"),
        "a released lease cannot be renewed"
    );
}

async fn an_expired_lease_can_be_taken_over(store: Store) {
    let state = &store.state;
    let me = owner();
    assert!(
        state
            .acquire_lease("copy", OTHER, Duration::ZERO)
            .await
            .expect("acquire")
    );
    // Let the clock pass the lease's end.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        state
            .acquire_lease("copy", &me, Duration::from_secs(60))
            .await
            .expect("acquire")
    );
    assert!(
        !state
            .renew_lease("copy", OTHER, Duration::from_secs(60))
            .await
            .expect("renew"),
        "the lease was lost"
    );
}

async fn a_slot_is_claimed_once(store: Store) {
    let state = &store.state;
    let me = owner();
    assert!(state.claim_slot("tick", 1000, &me).await.expect("claim"));
    assert!(!state.claim_slot("tick", 1000, OTHER).await.expect("claim"));
    assert!(!state.claim_slot("tick", 1000, &me).await.expect("claim"));
    assert!(state.claim_slot("tick", 1001, OTHER).await.expect("claim"));
    assert!(state.claim_slot("tock", 1000, OTHER).await.expect("claim"));
}

async fn cancel_requests_are_seen_per_run(store: Store) {
    let state = &store.state;
    let run = state.begin_run("copy", Trigger::Manual, at(1, 0)).await;
    let other = state.begin_run("copy", Trigger::Manual, at(2, 0)).await;
    let (run, other) = (run.expect("begin"), other.expect("begin"));
    assert!(!state.cancel_requested(run).await.expect("read"));
    state.request_cancel(run).await.expect("request");
    state
        .request_cancel(run)
        .await
        .expect("asking twice is fine");
    assert!(state.cancel_requested(run).await.expect("read"));
    assert!(!state.cancel_requested(other).await.expect("read"));
}

async fn runs_of_dead_workers_are_marked_interrupted(store: Store) {
    let state = &store.state;
    let me = owner();
    let ttl = Duration::from_secs(60);
    let live = state.begin_run("live", Trigger::Manual, at(1, 0)).await;
    let live = live.expect("begin");
    assert!(state.acquire_lease("live", &me, ttl).await.expect("lease"));
    let dead = state.begin_run("dead", Trigger::Manual, at(2, 0)).await;
    let dead = dead.expect("begin");
    // A worker on this machine whose process is gone (above any pid) and
    // that holds no lease.
    let host = me.rsplit_once(':').map_or("localhost", |(host, _)| host);
    store
        .execute(&format!(
            "UPDATE sync_logs SET owner = '{host}:4194305' WHERE run_id = {dead}"
        ))
        .await;
    let done = state.begin_run("done", Trigger::Manual, at(3, 0)).await;
    let done = done.expect("begin");
    let mut finished = state.runs(Some("done"), 1).await.expect("runs")[0].clone();
    finished.status = RunStatus::Succeeded;
    finished.completed_at = Some(at(3, 1000));
    state.finish_run(&finished).await.expect("finish");

    assert_eq!(state.mark_interrupted().await.expect("mark"), 1);
    let runs = state.runs(None, 10).await.expect("runs");
    let of = |run_id| {
        runs.iter()
            .find(|run| run.run_id == run_id)
            .expect("run listed")
    };
    assert_eq!(of(live).status, RunStatus::Running);
    let interrupted = of(dead);
    assert_eq!(interrupted.status, RunStatus::Interrupted);
    assert!(interrupted.completed_at.is_some(), "{interrupted:?}");
    assert!(
        interrupted
            .error
            .as_deref()
            .is_some_and(|error| error.contains("stopped before the run finished")),
        "{interrupted:?}"
    );
    assert_eq!(of(done), &finished);
    assert_eq!(state.mark_interrupted().await.expect("mark"), 0);
}

async fn unknown_stored_words_are_errors_naming_the_row(store: Store) {
    let state = &store.state;
    let run_id = state.begin_run("copy", Trigger::Manual, at(1, 0)).await;
    let run_id = run_id.expect("begin");
    store
        .execute(&format!(
            "UPDATE sync_logs SET status = 'finshed' WHERE run_id = {run_id}"
        ))
        .await;
    let error = state
        .runs(None, 10)
        .await
        .expect_err("a bad status")
        .to_string();
    assert!(
        error.contains(&format!(
            "sync_logs run {run_id}: unknown status \"finshed\""
        )),
        "{error}"
    );
    store
        .execute(&format!(
            "UPDATE sync_logs SET status = 'running', trigger = 'cron' WHERE run_id = {run_id}"
        ))
        .await;
    let error = state
        .runs(Some("copy"), 10)
        .await
        .expect_err("a bad trigger");
    assert!(
        error
            .to_string()
            .contains(&format!("sync_logs run {run_id}: unknown trigger \"cron\"")),
        "{error}"
    );

    let item = state
        .record_failed_item(&failure(run_id, ItemKind::File, "in/a.csv", "bad", 1))
        .await
        .expect("record");
    store
        .execute(&format!(
            "UPDATE failed_items SET kind = 'folder' WHERE id = {item}"
        ))
        .await;
    let error = state
        .failed_items(None, false)
        .await
        .expect_err("a bad kind");
    assert!(
        error.to_string().contains(&format!(
            "failed_items item {item}: unknown kind \"folder\""
        )),
        "{error}"
    );
    store
        .execute(&format!(
            "UPDATE failed_items SET kind = 'file', status = 'done' WHERE id = {item}"
        ))
        .await;
    let error = state
        .failed_items(None, false)
        .await
        .expect_err("a bad status");
    assert!(
        error.to_string().contains(&format!(
            "failed_items item {item}: unknown status \"done\""
        )),
        "{error}"
    );
}

async fn bad_stored_times_are_errors_naming_the_row(store: Store) {
    let state = &store.state;
    let run_id = state.begin_run("copy", Trigger::Manual, at(1, 0)).await;
    let run_id = run_id.expect("begin");
    store
        .execute(&format!(
            "UPDATE sync_logs SET started_at = {} WHERE run_id = {run_id}",
            store.bad_time
        ))
        .await;
    let error = state
        .runs(None, 10)
        .await
        .expect_err("a bad time")
        .to_string();
    assert!(
        error.contains(&format!("sync_logs run {run_id}: started_at")),
        "{error}"
    );

    let item = state
        .record_failed_item(&failure(run_id, ItemKind::File, "in/a.csv", "bad", 1))
        .await
        .expect("record");
    store
        .execute(&format!(
            "UPDATE failed_items SET updated_at = {} WHERE id = {item}",
            store.bad_time
        ))
        .await;
    let error = state
        .failed_items(Some("copy"), true)
        .await
        .expect_err("a bad time");
    assert!(
        error
            .to_string()
            .contains(&format!("failed_items item {item}: updated_at")),
        "{error}"
    );
}

async fn a_run_keeps_its_execution_date_and_failures_are_per_date(store: Store) {
    let state = &store.state;
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).expect("date");
    let first = state
        .begin_run_for("copy", Trigger::Schedule, at(1, 0), day(1))
        .await
        .expect("begin");
    let second = state
        .begin_run_for("copy", Trigger::Schedule, at(2, 0), day(2))
        .await
        .expect("begin");
    let plain = state
        .begin_run("copy", Trigger::Manual, at(3, 0))
        .await
        .expect("begin");
    assert_eq!(
        state.execution_date(first).await.expect("read"),
        Some(day(1))
    );
    assert_eq!(
        state.execution_date(second).await.expect("read"),
        Some(day(2))
    );
    assert_eq!(
        state.execution_date(plain).await.expect("read"),
        Some(at(3, 0).date_naive()),
        "a run begun without a date is for the day it started"
    );
    assert_eq!(state.execution_date(9_999).await.expect("read"), None);
    let runs = state.runs(Some("copy"), 10).await.expect("runs");
    assert_eq!(
        runs.iter()
            .map(|run| (run.run_id, run.execution_date))
            .collect::<Vec<_>>(),
        vec![
            (plain, Some(at(3, 0).date_naive())),
            (second, Some(day(2))),
            (first, Some(day(1)))
        ],
        "history reads each run's date back"
    );

    // The same key failing for two dates is two files (two folders when
    // paths use the date): neither replaces the other.
    let one = state
        .record_failed_item(&failure(first, ItemKind::File, "a.csv", "timeout", 1))
        .await
        .expect("record");
    let two = state
        .record_failed_item(&failure(second, ItemKind::File, "a.csv", "timeout", 1))
        .await
        .expect("record");
    assert_ne!(one, two);
    let pending = state.failed_items(Some("copy"), true).await.expect("items");
    assert_eq!(
        pending.iter().map(|item| item.run_id).collect::<Vec<_>>(),
        vec![first, second]
    );
}

async fn paused_schedules_are_kept_until_resumed(store: Store) {
    let state = &store.state;
    assert!(state.paused_schedules().await.expect("read").is_empty());
    state
        .set_schedule_paused("often", true)
        .await
        .expect("pause");
    state
        .set_schedule_paused("often", true)
        .await
        .expect("pausing twice is fine");
    state
        .set_schedule_paused("nightly", true)
        .await
        .expect("pause");
    assert_eq!(
        state.paused_schedules().await.expect("read"),
        vec!["nightly".to_string(), "often".to_string()]
    );
    state
        .set_schedule_paused("often", false)
        .await
        .expect("resume");
    state
        .set_schedule_paused("never_paused", false)
        .await
        .expect("resuming a running schedule is fine");
    assert_eq!(
        state.paused_schedules().await.expect("read"),
        vec!["nightly".to_string()]
    );
}

/// A run's files in flight, as a console of another process reads them:
/// the newest list, at most 20 files, and nothing once the run ended.
async fn files_in_flight_are_published_while_the_run_runs(store: Store) {
    let state = &store.state;
    let run_id = state
        .begin_run("copy", Trigger::Schedule, at(12, 0))
        .await
        .expect("begin");
    assert!(
        state
            .files_in_flight(run_id)
            .await
            .expect("read")
            .is_empty()
    );
    let file = |index: u64| FileInFlight {
        path: format!("in/{index:02}.bin"),
        bytes_done: index * 10,
        bytes_total: 1000,
    };
    let many: Vec<FileInFlight> = (0..30).map(file).collect();
    state
        .set_files_in_flight(run_id, &many)
        .await
        .expect("publish");
    assert_eq!(
        state.files_in_flight(run_id).await.expect("read"),
        many[..20].to_vec(),
        "the first 20 files in flight"
    );
    state
        .set_files_in_flight(run_id, &[file(7)])
        .await
        .expect("publish");
    assert_eq!(
        state.files_in_flight(run_id).await.expect("read"),
        vec![file(7)]
    );
    let runs = state.runs(Some("copy"), 1).await.expect("runs");
    let finished = RunRecord {
        status: RunStatus::Succeeded,
        completed_at: Some(at(12, 1000)),
        duration_ms: Some(1000),
        ..runs[0].clone()
    };
    state.finish_run(&finished).await.expect("finish");
    state
        .set_files_in_flight(run_id, &[file(8)])
        .await
        .expect("a late publish is harmless");
    assert!(
        state
            .files_in_flight(run_id)
            .await
            .expect("read")
            .is_empty(),
        "a finished run has nothing in flight"
    );
}
