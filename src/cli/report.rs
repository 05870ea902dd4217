//! What headless commands print on stdout: run summaries, plans, history
//! and failed items, as aligned text or one JSON object per line.

use std::collections::HashSet;

use bytesize::ByteSize;
use serde_json::json;

use crate::config::{Config, TaskKind};
use crate::engine::TaskResult;
use crate::run::{RunId, RunRecord};
use crate::state::FailedItem;

/// Which tasks move rows (table and HTTP syncs) rather than files, from the
/// config: a run that failed before reading a row is still a table run.
pub(super) struct Kinds(std::collections::HashMap<String, TaskKind>);

impl Kinds {
    pub(super) fn of(config: &Config) -> Self {
        Kinds(
            config
                .tasks
                .iter()
                .map(|task| (task.id.clone(), task.kind))
                .collect(),
        )
    }

    /// Whether `record` is to be reported in rows (see
    /// [`TaskKind::moves_rows`]).
    fn moves_rows(&self, record: &RunRecord) -> bool {
        TaskKind::moves_rows(self.0.get(&record.task_id).copied(), &record.counters)
    }
}

fn size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

fn print_json(value: &serde_json::Value) {
    out!("{}", crate::config::redact(&value.to_string()));
}

/// Prints the results not already printed as their runs ended (`shown`),
/// then, as text, a totals line over all of them. `width` fits text to
/// the terminal.
pub(super) fn results(
    results: &[TaskResult],
    kinds: &Kinds,
    json: bool,
    shown: &HashSet<RunId>,
    width: Option<usize>,
    elapsed: std::time::Duration,
) {
    for result in results {
        if let TaskResult::Ran(record) = result
            && shown.contains(&record.run_id)
        {
            continue;
        }
        match json {
            true => print_json(&result_json(result)),
            false => out!("{}", fit(&result_line(result, kinds), width)),
        }
    }
    if !json && !results.is_empty() {
        out!("{}", fit(&totals_line(results, elapsed), width));
    }
}

/// One result as the JSON object `--json` prints.
pub(super) fn result_json(result: &TaskResult) -> serde_json::Value {
    match result {
        TaskResult::Ran(record) => serde_json::to_value(record).unwrap_or_default(),
        TaskResult::Blocked {
            task_id,
            dependency,
            run_id,
        } => {
            json!({ "task_id": task_id, "run_id": run_id, "status": "blocked", "dependency": dependency })
        }
        TaskResult::Error { task_id, message } => {
            json!({ "task_id": task_id, "status": "error", "error": message })
        }
    }
}

/// One result as a text line (secrets redacted).
pub(super) fn result_line(result: &TaskResult, kinds: &Kinds) -> String {
    let line = match result {
        TaskResult::Ran(record) => summary_line(record, kinds),
        TaskResult::Blocked {
            task_id,
            dependency,
            run_id,
        } => {
            let run = run_id.map(|id| format!("run {id}  ")).unwrap_or_default();
            format!(
                "{task_id}  {run}blocked: dependency `{dependency}` did not succeed; not started"
            )
        }
        TaskResult::Error { task_id, message } => format!("{task_id}  error: {message}"),
    };
    crate::config::redact(&line).into_owned()
}

/// `2 tasks` / `1 task`.
pub(super) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `total  3 tasks  2 succeeded  1 partial  files synced 12 failed 2  1.2 MiB  rows upserted 900  in 4.2s`:
/// how the tasks ended, then what moved, over every result; zero counts
/// are left out.
pub(super) fn totals_line(results: &[TaskResult], elapsed: std::time::Duration) -> String {
    // Best first, the order an operator reads a run's outcome in.
    let mut outcomes: Vec<(String, u64)> = [
        "succeeded",
        "submitted",
        "partial",
        "failed",
        "cancelled",
        "interrupted",
        "blocked",
        "error",
    ]
    .iter()
    .map(|outcome| (outcome.to_string(), 0))
    .collect();
    let mut add = |outcome: String| match outcomes.iter_mut().find(|(name, _)| *name == outcome) {
        Some((_, n)) => *n += 1,
        None => outcomes.push((outcome, 1)),
    };
    let mut counters = crate::run::RunCounters::default();
    for result in results {
        match result {
            TaskResult::Ran(record) => {
                add(record.status.to_string());
                let run = &record.counters;
                counters.files_synced += run.files_synced;
                counters.files_failed += run.files_failed;
                counters.bytes_done += run.bytes_done;
                counters.rows_upserted += run.rows_upserted;
                counters.rows_skipped += run.rows_skipped;
                counters.batches_failed += run.batches_failed;
            }
            TaskResult::Blocked { .. } => add("blocked".into()),
            TaskResult::Error { .. } => add("error".into()),
        }
    }
    let mut fields = vec!["total".to_string(), count(results.len() as u64, "task")];
    fields.extend(
        outcomes
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(outcome, n)| format!("{n} {outcome}")),
    );
    let mut files = Vec::new();
    if counters.files_synced > 0 {
        files.push(format!("synced {}", counters.files_synced));
    }
    if counters.files_failed > 0 {
        files.push(format!("failed {}", counters.files_failed));
    }
    if !files.is_empty() {
        fields.push(format!("files {}", files.join(" ")));
    }
    if counters.bytes_done > 0 {
        fields.push(size(counters.bytes_done));
    }
    let mut rows = Vec::new();
    if counters.rows_upserted > 0 {
        rows.push(format!("upserted {}", counters.rows_upserted));
    }
    if counters.rows_skipped > 0 {
        rows.push(format!("skipped {}", counters.rows_skipped));
    }
    if !rows.is_empty() {
        fields.push(format!("rows {}", rows.join(" ")));
    }
    if counters.batches_failed > 0 {
        fields.push(format!("batches failed {}", counters.batches_failed));
    }
    fields.push(format!("in {:.1}s", elapsed.as_secs_f64()));
    fields.join("  ")
}

