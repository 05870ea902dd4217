//! Test helpers: a scratch workspace with a config, the built binary, and
//! a real S3-compatible server (moto) on loopback. Each helper cleans up
//! after itself when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;

pub mod cloud;
pub mod openssh;
pub mod tmux;
pub mod vsftpd;

/// A scratch folder holding `syncdeck.toml`, its state and logs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("syncdeck.toml")
    }

    /// Writes the config: an `[engine]` section pointing into the
    /// workspace, followed by `tasks`.
    pub fn write_config(&self, tasks: &str) {
        let config =
            format!("[engine]\nstate = \"sqlite:state/state.db\"\nlog_dir = \"logs\"\n\n{tasks}");
        std::fs::write(self.config_path(), config).expect("write config");
    }

    /// Creates a file (and its folders) under the workspace.
    pub fn file(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Runs the binary with `-c syncdeck.toml` and `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run syncdeck")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_syncdeck"));
        command
            .current_dir(self.path())
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .env_remove("SYNCDECK_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs `syncdeck run TASK --json` and returns the run summaries.
    pub fn run_json(&self, tasks: &[&str]) -> (Output, Vec<serde_json::Value>) {
        let mut args = vec!["run", "--json"];
        args.extend_from_slice(tasks);
        let output = self.run(&args);
        let runs = json_lines(&output);
        (output, runs)
    }

    /// Every file under `relative`, as sorted relative paths.
    pub fn tree(&self, relative: &str) -> Vec<String> {
        let root = self.path().join(relative);
        let mut files: Vec<String> = walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_file())
            .map(|entry| {
                entry
                    .path()
                    .strip_prefix(&root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        files
    }

    /// All text in the log folder.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in walkdir::WalkDir::new(self.path().join("logs"))
            .into_iter()
            .filter_map(Result::ok)
        {
            if entry.file_type().is_file() {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses every stdout line that is a JSON object.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("bad JSON line {line}: {error}"))
        })
        .collect()
}

/// The one run summary for `task` among `runs`.
pub fn run_of<'a>(runs: &'a [serde_json::Value], task: &str) -> &'a serde_json::Value {
    runs.iter()
        .find(|run| run["task_id"] == task)
        .unwrap_or_else(|| panic!("no run of {task} in {runs:?}"))
}

pub fn counter(run: &serde_json::Value, name: &str) -> u64 {
    run["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {run}"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Reads a server's log (stderr) until `marker` and returns the port that
/// follows it; the rest of the log is drained so the server never blocks.
fn announced_port(child: &mut Child, marker: &str, what: &str) -> u16 {
    let stderr = child.stderr.take().expect("stderr");
    announced_port_in(stderr, child, marker, what)
}

/// [`announced_port`] for a server that announces on `log` (its stdout).
fn announced_port_in(
    log: impl Read + Send + 'static,
    child: &mut Child,
    marker: &str,
    what: &str,
) -> u16 {
    use std::io::BufRead;
    let stderr = log;
    let (sender, receiver) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    // The reader keeps draining the log after the port, so the server
    // never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split(marker.as_str()).nth(1)
                && let Some(sender) = sender.take()
            {
                let digits: String = rest
                    .trim()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let _ = sender.send(digits.parse::<u16>().map_err(|_| line.clone()));
            }
        }
    });
    match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(port)) => port,
        Ok(Err(line)) => panic!("no port in {what}'s log line: {line}"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            panic!("{what} did not say it was listening within 30 s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{what} stopped before listening")
        }
    }
}

/// A moto S3 server on loopback, stopped when dropped.
pub struct S3Server {
    _process: Process,
    pub endpoint: String,
    pub port: u16,
}

pub const S3_KEY_ID: &str = "test-access-key";
pub const S3_SECRET: &str = "test-secret-key-do-not-print";

impl S3Server {
    /// Starts on a port the server picks itself (read from its banner),
    /// so parallel tests never race for a port.
    pub fn start() -> Self {
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto (pip install 'moto[server]')");
        let port = announced_port(&mut child, "Running on http://127.0.0.1:", "moto");
        Self {
            _process: Process(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// Creates a bucket with a plain `PUT /bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to S3");
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket {bucket}: {response}"
        );
    }

    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(S3_KEY_ID)
                .with_secret_access_key(S3_SECRET)
                .build()
                .expect("S3 client"),
        )
    }

    /// The `sync_config` lines for this server (inline-table form).
    pub fn options(&self) -> String {
        format!(
            "{{ aws_access_key_id = \"{S3_KEY_ID}\", aws_secret_access_key = \"{S3_SECRET}\", region_name = \"us-east-1\", endpoint = \"{}\" }}",
            self.endpoint
        )
    }

    /// Sorted keys under `prefix` with their sizes.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let store = self.store(bucket);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use futures::TryStreamExt;
            let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
            let mut objects: Vec<(String, u64)> = store
                .list(prefix.as_ref())
                .map_ok(|meta| (meta.location.to_string(), meta.size))
                .try_collect()
                .await
                .expect("list bucket");
            objects.sort();
            objects
        })
    }

    pub fn put(&self, bucket: &str, key: &str, contents: &[u8]) {
        let store = self.store(bucket);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime
            .block_on(store.put(&ObjectPath::from(key), contents.to_vec().into()))
            .expect("put object");
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let store = self.store(bucket);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let result = store.get(&ObjectPath::from(key)).await.expect("get object");
            result.bytes().await.expect("read object").to_vec()
        })
    }
}

