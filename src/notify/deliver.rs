//! Delivery: one thread per webhook posts its notifications in order,
//! retrying with exponential backoff for a bounded time. Results reach the
//! journal through the dispatcher's own channel while the run goes on; what
//! is left when it ends is handed back by [`Deliveries::finish`] to be
//! journaled by the launcher, so each delivery is journaled exactly once.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::Message;
use crate::events::EventKind;
use crate::model::{NotifyEvent, NotifyFormat};
use crate::redact::Redactor;

/// How long one notification is retried, e.g. `30s` (humantime); two
/// minutes unless set.
pub const RETRY_FOR_VAR: &str = "RUNBOOK_NOTIFY_RETRY_FOR";
const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(120);
/// The longest the end of a run waits for notifications still queued.
const DRAIN_AT_MOST: Duration = Duration::from_secs(15);
/// One attempt's limit: a webhook that never answers must not hold the
/// notifications behind it.
const ATTEMPT_AT_MOST: Duration = Duration::from_secs(10);
const FIRST_DELAY: Duration = Duration::from_secs(1);
const LONGEST_DELAY: Duration = Duration::from_secs(30);

/// The retry bound: [`RETRY_FOR_VAR`], else two minutes.
#[must_use]
pub fn retry_for() -> Duration {
    std::env::var(RETRY_FOR_VAR)
        .ok()
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
        .unwrap_or(DEFAULT_RETRY_FOR)
}

/// A delivery not settled yet.
struct Open {
    kind: Settled,
    attempts: u32,
    last_error: Option<String>,
}

/// What a journal event of a delivery says, its result aside.
#[derive(Clone)]
struct Settled {
    notification: NotifyEvent,
    webhook: usize,
    format: NotifyFormat,
    about: Option<String>,
}

impl Settled {
    fn event(self, attempts: u32, result: Result<(), String>) -> EventKind {
        match result {
            Ok(()) => EventKind::NotificationSent {
                notification: self.notification,
                webhook: self.webhook,
                format: self.format,
                about: self.about,
                attempts,
            },
            Err(reason) => EventKind::NotificationFailed {
                notification: self.notification,
                webhook: self.webhook,
                format: self.format,
                about: self.about,
                attempts,
                reason,
            },
        }
    }
}

#[derive(Default)]
struct Outbox {
    /// Every settled delivery, in the order it was sent to the dispatcher.
    results: Vec<EventKind>,
    /// How many of `results` the dispatcher has journaled: always the first
    /// ones, its channel keeps their order.
    journaled: usize,
    /// The run is over and the launcher has taken what is left.
    sealed: bool,
    /// The operator interrupted the wait for what is left.
    interrupted: bool,
    open: BTreeMap<u64, Open>,
}

type Shared = Arc<(Mutex<Outbox>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, Outbox> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A webhook as its thread needs it.
pub struct Target {
    /// Its place in `notify`, from 1.
    pub index: usize,
    pub url: String,
    pub format: NotifyFormat,
    pub on: Vec<NotifyEvent>,
}

struct Job {
    id: u64,
    message: Arc<Message>,
}

/// The queues to the webhooks' threads (held by the reporter).
pub struct Queues {
    webhooks: Vec<(usize, NotifyFormat, Vec<NotifyEvent>, Sender<Job>)>,
    shared: Shared,
    next: u64,
}

/// What the launcher keeps to end the deliveries.
pub struct Deliveries {
    shared: Shared,
    retry_for: Duration,
}

/// Starts a thread per webhook. Results go to `journal`, the dispatcher's
/// channel; `redactor` masks the secrets in error messages.
#[must_use]
pub fn start(
    targets: Vec<Target>,
    journal: &UnboundedSender<EventKind>,
    redactor: &Redactor,
) -> (Queues, Deliveries) {
    let shared: Shared = Arc::default();
    let retry_for = retry_for();
    let webhooks = targets
        .into_iter()
        .map(|target| {
            let (tx, rx) = std::sync::mpsc::channel();
            let entry = (target.index, target.format, target.on.clone(), tx);
            let worker = Worker {
                target,
                shared: Arc::clone(&shared),
                journal: journal.clone(),
                redactor: redactor.clone(),
                retry_for,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("notify-{}", entry.0))
                .spawn(move || worker.serve(&rx));
            if let Err(e) = spawned {
                // Its notifications stay open and are journaled as failed.
                tracing::warn!("cannot start the thread of webhook {}: {e}", entry.0);
            }
            entry
        })
        .collect();
    (
        Queues {
            webhooks,
            shared: Arc::clone(&shared),
            next: 0,
        },
        Deliveries { shared, retry_for },
    )
}

impl Queues {
    /// Queues `message` for every webhook that wants its event.
    pub fn post(&mut self, message: &Arc<Message>) {
        for (index, format, on, tx) in &self.webhooks {
            if !on.contains(&message.event) {
                continue;
            }
            self.next += 1;
            lock(&self.shared).open.insert(
                self.next,
                Open {
                    kind: Settled {
                        notification: message.event,
                        webhook: *index,
                        format: *format,
                        about: message.about(),
                    },
                    attempts: 0,
                    last_error: None,
                },
            );
            let _ = tx.send(Job {
                id: self.next,
                message: Arc::clone(message),
            });
        }
    }

    /// The dispatcher journaled one of the results.
    pub fn journaled(&self) {
        lock(&self.shared).journaled += 1;
    }

    /// No more notifications: each thread ends once its queue is done.
    pub fn close(&mut self) {
        self.webhooks.clear();
    }
}

/// Cuts [`Deliveries::finish`]'s wait short, from another thread.
pub struct GiveUp(Shared);

impl GiveUp {
    pub fn now(&self) {
        lock(&self.0).interrupted = true;
        self.0.1.notify_all();
    }
}

impl Deliveries {
    #[must_use]
    pub fn give_up(&self) -> GiveUp {
        GiveUp(Arc::clone(&self.shared))
    }

    /// At the end of the run: waits a short while for what is still
    /// queued (unless given up on), then gives up on it. Returns the
    /// results not journaled yet, each failure given up on included.
    #[must_use]
    pub fn finish(self) -> Vec<EventKind> {
        let wait = self.retry_for.min(DRAIN_AT_MOST);
        let (mutex, condvar) = &*self.shared;
        let guard = mutex.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut outbox, _) = condvar
            .wait_timeout_while(guard, wait, |o| !o.open.is_empty() && !o.interrupted)
            .unwrap_or_else(PoisonError::into_inner);
        outbox.sealed = true;
        condvar.notify_all();
        let from = outbox.journaled.min(outbox.results.len());
        let mut late = outbox.results.split_off(from);
        let interrupted = outbox.interrupted;
        for open in std::mem::take(&mut outbox.open).into_values() {
            let reason = match open.last_error {
                _ if interrupted => "interrupted".into(),
                Some(e) => format!("the run ended before it was delivered (last attempt: {e})"),
                None => "the run ended before it was delivered".into(),
            };
            late.push(open.kind.event(open.attempts, Err(reason)));
        }
        late
    }
}

