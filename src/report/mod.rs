//! Reporters subscribe to run events: plain lines (logs, pipes, CI), live
//! progress bars (a terminal), and the end-of-run summary.

pub mod handoff;
pub mod html;
pub mod junit;
pub mod lines;
pub mod markdown;
pub mod plain;
pub mod progress;
pub mod run_report;
pub mod services;
pub mod summary;

use crate::events::RunEvent;

pub trait Reporter: Send {
    fn event(&mut self, event: &RunEvent);
    /// Called ten times a second, to redraw.
    fn tick(&mut self) {}
    /// A message from the dispatcher itself (interruptions).
    fn note(&mut self, text: &str);
    fn finish(&mut self) {}
}

/// Sends every event to several reporters.
pub struct FanOut(pub Vec<Box<dyn Reporter>>);

impl Reporter for FanOut {
    fn event(&mut self, event: &RunEvent) {
        for r in &mut self.0 {
            r.event(event);
        }
    }
    fn tick(&mut self) {
        for r in &mut self.0 {
            r.tick();
        }
    }
    fn note(&mut self, text: &str) {
        for r in &mut self.0 {
            r.note(text);
        }
    }
    fn finish(&mut self) {
        for r in &mut self.0 {
            r.finish();
        }
    }
}
