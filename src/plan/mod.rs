//! The execution plan: waves, earliest start and finish by estimate, the
//! critical path, and each phase's forecast against its RTO. Pure: no I/O.

pub mod render;

use crate::model::{Duration, Runbook};

#[derive(Debug, Clone)]
pub struct Plan {
    /// Step indices per wave; wave `n` holds steps whose longest chain of
    /// dependencies has `n` steps.
    pub waves: Vec<Vec<usize>>,
    pub wave_of: Vec<usize>,
    pub estimate: Vec<Duration>,
    pub earliest_start: Vec<Duration>,
    pub earliest_finish: Vec<Duration>,
    pub critical_path: Vec<usize>,
    pub total: Duration,
    pub phase_forecast: Vec<Option<Duration>>,
}

impl Plan {
    /// `estimate(i)` gives step `i`'s expected duration: measured history
    /// where it exists, else the runbook's `estimate`, else zero.
    pub fn new(runbook: &Runbook, estimate: impl Fn(usize) -> Duration) -> Self {
        let dag = &runbook.dag;
        let order = dag.topo_order().unwrap_or_default();
        let n = dag.len();
        let mut level = vec![0usize; n];
        let mut finish = vec![std::time::Duration::ZERO; n];
        let mut start = vec![std::time::Duration::ZERO; n];
        let estimates: Vec<Duration> = (0..dag.steps).map(&estimate).collect();
        for &node in &order {
            let before = dag.preds[node].iter().map(|&p| level[p]).max().unwrap_or(0);
            let ready = dag.preds[node]
                .iter()
                .map(|&p| finish[p])
                .max()
                .unwrap_or_default();
            start[node] = ready;
            if dag.is_step(node) {
                level[node] = before + 1;
                finish[node] = ready + estimates[node].std();
            } else {
                level[node] = before;
                finish[node] = ready;
            }
        }
        let waves_count = (0..dag.steps).map(|s| level[s]).max().unwrap_or(0);
        let mut waves = vec![Vec::new(); waves_count];
        for s in 0..dag.steps {
            waves[level[s] - 1].push(s);
        }
        let last = (0..dag.steps).max_by_key(|&s| (finish[s], std::cmp::Reverse(s)));
        let mut critical_path = Vec::new();
        let mut node = last;
        while let Some(current) = node {
            if dag.is_step(current) {
                critical_path.push(current);
            }
            node = dag.preds[current]
                .iter()
                .copied()
                .max_by_key(|&p| (finish[p], std::cmp::Reverse(p)));
        }
        critical_path.reverse();
        let total = last.map_or(std::time::Duration::ZERO, |s| finish[s]);
        let phase_forecast = (0..runbook.phases.len())
            .map(|p| {
                runbook
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.phase == Some(p))
                    .map(|(i, _)| Duration(finish[i]))
                    .max()
            })
            .collect();
        Self {
            waves,
            wave_of: level[..dag.steps].to_vec(),
            estimate: estimates,
            earliest_start: start[..dag.steps].iter().map(|&d| Duration(d)).collect(),
            earliest_finish: finish[..dag.steps].iter().map(|&d| Duration(d)).collect(),
            critical_path,
            total: Duration(total),
            phase_forecast,
        }
    }

    /// Whether a phase's forecast finish exceeds its RTO.
    #[must_use]
    pub fn at_risk(&self, runbook: &Runbook, phase: usize) -> bool {
        matches!((runbook.phases[phase].rto, self.phase_forecast[phase]), (Some(rto), Some(f)) if f > rto)
    }
}