struct Worker {
    target: Target,
    shared: Shared,
    journal: UnboundedSender<EventKind>,
    redactor: Redactor,
    retry_for: Duration,
}

impl Worker {
    fn serve(self, jobs: &Receiver<Job>) {
        use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.retry_for.min(ATTEMPT_AT_MOST)))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::NativeTls)
                    .root_certs(RootCerts::PlatformVerifier)
                    .build(),
            )
            .build()
            .into();
        while let Ok(job) = jobs.recv() {
            if !self.deliver(&agent, &job) {
                return;
            }
        }
    }

    /// Posts one notification until it is taken or the bound is reached;
    /// `false` once the run has given up on every delivery.
    fn deliver(&self, agent: &ureq::Agent, job: &Job) -> bool {
        let body = super::payload::body(self.target.format, &job.message);
        let first = Instant::now();
        let mut delay = FIRST_DELAY;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let result = self.post(agent, &body);
            let mut outbox = lock(&self.shared);
            if outbox.sealed {
                return false;
            }
            let Err(reason) = result else { break Ok(()) };
            tracing::debug!(
                "notification {} to webhook {}: attempt {attempts} failed: {reason}",
                job.message.event.label(),
                self.target.index
            );
            if let Some(open) = outbox.open.get_mut(&job.id) {
                open.attempts = attempts;
                open.last_error = Some(reason.clone());
            }
            if first.elapsed() + delay > self.retry_for {
                break Err(format!(
                    "gave up after {}: {reason}",
                    crate::diagnostic::count(attempts as usize, "attempt")
                ));
            }
            // Sealing wakes it: the run's end does not wait out a delay.
            let (outbox, _) = self
                .shared
                .1
                .wait_timeout_while(outbox, delay, |o| !o.sealed)
                .unwrap_or_else(PoisonError::into_inner);
            if outbox.sealed {
                return false;
            }
            delay = (delay * 2).min(LONGEST_DELAY);
        };
        let mut outbox = lock(&self.shared);
        if outbox.sealed {
            return false;
        }
        if let Some(open) = outbox.open.remove(&job.id) {
            let event = open.kind.event(attempts, result);
            outbox.results.push(event.clone());
            // Sent under the lock, so the channel keeps `results`' order.
            let _ = self.journal.send(event);
        }
        self.shared.1.notify_all();
        true
    }

    /// One POST; the reason it failed in words that hold no URL or secret.
    fn post(&self, agent: &ureq::Agent, body: &str) -> Result<(), String> {
        let reason = match agent
            .post(&self.target.url)
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!("HTTP status {}", response.status().as_u16()),
            Err(e) => failure(&e),
        };
        Err(self
            .redactor
            .redact(&reason.replace(&self.target.url, "[webhook]")))
    }
}

/// What went wrong, for an operator reading the journal: ureq's own words
/// (and std's, for a failed name lookup: "uncategorized error") say little.
fn failure(e: &ureq::Error) -> String {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::HostNotFound => "name not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::BadUri(_) => "not a valid URL".into(),
        ureq::Error::Io(io) => match io.kind() {
            K::ConnectionRefused => "connection refused".into(),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                "connection closed without an answer".into()
            }
            K::TimedOut | K::WouldBlock => "timed out".into(),
            K::HostUnreachable | K::NetworkUnreachable => "host unreachable".into(),
            // std reports a failed getaddrinfo(3) with this text and no kind.
            _ => match io
                .to_string()
                .strip_prefix("failed to lookup address information: ")
            {
                Some("Name or service not known" | "No address associated with hostname") => {
                    "name not found".into()
                }
                Some(why) => format!("name not found ({why})"),
                None => io.to_string(),
            },
        },
        ureq::Error::NativeTls(tls) => {
            let text = tls.to_string();
            if text.contains("certificate verify failed") {
                // native-tls adds OpenSSL's verdict in parentheses.
                match text
                    .rsplit_once(" (")
                    .and_then(|(_, v)| v.strip_suffix(')'))
                {
                    Some(verdict) => format!("TLS certificate not trusted ({verdict})"),
                    None => "TLS certificate not trusted".into(),
                }
            } else {
                format!("TLS handshake failed: {text}")
            }
        }
        other => other.to_string(),
    }
}
