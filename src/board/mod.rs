//! `runbook board` and `run --board`: a read-only web server over a run's
//! journal. Every page is built from the one fold of the journal (see
//! `model`); `/events` streams the journal's events as they are written.
//!
//! The server runs on a runtime of its own: during a run, events reach it
//! through an unbounded channel from a reporter ([`Sink`]), so the
//! dispatcher never waits on a viewer; each viewer reads the shared list of
//! events at its own pace.

mod model;
mod page;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

pub use model::Board;

use crate::events::RunEvent;
use crate::report::Reporter;

/// More viewers than this get a 503: each holds a connection and a task.
const MAX_VIEWERS: usize = 1_000;
/// Connections open at once, viewers or not; more wait in the kernel's
/// queue. Each is a file of the process, which during `run --board` is the
/// one that runs the recovery: at most half of its open-file limit.
const MAX_CONNECTIONS: usize = 1_100;
/// A client must send a request's head within this of connecting or of
/// its last answer, or it is cut off (slow or idle clients hold files).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest an event waits to reach the viewers of `run --board`.
const BATCH: Duration = Duration::from_millis(250);
/// A viewer with nothing new gets a comment this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the standalone board looks at the journal's length.
const POLL: Duration = Duration::from_millis(250);
/// A page built less than this ago is served again (forecasts move with
/// the clock, not only with events).
const FRESH: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// An unset variable in `--token "$T"`: a board anyone opens with
    /// `?token=`.
    #[error("the board's token is empty: give one, or no token at all")]
    EmptyToken,
    #[error("cannot start the board's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Binds the board's address now, so that a bad one stops the command
