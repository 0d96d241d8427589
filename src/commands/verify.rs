//! `runbook verify RUN_ID` and `runbook verify FILE.tar.gz`: the journal's
//! hash chain (see `journal::chain`), and a bundle's files against its
//! `MANIFEST.sha256`. A bundle is read as a stream, in memory, never
//! extracted: nothing it names is ever written anywhere.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path};
use std::rc::Rc;

use crate::cli::{Global, VerifyArgs};
use crate::error::{Error, FAILED, SUCCESS};
use crate::journal::chain::{self, ORIGIN_FILES};
use crate::redact::{eprintln_printable, printable};
use crate::state;
use sha2::{Digest as _, Sha256};

use super::evidence::{MANIFEST, parse_manifest_line};

/// No file of a bundle is read past this, nor all of them past `MAX_TOTAL`:
/// a bundle is untrusted input, and a small gzip can inflate enormously.
const MAX_FILE: u64 = 1 << 30;
const MAX_TOTAL: u64 = 8 << 30;
/// Files kept in memory to be checked further, the journal aside: a
/// runbook or inventory is at most 16 MiB anyway.
const MAX_KEPT: u64 = 64 << 20;
/// What the tar reader may read between two entries' data: headers, a long
/// name or PAX record (which it buffers whole, unchecked), the padding of
/// the entry before, the zeros ending the archive.
const BETWEEN_ENTRIES: u64 = 1 << 20;

pub fn run(global: &Global, args: &VerifyArgs) -> Result<u8, Error> {
    let target = &args.target;
    // A run id of the state dir wins over a file of that name in the
    // current directory, which `./NAME` names.
    let is_bundle = target.contains('/')
        || target.ends_with(".tar.gz")
        || target.ends_with(".tgz")
        || (Path::new(target).is_file()
            && std::fs::symlink_metadata(state::run_path(&global.state_dir, target)).is_err());
    let problems = if is_bundle {
        bundle(Path::new(target))?
    } else {
        journal_of_run(global, target)?
    };
    // A journal's lines and a bundle's names are anyone's writing.
    for p in &problems {
        eprintln_printable!("error: {p}");
    }
    Ok(if problems.is_empty() { SUCCESS } else { FAILED })
}

fn journal_of_run(global: &Global, id: &str) -> Result<Vec<String>, Error> {
    let dir = state::existing_run(&global.state_dir, id)?;
    let path = dir.join("journal.jsonl");
    let journal = state::read_bytes(&path)?;
    let origin = chain::origin_of_dir(&dir)
        .map_err(|e| Error::Runtime(format!("cannot read the copies in {}: {e}", dir.display())))?;
    let mut problems = check_chain(&journal, &origin, &path.display().to_string());
    problems.extend(check_versions(&journal, "", |name| {
        let mut bytes = Vec::new();
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(name))
            .and_then(|mut f| f.read_to_end(&mut bytes))
        {
            Ok(_) => Some(chain::sha256_hex(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("unreadable ({e})")),
        }
    }));
    Ok(problems)
}

/// Each runbook version a `resume` executed is kept as
/// `runbook-SHA16.yaml`, which the report renders its steps with: its hash
/// must be the one the journal's `run-resumed` names. `hash_of` gives a
/// kept file's SHA-256, `None` when absent; `top` prefixes the names shown.
fn check_versions(
    journal: &[u8],
    top: &str,
    hash_of: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut first = None;
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in journal.split(|&b| b == b'\n').enumerate() {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let kind = event["event"].as_str().unwrap_or_default();
        let Some(named) = event["runbook_sha256"].as_str() else {
            continue;
        };
        if kind == "run-started" {
            first.get_or_insert_with(|| named.to_string());
        }
        let name = crate::journal::versions::file_name(named);
        if !seen.insert(name.clone()) {
            continue;
        }
        let at = format!("journal.jsonl:{} ({kind})", i + 1);
        match hash_of(&name) {
            Some(found) if found != named => problems.push(format!(
                "{top}{name} was altered: {at} names {named}, it hashes to {found}"
            )),
            // The run's first version is `runbook.yaml`, which the chain covers.
            None if kind == "run-resumed" && first.as_deref() != Some(named) => {
                problems.push(format!(
                    "{top}{name} is missing: {at} ran it, and reports would show \
                     `runbook.yaml` in its place"
                ));
            }
            _ => {}
        }
    }
    problems
}

/// The chain's verdict: nothing wrong (said on stdout), or what is.
fn check_chain(journal: &[u8], origin: &str, file: &str) -> Vec<String> {
    match chain::verify(journal, origin, &ORIGIN_FILES.join(", "), file) {
        Ok(intact) => {
            let file = printable(file);
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
    #[error(
        "{0} has data after the end of its archive (another archive appended?): refused, as \
         an extracting tool might read it"
    )]
    Trailing(String),
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
        Some(journal) => {
            problems.extend(check_chain(
                journal,
                &chain::origin(&copies),
                &format!("{top}/journal.jsonl"),
            ));
            problems.extend(check_versions(journal, &format!("{top}/"), |name| {
                contents.hashes.get(name).cloned()
            }));
        }
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
    // Every gzip member, as `gzip -d` and so `tar xzf` read them: a forged
    // member appended to a genuine bundle is seen here too.
    let left = Rc::new(Cell::new(BETWEEN_ENTRIES));
    let mut archive = tar::Archive::new(Budget {
        inner: flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)),
        left: Rc::clone(&left),
    });
    let mut contents = Contents {
        top: String::new(),
        hashes: BTreeMap::new(),
        kept: BTreeMap::new(),
    };
    let mut total = 0u64;
    let mut entries = archive.entries().map_err(io)?;
    loop {
        left.set(BETWEEN_ENTRIES);
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(io)?;
        // Its size is checked below, before its data is read.
        left.set(u64::MAX);
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
        if keep && rel != "journal.jsonl" && size > MAX_KEPT {
            return Err(refuse(&format!(
                "is too large ({size} bytes; at most {MAX_KEPT} for this file)"
            )));
        }
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
    // Past the archive's end: only its zero padding, as `tar` writes it.
    left.set(BETWEEN_ENTRIES);
    let mut rest = archive.into_inner();
    let mut chunk = [0u8; 8192];
    loop {
        match rest.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if chunk[..n].iter().all(|&b| b == 0) => {}
            Ok(_) => return Err(Refused::Trailing(shown)),
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(Refused::Trailing(shown));
            }
            Err(e) => return Err(io(e)),
        }
    }
    if contents.top.is_empty() {
        return Err(Refused::Empty(shown));
    }
    Ok(contents)
}

/// The decompressed stream, failing once `left` bytes are read: the tar
/// reader buffers a long name or PAX record whole before any entry is
/// seen, so only this bounds what a small gzip claiming GiBs costs.
struct Budget<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "an entry's header holds a long name or PAX record over 1 MiB: refused",
            ));
        }
        let most = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..most])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}
