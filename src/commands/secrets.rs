//! Secret values for a run: `RUNBOOK_SECRET_NAME` or `--secrets FILE`.
//! Missing secrets stop the run before any host is touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::diagnostic::Problem;
use crate::error::Error;
use crate::exec::context::Secrets;
use crate::model::Runbook;
use crate::validate::step_templates;

/// Names of the secrets the selected steps read.
#[must_use]
pub fn referenced(runbook: &Runbook, selected: &[bool]) -> BTreeSet<String> {
    runbook
        .steps
        .iter()
        .zip(selected)
        .filter(|(_, s)| **s)
        .flat_map(|(step, _)| step_templates(step))
        .flat_map(|id| {
            runbook
                .templates
                .secrets(id)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn load(names: &BTreeSet<String>, file: Option<&Path>, masked: bool) -> Result<Secrets, Error> {
    if masked {
        return Ok(Secrets {
            values: names.iter().map(|n| (n.clone(), String::new())).collect(),
            masked: true,
        });
    }
    let from_file: BTreeMap<String, String> = match file {
        Some(path) => {
            let text = crate::load::source::read_limited(path)
                .and_then(|b| match String::from_utf8(b) {
                    Ok(t) if t.contains('\0') => Err(Problem::NotText),
                    Ok(t) => Ok(t),
                    Err(_) => Err(Problem::NotUtf8),
                })
                .map_err(|e| {
                    Error::Usage(format!(
                        "cannot read the secrets file {}: {e}",
                        path.display()
                    ))
                })?;
            serde_saphyr::from_str(&text).map_err(|e| {
                Error::Usage(format!(
                    "the secrets file {} is not a map of names to strings: {}",
                    path.display(),
                    e.without_snippet()
                ))
            })?
        }
        None => BTreeMap::new(),
    };
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for name in names {
        match std::env::var(format!("RUNBOOK_SECRET_{name}"))
            .ok()
            .or_else(|| from_file.get(name).cloned())
        {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => missing.push(name.clone()),
        }
    }
    if missing.is_empty() {
        Ok(Secrets {
            values,
            masked: false,
        })
    } else {
        let list: Vec<String> = missing
            .iter()
            .map(|m| format!("`{m}` (set RUNBOOK_SECRET_{m} or add it to --secrets FILE)"))
            .collect();
        Err(Error::Usage(format!(
            "missing {}: {}; no host was touched",
            if missing.len() == 1 {
                "secret"
            } else {
                "secrets"
            },
            list.join(", ")
        )))
    }
}
