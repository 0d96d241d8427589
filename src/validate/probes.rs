//! Probe definitions: exactly one kind, matchers only where they apply.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::Sink;
use crate::diagnostic::{Problem, suggest};
use crate::load::Sp;
use crate::load::runbook::{RawDns, RawPing, RawProbe};
use crate::model::runbook::HttpMethod;
use crate::model::{Duration, Inventory, Probe, ProbeKind, StdoutMatch};
use crate::template::{Finding, Flavor, TemplateId, Templates};

pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_PINGS: u32 = 3;
/// Echo requests go out a second apart (as ping(8) sends them); more than
/// this is a soak test, not a probe.
pub const MAX_PINGS: u32 = 100;

pub fn probe(
    sink: &mut Sink<'_>,
    templates: &mut Templates,
    step: &str,
    on_controller: bool,
    raw: &Sp<RawProbe>,
) -> Option<Probe> {
    let kinds = usize::from(raw.command.is_some())
        + usize::from(raw.tcp.is_some())
        + usize::from(raw.http.is_some())
        + usize::from(raw.tls.is_some())
        + usize::from(raw.smtp.is_some())
        + usize::from(raw.sip.is_some())
        + usize::from(raw.ping.is_some())
        + usize::from(raw.dns.is_some());
    if kinds != 1 {
        sink.error(raw.pos, Problem::ProbeKind { found: kinds });
        return None;
    }
    if raw.attempts == Some(0) {
        sink.error(raw.pos, Problem::ZeroAttempts);
    }
    for (field, value) in [
        ("stdout_contains", &raw.stdout_contains),
        ("stdout_matches", &raw.stdout_matches),
    ] {
        if let (Some(v), None) = (value, &raw.command) {
            sink.error(v.pos, Problem::StdoutWithoutCommand { field });
        }
    }
    let kind = if let Some(command) = &raw.command {
        let command = compile(sink, templates, command, Flavor::Shell)?;
        let stdout = match (&raw.stdout_contains, &raw.stdout_matches) {
            (Some(text), _) => Some(StdoutMatch::Contains(text.value.clone())),
            (None, Some(pattern)) => match Regex::new(pattern) {
                Ok(re) => Some(StdoutMatch::Matches(re)),
                Err(e) => {
                    sink.error(
                        pattern.pos,
                        Problem::BadRegex {
                            reason: e
                                .to_string()
                                .lines()
                                .last()
                                .unwrap_or_default()
                                .trim()
                                .into(),
                        },
                    );
                    return None;
                }
            },
            (None, None) => None,
        };
        ProbeKind::Command { command, stdout }
    } else if let Some(tcp) = &raw.tcp {
        if on_controller && tcp.host.is_none() {
            sink.error(
                raw.pos,
                Problem::ControllerProbe {
                    step: step.into(),
                    probe: "tcp",
                    needs: "`host`",
                },
            );
        }
        let host = match &tcp.host {
            Some(h) => Some(compile(sink, templates, h, Flavor::Text)?),
            None => None,
        };
        let send = match &tcp.send {
            Some(s) => Some(compile(sink, templates, s, Flavor::Text)?),
            None => None,
        };
        if tcp.expect.as_deref() == Some("") {
            sink.error(
                raw.pos,
                Problem::ProbeField {
                    probe: "tcp",
                    field: "expect",
                    reason: "is empty, which any answer contains".into(),
                },
            );
        }
        ProbeKind::Tcp {
            port: tcp.port,
            host,
            send,
            expect: tcp.expect.clone(),
        }
    } else if let Some(http) = &raw.http {
        let full = http.url.starts_with("http://") || http.url.starts_with("https://");
        if on_controller && !full && !http.url.contains("{{") {
            sink.error(
                http.url.pos,
                Problem::ControllerProbe {
                    step: step.into(),
                    probe: "http",
                    needs: "a full `url` (`http://...` or `https://...`)",
                },
            );
        }
        let status = http.status.as_ref().map(|s| (s.pos, s.codes()));
        if let Some((pos, codes)) = &status {
            if codes.is_empty() {
                sink.error(*pos, Problem::NoHttpStatus);
            }
            for &code in codes.iter().filter(|c| !(100..=599).contains(*c)) {
                sink.error(*pos, Problem::BadHttpStatus { code });
            }
        }
        ProbeKind::Http {
            url: compile(sink, templates, &http.url, Flavor::Text)?,
            status: status.map(|(_, codes)| codes).unwrap_or_default(),
            body_contains: http.body_contains.clone(),
            method: http.method.unwrap_or(HttpMethod::Get),
            ca_file: http.ca_file.as_ref().map(|f| beside(sink.file, f)),
        }
    } else if let Some(tls) = &raw.tls {
        if on_controller && tls.host.is_none() {
            sink.error(
                raw.pos,
                Problem::ControllerProbe {
                    step: step.into(),
                    probe: "tls",
                    needs: "`host`",
                },
            );
        }
        let mut text = |t: &Option<Sp<String>>| match t {
            Some(t) => compile(sink, templates, t, Flavor::Text).map(Some),
            None => Some(None),
        };
        ProbeKind::Tls {
            host: text(&tls.host)?,
            port: tls.port.unwrap_or(443),
            server_name: text(&tls.server_name)?,
            ca_file: tls.ca_file.as_ref().map(|f| beside(sink.file, f)),
            min_days_valid: tls.min_days_valid.unwrap_or(0),
        }
    } else if let Some(smtp) = &raw.smtp {
        ProbeKind::Smtp {
            host: address(
                sink,
                templates,
                step,
                on_controller,
                raw,
                "smtp",
                &smtp.host,
            )?,
            port: smtp.port.unwrap_or(25),
            starttls: smtp.starttls,
        }
    } else if let Some(sip) = &raw.sip {
        ProbeKind::Sip {
            host: address(sink, templates, step, on_controller, raw, "sip", &sip.host)?,
            port: sip.port.unwrap_or(5060),
            transport: sip.transport,
        }
    } else if let Some(ping) = &raw.ping {
        ping_probe(sink, templates, step, on_controller, raw, ping)?
    } else {
        dns_probe(sink, templates, raw.dns.as_ref()?)?
    };
    Some(Probe {
        via: via(raw).map(|v| v.value.clone()),
        kind,
        attempts: raw.attempts.unwrap_or(1).max(1),
        interval: raw.interval.unwrap_or(DEFAULT_PROBE_INTERVAL),
        timeout: raw.timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT),
    })
}

