//! Local to local file sync through the binary: selection, decisions,
//! names, failures and retries, history across processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Workspace, counter, json_lines, run_of, stderr, stdout};

fn sync_task(id: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n{extra}\n"
    )
}

fn seed_inbox(workspace: &Workspace) {
    workspace.file("in/a.csv", b"id,name\n1,alpha\n");
    workspace.file("in/b.json", b"{\"b\": true}");
    workspace.file("in/c.parquet", b"PAR1....PAR1");
    workspace.file("in/data_2024.parquet", b"PAR1 2024 PAR1");
    workspace.file("in/notes.txt", b"not selected");
    workspace.file("in/empty.csv", b"");
    workspace.file("in/with space/é ü 日本.csv", b"x,y\n");
    workspace.file("in/2024/01/jan.csv", b"1\n");
    workspace.file("in/2024/01/deeper/deep.csv", b"2\n");
    workspace.file("in/2025/01/other.csv", b"3\n");
    workspace.file("in/report#1.csv", b"hash names are still files\n");
}

#[test]
fn recursive_pattern_sync_copies_then_skips_everything_unchanged() {
    let workspace = Workspace::new();
    seed_inbox(&workspace);
    workspace.write_config(&sync_task(
        "t",
        "pattern = \"*.{csv,json}\"\nrecursive = true",
    ));

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded");
    let expected = vec![
        "2024/01/deeper/deep.csv",
        "2024/01/jan.csv",
        "2025/01/other.csv",
        "a.csv",
        "b.json",
        "empty.csv",
        "report#1.csv",
        "with space/é ü 日本.csv",
    ];
    assert_eq!(
        workspace.tree("out"),
        expected,
        "the csv and json files, folders kept"
    );
    assert_eq!(counter(run, "files_synced"), 8);
    assert_eq!(counter(run, "files_listed"), 11);
    assert_eq!(
        std::fs::read(workspace.path().join("out/with space/é ü 日本.csv")).expect("read"),
        b"x,y\n"
    );
    assert_eq!(
        std::fs::read(workspace.path().join("out/empty.csv")).expect("read"),
        b""
    );

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success());
    let rerun = run_of(&runs, "t");
    assert_eq!(counter(rerun, "files_synced"), 0, "a rerun copies nothing");
    assert_eq!(
        counter(rerun, "files_skipped_unchanged"),
        8,
        "every file is skipped as unchanged"
    );
}

#[test]
fn one_level_sync_ignores_subfolders() {
    let workspace = Workspace::new();
    seed_inbox(&workspace);
    workspace.write_config(&sync_task("t", "pattern = \"*.csv\""));
    let (output, _) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        workspace.tree("out"),
        vec!["a.csv", "empty.csv", "report#1.csv"]
    );
}

#[test]
fn prefix_pattern_selects_parquet_files() {
    let workspace = Workspace::new();
    seed_inbox(&workspace);
    workspace.write_config(&sync_task(
        "t",
        "pattern = \"data_*.parquet\"\nrecursive = true",
    ));
    workspace.run_json(&[]);
    assert_eq!(workspace.tree("out"), vec!["data_2024.parquet"]);
}

#[test]
fn pattern_with_a_slash_matches_the_relative_path() {
    let workspace = Workspace::new();
    seed_inbox(&workspace);
    workspace.write_config(&sync_task(
        "t",
        "pattern = \"2024/*/*.csv\"\nrecursive = true",
    ));
    workspace.run_json(&[]);
    assert_eq!(
        workspace.tree("out"),
        vec!["2024/01/jan.csv"],
        "`*` does not cross folders"
    );
}

#[test]
fn overwrite_false_keeps_existing_files() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"new contents");
    workspace.file("in/b.csv", b"b");
    workspace.file("out/a.csv", b"old");
    workspace.write_config(&sync_task("t", "overwrite = false"));
    let (_, runs) = workspace.run_json(&[]);
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "files_skipped_exists"), 1);
    assert_eq!(counter(run, "files_synced"), 1);
    assert_eq!(
        std::fs::read(workspace.path().join("out/a.csv")).expect("read"),
        b"old"
    );
}

