//! Logging setup: `tracing` events go to a daily rolling file in `log_dir`
//! and either to stderr (headless runs) or to a bounded in-memory buffer
//! (the console's log view; nothing is written to the terminal behind the
//! UI). Every line passes through secret redaction before it is kept.
//! Task events carry `task_id` and `run_id` through the `run` span the
//! engine opens around each run. With `log_format = "json"` the file and
//! stderr get one JSON object per line instead ([`json`]). File lines
//! name the process that wrote them (`pid`), since every process on a
//! config appends to the same daily file; the console follows that file
//! for other processes' lines ([`tail`]).

mod json;
pub mod tail;

use std::io::{self, Write};
use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, redact};

/// Keeps the background log writer alive; dropping it flushes the file.
pub struct LoggingGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Where log lines go besides the file.
#[derive(Debug, Clone)]
pub enum StderrLogs {
    Off,
    Warnings,
    Info,
    /// Into the console's buffer (and never to the terminal).
    Buffer(LogBuffer),
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
/// (default `info`). A log folder that cannot be created or written is
/// reported in one line on stderr and file logging is skipped, rather than
/// failing the command: warnings then still reach stderr.
pub fn init(log_dir: &Path, stderr: StderrLogs, format: LogFormat) -> LoggingGuard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (file_layer, guard) = match open_log_file(log_dir) {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(RedactingWriter(appender));
            let layer = match format {
                LogFormat::Text => tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(WithPid(tracing_subscriber::fmt::format()))
                    .with_writer(writer)
                    .with_filter_boxed(filter()),
                LogFormat::Json => json::layer(writer).with_filter_boxed(filter()),
            };
            (Some(layer), Some(guard))
        }
        Err(problem) => {
            let warning = format!(
                "cannot write logs in {}: {problem}; logging to stderr only (set [engine] log_dir to a writable folder)",
                log_dir.display()
            );
            eprintln!("syncdeck: {}", redact(&warning));
            if let StderrLogs::Buffer(buffer) = &stderr {
                buffer.push(LogLine {
                    time: chrono::Utc::now(),
                    level: tracing::Level::WARN,
                    task_id: None,
                    run_id: None,
                    message: redact(&warning).into_owned(),
                    origin: None,
                });
            }
            (None, None)
        }
    };
    // Without the file, warnings are the only record: never drop them.
    let stderr = match (stderr, file_layer.is_some()) {
        (StderrLogs::Off, false) => StderrLogs::Warnings,
        (stderr, _) => stderr,
    };
    let buffer_layer = match &stderr {
        StderrLogs::Buffer(buffer) => Some(
            BufferLayer {
                buffer: buffer.clone(),
            }
            .with_filter_boxed(filter()),
        ),
        _ => None,
    };
    let stderr_layer = match stderr {
        StderrLogs::Off | StderrLogs::Buffer(_) => None,
        level => {
            let most = if matches!(level, StderrLogs::Info) {
                tracing::Level::INFO
            } else {
                tracing::Level::WARN
            };
            // Events up to `most`, but every span: a warning inside a run
            // must still carry the run's task and run ids, and the `run`
            // span is at INFO.
            let filter = move || {
                tracing_subscriber::filter::filter_fn(move |metadata| {
                    metadata.is_span() || *metadata.level() <= most
                })
            };
            let ansi = std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&io::stderr());
            Some(match format {
                LogFormat::Text => tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_target(false)
                    .with_writer(RedactedStderr)
                    .with_filter_boxed(filter()),
                LogFormat::Json => json::layer(RedactedStderr).with_filter_boxed(filter()),
            })
        }
    };
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .with(buffer_layer)
        .try_init();
    LoggingGuard { _file: guard }
}

/// The daily log file in `log_dir`, created (with the folder) now, so a
/// folder that cannot be written is found before anything is logged.
fn open_log_file(log_dir: &Path) -> Result<tracing_appender::rolling::RollingFileAppender, String> {
    std::fs::create_dir_all(log_dir).map_err(|error| error.to_string())?;
    tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("syncdeck.log")
        .build(log_dir)
        .map_err(|error| error.to_string())
}

