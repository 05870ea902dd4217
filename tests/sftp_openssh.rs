//! SFTP against a real OpenSSH server (`sshd` on loopback, key-only
//! login): trees both ways with an ed25519 key and a passphrase-protected
//! RSA key, known_hosts (hashed, `[host]:port`, the default
//! `~/.ssh/known_hosts`), an unknown host refused with the fingerprint to
//! pin, a wrong passphrase named and never printed, replacing files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::openssh::{OpenSshServer, make_key};
use common::{Workspace, counter, json_lines, run_of, stderr, stdout};

const PASSPHRASE: &str = "rsa-key-passphrase-for-tests-41";

/// `syncdeck run --json` with HOME at `home` (its `.ssh/known_hosts` is
/// the default) and no SSH agent, so the machine's own never count.
fn run(workspace: &Workspace, home: &Path, passphrase: &str) -> std::process::Output {
    workspace
        .command(&["run", "--json"])
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env("SYNCDECK_CREDENTIAL_KEY_PASSPHRASE", passphrase)
        .output()
        .expect("run")
}

/// A push of `in/` to the server and a pull of it back into `out/`.
fn push_and_pull(server: &OpenSshServer, options: &str) -> String {
    format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{url}\"\nrecursive = true\n\
         [tasks.properties.sync_config]\ndestination_config = {options}\n\n\
         [[tasks]]\nid = \"pull\"\ntype = \"sync\"\ndependencies = [\"push\"]\n[tasks.properties]\nsource_path = \"{url}\"\ndestination_path = \"out/\"\nrecursive = true\n\
         [tasks.properties.sync_config]\nsource_config = {options}\n",
        url = server.url("drop"),
    )
}

fn sample_tree(workspace: &Workspace) {
    workspace.file("in/a.csv", b"a\n");
    workspace.file("in/deep/er/b.bin", &vec![7u8; 3 * 1024 * 1024 + 5]);
}

#[test]
fn an_ed25519_key_moves_a_tree_both_ways_checked_against_a_hashed_known_hosts_entry() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ed25519", "ed25519", "", false);
    server.authorize(&key);
    workspace.file("known_hosts", server.known_hosts_line(true).as_bytes());
    sample_tree(&workspace);
    workspace.write_config(&push_and_pull(
        &server,
        &format!(
            "{{ username = \"{}\", private_key_file = \"id_ed25519\", known_hosts = \"known_hosts\" }}",
            server.user
        ),
    ));
    let home = tempfile::tempdir().expect("home");
    let output = run(&workspace, home.path(), "");
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 2);
    assert_eq!(counter(run_of(&runs, "pull"), "files_synced"), 2);
    assert_eq!(
        std::fs::read(server.root.path().join("drop/deep/er/b.bin"))
            .expect("uploaded")
            .len(),
        3 * 1024 * 1024 + 5
    );
    assert_eq!(workspace.tree("out"), vec!["a.csv", "deep/er/b.bin"]);
    assert_eq!(
        std::fs::read(workspace.path().join("out/a.csv")).expect("pulled"),
        b"a\n"
    );

    let output = run(&workspace, home.path(), "");
    let runs = json_lines(&output);
    assert_eq!(
        counter(run_of(&runs, "push"), "files_skipped_unchanged"),
        2,
        "a rerun skips what is on the server already"
    );
    assert_eq!(counter(run_of(&runs, "pull"), "files_skipped_unchanged"), 2);
}

