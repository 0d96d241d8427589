//! `runbook run` and `runbook status` on the local transport: scheduling,
//! failure policies, dry-run, secrets, selection.

use std::path::Path;

use crate::harness::{Test, read};

pub fn all_files_text(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                text.push_str(&all_files_text(&p));
            } else {
                text.push_str(&read(&p));
            }
        }
    }
    text
}

#[test]
fn independent_branches_overlap_and_dependents_wait() {
    // Each branch waits for the other to have started: this run can only
    // finish if the two branches really run at the same time.
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: overlap
            defaults: {timeout: 20s}
            steps:
              - {id: a, check: {command: 'false'}, run: 'echo start-a >> order; touch a.started; until [ -e b.started ]; do sleep 0.02; done; echo end-a >> order'}
              - {id: b, check: {command: 'false'}, run: 'echo start-b >> order; touch b.started; until [ -e a.started ]; do sleep 0.02; done; echo end-b >> order'}
              - {id: c, depends_on: [a, b], check: {command: 'false'}, run: 'echo c >> order'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .run();
    let order = read(&t.path().join("order"));
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 5, "{order}");
    let pos = |s: &str| lines.iter().position(|l| *l == s).unwrap();
    assert!(
        pos("start-a") < pos("end-b") && pos("start-b") < pos("end-a"),
        "{order}"
    );
    assert_eq!(lines[4], "c");
}

const POLICY: &str = "
    version: 1
    name: policy
    defaults: {timeout: 10s}
    steps:
      - {id: bad, check: {command: 'false'}, run: 'echo boom >&2; exit 4', on_failure: POLICY}
      - {id: after-bad, depends_on: [bad], check: {command: 'false'}, run: 'touch after-bad'}
      # Still running when `bad` has failed: it waits for the journal to say so.
      - {id: other, check: {command: 'false'}, run: 'until grep -hs step-finished state/runs/*/journal.jsonl | grep -q step.:.bad.; do sleep 0.02; done; touch other'}
      - {id: after-other, depends_on: [other], check: {command: 'false'}, run: 'touch after-other'}
";

#[test]
fn on_failure_continue_blocks_dependents_and_goes_on_with_the_rest() {
    let (_, t) = Test::new()
        .runbook(&POLICY.replace("POLICY", "continue"))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .stdout_contains("failed     bad @ controller: run failed: exit status 4")
        .stdout_contains("         | boom")
        .stdout_contains("blocked    after-bad (`bad` failed)")
        .stdout_contains("ok         after-other")
        .run();
    assert!(!t.path().join("after-bad").exists());
    assert!(t.path().join("after-other").exists());
}

#[test]
fn on_failure_abort_stops_scheduling_but_lets_running_steps_finish() {
    let (_, t) = Test::new()
        .runbook(&POLICY.replace("POLICY", "abort"))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .stdout_contains("ok         other")
        .stdout_contains("not run     after-other")
        .run();
    assert!(t.path().join("other").exists(), "a running step finishes");
    assert!(!t.path().join("after-other").exists(), "nothing new starts");
}

#[test]
fn on_failure_pause_exits_3_and_says_what_to_type() {
    Test::new()
        .runbook(&POLICY.replace("POLICY", "pause"))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .stdout_contains("paused     at bad: the step failed and its policy is `pause`")
        .stderr_contains("runbook mark ")
        .stderr_contains(" bad done --note '...' --state-dir state")
        .run();
}

#[test]
fn a_manual_step_pauses_a_non_interactive_run_and_yes_confirms_it() {
    let runbook = "
        version: 1
        name: manual
        steps:
          - {id: call-noc, manual: 'Call the NOC at {{ vars.noc }}.'}
          - {id: after, depends_on: [call-noc], check: {command: 'true'}}
          - {id: independent, check: {command: 'true'}}
        vars: {noc: '+33 1 23 45 67 89'}
    ";
    Test::new()
        .runbook(runbook)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .stdout_contains("paused     at call-noc: step `call-noc` needs an operator's confirmation")
        .stdout_contains("already-ok independent")
        .stderr_contains("runbook confirm ")
        .run();
    Test::new()
        .runbook(runbook)
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--yes",
            "--operator",
            "alice",
        ])
        .stdout_contains("confirmed call-noc by alice (--yes)")
        .stdout_contains("already-ok after")
        .run();
}

