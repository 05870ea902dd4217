//! The command line tells the operator the truth: unknown task ids are
//! errors with a hint, a missing source folder fails the run, nothing to
//! retry is not an error, `--read-only` never starts a run, and a failed
//! run is logged as an error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Workspace, json_lines, stderr, stdout};

fn sync_task(id: &str, source: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{source}\"\ndestination_path = \"out/\"\n\n"
    )
}

fn two_tasks() -> Workspace {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a");
    workspace.write_config(&(sync_task("orders", "in/") + &sync_task("customers", "in/")));
    workspace
}

#[test]
fn a_misspelt_task_id_is_a_usage_error_with_a_suggestion_in_every_command() {
    let workspace = two_tasks();
    for args in [
        vec!["errors", "ordres"],
        vec!["history", "ordres"],
        vec!["run", "ordres"],
        vec!["run", "--dry-run", "ordres"],
        vec!["retry", "ordres", "--all-failed"],
        vec!["plan", "ordres"],
    ] {
        let output = workspace.run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.contains("no task `ordres`") && message.contains("did you mean `orders`?"),
            "{args:?}: {message}"
        );
        assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
        assert!(
            !message.contains("customers"),
            "no list of every id: {message}"
        );
        assert!(stdout(&output).is_empty(), "{args:?}: {}", stdout(&output));
    }
    let output = workspace.run(&["errors", "NOSUCH"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no task `NOSUCH`")
            && stderr(&output).contains("`syncdeck validate` lists the tasks"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_task_removed_from_the_config_keeps_its_history() {
    let workspace = two_tasks();
    assert_eq!(workspace.run(&["run", "customers"]).status.code(), Some(0));
    workspace.write_config(&sync_task("orders", "in/"));
    let output = workspace.run(&["history", "--json", "customers"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json_lines(&output)[0]["status"], "succeeded");
}

#[test]
fn retry_with_nothing_pending_says_so_and_succeeds_but_unknown_ids_are_errors() {
    let workspace = two_tasks();
    let output = workspace.run(&["retry", "orders", "--all-failed"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("nothing to retry: task `orders` has no pending failed items"),
        "{}",
        stdout(&output)
    );
    assert!(
        json_lines(&workspace.run(&["history", "--json"])).is_empty(),
        "no run was started"
    );
    let output = workspace.run(&["retry", "orders", "--batch", "999"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("task `orders` has no failed item with id 999"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn read_only_refuses_to_run_or_retry() {
    let workspace = two_tasks();
    for (args, what) in [
        (vec!["--read-only", "run"], "starts runs"),
        (vec!["run", "orders", "--read-only"], "starts runs"),
        (
            vec!["--read-only", "retry", "orders", "--all-failed"],
            "starts runs",
        ),
        (vec!["--read-only", "daemon"], "starts runs"),
        (
            vec!["--read-only", "reset", "orders"],
            "changes the state store",
        ),
        (
            vec!["--read-only", "abandon", "orders", "--all-failed"],
            "changes the state store",
        ),
    ] {
        let output = workspace.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains("--read-only only watches") && message.contains(what),
            "{args:?}: {message}"
        );
        assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
    }
    assert!(
        workspace.tree("out").is_empty(),
        "nothing was copied by a read-only command"
    );
    assert!(json_lines(&workspace.run(&["history", "--json"])).is_empty());
    // Watching is still allowed.
    let output = workspace.run(&["--read-only", "history"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_source_folder_that_does_not_exist_fails_the_run_and_names_it() {
    let workspace = Workspace::new();
    workspace.write_config(&sync_task("t", "mnt/x/"));
    let missing = workspace.path().join("mnt/x");
    let output = workspace.run(&["run", "t"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let expected = format!("source folder {} does not exist", missing.display());
    assert!(stdout(&output).contains(&expected), "{}", stdout(&output));

    let history = json_lines(&workspace.run(&["history", "--json", "t"]));
    assert_eq!(history[0]["status"], "failed");
    assert!(
        history[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains(&expected)),
        "{history:?}"
    );
    // `plan` says the same, as an error.
    let plan = workspace.run(&["plan", "t"]);
    assert_eq!(plan.status.code(), Some(1));
    assert!(stderr(&plan).contains(&expected), "{}", stderr(&plan));

    // Without a trailing `/` it may have meant a file: not called a folder.
    workspace.write_config(&sync_task("f", "nosuch.csv"));
    let output = workspace.run(&["run", "f"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let expected = format!(
        "source {} does not exist (no file or folder of that name)",
        workspace.path().join("nosuch.csv").display()
    );
    assert!(stdout(&output).contains(&expected), "{}", stdout(&output));
}

#[test]
fn an_existing_empty_source_folder_succeeds_with_a_warning() {
    let workspace = Workspace::new();
    std::fs::create_dir_all(workspace.path().join("in")).expect("mkdir");
    workspace.write_config(&sync_task("t", "in/"));
    let (output, runs) = workspace.run_json(&["t"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["warning"], "0 files found in in/");
}

#[test]
fn a_failed_run_is_logged_as_an_error() {
    let workspace = Workspace::new();
    workspace.write_config(&sync_task("t", "gone/"));
    assert_eq!(workspace.run(&["run", "t"]).status.code(), Some(1));
    let logs = workspace.logs();
    let finished = logs
        .lines()
        .find(|line| line.contains("run finished"))
        .unwrap_or_else(|| panic!("no `run finished` line in:\n{logs}"));
    assert!(
        finished.contains("ERROR") && finished.contains("status=failed"),
        "{finished}"
    );
}
