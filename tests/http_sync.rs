//! `type = "http_sync"`: a paginated JSON API (served locally by the test)
//! into a real PostgreSQL table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{API_TOKEN, FakeApi, TestDatabase, Workspace, counter, json_lines, run_of, stderr};

fn setup(api: &FakeApi, database: &TestDatabase) -> Workspace {
    database.execute("CREATE TABLE public.users (external_id bigint PRIMARY KEY, email text NOT NULL, name text, updated_at timestamptz)");
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"users\"\ntype = \"http_sync\"\n[tasks.properties]\nbase_url = \"{}\"\npath = \"/users\"\ntoken = \"${{credential:api_token}}\"\n\
         page_size = 100\nitems_path = \"data\"\ntotal_path = \"total\"\nupdated_since_param = \"updated_since\"\n\
         target = \"{}\"\ntarget_table = \"public.users\"\nprimary_key = [\"external_id\"]\nmax_retries = 2\nretry_backoff = \"20ms\"\n\
         [tasks.properties.columns]\nexternal_id = \"id\"\nemail = \"email\"\nname = \"profile.name\"\nupdated_at = \"updated_at\"\n",
        api.url, database.url
    ));
    workspace
}

fn run(workspace: &Workspace, args: &[&str]) -> std::process::Output {
    workspace
        .command(args)
        .env("SYNCDECK_CREDENTIAL_API_TOKEN", API_TOKEN)
        .output()
        .expect("run")
}

#[test]
fn a_full_then_an_incremental_sync() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http"));
    let workspace = setup(&api, &database);
    let output = run(&workspace, &["run", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let first = run_of(&json_lines(&output), "users").clone();
    assert_eq!(counter(&first, "rows_extracted"), 250);
    assert_eq!(counter(&first, "batches_done"), 3, "three pages of 100");
    assert_eq!(first["counters"]["rows_total"], 250);
    assert_eq!(
        database.scalar("SELECT name FROM public.users WHERE external_id = 42"),
        "User 42",
        "nested fields map"
    );

    api.control("touch=1,2,3,4,5&add=3");
    let output = run(&workspace, &["run", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let second = run_of(&json_lines(&output), "users").clone();
    assert_eq!(
        counter(&second, "rows_extracted"),
        8,
        "only items updated since the last successful run"
    );
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 253);
    assert_eq!(
        database.scalar("SELECT email FROM public.users WHERE external_id = 3"),
        "changed3@example.com"
    );
}

#[test]
fn a_page_that_fails_twice_is_retried_and_loaded() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http_retry"));
    let workspace = setup(&api, &database);
    api.control("fail_page=2&fail_times=2");
    let output = run(&workspace, &["run", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&json_lines(&output), "users")["status"], "succeeded");
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 250);
    assert_eq!(
        workspace.logs().matches("page failed").count(),
        2,
        "two failed attempts, then success"
    );
}

