//! Secrets inside connection URLs: a password with `@`, `:`, `/`, `%`, `#`,
//! `?` or non-ASCII characters reaches the server whole and as written, and
//! no piece of it shows in output, logs, history or the state file, even
//! at `RUST_LOG=trace` against endpoints that fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;

use common::{Workspace, free_port, json_lines, run_of, stderr, stdout};

/// Everything a user or another process can read after some commands.
struct Seen {
    printed: String,
    logs: String,
    state: String,
}

impl Seen {
    fn collect(workspace: &Workspace, outputs: &[Output]) -> Self {
        let mut printed = String::new();
        for output in outputs {
            printed.push_str(&stdout(output));
            printed.push_str(&stderr(output));
        }
        let mut state = Vec::new();
        for file in ["state/state.db", "state/state.db-wal"] {
            state.extend(std::fs::read(workspace.path().join(file)).unwrap_or_default());
        }
        Self {
            printed,
            logs: workspace.logs(),
            state: String::from_utf8_lossy(&state).into_owned(),
        }
    }

    /// Fails when any 4 consecutive characters of `secret` appear anywhere.
    fn assert_no_piece_of(&self, secret: &str) {
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(4) {
            let piece: String = window.iter().collect();
            for (place, text) in [
                ("stdout or stderr", &self.printed),
                ("the log files", &self.logs),
                ("the state file", &self.state),
            ] {
                assert!(
                    !text.contains(&piece),
                    "`{piece}` of a secret shows in {place}:\n{text}"
                );
            }
        }
    }
}

/// A PostgreSQL server that asks for a cleartext password and reports the
/// password it was sent, then hangs up. Returns the port and the password.
fn password_catcher() -> (u16, std::thread::JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().ok()?;
        let read_length = |stream: &mut std::net::TcpStream| -> Option<usize> {
            let mut length = [0u8; 4];
            stream.read_exact(&mut length).ok()?;
            Some(u32::from_be_bytes(length) as usize)
        };
        loop {
            // An SSLRequest (answered "no TLS") or the startup message.
            let length = read_length(&mut stream)?;
            let mut body = vec![0u8; length - 4];
            stream.read_exact(&mut body).ok()?;
            if body[..4] == [0x04, 0xd2, 0x16, 0x2f] {
                stream.write_all(b"N").ok()?;
                continue;
            }
            break;
        }
        // AuthenticationCleartextPassword.
        stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).ok()?;
        let mut kind = [0u8; 1];
        stream.read_exact(&mut kind).ok()?;
        let length = read_length(&mut stream)?;
        let mut body = vec![0u8; length - 4];
        stream.read_exact(&mut body).ok()?;
        body.pop();
        String::from_utf8(body).ok()
    });
    (port, handle)
}

fn table_task(id: &str, url: &str) -> String {
    format!(
        r#"
[[tasks]]
id = "{id}"
type = "table_sync"
[tasks.properties]
source = "{url}"
target = "{url}"
source_table = "public.items"
target_table = "public.items"
primary_key = ["id"]
max_retries = 0
"#
    )
}

