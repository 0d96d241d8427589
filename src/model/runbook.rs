//! A runbook with defaults applied and every reference resolved to an index.

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;

use super::{Duration, OnFailure};
use crate::load::Pos;
pub use crate::load::runbook::HttpMethod;
use crate::template::{TemplateId, Templates};

#[derive(Debug)]
pub struct Runbook {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub vars: BTreeMap<String, serde_json::Value>,
    pub phases: Vec<Phase>,
    pub steps: Vec<Step>,
    pub services: Vec<Service>,
    pub notify: Vec<super::Notify>,
    pub dag: Dag,
    pub templates: Templates,
}

impl Runbook {
    #[must_use]
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Each phase in order, then `None` for steps outside any phase: the
    /// order in which boards and summaries list steps.
    pub fn phase_slots(&self) -> impl Iterator<Item = Option<usize>> {
        (0..self.phases.len())
            .map(Some)
            .chain(std::iter::once(None))
    }
}

#[derive(Debug)]
pub struct Phase {
    pub id: String,
    pub title: Option<String>,
    pub rto: Option<Duration>,
    pub depends_on: Vec<usize>,
    pub pos: Pos,
}

/// What people outside the recovery room wait for.
#[derive(Debug)]
pub struct Service {
    pub id: String,
    pub title: Option<String>,
    pub audience: Option<String>,
    /// Steps whose success makes it available again; never empty.
    pub ready_when: Vec<usize>,
    pub pos: Pos,
}

#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub title: Option<String>,
    pub phase: Option<usize>,
    /// Step ids named in `depends_on` (phase edges live in the [`Dag`]).
    pub depends_on: Vec<usize>,
    /// Target names as written; `None` means the controller.
    pub targets: Option<Vec<String>>,
    /// Hosts the step runs on, resolved through the inventory.
    pub hosts: Vec<String>,
    pub manual: Option<TemplateId>,
    pub check: Option<Probe>,
    pub run: Option<TemplateId>,
    pub verify: Option<Probe>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub on_failure: OnFailure,
    pub when: Option<TemplateId>,
    pub confirm: bool,
    pub estimate: Option<Duration>,
    pub tags: Vec<String>,
    /// The step's own `become` settings, over the host's (see [`Step::becomes`]).
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    /// A secret name.
    pub become_password: Option<String>,
    pub pos: Pos,
}

/// Who a step's commands run as on a host through sudo, and the name of
/// the secret holding sudo's password, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BecomeAs {
    pub user: String,
    pub password_secret: Option<String>,
}

impl Step {
    /// The step's settings win over the host's; a step that names a
    /// `become_user` becomes it unless it says `become: false`.
    #[must_use]
    pub fn becomes(&self, host: &crate::model::Host) -> Option<BecomeAs> {
        let on = self
            .r#become
            .unwrap_or(self.become_user.is_some() || host.r#become);
        on.then(|| BecomeAs {
            user: self
                .become_user
                .clone()
                .or_else(|| host.become_user.clone())
                .unwrap_or_else(|| "root".into()),
            password_secret: self
                .become_password
                .clone()
                .or_else(|| host.become_password.clone()),
        })
    }
}

#[derive(Debug)]
pub struct Probe {
    pub kind: ProbeKind,
    pub attempts: u32,
    pub interval: Duration,
    pub timeout: Duration,
    /// The inventory host a network probe's connection is opened from.
    pub via: Option<String>,
}

#[derive(Debug)]
pub enum ProbeKind {
    Command {
        command: TemplateId,
        stdout: Option<StdoutMatch>,
    },
    Tcp {
        port: u16,
        host: Option<TemplateId>,
        send: Option<TemplateId>,
        expect: Option<String>,
    },
    Http {
        url: TemplateId,
        /// Any of these passes; empty: any 2xx or 3xx.
        status: Vec<u16>,
        body_contains: Option<String>,
        method: HttpMethod,
        /// Trusted instead of the system roots, resolved against the
        /// runbook's folder.
        ca_file: Option<PathBuf>,
    },
    Tls {
        host: Option<TemplateId>,
        port: u16,
        server_name: Option<TemplateId>,
        ca_file: Option<PathBuf>,
        min_days_valid: u32,
    },
    Smtp {
        host: Option<TemplateId>,
        port: u16,
        starttls: bool,
    },
    Sip {
        host: Option<TemplateId>,
        port: u16,
        transport: super::SipTransport,
    },
    Ping {
        host: Option<TemplateId>,
        count: u32,
        /// Percent.
        max_loss: u32,
    },
    Dns {
        name: TemplateId,
        record: crate::load::runbook::DnsType,
        server: Option<TemplateId>,
        expect: Option<TemplateId>,
    },
}

#[derive(Debug)]
pub enum StdoutMatch {
    Contains(String),
    Matches(Regex),
}

/// Dependencies as a graph of steps plus one barrier node per phase, so
/// that "phase B waits for phase A" costs one edge per step, not one per
/// pair of steps. Nodes `0..steps` are steps, `steps..` are phase barriers.
#[derive(Debug, Default, Clone)]
pub struct Dag {
    pub steps: usize,
    pub preds: Vec<Vec<usize>>,
    pub succs: Vec<Vec<usize>>,
}

impl Dag {
    #[must_use]
    pub fn new(steps: usize, phases: usize) -> Self {
        Self {
            steps,
            preds: vec![Vec::new(); steps + phases],
            succs: vec![Vec::new(); steps + phases],
        }
    }

    pub fn edge(&mut self, from: usize, to: usize) {
        if !self.preds[to].contains(&from) {
            self.preds[to].push(from);
            self.succs[from].push(to);
        }
    }

    #[must_use]
    pub const fn barrier(&self, phase: usize) -> usize {
        self.steps + phase
    }

    #[must_use]
    pub const fn is_step(&self, node: usize) -> bool {
        node < self.steps
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.preds.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }

    /// Kahn's order, or `Err` with a node on a cycle.
    pub fn topo_order(&self) -> Result<Vec<usize>, usize> {
        let mut indegree: Vec<usize> = self.preds.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..self.len())
            .rev()
            .filter(|&n| indegree[n] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(n) = ready.pop() {
            order.push(n);
            for &s in self.succs[n].iter().rev() {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(s);
                }
            }
        }
        if order.len() == self.len() {
            Ok(order)
        } else {
            Err((0..self.len()).find(|&n| indegree[n] > 0).unwrap_or(0))
        }
    }

    /// A closed path `a, b, ..., a` where each node depends on the next.
    #[must_use]
    pub fn cycle_from(&self, start: usize) -> Vec<usize> {
        // Walk predecessors that are themselves unfinished in Kahn's sense:
        // any walk that stays inside nodes with remaining indegree must loop.
        let mut indegree: Vec<usize> = self.preds.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..self.len()).filter(|&n| indegree[n] == 0).collect();
        let mut done = vec![false; self.len()];
        while let Some(n) = ready.pop() {
            done[n] = true;
            for &s in &self.succs[n] {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(s);
                }
            }
        }
        let mut seen = vec![usize::MAX; self.len()];
        let mut path = Vec::new();
        let mut node = start;
        while seen[node] == usize::MAX {
            seen[node] = path.len();
            path.push(node);
            let Some(&next) = self.preds[node].iter().find(|&&p| !done[p]) else {
                return path;
            };
            node = next;
        }
        let mut cycle = path.split_off(seen[node]);
        let first = (0..cycle.len())
            .min_by_key(|&i| (!self.is_step(cycle[i]), cycle[i]))
            .unwrap_or(0);
        cycle.rotate_left(first);
        cycle.push(cycle[0]);
        cycle
    }
}
