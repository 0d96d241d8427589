//! Phases and steps: ids, references, defaults, probes and templates.

use std::collections::{BTreeMap, HashMap};

use super::probes::{compile, probe};
use super::{Sink, names, templates};
use crate::diagnostic::{Problem, suggest};
use crate::load::runbook::{RawPhase, RawRunbook, RawStep};
use crate::load::{Pos, Sp};
use crate::model::{Duration, Inventory, Phase, Probe, ProbeKind, Step};
use crate::template::{Flavor, TemplateId, Templates, secret_reference};

pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(10);

pub fn phases(sink: &mut Sink<'_>, raw: &[RawPhase]) -> Vec<Phase> {
    let ids = names::index(sink, "phase", raw.iter().map(|p| &p.id));
    raw.iter()
        .map(|p| Phase {
            id: p.id.value.clone(),
            title: p.title.clone(),
            rto: p.rto,
            depends_on: p
                .depends_on
                .iter()
                .filter_map(|d| resolve(sink, "phase", d, &ids))
                .collect(),
            pos: p.id.pos,
        })
        .collect()
}

fn resolve(
    sink: &mut Sink<'_>,
    what: &'static str,
    name: &Sp<String>,
    known: &HashMap<String, usize>,
) -> Option<usize> {
    let found = known.get(name.as_str()).copied();
    if found.is_none() {
        let suggestion = suggest(name, known.keys().map(String::as_str));
        sink.error(
            name.pos,
            Problem::Unknown {
                what,
                name: name.value.clone(),
                suggestion,
            },
        );
    }
    found
}

pub struct Built {
    pub steps: Vec<Step>,
    pub templates: Templates,
    /// Position of each `depends_on` entry, for pointing at cycles.
    pub dep_pos: Vec<Vec<Pos>>,
}

pub fn steps(
    sink: &mut Sink<'_>,
    raw: &RawRunbook,
    phases: &[Phase],
    inventory: Option<&Inventory>,
    vars: &BTreeMap<String, serde_json::Value>,
) -> Built {
    let ids = names::index(sink, "step", raw.steps.iter().map(|s| &s.id));
    let phase_ids: HashMap<String, usize> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let mut templates = Templates::new();
    let mut steps = Vec::with_capacity(raw.steps.len());
    let mut dep_pos = Vec::with_capacity(raw.steps.len());
    let mut lacking = templates::Lacking::default();
    for s in raw.steps.iter() {
        let phase = s
            .phase
            .as_ref()
            .and_then(|p| resolve(sink, "phase", p, &phase_ids));
        let depends_on = s
            .depends_on
            .iter()
            .filter_map(|d| resolve(sink, "step", d, &ids))
            .collect();
        dep_pos.push(s.depends_on.iter().map(|d| d.pos).collect());
        let hosts = hosts(sink, s, inventory);
        if let Some(inventory) = inventory {
            for p in [&s.check, &s.verify].into_iter().flatten() {
                super::probes::via_host(sink, inventory, p);
            }
        }
        let step = step(sink, &mut templates, raw, s, phase, depends_on, hosts);
        templates::check_step(sink, &templates, &step, inventory, vars, &mut lacking);
        steps.push(step);
    }
    Built {
        steps,
        templates,
        dep_pos,
    }
}

