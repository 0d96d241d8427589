//! The state directory: `STATE_DIR/runs/RUN_ID/` with the journal, copies
//! of the runbook and inventory as executed, and command logs. A lock file
//! refuses a second run on the same state dir.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::events::RunEvent;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use the state directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another run is active on {path} (its lock is held); wait for it, or use another `--state-dir`"
    )]
    Locked { path: PathBuf },
    #[error("the journal {path} is corrupt at line {line}: {message}")]
    CorruptJournal {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("unknown run id `{id}` in {state_dir}; `runbook runs` lists the runs")]
    UnknownRun { id: String, state_dir: PathBuf },
}

impl StateError {
    /// Unknown run ids and a held lock are invalid input (exit 2).
    #[must_use]
    pub const fn is_invalid_input(&self) -> bool {
        matches!(self, Self::UnknownRun { .. } | Self::Locked { .. })
    }
}

/// Run ids in the state dir, oldest first (ids sort by start time).
#[must_use]
pub fn run_ids(state_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter(|e| e.path().join("journal.jsonl").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Held for the whole run; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

pub fn lock(state_dir: &Path) -> Result<Lock, StateError> {
    std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
    let path = state_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked {
            path: state_dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

/// `YYYYMMDDTHHMMSSZ-xxxx`: sorts by start time; the suffix tells apart
/// runs started in the same second.
#[must_use]
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(char::is_ascii_alphanumeric).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stamp}-{salt:04x}")
}

pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
    journal: File,
    /// Not yet visible under its run id (see [`RunDir::create`]).
    staged: bool,
}

impl RunDir {
    /// A new run, staged under `runs/.RUN_ID.new` until its first events
    /// are durable: a run directory either has its start journaled or does
    /// not exist (a crash in between leaves only the hidden staging dir).
    pub fn create(state_dir: &Path, id: &str) -> Result<Self, StateError> {
        let path = state_dir.join("runs").join(format!(".{id}.new"));
        std::fs::create_dir_all(path.join("logs")).map_err(io(&path))?;
        let journal_path = path.join("journal.jsonl");
        let journal = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(io(&journal_path))?;
        // The new entries in `runs/` must survive a power cut too.
        for dir in [path.as_path(), path.parent().unwrap_or(&path)] {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(Self {
            id: id.to_string(),
            path,
            journal,
            staged: true,
        })
    }

    /// An existing run, to append to (`resume`, `confirm`, `mark`).
    pub fn open(state_dir: &Path, id: &str) -> Result<Self, StateError> {
        let path = run_path(state_dir, id);
        let journal_path = path.join("journal.jsonl");
        if !journal_path.exists() {
            return Err(StateError::UnknownRun {
                id: id.to_string(),
                state_dir: state_dir.to_path_buf(),
            });
        }
        let journal = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal_path)
            .map_err(io(&journal_path))?;
        Ok(Self {
            id: id.to_string(),
            path,
            journal,
            staged: false,
        })
    }

    #[must_use]
    pub fn journal_path(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// Writes a file once; the state dir never rewrites in place.
    pub fn keep(&self, name: &str, text: &str) -> Result<(), StateError> {
        let target = self.path.join(name);
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&target)
            .map_err(io(&target))?;
        file.write_all(text.as_bytes()).map_err(io(&target))?;
        file.sync_all().map_err(io(&target))
    }

    /// Where command logs go: the published run directory, which a staged
    /// run becomes before any step starts.
    #[must_use]
    pub fn logs(&self) -> PathBuf {
        let runs = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        runs.join(&self.id).join("logs")
    }

    /// Appends events as JSON lines; `sync` makes them durable. The
    /// dispatcher appends a batch and syncs once (group commit) before it
    /// acts on any of them.
    pub fn append(&mut self, events: &[RunEvent]) -> Result<(), StateError> {
        let path = self.path.join("journal.jsonl");
        let mut buf = Vec::new();
        for e in events {
            serde_json::to_writer(&mut buf, e).map_err(|e| io(&path)(e.into()))?;
            buf.push(b'\n');
        }
        self.journal.write_all(&buf).map_err(io(&path))?;
        self.journal.sync_data().map_err(io(&path))?;
        if self.staged {
            self.publish()?;
        }
        Ok(())
    }

    /// Moves a staged run to `runs/RUN_ID` once its start is durable.
    fn publish(&mut self) -> Result<(), StateError> {
        let runs = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let target = runs.join(&self.id);
        std::fs::rename(&self.path, &target).map_err(io(&target))?;
        if let Ok(d) = File::open(&runs) {
            d.sync_all().map_err(io(&runs))?;
        }
        self.path = target;
        self.staged = false;
        Ok(())
    }
}

/// The directory of run `id`.
#[must_use]
pub fn run_path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("runs").join(id)
}

/// The events of run `id`; an id without a journal is an unknown run.
pub fn read_run(state_dir: &Path, id: &str) -> Result<Vec<RunEvent>, StateError> {
    let path = run_path(state_dir, id).join("journal.jsonl");
    if !path.exists() {
        return Err(StateError::UnknownRun {
            id: id.to_string(),
            state_dir: state_dir.to_path_buf(),
        });
    }
    read_journal(&path)
}

/// Reads a journal, tolerating a torn last line (power lost mid-write).
pub fn read_journal(path: &Path) -> Result<Vec<RunEvent>, StateError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut events = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<RunEvent>(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() => {
                tracing::warn!("ignoring a torn last line in {}", path.display())
            }
            Err(e) => {
                return Err(StateError::CorruptJournal {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(events)
}
