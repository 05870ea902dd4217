//! The shipped demo (`config.example.toml` + `assets/demo`) runs with no
//! service: its quick tasks copy once and then skip everything, and the
//! task built to fail ends partial with its failures recorded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{counter, json_lines, stderr};

#[test]
fn the_demo_runs_and_a_second_run_skips_every_file_as_unchanged() {
    let scratch = common::demo_copy();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_syncdeck"))
            .current_dir(scratch.path())
            .args([
                "-c",
                "config.example.toml",
                "run",
                "--json",
                "sync_csv_files",
                "archive_summary",
                "keep_first_copy",
            ])
            .output()
            .expect("run")
    };

    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let runs = json_lines(&first);
    assert!(!runs.is_empty());
    assert!(
        runs.iter().all(|run| run["status"] == "succeeded"),
        "{runs:?}"
    );
    assert!(
        runs.iter()
            .map(|run| counter(run, "files_synced"))
            .sum::<u64>()
            > 0,
        "the first run copies files"
    );

    let second = run();
    assert!(second.status.success(), "{}", stderr(&second));
    for run in json_lines(&second) {
        assert_eq!(counter(&run, "files_synced"), 0, "{run}");
        let skipped =
            counter(&run, "files_skipped_unchanged") + counter(&run, "files_skipped_exists");
        assert_eq!(
            skipped,
            counter(&run, "files_matched"),
            "every file skipped: {run}"
        );
    }
    assert!(
        scratch.path().join(".syncdeck/state.db").exists(),
        "state is kept beside the config"
    );
}

#[test]
fn the_demo_failure_task_ends_partial_until_its_cause_is_removed() {
    let scratch = common::demo_copy();
    let syncdeck = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_syncdeck"))
            .current_dir(scratch.path())
            .arg("-c")
            .arg("config.example.toml")
            .args(args)
            .output()
            .expect("run")
    };
    let output = syncdeck(&["run", "--json", "publish_reports"]);
    assert_eq!(output.status.code(), Some(1));
    let run = &json_lines(&output)[0];
    assert_eq!(run["status"], "partial");
    assert_eq!(
        counter(run, "files_failed"),
        2,
        "reports/summary.csv and reports/manifest.json"
    );
    std::fs::remove_file(scratch.path().join("assets/demo/published/reports"))
        .expect("remove the blocker");
    let output = syncdeck(&["retry", "publish_reports", "--all-failed", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(&json_lines(&output)[0], "files_synced"), 2);
}
