//! `sh -c` on the controller, in its own process group so that a timeout
//! kills the command and everything it started.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::{ExecFuture, Exit, Output, Transport, TransportError, push_capped};
use crate::model::Host;

/// Between SIGTERM and SIGKILL on timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// How long to keep reading output after the command itself exited.
const PIPE_GRACE: Duration = Duration::from_secs(2);

pub struct Local;

impl Transport for Local {
    fn exec<'a>(
        &'a self,
        _host: &'a Host,
        command: &'a str,
        timeout: Option<Duration>,
    ) -> ExecFuture<'a> {
        Box::pin(run(command, timeout))
    }
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => push_capped(&mut buf, &chunk[..n]),
        }
    }
}

async fn run(command: &str, timeout: Option<Duration>) -> Result<Output, TransportError> {
    let started = Instant::now();
    let mut sh = tokio::process::Command::new("sh");
    // Every secret the operator exported would reach the command, masked or
    // not; a command gets a secret only by naming it in its template.
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"RUNBOOK_SECRET_") {
            sh.env_remove(name);
        }
    }
    let mut child = sh
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TransportError::Spawn {
            reason: e.to_string(),
        })?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let mut guard = GroupGuard(pid);
    let stdout = tokio::spawn(read_all(child.stdout.take().ok_or_else(|| {
        TransportError::Spawn {
            reason: "no stdout pipe".into(),
        }
    })?));
    let stderr = tokio::spawn(read_all(child.stderr.take().ok_or_else(|| {
        TransportError::Spawn {
            reason: "no stderr pipe".into(),
        }
    })?));
    let waited = match timeout {
        Some(limit) => tokio::time::timeout(limit, child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    let exit = if let Some(status) = waited {
        let status = status.map_err(|e| TransportError::Spawn {
            reason: e.to_string(),
        })?;
        exit_of(status)
    } else {
        if let Some(pid) = pid {
            kill_group(pid, libc::SIGTERM);
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                kill_group(pid, libc::SIGKILL);
                let _ = child.wait().await;
            }
        }
        Exit::TimedOut
    };
    guard.0 = None;
    // A daemon the command started may keep the pipes open; it is left
    // running (restarting services is the point) and its output abandoned.
    let stdout = tokio::time::timeout(PIPE_GRACE, stdout)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let stderr = tokio::time::timeout(PIPE_GRACE, stderr)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(Output {
        exit,
        stdout,
        stderr,
        duration: started.elapsed(),
    })
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(signal_name(sig)),
        (None, None) => Exit::Code(-1),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGTERM => "TERM".into(),
        libc::SIGKILL => "KILL".into(),
        libc::SIGINT => "INT".into(),
        libc::SIGHUP => "HUP".into(),
        libc::SIGSEGV => "SEGV".into(),
        libc::SIGABRT => "ABRT".into(),
        other => other.to_string(),
    }
}

/// Kills the command's whole process group if the run abandons it (an
/// interrupted run whose grace period ran out); disarmed once it exits.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid, libc::SIGKILL);
        }
    }
}

fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group we created;
    // it has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, signal);
    }
}
