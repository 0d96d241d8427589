//! SSH through libssh2: one authenticated session per host for the whole
//! run, owned by a dedicated thread (libssh2 is blocking; the async
//! workers only exchange messages with it). The session runs in
//! non-blocking mode: one poll loop drives every command in flight on the
//! host, each on its own channel, draining stdout and stderr together,
//! keeping the connection alive and enforcing each deadline itself. A
//! server that refuses another channel on a session (sshd's `MaxSessions`,
//! network gear allowing one) gets a second session, and so on.
//!
//! A host's thread and sockets stay open for the run, within the limit on
//! open files: when every slot that limit leaves is taken, an idle host's
//! thread closes its session and ends, making room for a waiting host.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, Session};

use super::local::{PIPE_GRACE, SCRIPT_FROM_STDIN, SCRIPT_FROM_STDIN_BECOME, script_stdin};
use super::{
    Become, Capture, ExecFuture, Exit, Job, Output, Transport, TransportError, TunnelFuture,
    kill_script, known_hosts, new_tag, shell_quote, tag_word,
};
use crate::exec::context::Secrets;
use crate::model::inventory::MAX_JUMPS;
use crate::model::{Host, Inventory, Shell, TransportKind};

const KEEPALIVE_SECS: u32 = 15;
/// How long an unreachable host's error is reused before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(3);
/// How long a channel may take to close, and a kill command to run, before
/// it is given up.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
const KILL_WITHIN: Duration = Duration::from_secs(10);
/// Sessions to one host at most, when its server allows few channels on
/// each: beyond that, commands wait for a free channel.
const MAX_SESSIONS: usize = 8;
/// The longest the loop sleeps: short enough to notice promptly that a run
/// abandoned a command, or that a host waits for an idle one to close.
const TICK: Duration = Duration::from_millis(250);
/// A host's thread runs only the poll loop and libssh2 (most of its buffers
/// are on the heap): a small stack keeps 1,000 of them cheap.
const THREAD_STACK: usize = 256 * 1024;
/// Open files per host: its TCP socket and the two ends of its wake-up
/// socket pair (a second session or a jump host takes more: see `RESERVED`).
const FILES_PER_HOST: u64 = 3;
/// Open files kept for everything else: standard streams, the journal, the
/// runtime, extra sessions; plus two log files per fork (`--forks`).
const RESERVED: u64 = 64;

/// libssh2's `LIBSSH2_ERROR_EAGAIN`: the call would block.
const EAGAIN: ssh2::ErrorCode = ssh2::ErrorCode::Session(-37);
/// `LIBSSH2_ERROR_CHANNEL_FAILURE`: the server refused to open a channel.
const CHANNEL_FAILURE: ssh2::ErrorCode = ssh2::ErrorCode::Session(-21);
/// `LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED`: the server refused the exec.
const REQUEST_DENIED: ssh2::ErrorCode = ssh2::ErrorCode::Session(-22);

type Reply = tokio::sync::oneshot::Sender<Result<Output, TransportError>>;

struct Request {
    /// What the command reads on its standard input: the script, after
    /// sudo's password line when there is one.
    command: String,
    timeout: Option<Duration>,
    tag: String,
    r#become: Option<Become>,
    /// Closed when the run abandons the command (interrupted): the remote
    /// process group is then killed.
    reply: Reply,
}

/// Starts the line the remote wrapper writes on stderr once the command has
/// exited, with a nonce and the exit status. Background children may keep
/// the channel open long after (sshd closes it only when every holder of
/// the output has closed it): the line is how the command's end is seen.
const END_MARKER: &str = "runbook-end-";

/// The way to a host's connection thread: its queue, and a socket that
/// wakes it from `poll` when a job is queued.
struct Link {
    jobs: mpsc::Sender<Request>,
    wake: UnixStream,
    /// The thread has commands queued or in flight (an interrupted run's
    /// kill tasks among them), which shutdown waits for. An idle one (or
    /// one only logging in early) is not waited for: closing its session
    /// politely is not worth holding up the end of every run (20-60 ms at
    /// 50 hosts); the server sees the connection close.
    busy: Arc<AtomicBool>,
}

impl Link {
    fn wake(&self) {
        // Non-blocking: a full buffer already holds a wake-up.
        let _ = (&self.wake).write(&[1]);
    }
}

/// The hosts' threads, shared with them: one that retires removes itself.
struct Registry {
    hosts: Mutex<HashMap<String, Arc<Link>>>,
    /// A permit per host thread the open-files limit leaves room for.
    slots: Arc<tokio::sync::Semaphore>,
    /// Hosts waiting for a slot: an idle host's thread then retires.
    waiting: AtomicUsize,
}

impl Registry {
    fn hosts(&self) -> MutexGuard<'_, HashMap<String, Arc<Link>>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `host` out if no job came for it meanwhile (jobs are only
    /// sent under the same lock); the thread may then end.
    fn retire(
        &self,
        host: &str,
        jobs: &mpsc::Receiver<Request>,
        queue: &mut VecDeque<Request>,
    ) -> bool {
        let mut hosts = self.hosts();
        receive(jobs, queue);
        queue.is_empty() && hosts.remove(host).is_some()
    }
}

