//! `syncdeck validate`: every problem in the config, one a line, or the
//! tasks it defines.

use std::path::Path;

use super::{Failure, report};
use crate::config::{self, Resolve};

/// How many problems `validate` lists before it stops counting.
const VALIDATE_CAP: usize = 20;

/// `validate`: every problem in the config, one a line (up to
/// [`VALIDATE_CAP`]), then exit 2; or the tasks it defines.
pub(super) fn run(config_path: Option<&Path>) -> Result<u8, Failure> {
    let path = config::find_config(config_path)?;
    let loaded = config::load_all(&path, Resolve::Everything).and_then(|config| {
        let unreadable = config::unreadable_files(&config);
        if unreadable.is_empty() {
            Ok(config)
        } else {
            Err(unreadable)
        }
    });
    match loaded {
        Ok(config) => {
            let warnings = config::missing_local_sources(&config);
            for warning in &warnings {
                eprintln!("syncdeck: warning: {warning}");
            }
            let warned = if warnings.is_empty() {
                String::new()
            } else {
                format!(", {}", report::count(warnings.len() as u64, "warning"))
            };
            out!(
                "{}: ok, {}{warned}",
                config.file.display(),
                report::count(config.tasks.len() as u64, "task")
            );
            let width = config
                .tasks
                .iter()
                .map(|task| task.id.chars().count())
                .max()
                .unwrap_or(0);
            for task in &config.tasks {
                out!("  {:width$}  {}", task.id, task.kind.name());
            }
            Ok(0)
        }
        Err(errors) => {
            for error in errors.iter().take(VALIDATE_CAP) {
                eprintln!("syncdeck: {}", config::redact(&error.to_string()));
            }
            if errors.len() > VALIDATE_CAP {
                eprintln!(
                    "syncdeck: … and {} more; fix these and run `syncdeck validate` again",
                    errors.len() - VALIDATE_CAP
                );
            }
            // One problem stays one line (what scripts and editors parse).
            if errors.len() > 1 {
                eprintln!(
                    "syncdeck: {}: {} found",
                    path.display(),
                    report::count(errors.len() as u64, "problem")
                );
            }
            Ok(2)
        }
    }
}
