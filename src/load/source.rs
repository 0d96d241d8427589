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
        let bytes = read_limited(path)
            .map_err(|problem| Box::new(Diagnostic::error(path, Pos::new(1, 1), problem)))?;
        Self::from_bytes(path, bytes)
    }

    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, Box<Diagnostic>> {
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            // A NUL never belongs in YAML; refusing here also keeps binary
            // and /proc-style files out of error snippets.
            let pos = position_after(&bytes[..nul]);
            return Err(Box::new(Diagnostic::error(path, pos, Problem::NotText)));
        }
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

/// The bytes of the regular file at `path` (a symlink is followed to one),
/// at most [`MAX_FILE_BYTES`]. Devices, FIFOs and sockets are refused before
/// they are read from, and so are pseudo-files (`/proc`, `/sys`) whose
/// contents do not match their size on disk: `/dev/zero` would never end,
/// and `/proc/self/environ` would print the environment in an error.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, Problem> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let unreadable = |e: std::io::Error| Problem::Unreadable {
        reason: e.to_string(),
    };
    // Non-blocking, so that a FIFO put in place after a check cannot hang
    // the open; the handle's own metadata is what is checked.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(Problem::Unreadable {
            reason: "is a directory".into(),
        });
    }
    if !meta.is_file() {
        return Err(Problem::Unreadable {
            reason: "not a regular file".into(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Problem::TooLarge {
            bytes: meta.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 != meta.len() {
        return Err(Problem::Unreadable {
            reason: format!(
                "not a regular file on disk: read {} bytes where its size is {}",
                bytes.len(),
                meta.len()
            ),
        });
    }
    Ok(bytes)
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
