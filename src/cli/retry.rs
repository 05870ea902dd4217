//! `syncdeck retry`: the failed items of a task run again, all pending
//! ones (`--all-failed`) or those chosen by id (`--batch`), with the same
//! progress and summary as `run`. Nothing pending is not an error.
//! `syncdeck abandon` gives up on pending items instead, and `syncdeck
//! reset` forgets a watermark.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use super::{Failure, exit_code, init_logs, load, open_engine, progress, report, usage};
use crate::config::Resolve;
use crate::engine::{Engine, EngineError, RunOptions, TaskResult};
use crate::logging::StderrLogs;
use crate::state::StateStore;

pub(super) async fn run(
    config_path: Option<&Path>,
    task: String,
    batch: Vec<i64>,
    all_failed: bool,
    json: bool,
) -> Result<u8, Failure> {
    let config = load(config_path, Resolve::Everything)?;
    if config.task(&task).is_none() {
        return Err(usage(config.unknown_task(&task)));
    }
    if batch.is_empty() && !all_failed {
        return Err(usage(format!(
            "retry needs to know which items: `syncdeck retry {task} --all-failed` retries every pending failed item, `--batch ID…` chooses some (ids from `syncdeck errors {task}`)"
        )));
    }
    let progress = std::io::stderr().is_terminal();
    let _logs = init_logs(
        &config,
        if progress {
            StderrLogs::Off
        } else {
            StderrLogs::Info
        },
    );
    let engine = open_engine(config).await?;
    let ids = (!all_failed).then_some(batch.as_slice());
    if let Some(code) = nothing_to_retry(&engine, &task, ids, json).await? {
        return Ok(code);
    }
    let started = std::time::Instant::now();
    let watcher = progress.then(|| progress::spawn(&engine));
    let result = engine.retry(&task, ids, RunOptions::default()).await;
    if let Some(watcher) = watcher {
        watcher.finish().await;
    }
    match result {
        Ok(records) => {
            let results: Vec<_> = records
                .into_iter()
                .map(|record| TaskResult::Ran(Box::new(record)))
                .collect();
            let width = report::terminal_width();
            report::results(
                &results,
                &report::Kinds::of(engine.config()),
                json,
                &Default::default(),
                width,
                started.elapsed(),
            );
            Ok(exit_code(&results))
        }
        // Emptied by another worker since the check above.
        Err(error @ EngineError::NothingToRetry { .. }) => {
            say_nothing_to_retry(&error.to_string(), json);
            Ok(0)
        }
        Err(error) => Err(anyhow::Error::from(error).into()),
    }
}

/// Before a retry: `Some(exit code)` when there is nothing to retry. Ids
/// that are no failed item of the task are a usage error; a task (or ids)
/// with nothing pending is not an error: there is simply nothing to do.
async fn nothing_to_retry(
    engine: &Engine,
    task: &str,
    ids: Option<&[i64]>,
    json: bool,
) -> Result<Option<u8>, Failure> {
    let items = engine
        .state()
        .failed_items(Some(task), false)
        .await
        .context("cannot read failed items")?;
    if let Some(ids) = ids {
        refuse_unknown_ids(task, ids, &items)?;
    }
    let pending = items
        .iter()
        .filter(|item| item.status == crate::state::ItemStatus::Pending)
        .any(|item| ids.is_none_or(|ids| ids.contains(&item.id)));
    if pending {
        return Ok(None);
    }
    let message = match ids {
        Some(_) => format!(
            "nothing to retry: the chosen items of task `{task}` are no longer pending (resolved or abandoned)"
        ),
        None => format!("nothing to retry: task `{task}` has no pending failed items"),
    };
    say_nothing_to_retry(&message, json);
    Ok(Some(0))
}

/// Keeps stdout for results under `--json`.
fn say_nothing_to_retry(message: &str, json: bool) {
    if json {
        eprintln!("syncdeck: {message}");
    } else {
        out!("{message}");
    }
}

