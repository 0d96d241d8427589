//! How commands reach a host: `local` (sh -c on the controller), `ssh`
//! (one libssh2 session per host for the whole run), or `dry-run`
//! (touches nothing). Chosen once, at the top of a run.

pub mod dry_run;
pub mod known_hosts;
pub mod local;
pub mod ssh;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::model::{Host, TransportKind};

/// Output kept in memory per stream; the rest is dropped with a marker.
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

pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, TransportError>> + Send + 'a>>;

/// Runs shell commands on hosts.
pub trait Transport: Send + Sync {
    fn exec<'a>(
        &'a self,
        host: &'a Host,
        command: &'a str,
        timeout: Option<Duration>,
    ) -> ExecFuture<'a>;

    /// Whether this transport really touches hosts (false for dry-run).
    fn is_real(&self) -> bool {
        true
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
    fn exec<'a>(
        &'a self,
        host: &'a Host,
        command: &'a str,
        timeout: Option<Duration>,
    ) -> ExecFuture<'a> {
        match host.transport {
            TransportKind::Local => self.local.exec(host, command, timeout),
            TransportKind::Ssh => self.ssh.exec(host, command, timeout),
        }
    }

    fn shutdown(&self) {
        self.ssh.shutdown(Duration::from_secs(10));
    }
}

/// Keeps the last `MAX_CAPTURE` bytes' worth of the start of a stream.
pub fn push_capped(buf: &mut Vec<u8>, chunk: &[u8]) {
    let room = MAX_CAPTURE.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
}