/// A network probe's `via`.
fn via(raw: &RawProbe) -> Option<&Sp<String>> {
    [
        raw.tcp.as_ref().and_then(|p| p.via.as_ref()),
        raw.http.as_ref().and_then(|p| p.via.as_ref()),
        raw.tls.as_ref().and_then(|p| p.via.as_ref()),
        raw.smtp.as_ref().and_then(|p| p.via.as_ref()),
        raw.dns.as_ref().and_then(|p| p.via.as_ref()),
    ]
    .into_iter()
    .find_map(|via| via)
}

/// A `via` must name an inventory host: the connection is opened through
/// that host's SSH connection, or from the controller for a `local` host
/// (which is the controller).
pub fn via_host(sink: &mut Sink<'_>, inventory: &Inventory, raw: &RawProbe) {
    let Some(via) = via(raw) else {
        return;
    };
    if !inventory.hosts.contains_key(&via.value) {
        sink.error(
            via.pos,
            Problem::Unknown {
                what: "via host",
                name: via.value.clone(),
                suggestion: suggest(via, inventory.hosts.keys().map(String::as_str)),
            },
        );
    }
}

/// A network probe's `host`, which a step without targets must give:
/// `None` inside when it defaults to the target's address, `None` outside
/// when its template does not compile.
#[expect(clippy::option_option, reason = "absent versus broken")]
fn address(
    sink: &mut Sink<'_>,
    templates: &mut Templates,
    step: &str,
    on_controller: bool,
    raw: &Sp<RawProbe>,
    probe: &'static str,
    host: &Option<Sp<String>>,
) -> Option<Option<TemplateId>> {
    match host {
        Some(h) => Some(Some(compile(sink, templates, h, Flavor::Text)?)),
        None => {
            if on_controller {
                sink.error(
                    raw.pos,
                    Problem::ControllerProbe {
                        step: step.into(),
                        probe,
                        needs: "`host`",
                    },
                );
            }
            Some(None)
        }
    }
}

