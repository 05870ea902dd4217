//! A real OpenSSH server (`sshd`) on loopback for the SFTP tests: its own
//! config, host key and port, key-only login for the current user (the
//! authorized keys in its temp folder), OpenSSH's `sftp-server` with its
//! operations logged.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Process, free_port};

pub struct OpenSshServer {
    _process: Process,
    pub port: u16,
    /// A folder for the test's files; SFTP paths are absolute, so a
    /// location is `sftp://127.0.0.1:PORT{root}/…`.
    pub root: tempfile::TempDir,
    /// The server's config, host key and authorized keys.
    dir: tempfile::TempDir,
    /// The host key's fingerprint, `SHA256:…` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The user the tests log in as (the one running them).
    pub user: String,
}

/// Makes a key pair with `ssh-keygen` (`kind`: ed25519, rsa, ecdsa;
/// `pem`: the legacy PEM format instead of OpenSSH's) and returns the
/// private key's path; the public key is next to it (`.pub`).
pub fn make_key(folder: &Path, name: &str, kind: &str, passphrase: &str, pem: bool) -> PathBuf {
    let path = folder.join(name);
    let mut command = Command::new("ssh-keygen");
    command.args(["-q", "-t", kind, "-N", passphrase, "-C", name]);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    if pem {
        command.args(["-m", "PEM"]);
    }
    let made = command.arg("-f").arg(&path).status().expect("ssh-keygen");
    assert!(made.success(), "ssh-keygen failed for {name}");
    path
}

fn sshd_program() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("sshd not found (apt-get install openssh-server)")
}

impl OpenSshServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("sshd dir");
        let host_key = make_key(dir.path(), "host_ed25519", "ed25519", "", false);
        let listed = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(host_key.with_extension("pub"))
            .output()
            .expect("ssh-keygen -l");
        let fingerprint = String::from_utf8_lossy(&listed.stdout)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string();
        std::fs::write(dir.path().join("authorized_keys"), "").expect("authorized_keys");
        // sshd's privilege separation needs this folder; it is empty.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let user = String::from_utf8_lossy(
            &Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .trim()
        .to_string();
        // OpenSSH's sftp-server, logging each operation (`-l INFO`) to a
        // file the tests read (`-e`: to stderr).
        let sftp_server = dir.path().join("sftp-server.sh");
        std::fs::write(
            &sftp_server,
            format!(
                "#!/bin/sh\nexec /usr/lib/openssh/sftp-server -e -l INFO 2>>{}\n",
                dir.path().join("sftp.log").display()
            ),
        )
        .expect("sftp-server wrapper");
        let made_executable = Command::new("chmod")
            .arg("755")
            .arg(&sftp_server)
            .status()
            .expect("chmod");
        assert!(made_executable.success(), "chmod failed");
        // sshd cannot pick its own port and say which; a port taken between
        // free_port and the bind is retried.
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile none\n\
                     AuthorizedKeysFile {keys}\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                     Subsystem sftp {sftp_server}\nLogLevel VERBOSE\n",
                    host_key = host_key.display(),
                    keys = dir.path().join("authorized_keys").display(),
                    sftp_server = sftp_server.display(),
                ),
            )
            .expect("sshd_config");
            let log = dir.path().join("sshd.log");
            let _ = std::fs::remove_file(&log);
            let child = Command::new(sshd_program())
                .args(["-D", "-f"])
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sshd");
            let mut process = Process(child);
            let listening = format!("Server listening on 127.0.0.1 port {port}.");
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(10) {
                if std::fs::read_to_string(&log).is_ok_and(|text| text.contains(&listening)) {
                    return Self {
                        _process: process,
                        port,
                        root: tempfile::tempdir().expect("sftp root"),
                        dir,
                        fingerprint,
                        user,
                    };
                }
                if let Ok(Some(_)) = process.0.try_wait() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            drop(process);
        }
        panic!("sshd did not start on a free loopback port in 5 tries");
    }

    /// What the SFTP server did, one operation a line (`open`, `rename`,
    /// `posix-rename`, …).
    pub fn sftp_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sftp.log")).unwrap_or_default()
    }

    /// sshd's own log (LogLevel VERBOSE): one `Accepted publickey` line
    /// per login.
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Lets the key at `private_key` (its `.pub` next to it) log in.
    pub fn authorize(&self, private_key: &Path) {
        let public = std::fs::read_to_string(private_key.with_extension("pub")).expect("pub key");
        let path = self.dir.path().join("authorized_keys");
        let mut keys = std::fs::read_to_string(&path).expect("authorized_keys");
        keys.push_str(&public);
        std::fs::write(path, keys).expect("authorized_keys");
    }

    /// A known_hosts line for this server (`[127.0.0.1]:PORT ssh-ed25519
    /// …`), hashed as `ssh-keygen -H` writes it when `hashed`.
    pub fn known_hosts_line(&self, hashed: bool) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_ed25519.pub"))
            .expect("host pub key");
        let mut parts = public.split_whitespace();
        let (kind, key) = (parts.next().expect("kind"), parts.next().expect("key"));
        let line = format!("[127.0.0.1]:{} {kind} {key}\n", self.port);
        if !hashed {
            return line;
        }
        let scratch = tempfile::tempdir().expect("scratch");
        let file = scratch.path().join("known_hosts");
        std::fs::write(&file, &line).expect("known_hosts");
        let status = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssh-keygen -H");
        assert!(status.success(), "ssh-keygen -H failed");
        let hashed = std::fs::read_to_string(&file).expect("hashed known_hosts");
        assert!(hashed.starts_with("|1|"), "not hashed: {hashed}");
        hashed
    }

    /// `sftp://127.0.0.1:PORT/<root>/<folder>/`.
    pub fn url(&self, folder: &str) -> String {
        format!(
            "sftp://127.0.0.1:{}{}/{folder}/",
            self.port,
            self.root.path().display()
        )
    }
}
