//! A real vsftpd on loopback for the FTP tests: a throwaway local user
//! (`syncdeck-ftp`, made once per machine) who lands in the server's
//! `root` folder, passive ports on loopback. vsftpd offers no MLSD, so
//! these tests go through LIST and MDTM.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Process, free_port};

pub const VSFTPD_USER: &str = "syncdeck-ftp";
pub const VSFTPD_PASSWORD: &str = "vsftpd-pass-for-tests-3";

pub struct VsftpdServer {
    _process: Process,
    pub port: u16,
    /// The folder the user lands in after logging in.
    pub root: tempfile::TempDir,
    /// Its config and log.
    dir: tempfile::TempDir,
}

/// Creates the test user once; parallel tests wait on one lock.
fn ensure_user() {
    let script = format!(
        "id -u {VSFTPD_USER} >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/bash {VSFTPD_USER}; \
         echo '{VSFTPD_USER}:{VSFTPD_PASSWORD}' | chpasswd"
    );
    let status = Command::new("flock")
        .args(["/tmp/syncdeck-test-ftp-user.lock", "sh", "-c", &script])
        .status()
        .expect("flock/useradd");
    assert!(status.success(), "could not create the FTP test user");
}

fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = [0u8; 3];
    stream.read_exact(&mut greeting).is_ok() && &greeting == b"220"
}

impl VsftpdServer {
    pub fn start() -> Self {
        ensure_user();
        let root = tempfile::tempdir().expect("ftp root");
        let dir = tempfile::tempdir().expect("vsftpd dir");
        std::fs::create_dir_all("/var/run/vsftpd/empty").expect("secure_chroot_dir");
        for _ in 0..5 {
            let port = free_port();
            let passive = free_port();
            let config = dir.path().join("vsftpd.conf");
            std::fs::write(
                &config,
                format!(
                    "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
                     background=NO\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\n\
                     local_umask=022\nlocal_root={root}\npasv_enable=YES\npasv_address=127.0.0.1\n\
                     pasv_min_port={passive}\npasv_max_port={last}\nseccomp_sandbox=NO\n\
                     secure_chroot_dir=/var/run/vsftpd/empty\npam_service_name=vsftpd\n\
                     userlist_enable=NO\nsyslog_enable=NO\nxferlog_enable=YES\n\
                     xferlog_std_format=NO\nvsftpd_log_file={log}\n",
                    root = root.path().display(),
                    log = dir.path().join("vsftpd.log").display(),
                    last = passive.saturating_add(20),
                ),
            )
            .expect("vsftpd.conf");
            let child = Command::new("/usr/sbin/vsftpd")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start vsftpd (apt-get install vsftpd)");
            let mut process = Process(child);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if answers(port) {
                    let server = Self {
                        _process: process,
                        port,
                        root,
                        dir,
                    };
                    server.hand_over();
                    return server;
                }
                if let Ok(Some(_)) = process.0.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(process);
        }
        panic!("vsftpd did not start on a free loopback port in 5 tries");
    }

    /// Gives everything under `root` to the FTP user, so files a test
    /// wrote as another user can be replaced over FTP.
    pub fn hand_over(&self) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(VSFTPD_USER)
            .arg(self.root.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown failed");
    }

    /// Writes a file under `root` (as the FTP user's).
    pub fn file(&self, relative: &str, contents: &[u8]) {
        let path = self.root.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        self.hand_over();
    }

    /// Successful logins so far (vsftpd logs each as `OK LOGIN`).
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("vsftpd.log"))
            .unwrap_or_default()
            .matches("OK LOGIN")
            .count()
    }

    pub fn path(&self, relative: &str) -> std::path::PathBuf {
        self.root.path().join(relative)
    }

    /// The `sync_config` side for this server (inline table).
    pub fn options(&self) -> String {
        format!("{{ username = \"{VSFTPD_USER}\", password = \"${{credential:ftp_password}}\" }}")
    }
}
