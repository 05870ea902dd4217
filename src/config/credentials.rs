//! Credential references (`${credential:NAME}`, `${env:VAR}`) and the
//! process-wide redaction of resolved secret values.
//!
//! A resolved credential value is registered here before anything can print
//! it; the log writers, the CLI's error printer and the state store pass
//! their text through [`redact`], so a secret that leaks into a library's
//! error message is still masked.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

/// What a secret looks like once redacted.
pub const REDACTED: &str = "***";

/// Secrets shorter than this are not scrubbed from free text: masking every
/// occurrence of a one- or two-character string would garble all output.
const MIN_REDACTED_LEN: usize = 4;

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Remembers a secret value so that [`redact`] masks it from now on.
pub fn register_secret(value: &str) {
    if value.len() < MIN_REDACTED_LEN {
        return;
    }
    if let Ok(mut secrets) = registry().write()
        && !secrets.iter().any(|known| known == value)
    {
        secrets.push(value.to_string());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    }
}

/// Masks every registered secret in `text`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = registry().read() else {
        return Cow::Borrowed(text);
    };
    let mut result = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if result.contains(secret.as_str()) {
            result = Cow::Owned(result.replace(secret.as_str(), REDACTED));
        }
    }
    result
}

/// Why a reference could not be resolved. The message never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferenceError(pub String);

/// Resolves references, reading the credentials file at most once.
pub(crate) struct CredentialResolver {
    file: Option<PathBuf>,
    loaded: Option<Result<BTreeMap<String, String>, String>>,
}

impl CredentialResolver {
    pub(crate) fn new(file: Option<PathBuf>) -> Self {
        Self { file, loaded: None }
    }

    /// Replaces every `${credential:NAME}` and `${env:VAR}` in `text`.
    pub(crate) fn resolve(&mut self, text: &str) -> Result<String, ReferenceError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ReferenceError(
                    "unclosed `${` in a value; write `${credential:NAME}` or `${env:VAR}`".into(),
                ));
            };
            let reference = &after[..end];
            out.push_str(&self.lookup(reference)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&mut self, reference: &str) -> Result<String, ReferenceError> {
        if let Some(name) = reference.strip_prefix("credential:") {
            let name = name.trim();
            let value = self.credential(name)?;
            register_secret(&value);
            Ok(value)
        } else if let Some(var) = reference.strip_prefix("env:") {
            let var = var.trim();
            std::env::var(var).map_err(|_| {
                ReferenceError(format!(
                    "environment variable `{var}` is not set; export it or change the value"
                ))
            })
        } else {
            Err(ReferenceError(format!(
                "unknown reference `${{{reference}}}`; use `${{credential:NAME}}` or `${{env:VAR}}`"
            )))
        }
    }

    fn credential(&mut self, name: &str) -> Result<String, ReferenceError> {
        let var = env_var_name(name);
        if let Ok(value) = std::env::var(&var) {
            return Ok(value);
        }
        let file_hint = match &self.file {
            Some(file) => format!(" or add `{name} = \"…\"` to {}", file.display()),
            None => " or set [credentials] file in the config".to_string(),
        };
        let missing = || {
            ReferenceError(format!(
                "credential `{name}` is not set; export {var}{file_hint}"
            ))
        };
        let Some(file) = self.file.clone() else {
            return Err(missing());
        };
        let loaded = self
            .loaded
            .get_or_insert_with(|| load_credentials_file(&file));
        match loaded {
            Ok(values) => values.get(name).cloned().ok_or_else(missing),
            Err(problem) if problem.is_empty() => Err(missing()),
            Err(problem) => Err(ReferenceError(format!(
                "credential `{name}` cannot be read: {problem}"
            ))),
        }
    }
}

/// `aws-key` → `SYNCDECK_CREDENTIAL_AWS_KEY`.
pub fn env_var_name(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("SYNCDECK_CREDENTIAL_{upper}")
}

/// Reads `name = "value"` pairs. An `Err("")` means the file does not exist.
fn load_credentials_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(String::new()),
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    // The parse error message may quote a line of the file: keep only its position.
    let table: toml::Table = toml::from_str(&text).map_err(|error| {
        let position = error
            .span()
            .map(|span| {
                let (line, column) = super::error::line_column(&text, span.start);
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        format!("{}{position} is not valid TOML", path.display())
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        if let toml::Value::String(value) = value {
            values.insert(key, value);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_registered_secrets() {
        register_secret("hunter2-very-secret");
        assert_eq!(redact("key=hunter2-very-secret!"), "key=***!");
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn env_var_names_are_upper_snake() {
        assert_eq!(env_var_name("aws-key.2"), "SYNCDECK_CREDENTIAL_AWS_KEY_2");
    }

    #[test]
    fn missing_credential_names_the_variable_not_a_value() {
        let mut resolver = CredentialResolver::new(None);
        let error = resolver
            .resolve("${credential:nope_not_set_anywhere}")
            .expect_err("must fail");
        assert!(
            error
                .0
                .contains("SYNCDECK_CREDENTIAL_NOPE_NOT_SET_ANYWHERE"),
            "{}",
            error.0
        );
    }
}
