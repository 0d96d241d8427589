//! SSH through libssh2: one authenticated session per host for the whole
//! run, owned by a dedicated thread (libssh2 is blocking; the async
//! workers only exchange messages with it). Commands run in non-blocking
//! mode in a poll loop that drains stdout and stderr together, keeps the
//! connection alive, and enforces the deadline itself.

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, Session};

use super::local::{PIPE_GRACE, SCRIPT_FROM_STDIN};
use super::{
    Become, Capture, ExecFuture, Exit, Job, Output, Transport, TransportError, kill_script,
    known_hosts, new_tag, tag_word,
};
use crate::exec::context::Secrets;
use crate::model::inventory::MAX_JUMPS;
use crate::model::{Host, Inventory};

/// Extra time after the remote `timeout` wrapper's own deadline and kill
/// grace before the client gives up on the channel.
const CLIENT_GRACE: Duration = Duration::from_secs(10);
/// Remote `timeout -k`: from SIGTERM to SIGKILL of the command's group.
const REMOTE_KILL_GRACE_SECS: u64 = 3;
const KEEPALIVE_SECS: u32 = 15;
/// How long an unreachable host's error is reused before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(3);

struct Request {
    /// What the command reads on its standard input: the script, after
    /// sudo's password line when there is one.
    command: String,
    timeout: Option<Duration>,
    tag: String,
    r#become: Option<Become>,
    /// Closed when the run abandons the command (interrupted): the remote
    /// process group is then killed.
    reply: tokio::sync::oneshot::Sender<Result<Output, TransportError>>,
}

/// Starts the line the remote wrapper writes on stderr once the command has
/// exited, with a nonce and the exit status. Background children may keep
/// the channel open long after (sshd closes it only when every holder of
/// the output has closed it): the line is how the command's end is seen.
const END_MARKER: &str = "runbook-end-";

/// A connection per host, opened on first use and kept for the run.
pub struct SshPool {
    inventory: Arc<Inventory>,
    /// Passphrases and passwords the hosts log in with.
    secrets: Arc<Secrets>,
    hosts: Mutex<HashMap<String, mpsc::Sender<Request>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl SshPool {
    #[must_use]
    pub fn new(inventory: Arc<Inventory>, secrets: Secrets) -> Self {
        Self {
            inventory,
            secrets: Arc::new(secrets),
            hosts: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Closes every connection, waiting (up to `within`) for abandoned
    /// commands to be killed on their hosts.
    pub fn shutdown(&self, within: Duration) {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = Instant::now() + within;
        for t in threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }

    fn sender(&self, host: &Host) -> mpsc::Sender<Request> {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(host.name.clone())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel();
                let host = host.clone();
                let inventory = Arc::clone(&self.inventory);
                let secrets = Arc::clone(&self.secrets);
                if let Ok(handle) = std::thread::Builder::new()
                    .name(format!("ssh-{}", host.name))
                    .spawn(move || serve(&host, &inventory, &secrets, &rx))
                {
                    self.threads
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(handle);
                }
                tx
            })
            .clone()
    }
}

impl Transport for SshPool {
    fn exec<'a>(&'a self, host: &'a Host, job: Job<'a>) -> ExecFuture<'a> {
        let sender = self.sender(host);
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let lost = || TransportError::Session {
                host: host.name.clone(),
                reason: "the connection thread stopped".into(),
            };
            if let Some(b) = job.r#become {
                b.check(host)?;
            }
            sender
                .send(Request {
                    command: Become::stdin(job.r#become, job.command),
                    timeout: job.timeout,
                    tag: job.tag.to_string(),
                    r#become: job.r#become.cloned(),
                    reply,
                })
                .map_err(|_| lost())?;
            let output = answer.await.map_err(|_| lost())??;
            match job.r#become.and_then(|b| b.failure(host, job.tag, &output)) {
                Some(refused) => Err(refused),
                None => Ok(output),
            }
        })
    }
}

