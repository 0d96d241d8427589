//! Names read by templates, checked against what each target host defines,
//! so that an undefined name is a validation error, never an empty string
//! at 3 a.m.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Sink;
use super::steps::step_templates;
use crate::diagnostic::Problem;
use crate::model::{Host, Inventory, Step};

const HOST_FIELDS: &[&str] = &["name", "address", "port", "user", "vars"];

/// For each host variable a template reads, the inventory hosts that do not
/// define it; computed once per name so that checking a step costs nothing
/// when every host defines it, which is the common case.
#[derive(Default)]
pub struct Lacking(HashMap<String, HashSet<String>>);

impl Lacking {
    fn hosts(&mut self, inventory: &Inventory, var: &str) -> &HashSet<String> {
        self.0.entry(var.to_string()).or_insert_with(|| {
            inventory
                .hosts
                .values()
                .filter(|h| !h.vars.contains_key(var))
                .map(|h| h.name.clone())
                .collect()
        })
    }
}

pub fn check_step(
    sink: &mut Sink<'_>,
    templates: &crate::template::Templates,
    step: &Step,
    inventory: Option<&Inventory>,
    vars: &BTreeMap<String, serde_json::Value>,
    lacking: &mut Lacking,
) {
    let controller;
    let hosts: Vec<&Host> = match (inventory, &step.targets) {
        (Some(_), Some(_)) => Vec::new(),
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
                (Some("host"), Some("vars"), Some(var)) if host_vars_known => {
                    match (inventory, &step.targets) {
                        (Some(inv), Some(_)) => {
                            let lacking = lacking.hosts(inv, var);
                            (!lacking.is_empty())
                                .then(|| step.hosts.iter().find(|h| lacking.contains(*h)))
                                .flatten()
                                .map(|h| Some(h.clone()))
                        }
                        _ => hosts
                            .iter()
                            .find(|h| !h.vars.contains_key(var))
                            .map(|h| Some(h.name.clone())),
                    }
                }
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
