//! Reading a config file: finding it, parsing the TOML with positions,
//! checking keys ("did you mean"), building each task and resolving its
//! credential references.

use super::*;

/// How much of the config to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Resolve credential references (needed to run tasks).
    Everything,
    /// Leave references as written (enough to read the state store).
    WithoutCredentials,
}

/// Finds the config file: `-c`, then `$SYNCDECK_CONFIG`, then `./syncdeck.toml`.
pub fn find_config(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV) {
        return Ok(PathBuf::from(path));
    }
    let default = PathBuf::from(DEFAULT_CONFIG_FILE);
    if default.exists() {
        return Ok(default);
    }
    Err(ConfigError {
        file: default,
        position: None,
        message: format!(
            "no config found; pass -c FILE, set ${CONFIG_ENV}, or create ./{DEFAULT_CONFIG_FILE} (see config.example.toml)"
        ),
    })
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path, resolve: Resolve) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        file: path.to_path_buf(),
        position: None,
        message: format!("cannot read the config: {error}; check the path given with -c"),
    })?;
    parse(path, &text, resolve)
}

/// Parses and validates config text; `path` is used in messages and as the
/// base for relative paths.
pub fn parse(path: &Path, text: &str, resolve: Resolve) -> Result<Config, ConfigError> {
    parse_all(path, text, resolve).map_err(|errors| {
        errors.into_iter().next().unwrap_or_else(|| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message: "the config is invalid".into(),
        })
    })
}

/// Like [`load`], but reports every problem it finds (at least one), in the
/// order of the file, instead of stopping at the first: for `validate`.
pub fn load_all(path: &Path, resolve: Resolve) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        vec![ConfigError {
            file: path.to_path_buf(),
            position: None,
            message: format!("cannot read the config: {error}; check the path given with -c"),
        }]
    })?;
    parse_all(path, &text, resolve)
}

/// Parses and validates, collecting the problems: a task that does not
/// parse is reported and left out, and the checks go on with the others.
/// A TOML syntax error stops at once (nothing after it can be trusted).
fn parse_all(path: &Path, text: &str, resolve: Resolve) -> Result<Config, Vec<ConfigError>> {
    let source = SourceText { file: path, text };
    let mut document = DeTable::parse(text).map_err(|error| {
        // A misspelt section header (`[[task]]`) often makes the rest of the
        // file invalid ("duplicate key"): name the header instead.
        vec![misspelt_section(&source).unwrap_or_else(|| source.toml_error(&error, error::SYNTAX))]
    })?;
    let mut errors = Vec::new();
    let mut misspelt = Vec::new();
    for (key, _) in document.get_ref().iter() {
        if let Some(best) = near_section_name(key.get_ref()) {
            errors.push(source.error(
                Some(key.span()),
                format!(
                    "unknown section `{}`; did you mean `{best}`?",
                    key.get_ref()
                ),
            ));
            misspelt.push(key.get_ref().to_string());
        }
    }
    for key in misspelt {
        document.get_mut().remove(key.as_str());
    }

    let base_dir = path
        .parent()
        .map(|parent| {
            if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            }
        })
        .unwrap_or(Path::new("."));
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());

    if let Err(error) = urls::check_state(&source, &document) {
        errors.push(error);
    }
    let tasks_value = document.get_mut().remove("tasks");
    let top_span = document.span();
    let (top, problems) = deserialize_all::<TopLevel>(
        &source,
        Spanned::new(top_span, DeValue::Table(document.into_inner())),
        TOP_LEVEL,
    );
    errors.extend(problems);

    let credentials_file = top
        .as_ref()
        .and_then(|top| top.credentials.file.as_ref())
        .map(|file| resolve_relative(&base_dir, file));
    let mut resolver = credentials::CredentialResolver::new(credentials_file);

    let mut tasks = Vec::new();
    let mut spans = Vec::new();
    let mut unparsed_ids: Vec<validate::Unparsed> = Vec::new();
    if let Some(tasks_value) = tasks_value {
        let span = tasks_value.span();
        let DeValue::Array(array) = tasks_value.into_inner() else {
            errors.push(source.error(
                Some(span),
                "`tasks` must be an array of tables; write each task as [[tasks]]",
            ));
            return Err(errors);
        };
        for task_value in array.iter() {
            match parse_task(&source, task_value.clone(), resolve, &mut resolver) {
                Ok((task, task_spans)) => {
                    tasks.push(task);
                    spans.push(task_spans);
                }
                Err(task_errors) => {
                    errors.extend(task_errors);
                    if let DeValue::Table(table) = task_value.get_ref()
                        && let Some(id) = table.get("id")
                        && let DeValue::String(id) = id.get_ref()
                    {
                        // Its dependencies still count for cycles.
                        let (dependencies, at) = match table.get("dependencies") {
                            Some(value) => match value.get_ref() {
                                DeValue::Array(items) => (
                                    items
                                        .iter()
                                        .filter_map(|item| match item.get_ref() {
                                            DeValue::String(name) => Some(name.to_string()),
                                            _ => None,
                                        })
                                        .collect(),
                                    Some(value.span()),
                                ),
                                _ => (Vec::new(), None),
                            },
                            None => (Vec::new(), None),
                        };
                        unparsed_ids.push(validate::Unparsed {
                            id: id.to_string(),
                            dependencies,
                            at,
                        });
                    }
                }
            }
        }
    }

    let Some(top) = top else {
        return Err(errors);
    };
    let keys = match check_keys(&source, &top.keys) {
        Ok(keys) => keys,
        Err(error) => {
            errors.push(error);
            BTreeMap::new()
        }
    };
    let config = Config {
        file: path.to_path_buf(),
        base_dir,
        engine: top.engine,
        credentials: top.credentials,
        keys,
        theme: top.theme,
        console: top.console,
        tasks,
    };
    errors.extend(validate::validate(&source, &config, &spans, &unparsed_ids));
    if errors.is_empty() {
        Ok(config)
    } else {
        // In the order of the file, whichever check found them.
        errors.sort_by_key(|error| error.position);
        Err(errors)
    }
}