#[test]
fn a_page_that_keeps_failing_is_recorded_and_retried_after_the_fix() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http_broken"));
    let workspace = setup(&api, &database);
    api.control("fail_page=2&fail_times=-1");
    let output = run(&workspace, &["run", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let first = run_of(&json_lines(&output), "users").clone();
    assert_eq!(first["status"], "partial");
    assert_eq!(counter(&first, "batches_failed"), 1);
    assert_eq!(
        database.count("SELECT count(*) FROM public.users"),
        150,
        "pages 1 and 3 loaded"
    );

    let errors = json_lines(&run(&workspace, &["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "batch");
    assert_eq!(errors[0]["attempts"], 3);
    assert!(
        errors[0]["key"]
            .as_str()
            .is_some_and(|key| key.contains("\"page\":2")),
        "{}",
        errors[0]
    );
    assert!(
        errors[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("500")),
        "{}",
        errors[0]
    );

    api.control("heal=1");
    let output = run(&workspace, &["retry", "users", "--all-failed", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        counter(&json_lines(&output)[0], "rows_extracted"),
        100,
        "only the failed page is fetched again"
    );
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 250);
    assert!(json_lines(&run(&workspace, &["errors", "--json"])).is_empty());
}

/// The seed 002 task exactly as the README shows it.
fn readme_seed_002_task() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let block = readme
        .split("<!-- seed-002-begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- seed-002-end -->").next())
        .expect("the seed 002 block in the README");
    block
        .trim()
        .trim_start_matches("```toml")
        .trim_end_matches("```")
        .to_string()
}

fn seed_002_table(database: &TestDatabase) {
    database.execute(
        "CREATE TABLE public.users (external_id bigint PRIMARY KEY, email text NOT NULL, name text, \
         status text, metadata jsonb, updated_at timestamptz)",
    );
}

fn run_seed_002(
    workspace: &Workspace,
    api: &FakeApi,
    database: &TestDatabase,
) -> std::process::Output {
    workspace
        .command(&["run", "--json"])
        .env("SYNCDECK_CREDENTIAL_API_TOKEN", API_TOKEN)
        .env("EXTERNAL_API_URL", &api.url)
        .env("USERS_DATABASE_URL", &database.url)
        .output()
        .expect("run")
}

/// Seconds since the epoch of an RFC 3339 time PostgreSQL printed.
fn epoch(database: &TestDatabase, sql: &str) -> i64 {
    database.scalar(sql).parse().expect("epoch seconds")
}

#[test]
fn seed_002_transform_lands_every_column() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http_seed_002"));
    seed_002_table(&database);
    let workspace = Workspace::new();
    workspace.write_config(&readme_seed_002_task());
    let before = chrono::Utc::now().timestamp();
    let output = run_seed_002(&workspace, &api, &database);
    let after = chrono::Utc::now().timestamp();
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&json_lines(&output), "external_users").clone();
    assert_eq!(counter(&run, "rows_extracted"), 250);
    assert_eq!(counter(&run, "rows_skipped"), 0);
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 250);

    // User 3: `User3@Example.COM` upstream, inactive (every third user is).
    let row = database.scalar(
        "SELECT concat_ws('|', email, name, status, metadata->>'source', metadata->>'original_id') \
         FROM public.users WHERE external_id = 3",
    );
    assert_eq!(
        row,
        "user3@example.com|First3 Last3|inactive|external-system|3"
    );
    assert_eq!(
        database.scalar("SELECT status FROM public.users WHERE external_id = 4"),
        "active"
    );
    // Every row, not just the samples.
    assert_eq!(
        database.count(
            "SELECT count(*) FROM public.users WHERE email <> lower(email) \
             OR email <> 'user' || external_id || '@example.com' \
             OR name <> 'First' || external_id || ' Last' || external_id \
             OR status <> CASE WHEN external_id % 3 = 0 THEN 'inactive' ELSE 'active' END \
             OR metadata->>'source' <> 'external-system' \
             OR (metadata->>'original_id')::bigint <> external_id"
        ),
        0
    );
    assert_eq!(
        database.count("SELECT count(*) FROM public.users WHERE status = 'inactive'"),
        83
    );
    // The run time: `now | todate` is whole seconds, within the run.
    for column in ["(metadata->>'synced_at')::timestamptz", "updated_at"] {
        let earliest = epoch(
            &database,
            &format!("SELECT extract(epoch FROM min({column}))::bigint FROM public.users"),
        );
        let latest = epoch(
            &database,
            &format!("SELECT extract(epoch FROM max({column}))::bigint FROM public.users"),
        );
        // jaq's `todate` rounds to the nearest second: allow one more.
        assert!(
            before <= earliest && latest <= after + 1,
            "{column}: {earliest}..{latest} outside the run {before}..{after}"
        );
    }
    assert!(
        database
            .scalar("SELECT metadata->>'synced_at' FROM public.users WHERE external_id = 1")
            .ends_with('Z'),
        "RFC 3339 in UTC"
    );
}

