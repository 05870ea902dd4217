//! Configuration errors: every one names the file, and the line and column
//! when the problem has a place in the text, plus what to do about it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in the configuration, rendered as one line:
/// `FILE:LINE:COL: what is wrong; how to fix it`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// The section name `from_toml` uses for parse errors of the whole file.
pub(crate) const SYNTAX: &str = "the file";

/// The source text of a config file, used to turn byte spans into positions.
pub(crate) struct SourceText<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl SourceText<'_> {
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            position: span.map(|span| line_column(self.text, span.start)),
            message: one_line(&message.into()),
        }
    }

    /// Converts a `toml` parse or deserialize error, adding a "did you mean"
    /// hint to unknown-key errors.
    pub(crate) fn toml_error(&self, error: &toml::de::Error, section: &str) -> ConfigError {
        let message = error.message().trim();
        let message = match unknown_field(message) {
            Some((key, expected)) => {
                let hint = match did_you_mean(key, &expected) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if expected.is_empty() => "remove it".to_string(),
                    None => format!("expected one of {}", quoted_list(&expected)),
                };
                format!("unknown key `{key}` in {section}; {hint}")
            }
            None => match missing_field(message) {
                Some(key) => format!("missing required key `{key}` in {section}; add it"),
                None if let Some((given, expected)) = unknown_variant(message) => {
                    let hint = match did_you_mean(given, &expected) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("use one of {}", quoted_list(&expected)),
                    };
                    format!("unknown value `{given}` in {section}; {hint}")
                }
                None if section == SYNTAX => format!("TOML syntax: {message}; fix the TOML here"),
                None => format!("{} (in {section})", plain_types(message)),
            },
        };
        self.error(error.span(), message)
    }
}

/// Serde names Rust types ("expected usize"); say what to write instead.
fn plain_types(message: &str) -> String {
    const TYPES: [(&str, &str); 11] = [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a string", "expected a quoted string"),
    ];
    let mut message = message.to_string();
    for (rust, plain) in TYPES {
        message = message.replace(rust, plain);
    }
    message
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Parses serde's "unknown field `x`, expected one of `a`, `b`" message.
pub(super) fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect::<Vec<_>>();
    Some((key, expected))
}

/// Parses serde's "unknown variant `x`, expected `a` or `b`" (or "one of
/// `a`, `b`, `c`") message.
fn unknown_variant(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (given, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect::<Vec<_>>();
    Some((given, expected))
}

pub(super) fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(key, _)| key)
}

/// The closest candidate to a misspelt name, if one is close enough: one
/// a slip of one or two letters away, else one the name starts or ends
/// with as a word (`file_sync` → `sync`), else the most alike by spelling.
pub(crate) fn did_you_mean<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // A slip of one or two letters first (`source_tabel` is `source_table`,
    // not the `source` it starts with).
    let slip = candidates
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(given, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2 && given.chars().count() > 4)
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, candidate)) = slip {
        return Some(candidate);
    }
    let as_a_word = |candidate: &str| {
        let separated = |rest: &str| rest.ends_with(['_', '-']) || rest.starts_with(['_', '-']);
        candidate.len() >= 4
            && (given.strip_suffix(candidate).is_some_and(separated)
                || given.strip_prefix(candidate).is_some_and(separated))
    };
    let part_of_it = candidates
        .iter()
        .filter(|candidate| as_a_word(candidate))
        .max_by_key(|candidate| candidate.len());
    if let Some(candidate) = part_of_it {
        return Some(candidate);
    }
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        let offset = text
            .find('=')
            .map(|_| text.rfind('=').unwrap_or(0))
            .unwrap_or(0);
        assert_eq!(line_column(text, offset), (2, 4));
    }

    #[test]
    fn a_slip_of_a_letter_beats_a_word_the_key_starts_with() {
        let keys = ["source", "source_table", "target", "target_table"];
        assert_eq!(did_you_mean("source_tabel", &keys), Some("source_table"));
        assert_eq!(did_you_mean("source_tables", &keys), Some("source_table"));
    }

    #[test]
    fn unknown_field_gets_a_hint() {
        let parsed =
            unknown_field("unknown field `recusive`, expected one of `recursive`, `pattern`");
        let (key, expected) = parsed.expect("parsed");
        assert_eq!(key, "recusive");
        assert_eq!(did_you_mean(key, &expected), Some("recursive"));
        assert_eq!(did_you_mean("zzz", &expected), None);
    }

    #[test]
    fn a_name_with_a_known_one_inside_is_pointed_to_it() {
        let kinds = ["sync", "table_sync", "http_sync", "airbyte"];
        assert_eq!(did_you_mean("file_sync", &kinds), Some("sync"));
        assert_eq!(did_you_mean("tablesync", &kinds), Some("table_sync"));
        let (given, expected) =
            unknown_variant("unknown variant `incremantal`, expected `full` or `incremental`")
                .expect("parsed");
        assert_eq!(did_you_mean(given, &expected), Some("incremental"));
    }
}
