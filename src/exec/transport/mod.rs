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
    /// `tried` lists every method tried, with why it failed.
    #[error("authentication failed for `{user}@{host}`: tried {}", tried.join("; "))]
    Auth {
        host: String,
        user: String,
        tried: Vec<String>,
    },
    #[error("sudo on `{host}` cannot run commands as `{become_user}`: {reason}")]
    Become {
        host: String,
        become_user: String,
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
    /// Run through sudo as another user.
    pub r#become: Option<&'a Become>,
}

/// Who a command runs as through sudo, and the password sudo may ask for
/// (the secret's value: it only ever travels on sudo's standard input).
#[derive(Clone, PartialEq, Eq)]
pub struct Become {
    pub user: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for Become {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Become")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Become {
    /// What `step` runs as on `host`, its password read from `secrets`.
    #[must_use]
    pub fn of(
        host: &Host,
        step: &crate::model::Step,
        secrets: &crate::exec::context::Secrets,
    ) -> Option<Self> {
        let b = step.becomes(host)?;
        Some(Self {
            user: b.user,
            password: b
                .password_secret
                .and_then(|name| secrets.values.get(&name).cloned()),
        })
    }

    /// What a command run through [`Become::line`] reads on its standard
    /// input: the password line first, when there is one.
    #[must_use]
    pub fn stdin(b: Option<&Self>, script: &str) -> String {
        match b.and_then(|b| b.password.as_deref()) {
            Some(password) => format!("{password}\n{script}"),
            None => script.to_string(),
        }
    }

    /// A POSIX shell compound that runs `command` (shell words, which may
    /// use `"$0"`) as the become user. sudo never prompts: `-n` when it
    /// needs no password; otherwise the password, read from standard input
    /// into a shell variable (no command line, no environment), is first
    /// checked alone, so that a wrong one fails at once instead of sudo
    /// reading the script as further attempts, then given to sudo ahead of
    /// the rest of standard input. `-k` ignores sudo's cached credentials,
    /// so that whether it reads a password does not depend on timing. When
    /// sudo refuses, a line `runbook-become-TAG:KIND` then sudo's own words
    /// go to stderr (see [`Become::failure`]).
    #[must_use]
    pub fn line(&self, tag: &str, command: &str) -> String {
        let user = shell_quote(&self.user);
        let nopw = format!("sudo -n -k -u {user} --");
        let check = format!("m=$({nopw} sh -c : 2>&1)");
        let fail = |kind: &str| {
            format!(
                "cat >/dev/null; echo {BECOME_MARKER}{tag}:{kind} >&2; printf '%s\\n' \"$m\" >&2; false"
            )
        };
        if self.password.is_none() {
            return format!(
                "if {check}; then {nopw} {command}; else {}; fi",
                fail("needs-password")
            );
        }
        let withpw = format!("sudo -S -k -p '' -u {user} --");
        format!(
            "IFS= read -r p; if {check}; then {nopw} {command}; \
             elif m=$(printf '%s\\n' \"$p\" | {withpw} sh -c : 2>&1); then \
             {{ printf '%s\\n' \"$p\"; exec cat; }} | {withpw} {command}; else {}; fi",
            fail("refused")
        )
    }

    /// sudo reads its password up to the end of a line.
    pub fn check(&self, host: &Host) -> Result<(), TransportError> {
        match &self.password {
            Some(p) if p.contains(['\n', '\r']) => Err(TransportError::Become {
                host: host.name.clone(),
                become_user: self.user.clone(),
                reason: "the `become_password` holds a line break, which sudo cannot read".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The error sudo's refusal (see [`Become::line`]) stands for.
    #[must_use]
    pub fn failure(&self, host: &Host, tag: &str, output: &Output) -> Option<TransportError> {
        if output.exit.success() {
            return None;
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let marker = format!("{BECOME_MARKER}{tag}:");
        let (_, after) = stderr.split_once(&marker)?;
        let (kind, said) = after.split_once('\n').unwrap_or((after, ""));
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = said.join(" / ");
        let reason = match kind {
            "needs-password" => format!(
                "it asks `{}` for a password and no `become_password` is set ({said})",
                host.user
            ),
            _ => format!(
                "it refused the `become_password` of `{}` ({said})",
                host.user
            ),
        };
        Some(TransportError::Become {
            host: host.name.clone(),
            become_user: self.user.clone(),
            reason,
        })
    }
}

/// Starts the line a become wrapper prints when sudo refuses.
const BECOME_MARKER: &str = "runbook-become-";

/// Single quotes only (`'\''` for a quote): the same word in every shell.
#[must_use]
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, TransportError>> + Send + 'a>>;

pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;
/// A byte stream to a service, opened from another host; the error is what
/// an operator reads.
pub type TunnelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<std::os::unix::net::UnixStream, String>> + Send + 'a>>;

/// Runs shell commands on hosts.
pub trait Transport: Send + Sync {
    fn exec<'a>(&'a self, host: &'a Host, job: Job<'a>) -> ExecFuture<'a>;

    /// Runs a probe: commands through [`Transport::exec`], `tcp` and `http`
    /// from the controller. A rehearsal answers it instead.
    fn probe<'a>(&'a self, host: &'a Host, job: ProbeJob<'a>) -> ProbeFuture<'a> {
        Box::pin(super::probe::probe(self, host, job))
    }

    /// A stream to `address:port` opened from the inventory host `via` over
    /// its SSH connection (as `ssh -W` does): a probe's `via`.
    fn tunnel<'a>(
        &'a self,
        via: &'a str,
        _address: &'a str,
        _port: u16,
        _timeout: Duration,
    ) -> TunnelFuture<'a> {
        Box::pin(async move { Err(format!("`via: {via}` needs a host reached over ssh")) })
    }

    /// A hint, at the start of a run: commands will soon run on `hosts`.
    /// A transport that logs in may start doing so now, in the background,
    /// without holding up the caller; what goes wrong is told to the
    /// commands, as if they had connected themselves.
    fn prepare(&self, _hosts: &[Host]) {}

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

    fn tunnel<'a>(
        &'a self,
        via: &'a str,
        address: &'a str,
        port: u16,
        timeout: Duration,
    ) -> TunnelFuture<'a> {
        self.ssh.tunnel(via, address, port, timeout)
    }

    fn prepare(&self, hosts: &[Host]) {
        let ssh: Vec<Host> = hosts
            .iter()
            .filter(|h| h.transport == TransportKind::Ssh)
            .cloned()
            .collect();
        self.ssh.prepare(&ssh);
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

/// A POSIX shell script that kills every process group holding a process
/// tagged `tag`: TERM, then KILL a second later (`kill -SIG -PGID`: dash's
/// `kill` knows no `--`; never `-1`, which would mean every process).
#[must_use]
pub fn kill_script(tag: &str) -> Option<String> {
    let groups = groups_script(tag)?;
    Some(format!(
        "g=$({groups}); for i in $g; do [ \"$i\" -gt 1 ] && kill -TERM \"-$i\"; done 2>/dev/null; [ -n \"$g\" ] && sleep 1; for i in $g; do [ \"$i\" -gt 1 ] && kill -KILL \"-$i\"; done 2>/dev/null; true"
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