/// The section name used in messages about top-level keys.
const TOP_LEVEL: &str = "the top level";

/// The top-level names a config may use.
const SECTIONS: [&str; 6] = ["tasks", "engine", "credentials", "keys", "theme", "console"];

/// The section a misspelt top-level name was meant to be (`task` for
/// `tasks`), or `None` for a known name or one too far from any.
fn near_section_name(given: &str) -> Option<&'static str> {
    if SECTIONS.contains(&given) {
        return None;
    }
    error::did_you_mean(given, &SECTIONS)
}

/// The first table header whose top-level name is a near miss of a known
/// section (`[[task]]`, `[engin]`), as an error at that header.
fn misspelt_section(source: &SourceText<'_>) -> Option<ConfigError> {
    let mut offset = 0;
    for line in source.text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let header = line.trim_start();
        let Some(inner) = header.strip_prefix('[') else {
            continue;
        };
        let array = inner.starts_with('[');
        let name = inner
            .trim_start_matches('[')
            .trim_start()
            .split(|c: char| c == '.' || c == ']' || c.is_whitespace())
            .next()
            .unwrap_or("");
        let Some(best) = near_section_name(name) else {
            continue;
        };
        let column = line.len() - header.len();
        let (open, close) = if array { ("[[", "]]") } else { ("[", "]") };
        return Some(source.error(
            Some(start + column..start + column + 1),
            format!("unknown section `{open}{name}{close}`; did you mean `{open}{best}{close}`?"),
        ));
    }
    None
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TopLevel {
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    credentials: CredentialsConfig,
    /// Console key for an action, e.g. `start = "s"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    keys: BTreeMap<Spanned<String>, Spanned<String>>,
    /// The console's colours: `name = "dark"` or `"light"`.
    #[serde(default)]
    theme: ThemeConfig,
    /// The console's behaviour: `mouse = true`.
    #[serde(default)]
    console: ConsoleConfig,
}

/// Checks `[keys]`: known actions, valid keys, no key bound twice.
fn check_keys(
    source: &SourceText<'_>,
    keys: &BTreeMap<Spanned<String>, Spanned<String>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let names = keys::action_names();
    let mut bound: BTreeMap<String, String> = keys::ACTIONS
        .iter()
        .map(|(name, key, _)| (name.to_string(), key.to_string()))
        .collect();
    for (action, key) in keys {
        if !names.contains(&action.get_ref().as_str()) {
            let hint = error::did_you_mean(action.get_ref(), &names)
                .map(|best| format!("did you mean `{best}`?"))
                .unwrap_or_else(|| format!("actions are {}", names.join(", ")));
            return Err(source.error(
                Some(action.span()),
                format!("[keys] has unknown action `{}`; {hint}", action.get_ref()),
            ));
        }
        keys::parse_key(key.get_ref()).map_err(|message| {
            source.error(
                Some(key.span()),
                format!("[keys] {}: {message}", action.get_ref()),
            )
        })?;
        bound.insert(action.get_ref().clone(), key.get_ref().clone());
    }
    let mut by_key: std::collections::HashMap<keys::KeySpec, &str> =
        std::collections::HashMap::new();
    for (action, key) in &bound {
        let Ok(spec) = keys::parse_key(key) else {
            continue;
        };
        if let Some(other) = by_key.insert(spec, action) {
            let span = keys
                .iter()
                .find(|(name, _)| name.get_ref() == action || name.get_ref() == other)
                .map(|(_, key)| key.span());
            return Err(source.error(span, format!("[keys] `{key}` is bound to both `{other}` and `{action}`; give one of them another key")));
        }
    }
    Ok(bound)
}

