//! Exit codes and the errors that end a command.

use std::path::PathBuf;

pub const SUCCESS: u8 = 0;
pub const FAILED: u8 = 1;
pub const INVALID_INPUT: u8 = 2;
pub const PAUSED: u8 = 3;
pub const INTERRUPTED: u8 = 130;

/// Why a command could not do its job at all (as opposed to a run whose
/// steps failed, which is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} (see the messages above)")]
    Invalid(String),
    #[error("invalid `--var {arg}`: expected KEY=VALUE")]
    VarSyntax { arg: String },
    #[error("cannot write to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    /// The tool itself could not go on (not the user's input): exit 1.
    #[error("{0}")]
    Runtime(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The journal could not be written or synced: the run stopped rather
    /// than go on without a record. `next` says how to go on.
    #[error("the journal could not be written, so the run stopped: {source}\n{next}")]
    Journal {
        source: crate::state::StateError,
        next: String,
    },
}

impl Error {
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) | Self::VarSyntax { .. } | Self::Usage(_) => INVALID_INPUT,
            Self::Write { .. } | Self::Runtime(_) => FAILED,
            Self::State(e) if e.is_invalid_input() => INVALID_INPUT,
            Self::State(_) | Self::Journal { .. } => FAILED,
        }
    }
}