/// before anything starts; warns when it is open to other machines with
/// no token.
pub fn listen(addr: SocketAddr, token: Option<&str>) -> Result<TcpListener, BoardError> {
    if token.is_some_and(|t| t.trim().is_empty()) {
        return Err(BoardError::EmptyToken);
    }
    if !addr.ip().is_loopback() && token.is_none() {
        eprintln!(
            "warning: the board on {addr} is open to anyone who can reach it: give a --token"
        );
    }
    let listener = TcpListener::bind(addr).map_err(|source| BoardError::Listen { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| BoardError::Listen { addr, source })?;
    Ok(listener)
}

/// The address to print: `http://ADDR/`, with the token when there is one
/// (a link that works as it is).
#[must_use]
pub fn url(listener: &TcpListener, token: Option<&str>) -> String {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    match token {
        Some(t) => format!(
            "http://{addr}/?token={}",
            form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        ),
        None => format!("http://{addr}/"),
    }
}

/// What every request shares: the events so far and who watches them.
struct App {
    journal: Mutex<Journal>,
    /// The number of events, and whether no more will come.
    state: watch::Sender<(usize, bool)>,
    source: Mutex<model::Source>,
    built: Mutex<Option<Arc<Built>>>,
    viewers: AtomicUsize,
    limits: Limits,
    token: Option<String>,
    /// On loopback with no token: only requests to `localhost` or an IP
    /// address are answered, so that a web page the operator opens cannot
    /// point a name of its own at the board (DNS rebinding) and read the run.
    loopback_only: bool,
}

/// How many connections, and how many `/events` viewers among them.
#[derive(Clone, Copy)]
struct Limits {
    connections: usize,
    viewers: usize,
}

impl Limits {
    fn of_this_process() -> Self {
        let connections = MAX_CONNECTIONS.min(open_files() / 2).max(2);
        Self {
            connections,
            // Room left for the pages while the viewers are at their most.
            viewers: MAX_VIEWERS.min(connections - connections / 10),
        }
    }
}

/// The process's open-file limit (its soft `RLIMIT_NOFILE`).
fn open_files() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return 1024;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

/// The board last built, for how many events and when, and its pages,
/// each rendered once for every viewer that asks before the next build.
struct Built {
    events: usize,
    at: Instant,
    board: Board,
    json: OnceLock<Bytes>,
    war_room: OnceLock<Bytes>,
    status: OnceLock<Bytes>,
}

#[derive(Default)]
struct Journal {
    events: Vec<RunEvent>,
    /// The events folded as they come: a build folds nothing again.
    view: crate::journal::RunView,
    /// The `/events` messages of each batch of events, formatted once into
    /// one buffer that every viewer up to date sends as it is.
    chunks: Vec<Bytes>,
    /// Where each event's message is: its chunk, and where in it it starts.
    frames: Vec<(usize, usize)>,
}

impl Journal {
    /// The messages of events `from..to` (`from < to`): a view of one
    /// chunk for a viewer up to date, a copy for one that fell behind.
    fn messages(&self, from: usize, to: usize) -> Bytes {
        let (first, start) = self.frames[from];
        let last = self.frames[to - 1].0;
        let end = match self.frames.get(to) {
            Some(&(chunk, at)) if chunk == last => at,
            _ => self.chunks[last].len(),
        };
        if first == last {
            return self.chunks[first].slice(start..end);
        }
        let mut all = self.chunks[first][start..].to_vec();
        for chunk in &self.chunks[first + 1..last] {
            all.extend_from_slice(chunk);
        }
        all.extend_from_slice(&self.chunks[last][..end]);
        Bytes::from(all)
    }
}

impl App {
    fn new(
        listener: &TcpListener,
        state_dir: PathBuf,
        run_id: String,
        token: Option<String>,
    ) -> Arc<Self> {
        let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
        Arc::new(Self {
            journal: Mutex::default(),
            state: watch::Sender::new((0, false)),
            source: Mutex::new(model::Source::new(state_dir, run_id)),
            built: Mutex::default(),
            viewers: AtomicUsize::new(0),
            limits: Limits::of_this_process(),
            loopback_only: loopback && token.is_none(),
            token,
        })
    }

    fn push(&self, events: impl IntoIterator<Item = RunEvent>) {
        use std::fmt::Write as _;
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let chunk = journal.chunks.len();
        let mut text = String::new();
        for event in events {
            let id = journal.events.len();
            let json = serde_json::to_string(&event).unwrap_or_default();
            journal.frames.push((chunk, text.len()));
            let _ = write!(text, "id: {id}\ndata: {json}\n\n");
            journal.view.push(&event);
            journal.events.push(event);
        }
        if text.is_empty() {
            return;
        }
        let len = journal.events.len();
        journal.chunks.push(Bytes::from(text));
        drop(journal);
        self.state.send_modify(|s| s.0 = len);
    }

    /// The journal followed is not the one read so far (put back from a
    /// copy, say): everything is read again from its start. A viewer of
    /// `/events` goes on from the number it had.
    fn start_over(&self, events: Vec<RunEvent>) {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        *self.journal.lock().unwrap_or_else(PoisonError::into_inner) = Journal::default();
        *built = None;
        drop(built);
        self.state.send_modify(|s| s.0 = 0);
        self.push(events);
    }

    fn close(&self) {
        self.state.send_modify(|s| s.1 = true);
    }

    /// The board as of now; built again after an event or once it is a
    /// second old.
    fn board(&self) -> Arc<Built> {
        let len = self.state.borrow().0;
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = &*built
            && b.events == len
            && b.at.elapsed() < FRESH
        {
            return Arc::clone(b);
        }
        // Under the lock, which new events wait for: the fold is up to
        // date, and the report reads the events in place.
        let journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let board = self
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .build(&journal.view, &journal.events, SystemTime::now());
        drop(journal);
        let b = Arc::new(Built {
            events: board.events,
            at: Instant::now(),
            board,
            json: OnceLock::new(),
            war_room: OnceLock::new(),
            status: OnceLock::new(),
        });
        *built = Some(Arc::clone(&b));
        b
    }
}

/// The reporter of `run --board`: hands each event to the board's thread
/// and never waits. The second sender, dropped with the first, tells the
/// board that no more events come, without waking it for each event.
pub struct Sink(Option<(mpsc::UnboundedSender<RunEvent>, oneshot::Sender<()>)>);

impl Reporter for Sink {
    fn event(&mut self, event: &RunEvent) {
        if let Some((tx, _)) = &self.0 {
            let _ = tx.send(event.clone());
        }
    }
    fn note(&mut self, _text: &str) {}
    /// No more events: the board sends what it has, then stops.
    fn finish(&mut self) {
        self.0 = None;
    }
}

/// The board of a run going on in this process.
pub struct Live {
    thread: std::thread::JoinHandle<()>,
}

impl Live {
    /// Serves the board of run `run_id` on its own thread; the events come
    /// from the returned [`Sink`].
    pub fn start(
        listener: TcpListener,
        token: Option<String>,
        state_dir: PathBuf,
        run_id: String,
    ) -> Result<(Self, Sink), BoardError> {
        Self::batched(listener, token, state_dir, run_id, BATCH)
    }

    fn batched(
        listener: TcpListener,
        token: Option<String>,
        state_dir: PathBuf,
        run_id: String,
        interval: Duration,
    ) -> Result<(Self, Sink), BoardError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BoardError::Runtime)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<RunEvent>();
        let (end, mut ended) = oneshot::channel();
        let app = App::new(&listener, state_dir, run_id, token);
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let feeder = Arc::clone(&app);
                tokio::spawn(async move {
                    let mut batch = Vec::new();
                    let mut open = true;
                    while rx.recv_many(&mut batch, 4096).await > 0 {
                        feeder.push(batch.drain(..));
                        // Viewers wake at most this often, each time for
                        // every event since: a busy run costs them a few
                        // writes a second, not one per event. The events
                        // are not received meanwhile, so that sending one
                        // wakes nobody; but the last ones go out at once.
                        if open {
                            tokio::select! {
                                () = tokio::time::sleep(interval) => {}
                                _ = &mut ended => open = false,
                            }
                        }
                    }
                    feeder.close();
                });
                serve(listener, app).await;
            });
        });
        Ok((Self { thread }, Sink(Some((tx, end)))))
    }

    /// Waits until the last events reached the viewers and the server
    /// stopped (bounded: a viewer that does not read is dropped).
    pub fn stop(self) {
        let _ = self.thread.join();
    }
}

