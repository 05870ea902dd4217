//! The architecture's one rule: dependencies between syncdeck's top-level
//! modules run one way. This reads every `crate::…` path in `src/` and
//! fails on a cycle, naming the files that close it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level module a file of `src/` belongs to (`src/files/ftp.rs`
/// → `files`, `src/http.rs` → `http`); `None` for the crate root.
fn module_of(source: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(source).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// Top-level modules a line names as `crate::module`, outside comments.
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `syncdeck::crate::` cannot occur; skip `$crate::` in macros.
            !code[..*at].ends_with('$')
        })
        .filter_map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Edges module → module, each with one file that makes it.
fn dependencies(source: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut files = Vec::new();
    rust_files(source, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| module_of(source, file))
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(source, file) else {
            continue;
        };
        // Unit tests may reach anywhere; they are not part of the layering.
        let is_test_file = file
            .strip_prefix(source)
            .unwrap_or(file)
            .components()
            .any(|part| part.as_os_str() == "tests" || part.as_os_str() == "tests.rs");
        if is_test_file {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read a source file");
        let text = match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => &text[..at],
            None => text.as_str(),
        };
        for line in text.lines() {
            for to in named_modules(line) {
                if to != from && modules.contains(&to) {
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| file.display().to_string());
                }
            }
        }
    }
    edges
}

/// A cycle through `start`, if there is one, as the modules on it.
fn cycle_from(
    start: &str,
    edges: &BTreeMap<String, BTreeMap<String, String>>,
) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in edges.get(&module).into_iter().flat_map(|to| to.keys()) {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_of_src_depends_on_itself_through_others() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = dependencies(&source);
    assert!(
        edges.contains_key("engine") && edges.contains_key("files"),
        "the check found the modules it reads"
    );
    let mut cycles = Vec::new();
    for module in edges.keys() {
        if let Some(cycle) = cycle_from(module, &edges) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|pair| format!("{} -> {} ({})", pair[0], pair[1], edges[&pair[0]][&pair[1]]))
                .collect();
            cycles.push(steps.join("; "));
        }
    }
    assert!(
        cycles.is_empty(),
        "modules depend on each other in circles; move the shared part down a layer:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_engine_names_no_sync_kind() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = dependencies(&source);
    let engine = edges.get("engine").cloned().unwrap_or_default();
    for kind in ["files", "table", "http", "airbyte", "kinds"] {
        assert!(
            !engine.contains_key(kind),
            "the engine reaches into `{kind}` ({}); it must run tasks only through the task contract",
            engine[kind]
        );
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    edges
        .entry("a".into())
        .or_default()
        .insert("b".into(), "a.rs".into());
    edges
        .entry("b".into())
        .or_default()
        .insert("c".into(), "b.rs".into());
    edges
        .entry("c".into())
        .or_default()
        .insert("a".into(), "c.rs".into());
    assert_eq!(
        cycle_from("a", &edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        named_modules("use crate::state::{FailedItem}; // crate::engine"),
        vec!["state".to_string()]
    );
}
