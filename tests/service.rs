//! Running syncdeck as a service: the daemon's `/metrics`, `/healthz` and
//! `/readyz`, JSON log lines, shell completions and the manual page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{PrivateCluster, Workspace, free_port, json_lines, stderr, stdout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const PATIENCE: Duration = Duration::from_secs(60);

/// A daemon process, stopped with SIGTERM (and killed if that fails) when
/// dropped, so a failing test leaves nothing running.
struct Daemon {
    child: Option<Child>,
    port: u16,
}

impl Daemon {
    fn start(workspace: &Workspace, extra: &[&str]) -> Self {
        Self::start_with(workspace, extra, &[])
    }

    fn start_with(workspace: &Workspace, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let mut args = vec!["daemon", "--metrics-addr", &address];
        args.extend_from_slice(extra);
        Self::spawn(workspace, &args, env, port)
    }

    /// A daemon whose config sets `[engine] metrics_addr` to `port`.
    fn start_configured(workspace: &Workspace, port: u16) -> Self {
        Self::spawn(workspace, &["daemon"], &[], port)
    }

    fn spawn(workspace: &Workspace, args: &[&str], env: &[(&str, &str)], port: u16) -> Self {
        let mut command = workspace.command(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let mut daemon = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + PATIENCE;
        while daemon.try_get("/healthz").is_none() {
            if let Some(status) = daemon.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                let output = daemon.stop_output();
                panic!("the daemon exited ({status}): {}", stderr(&output));
            }
            assert!(Instant::now() < deadline, "the endpoint never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// `GET path`: the status code and body, or `None` when nothing answers.
    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("no answer on {path}"))
    }

    /// Polls `path` until it answers `status`.
    fn wait_for(&self, path: &str, status: u16) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (got, body) = self.get(path);
            if got == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still answers {got} ({body}), expected {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop_output(&mut self) -> Output {
        let child = self.child.take().expect("running");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        child.wait_with_output().expect("wait for the daemon")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            if !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(500));
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The run history, read with `extra` arguments (a log format).
fn history(workspace: &Workspace, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["history", "--json", "--limit", "100"];
    args.extend_from_slice(extra);
    json_lines(&workspace.run(&args))
}

fn wait_for_run(workspace: &Workspace, status: &str, extra: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    while !history(workspace, extra)
        .iter()
        .any(|run| run["status"] == status)
    {
        assert!(
            Instant::now() < deadline,
            "no {status} run: {:?}",
            history(workspace, extra)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the series `series` (name and labels, as printed).
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"))
        .parse()
        .expect("a number")
}

#[test]
fn metrics_count_a_successful_and_a_partial_scheduled_run_and_pass_promtool() {
    let workspace = Workspace::new();
    workspace.file("in/ok.csv", b"fine");
    // A file where a later source folder needs a folder: that copy fails.
    workspace.file("out/sub", b"in the way");
    workspace.write_config(
        "[[tasks]]\nid = \"copy\"\ntype = \"sync\"\nschedule = \"1s\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nrecursive = true\n",
    );
    let mut daemon = Daemon::start(&workspace, &[]);
    wait_for_run(&workspace, "succeeded", &[]);
    workspace.file("in/sub/blocked.csv", b"blocked");
    wait_for_run(&workspace, "partial", &[]);

    let (status, metrics) = daemon.get("/metrics");
    assert_eq!(status, 200, "{metrics}");
    let task = "task=\"copy\"";
    assert!(
        value(
            &metrics,
            &format!("syncdeck_runs_started_total{{{task},trigger=\"schedule\"}}")
        ) >= 2.0
    );
    assert!(
        value(
            &metrics,
            &format!("syncdeck_runs_finished_total{{{task},status=\"succeeded\"}}")
        ) >= 1.0
    );
    assert!(
        value(
            &metrics,
            &format!("syncdeck_runs_finished_total{{{task},status=\"partial\"}}")
        ) >= 1.0
    );
    assert!(
        value(
            &metrics,
            &format!("syncdeck_run_duration_seconds_count{{{task}}}")
        ) >= 2.0
    );
    assert_eq!(
        value(&metrics, &format!("syncdeck_files_copied_total{{{task}}}")),
        1.0,
        "ok.csv, once"
    );
    assert_eq!(
        value(&metrics, &format!("syncdeck_bytes_copied_total{{{task}}}")),
        4.0
    );
    assert!(
        value(
            &metrics,
            &format!("syncdeck_failed_items_pending{{{task}}}")
        ) >= 1.0
    );
    assert!(
        metrics.contains("syncdeck_build_info{version=\""),
        "{metrics}"
    );

    let (status, _) = daemon.get("/healthz");
    assert_eq!(status, 200);
    let (status, _) = daemon.get("/readyz");
    assert_eq!(status, 200);

    let scraped = workspace.path().join("scraped.prom");
    std::fs::write(&scraped, &metrics).expect("write the scrape");
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&scraped).expect("open the scrape"))
        .output()
    {
        Ok(checked) => assert!(
            checked.status.success(),
            "promtool check metrics: {}{}\n{metrics}",
            stdout(&checked),
            stderr(&checked)
        ),
        Err(error) => eprintln!(
            "SKIPPED promtool check: cannot run promtool ({error}); install the Debian package `prometheus` (tests/run.sh does)"
        ),
    }

    let output = daemon.stop_output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn readyz_follows_the_postgres_state_store_and_healthz_stays_up() {
    let cluster = PrivateCluster::start(&[]);
    let workspace = Workspace::new();
    let port = free_port();
    // The endpoint and the log format from the config, without flags.
    std::fs::write(
        workspace.config_path(),
        format!(
            "[engine]\nstate = \"{}\"\nlog_dir = \"logs\"\nmetrics_addr = \"127.0.0.1:{port}\"\nlog_format = \"json\"\n\n[[tasks]]\nid = \"hourly\"\ntype = \"sync\"\nschedule = \"1h\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
            cluster.url("postgres")
        ),
    )
    .expect("write config");
    let mut daemon = Daemon::start_configured(&workspace, port);
    daemon.wait_for("/readyz", 200);

    cluster.crash();
    let body = daemon.wait_for("/readyz", 503);
    assert!(body.contains("state store"), "{body}");
    assert_eq!(
        daemon.get("/healthz").0,
        200,
        "alive while the store is down"
    );

    cluster.restart();
    daemon.wait_for("/readyz", 200);
    assert_eq!(daemon.get("/healthz").0, 200);
    let (_, metrics) = daemon.get("/metrics");
    assert!(
        value(
            &metrics,
            "syncdeck_state_store_errors_total{operation=\"runs\"}"
        ) >= 1.0,
        "{metrics}"
    );

    let output = daemon.stop_output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let logs = workspace.logs();
    assert!(logs.contains("daemon stopped"), "{logs}");
    for line in logs.lines().chain(stderr(&output).lines()) {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "log_format = \"json\" wrote: {line}");
    }
}

const SECRET: &str = "s3cr3t-Planted-Json-77";

#[test]
fn json_logs_are_one_object_per_line_with_run_ids_and_no_secret() {
    let workspace = Workspace::new();
    let dead_port = free_port();
    // The secret is the S3 secret key and part of the source path, which
    // runs log and quote in errors.
    workspace.write_config(&format!(
        r#"
[[tasks]]
id = "leaky"
type = "sync"
schedule = "1s"
[tasks.properties]
source_path = "s3://bucket/${{credential:planted}}/data/"
destination_path = "out/"
[tasks.properties.sync_config]
source_config = {{ aws_access_key_id = "id", aws_secret_access_key = "${{credential:planted}}", endpoint = "http://127.0.0.1:{dead_port}" }}
"#
    ));
    let mut daemon = Daemon::start_with(
        &workspace,
        &["--log-format", "json"],
        &[("SYNCDECK_CREDENTIAL_PLANTED", SECRET)],
    );
    // The history commands log in the same folder: as JSON too.
    wait_for_run(&workspace, "failed", &["--log-format", "json"]);
    let output = daemon.stop_output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let logs = workspace.logs();
    let errors = stderr(&output);
    assert!(!logs.contains(SECRET), "secret in the log file: {logs}");
    assert!(!errors.contains(SECRET), "secret on stderr: {errors}");
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"))
            })
            .collect()
    };
    let file_lines = parse(&logs);
    let stderr_lines = parse(&errors);
    assert!(
        stderr_lines
            .iter()
            .any(|line| line["level"] == "WARN" || line["level"] == "ERROR"),
        "warnings and errors reach stderr as JSON: {errors}"
    );
    let run_ends: Vec<_> = stderr_lines
        .iter()
        .filter(|line| line["message"] == "run finished")
        .collect();
    assert!(
        !run_ends.is_empty()
            && run_ends
                .iter()
                .all(|line| line["task_id"].is_string() && line["run_id"].is_number()),
        "a run's end on stderr names its task and run: {errors}"
    );
    for line in file_lines.iter().chain(&stderr_lines) {
        for key in ["timestamp", "level", "message", "fields"] {
            assert!(line.get(key).is_some(), "no {key} in {line}");
        }
    }
    for message in ["run started", "run finished"] {
        let line = file_lines
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no `{message}` line in {logs}"));
        assert_eq!(line["task_id"], "leaky", "{line}");
        assert!(line["run_id"].as_i64().is_some_and(|id| id > 0), "{line}");
    }
    let finished = file_lines
        .iter()
        .find(|line| line["message"] == "run finished")
        .expect("checked above");
    assert_eq!(finished["fields"]["status"], "failed", "{finished}");
}

