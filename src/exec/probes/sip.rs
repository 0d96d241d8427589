//! `sip`: an OPTIONS request over UDP or TCP (RFC 3261 11). Any final
//! response passes, `404` or `405` included: the server is up and speaks
//! SIP, which is what a telephony layer needs before phones register. A
//! provisional response (`100 Trying`) is waited past.
//!
//! Blocking I/O on a blocking thread, bounded by the probe's timeout. Over
//! UDP the request is sent again at SIP's own intervals (500 ms, doubling
//! up to 4 s), as a phone would, since a datagram may be lost.

use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::model::SipTransport;
use crate::redact::printable;

/// Timer T1 and T2 of RFC 3261: first retransmission, longest interval.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Longest message read: a SIP response with its headers fits many times.
const MAX_MESSAGE: usize = 64 * 1024;

/// The status line of the final response, or why the probe failed.
pub fn probe(
    host: &str,
    port: u16,
    transport: SipTransport,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    match transport {
        SipTransport::Udp => udp(host, port, deadline, timeout),
        SipTransport::Tcp => tcp(host, port, deadline, timeout),
    }
}

fn udp(host: &str, port: u16, deadline: Instant, timeout: Duration) -> Result<String, String> {
    let target = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` has no address"))?;
    let any: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(any).map_err(|e| e.to_string())?;
    // Connected, so only the server's datagrams arrive, and an ICMP "port
    // unreachable" comes back as a refused connection.
    socket.connect(target).map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let (call_id, request) = options(host, port, "UDP", local);
    let refused = || format!("connection refused: nothing listens on udp {target}");
    let mut wait = T1;
    let mut buf = vec![0; MAX_MESSAGE];
    loop {
        match socket.send(request.as_bytes()) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(refused()),
            Err(e) => return Err(e.to_string()),
        }
        let resend = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(no_answer(timeout));
            }
            socket
                .set_read_timeout(Some(resend.min(deadline) - now))
                .map_err(|e| e.to_string())?;
            match socket.recv(&mut buf) {
                Ok(n) => match judge(&buf[..n], &call_id)? {
                    Some(status) => return Ok(status),
                    None => continue,
                },
                Err(e) if timed_out(&e) => break,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(refused());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        wait = (wait * 2).min(T2);
    }
}

fn tcp(host: &str, port: u16, deadline: Instant, timeout: Duration) -> Result<String, String> {
    let mut stream = super::smtp::connect(host, port, deadline, timeout)?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let (call_id, request) = options(host, port, "TCP", local);
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(left()))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        // Each complete message in what arrived so far, in order.
        while let Some(length) = message_length(&received)? {
            let message: Vec<u8> = received.drain(..length).collect();
            if let Some(status) = judge(&message, &call_id)? {
                return Ok(status);
            }
        }
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) if received.is_empty() => {
                return Err("the server closed the connection without answering".into());
            }
            Ok(0) => {
                return Err("the server closed the connection in the middle of its answer".into());
            }
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if timed_out(&e) => return Err(no_answer(timeout)),
            Err(e) => return Err(e.to_string()),
        }
        if received.len() > MAX_MESSAGE {
            return Err(format!("an answer longer than {MAX_MESSAGE} bytes"));
        }
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn no_answer(timeout: Duration) -> String {
    format!(
        "no answer to OPTIONS within {}",
        crate::model::Duration(timeout)
    )
}

/// The length of the first whole message in a TCP stream (headers, then
/// `Content-Length` bytes of body), `None` while it is incomplete. What is
/// not SIP fails as soon as its first line is in.
fn message_length(data: &[u8]) -> Result<Option<usize>, String> {
    if let Some(end) = data.iter().position(|&b| b == b'\n') {
        status_line(&data[..=end])?;
    }
    let Some(head) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let headers = String::from_utf8_lossy(&data[..head]);
    let body = header(&headers, "content-length", "l")
        .map_or(Ok(0), |v| v.parse::<usize>())
        .map_err(|_| "a response with an invalid Content-Length".to_string())?;
    let length = head + 4 + body;
    Ok((data.len() >= length).then_some(length))
}

/// A response's status line when it is final; `None` for a provisional
/// one or an answer to another request (a late one to a former probe).
fn judge(message: &[u8], call_id: &str) -> Result<Option<String>, String> {
    let (code, line) = status_line(message)?;
    let text = String::from_utf8_lossy(message);
    if header(&text, "call-id", "i") != Some(call_id) || code < 200 {
        return Ok(None);
    }
    Ok(Some(line))
}

/// The code and the status line (`SIP/2.0 200 OK`), or what came instead.
fn status_line(message: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(message);
    let line = text.lines().next().unwrap_or_default().trim_end();
    let code = line
        .strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..700).contains(c));
    match code {
        Some(code) => Ok((code, printable(line))),
        None => Err(format!(
            "expected a SIP response, got `{}`",
            super::smtp::shorten(&printable(line))
        )),
    }
}

/// A header's value by its name or its compact form (RFC 3261 7.3.3).
fn header<'a>(headers: &'a str, name: &str, compact: &str) -> Option<&'a str> {
    headers.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        (key.eq_ignore_ascii_case(name) || key.eq_ignore_ascii_case(compact)).then(|| value.trim())
    })
}

/// The request and its Call-ID. `rport` (RFC 3581) asks the server to
/// answer the port the request came from, whatever the Via says.
fn options(host: &str, port: u16, transport: &str, local: SocketAddr) -> (String, String) {
    let uri_host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.to_string(),
    };
    let token = || {
        format!(
            "{:016x}",
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        )
    };
    let call_id = format!("{}@runbook", token());
    let request = format!(
        "OPTIONS sip:{uri_host}:{port} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};rport;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:runbook@{local_host}>;tag={tag}\r\n\
         To: <sip:{uri_host}:{port}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         User-Agent: runbook\r\n\
         Content-Length: 0\r\n\r\n",
        branch = token(),
        tag = token(),
        local_host = match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        },
    );
    (call_id, request)
}