/// The connection thread: connect once, then run jobs in order. A failed
/// connection answers every job with the same error.
fn serve(host: &Host, inventory: &Inventory, secrets: &Secrets, jobs: &mpsc::Receiver<Request>) {
    let mut connection: Option<Result<Connection, TransportError>> = None;
    let mut failed_at = Instant::now();
    while let Some(mut job) = next_job(jobs) {
        // During a recovery hosts come back one after another: a host that
        // could not be reached is tried again once the last attempt is a
        // few seconds old (a retry, a later step). Refused credentials or
        // host keys are not retried: they will not fix themselves.
        let retry = matches!(
            &connection,
            Some(Err(
                TransportError::Connect { .. } | TransportError::Session { .. }
            ))
        ) && failed_at.elapsed() >= RECONNECT_AFTER;
        if retry {
            connection = None;
        }
        let conn = connection.get_or_insert_with(|| {
            let opened = Connection::open(host, inventory, secrets, 0);
            if opened.is_err() {
                failed_at = Instant::now();
            }
            opened
        });
        let result = match conn {
            Ok(c) => {
                let result = c.exec(host, &mut job);
                if let Err(e) = &result {
                    tracing::warn!(host = %host.name, "ssh session failed: {e}");
                    connection = None;
                }
                result
            }
            Err(e) => Err(e.clone()),
        };
        let _ = job.reply.send(result);
    }
}

/// The next job the run still waits for: one it abandoned (interrupted
/// while the job was queued behind another) is dropped unstarted.
fn next_job(jobs: &mpsc::Receiver<Request>) -> Option<Request> {
    jobs.iter().find(|job| !job.reply.is_closed())
}

/// Something libssh2 can use as its socket: a TCP stream, or one end of a
/// socket pair whose other end is pumped through a jump host.
enum Socket {
    Tcp(TcpStream),
    Tunnel(UnixStream),
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Tunnel(s) => s.as_raw_fd(),
        }
    }
}

struct Connection {
    session: Session,
    fd: RawFd,
    /// Keeps the jump host's session alive while this one uses it.
    _jump: Option<std::thread::JoinHandle<()>>,
}

