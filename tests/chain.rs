//! The journal's hash chain, `runbook verify` and `runbook evidence`: real
//! runs on the controller, journals and bundles then tampered with by hand.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{BIN, Test, repo};

fn bin(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .args(["--state-dir", "state"])
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn expect(out: &Output, code: i32, contains: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(code), "{all}");
    for c in contains {
        assert!(all.contains(c), "no {c:?} in:\n{all}");
    }
}

/// A finished run of three steps on the controller, with an inventory:
/// its directory and id.
fn finished_run() -> (Test, PathBuf, String) {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: chained
            steps:
              - {id: a, run: 'echo a'}
              - {id: b, depends_on: [a], run: 'echo b >&2'}
              - {id: c, depends_on: [b], run: 'echo c'}
            ",
        )
        .inventory("version: 1\nhosts:\n  web: {transport: local}\n")
        .args([
            "run",
            "runbook.yaml",
            "-i",
            "inventory.yaml",
            "--state-dir",
            "state",
        ])
        .run();
    let runs = t.path().join("state/runs");
    let id = crate::harness::run_id(&t);
    let run = runs.join(&id);
    (t, run, id)
}

fn lines(journal: &Path) -> Vec<String> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(journal: &Path, lines: &[String]) {
    std::fs::write(journal, lines.join("\n") + "\n").unwrap();
}

fn kind(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["event"].as_str().unwrap().to_string()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .current_dir(dir)
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_line_carries_the_hash_of_the_one_before_and_the_first_hashes_the_copies() {
    let (t, run, id) = finished_run();
    let journal = lines(&run.join("journal.jsonl"));
    assert!(journal.len() > 10, "{journal:?}");
    // As docs/journal.md says to check it by hand.
    let origin = sh(
        &run,
        "sha256sum runbook.yaml inventory.yaml | sha256sum | cut -d' ' -f1",
    );
    let first: serde_json::Value = serde_json::from_str(&journal[0]).unwrap();
    assert_eq!(first["prev"], origin.trim());
    assert_eq!(first["seq"], 1);
    for (i, pair) in journal.windows(2).enumerate() {
        let next: serde_json::Value = serde_json::from_str(&pair[1]).unwrap();
        assert_eq!(next["prev"], sha256(format!("{}\n", pair[0]).as_bytes()));
        assert_eq!(next["seq"], i + 2);
    }
    let by_hand = sh(&run, "sed -n 2p journal.jsonl | sha256sum | cut -d' ' -f1");
    let third: serde_json::Value = serde_json::from_str(&journal[2]).unwrap();
    assert_eq!(third["prev"], by_hand.trim());

    let head = sha256(format!("{}\n", journal.last().unwrap()).as_bytes());
    expect(
        &bin(t.path(), &["verify", &id]),
        0,
        &[&format!("intact: {} events", journal.len()), &head],
    );
}

/// Verifies the run after `tamper` edited its journal's lines.
fn tampered(tamper: impl FnOnce(&mut Vec<String>)) -> (Output, Vec<String>) {
    let (t, run, id) = finished_run();
    let path = run.join("journal.jsonl");
    let original = lines(&path);
    let mut edited = original.clone();
    tamper(&mut edited);
    write_lines(&path, &edited);
    (bin(t.path(), &["verify", &id]), original)
}

#[test]
fn verify_names_an_event_altered_by_one_byte() {
    let (out, original) = tampered(|l| {
        // 2026-… becomes 2027-…: still JSON, still an event.
        l[3] = l[3].replacen("\"at\":\"2026", "\"at\":\"2027", 1);
    });
    expect(
        &out,
        1,
        &[&format!(
            "journal.jsonl:4 ({}) was altered (or the `prev` of line 5)",
            kind(&original[3])
        )],
    );
}

#[test]
fn verify_names_a_deleted_event() {
    let (out, original) = tampered(|l| {
        l.remove(4);
    });
    expect(
        &out,
        1,
        &[&format!(
            "journal.jsonl:5 ({}) is event #6: event #5 before it is missing (deleted)",
            kind(&original[5])
        )],
    );
}

#[test]
fn verify_names_two_swapped_events() {
    let (out, original) = tampered(|l| l.swap(5, 6));
    expect(
        &out,
        1,
        &[&format!(
            "journal.jsonl:6 ({}) and line 7 ({}) were reordered",
            kind(&original[6]),
            kind(&original[5])
        )],
    );
}

#[test]
fn verify_names_a_forged_event_appended_without_the_right_hash() {
    let (out, original) = tampered(|l| {
        // A forger copies the last line into a new decision, numbering it
        // right but unable to give it the hash of the line before.
        let mut forged: serde_json::Value = serde_json::from_str(l.last().unwrap()).unwrap();
        let n = l.len() + 1;
        forged["event"] = "marked".into();
        forged["seq"] = n.into();
        l.push(forged.to_string());
    });
    let n = original.len();
    expect(
        &out,
        1,
        &[&format!(
            "journal.jsonl:{} (marked) carries the hash of line {}, not of line {n}: it was forged or inserted",
            n + 1,
            n - 1
        )],
    );
}

#[test]
fn verify_names_an_altered_runbook_copy_at_the_first_event() {
    let (t, run, id) = finished_run();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("inventory.yaml"))
        .unwrap();
    writeln!(f, "# edited afterwards").unwrap();
    expect(
        &bin(t.path(), &["verify", &id]),
        1,
        &["journal.jsonl:1 (run-started) does not chain from the kept copies"],
    );
}

