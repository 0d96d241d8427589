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
            let address = match target.map(|t| templates.render(t, job.context)) {
                Some(Ok(a)) => a,
                Some(Err(e)) => return Err((format!("tcp port {port}"), e)),
                None => host.address.clone(),
            };
            // The template engine drops a final newline, which ends a
            // line-based protocol's command (`PING\r\n`): put it back.
            let send = send
                .map(|s| {
                    templates.render(s, job.context).map(|mut text| {
                        if templates.source(s).ends_with('\n') && !text.ends_with('\n') {
                            text.push('\n');
                        }
                        text
                    })
                })
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
            let address = match target.map(|t| templates.render(t, job.context)) {
                Some(Ok(a)) => a,
                Some(Err(e)) => return Err((format!("tls port {port}"), e)),
                None => host.address.clone(),
            };
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
            address: address(job, host, *target, "smtp", *port)?,
            port: *port,
            starttls: *starttls,
        }),
        ProbeKind::Sip {
            host: target,
            port,
            transport,
        } => Ok(Rendered::Sip {
            address: address(job, host, *target, "sip", *port)?,
            port: *port,
            transport: *transport,
        }),
        ProbeKind::Ping {
            host: target,
            count,
            max_loss,
        } => {
            let address = match target.map(|t| templates.render(t, job.context)) {
                Some(Ok(a)) => a,
                Some(Err(e)) => return Err(("ping".into(), e)),
                None => host.address.clone(),
            };
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

/// A network probe's `host`, rendered, or the target's address.
fn address(
    job: &ProbeJob<'_>,
    host: &Host,
    target: Option<TemplateId>,
    kind: &str,
    port: u16,
) -> Result<String, (String, String)> {
    match target {
        Some(t) => job
            .templates
            .render(t, job.context)
            .map_err(|e| (format!("{kind} port {port}"), e)),
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
            match super::probes::tcp::probe(&address, port, send.as_deref(), expect, timeout).await
            {
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
            let result = tokio::task::spawn_blocking(move || http(&request, timeout)).await;
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
            let result = tokio::task::spawn_blocking(move || {
                super::probes::tls::check(
                    &super::probes::tls::Target {
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
            let result = super::probes::dns::query(
                &name,
                record,
                server.as_deref(),
                expect.as_deref(),
                timeout,
            )
            .await;
            match result {
                Ok(seen) => saw(what, Ok(seen)),
                Err(e) => failed(what, e),
            }
        }
        Rendered::Smtp {
            address,
            port,
            starttls,
        } => {
            let talk = move || probes::smtp::probe(&address, port, starttls, timeout);
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
    if let Some(needle) = &request.body_contains {
        let body = response
            .body_mut()
            .with_config()
            .limit(8 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if !body.contains(needle.as_str()) {
            return Err(format!("body does not contain `{needle}`"));
        }
    }
    Ok(())
}

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
