//! The headless CLI at the end of a run and when things go wrong: each
//! task's summary as soon as it ends, a totals line, exit 130 on ctrl-c,
//! `validate` listing every problem, `retry` saying how to choose items.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Workspace, sparse_file, stderr, stdout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn a_run_of_several_tasks_ends_with_a_totals_line() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"1,2\n");
    workspace.file("in/b.csv", b"3,4\n");
    workspace.write_config(
        "[[tasks]]\nid = \"copies\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n\n\
         [[tasks]]\nid = \"missing_source\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"nowhere/\"\ndestination_path = \"out2/\"\n",
    );
    let output = workspace.run(&["run"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let printed = stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    let last = lines.last().expect("some output");
    assert!(
        last.starts_with("total  2 tasks  1 succeeded  1 failed  files synced 2"),
        "the last line sums up the run: {printed}"
    );
    assert!(last.contains(" B  in "), "bytes and time in: {last}");
    assert!(
        lines.iter().any(|line| line.starts_with("copies  run "))
            && lines
                .iter()
                .any(|line| line.starts_with("missing_source  run ")),
        "each task has its summary line: {printed}"
    );

    let one = workspace.run(&["run", "copies"]);
    let printed = stdout(&one);
    assert!(
        printed.contains("total  1 task  1 succeeded"),
        "one task is `1 task`, not `1 tasks`: {printed}"
    );
}

/// A task that copies a big file slowly and one that ends at once, both
/// allowed to run together.
fn slow_and_fast(workspace: &Workspace) {
    sparse_file(&workspace.path().join("slow/big.bin"), 256 * 1024 * 1024);
    workspace.file("fast/a.csv", b"1\n");
    std::fs::write(
        workspace.config_path(),
        "[engine]\nstate = \"sqlite:state/state.db\"\nlog_dir = \"logs\"\nmax_concurrent_tasks = 2\n\n\
         [[tasks]]\nid = \"slow\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"slow/\"\ndestination_path = \"slow_out/\"\nbwlimit = \"8MiB\"\n\n\
         [[tasks]]\nid = \"fast\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"fast/\"\ndestination_path = \"fast_out/\"\n",
    )
    .unwrap();
}

#[test]
fn a_finished_task_is_reported_while_others_run_and_ctrl_c_exits_130() {
    let workspace = Workspace::new();
    slow_and_fast(&workspace);
    let mut child = workspace
        .command(&["run", "slow", "fast"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start syncdeck");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines
        .next()
        .expect("a line before the run ends")
        .expect("read stdout");
    assert!(
        first.starts_with("fast  run ") && first.contains("succeeded"),
        "the fast task's summary comes first: {first}"
    );
    assert!(
        child.try_wait().expect("poll").is_none(),
        "the summary came while the slow task still ran, not at the end"
    );
    common::wait_for_bytes_in_flight(&workspace, "slow");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(130),
        "ctrl-c exits 130 like other tools; printed: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|line| line.starts_with("slow  run ") && line.contains("cancelled")),
        "the interrupted task is reported cancelled: {rest:?}"
    );
    assert!(
        rest.last()
            .is_some_and(|line| line.contains("1 succeeded  1 cancelled")),
        "the totals line still comes: {rest:?}"
    );
}

#[test]
fn validate_lists_every_problem_then_exits_2() {
    let workspace = Workspace::new();
    workspace.write_config(
        "[[tasks]]\nid = \"one\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\ntransfer = 4\n\n\
         [[tasks]]\nid = \"two\"\ntype = \"sync\"\ndependencies = [\"onee\"]\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out2/\"\n\n\
         [[tasks]]\nid = \"three\"\ntype = \"sycn\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out3/\"\n",
    );
    let output = workspace.run(&["validate"]);
    let printed = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "three problems and a count: {printed}");
    assert!(
        lines[0].contains("syncdeck.toml:11:1:") && lines[0].contains("unknown key `transfer`"),
        "{printed}"
    );
    // In the order of the file.
    assert!(
        lines[1].contains("syncdeck.toml:16:17:")
            && lines[1].contains("depends on unknown task `onee`; did you mean `one`?"),
        "{printed}"
    );
    assert!(
        lines[2].contains("syncdeck.toml:23:8:") && lines[2].contains("did you mean `sync`?"),
        "{printed}"
    );
    assert!(lines[3].ends_with("3 problems found"), "{printed}");
}

#[test]
fn validate_of_a_good_config_lists_its_tasks_one_a_line() {
    let workspace = Workspace::new();
    workspace.file("in/a.txt", b"a");
    workspace.write_config(
        "[[tasks]]\nid = \"only\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
    );
    let output = workspace.run(&["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(printed.contains(": ok, 1 task\n"), "{printed}");
    assert!(printed.contains("\n  only  sync\n"), "{printed}");
}

#[test]
fn retry_without_a_choice_of_items_says_how_to_choose() {
    let workspace = Workspace::new();
    workspace.write_config(
        "[[tasks]]\nid = \"only\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
    );
    let output = workspace.run(&["retry", "only"]);
    let printed = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(
        printed.contains("syncdeck retry only --all-failed") && printed.contains("--batch"),
        "{printed}"
    );
}

#[test]
fn a_bad_number_is_said_in_words() {
    let workspace = Workspace::new();
    workspace.write_config("");
    let output = workspace.run(&["history", "--limit", "lots"]);
    let printed = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains("`lots` is not a number of runs"),
        "{printed}"
    );
    assert!(!printed.contains("usize"), "{printed}");
    std::fs::write(
        workspace.config_path(),
        "[engine]\nstate = \"sqlite:state/state.db\"\nmax_concurrent_tasks = \"four\"\n",
    )
    .unwrap();
    let output = workspace.run(&["validate"]);
    let printed = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("expected a whole number"), "{printed}");
    assert!(!printed.contains("usize"), "{printed}");
}

/// A table sync that fails before reading a row is still reported in rows
/// (run summary and history), not as a file sync that copied nothing.
#[test]
fn a_table_run_that_fails_before_reading_is_summarised_in_rows() {
    let database = common::TestDatabase::create("rows_words");
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"orders\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"public.no_such_table\"\ntarget_table = \"public.also_missing\"\nprimary_key = [\"id\"]\n",
        url = database.url
    ));
    let output = workspace.run(&["run", "orders"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.contains("rows read 0"), "{summary}");
    assert!(!summary.contains("synced 0"), "{summary}");

    let history = stdout(&workspace.run(&["history", "orders"]));
    assert!(
        history
            .lines()
            .next()
            .is_some_and(|header| header.contains("UPSERTED SKIPPED FAILED       READ")),
        "a list of table runs is headed in rows: {history}"
    );
    let row = history
        .lines()
        .find(|line| line.contains("orders"))
        .expect("a history row");
    assert!(!row.contains(" B "), "in rows, not bytes: {history}");

    // Beside a file sync, each table run's count says what it is.
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"orders\"\ntype = \"table_sync\"\n[tasks.properties]\nsource = \"{url}\"\ntarget = \"{url}\"\n\
         source_table = \"public.no_such_table\"\ntarget_table = \"public.also_missing\"\nprimary_key = [\"id\"]\n\n\
         [[tasks]]\nid = \"files\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
        url = database.url
    ));
    workspace.file("in/a.csv", b"a");
    let output = workspace.run(&["run", "files"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let history = stdout(&workspace.run(&["history"]));
    let row = history
        .lines()
        .find(|line| line.contains("orders"))
        .expect("a history row");
    assert!(row.contains("0 read"), "{history}");
}