#[test]
fn confirm_mark_and_resume_in_other_processes_keep_the_chain_across_a_torn_tail() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: decided
            steps:
              - {id: power, manual: 'Confirm both feeds.'}
              - {id: fix, depends_on: [power], run: 'false', on_failure: pause}
              - {id: after, depends_on: [fix], run: 'echo after'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let runs = dir.join("state/runs");
    let id = crate::harness::run_id(&t);
    let journal = runs.join(&id).join("journal.jsonl");
    expect(&bin(dir, &["verify", &id]), 0, &["intact"]);

    // A power cut tore the last write: not part of the chain, cut off by
    // the next writer.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    write!(f, "{{\"at\":\"2026-11-29T").unwrap();
    drop(f);
    expect(
        &bin(dir, &["verify", &id]),
        0,
        &["intact", "bytes of a torn write"],
    );
    expect(&bin(dir, &["confirm", &id, "power"]), 0, &[]);
    expect(&bin(dir, &["verify", &id]), 0, &["intact"]);
    assert!(!text(&bin(dir, &["verify", &id])).contains("torn"));
    expect(&bin(dir, &["resume", &id]), 3, &[]);
    expect(&bin(dir, &["verify", &id]), 0, &["intact"]);
    expect(
        &bin(
            dir,
            &["mark", &id, "fix", "done", "--note", "fixed by hand"],
        ),
        0,
        &[],
    );
    expect(&bin(dir, &["resume", &id]), 0, &[]);
    let all = lines(&journal);
    expect(
        &bin(dir, &["verify", &id]),
        0,
        &[&format!("intact: {} events", all.len())],
    );
    let kinds: Vec<String> = all.iter().map(|l| kind(l)).collect();
    for k in ["confirmation", "run-resumed", "marked", "run-finished"] {
        assert!(kinds.iter().any(|x| x == k), "{kinds:?}");
    }
}

#[test]
fn a_journal_without_hashes_still_reads_and_verify_says_why_it_cannot_check_it() {
    let t = Test::new();
    let run = t.path().join("state/runs/20261128T100000Z-abcd");
    std::fs::create_dir_all(&run).unwrap();
    for f in ["journal.jsonl", "runbook.yaml"] {
        std::fs::copy(repo().join("tests/fixtures/report").join(f), run.join(f)).unwrap();
    }
    expect(
        &bin(t.path(), &["runs"]),
        0,
        &["20261128T100000Z-abcd", "drill"],
    );
    expect(&bin(t.path(), &["report", "20261128T100000Z-abcd"]), 0, &[]);
    expect(
        &bin(t.path(), &["verify", "20261128T100000Z-abcd"]),
        1,
        &[
            "journal.jsonl:1 (run-started) carries no hash (`prev`): the journal was written by a version of runbook without a hash chain",
        ],
    );
    expect(
        &bin(t.path(), &["verify", "20990101T000000Z-0000"]),
        2,
        &["unknown run id `20990101T000000Z-0000`"],
    );
}

