//! Host key verification against an OpenSSH known_hosts file. The file is
//! read here, not by libssh2, which ignores `@revoked`, lets a bare `host`
//! line stand for every port, and knows no wildcards. A revoked or changed
//! key is never accepted; an unknown host only with `accept-new`.
//!
//! Lines are parsed by hand: the format is a whitespace split, and
//! `ssh-key`'s parser would add about 20 s of CPU to a clean release build
//! (its own `sha2`/`digest` generation) while still leaving hashed names to
//! be matched with HMAC-SHA1 here.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{KeyInit as _, Mac as _};
use sha2::Digest as _;
use ssh2::{MethodType, Session};

use super::TransportError;
use crate::model::{Host, HostKeyChecking};

/// What the file says about the key a host offered.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// A line for this host records this key.
    Known,
    /// An `@revoked` line (its number) holds this key.
    Revoked(usize),
    /// Lines for this host record only other keys: their types, and the
    /// first such line.
    Changed(Vec<String>, usize),
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Revoked,
    CertAuthority,
}

#[derive(Debug)]
struct Line {
    number: usize,
    marker: Option<Marker>,
    hosts: String,
    key_type: String,
    blob: Vec<u8>,
}

/// The name OpenSSH records a host under: the address, in brackets with
/// the port unless it is 22.
fn host_name(address: &str, port: u16) -> String {
    let address = address.to_ascii_lowercase();
    if port == 22 {
        address
    } else {
        format!("[{address}]:{port}")
    }
}

/// The usable lines of the file. A malformed line (a torn write, a stray
/// edit) is skipped with a warning, as OpenSSH does: it must not make every
/// host unreachable.
fn parse(text: &str, path: &Path) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let number = i + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            match parse_line(content, number) {
                Ok(line) => Some(line),
                Err(why) => {
                    warn_once(path, number, why);
                    None
                }
            }
        })
        .collect()
}

fn parse_line(content: &str, number: usize) -> Result<Line, &'static str> {
    let mut fields = content.split_whitespace().peekable();
    let marker = match fields.peek() {
        Some(&"@revoked") => Some(Marker::Revoked),
        Some(&"@cert-authority") => Some(Marker::CertAuthority),
        Some(m) if m.starts_with('@') => return Err("unknown marker"),
        _ => None,
    };
    if marker.is_some() {
        fields.next();
    }
    let (Some(hosts), Some(key_type), Some(encoded)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err("expected host patterns, a key type and a key");
    };
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| "the key is not valid base64")?;
    if key_type_of(&blob) != key_type {
        return Err("the key does not match its type");
    }
    Ok(Line {
        number,
        marker,
        hosts: hosts.to_string(),
        key_type: key_type.to_string(),
        blob,
    })
}

/// Every host reads the file: one warning per bad line is enough.
fn warn_once(path: &Path, number: usize, why: &str) {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let place = format!("{}:{number}", path.display());
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.get_or_insert_default().insert(place.clone()) {
        tracing::warn!("{place}: ignored line: {why}");
    }
}

/// Whether a line's host field names `name` (from `host_name`): a hashed
/// name (`|1|salt|hmac`), or comma-separated patterns with `*`, `?` and
/// `!` negation, as OpenSSH matches them.
fn matches(hosts: &str, name: &str) -> bool {
    if let Some(hashed) = hosts.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
            return false;
        };
        let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(name.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    let mut found = false;
    for pattern in hosts.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(pattern.to_ascii_lowercase().as_bytes(), name.as_bytes()) {
            if negated {
                return false;
            }
            found = true;
        }
    }
    found
}

/// `*` and `?` wildcards, in linear time (one backtracking point).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn judge(lines: &[Line], name: &str, offered: &[u8]) -> Verdict {
    let mut known = false;
    let mut others: Vec<String> = Vec::new();
    let mut first_other = 0;
    for line in lines {
        match line.marker {
            // Whatever its host patterns: a revoked key is compromised, and
            // no host may present it.
            Some(Marker::Revoked) if line.blob == offered => return Verdict::Revoked(line.number),
            // Host certificates are not supported by libssh2.
            Some(_) => {}
            None if matches(&line.hosts, name) => {
                if line.blob == offered {
                    known = true;
                } else {
                    if others.is_empty() {
                        first_other = line.number;
                    }
                    if !others.contains(&line.key_type) {
                        others.push(line.key_type.clone());
                    }
                }
            }
            None => {}
        }
    }
    if known {
        Verdict::Known
    } else if others.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Changed(others, first_other)
    }
}

