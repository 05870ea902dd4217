//! Table sync against a real PostgreSQL: full and incremental loads, bad
//! rows, failing batches retried by their recorded bounds, connections
//! killed mid-run, and a process killed mid-run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{
    PrivateCluster, TestDatabase, Workspace, counter, json_lines, run_of, stderr, watermark,
};

/// An incremental task on `updated_at` without look-back, so a run reads
/// exactly the rows changed since the last one.
const INCREMENTAL_NO_LOOKBACK: &str =
    "mode = \"incremental\"\nwatermark_column = \"updated_at\"\nwatermark_lookback = \"0s\"";

fn table_task(database: &TestDatabase, source: &str, target: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"{source}\"\ntarget_table = \"{target}\"\nprimary_key = [\"id\"]\n{extra}\n",
        url = database.url
    )
}

#[test]
fn a_full_sync_of_every_type_matches_and_a_rerun_rewrites_nothing() {
    let database = TestDatabase::create("full");
    database.execute(
        r#"
CREATE SCHEMA src; CREATE SCHEMA dst;
CREATE TABLE src.items (
    id int PRIMARY KEY, big bigint, amount numeric(14,4), note text, code varchar(16),
    seen_at timestamptz, day date, active boolean, payload jsonb, ref uuid, "order" int);
INSERT INTO src.items
SELECT g,
    CASE WHEN g % 11 = 0 THEN NULL ELSE g::bigint * 1000003 END,
    CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 1.2345)::numeric(14,4) END,
    CASE WHEN g % 17 = 0 THEN NULL WHEN g % 5 = 0 THEN E'tab\there\nnew line \\ back "q" ' || g ELSE 'note ' || g || ' ünï 日本' END,
    CASE WHEN g % 19 = 0 THEN NULL ELSE 'C' || (g % 1000) END,
    CASE WHEN g % 23 = 0 THEN NULL ELSE timestamptz '2026-01-01 00:00:00+00' + g * interval '1.007 seconds' END,
    CASE WHEN g % 29 = 0 THEN NULL ELSE date '2020-01-01' + (g % 3000) END,
    CASE WHEN g % 31 = 0 THEN NULL ELSE g % 2 = 0 END,
    CASE WHEN g % 37 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 7)) END,
    CASE WHEN g % 41 = 0 THEN NULL ELSE md5(g::text)::uuid END,
    CASE WHEN g % 43 = 0 THEN NULL ELSE g % 97 END
FROM generate_series(1, 100000) g;
CREATE TABLE dst.items (LIKE src.items INCLUDING ALL);
"#,
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.items", "dst.items", ""));

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(counter(run, "rows_extracted"), 100_000);
    assert_eq!(counter(run, "rows_upserted"), 100_000);
    assert_eq!(
        counter(run, "batches_done"),
        100,
        "batches of 1,000 by default"
    );
    assert_eq!(run["counters"]["rows_total"], 100_000);
    assert_eq!(
        database.except_both_ways("src.items", "dst.items"),
        (0, 0),
        "source and target hold the same rows"
    );

    let versions = "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM dst.items";
    let before = database.scalar(versions);
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success());
    let rerun = run_of(&runs, "t");
    assert_eq!(counter(rerun, "rows_upserted"), 0);
    assert_eq!(counter(rerun, "rows_unchanged"), 100_000);
    assert_eq!(
        database.scalar(versions),
        before,
        "a rerun with no change rewrites no row"
    );
}

#[test]
fn an_incremental_run_reads_only_changed_rows_and_moves_the_watermark() {
    let database = TestDatabase::create("incremental");
    seed_events(&database, 20000);
    let workspace = Workspace::new();
    // No look-back, so exactly the changed rows are read (the look-back
    // has a test of its own).
    workspace.write_config(&table_task(
        &database,
        "src.events",
        "dst.events",
        INCREMENTAL_NO_LOOKBACK,
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_extracted"), 20_000);
    let newest = "SET TimeZone = 'UTC'; SELECT max(updated_at)::text FROM src.events";
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some(database.scalar(newest).as_str())
    );

    // 1% updated, 1% inserted.
    database.execute(
        "UPDATE src.events SET body = body || ' v2', updated_at = timestamptz '2026-06-01 00:00:00+00' + id * interval '1 millisecond' WHERE id % 100 = 0;
         INSERT INTO src.events SELECT g, 'new ' || g, timestamptz '2026-06-02 00:00:00+00' + g * interval '1 second' FROM generate_series(20001, 20200) g;",
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(
        counter(run, "rows_extracted"),
        400,
        "only the changed and new rows are read"
    );
    assert_eq!(counter(run, "rows_upserted"), 400);
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some(database.scalar(newest).as_str()),
        "the watermark is the new maximum"
    );
    assert_eq!(
        database.except_both_ways("src.events", "dst.events"),
        (0, 0)
    );

    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(
        counter(run_of(&runs, "t"), "rows_extracted"),
        0,
        "nothing new, nothing read"
    );
}

/// An emptied target (truncated, recreated, or a new one the task now
/// points at) has none of the rows below the stored watermark: the next
/// run reads the whole source and says why, instead of loading only the
/// rows above it.
#[test]
fn an_emptied_target_is_loaded_whole_again_despite_a_stored_watermark() {
    let database = TestDatabase::create("emptied_target");
    seed_events(&database, 3000);
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.events",
        "dst.events",
        INCREMENTAL_NO_LOOKBACK,
    ));
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(watermark(&workspace).is_some());

    database.execute(
        "TRUNCATE dst.events;
         INSERT INTO src.events VALUES (3001, 'new', timestamptz '2026-06-01 00:00:00+00');",
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 3001, "{run}");
    assert_eq!(
        database.except_both_ways("src.events", "dst.events"),
        (0, 0),
        "every row is in the target again"
    );
    assert!(
        run["warning"]
            .as_str()
            .is_some_and(|warning| warning.contains("the target was empty although the watermark")),
        "{run}"
    );
    assert!(
        workspace
            .logs()
            .contains("reading the whole source (the target is empty)"),
        "{}",
        workspace.logs()
    );
    // The next run is incremental again.
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(counter(run_of(&runs, "t"), "rows_extracted"), 0);
}

/// A task pointed at another target table keeps its id, and so found the
/// watermark stored for the old one: it loaded only the rows above it
/// into a target that never had the older ones. The watermark is stored
/// with what it is about, and a task now reading or writing elsewhere
/// reads the whole source.
#[test]
fn a_task_pointed_at_another_target_does_not_trust_the_old_targets_watermark() {
    let database = TestDatabase::create("repointed_target");
    seed_events(&database, 3000);
    database.execute(
        "CREATE TABLE dst.copy (LIKE src.events INCLUDING ALL);
         INSERT INTO dst.copy SELECT id, 'stale', updated_at FROM src.events WHERE id <= 10;",
    );
    let workspace = Workspace::new();
    let incremental = INCREMENTAL_NO_LOOKBACK;
    workspace.write_config(&table_task(
        &database,
        "src.events",
        "dst.events",
        incremental,
    ));
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(watermark(&workspace).is_some());

    workspace.write_config(&table_task(
        &database,
        "src.events",
        "dst.copy",
        incremental,
    ));
    let plan = String::from_utf8_lossy(&workspace.run(&["plan", "t"]).stdout).to_string();
    assert!(
        plan.contains("was stored for") && plan.contains("table dst.events"),
        "plan says the watermark will not be used: {plan}"
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 3000, "{run}");
    assert_eq!(database.except_both_ways("src.events", "dst.copy"), (0, 0));
    assert!(
        run["warning"]
            .as_str()
            .is_some_and(|warning| warning.contains("was stored for")
                && warning.contains("table dst.events")),
        "{run}"
    );
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(
        counter(run_of(&runs, "t"), "rows_extracted"),
        0,
        "the new target's watermark is trusted"
    );
}

