//! Table sync as a task body, and what `syncdeck plan` shows for it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::count::count_rows;
use super::layout::discover;
use super::lookback;
use crate::config::{TableMode, TableSyncProperties};
use crate::postgres::catalog::target_is_empty;
use crate::postgres::{Endpoint, PgError};
use crate::task::{PlanRequest, RunContext, TaskBody, TaskOutcome, TaskPlan};

pub(crate) struct TableSyncBody(pub(crate) Arc<TableSyncProperties>);

#[async_trait]
impl TaskBody for TableSyncBody {
    async fn run(&self, context: &RunContext) -> TaskOutcome {
        super::run(&self.0, context).await
    }

    async fn plan(&self, request: &PlanRequest) -> Result<TaskPlan, String> {
        let watermark = request
            .state
            .stored_watermark(&request.task_id)
            .await
            .map_err(|error| format!("cannot read the watermark: {error}"))?;
        let plan = plan(&self.0, &request.task_id, watermark)
            .await
            .map_err(|error| error.to_string())?;
        let mut lines = vec![format!(
            "{}: {} -> {}",
            request.task_id, plan.source, plan.target
        )];
        if let Some(distrusted) = &plan.distrusted {
            lines.push(format!("  {}", distrusted.log_line(&plan.scope)));
        }
        lines.push(match (&plan.watermark, plan.lookback) {
            (Some(watermark), Some(lookback)) => format!(
                "  rows with watermark above {watermark} less {} (or none): {}",
                humantime::format_duration(lookback),
                plan.rows
            ),
            (Some(watermark), None) => format!(
                "  rows with watermark above {watermark} (or none): {}",
                plan.rows
            ),
            (None, _) => format!("  rows to read: {}", plan.rows),
        });
        lines.push(format!(
            "  {} batch(es); columns: {}",
            plan.batches,
            plan.columns.join(", ")
        ));
        let json = json!({
            "task_id": request.task_id,
            "source": plan.source,
            "target": plan.target,
            "rows": plan.rows,
            "batches": plan.batches,
            "watermark": plan.watermark,
            "watermark_lookback_seconds": plan.lookback.map(|lookback| lookback.as_secs_f64()),
            "columns": plan.columns,
        });
        Ok(TaskPlan { lines, json })
    }
}

/// What `syncdeck plan` shows for a table task.
pub struct TablePlan {
    pub source: String,
    pub target: String,
    pub rows: u64,
    pub batches: u64,
    pub watermark: Option<String>,
    /// How far below the watermark the run starts reading.
    pub lookback: Option<std::time::Duration>,
    pub columns: Vec<String>,
    /// What a watermark of this task is about.
    pub scope: String,
    /// Why the stored watermark will not be used.
    pub(crate) distrusted: Option<super::stored::Distrusted>,
}

/// Connects, checks both tables and counts what a run would read.
pub async fn plan(
    properties: &TableSyncProperties,
    task_id: &str,
    watermark: Option<crate::state::Watermark>,
) -> Result<TablePlan, PgError> {
    let source_endpoint = Endpoint::parse(properties.source.expose(), "source", task_id)?;
    let target_endpoint = Endpoint::parse(properties.target.expose(), "target", task_id)?;
    let source = source_endpoint.connect().await?;
    let target = target_endpoint.connect().await?;
    let layout = discover(
        properties,
        source_endpoint.dialect,
        &source_endpoint.name,
        &source,
        &target,
    )
    .await?;
    let scope = super::stored::scope(&source_endpoint, &layout, &target_endpoint, properties);
    let (watermark, distrusted) = if *properties.mode.get_ref() == TableMode::Incremental {
        let empty = target_is_empty(&target, &layout.target_table).await?;
        super::stored::judge(watermark, &scope, empty)
    } else {
        (None, None)
    };
    let lookback = lookback(properties, &layout)?.filter(|_| watermark.is_some());
    let rows = count_rows(
        &source,
        source_endpoint.dialect,
        &layout,
        watermark.as_deref(),
        lookback,
    )
    .await?;
    Ok(TablePlan {
        source: source_endpoint.name,
        target: format!("{} table {}", target_endpoint.name, layout.target_table),
        rows,
        batches: rows.div_ceil(*properties.batch_size.get_ref() as u64),
        watermark,
        lookback,
        columns: layout
            .columns
            .iter()
            .map(|column| column.target.clone())
            .collect(),
        scope,
        distrusted,
    })
}