#[test]
fn a_passphrase_protected_rsa_key_logs_in_with_the_server_from_the_default_known_hosts() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    // The legacy PEM format (`BEGIN RSA PRIVATE KEY`, encrypted).
    let key = make_key(workspace.path(), "id_rsa", "rsa", PASSPHRASE, true);
    assert!(
        std::fs::read_to_string(&key)
            .expect("key")
            .contains("BEGIN RSA PRIVATE KEY"),
        "ssh-keygen -m PEM writes PEM"
    );
    server.authorize(&key);
    // No host key setting: ~/.ssh/known_hosts, with a plain `[host]:port` entry.
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join(".ssh")).expect(".ssh");
    std::fs::write(
        home.path().join(".ssh/known_hosts"),
        server.known_hosts_line(false),
    )
    .expect("known_hosts");
    sample_tree(&workspace);
    workspace.write_config(&push_and_pull(
        &server,
        &format!(
            "{{ username = \"{}\", private_key_file = \"{}\", private_key_passphrase = \"${{credential:key_passphrase}}\" }}",
            server.user,
            key.display()
        ),
    ));
    let output = run(&workspace, home.path(), PASSPHRASE);
    let text = stdout(&output) + &stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        !text.contains(PASSPHRASE),
        "the passphrase is never printed"
    );
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 2);
    assert_eq!(workspace.tree("out"), vec!["a.csv", "deep/er/b.bin"]);

    // A changed source file replaces the one on the server.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    workspace.file("in/a.csv", b"a, second version\n");
    let output = run(&workspace, home.path(), PASSPHRASE);
    assert!(output.status.success(), "{}", stdout(&output));
    let runs = json_lines(&output);
    assert_eq!(counter(run_of(&runs, "push"), "files_synced"), 1);
    assert_eq!(
        std::fs::read(server.root.path().join("drop/a.csv")).expect("replaced"),
        b"a, second version\n"
    );
    assert!(
        server.sftp_log().contains("posix-rename old"),
        "the file is replaced in one step (posix-rename@openssh.com): {}",
        server.sftp_log()
    );
    assert_eq!(
        std::fs::read(workspace.path().join("out/a.csv")).expect("pulled"),
        b"a, second version\n"
    );
}

#[test]
fn an_unknown_host_is_refused_with_the_fingerprint_to_pin() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ed25519", "ed25519", "", false);
    server.authorize(&key);
    // known_hosts knows another port of this host only.
    let other = server
        .known_hosts_line(false)
        .replace(&format!("]:{} ", server.port), "]:1 ");
    workspace.file("known_hosts", other.as_bytes());
    workspace.file("in/a.csv", b"a\n");
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{}\"\n\
         [tasks.properties.sync_config]\ndestination_config = {{ username = \"{}\", private_key_file = \"id_ed25519\", known_hosts = \"known_hosts\" }}\n",
        server.url("drop"),
        server.user
    ));
    let home = tempfile::tempdir().expect("home");
    let output = run(&workspace, home.path(), "");
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "sftp://127.0.0.1:{}: the server's host key {} (ssh-ed25519) is not in",
            server.port, server.fingerprint
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "host_key_fingerprint = \\\"{}\\\"",
            server.fingerprint
        )) || text.contains(&format!(
            "host_key_fingerprint = \"{}\"",
            server.fingerprint
        )),
        "the message says how to pin it: {text}"
    );
    assert!(
        !server.root.path().join("drop/a.csv").exists(),
        "nothing reaches an unchecked server"
    );

    // A known_hosts setting naming no file says so.
    std::fs::remove_file(workspace.path().join("known_hosts")).expect("rm");
    let output = run(&workspace, home.path(), "");
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "the known_hosts file {} does not exist",
            workspace.path().join("known_hosts").display()
        )),
        "{text}"
    );
}

#[test]
fn a_wrong_passphrase_is_named_and_never_printed() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_rsa", "rsa", PASSPHRASE, false);
    server.authorize(&key);
    workspace.file("in/a.csv", b"a\n");
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{}\"\n\
         [tasks.properties.sync_config]\ndestination_config = {{ username = \"{}\", private_key_file = \"id_rsa\", private_key_passphrase = \"${{credential:key_passphrase}}\", host_key_fingerprint = \"{}\" }}\n",
        server.url("drop"),
        server.user,
        server.fingerprint
    ));
    let home = tempfile::tempdir().expect("home");
    let wrong = "not-the-passphrase-for-tests-99";
    let output = run(&workspace, home.path(), wrong);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output) + &stderr(&output) + &workspace.logs();
    assert!(
        text.contains("wrong passphrase for private_key_file"),
        "{text}"
    );
    assert!(
        !text.contains(wrong),
        "the passphrase is never printed: {text}"
    );
    assert!(!server.root.path().join("drop/a.csv").exists());

    // The right one works with the same (OpenSSH-format) key.
    let output = run(&workspace, home.path(), PASSPHRASE);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(server.root.path().join("drop/a.csv").exists());
}