/// The algorithm name inside an SSH public key blob (its first string).
fn key_type_of(blob: &[u8]) -> &str {
    blob.get(..4)
        .and_then(|len| {
            let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
            blob.get(4..4usize.checked_add(len)?)
        })
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or("unknown")
}

fn describe_key(blob: &[u8]) -> String {
    format!(
        "{} SHA256:{}",
        key_type_of(blob),
        STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob))
    )
}

/// The file's usable lines. Every host's login reads the file: with 1,000
/// hosts in it, parsing it again for each (base64 and all) cost 0.85 s of
/// CPU on the run's critical start, so the lines parsed from the same bytes
/// are kept. The bytes are read each time (a few microseconds): a file's
/// times are too coarse to tell an edit made in the same few milliseconds.
/// The shared lock keeps a line being appended by another host (`record`)
/// from being read half-written.
fn read(path: &Path) -> std::io::Result<Arc<[Line]>> {
    /// Per file: the bytes last read, and their lines.
    type Kept = HashMap<PathBuf, (Vec<u8>, Arc<[Line]>)>;
    static PARSED: Mutex<Option<Kept>> = Mutex::new(None);
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Arc::new([])),
        Err(e) => return Err(e),
    };
    // Without locks (some network file systems) lines are still whole:
    // see `record`.
    let _ = file.lock_shared();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    drop(file);
    // Held while parsing: the first logins would otherwise all parse it.
    let mut parsed = PARSED.lock().unwrap_or_else(PoisonError::into_inner);
    let parsed = parsed.get_or_insert_default();
    if let Some((seen, lines)) = parsed.get(path)
        && *seen == bytes
    {
        return Ok(Arc::clone(lines));
    }
    let lines: Arc<[Line]> = parse(&String::from_utf8_lossy(&bytes), path).into();
    parsed.insert(path.to_path_buf(), (bytes, Arc::clone(&lines)));
    Ok(lines)
}

/// Asks the server for the key types recorded for `host` first: libssh2
/// would otherwise pick its own favourite, and a host recorded with another
/// type would look changed. An RSA key is asked for with SHA-2 signatures
/// (`ssh-rsa`, SHA-1, is refused by OpenSSH since 8.8). The other types
/// follow, so a server without any recorded type still offers a key, and
/// is refused as changed rather than failing the handshake.
pub fn prefer_recorded(session: &Session, host: &Host, path: &Path) {
    let Ok(lines) = read(path) else {
        return;
    };
    let Ok(supported) = session.supported_algs(MethodType::HostKey) else {
        return;
    };
    let name = host_name(&host.address, host.port);
    let mut wanted: Vec<&str> = Vec::new();
    for line in lines.iter() {
        if line.marker.is_none() && matches(&line.hosts, &name) {
            let algorithms: &[&str] = match line.key_type.as_str() {
                "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256"],
                other => &[other],
            };
            for a in algorithms {
                if let Some(a) = supported.iter().find(|s| *s == a)
                    && !wanted.contains(a)
                {
                    wanted.push(a);
                }
            }
        }
    }
    if wanted.is_empty() {
        return;
    }
    for a in &supported {
        if !wanted.contains(a) {
            wanted.push(a);
        }
    }
    let _ = session.method_pref(MethodType::HostKey, &wanted.join(","));
}

