//! Checks that need the whole config: task ids, dependencies and cycles,
//! and the parts of task properties that serde cannot check (globs, paths,
//! templates, sizes).

use std::collections::{BTreeMap, HashSet};

use super::error::{ConfigError, SourceText, did_you_mean};
use super::jq::{self, ColumnSource};
use super::{Config, TaskProperties, TaskSpans, template};
use crate::config::location::LocationSpec;
use crate::config::pattern::Pattern;

/// A task that failed to parse: its id, so depending on it is not
/// reported again, and its dependencies (where they are written), for
/// cycles.
pub(super) struct Unparsed {
    pub(super) id: String,
    pub(super) dependencies: Vec<String>,
    pub(super) at: Option<std::ops::Range<usize>>,
}

/// Every problem found: engine limits, then per task its id, its
/// dependencies and its properties (the first problem of each task's
/// properties), then a dependency cycle, also through `unparsed` tasks.
pub(super) fn validate(
    source: &SourceText<'_>,
    config: &Config,
    spans: &[TaskSpans],
    unparsed: &[Unparsed],
) -> Vec<ConfigError> {
    let other_ids: Vec<String> = unparsed.iter().map(|task| task.id.clone()).collect();
    let mut errors = Vec::new();
    if config.engine.lease_ttl < std::time::Duration::from_secs(1) {
        errors.push(source.error(None, "[engine] lease_ttl must be at least 1s"));
    }
    if config.engine.max_concurrent_tasks == 0 {
        errors.push(source.error(None, "[engine] max_concurrent_tasks must be at least 1"));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, task) in config.tasks.iter().enumerate() {
        let span = &spans[index];
        let valid_id = !task.id.is_empty()
            && task
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_id {
            errors.push(source.error(
                Some(span.id.clone()),
                format!(
                    "task id `{}` may only use a-z, 0-9, `_` and `-`; rename it",
                    task.id
                ),
            ));
        } else if seen.insert(&task.id, index).is_some() {
            errors.push(source.error(
                Some(span.id.clone()),
                format!(
                    "task id `{}` is used twice; give each task its own id",
                    task.id
                ),
            ));
        }
    }
    let ids: Vec<&str> = seen
        .keys()
        .copied()
        .chain(other_ids.iter().map(String::as_str))
        .collect();
    for (index, task) in config.tasks.iter().enumerate() {
        for (dependency, dependency_span) in
            task.dependencies.iter().zip(&spans[index].dependencies)
        {
            if !seen.contains_key(dependency.as_str()) && !other_ids.contains(dependency) {
                let hint = did_you_mean(dependency, &ids)
                    .map(|best| format!("did you mean `{best}`?"))
                    .unwrap_or_else(|| "remove it or add a task with that id".into());
                errors.push(source.error(
                    Some(dependency_span.clone()),
                    format!(
                        "task `{}` depends on unknown task `{dependency}`; {hint}",
                        task.id
                    ),
                ));
            } else if dependency == &task.id {
                errors.push(source.error(
                    Some(dependency_span.clone()),
                    format!(
                        "task `{}` depends on itself; remove it from its dependencies",
                        task.id
                    ),
                ));
            }
        }
        if let Err(error) = check_properties(source, &task.properties, &config.base_dir) {
            errors.push(error);
        }
    }
    // Tasks that did not parse can still depend on themselves.
    for task in unparsed {
        if task.dependencies.contains(&task.id) {
            errors.push(source.error(
                task.at.clone(),
                format!(
                    "task `{}` depends on itself; remove it from its dependencies",
                    task.id
                ),
            ));
        }
    }
    let graph: Vec<(&str, Vec<&str>)> = config
        .tasks
        .iter()
        .map(|task| {
            let dependencies = task.dependencies.iter().map(String::as_str).collect();
            (task.id.as_str(), dependencies)
        })
        .chain(unparsed.iter().map(|task| {
            let dependencies = task.dependencies.iter().map(String::as_str).collect();
            (task.id.as_str(), dependencies)
        }))
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        let at = match seen.get(cycle[0]) {
            Some(&index) => spans[index]
                .dependencies
                .first()
                .cloned()
                .or(Some(spans[index].task.clone())),
            None => unparsed
                .iter()
                .find(|task| task.id == cycle[0])
                .and_then(|task| task.at.clone()),
        };
        errors.push(source.error(
            at,
            format!(
                "dependency cycle {}; remove one of these dependencies",
                cycle.join(" -> ")
            ),
        ));
    }
    errors
}

