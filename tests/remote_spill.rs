//! FTP and SFTP folders with more names than a listing holds at once are
//! sorted in parts on disk, as local folders are: with the cutoff lowered
//! to a few names, a tree of odd names (spaces, unicode, leading dashes,
//! capitals, `a-b` beside `a/`) goes to each server and back whole, a rerun
//! skips every file (both sides' listings merge in the same order), and no
//! sorted part is left in the temporary folder. Against pyftpdlib (MLSD),
//! vsftpd (LIST and MDTM), `rclone serve sftp` and OpenSSH.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::openssh::{OpenSshServer, make_key};
use common::vsftpd::{VSFTPD_PASSWORD, VsftpdServer};
use common::{
    FTP_PASSWORD, FtpServer, SFTP_PASSWORD, SftpServer, Workspace, counter, json_lines, run_of,
    stderr, stdout,
};

/// Names whose byte order differs from a locale's order.
const FOLDERS: [&str; 5] = ["a", "a-b", "-dash", "été", "Zed sub"];
const FILES: [&str; 8] = ["lead space", "-x", "Ärger", "a.b", "a b", "日本", "ça", "B"];

/// The tree `in/` of the workspace: 48 files, no folder under the cutoff.
fn odd_tree(workspace: &Workspace) -> Vec<String> {
    let mut keys = Vec::new();
    for (index, file) in FILES.iter().enumerate() {
        let key = format!("{file}.csv");
        workspace.file(&format!("in/{key}"), format!("{index}\n").as_bytes());
        keys.push(key);
        for folder in FOLDERS {
            let key = format!("{folder}/{file}.csv");
            workspace.file(&format!("in/{key}"), key.as_bytes());
            keys.push(key);
        }
    }
    keys.sort();
    keys
}

/// A push of `in/` to `url` and a pull of it back into `out/`.
fn push_and_pull(url: &str, options: &str) -> String {
    format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{url}\"\nrecursive = true\n\
         [tasks.properties.sync_config]\ndestination_config = {options}\n\n\
         [[tasks]]\nid = \"pull\"\ntype = \"sync\"\ndependencies = [\"push\"]\n[tasks.properties]\nsource_path = \"{url}\"\ndestination_path = \"out/\"\nrecursive = true\n\
         [tasks.properties.sync_config]\nsource_config = {options}\n"
    )
}

/// What the temporary folder holds.
fn left_in(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .expect("temporary folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Runs the push and the pull twice with a cutoff of 3 names, with
/// `extra` set up by the caller (credentials, HOME): the first run copies
/// everything both ways, the second skips everything.
fn both_ways_twice(workspace: &Workspace, extra: impl Fn(&mut std::process::Command)) {
    let keys = odd_tree(workspace);
    let temporary = tempfile::tempdir().expect("temporary folder");
    let run = || {
        let mut command = workspace.command(&["run", "--json"]);
        command
            .env("SYNCDECK_LIST_CUTOFF", "3")
            .env("TMPDIR", temporary.path());
        extra(&mut command);
        let output = command.output().expect("run");
        assert!(
            output.status.success(),
            "{}",
            stdout(&output) + &stderr(&output)
        );
        assert_eq!(
            left_in(temporary.path()),
            Vec::<String>::new(),
            "sorted parts of the listings are left behind"
        );
        json_lines(&output)
    };

    let runs = run();
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 48);
    assert_eq!(counter(run_of(&runs, "pull"), "files_synced"), 48);
    assert_eq!(
        workspace.tree("out"),
        keys,
        "the pull brings back every file"
    );
    for key in &keys {
        assert_eq!(
            std::fs::read(workspace.path().join("out").join(key)).expect("pulled"),
            std::fs::read(workspace.path().join("in").join(key)).expect("source"),
            "{key} came back changed"
        );
    }
    let logs = workspace.logs();
    assert!(
        logs.lines().any(|line| line
            .contains("a folder too large to hold is sorted on disk in parts")
            && line.contains("drop")),
        "the server's folders were not sorted in parts:\n{logs}"
    );

    let runs = run();
    for task in ["push", "pull"] {
        assert_eq!(counter(run_of(&runs, task), "files_synced"), 0, "{task}");
        assert_eq!(
            counter(run_of(&runs, task), "files_skipped_unchanged"),
            48,
            "a rerun of {task} skips every unchanged file"
        );
    }
}

#[test]
fn pyftpdlib_folders_past_the_cutoff_sync_whole_through_mlsd() {
    let server = FtpServer::start();
    let workspace = Workspace::new();
    workspace.write_config(&push_and_pull(
        &format!("ftp://127.0.0.1:{}/drop/", server.port),
        &server.options(),
    ));
    both_ways_twice(&workspace, |command| {
        command.env("SYNCDECK_CREDENTIAL_FTP_PASSWORD", FTP_PASSWORD);
    });
}

#[test]
fn vsftpd_folders_past_the_cutoff_sync_whole_through_list() {
    let server = VsftpdServer::start();
    let workspace = Workspace::new();
    workspace.write_config(&push_and_pull(
        &format!("ftp://127.0.0.1:{}/drop/", server.port),
        &server.options(),
    ));
    both_ways_twice(&workspace, |command| {
        command.env("SYNCDECK_CREDENTIAL_FTP_PASSWORD", VSFTPD_PASSWORD);
    });
}

#[test]
fn rclone_sftp_folders_past_the_cutoff_sync_whole() {
    let server = SftpServer::start();
    let workspace = Workspace::new();
    workspace.write_config(&push_and_pull(
        &format!("sftp://127.0.0.1:{}/drop/", server.port),
        &server.options(),
    ));
    both_ways_twice(&workspace, |command| {
        command.env("SYNCDECK_CREDENTIAL_SFTP_PASSWORD", SFTP_PASSWORD);
    });
}

#[test]
fn openssh_folders_past_the_cutoff_sync_whole() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ed25519", "ed25519", "", false);
    server.authorize(&key);
    workspace.file("known_hosts", server.known_hosts_line(false).as_bytes());
    workspace.write_config(&push_and_pull(
        &server.url("drop"),
        &format!(
            "{{ username = \"{}\", private_key_file = \"id_ed25519\", known_hosts = \"known_hosts\" }}",
            server.user
        ),
    ));
    let home = tempfile::tempdir().expect("home");
    both_ways_twice(&workspace, |command| {
        command.env("HOME", home.path()).env_remove("SSH_AUTH_SOCK");
    });
}
