//! FTP against vsftpd on loopback, a server without MLSD: listings come
//! from LIST (Unix style) with times from MDTM, so a rerun still skips
//! unchanged files; paths are relative to the login folder unless they
//! start with `%2F`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::vsftpd::{VSFTPD_PASSWORD, VsftpdServer};
use common::{Workspace, counter, json_lines, run_of, stderr, stdout};

fn run(workspace: &Workspace) -> std::process::Output {
    workspace
        .command(&["run", "--json"])
        .env("SYNCDECK_CREDENTIAL_FTP_PASSWORD", VSFTPD_PASSWORD)
        .output()
        .expect("run")
}

#[test]
fn a_tree_goes_both_ways_through_list_and_a_rerun_skips_everything_unchanged() {
    let server = VsftpdServer::start();
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    workspace.file("in/b.txt", b"not selected");
    workspace.file("in/deep/c d.csv", &vec![5u8; 2 * 1024 * 1024 + 3]);
    // Files already on the server, older than anything pushed.
    server.file("drop/old/e.csv", b"from before\n");
    let url = format!("ftp://127.0.0.1:{}/drop/", server.port);
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{url}\"\n\
         pattern = \"*.csv\"\nrecursive = true\n[tasks.properties.sync_config]\ndestination_config = {ftp}\n\n\
         [[tasks]]\nid = \"pull\"\ntype = \"sync\"\ndependencies = [\"push\"]\n[tasks.properties]\nsource_path = \"{url}\"\n\
         destination_path = \"out/\"\nrecursive = true\n[tasks.properties.sync_config]\nsource_config = {ftp}\n",
        ftp = server.options()
    ));
    let output = run(&workspace);
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 2);
    assert_eq!(counter(run_of(&runs, "pull"), "files_synced"), 3);
    assert_eq!(
        std::fs::read(server.path("drop/deep/c d.csv"))
            .expect("uploaded")
            .len(),
        2 * 1024 * 1024 + 3
    );
    assert!(
        !server.path("drop/b.txt").exists(),
        "the pattern selects csv only"
    );
    assert_eq!(
        workspace.tree("out"),
        vec!["a.csv", "deep/c d.csv", "old/e.csv"]
    );
    assert_eq!(
        std::fs::read(workspace.path().join("out/old/e.csv")).expect("pulled"),
        b"from before\n"
    );

    let output = run(&workspace);
    assert!(output.status.success(), "{}", stdout(&output));
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 0);
    assert_eq!(
        counter(run_of(&runs, "push"), "files_skipped_unchanged"),
        2,
        "a rerun skips what the server has"
    );
    assert_eq!(counter(run_of(&runs, "pull"), "files_synced"), 0);
    assert_eq!(
        counter(run_of(&runs, "pull"), "files_skipped_unchanged"),
        3,
        "LIST shows minutes only; MDTM's exact times let the pull skip"
    );
}

#[test]
fn a_path_is_relative_to_the_login_folder_and_percent_2f_makes_it_absolute() {
    let server = VsftpdServer::start();
    let workspace = Workspace::new();
    workspace.file("in/x.csv", b"x\n");
    let absolute = format!(
        "ftp://127.0.0.1:{}/%2F{}/abs/",
        server.port,
        server
            .root
            .path()
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"relative\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"ftp://127.0.0.1:{port}/rel/\"\n\
         [tasks.properties.sync_config]\ndestination_config = {ftp}\n\n\
         [[tasks]]\nid = \"absolute\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{absolute}\"\n\
         [tasks.properties.sync_config]\ndestination_config = {ftp}\n",
        port = server.port,
        ftp = server.options()
    ));
    let output = run(&workspace);
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    assert_eq!(
        std::fs::read(server.path("rel/x.csv")).expect("relative"),
        b"x\n",
        "ftp://host/rel/ is `rel` in the folder the login lands in"
    );
    assert_eq!(
        std::fs::read(server.path("abs/x.csv")).expect("absolute"),
        b"x\n",
        "ftp://host/%2F<root>/abs/ is the absolute path"
    );
}

#[test]
fn many_files_go_over_a_few_reused_logins_not_one_per_file() {
    let server = VsftpdServer::start();
    let workspace = Workspace::new();
    for index in 0..40 {
        workspace.file(
            &format!("in/f{index:02}.csv"),
            format!("{index}\n").as_bytes(),
        );
    }
    let url = format!("ftp://127.0.0.1:{}/drop/", server.port);
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{url}\"\ntransfers = 2\n\
         [tasks.properties.sync_config]\ndestination_config = {ftp}\n",
        ftp = server.options()
    ));
    let output = run(&workspace);
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    assert_eq!(
        counter(run_of(&json_lines(&output), "push"), "files_synced"),
        40
    );
    assert_eq!(std::fs::read_dir(server.path("drop")).unwrap().count(), 40);
    let logins = server.logins();
    // One for the listing and one per concurrent transfer, give or take
    // a transfer that started before another one finished.
    assert!((1..=4).contains(&logins), "40 files took {logins} logins");
}
