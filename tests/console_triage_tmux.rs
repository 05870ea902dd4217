//! Triage at scale in a real terminal (tmux): 1,000 tasks of which 20
//! failed; the palette reaches a task by id, `status:failed` shows the 20,
//! and `]` cycles through them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write as _;

use common::tmux::Tmux;
use common::{Workspace, stderr};

/// Every 50th task reads a folder that does not exist.
fn failing(index: usize) -> bool {
    index % 50 == 49
}

#[test]
fn a_thousand_tasks_twenty_failing() {
    let workspace = Workspace::new();
    std::fs::create_dir_all(workspace.path().join("in")).unwrap();
    let mut tasks = String::new();
    for index in 0..1000 {
        let source = if failing(index) { "missing/" } else { "in/" };
        write!(
            tasks,
            "[[tasks]]\nid = \"task_{index:04}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{source}\"\ndestination_path = \"out/{index}/\"\n\n"
        )
        .unwrap();
    }
    workspace.write_config(&tasks);
    let failing_ids: Vec<String> = (0..1000)
        .filter(|index| failing(*index))
        .map(|index| format!("task_{index:04}"))
        .collect();
    let mut args = vec!["run", "--no-deps"];
    args.extend(failing_ids.iter().map(String::as_str));
    let output = workspace.run(&args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let tmux = Tmux::start(workspace.path(), 120, 40);
    tmux.wait_for("shell$", "the shell prompt");
    tmux.type_text(&format!(
        "{} -c syncdeck.toml",
        env!("CARGO_BIN_EXE_syncdeck")
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("Tasks 1/1000", "the console opens on 1,000 tasks");
    tmux.wait_for("20 failing", "the header counts the failing tasks");

    // `:` and a task id reach a task far down the list.
    tmux.type_text(":task_0777");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("›", "a selected task");
    assert!(
        screen
            .lines()
            .any(|line| line.contains("›") && line.contains("task_0777")),
        "the palette selects task_0777:\n{screen}"
    );

    // The status filter shows exactly the failed ones.
    tmux.type_text("/status:failed");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for(
        "Tasks 1/20 · 1000 total",
        "status:failed keeps the 20 failed tasks",
    );
    assert!(screen.contains("task_0049"), "{screen}");
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for(
        "Tasks 778/1000 ",
        "esc clears the filter, back on the task chosen before it",
    );
    assert!(
        screen
            .lines()
            .any(|line| line.contains("›") && line.contains("task_0777")),
        "{screen}"
    );

    // The header's key lists the failing runs of every task.
    tmux.keys(&["F"]);
    let screen = tmux.wait_for("Runs 1/20 ", "F lists the 20 failed runs");
    assert!(screen.contains("status:failing"), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("Runs 1/20 · every task", "esc clears the runs filter");
    tmux.keys(&["Escape"]);
    tmux.wait_for("Tasks 778/1000 ", "esc goes back to the task list");

    // `]` visits each failing task once, then wraps to the first.
    tmux.type_text(":task_0000");
    tmux.keys(&["Enter"]);
    for (position, id) in failing_ids.iter().enumerate() {
        tmux.keys(&["]"]);
        let screen = tmux.wait_for(
            &format!("failing task {} of 20", position + 1),
            "] moves to the next failing task",
        );
        assert!(
            screen
                .lines()
                .any(|line| line.contains("›") && line.contains(id.as_str())),
            "] selects {id}:\n{screen}"
        );
    }
    tmux.keys(&["]"]);
    let screen = tmux.wait_for("failing task 1 of 20", "] wraps around");
    assert!(
        screen
            .lines()
            .any(|line| line.contains("›") && line.contains("task_0049")),
        "{screen}"
    );
    tmux.keys(&["["]);
    let screen = tmux.wait_for("failing task 20 of 20", "[ goes back");
    assert!(
        screen
            .lines()
            .any(|line| line.contains("›") && line.contains("task_0999")),
        "{screen}"
    );
    tmux.keys(&["q"]);
    tmux.wait_for("shell$", "q quits");
}