impl S3Server {
    /// Multipart uploads started and neither completed nor aborted.
    pub fn pending_uploads(&self, bucket: &str) -> usize {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to S3");
        write!(
            stream,
            "GET /{bucket}?uploads HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "list uploads: {response}"
        );
        response.matches("<Upload>").count()
    }
}

/// Polls `syncdeck history --json` until the newest run of `task` is
/// running with some bytes done (the engine saves counters every second).
pub fn wait_for_bytes_in_flight(workspace: &Workspace, task: &str) {
    wait_for_bytes_in_flight_of(workspace, task, None);
}

/// As [`wait_for_bytes_in_flight`], for a run started as `child`: if the
/// child exits first, the panic shows what it printed.
pub fn wait_for_bytes_in_flight_of(
    workspace: &Workspace,
    task: &str,
    mut child: Option<&mut std::process::Child>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = workspace.run(&["history", "--json", task]);
        let runs = json_lines(&output);
        if let Some(run) = runs.first()
            && run["status"] == "running"
            && run["counters"]["bytes_done"].as_u64().unwrap_or(0) > 0
        {
            return;
        }
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let mut printed = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut printed);
            }
            panic!("the run ended ({status}) before any bytes moved: {printed}");
        }
        assert!(
            Instant::now() < deadline,
            "the run never got going: {runs:?} (history printed: {})",
            stderr(&output)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Creates a sparse file of `size` bytes (reads as zeros, costs no disk).
pub fn sparse_file(path: &Path, size: u64) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    file.set_len(size).expect("set_len");
}

/// Where the tests' PostgreSQL server is: `$SYNCDECK_TEST_POSTGRES` (a
/// private cluster tests/run.sh starts), else the local server on
/// 127.0.0.1:5432 as user postgres (a plain `cargo test`).
pub fn postgres_base_url() -> String {
    std::env::var("SYNCDECK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!("cannot reach the test PostgreSQL at {url}: {error} (see .ci/run)")
        });
    tokio::spawn(connection);
    client
}

/// Runs SQL on the database at `url`.
pub fn execute_at(url: &str, sql: &str) {
    block_on(async {
        let client = connect(url).await;
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    });
}

/// The first column of the first row of `sql` on the database at `url`, as text.
pub fn scalar_at(url: &str, sql: &str) -> String {
    block_on(async {
        let client = connect(url).await;
        let messages = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
        messages
            .iter()
            .find_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some(row.get(0).unwrap_or("NULL").to_string())
                }
                _ => None,
            })
            .unwrap_or_default()
    })
}

