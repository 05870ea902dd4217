//! Checks of connection URLs once their credentials are resolved: a
//! PostgreSQL URL must parse and name a plausible host, and file locations
//! must not carry a user name or password (those go in `sync_config`).
//!
//! Messages never quote a URL: it may hold a password.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, SourceText};

const POSTGRES_SCHEMES: [&str; 3] = ["postgres://", "postgresql://", "redshift://"];
const LOCATION_SCHEMES: [&str; 9] = [
    "s3://",
    "s3a://",
    "gs://",
    "az://",
    "azure://",
    "ftp://",
    "ftps://",
    "sftp://",
    "memory://",
];

/// Checks `[engine] state`: a supported store, and a PostgreSQL URL that parses.
pub(super) fn check_state(
    source: &SourceText<'_>,
    document: &Spanned<DeTable<'_>>,
) -> Result<(), ConfigError> {
    let Some(engine) = document.get_ref().get("engine") else {
        return Ok(());
    };
    let DeValue::Table(engine) = engine.get_ref() else {
        return Ok(());
    };
    let Some(state) = engine.get("state") else {
        return Ok(());
    };
    let DeValue::String(url) = state.get_ref() else {
        return Ok(());
    };
    let span = Some(state.span());
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return check_postgres(url)
            .map_err(|problem| source.error(span, format!("[engine] state: {problem}")));
    }
    let scheme = url.split(':').next().unwrap_or_default();
    let scheme: String = scheme.chars().take(20).collect();
    Err(source.error(
        span,
        format!(
            "[engine] state: `{scheme}:` is not a supported state store; use sqlite:PATH (embedded) or postgres://… (shared)"
        ),
    ))
}

/// Checks every string in a task's resolved properties that is a
/// connection URL or a file location.
pub(super) fn check_values(
    source: &SourceText<'_>,
    value: &Spanned<DeValue<'_>>,
    key: &str,
) -> Result<(), ConfigError> {
    match value.get_ref() {
        DeValue::String(text) => check_string(text, key)
            .map_err(|problem| source.error(Some(value.span()), format!("{key}: {problem}"))),
        DeValue::Array(items) => items
            .iter()
            .try_for_each(|item| check_values(source, item, key)),
        DeValue::Table(table) => table
            .iter()
            .try_for_each(|(name, item)| check_values(source, item, name.get_ref())),
        _ => Ok(()),
    }
}

fn check_string(text: &str, key: &str) -> Result<(), String> {
    if POSTGRES_SCHEMES
        .iter()
        .any(|scheme| text.starts_with(scheme))
    {
        return check_postgres(text);
    }
    let location = LOCATION_SCHEMES
        .iter()
        .any(|scheme| text.starts_with(scheme));
    if (location || key == "endpoint") && authority(text).is_some_and(|part| part.contains('@')) {
        return Err(
            "a user name or password in the URL is not supported; give them in [tasks.properties.sync_config] (username and password, or aws_access_key_id and aws_secret_access_key)".into(),
        );
    }
    Ok(())
}

/// The `user:password@host:port` part of `scheme://…`.
fn authority(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Parses a PostgreSQL or Redshift URL the way the driver will.
fn check_postgres(url: &str) -> Result<(), String> {
    let hint = "percent-encode special characters in the user name and password (`@` as %40, `:` as %3A, `/` as %2F, `%` as %25), or give the password as ${credential:NAME}";
    let url = match url.strip_prefix("redshift://") {
        Some(rest) => format!("postgres://{rest}"),
        None => url.to_string(),
    };
    let config: tokio_postgres::Config =
        without_tls_options(&url)
            .parse()
            .map_err(|error: tokio_postgres::Error| {
                format!(
                    "not a valid PostgreSQL connection URL ({}); {hint}",
                    super::redact(&error.to_string())
                )
            })?;
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host {
            let plausible = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
            if !plausible {
                return Err(format!(
                    "the host name of the connection URL is not valid; {hint}"
                ));
            }
        }
    }
    Ok(())
}

/// The URL without syncdeck's own TLS options (`sslmode=verify-*`,
/// `sslrootcert`), which the driver does not know.
fn without_tls_options(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("sslrootcert="))
        .map(|pair| match pair {
            "sslmode=verify-ca" | "sslmode=verify-full" => "sslmode=require",
            other => other,
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unencoded_at_in_a_password_is_refused_without_quoting_it() {
        let problem = check_string("postgres://app:p@ssw0rd@127.0.0.1/db", "target")
            .expect_err("the host would be `ssw0rd@127.0.0.1`");
        assert!(problem.contains("%40"), "{problem}");
        assert!(!problem.contains("ssw0rd"), "{problem}");
        assert_eq!(
            check_string(
                "postgres://app:p%40ssw0rd@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=/x.pem",
                "target"
            ),
            Ok(())
        );
    }

    #[test]
    fn file_locations_refuse_credentials_in_the_url() {
        assert!(check_string("ftp://user:pw@127.0.0.1/in/", "source_path").is_err());
        assert!(check_string("s3://key:secret@bucket/x/", "source_path").is_err());
        assert!(check_string("http://k:s@127.0.0.1:9000", "endpoint").is_err());
        assert_eq!(check_string("s3://bucket/a@b/", "source_path"), Ok(()));
        assert_eq!(
            check_string("sftp://127.0.0.1:22/in/", "source_path"),
            Ok(())
        );
    }
}
