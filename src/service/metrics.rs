//! Prometheus metrics, kept from the engine's event stream (the engine
//! knows nothing of them). Labels are bounded: task ids from the config,
//! run statuses, triggers and skip reasons; never paths or run ids.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::run::event::{EngineEvent, SlotSkipReason};
use crate::run::{RunStatus, Trigger};
use crate::state::StateStore;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    task: String,
    trigger: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    task: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OperationLabel {
    pub(super) operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    task: String,
    reason: String,
}

type Counters<L> = Family<L, Counter>;

/// Every metric of the daemon, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    runs_started: Counters<TriggerLabels>,
    runs_finished: Counters<StatusLabels>,
    run_duration: Family<TaskLabel, Histogram>,
    files_copied: Counters<TaskLabel>,
    bytes_copied: Counters<TaskLabel>,
    rows_read: Counters<TaskLabel>,
    rows_upserted: Counters<TaskLabel>,
    rows_skipped: Counters<TaskLabel>,
    failed_items_pending: Family<TaskLabel, Gauge>,
    retries: Counters<TaskLabel>,
    leases_held: Family<TaskLabel, Gauge>,
    slots_skipped: Counters<ReasonLabels>,
    state_store_errors: Counters<OperationLabel>,
    events_missed: Counter,
    /// The config's tasks, whose pending gauges a full refresh sets.
    task_ids: Vec<String>,
}

fn task(task_id: &str) -> TaskLabel {
    TaskLabel {
        task: task_id.to_string(),
    }
}

fn run_duration_histogram() -> Histogram {
    // 0.5 s up to about 4.5 hours.
    Histogram::new(exponential_buckets(0.5, 2.0, 16))
}

