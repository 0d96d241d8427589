//! `runbook verify RUN_ID` and `runbook verify FILE.tar.gz`: the journal's
//! hash chain (see `journal::chain`), and a bundle's files against its
//! `MANIFEST.sha256`. A bundle is read as a stream, in memory, never
//! extracted: nothing it names is ever written anywhere.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Component, Path};

use crate::cli::{Global, VerifyArgs};
use crate::error::{Error, FAILED, SUCCESS};
use crate::journal::chain::{self, ORIGIN_FILES};
use crate::state;
use sha2::{Digest as _, Sha256};

use super::evidence::{MANIFEST, parse_manifest_line};

/// No file of a bundle is read past this, nor all of them past `MAX_TOTAL`:
/// a bundle is untrusted input, and a small gzip can inflate enormously.
const MAX_FILE: u64 = 1 << 30;
const MAX_TOTAL: u64 = 8 << 30;

pub fn run(global: &Global, args: &VerifyArgs) -> Result<u8, Error> {
    let target = &args.target;
    let is_bundle = target.contains('/')
        || target.ends_with(".tar.gz")
        || target.ends_with(".tgz")
        || Path::new(target).is_file();
    let problems = if is_bundle {
        bundle(Path::new(target))?
    } else {
        journal_of_run(global, target)?
    };
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(if problems.is_empty() { SUCCESS } else { FAILED })
}

fn journal_of_run(global: &Global, id: &str) -> Result<Vec<String>, Error> {
    let dir = state::existing_run(&global.state_dir, id)?;
    let path = dir.join("journal.jsonl");
    let journal = state::read_bytes(&path)?;
    let origin = chain::origin_of_dir(&dir)
        .map_err(|e| Error::Runtime(format!("cannot read the copies in {}: {e}", dir.display())))?;
    Ok(check_chain(&journal, &origin, &path.display().to_string()))
}

/// The chain's verdict: nothing wrong (said on stdout), or what is.
fn check_chain(journal: &[u8], origin: &str, file: &str) -> Vec<String> {
    match chain::verify(journal, origin, &ORIGIN_FILES.join(", "), file) {
        Ok(intact) => {
            println!(
                "{file}: intact: {} events chained from the runbook and inventory copies; \
                 the last line hashes to {}",
                intact.events, intact.head
            );
            if intact.torn > 0 {
                println!(
                    "{file}: ends with {} bytes of a torn write, which no reader counts as an event",
                    intact.torn
                );
            }
            Vec::new()
        }
        Err(broken) => vec![broken.to_string()],
    }
}

/// Why a bundle is not even read.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not a gzip file (an evidence bundle is a .tar.gz)")]
    NotGzip(String),
    #[error("{0} is an empty archive, not an evidence bundle")]
    Empty(String),
    #[error("{path}: entry `{entry}` {why}: refused, nothing was read further")]
    Entry {
        path: String,
        entry: String,
        why: String,
    },
}

/// A bundle's regular files by their path under its one top folder:
/// their hash, and the bytes of those checked further.
struct Contents {
    top: String,
    hashes: BTreeMap<String, String>,
    kept: BTreeMap<String, Vec<u8>>,
}

