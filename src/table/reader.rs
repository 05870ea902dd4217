//! Reading batches from the source with keyset queries.

use std::time::Duration;

use tokio_postgres::Client;

use super::layout::{BatchBounds, Layout};
use super::sql::{self, KeyColumn, Read};
use crate::postgres::binary::{self, Raw};
use crate::postgres::sql::quote_ident;
use crate::postgres::{Endpoint, PgError, Rows, describe};

/// Reads batches from the source.
pub(crate) struct Reader {
    pub(crate) endpoint: Endpoint,
    pub(crate) client: Option<Client>,
    /// Batch queries prepared on `client`, by SQL text: every batch after
    /// the first runs the same statement, planned once.
    pub(crate) prepared: std::collections::HashMap<String, tokio_postgres::Statement>,
}

impl Reader {
    async fn read(
        &mut self,
        layout: &Layout,
        bounds: &BatchBounds,
        limit: Option<usize>,
    ) -> Result<Rows, PgError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            // A new connection would read in another snapshot: rows moved
            // between the two would be read twice or not at all.
            if bounds.pages.is_some() {
                return Err(PgError::Database(format!(
                    "reading {}: the connection reading the source in one snapshot was lost; run the task again (rows loaded so far are kept and compared by key)",
                    self.endpoint.name
                )));
            }
            self.client = Some(self.endpoint.connect().await?);
            self.prepared.clear();
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| PgError::Database("no source connection".into()))?;
        let mut query = sql::Query::new(self.endpoint.dialect);
        let mut conditions = Vec::new();
        if layout.watermark
            && bounds.range.is_none()
            && bounds.within.is_none()
            && bounds.pages.is_none()
            && let Some(column) = layout.keys.first()
        {
            conditions.push(watermark_condition(&mut query, column, bounds));
        }
        let keys = bounds.keys(layout);
        if let Some(pages) = &bounds.pages {
            conditions.push(query.pages(pages.from, pages.to));
            // Keyset paging cannot reach rows without a key either; the
            // run's count shows them missing.
            for key in keys {
                conditions.push(format!("{} IS NOT NULL", quote_ident(&key.name)));
            }
        }
        if let Some(span) = &bounds.within {
            conditions.push(query.at_least(keys, &span.first));
            conditions.push(query.through(keys, &span.last));
        }
        if let Some(range) = &bounds.range {
            let first = &keys[..keys.len().min(1)];
            if let Some(above) = &range.above {
                conditions.push(query.after(first, &[Some(above.clone())]));
            }
            if let Some(through) = &range.through {
                conditions.push(query.through(first, &[Some(through.clone())]));
            }
        }
        if let Some(after) = &bounds.after {
            conditions.push(query.after(keys, after));
        }
        if !bounds.through.is_empty() {
            conditions.push(query.through(keys, &bounds.through));
        }
        let built = sql::select_batch(
            self.endpoint.dialect,
            &layout.relation,
            &layout.source_columns,
            if bounds.any_order { &[] } else { keys },
            conditions,
            query.params,
            limit,
        );
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = built
            .params
            .iter()
            .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let statement = match self.prepared.get(&built.sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = client.prepare(&built.sql).await.map_err(|error| {
                    PgError::Database(format!(
                        "reading {}: {}",
                        self.endpoint.name,
                        describe(&error)
                    ))
                })?;
                self.prepared.insert(built.sql.clone(), statement.clone());
                statement
            }
        };
        let failed = |error: tokio_postgres::Error| {
            PgError::Database(format!(
                "reading {}: {}",
                self.endpoint.name,
                describe(&error)
            ))
        };
        let stream = client.query_raw(&statement, params).await.map_err(failed)?;
        futures::pin_mut!(stream);
        let width = layout.source_columns.len();
        let mut rows = Rows::with_capacity(width, limit.unwrap_or(0).min(10_000));
        while let Some(row) = futures::TryStreamExt::try_next(&mut stream)
            .await
            .map_err(failed)?
        {
            for (index, column) in layout.source_columns.iter().enumerate() {
                match column.read {
                    Read::Cast | Read::Text => rows.push(row.try_get(index).map_err(failed)?),
                    Read::Char => rows.push(
                        row.try_get::<_, Option<&str>>(index)
                            .map_err(failed)?
                            .map(|text| text.trim_end_matches(' ')),
                    ),
                    Read::Int2 => rows.push_integer(
                        row.try_get::<_, Option<i16>>(index)
                            .map_err(failed)?
                            .map(i64::from),
                    ),
                    Read::Int4 => rows.push_integer(
                        row.try_get::<_, Option<i32>>(index)
                            .map_err(failed)?
                            .map(i64::from),
                    ),
                    Read::Int8 => rows.push_integer(row.try_get(index).map_err(failed)?),
                    Read::Bool => rows.push(
                        row.try_get::<_, Option<bool>>(index)
                            .map_err(failed)?
                            .map(|value| if value { "true" } else { "false" }),
                    ),
                    Read::Binary(kind) => {
                        match row.try_get::<_, Option<Raw>>(index).map_err(failed)? {
                            None => rows.push(None),
                            Some(Raw(raw)) => rows
                                .push_with(|out| binary::write_value(kind, raw, out))
                                .map_err(|reason| undecodable(&self.endpoint, column, &reason))?,
                        }
                    }
                    Read::Array => match row.try_get::<_, Option<Raw>>(index).map_err(failed)? {
                        None => rows.push(None),
                        Some(Raw(raw)) => rows
                            .push_with(|out| binary::write_array(raw, out))
                            .map_err(|reason| undecodable(&self.endpoint, column, &reason))?,
                    },
                }
            }
        }
        Ok(rows)
    }
}

fn undecodable(endpoint: &Endpoint, column: &sql::SourceColumn, reason: &str) -> PgError {
    PgError::Database(format!(
        "reading {}: column `{name}` holds {reason}; read it as text with a source_query that selects `CAST({name} AS text) AS {name}`",
        endpoint.name,
        name = column.name
    ))
}

/// Which rows of the watermark column a batch reads: those above the floor,
/// all with a watermark (no floor yet), or those without one.
pub(super) fn watermark_condition(
    query: &mut sql::Query,
    column: &KeyColumn,
    bounds: &BatchBounds,
) -> String {
    if bounds.null_watermark {
        return format!("{} IS NULL", quote_ident(&column.name));
    }
    match &bounds.watermark_above {
        Some(floor) => query.greater(column, floor, bounds.lookback()),
        None => format!("{} IS NOT NULL", quote_ident(&column.name)),
    }
}

pub(super) async fn read_with_retries(
    reader: &mut Reader,
    layout: &Layout,
    bounds: &BatchBounds,
    limit: Option<usize>,
    retries: u32,
    backoff: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Rows, PgError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = tokio::select! {
            _ = cancel.cancelled() => return Err(PgError::Cancelled),
            result = reader.read(layout, bounds, limit) => result,
        };
        match result {
            Ok(rows) => return Ok(rows),
            Err(error) if attempt <= retries && bounds.pages.is_none() => {
                let wait = crate::task::retry::backoff(backoff, attempt);
                tracing::warn!(attempt, error = %error, "reading a batch failed; retrying in {}", humantime::format_duration(wait));
                reader.client = None;
                tokio::select! {
                    _ = cancel.cancelled() => return Err(PgError::Cancelled),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
}
