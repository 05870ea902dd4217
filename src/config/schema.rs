//! The JSON Schema of the config file (`syncdeck schema`), derived from
//! the same types the parser deserializes into. Where the parser is more
//! than serde (spans, durations written as text, the task's `type`
//! choosing the schema of its `properties`), the types carry `schemars`
//! attributes and this module assembles the task schemas per type.
//!
//! The schema checks shape (keys, types, required fields); the parser
//! still checks the rest (paths, URLs, globs, dependency cycles).

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

use super::parse::{TaskHeader, TopLevel};
use super::{AirbyteProperties, HttpSyncProperties, SyncProperties, TableSyncProperties, TaskKind};

/// An `http_sync` column: a dotted path, or `{ jq = "…" }`.
pub(super) struct ColumnSourceText;

impl JsonSchema for ColumnSourceText {
    fn schema_name() -> Cow<'static, str> {
        "ColumnSource".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A dotted path in the item (\"profile.name\"), or { jq = \"…\" } run on it.",
            "oneOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": { "jq": { "type": "string" } },
                    "required": ["jq"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A duration written as text: `"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`.
pub(super) struct DurationText;

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as \"30s\", \"5m\", \"1h 30m\" or \"250ms\".",
            "pattern": "^\\s*[0-9]",
        })
    }
}

/// The schema of `properties` for a task type.
fn properties_schema(kind: TaskKind, generator: &mut SchemaGenerator) -> Schema {
    match kind {
        TaskKind::Sync => generator.subschema_for::<SyncProperties>(),
        TaskKind::TableSync => generator.subschema_for::<TableSyncProperties>(),
        TaskKind::HttpSync => generator.subschema_for::<HttpSyncProperties>(),
        TaskKind::Airbyte => generator.subschema_for::<AirbyteProperties>(),
    }
}

/// The JSON Schema (draft 7) of a syncdeck config file read as TOML.
pub fn json_schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let mut root = TopLevel::json_schema(&mut generator).to_value();
    let header = TaskHeader::json_schema(&mut generator).to_value();
    let kinds = [
        TaskKind::Sync,
        TaskKind::TableSync,
        TaskKind::HttpSync,
        TaskKind::Airbyte,
    ];
    let mut variants = Vec::new();
    for kind in kinds {
        let mut task = header.clone();
        let properties = properties_schema(kind, &mut generator).to_value();
        if let Some(fields) = task.get_mut("properties").and_then(Value::as_object_mut) {
            fields.insert("type".into(), json!({ "const": kind.name() }));
            fields.insert("properties".into(), properties);
        }
        if let Some(required) = task.get_mut("required").and_then(Value::as_array_mut) {
            required.push(json!("properties"));
        }
        // `if`/`then` rather than `oneOf`, so an editor reports the one
        // wrong key instead of "matches none of the task schemas".
        variants.push(json!({
            "if": { "required": ["type"], "properties": { "type": { "const": kind.name() } } },
            "then": task,
        }));
    }
    let names: Vec<&str> = kinds.iter().map(|kind| kind.name()).collect();
    let task = json!({
        "type": "object",
        "required": ["id", "type", "properties"],
        "properties": { "type": { "enum": names } },
        "allOf": variants,
    });
    if let Some(fields) = root.get_mut("properties").and_then(Value::as_object_mut) {
        fields.insert(
            "tasks".into(),
            json!({
                "description": "The tasks, each written as [[tasks]].",
                "type": "array",
                "items": task,
            }),
        );
    }
    root["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    root["title"] = json!("syncdeck configuration (syncdeck.toml)");
    root["definitions"] = Value::Object(generator.take_definitions(true));
    durations_as_written(&mut root);
    root
}

/// Defaults of duration options come out of serde as `{"secs": 1, "nanos":
/// 0}`; the config writes them as text (`"1s"`), and so does the schema.
fn durations_as_written(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let is_duration = fields.len() == 2
                && fields.get("secs").is_some_and(Value::is_u64)
                && fields.get("nanos").is_some_and(Value::is_u64);
            if is_duration {
                let secs = fields.get("secs").and_then(Value::as_u64).unwrap_or(0);
                let nanos = fields.get("nanos").and_then(Value::as_u64).unwrap_or(0);
                let duration = std::time::Duration::new(secs, u32::try_from(nanos).unwrap_or(0));
                *value = json!(humantime::format_duration(duration).to_string());
            } else {
                fields.values_mut().for_each(durations_as_written);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(durations_as_written),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn duration_defaults_are_written_as_in_the_config() {
        let text = super::json_schema().to_string();
        assert!(!text.contains("\"secs\""), "{text}");
        assert!(text.contains("\"default\":\"1s\""), "{text}");
    }

    #[test]
    fn every_task_type_has_its_properties_schema() {
        let schema = super::json_schema();
        let variants = schema["properties"]["tasks"]["items"]["allOf"]
            .as_array()
            .expect("one schema per task type");
        assert_eq!(variants.len(), 4);
        assert_eq!(
            schema["definitions"]["EngineConfig"]["additionalProperties"],
            json_false()
        );
        for name in [
            "SyncProperties",
            "TableSyncProperties",
            "HttpSyncProperties",
            "AirbyteProperties",
        ] {
            assert!(schema["definitions"].get(name).is_some(), "no {name}");
        }
    }

    #[test]
    fn the_schema_knows_the_theme_names_and_the_mouse_option() {
        let schema = super::json_schema();
        assert!(schema["properties"].get("theme").is_some(), "{schema}");
        assert!(schema["properties"].get("console").is_some(), "{schema}");
        let text = schema.to_string();
        for word in ["\"dark\"", "\"light\"", "\"mouse\""] {
            assert!(text.contains(word), "the schema lacks {word}: {text}");
        }
    }

    fn json_false() -> serde_json::Value {
        serde_json::Value::Bool(false)
    }
}
