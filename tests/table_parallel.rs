//! Table sync reading the whole source in key ranges at once
//! (`parallel_reads`): full and incremental first loads equal to the
//! source, composite keys, a failed batch of one range read again alone by
//! its exact bounds, a cancelled first load that leaves no watermark and a
//! rerun that converges, and first-load progress from the planner's
//! estimate to the real count.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestDatabase, Workspace, counter, json_lines, run_of, stderr, watermark};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn task(database: &TestDatabase, table: &str, keys: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.{table}\"\ntarget_table = \"dst.{table}\"\nprimary_key = {keys}\n{extra}\n",
        url = database.url
    )
}

/// 40,000 rows with a composite key (tenant text, id bigint), 2,000 rows
/// per `updated_at` value, NULLs in every other column; analyzed, so the
/// planner's estimate lets the run split it.
fn seed_items(database: &TestDatabase) {
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.items (tenant text, id bigint, amount numeric(12,2), doc jsonb, ref uuid,
             active bool, updated_at timestamptz NOT NULL, PRIMARY KEY (tenant, id));
         INSERT INTO src.items
         SELECT (ARRAY['north', 'south', 'East', 'wést'])[1 + g % 4], g,
                CASE WHEN g % 7 = 0 THEN NULL ELSE (g % 977) * 1.25 END,
                CASE WHEN g % 11 = 0 THEN NULL ELSE jsonb_build_object('g', g) END,
                CASE WHEN g % 13 = 0 THEN NULL ELSE md5(g::text)::uuid END,
                CASE WHEN g % 17 = 0 THEN NULL ELSE g % 2 = 0 END,
                timestamptz '2026-01-01 00:00:00+00' + (g / 2000) * interval '1 minute'
         FROM generate_series(0, 39999) g;
         CREATE INDEX ON src.items (updated_at, tenant, id);
         ANALYZE src.items;
         CREATE TABLE dst.items (LIKE src.items INCLUDING ALL);",
    );
}

/// 20,000 numbered rows with a watermark, analyzed.
fn seed_numbers(database: &TestDatabase) {
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.numbers (id int PRIMARY KEY, label text, updated_at timestamptz NOT NULL);
         INSERT INTO src.numbers
         SELECT g, 'number ' || g, timestamptz '2026-01-01 00:00:00+00' + (g / 100) * interval '1 second'
         FROM generate_series(1, 20000) g;
         ANALYZE src.numbers;
         CREATE TABLE dst.numbers (LIKE src.numbers INCLUDING ALL);",
    );
}

#[test]
fn a_full_load_in_key_ranges_of_a_composite_key_equals_the_source() {
    let database = TestDatabase::create("parallel_full");
    seed_items(&database);
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "items",
        "[\"tenant\", \"id\"]",
        "batch_size = 500\nparallel_reads = 3",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        workspace
            .logs()
            .contains("reading the source in key ranges at once ranges=3"),
        "the load was split in three ranges: {}",
        workspace.logs()
    );
    assert_eq!(
        counter(run, "rows_extracted"),
        40_000,
        "every row read exactly once"
    );
    assert_eq!(counter(run, "rows_upserted"), 40_000);
    assert!(run["warning"].is_null(), "{run}");
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
}

#[test]
fn an_incremental_first_load_in_key_ranges_sets_the_watermark_and_the_next_run_reads_only_changes()
{
    let database = TestDatabase::create("parallel_incremental");
    seed_items(&database);
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "items",
        "[\"tenant\", \"id\"]",
        "batch_size = 500\nparallel_reads = 4\nmode = \"incremental\"\nwatermark_column = \"updated_at\"\nwatermark_lookback = \"0s\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        workspace
            .logs()
            .contains("reading the source in key ranges at once ranges=4"),
        "{}",
        workspace.logs()
    );
    assert_eq!(counter(run, "rows_extracted"), 40_000);
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-01-01 00:19:00+00"),
        "the greatest watermark of the source"
    );

    // 1% updated, 0.5% inserted: the next run reads exactly those, in
    // watermark order as any incremental run does.
    database.execute(
        "UPDATE src.items SET amount = 1, updated_at = timestamptz '2026-02-01 00:00:00+00' WHERE id % 100 = 3;
         INSERT INTO src.items
         SELECT 'north', 100000 + g, g, NULL, NULL, NULL, timestamptz '2026-02-01 00:00:01+00'
         FROM generate_series(1, 200) g;",
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 600, "{run}");
    assert_eq!(counter(run, "rows_upserted"), 600);
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-02-01 00:00:01+00")
    );
}

/// The first batch of the second range fails on every attempt: the run
/// records it by bounds that include its range, and a retry reads exactly
/// its rows (without the range, "up to 5100" would read the first range
/// too).
#[test]
fn a_failed_batch_of_one_range_is_recorded_and_retried_alone() {
    let database = TestDatabase::create("parallel_fault");
    seed_numbers(&database);
    database.execute(
        "CREATE FUNCTION dst.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = 5001 THEN RAISE EXCEPTION 'number % is locked', NEW.id; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON dst.numbers FOR EACH ROW EXECUTE FUNCTION dst.refuse();",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "numbers",
        "[\"id\"]",
        "batch_size = 100\nparallel_reads = 4\nmode = \"incremental\"\nwatermark_column = \"updated_at\"\nmax_retries = 1\nretry_backoff = \"10ms\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial", "{run}");
    assert_eq!(counter(run, "batches_failed"), 1);
    assert_eq!(database.count("SELECT count(*) FROM dst.numbers"), 19_900);
    assert_eq!(
        watermark(&workspace),
        None,
        "a partial run sets no watermark"
    );
    let logs = workspace.logs();
    assert_eq!(
        logs.matches("(start..5100] of the key range (5000..9999]")
            .count(),
        2,
        "the failed batch is named by its range, and only it was retried: {logs}"
    );

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    database.execute("DROP TRIGGER refuse ON dst.numbers");
    let id = errors[0]["id"].as_i64().expect("id").to_string();
    let output = workspace.run(&["retry", "t", "--batch", &id, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(
        counter(retry, "rows_extracted"),
        100,
        "exactly the failed batch is read again"
    );
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0)
    );
}