#[test]
fn validate_reports_an_sftp_task_with_no_way_to_check_the_host_key() {
    let workspace = Workspace::new();
    // validate checks that the key file can be read, not what is in it.
    workspace.file("id", b"a key");
    workspace.write_config(
        "[[tasks]]\nid = \"pull\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"sftp://files.example.com:2222/x/\"\ndestination_path = \"out/\"\n\
         [tasks.properties.sync_config]\nsource_config = { username = \"u\", private_key_file = \"id\" }\n",
    );
    let home = tempfile::tempdir().expect("home");
    let output = workspace
        .command(&["validate"])
        .env("HOME", home.path())
        .output()
        .expect("validate");
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("{}:9:15:", workspace.config_path().display())),
        "the error points at source_path: {text}"
    );
    assert!(
        text.contains("no way to check the SFTP server's host key")
            && text.contains("ssh-keyscan -p 2222 files.example.com"),
        "{text}"
    );

    // A ~/.ssh/known_hosts is enough.
    std::fs::create_dir_all(home.path().join(".ssh")).expect(".ssh");
    std::fs::write(home.path().join(".ssh/known_hosts"), "").expect("known_hosts");
    let output = workspace
        .command(&["validate"])
        .env("HOME", home.path())
        .output()
        .expect("validate");
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A one-file push to the server with `options`; returns the run's output.
fn push_one(
    server: &OpenSshServer,
    workspace: &Workspace,
    options: &str,
    home: &Path,
) -> std::process::Output {
    workspace.file("in/a.csv", b"a\n");
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{}\"\n\
         [tasks.properties.sync_config]\ndestination_config = {options}\n",
        server.url("drop"),
    ));
    run(workspace, home, "")
}

#[test]
fn an_ecdsa_key_logs_in() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ecdsa", "ecdsa", "", false);
    server.authorize(&key);
    let home = tempfile::tempdir().expect("home");
    let output = push_one(
        &server,
        &workspace,
        &format!(
            "{{ username = \"{}\", private_key_file = \"id_ecdsa\", host_key_fingerprint = \"{}\" }}",
            server.user, server.fingerprint
        ),
        home.path(),
    );
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(server.root.path().join("drop/a.csv").exists());
}

#[test]
fn a_host_key_that_differs_from_the_recorded_one_is_refused_as_a_possible_interception() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ed25519", "ed25519", "", false);
    server.authorize(&key);
    // This host and port, recorded with another ed25519 key.
    let other = make_key(workspace.path(), "other_host", "ed25519", "", false);
    let other_public = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let mut parts = other_public.split_whitespace();
    workspace.file(
        "known_hosts",
        format!(
            "[127.0.0.1]:{} {} {}\n",
            server.port,
            parts.next().expect("kind"),
            parts.next().expect("key")
        )
        .as_bytes(),
    );
    let home = tempfile::tempdir().expect("home");
    let output = push_one(
        &server,
        &workspace,
        &format!(
            "{{ username = \"{}\", private_key_file = \"id_ed25519\", known_hosts = \"known_hosts\" }}",
            server.user
        ),
        home.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "the server's host key {} (ssh-ed25519) differs from the one recorded at {}:1",
            server.fingerprint,
            workspace.path().join("known_hosts").display()
        )) && text.contains("intercepting"),
        "{text}"
    );
    assert!(!server.root.path().join("drop/a.csv").exists());
}

