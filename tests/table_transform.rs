//! Table sync transforms against a real PostgreSQL: jq columns computed
//! from the source row, a row `filter`, a jq error on one row that makes
//! only that row a recorded bad row, and bad expressions refused as config
//! errors pointing inside the string.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{TestDatabase, Workspace, counter, json_lines, run_of, stderr, stdout};

/// 20 people; every fourth inactive, id 7 with no `active` at all.
const PEOPLE: &str = r#"
CREATE SCHEMA src; CREATE SCHEMA dst;
CREATE TABLE src.people (
    id int PRIMARY KEY, first_name text, last_name text, email text,
    active boolean, amount numeric(10,2), profile jsonb, code text);
INSERT INTO src.people
SELECT g, 'Ada' || g, 'Lovelace', 'Ada' || g || '@Example.ORG',
    CASE WHEN g = 7 THEN NULL ELSE g % 4 <> 0 END,
    g * 1.25,
    jsonb_build_object('first_name', 'Ada' || g, 'address', jsonb_build_object('city', 'City ' || g)),
    'C' || g
FROM generate_series(1, 20) g;
"#;

fn task(database: &TestDatabase, target: &str, properties: &str) -> String {
    format!(
        "[[tasks]]\nid = \"t\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"src.people\"\ntarget_table = \"{target}\"\nprimary_key = [\"id\"]\n{properties}\n",
        url = database.url
    )
}