fn evidence(t: &Test, id: &str) -> PathBuf {
    expect(
        &bin(t.path(), &["evidence", id, "-o", "evidence.tar.gz"]),
        0,
        &["MANIFEST.sha256"],
    );
    t.path().join("evidence.tar.gz")
}

#[test]
fn an_evidence_bundle_verifies_and_sha256sum_checks_it_extracted() {
    let (t, _, id) = finished_run();
    let bundle = evidence(&t, &id);
    expect(
        &bin(t.path(), &["verify", "evidence.tar.gz"]),
        0,
        &[
            "files match MANIFEST.sha256",
            &format!("{id}/journal.jsonl: intact"),
        ],
    );
    sh(t.path(), "mkdir x && tar xzf evidence.tar.gz -C x");
    let top = t.path().join("x").join(&id);
    let checked = sh(&top, "sha256sum -c --strict MANIFEST.sha256");
    for f in [
        "journal.jsonl",
        "runbook.yaml",
        "inventory.yaml",
        "report.md",
        "report.html",
        "report.json",
        "report.junit.xml",
        "logs/b/controller.stderr",
    ] {
        assert!(checked.contains(&format!("{f}: OK")), "{f}: {checked}");
    }
    assert_eq!(
        std::fs::read(top.join("journal.jsonl")).unwrap(),
        std::fs::read(t.path().join("state/runs").join(&id).join("journal.jsonl")).unwrap()
    );
    // Evidence is not overwritten unless asked to.
    let before = std::fs::read(&bundle).unwrap();
    expect(
        &bin(t.path(), &["evidence", &id, "-o", "evidence.tar.gz"]),
        2,
        &["evidence.tar.gz exists", "--force"],
    );
    assert_eq!(std::fs::read(&bundle).unwrap(), before);
    expect(
        &bin(
            t.path(),
            &["evidence", &id, "-o", "evidence.tar.gz", "--force"],
        ),
        0,
        &[],
    );
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".evidence-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The bundle extracted, changed by `change` in its folder, packed again.
fn repacked(change: &str) -> (Test, String) {
    let (t, _, id) = finished_run();
    evidence(&t, &id);
    sh(
        t.path(),
        &format!(
            "mkdir x && tar xzf evidence.tar.gz -C x && cd x/{id} && {change} && cd .. && \
             tar czf ../evidence.tar.gz {id}"
        ),
    );
    (t, id)
}

#[test]
fn a_bundle_with_an_altered_report_fails_naming_it() {
    let (t, id) = repacked("echo '<!-- edited -->' >> report.html");
    expect(
        &bin(t.path(), &["verify", "evidence.tar.gz"]),
        1,
        &[&format!(
            "{id}/report.html was altered: {id}/MANIFEST.sha256:"
        )],
    );
}

#[test]
fn a_bundle_with_an_altered_journal_fails_naming_the_file_and_the_event() {
    let (t, id) = repacked("sed -i '3s/\"at\":\"2026/\"at\":\"2027/' journal.jsonl");
    expect(
        &bin(t.path(), &["verify", "evidence.tar.gz"]),
        1,
        &[
            &format!("{id}/journal.jsonl was altered"),
            &format!("{id}/journal.jsonl:3 (host-started) was altered"),
        ],
    );
}

#[test]
fn a_bundle_with_an_extra_or_missing_file_fails_naming_it() {
    let (t, id) = repacked("echo planted > logs/planted.txt && rm report.md");
    expect(
        &bin(t.path(), &["verify", "evidence.tar.gz"]),
        1,
        &[
            &format!("{id}/logs/planted.txt is extra"),
            &format!("{id}/report.md is missing"),
        ],
    );
}

/// A gzipped tar of one entry, its header written by hand (as a hostile
/// tool would, past the checks of `tar::Builder`).
fn hostile(dir: &Path, name: &str, entry: tar::EntryType, size: u64, data: &[u8]) -> PathBuf {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(entry);
    header.set_size(size);
    header.set_mode(0o644);
    if entry == tar::EntryType::Symlink {
        header.set_link_name("/etc/passwd").unwrap();
    }
    header.set_cksum();
    let path = dir.join("hostile.tar.gz");
    let file = std::fs::File::create(&path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(header.as_bytes()).unwrap();
    gz.write_all(data).unwrap();
    gz.write_all(&vec![0u8; (512 - data.len() % 512) % 512 + 1024])
        .unwrap();
    gz.finish().unwrap();
    path
}

#[test]
fn hostile_bundles_are_refused_and_nothing_is_written() {
    let t = Test::new();
    let dir = t.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    let regular = tar::EntryType::Regular;
    for (name, entry, size, why) in [
        ("r/../../escaped", regular, 4, "climbs out with `..`"),
        ("/tmp/escaped-absolute", regular, 4, "is an absolute path"),
        ("r/link", tar::EntryType::Symlink, 0, "is a link"),
        (
            "r/huge",
            regular,
            1 << 40,
            "is too large (1099511627776 bytes",
        ),
        ("r/fifo", tar::EntryType::Fifo, 0, "is not a regular file"),
    ] {
        let data: &[u8] = if size == 4 { b"evil" } else { b"" };
        let bundle = hostile(&dir, name, entry, size, data);
        expect(
            &bin(t.path(), &["verify", bundle.to_str().unwrap()]),
            1,
            &[&format!("entry `{name}` {why}")],
        );
    }
    assert!(!t.path().join("escaped").exists());
    assert!(!Path::new("/tmp/escaped-absolute").exists());
    let listing: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(listing.len(), 1, "only the bundle: {listing:?}");

    std::fs::write(dir.join("plain.tar.gz"), "not gzip at all\n").unwrap();
    expect(
        &bin(t.path(), &["verify", "work/plain.tar.gz"]),
        1,
        &["work/plain.tar.gz is not a gzip file"],
    );
    expect(
        &bin(t.path(), &["verify", "work/absent.tar.gz"]),
        2,
        &["work/absent.tar.gz does not exist"],
    );
}

#[test]
fn evidence_on_a_full_disk_fails_clearly_and_leaves_no_file() {
    let (t, _, id) = finished_run();
    let full = t.path().join("full");
    let _mount = crate::state::Tmpfs::mount(&full, "64k");
    // Fill it: whatever space is left, the bundle does not fit.
    let mut filler = std::fs::File::create(full.join("filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    drop(filler);
    expect(
        &bin(t.path(), &["evidence", &id, "-o", "full/evidence.tar.gz"]),
        1,
        &["cannot write to full/evidence.tar.gz: No space left on device"],
    );
    let names: Vec<String> = std::fs::read_dir(&full)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["filler"]);
}

/// The bundle's tar stream, decompressed.
fn tar_of(bundle: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap()),
        &mut tar,
    )
    .unwrap();
    tar
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_bundle_with_a_second_gzip_member_is_refused_since_tar_extracts_it_too() {
    let (t, _, id) = finished_run();
    let bundle = evidence(&t, &id);
    let genuine = tar_of(&bundle);
    let mut end = genuine.len();
    while end >= 512 && genuine[end - 512..end].iter().all(|&b| b == 0) {
        end -= 512;
    }
    // A forged report in a second tar, each gzipped on its own and the
    // two concatenated: `tar xzf` extracts both, the forgery last.
    let mut forged = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(7);
    header.set_mode(0o600);
    forged
        .append_data(&mut header, format!("{id}/report.md"), &b"FORGED\n"[..])
        .unwrap();
    let forged = forged.into_inner().unwrap();
    let mut joined = gzip(&genuine[..end]);
    joined.extend(gzip(&forged));
    std::fs::write(&bundle, &joined).unwrap();
    sh(t.path(), "mkdir x && tar xzf evidence.tar.gz -C x");
    let extracted = std::fs::read_to_string(t.path().join("x").join(&id).join("report.md"));
    assert_eq!(extracted.unwrap(), "FORGED\n", "what an auditor would read");
    expect(
        &bin(t.path(), &["verify", "evidence.tar.gz"]),
        1,
        &[&format!("entry `{id}/report.md` appears twice")],
    );

    // The genuine archive whole, its end marked, and more after it: what
    // `tar --ignore-zeros` would extract.
    let mut joined = gzip(&genuine);
    joined.extend(gzip(&forged));
    std::fs::write(&bundle, &joined).unwrap();
    expect(
        &bin(t.path(), &["verify", "evidence.tar.gz"]),
        1,
        &["evidence.tar.gz has data after the end of its archive"],
    );
}

#[test]
fn a_long_name_header_inflating_far_past_any_name_is_refused_before_it_is_read() {
    let t = Test::new();
    // A GNU long-name header claiming 64 MiB: the tar reader would buffer
    // all of it (a few MiB of gzip can claim GiBs) before any check ran.
    let size: u64 = 64 << 20;
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let path = t.path().join("bomb.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(header.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..(size >> 20) {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap();
    let out = bin(t.path(), &["verify", "bomb.tar.gz"]);
    expect(&out, 1, &["a long name or PAX record over 1 MiB"]);
    assert!(
        out.stderr.len() < 4096,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

#[test]
fn verify_checks_each_runbook_version_a_resume_kept() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: versions
            steps:
              - {id: power, manual: 'Confirm both feeds.'}
              - {id: after, depends_on: [power], run: 'echo after'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let dir = t.path();
    let runs = dir.join("state/runs");
    let id = crate::harness::run_id(&t);
    let edited = std::fs::read_to_string(dir.join("runbook.yaml"))
        .unwrap()
        .replace("echo after", "echo edited");
    std::fs::write(dir.join("runbook.yaml"), &edited).unwrap();
    expect(&bin(dir, &["confirm", &id, "power"]), 0, &[]);
    expect(&bin(dir, &["resume", &id]), 0, &[]);
    let version = format!("runbook-{}.yaml", &sha256(edited.as_bytes())[..16]);
    let kept = runs.join(&id).join(&version);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), edited);
    expect(&bin(dir, &["verify", &id]), 0, &["intact"]);
    evidence(&t, &id);
    expect(&bin(dir, &["verify", "evidence.tar.gz"]), 0, &["intact"]);

    // The version the report renders the resumed steps with, rewritten.
    std::fs::write(&kept, edited.replace("echo edited", "echo forged")).unwrap();
    expect(
        &bin(dir, &["verify", &id]),
        1,
        &[
            &format!("{version} was altered: journal.jsonl:"),
            "(run-resumed)",
        ],
    );
    // In a bundle, with a manifest made to match.
    sh(
        dir,
        &format!(
            "mkdir x && tar xzf evidence.tar.gz -C x && cd x/{id} && \
             sed -i 's/echo edited/echo forged/' {version} && \
             find . -type f ! -name MANIFEST.sha256 | sed 's|^./||' | sort | \
             xargs sha256sum > MANIFEST.sha256 && cd .. && tar czf ../forged.tar.gz {id}"
        ),
    );
    expect(
        &bin(dir, &["verify", "forged.tar.gz"]),
        1,
        &[&format!("{id}/{version} was altered")],
    );
    std::fs::remove_file(&kept).unwrap();
    expect(
        &bin(dir, &["verify", &id]),
        1,
        &[&format!("{version} is missing")],
    );
}

/// A bundle saved under a run's id beside the state dir must not hide the
/// run: the run id wins, `./ID` names the file.
#[test]
fn verify_reads_a_run_id_as_the_run_even_when_a_file_has_its_name() {
    let (t, _, id) = finished_run();
    std::fs::write(t.path().join(&id), "not a bundle").unwrap();
    expect(
        &bin(t.path(), &["verify", &id]),
        0,
        &["journal.jsonl: intact"],
    );
    expect(
        &bin(t.path(), &["verify", &format!("./{id}")]),
        1,
        &["is not a gzip file"],
    );
    // A file that is no run id is still read as a bundle.
    std::fs::write(t.path().join("saved"), "not a bundle").unwrap();
    expect(
        &bin(t.path(), &["verify", "saved"]),
        1,
        &["is not a gzip file"],
    );
}

#[test]
fn evidence_into_a_missing_folder_names_the_file_asked_for_only() {
    let (t, _, id) = finished_run();
    let out = bin(t.path(), &["evidence", &id, "-o", "absent/x.tgz"]);
    expect(
        &out,
        1,
        &["cannot write to absent/x.tgz: No such file or directory"],
    );
    let all = text(&out);
    assert!(
        !all.contains(".evidence-") && !all.contains(".tmp"),
        "{all}"
    );
}
