//! SQL text every PostgreSQL writer shares: quoted identifiers and the
//! batch upsert. Identifiers from the config are quoted; values are always
//! bound as parameters (`$n`), never written into the SQL.

/// Which server reads the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Redshift,
}

impl Dialect {
    /// A text type that holds any value: Redshift's `TEXT` is only 256 bytes.
    pub(crate) fn text_type(self) -> &'static str {
        match self {
            Self::Postgres => "TEXT",
            Self::Redshift => "VARCHAR(65535)",
        }
    }
}

/// `"name"`, with embedded quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table` → `"schema"."table"`; a part already in quotes is kept.
pub(crate) fn quote_qualified(name: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = name.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            // Find the closing quote, skipping doubled quotes.
            let mut end = 0;
            let bytes = quoted.as_bytes();
            while end < bytes.len() {
                if bytes[end] == b'"' {
                    if bytes.get(end + 1) == Some(&b'"') {
                        end += 2;
                        continue;
                    }
                    break;
                }
                end += 1;
            }
            parts.push(format!("\"{}\"", &quoted[..end.min(quoted.len())]));
            rest = quoted.get(end + 1..).unwrap_or("").trim_start_matches('.');
        } else {
            let (part, after) = rest.split_once('.').unwrap_or((rest, ""));
            parts.push(quote_ident(part));
            rest = after;
        }
    }
    parts.join(".")
}

/// The upsert of one batch given as one text array per column: values are
/// cast to the target's types in the statement; unchanged rows are not
/// rewritten. `columns` are (name, type as `format_type` gives it).
pub(crate) fn upsert_from_arrays(
    target: &str,
    columns: &[(String, String)],
    primary_key: &[String],
) -> String {
    let quoted: Vec<String> = columns.iter().map(|(name, _)| quote_ident(name)).collect();
    let arrays: Vec<String> = (1..=columns.len())
        .map(|index| format!("${index}::text[]"))
        .collect();
    let aliases: Vec<String> = (0..columns.len())
        .map(|index| format!("c{index}"))
        .collect();
    let casts: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, (_, type_name))| format!("CAST(syncdeck_rows.c{index} AS {type_name})"))
        .collect();
    let keys: Vec<String> = primary_key
        .iter()
        .map(|column| quote_ident(column))
        .collect();
    let mut sql = format!(
        "INSERT INTO {} AS syncdeck_target ({}) SELECT {} FROM unnest({}) AS syncdeck_rows({}) ON CONFLICT ({}) ",
        quote_qualified(target),
        quoted.join(", "),
        casts.join(", "),
        arrays.join(", "),
        aliases.join(", "),
        keys.join(", ")
    );
    let others: Vec<&(String, String)> = columns
        .iter()
        .filter(|(name, _)| !primary_key.contains(name))
        .collect();
    if others.is_empty() {
        sql.push_str("DO NOTHING");
        return sql;
    }
    // json and xml have no equality operator: compare their text.
    let comparable = |prefix: &str, name: &str, type_name: &str| match type_name {
        "json" | "xml" => format!("CAST({prefix}.{} AS text)", quote_ident(name)),
        _ => format!("{prefix}.{}", quote_ident(name)),
    };
    let set: Vec<String> = others
        .iter()
        .map(|(name, _)| format!("{0} = EXCLUDED.{0}", quote_ident(name)))
        .collect();
    let current: Vec<String> = others
        .iter()
        .map(|(name, type_name)| comparable("syncdeck_target", name, type_name))
        .collect();
    let incoming: Vec<String> = others
        .iter()
        .map(|(name, type_name)| comparable("EXCLUDED", name, type_name))
        .collect();
    sql.push_str(&format!(
        "DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
        set.join(", "),
        current.join(", "),
        incoming.join(", ")
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("order"), "\"order\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_qualified("public.orders"), "\"public\".\"orders\"");
        assert_eq!(quote_qualified("\"My.Schema\".t"), "\"My.Schema\".\"t\"");
        assert_eq!(quote_qualified("x; DROP TABLE y"), "\"x; DROP TABLE y\"");
    }

    #[test]
    fn the_upsert_casts_arrays_and_skips_unchanged_rows() {
        let columns = vec![
            ("id".to_string(), "integer".to_string()),
            ("doc".to_string(), "json".to_string()),
        ];
        let sql = upsert_from_arrays("public.t", &columns, &["id".into()]);
        assert_eq!(
            sql,
            "INSERT INTO \"public\".\"t\" AS syncdeck_target (\"id\", \"doc\") SELECT CAST(syncdeck_rows.c0 AS integer), CAST(syncdeck_rows.c1 AS json) \
             FROM unnest($1::text[], $2::text[]) AS syncdeck_rows(c0, c1) ON CONFLICT (\"id\") DO UPDATE SET \"doc\" = EXCLUDED.\"doc\" \
             WHERE (CAST(syncdeck_target.\"doc\" AS text)) IS DISTINCT FROM (CAST(EXCLUDED.\"doc\" AS text))"
        );
        let keys_only = vec![("id".to_string(), "integer".to_string())];
        assert!(upsert_from_arrays("t", &keys_only, &["id".into()]).ends_with("DO NOTHING"));
    }
}