#[test]
fn jq_columns_compute_values_from_the_source_row() {
    let database = TestDatabase::create("table_jq_columns");
    database.execute(PEOPLE);
    database.execute(
        "CREATE TABLE dst.people (id int PRIMARY KEY, full_name text, email text, status text,
             cents bigint, label text, city text, synced_by text, last_name text)",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "dst.people",
        r#"[tasks.properties.columns]
id = {}
last_name = {}
full_name = { jq = '.first_name + " " + .last_name' }
email = { jq = ".email | ascii_downcase" }
status = { jq = 'if .active then "active" else "inactive" end' }
cents = { jq = ".amount * 100 | round" }
label = { jq = '"\(.code)-\(.id)"' }
city = { jq = ".profile.address.city" }
synced_by = { jq = '"\($run.task_id) \($run.execution_date)"' }
"#,
    ));
    let (output, runs) = workspace.run_json(&["--execution-date", "2026-03-04"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(counter(run, "rows_upserted"), 20);
    assert_eq!(counter(run, "rows_skipped"), 0);

    let row = |id: u32| {
        database.scalar(&format!(
            "SELECT concat_ws('|', full_name, email, status, cents, label, city, synced_by, last_name)
             FROM dst.people WHERE id = {id}"
        ))
    };
    assert_eq!(
        row(3),
        "Ada3 Lovelace|ada3@example.org|active|375|C3-3|City 3|t 2026-03-04|Lovelace",
        "every computed column of an active row"
    );
    assert_eq!(
        row(8),
        "Ada8 Lovelace|ada8@example.org|inactive|1000|C8-8|City 8|t 2026-03-04|Lovelace",
        "an inactive row"
    );
    assert_eq!(
        row(7).split('|').nth(2),
        Some("inactive"),
        "a NULL boolean is jq's null, so the else branch"
    );
    assert_eq!(
        database.count("SELECT count(*) FROM dst.people WHERE status = 'active'"),
        14
    );
}

#[test]
fn the_filter_drops_rows_and_counts_them_as_filtered() {
    let database = TestDatabase::create("table_jq_filter");
    database.execute(PEOPLE);
    database.execute("CREATE TABLE dst.people (LIKE src.people INCLUDING ALL)");
    let workspace = Workspace::new();
    // No [columns]: every source column, same name, after the filter.
    workspace.write_config(&task(
        &database,
        "dst.people",
        "filter = \".active and .amount < 20\"",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded", "filtered rows are not errors");
    assert_eq!(counter(run, "rows_extracted"), 20);
    // Kept: ids 1..=15 (amount below 20) that are active: not 4, 8, 12 (inactive), not 7 (NULL).
    assert_eq!(counter(run, "rows_filtered"), 9);
    assert_eq!(counter(run, "rows_skipped"), 0);
    assert_eq!(database.count("SELECT count(*) FROM dst.people"), 11);
    assert_eq!(
        database.count(
            "SELECT count(*) FROM dst.people WHERE NOT active OR active IS NULL OR amount >= 20"
        ),
        0
    );
    assert!(
        json_lines(&workspace.run(&["errors", "--json"])).is_empty(),
        "nothing is recorded for filtered rows"
    );
}

#[test]
fn a_jq_error_on_one_row_records_only_that_row() {
    let database = TestDatabase::create("table_jq_error");
    database.execute(PEOPLE);
    // Row 5's upstream JSON has a number where a name should be.
    database.execute(
        "UPDATE src.people SET profile = jsonb_set(profile, '{first_name}', '5') WHERE id = 5;
         CREATE TABLE dst.people (id int PRIMARY KEY, full_name text)",
    );
    let workspace = Workspace::new();
    workspace.write_config(&task(
        &database,
        "dst.people",
        "batch_size = 8\n[tasks.properties.columns]\nid = {}\nfull_name = { jq = '.profile.first_name + \" \" + .last_name' }\n",
    ));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "a partial run exits 1");
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial", "one bad row, not a failed run");
    assert_eq!(counter(run, "rows_skipped"), 1);
    assert_eq!(
        counter(run, "rows_upserted"),
        19,
        "the rest of its batch loads"
    );
    assert_eq!(counter(run, "batches_done"), 3);
    assert_eq!(database.count("SELECT count(*) FROM dst.people"), 19);
    assert_eq!(
        database.count("SELECT count(*) FROM dst.people WHERE id = 5"),
        0
    );

    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "row");
    assert_eq!(errors[0]["key"], "id=5");
    let reason = errors[0]["error"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("column `full_name`: jq: ") && reason.contains("cannot"),
        "the reason names the column and jq's error: {reason}"
    );

    // The history speaks of rows for a table sync, not of files.
    let history = stdout(&workspace.run(&["history", "t"]));
    let line = history
        .lines()
        .find(|line| line.contains("partial"))
        .unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        fields.windows(4).any(|w| w == ["19", "1", "0", "20"])
            && history
                .lines()
                .next()
                .is_some_and(|header| header.contains("UPSERTED SKIPPED FAILED       READ")),
        "upserted 19, skipped 1, no failed batch, 20 rows read: {history}"
    );

    // A retry reads the row again: still bad, it stays pending and says so.
    let output = workspace.run(&["retry", "t", "--all-failed", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(retry["status"], "partial", "{retry}");
    assert_eq!(counter(retry, "rows_skipped"), 1);
    assert_eq!(json_lines(&workspace.run(&["errors", "--json"])).len(), 1);

    // Fixed at the source, the retry loads it and closes the record.
    database.execute(
        "UPDATE src.people SET profile = jsonb_set(profile, '{first_name}', '\"Ada5\"') WHERE id = 5",
    );
    let output = workspace.run(&["retry", "t", "--all-failed", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json_lines(&output)[0]["status"], "succeeded");
    assert_eq!(
        database.scalar("SELECT full_name FROM dst.people WHERE id = 5"),
        "Ada5 Lovelace"
    );
    assert!(json_lines(&workspace.run(&["errors", "--json"])).is_empty());
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/invalid_configs")
        .join(name)
}

/// `syncdeck validate` on a fixture: exit 2 and one line, which is returned.
fn validate_error(name: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .arg("-c")
        .arg(fixture(name))
        .arg("validate")
        .output()
        .expect("run syncdeck");
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: one line expected: {stderr}");
    lines[0].to_string()
}

#[test]
fn a_bad_table_jq_expression_is_a_config_error_pointing_inside_it() {
    let line = validate_error("table_jq_syntax.toml");
    // Line 11, column 29: `"active"`, where `then` is missing.
    let location = format!("{}:11:29:", fixture("table_jq_syntax.toml").display());
    assert!(line.contains(&location), "{location} in: {line}");
    assert!(
        line.contains("jq in column `status`") && line.contains("fix the expression here"),
        "{line}"
    );

    // Line 10, column 25: `$today`.
    let line = validate_error("table_jq_filter_variable.toml");
    let location = format!(
        "{}:10:25:",
        fixture("table_jq_filter_variable.toml").display()
    );
    assert!(line.contains(&location), "{location} in: {line}");
    assert!(
        line.contains("jq in filter") && line.contains("unknown variable `$today`"),
        "{line}"
    );
}

#[test]
fn a_key_computed_by_jq_or_a_column_with_two_sources_is_refused() {
    let line = validate_error("table_jq_key.toml");
    assert!(
        line.contains("primary key column `id` cannot be computed by jq"),
        "{line}"
    );
    let line = validate_error("table_jq_and_source.toml");
    assert!(
        line.contains("column `name` has both source and jq; keep one"),
        "{line}"
    );
}