/// The width of the terminal stdout writes to, if it is one.
pub(super) fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(columns, _)| usize::from(columns))
        .filter(|columns| *columns >= 20)
}

/// Fits text to `width` columns without breaking words: each line's
/// fields (separated by two spaces) are packed onto lines, and what does
/// not fit continues on the next line, indented. No width: unchanged.
pub(super) fn fit(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    text.lines()
        .map(|line| fit_line(line, width))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fit_line(line: &str, width: usize) -> String {
    let columns = |text: &str| text.chars().count();
    if columns(line) <= width {
        return line.to_string();
    }
    let body = line.trim_start();
    let indent = " ".repeat(line.len() - body.len() + 4);
    let mut lines: Vec<String> = Vec::new();
    let mut current = line[..line.len() - body.len()].to_string();
    for field in body.split("  ") {
        if !current.trim().is_empty() {
            if columns(&current) + 2 + columns(field) <= width {
                current.push_str("  ");
            } else {
                lines.push(std::mem::replace(&mut current, indent.clone()));
            }
        }
        // A field longer than what is left breaks between its words.
        for (index, word) in field.split(' ').enumerate() {
            if index > 0 {
                if columns(&current) + 1 + columns(word) <= width {
                    current.push(' ');
                } else {
                    lines.push(std::mem::replace(&mut current, indent.clone()));
                }
            }
            current.push_str(word);
        }
    }
    lines.push(current);
    lines.join("\n")
}

/// `sync_csv_files  run 42  succeeded  synced 12  skipped 3 (exists 0, unchanged 3)  failed 0  1.2 MiB in 0.4s`
pub(super) fn summary_line(record: &RunRecord, kinds: &Kinds) -> String {
    let counters = &record.counters;
    let seconds = record.duration_ms.unwrap_or(0) as f64 / 1000.0;
    let mut line = if kinds.moves_rows(record) {
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
        out!("{}", crate::config::redact(line));
    }
}

pub(super) fn history(runs: &[RunRecord], kinds: &Kinds, json: bool) {
    if json {
        for run in runs {
            print_json(&serde_json::to_value(run).unwrap_or_default());
        }
        return;
    }
    if runs.is_empty() {
        out!("no runs recorded yet");
        return;
    }
    // A retry of items that failed on an older day runs for that day: the
    // FOR column says which, shown when some run is for another day than
    // the one it started on.
    let for_other_day = runs.iter().any(|run| {
        run.execution_date
            .is_some_and(|date| date != run.started_at.date_naive())
    });
    let for_day = |run: &RunRecord| {
        if !for_other_day {
            return String::new();
        }
        let date = run
            .execution_date
            .map(|date| date.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "-".into());
        format!(" {date:<10}")
    };
    // A list of table and HTTP runs only says what its counts are; a
    // mixed one says it in each row's last count.
    let all_rows = runs.iter().all(|run| kinds.moves_rows(run));
    let (synced_header, moved_header) = if all_rows {
        ("UPSERTED", "READ")
    } else {
        ("SYNCED", "MOVED")
    };
    // Fitted between fields and words to a terminal: it would break them
    // anywhere.
    let width = terminal_width();
    let line = |text: String| out!("{}", fit(&text, width));
    line(format!(
        "{:>6}  {:<24} {:<9} {:<11} {:<20}{} {:>9} {:>8} {:>7} {:>6} {:>10}  ERROR",
        "RUN",
        "TASK",
        "TRIGGER",
        "STATUS",
        "STARTED",
        if for_other_day { " FOR       " } else { "" },
        "DURATION",
        synced_header,
        "SKIPPED",
        "FAILED",
        moved_header
    ));
    for run in runs {
        let duration = run
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        // Rows upserted, skipped (bad rows) and failed batches for a table
        // or HTTP sync; files and bytes for a file sync.
        let counters = &run.counters;
        let (synced, skipped, failed, moved) = if kinds.moves_rows(run) {
            (
                counters.rows_upserted,
                counters.rows_skipped,
                counters.batches_failed,
                if all_rows {
                    counters.rows_extracted.to_string()
                } else {
                    format!("{} read", counters.rows_extracted)
                },
            )
        } else {
            (
                counters.files_synced,
                counters.files_skipped(),
                counters.files_failed,
                size(counters.bytes_done),
            )
        };
        line(format!(
            "{:>6}  {:<24} {:<9} {:<11} {:<20}{} {:>9} {:>8} {:>7} {:>6} {:>10}  {}",
            run.run_id,
            run.task_id,
            run.trigger,
            run.status,
            run.started_at.format("%Y-%m-%d %H:%M:%S"),
            for_day(run),
            duration,
            synced,
            skipped,
            failed,
            moved,
            run.error
                .as_deref()
                .or(run.warning.as_deref())
                .unwrap_or(""),
        ));
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
        out!("no failed items");
        return;
    }
    // Ids to the left: a wrapped line's indent follows the line's own
    // leading spaces, which right-aligned ids would vary.
    // A failed batch's key is its recorded bounds (JSON): shown in words.
    let shown: Vec<String> = items
        .iter()
        .map(|item| crate::console::format::item_key(&item.key))
        .collect();
    let task_width = items
        .iter()
        .map(|item| item.task_id.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let item_width = shown
        .iter()
        .map(|key| key.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let width = terminal_width();
    out!(
        "{}",
        fit(
            &format!(
                "{:<5}  {:<task_width$}  {:<5}  {:>8}  {:<9}  {:<item_width$}  ERROR",
                "ID", "TASK", "KIND", "ATTEMPTS", "STATUS", "ITEM"
            ),
            width
        )
    );
    for (item, key) in items.iter().zip(&shown) {
        out!(
            "{}",
            fit(
                &format!(
                    "{:<5}  {:<task_width$}  {:<5}  {:>8}  {:<9}  {:<item_width$}  {}",
                    item.id,
                    item.task_id,
                    item.kind.as_str(),
                    item.attempts,
                    item.status.as_str(),
                    key,
                    item.error
                ),
                width
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{RunStatus, Trigger};

    fn record(task: &str, run_id: RunId, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id,
            task_id: task.into(),
            trigger: Trigger::Manual,
            status,
            started_at: chrono::Utc::now(),
            completed_at: Some(chrono::Utc::now()),
            duration_ms: Some(1000),
            counters: Default::default(),
            error: None,
            warning: None,
            execution_date: None,
        }
    }

    #[test]
    fn a_long_summary_breaks_between_fields_and_never_inside_a_word() {
        let line = "mirror_slowly  run 42  succeeded  synced 1204  skipped 388 (exists 0, unchanged 388)  failed 2  1.2 GiB in 61.0s";
        let fitted = fit(line, Some(40));
        for part in fitted.lines() {
            assert!(part.chars().count() <= 40, "too wide: {part:?}");
        }
        let words = |text: &str| {
            text.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(words(&fitted), words(line), "every word kept whole");
        assert!(fitted.starts_with("mirror_slowly  run 42  succeeded\n    "));
        assert!(fitted.lines().count() > 1);
        assert_eq!(fit(line, None), line, "not a terminal: one line");
    }

    #[test]
    fn totals_count_outcomes_best_first_and_say_task_or_tasks() {
        let mut failed = record("b", 2, RunStatus::Failed);
        failed.counters.files_failed = 3;
        let mut ok = record("a", 1, RunStatus::Succeeded);
        ok.counters.files_synced = 5;
        ok.counters.bytes_done = 2048;
        let results = [
            TaskResult::Ran(Box::new(failed)),
            TaskResult::Ran(Box::new(ok)),
        ];
        assert_eq!(
            totals_line(&results, std::time::Duration::from_millis(1500)),
            "total  2 tasks  1 succeeded  1 failed  files synced 5 failed 3  2.0 KiB  in 1.5s"
        );
        assert_eq!(count(1, "task"), "1 task");
    }
}
