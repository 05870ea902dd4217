//! A tmux server of the test's own, to drive the real binary in a real
//! terminal (`send-keys`, `capture-pane`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own (its own socket), killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(directory: &Path, width: u16, height: u16) -> Self {
        let socket = format!(
            "syncdeck-test-{}-{}",
            std::process::id(),
            super::free_port()
        );
        let tmux = Self { socket };
        let status = Command::new("tmux")
            .args([
                "-L",
                &tmux.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
            ])
            .args(["-x", &width.to_string(), "-y", &height.to_string(), "-c"])
            .arg(directory)
            .args(["env", "PS1=shell$ ", "sh"])
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(status.success(), "tmux did not start");
        tmux
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn type_line(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", line]);
        self.tmux(&["send-keys", "-t", "main", "Enter"]);
    }

    /// Types `text` as it is (no key names), then waits a moment.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", text]);
        std::thread::sleep(Duration::from_millis(60));
    }

    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.tmux(&["send-keys", "-t", "main", key]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    /// Waits until the screen shows `text`; fails with the screen if not.
    pub fn wait_for(&self, text: &str, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: expected `{text}` on screen, saw:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn alternate_screen_and_cursor(&self) -> (String, String) {
        let flags = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "main",
            "#{alternate_on} #{cursor_flag}",
        ]);
        let mut parts = flags.split_whitespace().map(str::to_string);
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
