//! Paginated HTTP API sync (`type = "http_sync"`): GET pages of JSON from
//! an API (page/limit or cursor pagination), map each item to target
//! columns (dotted paths or jq expressions, after an optional jq `filter`),
//! and upsert every page into PostgreSQL as one batch with
//! the same rules as table sync: a failed page is retried with backoff,
//! then recorded (page number and `updated_since`) and retriable alone;
//! bad items are skipped and recorded; the watermark (the start of the
//! last fully successful run) advances only when a run succeeded.
//!
//! Depends on `postgres` (target catalog, loader, rows), `batch` (loading
//! with retries), `task` (the contract and run context) and `state`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::HttpSyncProperties;
use crate::config::jq::{ColumnSource, Input, RunValue};
use crate::config::template;
use crate::postgres::coerce::ValueType;
use crate::postgres::{Endpoint, Loader, PgError, Rows, catalog};
use crate::state::{ItemKind, ItemStatus, StateError};
use crate::task::retry::{Next, Retry};
use crate::task::{PlanRequest, RunContext, TaskBody, TaskOutcome, TaskPlan, final_status};

/// Consecutive failed pages after which a run stops reading: the API is
/// likely down, and further pages would only fail too.
const GIVE_UP_AFTER: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HttpSyncError {
    /// The API could not be reached or answered something unusable.
    #[error("{0}")]
    Api(String),
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cancelled by the operator")]
    Cancelled,
}

/// A page that could not be loaded; its failure is already recorded (or
/// the run was cancelled).
struct PageFailed;

/// Which page a batch is: what a retry fetches again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageKey {
    pub page: Option<u64>,
    pub cursor: Option<String>,
    pub updated_since: Option<String>,
}

/// A value at a dotted path (`profile.name`, `items.0.id`).
fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.')
        .try_fold(value, |current, part| match current {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => None,
        })
}

/// A JSON value as the text PostgreSQL reads for a column.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        other => Some(other.to_string()),
    }
}

struct Api<'a> {
    http: reqwest::Client,
    properties: &'a HttpSyncProperties,
    /// `path` and `query` with the run's templates filled in.
    path: String,
    query: Vec<(String, String)>,
}

impl Api<'_> {
    async fn page(&self, key: &PageKey) -> Result<Value, HttpSyncError> {
        let properties = self.properties;
        let url = format!("{}{}", properties.base_url.trim_end_matches('/'), self.path);
        let mut query: Vec<(String, String)> = self.query.clone();
        query.push((
            properties.limit_param.clone(),
            properties.page_size.to_string(),
        ));
        if let Some(page) = key.page {
            query.push((properties.page_param.clone(), page.to_string()));
        }
        if let Some(cursor) = &key.cursor {
            query.push((properties.cursor_param.clone(), cursor.clone()));
        }
        if let (Some(param), Some(since)) = (&properties.updated_since_param, &key.updated_since) {
            query.push((param.clone(), since.clone()));
        }
        let mut request = self.http.get(&url).query(&query);
        if let Some(token) = &properties.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|error| {
            let mut text = error.to_string();
            if let Some(url) = error.url() {
                text = text
                    .replace(url.as_str(), "")
                    .replace("()", "")
                    .trim()
                    .to_string();
            }
            HttpSyncError::Api(format!("GET {url}: {text}"))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(HttpSyncError::Api(format!(
                "GET {url}: the API answered {status}"
            )));
        }
        response
            .json()
            .await
            .map_err(|error| HttpSyncError::Api(format!("GET {url}: not JSON: {error}")))
    }

    /// Fetches a page, retrying with backoff; the error of the last
    /// attempt and how many were made.
    async fn page_with_retries(
        &self,
        key: &PageKey,
        context: &RunContext,
        label: &str,
    ) -> Result<Value, (HttpSyncError, u32)> {
        let mut retry = Retry::new(
            context,
            "page",
            label,
            self.properties.max_retries,
            self.properties.retry_backoff,
        );
        loop {
            let attempt = retry.begin();
            let error = tokio::select! {
                _ = context.cancel.cancelled() => return Err((HttpSyncError::Cancelled, attempt)),
                result = self.page(key) => match result {
                    Ok(page) => return Ok(page),
                    Err(error) => error,
                },
            };
            match retry.failed(&error.to_string(), true).await {
                Next::Again => {}
                Next::Cancelled => return Err((HttpSyncError::Cancelled, attempt)),
                Next::GiveUp { attempts } => return Err((error, attempts)),
            }
        }
    }
}

/// Target columns in load order: (name, type, source, check).
struct Columns {
    names_and_types: Vec<(String, String)>,
    sources: Vec<ColumnSource>,
    checks: Vec<ValueType>,
    /// Whether any column (or the filter) needs the item as jq input.
    uses_jq: bool,
}