/// Rows below the watermark are not read again: rows deleted from the
/// target by hand (or abandoned, then fixed) stay missing until
/// `syncdeck reset` forgets the watermark.
#[test]
fn reset_forgets_the_watermark_so_the_next_run_reads_the_whole_source() {
    let database = TestDatabase::create("reset_watermark");
    seed_events(&database, 3000);
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.events",
        "dst.events",
        INCREMENTAL_NO_LOOKBACK,
    ));
    workspace.run_json(&[]);
    database.execute("DELETE FROM dst.events WHERE id % 10 = 0");
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(counter(run_of(&runs, "t"), "rows_extracted"), 0);
    assert_eq!(database.count("SELECT count(*) FROM dst.events"), 2700);

    let reset = workspace.run(&["reset", "t"]);
    assert_eq!(reset.status.code(), Some(0), "{}", stderr(&reset));
    let said = String::from_utf8_lossy(&reset.stdout).to_string();
    assert!(
        said.contains("forgot the watermark 2026-01-01 00:50:00+00 of task `t`"),
        "{said}"
    );
    assert!(watermark(&workspace).is_none());
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 3000);
    assert_eq!(
        counter(run, "rows_upserted"),
        300,
        "only the missing rows are written"
    );
    assert_eq!(
        database.except_both_ways("src.events", "dst.events"),
        (0, 0)
    );

    // Nothing stored any more after a second reset? It says so; a task
    // without a watermark, or a misspelt one, is refused.
    workspace.run(&["reset", "t"]);
    let again = workspace.run(&["reset", "t"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("has no watermark stored"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let misspelt = workspace.run(&["reset", "tt"]);
    assert_eq!(misspelt.status.code(), Some(2));
    assert!(
        stderr(&misspelt).contains("did you mean `t`?"),
        "{}",
        stderr(&misspelt)
    );
    workspace.write_config(&table_task(&database, "src.events", "dst.events", ""));
    let full = workspace.run(&["reset", "t"]);
    assert_eq!(full.status.code(), Some(2));
    assert!(
        stderr(&full).contains("keeps no watermark"),
        "{}",
        stderr(&full)
    );
}

#[test]
fn rows_with_a_null_watermark_are_read_on_every_run_and_counted_apart() {
    let database = TestDatabase::create("nullwm");
    // 3,500 rows, 2,500 of them never stamped; stamps an hour apart.
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.people (id int PRIMARY KEY, name text, updated_at timestamptz);
         INSERT INTO src.people SELECT g, 'person ' || g,
             CASE WHEN g % 7 < 5 THEN NULL ELSE timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour' END
         FROM generate_series(1, 3500) g;
         CREATE TABLE dst.people (LIKE src.people INCLUDING ALL);",
    );
    assert_eq!(
        database.count("SELECT count(*) FROM src.people WHERE updated_at IS NULL"),
        2500
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.people",
        "dst.people",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"",
    ));

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(counter(run, "rows_extracted"), 3500, "every row is read");
    assert_eq!(run["counters"]["rows_total"], 3500, "and counted");
    assert_eq!(
        database.except_both_ways("src.people", "dst.people"),
        (0, 0),
        "source and target hold the same rows"
    );
    let warning = run["warning"].as_str().unwrap_or("");
    assert!(
        warning.contains("2500 row(s) have no `updated_at` (NULL)"),
        "the unstamped rows are counted apart: {run}"
    );
    let newest = "SET TimeZone = 'UTC'; SELECT max(updated_at)::text FROM src.people";
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some(database.scalar(newest).as_str()),
        "the watermark is the newest stamp, not a NULL"
    );

    // A change to an unstamped row has no stamp to show it: the next run
    // still finds it, and rewrites nothing else.
    database.execute("UPDATE src.people SET name = 'renamed' WHERE id = 1");
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(
        counter(run, "rows_extracted"),
        2501,
        "the unstamped rows and the newest stamped one (within the look-back)"
    );
    assert_eq!(counter(run, "rows_upserted"), 1);
    assert_eq!(
        database.except_both_ways("src.people", "dst.people"),
        (0, 0)
    );
}

#[test]
fn a_row_committed_late_below_the_watermark_arrives_within_the_lookback() {
    let database = TestDatabase::create("latecommit");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, note text, updated_at timestamptz NOT NULL);
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL);
         INSERT INTO src.orders VALUES (1, 'committed first', timestamptz '2026-03-01 12:00:10+00');",
    );
    let workspace = Workspace::new();
    // The default look-back (5 minutes).
    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_upserted"), 1);
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-03-01 12:00:10+00")
    );

    // A transaction that started 10 s earlier (its now() is earlier)
    // commits only now, below the watermark.
    database.execute(
        "INSERT INTO src.orders VALUES (2, 'committed late', timestamptz '2026-03-01 12:00:00+00')",
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(
        counter(run, "rows_upserted"),
        1,
        "the late row is loaded: {run}"
    );
    assert_eq!(
        counter(run, "rows_unchanged"),
        1,
        "the row read again is left alone"
    );
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-03-01 12:00:10+00"),
        "the watermark does not move back"
    );
    // The log says where reading started, and why rows below the
    // watermark were read again.
    let logs = workspace.logs();
    assert!(
        logs.contains("reading rows above 2026-03-01 12:00:10+00 less the 5m look-back"),
        "{logs}"
    );
    assert!(logs.contains("watermark unchanged"), "{logs}");

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        counter(run_of(&runs, "t"), "rows_upserted"),
        0,
        "a rerun with no change writes nothing"
    );
}

#[test]
fn a_failed_batch_of_rows_without_a_watermark_is_retried_by_its_key_bounds() {
    let database = TestDatabase::create("nullretry");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.people (id int PRIMARY KEY, name text, updated_at timestamptz);
         INSERT INTO src.people SELECT g, 'person ' || g,
             CASE WHEN g <= 50 THEN NULL ELSE timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour' END
         FROM generate_series(1, 100) g;
         CREATE TABLE dst.people (LIKE src.people INCLUDING ALL);",
    );
    refuse(
        &database,
        "dst.people",
        "person",
        "NEW.id BETWEEN 10 AND 20",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.people",
        "dst.people",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"\nbatch_size = 25\nmax_retries = 0",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "batches_done"), 3);
    assert_eq!(counter(run, "batches_failed"), 1);
    assert_eq!(database.count("SELECT count(*) FROM dst.people"), 75);

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let bounds: serde_json::Value =
        serde_json::from_str(errors[0]["key"].as_str().unwrap_or("{}")).expect("bounds are JSON");
    assert_eq!(bounds["null_watermark"], true, "{bounds}");
    assert_eq!(
        bounds["through"],
        serde_json::json!(["25"]),
        "bounds by the key alone"
    );

    database.execute("DROP TRIGGER refuse ON dst.people");
    let id = errors[0]["id"].as_i64().expect("id").to_string();
    let output = workspace.run(&["retry", "t", "--batch", &id, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(
        counter(retry, "rows_extracted"),
        25,
        "exactly the failed batch is read again"
    );
    assert_eq!(counter(retry, "rows_upserted"), 25);
    assert_eq!(
        database.except_both_ways("src.people", "dst.people"),
        (0, 0)
    );
}

#[test]
fn a_whole_source_run_that_cannot_reach_every_row_says_so() {
    let database = TestDatabase::create("nullkey");
    // No primary key in the source: two rows have a NULL id, which keyset
    // paging by id cannot reach past the first batch.
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.loose (id int, label text);
         INSERT INTO src.loose VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (NULL, 'x'), (NULL, 'y');
         CREATE TABLE dst.loose (id int PRIMARY KEY, label text);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.loose",
        "dst.loose",
        "batch_size = 2",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 4);
    assert!(
        run["warning"]
            .as_str()
            .is_some_and(|warning| warning.contains("read 4 row(s) but the source counted 6")),
        "the shortfall is not silent: {run}"
    );
}