#[test]
fn dry_run_touches_nothing_and_shows_every_rendered_command_in_order() {
    let (output, t) = Test::new()
        .inventory(
            "
            version: 1
            hosts:
              db: {address: 127.0.0.9, port: 1, vars: {service: postgresql}}
              app: {address: 127.0.0.9, port: 1, vars: {service: 'dpi app'}}
            ",
        )
        .runbook(
            "
            version: 1
            name: rehearsal
            defaults: {timeout: 10s}
            steps:
              - {id: power, manual: 'Call the NOC.'}
              - {id: db, depends_on: [power], targets: [db], check: {command: 'touch touched-check'}, run: 'systemctl restart {{ host.vars.service }}', verify: {command: 'pg_isready --password={{ secret.DB_PASSWORD }}'}}
              - {id: app, depends_on: [db], targets: [app, db], run: 'touch touched; systemctl restart {{ host.vars.service }}', verify: {tcp: {port: 8443}}}
              - {id: proof, depends_on: [app], targets: [app], check: {command: 'curl -fsS http://{{ host.address }}/'}}
            ",
        )
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--dry-run", "--state-dir", "state"])
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = [
        "would ask an operator to confirm power",
        "db: check: touch touched-check (assumed not yet passing)",
        "db: run: systemctl restart postgresql",
        "db: verify: pg_isready --password='***' (assumed to pass)",
        "app: run: touch touched; systemctl restart 'dpi app'",
        "app: verify: tcp 127.0.0.9:8443 (assumed to pass)",
        "db: run: touch touched; systemctl restart postgresql",
        "db: verify: tcp 127.0.0.9:8443 (assumed to pass)",
        "app: check: curl -fsS http://127.0.0.9/ (assumed to pass)",
        "finished: succeeded",
    ];
    let mut at = 0;
    for line in expected {
        let found = stdout[at..]
            .find(line)
            .unwrap_or_else(|| panic!("`{line}` missing or out of order in:\n{stdout}"));
        at += found;
    }
    assert!(!t.path().join("touched").exists() && !t.path().join("touched-check").exists());
    assert!(
        !t.path().join("state").exists(),
        "a dry-run records nothing"
    );
}

#[test]
fn secrets_are_required_before_anything_runs_and_never_shown() {
    let runbook = "
        version: 1
        name: secret
        defaults: {timeout: 10s}
        steps:
          - {id: first, check: {command: 'false'}, run: 'touch ran'}
          - {id: use, depends_on: [first], check: {command: 'false'}, run: 'echo token={{ secret.API_TOKEN }}; echo {{ secret.API_TOKEN }} >&2; exit 1', on_failure: continue}
    ";
    let (_, t) = Test::new()
        .runbook(runbook)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(2)
        .stderr_contains("missing secret: `API_TOKEN` (set RUNBOOK_SECRET_API_TOKEN or add it to --secrets FILE); no host was touched")
        .run();
    assert!(!t.path().join("ran").exists());
    let value = "Sup3r-s3cret value";
    let (output, t) = Test::new()
        .runbook(runbook)
        .env("RUNBOOK_SECRET_API_TOKEN", value)
        .args(["run", "runbook.yaml", "--state-dir", "state", "-v"])
        .status(1)
        .stdout_contains("| ***")
        .run();
    let everything = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        all_files_text(&t.path().join("state"))
    );
    assert!(everything.contains("token=***"), "{everything}");
    assert!(
        !everything.contains("s3cret"),
        "the secret leaked:\n{everything}"
    );
}

#[test]
fn selection_runs_only_what_was_asked() {
    let runbook = "
        version: 1
        name: select
        defaults: {timeout: 10s}
        steps:
          - {id: a, check: {command: 'false'}, run: 'echo a >> ran', tags: [net]}
          - {id: b, depends_on: [a], check: {command: 'false'}, run: 'echo b >> ran'}
          - {id: c, depends_on: [b], check: {command: 'false'}, run: 'echo c >> ran', tags: [net]}
          - {id: d, check: {command: 'false'}, run: 'echo d >> ran'}
    ";
    for (args, expected) in [
        (vec!["--only", "b,d"], "b d"),
        (vec!["--from", "b"], "b c"),
        (vec!["--tags", "net"], "a c"),
    ] {
        let (_, t) = Test::new()
            .runbook(runbook)
            .args(["run", "runbook.yaml", "--state-dir", "state"])
            .args(args.clone())
            .run();
        let mut ran: Vec<String> = read(&t.path().join("ran"))
            .lines()
            .map(str::to_string)
            .collect();
        ran.sort();
        assert_eq!(ran.join(" "), expected, "{args:?}");
    }
    Test::new()
        .runbook(runbook)
        .args(["run", "runbook.yaml", "--only", "bb"])
        .status(2)
        .stderr_contains("unknown step `bb`; did you mean `b`?")
        .run();
}

