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
        Ok(describe(&request.task_id, &plan, request.list_skipped))
    }
}

/// A file name on one line: one with a newline, tab or other control
/// character is printed escaped (`new\nline.txt`), as rclone does.
fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        name.escape_debug().to_string().into()
    } else {
        name.into()
    }
}

fn size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

/// The plan as lines (one per file to copy or refused, the skipped ones
/// too with `list_skipped`, then totals) and as one JSON object (every
/// file).
fn describe(task_id: &str, plan: &FilePlan, list_skipped: bool) -> TaskPlan {
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
    for file in plan
        .files
        .iter()
        .filter(|file| list_skipped || file.decision.is_copy())
    {
        lines.push(format!(
            "  {:<24} {:>10}  {}",
            file.decision.describe(),
            size(file.size),
            shown(&file.relative)
        ));
    }
    for (path, reason) in &plan.refused {
        lines.push(format!(
            "  {:<24} {:>10}  {}  ({reason})",
            "fail",
            "",
            shown(path)
        ));
    }
    let copies: Vec<_> = plan
        .files
        .iter()
        .filter(|file| file.decision.is_copy())
        .collect();
    let bytes: u64 = copies.iter().map(|file| file.size).sum();
    let skipped = plan.files.len() - copies.len();
    if !list_skipped && skipped > 0 {
        lines.push(format!(
            "  … {skipped} skipped file(s) not listed: `syncdeck plan {task_id} --all` lists them"
        ));
    }
    lines.push(format!(
        "{} to copy ({}), {} skipped, {} refused",
        copies.len(),
        size(bytes),
        skipped,
        plan.refused.len()
    ));
    if let Some(warning) = &plan.nothing_matched {
        lines.push(format!("warning: {warning}"));
    }
    TaskPlan { lines, json }
}
