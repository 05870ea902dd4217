//! Bad configs: each gives one line on stderr naming file:line:col and
//! what to do, and exit code 2; never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/invalid_configs")
        .join(name)
}

/// Runs `syncdeck validate` on a fixture and returns its one error line.
fn validate_error(name: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .arg("-c")
        .arg(fixture(name))
        .arg("validate")
        .env_remove("SYNCDECK_CREDENTIAL_MISSING_KEY_FOR_TESTS")
        .output()
        .expect("run syncdeck");
    let stderr = common::stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{name}: expected exit 2, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{name}: panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: expected one line, got: {stderr}");
    lines[0].to_string()
}

fn assert_error(name: &str, position: &str, parts: &[&str]) {
    let line = validate_error(name);
    let location = format!("{}:{position}:", fixture(name).display());
    assert!(
        line.contains(&location),
        "{name}: expected the position {location} in: {line}"
    );
    for part in parts {
        assert!(line.contains(part), "{name}: expected `{part}` in: {line}");
    }
}

#[test]
fn toml_syntax_error_points_at_the_line() {
    assert_error(
        "syntax_error.toml",
        "5:19",
        &["TOML syntax: invalid basic string", "fix the TOML here"],
    );
}

#[test]
fn unknown_key_suggests_the_right_one() {
    assert_error(
        "unknown_key.toml",
        "7:1",
        &["unknown key `recusive`", "did you mean `recursive`?"],
    );
}

#[test]
fn unknown_engine_key_suggests_the_right_one() {
    assert_error(
        "unknown_engine_key.toml",
        "3:1",
        &[
            "unknown key `max_concurent_tasks`",
            "did you mean `max_concurrent_tasks`?",
        ],
    );
}

#[test]
fn missing_source_path_says_to_add_it() {
    assert_error(
        "missing_source_path.toml",
        "4:1",
        &["missing required key `source_path`", "add it"],
    );
}

#[test]
fn bad_glob_is_explained() {
    assert_error(
        "bad_glob.toml",
        "7:11",
        &["invalid pattern `*.{csv,json`", "write a glob like"],
    );
}

#[test]
fn unknown_dependency_suggests_a_task() {
    assert_error(
        "unknown_dependency.toml",
        "4:17",
        &["depends on unknown task `loader`", "did you mean `load`?"],
    );
}

#[test]
fn dependency_cycle_is_named() {
    assert_error(
        "cycle.toml",
        "4:17",
        &["dependency cycle a -> b -> a", "remove one"],
    );
}

