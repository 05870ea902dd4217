//! Path templates: `{{ execution_date }}`, `{{ run_id }}`, `{{ task_id }}`.

/// The values a template can name, fixed when a run starts.
#[derive(Debug, Clone)]
pub struct TemplateContext {
    /// The run's logical date, `YYYY-MM-DD`.
    pub execution_date: String,
    pub run_id: String,
    pub task_id: String,
}

/// Names a template may use.
pub const TEMPLATE_NAMES: [&str; 3] = ["execution_date", "run_id", "task_id"];

/// Renders `{{ name }}` placeholders. Unknown names are reported by
/// [`check`] at load time, so rendering can assume they are known.
pub fn render(text: &str, context: &TemplateContext) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match after[..end].trim() {
            "execution_date" => out.push_str(&context.execution_date),
            "run_id" => out.push_str(&context.run_id),
            "task_id" => out.push_str(&context.task_id),
            other => {
                out.push_str("{{ ");
                out.push_str(other);
                out.push_str(" }}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Returns a message for the first unknown or unclosed placeholder.
pub fn check(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed `{{` in a path; close it with `}}`".into());
        };
        let name = after[..end].trim();
        if !TEMPLATE_NAMES.contains(&name) {
            let hint = super::error::did_you_mean(name, &TEMPLATE_NAMES)
                .map(|best| format!("did you mean `{{{{ {best} }}}}`?"))
                .unwrap_or_else(|| "use execution_date, run_id or task_id".into());
            return Err(format!("unknown template `{{{{ {name} }}}}`; {hint}"));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_names() {
        let context = TemplateContext {
            execution_date: "2026-11-22".into(),
            run_id: "42".into(),
            task_id: "backup".into(),
        };
        assert_eq!(
            render(
                "/b/{{ execution_date }}/{{run_id}}-{{ task_id }}/",
                &context
            ),
            "/b/2026-11-22/42-backup/"
        );
    }

    #[test]
    fn unknown_names_are_reported_with_a_hint() {
        let error = check("/b/{{ executon_date }}/").expect_err("unknown");
        assert!(
            error.contains("did you mean `{{ execution_date }}`"),
            "{error}"
        );
        assert!(check("/b/{{ task_id }}").is_ok());
    }
}
