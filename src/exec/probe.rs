//! Probes: a command's exit status and output, a TCP connect, an HTTP GET.
//! `tcp` and `http` run from the controller.

use std::time::{Duration, Instant};

use minijinja::Value;

use super::transport::{Become, Exit, Job, Output, Transport};
use crate::model::{Host, Probe, ProbeKind, StdoutMatch};
use crate::template::Templates;

pub struct ProbeResult {
    pub passed: bool,
    /// What was probed, rendered (secrets still in it: redact before output).
    pub what: String,
    pub detail: Option<String>,
    pub output: Option<Output>,
    pub duration: Duration,
}

pub async fn probe(
    probe: &Probe,
    host: &Host,
    context: &Value,
    templates: &Templates,
    transport: &dyn Transport,
    tag: &str,
    r#become: Option<&Become>,
) -> ProbeResult {
    let started = Instant::now();
    let failed = |what: String, detail: String| ProbeResult {
        passed: false,
        what,
        detail: Some(detail),
        output: None,
        duration: started.elapsed(),
    };
    match &probe.kind {
        ProbeKind::Command { command, stdout } => {
            let rendered = match templates.render(*command, context) {
                Ok(r) => r,
                Err(e) => return failed(templates.source(*command).into(), e),
            };
            let job = Job {
                command: &rendered,
                timeout: Some(probe.timeout.std()),
                tag,
                r#become,
            };
            match transport.exec(host, job).await {
                Ok(output) => {
                    // Trailing newlines are not content: `^2$` matches `2\n`.
                    let text = String::from_utf8_lossy(&output.stdout);
                    let text = text.trim_end_matches(['\n', '\r']);
                    let (passed, detail) = match (&output.exit, stdout) {
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
                    };
                    ProbeResult {
                        passed,
                        what: rendered,
                        detail,
                        output: Some(output),
                        duration: started.elapsed(),
                    }
                }
                Err(e) => failed(rendered, e.to_string()),
            }
        }
        ProbeKind::Tcp { port, host: target } => {
            let address = match target.map(|t| templates.render(t, context)) {
                Some(Ok(a)) => a,
                Some(Err(e)) => return failed(format!("tcp port {port}"), e),
                None => host.address.clone(),
            };
            let what = format!("tcp {address}:{port}");
            if !transport.is_real() {
                return failed(what, "dry-run".into());
            }
            match tokio::time::timeout(
                probe.timeout.std(),
                tokio::net::TcpStream::connect((address.as_str(), *port)),
            )
            .await
            {
                Ok(Ok(_)) => ProbeResult {
                    passed: true,
                    what,
                    detail: None,
                    output: None,
                    duration: started.elapsed(),
                },
                Ok(Err(e)) => failed(what, e.to_string()),
                Err(_) => failed(
                    what,
                    format!(
                        "no answer within {}",
                        crate::model::Duration(probe.timeout.std())
                    ),
                ),
            }
        }
        ProbeKind::Http {
            url,
            status,
            body_contains,
        } => {
            let mut url = match templates.render(*url, context) {
                Ok(u) => u,
                Err(e) => return failed("http".into(), e),
            };
            if url.starts_with('/') {
                url = format!("http://{}{url}", host.address);
            }
            let what = format!("http GET {url}");
            if !transport.is_real() {
                return failed(what, "dry-run".into());
            }
            let timeout = probe.timeout.std();
            let expected = *status;
            let needle = body_contains.clone();
            let target = url.clone();
            let result = tokio::task::spawn_blocking(move || {
                http_get(&target, timeout, expected, needle.as_deref())
            })
            .await;
            match result {
                Ok(Ok(())) => ProbeResult {
                    passed: true,
                    what,
                    detail: None,
                    output: None,
                    duration: started.elapsed(),
                },
                Ok(Err(e)) => failed(what, e),
                Err(e) => failed(what, e.to_string()),
            }
        }
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
