//! SQL text for table sync. Identifiers from the config are quoted; values
//! are always bound as parameters (`$n`), never written into the SQL (the
//! one literal is the watermark look-back, a number of seconds that
//! syncdeck writes itself).
//! Extraction uses only what Redshift also accepts: plain `SELECT` with
//! `CAST`, `ORDER BY` and `LIMIT`, and keyset conditions spelled out with
//! `OR`/`AND` instead of row comparisons.

use std::time::Duration;

use crate::postgres::binary::Binary;
use crate::postgres::sql::{Dialect, quote_ident, quote_qualified};

/// Where rows come from: a table or a query.
#[derive(Debug, Clone)]
pub(crate) enum SourceRelation {
    Table(String),
    Query(String),
}

impl SourceRelation {
    pub(crate) fn relation_sql(&self) -> String {
        match self {
            Self::Table(name) => quote_qualified(name),
            Self::Query(query) => format!(
                "({}) AS syncdeck_source",
                query.trim().trim_end_matches(';')
            ),
        }
    }
}

/// A column of the ordering key with its source type, for parameter casts.
#[derive(Debug, Clone)]
pub(crate) struct KeyColumn {
    pub name: String,
    pub type_name: String,
}

/// Builds SQL with numbered parameters, casting each text parameter to the
/// column's type so any key type can be bound as text.
pub(crate) struct Query {
    pub sql: String,
    pub params: Vec<Option<String>>,
    dialect: Dialect,
}