impl Connection {
    fn open(
        host: &Host,
        inventory: &Inventory,
        secrets: &Secrets,
        depth: usize,
    ) -> Result<Self, TransportError> {
        let connect_err = |reason: String| TransportError::Connect {
            host: host.name.clone(),
            address: format!("{}:{}", host.address, host.port),
            reason,
        };
        let timeout = host.connect_timeout.std();
        // Never fall back to connecting directly: the chain is how the
        // host is meant to be reached.
        let jump_host = match &host.jump {
            Some(name) if depth >= MAX_JUMPS => {
                return Err(connect_err(format!(
                    "more than {MAX_JUMPS} jump hosts in a row (next: `{name}`); refusing to connect"
                )));
            }
            Some(name) => Some(match host.jump_via.as_deref() {
                Some(via) => via,
                None => inventory
                    .hosts
                    .get(name)
                    .ok_or_else(|| connect_err(format!("unknown jump host `{name}`")))?,
            }),
            None => None,
        };
        let (socket, jump) = match jump_host {
            Some(jump_host) => {
                let via = Self::open(jump_host, inventory, secrets, depth + 1).map_err(|e| {
                    connect_err(format!("through jump host `{}`: {e}", jump_host.name))
                })?;
                let (ours, theirs) = UnixStream::pair().map_err(|e| connect_err(e.to_string()))?;
                let channel = via
                    .direct_tcpip(&host.address, host.port, timeout)
                    .map_err(|e| {
                        connect_err(format!(
                            "jump host `{}` could not open a tunnel: {e}",
                            jump_host.name
                        ))
                    })?;
                let pump = std::thread::Builder::new()
                    .name(format!("tunnel-{}", host.name))
                    .spawn(move || pump(&via, channel, theirs))
                    .map_err(|e| connect_err(e.to_string()))?;
                (Socket::Tunnel(ours), Some(pump))
            }
            _ => {
                let addr = (host.address.as_str(), host.port)
                    .to_socket_addrs()
                    .map_err(|e| connect_err(format!("cannot resolve: {e}")))?
                    .next()
                    .ok_or_else(|| connect_err("the name resolves to no address".into()))?;
                let tcp = TcpStream::connect_timeout(&addr, timeout)
                    .map_err(|e| connect_err(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                (Socket::Tcp(tcp), None)
            }
        };
        let fd = socket.as_raw_fd();
        let mut session = Session::new().map_err(|e| connect_err(e.to_string()))?;
        session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        let known_hosts = host.known_hosts.clone().unwrap_or_else(default_known_hosts);
        known_hosts::prefer_recorded(&session, host, &known_hosts);
        session.set_tcp_stream(socket);
        session
            .handshake()
            .map_err(|e| connect_err(format!("SSH handshake failed: {e}")))?;
        known_hosts::verify(&session, host, &known_hosts)?;
        authenticate(&session, host, secrets)?;
        session.set_keepalive(true, KEEPALIVE_SECS);
        session.set_timeout(0);
        Ok(Self {
            session,
            fd,
            _jump: jump,
        })
    }

    fn direct_tcpip(
        &self,
        address: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Channel, ssh2::Error> {
        self.session
            .set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        let channel = self.session.channel_direct_tcpip(address, port, None);
        self.session.set_timeout(0);
        channel
    }

    fn exec(&mut self, host: &Host, job: &mut Request) -> Result<Output, TransportError> {
        let started = Instant::now();
        let lost = |reason: String| TransportError::Session {
            host: host.name.clone(),
            reason,
        };
        let timeout = job.timeout;
        let nonce = new_tag();
        let wrapped = wrap(timeout, &job.tag, &nonce, job.r#become.as_ref());
        let deadline = timeout
            .map(|t| started + t + Duration::from_secs(REMOTE_KILL_GRACE_SECS) + CLIENT_GRACE);
        self.session.set_blocking(false);
        let mut channel = self
            .retry(deadline, |s| s.channel_session())
            .map_err(|e| lost(e.to_string()))?;
        self.retry(deadline, |_| channel.exec(&wrapped))
            .map_err(|e| lost(e.to_string()))?;
        // The script goes on the channel's standard input, which the
        // wrapper reads whole before running it.
        let mut script = job.command.as_bytes();
        let mut eof_sent = false;
        let mut stdout = Capture::default();
        let mut stderr = Capture::default();
        let mut end = EndLine::new(&nonce);
        let mut buf = vec![0u8; 32 * 1024];
        let mut timed_out = false;
        loop {
            let mut progressed = false;
            if !script.is_empty() {
                match std::io::Write::write(&mut channel, script) {
                    Ok(n) => {
                        script = &script[n..];
                        progressed = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(lost(e.to_string())),
                }
            }
            if script.is_empty() && !eof_sent {
                match channel.send_eof() {
                    Ok(()) => eof_sent = true,
                    Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {}
                    Err(e) => return Err(lost(e.to_string())),
                }
            }
            for stream in [0, 1] {
                loop {
                    match channel.stream(stream).read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) if stream == 0 => {
                            stdout.push(&buf[..n]);
                            progressed = true;
                        }
                        Ok(n) => {
                            end.feed(&buf[..n], &mut stderr);
                            progressed = true;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(lost(e.to_string())),
                    }
                }
            }
            if channel.eof() {
                break;
            }
            // The command has exited; what still holds the output is a
            // background child of it, which is left running, as locally.
            if end.ended_at.is_some_and(|at| at.elapsed() >= PIPE_GRACE) {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                break;
            }
            if job.reply.is_closed() {
                let _ = channel.close();
                self.session.set_blocking(true);
                self.kill_remote(&job.tag, job.r#become.as_ref());
                return Err(lost("the run abandoned the command; it was killed".into()));
            }
            if !progressed {
                let _ = self.session.keepalive_send();
                let wake = end.ended_at.map(|at| at + PIPE_GRACE);
                self.wait_socket(match (deadline, wake) {
                    (Some(d), Some(w)) => Some(d.min(w)),
                    (d, w) => d.or(w),
                });
            }
        }
        end.finish(&mut stderr);
        let (stdout, stdout_dropped) = stdout.finish();
        let (stderr, stderr_dropped) = stderr.finish();
        let output = |exit| Output {
            exit,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
            duration: started.elapsed(),
        };
        if timed_out {
            let _ = channel.close();
            self.session.set_blocking(true);
            self.kill_remote(&job.tag, job.r#become.as_ref());
            return Ok(output(Exit::TimedOut));
        }
        let exit = if channel.eof() {
            self.retry(deadline, |_| channel.wait_close())
                .map_err(|e| lost(e.to_string()))?;
            let code = channel.exit_status().map_err(|e| lost(e.to_string()))?;
            match channel.exit_signal().ok().and_then(|s| s.exit_signal) {
                Some(sig) => Exit::Signal(sig),
                None => exit_of(code, timeout, started),
            }
        } else {
            let _ = channel.close();
            exit_of(end.status.unwrap_or(-1), timeout, started)
        };
        self.session.set_blocking(true);
        Ok(output(exit))
    }

    /// Kills, through a second channel, every process group on the host
    /// that holds a process tagged `tag`: closing a channel without a pty
    /// does not stop the command. What runs through sudo is killed through
    /// sudo too: the login user may not signal the become user's processes.
    fn kill_remote(&self, tag: &str, r#become: Option<&Become>) {
        let Some(kill) = kill_script(tag) else {
            return;
        };
        let script = match r#become {
            Some(b) => format!(
                "{}; {kill}",
                b.line(&new_tag(), &format!("sh -c {}", quote(&kill)))
            ),
            None => kill,
        };
        self.session.set_timeout(5000);
        if let Ok(mut channel) = self.session.channel_session() {
            let _ = channel.exec(&format!("exec sh -c {}", quote(&script)));
            let _ = std::io::Write::write_all(&mut channel, Become::stdin(r#become, "").as_bytes());
            let _ = channel.send_eof();
            let mut sink = Vec::new();
            let _ = channel.read_to_end(&mut sink);
            let _ = channel.wait_close();
        }
        self.session.set_timeout(0);
    }

    /// Repeats a libssh2 call that would block, waiting on the socket.
    fn retry<T>(
        &self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&Session) -> Result<T, ssh2::Error>,
    ) -> Result<T, ssh2::Error> {
        loop {
            match f(&self.session) {
                Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(e);
                    }
                    self.wait_socket(deadline);
                }
                other => return other,
            }
        }
    }

    /// Sleeps until the socket is ready in the direction libssh2 is
    /// blocked on, the deadline, or the keepalive interval.
    fn wait_socket(&self, deadline: Option<Instant>) {
        let dirs = self.session.block_directions();
        let mut events = 0;
        if matches!(
            dirs,
            BlockDirections::Inbound | BlockDirections::Both | BlockDirections::None
        ) {
            events |= libc::POLLIN;
        }
        if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
            events |= libc::POLLOUT;
        }
        // Short enough to notice promptly that a run abandoned the command.
        let mut wait = Duration::from_millis(250);
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()));
        }
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events,
            revents: 0,
        };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one valid pollfd on a socket this connection owns.
        unsafe {
            libc::poll(&raw mut pfd, 1, ms);
        }
    }
}

