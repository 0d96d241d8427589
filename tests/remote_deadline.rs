//! The client enforces a remote command's deadline: what it kills, when,
//! and through which channel, against the real sshd.

use crate::harness::{RUN, Test, assert_no_process};
use crate::sshd::Sshd;

/// A single-quoted marker for `pgrep -f`: unique to the test process.
fn marker(prefix: u32) -> String {
    format!("sleep {prefix}{}.25", std::process::id() % 1000)
}

/// The command is stopped at its deadline, not seconds later: what it
/// would do after the deadline (here 4 s after it) never happens.
#[test]
fn a_remote_command_is_killed_at_its_deadline_not_seconds_after() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let late = sshd.path("late");
    let marker = marker(61);
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: late
            steps:
              - id: s
                targets: [a]
                timeout: 1s
                run: 'sleep 5; touch {}; {marker}'
            ",
            late.display()
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("timed-out  s")
        .run();
    assert!(
        !late.exists(),
        "the command ran on for seconds after its deadline"
    );
    assert_no_process(&marker, "the timed-out command survived");
}

/// The server allows one channel per session (`MaxSessions 1`): the
/// timed-out command holds it, so the kill needs another session. Through
/// sudo too, where SIGTERM is ignored.
#[test]
fn a_timed_out_command_is_killed_when_the_server_allows_one_channel_per_session() {
    crate::sshd::require_user("rb-nopw");
    let mut sshd = Sshd::prepare(&["127.0.0.2"]);
    sshd.set("MaxSessions", "1");
    sshd.launch();
    let marker = marker(62);
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n  b: {}\n",
            sshd.host("127.0.0.2", ""),
            sshd.host_as("127.0.0.2", "rb-nopw", ", become: true")
        ))
        .runbook(&format!(
            "
            version: 1
            name: one-channel
            steps:
              - id: hang
                targets: [a, b]
                timeout: 1s
                run: 'trap \"\" TERM; {marker} & {marker}; wait'
            "
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("timed-out  hang")
        .run();
    assert_no_process(&marker, "the timed-out command survived");
}

/// `kill $$` (a script aborting itself from a command substitution) stops
/// the script, as locally and through sudo: `$$` is the script's own shell,
/// not the wrapper's that reports its end.
#[test]
fn kill_dollar_dollar_stops_the_remote_script_as_it_does_locally() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let dir = sshd.dir.path().display().to_string();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n  me: {{transport: local}}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: abort
            steps:
              - id: s
                targets: [a, me]
                timeout: 30s
                run: 'x=$(false || kill $$); touch {dir}/after.{{{{ host.name }}}}'
            "
        ))
        .args(RUN)
        .status(1)
        // The script's own shell dies of the signal, on the host as here.
        .stdout_contains("a: failed: run failed: killed by signal TERM")
        .stdout_contains("me: failed: run failed: killed by signal TERM")
        .run();
    assert!(!sshd.path("after.me").exists(), "the local script went on");
    assert!(
        !sshd.path("after.a").exists(),
        "the remote script went on after `kill $$`"
    );
}

/// A deadline that passes before the server has answered the exec request
/// is a timeout, not a lost connection.
#[test]
fn a_deadline_passing_while_the_command_starts_is_a_timeout() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = marker(63);
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: instant
            steps:
              - {{id: s, targets: [a], timeout: 1ms, run: '{marker}'}}
            "
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("a: timed-out: run failed: timed out")
        .run();
    assert_no_process(&marker, "the timed-out command survived");
}

/// The end line comes from an `EXIT` trap of the script's shell: `exit N`
/// inside the script reports N, and a script with an `EXIT` trap of its
/// own (which replaces ours) still ends, with its own status, when its
/// channel does.
#[test]
fn exit_inside_a_remote_script_and_its_own_exit_trap_report_its_status() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let (_, t) = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(
            "
            version: 1
            name: exits
            steps:
              - id: early
                targets: [a]
                timeout: 30s
                on_failure: continue
                run: 'echo one; exit 3; echo never'
              - id: trapped
                targets: [a]
                timeout: 30s
                on_failure: continue
                run: \"trap 'echo cleaned' EXIT; echo two; false\"
            ",
        )
        .args(RUN)
        .status(1)
        .stdout_contains("a: failed: run failed: exit status 3")
        .stdout_contains("a: failed: run failed: exit status 1")
        .run();
    let logs = crate::harness::run_dir(&t).join("logs");
    let early = crate::harness::read(&logs.join("early/a.stdout"));
    assert!(early.ends_with(")\none\n"), "{early}");
    let trapped = crate::harness::read(&logs.join("trapped/a.stdout"));
    assert!(trapped.ends_with(")\ntwo\ncleaned\n"), "{trapped}");
}