#[test]
fn a_cancelled_first_load_in_ranges_sets_no_watermark_and_a_rerun_converges() {
    let database = TestDatabase::create("parallel_cancel");
    seed_numbers(&database);
    database.execute(
        "CREATE FUNCTION dst.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON dst.numbers FOR EACH STATEMENT EXECUTE FUNCTION dst.slow();",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "numbers",
        "[\"id\"]",
        "batch_size = 100\nparallel_reads = 4\nmode = \"incremental\"\nwatermark_column = \"updated_at\"\nwatermark_lookback = \"0s\"",
    ));
    let child = workspace
        .command(&["run", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncdeck");
    let deadline = Instant::now() + Duration::from_secs(60);
    while database.count("SELECT count(*) FROM dst.numbers") < 2_000 {
        assert!(Instant::now() < deadline, "no rows loaded within a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let loaded = database.count("SELECT count(*) FROM dst.numbers");
    assert!(loaded < 20_000, "cancelled before the end ({loaded} rows)");
    assert_eq!(
        watermark(&workspace),
        None,
        "a cancelled first load must not set the watermark: the ranges not read would be skipped"
    );

    database.execute("DROP TRIGGER slow ON dst.numbers");
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0)
    );
    assert_eq!(
        database.count("SELECT count(*) - count(DISTINCT id) FROM dst.numbers"),
        0,
        "no key twice"
    );
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-01-01 00:03:20+00")
    );
}

/// Progress of a first load, as the CLI and the console receive it: the
/// total is the planner's estimate (marked so) until the count replaces
/// it, and rows/s and the time left come from the shared estimator.
#[test]
fn a_first_load_reports_rows_of_the_estimated_then_counted_total_with_a_rate() {
    use syncdeck::config::{self, Resolve};
    use syncdeck::engine::{Engine, RunOptions};
    use syncdeck::run::event::EngineEvent;
    use syncdeck::run::rate::RateEstimator;
    use syncdeck::run::{RunStatus, Trigger};

    let database = TestDatabase::create("parallel_progress");
    seed_numbers(&database);
    // The estimate is stale: 2,000 rows came after the ANALYZE. Every
    // load waits a little, so the run lasts a few seconds.
    database.execute(
        "INSERT INTO src.numbers SELECT g, 'late ' || g, timestamptz '2026-01-01 00:00:00+00'
         FROM generate_series(20001, 22000) g;
         CREATE FUNCTION dst.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON dst.numbers FOR EACH STATEMENT EXECUTE FUNCTION dst.slow();",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (record, totals, estimator, etas) = runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "[engine]\nstate = \"sqlite:state.db\"\nlog_dir = \"logs\"\n\n{}",
            task(&database, "numbers", "[\"id\"]", "batch_size = 100")
        );
        let config = config::parse(
            &dir.path().join("syncdeck.toml"),
            &text,
            Resolve::Everything,
        )
        .expect("valid config");
        let state = syncdeck::state::open(&config.engine.state, &config.base_dir)
            .await
            .expect("state store");
        let engine = Engine::new(Arc::new(config), state, syncdeck::kinds::all())
            .await
            .expect("engine");
        let mut events = engine.subscribe();
        let runner = {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                engine
                    .run_task("t", Trigger::Manual, RunOptions::default())
                    .await
            })
        };
        let mut estimator = RateEstimator::new();
        let mut totals = Vec::new();
        let mut etas = 0;
        loop {
            match events.recv().await.expect("the engine's events") {
                EngineEvent::RunProgress { counters, at, .. } => {
                    if let Some(total) = counters.rows_total {
                        totals.push((total, counters.rows_total_estimated));
                    }
                    estimator.observe_counters(at, &counters);
                    if counters.rows_extracted < 20_000 && estimator.eta_for(&counters).is_some() {
                        etas += 1;
                    }
                }
                EngineEvent::RunFinished { .. } => break,
                _ => {}
            }
        }
        let record = runner.await.expect("join").expect("run");
        (record, totals, estimator, etas)
    });
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    assert_eq!(record.counters.rows_extracted, 22_000);
    assert_eq!(record.counters.rows_total, Some(22_000));
    assert!(
        !record.counters.rows_total_estimated,
        "the run ends with the counted total"
    );
    assert!(
        totals.iter().all(|&(total, estimated)| if estimated {
            total == 20_000
        } else {
            total == 22_000
        }),
        "a total is the estimate (marked) or the count: {totals:?}"
    );
    assert!(
        estimator.rate().is_some_and(|rate| rate > 0.0),
        "a rate in rows/s"
    );
    assert!(etas > 0, "a time left while rows remained");
}
