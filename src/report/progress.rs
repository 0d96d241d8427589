//! Live progress on a terminal: an overall bar (steps done / total,
//! elapsed, the forecast end from the remaining critical path), the phase
//! most at risk against its RTO, and a line per running step with its
//! host counts. Finished steps and failures scroll above the bars.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Reporter;
use super::lines::lines;
use crate::events::{EventKind, RunEvent};
use crate::model::Runbook;
use crate::plan::Plan;

/// The terminal the bars share with the operator's prompt. While a prompt
/// is open the bars are off the screen and lines wait, so nothing is drawn
/// over what the operator types; the lock is only held to draw, never across
/// the read, so the run goes on meanwhile.
#[derive(Clone)]
pub struct Screen(Arc<Mutex<Shown>>);

struct Shown {
    multi: MultiProgress,
    /// Lines written while a prompt is open.
    held: Option<Vec<String>>,
}

/// An open prompt; the bars come back and held lines print when it drops.
pub struct Prompt(Screen);

fn terminal() -> ProgressDrawTarget {
    ProgressDrawTarget::stderr_with_hz(10)
}

impl Screen {
    fn lock(&self) -> MutexGuard<'_, Shown> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wipes the bars and keeps them (and lines) off the screen.
    #[must_use]
    pub fn prompt(&self) -> Prompt {
        let mut shown = self.lock();
        // Under the lock, so that no bar redraws between the two.
        let _ = shown.multi.clear();
        shown.multi.set_draw_target(ProgressDrawTarget::hidden());
        shown.held = Some(Vec::new());
        drop(shown);
        Prompt(self.clone())
    }
}

impl Drop for Prompt {
    fn drop(&mut self) {
        let mut shown = self.0.lock();
        shown.multi.set_draw_target(terminal());
        for line in shown.held.take().unwrap_or_default() {
            let _ = shown.multi.println(line);
        }
    }
}

impl Shown {
    /// A line above the bars. Not `suspend`: it unwraps its writes, and a
    /// hung-up terminal (SIGHUP) fails them.
    fn println(&mut self, line: &str) {
        match &mut self.held {
            Some(held) => held.push(line.to_string()),
            None => {
                let _ = self.multi.println(line);
            }
        }
    }
}

pub struct Progress {
    screen: Screen,
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, (ProgressBar, usize, usize)>,
    runbook: Arc<Runbook>,
    /// Expected duration per step: measured in rehearsals, else `estimate`.
    expected: Vec<crate::model::Duration>,
    finished: Vec<bool>,
    /// Time already spent before this process (resumed runs).
    started: Instant,
}

impl Progress {
    #[must_use]
    pub fn new(
        runbook: Arc<Runbook>,
        expected: Vec<crate::model::Duration>,
        finished: Vec<bool>,
    ) -> Self {
        let multi = MultiProgress::with_draw_target(terminal());
        let total = finished.iter().filter(|f| !**f).count();
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
            screen: Screen(Arc::new(Mutex::new(Shown {
                multi: multi.clone(),
                held: None,
            }))),
            multi,
            overall,
            running: HashMap::new(),
            runbook,
            expected,
            finished,
            started: Instant::now(),
        };
        p.forecast();
        p
    }

    #[must_use]
    pub fn screen(&self) -> Screen {
        self.screen.clone()
    }

    /// Recomputes the end of the run and of each phase from what is left.
    fn forecast(&mut self) {
        let plan = Plan::new(&self.runbook, |i| {
            if self.finished[i] {
                crate::model::Duration::from_secs(0)
            } else {
                self.expected[i]
            }
        });
        let now = self.started.elapsed();
        let mut message = String::new();
        if plan.total.std() > Duration::ZERO {
            message = format!("forecast end in ~{}", plan.total);
        }
        let mut worst: Option<(String, Duration, Duration)> = None;
        for (p, phase) in self.runbook.phases.iter().enumerate() {
            let open = self
                .runbook
                .steps
                .iter()
                .enumerate()
                .any(|(i, s)| s.phase == Some(p) && !self.finished[i]);
            if let (true, Some(rto), Some(f)) = (open, phase.rto, plan.phase_forecast[p]) {
                let at = now + f.std();
                let slack = rto.std().saturating_sub(at);
                if worst.as_ref().is_none_or(|(_, _, s)| slack < *s) {
                    worst = Some((phase.id.clone(), at, slack));
                }
                if at > rto.std() {
                    worst = Some((phase.id.clone(), at, Duration::ZERO));
                    message.push_str(&format!(
                        "  RTO AT RISK: {} forecast {} > rto {rto}",
                        phase.id,
                        crate::model::Duration(at)
                    ));
                    break;
                }
            }
        }
        if let Some((id, at, slack)) = worst
            && slack > Duration::ZERO
        {
            message.push_str(&format!(
                "  {id}: forecast {} (rto slack {})",
                crate::model::Duration(at),
                crate::model::Duration(slack)
            ));
        }
        self.overall.set_message(message);
    }

    /// Takes a step's spinner off the screen.
    fn drop_bar(&mut self, step: &str) {
        if let Some((bar, _, _)) = self.running.remove(step) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn finish_step(&mut self, step: &str) {
        self.drop_bar(step);
        if let Some(i) = self.runbook.step_index(step)
            && !std::mem::replace(&mut self.finished[i], true)
        {
            self.overall.inc(1);
        }
        self.forecast();
    }
}

impl Reporter for Progress {
    fn event(&mut self, event: &RunEvent) {
        let screen = self.screen.clone();
        let mut shown = screen.lock();
        for line in lines(event, false) {
            if !line.contains("] start ") {
                shown.println(&line);
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
                self.running.insert(step.clone(), (bar, 0, hosts.len()));
            }
            EventKind::HostFinished { step, .. } => {
                if let Some((bar, done, total)) = self.running.get_mut(step) {
                    *done += 1;
                    bar.set_message(format!("{done}/{total} hosts"));
                }
            }
            EventKind::StepFinished { step, outcome, .. } if outcome.is_success() => {
                self.finish_step(step);
            }
            EventKind::StepFinished { step, .. } | EventKind::StepBlocked { step, .. } => {
                self.drop_bar(step);
                self.overall.inc(1);
            }
            EventKind::RunPaused { step, .. } => {
                self.drop_bar(step);
            }
            _ => {}
        }
    }

    /// Spinners turn here, not on indicatif's own threads: every draw is
    /// then made under the screen's lock, so a prompt can take the bars off.
    fn tick(&mut self) {
        let _shown = self.screen.lock();
        for (bar, _, _) in self.running.values() {
            bar.tick();
        }
        self.overall.tick();
    }

    fn note(&mut self, text: &str) {
        self.screen.lock().println(text);
    }

    fn finish(&mut self) {
        let _shown = self.screen.lock();
        for (bar, _, _) in self.running.values() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
}
