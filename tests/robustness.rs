//! Hostile surroundings: a log folder that cannot be written, a state store
//! URL of an unsupported kind, a state store this user cannot write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use common::{Workspace, json_lines, stderr, stdout};

const LOCAL_TASK: &str = r#"
[[tasks]]
id = "t"
type = "sync"
[tasks.properties]
source_path = "in/"
destination_path = "out/"
"#;

#[test]
fn an_unwritable_log_folder_gives_one_warning_and_the_command_still_works() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    std::fs::write(
        workspace.config_path(),
        format!("[engine]\nstate = \"sqlite:state/state.db\"\nlog_dir = \"/proc\"\n{LOCAL_TASK}"),
    )
    .expect("write config");
    let warning = "syncdeck: cannot write logs in /proc";

    let run = workspace.run(&["run"]);
    let text = stderr(&run);
    assert_eq!(run.status.code(), Some(0), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(text.matches(warning).count(), 1, "{text}");
    assert!(
        workspace.path().join("out/a.csv").exists(),
        "the run copied"
    );

    let history = workspace.run(&["history"]);
    let text = stderr(&history);
    assert_eq!(history.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one warning line and nothing else: {text}");
    assert!(
        lines[0].starts_with(warning) && lines[0].contains("writable folder"),
        "{text}"
    );
    assert!(
        stdout(&history).contains("succeeded"),
        "{}",
        stdout(&history)
    );
}

#[test]
fn an_unsupported_state_store_is_a_config_error() {
    let workspace = Workspace::new();
    std::fs::write(
        workspace.config_path(),
        format!("[engine]\nstate = \"mysql://app:Hidden9pw@db/x\"\n{LOCAL_TASK}"),
    )
    .expect("write config");
    for command in ["history", "run", "validate", "errors"] {
        let output = workspace.run(&[command]);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{command}: {text}");
        assert_eq!(text.lines().count(), 1, "{command}: {text}");
        assert!(
            text.contains("syncdeck.toml:2:9: [engine] state: `mysql:` is not a supported state store; use sqlite:PATH"),
            "{command}: {text}"
        );
        assert!(!text.contains("Hidden9pw"), "{command}: {text}");
    }
}

/// `history` and `errors` read a store the user cannot write: as root they
/// run as `nobody` on root's store; otherwise on a store made read-only.
#[test]
fn history_and_errors_read_a_store_this_user_cannot_write() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    workspace.write_config(LOCAL_TASK);
    let run = workspace.run(&["run"]);
    assert!(run.status.success(), "{}", stderr(&run));

    let root = nix::unistd::Uid::effective().is_root();
    let state = workspace.path().join("state");
    std::fs::set_permissions(
        state.join("state.db"),
        std::fs::Permissions::from_mode(0o444),
    )
    .expect("chmod");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if root {
        // `nobody` must reach the config, and the logs stay root's.
        for entry in walkdir::WalkDir::new(workspace.path()) {
            let entry = entry.expect("walk");
            let mode = if entry.file_type().is_dir() {
                0o755
            } else {
                0o644
            };
            let mode = if entry.path() == state { 0o555 } else { mode };
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))
                .expect("chmod");
        }
    }
    // `nobody` may not reach the built binary under root's home: a link
    // (or copy) of it in the workspace.
    let binary = workspace.path().join("syncdeck");
    if root && std::fs::hard_link(env!("CARGO_BIN_EXE_syncdeck"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_syncdeck"), &binary).expect("copy the binary");
    }
    let reader = |args: &[&str]| {
        let mut command = workspace.command(args);
        if root {
            let mut as_nobody = std::process::Command::new(&binary);
            as_nobody
                .current_dir(workspace.path())
                .arg("-c")
                .arg(workspace.config_path())
                .args(args)
                .env("NO_COLOR", "1")
                .uid(65534)
                .gid(65534);
            command = as_nobody;
        }
        command.output().expect("run")
    };

    let history = reader(&["history", "--json"]);
    assert_eq!(history.status.code(), Some(0), "{}", stderr(&history));
    let runs = json_lines(&history);
    assert_eq!(runs.len(), 1, "{}", stdout(&history));
    assert_eq!(runs[0]["status"], "succeeded");
    let table = reader(&["history"]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    assert!(stdout(&table).contains("succeeded"), "{}", stdout(&table));
    let errors = reader(&["errors"]);
    assert_eq!(errors.status.code(), Some(0), "{}", stderr(&errors));
    assert!(
        stdout(&errors).contains("no failed items"),
        "{}",
        stdout(&errors)
    );
    for output in [&history, &table, &errors] {
        assert!(
            !stderr(output).contains("state store"),
            "{}",
            stderr(output)
        );
    }

    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_output_quietly() {
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    std::fs::write(
        workspace.config_path(),
        format!("[engine]\nstate = \"sqlite:state/state.db\"\n{LOCAL_TASK}"),
    )
    .expect("write config");
    assert!(workspace.run(&["run"]).status.success());
    for args in [
        &["history"][..],
        &["history", "--json"],
        &["errors", "--all"],
        &["schema"],
        &["validate"],
        &["run"],
    ] {
        // A pipe whose reader is already gone, as after `| head -c 10`.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = workspace
            .command(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run syncdeck");
        let text = stderr(&output);
        assert!(!text.contains("panicked"), "{args:?}: {text}");
        assert_eq!(output.status.code(), Some(141), "{args:?}: {text}");
    }
}

/// Each command's help lists what that command takes: `--mouse` is the
/// console's, so `plan --help` does not offer it, while `tui --help` and
/// the top level do.
#[test]
fn only_the_console_offers_the_mouse() {
    let help = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_syncdeck"))
            .args(args)
            .output()
            .expect("run syncdeck");
        assert!(output.status.success(), "{args:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(!help(&["plan", "--help"]).contains("--mouse"));
    assert!(!help(&["run", "--help"]).contains("--mouse"));
    assert!(help(&["tui", "--help"]).contains("--mouse"));
    assert!(help(&["--help"]).contains("--mouse"));
}
