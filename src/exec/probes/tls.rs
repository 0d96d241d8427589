//! The `tls` probe: a TLS handshake that reports each check that failed
//! (trust, name, days of validity left) with the certificate's expiry date.
//!
//! OpenSSL, through the `openssl` crate that native-tls (ureq's TLS) already
//! builds: no second TLS stack, and the peer certificate (its dates and
//! names) can be read even when the chain is not trusted.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Ref, X509VerifyResult};

pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    /// The name the certificate must be for, also sent as SNI.
    pub server_name: &'a str,
    /// Trusted instead of the system roots.
    pub ca_file: Option<&'a Path>,
    pub min_days_valid: u32,
    /// Already connected (through a `via` host) instead of connecting.
    pub tunnel: Option<std::os::unix::net::UnixStream>,
}

/// What the certificate showed when every check passed, or which checks
/// failed and why, in an operator's words.
pub fn check(mut target: Target<'_>, timeout: Duration) -> Result<String, String> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    if let Some(path) = target.ca_file {
        builder.set_cert_store(ca_store(path)?);
    }
    let connector = builder.build();
    let mut config = connector
        .configure()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    // Every verification problem is recorded and the handshake goes on, so
    // that the certificate can be read and all failed checks named at once.
    let problems: Arc<Mutex<Vec<(X509VerifyResult, u32)>>> = Arc::default();
    let seen = Arc::clone(&problems);
    config.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
        if !ok && let Ok(mut seen) = seen.lock() {
            seen.push((ctx.error(), ctx.error_depth()));
        }
        true
    });
    // The timeout is for the network: setting up (loading the system
    // roots) can be slow on a loaded machine.
    let deadline = Instant::now() + timeout;
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let stream: Box<dyn ReadWrite> = match target.tunnel.take() {
        Some(s) => {
            let _ = s.set_read_timeout(Some(remaining()));
            let _ = s.set_write_timeout(Some(remaining()));
            Box::new(s)
        }
        None => {
            let s = connect(target.host, target.port, deadline, timeout)?;
            let _ = s.set_read_timeout(Some(remaining()));
            let _ = s.set_write_timeout(Some(remaining()));
            Box::new(s)
        }
    };
    let at = format!("{}:{}", target.host, target.port);
    let tls = match config.connect(target.server_name, stream) {
        Ok(tls) => tls,
        Err(HandshakeError::WouldBlock(_)) => {
            return Err(format!(
                "no TLS handshake from {at} within {}: the connection was accepted but the server did not answer",
                crate::model::Duration(timeout)
            ));
        }
        Err(HandshakeError::Failure(mid)) => {
            return Err(format!(
                "TLS handshake with {at} failed: {}",
                describe(mid.error())
            ));
        }
        Err(HandshakeError::SetupFailure(e)) => return Err(format!("cannot set up TLS: {e}")),
    };
    let cert = tls
        .ssl()
        .peer_certificate()
        .ok_or_else(|| format!("{at} sent no certificate"))?;
    let problems = problems.lock().map(|p| p.clone()).unwrap_or_default();
    judge(&target, &cert, &problems)
}

/// A connected stream, direct or through a `via` host.
trait ReadWrite: io::Read + io::Write + std::fmt::Debug {}
impl<T: io::Read + io::Write + std::fmt::Debug> ReadWrite for T {}

/// The CA certificates of a PEM file, as the only roots trusted.
pub(crate) fn ca_store(path: &Path) -> Result<openssl::x509::store::X509Store, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {shown}: {e}"))?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|e| format!("CA file {shown} is not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("CA file {shown} holds no certificate"));
    }
    let mut store = X509StoreBuilder::new().map_err(|e| format!("cannot set up TLS: {e}"))?;
    for cert in certs {
        store
            .add_cert(cert)
            .map_err(|e| format!("CA file {shown}: {e}"))?;
    }
    Ok(store.build())
}

fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, remaining) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() != io::ErrorKind::TimedOut => {
            format!("cannot connect to {addr}: {e}")
        }
        _ if addrs.is_empty() => format!("{host} has no address"),
        _ => format!(
            "no answer from {host}:{port} within {}",
            crate::model::Duration(timeout)
        ),
    })
}

/// OpenSSL's reason without its source file and line.
fn describe(e: &openssl::ssl::Error) -> String {
    if let Some(reason) = e
        .ssl_error()
        .and_then(|stack| stack.errors().first())
        .and_then(openssl::error::Error::reason)
    {
        return reason.to_string();
    }
    match e.io_error() {
        Some(io) => io.to_string(),
        None => "the server closed the connection".into(),
    }
}