/// A `[[tasks]]` entry without its `properties`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskHeader {
    #[schemars(with = "String")]
    id: Spanned<String>,
    /// The sync kind; the schema of `properties` depends on it.
    #[serde(rename = "type")]
    #[schemars(with = "String")]
    kind: Spanned<String>,
    name: Option<String>,
    description: Option<String>,
    /// Tasks that must succeed first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    dependencies: Vec<Spanned<String>>,
    /// `"5m"`, or `{ every = "5m", misfire_grace = "1m" }`.
    #[schemars(with = "Option<ScheduleSpec>")]
    schedule: Option<Spanned<ScheduleSpec>>,
}

/// Where a task's parts are in the file, for validation messages.
pub(crate) struct TaskSpans {
    pub(crate) task: Range<usize>,
    pub(crate) id: Range<usize>,
    pub(crate) dependencies: Vec<Range<usize>>,
}

/// A task, or its problems: one, or every unknown key of its properties.
fn parse_task(
    source: &SourceText<'_>,
    value: Spanned<DeValue<'_>>,
    resolve: Resolve,
    resolver: &mut credentials::CredentialResolver,
) -> Result<(TaskConfig, TaskSpans), Vec<ConfigError>> {
    let task_span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        return Err(vec![
            source.error(Some(task_span), "each entry of `tasks` must be a table"),
        ]);
    };
    let properties = table.remove("properties");
    // The header's problems name the task too, when its id is readable.
    let section = match table.get("id").map(|id| id.get_ref()) {
        Some(DeValue::String(id)) => format!("[[tasks]] of task `{id}`"),
        _ => "[[tasks]]".to_string(),
    };
    // A misspelt key of the header is reported with those of the
    // properties, not alone first.
    let (header, header_problems) = deserialize_all::<TaskHeader>(
        source,
        Spanned::new(task_span.clone(), DeValue::Table(table)),
        &section,
    );
    let Some(header) = header else {
        return Err(header_problems);
    };
    let with_header = |mut problems: Vec<ConfigError>| {
        problems.extend(header_problems.iter().cloned());
        by_position(problems)
    };
    let id = header.id.get_ref().clone();
    let section = format!("[tasks.properties] of task `{id}`");
    let kind = TaskKind::parse(header.kind.get_ref());
    let properties = match (kind, properties) {
        (Some(kind), Some(properties)) => {
            let properties = prepare_properties(source, kind, properties, resolve, resolver)
                .map_err(|error| with_header(vec![error]))?;
            Some(match kind {
                TaskKind::Sync => TaskProperties::Sync(std::sync::Arc::new(
                    deserialize_strict(source, properties, &section).map_err(with_header)?,
                )),
                TaskKind::TableSync => TaskProperties::TableSync(std::sync::Arc::new(
                    deserialize_strict(source, properties, &section).map_err(with_header)?,
                )),
                TaskKind::Airbyte => TaskProperties::Airbyte(std::sync::Arc::new(
                    deserialize_strict(source, properties, &section).map_err(with_header)?,
                )),
                TaskKind::HttpSync => TaskProperties::HttpSync(std::sync::Arc::new(
                    deserialize_strict(source, properties, &section).map_err(with_header)?,
                )),
            })
        }
        _ => None,
    };
    if !header_problems.is_empty() {
        return Err(header_problems);
    }
    build_task(source, task_span, header, properties).map_err(|error| vec![error])
}

