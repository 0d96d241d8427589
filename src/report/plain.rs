//! One plain line per event: for CI logs, pipes and files.

use std::io::Write as _;

use super::Reporter;
use super::lines::lines;
use crate::events::RunEvent;

pub struct Plain {
    pub dry_run: bool,
    pub quiet: bool,
}

impl Reporter for Plain {
    fn event(&mut self, event: &RunEvent) {
        let mut out = std::io::stdout().lock();
        for line in lines(event, self.dry_run) {
            if self.quiet && !line.contains("failed") && !line.contains("paused") {
                continue;
            }
            let _ = writeln!(out, "{line}");
        }
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }
}