/// The remote `timeout`'s status: 124 when it killed the command on its
/// deadline, 137 when the command needed SIGKILL after it.
fn exit_of(code: i32, timeout: Option<Duration>, started: Instant) -> Exit {
    match code {
        124 if timeout.is_some() => Exit::TimedOut,
        137 if timeout.is_some_and(|t| started.elapsed() >= t) => Exit::TimedOut,
        code => Exit::Code(code),
    }
}

/// The command line the login shell runs: POSIX sh runs `timeout`, which
/// puts the command in its own process group and on its deadline kills
/// the whole group (`timeout 0`: no deadline); the script itself comes on
/// standard input, so no secret is in an argv. Both shells carry the tag
/// word as `$0`, for `kill_remote` and `resume`. Once `timeout` returns,
/// the end line reports its status. One line, single-quoted: any login
/// shell (bash, csh, fish) passes it to `sh` as is.
fn wrap(timeout: Option<Duration>, tag: &str, nonce: &str, r#become: Option<&Become>) -> String {
    let secs = timeout.map_or(0.0, |t| t.as_secs_f64().max(0.001));
    // Through sudo, `timeout` runs as the become user, whose whole process
    // group it can then kill.
    let run = format!(
        "timeout -k {REMOTE_KILL_GRACE_SECS} {secs:.3} sh -c {} \"$0\"",
        quote(SCRIPT_FROM_STDIN)
    );
    let run = match r#become {
        Some(b) => b.line(tag, &run),
        None => run,
    };
    let inner = format!("{run}; s=$?; echo {END_MARKER}{nonce}:$s >&2; exit $s");
    format!("exec sh -c {} {}", quote(&inner), quote(&tag_word(tag)))
}

/// Single quotes only (`'\''` for a quote): the same word in every login
/// shell, where double quotes and backslashes are not.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Takes the end line (`runbook-end-NONCE:STATUS`) out of stderr wherever
/// it appears (a login shell may print before it, a background child
/// after), keeping every other byte.
struct EndLine {
    needle: Vec<u8>,
    /// Bytes that may be the start of the end line.
    held: Vec<u8>,
    status: Option<i32>,
    ended_at: Option<Instant>,
}