/// `runbook board`: serves the board of a recorded run, following its
/// journal (a run going on in another process, or a later `resume`),
/// until Ctrl-C.
pub fn follow(
    listener: TcpListener,
    token: Option<String>,
    state_dir: PathBuf,
    run_id: String,
) -> Result<(), BoardError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BoardError::Runtime)?;
    let path = crate::state::run_path(&state_dir, &run_id).join("journal.jsonl");
    let app = App::new(&listener, state_dir, run_id, token);
    // The first page shows the journal as it is now.
    let mut seen = std::fs::metadata(&path).map(|m| m.len()).ok();
    let mut tail = crate::state::JournalTail::new(path.clone());
    if let Ok(read) = tail.read() {
        app.push(read.events);
    }
    runtime.block_on(async move {
        let reader = Arc::clone(&app);
        tokio::spawn(async move {
            loop {
                let len = std::fs::metadata(&path).map(|m| m.len()).ok();
                if len.is_some() && len != seen {
                    seen = len;
                    let Ok((back, read)) = tokio::task::spawn_blocking(move || {
                        let read = tail.read();
                        (tail, read)
                    })
                    .await
                    else {
                        tracing::error!(
                            "board: reading the journal failed; no longer following it"
                        );
                        return;
                    };
                    tail = back;
                    match read {
                        Ok(read) if read.restarted => reader.start_over(read.events),
                        Ok(read) => reader.push(read.events),
                        Err(e) => tracing::warn!("board: {e}"),
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        });
        let stop = Arc::clone(&app);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.close();
        });
        serve(listener, app).await;
    });
    Ok(())
}

