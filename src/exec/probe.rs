//! Probes: a command's exit status and output, a TCP connect (and
//! exchange), an HTTP request, a TLS handshake, ICMP echo, a DNS query,
//! SMTP and SIP. All but `command` run from the controller.

use std::path::Path;
use std::time::{Duration, Instant};

use minijinja::Value;

use super::probes;
use super::transport::{Become, Exit, Job, Output, Transport};
use crate::load::runbook::DnsType;
use crate::model::runbook::HttpMethod;
use crate::model::{Host, Probe, ProbeKind, SipTransport, StdoutMatch};
use crate::template::{TemplateId, Templates};

pub struct ProbeResult {
    pub passed: bool,
    /// What was probed, rendered (secrets still in it: redact before output).
    pub what: String,
    pub detail: Option<String>,
    pub output: Option<Output>,
    pub duration: Duration,
}

/// A probe to run on a host, and what it is for.
pub struct ProbeJob<'a> {
    pub probe: &'a Probe,
    pub context: &'a Value,
    pub templates: &'a Templates,
    pub tag: &'a str,
    /// A `check` that decides whether a `run` happens (a rehearsal answers
    /// it "no", so that the run shows).
    pub before_run: bool,
    /// `command` probes go through sudo when the host or step says so.
    pub r#become: Option<&'a Become>,
}

/// A probe with its templates rendered.
pub enum Rendered<'a> {
    Command {
        command: String,
        stdout: Option<&'a StdoutMatch>,
    },
    Tcp {
        address: String,
        port: u16,
        send: Option<String>,
        expect: Option<&'a str>,
    },
    Http {
        url: String,
        status: &'a [u16],
        body_contains: Option<&'a str>,
        method: HttpMethod,
        ca_file: Option<&'a Path>,
    },
    Tls {
        address: String,
        port: u16,
        server_name: String,
        ca_file: Option<&'a Path>,
        min_days_valid: u32,
    },
    Smtp {
        address: String,
        port: u16,
        starttls: bool,
    },
    Sip {
        address: String,
        port: u16,
        transport: SipTransport,
    },
    Ping {
        address: String,
        count: u32,
        max_loss: u32,
    },
    Dns {
        name: String,
        record: DnsType,
        server: Option<String>,
        expect: Option<String>,
    },
}

impl Rendered<'_> {
    /// What was probed, as events and logs show it.
    #[must_use]
    pub fn what(&self) -> String {
        match self {
            Self::Command { command, .. } => command.clone(),
            Self::Tcp { address, port, .. } => format!("tcp {address}:{port}"),
            Self::Http { url, method, .. } => format!("http {} {url}", method.as_str()),
            Self::Tls {
                address,
                port,
                server_name,
                ..
            } if server_name != address => format!("tls {address}:{port} ({server_name})"),
            Self::Tls { address, port, .. } => format!("tls {address}:{port}"),
            Self::Smtp {
                address,
                port,
                starttls,
            } => format!(
                "smtp {address}:{port}{}",
                if *starttls { " starttls" } else { "" }
            ),
            Self::Sip {
                address,
                port,
                transport,
            } => format!(
                "sip {} {address}:{port}",
                match transport {
                    SipTransport::Udp => "udp",
                    SipTransport::Tcp => "tcp",
                }
            ),
            Self::Ping { address, .. } => format!("ping {address}"),
            Self::Dns {
                name,
                record,
                server,
                ..
            } => {
                let kind = super::probes::dns::type_name(*record);
                match server {
                    Some(server) => format!("dns {kind} {name} @{server}"),
                    None => format!("dns {kind} {name}"),
                }
            }
        }
    }
}