#[derive(PartialEq, Eq)]
enum Check {
    Chain,
    Name,
    Dates,
}

fn judge(
    target: &Target<'_>,
    cert: &X509Ref,
    problems: &[(X509VerifyResult, u32)],
) -> Result<String, String> {
    let expiry = cert.not_after();
    let until = format_time(expiry);
    let left = Asn1Time::days_from_now(0)
        .and_then(|now| now.diff(expiry))
        .map_or_else(|_| "?".into(), |d| left(d.days, d.secs));
    // One complaint per check: OpenSSL's first is the cause, later ones
    // (e.g. "unable to verify the first certificate") follow from it.
    let mut failed: Vec<(Check, String)> = Vec::new();
    for (error, depth) in problems {
        let complaint = match (error.as_raw(), depth) {
            (
                openssl_sys::X509_V_ERR_HOSTNAME_MISMATCH
                | openssl_sys::X509_V_ERR_IP_ADDRESS_MISMATCH,
                _,
            ) => (
                Check::Name,
                format!(
                    "name mismatch: the certificate is for {}, not {}",
                    names(cert),
                    target.server_name
                ),
            ),
            (openssl_sys::X509_V_ERR_CERT_HAS_EXPIRED, 0) => (
                Check::Dates,
                format!("expired: the certificate expired on {until}"),
            ),
            (openssl_sys::X509_V_ERR_CERT_NOT_YET_VALID, 0) => (
                Check::Dates,
                format!(
                    "not yet valid: the certificate is valid from {}",
                    format_time(cert.not_before())
                ),
            ),
            (_, depth) => {
                let roots = target.ca_file.map_or_else(
                    || "the system roots".to_string(),
                    |p| p.display().to_string(),
                );
                let which = if *depth == 0 {
                    String::new()
                } else {
                    format!(" (certificate {depth} of the chain)")
                };
                (
                    Check::Chain,
                    format!("chain not trusted by {roots}: {error}{which}"),
                )
            }
        };
        if failed.iter().all(|(check, _)| *check != complaint.0) {
            failed.push(complaint);
        }
    }
    let deadline = Asn1Time::days_from_now(target.min_days_valid).ok();
    let short = deadline.is_some_and(|d| d.as_ref() > expiry);
    if short && failed.iter().all(|(check, _)| *check != Check::Dates) {
        failed.push((
            Check::Dates,
            format!(
                "expires too soon: {until}, in {left}, fewer than the {} days required",
                target.min_days_valid
            ),
        ));
    }
    if failed.is_empty() {
        Ok(format!(
            "certificate for {}, valid until {until} ({left} left)",
            names(cert)
        ))
    } else {
        let texts: Vec<String> = failed.into_iter().map(|(_, text)| text).collect();
        let mut text = texts.join("; ");
        if !text.contains(&until) {
            text.push_str(&format!(" (the certificate expires on {until})"));
        }
        Err(text)
    }
}

/// `29d 23h`, `5h`: enough to judge, without the seconds.
fn left(days: i32, secs: i32) -> String {
    let hours = secs / 3600;
    if days == 0 {
        format!("{hours}h")
    } else {
        format!("{days}d {hours}h")
    }
}

/// The names a certificate is for: its subject alternative names, else its
/// common name.
fn names(cert: &X509Ref) -> String {
    let mut names: Vec<String> = cert
        .subject_alt_names()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            n.dnsname().map(str::to_string).or_else(|| {
                n.ipaddress().and_then(|ip| match ip.len() {
                    4 => <[u8; 4]>::try_from(ip)
                        .ok()
                        .map(|b| std::net::Ipv4Addr::from(b).to_string()),
                    16 => <[u8; 16]>::try_from(ip)
                        .ok()
                        .map(|b| std::net::Ipv6Addr::from(b).to_string()),
                    _ => None,
                })
            })
        })
        .collect();
    if names.is_empty() {
        names = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .filter_map(|e| e.data().to_string().ok())
            .collect();
    }
    if names.is_empty() {
        "no name".into()
    } else {
        names.join(", ")
    }
}

/// `2026-12-02 03:36:18 UTC`.
fn format_time(time: &Asn1TimeRef) -> String {
    let Ok(diff) = Asn1Time::from_unix(0).and_then(|epoch| epoch.diff(time)) else {
        return time.to_string();
    };
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    let Ok(secs) = u64::try_from(secs) else {
        return time.to_string();
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}