/// Serves until the app is closed and its viewers have had every event
/// (at most 5 s more for a viewer that does not read).
///
/// hyper's own connection loop rather than `axum::serve`, which has no
/// limit on connections and no deadline for a request's head.
async fn serve(listener: TcpListener, app: Arc<App>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("board: {e}");
            return;
        }
    };
    let router = Router::new()
        .route("/", get(war_room))
        .route("/status", get(status))
        .route("/api/run", get(api))
        .route("/events", get(events))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(Arc::clone(&app));
    let slots = Arc::new(Semaphore::new(app.limits.connections));
    let mut closed = app.state.subscribe();
    loop {
        let (slot, stream) = tokio::select! {
            () = closing(&mut closed) => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut closed = app.state.subscribe();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = closing(&mut closed) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    // Every slot back: every connection ended.
    let all = u32::try_from(app.limits.connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
}

/// Once the board is closed (no more events will come).
async fn closing(state: &mut watch::Receiver<(usize, bool)>) {
    let _ = state.wait_for(|s| s.1).await;
}

/// The next connection, once there is a slot for it.
async fn accept(
    listener: &tokio::net::TcpListener,
    slots: &Arc<Semaphore>,
) -> (OwnedSemaphorePermit, tokio::net::TcpStream) {
    let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
        return std::future::pending().await;
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (slot, stream),
            // Out of files, or a connection reset before it was accepted:
            // wait a little rather than spin.
            Err(e) => {
                tracing::debug!("board: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Every route: the token when there is one (header or `?token=`), and
/// headers that keep the page to itself.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.loopback_only && !by_address(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "this board answers only to http://localhost or an IP address, or with a token\n",
        )
            .into_response();
    }
    if let Some(token) = &app.token {
        let given = bearer(request.headers()).or_else(|| {
            form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        });
        let ok = given.is_some_and(|g| {
            use subtle::ConstantTimeEq as _;
            bool::from(g.as_bytes().ct_eq(token.as_bytes()))
        });
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a token is needed: add ?token=... to the address\n",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, page::CSP.as_str()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // The token may be in the address.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    response
}

/// The request names the board by an IP address or `localhost` (or names
/// no host): what a name an attacker points at 127.0.0.1 cannot be.
fn by_address(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(authority) = host
        .to_str()
        .unwrap_or("")
        .parse::<axum::http::uri::Authority>()
    else {
        return false;
    };
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

async fn built(app: Arc<App>) -> Result<Arc<Built>, Response> {
    tokio::task::spawn_blocking(move || app.board())
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn war_room(State(app): State<Arc<App>>) -> Response {
    match built(app).await {
        Ok(b) => Html(
            b.war_room
                .get_or_init(|| page::war_room(&b.board).into())
                .clone(),
        )
        .into_response(),
        Err(r) => r,
    }
}

async fn status(State(app): State<Arc<App>>) -> Response {
    match built(app).await {
        Ok(b) => Html(
            b.status
                .get_or_init(|| page::status(&b.board).into())
                .clone(),
        )
        .into_response(),
        Err(r) => r,
    }
}

async fn api(State(app): State<Arc<App>>) -> Response {
    match built(app).await {
        Ok(b) => (
            [(header::CONTENT_TYPE, "application/json")],
            b.json
                .get_or_init(|| {
                    format!("{:#}\n", serde_json::to_value(&b.board).unwrap_or_default()).into()
                })
                .clone(),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// A viewer counted while its stream lives.
struct Viewer(Arc<App>);

impl Drop for Viewer {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `/events`: a `ready` message, then each journal event from now on (or
/// after `Last-Event-ID`, when a browser reconnects), its index as `id`.
/// Written by hand rather than with axum's `Sse`: each message is
/// formatted once for all viewers, and a viewer gets everything new in one
/// write.
async fn events(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if app.viewers.fetch_add(1, Ordering::Relaxed) >= app.limits.viewers {
        app.viewers.fetch_sub(1, Ordering::Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            "too many viewers: try again later\n",
        )
            .into_response();
    }
    let viewer = Viewer(Arc::clone(&app));
    let mut rx = app.state.subscribe();
    let len = rx.borrow_and_update().0;
    let next = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(len, |last| (last + 1).min(len));
    let ready = Bytes::from(format!("event: ready\ndata: {{\"events\": {len}}}\n\n"));
    let stream = futures_util::stream::unfold(
        (viewer, rx, next, Some(ready)),
        |(viewer, mut rx, next, ready)| async move {
            if let Some(ready) = ready {
                return Some((
                    Ok::<_, std::convert::Infallible>(ready),
                    (viewer, rx, next, None),
                ));
            }
            loop {
                let (len, closed) = *rx.borrow_and_update();
                if next < len {
                    let chunk = viewer
                        .0
                        .journal
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .messages(next, len);
                    return Some((Ok(chunk), (viewer, rx, len, None)));
                }
                if closed {
                    return None;
                }
                match tokio::time::timeout(KEEP_ALIVE, rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    // A comment, so that proxies keep the connection.
                    Err(_) => {
                        return Some((
                            Ok(Bytes::from_static(b": keep-alive\n\n")),
                            (viewer, rx, next, None),
                        ));
                    }
                }
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::RunView;

    fn event(step: &str) -> RunEvent {
        serde_json::from_value(serde_json::json!({
            "at": "2026-11-29T05:12:39.451Z", "elapsed_ms": 0,
            "event": "step-started", "step": step, "hosts": ["h"],
        }))
        .unwrap()
    }

    fn app() -> Arc<App> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        App::new(&listener, PathBuf::from("/nonexistent"), "r".into(), None)
    }

    #[test]
    fn a_viewer_up_to_date_sends_the_batch_formatted_once() {
        let app = app();
        app.push(["a", "b"].map(event));
        app.push(["c", "d", "e"].map(event));
        let journal = app.journal.lock().unwrap();
        let batch = journal.messages(2, 5);
        // The very buffer every other viewer sends too, not a copy.
        assert_eq!(batch.as_ptr(), journal.chunks[1].as_ptr());
        assert_eq!(batch, journal.chunks[1]);
        let text = String::from_utf8(batch.to_vec()).unwrap();
        assert!(text.starts_with("id: 2\ndata: {"), "{text}");
        assert_eq!(text.matches("id: ").count(), 3);
    }

    #[test]
    fn a_viewer_behind_or_back_gets_exactly_the_events_it_asks_for() {
        let app = app();
        app.push(["a", "b"].map(event));
        app.push(["c", "d", "e"].map(event));
        app.push(["f"].map(event));
        let journal = app.journal.lock().unwrap();
        let ids = |from, to| {
            let text = String::from_utf8(journal.messages(from, to).to_vec()).unwrap();
            assert!(text.ends_with("}\n\n"), "{text}");
            text.lines()
                .filter_map(|l| l.strip_prefix("id: "))
                .map(|n| n.parse::<usize>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(0, 6), [0, 1, 2, 3, 4, 5]);
        assert_eq!(ids(1, 2), [1]);
        assert_eq!(ids(1, 4), [1, 2, 3]);
        assert_eq!(ids(3, 4), [3]);
        assert_eq!(ids(4, 6), [4, 5]);
        assert_eq!(ids(5, 6), [5]);
    }

    #[test]
    fn the_board_folds_each_event_as_it_comes_into_what_a_fold_of_them_all_gives() {
        let app = app();
        let fold_of_all = |app: &App| {
            let journal = app.journal.lock().unwrap();
            assert_eq!(journal.view.folded(), journal.events.len());
            assert_eq!(journal.view, RunView::from_events(&journal.events));
            journal
                .view
                .steps
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>()
        };
        app.push(["a", "b"].map(event));
        assert_eq!(app.board().events, 2);
        app.push(["c"].map(event));
        assert_eq!(fold_of_all(&app), ["a", "b", "c"]);
        assert_eq!(app.board().events, 3);
        // Another journal in its place: nothing of the first one is left.
        app.start_over(["x", "y"].map(event).to_vec());
        assert_eq!(fold_of_all(&app), ["x", "y"]);
        assert_eq!(app.board().events, 2);
        assert_eq!(*app.state.borrow(), (2, false));
    }

    /// The run's end must not wait out the interval between batches: the
    /// process measured by the makespan ends with the board.
    #[test]
    fn the_board_stops_as_soon_as_the_run_ends_not_after_the_batch_interval() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let (live, mut sink) = Live::batched(
            listener,
            None,
            PathBuf::from("/nonexistent"),
            "r".into(),
            Duration::from_secs(3600),
        )
        .unwrap();
        sink.event(&event("a"));
        // The first event goes out at once; the next would wait an hour.
        std::thread::sleep(Duration::from_millis(200));
        sink.event(&event("b"));
        sink.finish();
        let (done, stopped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            live.stop();
            let _ = done.send(());
        });
        // A hang guard, not a timing: before, this waited the hour out.
        assert!(
            stopped.recv_timeout(Duration::from_secs(60)).is_ok(),
            "the board did not stop when the run ended"
        );
    }
}
