//! What headless commands print on stdout: run summaries, plans, history
//! and failed items, as aligned text or one JSON object per line.

use bytesize::ByteSize;
use serde_json::json;

use crate::engine::TaskResult;
use crate::run::RunRecord;
use crate::state::FailedItem;

fn size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

fn print_json(value: &serde_json::Value) {
    println!("{}", crate::config::redact(&value.to_string()));
}

pub(super) fn results(results: &[TaskResult], json: bool) {
    for result in results {
        match result {
            TaskResult::Ran(record) if json => {
                print_json(&serde_json::to_value(record).unwrap_or_default())
            }
            TaskResult::Ran(record) => println!("{}", crate::config::redact(&summary_line(record))),
            TaskResult::Blocked {
                task_id,
                dependency,
                run_id,
            } if json => print_json(
                &json!({ "task_id": task_id, "run_id": run_id, "status": "blocked", "dependency": dependency }),
            ),
            TaskResult::Blocked {
                task_id,
                dependency,
                run_id,
            } => {
                let run = run_id.map(|id| format!("run {id}  ")).unwrap_or_default();
                println!(
                    "{task_id}  {run}blocked: dependency `{dependency}` did not succeed; not started"
                )
            }
            TaskResult::Error { task_id, message } if json => {
                print_json(&json!({ "task_id": task_id, "status": "error", "error": message }))
            }
            TaskResult::Error { task_id, message } => {
                println!("{task_id}  error: {}", crate::config::redact(message))
            }
        }
    }
}

/// `sync_csv_files  run 42  succeeded  synced 12  skipped 3 (exists 0, unchanged 3)  failed 0  1.2 MiB in 0.4s`
pub(super) fn summary_line(record: &RunRecord) -> String {
    let counters = &record.counters;
    let seconds = record.duration_ms.unwrap_or(0) as f64 / 1000.0;
    let is_table = counters.rows_extracted + counters.batches_done + counters.batches_failed > 0
        || counters.rows_total.is_some();
    let mut line = if is_table {
        format!(
            "{}  run {}  {}  rows read {}  upserted {}  unchanged {}  skipped {}  deleted {}  batches {} ok, {} failed  in {seconds:.1}s",
            record.task_id,
            record.run_id,
            record.status,
            counters.rows_extracted,
            counters.rows_upserted,
            counters.rows_unchanged,
            counters.rows_skipped,
            counters.rows_deleted,
            counters.batches_done,
            counters.batches_failed,
        )
    } else {
        format!(
            "{}  run {}  {}  synced {}  skipped {} (exists {}, unchanged {})  failed {}  {} in {seconds:.1}s",
            record.task_id,
            record.run_id,
            record.status,
            counters.files_synced,
            counters.files_skipped(),
            counters.files_skipped_exists,
            counters.files_skipped_unchanged,
            counters.files_failed,
            size(counters.bytes_done),
        )
    };
    if counters.rows_filtered > 0 {
        line.push_str(&format!("  (filtered out {})", counters.rows_filtered));
    }
    if let Some(warning) = &record.warning {
        line.push_str(&format!("\n  warning: {warning}"));
    }
    if let Some(error) = &record.error {
        line.push_str(&format!("\n  error: {error}"));
    }
    line
}

pub(super) fn plan(plan: &crate::task::TaskPlan, json: bool) {
    if json {
        print_json(&plan.json);
        return;
    }
    for line in &plan.lines {
        println!("{}", crate::config::redact(line));
    }
}

pub(super) fn history(runs: &[RunRecord], json: bool) {
    if json {
        for run in runs {
            print_json(&serde_json::to_value(run).unwrap_or_default());
        }
        return;
    }
    if runs.is_empty() {
        println!("no runs recorded yet");
        return;
    }
    println!(
        "{:>6}  {:<24} {:<9} {:<11} {:<20} {:>9} {:>7} {:>7} {:>6} {:>10}  ERROR",
        "RUN",
        "TASK",
        "TRIGGER",
        "STATUS",
        "STARTED",
        "DURATION",
        "SYNCED",
        "SKIPPED",
        "FAILED",
        "BYTES"
    );
    for run in runs {
        let duration = run
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>6}  {:<24} {:<9} {:<11} {:<20} {:>9} {:>7} {:>7} {:>6} {:>10}  {}",
            run.run_id,
            run.task_id,
            run.trigger,
            run.status,
            run.started_at.format("%Y-%m-%d %H:%M:%S"),
            duration,
            run.counters.files_synced,
            run.counters.files_skipped(),
            run.counters.files_failed,
            size(run.counters.bytes_done),
            run.error
                .as_deref()
                .or(run.warning.as_deref())
                .unwrap_or(""),
        );
    }
}

pub(super) fn failed_items(items: &[FailedItem], json: bool) {
    if json {
        for item in items {
            print_json(&serde_json::to_value(item).unwrap_or_default());
        }
        return;
    }
    if items.is_empty() {
        println!("no failed items");
        return;
    }
    println!(
        "{:>5}  {:<24} {:<6} {:>8} {:<9} {:<30}  ERROR",
        "ID", "TASK", "KIND", "ATTEMPTS", "STATUS", "ITEM"
    );
    for item in items {
        println!(
            "{:>5}  {:<24} {:<6} {:>8} {:<9} {:<30}  {}",
            item.id,
            item.task_id,
            item.kind.as_str(),
            item.attempts,
            item.status.as_str(),
            item.key,
            item.error
        );
    }
}