impl EndLine {
    fn new(nonce: &str) -> Self {
        Self {
            needle: format!("{END_MARKER}{nonce}:").into_bytes(),
            held: Vec::new(),
            status: None,
            ended_at: None,
        }
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Capture) {
        if self.ended_at.is_some() {
            out.push(chunk);
            return;
        }
        self.held.extend_from_slice(chunk);
        let found = self
            .held
            .windows(self.needle.len())
            .position(|w| w == self.needle.as_slice());
        let Some(start) = found else {
            let keep = (self.needle.len() - 1).min(self.held.len());
            let cut = self.held.len() - keep;
            out.push(&self.held[..cut]);
            self.held.drain(..cut);
            return;
        };
        out.push(&self.held[..start]);
        self.held.drain(..start);
        let Some(newline) = self.held.iter().position(|&b| b == b'\n') else {
            return;
        };
        let status = &self.held[self.needle.len()..newline];
        self.status = std::str::from_utf8(status)
            .ok()
            .and_then(|s| s.parse().ok());
        self.ended_at = Some(Instant::now());
        let rest = self.held.split_off(newline + 1);
        self.held.clear();
        out.push(&rest);
    }

    fn finish(&mut self, out: &mut Capture) {
        out.push(&self.held);
        self.held.clear();
    }
}

fn default_known_hosts() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".ssh/known_hosts")
}

/// Tries, in order, the ssh-agent, the identity file, then the password
/// (as password, then keyboard-interactive authentication); the error
/// lists every method tried and why it failed.
fn authenticate(session: &Session, host: &Host, secrets: &Secrets) -> Result<(), TransportError> {
    let user = host.user.as_str();
    // Asking which methods the server offers is also the `none` attempt.
    let offered = session
        .auth_methods(user)
        .map_err(|e| TransportError::Session {
            host: host.name.clone(),
            reason: format!("the server did not answer the authentication request: {e}"),
        })?
        .to_string();
    let mut tried = Vec::new();
    let mut attempt =
        |method: String, offers: bool, auth: &mut dyn FnMut() -> Result<(), String>| {
            if session.authenticated() {
                return;
            }
            let why = if offers {
                auth().err().or_else(|| {
                    (!session.authenticated()).then(|| "the server did not accept it".to_string())
                })
            } else {
                Some("the server does not offer it".into())
            };
            if let Some(why) = why {
                tried.push(format!("{method} ({why})"));
            }
        };
    let publickey = offered.contains("publickey");
    if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
        attempt("ssh-agent".into(), publickey, &mut || {
            session
                .userauth_agent(user)
                .map_err(|e| e.message().to_string())
        });
    }
    if let Some(key) = &host.identity_file {
        let passphrase = host.passphrase.as_ref().and_then(|n| secrets.values.get(n));
        attempt(format!("key {}", key.display()), publickey, &mut || {
            if !key.exists() {
                return Err("the key file does not exist".into());
            }
            session
                .userauth_pubkey_file(user, None, key, passphrase.map(String::as_str))
                .map_err(|e| e.message().to_string())
        });
    }
    if let Some(name) = &host.password {
        let Some(password) = secrets.values.get(name) else {
            attempt("password".into(), true, &mut || {
                Err(format!("the secret `{name}` was not given"))
            });
            return Err(auth_failed(host, tried));
        };
        attempt("password".into(), offered.contains("password"), &mut || {
            session
                .userauth_password(user, password)
                .map_err(|e| e.message().to_string())
        });
        attempt(
            "keyboard-interactive".into(),
            offered.contains("keyboard-interactive"),
            &mut || {
                session
                    .userauth_keyboard_interactive(user, &mut Answer(password))
                    .map_err(|e| e.message().to_string())
            },
        );
    }
    if session.authenticated() {
        return Ok(());
    }
    if tried.is_empty() {
        tried.push(
            "nothing (no ssh-agent: SSH_AUTH_SOCK is not set; no `identity_file`; no `password`)"
                .into(),
        );
    }
    Err(auth_failed(host, tried))
}

fn auth_failed(host: &Host, tried: Vec<String>) -> TransportError {
    TransportError::Auth {
        host: host.name.clone(),
        user: host.user.clone(),
        tried,
    }
}

/// Answers every keyboard-interactive prompt with the password.
struct Answer<'a>(&'a str);

impl ssh2::KeyboardInteractivePrompt for Answer<'_> {
    fn prompt<'p>(
        &mut self,
        _username: &str,
        _instructions: &str,
        prompts: &[ssh2::Prompt<'p>],
    ) -> Vec<String> {
        prompts.iter().map(|_| self.0.to_string()).collect()
    }
}

