//! `runbook handoff`: the shift-change summary of runs that are paused,
//! failed, interrupted and still running, what it journals, and everyone
//! who acted on a run over several shifts.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{BIN, Test, interrupt_until_it_stops, wait_for};

fn bin(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .args(["--state-dir", "state"])
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_STATE_DIR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout of a command that must succeed.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = bin(dir, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn only_run(dir: &Path) -> String {
    let ids: Vec<String> = std::fs::read_dir(dir.join("state/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

fn journal(dir: &Path, id: &str) -> String {
    std::fs::read_to_string(dir.join("state/runs").join(id).join("journal.jsonl")).unwrap()
}

/// The lines of section `title` (up to the next heading).
fn section<'a>(doc: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = doc.lines().skip_while(|l| !l.starts_with(title));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no {title:?} in\n{doc}"));
    std::iter::once(head)
        .chain(lines.take_while(|l| !l.starts_with("## ") && !l.starts_with(char::is_uppercase)))
        .collect()
}

const PAUSED: &str = "
    version: 1
    name: shift
    title: Site failover
    phases:
      - {id: net, rto: 1h}
      - {id: apps, depends_on: [net], rto: 2h}
    steps:
      - {id: net, title: Core network, phase: net, check: {command: 'false'}, run: 'true', estimate: 5m}
      - id: power
        title: Confirm power
        phase: apps
        manual: |
          Call the NOC and confirm both feeds are stable.
        estimate: 15m
      - {id: app, phase: apps, depends_on: [power], check: {command: 'false'}, run: 'true', estimate: 2h}
    ";

#[test]
fn handoff_of_a_paused_run_says_who_waits_for_what_and_the_next_one_starts_where_it_ended() {
    let (_, t) = Test::new()
        .runbook(PAUSED)
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--operator",
            "alice",
        ])
        .status(3)
        .run();
    let dir = t.path();
    let id = only_run(dir);

    let md = ok(dir, &["handoff", "--operator", "alice"]);
    assert!(
        md.starts_with("# Hand-off: `shift`: Site failover\n"),
        "{md}"
    );
    assert!(md.contains(&format!("| run | `{id}` |")), "{md}");
    assert!(md.contains("| outcome | paused |"), "{md}");
    assert!(md.contains("| since | the start of the run |"), "{md}");
    let done = section(&md, "## Done");
    assert_eq!(done[..2], ["## Done (1)", ""], "{md}");
    assert!(done[2].starts_with("- `net` Core network: ok in "), "{md}");
    let waiting = section(&md, "## Waiting for an operator").join("\n");
    assert!(
        waiting.contains(
            "- `power` Confirm power: waits for an operator to do this by hand, then confirm\n  \
             > Call the NOC and confirm both feeds are stable.\n\n  then: `runbook confirm "
        ),
        "{md}"
    );
    assert!(
        waiting.contains(&format!("runbook confirm {id} power --operator NAME")),
        "{md}"
    );
    let next = section(&md, "## Next on the critical path");
    assert!(
        next[2].starts_with("- `power` Confirm power: waiting, ~"),
        "{md}"
    );
    assert!(
        next[3].starts_with("- `app`: not run, ~2h left, forecast done "),
        "{md}"
    );
    assert!(
        next.iter()
            .any(|l| l.starts_with("forecast end of the run: ")),
        "{md}"
    );
    let phases = section(&md, "## Phases against their RTO").join("\n");
    assert!(phases.contains("- `net`: done at "), "{md}");
    assert!(phases.contains("; RTO 1h, met"), "{md}");
    // 15 minutes of confirmation, then two hours of `app`: past the RTO.
    assert!(phases.contains("; RTO 2h, **at risk**"), "{md}");
    assert!(
        md.contains("## Decisions and notes since the start of the run (0)\n\nnone\n"),
        "{md}"
    );
    assert!(
        journal(dir, &id)
            .lines()
            .last()
            .unwrap()
            .contains(r#""event":"handed-off","operator":"alice""#),
        "each hand-off is journaled"
    );

    ok(
        dir,
        &[
            "confirm",
            &id,
            "power",
            "--operator",
            "bob",
            "--note",
            "feeds stable",
        ],
    );
    let txt = ok(
        dir,
        &["handoff", &id, "--format", "text", "--operator", "carol"],
    );
    assert!(txt.starts_with("HAND-OFF: shift: Site failover\n"), "{txt}");
    assert!(
        txt.contains("since:         the hand-off by alice at "),
        "{txt}"
    );
    assert!(
        txt.contains("\nWAITING FOR AN OPERATOR (0)\n  nobody\n"),
        "{txt}"
    );
    assert!(txt.contains("  power Confirm power: confirmed"), "{txt}");
    assert!(
        txt.contains("\nDECISIONS AND NOTES SINCE the hand-off by alice at "),
        "{txt}"
    );
    assert!(
        txt.contains(" bob confirmed power: feeds stable\n"),
        "{txt}"
    );
    assert!(
        txt.contains("\nNEXT ON THE CRITICAL PATH\n  app: not run, ~2h left"),
        "{txt}"
    );

    // Nothing was decided since carol's hand-off; an explicit window
    // reaches back past it.
    let again = ok(dir, &["handoff", "--format", "text", "--operator", "dave"]);
    assert!(again.contains("SINCE the hand-off by carol at "), "{again}");
    assert!(!again.contains("feeds stable"), "{again}");
    let window = ok(dir, &["handoff", "--since", "1h", "--operator", "dave"]);
    assert!(
        window.contains(" bob confirmed `power`: feeds stable\n"),
        "{window}"
    );
    let future = ok(
        dir,
        &[
            "handoff",
            "--since",
            "2999-01-01T00:00:00+01:00",
            "--operator",
            "dave",
        ],
    );
    assert!(future.contains("(0)\n\nnone\n"), "{future}");

    // Everyone who acted over the shifts, in every view.
    let runs: serde_json::Value =
        serde_json::from_str(&ok(dir, &["runs", "--format", "json"])).unwrap();
    assert_eq!(runs[0]["operator"], "alice,bob,carol,dave");
    assert_eq!(
        runs[0]["operators"],
        serde_json::json!(["alice", "bob", "carol", "dave"])
    );
    assert_eq!(
        runs[0]["outcome"], "unfinished",
        "a hand-off does not change the run"
    );
    assert!(ok(dir, &["runs"]).contains(" alice,bob,carol,dave "));
    let report: serde_json::Value =
        serde_json::from_str(&ok(dir, &["report", "--format", "json"])).unwrap();
    assert_eq!(
        report["operators"],
        serde_json::json!(["alice", "bob", "carol", "dave"])
    );
    let md = ok(dir, &["report"]);
    assert!(
        md.contains("| operators | alice, bob, carol, dave |"),
        "{md}"
    );
    assert!(md.contains(" handed off by carol\n"), "{md}");
    let html = ok(dir, &["report", "--format", "html"]);
    assert!(html.contains("alice, bob, carol, dave"), "{html}");
    let junit = ok(dir, &["report", "--format", "junit"]);
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let operators = doc
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("operators"))
        .unwrap_or_else(|| panic!("{junit}"));
    assert_eq!(operators.attribute("value"), Some("alice,bob,carol,dave"));
}

#[test]
fn handoff_of_a_failed_run_shows_the_end_of_stderr_and_what_is_blocked() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: broken
            steps:
              - {id: restore, check: {command: 'false'}, run: 'echo starting; echo disk full on /var >&2; exit 1', timeout: 5s}
              - {id: after, depends_on: [restore], run: 'true'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    let dir = t.path();
    let id = only_run(dir);
    let md = ok(dir, &["handoff"]);
    let failed = section(&md, "## Failed").join("\n");
    assert!(failed.starts_with("## Failed (2)"), "{md}");
    assert!(
        failed.contains("- `restore`: failed\n  - on `controller`: run failed: exit status 1, 1 attempt(s)\n\n    ```\n    disk full on /var\n    ```"),
        "{md}"
    );
    assert!(failed.contains("- `after`: blocked by `restore`"), "{md}");
    assert!(
        failed.contains(&format!(
            "`runbook mark {id} STEP done|skipped --note TEXT`"
        )),
        "{md}"
    );
    let txt = ok(dir, &["handoff", "--format", "text"]);
    assert!(txt.contains("\n      | disk full on /var\n"), "{txt}");
    assert!(txt.contains("\nIN FLIGHT (0)\n  nothing\n"), "{txt}");
}

#[test]
fn handoff_of_an_interrupted_run_names_the_step_cut_short() {
    let marker = format!("sleep 8{}.5", std::process::id() % 1000);
    let t = Test::new().runbook(&format!(
        "version: 1\nname: hard\nsteps:\n  - {{id: slow, title: Copy the database, check: {{command: 'false'}}, timeout: 60s, run: 'touch started; {marker}'}}\n  - {{id: next, depends_on: [slow], run: 'true'}}\n"
    ));
    let dir = t.path().to_path_buf();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("started"));
    interrupt_until_it_stops(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let md = ok(&dir, &["handoff"]);
    assert!(md.contains("| outcome | interrupted |"), "{md}");
    let flight = section(&md, "## In flight").join("\n");
    assert!(
        flight.contains("- `slow` Copy the database: interrupted when the run stopped (0 of 1 host(s) finished); `resume` asks its hosts"),
        "{md}"
    );
    assert!(
        section(&md, "## Next on the critical path")
            .join("\n")
            .contains("- `next`: not run"),
        "{md}"
    );
}

#[test]
fn handoff_during_a_live_run_shows_it_and_leaves_the_journal_to_the_run() {
    let t = Test::new().runbook(
        "
        version: 1
        name: live
        steps:
          - {id: first, check: {command: 'false'}, run: 'true', timeout: 5s}
          - {id: slow, title: Wait for the go, depends_on: [first], check: {command: 'false'}, run: 'touch started; while [ ! -e go ]; do sleep 0.05; done', timeout: 60s}
        ",
    );
    let dir = t.path().to_path_buf();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--operator",
            "alice",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("started"));
    let out = bin(&dir, &["handoff", "--format", "text", "--operator", "bob"]);
    std::fs::write(dir.join("go"), "").unwrap();
    let status = child.wait().unwrap();
    let txt = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{txt}{}", text(&out.stderr));
    assert!(txt.contains("outcome:       unfinished\n"), "{txt}");
    assert!(txt.contains("\nDONE (1)\n  first: ok"), "{txt}");
    assert!(
        txt.contains("\nIN FLIGHT (1)\n  slow Wait for the go: running for "),
        "{txt}"
    );
    assert!(txt.contains(" (0 of 1 host(s) finished)\n"), "{txt}");
    assert!(
        text(&out.stderr).contains("a run is active on state, so this hand-off is not journaled")
    );
    assert_eq!(status.code(), Some(0));
    let id = only_run(&dir);
    assert!(
        !journal(&dir, &id).contains("handed-off"),
        "the live run is the journal's writer"
    );
    let md = ok(&dir, &["handoff", "--operator", "bob"]);
    assert!(md.contains("| since | the start of the run |"), "{md}");
    assert!(md.contains("| outcome | succeeded |"), "{md}");
}

#[test]
fn handoff_refuses_a_bad_since_and_an_unknown_run() {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: one\nsteps:\n  - {id: a, run: 'true'}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .run();
    let dir = t.path();
    let out = bin(dir, &["handoff", "--since", "yesterday-ish"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "invalid value 'yesterday-ish' for '--since <TIME>': `yesterday-ish` is neither an RFC 3339 time"
        ),
        "{}",
        text(&out.stderr)
    );
    // Further back than the epoch: everything since the run's start.
    let out = bin(dir, &["handoff", "--since", "99999999999h"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("| since | 1970-01-01T00:00:00Z |"),
        "{}",
        text(&out.stdout)
    );
    let out = bin(dir, &["handoff", "20990101T000000Z-0000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown run id `20990101T000000Z-0000`"),
        "{}",
        text(&out.stderr)
    );
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["handoff", "x", "--state-dir", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        !dir.join("nowhere").exists(),
        "a hand-off creates no state dir"
    );
}

#[test]
fn handoff_keeps_its_structure_whatever_notes_titles_and_stderr_hold() {
    let (_, t) = Test::new()
        .runbook(
            r#"
            version: 1
            name: hostile
            steps:
              - {id: power, title: "Power\n## Failed (0)", manual: "Call the NOC."}
              - {id: app, depends_on: [power], run: 'true'}
              - {id: restore, run: "printf 'disk full\\n```\\n# INJECTED\\n' >&2; exit 1"}
            "#,
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    let dir = t.path();
    let id = only_run(dir);
    ok(
        dir,
        &[
            "confirm",
            &id,
            "power",
            "--operator",
            "alice",
            "--note",
            "feeds ok\n## Waiting for an operator (0)\n- nothing",
        ],
    );
    // `--operator` refuses a newline; a journal line anyone wrote does not.
    let path = dir.join("state/runs").join(&id).join("journal.jsonl");
    let forged = journal(dir, &id).replace(
        r#""operator":"alice""#,
        r#""operator":"alice\n## In flight (0)""#,
    );
    std::fs::write(&path, forged).unwrap();
    let headings = [
        "## Done",
        "## In flight",
        "## Failed",
        "## Waiting for an operator",
        "## Next on the critical path",
        "## Phases against their RTO",
        "## Decisions and notes since",
    ];
    let md = ok(dir, &["handoff", "--operator", "bob"]);
    let found: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(found.len(), headings.len() + 1, "{md}");
    for (line, heading) in found[1..].iter().zip(headings) {
        assert!(
            line.starts_with(heading),
            "{line:?} for {heading:?} in\n{md}"
        );
    }
    assert!(
        md.contains("confirmed `power`: feeds ok ## Waiting for an operator (0) - nothing\n"),
        "{md}"
    );
    // The end of stderr stays inside its fence: a line of backticks at
    // least as long as the opening one would close it (CommonMark).
    let lines: Vec<&str> = md.lines().collect();
    let fence = |l: &str| {
        let l = l.trim();
        l.len() >= 3 && l.chars().all(|c| c == '`')
    };
    let open = lines.iter().position(|l| fence(l)).expect("a fence");
    let close = open
        + 1
        + lines[open + 1..]
            .iter()
            .position(|l| fence(l) && l.trim().len() >= lines[open].trim().len())
            .expect("a closing fence");
    let injected = lines.iter().position(|l| l.contains("# INJECTED")).unwrap();
    assert!(open < injected && injected < close, "{md}");

    let txt = ok(dir, &["handoff", "--format", "text", "--operator", "carol"]);
    let upper: Vec<&str> = txt
        .lines()
        .filter(|l| l.starts_with(char::is_uppercase) || l.starts_with('#'))
        .collect();
    assert_eq!(upper.len(), headings.len() + 1, "{txt}");
    assert!(txt.contains("alice ## In flight (0)"), "{txt}");
}

/// Escape sequences clear the screen or retitle the window of whoever
/// reads the hand-off, the report or the run's lines on a terminal. This
/// version journals a host's stderr escaped, but an older one did not, and
/// anyone who can write a journal line names the operators; notes are typed
/// freely.
#[test]
fn handoff_report_and_run_lines_never_print_control_characters() {
    let hostile = "op\u{1b}]0;title\u{7}";
    let (output, t) = Test::new()
        .runbook(
            r"
            version: 1
            name: escapes
            steps:
              - id: loud
                run: printf 'before\033[2Jmid\033]0;title\007after\n' >&2; exit 3
                on_failure: continue
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .args(["--operator", "alice"])
        .status(1)
        .run();
    let raw = |c: char| c.is_control() && c != '\n' && c != '\t';
    let lines = text(&output.stdout) + &text(&output.stderr);
    assert!(!lines.contains(raw), "{lines:?}");
    assert!(
        lines.contains(r"before\u{1b}[2Jmid\u{1b}]0;title\u{7}after"),
        "{lines}"
    );
    let dir = t.path();
    let id = only_run(dir);
    // As an older version journaled it: the bytes the host wrote.
    let path = dir.join("state/runs").join(&id).join("journal.jsonl");
    let hostile_operator = |journal: String| {
        journal.replace(
            r#""operator":"alice""#,
            &format!(r#""operator":{}"#, serde_json::to_string(hostile).unwrap()),
        )
    };
    let older = hostile_operator(
        journal(dir, &id)
            .replace(r"\\u{1b}", r"\u001b")
            .replace(r"\\u{7}", r"\u0007"),
    );
    assert!(older.contains(r"before\u001b[2J"), "{older}");
    assert!(older.contains(r"op\u001b]0;title\u0007"), "{older}");
    std::fs::write(&path, older).unwrap();
    let failed = ok(dir, &["handoff", "--format", "text"]);
    assert!(!failed.contains(raw), "{failed:?}");
    assert!(failed.contains(r"before\u{1b}[2Jmid"), "{failed}");
    ok(
        dir,
        &[
            "mark",
            &id,
            "loud",
            "done",
            "--operator",
            "alice",
            "--note",
            "fixed\u{1b}[2J",
        ],
    );
    std::fs::write(&path, hostile_operator(journal(dir, &id))).unwrap();
    for args in [
        &["handoff", "--format", "text", "--since", "1h"][..],
        &["handoff", "--format", "md", "--since", "1h"],
        &["report", "--format", "md"],
        &["report", "--format", "html"],
        &["runs"],
    ] {
        let shown = ok(dir, args);
        assert!(!shown.contains(raw), "{args:?}: {shown:?}");
        assert!(
            shown.contains(r"op\u{1b}]0;title\u{7}"),
            "{args:?}: {shown}"
        );
    }
    let report = ok(dir, &["report", "--format", "md"]);
    assert!(report.contains(r"before\u{1b}[2Jmid"), "{report}");
    assert!(report.contains(r"fixed\u{1b}[2J"), "{report}");
    let html = ok(dir, &["report", "--format", "html"]);
    assert!(html.contains(r"before\u{1b}[2Jmid"), "{html}");
    assert!(html.contains(r"fixed\u{1b}[2J"), "{html}");
}

/// A run paused for an operator, started by `alice`: its id and journal,
/// for a test to forge lines in.
fn paused_by_alice() -> (Test, String, std::path::PathBuf) {
    let (_, t) = Test::new()
        .runbook(PAUSED)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .args(["--operator", "alice"])
        .status(3)
        .run();
    let id = only_run(t.path());
    let path = t.path().join("state/runs").join(&id).join("journal.jsonl");
    (t, id, path)
}

/// A journal line anyone wrote reaches the terminal of whoever lists the
/// runs or verifies the journal, or reads an error quoting it: as text,
/// never as the escape sequences it holds.
#[test]
fn runs_verify_and_errors_show_a_hostile_journal_line_escaped() {
    let (t, id, path) = paused_by_alice();
    let dir = t.path();
    let raw = |c: char| c.is_control() && c != '\n' && c != '\t';
    let hostile = r"eve\u{1b}]0;owned\u{7}";
    let original = journal(dir, &id);
    let forged = original.replace(
        r#""operator":"alice""#,
        r#""operator":"eve\u001b]0;owned\u0007""#,
    );
    assert!(forged.contains("eve"));
    std::fs::write(&path, &forged).unwrap();
    let out = bin(dir, &["runs"]);
    let shown = text(&out.stdout);
    assert!(!shown.contains(raw), "{shown:?}");
    assert!(shown.contains(hostile), "{shown}");

    // A line with no place in the chain: `verify` names its kind.
    let inserted = format!(
        "{original}{}\n",
        r#"{"event":"x\u001b]0;owned\u0007","at":"2026-11-28T10:00:00Z","elapsed_ms":1}"#
    );
    std::fs::write(&path, inserted).unwrap();
    let out = bin(dir, &["verify", &id]);
    let shown = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(!shown.contains(raw), "{shown:?}");
    assert!(shown.contains(r"x\u{1b}]0;owned\u{7}"), "{shown}");

    // An error quotes what it could not use: here a run id that is no run.
    let out = bin(dir, &["report", "run\u{1b}[2J"]);
    let shown = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(!shown.contains(raw), "{shown:?}");
    assert!(shown.contains(r"run\u{1b}[2J"), "{shown}");
}

/// JSON output keeps every string's text, but no C1 control (U+009B opens
/// an escape sequence on some terminals) reaches the screen raw: it is
/// written as a `\u009b` escape, which a JSON reader decodes back.
#[test]
fn json_outputs_escape_c1_controls_from_a_forged_journal() {
    let (t, id, path) = paused_by_alice();
    let dir = t.path();
    let forged =
        journal(dir, &id).replace(r#""operator":"alice""#, r#""operator":"eve\u009b2J\u007f""#);
    std::fs::write(&path, forged).unwrap();
    let c1 = |c: char| ('\u{7f}'..='\u{9f}').contains(&c);
    for args in [
        &["runs", "--format", "json"][..],
        &["report", &id, "--format", "json"][..],
    ] {
        let out = bin(dir, args);
        let shown = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(!shown.contains(c1), "{args:?}: {shown:?}");
        assert!(shown.contains(r"eve\u009b2J\u007f"), "{args:?}: {shown}");
        let value: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert!(value.to_string().contains("eve\u{9b}2J\u{7f}"), "{args:?}");
    }
}

/// An operator's name is journaled and later printed on others' terminals:
/// one holding a control character is refused, from `--operator` or
/// `$USER`, before anything is written.
#[test]
fn an_operator_name_with_a_control_character_is_refused_before_anything_is_journaled() {
    let t = Test::new().runbook(PAUSED);
    let dir = t.path();
    for (args, user, named) in [
        (&["--operator", "eve\u{1b}[2J"][..], "alice", "`--operator`"),
        (&[], "eve\u{1b}[2J", "`$USER`"),
    ] {
        let out = Command::new(BIN)
            .current_dir(dir)
            .args(["run", "runbook.yaml", "--state-dir", "state"])
            .args(args)
            .env("USER", user)
            .env_remove("RUNBOOK_STATE_DIR")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "error: {named} holds a control character (\\u{{1b}})"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
        assert!(!dir.join("state").exists(), "nothing may be written");
    }
    let (_, t) = t
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .args(["--operator", "alice"])
        .status(3)
        .run();
    let dir = t.path();
    let id = only_run(dir);
    let before = journal(dir, &id);
    for name in ["eve\u{1b}]0;x\u{7}", "eve\nbob", "eve\u{9b}2J"] {
        for args in [
            &["confirm", &id, "power", "--operator", name][..],
            &[
                "mark",
                &id,
                "power",
                "done",
                "--note",
                "n",
                "--operator",
                name,
            ],
            &["handoff", &id, "--operator", name],
            &["resume", &id, "--operator", name],
        ] {
            let out = bin(dir, args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains("holds a control character"),
                "{args:?}: {stderr}"
            );
            assert!(
                !stderr.contains(|c: char| c.is_control() && c != '\n'),
                "{args:?}: {stderr:?}"
            );
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    assert_eq!(journal(dir, &id), before, "nothing was journaled");
}