#[test]
fn a_lookback_on_a_watermark_that_is_not_a_time_is_refused_when_the_run_starts() {
    let database = TestDatabase::create("intwm");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.items (id int PRIMARY KEY, version bigint NOT NULL);
         INSERT INTO src.items SELECT g, g FROM generate_series(1, 10) g;
         CREATE TABLE dst.items (LIKE src.items INCLUDING ALL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.items",
        "dst.items",
        "mode = \"incremental\"\nwatermark_column = \"version\"\nwatermark_lookback = \"1m\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"].as_str().is_some_and(|error| error.contains(
            "watermark_lookback needs a date or timestamp watermark column, but `version` is int8"
        )),
        "{run}"
    );
    assert_eq!(database.count("SELECT count(*) FROM dst.items"), 0);

    // Without the setting, the run goes on with no look-back and says so.
    workspace.write_config(&table_task(
        &database,
        "src.items",
        "dst.items",
        "mode = \"incremental\"\nwatermark_column = \"version\"",
    ));
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(database.count("SELECT count(*) FROM dst.items"), 10);
    assert!(
        workspace.logs().contains("no look-back applies"),
        "the log says late commits are not covered"
    );
}

#[test]
fn bad_rows_are_skipped_counted_and_explained_while_their_batch_loads() {
    let database = TestDatabase::create("badrows");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.raw (id int PRIMARY KEY, amount_text text, email text);
         INSERT INTO src.raw SELECT g,
             CASE g WHEN 10 THEN 'abc' WHEN 500 THEN '12,5' WHEN 1500 THEN '1.2.3' ELSE (g * 1.5)::text END,
             CASE WHEN g IN (7, 1200) THEN NULL ELSE 'user' || g || '@example.com' END
         FROM generate_series(1, 2000) g;
         CREATE TABLE dst.clean (id int PRIMARY KEY, amount numeric(10,2), email text NOT NULL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.raw",
        "dst.clean",
        "[tasks.properties.columns.id]\n[tasks.properties.columns.amount]\nsource = \"amount_text\"\n[tasks.properties.columns.email]\nrequired = true\n",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "a partial run exits 1");
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "rows_skipped"), 5);
    assert_eq!(
        counter(run, "rows_upserted"),
        1995,
        "the rest of each batch loads"
    );
    assert_eq!(database.count("SELECT count(*) FROM dst.clean"), 1995);

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    let mut reasons: Vec<(String, String)> = errors
        .iter()
        .map(|item| {
            assert_eq!(item["kind"], "row");
            (
                item["key"].as_str().unwrap_or("").to_string(),
                item["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 5, "{errors:?}");
    assert_eq!(
        reasons[0],
        (
            "id=10".to_string(),
            "column `amount`: `abc` is not a number".to_string()
        )
    );
    assert!(
        reasons
            .iter()
            .any(|(key, error)| key == "id=1200" && error == "required column `email` is NULL"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(key, error)| key == "id=500" && error.contains("`12,5` is not a number")),
        "{reasons:?}"
    );
}

#[test]
fn rows_the_target_rejects_are_found_by_halving_while_the_rest_of_their_batch_loads() {
    let database = TestDatabase::create("rejects");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, amount numeric, updated_at timestamptz NOT NULL);
         INSERT INTO src.orders SELECT g, CASE WHEN g IN (10, 1500, 2999) THEN 200000 ELSE g END,
             timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, 3000) g;
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL, CHECK (amount < 100000));",
    );
    let workspace = Workspace::new();
    // A wait between attempts would show in the log as attempt=2.
    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"\nmax_retries = 3\nretry_backoff = \"5s\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "rows_skipped"), 3);
    assert_eq!(
        counter(run, "rows_upserted"),
        2997,
        "good rows beside bad ones load"
    );
    assert_eq!(counter(run, "batches_failed"), 0);
    assert_eq!(database.count("SELECT count(*) FROM dst.orders"), 2997);
    assert_eq!(
        watermark(&workspace),
        None,
        "the watermark stays before bad rows"
    );
    assert!(
        run["error"].as_str().is_some_and(|error| error.contains(
            "no watermark is stored until they load (or are abandoned), so the next run reads the whole source again"
        )),
        "{run}"
    );
    let logs = workspace.logs();
    assert!(
        !logs.contains("attempt=2"),
        "rejected rows are not retried after a wait: {logs}"
    );

    let pending = || {
        let mut items: Vec<(String, i64, i64)> = json_lines(&workspace.run(&["errors", "--json"]))
            .iter()
            .map(|item| {
                assert_eq!(item["kind"], "row", "{item}");
                assert!(
                    item["error"]
                        .as_str()
                        .is_some_and(|error| error.starts_with("23514")),
                    "the server's reason: {item}"
                );
                (
                    item["key"].as_str().unwrap_or("").to_string(),
                    item["id"].as_i64().unwrap_or(0),
                    item["attempts"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        items.sort();
        items
    };
    let first = pending();
    let keys: Vec<&str> = first.iter().map(|(key, _, _)| key.as_str()).collect();
    assert_eq!(keys, ["id=10", "id=1500", "id=2999"]);

    // Still bad on the next run: the same items, one more attempt each.
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(run_of(&runs, "t")["status"], "partial");
    let second = pending();
    assert_eq!(
        second
            .iter()
            .map(|(key, id, _)| (key, id))
            .collect::<Vec<_>>(),
        first
            .iter()
            .map(|(key, id, _)| (key, id))
            .collect::<Vec<_>>(),
        "a row still bad keeps its item"
    );
    assert!(
        second.iter().all(|(_, _, attempts)| *attempts == 2),
        "{second:?}"
    );

    // Fixed at the source: the next run loads them and resolves the items.
    database.execute("UPDATE src.orders SET amount = 1 WHERE amount >= 100000");
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert!(pending().is_empty());
    let all = json_lines(&workspace.run(&["errors", "--all", "--json"]));
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.iter().all(|item| item["status"] == "resolved"),
        "{all:?}"
    );
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );
    assert!(watermark(&workspace).is_some());
}

#[test]
fn failed_items_can_be_abandoned_even_after_their_task_left_the_config() {
    let database = TestDatabase::create("abandon");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, amount numeric);
         INSERT INTO src.orders SELECT g, CASE WHEN g IN (3, 7) THEN -1 ELSE g END FROM generate_series(1, 20) g;
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL, CHECK (amount >= 0));",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.orders", "dst.orders", ""));
    let (output, _) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let pending = || json_lines(&workspace.run(&["errors", "--json"]));
    let items = pending();
    assert_eq!(items.len(), 2, "{items:?}");
    let first = items[0]["id"].as_i64().expect("id").to_string();

    let output = workspace.run(&["abandon", "t", "--item", &first]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("abandoned 1 failed item(s) of task `t`"),
        "{output:?}"
    );
    assert_eq!(pending().len(), 1);

    // The task leaves the config; its last item can still be abandoned,
    // and a misspelt id of it is suggested from the items.
    workspace.write_config(
        &table_task(&database, "src.orders", "dst.orders", "")
            .replace("id = \"t\"", "id = \"other\""),
    );
    let output = workspace.run(&["abandon", "tt", "--all-failed"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no failed item of it; did you mean `t`?"),
        "{}",
        stderr(&output)
    );
    let output = workspace.run(&["abandon", "t", "--all-failed"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(pending().is_empty());
    let all = json_lines(&workspace.run(&["errors", "--all", "--json"]));
    assert_eq!(all.len(), 2);
    assert!(
        all.iter().all(|item| item["status"] == "abandoned"),
        "{all:?}"
    );

    let output = workspace.run(&["abandon", "nope", "--all-failed"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown task is a usage error"
    );
    let output = workspace.run(&["abandon", "t"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--all-failed"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_abandoned_bad_row_no_longer_holds_the_watermark() {
    let database = TestDatabase::create("abandonwm");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, amount numeric, updated_at timestamptz NOT NULL);
         INSERT INTO src.orders SELECT g, CASE WHEN g = 5 THEN -1 ELSE g END,
             timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 30) g;
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL, CHECK (amount >= 0));",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        INCREMENTAL_NO_LOOKBACK,
    ));
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(run_of(&runs, "t")["status"], "partial");
    assert_eq!(watermark(&workspace), None);

    let output = workspace.run(&["abandon", "t", "--all-failed"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(counter(run, "rows_skipped"), 0);
    assert!(
        run["warning"].as_str().is_some_and(|warning| warning
            .contains("1 abandoned row(s) still cannot be loaded and were skipped again")),
        "{run}"
    );
    assert!(
        watermark(&workspace).is_some(),
        "the watermark moves past it"
    );
    assert!(json_lines(&workspace.run(&["errors", "--json"])).is_empty());

    // Fixed and touched at the source later: it loads like any change.
    database.execute(
        "UPDATE src.orders SET amount = 5, updated_at = updated_at + interval '1 day' WHERE id = 5",
    );
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );
}

#[test]
fn a_target_that_rejects_every_row_fails_each_batch_once_without_waiting() {
    let database = TestDatabase::create("rejectall");
    seed_numbers(&database, 2500);
    database.execute("ALTER TABLE dst.numbers ADD CHECK (length(label) > 100)");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.numbers",
        "dst.numbers",
        "max_retries = 3\nretry_backoff = \"5s\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "failed");
    assert_eq!(counter(run, "batches_failed"), 3);
    assert_eq!(database.count("SELECT count(*) FROM dst.numbers"), 0);
    let logs = workspace.logs();
    assert_eq!(
        logs.matches("batch failed item=").count(),
        3,
        "one failure per batch, no retries after a wait: {logs}"
    );
    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 3, "{errors:?}");
    for item in &errors {
        assert_eq!(item["kind"], "batch");
        assert!(
            item["error"]
                .as_str()
                .is_some_and(|error| error.contains("the target rejected more than ")
                    && error.contains(" rows (first: id=")
                    && error.contains("23514")),
            "{item}"
        );
    }
}

