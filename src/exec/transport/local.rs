//! `sh` on the controller, in its own process group so that a timeout
//! kills the command and everything it started. The script reaches `sh` on
//! a pipe, not in its arguments: anything in an argv (a secret) is visible
//! to every user in `ps`.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use tokio::io::AsyncWriteExt;

use super::{
    Become, Capture, ExecFuture, Exit, Job, Output, Transport, TransportError, kill_script,
    new_tag, shell_quote, tag_word,
};
use crate::model::Host;

/// Between SIGTERM and SIGKILL on timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// How long to keep reading output after the command itself exited.
pub const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Runs the script that comes on standard input, as [`script_stdin`] wrote
/// it: the shell parses the whole brace group before running any of it,
/// with `/dev/null` as its standard input. The shell itself reads the file,
/// with no `cat` and no subshell: two processes fewer per command. `$0` is
/// the job's tag word.
pub const SCRIPT_FROM_STDIN: &str = ". /dev/stdin";

/// [`SCRIPT_FROM_STDIN`] for a command run through sudo: another user may
/// not open `/dev/stdin` when it is a pipe the login user made (mode 0600),
/// but can read it.
pub const SCRIPT_FROM_STDIN_BECOME: &str = r#"eval "$(cat)""#;

/// What a wrapped command reads on its standard input: the script in one
/// brace group (`:` keeps an empty script valid, on the first line so that
/// line numbers are the script's own).
#[must_use]
pub fn script_stdin(script: &str) -> String {
    format!("{{ : ; {script}\n}} </dev/null\n")
}

pub struct Local;

impl Transport for Local {
    fn exec<'a>(&'a self, host: &'a Host, job: Job<'a>) -> ExecFuture<'a> {
        Box::pin(async move {
            let Some(b) = job.r#become else {
                return run(job).await;
            };
            b.check(host)?;
            let output = run(job).await?;
            b.failure(host, job.tag, &output).map_or(Ok(output), Err)
        })
    }
}

/// Reads a pipe into `sink` until it closes. The sink is shared so that
/// what was read is kept when the reader is stopped early.
async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin, sink: Arc<Mutex<Capture>>) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => sink
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(&chunk[..n]),
        }
    }
}

/// Waits for a reader until `until`, then stops it (closing our end of its
/// pipe) and returns what it read.
async fn collect(
    mut reader: tokio::task::JoinHandle<()>,
    sink: &Mutex<Capture>,
    until: tokio::time::Instant,
) -> (Vec<u8>, u64) {
    if tokio::time::timeout_at(until, &mut reader).await.is_err() {
        reader.abort();
        let _ = reader.await;
    }
    std::mem::take(
        &mut *sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .finish()
}

async fn run(job: Job<'_>) -> Result<Output, TransportError> {
    let started = Instant::now();
    let timeout = job.timeout;
    let mut sh = tokio::process::Command::new("sh");
    // Every secret the operator exported would reach the command, masked or
    // not; a command gets a secret only by naming it in its template.
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"RUNBOOK_SECRET_") {
            sh.env_remove(name);
        }
    }
    let line = match job.r#become {
        Some(b) => b.line(
            job.tag,
            &format!("sh -c {} \"$0\"", shell_quote(SCRIPT_FROM_STDIN_BECOME)),
        ),
        None => SCRIPT_FROM_STDIN.to_string(),
    };
    let mut child = sh
        .arg("-c")
        .arg(line)
        .arg(tag_word(job.tag))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TransportError::Spawn {
            reason: e.to_string(),
        })?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let mut guard = GroupGuard(pid, job.r#become.cloned(), job.tag.to_string());
    if let Some(mut stdin) = child.stdin.take() {
        let script = Become::stdin(job.r#become, &script_stdin(job.command));
        // A script that exits before reading all of it closes the pipe:
        // that is its business, not an error.
        tokio::spawn(async move {
            let _ = stdin.write_all(script.as_bytes()).await;
        });
    }
    let (stdout_sink, stderr_sink) = (Arc::default(), Arc::default());
    let stdout = tokio::spawn(read_all(
        child.stdout.take().ok_or_else(|| TransportError::Spawn {
            reason: "no stdout pipe".into(),
        })?,
        Arc::clone(&stdout_sink),
    ));
    let stderr = tokio::spawn(read_all(
        child.stderr.take().ok_or_else(|| TransportError::Spawn {
            reason: "no stderr pipe".into(),
        })?,
        Arc::clone(&stderr_sink),
    ));
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
        if let Some(b) = job.r#become {
            let (b, tag) = (b.clone(), job.tag.to_string());
            let _ = tokio::task::spawn_blocking(move || kill_as(&b, &tag)).await;
        }
        Exit::TimedOut
    };
    guard.0 = None;
    // A daemon the command started may keep the pipes open; it is left
    // running (restarting services is the point), and what it writes once
    // the command has ended is not read: our ends of the pipes are closed.
    let until = tokio::time::Instant::now() + PIPE_GRACE;
    let (stdout, stdout_dropped) = collect(stdout, &stdout_sink, until).await;
    let (stderr, stderr_dropped) = collect(stderr, &stderr_sink, until).await;
    Ok(Output {
        exit,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
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
struct GroupGuard(Option<i32>, Option<Become>, String);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid, libc::SIGKILL);
            if let Some(b) = &self.1 {
                kill_as(b, &self.2);
            }
        }
    }
}

/// Kills what a command started through sudo, by its tag: those processes
/// belong to the become user, whom the controller may not signal.
fn kill_as(b: &Become, tag: &str) {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;
    let Some(kill) = kill_script(tag) else {
        return;
    };
    let line = b.line(&new_tag(), &format!("sh -c {}", shell_quote(&kill)));
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Ok(mut child) = child {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(Become::stdin(Some(b), "").as_bytes());
        }
        let _ = child.wait();
    }
}

fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group we created;
    // it has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// A probe's `via` naming a `local` host, which is the controller: the
/// connection is opened from here, as from that host. The probes read and
/// write a tunnel as a socket; a TCP socket serves those calls as well as
/// the Unix socket an SSH tunnel gives, so it is handed over as one.
pub fn connect(
    via: &str,
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<UnixStream, String> {
    let targets = (address, port)
        .to_socket_addrs()
        .map_err(|e| format!("`{via}` cannot resolve `{address}`: {e}"))?;
    let mut last = None;
    for target in targets {
        match TcpStream::connect_timeout(&target, timeout) {
            Ok(stream) => return Ok(UnixStream::from(OwnedFd::from(stream))),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection to {address}:{port} refused from `{via}`")
        }
        Some(e) => format!("`{via}` could not connect to {address}:{port}: {e}"),
        None => format!("`{via}` found no address for `{address}`"),
    })
}
