//! Reading a file into text, refusing what cannot be a runbook before the
//! YAML parser sees it.

use std::path::{Path, PathBuf};

use super::span::Pos;
use crate::diagnostic::{Diagnostic, Problem};

/// Large enough for a generated 5,000-step runbook, small enough that a
/// mistaken `validate /var/log/syslog` answers at once.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A file's text with the name it is reported under.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, Box<Diagnostic>> {
        let at_start = |problem| Box::new(Diagnostic::error(path, Pos::new(1, 1), problem));
        let meta = std::fs::metadata(path).map_err(|e| {
            at_start(Problem::Unreadable {
                reason: e.to_string(),
            })
        })?;
        if meta.is_dir() {
            return Err(at_start(Problem::Unreadable {
                reason: "is a directory".into(),
            }));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(at_start(Problem::TooLarge {
                bytes: meta.len(),
                limit: MAX_FILE_BYTES,
            }));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            at_start(Problem::Unreadable {
                reason: e.to_string(),
            })
        })?;
        Self::from_bytes(path, bytes)
    }

    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, Box<Diagnostic>> {
        match String::from_utf8(bytes) {
            Ok(text) => {
                if text.trim().is_empty() {
                    return Err(Box::new(Diagnostic::error(
                        path,
                        Pos::new(1, 1),
                        Problem::Empty,
                    )));
                }
                Ok(Self {
                    path: path.to_path_buf(),
                    text,
                })
            }
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let pos = position_after(valid);
                Err(Box::new(Diagnostic::error(path, pos, Problem::NotUtf8)))
            }
        }
    }
}

fn position_after(valid: &[u8]) -> Pos {
    let text = String::from_utf8_lossy(valid);
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Pos::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}
