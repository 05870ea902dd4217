//! Counting the rows a run reads, on a connection of its own while
//! batches flow: the planner's estimate first, then the count.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use super::layout::Layout;
use super::{ranges, sql};
use crate::config::TableSyncProperties;
use crate::postgres::sql::quote_ident;
use crate::postgres::{Dialect, Endpoint, PgError, describe};
use crate::task::RunContext;

pub(super) fn spawn_count(
    endpoint: Endpoint,
    layout: Arc<Layout>,
    watermark: Option<String>,
    lookback: Option<Duration>,
    properties: &TableSyncProperties,
    context: &RunContext,
) -> tokio::task::JoinHandle<()> {
    let counters = context.clone_for_progress();
    let batch_size = *properties.batch_size.get_ref() as u64;
    tokio::spawn(async move {
        let result = async {
            let client = endpoint.connect().await?;
            // The planner's estimate shows at once; counting a large table
            // takes a while.
            if watermark.is_none()
                && let Some(estimate) =
                    ranges::estimate_rows(&client, endpoint.dialect, &layout.relation).await
            {
                counters.update(|counters| {
                    counters.rows_total = Some(estimate);
                    counters.rows_total_estimated = true;
                    counters.batches_total = Some(estimate.div_ceil(batch_size.max(1)));
                    counters.totals_known = true;
                });
            }
            count_rows(
                &client,
                endpoint.dialect,
                &layout,
                watermark.as_deref(),
                lookback,
            )
            .await
        }
        .await;
        match result {
            Ok(total) => counters.update(|counters| {
                counters.rows_total = Some(total);
                counters.rows_total_estimated = false;
                counters.batches_total = Some(total.div_ceil(batch_size.max(1)));
                counters.totals_known = true;
            }),
            Err(error) => {
                tracing::warn!(%error, "could not count the source rows; progress shows no total")
            }
        }
    })
}

/// Source rows a run reads: all, or those above the watermark's floor and
/// those without a watermark.
pub(super) async fn count_rows(
    client: &Client,
    dialect: Dialect,
    layout: &Layout,
    watermark: Option<&str>,
    lookback: Option<Duration>,
) -> Result<u64, PgError> {
    let mut query = sql::Query::new(dialect);
    let relation = layout.relation.relation_sql();
    let mut sql = format!("SELECT count(*) FROM {relation}");
    if layout.watermark
        && let (Some(watermark), Some(column)) = (watermark, layout.keys.first())
    {
        // Two counts, each an index range: `floor OR column IS NULL` makes
        // the planner visit the heap of every changed row (five times the
        // time at a million rows, on the source the run is reading).
        let floor = query.greater(column, watermark, lookback);
        sql = format!(
            "SELECT (SELECT count(*) FROM {relation} WHERE {floor}) + (SELECT count(*) FROM {relation} WHERE {} IS NULL)",
            quote_ident(&column.name)
        );
    }
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = query
        .params
        .iter()
        .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let row = client
        .query_one(sql.as_str(), &params)
        .await
        .map_err(|error| PgError::Database(describe(&error)))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}