/// Rows the target rejected are recorded; a later run whose batch holding
/// them failed whole never loaded them, so they stay pending (they were
/// marked resolved, and lost once the batch was abandoned).
#[test]
fn bad_rows_stay_pending_when_the_batch_holding_them_fails_in_a_later_run() {
    let database = TestDatabase::create("badrows_batch_fails");
    seed_numbers(&database, 1500);
    database.execute("ALTER TABLE dst.numbers ADD CONSTRAINT cap CHECK (id NOT IN (5, 10))");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.numbers",
        "dst.numbers",
        "max_retries = 0",
    ));
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(run_of(&runs, "t")["status"], "partial");
    let pending_rows = |workspace: &Workspace| {
        json_lines(&workspace.run(&["errors", "--json"]))
            .iter()
            .filter(|item| item["kind"] == "row")
            .count()
    };
    assert_eq!(pending_rows(&workspace), 2);

    // Now every row of the target is refused: the batch holding rows 5
    // and 10 fails whole, and neither is loaded.
    refuse(&database, "dst.numbers", "number", "true");
    let (_, runs) = workspace.run_json(&[]);
    let run = run_of(&runs, "t");
    assert_ne!(run["status"], "succeeded", "{run}");
    assert!(counter(run, "batches_failed") > 0, "{run}");
    assert_eq!(
        database.count("SELECT count(*) FROM dst.numbers WHERE id IN (5, 10)"),
        0
    );
    assert_eq!(
        pending_rows(&workspace),
        2,
        "rows not loaded are still pending"
    );

    // A retry of every failed item loads the batches, and says that the
    // rows beside them are left to the next run.
    database
        .execute("DROP TRIGGER refuse ON dst.numbers; ALTER TABLE dst.numbers DROP CONSTRAINT cap");
    let retry = workspace.run(&["retry", "t", "--all-failed", "--json"]);
    let runs = json_lines(&retry);
    let run = run_of(&runs, "t");
    assert!(
        run["warning"].as_str().is_some_and(|warning| warning
            .contains("2 failed row(s) were not retried with the batches and are still pending: `syncdeck run t`")),
        "{run}"
    );
    assert_eq!(pending_rows(&workspace), 2);
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert_eq!(pending_rows(&workspace), 0);
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0)
    );
}

#[test]
fn thirty_bad_rows_in_one_batch_of_a_thousand_are_all_found() {
    let database = TestDatabase::create("thirtybad");
    seed_numbers(&database, 1000);
    database.execute(
        "UPDATE src.numbers SET label = 'bad' WHERE id BETWEEN 401 AND 430;
         ALTER TABLE dst.numbers ADD CHECK (label <> 'bad');",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.numbers", "dst.numbers", ""));
    let (_, runs) = workspace.run_json(&[]);
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "rows_skipped"), 30);
    assert_eq!(counter(run, "batches_failed"), 0);
    assert_eq!(database.count("SELECT count(*) FROM dst.numbers"), 970);
    assert_eq!(json_lines(&workspace.run(&["errors", "--json"])).len(), 30);
}

#[test]
fn a_not_null_target_column_nothing_fills_stops_the_run_before_reading() {
    let database = TestDatabase::create("unfilled");
    seed_numbers(&database, 100);
    database.execute(
        "ALTER TABLE dst.numbers ADD COLUMN region text NOT NULL, ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY,
                                 ADD COLUMN created timestamptz NOT NULL DEFAULT now()",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.numbers", "dst.numbers", ""));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "failed");
    assert_eq!(counter(run, "rows_extracted"), 0);
    assert!(
        run["error"].as_str().is_some_and(|error| error.contains(
            "target column(s) `region` of `dst.numbers` are NOT NULL without a default, and no source column fills them; map them in [columns]"
        )),
        "only the column nothing fills: {run}"
    );
}

