//! Host key verification against an OpenSSH known_hosts file. A mismatch
//! is never accepted; an unknown host only with `accept-new`.

use std::path::Path;

use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, Session};

use super::TransportError;
use crate::model::{Host, HostKeyChecking};

/// The key types recorded for `host`, in the algorithm names libssh2
/// negotiates, so the server is asked for a key we can check (libssh2
/// reports a mismatch when the file holds only a different key type).
#[must_use]
pub fn recorded_types(path: &Path, address: &str, port: u16) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let wanted = if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    };
    let mut types = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(mut patterns) = fields.next() else {
            continue;
        };
        if patterns.starts_with('#') || patterns.starts_with("@revoked") {
            continue;
        }
        if patterns == "@cert-authority" {
            continue;
        }
        if patterns.starts_with('@') {
            patterns = fields.next().unwrap_or_default();
        }
        let Some(key_type) = fields.next() else {
            continue;
        };
        if patterns.split(',').any(|p| p == wanted) && !types.iter().any(|t| t == key_type) {
            types.push(key_type.to_string());
        }
    }
    types
}

fn describe_key(session: &Session) -> String {
    let kind = session
        .host_key()
        .map_or("unknown", |(_, t)| key_type_name(t));
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", base64(h).trim_end_matches('=')))
        .unwrap_or_default();
    format!("{kind} {fingerprint}")
}

const fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// Verifies the key the server offered; with `accept-new`, records an
/// unknown host's key.
pub fn verify(session: &Session, host: &Host, known_hosts: &Path) -> Result<(), TransportError> {
    let shown = known_hosts.display().to_string();
    let (key, key_type) = session.host_key().ok_or_else(|| TransportError::Session {
        host: host.name.clone(),
        reason: "the server offered no host key".into(),
    })?;
    let mut known = session.known_hosts().map_err(|e| TransportError::Session {
        host: host.name.clone(),
        reason: e.to_string(),
    })?;
    if known_hosts.exists() {
        known
            .read_file(known_hosts, KnownHostFileKind::OpenSSH)
            .map_err(|e| TransportError::Session {
                host: host.name.clone(),
                reason: format!("cannot read {shown}: {e}"),
            })?;
    }
    match known.check_port(&host.address, host.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(TransportError::HostKeyMismatch {
            host: host.name.clone(),
            known_hosts: shown,
            offered: describe_key(session),
            expected: {
                let types = recorded_types(known_hosts, &host.address, host.port);
                if types.is_empty() {
                    "a different key".into()
                } else {
                    format!("a different {} key", types.join(" / "))
                }
            },
        }),
        CheckResult::NotFound | CheckResult::Failure
            if host.host_key_checking == HostKeyChecking::AcceptNew =>
        {
            let name = if host.port == 22 {
                host.address.clone()
            } else {
                format!("[{}]:{}", host.address, host.port)
            };
            append_key(known_hosts, &name, key_type, key).map_err(|e| TransportError::Session {
                host: host.name.clone(),
                reason: format!("cannot record the new host key in {shown}: {e}"),
            })?;
            tracing::warn!(host = %host.name, key = %describe_key(session), "recorded new host key in {shown}");
            Ok(())
        }
        CheckResult::NotFound | CheckResult::Failure => Err(TransportError::UnknownHostKey {
            host: host.name.clone(),
            known_hosts: shown,
            offered: describe_key(session),
        }),
    }
}

/// Appends one OpenSSH known_hosts line; the file is only ever appended to.
fn append_key(path: &Path, name: &str, key_type: HostKeyType, key: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{name} {} {}", key_type_name(key_type), base64(key))?;
    file.sync_all()
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
