//! What templates see on a host: `host`, `vars` and `secret`.

use std::collections::BTreeMap;

use minijinja::Value;

use crate::model::Host;

/// Secrets by name; in a dry-run every name maps to the mask.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub values: BTreeMap<String, String>,
    pub masked: bool,
}

#[must_use]
pub fn for_host(
    host: &Host,
    vars: &BTreeMap<String, serde_json::Value>,
    secrets: &Secrets,
) -> Value {
    let secret: BTreeMap<&str, &str> = secrets
        .values
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                if secrets.masked {
                    crate::redact::MASK
                } else {
                    v.as_str()
                },
            )
        })
        .collect();
    Value::from(minijinja::value::Serde(serde_json::json!({
        "host": {
            "name": host.name,
            "address": host.address,
            "port": host.port,
            "user": host.user,
            "vars": host.vars,
        },
        "vars": vars,
        "secret": secret,
    })))
}

/// A rendered `when`: `true` or `false`, nothing else.
pub fn truth(rendered: &str) -> Result<bool, String> {
    match rendered.trim() {
        "true" | "True" => Ok(true),
        "false" | "False" | "" => Ok(false),
        other => Err(format!(
            "`when` must render to true or false, got `{other}`"
        )),
    }
}
