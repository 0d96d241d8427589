//! `dns`: one query with hickory-resolver, over UDP and again over TCP when
//! the answer comes back truncated. The system resolver (resolv.conf) when
//! no `server` is given; never the hosts file: the probe checks DNS. With
//! `via`, one query over TCP through the tunnel that host opened.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::load::runbook::DnsType;

/// `ADDR` or `ADDR:PORT` (`[ADDR]:PORT` for IPv6), port 53 by default.
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "is `{text}`, not an IP address with an optional port (`10.0.0.53`, `10.0.0.53:5353`, `[fd00::53]:53`)"
            )
        })
}

#[must_use]
pub const fn type_name(record: DnsType) -> &'static str {
    match record {
        DnsType::A => "A",
        DnsType::Aaaa => "AAAA",
        DnsType::Cname => "CNAME",
        DnsType::Mx => "MX",
        DnsType::Srv => "SRV",
        DnsType::Txt => "TXT",
        DnsType::Ptr => "PTR",
    }
}

/// Asks for `record` of `name`; passes when the answer has at least one
/// such record and, with `expect`, one of them is that value. Says what
/// the answer was, or why the probe failed.
pub async fn query(
    name: &str,
    record: DnsType,
    server: Option<&str>,
    expect: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let server = server
        .map(parse_server)
        .transpose()
        .map_err(|e| format!("`server` {e}"))?;
    let asked = match server {
        Some(address) => address.to_string(),
        None => "the system resolver".into(),
    };
    let resolver = resolver(server, timeout)?;
    let qname = qname(name, record)?;
    let kind = type_name(record);
    let rtype = record_type(record);
    let within = crate::model::Duration(timeout);
    let lookup = match tokio::time::timeout(timeout, resolver.lookup(qname, rtype)).await {
        Ok(Ok(lookup)) => lookup,
        Ok(Err(e)) => return Err(failure(&e, name, kind, &asked, within)),
        Err(_) => return Err(format!("no answer from {asked} within {within}")),
    };
    verdict(lookup.answers(), name, record, &asked, expect)
}

/// The same question over a stream a `via` host opened to the server:
/// one query over TCP (RFC 1035 4.2.2, a length before each message), as
/// a host of the site would ask. `asked` names the server and the host.
pub fn query_through(
    mut stream: std::os::unix::net::UnixStream,
    asked: &str,
    name: &str,
    record: DnsType,
    expect: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    use std::io::{ErrorKind, Read, Write};
    let within = crate::model::Duration(timeout);
    let mut question = Message::query();
    question.metadata.recursion_desired = true;
    question.add_query(Query::query(qname(name, record)?, record_type(record)));
    let bytes = question.to_vec().map_err(|e| e.to_string())?;
    let length = u16::try_from(bytes.len()).map_err(|_| format!("`{name}` is too long"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let framed = [length.to_be_bytes().as_slice(), &bytes].concat();
    stream
        .write_all(&framed)
        .map_err(|e| format!("sending the query to {asked} failed: {e}"))?;
    let read = |stream: &mut std::os::unix::net::UnixStream, buf: &mut [u8]| {
        stream.read_exact(buf).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                format!("no answer from {asked} within {within}")
            }
            ErrorKind::UnexpectedEof => format!("{asked} closed the connection without answering"),
            _ => format!("{asked}: {e}"),
        })
    };
    let mut length = [0u8; 2];
    read(&mut stream, &mut length)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    read(&mut stream, &mut answer)?;
    let reply = Message::from_vec(&answer)
        .map_err(|e| format!("{asked} sent what is not a DNS answer: {e}"))?;
    if reply.metadata.id != question.metadata.id {
        return Err(format!(
            "{asked} answered another query (id {})",
            reply.metadata.id
        ));
    }
    match reply.metadata.response_code {
        ResponseCode::NoError => verdict(&reply.answers, name, record, asked, expect),
        ResponseCode::NXDomain => Err(format!("`{name}` does not exist at {asked} (NXDOMAIN)")),
        code => Err(refused(code, name, asked)),
    }
}

/// A PTR query takes an address as well as its in-addr.arpa name.
fn qname(name: &str, record: DnsType) -> Result<Name, String> {
    match (record, name.parse::<IpAddr>()) {
        (DnsType::Ptr, Ok(ip)) => Ok(Name::from(ip)),
        _ => Name::from_utf8(name).map_err(|e| format!("`{name}` is not a domain name: {e}")),
    }
}

