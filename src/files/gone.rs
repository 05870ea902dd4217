//! Failed files whose source was deleted since they failed: nothing is
//! left to copy, so they are marked `gone` instead of staying pending
//! (and retried, and counted) forever.

use super::plan::Sides;
use crate::config::SyncProperties;
use crate::state::{FailedItem, ItemKind, ItemStatus};
use crate::task::RunContext;

/// Marks this task's failed files that no longer exist at the source as
/// `gone` and returns their paths. Runs after the files this run landed
/// were resolved: a retry run looks at the items it retried, any other run
/// at every failed file of the task still pending.
///
/// Only for sources without templates: a templated source (a folder per
/// `execution_date`, say) is another folder today than when the file
/// failed, so a file missing from it says nothing about the one that failed.
pub(super) async fn settle_gone(
    properties: &SyncProperties,
    plan: &Sides,
    context: &RunContext,
) -> Vec<String> {
    if properties.source_path.get_ref().contains("{{") {
        return Vec::new();
    }
    let Some(source_folder) = &plan.source_folder else {
        return Vec::new();
    };
    // Read again rather than taken from the retry's list: what this run
    // recorded (a file that failed again, a name it refused) carries its
    // run id now, and is not gone, whatever a look at the source says.
    let items: Vec<FailedItem> = match context
        .state
        .failed_items(Some(&context.task_id), true)
        .await
    {
        Ok(items) => items,
        Err(error) => {
            tracing::warn!(%error, "cannot read pending failed files to find deleted ones");
            return Vec::new();
        }
    };
    let retried: Option<Vec<i64>> = context
        .retry_items
        .as_ref()
        .map(|items| items.iter().map(|item| item.id).collect());
    let items = items.into_iter().filter(|item| {
        item.kind == ItemKind::File
            && item.run_id != context.run_id
            && retried.as_ref().is_none_or(|ids| ids.contains(&item.id))
    });
    let mut gone = Vec::new();
    for item in items {
        // A file no longer selected (the pattern changed) is not gone:
        // only one the source does not have.
        match plan
            .source_store
            .head(&format!("{source_folder}{}", item.key))
            .await
        {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(error) => {
                tracing::warn!(path = %item.key, %error, "cannot tell whether a failed file is still at the source; it stays pending");
                continue;
            }
        }
        match context
            .state
            .set_item_status(item.id, ItemStatus::Gone)
            .await
        {
            Ok(()) => {
                tracing::warn!(path = %item.key, item = item.id, "a failed file was deleted at the source; marked gone");
                gone.push(item.key);
            }
            Err(error) => {
                tracing::warn!(%error, item = item.id, "could not mark a deleted failed file gone")
            }
        }
    }
    gone
}

/// The run's warning about files marked gone.
pub(super) fn warning(gone: &[String]) -> Option<String> {
    const SHOWN: usize = 5;
    if gone.is_empty() {
        return None;
    }
    let mut names = gone
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if gone.len() > SHOWN {
        names.push_str(&format!(" and {} more", gone.len() - SHOWN));
    }
    Some(format!(
        "{} failed file(s) no longer at the source, marked gone (see `syncdeck errors --all`): {names}",
        gone.len()
    ))
}
