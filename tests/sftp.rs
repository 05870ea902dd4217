//! SFTP locations against a real SFTP server (`rclone serve sftp`) on
//! loopback: local to SFTP, SFTP to S3, host key checking, bad passwords.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    S3Server, SFTP_PASSWORD, SftpServer, Workspace, counter, json_lines, run_of, stderr, stdout,
    write_aged,
};

fn run(workspace: &Workspace, password: &str) -> std::process::Output {
    workspace
        .command(&["run", "--json"])
        .env("SYNCDECK_CREDENTIAL_SFTP_PASSWORD", password)
        .output()
        .expect("run")
}

#[test]
fn local_to_sftp_then_sftp_to_s3_with_patterns_and_skips() {
    let sftp = SftpServer::start();
    let s3 = S3Server::start();
    s3.create_bucket("archive");
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    workspace.file("in/b.txt", b"not selected");
    workspace.file("in/deep/c.csv", &vec![3u8; 2 * 1024 * 1024]);
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"sftp://127.0.0.1:{port}/drop/\"\n\
         pattern = \"*.csv\"\nrecursive = true\n[tasks.properties.sync_config]\ndestination_config = {sftp}\n\n\
         [[tasks]]\nid = \"archive\"\ntype = \"sync\"\ndependencies = [\"push\"]\n[tasks.properties]\nsource_path = \"sftp://127.0.0.1:{port}/drop/\"\n\
         destination_path = \"s3://archive/from-sftp/\"\nrecursive = true\n[tasks.properties.sync_config]\nsource_config = {sftp}\ndestination_config = {s3}\n",
        port = sftp.port,
        sftp = sftp.options(),
        s3 = s3.options()
    ));
    let output = run(&workspace, SFTP_PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 2);
    assert_eq!(counter(run_of(&runs, "archive"), "files_synced"), 2);
    assert_eq!(
        std::fs::read(sftp.root.path().join("drop/deep/c.csv"))
            .expect("read")
            .len(),
        2 * 1024 * 1024
    );
    assert!(
        !sftp.root.path().join("drop/b.txt").exists(),
        "the pattern selects csv only"
    );
    assert_eq!(
        s3.list("archive", "from-sftp"),
        vec![
            ("from-sftp/a.csv".to_string(), 2),
            ("from-sftp/deep/c.csv".to_string(), 2 * 1024 * 1024)
        ]
    );

    let output = run(&workspace, SFTP_PASSWORD);
    let runs = json_lines(&output);
    assert_eq!(
        counter(run_of(&runs, "push"), "files_skipped_unchanged"),
        2,
        "a rerun skips what is already there"
    );
    assert_eq!(
        counter(run_of(&runs, "archive"), "files_skipped_unchanged"),
        2
    );
}

#[test]
fn a_wrong_password_or_host_key_is_refused_with_the_host_named() {
    let sftp = SftpServer::start();
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"pull\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"sftp://127.0.0.1:{}/x/\"\ndestination_path = \"out/\"\n\
         [tasks.properties.sync_config]\nsource_config = {}\n",
        sftp.port,
        sftp.options()
    ));
    let output = run(&workspace, "wrong-sftp-password-77");
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output) + &stderr(&output);
    assert!(
        text.contains(&format!(
            "sftp://127.0.0.1:{}: login refused for user `syncdeck`",
            sftp.port
        )),
        "{text}"
    );
    assert!(!text.contains("wrong-sftp-password-77"), "{text}");

    workspace.write_config(&format!(
        "[[tasks]]\nid = \"pull\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"sftp://127.0.0.1:{}/x/\"\ndestination_path = \"out/\"\n\
         [tasks.properties.sync_config]\nsource_config = {{ username = \"syncdeck\", password = \"${{credential:sftp_password}}\", host_key_fingerprint = \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" }}\n",
        sftp.port
    ));
    let output = run(&workspace, SFTP_PASSWORD);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "the server's host key {} (ssh-ed25519) does not match host_key_fingerprint SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            sftp.fingerprint
        )),
        "a server with another key is refused, its key named: {text}"
    );
}

#[test]
fn a_run_removes_partial_files_on_the_server_untouched_for_an_hour() {
    let sftp = SftpServer::start();
    let old = sftp.root.path().join("drop/.syncdeck-partial-4242-old.csv");
    let fresh = sftp
        .root
        .path()
        .join("drop/.syncdeck-partial-4243-fresh.csv");
    write_aged(&old, b"trunc", Duration::from_secs(2 * 3600));
    write_aged(&fresh, b"being written", Duration::from_secs(60));
    let workspace = Workspace::new();
    workspace.file("in/x.csv", b"x\n");
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"sftp://127.0.0.1:{}/drop/\"\n\
         [tasks.properties.sync_config]\ndestination_config = {}\n",
        sftp.port,
        sftp.options()
    ));
    let output = run(&workspace, SFTP_PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!old.exists(), "an hour-old partial file is removed");
    assert!(fresh.exists(), "a partial file written a minute ago stays");
    assert!(sftp.root.path().join("drop/x.csv").exists());
}

#[test]
fn a_source_folder_missing_on_the_server_fails_the_run_and_names_it() {
    let sftp = SftpServer::start();
    std::fs::create_dir_all(sftp.root.path().join("empty")).expect("mkdir");
    let workspace = Workspace::new();
    let source = |folder: &str| format!("sftp://127.0.0.1:{}/{folder}/", sftp.port);
    let task = |id: &str, folder: &str| {
        format!(
            "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{}\"\ndestination_path = \"out/\"\n\
             [tasks.properties.sync_config]\nsource_config = {}\n\n",
            source(folder),
            sftp.options()
        )
    };
    workspace.write_config(&(task("missing", "nope") + &task("empty", "empty")));
    let output = run(&workspace, SFTP_PASSWORD);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let runs = json_lines(&output);
    let missing = run_of(&runs, "missing");
    assert_eq!(missing["status"], "failed");
    let expected = format!("source folder {} does not exist", source("nope"));
    assert!(
        missing["error"]
            .as_str()
            .is_some_and(|error| error.contains(&expected)),
        "{missing}"
    );
    let empty = run_of(&runs, "empty");
    assert_eq!(empty["status"], "succeeded", "{empty}");
    assert!(
        empty["warning"]
            .as_str()
            .is_some_and(|warning| warning.starts_with("0 files found")),
        "{empty}"
    );
}