/// Verifies the key the server offered; with `accept-new`, records an
/// unknown host's key.
pub fn verify(session: &Session, host: &Host, known_hosts: &Path) -> Result<(), TransportError> {
    let shown = known_hosts.display().to_string();
    let (offered, _) = session.host_key().ok_or_else(|| TransportError::Session {
        host: host.name.clone(),
        reason: "the server offered no host key".into(),
    })?;
    let name = host_name(&host.address, host.port);
    let lines = read(known_hosts).map_err(|e| TransportError::Session {
        host: host.name.clone(),
        reason: format!("cannot read {shown}: {e}"),
    })?;
    let mut verdict = judge(&lines, &name, offered);
    let mut recorded = false;
    if verdict == Verdict::Unknown && host.host_key_checking == HostKeyChecking::AcceptNew {
        verdict = record(known_hosts, &name, offered).map_err(|e| TransportError::Session {
            host: host.name.clone(),
            reason: format!("cannot record the new host key in {shown}: {e}"),
        })?;
        recorded = verdict == Verdict::Unknown;
    }
    match verdict {
        Verdict::Known => Ok(()),
        Verdict::Unknown if recorded => {
            tracing::warn!(host = %host.name, key = %describe_key(offered), "recorded new host key in {shown}");
            Ok(())
        }
        Verdict::Unknown => Err(TransportError::UnknownHostKey {
            host: host.name.clone(),
            known_hosts: shown,
            offered: describe_key(offered),
        }),
        Verdict::Revoked(line) => Err(TransportError::RevokedHostKey {
            host: host.name.clone(),
            known_hosts: format!("{shown}:{line}"),
            offered: describe_key(offered),
        }),
        Verdict::Changed(types, line) => Err(TransportError::HostKeyMismatch {
            host: host.name.clone(),
            known_hosts: format!("{shown}:{line}"),
            offered: describe_key(offered),
            expected: format!("a different {} key", types.join(" / ")),
        }),
    }
}

/// Serialises this process's writers (one thread per host); the file lock,
/// where the file system has locks, keeps out other processes that honour
/// it.
static WRITER: Mutex<()> = Mutex::new(());

