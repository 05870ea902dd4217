//! The transform step of a table sync: each source row of a batch becomes
//! the target's values, or is dropped by the `filter`, or is a bad row
//! (with its key and reason).
//!
//! A column's value is its source column's text, or a jq expression's
//! result on the row as an object of every source column (integers,
//! floats and numerics as numbers, booleans, `json`/`jsonb` parsed, the
//! rest as strings). Then `null_if`, `required` and the target type are
//! checked.
//!
//! With jq, a batch is transformed on a blocking thread: five expressions
//! on a thousand rows take milliseconds of CPU, which would otherwise hold
//! up the run's task, where the source is read and the other batches load
//! (measured in BENCHMARKS.md). jq values are not `Send`, so they are made
//! and dropped on that thread.

use std::borrow::Cow;
use std::sync::Arc;

use super::layout::{ColumnPlan, Layout, ValueFrom};
use crate::config::jq::{Expression, FieldKind, Program, RowShape, RunValue};
use crate::postgres::{PgError, Rows};
use crate::task::RunContext;

/// A batch's rows after the transform.
pub(super) struct Transformed {
    /// The target values of the rows that load.
    pub(super) rows: Rows,
    /// Rows that cannot load: (their key, why).
    pub(super) bad: Vec<(String, String)>,
    /// Rows the filter dropped.
    pub(super) filtered: u64,
}

/// The compiled program of an expression; validation refused those that
/// do not compile, so the error only reaches a config that skipped it.
pub(super) fn program(expression: &Expression, what: &str) -> Result<Program, PgError> {
    expression.program.clone().map_err(|error| {
        PgError::Setup(format!(
            "jq in {what} does not compile: {}; run `syncdeck validate`",
            error.message
        ))
    })
}

/// How the text of a source column of type `type_name` reads in jq.
pub(super) fn field_kind(type_name: &str) -> FieldKind {
    match type_name {
        "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" => FieldKind::Number,
        "bool" => FieldKind::Bool,
        "json" | "jsonb" => FieldKind::Json,
        _ => FieldKind::Text,
    }
}

/// The run's ids, for `$run`.
struct RunIds {
    run_id: i64,
    task_id: String,
    execution_date: String,
}

/// Transforms the rows of one batch; with jq, on a blocking thread. An
/// error means the transform itself stopped (the batch was not checked).
pub(super) async fn batch(
    layout: &Arc<Layout>,
    rows: Rows,
    context: &RunContext,
) -> Result<Transformed, String> {
    if layout.row_fields.is_empty() {
        return Ok(transform(layout, &rows, None));
    }
    let ids = RunIds {
        run_id: context.run_id,
        task_id: context.task_id.clone(),
        execution_date: context.templates.execution_date.clone(),
    };
    let layout = Arc::clone(layout);
    tokio::task::spawn_blocking(move || transform(&layout, &rows, Some(ids)))
        .await
        .map_err(|error| format!("transforming the batch stopped: {error}"))
}

fn transform(layout: &Layout, rows: &Rows, ids: Option<RunIds>) -> Transformed {
    let jq = ids.map(|ids| {
        let shape = RowShape::new(
            layout
                .row_fields
                .iter()
                .map(|(name, _, kind)| (name.as_str(), *kind)),
        );
        let run = RunValue::new(ids.run_id, &ids.task_id, &ids.execution_date);
        (shape, run)
    });
    let mut out = Transformed {
        rows: Rows::with_capacity(layout.columns.len(), rows.len()),
        bad: Vec::new(),
        filtered: 0,
    };
    let mut values: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(layout.columns.len());
    for row in 0..rows.len() {
        let input = jq.as_ref().map(|(shape, run)| {
            let fields = layout
                .row_fields
                .iter()
                .map(|(_, index, _)| rows.get(row, *index));
            (shape.input(fields), run)
        });
        let input = input.as_ref().map(|(input, run)| (input, *run));
        if let (Some(filter), Some((input, run))) = (&layout.filter, input) {
            match filter.keeps(input, run) {
                Ok(true) => {}
                Ok(false) => {
                    out.filtered += 1;
                    continue;
                }
                Err(error) => {
                    out.bad
                        .push((key_of(layout, rows, row), format!("filter: {error}")));
                    continue;
                }
            }
        }
        values.clear();
        match row_values(layout, rows, row, input, &mut values) {
            Ok(()) => out.rows.push_row(values.iter().map(Option::as_deref)),
            Err(reason) => out.bad.push((key_of(layout, rows, row), reason)),
        }
    }
    out
}

/// Fills `values` with the target values of source row `row`, or says why
/// the row cannot be loaded.
fn row_values<'a>(
    layout: &Layout,
    rows: &'a Rows,
    row: usize,
    input: Option<(&crate::config::jq::Input, &RunValue)>,
    values: &mut Vec<Option<Cow<'a, str>>>,
) -> Result<(), String> {
    for column in &layout.columns {
        let value = match (&column.value, input) {
            (ValueFrom::Source(index), _) => rows.get(row, *index).map(Cow::Borrowed),
            (ValueFrom::Jq(program), Some((input, run))) => program
                .text(input, run)
                .map_err(|error| format!("column `{}`: jq: {error}", column.target))?
                .map(Cow::Owned),
            (ValueFrom::Jq(_), None) => {
                return Err(format!("column `{}`: jq has no row", column.target));
            }
        };
        values.push(checked(column, value)?);
    }
    Ok(())
}

/// A column's value after `null_if`, `required` and its type's check.
fn checked<'a>(
    column: &ColumnPlan,
    value: Option<Cow<'a, str>>,
) -> Result<Option<Cow<'a, str>>, String> {
    let value = value.filter(|value| !column.null_if.iter().any(|null| null == value));
    match &value {
        None if column.required => Err(format!("required column `{}` is NULL", column.target)),
        None => Ok(None),
        Some(text) => {
            column
                .value_type
                .check(text)
                .map_err(|reason| format!("column `{}`: {reason}", column.target))?;
            Ok(value)
        }
    }
}

/// A bad row's key, as `syncdeck errors` shows it: `id=7`.
fn key_of(layout: &Layout, rows: &Rows, row: usize) -> String {
    layout
        .key_indexes
        .iter()
        .zip(&layout.keys)
        .map(|(index, key)| format!("{}={}", key.name, rows.get(row, *index).unwrap_or("NULL")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_types_read_as_jq_numbers_booleans_json_or_strings() {
        assert_eq!(field_kind("int8"), FieldKind::Number);
        assert_eq!(field_kind("numeric"), FieldKind::Number);
        assert_eq!(field_kind("bool"), FieldKind::Bool);
        assert_eq!(field_kind("jsonb"), FieldKind::Json);
        assert_eq!(field_kind("timestamptz"), FieldKind::Text);
        assert_eq!(field_kind("uuid"), FieldKind::Text);
    }
}