/// Renders a probe's templates; a template that fails gives what it was
/// (unrendered) and why.
pub fn render<'a>(job: &ProbeJob<'a>, host: &Host) -> Result<Rendered<'a>, (String, String)> {
    let templates = job.templates;
    match &job.probe.kind {
        ProbeKind::Command { command, stdout } => templates
            .render(*command, job.context)
            .map(|command| Rendered::Command {
                command,
                stdout: stdout.as_ref(),
            })
            .map_err(|e| (templates.source(*command).into(), e)),
        ProbeKind::Tcp {
            port,
            host: target,
            send,
            expect,
        } => {
            let address = address(job, host, *target, || format!("tcp port {port}"))?;
            let send = send
                .map(|s| templates.render(s, job.context))
                .transpose()
                .map_err(|e| (format!("tcp port {port}"), e))?;
            Ok(Rendered::Tcp {
                address,
                port: *port,
                send,
                expect: expect.as_deref(),
            })
        }
        ProbeKind::Http {
            url,
            status,
            body_contains,
            method,
            ca_file,
        } => {
            let mut url = templates
                .render(*url, job.context)
                .map_err(|e| ("http".to_string(), e))?;
            if url.starts_with('/') {
                url = format!("http://{}{url}", host.address);
            }
            Ok(Rendered::Http {
                url,
                status,
                body_contains: body_contains.as_deref(),
                method: *method,
                ca_file: ca_file.as_deref(),
            })
        }
        ProbeKind::Tls {
            host: target,
            port,
            server_name,
            ca_file,
            min_days_valid,
        } => {
            let address = address(job, host, *target, || format!("tls port {port}"))?;
            let server_name = match server_name.map(|t| templates.render(t, job.context)) {
                Some(Ok(name)) => name,
                Some(Err(e)) => return Err((format!("tls {address}:{port}"), e)),
                None => address.clone(),
            };
            Ok(Rendered::Tls {
                address,
                port: *port,
                server_name,
                ca_file: ca_file.as_deref(),
                min_days_valid: *min_days_valid,
            })
        }
        ProbeKind::Smtp {
            host: target,
            port,
            starttls,
        } => Ok(Rendered::Smtp {
            address: address(job, host, *target, || format!("smtp port {port}"))?,
            port: *port,
            starttls: *starttls,
        }),
        ProbeKind::Sip {
            host: target,
            port,
            transport,
        } => Ok(Rendered::Sip {
            address: address(job, host, *target, || format!("sip port {port}"))?,
            port: *port,
            transport: *transport,
        }),
        ProbeKind::Ping {
            host: target,
            count,
            max_loss,
        } => {
            let address = address(job, host, *target, || "ping".into())?;
            Ok(Rendered::Ping {
                address,
                count: *count,
                max_loss: *max_loss,
            })
        }
        ProbeKind::Dns {
            name,
            record,
            server,
            expect,
        } => {
            let render = |id: TemplateId| {
                templates
                    .render(id, job.context)
                    .map_err(|e| ("dns".to_string(), e))
            };
            Ok(Rendered::Dns {
                name: render(*name)?,
                record: *record,
                server: server.map(render).transpose()?,
                expect: expect.map(render).transpose()?,
            })
        }
    }
}

/// A network probe's `host`, rendered, or the target's address; `what`
/// names the probe in the error of a template that fails.
fn address(
    job: &ProbeJob<'_>,
    host: &Host,
    target: Option<TemplateId>,
    what: impl FnOnce() -> String,
) -> Result<String, (String, String)> {
    match target {
        Some(t) => job
            .templates
            .render(t, job.context)
            .map_err(|e| (what(), e)),
        None => Ok(host.address.clone()),
    }
}