#[test]
fn a_mistyped_watermark_column_is_suggested_and_a_missing_index_is_warned_about() {
    let database = TestDatabase::create("wmindex");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO src.orders SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, 50) g;
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        "mode = \"incremental\"\nwatermark_column = \"updatedat\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let error = run_of(&runs, "t")["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.contains("source has no column `updatedat`; did you mean `updated_at`?"),
        "{error}"
    );

    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"",
    ));
    let warning = "no index of the source table starts with the watermark column `updated_at`";
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let logs = workspace.logs();
    assert!(logs.contains(warning), "{logs}");
    assert!(logs.contains("create one on (updated_at, id)"), "{logs}");

    database.execute("CREATE INDEX ON src.orders (updated_at, id)");
    let before = workspace.logs().matches(warning).count();
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        workspace.logs().matches(warning).count(),
        before,
        "indexed now"
    );
}

#[test]
fn a_later_run_that_loads_a_failed_batchs_rows_resolves_it_and_a_wrong_key_stops_at_once() {
    let database = TestDatabase::create("settle");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, total numeric, updated_at timestamptz NOT NULL);
         INSERT INTO src.orders SELECT g, g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 3000) g;
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL);",
    );
    refuse(
        &database,
        "dst.orders",
        "order",
        "NEW.id BETWEEN 1001 AND 2000",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"\nmax_retries = 0",
    ));
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(run_of(&runs, "t")["status"], "partial");
    assert_eq!(json_lines(&workspace.run(&["errors", "--json"])).len(), 1);
    let listed = String::from_utf8_lossy(&workspace.run(&["errors"]).stdout).to_string();
    assert!(
        listed.contains(", 1000)..(2026-01-02 09:20:00+00, 2000)]")
            && !listed.contains("\"through\""),
        "a failed batch is shown by its bounds in words: {listed}"
    );

    database.execute("DROP TRIGGER refuse ON dst.orders");
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert!(
        json_lines(&workspace.run(&["errors", "--json"])).is_empty(),
        "the batch's rows loaded: nothing is left pending"
    );
    let all = json_lines(&workspace.run(&["errors", "--all", "--json"]));
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["status"], "resolved");
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );

    // A key the target has no unique index on: refused before reading.
    database.execute("ALTER TABLE dst.orders DROP CONSTRAINT orders_pkey");
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 0);
    assert!(
        run["error"].as_str().is_some_and(|error| error.contains(
            "target table `dst.orders` has no primary key or unique index on exactly (id)"
        ) && error.contains("it has none")),
        "{run}"
    );
}

/// Makes the target refuse rows where `condition` holds (on `NEW`), with
/// "`what` ID is locked": a failure that is not the rows' fault.
fn refuse(database: &TestDatabase, table: &str, what: &str, condition: &str) {
    database.execute(&format!(
        "CREATE FUNCTION dst.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF {condition} THEN RAISE EXCEPTION '{what} % is locked', NEW.id; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION dst.refuse();"
    ));
}

/// A task config with its source URL replaced by `url`.
fn with_source(config: &str, database: &TestDatabase, url: &str) -> String {
    config.replacen(
        &format!("source = \"{}\"", database.url),
        &format!("source = \"{url}\""),
        1,
    )
}

/// Forwards connections on `port` to `to` (host:port) once `after` has
/// passed: a server that comes up while a run waits for it.
fn forward_later(port: u16, to: String, after: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the forwarder");
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&to) else {
                continue;
            };
            for (mut from, mut into) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}

#[test]
fn a_run_waits_for_a_server_that_is_not_up_yet_but_not_for_a_refused_login() {
    let database = TestDatabase::create("connectretry");
    seed_numbers(&database, 100);
    // postgres://user@host:port/db?… : the same database through a port
    // where nothing listens for the first 1.5 s.
    let (head, rest) = database.url.split_once('@').expect("user@host");
    let (address, tail) = rest.split_once('/').expect("host/db");
    let port = common::free_port();
    forward_later(port, address.to_string(), Duration::from_millis(1500));
    let late = format!("{head}@127.0.0.1:{port}/{tail}");
    let workspace = Workspace::new();
    workspace.write_config(&with_source(
        &table_task(
            &database,
            "src.numbers",
            "dst.numbers",
            "max_retries = 3\nretry_backoff = \"1s\"",
        ),
        &database,
        &late,
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert!(workspace.logs().contains("connecting failed; trying again"));
    assert_eq!(database.count("SELECT count(*) FROM dst.numbers"), 100);

    // A role the server does not know: no wait helps.
    let (_, rest) = database.url.split_once("://").expect("scheme");
    let (_, after_user) = rest.split_once('@').expect("user");
    let stranger = format!("postgres://no_such_role_here@{after_user}");
    workspace.write_config(&with_source(
        &table_task(
            &database,
            "src.numbers",
            "dst.numbers",
            "max_retries = 3\nretry_backoff = \"1s\"",
        ),
        &database,
        &stranger,
    ));
    let before = workspace.logs().matches("connecting failed").count();
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(run_of(&runs, "t")["status"], "failed");
    assert_eq!(
        workspace.logs().matches("connecting failed").count(),
        before
    );

    // A server that accepts connections and never answers: each attempt
    // ends at the URL's connect_timeout, then the run fails.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().flatten().collect();
        drop(held);
    });
    let mute = format!("{head}@127.0.0.1:{silent_port}/{tail}&connect_timeout=1");
    workspace.write_config(&with_source(
        &table_task(
            &database,
            "src.numbers",
            "dst.numbers",
            "max_retries = 1\nretry_backoff = \"10ms\"",
        ),
        &database,
        &mute,
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|error| error.contains("no answer within 1s")),
        "{run}"
    );
}

#[test]
fn a_failing_batch_is_retried_recorded_and_later_loaded_alone() {
    let database = TestDatabase::create("faults");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (id int PRIMARY KEY, total numeric, updated_at timestamptz NOT NULL);
         INSERT INTO src.orders SELECT g, g * 2.5, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 5000) g;
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL);",
    );
    refuse(
        &database,
        "dst.orders",
        "order",
        "NEW.id BETWEEN 2001 AND 3000",
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.orders",
        "dst.orders",
        "mode = \"incremental\"\nwatermark_column = \"updated_at\"\nmax_retries = 2\nretry_backoff = \"20ms\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "batches_failed"), 1);
    assert_eq!(
        counter(run, "batches_done"),
        4,
        "the batches after the failed one load"
    );
    assert_eq!(database.count("SELECT count(*) FROM dst.orders"), 4000);
    assert_eq!(
        watermark(&workspace),
        None,
        "a partial run leaves the watermark"
    );
    let logs = workspace.logs();
    assert_eq!(
        logs.matches("batch failed item=\"batch 3 ").count(),
        3,
        "first attempt and two retries: {logs}"
    );

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let item = &errors[0];
    assert_eq!(item["kind"], "batch");
    assert_eq!(item["attempts"], 3);
    assert!(
        item["error"]
            .as_str()
            .is_some_and(|error| error.contains("order 2001 is locked")),
        "{item}"
    );
    let bounds: serde_json::Value =
        serde_json::from_str(item["key"].as_str().unwrap_or("{}")).expect("bounds are JSON");
    assert_eq!(
        bounds["through"][1], "3000",
        "the bounds end at the batch's last key: {bounds}"
    );

    database.execute("DROP TRIGGER refuse ON dst.orders");
    let id = item["id"].as_i64().expect("id").to_string();
    assert!(
        logs.contains(&format!(
            "the failed batch is recorded as item #{id}: `syncdeck retry t --batch {id}`"
        )),
        "the log links the batch to its item: {logs}"
    );
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|error| error.contains(&format!("1 batch(es) failed (item #{id})"))),
        "the summary names the item `retry --batch` takes: {run}"
    );
    let output = workspace.run(&["retry", "t", "--batch", &id, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(
        counter(retry, "rows_extracted"),
        1000,
        "exactly the failed batch is read again"
    );
    assert_eq!(counter(retry, "rows_upserted"), 1000);
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );
    assert!(json_lines(&workspace.run(&["errors", "--json"])).is_empty());
}

