//! jq expressions in the config (`{ jq = "…" }` columns and `filter` of
//! `http_sync` and `table_sync`), compiled with jaq once when the config
//! loads and run on each item or row. Compile errors keep the byte offset jaq reports inside the
//! expression, so the config error can point at the exact character.
//!
//! The one variable an expression may use is `$run`: `{run_id, task_id,
//! execution_date}` of the run evaluating it.

use std::fmt;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use toml::Spanned;

/// The variable holding the run's ids (`$run.run_id`, …).
pub const RUN_VARIABLE: &str = "$run";

/// jq functions that reach outside the item and the run: the process
/// environment can hold secrets, which must never land in a table.
const LEFT_OUT: [&str; 1] = ["env"];

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// A compiled jq program.
#[derive(Clone)]
pub struct Program(Arc<Filter>);

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Program")
    }
}

/// Why an expression does not compile, and where in it (byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JqError {
    pub offset: usize,
    pub message: String,
}

/// Byte offset of `part` in `whole`, when `part` is a slice of it.
fn offset_of(whole: &str, part: &str) -> usize {
    let (start, at) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if at >= start && at <= start + whole.len() {
        at - start
    } else {
        0
    }
}

/// Compiles an expression with jq's standard functions and `$run`.
pub fn compile(code: &str) -> Result<Program, JqError> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs::<Data>()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, _, _)| !LEFT_OUT.contains(name));
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|errors| {
            let first = errors.into_iter().next().map(|(_, error)| error);
            match first {
                Some(jaq_core::load::Error::Lex(errors)) => match errors.first() {
                    Some((expected, found)) => JqError {
                        offset: offset_of(code, found),
                        message: format!("expected {}", expected.as_str()),
                    },
                    None => unknown(code),
                },
                Some(jaq_core::load::Error::Parse(errors)) => match errors.first() {
                    Some((expected, found)) => JqError {
                        offset: offset_of(code, found),
                        message: if found.is_empty() {
                            format!("expected {} at the end", expected.as_str())
                        } else {
                            format!("expected {}, found `{found}`", expected.as_str())
                        },
                    },
                    None => unknown(code),
                },
                Some(jaq_core::load::Error::Io(_)) => JqError {
                    offset: 0,
                    message: "modules cannot be imported here".into(),
                },
                None => unknown(code),
            }
        })?;
    let filter = Compiler::<_, Data>::default()
        .with_funs(funs)
        .with_global_vars([RUN_VARIABLE])
        .compile(modules)
        .map_err(|errors| {
            let first = errors
                .into_iter()
                .next()
                .and_then(|(_, errors)| errors.into_iter().next());
            match first {
                Some((name, jaq_core::compile::Undefined::Var)) => JqError {
                    offset: offset_of(code, name),
                    message: format!("unknown variable `{name}`; the only variable is `$run` (run_id, task_id, execution_date)"),
                },
                Some((name, what)) => JqError {
                    offset: offset_of(code, name),
                    message: format!("unknown {} `{name}`", what.as_str()),
                },
                None => unknown(code),
            }
        })?;
    Ok(Program(Arc::new(filter)))
}

fn unknown(code: &str) -> JqError {
    JqError {
        offset: 0,
        message: format!("`{code}` does not compile"),
    }
}

/// An item as jq sees it.
pub struct Input(Val);

impl Input {
    pub fn from_json(value: &serde_json::Value) -> Self {
        // Reading a `serde_json::Value` cannot fail: every JSON value is one.
        Self(Val::deserialize(value).unwrap_or_default())
    }
}

/// How a table column's text becomes a jq value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Integers, floats and numerics: a jq number (numerics keep their digits).
    Number,
    /// `true` / `false`.
    Bool,
    /// `json` / `jsonb`: the parsed value.
    Json,
    /// Everything else (text, dates, timestamps, UUIDs) as a string.
    Text,
}

/// The field names of a table row as jq object keys, made once per batch:
/// each row becomes `{name: value, …}` without building its keys again.
pub struct RowShape(Vec<(Val, FieldKind)>);

impl RowShape {
    pub fn new<'a>(fields: impl IntoIterator<Item = (&'a str, FieldKind)>) -> Self {
        Self(
            fields
                .into_iter()
                .map(|(name, kind)| (Val::utf8_str(name.to_string().into_bytes()), kind))
                .collect(),
        )
    }

    /// The row whose values (text as read, in field order) are `values`.
    /// A value that does not read as its kind stays a string.
    pub fn input<'a>(&self, values: impl IntoIterator<Item = Option<&'a str>>) -> Input {
        let mut object = jaq_json::Map::with_capacity_and_hasher(self.0.len(), Default::default());
        for ((name, kind), value) in self.0.iter().zip(values) {
            let value = match value {
                None => Val::Null,
                Some(text) => field_value(*kind, text),
            };
            object.insert(name.clone(), value);
        }
        Input(Val::obj(object))
    }
}