/// A database of its own for one test, dropped afterwards.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create(hint: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "syncdeck_{hint}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let base = postgres_base_url();
        block_on(async {
            let admin = connect(&format!("{base}/postgres?sslmode=disable")).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
        });
        Self {
            url: format!("{base}/{name}?sslmode=disable"),
            name,
        }
    }

    pub fn execute(&self, sql: &str) {
        execute_at(&self.url, sql);
    }

    /// The first column of the first row, as text.
    pub fn scalar(&self, sql: &str) -> String {
        scalar_at(&self.url, sql)
    }

    pub fn count(&self, sql: &str) -> u64 {
        self.scalar(sql)
            .parse()
            .unwrap_or_else(|_| panic!("not a count: {sql}"))
    }

    /// Rows of `source` missing from `target`, and of `target` missing from
    /// `source` (both zero when the tables hold the same rows).
    pub fn except_both_ways(&self, source: &str, target: &str) -> (u64, u64) {
        (
            self.count(&format!(
                "SELECT count(*) FROM (SELECT * FROM {source} EXCEPT SELECT * FROM {target}) x"
            )),
            self.count(&format!(
                "SELECT count(*) FROM (SELECT * FROM {target} EXCEPT SELECT * FROM {source}) x"
            )),
        )
    }
}

/// The watermark a workspace's SQLite state store keeps for task `t`.
pub fn watermark(workspace: &Workspace) -> Option<String> {
    let connection =
        rusqlite::Connection::open(workspace.path().join("state/state.db")).expect("state db");
    connection
        .query_row(
            "SELECT value FROM watermarks WHERE task_id = 't'",
            [],
            |row| row.get(0),
        )
        .ok()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let base = postgres_base_url();
        let name = self.name.clone();
        block_on(async move {
            let admin = connect(&format!("{base}/postgres?sslmode=disable")).await;
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        });
    }
}

/// A scratch copy of the shipped demo: `config.example.toml` and `assets/`.
pub fn demo_copy() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().expect("temp dir");
    for entry in walkdir::WalkDir::new(root.join("assets"))
        .into_iter()
        .filter_map(Result::ok)
    {
        let target = scratch
            .path()
            .join(entry.path().strip_prefix(root).expect("under root"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    std::fs::copy(
        root.join("config.example.toml"),
        scratch.path().join("config.example.toml"),
    )
    .expect("copy config");
    scratch
}

/// Starts `tests/support/SCRIPT 0`: the server binds a free loopback port
/// itself and prints it, so parallel tests never race for a port.
fn spawn_support_server(script: &str) -> (Child, u16) {
    use std::io::BufRead;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let mut child = Command::new("python3")
        .arg(path)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {script}: {error}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the port");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{script} printed no port: {line:?}"));
    (child, port)
}

/// The fake Airbyte API (tests/support/fake_airbyte.py) on loopback.
pub struct FakeAirbyte {
    _process: Process,
    pub url: String,
    port: u16,
}

pub const AIRBYTE_CLIENT_ID: &str = "syncdeck-test-client";
pub const AIRBYTE_CLIENT_SECRET: &str = "s3cret-client-value";

