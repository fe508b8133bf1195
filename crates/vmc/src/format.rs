//! `--format`: Docker's Go-template style output, for the forms people type: text with
//! `{{.Field}}` (nested: `{{.Config.Cmd}}`), `{{json .}}` and `{{json .Field}}`, `\t` and `\n`
//! as tab and newline, and a leading `table ` for a header row of the field names. Fields
//! match without regard to case or underscores, so Docker's `{{.Id}}` and
//! `{{.Config.WorkingDir}}` find vmc's `id` and `config.working_dir`.

use anyhow::{bail, Result};
use serde_json::Value;

/// A parsed `--format` template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    table: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// `{{.A.B}}` (an empty path is `{{.}}`), as text or, with `json`, as JSON.
    Field {
        path: Vec<String>,
        json: bool,
    },
}

impl Template {
    /// Parses `text`; an action vmc does not know is a one-line error naming it.
    pub fn parse(text: &str) -> Result<Template> {
        let (table, text) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let Some(end) = rest[start..].find("}}") else {
                bail!("--format {text:?}: an action is not closed with }}}}");
            };
            let action = rest[start + 2..start + end].trim();
            parts.push(parse_action(action)?);
            rest = &rest[start + end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    /// The header row of a `table` template (the fields' names in capitals), if it is one.
    pub fn header(&self) -> Option<String> {
        self.table.then(|| {
            self.parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => text.clone(),
                    Part::Field { path, .. } if path.is_empty() => "VALUE".into(),
                    Part::Field { path, .. } => path.join(".").to_uppercase(),
                })
                .collect()
        })
    }

    /// Renders one item; a field it lacks is an error naming the field.
    pub fn render(&self, item: &Value) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field { path, json } => {
                    let value = lookup(item, path)?;
                    // Values come from images and runs: never raw to a terminal.
                    if *json {
                        out.push_str(&serde_json::to_string(value)?);
                    } else {
                        out.push_str(&vmc_runtime::text::escape(&plain(value)));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Prints the items with `template`: the header of a `table` template, then a line per item.
pub fn print_all(template: &Template, items: &[Value]) -> Result<()> {
    if let Some(header) = template.header() {
        println!("{header}");
    }
    for item in items {
        println!("{}", template.render(item)?);
    }
    Ok(())
}

fn parse_action(action: &str) -> Result<Part> {
    let (json, field) = match action.strip_prefix("json") {
        Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim()),
        _ => (false, action),
    };
    let Some(path) = field.strip_prefix('.') else {
        bail!("--format: {{{{{action}}}}} is not supported: vmc knows {{{{.Field}}}}, {{{{json .}}}} and {{{{json .Field}}}}");
    };
    let path: Vec<String> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').map(str::to_string).collect()
    };
    if path
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        bail!(
            "--format: {{{{{action}}}}} is not a field: write {{{{.Name}}}} or {{{{.Config.Cmd}}}}"
        );
    }
    Ok(Part::Field { path, json })
}

/// The value at `path` in `item`, the keys matched without regard to case.
fn lookup<'a>(item: &'a Value, path: &[String]) -> Result<&'a Value> {
    let mut value = item;
    for (depth, key) in path.iter().enumerate() {
        let found = value.as_object().and_then(|map| {
            map.get(key.as_str()).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.replace('_', "").eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
        });
        match found {
            Some(next) => value = next,
            None => {
                let known = value
                    .as_object()
                    .map(|map| {
                        map.keys()
                            .map(|k| format!(".{k}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                bail!(
                    "--format: no field .{} (the fields here: {known})",
                    path[..=depth].join(".")
                );
            }
        }
    }
    Ok(value)
}

/// A value as Go's templates print it: strings bare, lists as `[a b]`, nothing as `<no value>`.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Value {
        json!({"ID": "abc", "Status": "Exited (3)", "config": {"cmd": ["sh", "-c"], "user": null, "working_dir": "/srv"}, "size": 12})
    }

    #[test]
    fn fields_text_and_escapes_render() {
        let t = Template::parse(r"{{.ID}}\t{{ .Status }} {{.size}}").unwrap();
        assert_eq!(t.render(&item()).unwrap(), "abc\tExited (3) 12");
        assert_eq!(t.header(), None);
        let t = Template::parse("{{.Config.Cmd}} {{.config.user}} {{json .config.cmd}}").unwrap();
        assert_eq!(
            t.render(&item()).unwrap(),
            r#"[sh -c] <no value> ["sh","-c"]"#
        );
        let t = Template::parse("{{json .}}").unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&t.render(&item()).unwrap()).unwrap(),
            item()
        );
    }

    #[test]
    fn values_are_escaped_but_the_templates_own_tabs_are_not() {
        let t = Template::parse(r"{{.ID}}	{{json .ID}}").unwrap();
        let rendered = t.render(&json!({"ID": "a\u{1b}[2Jb"})).unwrap();
        assert!(!rendered.contains('\u{1b}'), "{rendered:?}");
        assert!(rendered.contains('\t'), "{rendered:?}");
    }

    #[test]
    fn table_templates_have_a_header() {
        let t = Template::parse(r"table {{.ID}}\t{{.Status}}").unwrap();
        assert_eq!(t.header().as_deref(), Some("ID\tSTATUS"));
        assert_eq!(t.render(&item()).unwrap(), "abc\tExited (3)");
    }

    #[test]
    fn unknown_fields_and_actions_are_clear_errors() {
        let err = Template::parse("{{.Nope}}")
            .unwrap()
            .render(&item())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no field .Nope (the fields here: .ID .Status"),
            "{err}"
        );
        let err = Template::parse("{{.config.x}}")
            .unwrap()
            .render(&item())
            .unwrap_err();
        assert!(err.to_string().contains("no field .config.x"), "{err}");
        for bad in ["{{range .}}", "{{.ID", "{{.a..b}}", "{{printf \"%s\" .ID}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