fn field_value(kind: FieldKind, text: &str) -> Val {
    let parsed = match kind {
        FieldKind::Number => jaq_json::read::parse_single_num(text.as_bytes()).map(Val::Num),
        FieldKind::Bool => match text {
            "true" | "t" => Some(Val::Bool(true)),
            "false" | "f" => Some(Val::Bool(false)),
            _ => None,
        },
        FieldKind::Json => jaq_json::read::parse_single(text.as_bytes()).ok(),
        FieldKind::Text => None,
    };
    parsed.unwrap_or_else(|| Val::utf8_str(text.to_string().into_bytes()))
}

/// The value of `$run`.
#[derive(Clone)]
pub struct RunValue(Val);

impl RunValue {
    pub fn new(run_id: i64, task_id: &str, execution_date: &str) -> Self {
        let value = serde_json::json!({
            "run_id": run_id,
            "task_id": task_id,
            "execution_date": execution_date,
        });
        Self(Val::deserialize(&value).unwrap_or_default())
    }
}

impl Program {
    /// The expression's first output; a second one is an error (a column
    /// holds one value), no output is `null`.
    fn first(&self, input: &Input, run: &RunValue) -> Result<Val, String> {
        let ctx = Ctx::<Data>::new(&self.0.lut, Vars::new([run.0.clone()]));
        let mut outputs = self.0.id.run((ctx, input.0.clone())).map(unwrap_valr);
        let first = match outputs.next() {
            None => return Ok(Val::Null),
            Some(result) => result.map_err(|error| error.to_string())?,
        };
        if outputs.next().is_some() {
            return Err(
                "the expression gives more than one value; keep one (e.g. `first(…)`)".into(),
            );
        }
        Ok(first)
    }

    /// The expression's value as the text PostgreSQL reads for a column:
    /// strings as they are, arrays and objects as JSON, `null` as NULL.
    pub fn text(&self, input: &Input, run: &RunValue) -> Result<Option<String>, String> {
        Ok(match self.first(input, run)? {
            Val::Null => None,
            Val::TStr(bytes) | Val::BStr(bytes) => {
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            other => Some(other.to_string()),
        })
    }

    /// Whether the expression keeps an item: false, null and no output drop it.
    pub fn keeps(&self, input: &Input, run: &RunValue) -> Result<bool, String> {
        Ok(!matches!(
            self.first(input, run)?,
            Val::Null | Val::Bool(false)
        ))
    }
}

/// A jq expression written in the config, compiled when read; the span
/// and any compile error are kept for a config error pointing into it.
#[derive(Debug, Clone)]
pub struct Expression {
    pub text: Spanned<String>,
    pub program: Result<Program, JqError>,
}

impl<'de> Deserialize<'de> for Expression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Spanned::<String>::deserialize(deserializer)?;
        let program = compile(text.get_ref());
        Ok(Self { text, program })
    }
}

/// Where an `http_sync` column's value comes from.
#[derive(Debug, Clone)]
pub enum ColumnSource {
    /// A dotted path in the item (`profile.name`).
    Path(String),
    /// `{ jq = "…" }`, run on the item.
    Jq(Expression),
}