/// Resolves credential references in a task's properties and checks its
/// URLs, when the config is loaded with everything resolved.
fn prepare_properties<'de>(
    source: &SourceText<'_>,
    kind: TaskKind,
    mut properties: Spanned<DeValue<'de>>,
    resolve: Resolve,
    resolver: &mut credentials::CredentialResolver,
) -> Result<Spanned<DeValue<'de>>, ConfigError> {
    if resolve == Resolve::Everything {
        credentials::resolve_references(source, &mut properties, resolver)?;
        urls::check_values(source, &properties, "")?;
        if kind == TaskKind::TableSync {
            urls::check_table_sync_urls(source, &properties)?;
        }
    }
    Ok(properties)
}

/// A task from its parsed header and properties (`None` when its type is
/// unknown or it has none, which this reports).
fn build_task(
    source: &SourceText<'_>,
    task_span: Range<usize>,
    header: TaskHeader,
    properties: Option<TaskProperties>,
) -> Result<(TaskConfig, TaskSpans), ConfigError> {
    let id = header.id.get_ref().clone();
    let Some(kind) = TaskKind::parse(header.kind.get_ref()) else {
        let given = header.kind.get_ref();
        let hint = error::did_you_mean(given, &TaskKind::NAMES)
            .map(|best| format!("did you mean `{best}`?"))
            .unwrap_or_else(|| format!("use one of {}", TaskKind::NAMES.join(", ")));
        return Err(source.error(
            Some(header.kind.span()),
            format!("task `{id}` has unknown type `{given}`; {hint}"),
        ));
    };
    let Some(properties) = properties else {
        return Err(source.error(Some(task_span), format!("task `{id}` has no [tasks.properties]; add one with source_path and destination_path")));
    };

    let schedule = match header.schedule {
        None => None,
        Some(spec) => {
            let span = spec.span();
            Some(
                parse_schedule(spec.into_inner())
                    .map_err(|message| source.error(Some(span), message))?,
            )
        }
    };

    let spans = TaskSpans {
        task: task_span,
        id: header.id.span(),
        dependencies: header.dependencies.iter().map(Spanned::span).collect(),
    };
    let task = TaskConfig {
        id,
        kind,
        name: header.name,
        description: header.description,
        dependencies: header
            .dependencies
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        schedule,
        properties,
    };
    Ok((task, spans))
}

fn parse_schedule(spec: ScheduleSpec) -> Result<Schedule, String> {
    let duration = |text: &str, what: &str| {
        humantime::parse_duration(text).map_err(|error| {
            format!("invalid {what} `{text}`: {error}; write a duration like \"5m\" or \"300s\"")
        })
    };
    let schedule = match spec {
        ScheduleSpec::Every(every) => Schedule {
            every: duration(&every, "schedule")?,
            misfire_grace: None,
        },
        ScheduleSpec::Table(table) => Schedule {
            every: duration(&table.every, "schedule `every`")?,
            misfire_grace: table
                .misfire_grace
                .as_deref()
                .map(|grace| duration(grace, "misfire_grace"))
                .transpose()?,
        },
    };
    if schedule.every.is_zero() {
        return Err("schedule must be longer than zero".into());
    }
    Ok(schedule)
}

/// Deserializes a task's header or properties, reporting every unknown key
/// (each with its "did you mean"), nested tables included, not only the
/// first: an unknown key is taken out and the rest tried again, so one
/// `validate` lists all the typos. Any other problem ends the list.
/// Returns the value when it parses once its unknown keys are taken out,
/// and the problems found.
fn deserialize_all<'de, T: Deserialize<'de>>(
    source: &SourceText<'_>,
    mut value: Spanned<DeValue<'de>>,
    section: &str,
) -> (Option<T>, Vec<ConfigError>) {
    let mut unknown = Vec::new();
    // Keys an unknown one was probably meant to be: their absence, once
    // the typo is taken out, is not another problem.
    let mut meant = Vec::new();
    loop {
        let error = match deserialize_raw::<T>(value.clone()) {
            Ok(parsed) => return (Some(parsed), by_position(unknown)),
            Err(error) => error,
        };
        let message = error.message().trim();
        if let Some(missing) = error::missing_field(message)
            && meant.iter().any(|key: &String| key == missing)
        {
            return (None, by_position(unknown));
        }
        if let Some((key, expected)) = error::unknown_field(message) {
            meant.extend(error::did_you_mean(key, &expected).map(str::to_string));
        }
        let missing = error::missing_field(message).is_some();
        unknown.push(describe_error(source, &value, &error, section));
        // The key where the error points (a misspelt key, or one with a
        // bad value) is taken out, at whatever depth, and the rest tried
        // again; its absence is then no problem of its own. A missing key
        // ends the list: nothing points at it.
        let removed = error
            .span()
            .filter(|_| !missing)
            .and_then(|span| remove_key_at(&mut value, span.start));
        match removed {
            Some(key) => meant.push(key),
            None => return (None, by_position(unknown)),
        }
    }
}

