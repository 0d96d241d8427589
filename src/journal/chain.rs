//! The journal's hash chain (docs/journal.md): every line carries `seq`,
//! its line number, and `prev`, the SHA-256 of the line before it as
//! written (its bytes and newline); the first line's `prev` hashes the
//! runbook and inventory copies the run keeps. Editing, removing, inserting
//! or reordering a line breaks the chain at that point.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use serde::Serialize;
use sha2::Digest as _;

use crate::events::RunEvent;

/// The kept copies the first `prev` hashes, in this order, those present.
pub const ORIGIN_FILES: [&str; 2] = ["runbook.yaml", "inventory.yaml"];

#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

#[must_use]
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first line's `prev`: the SHA-256 of what `sha256sum runbook.yaml
/// inventory.yaml` prints in the run directory (the inventory line only
/// when the run had one).
#[must_use]
pub fn origin(copies: &[(&str, &[u8])]) -> String {
    let listing: String = copies
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect();
    sha256_hex(listing.as_bytes())
}

/// [`origin`] of the copies in run directory `dir`; a link is not followed.
pub fn origin_of_dir(dir: &Path) -> std::io::Result<String> {
    let mut copies = Vec::new();
    for name in ORIGIN_FILES {
        let mut bytes = Vec::new();
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(name))
        {
            Ok(mut file) => file.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        copies.push((name, bytes));
    }
    let copies: Vec<(&str, &[u8])> = copies.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    Ok(origin(&copies))
}

/// What the next line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub prev: String,
}

impl Link {
    #[must_use]
    pub const fn first(origin: String) -> Self {
        Self {
            seq: 1,
            prev: origin,
        }
    }

    /// The link after the whole lines of `journal` (which ends with a
    /// newline); `None` when it has none. After a journal without a chain
    /// (an older version's), `seq` goes on from its line count.
    #[must_use]
    pub fn after(journal: &[u8]) -> Option<Self> {
        let body = journal.strip_suffix(b"\n")?;
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let last = &journal[start..];
        let seq = serde_json::from_slice::<serde_json::Value>(last)
            .ok()
            .and_then(|v| v.get("seq")?.as_u64())
            .unwrap_or_else(|| journal.iter().filter(|&&b| b == b'\n').count() as u64);
        Some(Self {
            seq: seq + 1,
            prev: sha256_hex(last),
        })
    }
}

#[derive(Serialize)]
struct Chained<'a> {
    #[serde(flatten)]
    event: &'a RunEvent,
    seq: u64,
    prev: &'a str,
}

/// `event` as a journal line (newline included) carrying `link`, and the
/// link the line after it carries.
pub fn line(event: &RunEvent, link: &Link) -> serde_json::Result<(Vec<u8>, Link)> {
    let mut line = serde_json::to_vec(&Chained {
        event,
        seq: link.seq,
        prev: &link.prev,
    })?;
    line.push(b'\n');
    let next = Link {
        seq: link.seq + 1,
        prev: sha256_hex(&line),
    };
    Ok((line, next))
}

/// A journal whose chain holds.
#[derive(Debug)]
pub struct Intact {
    pub events: usize,
    /// The hash of the last line: record it elsewhere, and the journal
    /// cannot be cut short or its last line edited unseen either.
    pub head: String,
    /// Bytes of a torn last write after the last whole line, which no
    /// reader counts as an event.
    pub torn: usize,
}

/// The first place the chain breaks; `file` names the journal.
#[derive(Debug, thiserror::Error)]
pub enum Break {
    #[error("{file} is empty: there is no chain to verify")]
    Empty { file: String },
    #[error(
        "{file}:1 ({kind}) carries no hash (`prev`): the journal was written by a version of \
         runbook without a hash chain, so it cannot be verified"
    )]
    NoChain { file: String, kind: String },
    #[error("{file}:{line} is not an event ({message}): it was altered")]
    NotAnEvent {
        file: String,
        line: usize,
        message: String,
    },
    #[error(
        "{file}:{line} ({kind}) carries no hash (`prev`) in a chained journal: it was inserted"
    )]
    Unchained {
        file: String,
        line: usize,
        kind: String,
    },
    #[error(
        "{file}:{line} ({kind}) is event #{seq}: event #{line} before it is missing (deleted), \
         expected its `seq` {line}"
    )]
    Missing {
        file: String,
        line: usize,
        kind: String,
        seq: u64,
    },
    #[error(
        "{file}:{line} ({kind}) and line {other} ({other_kind}) were reordered: line {line} is \
         event #{seq}, event #{line} is at line {other}"
    )]
    Reordered {
        file: String,
        line: usize,
        kind: String,
        seq: u64,
        other: usize,
        other_kind: String,
    },
    #[error("{file}:{line} ({kind}) repeats event #{seq} (expected `seq` {line}): it was inserted")]
    Repeated {
        file: String,
        line: usize,
        kind: String,
        seq: u64,
    },
    #[error(
        "{file}:{line} ({kind}) carries the hash of line {of}, not of line {before}: it was \
         forged or inserted (expected `prev` {expected})"
    )]
    Forged {
        file: String,
        line: usize,
        kind: String,
        of: usize,
        before: usize,
        expected: String,
    },
    #[error(
        "{file}:1 ({kind}) does not chain from the kept copies ({copies}): one of them was \
         altered, added or removed (expected `prev` {expected}, found {found})"
    )]
    Origin {
        file: String,
        kind: String,
        copies: String,
        expected: String,
        found: String,
    },
    #[error(
        "{file}:{line} ({kind}) was altered (or the `prev` of line {next}): line {next} \
         ({next_kind}) carries {found}, the hash of line {line} as written; it now hashes to \
         {expected}"
    )]
    Altered {
        file: String,
        line: usize,
        kind: String,
        next: usize,
        next_kind: String,
        expected: String,
        found: String,
    },
}