/// Appends `name`'s key unless, read again under the lock, the file now
/// says something about it (another host with the same address, another
/// run); returns what the file said.
fn record(path: &Path, name: &str, offered: &[u8]) -> std::io::Result<Verdict> {
    let _one_writer = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let _ = file.lock();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let verdict = judge(
        &parse(&String::from_utf8_lossy(&bytes), path),
        name,
        offered,
    );
    if verdict != Verdict::Unknown {
        return Ok(verdict);
    }
    // A torn last line (a full disk, a crash) must not swallow this one.
    let fresh_line = if bytes.is_empty() || bytes.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    let line = format!(
        "{fresh_line}{name} {} {}\n",
        key_type_of(offered),
        STANDARD.encode(offered)
    );
    // One write on an O_APPEND file: the line lands whole even beside
    // writers that ignore the lock (ssh itself).
    let written = file.write(line.as_bytes())?;
    if written != line.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("only {written} of {} bytes written", line.len()),
        ));
    }
    file.sync_all()?;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut b = u32::try_from(kind.len()).unwrap().to_be_bytes().to_vec();
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn entry(hosts: &str, key: &[u8]) -> String {
        format!("{hosts} {} {}\n", key_type_of(key), STANDARD.encode(key))
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(hash))
    }

    fn verdict(text: &str, address: &str, port: u16, key: &[u8]) -> Verdict {
        judge(
            &parse(text, Path::new("kh")),
            &host_name(address, port),
            key,
        )
    }

    #[test]
    fn patterns_match_as_openssh_does() {
        assert!(matches("a.example,b.example", "b.example"));
        assert!(matches("*.example", "db.example"));
        assert!(matches("db?.example", "db1.example"));
        assert!(!matches("db?.example", "db.example"));
        assert!(!matches("*.example,!db.example", "db.example"));
        assert!(matches("[10.0.0.*]:2222", "[10.0.0.7]:2222"));
        assert!(!matches("[10.0.0.*]:2222", "[10.0.0.7]:22"));
        assert!(matches("DB.Example", "db.example"));
        assert!(matches("*a*a*a*a*a*a*a*a*a*a*a*a*", &"a".repeat(40)));
        assert!(!matches("*a*a*a*a*a*a*a*a*a*a*a*a*b", &"a".repeat(40)));
        assert!(matches(
            &hashed("[10.0.0.7]:2222", b"salt-salt"),
            "[10.0.0.7]:2222"
        ));
        assert!(!matches(
            &hashed("[10.0.0.7]:2222", b"salt-salt"),
            "10.0.0.7"
        ));
    }

    #[test]
    fn a_port_22_entry_is_not_an_entry_for_other_ports() {
        let key = blob("ssh-ed25519", b"k");
        let text = entry("10.0.0.7", &key);
        assert_eq!(verdict(&text, "10.0.0.7", 22, &key), Verdict::Known);
        assert_eq!(verdict(&text, "10.0.0.7", 2222, &key), Verdict::Unknown);
        let text = entry("[10.0.0.7]:2222", &key);
        assert_eq!(verdict(&text, "10.0.0.7", 2222, &key), Verdict::Known);
        assert_eq!(verdict(&text, "10.0.0.7", 22, &key), Verdict::Unknown);
        assert_eq!(
            verdict(&entry("::1", &key), "::1", 22, &key),
            Verdict::Known
        );
        assert_eq!(
            verdict(&entry("[::1]:2222", &key), "::1", 2222, &key),
            Verdict::Known
        );
    }

    #[test]
    fn any_recorded_key_of_the_host_matches_and_others_are_a_change() {
        let (ed, rsa, ecdsa) = (
            blob("ssh-ed25519", b"1"),
            blob("ssh-rsa", b"2"),
            blob("ecdsa-sha2-nistp256", b"3"),
        );
        let text = entry("h", &ed) + &entry(&hashed("h", b"s"), &rsa) + &entry("other", &ecdsa);
        assert_eq!(verdict(&text, "h", 22, &ed), Verdict::Known);
        assert_eq!(verdict(&text, "h", 22, &rsa), Verdict::Known);
        assert_eq!(
            verdict(&text, "h", 22, &ecdsa),
            Verdict::Changed(vec!["ssh-ed25519".into(), "ssh-rsa".into()], 1)
        );
    }

    #[test]
    fn a_revoked_key_wins_over_a_matching_line() {
        let key = blob("ssh-ed25519", b"1");
        let text = entry("h", &key) + &entry("@revoked *", &key);
        assert_eq!(verdict(&text, "h", 22, &key), Verdict::Revoked(2));
        // A revoked key is not a record of the host either.
        let other = blob("ssh-ed25519", b"2");
        assert_eq!(
            verdict(&entry("@revoked h", &key), "h", 22, &other),
            Verdict::Unknown
        );
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let key = blob("ssh-ed25519", b"1");
        let text = format!(
            "# comment\n\nh ssh-ed25519\n@bogus h ssh-ed25519 AAAA\nh ssh-ed25519 !!notbase64\nh ssh-rsa {}\n[h]:2 ssh-ed25\n{}",
            STANDARD.encode(&key),
            entry("h", &key)
        );
        assert_eq!(verdict(&text, "h", 22, &key), Verdict::Known);
    }

    #[test]
    fn the_kept_lines_follow_the_file_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let (a, b) = (blob("ssh-ed25519", b"1"), blob("ssh-ed25519", b"2"));
        let verdict = |key: &[u8]| judge(&read(&path).unwrap(), "h", key);
        assert_eq!(verdict(&a), Verdict::Unknown, "no file yet");
        std::fs::write(&path, entry("h", &a)).unwrap();
        assert_eq!(verdict(&a), Verdict::Known);
        assert!(Arc::ptr_eq(&read(&path).unwrap(), &read(&path).unwrap()));
        // Appended by another host's login (`record`), then rewritten with
        // the same length at once (the same file times): each is seen.
        assert_eq!(record(&path, "g", &b).unwrap(), Verdict::Unknown);
        assert_eq!(judge(&read(&path).unwrap(), "g", &b), Verdict::Known);
        let same_length = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("h ", "k ", 1);
        std::fs::write(&path, same_length).unwrap();
        assert_eq!(verdict(&a), Verdict::Unknown);
    }

    #[test]
    fn recording_creates_private_folders_and_appends_whole_lines() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/known_hosts");
        let key = blob("ssh-ed25519", b"1");
        assert_eq!(record(&path, "h", &key).unwrap(), Verdict::Unknown);
        assert_eq!(record(&path, "h", &key).unwrap(), Verdict::Known);
        for d in ["a", "a/b"] {
            let mode = std::fs::metadata(dir.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
        // After a torn line, the next one starts on a line of its own.
        std::fs::write(&path, "torn ssh-ed2").unwrap();
        assert_eq!(record(&path, "h", &key).unwrap(), Verdict::Unknown);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("torn ssh-ed2\n{}", entry("h", &key))
        );
    }
}