/// Text lines ending in ` pid=N`: the process that wrote the line.
struct WithPid<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithPid<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(
            context,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        writeln!(writer, "{line} pid={}", std::process::id())
    }
}

/// Boxes a layer with its filter, so optional layers have one type.
trait BoxedFilter<S> {
    fn with_filter_boxed<F>(self, filter: F) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
    where
        F: tracing_subscriber::layer::Filter<S> + Send + Sync + 'static;
}

impl<S, L> BoxedFilter<S> for L
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: tracing_subscriber::Layer<S> + Send + Sync + 'static,
{
    fn with_filter_boxed<F>(self, filter: F) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
    where
        F: tracing_subscriber::layer::Filter<S> + Send + Sync + 'static,
    {
        Box::new(tracing_subscriber::Layer::with_filter(self, filter))
    }
}

/// One line of the console's log view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: chrono::DateTime<chrono::Utc>,
    pub level: tracing::Level,
    pub task_id: Option<String>,
    pub run_id: Option<i64>,
    /// The message and the event's other fields, redacted.
    pub message: String,
    /// The process that logged it, when another one did (read from the
    /// log folder); `None` for this process's own lines.
    pub origin: Option<u32>,
}

/// The newest log lines, at most `capacity` of them: older lines are
/// dropped, so memory stays flat however long the console runs.
#[derive(Clone)]
pub struct LogBuffer {
    ring: std::sync::Arc<std::sync::Mutex<LogRing>>,
    /// Wakes the console when lines arrive, without polling.
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("total", &self.total())
            .finish()
    }
}

pub struct LogRing {
    pub lines: std::collections::VecDeque<LogLine>,
    capacity: usize,
    /// Lines ever pushed, so views can tell how many scrolled out.
    pub total: u64,
}

/// Lines the console keeps by default.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: std::sync::Arc::new(std::sync::Mutex::new(LogRing {
                lines: std::collections::VecDeque::with_capacity(
                    capacity.min(DEFAULT_LOG_CAPACITY),
                ),
                capacity: capacity.max(1),
                total: 0,
            })),
            changed: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn push(&self, line: LogLine) {
        {
            let mut ring = self.lock();
            if ring.lines.len() == ring.capacity {
                ring.lines.pop_front();
            }
            ring.lines.push_back(line);
            ring.total += 1;
        }
        self.changed.notify_one();
    }

    /// Adds lines of other processes where their times put them among the
    /// lines already kept (their files are read a moment after they were
    /// written, and a backlog can be older than this process's lines).
    /// A line older than everything in a full ring is dropped.
    pub fn merge(&self, lines: Vec<LogLine>) {
        if lines.is_empty() {
            return;
        }
        {
            let mut ring = self.lock();
            for line in lines {
                let at = ring
                    .lines
                    .iter()
                    .rposition(|kept| kept.time <= line.time)
                    .map_or(0, |index| index + 1);
                ring.total += 1;
                if ring.lines.len() == ring.capacity {
                    if at == 0 {
                        continue;
                    }
                    ring.lines.pop_front();
                    ring.lines.insert(at - 1, line);
                } else {
                    ring.lines.insert(at, line);
                }
            }
        }
        self.changed.notify_one();
    }

    /// The ring, locked: hold it only while reading.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, LogRing> {
        match self.ring.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn total(&self) -> u64 {
        self.lock().total
    }

    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when lines were pushed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// The `task_id` and `run_id` of a span, kept in its extensions.
#[derive(Default, Clone)]
struct RunFields {
    task_id: Option<String>,
    run_id: Option<i64>,
}

