//! The state directory: `STATE_DIR/runs/RUN_ID/` with the journal, copies
//! of the runbook and inventory as executed, and command logs. A lock file
//! refuses a second run on the same state dir.
//!
//! Journals and logs can hold sensitive output, and `resume` runs the
//! runbook a journal names: the state dir and `runs/` must belong to this
//! user and be writable by nobody else, everything is created 0700/0600,
//! and no symbolic link inside is ever followed.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::events::RunEvent;
use crate::journal::chain::{self, Link};

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
    #[error("refusing to use {}: {problem}", .path.display())]
    Unsafe { path: PathBuf, problem: Exposure },
}

/// Why a path in the state dir is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum Exposure {
    #[error(
        "it is owned by uid {owner}, not by uid {me} who runs this, and journals decide what \
         `resume` runs; use a state dir of your own (`--state-dir`), or `chown {me}` it if it \
         is yours"
    )]
    Owner { owner: u32, me: u32 },
    #[error(
        "it is writable by other users (mode {mode:03o}), who could rewrite journals; \
         `chmod 700` it"
    )]
    Writable { mode: u32 },
    #[error("it is a symbolic link, and links inside a state dir are never followed; remove it")]
    Symlink,
    #[error("it is not a directory")]
    NotADirectory,
}

impl StateError {
    /// Unknown run ids, a held lock and an untrusted state dir are invalid
    /// input (exit 2).
    #[must_use]
    pub const fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::UnknownRun { .. } | Self::Locked { .. } | Self::Unsafe { .. }
        )
    }
}

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `path` and missing parents, 0700.
pub fn create_dirs(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Opens a file in the state dir to append to, created 0600; a symbolic
/// link in its place is refused (`O_NOFOLLOW`), not followed.
pub fn append_file(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn unsafe_path(path: &Path, problem: Exposure) -> StateError {
    StateError::Unsafe {
        path: path.to_path_buf(),
        problem,
    }
}

/// Refuses a directory that another user owns or may write to. `follow`:
/// whether `path` itself may be a symbolic link (only the state dir, which
/// the operator named, and then the link must be theirs too).
fn check_dir(path: &Path, follow: bool) -> Result<(), StateError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owned = |meta: &std::fs::Metadata| {
        if meta.uid() == me {
            Ok(())
        } else {
            Err(unsafe_path(
                path,
                Exposure::Owner {
                    owner: meta.uid(),
                    me,
                },
            ))
        }
    };
    let link = std::fs::symlink_metadata(path).map_err(io(path))?;
    let meta = if link.file_type().is_symlink() {
        if !follow {
            return Err(unsafe_path(path, Exposure::Symlink));
        }
        if link.uid() != 0 {
            owned(&link)?;
        }
        std::fs::metadata(path).map_err(io(path))?
    } else {
        link
    };
    if !meta.is_dir() {
        return Err(unsafe_path(path, Exposure::NotADirectory));
    }
    owned(&meta)?;
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_path(
            path,
            Exposure::Writable {
                mode: meta.mode() & 0o7777,
            },
        ));
    }
    Ok(())
}

