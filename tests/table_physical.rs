//! A first load reads the source table in its physical order, in one
//! snapshot: a table whose rows are stored in another order than its key
//! loads whole, rows changed during the load are read as they were when it
//! started, a failed batch is recorded by the keys it held and a retry
//! loads them, and an incremental first load sets the greatest watermark.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{TestDatabase, Workspace, counter, json_lines, run_of, stderr, watermark};
use std::process::Output;

const PHYSICAL: &str = "reading the source table in its physical order, in one snapshot";

fn task(database: &TestDatabase, table: &str, keys: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.{table}\"\ntarget_table = \"dst.{table}\"\nprimary_key = {keys}\n{extra}\n",
        url = database.url
    )
}

/// 20,000 rows with a composite key (tenant text, id bigint), stored in an
/// order unrelated to the key, 1,000 rows per `updated_at` value, NULLs in
/// every other column; analyzed. With `int_tenant`, tenants are numbers
/// (syncdeck then bounds a run of pages itself, unsorted).
fn seed_shuffled(database: &TestDatabase, int_tenant: bool) {
    let (tenant_type, tenant) = if int_tenant {
        ("int", "g % 4 - 2")
    } else {
        (
            "text",
            "(ARRAY['north', 'south', 'East', 'wést'])[1 + g % 4]",
        )
    };
    database.execute(&format!(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.items (tenant {tenant_type}, id bigint, amount numeric(12,2), doc jsonb, ref uuid,
             active bool, updated_at timestamptz NOT NULL, PRIMARY KEY (tenant, id));
         INSERT INTO src.items
         SELECT {tenant}, g,
                CASE WHEN g % 7 = 0 THEN NULL ELSE (g % 977) * 1.25 END,
                CASE WHEN g % 11 = 0 THEN NULL ELSE jsonb_build_object('g', g) END,
                CASE WHEN g % 13 = 0 THEN NULL ELSE md5(g::text)::uuid END,
                CASE WHEN g % 17 = 0 THEN NULL ELSE g % 2 = 0 END,
                timestamptz '2026-01-01 00:00:00+00' + (g / 1000) * interval '1 minute'
         FROM generate_series(0, 19999) g ORDER BY md5(g::text);
         CREATE INDEX ON src.items (updated_at, tenant, id);
         ANALYZE src.items;
         CREATE TABLE dst.items (LIKE src.items INCLUDING ALL);"
    ));
}

/// syncdeck with its arguments, reading tables by pages whatever their size
/// and order (by default only those larger than the server's
/// `shared_buffers`, stored out of key order, are).
fn syncdeck(workspace: &Workspace, args: &[&str]) -> std::process::Command {
    let mut command = workspace.command(args);
    command.env("SYNCDECK_PHYSICAL_READS", "always");
    command
}

fn run_json(workspace: &Workspace) -> (Output, Vec<serde_json::Value>) {
    let output = syncdeck(workspace, &["run", "--json"])
        .output()
        .expect("run syncdeck");
    let runs = json_lines(&output);
    (output, runs)
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_first_load_of_a_shuffled_composite_key_table_reads_pages_and_equals_the_source() {
    let database = TestDatabase::create("physical_full");
    seed_shuffled(&database, false);
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "items",
        "[\"tenant\", \"id\"]",
        "batch_size = 500",
    ));
    let (output, runs) = run_json(&workspace);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(workspace.logs().contains(PHYSICAL), "{}", workspace.logs());
    assert_eq!(
        counter(run, "rows_extracted"),
        20_000,
        "every row read exactly once"
    );
    assert_eq!(counter(run, "rows_upserted"), 20_000);
    assert!(run["warning"].is_null(), "{run}");
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));

    // The target is no longer empty: the next run pages by key and upserts.
    database.execute("UPDATE src.items SET amount = 2 WHERE id % 50 = 1");
    let (output, runs) = run_json(&workspace);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "t"), "rows_extracted"), 20_000);
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
}