/// Runs a probe for real: commands through `transport`, `tcp` and `http`
/// from the controller.
pub async fn probe<T: Transport + ?Sized>(
    transport: &T,
    host: &Host,
    job: ProbeJob<'_>,
) -> ProbeResult {
    let started = Instant::now();
    let failed = |what: String, detail: String| ProbeResult {
        passed: false,
        what,
        detail: Some(detail),
        output: None,
        duration: started.elapsed(),
    };
    let passed = |what: String| ProbeResult {
        passed: true,
        what,
        detail: None,
        output: None,
        duration: started.elapsed(),
    };
    // What the server said goes in `detail` (the journal keeps it), as
    // a rehearsal's "dry-run" does.
    let saw = |what: String, result: Result<String, String>| match result {
        Ok(seen) => ProbeResult {
            passed: true,
            what,
            detail: Some(seen),
            output: None,
            duration: started.elapsed(),
        },
        Err(why) => failed(what, why),
    };
    let rendered = match render(&job, host) {
        Ok(r) => r,
        Err((what, why)) => return failed(what, why),
    };
    let what = rendered.what();
    let timeout = job.probe.timeout.std();
    let via = job.probe.via.as_deref();
    let what = match via {
        Some(via) => format!("{what} via {via}"),
        None => what,
    };
    match rendered {
        Rendered::Command { command, stdout } => {
            let exec = Job {
                command: &command,
                timeout: Some(timeout),
                tag: job.tag,
                r#become: job.r#become,
            };
            match transport.exec(host, exec).await {
                Ok(output) => {
                    let (passed, detail) = judge(&output, stdout);
                    ProbeResult {
                        passed,
                        what,
                        detail,
                        output: Some(output),
                        duration: started.elapsed(),
                    }
                }
                Err(e) => failed(what, e.to_string()),
            }
        }
        Rendered::Tcp {
            address,
            port,
            send,
            expect,
        } => {
            let connect = async {
                let stream: Box<dyn AsyncStream> = match via {
                    Some(via) => {
                        let s = transport.tunnel(via, &address, port, timeout).await?;
                        s.set_nonblocking(true)
                            .and_then(|()| tokio::net::UnixStream::from_std(s))
                            .map(Box::new)
                            .map_err(|e| e.to_string())?
                    }
                    None => tokio::net::TcpStream::connect((address.as_str(), port))
                        .await
                        .map(Box::new)
                        .map_err(|e| e.to_string())?,
                };
                Ok(stream)
            };
            match super::probes::tcp::probe(connect, send.as_deref(), expect, timeout).await {
                Ok(()) => passed(what),
                Err(e) => failed(what, e),
            }
        }
        Rendered::Http {
            url,
            status,
            body_contains,
            method,
            ca_file,
        } => {
            let request = HttpRequest {
                url,
                method,
                status: status.to_vec(),
                body_contains: body_contains.map(str::to_string),
                ca_file: ca_file.map(Path::to_path_buf),
            };
            let tunnel = match via {
                Some(via) => match http_target(&request.url) {
                    Ok((host, port, _)) => match tunnel(transport, via, &host, port, timeout).await
                    {
                        Ok(stream) => Some(stream),
                        Err(e) => return failed(what, e),
                    },
                    Err(e) => return failed(what, e),
                },
                None => None,
            };
            let result = tokio::task::spawn_blocking(move || match tunnel {
                Some(stream) => http_through(&request, stream, timeout),
                None => http(&request, timeout),
            })
            .await;
            match result {
                Ok(Ok(())) => passed(what),
                Ok(Err(e)) => failed(what, e),
                Err(e) => failed(what, e.to_string()),
            }
        }
        Rendered::Tls {
            address,
            port,
            server_name,
            ca_file,
            min_days_valid,
        } => {
            let ca_file = ca_file.map(Path::to_path_buf);
            let tunnel = match via {
                Some(via) => match tunnel(transport, via, &address, port, timeout).await {
                    Ok(stream) => Some(stream),
                    Err(e) => return failed(what, e),
                },
                None => None,
            };
            let result = tokio::task::spawn_blocking(move || {
                super::probes::tls::check(
                    super::probes::tls::Target {
                        tunnel,
                        host: &address,
                        port,
                        server_name: &server_name,
                        ca_file: ca_file.as_deref(),
                        min_days_valid,
                    },
                    timeout,
                )
            })
            .await;
            match result {
                // What the certificate showed goes to the journal: its
                // expiry date is worth keeping.
                Ok(Ok(seen)) => ProbeResult {
                    detail: Some(seen),
                    ..passed(what)
                },
                Ok(Err(e)) => failed(what, e),
                Err(e) => failed(what, e.to_string()),
            }
        }
        Rendered::Ping {
            address,
            count,
            max_loss,
        } => {
            let result = tokio::task::spawn_blocking(move || {
                super::probes::ping::ping(&address, count, max_loss, timeout)
            })
            .await;
            match result {
                Ok(Ok(seen)) => saw(what, Ok(seen)),
                Ok(Err(e)) => failed(what, e),
                Err(e) => failed(what, e.to_string()),
            }
        }
        Rendered::Dns {
            name,
            record,
            server,
            expect,
        } => {
            let Some(via) = via else {
                let result = probes::dns::query(
                    &name,
                    record,
                    server.as_deref(),
                    expect.as_deref(),
                    timeout,
                )
                .await;
                return saw(what, result);
            };
            // Validation makes sure `server` is there; a template may
            // still render it wrong.
            let server = match server.as_deref().map(probes::dns::parse_server) {
                Some(Ok(server)) => server,
                Some(Err(e)) => return failed(what, format!("`server` {e}")),
                None => return failed(what, "`via` needs a `server` to ask".into()),
            };
            let stream = match tunnel(
                transport,
                via,
                &server.ip().to_string(),
                server.port(),
                timeout,
            )
            .await
            {
                Ok(stream) => stream,
                Err(e) => return failed(what, e),
            };
            let asked = format!("{server} from `{via}`");
            let talk = move || {
                probes::dns::query_through(
                    stream,
                    &asked,
                    &name,
                    record,
                    expect.as_deref(),
                    timeout,
                )
            };
            saw(what, blocking(talk, timeout).await)
        }
        Rendered::Smtp {
            address,
            port,
            starttls,
        } => {
            let tunnel = match via {
                Some(via) => match tunnel(transport, via, &address, port, timeout).await {
                    Ok(stream) => Some((stream, via.to_string())),
                    Err(e) => return failed(what, e),
                },
                None => None,
            };
            let talk = move || {
                let tunnel = tunnel.as_ref().map(|(s, via)| {
                    s.try_clone()
                        .map(|s| (s, via.as_str()))
                        .map_err(|e| e.to_string())
                });
                probes::smtp::probe(&address, port, starttls, timeout, tunnel.transpose()?)
            };
            saw(what, blocking(talk, timeout).await)
        }
        Rendered::Sip {
            address,
            port,
            transport,
        } => {
            let talk = move || probes::sip::probe(&address, port, transport, timeout);
            saw(what, blocking(talk, timeout).await)
        }
    }
}

