//! `services`: ids, and the steps that make each available.

use super::{Sink, names};
use crate::diagnostic::{Problem, suggest};
use crate::load::runbook::RawService;
use crate::model::{Service, Step};

pub fn services(sink: &mut Sink<'_>, raw: &[RawService], steps: &[Step]) -> Vec<Service> {
    names::index(sink, "service", raw.iter().map(|s| &s.id));
    raw.iter()
        .map(|s| {
            if s.ready_when.is_empty() {
                sink.error(
                    s.ready_when.pos,
                    Problem::EmptyReadyWhen {
                        service: s.id.value.clone(),
                    },
                );
            }
            let ready_when = s
                .ready_when
                .iter()
                .filter_map(|name| {
                    let found = steps.iter().position(|step| step.id == name.value);
                    if found.is_none() {
                        sink.error(
                            name.pos,
                            Problem::Unknown {
                                what: "step",
                                name: name.value.clone(),
                                suggestion: suggest(name, steps.iter().map(|s| s.id.as_str())),
                            },
                        );
                    }
                    found
                })
                .collect();
            Service {
                id: s.id.value.clone(),
                title: s.title.clone(),
                audience: s.audience.clone(),
                ready_when,
                pos: s.id.pos,
            }
        })
        .collect()
}