/// Rows updated while the load runs move to new pages at the end of the
/// table, past the pages the load counted at its start: read page by page
/// without one snapshot, their old versions would be dead and their new
/// ones never read.
#[test]
fn rows_changed_during_a_first_load_are_loaded_as_they_were_when_it_started() {
    let database = TestDatabase::create("physical_snapshot");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.numbers (id int PRIMARY KEY, label text);
         INSERT INTO src.numbers SELECT g, 'number ' || g FROM generate_series(1, 20000) g;
         ANALYZE src.numbers;
         CREATE TABLE src.before AS SELECT * FROM src.numbers;
         CREATE TABLE dst.numbers (LIKE src.numbers INCLUDING ALL);
         CREATE FUNCTION dst.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON dst.numbers FOR EACH STATEMENT EXECUTE FUNCTION dst.slow();",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(&database, "numbers", "[\"id\"]", "batch_size = 200"));
    let child = syncdeck(&workspace, &["run", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncdeck");
    wait_until("some batches to load", || {
        database.count("SELECT count(*) FROM dst.numbers") >= 1_000
    });
    database.execute(
        "UPDATE src.numbers SET label = 'changed' WHERE id > 15000;
         DELETE FROM src.numbers WHERE id <= 500;",
    );
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", stderr(&output));
    let runs = json_lines(&output);
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(workspace.logs().contains(PHYSICAL), "{}", workspace.logs());
    assert_eq!(counter(run, "rows_extracted"), 20_000);
    assert_eq!(
        database.except_both_ways("src.before", "dst.numbers"),
        (0, 0),
        "the target holds the source as it was when the load started"
    );

    database.execute("DROP TRIGGER slow ON dst.numbers");
    let (output, runs) = run_json(&workspace);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert_eq!(
        database.count(
            "SELECT count(*) FROM (SELECT * FROM src.numbers EXCEPT SELECT * FROM dst.numbers) x"
        ),
        0,
        "a rerun brings the changed rows"
    );
}

/// One row the target refuses fails its batch on every attempt: the batch
/// is recorded by the least and greatest key it held (found by syncdeck:
/// the keys are integers, including negative ones), and a retry reads
/// every row between them (more than the batch: the table is not stored in
/// key order) and resolves it.
#[test]
fn a_failed_batch_of_a_first_load_is_recorded_by_its_keys_and_a_retry_loads_them() {
    let database = TestDatabase::create("physical_fault");
    seed_shuffled(&database, true);
    database.execute(
        "CREATE FUNCTION dst.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = 4242 THEN RAISE EXCEPTION 'item % is locked', NEW.id; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON dst.items FOR EACH ROW EXECUTE FUNCTION dst.refuse();",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "items",
        "[\"tenant\", \"id\"]",
        "batch_size = 500\nmax_retries = 1\nretry_backoff = \"10ms\"",
    ));
    let (output, runs) = run_json(&workspace);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial", "{run}");
    assert_eq!(counter(run, "batches_failed"), 1, "{run}");
    let missing = database.count(
        "SELECT count(*) FROM (SELECT tenant, id FROM src.items EXCEPT SELECT tenant, id FROM dst.items) x",
    );
    assert!(
        (100..=2_000).contains(&missing),
        "one batch of about 500 rows is missing: {missing}"
    );
    assert!(
        workspace.logs().contains("of the snapshot, keys ["),
        "the failed batch is named by its pages and keys: {}",
        workspace.logs()
    );

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    database.execute("DROP TRIGGER refuse ON dst.items");
    let id = errors[0]["id"].as_i64().expect("id").to_string();
    let output = syncdeck(&workspace, &["retry", "t", "--batch", &id, "--json"])
        .output()
        .expect("retry");
    assert!(output.status.success(), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(retry["status"], "succeeded", "{retry}");
    assert!(
        counter(retry, "rows_extracted") >= missing,
        "every missing row read again: {retry}"
    );
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
    assert!(
        json_lines(&workspace.run(&["errors", "--json"])).is_empty(),
        "the retried batch is resolved"
    );
}

#[test]
fn an_incremental_first_load_by_pages_sets_the_greatest_watermark_and_the_next_run_reads_only_changes()
 {
    let database = TestDatabase::create("physical_incremental");
    seed_shuffled(&database, false);
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "items",
        "[\"tenant\", \"id\"]",
        "batch_size = 500\nmode = \"incremental\"\nwatermark_column = \"updated_at\"\nwatermark_lookback = \"0s\"",
    ));
    let (output, runs) = run_json(&workspace);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(workspace.logs().contains(PHYSICAL), "{}", workspace.logs());
    assert_eq!(counter(run, "rows_extracted"), 20_000);
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-01-01 00:19:00+00"),
        "the greatest watermark of the snapshot"
    );

    database.execute(
        "UPDATE src.items SET amount = 1, updated_at = timestamptz '2026-02-01 00:00:00+00' WHERE id % 100 = 3;
         INSERT INTO src.items
         SELECT 'north', 100000 + g, g, NULL, NULL, NULL, timestamptz '2026-02-01 00:00:01+00'
         FROM generate_series(1, 100) g;",
    );
    let (output, runs) = run_json(&workspace);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "rows_extracted"), 300, "{run}");
    assert_eq!(counter(run, "rows_upserted"), 300);
    assert_eq!(database.except_both_ways("src.items", "dst.items"), (0, 0));
    assert_eq!(
        watermark(&workspace).as_deref(),
        Some("2026-02-01 00:00:01+00")
    );
}