/// One line as the chain sees it.
struct Line {
    hash: String,
    kind: String,
    seq: Option<u64>,
    prev: Option<String>,
}

/// Checks the chain of `journal` (the file's bytes), whose first line
/// must carry `origin`. `file` names the journal in what is reported.
#[expect(
    clippy::result_large_err,
    reason = "called once per command, and the finding is the whole result"
)]
pub fn verify(journal: &[u8], origin: &str, copies: &str, file: &str) -> Result<Intact, Break> {
    let mut lines: Vec<&[u8]> = journal.split_inclusive(|&b| b == b'\n').collect();
    // An unterminated tail that is not an event is a torn write: readers
    // skip it, and so does the chain. One that parses is read as an event
    // by everyone, so it is checked like the others.
    let mut torn = 0;
    if let Some(last) = lines.last()
        && !last.ends_with(b"\n")
        && serde_json::from_slice::<serde_json::Value>(last).is_err()
    {
        torn = last.len();
        lines.pop();
    }
    let mut parsed = Vec::with_capacity(lines.len());
    for (i, bytes) in lines.iter().enumerate() {
        let value = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| match v.get("event").and_then(|k| k.as_str()) {
                Some(_) => Ok(v),
                None => Err("no `event` field".into()),
            })
            .map_err(|message| Break::NotAnEvent {
                file: file.into(),
                line: i + 1,
                message,
            })?;
        parsed.push(Line {
            hash: sha256_hex(bytes),
            kind: value["event"].as_str().unwrap_or_default().to_string(),
            seq: value.get("seq").and_then(serde_json::Value::as_u64),
            prev: value
                .get("prev")
                .and_then(|p| p.as_str())
                .map(str::to_string),
        });
    }
    let Some(first) = parsed.first() else {
        return Err(Break::Empty { file: file.into() });
    };
    if first.prev.is_none() {
        return Err(Break::NoChain {
            file: file.into(),
            kind: first.kind.clone(),
        });
    }
    for (i, l) in parsed.iter().enumerate() {
        let n = i + 1;
        let at = || (file.to_string(), n, l.kind.clone());
        let Some(prev) = &l.prev else {
            let (file, line, kind) = at();
            return Err(Break::Unchained { file, line, kind });
        };
        let seq = l.seq.unwrap_or_default();
        if seq > n as u64 {
            let (file, line, kind) = at();
            return Err(
                match parsed.iter().skip(n).position(|o| o.seq == Some(n as u64)) {
                    Some(j) => Break::Reordered {
                        file,
                        line,
                        kind,
                        seq,
                        other: n + j + 1,
                        other_kind: parsed[n + j].kind.clone(),
                    },
                    None => Break::Missing {
                        file,
                        line,
                        kind,
                        seq,
                    },
                },
            );
        }
        if seq < n as u64 {
            let (file, line, kind) = at();
            return Err(Break::Repeated {
                file,
                line,
                kind,
                seq,
            });
        }
        let expected = if n == 1 { origin } else { &parsed[i - 1].hash };
        if prev == expected {
            continue;
        }
        let (file, line, kind) = at();
        if let Some(of) = parsed.iter().position(|o| &o.hash == prev) {
            return Err(Break::Forged {
                file,
                line,
                kind,
                of: of + 1,
                before: n - 1,
                expected: expected.to_string(),
            });
        }
        return Err(if n == 1 {
            Break::Origin {
                file,
                kind,
                copies: copies.into(),
                expected: expected.to_string(),
                found: prev.clone(),
            }
        } else {
            Break::Altered {
                file,
                line: n - 1,
                kind: parsed[i - 1].kind.clone(),
                next: n,
                next_kind: l.kind.clone(),
                expected: expected.to_string(),
                found: prev.clone(),
            }
        });
    }
    Ok(Intact {
        events: parsed.len(),
        head: parsed.last().map(|l| l.hash.clone()).unwrap_or_default(),
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_follows_the_last_whole_line_chained_or_not() {
        assert_eq!(Link::after(b""), None);
        let old = b"{\"event\":\"run-started\"}\n{\"event\":\"step-started\"}\n";
        assert_eq!(
            Link::after(old),
            Some(Link {
                seq: 3,
                prev: sha256_hex(b"{\"event\":\"step-started\"}\n"),
            })
        );
        let chained = b"{\"event\":\"run-started\",\"seq\":7,\"prev\":\"x\"}\n";
        assert_eq!(Link::after(chained).map(|l| l.seq), Some(8));
    }

    #[test]
    fn the_origin_is_the_hash_of_what_sha256sum_prints() {
        let listing = format!(
            "{}  runbook.yaml\n{}  inventory.yaml\n",
            sha256_hex(b"r"),
            sha256_hex(b"i")
        );
        assert_eq!(
            origin(&[("runbook.yaml", b"r"), ("inventory.yaml", b"i")]),
            sha256_hex(listing.as_bytes())
        );
    }
}