/// A path as written in `runbook`, relative to its folder.
fn beside(runbook: &Path, path: &str) -> PathBuf {
    runbook
        .parent()
        .map_or_else(|| PathBuf::from(path), |dir| dir.join(path))
}

fn ping_probe(
    sink: &mut Sink<'_>,
    templates: &mut Templates,
    step: &str,
    on_controller: bool,
    raw: &Sp<RawProbe>,
    ping: &RawPing,
) -> Option<ProbeKind> {
    if on_controller && ping.host.is_none() {
        sink.error(
            raw.pos,
            Problem::ControllerProbe {
                step: step.into(),
                probe: "ping",
                needs: "`host`",
            },
        );
    }
    let mut bad = |pos, field, reason: &str| {
        sink.error(
            pos,
            Problem::ProbeField {
                probe: "ping",
                field,
                reason: reason.into(),
            },
        );
    };
    if let Some(count) = ping
        .count
        .as_ref()
        .filter(|c| !(1..=MAX_PINGS).contains(&c.value))
    {
        bad(
            count.pos,
            "count",
            &format!("must be between 1 and {MAX_PINGS}"),
        );
    }
    if let Some(loss) = ping.max_loss.as_ref().filter(|l| l.value > 100) {
        bad(loss.pos, "max_loss", "is a percentage: at most 100");
    }
    let host = match &ping.host {
        Some(h) => Some(compile(sink, templates, h, Flavor::Text)?),
        None => None,
    };
    Some(ProbeKind::Ping {
        host,
        count: ping.count.as_ref().map_or(DEFAULT_PINGS, |c| c.value),
        max_loss: ping.max_loss.as_ref().map_or(0, |l| l.value),
    })
}

fn dns_probe(sink: &mut Sink<'_>, templates: &mut Templates, dns: &RawDns) -> Option<ProbeKind> {
    if let Some(server) = dns.server.as_ref().filter(|s| !s.contains("{{"))
        && let Err(reason) = crate::exec::probes::dns::parse_server(server)
    {
        sink.error(
            server.pos,
            Problem::ProbeField {
                probe: "dns",
                field: "server",
                reason,
            },
        );
    }
    // The site host asks the server it is told: its own resolver is not
    // the controller's to read.
    if let (Some(via), None) = (&dns.via, &dns.server) {
        sink.error(
            via.pos,
            Problem::ProbeField {
                probe: "dns",
                field: "via",
                reason: "needs `server`: the query goes over TCP from that host to that server"
                    .into(),
            },
        );
    }
    let mut optional = |text: &Option<Sp<String>>| match text {
        Some(t) => compile(sink, templates, t, Flavor::Text).map(Some),
        None => Some(None),
    };
    let server = optional(&dns.server)?;
    let expect = optional(&dns.expect)?;
    Some(ProbeKind::Dns {
        name: compile(sink, templates, &dns.name, Flavor::Text)?,
        record: dns.r#type.unwrap_or_default(),
        server,
        expect,
    })
}

pub fn compile(
    sink: &mut Sink<'_>,
    templates: &mut Templates,
    text: &Sp<String>,
    flavor: Flavor,
) -> Option<TemplateId> {
    if text.contains('\0') {
        sink.error(
            text.pos,
            Problem::NulByte {
                what: "this text".into(),
            },
        );
        return None;
    }
    match templates.add(text, flavor, text.pos) {
        Ok(id) => {
            for found in templates.findings(text, flavor) {
                let pos = sink.find_tag(text.pos, text, &found);
                let tag = found.tag;
                let problem = match found.finding {
                    Finding::Quoted(context) => Problem::QuotedValue { tag, context },
                    Finding::BlockInQuotes(context) => Problem::BlockInQuotes { tag, context },
                    Finding::SecretExpression => Problem::SecretExpression { tag },
                    Finding::MisplacedRaw => Problem::MisplacedRaw { tag },
                };
                sink.error(pos, problem);
            }
            Some(id)
        }
        Err(reason) => {
            sink.error(text.pos, Problem::Template { reason });
            None
        }
    }
}
