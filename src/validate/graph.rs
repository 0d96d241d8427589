//! The dependency graph: explicit `depends_on` plus phase edges, checked
//! for cycles, which are reported with their whole path.

use super::Sink;
use crate::diagnostic::Problem;
use crate::load::Pos;
use crate::model::{Dag, Phase, Step};

pub fn build(sink: &mut Sink<'_>, phases: &[Phase], steps: &[Step], dep_pos: &[Vec<Pos>]) -> Dag {
    let mut phase_graph = Dag::new(phases.len(), 0);
    for (i, p) in phases.iter().enumerate() {
        for &d in &p.depends_on {
            phase_graph.edge(d, i);
        }
    }
    if let Err(node) = phase_graph.topo_order() {
        let cycle = phase_graph.cycle_from(node);
        sink.error(
            phases[cycle[0]].pos,
            Problem::Cycle {
                what: "phase",
                path: cycle.iter().map(|&i| phases[i].id.clone()).collect(),
            },
        );
        return Dag::new(steps.len(), phases.len());
    }
    let mut dag = Dag::new(steps.len(), phases.len());
    for (i, s) in steps.iter().enumerate() {
        for &d in &s.depends_on {
            dag.edge(d, i);
        }
        if let Some(p) = s.phase {
            dag.edge(i, dag.barrier(p));
            for &before in &phases[p].depends_on {
                dag.edge(dag.barrier(before), i);
            }
        }
    }
    if let Err(node) = dag.topo_order() {
        let cycle = dag.cycle_from(node);
        let first = cycle[0];
        let pos = if dag.is_step(first) {
            let next = cycle[1];
            steps[first]
                .depends_on
                .iter()
                .position(|&d| d == next)
                .and_then(|i| dep_pos[first].get(i).copied())
                .unwrap_or(steps[first].pos)
        } else {
            phases[first - steps.len()].pos
        };
        let path = cycle
            .iter()
            .map(|&n| {
                if dag.is_step(n) {
                    steps[n].id.clone()
                } else {
                    format!("(phase {})", phases[n - steps.len()].id)
                }
            })
            .collect();
        sink.error(pos, Problem::Cycle { what: "step", path });
    }
    dag
}