/// A task that depends on itself is reported, and a cycle between two
/// other tasks is too (the self-dependency hid it).
#[test]
fn a_self_dependency_does_not_hide_a_cycle_elsewhere() {
    let workspace = common::Workspace::new();
    let task = |id: &str, dependency: &str| {
        format!(
            "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\ndependencies = [\"{dependency}\"]\n\
             [tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out-{id}/\"\n"
        )
    };
    // `b` also has a misspelt key, so it does not parse: its dependencies
    // still count (the cycle showed only once the typo was fixed).
    workspace.write_config(
        &(task("a", "a")
            + &task("b", "c")
            + "recusive = true\n"
            + &task("c", "b")
            + &task("d", "d")
            + "transfer = 4\n"),
    );
    let output = workspace.command(&["validate"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let errors = common::stderr(&output);
    assert!(errors.contains("unknown key `recusive`"), "{errors}");
    // In the order of the file, whichever check found them.
    let lines: Vec<usize> = errors
        .lines()
        .filter_map(|line| line.split(':').nth(2)?.parse().ok())
        .collect();
    assert!(lines.len() >= 3, "{errors}");
    assert!(lines.windows(2).all(|pair| pair[0] <= pair[1]), "{errors}");
    assert!(errors.contains("task `a` depends on itself"), "{errors}");
    assert!(
        errors.contains("task `d` depends on itself"),
        "a task that did not parse too: {errors}"
    );
    assert!(
        errors.contains("dependency cycle b -> c -> b")
            || errors.contains("dependency cycle c -> b -> c"),
        "{errors}"
    );
}

#[test]
fn a_type_with_a_known_one_inside_points_to_it() {
    assert_error(
        "type_with_a_prefix.toml",
        "3:8",
        &["unknown type `file_sync`", "did you mean `sync`?"],
    );
}

#[test]
fn a_misspelt_value_suggests_the_right_one() {
    assert_error(
        "misspelt_mode.toml",
        "10:8",
        &["unknown value `incremantal`", "did you mean `incremental`?"],
    );
}

#[test]
fn unknown_type_lists_the_known_ones() {
    assert_error(
        "unknown_type.toml",
        "3:8",
        &["unknown type `synk`", "did you mean `sync`?"],
    );
}

#[test]
fn missing_credential_names_the_credential_and_how_to_set_it() {
    assert_error(
        "missing_credential.toml",
        "8:21",
        &[
            "credential `missing_key_for_tests` is not set",
            "SYNCDECK_CREDENTIAL_MISSING_KEY_FOR_TESTS",
        ],
    );
}

#[test]
fn unknown_template_suggests_the_right_one() {
    assert_error(
        "unknown_template.toml",
        "6:20",
        &[
            "unknown template `{{ execution_day }}`",
            "did you mean `{{ execution_date }}`?",
        ],
    );
}

#[test]
fn duplicate_task_ids_are_refused() {
    assert_error("duplicate_id.toml", "9:6", &["task id `a` is used twice"]);
}

#[test]
fn unknown_scheme_lists_the_supported_ones() {
    assert_error(
        "unknown_scheme.toml",
        "5:15",
        &["unknown scheme `gopher://`", "s3://"],
    );
}

#[test]
fn a_destination_inside_a_recursive_source_is_refused() {
    assert_error(
        "destination_inside_source.toml",
        "6:20",
        &[
            "destination_path `./src/copy/` is inside source_path `src/`",
            "choose folders that do not contain each other",
        ],
    );
}

#[test]
fn a_source_inside_the_destination_is_refused() {
    assert_error(
        "source_inside_destination.toml",
        "7:20",
        &["source_path `/data/in/2026/` is inside destination_path `/data/in/../in`"],
    );
}

#[test]
fn folders_side_by_side_or_one_level_into_a_subfolder_are_accepted() {
    let workspace = common::Workspace::new();
    workspace.write_config(
        "[[tasks]]\nid = \"a\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"src/\"\ndestination_path = \"src-copy/\"\nrecursive = true\n\
         [[tasks]]\nid = \"b\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"in/archive/\"\n",
    );
    let output = workspace.command(&["validate"]).output().expect("run");
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn a_lookback_outside_incremental_mode_is_refused() {
    assert_error(
        "lookback_without_incremental.toml",
        "10:22",
        &["watermark_lookback only applies to mode = \"incremental\""],
    );
}

#[test]
fn delete_missing_outside_full_mode_is_refused_where_it_is_written() {
    assert_error(
        "delete_missing_incremental.toml",
        "12:18",
        &["delete_missing only applies to mode = \"full\""],
    );
}

#[test]
fn a_lookback_that_is_not_a_duration_says_how_to_write_one() {
    assert_error(
        "bad_lookback.toml",
        "12:22",
        &[
            "invalid watermark_lookback `five minutes`",
            "write a duration like \"5m\"",
        ],
    );
}

#[test]
fn missing_config_file_says_how_to_give_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .args(["-c", "/nonexistent/syncdeck.toml", "run"])
        .output()
        .expect("run syncdeck");
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("/nonexistent/syncdeck.toml: cannot read the config"),
        "{stderr}"
    );
}

#[test]
fn the_example_config_is_valid() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_syncdeck"))
        .arg("-c")
        .arg(&example)
        .arg("validate")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert!(
        common::stdout(&output).contains("ok, "),
        "{}",
        common::stdout(&output)
    );
}

#[test]
fn seed_style_multiline_inline_tables_are_accepted() {
    let workspace = common::Workspace::new();
    workspace.write_config(
        r#"
[[tasks]]
id = "s3_to_local"
type = "sync"
[tasks.properties]
source_path = "s3://source-bucket/data/"
destination_path = "backup/"
recursive = true
[tasks.properties.sync_config]
source_config = {
    aws_access_key_id = "AKIDEXAMPLE",
    aws_secret_access_key = "${credential:seed_secret}",
    region_name = "us-east-1",
}
"#,
    );
    let output = workspace
        .command(&["validate"])
        .env("SYNCDECK_CREDENTIAL_SEED_SECRET", "x-secret")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", common::stderr(&output));
}