impl<'de> Deserialize<'de> for ColumnSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = ColumnSource;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a dotted path like \"profile.name\" or { jq = \"…\" }")
            }

            fn visit_str<E: de::Error>(self, path: &str) -> Result<ColumnSource, E> {
                Ok(ColumnSource::Path(path.to_string()))
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<ColumnSource, M::Error> {
                let mut expression = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "jq" || expression.is_some() {
                        return Err(de::Error::unknown_field(&key, &["jq"]));
                    }
                    expression = Some(map.next_value::<Expression>()?);
                }
                expression
                    .map(ColumnSource::Jq)
                    .ok_or_else(|| de::Error::missing_field("jq"))
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

/// The byte offset in the config text of offset `inside` of a string
/// value whose TOML text (quotes included) is `raw`: escapes in basic
/// strings take more text than the characters they stand for.
pub(crate) fn offset_in_value(raw: &str, inside: usize) -> usize {
    let (open, literal) = if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with("'''") {
        (3, true)
    } else {
        (1, raw.starts_with('\''))
    };
    let mut body = &raw[open.min(raw.len())..];
    let mut skipped = open;
    // A newline right after `"""` or `'''` is not part of the value.
    if open == 3 {
        for newline in ["\r\n", "\n"] {
            if let Some(rest) = body.strip_prefix(newline) {
                body = rest;
                skipped += newline.len();
                break;
            }
        }
    }
    if literal {
        return skipped + inside;
    }
    let (mut raw_at, mut value_at) = (0, 0);
    let bytes = body.as_bytes();
    while value_at < inside && raw_at < bytes.len() {
        if bytes[raw_at] == b'\\' {
            let unicode = |digits: usize| {
                body.get(raw_at + 2..raw_at + 2 + digits)
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .and_then(char::from_u32)
                    .map_or(1, char::len_utf8)
            };
            let (raw_len, value_len) = match bytes.get(raw_at + 1) {
                Some(b'u') => (6, unicode(4)),
                Some(b'U') => (10, unicode(8)),
                _ => (2, 1),
            };
            raw_at += raw_len;
            value_at += value_len;
        } else {
            raw_at += 1;
            value_at += 1;
        }
    }
    skipped + raw_at.min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunValue {
        RunValue::new(7, "users", "2026-11-25")
    }

    fn text(code: &str, item: serde_json::Value) -> Result<Option<String>, String> {
        compile(code)
            .expect("compiles")
            .text(&Input::from_json(&item), &run())
    }

    fn some(text: &str) -> Result<Option<String>, String> {
        Ok(Some(text.to_string()))
    }

    #[test]
    fn columns_get_strings_raw_and_other_values_as_json() {
        let item = serde_json::json!({"email": "Ada@X.org", "id": 3, "tags": ["a"]});
        assert_eq!(
            text(".email | ascii_downcase", item.clone()),
            some("ada@x.org")
        );
        assert_eq!(text(".id", item.clone()), some("3"));
        assert_eq!(text(".tags", item.clone()), some("[\"a\"]"));
        assert_eq!(text(".missing", item.clone()), Ok(None));
        assert_eq!(
            text("$run.task_id + \"-\" + ($run.run_id | tostring)", item),
            some("users-7")
        );
    }

    #[test]
    fn errors_point_into_the_expression() {
        let error = compile(".a | | .b").expect_err("syntax");
        assert_eq!(error.offset, 5, "{error:?}");
        let error = compile(".a + $nope").expect_err("variable");
        assert_eq!(error.offset, 5, "{error:?}");
        assert!(
            error.message.contains("unknown variable `$nope`"),
            "{error:?}"
        );
        assert!(
            compile("env.HOME").is_err(),
            "the environment is out of reach"
        );
    }

    #[test]
    fn runtime_errors_and_several_outputs_are_errors() {
        let item = serde_json::json!({"first_name": 5});
        let error = text(".first_name + \" \"", item.clone()).expect_err("number + string");
        assert!(error.contains("cannot"), "{error}");
        assert!(text(".first_name, 1", item).is_err());
    }

    #[test]
    fn table_rows_read_numbers_booleans_and_json_as_jq_values() {
        let shape = RowShape::new([
            ("amount", FieldKind::Number),
            ("active", FieldKind::Bool),
            ("profile", FieldKind::Json),
            ("day", FieldKind::Text),
            ("gone", FieldKind::Text),
            ("odd", FieldKind::Number),
        ]);
        let row = shape.input([
            Some("12345678901234567890.50"),
            Some("true"),
            Some(r#"{"city": "Turin"}"#),
            Some("2026-03-04"),
            None,
            Some("NaN-ish"),
        ]);
        let text = |code: &str| compile(code).expect("compiles").text(&row, &run());
        assert_eq!(
            text(".amount"),
            some("12345678901234567890.50"),
            "numerics keep their digits"
        );
        assert_eq!(text(".amount | type"), some("number"));
        assert_eq!(text("if .active then 1 else 0 end"), some("1"));
        assert_eq!(text(".profile.city"), some("Turin"));
        assert_eq!(text(".day[:4]"), some("2026"));
        assert_eq!(text(".gone"), Ok(None));
        assert_eq!(
            text(".odd | type"),
            some("string"),
            "text that is no number stays text"
        );
    }

    #[test]
    fn offsets_map_through_quotes_and_escapes() {
        assert_eq!(offset_in_value("\".a | | .b\"", 5), 6);
        assert_eq!(offset_in_value("'.a | | .b'", 5), 6);
        assert_eq!(offset_in_value("\"\\\"x\\\" | | .b\"", 6), 9);
        assert_eq!(offset_in_value("\"\"\"\n.a | |\"\"\"", 5), 9);
    }
}
