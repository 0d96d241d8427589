//! `runbook evidence RUN_ID -o FILE.tar.gz [--force]`: the run as
//! executed, for auditors. Everything lies under `RUN_ID/` in the archive:
//! the run directory's files (journal, kept runbooks and inventory, logs),
//! the four reports, and `MANIFEST.sha256`, which `sha256sum -c` checks in
//! the extracted `RUN_ID/` and `runbook verify FILE.tar.gz` checks unpacked.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{EvidenceArgs, Global, ReportFormat};
use crate::error::{Error, SUCCESS};
use crate::journal::chain::sha256_hex;
use crate::redact::eprintln_printable;
use crate::state;

pub const MANIFEST: &str = "MANIFEST.sha256";

/// The four reports, by their name in the bundle.
const REPORTS: [(&str, ReportFormat); 4] = [
    ("report.md", ReportFormat::Md),
    ("report.html", ReportFormat::Html),
    ("report.json", ReportFormat::Json),
    ("report.junit.xml", ReportFormat::Junit),
];

pub fn run(global: &Global, args: &EvidenceArgs) -> Result<u8, Error> {
    let out = &args.output;
    if !args.force && std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::Usage(format!(
            "{} exists, and evidence is never overwritten silently: choose another file, or \
             pass `--force` to replace it",
            out.display()
        )));
    }
    let dir = state::existing_run(&global.state_dir, &args.run_id)?;
    let journal_path = dir.join("journal.jsonl");
    // One snapshot of the journal, whole lines only (a live run may be
    // writing the next), for both the bundle and its reports.
    let mut journal = state::read_bytes(&journal_path)?;
    journal.truncate(
        journal
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1),
    );
    let text = String::from_utf8(journal)
        .map_err(|e| Error::Runtime(format!("{} is not UTF-8: {e}", journal_path.display())))?;
    let events = state::parse_journal(&journal_path, &text)?;
    let report = super::report::build(&global.state_dir, &args.run_id, &events)?;

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let write_err = |source: std::io::Error| Error::Write {
        path: out.clone(),
        source,
    };
    // Written beside FILE and renamed into place once complete: FILE is
    // either the whole bundle or absent, whatever happens in between.
    let tmp = tempfile::Builder::new()
        .prefix(".evidence-")
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(|e| write_err(without_temp_path(e)))?;
    let gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(tmp.as_file().try_clone().map_err(write_err)?),
        flate2::Compression::default(),
    );
    let mut bundle = Bundle {
        tar: tar::Builder::new(gz),
        top: args.run_id.clone(),
        manifest: String::new(),
        mtime: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    bundle
        .add("journal.jsonl", text.as_bytes())
        .map_err(write_err)?;
    for (name, path) in run_files(&dir)? {
        let bytes = state::read_bytes(&path)?;
        bundle.add(&name, &bytes).map_err(write_err)?;
    }
    for (name, format) in REPORTS {
        let rendered = super::report::render(&report, format)?;
        bundle.add(name, rendered.as_bytes()).map_err(write_err)?;
    }
    let files = bundle.manifest.lines().count();
    let manifest = std::mem::take(&mut bundle.manifest);
    bundle
        .add(MANIFEST, manifest.as_bytes())
        .map_err(write_err)?;
    let mut buffered = bundle
        .tar
        .into_inner()
        .and_then(flate2::write::GzEncoder::finish)
        .map_err(write_err)?;
    buffered.flush().map_err(write_err)?;
    drop(buffered);
    tmp.as_file().sync_all().map_err(write_err)?;
    let persisted = if args.force {
        tmp.persist(out)
    } else {
        tmp.persist_noclobber(out)
    };
    persisted.map_err(|e| write_err(e.error))?;
    if let Ok(d) = std::fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    println!(
        "{}: run {} with {files} files and {MANIFEST} (its SHA-256: {})",
        out.display(),
        args.run_id,
        sha256_hex(manifest.as_bytes())
    );
    Ok(SUCCESS)
}

struct Bundle<W: std::io::Write> {
    tar: tar::Builder<W>,
    top: String,
    manifest: String,
    mtime: u64,
}

impl<W: std::io::Write> Bundle<W> {
    fn add(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        self.tar
            .append_data(&mut header, format!("{}/{name}", self.top), bytes)?;
        if name != MANIFEST {
            self.manifest
                .push_str(&manifest_line(&sha256_hex(bytes), name));
        }
        Ok(())
    }
}

/// The files of the run directory other than the journal (taken once,
/// above), by their path inside it, sorted. Links are never followed.
fn run_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut files = Vec::new();
    let mut todo = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, at)) = todo.pop() {
        let entries = std::fs::read_dir(&at)
            .map_err(|e| Error::Runtime(format!("cannot read {}: {e}", at.display())))?;
        for entry in entries.flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push((format!("{name}/"), entry.path())),
                Ok(t) if t.is_file() && name != "journal.jsonl" => {
                    files.push((name, entry.path()));
                }
                Ok(t) if t.is_file() => {}
                // Anyone who can write in the state dir names these files.
                _ => eprintln_printable!(
                    "warning: left out {}: not a regular file (links are never followed)",
                    entry.path().display()
                ),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A line as `sha256sum` writes it: names with a backslash or a newline
/// escaped, and the line then starting with a backslash.
#[must_use]
pub fn manifest_line(hash: &str, name: &str) -> String {
    if name.contains(['\\', '\n']) {
        let escaped = name.replace('\\', "\\\\").replace('\n', "\\n");
        format!("\\{hash}  {escaped}\n")
    } else {
        format!("{hash}  {name}\n")
    }
}

/// The (hash, name) of a manifest line, as `sha256sum -c` reads it.
#[must_use]
pub fn parse_manifest_line(line: &str) -> Option<(String, String)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (hash, name) = line.split_once(' ')?;
    let name = name.strip_prefix([' ', '*'])?;
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) || name.is_empty() {
        return None;
    }
    let name = if escaped {
        let mut out = String::new();
        let mut chars = name.chars();
        while let Some(c) = chars.next() {
            out.push(match (c, c == '\\') {
                (_, true) => match chars.next()? {
                    'n' => '\n',
                    '\\' => '\\',
                    _ => return None,
                },
                (c, false) => c,
            });
        }
        out
    } else {
        name.to_string()
    };
    Some((hash.to_ascii_lowercase(), name))
}

/// tempfile's errors end with ` at path "…"`, its temporary file: the user
/// named FILE, which the message names already.
fn without_temp_path(e: std::io::Error) -> std::io::Error {
    match e.to_string().rsplit_once(" at path \"") {
        Some((why, _)) => std::io::Error::new(e.kind(), why.to_string()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_escape_as_sha256sum_does_and_read_back() {
        let hash = "ab".repeat(32);
        for name in ["logs/a b.stdout", "logs/x\\y", "logs/line\nbreak", "plain"] {
            let line = manifest_line(&hash, name);
            assert_eq!(
                parse_manifest_line(line.trim_end_matches('\n')),
                Some((hash.clone(), name.to_string())),
                "{line:?}"
            );
        }
        assert_eq!(manifest_line(&hash, "a\\b"), format!("\\{hash}  a\\\\b\n"));
        assert_eq!(parse_manifest_line("xyz  name"), None);
        assert_eq!(parse_manifest_line(&format!("{hash}name")), None);
    }
}
