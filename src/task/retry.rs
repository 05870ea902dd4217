//! The one retry rule for files, batches and pages: attempts with a
//! doubling, capped backoff, each failure told to watchers, the wait cut
//! short by a cancel.

use std::time::Duration;

use super::RunContext;

/// The longest wait between two attempts, however many retries.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before attempt `attempt + 1`: `base`, doubling each attempt,
/// at most [`MAX_BACKOFF`] (and never an overflow, whatever `max_retries`).
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again (the backoff has been waited).
    Again,
    /// Out of attempts, or the error is not worth retrying: record it.
    GiveUp { attempts: u32 },
    /// The run was cancelled meanwhile.
    Cancelled,
}

/// Counts the attempts at one item (a file, a batch, a page).
///
/// Callers loop: make an attempt, and on an error ask [`Retry::failed`]
/// what comes next. The loop stays in the caller, so an attempt can borrow
/// whatever it needs mutably.
pub(crate) struct Retry<'a> {
    context: &'a RunContext,
    /// What is retried (`file`, `batch`, `page`), for the log line.
    what: &'static str,
    /// What the failure events and log lines call the item.
    label: &'a str,
    max_attempts: u32,
    base: Duration,
    attempt: u32,
}

impl<'a> Retry<'a> {
    pub(crate) fn new(
        context: &'a RunContext,
        what: &'static str,
        label: &'a str,
        max_retries: u32,
        base: Duration,
    ) -> Self {
        Self {
            context,
            what,
            label,
            max_attempts: max_retries.saturating_add(1),
            base,
            attempt: 0,
        }
    }

    /// Starts the next attempt; returns its number (from 1).
    pub(crate) fn begin(&mut self) -> u32 {
        self.attempt += 1;
        self.attempt
    }

    /// Tells watchers that the current attempt failed with `message`
    /// (already redacted), then waits the backoff when another attempt is
    /// due. `transient` false gives up at once.
    pub(crate) async fn failed(&self, message: &str, transient: bool) -> Next {
        let context = self.context;
        if context.cancel.is_cancelled() {
            return Next::Cancelled;
        }
        let attempt = self.attempt;
        let retry_in =
            (transient && attempt < self.max_attempts).then(|| backoff(self.base, attempt));
        tracing::warn!(
            item = self.label,
            attempt,
            max_attempts = self.max_attempts,
            error = %message,
            "{} failed",
            self.what
        );
        context.emit_item_failed(self.label, message, attempt, self.max_attempts, retry_in);
        match retry_in {
            Some(wait) => {
                let _waiting = RetryWait::new(context);
                tokio::select! {
                    _ = context.cancel.cancelled() => Next::Cancelled,
                    _ = tokio::time::sleep(wait) => Next::Again,
                }
            }
            None => Next::GiveUp { attempts: attempt },
        }
    }
}

/// Counts an item as waiting out its backoff while it lives.
struct RetryWait<'a>(&'a RunContext);

impl<'a> RetryWait<'a> {
    fn new(context: &'a RunContext) -> Self {
        context.update_counters(|counters| counters.retry_waits += 1);
        Self(context)
    }
}

impl Drop for RetryWait<'_> {
    fn drop(&mut self) {
        self.0.update_counters(|counters| {
            counters.retry_waits = counters.retry_waits.saturating_sub(1)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_never_overflows() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_millis(500));
        assert_eq!(backoff(base, 3), Duration::from_secs(2));
        assert_eq!(
            backoff(base, 1000),
            MAX_BACKOFF,
            "huge max_retries wait at most five minutes"
        );
    }
}