fn check_properties(
    source: &SourceText<'_>,
    properties: &TaskProperties,
    base_dir: &std::path::Path,
) -> Result<(), ConfigError> {
    let sync = match properties {
        TaskProperties::Sync(sync) => sync,
        TaskProperties::TableSync(table) => return check_table_sync(source, table),
        TaskProperties::Airbyte(airbyte) => return check_airbyte(source, airbyte),
        TaskProperties::HttpSync(http) => return check_http_sync(source, http),
    };
    for (what, path) in [
        ("source_path", &sync.source_path),
        ("destination_path", &sync.destination_path),
    ] {
        let span = Some(path.span());
        if path.get_ref().trim().is_empty() {
            return Err(source.error(
                span,
                format!("{what} is empty; give a local path or a URL like s3://bucket/prefix/"),
            ));
        }
        template::check(path.get_ref())
            .map_err(|message| source.error(span.clone(), format!("{what}: {message}")))?;
        LocationSpec::parse(path.get_ref())
            .map_err(|message| source.error(span, format!("{what}: {message}")))?;
    }
    check_nesting(source, sync, base_dir)?;
    check_host_keys(source, sync)?;
    if let Some(pattern) = &sync.pattern {
        Pattern::new(pattern.get_ref())
            .map_err(|message| source.error(Some(pattern.span()), message))?;
    }
    if sync.transfers == 0 {
        return Err(source.error(
            Some(sync.source_path.span()),
            "transfers must be at least 1",
        ));
    }
    if let Some(limit) = &sync.bwlimit {
        parse_rate(limit.get_ref()).map_err(|message| source.error(Some(limit.span()), message))?;
    }
    Ok(())
}

/// Refuses an SFTP location whose server's host key cannot be checked:
/// no pinned fingerprint, no known_hosts setting and no `~/.ssh/known_hosts`
/// (every run would be refused).
fn check_host_keys(
    source: &SourceText<'_>,
    sync: &super::SyncProperties,
) -> Result<(), ConfigError> {
    let sides = [
        ("source", &sync.source_path, &sync.sync_config.source_config),
        (
            "destination",
            &sync.destination_path,
            &sync.sync_config.destination_config,
        ),
    ];
    for (side, path, options) in sides {
        let Ok(LocationSpec::Sftp { host, port, .. }) = LocationSpec::parse(path.get_ref()) else {
            continue;
        };
        if let Some(fingerprint) = &options.host_key_fingerprint
            && !super::location::is_sha256_fingerprint(fingerprint)
        {
            return Err(source.error(
                Some(path.span()),
                format!(
                    "{side}_path: host_key_fingerprint `{fingerprint}` is not a SHA256 fingerprint; write it as `ssh-keygen -lf` prints it: SHA256: and 43 characters"
                ),
            ));
        }
        if options.host_key_fingerprint.is_some()
            || options.known_hosts.is_some()
            || super::location::default_known_hosts().is_some()
        {
            continue;
        }
        let port = options.port.or(port).unwrap_or(22);
        return Err(source.error(
            Some(path.span()),
            format!(
                "{side}_path: no way to check the SFTP server's host key; set host_key_fingerprint = \"SHA256:…\" (`ssh-keyscan -p {port} {host} | ssh-keygen -lf -` shows it; confirm it with the server's operator) or known_hosts in sync_config.{side}_config"
            ),
        ));
    }
    Ok(())
}