impl Query {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            sql: String::new(),
            params: Vec::new(),
            dialect,
        }
    }

    fn param(&mut self, value: Option<String>, type_name: &str) -> String {
        self.params.push(value);
        format!(
            "CAST(CAST(${} AS {}) AS {type_name})",
            self.params.len(),
            self.dialect.text_type()
        )
    }

    /// `key = values`, column by column.
    pub(crate) fn equals(&mut self, keys: &[KeyColumn], values: &[Option<String>]) -> String {
        let terms: Vec<String> = keys
            .iter()
            .zip(values)
            .map(|(key, value)| {
                let param = self.param(value.clone(), &key.type_name);
                format!("{} = {param}", quote_ident(&key.name))
            })
            .collect();
        format!("({})", terms.join(" AND "))
    }

    /// `key > bound` in the lexicographic order of `keys`.
    pub(crate) fn after(&mut self, keys: &[KeyColumn], bound: &[Option<String>]) -> String {
        self.compare(keys, bound, ">", false)
    }

    /// `key >= bound` in the lexicographic order of `keys`.
    pub(crate) fn at_least(&mut self, keys: &[KeyColumn], bound: &[Option<String>]) -> String {
        self.compare(keys, bound, ">", true)
    }

    /// `ctid >= (from, 0) AND ctid < (to, 0)`: the rows on pages `from` up
    /// to `to`, which PostgreSQL 14 and later read with a TID range scan.
    pub(crate) fn pages(&mut self, from: u64, to: u64) -> String {
        let from = self.param(Some(format!("({from},0)")), "tid");
        let to = self.param(Some(format!("({to},0)")), "tid");
        format!("ctid >= {from} AND ctid < {to}")
    }

    /// `key <= bound` in the lexicographic order of `keys`.
    pub(crate) fn through(&mut self, keys: &[KeyColumn], bound: &[Option<String>]) -> String {
        self.compare(keys, bound, "<", true)
    }

    /// PostgreSQL compares whole rows, `(k1, k2) > ($1, $2)`, which an
    /// index on the keys can start a range scan from: a batch costs the
    /// same wherever it is in the table. Redshift has no row comparison, so
    /// there the alternatives are spelled out behind a leading `k1 >= $1`
    /// (or `<=`) that its zone maps and sort key can start from.
    fn compare(
        &mut self,
        keys: &[KeyColumn],
        bound: &[Option<String>],
        op: &str,
        or_equal: bool,
    ) -> String {
        let full_op = if or_equal {
            format!("{op}=")
        } else {
            op.to_string()
        };
        if keys.len() == 1 {
            let param = self.param(bound.first().cloned().flatten(), &keys[0].type_name);
            return format!("{} {full_op} {param}", quote_ident(&keys[0].name));
        }
        if self.dialect == Dialect::Postgres {
            let columns: Vec<String> = keys.iter().map(|key| quote_ident(&key.name)).collect();
            let params: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(index, key)| self.param(bound.get(index).cloned().flatten(), &key.type_name))
                .collect();
            return format!("({}) {full_op} ({})", columns.join(", "), params.join(", "));
        }
        let lead = self.param(bound.first().cloned().flatten(), &keys[0].type_name);
        let lead = format!("{} {op}= {lead}", quote_ident(&keys[0].name));
        let mut alternatives = Vec::new();
        for index in 0..keys.len() {
            let mut terms = Vec::new();
            for (key, value) in keys.iter().zip(bound).take(index) {
                let param = self.param(value.clone(), &key.type_name);
                terms.push(format!("{} = {param}", quote_ident(&key.name)));
            }
            let param = self.param(bound.get(index).cloned().flatten(), &keys[index].type_name);
            terms.push(format!("{} {op} {param}", quote_ident(&keys[index].name)));
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        if or_equal {
            let mut terms = Vec::new();
            for (key, value) in keys.iter().zip(bound) {
                let param = self.param(value.clone(), &key.type_name);
                terms.push(format!("{} = {param}", quote_ident(&key.name)));
            }
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        format!("({lead} AND ({}))", alternatives.join(" OR "))
    }

    /// `column > value` for the watermark floor, or `column > value -
    /// lookback`. Redshift cannot cast a parameter to an interval, hence
    /// the literal.
    pub(crate) fn greater(
        &mut self,
        column: &KeyColumn,
        value: &str,
        lookback: Option<Duration>,
    ) -> String {
        let param = self.param(Some(value.to_string()), &column.type_name);
        match lookback {
            // Seconds with a fraction: the one spelling of an interval
            // PostgreSQL and Redshift both accept.
            Some(lookback) => format!(
                "{} > {param} - INTERVAL '{}.{:06} seconds'",
                quote_ident(&column.name),
                lookback.as_secs(),
                lookback.subsec_micros()
            ),
            None => format!("{} > {param}", quote_ident(&column.name)),
        }
    }
}

/// How a source column's values reach syncdeck as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// `CAST(column AS TEXT)`: the server writes the text.
    Cast,
    /// The column as it is, in binary: integers and strings cost the
    /// server nothing to send, and syncdeck writes them as PostgreSQL does.
    Int2,
    Int4,
    Int8,
    Text,
    /// `character(n)`: trailing blanks are dropped, as the cast to text does.
    Char,
    Bool,
    /// Any other type syncdeck decodes from its binary form (timestamps,
    /// dates, numerics, floats, uuids, json, bytea), written as the
    /// server's own text for it.
    Binary(Binary),
    /// An array of such a type (or of integers, text, booleans).
    Array,
}

impl Read {
    /// The read for a source column of type `type_name` (as the driver
    /// names it). Redshift always casts: its text is what it sends best.
    pub(crate) fn for_type(dialect: Dialect, type_name: &str) -> Self {
        if dialect == Dialect::Redshift {
            return Self::Cast;
        }
        match type_name {
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "text" | "varchar" => Self::Text,
            "bpchar" => Self::Char,
            "bool" => Self::Bool,
            other => match Binary::for_type(other) {
                Some(kind) => Self::Binary(kind),
                None if other.strip_prefix('_').and_then(Binary::for_type).is_some() => Self::Array,
                None => Self::Cast,
            },
        }
    }
}

