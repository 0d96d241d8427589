//! Probes: a command's exit status and output, a TCP connect (and
//! exchange), an HTTP GET, ICMP echo, a DNS query. All but `command` run
//! from the controller.

use std::time::{Duration, Instant};

use minijinja::Value;

use super::transport::{Become, Exit, Job, Output, Transport};
use crate::load::runbook::DnsType;
use crate::model::{Host, Probe, ProbeKind, StdoutMatch};
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
        status: Option<u16>,
        body_contains: Option<&'a str>,
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
            Self::Http { url, .. } => format!("http GET {url}"),
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
        } => {
            let mut url = templates
                .render(*url, job.context)
                .map_err(|e| ("http".to_string(), e))?;
            if url.starts_with('/') {
                url = format!("http://{}{url}", host.address);
            }
            Ok(Rendered::Http {
                url,
                status: *status,
                body_contains: body_contains.as_deref(),
            })
        }
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
    // A pass that says what it saw (the addresses a name has): the journal
    // keeps it.
    let saw = |what: String, seen: String| ProbeResult {
        detail: Some(seen),
        ..passed(what)
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
        } => {
            let needle = body_contains.map(str::to_string);
            let result = tokio::task::spawn_blocking(move || {
                http_get(&url, timeout, status, needle.as_deref())
            })
            .await;
            match result {
                Ok(Ok(())) => passed(what),
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
                Ok(Ok(seen)) => saw(what, seen),
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
                Ok(seen) => saw(what, seen),
                Err(e) => failed(what, e),
            }
        }
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

fn http_get(
    url: &str,
    timeout: Duration,
    status: Option<u16>,
    body_contains: Option<&str>,
) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let status_ok = status.map_or((200..400).contains(&code), |s| s == code);
    if !status_ok {
        return Err(match status {
            Some(s) => format!("status {code}, expected {s}"),
            None => format!("status {code}"),
        });
    }
    if let Some(needle) = body_contains {
        let body = response
            .body_mut()
            .with_config()
            .limit(8 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if !body.contains(needle) {
            return Err(format!("body does not contain `{needle}`"));
        }
    }
    Ok(())
}

#[must_use]
pub fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit status {code}"),
        Exit::Signal(sig) => format!("killed by signal {sig}"),
        Exit::TimedOut => "timed out".into(),
    }
}