#[test]
fn an_unsupported_state_store_names_the_supported_ones() {
    assert_error(
        "unsupported_state.toml",
        "2:9",
        &[
            "[engine] state: `mysql:` is not a supported state store",
            "sqlite:PATH",
        ],
    );
}

#[test]
fn an_unencoded_at_in_a_password_says_to_encode_it() {
    let line = validate_error("unencoded_password.toml");
    assert!(
        line.contains("unencoded_password.toml:5:10: source:"),
        "{line}"
    );
    assert!(line.contains("`@` as %40"), "{line}");
    assert!(
        !line.contains("ssw0rd"),
        "the message never quotes the URL: {line}"
    );
}

#[test]
fn a_table_sync_url_of_another_database_points_at_its_own_line() {
    assert_error(
        "table_source_not_postgres.toml",
        "5:10",
        &["source must be a connection URL starting with postgres://"],
    );
}

#[test]
fn a_mistyped_sslmode_is_named_not_blamed_on_the_password() {
    let line = validate_error("table_bad_sslmode.toml");
    assert!(
        line.contains("table_bad_sslmode.toml:6:10: target:"),
        "{line}"
    );
    assert!(line.contains("did you mean `require`?"), "{line}");
    assert!(!line.contains("percent-encode"), "{line}");
    assert!(!line.contains("secret"), "{line}");
}

#[test]
fn credentials_in_a_file_location_point_to_sync_config() {
    assert_error(
        "credentials_in_location.toml",
        "5:15",
        &[
            "source_path: a user name or password in the URL is not supported",
            "sync_config",
        ],
    );
}

#[test]
fn jq_syntax_error_points_inside_the_expression() {
    // Column 30 is the second `+` of `.first_name + + " "`.
    assert_error(
        "jq_syntax.toml",
        "11:30",
        &["jq in column `name`", "fix the expression here"],
    );
}

#[test]
fn jq_unknown_variable_is_named_where_it_is_used() {
    // Column 30 is `$nope` (after the escaped quote and `\\(`).
    assert_error(
        "jq_unknown_variable.toml",
        "11:30",
        &[
            "jq in column `synced_by`",
            "unknown variable `$nope`",
            "the only variable is `$run`",
        ],
    );
}

#[test]
fn history_and_errors_read_the_store_while_an_airbyte_url_is_an_unset_variable() {
    // The on-call reading history needs no credentials or URLs resolved;
    // `validate` and `run` still name the variable.
    let workspace = common::Workspace::new();
    workspace.write_config(
        "[[tasks]]\nid = \"ab\"\ntype = \"airbyte\"\n[tasks.properties]\n\
         api_url = \"${env:SYNCDECK_TEST_UNSET_AIRBYTE_URL}\"\nconnection_id = \"abc\"\n\
         client_id = \"id\"\nclient_secret = \"${env:SYNCDECK_TEST_UNSET_SECRET}\"\n",
    );
    for command in ["history", "errors"] {
        let output = workspace.run(&[command]);
        assert!(
            output.status.success(),
            "{command}: {}",
            common::stderr(&output)
        );
    }
    let output = workspace.run(&["validate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        common::stderr(&output).contains("SYNCDECK_TEST_UNSET_AIRBYTE_URL"),
        "{}",
        common::stderr(&output)
    );
}

#[test]
fn a_host_key_fingerprint_that_is_not_sha256_is_refused_with_the_form_to_use() {
    assert_error(
        "sftp_md5_fingerprint.toml",
        "7:20",
        &["host_key_fingerprint `MD5:aa:bb`", "SHA256:"],
    );
}

#[test]
fn misspelt_tasks_header_is_named_not_a_duplicate_key() {
    assert_error(
        "misspelt_tasks_header.toml",
        "1:1",
        &["unknown section `[[task]]`", "did you mean `[[tasks]]`?"],
    );
}

#[test]
fn a_typo_inside_an_inline_table_names_its_key_path() {
    let line = validate_error("nested_column_typo.toml");
    assert!(
        line.contains("unknown key `jqq`")
            && line.contains("`columns.full_name` of [tasks.properties]"),
        "{line}"
    );
    assert!(line.contains(":10:"), "{line}");
}

#[test]
fn validate_names_a_private_key_file_that_is_not_there() {
    assert_error(
        "missing_private_key_file.toml",
        "6:20",
        &[
            "task `upload`: destination_path's private_key_file keys/no_such_key cannot be read",
            "invalid_configs/keys/no_such_key",
            "fix the path",
        ],
    );
}

/// A local source folder that is not there is a warning of `validate`, at
/// its line: the config is valid, but its runs would fail. A task with
/// dependencies is left alone (they may make its source).
#[test]
fn validate_warns_about_a_local_source_folder_that_is_not_there() {
    let workspace = common::Workspace::new();
    workspace.file("inbox/a.txt", b"a");
    workspace.write_config(
        "[[tasks]]\nid = \"here\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"inbox/\"\ndestination_path = \"out/\"\n\n\
         [[tasks]]\nid = \"typo\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"inbx/\"\ndestination_path = \"out/\"\n\n\
         [[tasks]]\nid = \"later\"\ntype = \"sync\"\ndependencies = [\"here\"]\n[tasks.properties]\nsource_path = \"out/made/\"\ndestination_path = \"archive/\"\n",
    );
    let output = workspace.run(&["validate"]);
    let stderr = common::stderr(&output);
    assert!(output.status.success(), "still a valid config: {stderr}");
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "one warning, for `typo`: {stderr}");
    assert!(
        warnings[0].starts_with("syncdeck: warning: ")
            && warnings[0].contains(
                "syncdeck.toml:16:15: task `typo`: source_path `inbx/` does not exist here"
            )
            && warnings[0].contains("create it, or fix the path"),
        "{stderr}"
    );
    assert!(
        common::stdout(&output).contains("ok, 3 tasks, 1 warning"),
        "{}",
        common::stdout(&output)
    );
}

