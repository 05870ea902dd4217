//! A state store that counts its failed calls, by operation, for
//! `syncdeck_state_store_errors_total`: the daemon hands the engine this
//! wrapper, so every call (runs, leases, slots, the endpoint's own checks)
//! is counted without the engine or the stores knowing about metrics.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::metrics::OperationLabel;
use crate::run::{RunCounters, RunId, RunRecord, Trigger};
use crate::state::{FailedItem, ItemStatus, NewFailedItem, StateError, StateStore, Watermark};

pub(super) struct CountedStateStore {
    pub(super) inner: Arc<dyn StateStore>,
    pub(super) errors: Family<OperationLabel, Counter>,
}

impl CountedStateStore {
    fn count<T>(
        &self,
        operation: &'static str,
        result: Result<T, StateError>,
    ) -> Result<T, StateError> {
        debug_assert!(
            OPERATIONS.contains(&operation),
            "{operation} is missing from OPERATIONS"
        );
        if result.is_err() {
            self.errors
                .get_or_create(&OperationLabel {
                    operation: operation.to_string(),
                })
                .inc();
        }
        result
    }
}

/// Every operation counted, so each has its series (at zero) from the start.
pub(super) const OPERATIONS: &[&str] = &[
    "acquire_lease",
    "begin_run",
    "cancel_requested",
    "claim_slot",
    "delete_watermark",
    "execution_date",
    "failed_items",
    "files_in_flight",
    "finish_run",
    "mark_interrupted",
    "paused_schedules",
    "record_failed_item",
    "release_lease",
    "renew_lease",
    "request_cancel",
    "runs",
    "set_files_in_flight",
    "set_item_status",
    "set_schedule_paused",
    "set_watermark",
    "update_run",
    "watermark",
];

#[async_trait]
impl StateStore for CountedStateStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn begin_run_for(
        &self,
        task_id: &str,
        trigger: Trigger,
        started_at: DateTime<Utc>,
        execution_date: NaiveDate,
    ) -> Result<RunId, StateError> {
        self.count(
            "begin_run",
            self.inner
                .begin_run_for(task_id, trigger, started_at, execution_date)
                .await,
        )
    }

    async fn execution_date(&self, run_id: RunId) -> Result<Option<NaiveDate>, StateError> {
        self.count("execution_date", self.inner.execution_date(run_id).await)
    }

    async fn update_run(&self, run_id: RunId, counters: &RunCounters) -> Result<(), StateError> {
        self.count("update_run", self.inner.update_run(run_id, counters).await)
    }

    async fn set_files_in_flight(
        &self,
        run_id: RunId,
        files: &[crate::run::FileInFlight],
    ) -> Result<(), StateError> {
        self.count(
            "set_files_in_flight",
            self.inner.set_files_in_flight(run_id, files).await,
        )
    }

    async fn files_in_flight(
        &self,
        run_id: RunId,
    ) -> Result<Vec<crate::run::FileInFlight>, StateError> {
        self.count("files_in_flight", self.inner.files_in_flight(run_id).await)
    }

    async fn finish_run(&self, record: &RunRecord) -> Result<(), StateError> {
        self.count("finish_run", self.inner.finish_run(record).await)
    }

    async fn runs(
        &self,
        task_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StateError> {
        self.count("runs", self.inner.runs(task_id, limit).await)
    }

    async fn record_failed_item(&self, item: &NewFailedItem) -> Result<i64, StateError> {
        self.count(
            "record_failed_item",
            self.inner.record_failed_item(item).await,
        )
    }

    async fn failed_items(
        &self,
        task_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FailedItem>, StateError> {
        self.count(
            "failed_items",
            self.inner.failed_items(task_id, pending_only).await,
        )
    }

    async fn set_item_status(&self, id: i64, status: ItemStatus) -> Result<(), StateError> {
        self.count(
            "set_item_status",
            self.inner.set_item_status(id, status).await,
        )
    }

    async fn stored_watermark(&self, task_id: &str) -> Result<Option<Watermark>, StateError> {
        self.count("watermark", self.inner.stored_watermark(task_id).await)
    }

    async fn delete_watermark(&self, task_id: &str) -> Result<Option<String>, StateError> {
        self.count(
            "delete_watermark",
            self.inner.delete_watermark(task_id).await,
        )
    }

    async fn set_watermark(
        &self,
        task_id: &str,
        value: &str,
        scope: Option<&str>,
    ) -> Result<(), StateError> {
        self.count(
            "set_watermark",
            self.inner.set_watermark(task_id, value, scope).await,
        )
    }

    async fn mark_interrupted(&self) -> Result<u64, StateError> {
        self.count("mark_interrupted", self.inner.mark_interrupted().await)
    }

    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        self.count(
            "acquire_lease",
            self.inner.acquire_lease(task_id, owner, ttl).await,
        )
    }

    async fn renew_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        self.count(
            "renew_lease",
            self.inner.renew_lease(task_id, owner, ttl).await,
        )
    }

    async fn release_lease(&self, task_id: &str, owner: &str) -> Result<(), StateError> {
        self.count(
            "release_lease",
            self.inner.release_lease(task_id, owner).await,
        )
    }

    async fn claim_slot(&self, task_id: &str, slot: i64, owner: &str) -> Result<bool, StateError> {
        self.count(
            "claim_slot",
            self.inner.claim_slot(task_id, slot, owner).await,
        )
    }

    async fn request_cancel(&self, run_id: RunId) -> Result<(), StateError> {
        self.count("request_cancel", self.inner.request_cancel(run_id).await)
    }

    async fn paused_schedules(&self) -> Result<Vec<String>, StateError> {
        self.count("paused_schedules", self.inner.paused_schedules().await)
    }

    async fn set_schedule_paused(&self, task_id: &str, paused: bool) -> Result<(), StateError> {
        self.count(
            "set_schedule_paused",
            self.inner.set_schedule_paused(task_id, paused).await,
        )
    }

    async fn cancel_requested(&self, run_id: RunId) -> Result<bool, StateError> {
        self.count(
            "cancel_requested",
            self.inner.cancel_requested(run_id).await,
        )
    }
}
