//! `smtp`: the 220 banner, EHLO, and with `starttls` the upgrade to TLS,
//! then QUIT, as a sending mail server would go through them.
//!
//! The contract gives `smtp` no CA field, so the certificate is checked as
//! `http` checks an `https` URL: against the system's trusted roots
//! (OpenSSL's, so `SSL_CERT_FILE` applies), for the name or address in
//! `host`. A mail server with a certificate from an internal PKI passes once
//! that CA is installed on the controller.
//!
//! Blocking I/O (native-tls, already used by `http`, is blocking): the
//! caller runs it on a blocking thread. Every read and write is bounded by
//! what is left of the probe's timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::redact::printable;

/// What the server said, in one line, or why the probe failed.
/// With `tunnel` (a connection through a `via` host, which EHLO names),
/// that stream instead of a connection from here.
pub fn probe(
    host: &str,
    port: u16,
    starttls: bool,
    timeout: Duration,
    tunnel: Option<(UnixStream, &str)>,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let (stream, hello_name) = match tunnel {
        Some((stream, via)) => (Wire::Tunnel(stream), via.to_string()),
        None => {
            let stream = connect(host, port, deadline, timeout)?;
            let local = stream.local_addr().map_err(|e| e.to_string())?;
            (Wire::Tcp(stream), address_literal(local))
        }
    };
    let mut s = Session {
        tcp: stream.try_clone().map_err(|e| e.to_string())?,
        io: BufReader::new(stream),
        deadline,
        timeout,
    };
    let banner = s.reply("banner")?;
    if banner.code != 220 {
        return Err(format!("expected a 220 banner, got {}", banner.shown()));
    }
    let ehlo = format!("EHLO {hello_name}\r\n");
    let hello = s.command(&ehlo, "EHLO")?;
    if hello.code != 250 {
        return Err(format!("EHLO refused: {}", hello.shown()));
    }
    if !starttls {
        s.quit();
        return Ok(banner.first());
    }
    if !hello.lines.iter().skip(1).any(|l| keyword(l) == "STARTTLS") {
        let offered: Vec<&str> = hello.lines.iter().skip(1).map(|l| keyword(l)).collect();
        return Err(format!(
            "the server does not offer STARTTLS (EHLO lists: {})",
            if offered.is_empty() {
                "nothing".into()
            } else {
                offered.join(", ")
            }
        ));
    }
    let go = s.command("STARTTLS\r\n", "STARTTLS")?;
    if go.code != 220 {
        return Err(format!("STARTTLS refused: {}", go.shown()));
    }
    // Bytes the server sent before the handshake would be read as if they
    // came over TLS (the STARTTLS command injection flaw): refuse them.
    if !s.io.buffer().is_empty() {
        return Err("the server sent data before the TLS handshake".into());
    }
    s.set_timeouts()?;
    let connector = native_tls::TlsConnector::new().map_err(|e| e.to_string())?;
    let tls = connector
        .connect(host, s.io.into_inner())
        .map_err(|e| match e {
            native_tls::HandshakeError::Failure(e) => {
                format!("TLS handshake after STARTTLS failed: {}", tls_reason(&e))
            }
            native_tls::HandshakeError::WouldBlock(_) => format!(
                "no TLS handshake within {}",
                crate::model::Duration(timeout)
            ),
        })?;
    let mut s = Session {
        tcp: s.tcp,
        io: BufReader::new(tls),
        deadline,
        timeout,
    };
    // RFC 3207: the session starts over; the server forgot the first EHLO.
    let again = s.command(&ehlo, "EHLO over TLS")?;
    if again.code != 250 {
        return Err(format!("EHLO over TLS refused: {}", again.shown()));
    }
    s.quit();
    Ok(format!("{}; STARTTLS, certificate trusted", banner.first()))
}

pub(super) fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .collect();
    let mut last = format!("`{host}` has no address");
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!(
                    "no connection to {address} within {}",
                    crate::model::Duration(timeout)
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = format!("connection refused: nothing listens on tcp {address}");
            }
            Err(e) => last = format!("cannot connect to {address}: {e}"),
        }
    }
    Err(last)
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3): the controller
/// has no name a mail server could check, only the address it came from.
fn address_literal(local: SocketAddr) -> String {
    match local {
        SocketAddr::V4(a) => format!("[{}]", a.ip()),
        SocketAddr::V6(a) => format!("[IPv6:{}]", a.ip()),
    }
}