#[test]
fn a_jq_error_on_one_item_skips_only_that_item() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http_jq_error"));
    seed_002_table(&database);
    let workspace = Workspace::new();
    workspace.write_config(&readme_seed_002_task());
    api.control("numeric_first_name=7");
    let output = run_seed_002(&workspace, &api, &database);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = run_of(&json_lines(&output), "external_users").clone();
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(&run, "rows_skipped"), 1);
    assert_eq!(counter(&run, "batches_failed"), 0, "the page itself loaded");
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 249);
    assert_eq!(
        database.count("SELECT count(*) FROM public.users WHERE external_id = 7"),
        0
    );

    let errors = json_lines(
        &workspace
            .command(&["errors", "--json"])
            .env("SYNCDECK_CREDENTIAL_API_TOKEN", API_TOKEN)
            .env("EXTERNAL_API_URL", &api.url)
            .env("USERS_DATABASE_URL", &database.url)
            .output()
            .expect("errors"),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "row");
    assert_eq!(errors[0]["key"], "external_id=7");
    let reason = errors[0]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("column `name`") && reason.contains("12345"),
        "the reason names the column and the value: {reason}"
    );

    // A run whose page holding it fails never loaded or checked it: it
    // stays pending under its id (it was resolved before the run read
    // anything).
    api.control("fail_page=1&fail_times=-1");
    let output = run_seed_002(&workspace, &api, &database);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let errors = json_lines(
        &workspace
            .command(&["errors", "--json"])
            .env("SYNCDECK_CREDENTIAL_API_TOKEN", API_TOKEN)
            .output()
            .expect("errors"),
    );
    let rows: Vec<_> = errors.iter().filter(|item| item["kind"] == "row").collect();
    assert_eq!(rows.len(), 1, "{errors:?}");
    assert_eq!(rows[0]["key"], "external_id=7");
    assert_eq!(
        database.count("SELECT count(*) FROM public.users WHERE external_id = 7"),
        0
    );
}

#[test]
fn the_filter_drops_items_and_counts_them_as_filtered() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http_jq_filter"));
    seed_002_table(&database);
    let workspace = Workspace::new();
    workspace.write_config(
        &readme_seed_002_task().replace("filter = \".id != null\"", "filter = \".active\""),
    );
    let output = run_seed_002(&workspace, &api, &database);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&json_lines(&output), "external_users").clone();
    assert_eq!(run["status"], "succeeded", "filtered items are not errors");
    assert_eq!(counter(&run, "rows_filtered"), 83);
    assert_eq!(counter(&run, "rows_skipped"), 0);
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 167);
    assert_eq!(
        database.count("SELECT count(*) FROM public.users WHERE status = 'inactive'"),
        0
    );
}

#[test]
fn path_and_query_take_templates_and_environment_values() {
    let (api, database) = (FakeApi::start(), TestDatabase::create("http_templates"));
    seed_002_table(&database);
    let workspace = Workspace::new();
    let task = readme_seed_002_task()
        .replace("id = \"external_users\"", "id = \"users\"")
        .replace(
            "path = \"/users\"",
            "path = \"/{{ task_id }}\"\nquery = { source = \"${env:SYNC_SOURCE}-{{ execution_date }}\", run = \"r{{ run_id }}\" }",
        );
    workspace.write_config(&task);
    let output = workspace
        .command(&["run", "--json", "--execution-date", "2026-03-04"])
        .env("SYNCDECK_CREDENTIAL_API_TOKEN", API_TOKEN)
        .env("EXTERNAL_API_URL", &api.url)
        .env("USERS_DATABASE_URL", &database.url)
        .env("SYNC_SOURCE", "crm")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(database.count("SELECT count(*) FROM public.users"), 250);
    let run_id = run_of(&json_lines(&output), "users")["run_id"]
        .as_i64()
        .expect("run id");
    let requests = api.requests();
    assert!(
        requests.len() == 3
            && requests.iter().all(|request| request.starts_with("/users?")
                && request.contains("source=crm-2026-03-04")
                && request.contains(&format!("run=r{run_id}"))),
        "{requests:?}"
    );
}
