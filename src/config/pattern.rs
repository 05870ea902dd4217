//! File-name patterns: globs with `{a,b}` alternatives. A pattern with a `/`
//! matches the path relative to the source; otherwise it matches the name.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    matcher: GlobMatcher,
    matches_path: bool,
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|error| {
                format!("invalid pattern `{pattern}`: {}; write a glob like \"*.csv\" or \"*.{{csv,json}}\"", error.kind())
            })?;
        Ok(Self {
            matcher: glob.compile_matcher(),
            matches_path: pattern.contains('/'),
        })
    }

    /// Whether a file at `relative` (slash-separated) is selected.
    pub(crate) fn is_match(&self, relative: &str) -> bool {
        if self.matches_path {
            self.matcher.is_match(relative)
        } else {
            let name = relative.rsplit('/').next().unwrap_or(relative);
            self.matcher.is_match(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_match_at_any_depth() {
        let pattern = Pattern::new("*.{csv,json}").expect("valid");
        assert!(pattern.is_match("a.csv"));
        assert!(pattern.is_match("deep/down/b.json"));
        assert!(!pattern.is_match("c.parquet"));
    }

    #[test]
    fn slash_patterns_match_relative_paths() {
        let pattern = Pattern::new("2024/*/*.csv").expect("valid");
        assert!(pattern.is_match("2024/01/a.csv"));
        assert!(!pattern.is_match("2025/01/a.csv"));
        assert!(!pattern.is_match("2024/01/deeper/a.csv"));
    }

    #[test]
    fn bad_globs_are_explained() {
        let error = Pattern::new("*.{csv").expect_err("unclosed");
        assert!(error.contains("invalid pattern `*.{csv`"), "{error}");
    }
}
