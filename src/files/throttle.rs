//! A shared byte-rate limit (`bwlimit`) for the transfers of one run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Throttle {
    bytes_per_second: u64,
    /// When the run started and how many bytes have been let through since;
    /// a transfer waits until the rate since the start is within the limit.
    progress: Mutex<(Instant, u64)>,
}

impl Throttle {
    pub(crate) fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            progress: Mutex::new((Instant::now(), 0)),
        }
    }

    /// The largest piece a transfer should pass at once: about a tenth of a
    /// second's bytes, so a slow limit still moves the count several times
    /// a second (a 4 KiB file at 2 KiB/s in pieces, not in one jump).
    pub(crate) fn piece(&self) -> usize {
        usize::try_from(self.bytes_per_second / 10)
            .unwrap_or(usize::MAX)
            .clamp(256, super::PROGRESS_PIECE)
    }

    /// Accounts for `bytes` and waits as long as the limit requires.
    pub(crate) async fn pass(&self, bytes: u64) {
        let wait = {
            let mut progress = match self.progress.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            progress.1 += bytes;
            let due = progress.0
                + Duration::from_secs_f64(progress.1 as f64 / self.bytes_per_second as f64);
            due.saturating_duration_since(Instant::now())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