/// Whether the records of an answer pass: at least one of the type asked
/// and, with `expect`, one that is it.
fn verdict(
    records: &[Record],
    name: &str,
    record: DnsType,
    asked: &str,
    expect: Option<&str>,
) -> Result<String, String> {
    let kind = type_name(record);
    let rtype = record_type(record);
    let answers: Vec<Answer> = records
        .iter()
        .filter(|r| r.record_type() == rtype)
        .filter_map(|r| answer(&r.data))
        .collect();
    let shown = answers
        .iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if answers.is_empty() {
        return Err(format!("no {kind} record for `{name}` at {asked}"));
    }
    match expect {
        Some(expect) if !answers.iter().any(|a| a.matches(record, expect)) => Err(format!(
            "{kind} `{name}` is `{shown}` at {asked}, not `{expect}`"
        )),
        _ => Ok(format!("{kind} `{name}`: {shown}")),
    }
}

/// As dig shows a refusal: REFUSED, SERVFAIL.
fn refused(code: ResponseCode, name: &str, asked: &str) -> String {
    let code = format!("{code:?}").to_uppercase();
    format!("{asked} answered {code} for `{name}`")
}

fn resolver(server: Option<SocketAddr>, timeout: Duration) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match server {
        Some(address) => {
            let mut config = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut config.connections {
                connection.port = address.port();
            }
            Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![config]), provider)
        }
        None => Resolver::builder(provider)
            .map_err(|e| format!("cannot read the system resolver's configuration: {e}"))?,
    };
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.use_hosts_file = ResolveHosts::Never;
    options.cache_size = 0;
    builder.build().map_err(|e| e.to_string())
}

fn failure(
    e: &NetError,
    name: &str,
    kind: &str,
    asked: &str,
    within: crate::model::Duration,
) -> String {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(none))
            if none.response_code == ResponseCode::NXDomain =>
        {
            format!("`{name}` does not exist at {asked} (NXDOMAIN)")
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => {
            format!("no {kind} record for `{name}` at {asked}")
        }
        NetError::Dns(DnsError::ResponseCode(code)) => refused(*code, name, asked),
        NetError::Timeout => format!("no answer from {asked} within {within}"),
        NetError::Io(io) => format!("{asked}: {io}"),
        other => format!("{asked}: {other}"),
    }
}

const fn record_type(record: DnsType) -> RecordType {
    match record {
        DnsType::A => RecordType::A,
        DnsType::Aaaa => RecordType::AAAA,
        DnsType::Cname => RecordType::CNAME,
        DnsType::Mx => RecordType::MX,
        DnsType::Srv => RecordType::SRV,
        DnsType::Txt => RecordType::TXT,
        DnsType::Ptr => RecordType::PTR,
    }
}

/// One record of the answer, as shown, and the host name in it, which
/// `expect` may give alone (`mail.example` for `10 mail.example.`).
struct Answer {
    text: String,
    host: Option<String>,
}

fn answer(data: &RData) -> Option<Answer> {
    let (text, host) = match data {
        RData::A(a) => (a.0.to_string(), None),
        RData::AAAA(a) => (a.0.to_string(), None),
        RData::CNAME(n) => (n.0.to_string(), Some(n.0.to_string())),
        RData::PTR(n) => (n.0.to_string(), Some(n.0.to_string())),
        RData::MX(mx) => (
            format!("{} {}", mx.preference, mx.exchange),
            Some(mx.exchange.to_string()),
        ),
        RData::SRV(srv) => (
            format!(
                "{} {} {} {}",
                srv.priority, srv.weight, srv.port, srv.target
            ),
            Some(srv.target.to_string()),
        ),
        RData::TXT(txt) => (
            txt.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect(),
            None,
        ),
        _ => return None,
    };
    Some(Answer { text, host })
}

impl Answer {
    /// Addresses compare as addresses (`::1` is `0::1`), names without case
    /// or final dot, TXT by containing the text.
    fn matches(&self, record: DnsType, expect: &str) -> bool {
        let same_name = |a: &str| {
            a.trim_end_matches('.')
                .eq_ignore_ascii_case(expect.trim_end_matches('.'))
        };
        match record {
            DnsType::A | DnsType::Aaaa => {
                match (self.text.parse::<IpAddr>(), expect.parse::<IpAddr>()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                }
            }
            DnsType::Txt => self.text.contains(expect),
            _ => same_name(&self.text) || self.host.as_deref().is_some_and(same_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_server;

    #[test]
    fn a_server_is_an_address_with_port_53_unless_it_says_another() {
        let parsed = |s| parse_server(s).map(|a| a.to_string());
        assert_eq!(parsed("10.0.0.53"), Ok("10.0.0.53:53".into()));
        assert_eq!(parsed("10.0.0.53:5353"), Ok("10.0.0.53:5353".into()));
        assert_eq!(parsed("fd00::53"), Ok("[fd00::53]:53".into()));
        assert_eq!(parsed("[fd00::53]:5353"), Ok("[fd00::53]:5353".into()));
        assert!(parsed("ns1.example:53").is_err());
        assert!(parsed("10.0.0.53:99999").is_err());
    }
}