/// Counts a host waiting for a slot, until its wait ends or is abandoned.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many hosts may hold a thread and a session at once: what the
/// (already raised) soft limit on open files leaves, at least one.
fn host_slots(forks: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit for getrlimit to fill.
    let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    let reserved = RESERVED + 2 * forks as u64;
    usize::try_from(files.saturating_sub(reserved) / FILES_PER_HOST)
        .unwrap_or(usize::MAX)
        .clamp(1, tokio::sync::Semaphore::MAX_PERMITS)
}

/// A connection per host, opened on first use and kept for the run while
/// the open-files limit allows.
pub struct SshPool {
    inventory: Arc<Inventory>,
    /// Passphrases and passwords the hosts log in with.
    secrets: Arc<Secrets>,
    registry: Arc<Registry>,
    /// Each host thread, and whether it has commands to end.
    threads: Mutex<Vec<(std::thread::JoinHandle<()>, Arc<AtomicBool>)>>,
}

impl SshPool {
    /// `forks`: how many host operations run at once (each may write logs).
    #[must_use]
    pub fn new(inventory: Arc<Inventory>, secrets: Secrets, forks: usize) -> Self {
        Self {
            inventory,
            secrets: Arc::new(secrets),
            registry: Arc::new(Registry {
                hosts: Mutex::new(HashMap::new()),
                slots: Arc::new(tokio::sync::Semaphore::new(host_slots(forks))),
                waiting: AtomicUsize::new(0),
            }),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Closes every connection, waiting (up to `within`) for abandoned
    /// commands to be killed on their hosts.
    pub fn shutdown(&self, within: Duration) {
        self.registry.slots.close();
        let links: Vec<Arc<Link>> = self
            .registry
            .hosts()
            .drain()
            .map(|(_, link)| link)
            .collect();
        // Each thread sees its queue closed once woken. An idle one is
        // not woken (closing its wake-up socket would): it sees it on its
        // next tick and closes its session then, unless the process has
        // ended first. The end of a run does not wait for every host's
        // thread to take its turn on the cores (20-60 ms at 50 hosts).
        let mut parked = Vec::new();
        for link in links {
            let Ok(Link { jobs, wake, busy }) = Arc::try_unwrap(link) else {
                continue;
            };
            drop(jobs);
            if busy.load(Ordering::SeqCst) {
                let _ = (&wake).write(&[1]);
            } else {
                parked.push(wake);
            }
        }
        if !parked.is_empty() {
            let _ = std::thread::Builder::new()
                .name("ssh-parked".into())
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    std::thread::sleep(2 * TICK);
                    drop(parked);
                });
        }
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = Instant::now() + within;
        for (t, busy) in threads {
            if !busy.load(Ordering::SeqCst) {
                continue;
            }
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }

    /// Queues `job` on the host's thread, first starting one (once a slot
    /// is free) if the host has none.
    async fn submit(&self, host: &Host, job: Request) -> Result<(), String> {
        let stopped = || "the connection thread stopped".to_string();
        let registry = &self.registry;
        loop {
            if let Some(link) = registry.hosts().get(&host.name) {
                link.busy.store(true, Ordering::SeqCst);
                link.jobs.send(job).map_err(|_| stopped())?;
                link.wake();
                return Ok(());
            }
            registry.waiting.fetch_add(1, Ordering::SeqCst);
            let waiting = Waiting(&registry.waiting);
            let slot = Arc::clone(&registry.slots)
                .acquire_owned()
                .await
                .map_err(|_| stopped())?;
            drop(waiting);
            let mut hosts = registry.hosts();
            if hosts.contains_key(&host.name) {
                continue;
            }
            return self.start(host, slot, &mut hosts, Some(job));
        }
    }

    /// Logs in to each of `hosts` in the background, while a slot is free
    /// for it (a hint: a host without one connects on its first command).
    /// A failure is kept, and given to the host's first commands, as when
    /// they connect themselves.
    pub fn prepare(&self, hosts: &[Host]) {
        for host in hosts {
            let Ok(slot) = Arc::clone(&self.registry.slots).try_acquire_owned() else {
                return;
            };
            let mut links = self.registry.hosts();
            if !links.contains_key(&host.name)
                && let Err(e) = self.start(host, slot, &mut links, None)
            {
                tracing::warn!(host = %host.name, "cannot connect early: {e}");
            }
        }
    }

    /// Starts the host's thread, holding `slot`, with `job` queued or else
    /// connecting at once; registers its link in `links`.
    fn start(
        &self,
        host: &Host,
        slot: tokio::sync::OwnedSemaphorePermit,
        links: &mut HashMap<String, Arc<Link>>,
        job: Option<Request>,
    ) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        let (wake, woken) = UnixStream::pair().map_err(|e| e.to_string())?;
        wake.set_nonblocking(true).map_err(|e| e.to_string())?;
        woken.set_nonblocking(true).map_err(|e| e.to_string())?;
        let eager = job.is_none();
        let busy = Arc::new(AtomicBool::new(!eager));
        let thread_busy = Arc::clone(&busy);
        if let Some(job) = job {
            tx.send(job)
                .map_err(|_| "the connection thread stopped".to_string())?;
        }
        let thread_host = host.clone();
        let inventory = Arc::clone(&self.inventory);
        let secrets = Arc::clone(&self.secrets);
        let thread_registry = Arc::clone(&self.registry);
        let handle = std::thread::Builder::new()
            .name(format!("ssh-{}", host.name))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let inbox = Inbox {
                    jobs: &rx,
                    woken: &woken,
                    busy: &thread_busy,
                };
                serve(
                    &thread_host,
                    &inventory,
                    &secrets,
                    &thread_registry,
                    inbox,
                    eager,
                );
                // The slot frees once the session and sockets are closed.
                drop((rx, woken, slot));
            })
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        threads.retain(|(t, _)| !t.is_finished());
        threads.push((handle, Arc::clone(&busy)));
        links.insert(
            host.name.clone(),
            Arc::new(Link {
                jobs: tx,
                wake,
                busy,
            }),
        );
        Ok(())
    }
}

