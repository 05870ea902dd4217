//! `log_format = "json"`: one JSON object per line, for log shippers.
//! Every line has the same keys: `timestamp` (RFC 3339, UTC), `level`,
//! `target`, `task_id` and `run_id` (from the `run` span, else null),
//! `message`, `fields` (the event's other fields) and `pid` (the process
//! that wrote the line). Strings are
//! redacted here as well as by the writer, because JSON escaping could
//! hide a secret with quotes or backslashes from the writer's match.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::redact;

/// The event formatter for JSON lines; use with [`JsonFields`] as the
/// field formatter, so span fields are kept as JSON.
pub(super) struct JsonLines;

#[derive(Default)]
struct EventFields {
    message: String,
    fields: Map<String, Value>,
}

impl EventFields {
    fn insert(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            match value {
                Value::String(text) => self.message = text,
                other => self.message = other.to_string(),
            }
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(
            field,
            Value::String(redact(&format!("{value:?}")).into_owned()),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(redact(value).into_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(
            field,
            Value::String(redact(&value.to_string()).into_owned()),
        );
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut recorded = EventFields::default();
        event.record(&mut recorded);
        let mut task_id = recorded.fields.remove("task_id");
        let mut run_id = recorded.fields.remove("run_id");
        // The innermost span that names them wins.
        if let Some(scope) = context.event_scope() {
            for span in scope {
                if task_id.is_some() && run_id.is_some() {
                    break;
                }
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(stored) else {
                    continue;
                };
                if task_id.is_none() {
                    task_id = fields.remove("task_id");
                }
                if run_id.is_none() {
                    run_id = fields.remove("run_id");
                }
            }
        }
        let metadata = event.metadata();
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": metadata.level().as_str(),
            "target": metadata.target(),
            "task_id": task_id.unwrap_or(Value::Null),
            "run_id": run_id.unwrap_or(Value::Null),
            "message": redact(&recorded.message),
            "fields": recorded.fields,
            "pid": std::process::id(),
        });
        writeln!(writer, "{line}")
    }
}

/// A `fmt` layer writing JSON lines to `writer`.
pub(super) fn layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines)
        .with_writer(writer)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buffer);
            Ok(buffer.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_inside_a_run_span_carries_its_ids_and_fields() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(super::layer(move || sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("run", task_id = %"copy_files", run_id = 42i64);
            let _entered = span.enter();
            tracing::warn!(path = "a.csv", attempt = 2u64, "file failed");
        });
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["task_id"], "copy_files");
        assert_eq!(line["run_id"], 42);
        assert_eq!(line["message"], "file failed");
        assert_eq!(line["fields"]["path"], "a.csv");
        assert_eq!(line["fields"]["attempt"], 2);
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