fn bundle(path: &Path) -> Result<Vec<String>, Error> {
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{} does not exist (nor is it a run id)",
            path.display()
        )));
    }
    let contents = read_bundle(path).map_err(|e| Error::Runtime(e.to_string()))?;
    let top = &contents.top;
    let mut problems = Vec::new();
    match contents.kept.get(MANIFEST) {
        None => problems.push(format!(
            "{top}/{MANIFEST} is missing: no file can be checked"
        )),
        Some(manifest) => {
            let manifest = String::from_utf8_lossy(manifest);
            let mut listed = BTreeMap::new();
            for (i, line) in manifest.lines().enumerate() {
                let at = format!("{top}/{MANIFEST}:{}", i + 1);
                let Some((hash, name)) = parse_manifest_line(line) else {
                    problems.push(format!("{at}: not a `SHA256  FILE` line"));
                    continue;
                };
                match contents.hashes.get(&name) {
                    None => problems.push(format!("{top}/{name} is missing (listed at {at})")),
                    Some(found) if *found != hash => problems.push(format!(
                        "{top}/{name} was altered: {at} says {hash}, it hashes to {found}"
                    )),
                    Some(_) => {}
                }
                listed.insert(name, ());
            }
            for name in contents.hashes.keys() {
                if name != MANIFEST && !listed.contains_key(name) {
                    problems.push(format!(
                        "{top}/{name} is extra: {MANIFEST} does not list it"
                    ));
                }
            }
            if problems.is_empty() {
                println!(
                    "{}: {} files match {MANIFEST} (whose SHA-256 is {})",
                    path.display(),
                    listed.len(),
                    chain::sha256_hex(manifest.as_bytes())
                );
            }
        }
    }
    let copies: Vec<(&str, &[u8])> = ORIGIN_FILES
        .iter()
        .filter_map(|name| Some((*name, contents.kept.get(*name)?.as_slice())))
        .collect();
    match contents.kept.get("journal.jsonl") {
        None => problems.push(format!("{top}/journal.jsonl is missing")),
        Some(journal) => problems.extend(check_chain(
            journal,
            &chain::origin(&copies),
            &format!("{top}/journal.jsonl"),
        )),
    }
    Ok(problems)
}

fn read_bundle(path: &Path) -> Result<Contents, Refused> {
    let shown = path.display().to_string();
    let io = |source| Refused::Io {
        path: shown.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    if file.read_exact(&mut magic).is_err() || magic != [0x1f, 0x8b] {
        return Err(Refused::NotGzip(shown));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut contents = Contents {
        top: String::new(),
        hashes: BTreeMap::new(),
        kept: BTreeMap::new(),
    };
    let mut total = 0u64;
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |why: &str| Refused::Entry {
            path: shown.clone(),
            entry: name.clone(),
            why: why.to_string(),
        };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(refuse(if kind.is_symlink() || kind.is_hard_link() {
                "is a link"
            } else {
                "is not a regular file"
            }));
        }
        let mut parts = Vec::new();
        for c in Path::new(&name).components() {
            match c {
                Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => return Err(refuse("climbs out with `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse("is an absolute path"));
                }
            }
        }
        let Some((top, rest)) = parts.split_first() else {
            return Err(refuse("has an empty path"));
        };
        if contents.top.is_empty() {
            contents.top.clone_from(top);
        } else if contents.top != *top {
            return Err(refuse(&format!(
                "is outside the bundle's one folder `{}`",
                contents.top
            )));
        }
        if kind.is_dir() {
            continue;
        }
        let rel = rest.join("/");
        if rel.is_empty() {
            return Err(refuse("is a file in place of the bundle's folder"));
        }
        let size = entry.header().size().map_err(io)?;
        total = total.saturating_add(size);
        if size > MAX_FILE || total > MAX_TOTAL {
            return Err(refuse(&format!(
                "is too large ({size} bytes; at most {MAX_FILE} a file, {MAX_TOTAL} in all)"
            )));
        }
        if contents.hashes.contains_key(&rel) {
            return Err(refuse("appears twice"));
        }
        // Hashed as it streams; only what is checked further is kept.
        let keep =
            rel == MANIFEST || rel == "journal.jsonl" || ORIGIN_FILES.contains(&rel.as_str());
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut chunk).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            if keep {
                kept.extend_from_slice(&chunk[..n]);
            }
        }
        contents
            .hashes
            .insert(rel.clone(), chain::hex(&hasher.finalize()));
        if keep {
            contents.kept.insert(rel, kept);
        }
    }
    if contents.top.is_empty() {
        return Err(Refused::Empty(shown));
    }
    Ok(contents)
}