impl FakeAirbyte {
    pub fn start() -> Self {
        let (child, port) = spawn_support_server("fake_airbyte.py");
        Self {
            _process: Process(child),
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// The requests it received, as `METHOD /path`.
    pub fn calls(&self) -> Vec<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            stream,
            "GET /_calls HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("[]");
        serde_json::from_str(body).expect("calls JSON")
    }

    /// A task for `connection` (`ok`, `fail` or `slow` in the fake).
    pub fn task(&self, id: &str, connection: &str, extra: &str) -> String {
        format!(
            "[[tasks]]\nid = \"{id}\"\ntype = \"airbyte\"\n[tasks.properties]\napi_url = \"{}\"\nconnection_id = \"{connection}\"\n\
             client_id = \"{AIRBYTE_CLIENT_ID}\"\nclient_secret = \"${{credential:airbyte_secret}}\"\nwait_seconds = 0.05\n{extra}\n",
            self.url
        )
    }
}

/// The fake paginated API (tests/support/fake_api.py) on loopback.
pub struct FakeApi {
    _process: Process,
    pub url: String,
    port: u16,
}

pub const API_TOKEN: &str = "api-token-for-tests-77";

impl FakeApi {
    pub fn start() -> Self {
        let (child, port) = spawn_support_server("fake_api.py");
        Self {
            _process: Process(child),
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// The paths with queries the API was asked for, in order.
    pub fn requests(&self) -> Vec<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            stream,
            "GET /_requests HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("[]");
        serde_json::from_str(body).expect("requests JSON")
    }

    /// Changes the API's behaviour: `fail_page=2&fail_times=2`, `heal=1`, `touch=1,2&add=3`.
    pub fn control(&self, query: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            stream,
            "GET /_control?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "{response}"
        );
    }
}

/// A real FTP server (pyftpdlib) on loopback serving `root`, with write access.
pub struct FtpServer {
    _process: Process,
    pub port: u16,
    pub root: tempfile::TempDir,
}

pub const FTP_USER: &str = "syncdeck";
pub const FTP_PASSWORD: &str = "ftp-pass-for-tests-9";

impl FtpServer {
    /// Starts on a port the server picks itself (reading it from its log),
    /// so parallel tests never race for a port.
    pub fn start() -> Self {
        Self::launch(&[])
    }

    /// An FTPS server (explicit TLS required on control and data
    /// connections) with the certificate of `certificates`.
    pub fn start_tls(certificates: &TestCertificates) -> Self {
        let (key, certificate) = (
            certificates.server_key.display().to_string(),
            certificates.server_certificate.display().to_string(),
        );
        Self::launch(&[
            "--tls",
            "--keyfile",
            &key,
            "--certfile",
            &certificate,
            "--tls-control-required",
            "--tls-data-required",
        ])
    }

    fn launch(extra: &[&str]) -> Self {
        let root = tempfile::tempdir().expect("ftp root");
        let mut child = Command::new("python3")
            .args([
                "-m",
                "pyftpdlib",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "-u",
                FTP_USER,
                "-P",
                FTP_PASSWORD,
                "-w",
            ])
            .args(extra)
            .arg("-d")
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pyftpdlib (pip install pyftpdlib pyopenssl)");
        let port = announced_port(&mut child, "server on 127.0.0.1:", "pyftpdlib");
        Self {
            _process: Process(child),
            port,
            root,
        }
    }

    /// The `sync_config` side for this server (inline table).
    pub fn options(&self) -> String {
        format!("{{ username = \"{FTP_USER}\", password = \"${{credential:ftp_password}}\" }}")
    }
}

/// A real SFTP server (`rclone serve sftp`) on loopback serving `root`,
/// with a throwaway host key whose fingerprint the config pins.
pub struct SftpServer {
    _process: Process,
    pub port: u16,
    pub root: tempfile::TempDir,
    pub fingerprint: String,
    _keys: tempfile::TempDir,
}

pub const SFTP_USER: &str = "syncdeck";
pub const SFTP_PASSWORD: &str = "sftp-pass-for-tests-5";

impl SftpServer {
    pub fn start() -> Self {
        let keys = tempfile::tempdir().expect("keys");
        let key = keys.path().join("host_key");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(made.success(), "ssh-keygen failed");
        let listed = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .expect("ssh-keygen -l");
        let fingerprint = String::from_utf8_lossy(&listed.stdout)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string();
        let root = tempfile::tempdir().expect("sftp root");
        let mut child = Command::new("rclone")
            .args(["serve", "sftp"])
            .arg(root.path())
            .args([
                "--addr",
                "127.0.0.1:0",
                "--user",
                SFTP_USER,
                "--pass",
                SFTP_PASSWORD,
                "--key",
            ])
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rclone serve sftp (apt-get install rclone)");
        let port = announced_port(
            &mut child,
            "SFTP server listening on 127.0.0.1:",
            "rclone serve sftp",
        );
        Self {
            _process: Process(child),
            port,
            root,
            fingerprint,
            _keys: keys,
        }
    }