/// Copies bytes between one end of a socket pair and a direct-tcpip channel
/// of the jump host's session, until either side closes.
fn pump(via: &Connection, mut channel: Channel, local: UnixStream) {
    let _ = local.set_nonblocking(true);
    via.session.set_blocking(false);
    let local_fd: OwnedFd = match local.try_clone() {
        Ok(s) => s.into(),
        Err(_) => return,
    };
    let mut local = local;
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut progressed = false;
        match channel.read(&mut buf) {
            Ok(0) if channel.eof() => return,
            Ok(0) => {}
            Ok(n) => {
                if write_all_nb(&mut local, &buf[..n]).is_err() {
                    return;
                }
                progressed = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        if pending.is_empty() {
            match std::io::Read::read(&mut local, &mut buf) {
                Ok(0) => {
                    let _ = channel.send_eof();
                    return;
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    progressed = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !pending.is_empty() {
            match std::io::Write::write(&mut channel, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                    progressed = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !progressed {
            let mut fds = [
                libc::pollfd {
                    fd: via.fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: local_fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds on sockets owned by this thread.
            unsafe {
                libc::poll(fds.as_mut_ptr(), 2, 50);
            }
            let _ = via.session.keepalive_send();
        }
    }
}

fn write_all_nb(stream: &mut UnixStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match std::io::Write::write(stream, data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(chunks: &[&[u8]]) -> (Vec<u8>, Option<i32>) {
        let mut end = EndLine::new("n0");
        let mut out = Capture::default();
        for c in chunks {
            end.feed(c, &mut out);
        }
        end.finish(&mut out);
        (out.finish().0, end.status)
    }

    #[test]
    fn the_end_line_is_found_anywhere_and_removed_exactly() {
        let (out, status) = filter(&[b"banner\npart", b"ial runbook-end-n0:", b"3\nlate\n"]);
        assert_eq!(out, b"banner\npartial late\n");
        assert_eq!(status, Some(3));
        let (out, status) = filter(&[b"runbook-end-", b"n", b"0:0\n"]);
        assert_eq!(out, b"");
        assert_eq!(status, Some(0));
        let (out, status) = filter(&[b"runbook-end-other:1\nrunbook-end-n"]);
        assert_eq!(out, b"runbook-end-other:1\nrunbook-end-n");
        assert_eq!(status, None);
    }

    fn job(
        command: &str,
    ) -> (
        Request,
        tokio::sync::oneshot::Receiver<Result<Output, TransportError>>,
    ) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Request {
            command: command.into(),
            timeout: None,
            tag: "0".into(),
            r#become: None,
            reply,
        };
        (job, answer)
    }

    #[test]
    fn a_job_the_run_abandoned_while_queued_is_never_started() {
        let (tx, rx) = mpsc::channel();
        let (abandoned, answer) = job("abandoned");
        drop(answer);
        let (wanted, _answer) = job("wanted");
        tx.send(abandoned).unwrap();
        tx.send(wanted).unwrap();
        drop(tx);
        assert_eq!(next_job(&rx).map(|j| j.command).as_deref(), Some("wanted"));
        assert!(next_job(&rx).is_none());
    }

    #[test]
    fn a_jump_chain_too_long_is_refused_not_shortened() {
        // Validation refuses such an inventory; this is the guard for a
        // chain it could not see. j0 would answer if it were dialled.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut inventory = Inventory::default();
        for i in 0..=MAX_JUMPS + 1 {
            let mut host = Host::controller(std::collections::BTreeMap::new());
            host.name = format!("j{i}");
            host.port = port;
            host.jump = (i > 0).then(|| format!("j{}", i - 1));
            inventory.hosts.insert(host.name.clone(), host);
        }
        let target = &inventory.hosts[&format!("j{}", MAX_JUMPS + 1)];
        let Err(e) = Connection::open(target, &inventory, &Secrets::default(), 0) else {
            panic!("connected through a chain that is too long");
        };
        let text = e.to_string();
        assert!(
            text.contains("more than 7 jump hosts in a row (next: `j0`); refusing to connect"),
            "{text}"
        );
        listener.set_nonblocking(true).unwrap();
        assert!(
            listener.accept().is_err(),
            "a jump host was dialled directly"
        );
    }
}