/// The extension an EHLO line names: `STARTTLS`, `SIZE 10240000` -> `SIZE`.
fn keyword(line: &str) -> &str {
    line.get(4..)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

/// OpenSSL's message names its source file and error code; the operator
/// needs the reason, which native-tls appends in parentheses.
fn tls_reason(e: &native_tls::Error) -> String {
    let text = e.to_string();
    match (text.rfind(" ("), text.ends_with(')')) {
        (Some(at), true) if text.contains("certificate verify failed") => {
            format!("certificate not trusted: {}", &text[at + 2..text.len() - 1])
        }
        _ => text,
    }
}

/// A reply: its code and its lines as sent (`250-SIZE`, `250 HELP`).
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn first(&self) -> String {
        self.lines.first().cloned().unwrap_or_default()
    }

    fn shown(&self) -> String {
        format!("`{}`", self.first())
    }
}

/// Longest line read (RFC 5321 allows 512 bytes; some servers send more),
/// and most lines in one reply: a server that never ends one is not SMTP.
const MAX_LINE: u64 = 4096;
const MAX_LINES: usize = 200;

/// The connection: from here, or through a `via` host.
#[derive(Debug)]
enum Wire {
    Tcp(TcpStream),
    Tunnel(UnixStream),
}

impl Wire {
    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(match self {
            Self::Tcp(s) => Self::Tcp(s.try_clone()?),
            Self::Tunnel(s) => Self::Tunnel(s.try_clone()?),
        })
    }

    fn set_timeouts(&self, left: Duration) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s
                .set_read_timeout(Some(left))
                .and_then(|()| s.set_write_timeout(Some(left))),
            Self::Tunnel(s) => s
                .set_read_timeout(Some(left))
                .and_then(|()| s.set_write_timeout(Some(left))),
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Tunnel(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Tunnel(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.flush(),
            Self::Tunnel(s) => s.flush(),
        }
    }
}

struct Session<S> {
    /// The same socket, to bound each read and write by the deadline.
    tcp: Wire,
    io: BufReader<S>,
    deadline: Instant,
    timeout: Duration,
}

impl<S: Read + Write> Session<S> {
    fn set_timeouts(&self) -> Result<(), String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        // A zero timeout means "none" to the socket: keep a last millisecond.
        let left = left.max(Duration::from_millis(1));
        self.tcp.set_timeouts(left).map_err(|e| e.to_string())
    }

    fn command(&mut self, line: &str, what: &str) -> Result<Reply, String> {
        self.set_timeouts()?;
        self.io
            .get_mut()
            .write_all(line.as_bytes())
            .and_then(|()| self.io.get_mut().flush())
            .map_err(|e| self.io_error(&e, &format!("answer to {what}")))?;
        self.reply(&format!("answer to {what}"))
    }

    /// Reads one reply, its continuation lines (`250-`) up to the last
    /// (`250 `).
    fn reply(&mut self, waiting_for: &str) -> Result<Reply, String> {
        let mut lines = Vec::new();
        loop {
            self.set_timeouts()?;
            let mut raw = Vec::new();
            (&mut self.io)
                .take(MAX_LINE)
                .read_until(b'\n', &mut raw)
                .map_err(|e| self.io_error(&e, waiting_for))?;
            if raw.is_empty() {
                return Err(format!(
                    "the server closed the connection instead of sending the {waiting_for}"
                ));
            }
            let line = printable(String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']));
            let bytes = line.as_bytes();
            let is_reply = bytes.len() >= 3
                && bytes[..3].iter().all(u8::is_ascii_digit)
                && matches!(bytes.get(3), None | Some(b' ' | b'-'));
            let more = bytes.get(3) == Some(&b'-');
            let Some(code) = is_reply.then(|| line[..3].parse::<u16>().ok()).flatten() else {
                return Err(format!(
                    "expected an SMTP {waiting_for}, got `{}`",
                    shorten(&line)
                ));
            };
            lines.push(line);
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(format!("the {waiting_for} never ends"));
            }
        }
    }

    /// Says goodbye; the probe has seen what it came for, so a server that
    /// hangs up first does not fail it.
    fn quit(&mut self) {
        let _ = self.command("QUIT\r\n", "QUIT");
    }

    fn io_error(&self, e: &std::io::Error, waiting_for: &str) -> String {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                "no {waiting_for} within {}",
                crate::model::Duration(self.timeout)
            ),
            _ => format!("{e} while waiting for the {waiting_for}"),
        }
    }
}

pub(super) fn shorten(line: &str) -> String {
    const MAX: usize = 120;
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_string(),
    }
}
