//! Asking a person: manual steps and `confirm: true`. On a terminal the
//! operator answers y/N; elsewhere the run pauses for `runbook confirm`.

use std::io::{BufRead as _, Write as _};

use tokio::sync::Mutex;

/// The note of a confirmation a dry-run gave in the operator's place.
pub const DRY_RUN_NOTE: &str = "dry-run: an operator confirms here";

pub enum Answer {
    Confirmed {
        note: Option<String>,
        automatic: bool,
    },
    /// Nobody can answer now: pause the run.
    Pause(String),
}

pub struct Confirmer {
    pub yes: bool,
    /// A rehearsal: show the question, answer it, touch nothing.
    pub dry_run: bool,
    pub interactive: bool,
    pub progress: Option<indicatif::MultiProgress>,
    /// One question at a time.
    pub turn: Mutex<()>,
    /// Who answers.
    pub operator: String,
}

impl Confirmer {
    pub async fn ask(&self, step: &str, title: Option<&str>, instructions: Option<&str>) -> Answer {
        if self.dry_run {
            return Answer::Confirmed {
                note: Some(DRY_RUN_NOTE.into()),
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
            return Answer::Pause(format!("step `{step}` needs an operator's confirmation"));
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
            _ => Answer::Pause(format!("the operator did not confirm step `{step}`")),
        }
    }
}
