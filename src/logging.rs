//! Logging setup: `tracing` events go to a daily rolling file in `log_dir`
//! and, for headless runs, to stderr. Every line passes through secret
//! redaction before it is written. Task events carry `task_id` and
//! `run_id` through the `run` span the engine opens around each run.

use std::io::{self, Write};
use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::redact;

/// Keeps the background log writer alive; dropping it flushes the file.
pub struct LoggingGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// What reaches stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrLogs {
    Off,
    Warnings,
    Info,
}

/// A writer that masks registered secrets in whatever passes through it.
pub struct RedactingWriter<W>(pub W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[derive(Clone, Copy)]
struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = RedactingWriter<io::Stderr>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(io::stderr())
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the file's level
/// (default `info`). A log folder that cannot be created is reported on
/// stderr and file logging is skipped, rather than failing the run.
pub fn init(log_dir: &Path, stderr: StderrLogs) -> LoggingGuard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (file_layer, guard) = match std::fs::create_dir_all(log_dir) {
        Ok(()) => {
            let appender = tracing_appender::rolling::daily(log_dir, "syncdeck.log");
            let (writer, guard) = tracing_appender::non_blocking(RedactingWriter(appender));
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter_boxed(filter());
            (Some(layer), Some(guard))
        }
        Err(error) => {
            eprintln!(
                "syncdeck: cannot create log folder {}: {error}; logging to the file is off",
                log_dir.display()
            );
            (None, None)
        }
    };
    let stderr_layer = match stderr {
        StderrLogs::Off => None,
        level => {
            let filter = if level == StderrLogs::Info {
                "info"
            } else {
                "warn"
            };
            let ansi = std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&io::stderr());
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_target(false)
                    .with_writer(RedactedStderr)
                    .with_filter_boxed(EnvFilter::new(filter)),
            )
        }
    };
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LoggingGuard { _file: guard }
}

/// Boxes a layer with its filter, so optional layers have one type.
trait BoxedFilter<S> {
    fn with_filter_boxed(
        self,
        filter: EnvFilter,
    ) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>;
}

impl<S, L> BoxedFilter<S> for L
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: tracing_subscriber::Layer<S> + Send + Sync + 'static,
{
    fn with_filter_boxed(
        self,
        filter: EnvFilter,
    ) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync> {
        Box::new(tracing_subscriber::Layer::with_filter(self, filter))
    }
}
