//! Secrets from `${credential:…}` never appear in output, logs, state rows
//! or errors, even when a library error would echo them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Workspace, free_port, stderr, stdout};

const SECRET: &str = "s3cr3t-Planted-Value-42";

#[test]
fn a_planted_secret_appears_nowhere() {
    let workspace = Workspace::new();
    let dead_port = free_port();
    // The secret is both the S3 secret key and part of the source path,
    // which is logged and quoted in errors.
    workspace.write_config(&format!(
        r#"
[[tasks]]
id = "leaky"
type = "sync"
[tasks.properties]
source_path = "s3://bucket/${{credential:planted}}/data/"
destination_path = "out/"
[tasks.properties.sync_config]
source_config = {{ aws_access_key_id = "id", aws_secret_access_key = "${{credential:planted}}", endpoint = "http://127.0.0.1:{dead_port}" }}
"#
    ));
    let with_secret = |args: &[&str]| {
        workspace
            .command(args)
            .env("SYNCDECK_CREDENTIAL_PLANTED", SECRET)
            .output()
            .expect("run")
    };

    let mut seen = String::new();
    let run = with_secret(&["run", "--json"]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "the run must fail against a dead endpoint: {}",
        stderr(&run)
    );
    for output in [
        run,
        with_secret(&["run"]),
        with_secret(&["validate"]),
        with_secret(&["plan", "leaky"]),
        with_secret(&["history", "--json"]),
        with_secret(&["history"]),
        with_secret(&["errors", "--json"]),
    ] {
        seen.push_str(&stdout(&output));
        seen.push_str(&stderr(&output));
    }
    let logs = workspace.logs();
    assert!(
        logs.contains("run finished"),
        "the log file must hold the run: {logs}"
    );
    let state = std::fs::read(workspace.path().join("state/state.db")).expect("state db");
    let state_wal = std::fs::read(workspace.path().join("state/state.db-wal")).unwrap_or_default();

    assert!(
        seen.contains("***"),
        "the redacted path should show as ***: {seen}"
    );
    assert!(!seen.contains(SECRET), "secret printed: {seen}");
    assert!(!logs.contains(SECRET), "secret in the log file: {logs}");
    for bytes in [&state, &state_wal] {
        assert!(
            !bytes
                .windows(SECRET.len())
                .any(|window| window == SECRET.as_bytes()),
            "secret stored in the state database"
        );
    }
}

#[test]
fn a_missing_credential_is_named_without_any_value() {
    let workspace = Workspace::new();
    workspace.write_config(
        r#"
[[tasks]]
id = "t"
type = "sync"
[tasks.properties]
source_path = "in/"
destination_path = "out/"
[tasks.properties.sync_config.source_config]
aws_access_key_id = "${credential:present}"
aws_secret_access_key = "${credential:absent}"
"#,
    );
    let output = workspace
        .command(&["run"])
        .env("SYNCDECK_CREDENTIAL_PRESENT", SECRET)
        .env_remove("SYNCDECK_CREDENTIAL_ABSENT")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("credential `absent` is not set"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn a_credentials_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let workspace = Workspace::new();
    let file = workspace.file(
        "credentials.toml",
        format!("token = \"{SECRET}\"\n").as_bytes(),
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let tasks = r#"
[credentials]
file = "credentials.toml"

[[tasks]]
id = "t"
type = "sync"
[tasks.properties]
source_path = "in/${credential:token}/"
destination_path = "out/"
"#;
    workspace.write_config(tasks);
    let output = workspace
        .command(&["validate"])
        .env_remove("SYNCDECK_CREDENTIAL_TOKEN")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("readable by group or others") && text.contains("chmod 600"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let output = workspace
        .command(&["validate"])
        .env_remove("SYNCDECK_CREDENTIAL_TOKEN")
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "a 0600 credentials file is used: {}",
        stderr(&output)
    );
}