    /// The `sync_config` side for this server (inline table).
    pub fn options(&self) -> String {
        format!(
            "{{ username = \"{SFTP_USER}\", password = \"${{credential:sftp_password}}\", host_key_fingerprint = \"{}\" }}",
            self.fingerprint
        )
    }
}

/// A PostgreSQL server of a test's own, made with `initdb` and run with
/// `pg_ctl` on a free loopback port, for tests that crash and restart it.
/// As root, the server runs as the `postgres` user (PostgreSQL refuses
/// root). Stopped on drop.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivateCluster {
    /// A new cluster with `settings` (`name=value`) added to its configuration.
    pub fn start(settings: &[&str]) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("PostgreSQL's server binaries (initdb, pg_ctl) are installed; .ci/run installs them");
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = Self {
            port: free_port(),
            dir,
            bin,
        };
        if Self::as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown the cluster's directory to postgres"
            );
        }
        let data = cluster.data();
        cluster.pg(
            &["initdb", "-U", "postgres", "--auth=trust", "-D"],
            &[&data],
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.dir.path().join("data/postgresql.conf"))
            .expect("postgresql.conf");
        writeln!(
            conf,
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'",
            cluster.port,
            cluster.dir.path().display()
        )
        .expect("write postgresql.conf");
        for setting in settings {
            writeln!(conf, "{setting}").expect("write postgresql.conf");
        }
        cluster.restart();
        cluster
    }

    fn as_root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// One of the server's programs, run as `postgres` when root.
    fn program(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if Self::as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn pg(&self, program_and_args: &[&str], more: &[&str]) {
        let (name, args) = program_and_args.split_first().expect("a program");
        let output = self
            .program(name)
            .args(args)
            .args(more)
            .output()
            .expect("run a PostgreSQL program");
        assert!(
            output.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Stops the server the way a crash does: no shutdown checkpoint, and
    /// whatever WAL is still in its buffers is gone.
    pub fn crash(&self) {
        let data = self.data();
        self.pg(&["pg_ctl", "stop", "-m", "immediate", "-D"], &[&data]);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn restart(&self) {
        let data = self.data();
        let log = self.dir.path().join("log").display().to_string();
        self.pg(&["pg_ctl", "start", "-w", "-l"], &[&log, "-D", &data]);
    }

    pub fn execute(&self, database: &str, sql: &str) {
        execute_at(&self.url(database), sql);
    }

    pub fn scalar(&self, database: &str, sql: &str) -> String {
        scalar_at(&self.url(database), sql)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .program("pg_ctl")
            .args(["stop", "-m", "immediate", "-D", &data])
            .output();
    }
}

/// A test server's process, killed and reaped when dropped.
struct Process(Child);

/// A helper process a test starts itself (an SSH agent), killed and
/// reaped when dropped.
pub struct TestProcess(Process);

impl TestProcess {
    pub fn spawn(command: &mut Command) -> Self {
        Self(Process(command.spawn().expect("spawn")))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A throwaway certificate authority and a server certificate it signed
/// for 127.0.0.1, made with the `openssl` command.
pub struct TestCertificates {
    _dir: tempfile::TempDir,
    pub ca_certificate: PathBuf,
    pub server_certificate: PathBuf,
    pub server_key: PathBuf,
}

impl TestCertificates {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = |name: &str| dir.path().join(name);
        std::fs::write(
            at("server.ext"),
            "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n",
        )
        .expect("write extensions");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=syncdeck test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Self {
            ca_certificate: at("ca.pem"),
            server_certificate: at("server.pem"),
            server_key: at("server.key"),
            _dir: dir,
        }
    }
}

/// Writes a file and sets its modification time `age` in the past.
pub fn write_aged(path: &Path, contents: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(std::time::SystemTime::now() - age))
        .expect("age the file");
}