/// After a mass delete the table's first pages hold no rows and the rest
/// hold three times the planner's average: runs of pages sized from that
/// average find more rows than a batch, and are read in several batches
/// so none holds more than twice `batch_size` rows (memory stays bounded).
#[test]
fn a_first_load_after_a_mass_delete_reads_batches_of_at_most_batch_size() {
    let database = TestDatabase::create("physical_dense");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.numbers (id int PRIMARY KEY, label text);
         INSERT INTO src.numbers SELECT g, 'number ' || g FROM generate_series(1, 30000) g;
         DELETE FROM src.numbers WHERE id <= 20000;
         ANALYZE src.numbers;
         CREATE TABLE dst.numbers (LIKE src.numbers INCLUDING ALL);",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(&database, "numbers", "[\"id\"]", "batch_size = 500"));
    let (output, runs) = run_json(&workspace);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(workspace.logs().contains(PHYSICAL), "{}", workspace.logs());
    assert_eq!(counter(run, "rows_extracted"), 10_000);
    assert!(
        counter(run, "batches_done") >= 10,
        "10,000 rows in batches of at most 1,000: {run}"
    );
    assert_eq!(
        database.except_both_ways("src.numbers", "dst.numbers"),
        (0, 0)
    );
}

/// Without being told, a first load reads by pages a table the statistics
/// show stored out of key order once it is 8 MiB or more, even when it
/// fits in the server's cache; a table of that size stored in key order,
/// and a small scattered one, are paged by key (exact batches).
#[test]
fn by_default_only_a_table_of_8_mib_or_more_stored_out_of_key_order_is_read_by_pages() {
    let database = TestDatabase::create("physical_choice");
    database.execute(
        "CREATE SCHEMA src; CREATE SCHEMA dst;
         CREATE TABLE src.scattered (id bigint PRIMARY KEY, pad text);
         INSERT INTO src.scattered SELECT g, repeat('x', 100) FROM generate_series(1, 80000) g ORDER BY md5(g::text);
         CREATE TABLE src.ordered (LIKE src.scattered INCLUDING ALL);
         INSERT INTO src.ordered SELECT g, repeat('x', 100) FROM generate_series(1, 80000) g;
         CREATE TABLE src.small (LIKE src.scattered INCLUDING ALL);
         INSERT INTO src.small SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g ORDER BY md5(g::text);
         ANALYZE src.scattered, src.ordered, src.small;
         CREATE TABLE dst.scattered (LIKE src.scattered INCLUDING ALL);
         CREATE TABLE dst.ordered (LIKE src.scattered INCLUDING ALL);
         CREATE TABLE dst.small (LIKE src.scattered INCLUDING ALL);",
    );
    assert!(
        database.scalar("SELECT pg_relation_size('src.scattered') >= 8 * 1024 * 1024") == "t",
        "the scattered table is at least 8 MiB"
    );
    let workspace = Workspace::new();
    let tasks: String = ["scattered", "ordered", "small"]
        .iter()
        .map(|table| {
            task(&database, table, "[\"id\"]", "")
                .replace("id = \"t\"", &format!("id = \"{table}\""))
        })
        .collect();
    workspace.write_config(&tasks);
    // Not `syncdeck()`: no SYNCDECK_PHYSICAL_READS.
    let output = workspace
        .command(&["run", "--json"])
        .output()
        .expect("run syncdeck");
    assert!(output.status.success(), "{}", stderr(&output));
    let runs = json_lines(&output);
    let logs = workspace.logs();
    let by_pages: Vec<&str> = ["scattered", "ordered", "small"]
        .into_iter()
        .filter(|table| {
            logs.lines()
                .any(|line| line.contains(&format!("task_id={table} ")) && line.contains(PHYSICAL))
        })
        .collect();
    assert_eq!(by_pages, ["scattered"], "{logs}");
    for table in ["scattered", "ordered", "small"] {
        assert_eq!(run_of(&runs, table)["status"], "succeeded");
        assert_eq!(
            database.except_both_ways(&format!("src.{table}"), &format!("dst.{table}")),
            (0, 0)
        );
    }
    // Paged by key, 80,000 rows come in exactly 80 batches.
    assert_eq!(counter(run_of(&runs, "ordered"), "batches_done"), 80);
}
