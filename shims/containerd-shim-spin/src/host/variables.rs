//! Spin's variables: the application's `[variables]` (a default, or `required`), their values
//! from the container's environment (`SPIN_VARIABLE_<NAME>`, Spin's environment provider, which
//! is how SpinKube passes a SpinApp's `variables`), and the component variables made of them
//! by templates (`message = "{{ greeting }}, {{ name }}"`).
//!
//! Templates are checked at create (a reference to no application variable names the
//! component and the variable); values are resolved when the application starts serving,
//! where a required variable without a value stops it, naming the variable and the
//! environment variable that sets it.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};

use crate::manifest::Variable;

/// The environment variable that gives the application variable `name` a value.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Spin's rule for variable names: lowercase letters, digits and `_`, starting with a letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: a variable name is lowercase letters, digits and _, starting with a letter"
        ))
    }
}

/// A template's parts.
#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// Splits `template` into text and `{{ name }}` references.
fn parse(template: &str) -> anyhow::Result<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("{template:?}: a {{{{ has no }}}}"))?;
        let name = after[..end].trim();
        check_name(name).map_err(|why| anyhow!("{template:?}: {why}"))?;
        parts.push(Part::Variable(name));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// Checks that `template` refers only to application variables.
pub fn check_template(
    template: &str,
    app_variables: &BTreeMap<String, Variable>,
) -> anyhow::Result<()> {
    for part in parse(template)? {
        if let Part::Variable(name) = part
            && !app_variables.contains_key(name)
        {
            bail!("{template:?}: {{{{ {name} }}}} is no variable of the application's [variables]");
        }
    }
    Ok(())
}

/// The application variables' values: from the environment, else the default; a required
/// variable without a value is an error.
pub fn app_values(
    app_variables: &BTreeMap<String, Variable>,
    env: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, variable) in app_variables {
        let from_env = env
            .iter()
            .rev()
            .find(|(key, _)| *key == env_name(name))
            .map(|(_, value)| value.clone());
        match from_env.or_else(|| variable.default().map(str::to_string)) {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None => missing.push(format!("{name} (set {})", env_name(name))),
        }
    }
    if !missing.is_empty() {
        bail!(
            "the application's required variables have no value: {}",
            missing.join(", ")
        );
    }
    Ok(values)
}

/// A component's variables, their templates filled with the application's `values`.
pub fn component_values(
    templates: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    templates
        .iter()
        .map(|(name, template)| {
            let mut value = String::new();
            for part in parse(template)? {
                match part {
                    Part::Text(text) => value.push_str(text),
                    Part::Variable(var) => value.push_str(
                        values
                            .get(var)
                            .ok_or_else(|| anyhow!("{template:?}: no value for {var}"))?,
                    ),
                }
            }
            Ok((name.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use std::path::Path;

    fn app_variables() -> BTreeMap<String, Variable> {
        let manifest = manifest::parse(
            r#"
            spin_manifest_version = 2
            [application]
            name = "vars"
            [variables]
            greeting = { default = "Hello" }
            name = { required = true }
            [[trigger.http]]
            route = "/..."
            component = "vars"
            [component.vars]
            source = "vars.wasm"
            "#,
            Path::new("spin.toml"),
        )
        .unwrap();
        manifest.variables().clone()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn templates_are_filled_from_the_environment_and_defaults() {
        let vars = app_variables();
        let values = app_values(&vars, &env(&[("SPIN_VARIABLE_NAME", "Kubernetes")])).unwrap();
        let templates = BTreeMap::from([
            (
                "message".to_string(),
                "{{ greeting }}, {{name}}!".to_string(),
            ),
            ("plain".to_string(), "text".to_string()),
        ]);
        let component = component_values(&templates, &values).unwrap();
        assert_eq!(component["message"], "Hello, Kubernetes!");
        assert_eq!(component["plain"], "text");

        let values = app_values(
            &vars,
            &env(&[
                ("SPIN_VARIABLE_NAME", "x"),
                ("SPIN_VARIABLE_GREETING", "Hi"),
            ]),
        )
        .unwrap();
        assert_eq!(values["greeting"], "Hi");
    }

    #[test]
    fn a_required_variable_without_value_is_named_with_its_env_var() {
        let err = app_values(&app_variables(), &[]).unwrap_err().to_string();
        assert!(err.contains("name (set SPIN_VARIABLE_NAME)"), "{err}");
        assert!(!err.contains("greeting"), "{err}");
    }

    #[test]
    fn bad_templates_and_names_are_refused() {
        let vars = app_variables();
        check_template("{{ greeting }} {{ name }}", &vars).unwrap();
        let err = check_template("{{ nope }}", &vars).unwrap_err().to_string();
        assert!(err.contains("{{ nope }} is no variable"), "{err}");
        assert!(check_template("{{ greeting ", &vars).is_err());
        assert!(check_template("{{ Greeting }}", &vars).is_err());
        assert!(check_name("ok_1").is_ok());
        assert!(check_name("1x").is_err());
        assert!(check_name("").is_err());
    }
}