/// The value of [`deserialize_all`], or every problem found.
fn deserialize_strict<'de, T: Deserialize<'de>>(
    source: &SourceText<'_>,
    value: Spanned<DeValue<'de>>,
    section: &str,
) -> Result<T, Vec<ConfigError>> {
    match deserialize_all(source, value, section) {
        (Some(parsed), problems) if problems.is_empty() => Ok(parsed),
        (_, problems) => Err(problems),
    }
}

/// Removes the innermost key whose name or value holds `offset`, below
/// `value`; its name, if one was found.
fn remove_key_at(value: &mut Spanned<DeValue<'_>>, offset: usize) -> Option<String> {
    let inside = |span: Range<usize>| span.start <= offset && offset < span.end;
    match value.get_mut() {
        DeValue::Table(table) => {
            // Ok: a key of this table; Err: one removed deeper down.
            let found = table.iter_mut().find_map(|(key, child)| {
                if inside(key.span()) {
                    return Some(Ok(key.get_ref().to_string()));
                }
                // Tables made by dotted keys have no span of their own:
                // look inside every table.
                let table_child = matches!(child.get_ref(), DeValue::Table(_));
                if !inside(child.span()) && !table_child {
                    return None;
                }
                match remove_key_at(child, offset) {
                    Some(deeper) => Some(Err(deeper)),
                    None if inside(child.span()) => Some(Ok(key.get_ref().to_string())),
                    None => None,
                }
            })?;
            match found {
                Ok(here) => table.remove(here.as_str()).map(|_| here),
                Err(deeper) => Some(deeper),
            }
        }
        DeValue::Array(array) => array
            .iter_mut()
            .find_map(|child| remove_key_at(child, offset)),
        _ => None,
    }
}

/// Problems in the order of their lines (serde finds unknown keys in the
/// order of their names).
fn by_position(mut errors: Vec<ConfigError>) -> Vec<ConfigError> {
    errors.sort_by_key(|error| error.position);
    errors
}

fn deserialize_raw<'de, T: Deserialize<'de>>(
    value: Spanned<DeValue<'de>>,
) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value))
}

/// A deserializing error of `value` as a config error, named by the key
/// path where it is.
fn describe_error(
    source: &SourceText<'_>,
    value: &Spanned<DeValue<'_>>,
    error: &toml::de::Error,
    section: &str,
) -> ConfigError {
    let path = error
        .span()
        .map(|span| key_path_at(value, span.start))
        .unwrap_or_default();
    if path.is_empty() {
        source.toml_error(error, section)
    } else if section == TOP_LEVEL {
        source.toml_error(error, &format!("`{path}`"))
    } else {
        source.toml_error(error, &format!("`{path}` of {section}"))
    }
}

/// The dotted path of the innermost value that holds `offset`, below
/// `value` (`columns.total`, `columns[2]`): a problem inside an inline or
/// nested table is named by where it is, not only by its section. A
/// position on a key names the table holding that key.
fn key_path_at(value: &Spanned<DeValue<'_>>, offset: usize) -> String {
    let mut path = String::new();
    for part in path_to(value, offset).unwrap_or_default() {
        if !path.is_empty() && !part.starts_with('[') {
            path.push('.');
        }
        path.push_str(&part);
    }
    path
}

/// The keys from `value` down to what holds `offset`, or `None` when it is
/// not inside `value`. Tables made by dotted keys (`columns.x = …`) have no
/// span of their own, so every child is searched.
fn path_to(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<String>> {
    let inside = |span: Range<usize>| span.start <= offset && offset < span.end;
    let below = match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(key, child)| {
            if inside(key.span()) {
                return Some(Vec::new());
            }
            path_to(child, offset).map(|mut rest| {
                rest.insert(0, key.get_ref().to_string());
                rest
            })
        }),
        DeValue::Array(array) => array.iter().enumerate().find_map(|(index, child)| {
            path_to(child, offset).map(|mut rest| {
                rest.insert(0, format!("[{index}]"));
                rest
            })
        }),
        _ => None,
    };
    below.or_else(|| inside(value.span()).then(Vec::new))
}