#[test]
fn when_false_skips_a_host_and_counts_as_success() {
    Test::new()
        .runbook(
            "
            version: 1
            name: when
            vars: {site: lyon}
            steps:
              - {id: paris-only, when: \"{{ vars.site == 'paris' }}\", check: {command: 'false'}}
              - {id: next, depends_on: [paris-only], check: {command: 'true'}}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .stdout_contains("skipped    paris-only")
        .stdout_contains("already-ok next")
        .run();
}

#[test]
fn the_journal_records_every_step_and_host() {
    let (_, t) = Test::new()
        .runbook("version: 1\nname: j\nsteps:\n  - {id: a, check: {command: 'true'}}\n  - {id: b, depends_on: [a], check: {command: 'false'}, run: 'true', timeout: 5s}\n")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .run();
    let run = std::fs::read_dir(t.path().join("state/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = read(&run.join("journal.jsonl"));
    let kinds: Vec<String> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("run-started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run-finished"));
    assert_eq!(kinds.iter().filter(|k| *k == "step-finished").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "host-finished").count(), 2);
    assert_eq!(
        read(&run.join("runbook.yaml")),
        read(&t.path().join("runbook.yaml"))
    );
}

#[test]
fn status_reports_up_and_down_without_running_anything() {
    Test::new()
        .runbook(
            "
            version: 1
            name: board
            phases: [{id: net}]
            steps:
              - {id: up-step, phase: net, check: {command: 'true'}, run: 'touch ran', timeout: 5s}
              - {id: down-step, phase: net, verify: {command: 'echo nope; false'}}
              - {id: person, manual: 'Look.'}
            ",
        )
        .args(["status", "runbook.yaml"])
        .status(1)
        .stdout_contains("phase net\n  up       up-step\n      controller: up\n  DOWN     down-step\n      controller: DOWN: echo nope; false: exit status 1\n")
        .stdout_contains("unknown  person")
        .stdout_contains("1 up, 1 down, 1 unknown")
        .run();
}

#[test]
fn status_shows_a_service_up_only_when_all_its_steps_probes_pass() {
    Test::new()
        .runbook(
            "
            version: 1
            name: board
            steps:
              - {id: db, check: {command: 'true'}}
              - {id: app, check: {command: 'true'}}
              - {id: mail, verify: {command: 'false'}}
              - {id: phones, manual: 'Call the switchboard.'}
            services:
              - {id: records, title: Patient records, ready_when: [db, app]}
              - {id: email, ready_when: [app, mail]}
              - {id: telephony, ready_when: [phones]}
            ",
        )
        .args(["status", "runbook.yaml"])
        .status(1)
        .stdout_contains(
            "\nservices\n  up       records    Patient records\n  DOWN     email      (mail DOWN)\n  unknown  telephony  (phones unknown)\n",
        )
        .run();
}

#[test]
fn the_end_of_run_summary_shows_which_services_are_available() {
    Test::new()
        .runbook(
            "
            version: 1
            name: svc
            steps:
              - {id: db, check: {command: 'true'}}
              - {id: mail, run: 'false', timeout: 5s, on_failure: continue}
            services:
              - {id: records, ready_when: [db]}
              - {id: email, ready_when: [mail]}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .stdout_contains("  services\n    records  available at +")
        .stdout_contains("    email    being restored, no forecast: a step it needs failed\n")
        .run();
}

/// A one-shot HTTP server on loopback answering every request with `status`
/// and `body`; returns its port.
fn http_server(status: u16, body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, reply.as_bytes());
        }
    });
    port
}