impl Transport for SshPool {
    fn tunnel<'a>(
        &'a self,
        via: &'a str,
        address: &'a str,
        port: u16,
        timeout: Duration,
    ) -> TunnelFuture<'a> {
        let inventory = Arc::clone(&self.inventory);
        let secrets = Arc::clone(&self.secrets);
        let (via, address) = (via.to_string(), address.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                open_tunnel(&inventory, &secrets, &via, &address, port, timeout)
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }

    fn exec<'a>(&'a self, host: &'a Host, job: Job<'a>) -> ExecFuture<'a> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let lost = |reason: String| TransportError::Session {
                host: host.name.clone(),
                reason,
            };
            if let Some(b) = job.r#become {
                // The password would go out as part of the command.
                if host.shell == Shell::None {
                    return Err(TransportError::Become {
                        host: host.name.clone(),
                        become_user: b.user.clone(),
                        reason: "the host has `shell: none`, and sudo needs a shell".into(),
                    });
                }
                b.check(host)?;
            }
            // `shell: none`: the command is the exec request, as it is.
            let script = if host.shell == Shell::None {
                job.command.to_string()
            } else {
                script_stdin(job.command)
            };
            let request = Request {
                command: Become::stdin(job.r#become, &script),
                timeout: job.timeout,
                tag: job.tag.to_string(),
                r#become: job.r#become.cloned(),
                reply,
            };
            self.submit(host, request).await.map_err(lost)?;
            let output = answer
                .await
                .map_err(|_| lost("the connection thread stopped".into()))??;
            match job.r#become.and_then(|b| b.failure(host, job.tag, &output)) {
                Some(refused) => Err(refused),
                None => Ok(output),
            }
        })
    }
}

/// Opens, on a session of its own to `via`, a direct-tcpip channel to
/// `address:port`, pumped to a socket pair whose other end is returned. Its
/// own session leaves the host's command loop untouched, and ends with the
/// stream.
fn open_tunnel(
    inventory: &Inventory,
    secrets: &Secrets,
    via: &str,
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<UnixStream, String> {
    let host = inventory
        .hosts
        .get(via)
        .ok_or_else(|| format!("unknown via host `{via}`"))?;
    if host.transport == TransportKind::Local {
        return super::local::connect(via, address, port, timeout);
    }
    let connection = Connection::open(host, inventory, secrets, 0)
        .map_err(|e| format!("via host `{via}` unreachable: {e}"))?;
    let channel = connection
        .direct_tcpip(address, port, timeout)
        .map_err(|e| match e.code() {
            // sshd answers every failed connect alike, and says no more.
            CHANNEL_FAILURE => format!(
                "connection to {address}:{port} refused from `{via}` (or unreachable from there)"
            ),
            _ => format!("via host `{via}` could not open a tunnel to {address}:{port}: {e}"),
        })?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name(format!("via-{via}"))
        .spawn(move || pump(&connection, channel, theirs))
        .map_err(|e| e.to_string())?;
    Ok(ours)
}

/// What a host's thread hears from the pool: its jobs, the socket that
/// wakes it when one is queued, and the flag it keeps of having work.
#[derive(Clone, Copy)]
struct Inbox<'a> {
    jobs: &'a mpsc::Receiver<Request>,
    woken: &'a UnixStream,
    busy: &'a AtomicBool,
}

