//! Names read by templates, checked against what each target host defines,
//! so that an undefined name is a validation error, never an empty string
//! at 3 a.m.

use std::collections::BTreeMap;

use super::Sink;
use super::steps::step_templates;
use crate::diagnostic::Problem;
use crate::model::{Host, Inventory, Step};

const HOST_FIELDS: &[&str] = &["name", "address", "port", "user", "vars"];

pub fn check_step(
    sink: &mut Sink<'_>,
    templates: &crate::template::Templates,
    step: &Step,
    inventory: Option<&Inventory>,
    vars: &BTreeMap<String, serde_json::Value>,
) {
    let controller;
    let hosts: Vec<&Host> = match (inventory, &step.targets) {
        (Some(inv), Some(_)) => step.hosts.iter().filter_map(|h| inv.hosts.get(h)).collect(),
        (Some(inv), None) => {
            controller = inv.controller();
            vec![&controller]
        }
        (None, None) => {
            controller = Host::controller(BTreeMap::new());
            vec![&controller]
        }
        (None, Some(_)) => Vec::new(),
    };
    let host_vars_known = inventory.is_some() || step.targets.is_none();
    for id in step_templates(step) {
        for name in templates.names(id) {
            let mut parts = name.split('.');
            let undefined = match (parts.next(), parts.next(), parts.next()) {
                (Some("secret" | "vars" | "host"), None, _) => None,
                (Some("secret"), Some(_), _) => None,
                (Some("vars"), Some(var), _) => (!vars.contains_key(var)).then_some(None),
                (Some("host"), Some("vars"), Some(var)) if host_vars_known => hosts
                    .iter()
                    .find(|h| !h.vars.contains_key(var))
                    .map(|h| Some(h.name.clone())),
                (Some("host"), Some(field), _) => (!HOST_FIELDS.contains(&field)).then_some(None),
                _ => Some(None),
            };
            if let Some(for_host) = undefined {
                let pos = sink.find_on_line(templates.pos(id), name);
                sink.error(
                    pos,
                    Problem::UndefinedName {
                        name: name.clone(),
                        for_host,
                    },
                );
            }
        }
    }
}