#[test]
fn without_a_key_or_password_the_ssh_agent_logs_in() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ed25519", "ed25519", "", false);
    server.authorize(&key);
    let socket = workspace.path().join("agent.sock");
    let agent = common::TestProcess::spawn(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let added = (0..100).any(|_| {
        let added = std::process::Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !added {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        added
    });
    assert!(added, "ssh-add could not reach the agent");
    workspace.file("in/a.csv", b"a\n");
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{}\"\n\
         [tasks.properties.sync_config]\ndestination_config = {{ username = \"{}\", host_key_fingerprint = \"{}\" }}\n",
        server.url("drop"),
        server.user,
        server.fingerprint
    ));
    let home = tempfile::tempdir().expect("home");
    let output = workspace
        .command(&["run", "--json"])
        .env("HOME", home.path())
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(server.root.path().join("drop/a.csv").exists());
    drop(agent);

    // No agent either: the message says what to set.
    std::fs::remove_file(server.root.path().join("drop/a.csv")).expect("rm");
    let output = run(&workspace, home.path(), "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("no way to log in: set password or private_key_file"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn an_encrypted_pkcs8_key_asks_for_its_passphrase_then_logs_in_with_it() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ecdsa", "ecdsa", "", false);
    // Re-encrypt it as PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`).
    let converted = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-m", "PKCS8", "-P", "", "-N", PASSPHRASE, "-f"])
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("ssh-keygen -p");
    assert!(converted.success());
    assert!(
        std::fs::read_to_string(&key)
            .expect("key")
            .contains("BEGIN ENCRYPTED PRIVATE KEY")
    );
    server.authorize(&key);
    let home = tempfile::tempdir().expect("home");
    let without = push_one(
        &server,
        &workspace,
        &format!(
            "{{ username = \"{}\", private_key_file = \"id_ecdsa\", host_key_fingerprint = \"{}\" }}",
            server.user, server.fingerprint
        ),
        home.path(),
    );
    assert_eq!(without.status.code(), Some(1));
    assert!(
        stdout(&without).contains("is protected by a passphrase; set private_key_passphrase"),
        "{}",
        stdout(&without)
    );
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{}\"\n\
         [tasks.properties.sync_config]\ndestination_config = {{ username = \"{}\", private_key_file = \"id_ecdsa\", private_key_passphrase = \"${{credential:key_passphrase}}\", host_key_fingerprint = \"{}\" }}\n",
        server.url("drop"),
        server.user,
        server.fingerprint
    ));
    let output = run(&workspace, home.path(), PASSPHRASE);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(server.root.path().join("drop/a.csv").exists());
}

#[test]
fn many_files_go_over_a_few_reused_logins_not_one_per_file() {
    let server = OpenSshServer::start();
    let workspace = Workspace::new();
    let key = make_key(workspace.path(), "id_ed25519", "ed25519", "", false);
    server.authorize(&key);
    workspace.file("known_hosts", server.known_hosts_line(false).as_bytes());
    for index in 0..40 {
        workspace.file(
            &format!("in/f{index:02}.csv"),
            format!("{index}\n").as_bytes(),
        );
    }
    let options = format!(
        "{{ username = \"{}\", private_key_file = \"id_ed25519\", known_hosts = \"known_hosts\" }}",
        server.user
    );
    workspace.write_config(&format!(
        "[[tasks]]\nid = \"push\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"{url}\"\ntransfers = 2\n\
         [tasks.properties.sync_config]\ndestination_config = {options}\n",
        url = server.url("drop"),
    ));
    let home = tempfile::tempdir().expect("home");
    let output = run(&workspace, home.path(), "");
    assert!(
        output.status.success(),
        "{}",
        stdout(&output) + &stderr(&output)
    );
    assert_eq!(
        counter(run_of(&json_lines(&output), "push"), "files_synced"),
        40
    );
    let logins = server.sshd_log().matches("Accepted publickey").count();
    // One for the listing and one per concurrent transfer, give or take
    // a transfer that started before another one finished.
    assert!(
        (1..=4).contains(&logins),
        "40 files took {logins} logins:\n{}",
        server.sshd_log()
    );
}