/// A stream to `address:port` from `via`, bounded by the probe's timeout.
async fn tunnel<T: Transport + ?Sized>(
    transport: &T,
    via: &str,
    address: &str,
    port: u16,
    timeout: Duration,
) -> Result<std::os::unix::net::UnixStream, String> {
    tokio::time::timeout(timeout, transport.tunnel(via, address, port, timeout))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no tunnel from `{via}` within {}",
                crate::model::Duration(timeout)
            ))
        })
}

/// A direct connection or a tunnel through a `via` host, as one stream.
trait AsyncStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncStream for T {}

/// Runs a blocking conversation off the async threads. It bounds its own
/// reads and writes; the margin here only covers what it cannot bound (a
/// name lookup that hangs).
async fn blocking(
    talk: impl FnOnce() -> Result<String, String> + Send + 'static,
    timeout: Duration,
) -> Result<String, String> {
    let margin = Duration::from_secs(1);
    match tokio::time::timeout(timeout + margin, tokio::task::spawn_blocking(talk)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {}",
            crate::model::Duration(timeout)
        )),
    }
}

/// Whether a command probe's output passes: exit 0, and its stdout as
/// asked. Trailing newlines are not content: `^2$` matches `2\n`.
fn judge(output: &Output, stdout: Option<&StdoutMatch>) -> (bool, Option<String>) {
    let text = String::from_utf8_lossy(&output.stdout);
    let text = text.trim_end_matches(['\n', '\r']);
    match (&output.exit, stdout) {
        (Exit::Code(0), None) => (true, None),
        (Exit::Code(0), Some(StdoutMatch::Contains(s))) => {
            let ok = text.contains(s.as_str());
            (ok, (!ok).then(|| format!("stdout does not contain `{s}`")))
        }
        (Exit::Code(0), Some(StdoutMatch::Matches(re))) => {
            let ok = re.is_match(text);
            (ok, (!ok).then(|| format!("stdout does not match `{re}`")))
        }
        (exit, _) => (false, Some(describe_exit(exit))),
    }
}

struct HttpRequest {
    url: String,
    method: HttpMethod,
    /// Any of these passes; empty: any 2xx or 3xx.
    status: Vec<u16>,
    body_contains: Option<String>,
    ca_file: Option<std::path::PathBuf>,
}

fn http(request: &HttpRequest, timeout: Duration) -> Result<(), String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    // The system's roots unless `ca_file` names the only ones to trust;
    // native-tls, the TLS that is built in.
    let roots = match &request.ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!("CA file {} holds no certificate", path.display()));
            }
            RootCerts::new_with_certs(&certs)
        }
        None => RootCerts::PlatformVerifier,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::NativeTls)
                .root_certs(roots)
                .build(),
        )
        .build()
        .into();
    let call = ureq::http::Request::builder()
        .method(request.method.as_str())
        .uri(&request.url)
        .body(())
        .map_err(|e| e.to_string())
        .and_then(|r| agent.run(r).map_err(|e| describe_http_error(&e)));
    let mut response = call?;
    let code = response.status().as_u16();
    check_http(request, code, || {
        response
            .body_mut()
            .with_config()
            .limit(8 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())
    })
}