/// A step that asks for sudo cannot have it on a host without a shell
/// (a host's own `become` there is the inventory's error). Pointed at the
/// step's `become`, else its `become_user`.
pub fn become_without_shell(
    sink: &mut Sink<'_>,
    source: &crate::load::Source,
    steps: &[Step],
    raw: &RawRunbook,
    inventory: Option<&Inventory>,
) {
    let Some(inventory) = inventory else {
        return;
    };
    let bad: Vec<(usize, String)> = steps
        .iter()
        .enumerate()
        .filter(|(_, step)| step.r#become.unwrap_or(step.become_user.is_some()))
        .filter_map(|(i, step)| {
            let hosts: Vec<String> = step
                .hosts
                .iter()
                .filter(|h| {
                    inventory
                        .hosts
                        .get(*h)
                        .is_some_and(|h| h.shell == crate::model::Shell::None)
                })
                .map(|h| format!("`{h}`"))
                .collect();
            (!hosts.is_empty()).then(|| (i, hosts.join(", ")))
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    let keys = crate::load::structure::key_positions(source);
    for (i, hosts) in bad {
        let field = if steps[i].r#become.is_some() {
            "become"
        } else {
            "become_user"
        };
        sink.error(
            keys.get(&format!("/steps/{i}/{field}"))
                .copied()
                .unwrap_or(raw.steps[i].id.pos),
            Problem::StepBecomeWithoutShell {
                step: steps[i].id.clone(),
                hosts,
            },
        );
    }
}

fn hosts(sink: &mut Sink<'_>, s: &RawStep, inventory: Option<&Inventory>) -> Vec<String> {
    let Some(targets) = &s.targets else {
        return vec![crate::model::CONTROLLER.to_string()];
    };
    let Some(inventory) = inventory else {
        return targets.iter().map(|t| t.value.clone()).collect();
    };
    let mut hosts: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for target in targets {
        match inventory.resolve(target) {
            Some(found) => {
                for h in found {
                    if seen.insert(h.clone()) {
                        hosts.push(h);
                    }
                }
            }
            None => {
                let candidates = inventory.hosts.keys().chain(inventory.groups.keys());
                sink.error(
                    target.pos,
                    Problem::Unknown {
                        what: "target",
                        name: target.value.clone(),
                        suggestion: suggest(target, candidates.map(String::as_str)),
                    },
                );
            }
        }
    }
    hosts
}

fn step(
    sink: &mut Sink<'_>,
    templates: &mut Templates,
    raw: &RawRunbook,
    s: &RawStep,
    phase: Option<usize>,
    depends_on: Vec<usize>,
    hosts: Vec<String>,
) -> Step {
    if s.run.is_none() && s.check.is_none() && s.verify.is_none() && s.manual.is_none() {
        sink.error(
            s.id.pos,
            Problem::NothingToDo {
                step: s.id.value.clone(),
            },
        );
    }
    if let (Some(_), Some(run)) = (&s.manual, &s.run) {
        sink.error(
            run.pos,
            Problem::ManualAndRun {
                step: s.id.value.clone(),
            },
        );
    }
    let on_controller = s.targets.is_none();
    let mut text = |t: &Option<Sp<String>>, flavor| -> Option<TemplateId> {
        t.as_ref().and_then(|t| compile(sink, templates, t, flavor))
    };
    let run = text(&s.run, Flavor::Shell);
    let manual = text(&s.manual, Flavor::Text);
    let when = text(&s.when, Flavor::Text);
    let mut probe_of = |p: &Option<Sp<_>>| -> Option<Probe> {
        p.as_ref()
            .and_then(|p| probe(sink, templates, &s.id, on_controller, p))
    };
    let check = probe_of(&s.check);
    let verify = probe_of(&s.verify);
    super::inventory::secret_name(sink, "become_password", s.become_password.as_ref());
    let d = &raw.defaults;
    Step {
        id: s.id.value.clone(),
        title: s.title.clone(),
        phase,
        depends_on,
        targets: s
            .targets
            .as_ref()
            .map(|t| t.iter().map(|t| t.value.clone()).collect()),
        hosts,
        manual,
        check,
        run,
        verify,
        timeout: s.timeout.or(d.timeout),
        retries: s.retries.or(d.retries).unwrap_or(0),
        retry_delay: s
            .retry_delay
            .or(d.retry_delay)
            .unwrap_or(DEFAULT_RETRY_DELAY),
        on_failure: s.on_failure.or(d.on_failure).unwrap_or_default(),
        when,
        confirm: s.confirm,
        estimate: s.estimate,
        tags: s.tags.clone(),
        r#become: s.r#become,
        become_user: s.become_user.clone(),
        become_password: s
            .become_password
            .as_ref()
            .and_then(|p| secret_reference(p))
            .map(str::to_string),
        pos: s.id.pos,
    }
}

/// Every template a step uses, for checks that apply to all of them.
pub fn step_templates(step: &Step) -> Vec<TemplateId> {
    let mut ids: Vec<TemplateId> = [step.run, step.manual, step.when]
        .into_iter()
        .flatten()
        .collect();
    for probe in [&step.check, &step.verify].into_iter().flatten() {
        match &probe.kind {
            ProbeKind::Command { command, .. } => ids.push(*command),
            ProbeKind::Tcp { host, send, .. } => ids.extend(host.iter().chain(send)),
            ProbeKind::Http { url, .. } => ids.push(*url),
            ProbeKind::Smtp { host, .. } | ProbeKind::Sip { host, .. } => ids.extend(host),
            ProbeKind::Tls {
                host, server_name, ..
            } => ids.extend(host.iter().chain(server_name)),
            ProbeKind::Ping { host, .. } => ids.extend(host),
            ProbeKind::Dns {
                name,
                server,
                expect,
                ..
            } => ids.extend([Some(*name), *server, *expect].into_iter().flatten()),
        }
    }
    ids
}