#[test]
fn tcp_and_http_probes_run_from_the_controller() {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = crate::sshd::free_port();
    let healthy = http_server(200, "{\"instruments\":\"connected\"}");
    let broken = http_server(503, "down");
    Test::new()
        .inventory("version: 1\nhosts:\n  web: {transport: local}\n")
        .runbook(&format!(
            "
            version: 1
            name: probes
            defaults: {{on_failure: continue}}
            steps:
              - {{id: tcp-up, targets: [web], check: {{tcp: {{port: {open_port}}}}}}}
              - {{id: tcp-down, check: {{tcp: {{port: {closed_port}, host: 127.0.0.1}}, timeout: 2s}}}}
              - {{id: http-up, targets: [web], check: {{http: {{url: '/status', body_contains: '\"connected\"'}}}}}}
              - {{id: http-full-url, check: {{http: {{url: 'http://127.0.0.1:{healthy}/x', status: 200}}}}}}
              - {{id: http-503, check: {{http: {{url: 'http://127.0.0.1:{broken}/'}}}}}}
            "
        ).replace("'/status'", &format!("'http://127.0.0.1:{healthy}/status'")))
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--state-dir", "state"])
        .status(1)
        .stdout_contains("already-ok tcp-up")
        .stdout_contains("failed     tcp-down @ controller: check failed: Connection refused")
        .stdout_contains("already-ok http-up")
        .stdout_contains("already-ok http-full-url")
        .stdout_contains("failed     http-503 @ controller: check failed: status 503")
        .run();
    drop(open);
}

const SECRET: &str = "Sup3r-s3cret value";

/// A step that prints a secret in its command line, stdout and stderr,
/// then fails: the secret reaches every place a run is shown.
const LEAKY: &str = "
    version: 1
    name: leaky
    defaults: {timeout: 10s}
    steps:
      - {id: use, check: {command: 'false'}, run: 'echo token={{ secret.API_TOKEN }}; echo {{ secret.API_TOKEN }} >&2; exit 1'}
";

#[test]
fn a_secret_from_a_file_is_used_and_masked_in_every_report_format() {
    let (_, t) = Test::new()
        .runbook(LEAKY)
        .file("secrets.yaml", &format!("API_TOKEN: '{SECRET}'\n"))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .args(["--secrets", "secrets.yaml"])
        .status(1)
        .stdout_contains("| ***")
        .run();
    let dir = t.path();
    let log = all_files_text(&dir.join("state"));
    assert!(
        log.contains("token=***"),
        "the file's value was used: {log}"
    );
    assert!(!log.contains("s3cret"), "{log}");
    for format in ["md", "html", "json", "junit"] {
        let out = std::process::Command::new(crate::harness::BIN)
            .current_dir(dir)
            .args(["report", "--format", format, "--state-dir", "state"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("***"),
            "{format}: the secret is not shown masked:\n{text}"
        );
        assert!(
            !text.contains("s3cret"),
            "{format}: the secret leaked:\n{text}"
        );
    }
}

#[test]
fn a_missing_or_unreadable_secrets_file_is_a_usage_error() {
    Test::new()
        .runbook(LEAKY)
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--secrets",
            "nope.yaml",
        ])
        .status(2)
        .stderr_contains("cannot read the secrets file nope.yaml")
        .run();
    Test::new()
        .runbook(LEAKY)
        .file("secrets.yaml", "- a list\n")
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--secrets",
            "secrets.yaml",
        ])
        .status(2)
        .stderr_contains("the secrets file secrets.yaml is not a map of names to strings")
        .run();
}

#[test]
fn status_masks_a_secret_in_its_board() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: board
            steps:
              - {id: s, check: {command: 'test {{ secret.API_TOKEN }} = nothing'}}
            ",
        )
        .file("secrets.yaml", &format!("API_TOKEN: '{SECRET}'\n"))
        .args(["status", "runbook.yaml", "--secrets", "secrets.yaml"])
        .status(1)
        .stdout_contains("DOWN: ")
        .run();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("***"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn a_local_timeout_kills_the_command_and_everything_it_started() {
    let marker = format!("sleep 6{}.25", std::process::id() % 1000);
    Test::new()
        .runbook(&format!(
            "
            version: 1
            name: hang
            steps:
              - {{id: hang, timeout: 1s, check: {{command: 'false'}}, run: '{marker} & {marker}; wait'}}
            "
        ))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .stdout_contains("timed-out  hang")
        .run();
    crate::harness::assert_no_process(&marker, "orphaned local processes");
}

#[test]
fn forks_limits_how_many_hosts_run_at_once() {
    // `mkdir` is atomic: a second host inside the section fails.
    let section = "mkdir busy || exit 9; sleep 0.2; rmdir busy";
    let t = Test::new()
        .inventory(
            "
            version: 1
            hosts:
              h1: {transport: local}
              h2: {transport: local}
              h3: {transport: local}
              h4: {transport: local}
            groups:
              all4: {hosts: [h1, h2, h3, h4]}
            ",
        )
        .runbook(&format!(
            "version: 1\nname: forks\nsteps:\n  - {{id: one-at-a-time, targets: [all4], timeout: 10s, check: {{command: 'false'}}, run: '{section}'}}\n"
        ));
    t.args([
        "run",
        "runbook.yaml",
        "-i",
        "inventory.yaml",
        "--state-dir",
        "state",
    ])
    .args(["--forks", "1"])
    .stdout_contains("ok         one-at-a-time")
    .run();
}

#[test]
fn quiet_prints_only_failures_and_no_summary() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: quiet
            defaults: {timeout: 10s, on_failure: continue}
            steps:
              - {id: fine, check: {command: 'false'}, run: 'true'}
              - {id: broken, check: {command: 'false'}, run: 'exit 3'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state", "--quiet"])
        .status(1)
        .stdout_contains("failed     broken")
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("fine"), "{stdout}");
    assert!(!stdout.contains("summary"), "{stdout}");
    assert!(stdout.lines().all(|l| l.contains("failed")), "{stdout}");
}

