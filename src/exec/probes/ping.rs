//! `ping`: ICMP echo from the controller. An unprivileged ICMP datagram
//! socket where the kernel allows it (`net.ipv4.ping_group_range`), a raw
//! socket otherwise (root or `CAP_NET_RAW`). Blocking: run it on a blocking
//! thread.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Echo requests go out this far apart at most, as ping(8) sends them.
const INTERVAL: Duration = Duration::from_secs(1);
const PAYLOAD: &[u8; 16] = b"runbook ping\0\0\0\0";

/// Sends `count` echo requests to `host`, and passes when at most
/// `max_loss` percent of them go unanswered within `timeout`. Says how many
/// replies came, or why the probe failed.
pub fn ping(host: &str, count: u32, max_loss: u32, timeout: Duration) -> Result<String, String> {
    let ip = resolve(host)?;
    let (socket, raw) = open(ip)?;
    let to = SockAddr::from(SocketAddr::new(ip, 0));
    socket
        .connect(&to)
        .map_err(|e| format!("cannot reach {ip}: {e}"))?;
    // A raw socket sees every echo reply of the machine: ours carry this
    // identifier. A datagram socket gets its own replies only (the kernel
    // sets the identifier). Probes run in parallel: each has its own.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let id = (std::process::id() as u16).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
    let interval = INTERVAL.min(timeout / count.max(1));
    let start = Instant::now();
    let deadline = start + timeout;
    let mut sent: u16 = 0;
    let mut replied = BTreeSet::new();
    let mut last_error = None;
    let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
    while replied.len() < count as usize {
        let now = Instant::now();
        let next_send = start + interval * u32::from(sent);
        if u32::from(sent) < count && now >= next_send {
            socket
                .send(&echo_request(ip, id, sent))
                .map_err(|e| format!("cannot send to {ip}: {e}"))?;
            sent += 1;
            continue;
        }
        if now >= deadline {
            break;
        }
        let wake = if u32::from(sent) < count {
            next_send.min(deadline)
        } else {
            deadline
        };
        socket
            .set_read_timeout(Some((wake - now).max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                // SAFETY: `recv` initialised the first `n` bytes.
                let packet: Vec<u8> = buf[..n]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                if let Some(seq) = echo_reply(ip, raw, id, &packet).filter(|s| *s < sent) {
                    replied.insert(seq);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // An ICMP error about an echo request (host unreachable): the
            // request is lost; say why.
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    let answered = replied.len() as u32;
    let lost = count - answered;
    if lost * 100 <= max_loss * count {
        return Ok(format!(
            "{answered} of {count} echo requests to {ip} answered"
        ));
    }
    let within = crate::model::Duration(timeout);
    let loss = lost * 100 / count;
    let why = last_error.map(|e| format!(" ({e})")).unwrap_or_default();
    Err(if answered == 0 {
        format!("no reply from {ip} to {count} echo requests within {within}{why}")
    } else {
        format!(
            "{lost} of {count} echo requests to {ip} unanswered within {within}: {loss}% loss, more than the {max_loss}% allowed{why}"
        )
    })
}

fn resolve(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("`{host}` has no address"))
}

/// An ICMP socket for `ip`, and whether it is raw (replies then come with
/// their IPv4 header, and other processes' replies too).
fn open(ip: IpAddr) -> Result<(Socket, bool), String> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    if let Ok(socket) = Socket::new(domain, Type::DGRAM, Some(protocol)) {
        return Ok((socket, false));
    }
    match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(socket) => Ok((socket, true)),
        Err(raw) if raw.kind() == ErrorKind::PermissionDenied => {
            // SAFETY: getegid cannot fail.
            let gid = unsafe { libc::getegid() };
            let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "unknown".into());
            Err(format!(
                "this process may not send ICMP echo requests: an unprivileged ICMP socket needs its group ({gid}) within sysctl net.ipv4.ping_group_range (now `{range}`), a raw socket needs root or CAP_NET_RAW"
            ))
        }
        Err(raw) => Err(format!("cannot open an ICMP socket: {raw}")),
    }
}

fn echo_request(ip: IpAddr, id: u16, seq: u16) -> Vec<u8> {
    let kind = if ip.is_ipv4() { 8 } else { 128 };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    // The kernel computes ICMPv6 checksums (they cover the IPv6 header).
    if ip.is_ipv4() {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The sequence number of an echo reply meant for us.
fn echo_reply(ip: IpAddr, raw: bool, id: u16, packet: &[u8]) -> Option<u16> {
    let icmp = if raw && ip.is_ipv4() {
        let header = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(header..)?
    } else {
        packet
    };
    let reply = if ip.is_ipv4() { 0 } else { 129 };
    if icmp.len() < 8 || icmp[0] != reply || icmp[1] != 0 {
        return None;
    }
    if raw && icmp[4..6] != id.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 1071 section 3, and a packet whose checksum
    /// makes the whole sum to zero.
    #[test]
    fn checksums_as_rfc_1071_computes_them() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        let packet = echo_request("127.0.0.1".parse().unwrap(), 0x1234, 7);
        assert_eq!(checksum(&packet), 0);
    }
}
