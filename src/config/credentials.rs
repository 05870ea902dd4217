//! Credential references (`${credential:NAME}`, `${env:VAR}`) and the
//! process-wide redaction of resolved secret values.
//!
//! A resolved credential value is registered here before anything can print
//! it; the log writers, the CLI's error printer and the state store pass
//! their text through [`redact`], so a secret that leaks into a library's
//! error message is still masked.
//!
//! A value substituted into the user name or password of a URL is
//! percent-encoded there, so the URL parser reads back exactly the secret:
//! never a host name made of its tail, never a `%41` decoded.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

use toml::Spanned;
use toml::de::DeValue;

use super::error::{ConfigError, SourceText};

/// What a secret looks like once redacted.
pub const REDACTED: &str = "***";

/// Secrets shorter than this are not scrubbed from free text: masking every
/// occurrence of a one- or two-character string would garble all output.
const MIN_REDACTED_LEN: usize = 4;

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Remembers a secret value so that [`redact`] masks it from now on, with
/// the forms a library may print it in: percent-encoded or decoded, escaped,
/// and the pieces it falls into when a URL parser splits it at `@`, `:`, `/`
/// and the like (a password with an `@` once became part of a host name).
pub fn register_secret(value: &str) {
    let forms = secret_forms(value);
    if let Ok(mut secrets) = registry().write() {
        for form in forms {
            if form.chars().count() >= MIN_REDACTED_LEN && !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    }
}

/// Characters at which URL parsers and messages split text.
const URL_DELIMITERS: &[char] = &['@', ':', '/', '?', '#', '%', '&', '=', ';', ',', ' '];

fn secret_forms(value: &str) -> Vec<String> {
    // A whole connection URL: its scheme, host and database are not secret,
    // only the password is, so only the password is cut into pieces.
    if let Some(password) = url_password(value) {
        let mut forms = vec![value.to_string()];
        forms.extend(secret_forms(&password));
        return forms;
    }
    let mut forms = vec![
        value.to_string(),
        percent_encode(value),
        encode(value, |byte| format!("%{byte:02x}")),
        format!("{value:?}").trim_matches('"').to_string(),
    ];
    if let Some(decoded) = percent_decode(value) {
        forms.push(decoded);
    }
    let mut pieces = Vec::new();
    for form in &forms {
        for (index, delimiter) in form.match_indices(URL_DELIMITERS) {
            pieces.push(form[..index].to_string());
            pieces.push(form[index + delimiter.len()..].to_string());
        }
        pieces.extend(form.split(URL_DELIMITERS).map(str::to_string));
        pieces.extend(form.split(|c: char| !c.is_ascii()).map(str::to_string));
    }
    forms.extend(pieces);
    forms
}

/// The password of `scheme://user:password@host…`, percent-decoded.
fn url_password(value: &str) -> Option<String> {
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(percent_decode(password).unwrap_or_else(|| password.to_string()))
}

/// Percent-encodes every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`),
/// so the value is read back whole from any part of a URL.
pub(crate) fn percent_encode(value: &str) -> String {
    encode(value, |byte| format!("%{byte:02X}"))
}

fn encode(value: &str, escape: impl Fn(u8) -> String) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&escape(byte));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` when there are none or the result is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    let mut decoded_any = false;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
                decoded_any = true;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    if !decoded_any {
        return None;
    }
    String::from_utf8(out).ok()
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
    /// In a URL whose scheme is written out, a value landing in the user
    /// name or password (or a `password=` parameter) is percent-encoded, so
    /// an `@`, `:` or `/` in a password cannot move the host and a `%41`
    /// in it stays literal.
    pub(crate) fn resolve(&mut self, text: &str) -> Result<String, ReferenceError> {
        let literal = literal_view(text);
        let mut out = String::with_capacity(text.len());
        let mut offset = 0;
        while let Some(found) = text[offset..].find("${") {
            let start = offset + found;
            out.push_str(&text[offset..start]);
            let after = &text[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ReferenceError(
                    "unclosed `${` in a value; write `${credential:NAME}` or `${env:VAR}`".into(),
                ));
            };
            let value = self.lookup(&after[..end])?;
            match url_slot(&literal, start) {
                UrlSlot::Plain => out.push_str(&value),
                UrlSlot::User => out.push_str(&percent_encode(&value)),
                UrlSlot::Password => {
                    // `${env:…}` values are not registered on lookup; a
                    // password is a secret wherever it came from.
                    register_secret(&value);
                    out.push_str(&percent_encode(&value));
                }
            }
            offset = start + 2 + end + 1;
        }
        out.push_str(&text[offset..]);
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

/// Where in a URL a reference lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlSlot {
    /// Not in a URL's credentials: the value is used as it is.
    Plain,
    User,
    Password,
}

/// `text` with every `${…}` blanked out (same byte positions), so the
/// URL delimiters seen are the ones written in the config.
fn literal_view(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut offset = 0;
    while let Some(found) = text[offset..].find("${") {
        let start = offset + found;
        let end = text[start..]
            .find('}')
            .map_or(text.len(), |end| start + end + 1);
        bytes[start..end].fill(b'x');
        offset = end;
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// Whether the reference at byte `start` of a value sits in the user name
/// or password of a URL written as `scheme://user:password@host/…`, or in a
/// `password=` query parameter.
fn url_slot(literal: &str, start: usize) -> UrlSlot {
    let before = &literal[..start];
    let Some(scheme_end) = before.find("://") else {
        return UrlSlot::Plain;
    };
    let scheme = &before[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return UrlSlot::Plain;
    }
    let authority_start = scheme_end + 3;
    let authority_end = literal[authority_start..]
        .find(['/', '?', '#'])
        .map_or(literal.len(), |end| authority_start + end);
    if start < authority_end {
        let authority = &literal[authority_start..authority_end];
        return match authority.rfind('@') {
            Some(at) if start < authority_start + at => {
                if literal[authority_start..start].contains(':') {
                    UrlSlot::Password
                } else {
                    UrlSlot::User
                }
            }
            _ => UrlSlot::Plain,
        };
    }
    let in_query = literal[authority_end..start].contains('?');
    if in_query && (before.ends_with("?password=") || before.ends_with("&password=")) {
        return UrlSlot::Password;
    }
    UrlSlot::Plain
}

/// Replaces credential and environment references in every string of `value`.
pub(super) fn resolve_references(
    source: &SourceText<'_>,
    value: &mut Spanned<DeValue<'_>>,
    resolver: &mut CredentialResolver,
) -> Result<(), ConfigError> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(text) if text.contains("${") => {
            let resolved = resolver
                .resolve(text)
                .map_err(|error| source.error(Some(span), error.0))?;
            *text = resolved.into();
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                resolve_references(source, item, resolver)?;
            }
        }
        DeValue::Table(table) => {
            for (_, item) in table.iter_mut() {
                resolve_references(source, item, resolver)?;
            }
        }
        _ => {}
    }
    Ok(())
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
    fn a_password_in_a_url_is_encoded_and_the_host_stays_put() {
        use std::os::unix::fs::PermissionsExt;
        let name = "url_slot_test_pw";
        let folder = tempfile::tempdir().expect("temp dir");
        let file = folder.path().join("credentials.toml");
        std::fs::write(&file, format!("{name} = \"p@ss:w/rd%41é\"\n")).expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let mut resolver = CredentialResolver::new(Some(file));
        let resolved = resolver
            .resolve(&format!(
                "postgres://app:${{credential:{name}}}@127.0.0.1:1/db"
            ))
            .expect("resolves");
        assert_eq!(
            resolved,
            "postgres://app:p%40ss%3Aw%2Frd%2541%C3%A9@127.0.0.1:1/db"
        );
        let query = resolver
            .resolve(&format!(
                "postgres://h/db?user=a&password=${{credential:{name}}}"
            ))
            .expect("resolves");
        assert!(
            query.ends_with("password=p%40ss%3Aw%2Frd%2541%C3%A9"),
            "{query}"
        );
        // Outside a URL's credentials the value is used as it is.
        let path = resolver
            .resolve(&format!("s3://bucket/${{credential:{name}}}/"))
            .expect("resolves");
        assert_eq!(path, "s3://bucket/p@ss:w/rd%41é/");
        let whole = resolver
            .resolve(&format!("${{credential:{name}}}"))
            .expect("resolves");
        assert_eq!(whole, "p@ss:w/rd%41é");
    }

    #[test]
    fn redaction_catches_pieces_and_encodings_of_a_secret() {
        register_secret("Zq7@hunter-pass:x%41yy");
        for printed in [
            "host hunter-pass:x%41yy@127.0.0.1",
            "user Zq7@hunter-pass",
            "Zq7%40hunter-pass%3Ax%2541yy",
            "Zq7%40hunter-pass%3ax%2541yy",
            "decoded Zq7@hunter-pass:xAyy",
        ] {
            let masked = redact(printed);
            assert!(!masked.contains("hunter"), "{printed} -> {masked}");
        }
    }

    #[test]
    fn only_the_password_of_a_secret_url_is_cut_into_pieces() {
        register_secret("postgres://app:Wq9:long-pass@dbhost.internal/db");
        assert_eq!(
            redact("connect to dbhost.internal"),
            "connect to dbhost.internal"
        );
        assert_eq!(redact("saw long-pass"), "saw ***");
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
