//! FTP locations against a real FTP server (pyftpdlib) on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    FTP_PASSWORD, FtpServer, TestCertificates, Workspace, counter, json_lines, run_of, stderr,
    stdout, write_aged,
};

fn run(workspace: &Workspace, password: &str) -> std::process::Output {
    workspace
        .command(&["run", "--json"])
        .env("SYNCDECK_CREDENTIAL_FTP_PASSWORD", password)
        .output()
        .expect("run")
}

#[test]
fn ftp_to_local_with_patterns_recursion_and_skips() {
    let server = FtpServer::start();
    for (path, body) in [
        ("data/a.csv", &b"a,1\n"[..]),
        ("data/b.json", b"{}"),
        ("data/skip.txt", b"no"),
        ("data/sub/c.csv", b"c\n"),
    ] {
        let file = server.root.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, body).expect("write");
    }
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"pull\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"ftp://127.0.0.1:{}/data/\"\ndestination_path = \"out/\"\n\
         pattern = \"*.{{csv,json}}\"\nrecursive = true\n[tasks.properties.sync_config]\nsource_config = {}\n",
        server.port,
        server.options()
    ));
    let output = run(&workspace, FTP_PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        counter(run_of(&json_lines(&output), "pull"), "files_synced"),
        3
    );
    assert_eq!(workspace.tree("out"), vec!["a.csv", "b.json", "sub/c.csv"]);
    assert_eq!(
        std::fs::read(workspace.path().join("out/sub/c.csv")).expect("read"),
        b"c\n"
    );

    let output = run(&workspace, FTP_PASSWORD);
    let rerun = run_of(&json_lines(&output), "pull").clone();
    assert_eq!(counter(&rerun, "files_synced"), 0);
    assert_eq!(
        counter(&rerun, "files_skipped_unchanged"),
        3,
        "a rerun skips what is already there"
    );
}

#[test]
fn local_to_ftp_uploads_completely_and_skips_on_rerun() {
    let server = FtpServer::start();
    let workspace = Workspace::new();
    workspace.file("in/x.csv", b"x\n");
    workspace.file("in/deep/y.csv", &vec![7u8; 3 * 1024 * 1024]);
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"ftp://127.0.0.1:{}/up/\"\nrecursive = true\n\
         [tasks.properties.sync_config]\ndestination_config = {}\n",
        server.port,
        server.options()
    ));
    let output = run(&workspace, FTP_PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        counter(run_of(&json_lines(&output), "push"), "files_synced"),
        2
    );
    let uploaded: Vec<String> = walkdir::WalkDir::new(server.root.path().join("up"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        uploaded
            .iter()
            .all(|name| !name.starts_with(".syncdeck-partial-")),
        "{uploaded:?}"
    );
    assert_eq!(
        std::fs::read(server.root.path().join("up/deep/y.csv"))
            .expect("read")
            .len(),
        3 * 1024 * 1024
    );

    let output = run(&workspace, FTP_PASSWORD);
    assert_eq!(
        counter(
            run_of(&json_lines(&output), "push"),
            "files_skipped_unchanged"
        ),
        2
    );
}

#[test]
fn a_wrong_password_names_the_host_not_the_password() {
    let server = FtpServer::start();
    let workspace = Workspace::new();
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"pull\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"ftp://127.0.0.1:{}/data/\"\ndestination_path = \"out/\"\n\
         [tasks.properties.sync_config]\nsource_config = {}\n",
        server.port,
        server.options()
    ));
    let output = run(&workspace, "wrong-ftp-password-123");
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output) + &stderr(&output);
    assert!(
        text.contains(&format!(
            "ftp://127.0.0.1:{}: login refused for user `syncdeck`",
            server.port
        )),
        "{text}"
    );
    assert!(!text.contains("wrong-ftp-password-123"), "{text}");
}

/// Push `in/` to the FTPS server, then pull it back into `back/`; the
/// server's certificate is checked against `ca` when given.
fn ftps_tasks(server: &FtpServer, ca: Option<&std::path::Path>) -> String {
    let options = match ca {
        Some(ca) => format!(
            "{{ username = \"{}\", password = \"${{credential:ftp_password}}\", tls_ca_file = \"{}\" }}",
            common::FTP_USER,
            ca.display()
        ),
        None => server.options(),
    };
    format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"ftps://127.0.0.1:{port}/up/\"\nrecursive = true\n\
         [tasks.properties.sync_config]\ndestination_config = {options}\n\n\
         [[tasks]]\nid = \"pull\"\ntype = \"sync\"\ndependencies = [\"push\"]\n[tasks.properties]\nsource_path = \"ftps://127.0.0.1:{port}/up/\"\ndestination_path = \"back/\"\nrecursive = true\n\
         [tasks.properties.sync_config]\nsource_config = {options}\n",
        port = server.port
    )
}

