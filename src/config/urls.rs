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

/// Checks that a table sync's `source` and `target` are connection URLs
/// of a database it reads or writes, pointing at the value.
pub(super) fn check_table_sync_urls(
    source: &SourceText<'_>,
    properties: &Spanned<DeValue<'_>>,
) -> Result<(), ConfigError> {
    let DeValue::Table(table) = properties.get_ref() else {
        return Ok(());
    };
    let source_schemes: &[&str] = &["postgres", "postgresql", "redshift"];
    let target_schemes: &[&str] = &["postgres", "postgresql"];
    for (key, allowed) in [("source", source_schemes), ("target", target_schemes)] {
        let Some(value) = table.get(key) else {
            continue;
        };
        let DeValue::String(url) = value.get_ref() else {
            continue;
        };
        let scheme = url.split("://").next().unwrap_or("");
        if !url.contains("://") || !allowed.contains(&scheme) {
            return Err(source.error(
                Some(value.span()),
                format!(
                    "{key} must be a connection URL starting with {}:// (postgres://user@host:5432/database)",
                    allowed.join("://, ")
                ),
            ));
        }
    }
    Ok(())
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
    if let Some(problem) = bad_port_or_sslmode(&url) {
        return Err(problem);
    }
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

/// A port that is not a number or an `sslmode` libpq does not know, said
/// plainly (the driver only says the string is invalid). The port is not
/// quoted: with an unencoded `/` in a password it may be part of it.
fn bad_port_or_sslmode(url: &str) -> Option<String> {
    const MODES: [&str; 6] = [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if !host_port.starts_with('[') && authority.matches('@').count() <= 1 {
        for part in host_port.split(',') {
            if let Some((_, port)) = part.split_once(':')
                && !port.is_empty()
                && !port.chars().all(|c| c.is_ascii_digit())
            {
                return Some(
                    "the port of the connection URL is not a number; write host:5432".to_string(),
                );
            }
        }
    }
    let query = rest.split_once('?').map(|(_, query)| query)?;
    let mode = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sslmode="))?;
    if MODES.contains(&mode) {
        return None;
    }
    let shown = if mode.len() <= 20 && mode.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
        format!("`{mode}` ")
    } else {
        String::new()
    };
    let hint = super::error::did_you_mean(mode, &MODES)
        .map(|best| format!("did you mean `{best}`? "))
        .unwrap_or_default();
    Some(
        format!("sslmode {shown}is not one of {}; {hint}", MODES.join(", "))
            .trim_end_matches([' ', ';'])
            .to_string(),
    )
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
    fn a_bad_port_or_sslmode_is_named_not_blamed_on_the_password() {
        let port = check_string("postgres://app:secret@127.0.0.1:54x2/db", "target")
            .expect_err("not a port");
        assert_eq!(
            port,
            "the port of the connection URL is not a number; write host:5432"
        );
        let mode = check_string("postgres://app:secret@db:5432/app?sslmode=requir", "target")
            .expect_err("not a mode");
        assert!(
            mode.starts_with("sslmode `requir` is not one of disable, allow, prefer, require, verify-ca, verify-full")
                && mode.contains("did you mean `require`?"),
            "{mode}"
        );
        assert!(!mode.contains("secret") && !port.contains("secret"));
        assert!(check_string("postgres://app@db:5432/app?sslmode=verify-full", "target").is_ok());
        assert!(check_string("postgres://app@[::1]:5432/app", "target").is_ok());
    }

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