/// The connection thread: starts each job on a channel as soon as it is
/// queued and drives all of them at once. A failed connection answers
/// every job with the same error. An idle thread retires when another
/// host waits for its slot. `eager`: connect before any job comes.
fn serve(
    host: &Host,
    inventory: &Inventory,
    secrets: &Secrets,
    registry: &Registry,
    inbox: Inbox<'_>,
    eager: bool,
) {
    let Inbox { jobs, woken, busy } = inbox;
    let mut connections: Vec<Connection> = Vec::new();
    let mut queue: VecDeque<Request> = VecDeque::new();
    // Kills a session had no channel for: they go first, on another one.
    let mut kills: Vec<Task> = Vec::new();
    let mut failure: Option<(TransportError, Instant)> = None;
    let mut max_sessions = MAX_SESSIONS;
    let mut closed = false;
    let connect = |connections: &mut Vec<Connection>,
                   failure: &mut Option<(TransportError, Instant)>,
                   max_sessions: &mut usize| {
        match Connection::open(host, inventory, secrets, 0) {
            Ok(c) => {
                c.session.set_blocking(false);
                *failure = None;
                connections.push(c);
            }
            // The host is up: the commands wait for a channel on the
            // sessions it already allowed.
            Err(e) if !connections.is_empty() => {
                tracing::warn!(host = %host.name, "cannot open another session: {e}");
                *max_sessions = connections.len();
            }
            Err(e) => *failure = Some((e, Instant::now())),
        }
    };
    if eager {
        connect(&mut connections, &mut failure, &mut max_sessions);
    }
    loop {
        let mut sink = [0u8; 64];
        while matches!((&*woken).read(&mut sink), Ok(n) if n > 0) {}
        closed |= receive(jobs, &mut queue);
        while !queue.is_empty() || !kills.is_empty() {
            let avoid = kills.last().map(|k| k.avoid);
            if let Some(avoid) = avoid
                && let Some(c) = connections
                    .iter_mut()
                    .find(|c| c.has_room() && Some(c.fd) != avoid)
                && let Some(kill) = kills.pop()
            {
                c.tasks.push(kill);
                continue;
            }
            if !queue.is_empty()
                && let Some(c) = connections.iter_mut().find(|c| c.has_room())
                && let Some(job) = queue.pop_front()
            {
                c.tasks.push(Task::command(job, host.shell));
                continue;
            }
            if connections.len() >= max_sessions {
                break;
            }
            // During a recovery hosts come back one after another: a host
            // that could not be reached is tried again once the last
            // attempt is a few seconds old (a retry, a later step). Refused
            // credentials or host keys are not retried: they will not fix
            // themselves.
            if let Some((e, at)) = &failure {
                let retry = matches!(
                    e,
                    TransportError::Connect { .. } | TransportError::Session { .. }
                ) && at.elapsed() >= RECONNECT_AFTER;
                if !retry {
                    for job in queue.drain(..) {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                    for mut kill in kills.drain(..) {
                        kill.result = Some(Err(e.clone()));
                        kill.complete();
                    }
                    break;
                }
            }
            connect(&mut connections, &mut failure, &mut max_sessions);
        }
        let now = Instant::now();
        let mut progressed = false;
        for c in &mut connections {
            let drive = c.drive(host, now);
            progressed |= drive.progressed;
            queue.extend(drive.handed_back);
            kills.extend(drive.kills);
        }
        // A kill that found no channel in time gives up: the command it
        // answers for is told it timed out all the same.
        for mut kill in kills.extract_if(.., |k| k.deadline.is_some_and(|d| now >= d)) {
            kill.result = Some(Err(TransportError::Session {
                host: host.name.clone(),
                reason: "no channel to kill a command with".into(),
            }));
            kill.complete();
            progressed = true;
        }
        let before = connections.len();
        connections.retain(|c| !c.broken);
        if connections.len() < before {
            max_sessions = MAX_SESSIONS;
            progressed = true;
        }
        let idle =
            queue.is_empty() && kills.is_empty() && connections.iter().all(|c| c.tasks.is_empty());
        busy.store(!idle, Ordering::SeqCst);
        if idle
            && (closed
                || (registry.waiting.load(Ordering::SeqCst) > 0
                    && registry.retire(&host.name, jobs, &mut queue)))
        {
            return;
        }
        if !progressed {
            wait(&mut connections, woken, now);
        }
    }
}

/// Moves the queued jobs into `queue`, dropping those the run abandoned
/// (interrupted while queued) unstarted. True once the pool closed the
/// queue.
fn receive(jobs: &mpsc::Receiver<Request>, queue: &mut VecDeque<Request>) -> bool {
    let closed = loop {
        match jobs.try_recv() {
            Ok(job) => queue.push_back(job),
            Err(mpsc::TryRecvError::Empty) => break false,
            Err(mpsc::TryRecvError::Disconnected) => break true,
        }
    };
    queue.retain(|job| !job.reply.is_closed());
    closed
}

/// Sleeps until a socket is ready in the direction its session is blocked
/// on, a job is queued, the next deadline, or the next tick. An idle
/// session's socket is watched only for a hang-up (which breaks it): what
/// arrives on it (keepalive replies) waits for its next command, and
/// would otherwise wake the loop again and again, unread.
fn wait(connections: &mut [Connection], woken: &UnixStream, now: Instant) {
    let mut fds = vec![libc::pollfd {
        fd: woken.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let mut until = now + TICK;
    for c in connections.iter() {
        let dirs = c.session.block_directions();
        // Sending a keepalive while a packet is half sent would stall the
        // session (libssh2 resumes only the packet it started).
        if !matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
            let _ = c.session.keepalive_send();
        }
        let mut events = 0;
        if !matches!(dirs, BlockDirections::Outbound) && !c.tasks.is_empty() {
            events |= libc::POLLIN;
        }
        if matches!(dirs, BlockDirections::Outbound | BlockDirections::Both) {
            events |= libc::POLLOUT;
        }
        fds.push(libc::pollfd {
            fd: c.fd,
            events,
            revents: 0,
        });
        for t in &c.tasks {
            if let Some(at) = t.wake_at() {
                until = until.min(at);
            }
        }
    }
    for c in connections.iter().filter(|c| c.tcp) {
        quick_ack(c.fd);
    }
    let wait = until.saturating_duration_since(Instant::now());
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: valid pollfds on sockets this thread owns, and their count.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
    for (c, fd) in connections.iter_mut().zip(&fds[1..]) {
        if c.tasks.is_empty() && fd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            c.broken = true;
        }
    }
}

/// Has the kernel acknowledge what arrives on `fd` at once, not up to 40 ms
/// later: sshd writes without `TCP_NODELAY`, so a reply it writes while an
/// earlier segment is unacknowledged (the first channel after the login
/// finds the host keys it sent unacknowledged) waits for that ACK (Nagle).
/// Linux leaves this mode by itself, hence a call before each wait.
fn quick_ack(fd: RawFd) {
    #[cfg(target_os = "linux")]
    {
        let on: libc::c_int = 1;
        // SAFETY: a socket this thread owns, and an int option of its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                std::ptr::from_ref(&on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

fn again(e: &ssh2::Error) -> bool {
    e.code() == EAGAIN
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
    /// `fd` is a TCP socket (not the socket pair of a jump host's tunnel).
    tcp: bool,
    /// Keeps the jump host's session alive while this one uses it.
    _jump: Option<std::thread::JoinHandle<()>>,
    /// The commands on this session, with a channel or waiting for one.
    tasks: Vec<Task>,
    /// How many channels the server allows on this session, once it
    /// refused one.
    limit: Option<usize>,
    /// A channel is being opened: libssh2 opens one at a time per session
    /// and must be called again until it is done.
    opening: bool,
    broken: bool,
}

/// What driving a connection's channels did.
struct Drive {
    progressed: bool,
    /// Jobs to start elsewhere: the server refused them a channel here.
    handed_back: Vec<Request>,
    /// Kills to run elsewhere, for the same reason: the commands they kill
    /// may hold every channel the server allows on this session.
    kills: Vec<Task>,
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
        let tcp = matches!(socket, Socket::Tcp(_));
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
            tcp,
            _jump: jump,
            tasks: Vec::new(),
            limit: None,
            opening: false,
            broken: false,
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

    fn has_room(&self) -> bool {
        !self.broken && self.limit.is_none_or(|l| self.tasks.len() < l)
    }

    /// Moves every command on this session as far as it goes without
    /// blocking, and answers those that are done.
    fn drive(&mut self, host: &Host, now: Instant) -> Drive {
        let mut drive = Drive {
            progressed: false,
            handed_back: Vec::new(),
            kills: Vec::new(),
        };
        let lost = |reason: String| TransportError::Session {
            host: host.name.clone(),
            reason,
        };
        self.tasks.retain(|t| t.channel.is_some() || !t.abandoned());
        let wanting = self.tasks.iter().position(|t| t.channel.is_none());
        let open = self.tasks.iter().filter(|t| t.channel.is_some()).count();
        if self.opening || (wanting.is_some() && self.limit.is_none_or(|l| open < l)) {
            match self.session.channel_session() {
                Ok(channel) => {
                    self.opening = false;
                    drive.progressed = true;
                    // A channel opened for a job abandoned meanwhile is
                    // dropped (closed).
                    if let Some(i) = wanting {
                        self.tasks[i].channel = Some(channel);
                    }
                }
                Err(e) if again(&e) => self.opening = true,
                Err(e) if e.code() == CHANNEL_FAILURE && open > 0 => {
                    self.opening = false;
                    drive.progressed = true;
                    self.limit = Some(open);
                    for mut t in std::mem::take(&mut self.tasks) {
                        match (&t.channel, &t.kind) {
                            (Some(_), _) => self.tasks.push(t),
                            (None, Kind::Command) => drive.handed_back.extend(t.job.take()),
                            (None, Kind::Kill) => {
                                t.avoid = Some(self.fd);
                                drive.kills.push(t);
                            }
                        }
                    }
                }
                Err(e) if e.code() == CHANNEL_FAILURE => {
                    self.opening = false;
                    drive.progressed = true;
                    match wanting {
                        // The server may still count a channel of a
                        // command being killed, closed on our side only.
                        Some(i) if matches!(self.tasks[i].kind, Kind::Kill) => {
                            let mut kill = self.tasks.remove(i);
                            kill.avoid = Some(self.fd);
                            drive.kills.push(kill);
                        }
                        Some(i) => {
                            self.tasks[i].result =
                                Some(Err(lost(format!("the server refused a channel: {e}"))));
                        }
                        None => {}
                    }
                }
                Err(e) => return self.fail(drive, &lost(e.to_string())),
            }
        }
        let mut killers = Vec::new();
        for t in &mut self.tasks {
            if t.channel.is_none() || t.result.is_some() {
                continue;
            }
            match t.drive(now, &lost) {
                Ok(p) => drive.progressed |= p,
                Err(e) => return self.fail(drive, &e),
            }
            killers.extend(t.killer.take().map(|k| *k));
        }
        let (done, running): (Vec<Task>, Vec<Task>) =
            self.tasks.drain(..).partition(|t| t.result.is_some());
        self.tasks = running;
        self.tasks.extend(killers);
        for t in done {
            drive.progressed = true;
            t.complete();
        }
        drive
    }

    /// The session is lost: every command on it fails with `error` (a
    /// command already timed out keeps that answer).
    fn fail(&mut self, drive: Drive, error: &TransportError) -> Drive {
        tracing::warn!("ssh session failed: {error}");
        self.broken = true;
        for mut t in self.tasks.drain(..) {
            if t.answer.is_none() {
                t.answer = Some(Err(error.clone()));
            }
            t.result = Some(Err(error.clone()));
            t.complete();
        }
        Drive {
            progressed: true,
            ..drive
        }
    }
}

enum Kind {
    Command,
    /// Kills, through its own channel, every process group on the host
    /// that holds a process tagged with a command's tag: closing a channel
    /// without a pty does not stop the command.
    Kill,
}

enum Phase {
    /// The exec request is being sent.
    Starting,
    Running,
    /// The channel is being closed, for this reason, until `by`.
    Closing {
        why: Ending,
        by: Instant,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The server closed the output: the command (and every holder of its
    /// output) exited.
    Exited,
    /// The end line came; background children still hold the output.
    Ended,
    TimedOut,
    /// The run no longer waits for the command.
    Abandoned,
}

/// One command on its own channel.
struct Task {
    kind: Kind,
    job: Option<Request>,
    reply: Option<Reply>,
    /// The answer to give once this task is done, instead of its own
    /// result (a kill task answers for the command it killed).
    answer: Option<Result<Output, TransportError>>,
    result: Option<Result<Output, TransportError>>,
    tag: String,
    /// `shell: none`: the command is the exec request, as it is.
    raw: bool,
    line: String,
    stdin: Vec<u8>,
    sent: usize,
    eof_sent: bool,
    channel: Option<Channel>,
    phase: Phase,
    started: Instant,
    deadline: Option<Instant>,
    stdout: Capture,
    stderr: Capture,
    /// Watches stderr for the wrapper's end line (not for `shell: none`).
    end: Option<EndLine>,
    /// The task killing this command on its host, to start now: it answers
    /// for the command (see [`Task::stop`]).
    killer: Option<Box<Task>>,
    /// A kill's channel was refused on the session with this socket: it
    /// is tried on another one.
    avoid: Option<RawFd>,
}

impl Task {
    fn command(job: Request, shell: Shell) -> Self {
        let started = Instant::now();
        let raw = shell == Shell::None;
        // The client enforces every deadline: on it, a command with a shell
        // is killed, process group and all, through a second channel
        // (`Task::stop`); one without has only its channel to lose.
        let deadline = job.timeout.map(|t| started + t);
        let (line, stdin, end) = if raw {
            (job.command.clone(), Vec::new(), None)
        } else {
            let nonce = new_tag();
            // The script goes on the channel's standard input, which the
            // wrapper reads whole before running it.
            (
                wrap(&job.tag, &nonce, job.r#become.as_ref()),
                job.command.clone().into_bytes(),
                Some(EndLine::new(&nonce)),
            )
        };
        Self {
            kind: Kind::Command,
            tag: job.tag.clone(),
            job: Some(job),
            reply: None,
            answer: None,
            result: None,
            raw,
            line,
            stdin,
            sent: 0,
            eof_sent: false,
            channel: None,
            phase: Phase::Starting,
            started,
            deadline,
            stdout: Capture::default(),
            stderr: Capture::default(),
            end,
            killer: None,
            avoid: None,
        }
    }

    /// A task killing what `tag` started, then giving `answer` to `reply`.
    /// What runs through sudo is killed through sudo too: the login user
    /// may not signal the become user's processes.
    fn kill(
        tag: &str,
        r#become: Option<&Become>,
        reply: Option<Reply>,
        answer: Result<Output, TransportError>,
    ) -> Self {
        let script = match (kill_script(tag), r#become) {
            (Some(kill), Some(b)) => format!(
                "{}; {kill}",
                b.line(&new_tag(), &format!("sh -c {}", shell_quote(&kill)))
            ),
            (Some(kill), None) => kill,
            (None, _) => "true".into(),
        };
        let started = Instant::now();
        Self {
            kind: Kind::Kill,
            job: None,
            reply,
            answer: Some(answer),
            result: None,
            tag: String::new(),
            raw: false,
            line: format!("exec sh -c {}", shell_quote(&script)),
            stdin: Become::stdin(r#become, "").into_bytes(),
            sent: 0,
            eof_sent: false,
            channel: None,
            phase: Phase::Starting,
            started,
            deadline: Some(started + KILL_WITHIN),
            stdout: Capture::default(),
            stderr: Capture::default(),
            end: None,
            killer: None,
            avoid: None,
        }
    }

    fn reply(&self) -> Option<&Reply> {
        self.job.as_ref().map(|j| &j.reply).or(self.reply.as_ref())
    }

    /// The run no longer waits for this command (a kill always finishes).
    fn abandoned(&self) -> bool {
        matches!(self.kind, Kind::Command) && self.reply().is_none_or(Reply::is_closed)
    }

    /// When the loop must look at this task again without socket activity.
    fn wake_at(&self) -> Option<Instant> {
        if let Phase::Closing { by, .. } = self.phase {
            return Some(by);
        }
        let grace = self
            .end
            .as_ref()
            .and_then(|e| e.ended_at)
            .map(|at| at + PIPE_GRACE);
        let deadline = match self.phase {
            Phase::Starting => self.deadline.map(|d| d + CLOSE_WITHIN),
            _ => self.deadline,
        };
        match (deadline, grace) {
            (Some(d), Some(g)) => Some(d.min(g)),
            (d, g) => d.or(g),
        }
    }

    /// Moves this command on as far as it goes without blocking; true if
    /// anything happened. An error means the session is lost.
    fn drive(
        &mut self,
        now: Instant,
        lost: &dyn Fn(String) -> TransportError,
    ) -> Result<bool, TransportError> {
        let abandoned = self.abandoned();
        let Some(channel) = self.channel.as_mut() else {
            return Ok(false);
        };
        let mut progressed = false;
        if matches!(self.phase, Phase::Starting) {
            match channel.exec(&self.line) {
                Ok(()) => {
                    self.phase = Phase::Running;
                    progressed = true;
                }
                Err(e) if again(&e) => {
                    // The request may have reached the server: a deadline
                    // passing now is seen once it answered, and the
                    // command, if it started, is killed. This is only the
                    // guard against a server that never answers.
                    if self.deadline.is_some_and(|d| now >= d + CLOSE_WITHIN) {
                        self.result = Some(Err(lost(format!(
                            "the server did not start the command: {e}"
                        ))));
                    }
                    return Ok(false);
                }
                // The server refused this command; the session is fine.
                Err(e) if e.code() == REQUEST_DENIED || e.code() == CHANNEL_FAILURE => {
                    self.result = Some(Err(lost(format!("the server refused the command: {e}"))));
                    return Ok(true);
                }
                Err(e) => return Err(lost(e.to_string())),
            }
        }
        if matches!(self.phase, Phase::Running) {
            if self.sent < self.stdin.len() {
                match channel.write(&self.stdin[self.sent..]) {
                    Ok(n) => {
                        self.sent += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(lost(e.to_string())),
                }
            }
            if self.sent == self.stdin.len() && !self.eof_sent {
                match channel.send_eof() {
                    Ok(()) => self.eof_sent = true,
                    Err(e) if again(&e) => {}
                    Err(e) => return Err(lost(e.to_string())),
                }
            }
            // Small: 1,000 host threads each touch this much stack.
            let mut buf = [0u8; 8 * 1024];
            for stream in [0, 1] {
                loop {
                    match channel.stream(stream).read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            progressed = true;
                            match (stream, self.end.as_mut()) {
                                (0, _) => self.stdout.push(&buf[..n]),
                                (_, Some(end)) => end.feed(&buf[..n], &mut self.stderr),
                                (_, None) => self.stderr.push(&buf[..n]),
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(lost(e.to_string())),
                    }
                }
            }
            // Once the command has exited, what still holds the output is
            // a background child of it, which is left running, as locally.
            let ended_at = self.end.as_ref().and_then(|e| e.ended_at);
            let why = if channel.eof() {
                Some(Ending::Exited)
            } else if ended_at.is_some_and(|at| now.duration_since(at) >= PIPE_GRACE) {
                Some(Ending::Ended)
            } else if ended_at.is_none() && self.deadline.is_some_and(|d| now >= d) {
                // A command that ended in time is not timed out by what
                // it left in the background.
                Some(Ending::TimedOut)
            } else if abandoned {
                Some(Ending::Abandoned)
            } else {
                None
            };
            if let Some(why) = why {
                self.stop(why);
                self.phase = Phase::Closing {
                    why,
                    by: now + CLOSE_WITHIN,
                };
                progressed = true;
            }
        }
        if let Phase::Closing { why, by } = self.phase {
            let Some(channel) = self.channel.as_mut() else {
                return Ok(progressed);
            };
            let closed = if why == Ending::Exited {
                match channel.wait_close() {
                    Err(e) if again(&e) => false,
                    _ => !matches!(channel.close(), Err(e) if again(&e)),
                }
            } else {
                match channel.close() {
                    Err(e) if again(&e) => {
                        // libssh2 finishes a half-sent packet only when the
                        // call that started it is repeated.
                        if self.sent < self.stdin.len()
                            && let Ok(n) = channel.write(&self.stdin[self.sent..])
                        {
                            self.sent += n;
                        }
                        false
                    }
                    _ => true,
                }
            };
            if closed || now >= by {
                self.result = Some(Ok(self.output(why)));
                progressed = true;
            }
        }
        Ok(progressed)
    }

    /// What the command gave, once its channel is closed.
    fn output(&mut self, why: Ending) -> Output {
        if let Some(end) = self.end.as_mut() {
            end.finish(&mut self.stderr);
        }
        let exit = match (why, self.channel.as_ref()) {
            (Ending::TimedOut | Ending::Abandoned, _) => Exit::TimedOut,
            (Ending::Exited, Some(channel)) => {
                match channel.exit_signal().ok().and_then(|s| s.exit_signal) {
                    Some(sig) => Exit::Signal(sig),
                    None => Exit::Code(channel.exit_status().unwrap_or(-1)),
                }
            }
            _ => Exit::Code(self.end.as_ref().and_then(|e| e.status).unwrap_or(-1)),
        };
        let (stdout, stdout_dropped) = std::mem::take(&mut self.stdout).finish();
        let (stderr, stderr_dropped) = std::mem::take(&mut self.stderr).finish();
        Output {
            exit,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
            duration: self.started.elapsed(),
        }
    }

    /// A command stopped on the client's side (its deadline, or the run
    /// abandoned it) is killed on its host at once, through another channel
    /// (`killer`), which answers for it once done: sshd closes the
    /// command's channel only when the command is gone. A host without a
    /// shell to kill it with gets its channel closed, which is all there is.
    fn stop(&mut self, why: Ending) {
        if !matches!(why, Ending::TimedOut | Ending::Abandoned)
            || self.raw
            || !matches!(self.kind, Kind::Command)
        {
            return;
        }
        let Some(job) = self.job.take() else {
            return;
        };
        let output = self.output(why);
        self.killer = Some(Box::new(Task::kill(
            &self.tag,
            job.r#become.as_ref(),
            Some(job.reply).filter(|r| !r.is_closed()),
            Ok(output),
        )));
    }

    /// Answers the run, if this task still holds the answer.
    fn complete(mut self) {
        let Some(result) = self.result.take() else {
            return;
        };
        let reply = self.job.take().map(|j| j.reply).or(self.reply.take());
        if let Some(reply) = reply {
            let _ = reply.send(self.answer.take().unwrap_or(result));
        }
    }
}
/// The command line the login shell runs: it becomes POSIX sh, which
/// sources the script from standard input itself (so no secret is in an
/// argv, `$$` is the script's shell as it is locally, and the host starts
/// no program per command beyond the login shell and `sh`, as `ssh host sh
/// -c CMD` would). The end line reporting its status is printed by an
/// `EXIT` trap, so `exit N` inside the script reports N; a script that
/// sets its own `EXIT` trap, `exec`s or dies of a signal has none, and ends
/// when its channel does. The shell carries the tag word as `$0`, for the
/// kill task and `resume`: sshd starts each session in a process group of
/// its own, which the kill task ends whole. Through sudo the become user's
/// shell reads the script, and the login user's shell prints the end line
/// once sudo returns. One line, single-quoted: any login shell (bash, csh,
/// fish) passes it to `sh` as is.
fn wrap(tag: &str, nonce: &str, r#become: Option<&Become>) -> String {
    let inner = match r#become {
        Some(b) => format!(
            "{}; s=$?; echo {END_MARKER}{nonce}:$s >&2; exit $s",
            b.line(
                tag,
                &format!("sh -c {} \"$0\"", shell_quote(SCRIPT_FROM_STDIN_BECOME)),
            )
        ),
        // The trap leaves the shell's exit status as it was.
        None => format!(
            "trap {} EXIT; {SCRIPT_FROM_STDIN}",
            shell_quote(&format!("echo {END_MARKER}{nonce}:$? >&2"))
        ),
    };
    format!(
        "exec sh -c {} {}",
        shell_quote(&inner),
        shell_quote(&tag_word(tag))
    )
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
            // With the public half beside it, as ssh-keygen leaves it,
            // libssh2 does not derive it from the private key: one OpenSSL
            // key decoding fewer per login (about 0.5 ms of CPU).
            let mut public = key.clone().into_os_string();
            public.push(".pub");
            let public = PathBuf::from(public);
            session
                .userauth_pubkey_file(
                    user,
                    public.is_file().then_some(public.as_path()),
                    key,
                    passphrase.map(String::as_str),
                )
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
            if via.tcp {
                quick_ack(via.fd);
            }
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
        let mut queue = VecDeque::new();
        assert!(!receive(&rx, &mut queue), "the queue is still open");
        let commands: Vec<&str> = queue.iter().map(|j| j.command.as_str()).collect();
        assert_eq!(commands, ["wanted"]);
        drop(tx);
        assert!(receive(&rx, &mut queue), "the queue is closed");
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