#[test]
fn ftps_moves_files_both_ways_with_the_certificate_checked() {
    let certificates = TestCertificates::new();
    let server = FtpServer::start_tls(&certificates);
    let workspace = Workspace::new();
    workspace.file("in/x.csv", b"x\n");
    workspace.file("in/deep/y.bin", &vec![9u8; 2 * 1024 * 1024]);
    workspace.write_config(&ftps_tasks(&server, Some(&certificates.ca_certificate)));

    let output = run(&workspace, FTP_PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 2);
    assert_eq!(counter(run_of(&runs, "pull"), "files_synced"), 2);
    let uploaded = std::fs::read(server.root.path().join("up/deep/y.bin")).expect("uploaded");
    assert!(
        uploaded == vec![9u8; 2 * 1024 * 1024],
        "the upload is whole: {} bytes",
        uploaded.len()
    );
    assert_eq!(workspace.tree("back"), vec!["deep/y.bin", "x.csv"]);
    assert_eq!(
        std::fs::read(workspace.path().join("back/x.csv")).expect("downloaded"),
        b"x\n"
    );

    let output = run(&workspace, FTP_PASSWORD);
    let runs = json_lines(&output);
    assert_eq!(
        counter(run_of(&runs, "push"), "files_skipped_unchanged"),
        2,
        "a rerun skips what is already there"
    );
}

#[test]
fn ftps_refuses_a_server_whose_certificate_it_cannot_check() {
    let certificates = TestCertificates::new();
    let server = FtpServer::start_tls(&certificates);
    let workspace = Workspace::new();
    workspace.file("in/x.csv", b"x\n");
    workspace.write_config(&ftps_tasks(&server, None));

    let output = run(&workspace, FTP_PASSWORD);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output) + &stderr(&output);
    assert!(
        text.contains(&format!("ftps://127.0.0.1:{}: TLS refused", server.port)),
        "{text}"
    );
    assert!(!text.contains(FTP_PASSWORD), "{text}");
    assert!(
        !server.root.path().join("up/x.csv").exists(),
        "nothing was sent"
    );
}

#[test]
fn a_run_removes_partial_files_on_the_server_untouched_for_an_hour() {
    let server = FtpServer::start();
    let old = server.root.path().join("up/.syncdeck-partial-4242-old.csv");
    let fresh = server
        .root
        .path()
        .join("up/.syncdeck-partial-4243-fresh.csv");
    write_aged(&old, b"trunc", Duration::from_secs(2 * 3600));
    write_aged(&fresh, b"being written", Duration::from_secs(60));
    let workspace = Workspace::new();
    workspace.file("in/x.csv", b"x\n");
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"ftp://127.0.0.1:{}/up/\"\n\
         [tasks.properties.sync_config]\ndestination_config = {}\n",
        server.port,
        server.options()
    ));
    let plan = workspace
        .command(&["plan", "push"])
        .env("SYNCDECK_CREDENTIAL_FTP_PASSWORD", FTP_PASSWORD)
        .output()
        .expect("plan");
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(old.exists(), "plan changes nothing");

    let output = run(&workspace, FTP_PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!old.exists(), "an hour-old partial file is removed");
    assert!(fresh.exists(), "a partial file written a minute ago stays");
    assert!(server.root.path().join("up/x.csv").exists());
}

#[test]
fn a_source_folder_missing_on_the_server_fails_the_run_and_names_it() {
    let server = FtpServer::start();
    std::fs::create_dir_all(server.root.path().join("empty")).expect("mkdir");
    let workspace = Workspace::new();
    let source = |folder: &str| format!("ftp://127.0.0.1:{}/{folder}/", server.port);
    let task = |id: &str, folder: &str| {
        format!(
            "[[tasks]]\nid = \"{id}\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"{}\"\ndestination_path = \"out/\"\n\
             [tasks.properties.sync_config]\nsource_config = {}\n\n",
            source(folder),
            server.options()
        )
    };
    workspace.write_config(&(task("missing", "nope") + &task("empty", "empty")));
    let output = run(&workspace, FTP_PASSWORD);
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