fn syncdeck() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_syncdeck"));
    command.env_remove("SYNCDECK_CONFIG").stdin(Stdio::null());
    command
}

#[test]
fn bash_completions_load_and_complete_subcommands() {
    let script = format!(
        r#"source <("{binary}" completions bash) || exit 1
COMP_WORDS=(syncdeck da); COMP_CWORD=1; COMP_LINE="syncdeck da"; COMP_POINT=${{#COMP_LINE}}
_syncdeck syncdeck da syncdeck
printf '%s\n' "${{COMPREPLY[@]}}"
COMP_WORDS=(syncdeck daemon --met); COMP_CWORD=2; COMP_LINE="syncdeck daemon --met"; COMP_POINT=${{#COMP_LINE}}
_syncdeck syncdeck --met daemon
printf '%s\n' "${{COMPREPLY[@]}}""#,
        binary = env!("CARGO_BIN_EXE_syncdeck")
    );
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "",
        "loading the completions printed errors"
    );
    let completed: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert!(completed.contains(&"daemon".to_string()), "{completed:?}");
    assert!(
        completed.contains(&"--metrics-addr".to_string()),
        "{completed:?}"
    );
    // Task ids come from the config given with -c.
    let workspace = Workspace::new();
    workspace.write_config(
        "[[tasks]]\nid = \"nightly_orders\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
    );
    let config = workspace.config_path();
    let script = format!(
        r#"source <("{binary}" completions bash) || exit 1
COMP_WORDS=("{binary}" -c "{config}" plan night); COMP_CWORD=4
_syncdeck_with_task_ids
printf '%s\n' "${{COMPREPLY[@]}}""#,
        binary = env!("CARGO_BIN_EXE_syncdeck"),
        config = config.display()
    );
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "nightly_orders",
        "a task id completes from the config"
    );
    for shell in ["zsh", "fish", "powershell"] {
        let output = syncdeck()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        assert!(stdout(&output).contains("metrics-addr"), "{shell}");
    }
}

#[test]
fn the_manual_page_renders_with_man() {
    let output = syncdeck().arg("man").output().expect("run syncdeck man");
    assert!(output.status.success(), "{}", stderr(&output));
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("syncdeck.1");
    std::fs::write(&page, &output.stdout).expect("write the page");
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("run man (Debian package man-db)");
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    let text = stdout(&rendered);
    for expected in ["NAME", "syncdeck", "SUBCOMMANDS", "daemon", "completions"] {
        assert!(text.contains(expected), "no {expected} in\n{text}");
    }
}

/// Checks TOML files against `syncdeck schema` with Python's `jsonschema`:
/// one `PATH: ok` or `PATH: ERROR …` line per file. `None` when Python
/// lacks `jsonschema` (tests/run.sh installs it).
fn check_with_schema(files: &[std::path::PathBuf]) -> Option<String> {
    let output = syncdeck()
        .arg("schema")
        .output()
        .expect("run syncdeck schema");
    assert!(output.status.success(), "{}", stderr(&output));
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = dir.path().join("syncdeck.schema.json");
    std::fs::write(&schema, &output.stdout).expect("write the schema");
    let script = r#"
import json, sys, tomllib
try:
    import jsonschema
except ImportError:
    sys.exit(3)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    with open(path, "rb") as file:
        document = tomllib.load(file)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        print(path + ": ERROR " + " | ".join(e.message for e in errors))
    else:
        print(path + ": ok")
"#;
    let checked = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .args(files)
        .output()
        .expect("run python3");
    if checked.status.code() == Some(3) {
        eprintln!(
            "SKIPPED schema check: Python's jsonschema is not installed (pip install jsonschema; tests/run.sh does)"
        );
        return None;
    }
    assert!(checked.status.success(), "{}", stderr(&checked));
    Some(stdout(&checked))
}

#[test]
fn the_json_schema_accepts_the_example_config_and_rejects_schema_errors() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("config.example.toml");
    let invalid = root.join("tests/invalid_configs");
    let scratch = tempfile::tempdir().expect("temp dir");
    let wrong_type = scratch.path().join("wrong_type.toml");
    std::fs::write(
        &wrong_type,
        "[[tasks]]\nid = \"a\"\ntype = \"sync\"\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\nrecursive = \"yes\"\n",
    )
    .expect("write");
    let bad_duration = scratch.path().join("bad_schedule.toml");
    std::fs::write(
        &bad_duration,
        "[[tasks]]\nid = \"a\"\ntype = \"sync\"\nschedule = { every = \"5m\", grace = \"1m\" }\n[tasks.properties]\nsource_path = \"in/\"\ndestination_path = \"out/\"\n",
    )
    .expect("write");
    // Each is also refused by the parser: the schema agrees with it.
    let rejected = [
        (invalid.join("unknown_key.toml"), "recusive"),
        (
            invalid.join("unknown_engine_key.toml"),
            "max_concurent_tasks",
        ),
        (invalid.join("unknown_type.toml"), "synk"),
        (invalid.join("missing_source_path.toml"), "source_path"),
        (wrong_type.clone(), "'yes' is not of type 'boolean'"),
        (bad_duration.clone(), "grace"),
    ];
    let mut files = vec![example.clone()];
    files.extend(rejected.iter().map(|(path, _)| path.clone()));
    let Some(report) = check_with_schema(&files) else {
        return;
    };
    let verdict = |path: &std::path::Path| {
        report
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{}: ", path.display())))
            .unwrap_or_else(|| panic!("no verdict for {} in {report}", path.display()))
            .to_string()
    };
    assert_eq!(verdict(&example), "ok", "{report}");
    for (path, hint) in &rejected {
        let said = verdict(path);
        assert!(
            said.starts_with("ERROR"),
            "{} accepted: {report}",
            path.display()
        );
        assert!(said.contains(hint), "{}: {said}", path.display());
        let parsed = syncdeck()
            .args(["validate", "-c"])
            .arg(path)
            .output()
            .expect("run validate");
        assert_eq!(parsed.status.code(), Some(2), "{}", path.display());
    }
}

#[test]
fn contrib_files_give_the_daemon_its_stop_wait_and_probe_its_endpoints() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib");
    let wait = syncdeck::cli::DAEMON_STOP_GRACE.as_secs();
    let setting = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key}"))
            .trim()
            .parse()
            .expect("a number of seconds")
    };
    let deployment =
        std::fs::read_to_string(root.join("kubernetes/deployment.yaml")).expect("deployment");
    assert!(
        setting(&deployment, "terminationGracePeriodSeconds:") > wait,
        "Kubernetes must wait longer than the daemon's {wait} s stop wait"
    );
    for probe in ["livenessProbe:", "readinessProbe:"] {
        assert!(deployment.contains(probe), "no {probe}");
    }
    assert!(deployment.contains("path: /healthz") && deployment.contains("path: /readyz"));
    let unit = std::fs::read_to_string(root.join("systemd/syncdeck.service")).expect("unit");
    assert!(
        setting(&unit, "TimeoutStopSec=") > wait,
        "systemd must wait longer than the daemon's {wait} s stop wait"
    );
    for line in [
        "Restart=on-failure",
        "User=syncdeck",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line} in the unit");
    }
}