/// Whether the status is one that passes, and the body (read only when
/// asked) holds `body_contains`.
fn check_http(
    request: &HttpRequest,
    code: u16,
    body: impl FnOnce() -> Result<String, String>,
) -> Result<(), String> {
    let status_ok = if request.status.is_empty() {
        (200..400).contains(&code)
    } else {
        request.status.contains(&code)
    };
    if !status_ok {
        return Err(if request.status.is_empty() {
            format!("status {code}")
        } else {
            let expected: Vec<String> = request.status.iter().map(u16::to_string).collect();
            format!("status {code}, expected {}", expected.join(" or "))
        });
    }
    if let Some(needle) = &request.body_contains
        && !body()?.contains(needle.as_str())
    {
        return Err(format!("body does not contain `{needle}`"));
    }
    Ok(())
}

/// The host, port and whether TLS is used, of an `http` probe's URL.
fn http_target(url: &str) -> Result<(String, u16, bool), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("`{url}` is not an http:// or https:// URL")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("`{url}` names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((host, port, tls))
}

/// The request over a stream a `via` host opened: HTTP/1.0 (the body comes
/// whole, never chunked, and ends with the connection), TLS by OpenSSL
/// with the same trust as the `tls` probe. Redirects are not followed: a
/// 3xx passes unless `status` says otherwise.
fn http_through(
    request: &HttpRequest,
    stream: std::os::unix::net::UnixStream,
    timeout: Duration,
) -> Result<(), String> {
    use std::io::{Read, Write};
    let (host, _, tls) = http_target(&request.url)?;
    let uri: ureq::http::Uri = request.url.parse().map_err(|e| format!("{e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.as_str(), |a| a.as_str());
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut stream: Box<dyn ReadWrite> = if tls {
        let mut builder =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
                .map_err(|e| format!("cannot set up TLS: {e}"))?;
        if let Some(path) = &request.ca_file {
            builder.set_cert_store(probes::tls::ca_store(path)?);
        }
        let tls = builder
            .build()
            .connect(&host, stream)
            .map_err(|e| match e {
                openssl::ssl::HandshakeError::Failure(mid) => {
                    let verdict = mid.ssl().verify_result();
                    if verdict == openssl::x509::X509VerifyResult::OK {
                        format!("TLS handshake failed: {}", mid.error())
                    } else {
                        format!("TLS certificate not accepted: {}", verdict.error_string())
                    }
                }
                e => format!("TLS handshake failed: {e}"),
            })?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let head = format!(
        "{} {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: runbook\r\nAccept: */*\r\n\r\n",
        request.method.as_str()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("sending the request failed: {e}"))?;
    let mut answer = Vec::new();
    let read = stream.take(8 * 1024 * 1024).read_to_end(&mut answer);
    // A TLS server that closes without close_notify still sent its answer.
    if let Err(e) = read
        && answer.is_empty()
    {
        return Err(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no answer within {}", crate::model::Duration(timeout))
            }
            _ => format!("reading the answer failed: {e}"),
        });
    }
    let status_line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let code = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            if answer.is_empty() {
                "the server closed the connection without answering".to_string()
            } else {
                format!("not an HTTP answer: `{}`", probes::excerpt(&answer))
            }
        })?;
    let body_at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    check_http(request, code, || {
        Ok(String::from_utf8_lossy(&answer[body_at..]).into_owned())
    })
}

/// A connected stream, direct or through a `via` host.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

/// ureq's error, with OpenSSL's certificate verdict brought forward: its
/// text ends with the reason in parentheses, after source file and line.
fn describe_http_error(e: &ureq::Error) -> String {
    let text = e.to_string();
    if text.contains("certificate verify failed") {
        let reason = text
            .rsplit_once('(')
            .map_or(text.as_str(), |(_, r)| r.trim_end_matches(')'));
        return format!("TLS certificate not accepted: {reason}");
    }
    // `native-tls: error:CODE:LIBRARY:FUNCTION:REASON:FILE:LINE:...`
    if let Some(rest) = text.strip_prefix("native-tls: error:")
        && let Some(reason) = rest.split(':').nth(3)
    {
        return format!("TLS handshake failed: {reason}");
    }
    text
}

#[must_use]
pub fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit status {code}"),
        Exit::Signal(sig) => format!("killed by signal {sig}"),
        Exit::TimedOut => "timed out".into(),
    }
}