#[test]
fn a_password_with_an_at_sign_reaches_the_server_whole_and_shows_nowhere() {
    const PASSWORD: &str = "p@ssw0rd!Zq%41";
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        "copy",
        "postgres://app:${credential:pw}@127.0.0.1:1/db",
    ));
    let command = |args: &[&str]| {
        workspace
            .command(args)
            .env("SYNCDECK_CREDENTIAL_PW", PASSWORD)
            .env("RUST_LOG", "trace")
            .output()
            .expect("run")
    };

    let validate = command(&["validate"]);
    assert!(validate.status.success(), "{}", stderr(&validate));
    let run = command(&["run", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let runs = json_lines(&run);
    let error = run_of(&runs, "copy")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("source 127.0.0.1:1/db"),
        "the error names the host as written, not a piece of the password: {error}"
    );
    let history = command(&["history", "--json"]);
    let history_runs = json_lines(&history);
    assert_eq!(history_runs[0]["status"], "failed");
    let seen = Seen::collect(&workspace, &[validate, run, history, command(&["run"])]);
    assert!(seen.logs.contains("run finished"), "{}", seen.logs);
    seen.assert_no_piece_of(PASSWORD);

    // The same password reaches a server as written: `@` kept, `%41` not decoded.
    let (port, caught) = password_catcher();
    workspace.write_config(&table_task(
        "copy",
        &format!("postgres://app:${{credential:pw}}@127.0.0.1:{port}/db"),
    ));
    let run = command(&["run", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert_eq!(caught.join().expect("catcher").as_deref(), Some(PASSWORD));
}

#[test]
fn no_piece_of_any_secret_shows_when_every_endpoint_fails() {
    const PG: &str = "Pg7@Kx:/w%2F#?żółw-Qv";
    const FTP: &str = "Ft9:Hm@/%41#?ğüş-Jw";
    const SFTP: &str = "Sf3#Lq?/@:%zß-Wy";
    const S3: &str = "S3k/Rb%25@:#?Ωmega-Xv";
    let workspace = Workspace::new();
    workspace.file("in/a.csv", b"a\n");
    let closed = free_port();
    let mut config = table_task(
        "pg",
        &format!("postgres://app:${{credential:pg}}@127.0.0.1:{closed}/db"),
    );
    config.push_str(&format!(
        r#"
[[tasks]]
id = "ftp"
type = "sync"
[tasks.properties]
source_path = "in/"
destination_path = "ftp://127.0.0.1:{closed}/drop/"
max_retries = 0
[tasks.properties.sync_config]
destination_config = {{ username = "u", password = "${{credential:ftp}}" }}

[[tasks]]
id = "sftp"
type = "sync"
[tasks.properties]
source_path = "sftp://127.0.0.1:{closed}/drop/"
destination_path = "out/"
max_retries = 0
[tasks.properties.sync_config]
source_config = {{ username = "u", password = "${{credential:sftp}}", host_key_fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }}

[[tasks]]
id = "s3"
type = "sync"
[tasks.properties]
source_path = "in/"
destination_path = "s3://bucket/drop/"
max_retries = 0
[tasks.properties.sync_config]
destination_config = {{ aws_access_key_id = "id", aws_secret_access_key = "${{credential:s3}}", endpoint = "http://127.0.0.1:{closed}" }}
"#
    ));
    workspace.write_config(&config);
    let command = |args: &[&str]| {
        workspace
            .command(args)
            .env("SYNCDECK_CREDENTIAL_PG", PG)
            .env("SYNCDECK_CREDENTIAL_FTP", FTP)
            .env("SYNCDECK_CREDENTIAL_SFTP", SFTP)
            .env("SYNCDECK_CREDENTIAL_S3", S3)
            .env("RUST_LOG", "trace")
            .output()
            .expect("run")
    };
    let validate = command(&["validate"]);
    assert!(validate.status.success(), "{}", stderr(&validate));
    let run = command(&["run", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let runs = json_lines(&run);
    for task in ["pg", "ftp", "sftp", "s3"] {
        assert_eq!(
            run_of(&runs, task)["status"],
            "failed",
            "{task} must fail against a closed port"
        );
    }
    let outputs = vec![
        validate,
        run,
        command(&["plan", "pg"]),
        command(&["plan", "sftp"]),
        command(&["history", "--json"]),
        command(&["errors", "--json", "--all"]),
    ];
    let seen = Seen::collect(&workspace, &outputs);
    assert!(
        seen.logs.contains("TRACE"),
        "the log file holds trace lines"
    );
    for secret in [PG, FTP, SFTP, S3] {
        seen.assert_no_piece_of(secret);
    }
}

#[test]
fn credentials_written_into_a_file_location_are_refused_without_showing_them() {
    const PASSWORD: &str = "Lc4@:/x%41#Yy";
    let workspace = Workspace::new();
    workspace.write_config(
        r#"
[[tasks]]
id = "t"
type = "sync"
[tasks.properties]
source_path = "ftp://user:${credential:pw}@127.0.0.1/in/"
destination_path = "out/"
"#,
    );
    let output = workspace
        .command(&["validate"])
        .env("SYNCDECK_CREDENTIAL_PW", PASSWORD)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(
            "syncdeck.toml:10:15: source_path: a user name or password in the URL is not supported"
        ),
        "{text}"
    );
    let seen = Seen::collect(&workspace, &[output]);
    seen.assert_no_piece_of(PASSWORD);
}

#[test]
fn an_unencoded_password_in_a_written_url_is_reported_at_its_place() {
    let workspace = Workspace::new();
    workspace.write_config(&table_task(
        "t",
        "postgres://app:Wr1tten@Pass@127.0.0.1:5432/db",
    ));
    let output = workspace.run(&["validate"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(
            "syncdeck.toml:10:10: source: the host name of the connection URL is not valid"
        ) && text.contains("`@` as %40"),
        "{text}"
    );
    assert!(!text.contains("Pass@127"), "{text}");
}