/// While a batch waits out its retries, the run's progress stays below its
/// total: rows count once their batch is settled, not when a loader takes
/// it, so a console, a bar or a log never shows every row done (100%, ETA
/// 0:00) with a batch still to load.
#[test]
fn rows_count_as_done_only_once_their_batch_is_settled() {
    let database = TestDatabase::create("settled");
    seed_numbers(&database, 3000);
    refuse(&database, "dst.numbers", "number", "NEW.id > 2000");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.numbers",
        "dst.numbers",
        "batch_size = 1000\nmax_retries = 1\nretry_backoff = \"2s\"",
    ));
    let output = workspace
        .command(&["run", "--json"])
        .env("SYNCDECK_PROGRESS_LOG_EVERY", "200ms")
        .output()
        .expect("run syncdeck");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let runs = json_lines(&output);
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(
        counter(run, "rows_extracted"),
        3000,
        "at the end every row read is counted, the failed batch's too"
    );
    let logs = workspace.logs();
    let progress: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("progress: read "))
        .collect();
    assert!(
        progress.iter().any(|line| line.contains("read 2000 of ")
            && line.contains(" 2 batches done, 0 failed, 1 waiting to retry")),
        "while the last batch waited for its retry, two thirds were done: {progress:#?}"
    );
    assert!(
        !progress.iter().any(
            |line| line.contains("read 3000 of ") && line.contains(" 2 batches done, 0 failed")
        ),
        "all rows shown done while a batch still waited: {progress:#?}"
    );
}

/// A psql session holding `mode` on `table` in an open transaction, as
/// application `index_builder`, and its backend's pid. Writing `COMMIT;`
/// to its stdin (then dropping it) ends it.
fn hold_lock(
    database: &TestDatabase,
    table: &str,
    mode: &str,
) -> (std::process::Child, std::process::ChildStdin, String) {
    use std::io::{BufRead, Write};
    let mut holder = std::process::Command::new("psql")
        .args(["-qAtX", "-v", "ON_ERROR_STOP=1", &database.url])
        .env("PGAPPNAME", "index_builder")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start psql");
    let mut session = holder.stdin.take().expect("psql stdin");
    writeln!(
        session,
        "BEGIN; LOCK TABLE {table} IN {mode} MODE; SELECT pg_backend_pid();"
    )
    .expect("lock");
    let mut pid = String::new();
    std::io::BufReader::new(holder.stdout.take().expect("psql stdout"))
        .read_line(&mut pid)
        .expect("the holder's pid");
    (holder, session, pid.trim().to_string())
}

fn release_lock(mut holder: std::process::Child, mut session: std::process::ChildStdin) {
    use std::io::Write;
    writeln!(session, "COMMIT;").expect("commit");
    drop(session);
    holder.wait().expect("psql ends");
}

/// `syncdeck run --json` in the background, looking at a slow load after
/// 300 ms instead of 10 s, its progress logged every 200 ms.
fn start_run_watching_slow_loads(workspace: &Workspace) -> std::process::Child {
    workspace
        .command(&["run", "--json"])
        .env("SYNCDECK_SLOW_LOAD", "300ms")
        .env("SYNCDECK_PROGRESS_LOG_EVERY", "200ms")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncdeck")
}

/// A load that waits for a lock on the target says in the log who holds
/// it (as a CREATE INDEX holds SHARE: reads go on, writes wait), and goes
/// on once the lock is released.
#[test]
fn a_load_waiting_for_a_lock_names_the_session_holding_it() {
    let database = TestDatabase::create("lockwait");
    seed_numbers(&database, 2000);
    let (holder, session, pid) = hold_lock(&database, "dst.numbers", "SHARE");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.numbers", "dst.numbers", ""));
    let child = start_run_watching_slow_loads(&workspace);
    wait_until("the log to say what the load waits for", || {
        workspace.logs().contains("for a lock on the target table")
    });
    let logs = workspace.logs();
    assert!(
        logs.contains(&format!(
            "held by pid {pid} (index_builder, idle in transaction, transaction open for"
        )),
        "{logs}"
    );
    // The progress says it too, in place of an ETA.
    wait_until("the progress to say what it waits for", || {
        workspace.logs().contains(&format!(
            "0 failed, waiting for a lock held by pid {pid} (index_builder)"
        ))
    });
    release_lock(holder, session);
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0)
    );
}

/// Cancelling a run whose loads wait for a lock ends it, and asks the
/// target to stop those statements: none is left waiting on the server
/// (in the lock's queue, ahead of other sessions) after the run ended.
#[test]
fn cancelling_a_run_stuck_on_a_lock_stops_its_statements_on_the_server() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let database = TestDatabase::create("lockcancel");
    seed_numbers(&database, 2000);
    let (holder, session, _) = hold_lock(&database, "dst.numbers", "SHARE");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.numbers", "dst.numbers", ""));
    let child = start_run_watching_slow_loads(&workspace);
    wait_until("the loads to wait for the lock", || {
        workspace.logs().contains("for a lock on the target table")
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(
        run_of(&json_lines(&output), "t")["status"],
        "cancelled",
        "{}",
        stderr(&output)
    );
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name LIKE 'syncdeck:%' AND state = 'active'",
        database.name
    );
    wait_until("no statement of the run left on the server", || {
        database.count(&waiting) == 0
    });
    release_lock(holder, session);
    assert_eq!(
        database.count("SELECT count(*) FROM dst.numbers"),
        0,
        "nothing was loaded behind the lock"
    );
}

/// Makes every load into `table` take a while, so a test can act mid-run.
fn slow_down(database: &TestDatabase, table: &str) {
    database.execute(&format!(
        "CREATE FUNCTION dst.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION dst.slow();"
    ));
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `syncdeck run --json` in the background, its output captured.
fn start_run(workspace: &Workspace) -> std::process::Child {
    workspace
        .command(&["run", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncdeck")
}

/// `src.events` with `rows` rows, one a second from 2026-01-01 00:00:01,
/// and an empty `dst.events` like it.
fn seed_events(database: &TestDatabase, rows: u32) {
    database.execute(&format!(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.events (id bigint PRIMARY KEY, body text, updated_at timestamptz NOT NULL);
         INSERT INTO src.events SELECT g, 'event ' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, {rows}) g;
         CREATE TABLE dst.events (LIKE src.events INCLUDING ALL);"
    ));
}

fn seed_numbers(database: &TestDatabase, rows: u32) {
    database.execute(&format!(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.numbers (id int PRIMARY KEY, label text);
         INSERT INTO src.numbers SELECT g, 'number ' || g FROM generate_series(1, {rows}) g;
         CREATE TABLE dst.numbers (LIKE src.numbers INCLUDING ALL);"
    ));
}

#[test]
fn a_connection_killed_mid_run_is_retried_and_the_run_completes() {
    let database = TestDatabase::create("terminate");
    seed_numbers(&database, 10_000);
    slow_down(&database, "dst.numbers");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.numbers",
        "dst.numbers",
        "batch_size = 250\nretry_backoff = \"50ms\"",
    ));
    let child = start_run(&workspace);
    wait_until("some batches to load", || {
        database.count("SELECT count(*) FROM dst.numbers") >= 1000
    });
    let terminated = database.count(&format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'syncdeck:t:target' AND datname = '{}') x",
        database.name
    ));
    assert!(
        terminated >= 1,
        "the target connection was found and killed"
    );
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&json_lines(&output), "t")["status"], "succeeded");
    assert!(
        workspace.logs().contains("batch failed item=\"batch"),
        "the killed batch was retried"
    );
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0)
    );
}