impl Metrics {
    /// The metrics, with a series at zero for each of `task_ids`, so a
    /// dashboard shows every task before its first run.
    pub fn new<'a>(task_ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut registry = Registry::with_prefix("syncdeck");
        let metrics_registry = &mut registry;
        let runs_started = Counters::<TriggerLabels>::default();
        metrics_registry.register(
            "runs_started",
            "Runs started, by task and trigger",
            runs_started.clone(),
        );
        let runs_finished = Counters::<StatusLabels>::default();
        metrics_registry.register(
            "runs_finished",
            "Runs finished, by task and final status",
            runs_finished.clone(),
        );
        let run_duration = Family::<TaskLabel, Histogram>::new_with_constructor(
            run_duration_histogram as fn() -> Histogram,
        );
        metrics_registry.register_with_unit(
            "run_duration",
            "How long finished runs took",
            Unit::Seconds,
            run_duration.clone(),
        );
        let files_copied = Counters::<TaskLabel>::default();
        metrics_registry.register(
            "files_copied",
            "Files copied by file sync runs",
            files_copied.clone(),
        );
        let bytes_copied = Counters::<TaskLabel>::default();
        metrics_registry.register(
            "bytes_copied",
            "Bytes copied by file sync runs",
            bytes_copied.clone(),
        );
        let rows_read = Counters::<TaskLabel>::default();
        metrics_registry.register(
            "rows_read",
            "Rows read from the source by table and HTTP sync runs",
            rows_read.clone(),
        );
        let rows_upserted = Counters::<TaskLabel>::default();
        metrics_registry.register(
            "rows_upserted",
            "Rows written to the target by table and HTTP sync runs",
            rows_upserted.clone(),
        );
        let rows_skipped = Counters::<TaskLabel>::default();
        metrics_registry.register(
            "rows_skipped",
            "Rows skipped (not loadable) by table and HTTP sync runs",
            rows_skipped.clone(),
        );
        let failed_items_pending = Family::<TaskLabel, Gauge>::default();
        metrics_registry.register(
            "failed_items_pending",
            "Failed files and batches waiting for a retry, by task",
            failed_items_pending.clone(),
        );
        let retries = Counters::<TaskLabel>::default();
        metrics_registry.register(
            "retries",
            "Attempts at a file or batch that failed and were retried",
            retries.clone(),
        );
        let leases_held = Family::<TaskLabel, Gauge>::default();
        metrics_registry.register(
            "leases_held",
            "Task leases this process holds (1 while it runs the task)",
            leases_held.clone(),
        );
        let slots_skipped = Counters::<ReasonLabels>::default();
        metrics_registry.register(
            "schedule_slots_skipped",
            "Scheduled slots that started no run, by reason (overlap, misfire, blocked)",
            slots_skipped.clone(),
        );
        let state_store_errors = Counters::<OperationLabel>::default();
        metrics_registry.register(
            "state_store_errors",
            "State store calls that failed, by operation",
            state_store_errors.clone(),
        );
        let events_missed = Counter::default();
        metrics_registry.register(
            "metrics_events_missed",
            "Engine events the metrics fell too far behind to count",
            events_missed.clone(),
        );
        metrics_registry.register(
            "build",
            "The running syncdeck's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        // Series at zero for every label value known up front, so a rate
        // or an alert on a family works before its first event.
        for operation in super::counted::OPERATIONS {
            let _ = state_store_errors.get_or_create(&OperationLabel {
                operation: (*operation).to_string(),
            });
        }
        let task_ids: Vec<String> = task_ids.into_iter().map(str::to_string).collect();
        for task_id in &task_ids {
            let task_id = task_id.as_str();
            let label = task(task_id);
            for trigger in Trigger::ALL {
                let _ = runs_started.get_or_create(&TriggerLabels {
                    task: task_id.to_string(),
                    trigger: trigger.as_str().to_string(),
                });
            }
            for status in RunStatus::ALL.iter().filter(|status| status.is_finished()) {
                let _ = runs_finished.get_or_create(&StatusLabels {
                    task: task_id.to_string(),
                    status: status.as_str().to_string(),
                });
            }
            for reason in SlotSkipReason::ALL {
                let _ = slots_skipped.get_or_create(&ReasonLabels {
                    task: task_id.to_string(),
                    reason: reason.as_str().to_string(),
                });
            }
            let _ = run_duration.get_or_create(&label);
            let _ = files_copied.get_or_create(&label);
            let _ = bytes_copied.get_or_create(&label);
            let _ = rows_read.get_or_create(&label);
            let _ = rows_upserted.get_or_create(&label);
            let _ = rows_skipped.get_or_create(&label);
            let _ = failed_items_pending.get_or_create(&label);
            let _ = retries.get_or_create(&label);
            let _ = leases_held.get_or_create(&label);
        }
        Self {
            registry,
            runs_started,
            runs_finished,
            run_duration,
            files_copied,
            bytes_copied,
            rows_read,
            rows_upserted,
            rows_skipped,
            failed_items_pending,
            retries,
            leases_held,
            slots_skipped,
            state_store_errors,
            events_missed,
            task_ids,
        }
    }

    /// Counts one event. Returns the task whose pending failed items may
    /// have changed (a run of it finished), for [`Metrics::refresh_pending`].
    pub fn record(&self, event: &EngineEvent) -> Option<String> {
        match event {
            EngineEvent::RunStarted {
                task_id, trigger, ..
            } => {
                self.runs_started
                    .get_or_create(&TriggerLabels {
                        task: task_id.clone(),
                        trigger: trigger.as_str().to_string(),
                    })
                    .inc();
                self.leases_held.get_or_create(&task(task_id)).set(1);
                None
            }
            EngineEvent::RunFinished { record } => {
                let label = task(&record.task_id);
                self.runs_finished
                    .get_or_create(&StatusLabels {
                        task: record.task_id.clone(),
                        status: record.status.as_str().to_string(),
                    })
                    .inc();
                self.leases_held.get_or_create(&label).set(0);
                // A submitted run finishes again with its final status and
                // counters later: count those once, then.
                if record.status.is_finished() {
                    let counters = &record.counters;
                    self.files_copied
                        .get_or_create(&label)
                        .inc_by(counters.files_synced);
                    self.bytes_copied
                        .get_or_create(&label)
                        .inc_by(counters.bytes_done);
                    self.rows_read
                        .get_or_create(&label)
                        .inc_by(counters.rows_extracted);
                    self.rows_upserted
                        .get_or_create(&label)
                        .inc_by(counters.rows_upserted);
                    self.rows_skipped
                        .get_or_create(&label)
                        .inc_by(counters.rows_skipped);
                    if let Some(milliseconds) = record.duration_ms {
                        self.run_duration
                            .get_or_create(&label)
                            .observe(milliseconds.max(0) as f64 / 1000.0);
                    }
                }
                Some(record.task_id.clone())
            }
            EngineEvent::ItemFailed {
                task_id,
                retry_in: Some(_),
                ..
            } => {
                self.retries.get_or_create(&task(task_id)).inc();
                None
            }
            EngineEvent::SlotSkipped { task_id, reason } => {
                self.slots_skipped
                    .get_or_create(&ReasonLabels {
                        task: task_id.clone(),
                        reason: reason.as_str().to_string(),
                    })
                    .inc();
                None
            }
            _ => None,
        }
    }