/// `validate` lists every misspelt key and bad value at once, not one per
/// run: of the top level, a task's header, its properties and the tables
/// inside them, each with its line and "did you mean", in the order of
/// their lines, and no extra line for the required key a typo stood for.
#[test]
fn validate_lists_every_misspelt_key_at_once() {
    let workspace = common::Workspace::new();
    workspace.file("in/a.txt", b"a");
    std::fs::write(
        workspace.config_path(),
        "[engine]\nstate = \"sqlite:state/state.db\"\nmax_concurent_tasks = 2\n\n\
         [[tasks]]\nid = \"a\"\ntype = \"sync\"\nshedule = \"5m\"\n[tasks.properties]\n\
         source_path = \"in/\"\nrecusive = true\ndestinaton_path = \"out/\"\n\
         sync_config = { source_config = { regoin_name = \"x\" } }\npattern = 5\n",
    )
    .expect("write config");
    let output = workspace.run(&["validate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::stderr(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 7, "six problems and the count: {stderr}");
    let expected = [
        (
            "syncdeck.toml:3:1: unknown key `max_concurent_tasks`",
            "`max_concurrent_tasks`",
        ),
        ("syncdeck.toml:8:1: unknown key `shedule`", "`schedule`"),
        ("syncdeck.toml:11:1: unknown key `recusive`", "`recursive`"),
        (
            "syncdeck.toml:12:1: unknown key `destinaton_path`",
            "`destination_path`",
        ),
        (
            "syncdeck.toml:13:35: unknown key `regoin_name` in `sync_config.source_config`",
            "`region_name`",
        ),
    ];
    for (line, (at, meant)) in lines.iter().zip(expected) {
        assert!(
            line.contains(at) && line.contains(&format!("did you mean {meant}?")),
            "expected {at} … {meant} in: {stderr}"
        );
    }
    // A bad value does not hide the keys after it, nor they it.
    assert!(
        lines[5].contains("syncdeck.toml:14:11: invalid type: integer `5`")
            && lines[5].contains("`pattern`"),
        "{stderr}"
    );
    assert!(lines[6].ends_with("6 problems found"), "{stderr}");
}

/// Every section's misspelling is named as a section, the console's and
/// the theme's too (`[consle]` was "an unknown key of the top level").
#[test]
fn a_misspelt_console_or_theme_section_is_named_as_a_section() {
    let workspace = common::Workspace::new();
    std::fs::write(
        workspace.config_path(),
        "[engine]\nstate = \"sqlite:state/state.db\"\n[consle]\nmouse = true\n[thme]\nname = \"dark\"\n",
    )
    .expect("write config");
    let output = workspace.run(&["validate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::stderr(&output);
    assert!(
        stderr.contains("syncdeck.toml:3:2: unknown section `consle`; did you mean `console`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown section `thme`; did you mean `theme`?"),
        "{stderr}"
    );
}
