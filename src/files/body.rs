//! File sync as a task body: runs and plans go through the engine's
//! contract.

use std::sync::Arc;

use async_trait::async_trait;
use bytesize::ByteSize;
use serde_json::json;

use super::FilePlan;
use crate::config::SyncProperties;
use crate::task::{PlanRequest, RunContext, TaskBody, TaskOutcome, TaskPlan};

pub(crate) struct FileSyncBody(pub(crate) Arc<SyncProperties>);

#[async_trait]
impl TaskBody for FileSyncBody {
    async fn run(&self, context: &RunContext) -> TaskOutcome {
        super::run(&self.0, context).await
    }

    async fn plan(&self, request: &PlanRequest) -> Result<TaskPlan, String> {
        let plan = super::plan(&self.0, &request.base_dir, &request.templates(), None)
            .await
            .map_err(|error| error.to_string())?;
        Ok(describe(&request.task_id, &plan))
    }
}

fn size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

/// The plan as lines (one per file, then totals) and as one JSON object.
fn describe(task_id: &str, plan: &FilePlan) -> TaskPlan {
    let files: Vec<_> = plan
        .files
        .iter()
        .map(|file| json!({ "path": file.relative, "size": file.size, "decision": file.decision.describe() }))
        .collect();
    let refused: Vec<_> = plan
        .refused
        .iter()
        .map(|(path, reason)| json!({ "path": path, "reason": reason }))
        .collect();
    let json = json!({
        "task_id": task_id,
        "source": plan.source,
        "destination": plan.destination,
        "files_listed": plan.files_listed,
        "files": files,
        "refused": refused,
        "warning": plan.nothing_matched,
    });
    let mut lines = vec![format!(
        "{task_id}: {} -> {}  ({} listed, {} matched)",
        plan.source,
        plan.destination,
        plan.files_listed,
        plan.files.len() + plan.refused.len()
    )];
    for file in &plan.files {
        lines.push(format!(
            "  {:<24} {:>10}  {}",
            file.decision.describe(),
            size(file.size),
            file.relative
        ));
    }
    for (path, reason) in &plan.refused {
        lines.push(format!("  {:<24} {:>10}  {path}  ({reason})", "fail", ""));
    }
    let copies: Vec<_> = plan
        .files
        .iter()
        .filter(|file| file.decision.is_copy())
        .collect();
    let bytes: u64 = copies.iter().map(|file| file.size).sum();
    lines.push(format!(
        "{} to copy ({}), {} skipped, {} refused",
        copies.len(),
        size(bytes),
        plan.files.len() - copies.len(),
        plan.refused.len()
    ));
    if let Some(warning) = &plan.nothing_matched {
        lines.push(format!("warning: {warning}"));
    }
    TaskPlan { lines, json }
}