/// Refuses local folders that contain each other: a destination inside a
/// recursive source is listed as source on the next run, so every run copies
/// the copies again (`copy/copy/copy/…`); a source inside the destination
/// mixes the originals with what was synced. Without `recursive` neither
/// listing descends, so only the same folder on both sides is refused.
/// Paths are compared as written (after `..` and relative paths are
/// resolved), not through symlinks.
fn check_nesting(
    source: &SourceText<'_>,
    sync: &super::SyncProperties,
    base_dir: &std::path::Path,
) -> Result<(), ConfigError> {
    let local = |path: &str| match LocationSpec::parse(path) {
        Ok(spec @ LocationSpec::Local(_)) => Some(std::path::PathBuf::from(format!(
            "/{}",
            spec.key_prefix(base_dir)
        ))),
        _ => None,
    };
    let (Some(from), Some(to)) = (
        local(sync.source_path.get_ref()),
        local(sync.destination_path.get_ref()),
    ) else {
        return Ok(());
    };
    let (from_text, to_text) = (sync.source_path.get_ref(), sync.destination_path.get_ref());
    let problem = if from == to {
        Some(format!(
            "destination_path `{to_text}` is the same folder as source_path `{from_text}`"
        ))
    } else if sync.recursive && to.starts_with(&from) {
        Some(format!(
            "destination_path `{to_text}` is inside source_path `{from_text}` and recursive = true: every run would copy the copies again"
        ))
    } else if sync.recursive && from.starts_with(&to) {
        Some(format!(
            "source_path `{from_text}` is inside destination_path `{to_text}` and recursive = true: synced files would mix with the originals"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(source.error(
            Some(sync.destination_path.span()),
            format!("{problem}; choose folders that do not contain each other"),
        )),
        None => Ok(()),
    }
}

fn check_table_sync(
    source: &SourceText<'_>,
    table: &super::TableSyncProperties,
) -> Result<(), ConfigError> {
    use super::TableMode;
    let target_span = Some(table.target_table.span());
    match (&table.source_table, &table.source_query) {
        (Some(_), Some(query)) => {
            return Err(source.error(
                Some(query.span()),
                "give source_table or source_query, not both",
            ));
        }
        (None, None) => {
            return Err(source.error(
                target_span,
                "table_sync needs source_table or source_query; add one",
            ));
        }
        _ => {}
    }
    for (what, url) in [
        ("source", table.source.expose()),
        ("target", table.target.expose()),
    ] {
        let scheme = url.split("://").next().unwrap_or("");
        let allowed: &[&str] = if what == "source" {
            &["postgres", "postgresql", "redshift"]
        } else {
            &["postgres", "postgresql"]
        };
        if !url.contains("://") || !allowed.contains(&scheme) {
            return Err(source.error(
                target_span.clone(),
                format!(
                    "{what} must be a connection URL starting with {}://",
                    allowed.join("://, ")
                ),
            ));
        }
    }
    if table.primary_key.get_ref().is_empty() {
        return Err(source.error(
            Some(table.primary_key.span()),
            "primary_key is empty; name the key column(s) of the target table",
        ));
    }
    if *table.mode.get_ref() == TableMode::Incremental && table.watermark_column.is_none() {
        return Err(source.error(
            Some(table.mode.span()),
            "mode = \"incremental\" needs watermark_column (e.g. \"updated_at\")",
        ));
    }
    if let Some(delete) = &table.delete_missing
        && *table.mode.get_ref() != TableMode::Full
    {
        return Err(source.error(
            Some(delete.span()),
            "delete_missing only applies to mode = \"full\": an incremental run reads only changed rows, so it cannot tell which rows were deleted; remove it or use mode = \"full\"",
        ));
    }
    if let Some(lookback) = &table.watermark_lookback_text {
        let span = Some(lookback.span());
        if *table.mode.get_ref() != TableMode::Incremental {
            return Err(source.error(
                span,
                "watermark_lookback only applies to mode = \"incremental\"; remove it or set the mode",
            ));
        }
        super::table::parse_lookback(lookback.get_ref())
            .map_err(|message| source.error(span, message))?;
    }
    if *table.batch_size.get_ref() == 0 {
        return Err(source.error(
            Some(table.batch_size.span()),
            "batch_size must be at least 1",
        ));
    }
    if !*table.commit_per_batch.get_ref() {
        return Err(source.error(
            Some(table.commit_per_batch.span()),
            "commit_per_batch = false is not supported: each batch commits alone so a failed one can be retried alone; remove it",
        ));
    }
    let targets: Vec<&str> = table.columns.keys().map(String::as_str).collect();
    if !targets.is_empty() {
        for key in table.primary_key.get_ref() {
            if !targets.contains(&key.as_str()) {
                return Err(source.error(
                    Some(table.primary_key.span()),
                    format!("primary key column `{key}` is not in [columns]; map it too"),
                ));
            }
        }
    }
    check_table_jq(source, table)
}

/// `jq` columns and the row `filter` of a table sync.
fn check_table_jq(
    source: &SourceText<'_>,
    table: &super::TableSyncProperties,
) -> Result<(), ConfigError> {
    for (name, column) in &table.columns {
        let Some(expression) = &column.jq else {
            continue;
        };
        let span = Some(expression.text.span());
        if column.source.is_some() {
            return Err(source.error(
                span,
                format!("column `{name}` has both source and jq; keep one"),
            ));
        }
        if table.primary_key.get_ref().contains(name) {
            return Err(source.error(
                span,
                format!(
                    "primary key column `{name}` cannot be computed by jq: batches are read in the source's key order; map it with source = \"…\""
                ),
            ));
        }
    }
    let expressions = table
        .columns
        .iter()
        .filter_map(|(name, column)| Some((format!("column `{name}`"), column.jq.as_ref()?)))
        .chain(
            table
                .filter
                .iter()
                .map(|filter| ("filter".to_string(), filter)),
        );
    check_jq(source, expressions)
}

fn check_http_sync(
    source: &SourceText<'_>,
    http: &super::HttpSyncProperties,
) -> Result<(), ConfigError> {
    // Unresolved references (`syncdeck history`/`errors` load without
    // credentials) are checked once they are resolved.
    let unresolved = |text: &str| text.contains("${");
    if !(http.base_url.starts_with("http://")
        || http.base_url.starts_with("https://")
        || unresolved(&http.base_url))
    {
        return Err(source.error(
            None,
            format!(
                "http_sync base_url `{}` must start with https:// (or http://)",
                http.base_url
            ),
        ));
    }
    if !(http.target.expose().starts_with("postgres://")
        || http.target.expose().starts_with("postgresql://")
        || unresolved(http.target.expose()))
    {
        return Err(source.error(None, "http_sync target must be a postgres:// URL"));
    }
    if http.columns.is_empty() {
        return Err(source.error(
            None,
            "http_sync needs [tasks.properties.columns]: target column = dotted path in an item",
        ));
    }
    if http.primary_key.is_empty()
        || http
            .primary_key
            .iter()
            .any(|key| !http.columns.contains_key(key))
    {
        return Err(source.error(None, "http_sync primary_key must name mapped columns"));
    }
    if http.page_size == 0 {
        return Err(source.error(None, "http_sync page_size must be at least 1"));
    }
    for (what, text) in std::iter::once(("path", &http.path))
        .chain(http.query.values().map(|value| ("query value", value)))
    {
        template::check(text).map_err(|message| {
            source.error(None, format!("http_sync {what} `{text}`: {message}"))
        })?;
    }
    let expressions = http
        .columns
        .iter()
        .filter_map(|(name, column)| match column {
            ColumnSource::Jq(expression) => Some((format!("column `{name}`"), expression)),
            ColumnSource::Path(_) => None,
        })
        .chain(
            http.filter
                .iter()
                .map(|filter| ("filter".to_string(), filter)),
        );
    check_jq(source, expressions)
}

/// The first jq expression that does not compile, as an error pointing at
/// the character inside its string.
fn check_jq<'a>(
    source: &SourceText<'_>,
    expressions: impl IntoIterator<Item = (String, &'a jq::Expression)>,
) -> Result<(), ConfigError> {
    for (what, expression) in expressions {
        if let Err(error) = &expression.program {
            let span = expression.text.span();
            let raw = source.text.get(span.clone()).unwrap_or_default();
            let at = span.start + jq::offset_in_value(raw, error.offset);
            return Err(source.error(
                Some(at..at),
                format!(
                    "jq in {what}: {}; fix the expression here (jq syntax: https://jqlang.org/manual/)",
                    error.message
                ),
            ));
        }
    }
    Ok(())
}

fn check_airbyte(
    source: &SourceText<'_>,
    airbyte: &super::AirbyteProperties,
) -> Result<(), ConfigError> {
    // Unresolved references are checked once resolved, as for http_sync.
    if !(airbyte.api_url.starts_with("http://")
        || airbyte.api_url.starts_with("https://")
        || airbyte.api_url.contains("${"))
    {
        return Err(source.error(
            None,
            format!(
                "airbyte api_url `{}` must start with https:// (or http://)",
                airbyte.api_url
            ),
        ));
    }
    template::check(&airbyte.connection_id).map_err(|message| {
        source.error(
            None,
            format!(
                "airbyte connection_id `{}`: {message}",
                airbyte.connection_id
            ),
        )
    })?;
    if airbyte.wait_seconds.is_nan()
        || airbyte.wait_seconds <= 0.0
        || airbyte.wait_seconds > 86_400.0
    {
        return Err(source.error(
            None,
            "airbyte wait_seconds must be more than 0 and at most 86400",
        ));
    }
    Ok(())
}

/// Parses a byte rate like "4MiB" or "512 KiB" (per second).
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim().trim_end_matches("/s");
    let size: bytesize::ByteSize = trimmed
        .parse()
        .map_err(|_| format!("invalid bwlimit `{text}`; write a size per second like \"4MiB\""))?;
    if size.as_u64() == 0 {
        return Err("bwlimit must be more than 0; remove it for no limit".into());
    }
    Ok(size.as_u64())
}

/// Returns one dependency cycle of `graph` (each task's id and
/// dependencies) as a list of ids ending where it started.
fn find_cycle<'a>(graph: &[(&'a str, Vec<&'a str>)]) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        id: &'a str,
        graph: &[(&'a str, Vec<&'a str>)],
        stack: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(position) = stack.iter().position(|entry| *entry == id) {
            let mut cycle = stack[position..].to_vec();
            cycle.push(id);
            return Some(cycle);
        }
        if done.contains(id) {
            return None;
        }
        stack.push(id);
        if let Some((_, dependencies)) = graph.iter().find(|(task, _)| *task == id) {
            // A self-dependency is reported on its own; following it
            // here would hide the cycles after it.
            for dependency in dependencies.iter().filter(|dependency| **dependency != id) {
                if let Some(cycle) = visit(dependency, graph, stack, done) {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        done.insert(id);
        None
    }
    let mut done = HashSet::new();
    for (id, _) in graph {
        if let Some(cycle) = visit(id, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Files that sync tasks name beside their locations (an SSH private key,
/// a known_hosts file, a CA certificate, a GCS service-account key) and
/// that cannot be read now, each reported at its location's line. Only
/// `validate` asks: a missing key file fails that task's runs, not the
/// loading of the whole config (a console on another machine still opens).
pub fn unreadable_files(config: &Config) -> Vec<ConfigError> {
    let text = std::fs::read_to_string(&config.file).unwrap_or_default();
    let source = SourceText {
        file: &config.file,
        text: &text,
    };
    let mut errors = Vec::new();
    for task in &config.tasks {
        let TaskProperties::Sync(sync) = &task.properties else {
            continue;
        };
        let sides = [
            (
                "source_path",
                &sync.source_path,
                &sync.sync_config.source_config,
            ),
            (
                "destination_path",
                &sync.destination_path,
                &sync.sync_config.destination_config,
            ),
        ];
        for (side, path, options) in sides {
            let files = [
                ("private_key_file", &options.private_key_file),
                ("known_hosts", &options.known_hosts),
                ("tls_ca_file", &options.tls_ca_file),
                ("service_account_path", &options.service_account_path),
            ];
            for (key, file) in files {
                let Some(file) = file else {
                    continue;
                };
                let resolved = config.resolve_path(file);
                if let Err(error) = std::fs::File::open(&resolved) {
                    errors.push(source.error(
                        Some(path.span()),
                        format!(
                            "task `{}`: {side}'s {key} {} cannot be read ({}: {error}); fix the path in its sync_config (a relative path starts at the config's folder)",
                            task.id,
                            file.display(),
                            resolved.display()
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// Local `source_path`s that do not exist here, each reported at its line:
/// a warning of `validate`, since a folder may be mounted or filled later.
/// Tasks with dependencies are left out (those may make their source), and
/// so are paths with a template or a pattern, which only a run resolves.
pub fn missing_local_sources(config: &Config) -> Vec<ConfigError> {
    let text = std::fs::read_to_string(&config.file).unwrap_or_default();
    let source = SourceText {
        file: &config.file,
        text: &text,
    };
    let mut missing = Vec::new();
    for task in config
        .tasks
        .iter()
        .filter(|task| task.dependencies.is_empty())
    {
        let TaskProperties::Sync(sync) = &task.properties else {
            continue;
        };
        let given = sync.source_path.get_ref();
        if given.contains("{{") || given.contains(['*', '?', '[']) {
            continue;
        }
        let Ok(super::location::LocationSpec::Local(path)) =
            super::location::LocationSpec::parse(given)
        else {
            continue;
        };
        // Without the `.` of `./in/`: the path as an operator would type it.
        let resolved: std::path::PathBuf = config
            .resolve_path(&path)
            .components()
            .filter(|part| !matches!(part, std::path::Component::CurDir))
            .collect();
        if !resolved.exists() {
            // The full path only when it says more than the one given.
            let full = if resolved == path {
                String::new()
            } else {
                format!(" ({})", resolved.display())
            };
            missing.push(source.error(
                Some(sync.source_path.span()),
                format!(
                    "task `{}`: source_path `{given}` does not exist here{full}; its runs fail until it does: create it, or fix the path (a relative path starts at the config's folder)",
                    task.id,
                ),
            ));
        }
    }
    missing
}