/// The run id in `text` replaced by `RUN`: it differs from run to run.
fn without_run_id(text: &str) -> String {
    regex::Regex::new(r"\d{8}T\d{6}Z-[0-9a-f]{4}")
        .unwrap()
        .replace_all(text, "RUN")
        .into_owned()
}

const MANUAL: &str = "
    version: 1
    name: manual
    vars: {noc: '+33 1 23 45 67 89'}
    steps:
      - id: call-noc
        title: Power is stable
        manual: |
          Call the NOC at {{ vars.noc }}.
          Ask whether feed B is back.
      - {id: after, depends_on: [call-noc], check: {command: 'true'}}
";

/// Nobody at a terminal saw a prompt: the pause says what the operator
/// must do, not only that someone must confirm; so do the dry-run,
/// `status` and every report.
#[test]
fn a_paused_run_shows_the_manual_instructions_everywhere_they_are_read() {
    let (output, t) = Test::new()
        .runbook(MANUAL)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    insta::assert_snapshot!(
        "paused_stderr",
        without_run_id(&String::from_utf8_lossy(&output.stderr))
    );
    let dir = t.path();
    let run_id = crate::harness::run_id(&t);
    let report = |format: &str| {
        let out = std::process::Command::new(crate::harness::BIN)
            .current_dir(dir)
            .args([
                "report",
                &run_id,
                "--state-dir",
                "state",
                "--format",
                format,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let md = report("md");
    assert!(
        md.contains(
            "## Waiting for an operator\n\n- `call-noc`: Power is stable\n  > Call the NOC at +33 1 23 45 67 89.\n  > Ask whether feed B is back.\n"
        ),
        "{md}"
    );
    let html = report("html");
    assert!(
        html.contains("<blockquote style=\"white-space:pre-wrap\">Call the NOC at +33 1 23 45 67 89.\nAsk whether feed B is back.</blockquote>"),
        "{html}"
    );
    let json: serde_json::Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!(
        json["steps"][0]["instructions"],
        "Call the NOC at +33 1 23 45 67 89.\nAsk whether feed B is back."
    );
    assert_eq!(json["steps"][1]["instructions"], serde_json::Value::Null);

    Test::new()
        .runbook(MANUAL)
        .args(["run", "runbook.yaml", "--dry-run"])
        .stdout_contains(
            "    confirmed   call-noc  0.0s\n                  | Call the NOC at +33 1 23 45 67 89.\n                  | Ask whether feed B is back.\n",
        )
        .run();
    Test::new()
        .runbook(MANUAL)
        .args(["status", "runbook.yaml"])
        .stdout_contains(
            "  unknown  call-noc\n      controller: unknown: manual step\n      | Call the NOC at +33 1 23 45 67 89.\n      | Ask whether feed B is back.\n",
        )
        .run();
}

/// A failed run ends with what to type next, as a pause does.
#[test]
fn a_failed_run_says_how_to_retry_or_mark_the_failed_step() {
    let (output, _) = Test::new()
        .runbook(&POLICY.replace("POLICY", "abort"))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    insta::assert_snapshot!(without_run_id(&String::from_utf8_lossy(&output.stderr)));
    let (output, _) = Test::new()
        .runbook("version: 1\nname: default\nsteps:\n  - {id: bad, run: 'exit 1'}\n")
        .args(["run", "runbook.yaml"])
        .status(1)
        .run();
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(" bad done --note '...'   (fixed by hand)"),
        "no --state-dir for the default state dir"
    );
}