impl tracing::field::Visit for RunFields {
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "run_id" {
            self.run_id = Some(value);
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "run_id" {
            self.run_id = i64::try_from(value).ok();
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "task_id" {
            self.task_id = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "task_id" {
            self.task_id = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

/// An event's message followed by its other fields as `key=value`.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
    run: RunFields,
}

impl tracing::field::Visit for EventText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "task_id" | "run_id" => self.run.record_debug(field, value),
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write as _;
        match field.name() {
            "message" => self.message.push_str(value),
            "task_id" => self.run.task_id = Some(value.to_string()),
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "run_id" {
            self.run.run_id = Some(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

struct BufferLayer {
    buffer: LogBuffer,
}

/// The layer that feeds `buffer`, for embedding the console's log capture
/// in another subscriber (benchmarks, tools).
pub fn buffer_layer<S>(buffer: LogBuffer) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    BufferLayer { buffer }
}

impl<S> tracing_subscriber::Layer<S> for BufferLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = RunFields::default();
        attributes.record(&mut fields);
        if (fields.task_id.is_some() || fields.run_id.is_some())
            && let Some(span) = context.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut text = EventText::default();
        event.record(&mut text);
        if let Some(scope) = context.event_scope(event) {
            for span in scope {
                if let Some(fields) = span.extensions().get::<RunFields>() {
                    text.run.task_id = text.run.task_id.take().or_else(|| fields.task_id.clone());
                    text.run.run_id = text.run.run_id.or(fields.run_id);
                }
            }
        }
        let message = format!("{}{}", text.message, text.fields);
        self.buffer.push(LogLine {
            time: chrono::Utc::now(),
            level: *event.metadata().level(),
            task_id: text.run.task_id,
            run_id: text.run.run_id,
            message: redact(&message).into_owned(),
            origin: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine {
            time: chrono::Utc::now(),
            level: tracing::Level::INFO,
            task_id: None,
            run_id: None,
            message: message.into(),
            origin: None,
        }
    }

    #[test]
    fn the_buffer_keeps_only_the_newest_lines() {
        let buffer = LogBuffer::new(3);
        for index in 0..10 {
            buffer.push(line(&index.to_string()));
        }
        let ring = buffer.lock();
        let kept: Vec<&str> = ring
            .lines
            .iter()
            .map(|line| line.message.as_str())
            .collect();
        assert_eq!(kept, ["7", "8", "9"]);
        assert_eq!(ring.total, 10);
    }

    fn at(second: u32, message: &str, origin: Option<u32>) -> LogLine {
        LogLine {
            time: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 5, 1, 12, 0, second)
                .single()
                .expect("a time"),
            origin,
            ..line(message)
        }
    }

    fn messages(buffer: &LogBuffer) -> Vec<String> {
        let ring = buffer.lock();
        ring.lines.iter().map(|line| line.message.clone()).collect()
    }

    #[test]
    fn other_processes_lines_merge_in_time_order_and_the_ring_stays_bounded() {
        let buffer = LogBuffer::new(4);
        buffer.push(at(10, "console opened", None));
        buffer.push(at(20, "console refreshed", None));
        // A daemon's backlog from before the console opened, and a line
        // it logged between the console's two.
        buffer.merge(vec![
            at(5, "daemon started", Some(7)),
            at(15, "daemon run finished", Some(7)),
        ]);
        assert_eq!(
            messages(&buffer),
            [
                "daemon started",
                "console opened",
                "daemon run finished",
                "console refreshed"
            ]
        );
        // Full: a newer line pushes the oldest out; one older than all is
        // not kept.
        buffer.merge(vec![
            at(25, "daemon slot", Some(7)),
            at(1, "ancient", Some(7)),
        ]);
        assert_eq!(
            messages(&buffer),
            [
                "console opened",
                "daemon run finished",
                "console refreshed",
                "daemon slot"
            ]
        );
        assert_eq!(buffer.total(), 6);
    }

    #[test]
    fn events_inside_a_run_span_carry_its_ids() {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = LogBuffer::new(10);
        let subscriber = tracing_subscriber::registry().with(BufferLayer {
            buffer: buffer.clone(),
        });
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("run", task_id = %"copy_files", run_id = 42i64);
            let _entered = span.enter();
            tracing::warn!(path = "a.csv", "file failed");
        });
        let ring = buffer.lock();
        let logged = &ring.lines[0];
        assert_eq!(logged.task_id.as_deref(), Some("copy_files"));
        assert_eq!(logged.run_id, Some(42));
        assert_eq!(logged.level, tracing::Level::WARN);
        assert_eq!(logged.message, "file failed path=a.csv");
    }
}
