//! `--only`, `--from` and `--tags`: which steps a run executes. Steps left
//! out are treated as already satisfied by the steps that depend on them:
//! selecting a step says "its prerequisites are in place".

use std::collections::HashSet;

use crate::diagnostic::suggest;
use crate::model::Runbook;

#[derive(Debug, Default, Clone)]
pub struct Selection {
    pub only: Vec<String>,
    pub from: Option<String>,
    pub tags: Vec<String>,
}

impl Selection {
    /// One flag per step, or an error naming an unknown step id.
    pub fn resolve(&self, runbook: &Runbook) -> Result<Vec<bool>, String> {
        let n = runbook.steps.len();
        let find = |id: &str| {
            runbook.step_index(id).ok_or_else(|| {
                let hint = suggest(id, runbook.steps.iter().map(|s| s.id.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                format!("unknown step `{id}`{hint}")
            })
        };
        let mut selected = vec![true; n];
        if !self.only.is_empty() {
            let only: HashSet<usize> = self
                .only
                .iter()
                .map(|id| find(id))
                .collect::<Result<_, _>>()?;
            for (i, s) in selected.iter_mut().enumerate() {
                *s &= only.contains(&i);
            }
        }
        if let Some(from) = &self.from {
            let start = find(from)?;
            let mut downstream = vec![false; runbook.dag.len()];
            let mut stack = vec![start];
            while let Some(node) = stack.pop() {
                if !downstream[node] {
                    downstream[node] = true;
                    stack.extend(runbook.dag.succs[node].iter().copied());
                }
            }
            for (i, s) in selected.iter_mut().enumerate() {
                *s &= downstream[i];
            }
        }
        if !self.tags.is_empty() {
            for (i, s) in selected.iter_mut().enumerate() {
                *s &= runbook.steps[i].tags.iter().any(|t| self.tags.contains(t));
            }
        }
        Ok(selected)
    }
}
