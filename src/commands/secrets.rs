//! Secret values for a run: `RUNBOOK_SECRET_NAME` or `--secrets FILE`.
//! Missing secrets stop the run before any host is touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::diagnostic::Problem;
use crate::error::Error;
use crate::exec::context::Secrets;
use crate::model::{Host, Inventory, Runbook};
use crate::validate::step_templates;

/// Names of the secrets the selected steps read: in their templates, as
/// sudo's password on their hosts, and to log in to those hosts (and the
/// jump hosts in front of them); and the webhooks' (`notify`).
#[must_use]
pub fn referenced(
    runbook: &Runbook,
    inventory: Option<&Inventory>,
    selected: &[bool],
) -> BTreeSet<String> {
    let steps = || {
        runbook
            .steps
            .iter()
            .zip(selected)
            .filter(|(_, s)| **s)
            .map(|(step, _)| step)
    };
    let mut names: BTreeSet<String> = steps()
        .flat_map(step_templates)
        .flat_map(|id| {
            runbook
                .templates
                .secrets(id)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    names.extend(runbook.notify.iter().filter_map(|n| match &n.webhook {
        crate::model::Webhook::Secret(name) => Some(name.clone()),
        crate::model::Webhook::Url(_) => None,
    }));
    let controller =
        inventory.map_or_else(|| Host::controller(BTreeMap::new()), Inventory::controller);
    for step in steps() {
        let hosts: Vec<&Host> = if step.targets.is_none() {
            vec![&controller]
        } else {
            step.hosts
                .iter()
                .filter_map(|h| inventory.and_then(|i| i.hosts.get(h)))
                .collect()
        };
        for host in hosts {
            names.extend(step.becomes(host).and_then(|b| b.password_secret));
            names.extend(
                inventory
                    .map(|i| login_secrets(i, host))
                    .unwrap_or_default(),
            );
        }
    }
    names
}

/// The secrets `host` logs in with, and those of its jump hosts.
#[must_use]
pub fn login_secrets(inventory: &Inventory, host: &Host) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut next = Some(host);
    // Validation refuses jump cycles; the bound guards an unchecked inventory.
    for _ in 0..=crate::model::inventory::MAX_JUMPS {
        let Some(h) = next else { break };
        names.extend(h.password.clone());
        if h.identity_file.is_some() {
            names.extend(h.passphrase.clone());
        }
        next = h.jump.as_ref().and_then(|j| inventory.hosts.get(j));
    }
    names
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