#[test]
fn overwrite_true_replaces_changed_files() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"new contents");
    workspace.file("out/a.csv", b"old");
    workspace.write_config(&sync_task("t", "overwrite = true"));
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(counter(run_of(&runs, "t"), "files_synced"), 1);
    assert_eq!(
        std::fs::read(workspace.path().join("out/a.csv")).expect("read"),
        b"new contents"
    );

    // Same size, source rewritten later: copied again (the source is newer).
    std::thread::sleep(std::time::Duration::from_millis(20));
    workspace.file("in/a.csv", b"NEW CONTENTS");
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(counter(run_of(&runs, "t"), "files_synced"), 1);
    assert_eq!(
        std::fs::read(workspace.path().join("out/a.csv")).expect("read"),
        b"NEW CONTENTS"
    );
}

#[test]
fn compare_always_copies_unchanged_files() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a");
    workspace.write_config(&sync_task("t", "compare = \"always\""));
    workspace.run_json(&[]);
    let (_, runs) = workspace.run_json(&[]);
    assert_eq!(counter(run_of(&runs, "t"), "files_synced"), 1);
}

#[test]
fn single_file_goes_into_a_folder_or_to_a_named_target() {
    let workspace = Workspace::new();
    workspace.file("in/reports/summary.csv", b"total\n42\n");
    workspace.file("in/reports/other.csv", b"x");
    workspace.write_config(
        "[[tasks]]\nid = \"into_folder\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/reports/summary.csv\"\ndestination_path = \"out/{{ execution_date }}/\"\n\n\
         [[tasks]]\nid = \"renamed\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/reports/summary.csv\"\ndestination_path = \"out/latest-{{ task_id }}.csv\"\n",
    );
    let (output, runs) = workspace.run_json(&["--execution-date", "2026-01-31"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(counter(run_of(&runs, "into_folder"), "files_synced"), 1);
    assert_eq!(
        workspace.tree("out"),
        vec!["2026-01-31/summary.csv", "latest-renamed.csv"]
    );
}

#[test]
fn zero_matches_says_so() {
    let workspace = Workspace::new();
    workspace.file("in/a.txt", b"a");
    workspace.write_config(&sync_task("t", "pattern = \"*.xml\""));
    let output = workspace.run(&["run"]);
    let text = stdout(&output);
    assert!(text.contains("0 files matched pattern `*.xml`"), "{text}");
    assert!(text.contains("(1 listed)"), "{text}");
    let runs = json_lines(&workspace.run(&["history", "--json"]));
    assert_eq!(
        runs[0]["warning"]
            .as_str()
            .map(|w| w.starts_with("0 files matched")),
        Some(true),
        "{runs:?}"
    );
}

#[test]
fn plan_and_dry_run_show_decisions_without_copying() {
    let workspace = Workspace::new();
    workspace.file("in/new.csv", b"new");
    workspace.file("in/same.csv", b"same");
    workspace.file("in/kept.csv", b"kept");
    workspace.write_config(&sync_task("t", "pattern = \"same.csv\""));
    workspace.run_json(&[]);
    workspace.write_config(&sync_task("t", ""));
    workspace.file("in/odd\tname\nx.csv", b"odd");

    let output = workspace.run(&["plan", "t"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.lines()
            .any(|line| line.contains("copy (missing)") && line.ends_with("new.csv")),
        "{text}"
    );
    // One line per file, whatever its name holds.
    assert!(
        text.lines()
            .any(|line| line.contains("copy (missing)") && line.ends_with("odd\\tname\\nx.csv")),
        "{text}"
    );
    assert!(!text.lines().any(|line| line == "x.csv"), "{text}");
    // Unchanged files are counted, not listed (a tree of a million files
    // would print a million lines), unless asked.
    assert!(!text.contains("same.csv"), "{text}");
    assert!(
        text.contains("1 skipped file(s) not listed: `syncdeck plan t --all` lists them"),
        "{text}"
    );
    assert!(text.contains("3 to copy"), "{text}");
    let all = stdout(&workspace.run(&["plan", "t", "--all"]));
    assert!(
        all.lines()
            .any(|line| line.contains("skip: unchanged") && line.ends_with("same.csv")),
        "{all}"
    );
    assert!(!all.contains("not listed"), "{all}");

    let output = workspace.run(&["run", "--dry-run", "t"]);
    assert!(output.status.success());
    assert!(
        stdout(&output).ends_with("dry run: nothing was copied or loaded\n"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        workspace.tree("out"),
        vec!["same.csv"],
        "a dry run copies nothing"
    );
}

#[test]
fn a_failed_file_is_recorded_and_retried_after_the_cause_is_fixed() {
    let workspace = Workspace::new();
    workspace.file("in/ok.csv", b"fine");
    workspace.file("in/sub/blocked.csv", b"blocked");
    // A file where the destination needs a folder: the copy cannot succeed.
    workspace.file("out/sub", b"in the way");
    workspace.write_config(&sync_task("t", "recursive = true"));

    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "a partial run exits 1");
    assert!(
        !stderr(&output).contains("could not remove a partial file"),
        "no partial file could be made there, so none is missing: {}",
        stderr(&output)
    );
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "partial");
    assert_eq!(counter(run, "files_failed"), 1);
    assert_eq!(counter(run, "files_synced"), 1);

    // A new process reads the failure back from the state store.
    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["key"], "sub/blocked.csv");
    assert_eq!(errors[0]["kind"], "file");
    assert_eq!(errors[0]["status"], "pending");
    assert!(errors[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    let history = json_lines(&workspace.run(&["history", "--json", "t"]));
    assert_eq!(history[0]["status"], "partial");
    assert!(
        history[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("syncdeck errors t")),
        "{history:?}"
    );

    std::fs::remove_file(workspace.path().join("out/sub")).expect("remove blocker");
    let id = errors[0]["id"].as_i64().expect("id").to_string();
    let output = workspace.run(&["retry", "t", "--batch", &id, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(retry["trigger"], "retry");
    assert_eq!(
        counter(retry, "files_synced"),
        1,
        "only the failed file is copied"
    );
    assert_eq!(workspace.tree("out"), vec!["ok.csv", "sub/blocked.csv"]);
    assert!(
        json_lines(&workspace.run(&["errors", "--json"])).is_empty(),
        "nothing pending after the retry"
    );
    let all = json_lines(&workspace.run(&["errors", "--json", "--all"]));
    assert_eq!(all[0]["status"], "resolved");

    let output = workspace.run(&["retry", "t", "--all-failed"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "nothing left to retry is not an error: {}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("nothing to retry: task `t` has no pending failed items"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_failed_dependency_blocks_its_dependents() {
    let workspace = Workspace::new();
    workspace.file("in/a/x.csv", b"x");
    workspace.file("out/a", b"blocker");
    workspace.write_config(
        "[[tasks]]\nid = \"upstream\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nrecursive = true\n\n\
         [[tasks]]\nid = \"downstream\"\ntype = \"sync\"\ndependencies = [\"upstream\"]\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"copy/\"\nrecursive = true\n\n\
         [[tasks]]\nid = \"independent\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"other/\"\nrecursive = true\n",
    );
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(run_of(&runs, "upstream")["status"], "failed");
    assert_eq!(run_of(&runs, "downstream")["status"], "blocked");
    assert_eq!(run_of(&runs, "independent")["status"], "succeeded");
    // The history says why downstream did not run.
    let history = json_lines(&workspace.run(&["history", "--json", "downstream"]));
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["status"], "blocked");
    assert_eq!(history[0]["run_id"], run_of(&runs, "downstream")["run_id"]);
    assert!(
        history[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("dependency `upstream` did not succeed")),
        "{history:?}"
    );
    let table = stdout(&workspace.run(&["history", "downstream"]));
    assert!(table.contains("blocked"), "{table}");
    assert!(
        workspace.tree("copy").is_empty(),
        "the blocked task did not run"
    );

    // Running only the dependent runs its dependency first...
    let (_, runs) = workspace.run_json(&["downstream"]);
    assert_eq!(runs.len(), 2, "{runs:?}");
    // ...unless told not to.
    let (output, runs) = workspace.run_json(&["downstream", "--no-deps"]);
    assert!(output.status.success());
    assert_eq!(runs.len(), 1);
    assert_eq!(workspace.tree("copy"), vec!["a/x.csv"]);
}

#[test]
fn unknown_task_on_the_command_line_is_a_usage_error() {
    let workspace = Workspace::new();
    workspace.write_config(&sync_task("t", ""));
    let output = workspace.run(&["run", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no task `nope`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_run_removes_partial_files_left_by_a_dead_process_and_nothing_else() {
    let workspace = Workspace::new();
    seed_inbox(&workspace);
    workspace.write_config(&sync_task("t", "pattern = \"*.csv\""));
    // A process that has ended: its pid names partial files it "left".
    let mut ended = std::process::Command::new("true").spawn().expect("spawn");
    ended.wait().expect("wait");
    let dead = ended.id();
    let alive = std::process::id();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let partial = |name: &str, pid: u32, old: bool| {
        let name = format!(".syncdeck-partial-{pid}-1f-{name}");
        let path = workspace.file(&format!("out/{name}"), b"trunc");
        if old {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_modified(an_hour_ago))
                .expect("age the file");
        }
        name
    };
    let left_over = partial("a.csv", dead, true);
    let still_written = partial("b.csv", alive, true);
    let just_written = partial("c.csv", dead, false);
    let present = |name: &str| workspace.path().join("out").join(name).exists();

    let plan = workspace.run(&["plan", "t"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(present(&left_over), "plan changes nothing");

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    assert!(
        !present(&left_over),
        "a dead process's old partial file is removed"
    );
    assert!(
        present(&still_written),
        "a running process's partial file stays"
    );
    assert!(
        present(&just_written),
        "a partial file written within the minute stays"
    );
    assert!(
        workspace
            .logs()
            .contains("removed a partial file left by a run whose process died"),
        "the removal is logged"
    );
    assert_eq!(
        std::fs::read(workspace.path().join("out/a.csv")).expect("read"),
        b"id,name\n1,alpha\n",
        "the real file is synced beside it"
    );
}

#[test]
fn a_file_with_a_250_byte_name_syncs_and_leaves_no_partial_file() {
    let workspace = Workspace::new();
    // 250 bytes, within the 255-byte limit, but too long to carry the
    // partial-file prefix in front of it.
    let name = format!("{}-日本.csv", "n".repeat(250 - "-日本.csv".len()));
    assert_eq!(name.len(), 250);
    workspace.file(&format!("in/{name}"), b"long name\n");
    workspace.file("in/short.csv", b"short\n");
    workspace.write_config(&sync_task("t", ""));

    let (output, runs) = workspace.run_json(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = run_of(&runs, "t");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(counter(run, "files_synced"), 2);
    assert_eq!(
        std::fs::read(workspace.path().join("out").join(&name)).expect("read"),
        b"long name\n"
    );
    assert_eq!(
        workspace.tree("out"),
        vec![name, "short.csv".to_string()],
        "no partial file is left beside them"
    );
}

#[test]
fn a_failed_file_deleted_at_the_source_is_marked_gone_by_the_retry() {
    let workspace = Workspace::new();
    workspace.file("in/ok.csv", b"fine");
    workspace.file("in/sub/blocked.csv", b"blocked");
    // A file where the destination needs a folder: the copy cannot succeed.
    workspace.file("out/sub", b"in the way");
    workspace.write_config(&sync_task("t", "recursive = true"));
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "partial");

    std::fs::remove_file(workspace.path().join("in/sub/blocked.csv")).expect("delete source");
    let output = workspace.run(&["retry", "t", "--all-failed", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let retry = &json_lines(&output)[0];
    assert_eq!(retry["status"], "succeeded");
    let warning = retry["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("marked gone") && warning.contains("sub/blocked.csv"),
        "the retry says what it did with the file: {warning}"
    );

    assert!(
        json_lines(&workspace.run(&["errors", "--json"])).is_empty(),
        "a gone file is no longer pending"
    );
    let all = workspace.run(&["errors", "--all"]);
    let listing = stdout(&all);
    let line = listing
        .lines()
        .find(|line| line.contains("sub/blocked.csv"))
        .unwrap_or_else(|| panic!("the item is kept: {listing}"));
    assert!(line.contains(" gone "), "{line}");
    let output = workspace.run(&["retry", "t", "--all-failed"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "nothing is left to retry: said, not an error"
    );
}

#[test]
fn a_failed_file_deleted_at_the_source_is_marked_gone_by_the_next_run() {
    let workspace = Workspace::new();
    workspace.file("in/ok.csv", b"fine");
    workspace.file("in/sub/blocked.csv", b"blocked");
    workspace.file("out/sub", b"in the way");
    workspace.write_config(&sync_task("t", "recursive = true"));
    let (output, _) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    std::fs::remove_file(workspace.path().join("in/sub/blocked.csv")).expect("delete source");
    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(run_of(&runs, "t")["status"], "succeeded");
    let all = json_lines(&workspace.run(&["errors", "--json", "--all"]));
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "gone");
}

#[test]
fn a_destination_that_cannot_be_written_is_named_in_the_error_not_the_source() {
    // Copied by the kernel (local to local), and streamed (a bandwidth
    // limit sends the bytes through syncdeck).
    for extra in ["", "bwlimit = \"64MiB\""] {
        let workspace = Workspace::new();
        workspace.file("in/a.csv", b"a");
        workspace.file("in/sub/b.csv", b"b");
        // A folder where the file must go, and a file where a folder must.
        workspace.file("out/a.csv/keep", b"a folder in the way");
        workspace.file("out/sub", b"a file in the way");
        workspace.write_config(&sync_task("t", &format!("recursive = true\n{extra}")));
        let (output, runs) = workspace.run_json(&[]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(counter(run_of(&runs, "t"), "files_failed"), 2);

        let errors = json_lines(&workspace.run(&["errors", "--json"]));
        let error_of = |key: &str| {
            errors
                .iter()
                .find(|item| item["key"] == key)
                .and_then(|item| item["error"].as_str())
                .unwrap_or_else(|| panic!("{key} failed: {errors:?}"))
                .to_string()
        };
        let out = workspace.path().join("out");
        let error = error_of("a.csv");
        assert!(
            error.starts_with(&format!(
                "cannot write {}: a folder of that name is in the way",
                out.join("a.csv").display()
            )),
            "{extra}: {error}"
        );
        let error = error_of("sub/b.csv");
        assert!(
            error.starts_with(&format!(
                "cannot write {}: {} is a file, not a folder",
                out.join("sub/b.csv").display(),
                out.join("sub").display()
            )),
            "{extra}: {error}"
        );
        for error in errors.iter().map(|item| item["error"].to_string()) {
            assert!(!error.contains("/in/"), "the source is not blamed: {error}");
            assert!(
                !error.contains(".syncdeck-partial"),
                "no hidden name: {error}"
            );
        }
    }
}

#[test]
fn a_symlink_looping_back_up_is_reported_and_the_rest_syncs() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a");
    workspace.file("in/sub/b.csv", b"b");
    std::os::unix::fs::symlink("..", workspace.path().join("in/sub/loop")).expect("symlink");
    workspace.write_config(&sync_task("t", "recursive = true"));

    let (output, runs) = workspace.run_json(&[]);
    assert_eq!(output.status.code(), Some(1), "a partial run exits 1");
    let run = run_of(&runs, "t");
    assert_eq!(counter(run, "files_synced"), 2);
    assert_eq!(counter(run, "files_failed"), 1);
    assert_eq!(workspace.tree("out"), vec!["a.csv", "sub/b.csv"]);
    let errors = json_lines(&workspace.run(&["errors", "--json"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["key"], "sub/loop");
    assert!(
        errors[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("loops back")),
        "{errors:?}"
    );
}

#[test]
fn a_retry_copies_into_the_folder_of_the_date_the_file_failed_for() {
    let workspace = Workspace::new();
    workspace.file("in/2026-11-01/ok.csv", b"fine");
    workspace.file("in/2026-11-01/sub/blocked.csv", b"first of november");
    workspace.file("in/2026-11-02/sub/blocked.csv", b"second of november");
    // Files where the destinations need folders: those copies fail.
    workspace.file("out/2026-11-01/sub", b"in the way");
    workspace.file("out/2026-11-02/sub", b"in the way");
    workspace.write_config(
        "[[tasks]]\nid = \"daily\"\ntype = \"sync\"\n[tasks.properties]\n\
         source_path = \"in/{{ execution_date }}/\"\n\
         destination_path = \"out/{{ execution_date }}/\"\nrecursive = true\n",
    );
    for date in ["2026-11-01", "2026-11-02"] {
        let output = workspace.run(&["run", "daily", "--execution-date", date]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    }
    std::fs::remove_file(workspace.path().join("out/2026-11-01/sub")).expect("unblock");
    std::fs::remove_file(workspace.path().join("out/2026-11-02/sub")).expect("unblock");

    let output = workspace.run(&["retry", "daily", "--all-failed", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        json_lines(&output).len(),
        2,
        "one retry run per date: {}",
        stdout(&output)
    );
    // Each file lands in its own day's folder, not in today's.
    assert_eq!(
        workspace.tree("out"),
        vec![
            "2026-11-01/ok.csv",
            "2026-11-01/sub/blocked.csv",
            "2026-11-02/sub/blocked.csv"
        ]
    );
    assert_eq!(
        std::fs::read(workspace.path().join("out/2026-11-01/sub/blocked.csv")).expect("read"),
        b"first of november"
    );
    assert!(json_lines(&workspace.run(&["errors", "--json"])).is_empty());

    // History says which day each run was for: the two retries started
    // today but ran for the 1st and the 2nd.
    let history = workspace.run(&["history", "daily"]);
    let text = stdout(&history);
    let header = text.lines().next().unwrap_or_default();
    assert!(header.contains(" FOR "), "{text}");
    let retries: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" retry "))
        .collect();
    assert_eq!(retries.len(), 2, "{text}");
    assert!(
        retries.iter().any(|line| line.contains("2026-11-01"))
            && retries.iter().any(|line| line.contains("2026-11-02")),
        "{text}"
    );
}

/// A run read from its log (a daemon's, or a run piped to a file, where no
/// bar is drawn) says how far it got while it runs, not only that it
/// started and ended.
#[test]
fn a_long_run_logs_its_progress_while_it_runs() {
    let workspace = Workspace::new();
    workspace.file("in/big.bin", &vec![7u8; 3 * 1024 * 1024]);
    workspace.write_config(
        "[[tasks]]\nid = \"slow\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\n\
         destination_path = \"out/\"\nbwlimit = \"1MiB\"\n",
    );
    let output = workspace
        .command(&["run"])
        .env("SYNCDECK_PROGRESS_LOG_EVERY", "1s")
        .output()
        .expect("run syncdeck");
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let progress: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("progress: synced 0 of 1 files"))
        .collect();
    assert!(!progress.is_empty(), "no progress line in:\n{log}");
    assert!(
        progress
            .iter()
            .all(|line| line.contains("task_id=slow") && line.contains(" of 3.0 MiB")),
        "{progress:?}"
    );
}
