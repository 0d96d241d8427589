//! How commands reach a host: `local` (sh -c on the controller), `ssh`
//! (one libssh2 session per host for the whole run), or `dry-run`
//! (touches nothing). Chosen once, at the top of a run.

pub mod dry_run;
pub mod known_hosts;
pub mod local;
pub mod ssh;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::probe::{ProbeJob, ProbeResult};
use crate::model::{Host, TransportKind};

/// Output kept in memory per stream: the end of the stream (where a
/// failing command says why); what came before is counted as dropped.
pub const MAX_CAPTURE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(String),
    TimedOut,
}

impl Exit {
    #[must_use]
    pub fn success(&self) -> bool {
        *self == Self::Code(0)
    }
}

#[derive(Debug, Clone)]
pub struct Output {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes dropped from the start of each stream to stay under
    /// [`MAX_CAPTURE`]: `stdout` and `stderr` are then only their ends.
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub duration: Duration,
}

/// The host could not be reached or would not let us in: every step on
/// that host fails with this message; other hosts go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to `{host}` ({address}): {reason}")]
    Connect {
        host: String,
        address: String,
        reason: String,
    },
    #[error(
        "host key of `{host}` is not in {known_hosts}: offered {offered}; refusing to connect (add it with `ssh-keyscan`, or set `host_key_checking: accept-new`)"
    )]
    UnknownHostKey {
        host: String,
        known_hosts: String,
        offered: String,
    },
    #[error(
        "HOST KEY MISMATCH for `{host}`: offered {offered}, but {known_hosts} records {expected}; refusing to connect (the host was reinstalled, or someone is intercepting the connection)"
    )]
    HostKeyMismatch {
        host: String,
        known_hosts: String,
        offered: String,
        expected: String,
    },
    #[error(
        "REVOKED HOST KEY for `{host}`: offered {offered}, and {known_hosts} marks it @revoked; refusing to connect (the key is known to be compromised: the host needs a new key)"
    )]
    RevokedHostKey {
        host: String,
        known_hosts: String,
        offered: String,
    },
    #[error("authentication failed for `{user}@{host}` with {method}: {reason}")]
    Auth {
        host: String,
        user: String,
        method: String,
        reason: String,
    },
    #[error("lost the connection to `{host}`: {reason}")]
    Session { host: String, reason: String },
    #[error("cannot start `sh` on the controller: {reason}")]
    Spawn { reason: String },
}

/// What a command is run with: the rendered script (given to `sh` on its
/// standard input, never on a command line, so that no secret shows in
/// `ps`), its deadline, and the tag of the (step, host) it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub command: &'a str,
    pub timeout: Option<Duration>,
    /// Carried by the wrapper's command line as `runbook-TAG`, so that a
    /// host can be asked whether the command still runs, and it can be
    /// killed, whatever the command prints (see [`groups_script`]).
    pub tag: &'a str,
}

pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, TransportError>> + Send + 'a>>;

pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

/// Runs shell commands on hosts.
pub trait Transport: Send + Sync {
    fn exec<'a>(&'a self, host: &'a Host, job: Job<'a>) -> ExecFuture<'a>;

    /// Runs a probe: commands through [`Transport::exec`], `tcp` and `http`
    /// from the controller. A rehearsal answers it instead.
    fn probe<'a>(&'a self, host: &'a Host, job: ProbeJob<'a>) -> ProbeFuture<'a> {
        Box::pin(super::probe::probe(self, host, job))
    }

    /// Ends every connection; commands abandoned by an interrupted run are
    /// killed on their hosts before this returns.
    fn shutdown(&self) {}
}

/// Sends each host to the transport its inventory entry names.
pub struct Router {
    pub local: local::Local,
    pub ssh: ssh::SshPool,
}

impl Transport for Router {
    fn exec<'a>(&'a self, host: &'a Host, job: Job<'a>) -> ExecFuture<'a> {
        match host.transport {
            TransportKind::Local => self.local.exec(host, job),
            TransportKind::Ssh => self.ssh.exec(host, job),
        }
    }

    fn shutdown(&self) {
        self.ssh.shutdown(Duration::from_secs(10));
    }
}

/// One output stream as read: its last [`MAX_CAPTURE`] bytes, and how
/// many came before them.
#[derive(Debug, Default)]
pub struct Capture {
    kept: VecDeque<u8>,
    dropped: u64,
}

impl Capture {
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = if chunk.len() > MAX_CAPTURE {
            let skip = chunk.len() - MAX_CAPTURE;
            self.dropped += skip as u64;
            &chunk[skip..]
        } else {
            chunk
        };
        let over = (self.kept.len() + chunk.len()).saturating_sub(MAX_CAPTURE);
        self.kept.drain(..over);
        self.dropped += over as u64;
        self.kept.extend(chunk);
    }

    /// The kept end of the stream, and the number of bytes dropped before it.
    #[must_use]
    pub fn finish(self) -> (Vec<u8>, u64) {
        (self.kept.into(), self.dropped)
    }
}

/// A fresh tag for [`Job::tag`]: unique on this controller and, in
/// practice, on every host (64 random bits).
#[must_use]
pub fn new_tag() -> String {
    use std::hash::BuildHasher as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is keyed from the OS's randomness once per process.
    let hash = std::hash::RandomState::new().hash_one((
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now(),
        std::process::id(),
    ));
    format!("{hash:016x}")
}

/// The word a job's wrapper carries in its command line.
#[must_use]
pub fn tag_word(tag: &str) -> String {
    format!("runbook-{tag}")
}

/// A POSIX shell line printing the process groups (one per line) of the
/// processes tagged `tag`; exit status 127 when the host cannot tell
/// (no `pgrep`). The pattern is bracketed (`runbook-[a]bc`) so that it
/// does not match the shell running it. `None` for a tag that is not one
/// of ours (a journal is input too).
#[must_use]
pub fn groups_script(tag: &str) -> Option<String> {
    let valid = !tag.is_empty() && tag.len() <= 32 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return None;
    }
    let (first, rest) = tag.split_at(1);
    Some(format!(
        "command -v pgrep >/dev/null || exit 127; for p in $(pgrep -f 'runbook-[{first}]{rest}'); do ps -o pgid= -p \"$p\"; done | tr -d ' ' | sort -u"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_the_end_of_the_stream_and_counts_the_rest() {
        let mut c = Capture::default();
        c.push(&vec![b'a'; MAX_CAPTURE - 1]);
        c.push(b"bcd");
        let (kept, dropped) = c.finish();
        assert_eq!(dropped, 2);
        assert_eq!(kept.len(), MAX_CAPTURE);
        assert!(kept.ends_with(b"abcd"));

        let mut c = Capture::default();
        c.push(b"xyz");
        let mut big = vec![b'a'; MAX_CAPTURE + 10];
        big.extend_from_slice(b"end");
        c.push(&big);
        let (kept, dropped) = c.finish();
        assert_eq!(dropped, 3 + 13);
        assert!(kept.ends_with(b"aend"));
    }

    #[test]
    fn only_hex_tags_make_a_script() {
        assert!(groups_script("0a1b").is_some_and(|s| s.contains("'runbook-[0]a1b'")));
        assert!(groups_script("x'; rm -rf /").is_none());
        assert!(groups_script("").is_none());
    }
}