/// A column read from the source.
#[derive(Debug, Clone)]
pub(crate) struct SourceColumn {
    pub name: String,
    pub read: Read,
}

/// `SELECT CAST(c AS TEXT) … FROM source WHERE … ORDER BY keys LIMIT n`
/// (no `ORDER BY` without keys).
pub(crate) fn select_batch(
    dialect: Dialect,
    relation: &SourceRelation,
    columns: &[SourceColumn],
    keys: &[KeyColumn],
    conditions: Vec<String>,
    params: Vec<Option<String>>,
    limit: Option<usize>,
) -> Query {
    // Aliased, so ORDER BY names the source columns, not these text
    // values (an output column named like a source column would win).
    let select: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| match column.read {
            Read::Cast => format!(
                "CAST({} AS {}) AS syncdeck_{index}",
                quote_ident(&column.name),
                dialect.text_type()
            ),
            _ => format!("{} AS syncdeck_{index}", quote_ident(&column.name)),
        })
        .collect();
    let order: Vec<String> = keys.iter().map(|key| quote_ident(&key.name)).collect();
    let mut sql = format!(
        "SELECT {} FROM {}",
        select.join(", "),
        relation.relation_sql()
    );
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    Query {
        sql,
        params,
        dialect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_conditions_are_lexicographic_with_bound_parameters() {
        let keys = vec![
            KeyColumn {
                name: "updated_at".into(),
                type_name: "timestamptz".into(),
            },
            KeyColumn {
                name: "id".into(),
                type_name: "int8".into(),
            },
        ];
        let mut query = Query::new(Dialect::Postgres);
        let after = query.after(&keys, &[Some("2026-01-01".into()), Some("42".into())]);
        assert_eq!(
            after,
            "(\"updated_at\", \"id\") > (CAST(CAST($1 AS TEXT) AS timestamptz), CAST(CAST($2 AS TEXT) AS int8))",
            "one row comparison, which an index on the keys can start from"
        );
        assert_eq!(query.params.len(), 2);
        let through = query.through(&keys, &[Some("2026-02-01".into()), Some("99".into())]);
        assert_eq!(
            through,
            "(\"updated_at\", \"id\") <= (CAST(CAST($3 AS TEXT) AS timestamptz), CAST(CAST($4 AS TEXT) AS int8))"
        );
        let mut single = Query::new(Dialect::Postgres);
        assert_eq!(
            single.after(&keys[1..], &[Some("7".into())]),
            "\"id\" > CAST(CAST($1 AS TEXT) AS int8)"
        );
        let mut redshift = Query::new(Dialect::Redshift);
        let after = redshift.after(&keys, &[Some("2026-01-01".into()), Some("42".into())]);
        assert!(
            after.starts_with("(\"updated_at\" >= CAST(CAST($1 AS VARCHAR(65535)) AS timestamptz) AND ((\"updated_at\" > "),
            "Redshift: a leading range, then the alternatives: {after}"
        );
        assert!(
            after.ends_with("AND \"id\" > CAST(CAST($4 AS VARCHAR(65535)) AS int8))))"),
            "{after}"
        );
        assert!(
            !after.contains("42") && !through.contains("99"),
            "values are parameters"
        );
    }

    #[test]
    fn redshift_reads_with_wide_varchar() {
        let keys = vec![KeyColumn {
            name: "id".into(),
            type_name: "int8".into(),
        }];
        let query = select_batch(
            Dialect::Redshift,
            &SourceRelation::Table("s.t".into()),
            &[SourceColumn {
                name: "id".into(),
                read: Read::for_type(Dialect::Redshift, "int8"),
            }],
            &keys,
            vec![],
            vec![],
            Some(10),
        );
        assert_eq!(
            query.sql,
            "SELECT CAST(\"id\" AS VARCHAR(65535)) AS syncdeck_0 FROM \"s\".\"t\" ORDER BY \"id\" LIMIT 10"
        );
    }
}
