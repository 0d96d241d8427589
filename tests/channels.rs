//! Several commands at once on one SSH host, and hosts without a POSIX
//! shell (`shell: none`), against a real sshd.

use std::path::Path;

use crate::harness::{RUN, Test, read, run_dir};
use crate::sshd::Sshd;

/// A shell line that marks `me` as started, then waits (30 s at most, a
/// hang guard) until every one of `all` has started: it can only pass if
/// they all run at the same time.
fn barrier(dir: &Path, me: &str, all: &[&str]) -> String {
    let files: Vec<String> = all
        .iter()
        .map(|s| format!("[ -e {}/started-{s} ]", dir.display()))
        .collect();
    format!(
        "touch {d}/started-{me}; i=0; until {all}; do i=$((i+1)); [ $i -lt 300 ] || exit 9; sleep 0.1; done",
        d = dir.display(),
        all = files.join(" && ")
    )
}

#[test]
fn independent_steps_on_one_host_run_at_once_over_one_login_with_their_own_output() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let dir = sshd.path("");
    let names = ["a", "b", "c"];
    // Once all three run, each writes 300 kB of its own letter on stdout
    // and on stderr at the same time as the others.
    let steps: String = names
        .iter()
        .map(|s| {
            let upper = s.to_uppercase();
            format!(
                "  - id: {s}\n    targets: [h]\n    run: '{}; head -c 300000 /dev/zero | tr \"\\0\" {upper} & head -c 300000 /dev/zero | tr \"\\0\" {s} >&2; wait'\n",
                barrier(&dir, s, &names)
            )
        })
        .collect();
    let (_, t) = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  h: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "version: 1\nname: parallel\ndefaults: {{timeout: 60s}}\nsteps:\n{steps}"
        ))
        .args(RUN)
        .stdout_contains("ok         a")
        .stdout_contains("ok         b")
        .stdout_contains("ok         c")
        .run();
    assert_eq!(sshd.logins(), 1, "one login for the whole run");
    let run = run_dir(&t);
    for s in names {
        let upper = s.to_uppercase();
        for (stream, letter) in [("stdout", upper.as_str()), ("stderr", s)] {
            let log = read(&run.join(format!("logs/{s}/h.{stream}")));
            let body = log.split_once('\n').map(|(_, b)| b).unwrap_or_default();
            assert_eq!(
                body.trim_end_matches('\n'),
                letter.repeat(300_000),
                "{s}'s {stream} is its own, whole"
            );
        }
    }
}

#[test]
fn a_timeout_kills_one_channel_while_the_others_go_on() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = format!("sleep 8{}.25", std::process::id() % 1000);
    // `watch` runs beside `hang`: it sees hang's command start, then be
    // killed on the host, while it keeps running itself.
    let (_, t) = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  h: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: timeouts
            defaults: {{on_failure: continue}}
            steps:
              - id: hang
                targets: [h]
                timeout: 3s
                run: '{marker} & {marker}; wait'
              - id: watch
                targets: [h]
                timeout: 60s
                run: 'i=0; until pgrep -f \"{marker}\" >/dev/null; do i=$((i+1)); [ $i -lt 300 ] || exit 8; sleep 0.1; done; while pgrep -f \"{marker}\" >/dev/null; do i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.1; done; echo saw-it-killed'
            "
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("timed-out  hang")
        .stdout_contains("ok         watch")
        .run();
    assert!(read(&run_dir(&t).join("logs/watch/h.stdout")).contains("saw-it-killed"));
    crate::harness::assert_no_process(&marker, "orphaned remote processes");
    assert_eq!(sshd.logins(), 1);
}

#[test]
fn interrupting_a_run_kills_every_command_running_on_the_host() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let dir = sshd.path("");
    let marker = format!("sleep 9{}.75", std::process::id() % 1000);
    let t = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  h: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: remote-hang
            defaults: {{timeout: 60s}}
            steps:
              - {{id: one, targets: [h], run: '{one}; {marker} & {marker}; wait'}}
              - {{id: two, targets: [h], run: '{two}; {marker} & {marker}; wait'}}
            ",
            one = barrier(&dir, "one", &["one", "two"]),
            two = barrier(&dir, "two", &["one", "two"]),
        ));
    let mut child = t
        .command()
        .args(RUN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_for(&sshd.path("started-one"));
    crate::harness::wait_for(&sshd.path("started-two"));
    crate::harness::interrupt_until_it_stops(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    crate::harness::assert_no_process(&marker, "remote processes survived");
}

/// An sshd whose `ForceCommand` behaves like a switch's CLI: it knows a
/// few commands, refuses anything shell-like, and logs every command line
/// it receives (`cli.log`) and every time its output was closed on it
/// (`cli.closed`).
fn switch() -> Sshd {
    let mut sshd = Sshd::prepare(&["127.0.0.2"]);
    let cli = sshd.path("cli.sh");
    let script = r#"#!/bin/sh
cmd=$SSH_ORIGINAL_COMMAND
printf '%s\n' "$cmd" >> DIR/cli.log
case $cmd in
  *[';|&$<>`']*) echo "% Invalid input detected at '^' marker." >&2; exit 1 ;;
  'show version') echo 'Switch Software, Version 15.2(7)E' ;;
  'show interfaces status') printf 'Port    Status\nGi0/1   connected\nGi0/2   notconnect\n' ;;
  'show tech-support')
    trap '' PIPE
    while echo .; do sleep 0.2; done 2>/dev/null
    echo closed >> DIR/cli.closed ;;
  *) echo "% Unknown command: $cmd" >&2; exit 1 ;;
