//! `notify`: webhooks posted to during real runs, against a real HTTP
//! server on loopback (tests/fixtures/notify_hook.py) that fails the first
//! attempts, never answers, or records every body.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{BIN, Test, read, repo};
use crate::run::all_files_text;

/// The webhook server: a child process, killed when dropped.
struct Hook {
    child: Child,
    port: u16,
    record: PathBuf,
}

impl Hook {
    /// Answers 500 to the first `fail_first` POSTs, then 200; `hang`: never
    /// answers at all.
    fn start(dir: &Path, fail_first: u32, hang: bool) -> Self {
        Self::serve(dir, "hook", fail_first, hang, None)
    }

    /// One of several servers in `dir`, told apart by `name`; `tls`: a PEM
    /// file holding a key and its certificate, to serve HTTPS.
    fn serve(dir: &Path, name: &str, fail_first: u32, hang: bool, tls: Option<&Path>) -> Self {
        let record = dir.join(format!("{name}.posts.jsonl"));
        let port_file = dir.join(format!("{name}.port"));
        let child = Command::new("python3")
            .arg(repo().join("tests/fixtures/notify_hook.py"))
            .arg(fail_first.to_string())
            .arg(if hang { "hang" } else { "answer" })
            .arg(&record)
            .arg(&port_file)
            .args(tls)
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        crate::harness::wait_for(&port_file);
        let port = read(&port_file).trim().parse().expect("port");
        Self {
            child,
            port,
            record,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every POST received: `path`, `status` answered, `body` parsed.
    fn posts(&self) -> Vec<Value> {
        read(&self.record)
            .lines()
            .map(|l| serde_json::from_str(l).expect("record line"))
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events of the one run in `state`.
fn journal(state: &Path) -> Vec<Value> {
    let runs = state.join("runs");
    let run = std::fs::read_dir(&runs)
        .expect("runs")
        .next()
        .expect("one run")
        .expect("entry")
        .path();
    read(&run.join("journal.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

const SECRET: &str = "Hook-t0ken-9f3";

const RUNBOOK: &str = "
    version: 1
    name: notified
    phases:
      - {id: restore, title: Restore, rto: 1h}
    steps:
      - id: db
        phase: restore
        title: Database
        check: {command: 'false'}
        run: 'true'
        timeout: 10s
      - {id: broken, check: {command: 'false'}, run: 'false', timeout: 10s, on_failure: continue}
    services:
      - {id: records, title: Patient records, ready_when: [db]}
    notify:
      - webhook: \"{{ secret.CHAT }}\"
        format: json
      - webhook: \"URL/slack\"
        format: slack
        on: [step-failed, run-finished]
      - webhook: \"URL/teams\"
        format: teams
    ";

#[test]
fn notifications_reach_a_failing_webhook_after_retries_in_each_format_and_the_secret_url_is_masked()
{
    let t = Test::new();
    let hook = Hook::start(t.path(), 2, false);
    let secret_url = format!("{}?token={SECRET}", hook.url("/json"));
    let (output, t) = t
        .runbook(&RUNBOOK.replace("URL", &hook.url("")))
        .args(["run", "runbook.yaml", "--state-dir", "state", "-vvv"])
        .env("RUNBOOK_SECRET_CHAT", &secret_url)
        .env("RUST_LOG", "trace")
        .status(1)
        .run();

    let events = journal(&t.path().join("state"));
    let sent: Vec<(String, u64)> = of_kind(&events, "notification-sent")
        .iter()
        .map(|e| {
            (
                format!("{} {}", e["webhook"], e["notification"].as_str().unwrap()),
                e["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "1 phase-finished",
            "1 run-finished",
            "1 service-available",
            "1 step-failed",
            "2 run-finished",
            "2 step-failed",
            "3 phase-finished",
            "3 run-finished",
            "3 service-available",
            "3 step-failed",
        ],
        "{events:#?}"
    );
    assert!(
        sent.iter().any(|(_, attempts)| *attempts > 1),
        "the first two POSTs failed: {sent:?}"
    );
    assert!(of_kind(&events, "notification-failed").is_empty());
    let finished = of_kind(&events, "run-finished");
    assert_eq!(finished[0]["outcome"], "failed");

    let posts = hook.posts();
    assert_eq!(
        posts.iter().filter(|p| p["status"] == 500).count(),
        2,
        "{posts:#?}"
    );
    for post in posts.iter().filter(|p| p["status"] == 200) {
        assert_eq!(post["content_type"], "application/json");
        let body: Value = serde_json::from_str(post["body"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {post}"));
        let path = post["path"].as_str().unwrap();
        if path.starts_with("/json") {
            for field in ["event", "run_id", "runbook", "text", "at"] {
                assert!(body[field].is_string(), "`{field}` in {body}");
            }
            assert_eq!(body["runbook"], "notified");
            match body["event"].as_str().unwrap() {
                "step-failed" => {
                    assert_eq!(body["step"], "broken");
                    assert_eq!(body["outcome"], "failed");
                }
                "phase-finished" => {
                    assert_eq!(body["phase"], "restore");
                    assert_eq!(body["outcome"], "succeeded");
                }
                "service-available" => assert_eq!(body["service"], "records"),
                "run-finished" => assert_eq!(body["outcome"], "failed"),
                other => panic!("unexpected event {other}"),
            }
        } else if path == "/slack" {
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["text"], "{body}");
            assert!(body["text"].as_str().unwrap().contains("notified"));
        } else {
            assert_eq!(path, "/teams");
            assert_eq!(body["@type"], "MessageCard");
            assert!(body["text"].as_str().unwrap().contains("notified"));
        }
    }

    let mut everything = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        all_files_text(&t.path().join("state"))
    );
    for args in [
        vec!["report", "--state-dir", "state", "--format", "md"],
        vec!["report", "--state-dir", "state", "--format", "json"],
        vec!["runs", "--state-dir", "state"],
        vec!["run", "runbook.yaml", "--dry-run", "-vvv"],
    ] {
        let out = Command::new(BIN)
            .current_dir(t.path())
            .args(&args)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        everything.push_str(&String::from_utf8_lossy(&out.stdout));
        everything.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        everything.contains("notified `run-finished` to webhook 1"),
        "the report lists deliveries"
    );
    assert!(
        !everything.contains(SECRET),
        "the webhook's secret leaked:\n{everything}"
    );
}

const QUICK: &str = "
    version: 1
    name: quick
    steps:
      - {id: a, check: {command: 'false'}, run: 'true', timeout: 10s}
    notify:
      - webhook: URL
        on: [run-finished]
    ";

#[test]
fn a_webhook_that_keeps_failing_is_given_up_on_without_changing_the_run() {
    let t = Test::new();
    let hook = Hook::start(t.path(), u32::MAX, false);
    let (_, t) = t
        .runbook(&QUICK.replace("URL", &hook.url("/down")))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .env("RUNBOOK_NOTIFY_RETRY_FOR", "2s")
        .status(0)
        .stderr_contains("notification run-finished to webhook 1 not delivered: gave up after")
        .run();
    let events = journal(&t.path().join("state"));
    let failed = of_kind(&events, "notification-failed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(failed[0]["notification"], "run-finished");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP status 500"),
        "{}",
        failed[0]
    );
    assert!(failed[0]["attempts"].as_u64().unwrap() >= 2);
    assert!(hook.posts().len() >= 2);
    assert!(of_kind(&events, "notification-sent").is_empty());

    // The run's duration and outcome end at `run-finished`, not with the
    // notifications journaled after it.
    let finished = of_kind(&events, "run-finished")[0];
    assert_eq!(finished["outcome"], "succeeded");
    let report = Command::new(BIN)
        .current_dir(t.path())
        .args(["report", "--state-dir", "state", "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).expect("report JSON");
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["end"], finished["at"]);
    let wall = report["wall_clock_secs"].as_f64().unwrap();
    assert!(
        wall * 1000.0 <= finished["elapsed_ms"].as_f64().unwrap() + 1.0,
        "wall clock {wall}s runs past run-finished: {report}"
    );
}

#[test]
fn a_webhook_that_never_answers_does_not_hold_the_run() {
    let t = Test::new();
    let hook = Hook::start(t.path(), 0, true);
    let t = t
        .runbook(&QUICK.replace("URL", &hook.url("/hang")))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .env("RUNBOOK_NOTIFY_RETRY_FOR", "2s");
    let mut child = t
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A hang guard only: the run ends within the bounds, far under this.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the run never ended");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let events = journal(&t.path().join("state"));
    let failed = of_kind(&events, "notification-failed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(of_kind(&events, "run-finished")[0]["outcome"], "succeeded");
    assert!(!hook.posts().is_empty(), "the webhook was reached");
}

#[test]
fn each_failed_delivery_says_what_happened_in_plain_words() {
    let t = Test::new();
    let dir = t.path();
    let openssl = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl (package openssl) must be installed: run scripts/test.sh");
    assert!(openssl.status.success(), "{openssl:?}");
    let pem = read(&dir.join("key.pem")) + &read(&dir.join("cert.pem"));
    std::fs::write(dir.join("self-signed.pem"), pem).unwrap();
    let untrusted = Hook::serve(dir, "tls", 0, false, Some(&dir.join("self-signed.pem")));
    let silent = Hook::serve(dir, "silent", 0, true, None);
    let failing = Hook::serve(dir, "failing", 9, false, None);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let webhooks = [
        "http://hook.invalid/x".to_string(),
        format!("http://127.0.0.1:{closed}/x"),
        untrusted.url("/x").replace("http:", "https:"),
        silent.url("/x"),
        failing.url("/x"),
    ];
    let notify: String = webhooks
        .iter()
        .map(|url| format!("  - {{webhook: '{url}', on: [step-failed]}}\n"))
        .collect();
    // The run outlasts every attempt: each failure is the webhook's own.
    let runbook = format!(
        "version: 1\nname: n\nsteps:\n  \
         - {{id: broken, run: 'false', on_failure: continue}}\n  \
         - {{id: wait, run: 'sleep 4'}}\nnotify:\n{notify}"
    );
    let (_, t) = t
        .file("runbook.yaml", &runbook)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .env("RUNBOOK_NOTIFY_RETRY_FOR", "2s")
        .status(1)
        .run();
    let events = journal(&t.path().join("state"));
    let mut reasons: Vec<(u64, String)> = of_kind(&events, "notification-failed")
        .iter()
        .map(|e| {
            let reason = e["reason"].as_str().unwrap().to_string();
            (e["webhook"].as_u64().unwrap(), reason)
        })
        .collect();
    reasons.sort();
    let expected = [
        "name not found",
        "connection refused",
        "TLS certificate not trusted (self-signed certificate)",
        "timed out",
        "HTTP status 500",
    ];
    assert_eq!(reasons.len(), expected.len(), "{events:#?}");
    for ((webhook, reason), (n, what)) in reasons.iter().zip(expected.iter().enumerate()) {
        assert_eq!(*webhook, n as u64 + 1);
        assert!(
            reason.starts_with("gave up after ") && reason.ends_with(&format!(": {what}")),
            "webhook {webhook}: {reason:?}, expected it to say {what:?}"
        );
        assert!(
            !reason.contains("127.0.0.1") && !reason.contains("invalid"),
            "{reason}"
        );
    }
}

#[test]
fn a_second_ctrl_c_gives_up_on_the_notifications_still_queued() {
    let t = Test::new();
    let hook = Hook::start(t.path(), 0, true);
    let t = t
        .runbook(&format!(
            "
        version: 1
        name: interrupted
        steps:
          - {{id: wait, run: 'touch started; sleep 2'}}
        notify:
          - {{webhook: '{}', on: [run-finished]}}
        ",
            hook.url("/hang")
        ))
        .args(["run", "runbook.yaml", "--state-dir", "state"]);
    let mut child = t
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_for(&t.path().join("started"));
    // The first lets the step finish; the run's end is then posted to a
    // webhook that never answers, and the run waits for it.
    crate::harness::interrupt(&child);
    crate::harness::wait_for(&hook.record);
    crate::harness::interrupt(&child);
    // A hang guard only.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the run never ended");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let events = journal(&t.path().join("state"));
    assert_eq!(
        of_kind(&events, "run-finished")[0]["outcome"],
        "interrupted"
    );
    let failed = of_kind(&events, "notification-failed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(failed[0]["notification"], "run-finished");
    assert_eq!(failed[0]["reason"], "interrupted");
}

#[test]
fn a_dry_run_sends_nothing() {
    let t = Test::new();
    let hook = Hook::start(t.path(), 0, false);
    let (output, _) = t
        .runbook(&RUNBOOK.replace("URL", &hook.url("")))
        .args(["run", "runbook.yaml", "--dry-run"])
        .status(0)
        .run();
    assert!(hook.posts().is_empty(), "{:?}", hook.posts());
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&hook.url("")));
}

#[test]
fn notify_is_checked_where_it_is_written() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - {id: a, check: {command: 'true'}}
            notify:
              - webhook: '{{ secret.CHAT }}'
                format: jsn
                on: [step-failed, phase-done]
              - webhook: 'https://{{ vars.host }}/hook'
              - webhook: 'https://bot:pa55@chat.example/hook'
                formt: slack
            ",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "error: unknown format `jsn`; expected `json`, `slack` or `teams`\n  --> runbook.yaml:7:13",
        "error: unknown event `phase-done`; expected `phase-finished`, `step-failed`, `paused`, `rto-at-risk`, `service-available` or `run-finished`\n  --> runbook.yaml:8:23",
        "error: unknown field `formt`\n  --> runbook.yaml:11:5",
    ] {
        assert!(stderr.contains(expected), "{expected}\n--- in:\n{stderr}");
    }
    // Once the structure is right, the webhooks themselves.
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - {id: a, check: {command: 'true'}}
            notify:
              - webhook: 'https://{{ vars.host }}/hook'
              - webhook: 'https://bot:pa55@chat.example/hook'
            ",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "error: `webhook` must be `{{ secret.NAME }}` or an http:// or https:// URL: a template other than a secret reference is not allowed here\n  --> runbook.yaml:6:14",
        "warning: this looks like a literal credential in a webhook URL\n  --> runbook.yaml:7:14",
    ] {
        assert!(stderr.contains(expected), "{expected}\n--- in:\n{stderr}");
    }
}

#[test]
fn a_missing_webhook_secret_stops_the_run_before_it_starts() {
    Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - {id: a, check: {command: 'true'}}
            notify:
              - webhook: '{{ secret.CHAT }}'
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(2)
        .stderr_contains("CHAT")
        .run();
}

#[test]
fn a_webhook_secret_that_is_not_an_http_url_stops_the_run_before_it_starts() {
    for value in [
        format!("chat.example/{SECRET}"),
        format!("ftp://chat.example/{SECRET}"),
    ] {
        let (output, t) = Test::new()
            .runbook(
                "
                version: 1
                name: demo
                steps:
                  - {id: a, run: 'touch ran'}
                notify:
                  - webhook: 'http://127.0.0.1:9/hook'
                  - webhook: '{{ secret.CHAT }}'
                ",
            )
            .args(["run", "runbook.yaml", "--state-dir", "state"])
            .env("RUNBOOK_SECRET_CHAT", &value)
            .status(2)
            .stderr_contains(
                "the secret `CHAT` of webhook 2 in `notify` is not an http:// or https:// URL",
            )
            .run();
        let all = format!("{output:?}");
        assert!(!all.contains(SECRET), "the value is shown: {all}");
        assert!(!t.path().join("ran").exists(), "the run started");
        let runs = std::fs::read_dir(t.path().join("state/runs")).map_or(0, Iterator::count);
        assert_eq!(runs, 0, "a run was journaled");
    }
}

#[test]
fn a_run_waiting_for_an_operator_notifies_the_pause_and_the_phase_at_risk() {
    let t = Test::new();
    let hook = Hook::start(t.path(), 0, false);
    let (_, t) = t
        .runbook(&format!(
            "
            version: 1
            name: waiting
            phases:
              - {{id: network, rto: 30m}}
            steps:
              - id: confirm-power
                phase: network
                manual: Call the NOC.
                estimate: 1h
            notify:
              - webhook: {}
                on: [paused, rto-at-risk, run-finished]
            ",
            hook.url("/json")
        ))
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(3)
        .run();
    let bodies: Vec<Value> = hook
        .posts()
        .iter()
        .map(|p| serde_json::from_str(p["body"].as_str().unwrap()).unwrap())
        .collect();
    let said: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["event"].as_str().unwrap(),
                b["step"]
                    .as_str()
                    .or(b["phase"].as_str())
                    .or(b["outcome"].as_str())
                    .unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("paused", "confirm-power"),
            ("rto-at-risk", "network"),
            ("run-finished", "paused"),
        ],
        "{bodies:#?}"
    );
    let events = journal(&t.path().join("state"));
    assert_eq!(of_kind(&events, "notification-sent").len(), 3);
}

#[test]
fn a_resumed_run_notifies_what_changed_since_and_nothing_twice() {
    let t = Test::new();
    let hook = Hook::start(t.path(), 0, false);
    let t = t.runbook(&format!(
        "
        version: 1
        name: resumed
        phases:
          - {{id: pa}}
          - {{id: pb, depends_on: [pa]}}
        steps:
          - {{id: a, phase: pa, check: {{command: 'true'}}}}
          - {{id: m, phase: pb, manual: do it}}
        services:
          - {{id: sa, ready_when: [a]}}
          - {{id: sb, ready_when: [m]}}
        notify:
          - webhook: {}
        ",
        hook.url("/json")
    ));
    let run = |args: &[&str], code: i32| {
        let status = Command::new(BIN)
            .current_dir(t.path())
            .args(args)
            .args(["--state-dir", "state"])
            .env("HOME", t.path())
            .output()
            .unwrap()
            .status;
        assert_eq!(status.code(), Some(code), "{args:?}");
    };
    run(&["run", "runbook.yaml"], 3);
    let id = journal(&t.path().join("state"))[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    run(&["confirm", &id, "m", "--note", "done by phone"], 0);
    run(&["resume", &id], 0);
    let said: Vec<String> = hook
        .posts()
        .iter()
        .map(|p| {
            let b: Value = serde_json::from_str(p["body"].as_str().unwrap()).unwrap();
            let about = ["phase", "service", "step", "outcome"]
                .iter()
                .find_map(|k| b[k].as_str())
                .unwrap_or("");
            format!("{} {about}", b["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        said,
        [
            "phase-finished pa",
            "service-available sa",
            "paused m",
            "run-finished paused",
            "phase-finished pb",
            "service-available sb",
            "run-finished succeeded",
        ]
    );
}