#[test]
fn kill_9_mid_run_then_a_rerun_converges_without_duplicates() {
    let database = TestDatabase::create("kill");
    seed_numbers(&database, 10_000);
    slow_down(&database, "dst.numbers");
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        &database,
        "src.numbers",
        "dst.numbers",
        "batch_size = 250",
    ));
    let mut child = workspace
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    wait_until("some batches to load", || {
        database.count("SELECT count(*) FROM dst.numbers") >= 2000
    });
    child.kill().expect("kill -9");
    let _ = child.wait();
    let loaded = database.count("SELECT count(*) FROM dst.numbers");
    assert!(loaded < 10_000, "killed before the end ({loaded} rows)");
    assert_eq!(loaded % 250, 0, "only whole batches are committed");

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
    let history = json_lines(&workspace.run(&["history", "--json"]));
    assert_eq!(
        history.last().map(|run| run["status"].clone()),
        Some("interrupted".into()),
        "the killed run is recorded as interrupted"
    );
}

/// A task `t` syncing `rows` numbers from a test database into a private
/// cluster of its own, which writes its WAL out as late as it can: only
/// the WAL writer's 10 s timer or full pages push it out (plus `settings`).
fn into_a_late_flushing_target(
    settings: &[&str],
    hint: &str,
    rows: u32,
    extra: &str,
) -> (PrivateCluster, TestDatabase, Workspace) {
    let mut all = vec![
        "wal_writer_delay = '10s'",
        "wal_writer_flush_after = '1GB'",
        "autovacuum = off",
    ];
    all.extend_from_slice(settings);
    let cluster = PrivateCluster::start(&all);
    cluster.execute(
        "postgres",
        "CREATE SCHEMA dst; CREATE TABLE dst.numbers (id int PRIMARY KEY, label text);",
    );
    let database = TestDatabase::create(hint);
    seed_numbers(&database, rows);
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{}\"\ntarget = \"{}\"\n\
         source_table = \"src.numbers\"\ntarget_table = \"dst.numbers\"\nprimary_key = [\"id\"]\n{extra}\n",
        database.url,
        cluster.url("postgres")
    ));
    (cluster, database, workspace)
}

/// The private cluster's target holds exactly the source's numbers.
fn assert_same_numbers(cluster: &PrivateCluster, database: &TestDatabase) {
    let fingerprint =
        "SELECT count(*) || ' ' || md5(string_agg(id || ':' || label, ',' ORDER BY id)) FROM ";
    assert_eq!(
        cluster.scalar("postgres", &format!("{fingerprint} dst.numbers")),
        database.scalar(&format!("{fingerprint} src.numbers")),
        "the target holds exactly the source's rows"
    );
}

/// Batches commit without waiting for the target's disk. A target that
/// crashes loses the commits still in its WAL buffers; the run must load
/// those batches again, not end with them missing.
#[test]
fn a_target_crash_loses_no_committed_batch() {
    let (cluster, database, workspace) = into_a_late_flushing_target(
        &["bgwriter_lru_maxpages = 0", "checkpoint_timeout = '1h'"],
        "crash",
        5_000,
        "batch_size = 100\nparallel_loads = 1\nmax_retries = 8\nretry_backoff = \"200ms\"",
    );
    let target_rows = || -> u64 {
        cluster
            .scalar("postgres", "SELECT count(*) FROM dst.numbers")
            .parse()
            .expect("a count")
    };

    // The source is locked mid-run, so the loader goes idle right after a
    // commit the target has not flushed.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let lock = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the source");
        tokio::spawn(connection);
        client
    });
    let child = start_run(&workspace);
    wait_until("some batches to load", || target_rows() >= 500);
    runtime
        .block_on(lock.batch_execute("BEGIN; LOCK TABLE src.numbers IN ACCESS EXCLUSIVE MODE"))
        .expect("lock the source");
    let mut committed = target_rows();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = target_rows();
        if now == committed {
            break;
        }
        committed = now;
    }
    assert!(committed < 5_000, "the run is stopped mid-way");

    cluster.crash();
    cluster.restart();
    let after_crash = target_rows();
    eprintln!("{committed} rows committed before the crash, {after_crash} after recovery");
    runtime
        .block_on(lock.batch_execute("COMMIT"))
        .expect("unlock the source");

    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&json_lines(&output), "t")["status"], "succeeded");
    assert!(
        workspace.logs().contains("loading those batches again"),
        "batches committed before the crash were loaded again"
    );
    assert_same_numbers(&cluster, &database);
}

/// A run ends once the target has its last commits on disk. It asks the
/// target to flush rather than waiting for the WAL writer, which a busy or
/// tuned server may run only every few seconds: here every 10 s, while the
/// run may wait 3 s at most before it calls its batches unconfirmed.
#[test]
fn a_run_asks_the_target_to_flush_its_last_commits() {
    let (cluster, database, workspace) =
        into_a_late_flushing_target(&[], "flush", 2_000, "batch_size = 500\nmax_retries = 0");
    let run = |what: &str| {
        let output = workspace
            .command(&["run", "--json"])
            .env("SYNCDECK_FLUSH_WAIT", "3s")
            .output()
            .expect("run syncdeck");
        assert!(output.status.success(), "{what}: {}", stderr(&output));
        let runs = json_lines(&output);
        let run = run_of(&runs, "t");
        assert_eq!(run["status"], "succeeded", "{what}: {run}");
        assert_eq!(counter(run, "batches_failed"), 0, "{what}: {run}");
    };
    run("the first load");
    // One changed row: a commit of a few bytes, far from filling a WAL page.
    database.execute("UPDATE src.numbers SET label = 'changed' WHERE id = 1234");
    run("a run upserting one row");
    assert_same_numbers(&cluster, &database);
}

#[test]
fn full_mode_keeps_rows_deleted_at_the_source_unless_delete_missing_is_set() {
    let database = TestDatabase::create("deletes");
    seed_numbers(&database, 3000);
    let workspace = Workspace::new();
    let with_deletes = table_task(
        &database,
        "src.numbers",
        "dst.numbers",
        "batch_size = 250\ndelete_missing = true",
    );
    let without = table_task(&database, "src.numbers", "dst.numbers", "batch_size = 250");
    workspace.write_config(&without);
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The first key, one inside, and the last: pages at both ends.
    database.execute("DELETE FROM src.numbers WHERE id IN (1, 1234, 3000)");

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_deleted"), 0);
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 3),
        "without delete_missing the deleted rows stay in the target"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    assert!(
        readme.contains("in full mode rows\n  deleted at the source stay in the target"),
        "the README says what full mode does with deletes"
    );

    // A run with a failed batch deletes nothing.
    database.execute("UPDATE src.numbers SET label = 'changed' WHERE id = 700;");
    refuse(&database, "dst.numbers", "number", "NEW.id = 700");
    workspace.write_config(&format!("{with_deletes}max_retries = 0\n"));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "rows_deleted"), 0);
    assert_eq!(
        database.count("SELECT count(*) FROM dst.numbers"),
        3000,
        "a partial run deletes nothing"
    );

    database.execute("DROP TRIGGER refuse ON dst.numbers");
    workspace.write_config(&with_deletes);
    let output = workspace.run(&["run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::stdout(&output);
    assert!(summary.contains("deleted 3"), "{summary}");
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0),
        "the target equals the source"
    );
    let history = json_lines(&workspace.run(&["history", "--json", "t"]));
    assert_eq!(counter(&history[0], "rows_deleted"), 3);
    assert_eq!(history[0]["status"], "succeeded");

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        counter(run_of(&runs, "t"), "rows_deleted"),
        0,
        "nothing left to delete"
    );
}

