//! Asking a person: manual steps and `confirm: true`. On a terminal the
//! operator answers y/N; elsewhere the run pauses for `runbook confirm`.

use std::io::{BufRead as _, Write as _};

use tokio::sync::Mutex;

use crate::events::PauseReason;

pub enum Answer {
    Confirmed {
        note: Option<String>,
        automatic: bool,
    },
    /// Nobody can answer now: pause the run.
    Pause(PauseReason),
}

pub struct Confirmer {
    pub yes: bool,
    /// A rehearsal: show the question, answer it, touch nothing.
    pub dry_run: bool,
    pub interactive: bool,
    pub progress: Option<indicatif::MultiProgress>,
    /// One question at a time.
    pub turn: Mutex<()>,
}

impl Confirmer {
    pub async fn ask(&self, step: &str, title: Option<&str>, instructions: Option<&str>) -> Answer {
        // A dry-run is known from its start event; its confirmations need
        // no marker of their own.
        if self.dry_run {
            return Answer::Confirmed {
                note: None,
                automatic: true,
            };
        }
        if self.yes {
            return Answer::Confirmed {
                note: Some("--yes".into()),
                automatic: true,
            };
        }
        if !self.interactive {
            return Answer::Pause(PauseReason::NeedsConfirmation);
        }
        let _turn = self.turn.lock().await;
        let text = {
            let mut text = format!("\n== step `{step}`");
            if let Some(t) = title {
                text.push_str(&format!(": {t}"));
            }
            text.push('\n');
            if let Some(i) = instructions {
                for line in i.lines() {
                    text.push_str(&format!("   {line}\n"));
                }
            }
            text
        };
        let progress = self.progress.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let prompt = || -> Option<(bool, Option<String>)> {
                let mut err = std::io::stderr();
                let _ = write!(err, "{text}Confirm done? [y/N] ");
                let _ = err.flush();
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).ok()?;
                let yes = matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
                if !yes {
                    return Some((false, None));
                }
                let _ = write!(err, "Note (optional): ");
                let _ = err.flush();
                let mut note = String::new();
                std::io::stdin().lock().read_line(&mut note).ok()?;
                let note = note.trim().to_string();
                Some((true, (!note.is_empty()).then_some(note)))
            };
            match progress {
                Some(p) => p.suspend(prompt),
                None => prompt(),
            }
        })
        .await
        .ok()
        .flatten();
        match answer {
            Some((true, note)) => Answer::Confirmed {
                note,
                automatic: false,
            },
            _ => Answer::Pause(PauseReason::NotConfirmed),
        }
    }
}