/// An HTTP API sync task.
pub(crate) struct HttpSyncBody(pub(crate) std::sync::Arc<HttpSyncProperties>);

#[async_trait::async_trait]
impl TaskBody for HttpSyncBody {
    async fn run(&self, context: &RunContext) -> TaskOutcome {
        TaskOutcome::of(run_inner(&self.0, context).await, &context.cancel)
    }

    async fn plan(&self, request: &PlanRequest) -> Result<TaskPlan, String> {
        let properties = &self.0;
        let line = format!(
            "{}: would read {}{} in pages of {} into {}",
            request.task_id,
            properties.base_url,
            properties.path,
            properties.page_size,
            properties.target_table
        );
        let json = serde_json::json!({
            "task_id": request.task_id,
            "url": format!("{}{}", properties.base_url, properties.path),
            "page_size": properties.page_size,
            "target_table": properties.target_table,
        });
        Ok(TaskPlan {
            lines: vec![line],
            json,
        })
    }
}

async fn run_inner(
    properties: &HttpSyncProperties,
    context: &RunContext,
) -> Result<TaskOutcome, HttpSyncError> {
    let endpoint = Endpoint::parse(properties.target.expose(), "target", &context.task_id)?;
    let target = endpoint.connect().await?;
    let types = catalog::target_columns(&target, &properties.target_table).await?;
    catalog::check_conflict_key(&target, &properties.target_table, &properties.primary_key).await?;
    let mut columns = Columns {
        names_and_types: Vec::new(),
        sources: Vec::new(),
        checks: Vec::new(),
        uses_jq: properties.filter.is_some(),
    };
    for (name, source) in &properties.columns {
        let Some((_, type_name)) = types.iter().find(|(column, _)| column == name) else {
            return Err(HttpSyncError::Api(format!(
                "target table `{}` has no column `{name}`",
                properties.target_table
            )));
        };
        columns
            .names_and_types
            .push((name.clone(), type_name.clone()));
        if let ColumnSource::Jq(expression) = source {
            expression.program.as_ref().map_err(|error| {
                HttpSyncError::Api(format!("column `{name}`: jq: {}", error.message))
            })?;
            columns.uses_jq = true;
        }
        columns.sources.push(source.clone());
        columns.checks.push(ValueType::from_type_name(type_name));
    }
    let retrying = context.retry_items.is_some();
    let mut loader = Loader::new(
        endpoint,
        &properties.target_table,
        &columns.names_and_types,
        &properties.primary_key,
    );
    loader.first_load =
        !retrying && catalog::target_is_empty(&target, &properties.target_table).await?;
    drop(target);

    let http = reqwest::Client::builder()
        .timeout(properties.request_timeout)
        .build()
        .map_err(|error| HttpSyncError::Api(format!("cannot build an HTTP client: {error}")))?;
    let api = Api {
        http,
        properties,
        path: template::render(&properties.path, &context.templates),
        query: properties
            .query
            .iter()
            .map(|(name, value)| (name.clone(), template::render(value, &context.templates)))
            .collect(),
    };
    // APIs compare `updated_since` with whole seconds and `>`: an item
    // updated later in the second the run started must not be missed, so
    // the next run starts one second early (reading twice is harmless).
    let run_started = (chrono::Utc::now() - chrono::TimeDelta::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let since = match (&properties.updated_since_param, retrying) {
        (Some(_), false) => context.state.watermark(&context.task_id).await?,
        _ => None,
    };

    if let Some(items) = &context.retry_items {
        for item in items.iter().filter(|item| item.kind == ItemKind::Batch) {
            let key: PageKey = serde_json::from_str(&item.key).map_err(|error| {
                HttpSyncError::Api(format!("failed item #{} is unreadable: {error}", item.id))
            })?;
            if sync_page(&api, &key, &columns, &mut loader, properties, context)
                .await
                .is_ok()
            {
                let _ = context
                    .state
                    .set_item_status(item.id, ItemStatus::Resolved)
                    .await;
            }
        }
    } else {
        let mut key = PageKey {
            page: properties.cursor_path.is_none().then_some(1),
            cursor: None,
            updated_since: since.clone(),
        };
        let mut failed_in_a_row = 0;
        loop {
            if context.cancel.is_cancelled() {
                return Ok(TaskOutcome::cancelled());
            }
            match sync_page(&api, &key, &columns, &mut loader, properties, context).await {
                Ok(page) => {
                    failed_in_a_row = 0;
                    let next_cursor = properties
                        .cursor_path
                        .as_deref()
                        .and_then(|path| at_path(&page.body, path))
                        .and_then(as_text);
                    let total = properties
                        .total_path
                        .as_deref()
                        .and_then(|path| at_path(&page.body, path))
                        .and_then(Value::as_u64);
                    if let Some(total) = total {
                        context.update_counters(|counters| {
                            counters.rows_total = Some(total);
                            counters.batches_total =
                                Some(total.div_ceil(properties.page_size as u64));
                            counters.totals_known = true;
                        });
                    }
                    let read_so_far = key.page.unwrap_or(0) * properties.page_size as u64;
                    let more = match (&properties.cursor_path, total) {
                        (Some(_), _) => next_cursor.is_some() && page.items > 0,
                        (None, Some(total)) => read_so_far < total,
                        (None, None) => page.items == properties.page_size,
                    };
                    if !more {
                        break;
                    }
                    key = PageKey {
                        page: key.page.map(|page| page + 1),
                        cursor: next_cursor,
                        updated_since: since.clone(),
                    };
                }
                Err(PageFailed) if context.cancel.is_cancelled() => {
                    return Ok(TaskOutcome::cancelled());
                }
                Err(PageFailed) => {
                    failed_in_a_row += 1;
                    let total_pages = context.counters().batches_total;
                    let past_the_end = matches!((key.page, total_pages), (Some(page), Some(total)) if page >= total);
                    if properties.cursor_path.is_some()
                        || failed_in_a_row >= GIVE_UP_AFTER
                        || past_the_end
                    {
                        break;
                    }
                    key = PageKey {
                        page: key.page.map(|page| page + 1),
                        cursor: None,
                        updated_since: since.clone(),
                    };
                }
            }
        }
    }

    crate::batch::confirm_flushed(
        &mut loader,
        properties.max_retries,
        properties.retry_backoff,
        context,
    )
    .await;
    if context.cancel.is_cancelled() {
        return Ok(TaskOutcome::cancelled());
    }
    let counters = context.counters();
    // A run that read every page again re-checked the bad items earlier
    // runs recorded: those bad again now carry this run's id, the others
    // loaded. Not when a page failed (its items were neither loaded nor
    // checked) or more were bad than a run records.
    if !retrying
        && counters.batches_failed == 0
        && counters.rows_skipped <= crate::batch::BAD_ROWS_KEPT
    {
        context
            .resolve_pending(|item| item.kind == ItemKind::Row && item.run_id != context.run_id)
            .await;
    }
    let status = final_status(
        counters.batches_done,
        counters.batches_failed + counters.rows_skipped,
    );
    if status.is_success() {
        if !retrying && properties.updated_since_param.is_some() {
            context
                .state
                .set_watermark(&context.task_id, &run_started, None)
                .await?;
        }
        return Ok(TaskOutcome::new(status, None, None));
    }
    Ok(TaskOutcome::new(
        status,
        Some(format!(
            "{} page(s) failed, {} item(s) skipped; the watermark stays; see `syncdeck errors {}`",
            counters.batches_failed, counters.rows_skipped, context.task_id
        )),
        None,
    ))
}

/// A page that was fetched and loaded.
struct Page {
    body: Value,
    items: usize,
}

/// Fetches one page and loads its items as one batch. A page that cannot
/// be fetched or loaded is recorded as a failed batch (`Err`).
async fn sync_page(
    api: &Api<'_>,
    key: &PageKey,
    columns: &Columns,
    loader: &mut Loader,
    properties: &HttpSyncProperties,
    context: &RunContext,
) -> Result<Page, PageFailed> {
    let label = match (key.page, &key.cursor) {
        (Some(page), _) => format!("page {page}"),
        (None, Some(cursor)) => format!("page at cursor {cursor}"),
        (None, None) => "first page".to_string(),
    };
    let record = |error: String, attempts: u32| async move {
        context.update_counters(|counters| counters.batches_failed += 1);
        context
            .record_failure(
                ItemKind::Batch,
                &serde_json::to_string(key).unwrap_or_default(),
                &error,
                attempts,
            )
            .await;
    };
    let body = match api.page_with_retries(key, context, &label).await {
        Ok(body) => body,
        Err((error, attempts)) => {
            if !context.cancel.is_cancelled() {
                record(error.to_string(), attempts).await;
            }
            return Err(PageFailed);
        }
    };
    let items: Vec<Value> = at_path(&body, &properties.items_path)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let transformed = transform(&items, columns, properties, context);
    crate::batch::skip_bad_rows(context, &transformed.bad).await;
    let rows = transformed.rows;
    context.update_counters(|counters| {
        counters.rows_extracted += items.len() as u64;
        counters.rows_filtered += transformed.filtered;
    });

    let item_key = serde_json::to_string(key).unwrap_or_default();
    if crate::batch::load_with_retries(
        loader,
        rows,
        properties.max_retries,
        properties.retry_backoff,
        context,
        &label,
        &item_key,
    )
    .await
    {
        Ok(Page {
            body,
            items: items.len(),
        })
    } else {
        Err(PageFailed)
    }
}

/// A page's items as rows, the items skipped (key, reason) and how many
/// the filter dropped.
struct Transformed {
    rows: Rows,
    bad: Vec<(String, String)>,
    filtered: u64,
}

/// Maps items to rows: the filter first, then each column (a dotted path
/// or jq), then the target types. An item that fails any step is bad, the
/// rest of the page goes on. Synchronous: jq values are not `Send`.
fn transform(
    items: &[Value],
    columns: &Columns,
    properties: &HttpSyncProperties,
    context: &RunContext,
) -> Transformed {
    let run = RunValue::new(
        context.run_id,
        &context.task_id,
        &context.templates.execution_date,
    );
    let mut out = Transformed {
        rows: Rows::with_capacity(columns.sources.len(), items.len()),
        bad: Vec::new(),
        filtered: 0,
    };
    for item in items {
        let input = columns.uses_jq.then(|| Input::from_json(item));
        let key_of = |values: &[Result<Option<String>, String>]| {
            properties
                .primary_key
                .iter()
                .map(|key| {
                    let value = columns
                        .names_and_types
                        .iter()
                        .position(|(name, _)| name == key)
                        .and_then(|index| values.get(index))
                        .and_then(|value| value.as_ref().ok().cloned().flatten());
                    format!("{key}={}", value.unwrap_or_else(|| "NULL".into()))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let (Some(filter), Some(input)) = (&properties.filter, &input) {
            let keeps = filter
                .program
                .as_ref()
                .map_err(|error| error.message.clone())
                .and_then(|program| program.keeps(input, &run));
            match keeps {
                Ok(true) => {}
                Ok(false) => {
                    out.filtered += 1;
                    continue;
                }
                Err(error) => {
                    let values = column_values(item, Some(input), columns, &run);
                    out.bad.push((key_of(&values), format!("filter: {error}")));
                    continue;
                }
            }
        }
        let values = column_values(item, input.as_ref(), columns, &run);
        let problem = values
            .iter()
            .zip(&columns.checks)
            .zip(&columns.names_and_types)
            .find_map(|((value, check), (name, _))| match value {
                Err(error) => Some(format!("column `{name}`: jq: {error}")),
                Ok(None) if properties.primary_key.contains(name) => {
                    Some(format!("key `{name}` is missing"))
                }
                Ok(None) => None,
                Ok(Some(text)) => check
                    .check(text)
                    .err()
                    .map(|reason| format!("column `{name}`: {reason}")),
            });
        match problem {
            None => out.rows.push_row(
                values
                    .iter()
                    .map(|value| value.as_ref().ok().and_then(Option::as_deref)),
            ),
            Some(reason) => out.bad.push((key_of(&values), reason)),
        }
    }
    out
}

/// Each column's value for one item: `Err` is a jq runtime error.
fn column_values(
    item: &Value,
    input: Option<&Input>,
    columns: &Columns,
    run: &RunValue,
) -> Vec<Result<Option<String>, String>> {
    columns
        .sources
        .iter()
        .map(|source| match (source, input) {
            (ColumnSource::Path(path), _) => Ok(at_path(item, path).and_then(as_text)),
            (ColumnSource::Jq(expression), Some(input)) => expression
                .program
                .as_ref()
                .map_err(|error| error.message.clone())
                .and_then(|program| program.text(input, run)),
            (ColumnSource::Jq(_), None) => Err("jq input missing".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_reach_nested_values_and_array_items() {
        let item = serde_json::json!({"id": 7, "profile": {"name": "Ada", "tags": ["x", "y"]}, "gone": null});
        assert_eq!(
            at_path(&item, "profile.name").and_then(as_text).as_deref(),
            Some("Ada")
        );
        assert_eq!(
            at_path(&item, "profile.tags.1")
                .and_then(as_text)
                .as_deref(),
            Some("y")
        );
        assert_eq!(at_path(&item, "id").and_then(as_text).as_deref(), Some("7"));
        assert_eq!(at_path(&item, "gone").and_then(as_text), None);
        assert_eq!(
            at_path(&item, "profile").and_then(as_text).as_deref(),
            Some("{\"name\":\"Ada\",\"tags\":[\"x\",\"y\"]}")
        );
        assert!(at_path(&item, "missing.path").is_none());
    }
}