#[test]
fn delete_missing_with_a_composite_text_key_deletes_exactly_the_missing_rows() {
    let database = TestDatabase::create("deletes_composite");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.stock (region text, id int, qty int, PRIMARY KEY (region, id));
         INSERT INTO src.stock SELECT r, g, g FROM unnest(ARRAY['b', 'a', 'Z', 'é', '10', '9']) r, generate_series(1, 300) g;
         CREATE TABLE dst.stock (LIKE src.stock INCLUDING ALL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.stock\"\ntarget_table = \"dst.stock\"\nprimary_key = [\"region\", \"id\"]\nbatch_size = 170\ndelete_missing = true\n",
        url = database.url
    ));
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    database.execute(
        "DELETE FROM src.stock WHERE (region = '10' AND id IN (1, 170, 171))
            OR (region = 'é' AND id = 300) OR region = 'a'",
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_deleted"), 304);
    assert_eq!(database.except_both_ways("src.stock", "dst.stock"), (0, 0));
}

/// Tuples the server has read from `table` (by sequential and index
/// scans), once the stats of finished connections are in.
fn tuples_read(database: &TestDatabase, table: &str, at_least: u64) -> u64 {
    let sql = format!(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relid = '{table}'::regclass"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = database.count(&sql);
        if read >= at_least || Instant::now() > deadline {
            return read;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_incremental_sync_with_a_composite_key_and_heavy_ties_pages_exactly() {
    let database = TestDatabase::create("ties");
    // 100,000 rows, 2,000 per `updated_at` value, so every batch of 500
    // starts and ends inside a run of equal watermarks.
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.orders (region text, id bigint, amount numeric(12,2), note text,
             updated_at timestamptz NOT NULL, PRIMARY KEY (region, id));
         INSERT INTO src.orders
         SELECT (ARRAY['north', 'south', 'East', 'wést'])[1 + g % 4], g / 4, (g % 977) * 1.25,
                CASE WHEN g % 9 = 0 THEN NULL ELSE 'order ' || g END,
                timestamptz '2026-01-01 00:00:00+00' + (g % 50) * interval '1 minute'
         FROM generate_series(0, 99999) g;
         CREATE INDEX ON src.orders (updated_at, region, id);
         CREATE TABLE dst.orders (LIKE src.orders INCLUDING ALL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.orders\"\ntarget_table = \"dst.orders\"\nprimary_key = [\"region\", \"id\"]\n\
         batch_size = 500\nparallel_reads = 1\nmode = \"incremental\"\nwatermark_column = \"updated_at\"\nwatermark_lookback = \"0s\"\n",
        url = database.url
    ));
    let before = tuples_read(&database, "src.orders", 0);
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        counter(run, "rows_extracted"),
        100_000,
        "every row read exactly once"
    );
    assert_eq!(counter(run, "batches_done"), 200);
    // Each batch starts where the last ended: the server reads each row
    // about once for the batches and once for the count, not the rest of
    // the table again for every batch (200 batches would be ~10 million).
    let read = tuples_read(&database, "src.orders", before + 100_000) - before;
    assert!(
        read < 350_000,
        "the source read {read} tuples for a 100,000-row first load"
    );
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );

    // 1% updated (1,000 rows sharing one new value, across two batches),
    // 0.5% inserted (500 rows sharing another).
    database.execute(
        "UPDATE src.orders SET amount = amount + 1, updated_at = timestamptz '2026-02-01 00:00:00+00'
             WHERE id % 100 = 3;
         INSERT INTO src.orders
         SELECT 'north', 100000 + g, g, 'new ' || g, timestamptz '2026-02-01 00:00:01+00'
         FROM generate_series(1, 500) g;",
    );
    assert_eq!(
        database.count(
            "SELECT count(*) FROM src.orders WHERE updated_at >= timestamptz '2026-02-01 00:00:00+00'"
        ),
        1_500
    );
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(
        counter(run, "rows_extracted"),
        1_500,
        "exactly the changed rows, none twice"
    );
    assert_eq!(counter(run, "rows_upserted"), 1_500);
    assert_eq!(counter(run, "batches_done"), 3);
    assert_eq!(
        database.except_both_ways("src.orders", "dst.orders"),
        (0, 0)
    );
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-02-01 00:00:01+00")
    );
}

#[test]
fn values_of_every_binary_read_type_arrive_exactly_as_the_source_holds_them() {
    let database = TestDatabase::create("binary_types");
    database.execute(
        r#"
CREATE SCHEMA src; CREATE SCHEMA dst;
CREATE TABLE src.kinds (id int PRIMARY KEY, r real, d double precision, n numeric, b bytea,
    j json, jb jsonb, ts timestamp, tz timestamptz, day date, u uuid,
    ints int[], texts text[], stamps timestamptz[], nums numeric[][], docs jsonb[], flags bool[]);
INSERT INTO src.kinds VALUES
 (1, 0.1, 1e-300, 'NaN', '\x00ff10', '{"b": 1,  "a": [1, 2]}', '{"k": "v\"q"}',
  '1999-12-31 23:59:59.999999', '2026-03-29 01:30:00.5+02', '0044-03-15 BC', 'c7f2b0a4-3f5e-4d1a-9a43-0b7a8f7e2c11',
  '{1,NULL,-3}', ARRAY['a b', '', 'NULL', 'q"uo\te', NULL, 'x,y', '{z}'], ARRAY[timestamptz '2026-01-01 12:00:00+00', NULL],
  '{{1.50,-2},{0.001,NaN}}', ARRAY['{"a": [1]}'::jsonb, 'null'], '{t,f}'),
 (2, 'Infinity', '-Infinity', '-12345678901234567890.000000000000000000001', '', 'null', '[]',
  'infinity', '-infinity', 'infinity', '00000000-0000-0000-0000-000000000000',
  '{}', '{}', '{}', '[0:1]={7,8}', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, -0.0, 3.141592653589793, 0.00001, '\x5c0a09', '"\\ \n"', '{"": {}}',
  '0001-01-01 00:00:00', '1970-01-01 00:00:00+00', '2000-02-29', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '{2147483647}', '{"back\\slash"}', '{"1900-06-30 23:59:59.000001+00"}', '{1e20}', '{"{\"x\": \"y\"}"}', '{NULL}');
CREATE TABLE dst.kinds (LIKE src.kinds INCLUDING ALL);
"#,
    );
    let workspace = Workspace::new();
    workspace.write_config(&table_task(&database, "src.kinds", "dst.kinds", ""));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(counter(run, "rows_upserted"), 4);
    // Row by row, as the server writes the whole row: json compared as text.
    let different =
        "SELECT coalesce(string_agg(coalesce(a::text, '-') || ' <> ' || coalesce(z::text, '-'), E'\\n'), 'none')
         FROM src.kinds a FULL JOIN dst.kinds z USING (id) WHERE a::text IS DISTINCT FROM z::text";
    assert_eq!(database.scalar(different), "none", "rows that differ");

    // A rerun reads the same values and finds nothing to change.
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_unchanged"), 4);
}