    /// Sets the pending failed items of `task_id` (every task when `None`)
    /// from the state store.
    pub async fn refresh_pending(&self, state: &dyn StateStore, task_id: Option<&str>) {
        match state.failed_items(task_id, true).await {
            Ok(items) => {
                if let Some(task_id) = task_id {
                    self.failed_items_pending
                        .get_or_create(&task(task_id))
                        .set(i64::try_from(items.len()).unwrap_or(i64::MAX));
                    return;
                }
                let mut counts = std::collections::BTreeMap::<&str, i64>::new();
                // A task whose items were all resolved goes back to zero.
                for task_id in &self.task_ids {
                    counts.insert(task_id.as_str(), 0);
                }
                for item in &items {
                    *counts.entry(item.task_id.as_str()).or_default() += 1;
                }
                for (task_id, count) in counts {
                    self.failed_items_pending
                        .get_or_create(&task(task_id))
                        .set(count);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "metrics: cannot count pending failed items");
            }
        }
    }

    /// `store`, counting its failed calls into this registry.
    pub fn count_errors(&self, store: Arc<dyn StateStore>) -> Arc<dyn StateStore> {
        Arc::new(super::counted::CountedStateStore {
            inner: store,
            errors: self.state_store_errors.clone(),
        })
    }

    /// The metrics in the Prometheus text format (0.0.4), which every
    /// Prometheus version and `promtool` read.
    pub fn encode_prometheus(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// How often the pending failed items are counted again from the store.
const PENDING_REFRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// Counts the engine's events into `metrics` until `stop`.
pub async fn follow(
    metrics: Arc<Metrics>,
    mut events: broadcast::Receiver<EngineEvent>,
    state: Arc<dyn StateStore>,
    stop: CancellationToken,
) {
    // Runs of other processes sharing the store (a `syncdeck run`, another
    // daemon) and retries resolve items too: the gauges are read again on
    // this period, not only after this process's runs.
    let mut refresh = tokio::time::interval(PENDING_REFRESH);
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            _ = refresh.tick() => {
                metrics.refresh_pending(state.as_ref(), None).await;
                continue;
            }
            received = events.recv() => received,
        };
        match received {
            Ok(event) => {
                if let Some(task_id) = metrics.record(&event) {
                    metrics
                        .refresh_pending(state.as_ref(), Some(&task_id))
                        .await;
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics.events_missed.inc_by(missed);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunCounters;
    use crate::run::RunRecord;

    fn finished(status: RunStatus, files: u64, bytes: u64) -> EngineEvent {
        EngineEvent::RunFinished {
            record: Box::new(RunRecord {
                run_id: 7,
                task_id: "copy".into(),
                trigger: Trigger::Schedule,
                status,
                started_at: chrono::Utc::now(),
                completed_at: Some(chrono::Utc::now()),
                duration_ms: Some(1500),
                counters: RunCounters {
                    files_synced: files,
                    bytes_done: bytes,
                    ..RunCounters::default()
                },
                error: None,
                warning: None,
                execution_date: None,
            }),
        }
    }

    #[test]
    fn finished_runs_move_the_counters_by_task_and_status() {
        let metrics = Metrics::new(["copy", "idle"]);
        metrics.record(&finished(RunStatus::Succeeded, 2, 100));
        metrics.record(&finished(RunStatus::Partial, 1, 20));
        // Counted once, when its final status arrives.
        metrics.record(&finished(RunStatus::Submitted, 5, 500));
        metrics.record(&EngineEvent::SlotSkipped {
            task_id: "copy".into(),
            reason: SlotSkipReason::Overlap,
        });
        let text = metrics.encode_prometheus().expect("encode");
        for line in [
            "syncdeck_runs_finished_total{task=\"copy\",status=\"succeeded\"} 1",
            "syncdeck_runs_finished_total{task=\"copy\",status=\"partial\"} 1",
            "syncdeck_files_copied_total{task=\"copy\"} 3",
            "syncdeck_bytes_copied_total{task=\"copy\"} 120",
            "syncdeck_files_copied_total{task=\"idle\"} 0",
            "syncdeck_run_duration_seconds_count{task=\"copy\"} 2",
            "syncdeck_schedule_slots_skipped_total{task=\"copy\",reason=\"overlap\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(text.contains("syncdeck_build_info{version=\""), "{text}");
    }

    #[tokio::test]
    async fn a_full_refresh_sets_a_task_with_nothing_pending_back_to_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = crate::state::SqliteStateStore::open(&dir.path().join("state.db"))
            .await
            .expect("store");
        let metrics = Metrics::new(["copy"]);
        metrics
            .failed_items_pending
            .get_or_create(&task("copy"))
            .set(3);
        metrics.refresh_pending(&state, None).await;
        let text = metrics.encode_prometheus().expect("encode");
        assert!(
            text.contains("syncdeck_failed_items_pending{task=\"copy\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn every_family_has_its_series_at_zero_before_anything_happens() {
        let text = Metrics::new(["idle"]).encode_prometheus().expect("encode");
        for line in [
            "syncdeck_runs_started_total{task=\"idle\",trigger=\"schedule\"} 0",
            "syncdeck_runs_finished_total{task=\"idle\",status=\"failed\"} 0",
            "syncdeck_runs_finished_total{task=\"idle\",status=\"blocked\"} 0",
            "syncdeck_run_duration_seconds_count{task=\"idle\"} 0",
            "syncdeck_schedule_slots_skipped_total{task=\"idle\",reason=\"misfire\"} 0",
            "syncdeck_state_store_errors_total{operation=\"begin_run\"} 0",
            "syncdeck_metrics_events_missed_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            !text.contains("status=\"running\""),
            "only final statuses are counted: {text}"
        );
    }

    #[test]
    fn leases_follow_runs_and_retried_attempts_are_counted() {
        let metrics = Metrics::new(["copy"]);
        metrics.record(&EngineEvent::RunStarted {
            run_id: 7,
            task_id: "copy".into(),
            trigger: Trigger::Manual,
            started_at: chrono::Utc::now(),
        });
        let failed = |retry_in| EngineEvent::ItemFailed {
            run_id: 7,
            task_id: "copy".into(),
            path: "a.csv".into(),
            error: "timed out".into(),
            attempt: 1,
            max_attempts: 2,
            retry_in,
        };
        metrics.record(&failed(Some(std::time::Duration::from_secs(1))));
        // The last attempt: nothing is retried.
        metrics.record(&failed(None));
        let running = metrics.encode_prometheus().expect("encode");
        assert!(
            running.contains("syncdeck_leases_held{task=\"copy\"} 1\n"),
            "{running}"
        );
        assert!(
            running.contains("syncdeck_retries_total{task=\"copy\"} 1\n"),
            "{running}"
        );
        assert!(
            running.contains("syncdeck_runs_started_total{task=\"copy\",trigger=\"manual\"} 1\n")
        );
        metrics.record(&finished(RunStatus::Failed, 0, 0));
        let after = metrics.encode_prometheus().expect("encode");
        assert!(
            after.contains("syncdeck_leases_held{task=\"copy\"} 0\n"),
            "{after}"
        );
        let openmetrics = metrics.encode_openmetrics().expect("encode");
        assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    }
}