esac
"#
    .replace("DIR", &sshd.path("").display().to_string());
    std::fs::write(&cli, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = read(&sshd.path("sshd_config"));
    config.push_str(&format!("ForceCommand {}\n", cli.display()));
    std::fs::write(sshd.path("sshd_config"), config).unwrap();
    sshd.launch();
    sshd
}

#[test]
fn a_host_without_a_shell_gets_each_command_as_it_is_and_a_timeout_closes_the_channel() {
    let sshd = switch();
    let (_, t) = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  sw1: {}\ngroups:\n  switches: {{hosts: [sw1], shell: none}}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(
            "
            version: 1
            name: switches
            defaults: {timeout: 30s, on_failure: continue}
            steps:
              - id: version
                targets: [switches]
                run: show version
                verify: {command: show version, stdout_contains: 'Version 15.2'}
              - id: ports
                targets: [switches]
                check: {command: show interfaces status, stdout_matches: 'Gi0/1 +connected'}
              - id: injected
                targets: [switches]
                run: 'show version; reload'
              - id: hang
                targets: [switches]
                timeout: 2s
                retries: 1
                retry_delay: 1s
                run: show tech-support
            ",
        )
        .args(RUN)
        .status(1)
        .stdout_contains("ok         version")
        .stdout_contains("already-ok ports")
        .stdout_contains("failed     injected")
        .stdout_contains("timed-out  hang")
        .run();
    let mut received: Vec<String> = read(&sshd.path("cli.log"))
        .lines()
        .map(str::to_string)
        .collect();
    received.sort();
    assert_eq!(
        received,
        [
            "show interfaces status",
            "show tech-support",
            "show tech-support",
            "show version",
            "show version",
            "show version; reload",
        ],
        "each command line arrived as written: no wrapper, no `sh -c`"
    );
    let run = run_dir(&t);
    assert!(
        read(&run.join("logs/injected/sw1.stderr")).contains("% Invalid input detected"),
        "the CLI's own error is kept"
    );
    // Closing the channel is what stops a command on such a host: the CLI
    // sees its output closed, once per attempt (a hang guard, not a timing).
    let started = std::time::Instant::now();
    while read(&sshd.path("cli.closed")).lines().count() < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the hanging command's channel was never closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(sshd.logins(), 1);
}

#[test]
fn a_server_allowing_few_channels_per_session_gets_one_more_session() {
    let mut sshd = Sshd::prepare(&["127.0.0.2"]);
    let config = read(&sshd.path("sshd_config")).replace("MaxSessions 200", "MaxSessions 2");
    std::fs::write(sshd.path("sshd_config"), config).unwrap();
    sshd.launch();
    let dir = sshd.path("");
    let names = ["a", "b", "c"];
    let steps: String = names
        .iter()
        .map(|s| {
            format!(
                "  - {{id: {s}, targets: [h], run: '{}'}}\n",
                barrier(&dir, s, &names)
            )
        })
        .collect();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  h: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "version: 1\nname: few-channels\ndefaults: {{timeout: 60s}}\nsteps:\n{steps}"
        ))
        .args(RUN)
        .stdout_contains("ok         a")
        .stdout_contains("ok         b")
        .stdout_contains("ok         c")
        .run();
    assert_eq!(
        sshd.logins(),
        2,
        "two channels on the first session, one on a second"
    );
}

#[test]
fn runbook_inventory_shows_each_hosts_shell_and_where_it_came_from() {
    let (out, _) = Test::new()
        .inventory(
            "version: 1\ndefaults: {ssh_config: none}\nhosts:\n  sw1: {}\n  sw2: {shell: posix}\n  web: {}\ngroups:\n  switches: {hosts: [sw1, sw2], shell: none}\n",
        )
        .args(["inventory", "-i", "inventory.yaml"])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    let shells: Vec<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("shell "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        shells,
        [
            "shell none (commands sent as they are) (group switches)",
            "shell posix (host)",
            "shell posix (default)",
        ],
        "{text}"
    );
}
