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
