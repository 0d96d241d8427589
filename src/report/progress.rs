//! Live progress on a terminal: an overall bar (steps done / total,
//! elapsed, ETA from estimates) and a line per running step with its host
//! counts. Finished steps and failures scroll above the bars.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Reporter;
use super::lines::lines;
use crate::events::{EventKind, RunEvent};

pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, (ProgressBar, usize, usize)>,
    /// Estimated seconds left of the steps not yet finished.
    estimates: HashMap<String, u64>,
}

impl Progress {
    #[must_use]
    pub fn new(total: usize, estimates: HashMap<String, u64>) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} steps  {elapsed_precise}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("recovery");
        let mut p = Self {
            multi,
            overall,
            running: HashMap::new(),
            estimates,
        };
        p.update_eta();
        p
    }

    #[must_use]
    pub fn multi(&self) -> MultiProgress {
        self.multi.clone()
    }

    fn update_eta(&mut self) {
        let left: u64 = self.estimates.values().sum();
        if left > 0 {
            self.overall.set_message(format!(
                "ETA ~{} by estimates",
                crate::model::Duration(Duration::from_secs(left))
            ));
        } else {
            self.overall.set_message("");
        }
    }
}

impl Reporter for Progress {
    fn event(&mut self, event: &RunEvent) {
        for line in lines(event, false) {
            if !line.contains("] start ") {
                self.multi.suspend(|| eprintln!("{line}"));
            }
        }
        match &event.kind {
            EventKind::StepStarted { step, hosts } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(step.clone());
                bar.set_message(format!("0/{} hosts", hosts.len()));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.running.insert(step.clone(), (bar, 0, hosts.len()));
            }
            EventKind::HostFinished { step, .. } => {
                if let Some((bar, done, total)) = self.running.get_mut(step) {
                    *done += 1;
                    bar.set_message(format!("{done}/{total} hosts"));
                }
            }
            EventKind::StepFinished { step, .. } | EventKind::StepBlocked { step, .. } => {
                if let Some((bar, _, _)) = self.running.remove(step) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.estimates.remove(step);
                self.overall.inc(1);
                self.update_eta();
            }
            _ => {}
        }
    }

    fn tick(&mut self) {
        self.overall.tick();
    }

    fn note(&mut self, text: &str) {
        self.multi.suspend(|| eprintln!("{text}"));
    }

    fn finish(&mut self) {
        for (bar, _, _) in self.running.values() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
}