/// `syncdeck abandon`: marks pending failed items of `task` abandoned, all
/// of them or those chosen by id. The task may be gone from the config:
/// its items stay in the state store until abandoned.
pub(super) async fn abandon(
    config_path: Option<&Path>,
    task: String,
    ids: Vec<i64>,
    all_failed: bool,
) -> Result<u8, Failure> {
    let config = load(config_path, Resolve::WithoutCredentials)?;
    if ids.is_empty() && !all_failed {
        return Err(usage(format!(
            "abandon needs to know which items: `syncdeck abandon {task} --all-failed` gives up on every pending failed item, `--item ID…` on some (ids from `syncdeck errors {task}`)"
        )));
    }
    let _logs = init_logs(&config, StderrLogs::Warnings);
    let state = super::open_state(&config).await?;
    let items = state
        .failed_items(Some(&task), false)
        .await
        .context("cannot read failed items")?;
    if items.is_empty() && config.task(&task).is_none() {
        return Err(usage(unknown_task(&config, &*state, &task).await));
    }
    refuse_unknown_ids(&task, &ids, &items)?;
    let chosen: Vec<i64> = items
        .iter()
        .filter(|item| item.status == crate::state::ItemStatus::Pending)
        .filter(|item| all_failed || ids.contains(&item.id))
        .map(|item| item.id)
        .collect();
    for id in &chosen {
        state
            .set_item_status(*id, crate::state::ItemStatus::Abandoned)
            .await
            .context("cannot mark a failed item abandoned")?;
    }
    let skipped = ids.len().saturating_sub(chosen.len());
    let mut message = format!(
        "abandoned {} failed item(s) of task `{task}`; `syncdeck errors {task} --all` still lists them",
        chosen.len()
    );
    if !all_failed && skipped > 0 {
        message.push_str(&format!(
            " ({skipped} of the chosen were no longer pending)"
        ));
    }
    out!("{message}");
    Ok(0)
}

/// No task `task` in the config and no failed item of it: says so, and
/// suggests a task of the config or one that still has pending items (a
/// task removed from the config can still be abandoned).
async fn unknown_task(
    config: &crate::config::Config,
    state: &dyn StateStore,
    task: &str,
) -> String {
    let mut ids: Vec<String> = config.tasks.iter().map(|task| task.id.clone()).collect();
    if let Ok(items) = state.failed_items(None, false).await {
        ids.extend(
            items
                .into_iter()
                .filter(|item| item.status == crate::state::ItemStatus::Pending)
                .map(|item| item.task_id),
        );
    }
    ids.sort();
    ids.dedup();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    match crate::config::error::did_you_mean(task, &names) {
        Some(best) => format!(
            "no task `{task}` in {} and no failed item of it; did you mean `{best}`?",
            config.file.display()
        ),
        None => config.unknown_task(task),
    }
}

/// Ids given on the command line that are no failed item of `task`: a
/// usage error naming them.
fn refuse_unknown_ids(
    task: &str,
    ids: &[i64],
    items: &[crate::state::FailedItem],
) -> Result<(), Failure> {
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !items.iter().any(|item| item.id == **id))
        .map(i64::to_string)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "task `{task}` has no failed item with id {}; `syncdeck errors {task} --all` lists its items",
        unknown.join(", ")
    )))
}

/// `syncdeck reset TASK`: forgets the watermark of an incremental table
/// sync or an HTTP sync, so its next run reads the whole source again
/// (after rows were abandoned, deleted from the target or fixed there by
/// hand: rows below the watermark are not read again otherwise).
pub(super) async fn reset(config_path: Option<&Path>, task: String) -> Result<u8, Failure> {
    use crate::config::{TableMode, TaskProperties};
    let config = load(config_path, Resolve::WithoutCredentials)?;
    let Some(found) = config.task(&task) else {
        return Err(usage(config.unknown_task(&task)));
    };
    let keeps_one = match &found.properties {
        TaskProperties::TableSync(table) => *table.mode.get_ref() == TableMode::Incremental,
        TaskProperties::HttpSync(http) => http.updated_since_param.is_some(),
        TaskProperties::Sync(_) | TaskProperties::Airbyte(_) => false,
    };
    if !keeps_one {
        return Err(usage(format!(
            "task `{task}` keeps no watermark: only table syncs with mode = \"incremental\" and HTTP syncs with updated_since_param do; its runs already read the whole source"
        )));
    }
    let _logs = init_logs(&config, StderrLogs::Warnings);
    let state = super::open_state(&config).await?;
    let forgotten = state
        .delete_watermark(&task)
        .await
        .context("cannot forget the watermark")?;
    match forgotten {
        Some(value) => out!(
            "forgot the watermark {value} of task `{task}`: its next run reads the whole source (rows already in the target are compared, not rewritten)"
        ),
        None => out!("task `{task}` has no watermark stored: its next run reads the whole source"),
    }
    Ok(0)
}
