//! Asking a person: manual steps and `confirm: true`. On a terminal the
//! operator answers y/N; elsewhere the run pauses for `runbook confirm`.

use std::io::{BufRead as _, Write as _};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::{Mutex, watch};

use crate::report::progress::Screen;

use crate::events::PauseReason;

pub enum Answer {
    Confirmed {
        note: Option<String>,
        automatic: bool,
    },
    /// Nobody can answer now: pause the run.
    Pause(PauseReason),
    /// The run was interrupted (Ctrl-C, SIGTERM, SIGHUP) before an answer.
    Interrupted,
}

#[derive(Default)]
pub struct Confirmer {
    pub yes: bool,
    /// A rehearsal: show the question, answer it, touch nothing.
    pub dry_run: bool,
    pub interactive: bool,
    /// The progress bars, kept off the screen while a question is open.
    pub screen: Option<Screen>,
    /// The operator's lines, read from the first question on; one question
    /// at a time. Left to `Default`, like `interrupted`.
    pub(crate) input: Mutex<Option<UnboundedReceiver<String>>>,
    pub(crate) interrupted: watch::Sender<bool>,
    /// Who answers.
    pub operator: String,
}

impl Confirmer {
    /// Closes the open question, if any, and every later one, unanswered.
    pub fn interrupt(&self) {
        self.interrupted.send_replace(true);
    }

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
        let mut input = self.input.lock().await;
        let mut interrupted = self.interrupted.subscribe();
        if *interrupted.borrow() {
            return Answer::Interrupted;
        }
        let lines = input.get_or_insert_with(operator_input);
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
        let _prompt = self.screen.as_ref().map(Screen::prompt);
        let conversation = async {
            show(&format!("{text}Confirm done? [y/N] "));
            let line = lines.recv().await?;
            let yes = matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
            if !yes {
                return Some((false, None));
            }
            show("Note (optional): ");
            let note = lines.recv().await?.trim().to_string();
            Some((true, (!note.is_empty()).then_some(note)))
        };
        let answer = tokio::select! {
            answer = conversation => answer,
            _ = interrupted.wait_for(|i| *i) => {
                // The rest of the run's output starts on a line of its own.
                show("\n");
                return Answer::Interrupted;
            }
        };
        match answer {
            Some((true, note)) => Answer::Confirmed {
                note,
                automatic: false,
            },
            _ => Answer::Pause(PauseReason::NotConfirmed),
        }
    }
}

fn show(text: &str) {
    let mut err = std::io::stderr();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}

/// The operator's typed lines, read on a thread of their own: a read blocks
/// until Enter, and must hold up neither the run nor Ctrl-C (a blocking task
/// of the runtime would also keep the process alive at exit). The channel
/// closes at end of input, which reads as no answer.
fn operator_input() -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    let _ = std::thread::Builder::new()
        .name("operator-input".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            while matches!(stdin.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
    rx
}