/// Checks the state dir and its `runs/` before anything in them is read
/// or written.
pub fn check(state_dir: &Path) -> Result<(), StateError> {
    check_dir(state_dir, true)?;
    let runs = state_dir.join("runs");
    if std::fs::symlink_metadata(&runs).is_ok() {
        check_dir(&runs, false)?;
    }
    Ok(())
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

/// Like [`io`] for `open`, where `ELOOP` means a symbolic link was refused.
fn opened(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| {
        if source.raw_os_error() == Some(libc::ELOOP) {
            unsafe_path(path, Exposure::Symlink)
        } else {
            io(path)(source)
        }
    }
}

/// Held for the whole run; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

/// Creates the state dir (0700) if needed, checks it (see [`check`]) and
/// takes its lock: every command that writes to it starts here.
pub fn lock(state_dir: &Path) -> Result<Lock, StateError> {
    create_dirs(state_dir).map_err(io(state_dir))?;
    check(state_dir)?;
    let path = state_dir.join("lock");
    let file = append_file(&path).map_err(opened(&path))?;
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
    /// What the next event carries in the hash chain; `None` before the
    /// first, whose link hashes the copies kept by then.
    link: Option<Link>,
}

impl RunDir {
    /// A new run, staged under `runs/.RUN_ID.new` until its first events
    /// are durable: a run directory either has its start journaled or does
    /// not exist (a crash in between leaves only the hidden staging dir).
    pub fn create(state_dir: &Path, id: &str) -> Result<Self, StateError> {
        let path = state_dir.join("runs").join(format!(".{id}.new"));
        check(state_dir)?;
        create_dirs(&path.join("logs")).map_err(io(&path))?;
        let journal_path = path.join("journal.jsonl");
        let journal = append_file(&journal_path).map_err(opened(&journal_path))?;
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
            link: None,
        })
    }

    /// An existing run, to append to (`resume`, `confirm`, `mark`). A torn
    /// last line (power cut, full disk) is cut off first, so that the next
    /// event starts on a line of its own.
    pub fn open(state_dir: &Path, id: &str) -> Result<Self, StateError> {
        let path = existing_run(state_dir, id)?;
        let journal_path = path.join("journal.jsonl");
        let mut journal = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&journal_path)
            .map_err(opened(&journal_path))?;
        let mut text = Vec::new();
        journal.read_to_end(&mut text).map_err(io(&journal_path))?;
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            tracing::warn!(
                "{}: dropping a torn last line ({} bytes of an event whose write was cut short)",
                journal_path.display(),
                text.len() - whole
            );
            journal.set_len(whole as u64).map_err(io(&journal_path))?;
            journal.sync_data().map_err(io(&journal_path))?;
        }
        // `confirm`, `mark` and `resume` hold the state dir's lock, so
        // nobody else appends while this one does: the chain goes on from
        // the last whole line (a torn one cut off above is not part of it).
        let link = Link::after(&text[..whole]);
        Ok(Self {
            id: id.to_string(),
            path,
            journal,
            staged: false,
            link,
        })
    }

    /// Whether the run is visible under its id (its start is journaled),
    /// so that `resume` can find it.
    #[must_use]
    pub const fn is_published(&self) -> bool {
        !self.staged
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
            .mode(FILE_MODE)
            .open(&target)
            .map_err(opened(&target))?;
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

    /// Appends events as JSON lines, each chained to the line before it
    /// (see [`chain`]); `sync` makes them durable. The dispatcher appends a
    /// batch and syncs once (group commit) before it acts on any of them.
    pub fn append(&mut self, events: &[RunEvent]) -> Result<(), StateError> {
        let path = self.path.join("journal.jsonl");
        let mut link = match &self.link {
            Some(link) => link.clone(),
            None => Link::first(chain::origin_of_dir(&self.path).map_err(io(&self.path))?),
        };
        let mut buf = Vec::new();
        for e in events {
            let (line, next) = chain::line(e, &link).map_err(|e| io(&path)(e.into()))?;
            buf.extend_from_slice(&line);
            link = next;
        }
        let before = self.journal.metadata().map_err(io(&path))?.len();
        if let Err(e) = self
            .journal
            .write_all(&buf)
            .and_then(|()| self.journal.sync_data())
        {
            // A full disk may have taken part of the batch: cut it off so
            // that the journal ends on a whole line and the run resumes.
            let _ = self.journal.set_len(before);
            return Err(io(&path)(e));
        }
        self.link = Some(link);
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

/// The directory of an existing run: `id` must name a run directory
/// (not a path elsewhere, not a link) that holds a journal.
pub fn existing_run(state_dir: &Path, id: &str) -> Result<PathBuf, StateError> {
    check(state_dir)?;
    let unknown = || StateError::UnknownRun {
        id: id.to_string(),
        state_dir: state_dir.to_path_buf(),
    };
    if id.is_empty() || id.starts_with('.') || id.contains('/') {
        return Err(unknown());
    }
    let path = run_path(state_dir, id);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(unsafe_path(&path, Exposure::Symlink)),
        Ok(meta) if meta.is_dir() && path.join("journal.jsonl").exists() => Ok(path),
        _ => Err(unknown()),
    }
}

/// The events of run `id`; an id without a journal is an unknown run.
pub fn read_run(state_dir: &Path, id: &str) -> Result<Vec<RunEvent>, StateError> {
    read_journal(&existing_run(state_dir, id)?.join("journal.jsonl"))
}

/// Reads a journal. A line that does not parse was torn by a power cut or
/// a full disk (an older version then appended straight after it): it is
/// skipped with a warning naming it, and the events around it still count.
pub fn read_journal(path: &Path) -> Result<Vec<RunEvent>, StateError> {
    let text = String::from_utf8(read_bytes(path)?)
        .map_err(|e| io(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    parse_journal(path, &text)
}

/// A file of the state dir, a link in its place refused.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, StateError> {
    let mut bytes = Vec::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(opened(path))?
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    Ok(bytes)
}

/// The events of journal `text`, read from `path` (see [`read_journal`]).
pub fn parse_journal(path: &Path, text: &str) -> Result<Vec<RunEvent>, StateError> {
    parse_lines(path, text, 0)
}

/// The events of `text`, lines `skipped + 1..` of journal `path`.
fn parse_lines(path: &Path, text: &str, skipped: usize) -> Result<Vec<RunEvent>, StateError> {
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate().map(|(i, l)| (i + skipped, l)) {
        match serde_json::from_str::<RunEvent>(line) {
            Ok(e) => events.push(e),
            Err(e) if i == 0 => {
                // A run is published only once its start is durable, so an
                // unreadable first line is not a torn write: the file is not
                // a journal of ours.
                return Err(StateError::CorruptJournal {
                    path: path.to_path_buf(),
                    line: 1,
                    message: e.to_string(),
                });
            }
            Err(e) => tracing::warn!(
                "{}:{}: skipping a torn or unreadable line ({e})",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(events)
}

/// A journal read as it grows (`runbook board` following a run written by
/// another process): each read parses only the lines written since the
/// last one.
pub struct JournalTail {
    path: PathBuf,
    /// Bytes read: up to the end of the last whole line.
    offset: u64,
    lines: usize,
    /// The first line as read, to tell the journal from another one put in
    /// its place.
    first: Vec<u8>,
}

/// What a [`JournalTail::read`] found.
#[derive(Debug)]
pub struct Tail {
    pub events: Vec<RunEvent>,
    /// The file is not the journal read before (it shrank, or its first
    /// line changed): `events` are all of the new one, from its start.
    pub restarted: bool,
}

impl JournalTail {
    #[must_use]
    pub const fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            lines: 0,
            first: Vec::new(),
        }
    }

    /// The events of the lines completed since the last read. A last line
    /// with no newline yet is being written: it is left for the next read.
    pub fn read(&mut self) -> Result<Tail, StateError> {
        use std::io::{Seek as _, SeekFrom};
        use std::os::unix::fs::FileExt as _;
        let path = self.path.clone();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(opened(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        let mut first = vec![0; self.first.len()];
        let same =
            len >= self.offset && file.read_exact_at(&mut first, 0).is_ok() && first == self.first;
        let restarted = !same;
        if restarted {
            *self = Self::new(path.clone());
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(io(&path))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(whole);
        let text = String::from_utf8(bytes)
            .map_err(|e| io(&path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let events = parse_lines(&path, &text, self.lines)?;
        if self.offset == 0
            && let Some(end) = text.find('\n')
        {
            self.first = text.as_bytes()[..=end].to_vec();
        }
        self.offset += whole as u64;
        self.lines += text.lines().count();
        Ok(Tail { events, restarted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: &str) -> String {
        format!(
            "{{\"at\": \"2026-11-29T05:12:39.451Z\", \"elapsed_ms\": 0, \"event\": \"step-started\", \"step\": \"{step}\", \"hosts\": [\"h\"]}}\n"
        )
    }

    fn steps(tail: &Tail) -> Vec<String> {
        tail.events
            .iter()
            .map(|e| match &e.kind {
                crate::events::EventKind::StepStarted { step, .. } => step.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn a_tail_reads_only_whole_lines_written_since_its_last_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, line("a") + &line("b")).unwrap();
        let mut tail = JournalTail::new(path.clone());
        assert_eq!(steps(&tail.read().unwrap()), ["a", "b"]);
        // Line `b` rewritten in place (same length): read already, so not
        // read again.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"b\"", "\"B\"")).unwrap();
        let c = line("c");
        let (first, rest) = c.split_at(30);
        append(&path, first);
        let read = tail.read().unwrap();
        assert!(read.events.is_empty() && !read.restarted, "{read:?}");
        append(&path, &(rest.to_string() + &line("d")));
        let read = tail.read().unwrap();
        assert_eq!(steps(&read), ["c", "d"]);
        assert!(!read.restarted);
        assert!(tail.read().unwrap().events.is_empty());
    }

    #[test]
    fn a_torn_line_within_what_a_tail_reads_is_skipped_not_a_corrupt_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, line("a")).unwrap();
        let mut tail = JournalTail::new(path.clone());
        assert_eq!(steps(&tail.read().unwrap()), ["a"]);
        // What an older version left after a torn write: the first line of
        // this read, not of the journal.
        append(&path, &("{oops\n".to_string() + &line("b")));
        assert_eq!(steps(&tail.read().unwrap()), ["b"]);
        std::fs::write(dir.path().join("other.jsonl"), "{oops\n").unwrap();
        match JournalTail::new(dir.path().join("other.jsonl")).read() {
            Err(StateError::CorruptJournal { line, .. }) => assert_eq!(line, 1),
            other => panic!("expected a corrupt journal at line 1, got {other:?}"),
        }
    }

    #[test]
    fn a_tail_starts_over_when_the_journal_shrank_or_its_first_line_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, line("a") + &line("b") + &line("c")).unwrap();
        let mut tail = JournalTail::new(path.clone());
        assert_eq!(steps(&tail.read().unwrap()), ["a", "b", "c"]);
        std::fs::write(&path, line("a") + &line("x")).unwrap();
        let read = tail.read().unwrap();
        assert!(read.restarted);
        assert_eq!(steps(&read), ["a", "x"]);
        // Longer, but another journal: its first line differs.
        std::fs::write(&path, line("z") + &line("y") + &line("x") + &line("w")).unwrap();
        let read = tail.read().unwrap();
        assert!(read.restarted);
        assert_eq!(steps(&read), ["z", "y", "x", "w"]);
        append(&path, &line("v"));
        let read = tail.read().unwrap();
        assert!(!read.restarted);
        assert_eq!(steps(&read), ["v"]);
    }
}
