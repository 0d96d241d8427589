//! The SSH transport against a real sshd on loopback.

use std::path::Path;

use crate::harness::{RUN, Test, read};
use crate::sshd::{Sshd, free_port};

/// `runbook run` on the test's runbook and inventory.
#[test]
fn runs_on_two_hosts_over_one_connection_each_and_logs_output() {
    let sshd = Sshd::start(&["127.0.0.2", "127.0.0.3"]);
    let out = sshd.path("out");
    let t = Test::new()
        .inventory(&format!(
            "
            version: 1
            hosts:
              a: {}
              b: {}
            groups:
              web: {{hosts: [a, b]}}
            ",
            sshd.host("127.0.0.2", ""),
            sshd.host("127.0.0.3", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: ssh-demo
            defaults: {{timeout: 30s}}
            steps:
              - id: first
                targets: [web]
                run: echo \"$SSH_CONNECTION\" | cut -d' ' -f3 >> {out}.{{{{ host.name }}}}; echo hello-from-{{{{ host.name }}}}; echo warn >&2
                verify: {{command: 'test -s {out}.{{{{ host.name }}}}'}}
              - id: second
                depends_on: [first]
                targets: [web]
                check: {{command: 'grep -q 127 {out}.{{{{ host.name }}}}'}}
                run: 'false'
            ",
            out = out.display()
        ))
        .args(RUN)
        .stdout_contains("ok         first")
        .stdout_contains("already-ok second");
    let (_, t) = t.run();
    assert_eq!(sshd.logins(), 2, "one connection per host for both steps");
    assert_eq!(read(&sshd.path("out.a")).trim(), "127.0.0.2");
    assert_eq!(read(&sshd.path("out.b")).trim(), "127.0.0.3");
    let runs: Vec<_> = std::fs::read_dir(t.path().join("state/runs"))
        .unwrap()
        .collect();
    let run = runs[0].as_ref().unwrap().path();
    let log = read(&run.join("logs/first/a.stdout"));
    assert!(log.contains("hello-from-a"), "{log}");
    assert!(read(&run.join("logs/first/b.stderr")).contains("warn"));
}

#[test]
fn verify_is_polled_and_run_is_retried() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let counter = sshd.path("count");
    let runs = sshd.path("runs");
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: poll
            steps:
              - id: flaky
                targets: [a]
                timeout: 10s
                retries: 2
                retry_delay: 100ms
                run: echo x >> {runs}; test $(wc -l < {runs}) -ge 2
                verify:
                  command: echo x >> {counter}; test $(wc -l < {counter}) -ge 3
                  attempts: 5
                  interval: 100ms
            ",
            runs = runs.display(),
            counter = counter.display()
        ))
        .args(RUN)
        .stdout_contains("ok         flaky")
        .run();
    assert_eq!(
        read(&runs).lines().count(),
        2,
        "run: one failure, one retry"
    );
    assert_eq!(
        read(&counter).lines().count(),
        3,
        "verify polled until its third attempt"
    );
}

#[test]
fn a_timeout_kills_the_remote_command_and_everything_it_started() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = format!("sleep 7{}.25", std::process::id() % 1000);
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: hang
            steps:
              - id: hang
                targets: [a]
                timeout: 1s
                check: {{command: 'false'}}
                run: '{marker} & {marker}; wait'
            "
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("timed-out  hang")
        .run();
    crate::harness::assert_no_process(&marker, "orphaned remote processes");
}

#[test]
fn an_unreachable_host_fails_only_its_steps() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let dead = free_port();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  up: {}\n  down: {{address: 127.0.0.9, port: {dead}, user: root, connect_timeout: 2s}}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(
            "
            version: 1
            name: partial
            defaults: {timeout: 10s, on_failure: continue}
            steps:
              - {id: on-down, targets: [down], check: {command: 'true'}}
              - {id: after-down, depends_on: [on-down], targets: [up], check: {command: 'true'}}
              - {id: on-up, targets: [up], check: {command: 'true'}}
            ",
        )
        .args(RUN)
        .status(1)
        .stdout_contains("failed     on-down @ down: check failed: cannot connect to `down` (127.0.0.9:")
        .stdout_contains("blocked    after-down (`on-down` failed)")
        .stdout_contains("already-ok on-up")
        .run();
}

#[test]
fn a_wrong_key_is_an_authentication_failure() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let stranger = sshd.path("stranger_key");
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {{address: 127.0.0.2, port: {}, user: root, identity_file: {}, known_hosts: {}}}\n",
            sshd.port,
            stranger.display(),
            sshd.path("known_hosts").display()
        ))
        .runbook("version: 1\nname: auth\nsteps:\n  - {id: s, targets: [a], check: {command: 'true'}}\n")
        .env("SSH_AUTH_SOCK", "")
        .args(RUN)
        .status(1)
        .stdout_contains(&format!("authentication failed for `root@a`: tried key {} (Username/PublicKey combination invalid)", stranger.display()))
        .run();
}

#[test]
fn a_changed_host_key_is_refused_before_anything_runs() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let other = std::fs::read_to_string(sshd.path("stranger_key.pub")).unwrap();
    let key: Vec<&str> = other.split_whitespace().take(2).collect();
    std::fs::write(
        sshd.path("known_hosts"),
        format!("[127.0.0.2]:{} {} {}\n", sshd.port, key[0], key[1]),
    )
    .unwrap();
    let marker = sshd.path("ran");
    Test::new()
        .inventory(&format!("version: 1\nhosts:\n  a: {}\n", sshd.host("127.0.0.2", "")))
        .runbook(&format!(
            "version: 1\nname: mitm\nsteps:\n  - {{id: s, targets: [a], timeout: 5s, check: {{command: 'false'}}, run: 'touch {}'}}\n",
            marker.display()
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("HOST KEY MISMATCH for `a`: offered ssh-ed25519 SHA256:")
        .stdout_contains("records a different ssh-ed25519 key; refusing to connect")
        .run();
    assert!(
        !marker.exists(),
        "the command ran on a host whose key did not match"
    );
}

#[test]
fn an_unknown_host_is_refused_unless_accept_new() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    std::fs::write(sshd.path("known_hosts"), "").unwrap();
    let runbook =
        "version: 1\nname: tofu\nsteps:\n  - {id: s, targets: [a], check: {command: 'true'}}\n";
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(runbook)
        .args(RUN)
        .status(1)
        .stdout_contains("host key of `a` is not in")
        .run();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", ", host_key_checking: accept-new")
        ))
        .runbook(runbook)
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    let recorded = read(&sshd.path("known_hosts"));
    let host_key = read(&sshd.path("host_key.pub"));
    let key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    assert!(
        recorded.starts_with(&format!("[127.0.0.2]:{} {} {}", sshd.port, key[0], key[1])),
        "the server's own key is recorded: {recorded}"
    );
    // What was recorded is enough for a strict connection.
    let logins = sshd.logins();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", ", host_key_checking: strict")
        ))
        .runbook(runbook)
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    assert_eq!(sshd.logins(), logins + 1, "a second, strict connection");
}

#[test]
fn a_host_behind_a_jump_host_is_reached_through_it() {
    let sshd = Sshd::start(&["127.0.0.2", "127.0.0.3"]);
    let inventory = |jump_port: u16| {
        format!(
            "version: 1\nhosts:\n  bastion: {{address: 127.0.0.2, port: {jump_port}, user: root, identity_file: {}, known_hosts: {}, connect_timeout: 2s}}\n  inner: {}\n",
            sshd.path("client_key").display(),
            sshd.path("known_hosts").display(),
            sshd.host("127.0.0.3", ", jump: bastion")
        )
    };
    // On the inner host: the server address of this session, and which
    // process owns the client end of its TCP connection.
    let seen = sshd.path("seen");
    let runbook = format!(
        "version: 1\nname: jump\nsteps:\n  - {{id: s, targets: [inner], check: {{command: 'set -- $SSH_CONNECTION; echo $3 > {seen}; ss -Htnp src 127.0.0.1:$2 >> {seen}'}}}}\n",
        seen = seen.display()
    );
    let runbook = runbook.as_str();
    Test::new()
        .inventory(&inventory(sshd.port))
        .runbook(runbook)
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    let seen = read(&seen);
    let (server, client) = seen.split_once('\n').unwrap_or_default();
    assert_eq!(server, "127.0.0.3", "the command ran on the inner host");
    // Through the tunnel the inner host's peer is the jump host's sshd,
    // not runbook itself.
    assert!(client.contains("\"sshd"), "{seen}");
    assert!(!client.contains("runbook"), "{seen}");
    Test::new()
        .inventory(&inventory(free_port()))
        .runbook(runbook)
        .args(RUN)
        .status(1)
        .stdout_contains("cannot connect to `inner` (127.0.0.3:")
        .stdout_contains("through jump host `bastion`: cannot connect to `bastion`")
        .run();
}

#[test]
fn inventory_values_with_shell_metacharacters_arrive_literally() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let nasty = r#"a'b"c $(touch /tmp/pwned-runbook) `id` ; | & > < * ? \ {x}"#;
    let out = sshd.path("literal");
    let value = serde_json::to_string(nasty).unwrap();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {{address: 127.0.0.2, port: {}, user: root, identity_file: {}, known_hosts: {}, vars: {{msg: {value}}}}}\n",
            sshd.port,
            sshd.path("client_key").display(),
            sshd.path("known_hosts").display()
        ))
        .runbook(&format!(
            "version: 1\nname: quoting\nsteps:\n  - {{id: s, targets: [a], timeout: 5s, check: {{command: 'false'}}, run: 'printf %s {{{{ host.vars.msg }}}} > {}'}}\n",
            out.display()
        ))
        .args(RUN)
        .run();
    assert_eq!(read(&out), nasty);
    assert!(!Path::new("/tmp/pwned-runbook").exists());
}

#[test]
fn interrupting_a_run_kills_its_remote_commands() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = format!("sleep 9{}.5", std::process::id() % 1000);
    let started = sshd.path("started");
    let t = Test::new()
        .inventory(&format!("version: 1\nhosts:\n  a: {}\n", sshd.host("127.0.0.2", "")))
        .runbook(&format!(
            "version: 1\nname: remote-hang\nsteps:\n  - {{id: s, targets: [a], timeout: 60s, check: {{command: 'false'}}, run: 'touch {}; {marker} & {marker}; wait'}}\n",
            started.display()
        ));
    let mut child = t
        .command()
        .args(RUN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_for(&started);
    crate::harness::interrupt_until_it_stops(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    crate::harness::assert_no_process(&marker, "remote processes survived");
}

#[test]
fn a_host_that_comes_back_is_reconnected_on_retry() {
    let mut sshd = Sshd::prepare(&["127.0.0.2"]);
    let (t, marker) = {
        let marker = sshd.path("reached");
        let t = Test::new()
            .inventory(&format!("version: 1\nhosts:\n  late: {}\n", sshd.host("127.0.0.2", ", connect_timeout: 2s")))
            .runbook(&format!(
                "version: 1\nname: late\nsteps:\n  - {{id: s, targets: [late], retries: 3, retry_delay: 1500ms, timeout: 10s, check: {{command: 'false'}}, run: 'touch {}'}}\n",
                marker.display()
            ));
        (t, marker)
    };
    let child = t
        .command()
        .args(RUN)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The server comes up only once an attempt has failed to reach it.
    let started = std::time::Instant::now();
    while !run_actions(t.path()).iter().any(|a| a["passed"] == false) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no attempt failed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sshd.launch();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(marker.exists());
    let runs = run_actions(t.path());
    let first = &runs[0];
    assert_eq!(first["attempt"], 1);
    assert!(
        first["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot connect to `late`"),
        "{first}"
    );
    let last = runs.last().unwrap();
    assert_eq!(last["passed"], true, "{last}");
    assert!(
        last["attempt"].as_u64().unwrap() >= 2,
        "a retry ran it: {last}"
    );
    assert_eq!(sshd.logins(), 1, "it reconnected once the host was back");
}

/// The journaled `run` attempts of the test's only run, in order.
fn run_actions(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(runs) = std::fs::read_dir(dir.join("state/runs")) else {
        return Vec::new();
    };
    runs.flatten()
        .flat_map(|run| {
            read(&run.path().join("journal.jsonl"))
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["event"] == "action" && e["action"] == "run")
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_dry_run_opens_no_connection() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = sshd.path("ran");
    // sshd logs every TCP connection, even one that never authenticates,
    // a moment after accepting it.
    let logged = |n: usize| {
        let started = std::time::Instant::now();
        loop {
            let log = read(&sshd.path("sshd.log"));
            if log.matches("Connection from").count() >= n {
                return log;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "sshd did not log {n} connections: {log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // The readiness check of `Sshd::launch`.
    logged(1);
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "version: 1\nname: rehearse\nsteps:\n  - {{id: s, targets: [a], timeout: 5s, check: {{command: 'false'}}, run: 'touch {}', verify: {{command: 'true'}}}}\n",
            marker.display()
        ))
        .args(RUN)
        .args(["--dry-run"])
        .stdout_contains(&format!("touch {}", marker.display()))
        .run();
    assert!(!marker.exists());
    // A last connection of our own: once it is logged, any the run made
    // would be too.
    drop(std::net::TcpStream::connect(("127.0.0.2", sshd.port)).unwrap());
    let log = logged(2);
    assert_eq!(log.matches("Connection from").count(), 2, "{log}");
}

/// One `check: true` step on every host of the inventory's group `all`.
const CHECK_ALL: &str =
    "version: 1\nname: keys\nsteps:\n  - {id: s, targets: [all], check: {command: 'true'}}\n";

#[test]
fn a_genuine_host_key_of_any_type_hashed_or_not_is_accepted() {
    let sshd = Sshd::start_with_host_keys(&["127.0.0.2"], &["ecdsa", "rsa"]);
    let known_hosts = sshd.path("known_hosts");
    let mut refused = Vec::new();
    for kind in [None, Some("ecdsa"), Some("rsa")] {
        for hashed in [false, true] {
            std::fs::write(
                &known_hosts,
                format!("[127.0.0.2]:{} {}\n", sshd.port, sshd.host_key(kind)),
            )
            .unwrap();
            if hashed {
                let status = std::process::Command::new("ssh-keygen")
                    .arg("-q")
                    .arg("-H")
                    .arg("-f")
                    .arg(&known_hosts)
                    .status()
                    .unwrap();
                assert!(status.success());
                assert!(read(&known_hosts).starts_with("|1|"), "not hashed");
            }
            let out = Test::new()
                .inventory(&format!(
                    "version: 1\nhosts:\n  a: {}\ngroups:\n  all: {{hosts: [a]}}\n",
                    sshd.host("127.0.0.2", "")
                ))
                .runbook(CHECK_ALL)
                .args(RUN)
                .command()
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !(out.status.success() && stdout.contains("already-ok s")) {
                refused.push(format!("{kind:?} key, hashed: {hashed}: {stdout}"));
            }
        }
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    // A hashed entry is a record like any other: a different key under it is refused.
    std::fs::write(
        &known_hosts,
        format!(
            "[127.0.0.2]:{} {}\n",
            sshd.port,
            read(&sshd.path("stranger_key.pub"))
        ),
    )
    .unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&known_hosts)
        .status()
        .unwrap();
    assert!(status.success());
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\ngroups:\n  all: {{hosts: [a]}}\n",
            sshd.host("127.0.0.2", ", host_key_checking: accept-new")
        ))
        .runbook(CHECK_ALL)
        .args(RUN)
        .status(1)
        .stdout_contains("HOST KEY MISMATCH for `a`")
        .run();
}

#[test]
fn host_patterns_are_matched_with_their_port() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let key = sshd.host_key(None);
    let inventory = format!(
        "version: 1\nhosts:\n  a: {}\ngroups:\n  all: {{hosts: [a]}}\n",
        sshd.host("127.0.0.2", "")
    );
    // Without brackets an entry is for port 22 only.
    std::fs::write(sshd.path("known_hosts"), format!("127.0.0.2 {key}\n")).unwrap();
    Test::new()
        .inventory(&inventory)
        .runbook(CHECK_ALL)
        .args(RUN)
        .status(1)
        .stdout_contains("host key of `a` is not in")
        .run();
    // Wildcards inside the brackets, as OpenSSH reads them.
    std::fs::write(
        sshd.path("known_hosts"),
        format!("[127.0.0.*]:{} {key}\n", sshd.port),
    )
    .unwrap();
    Test::new()
        .inventory(&inventory)
        .runbook(CHECK_ALL)
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
}

#[test]
fn a_revoked_host_key_is_refused_and_never_re_trusted() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let key = sshd.host_key(None);
    let marker = sshd.path("ran");
    let runbook = format!(
        "version: 1\nname: revoked\nsteps:\n  - {{id: s, targets: [a], timeout: 5s, check: {{command: 'false'}}, run: 'touch {}'}}\n",
        marker.display()
    );
    let revoked = format!("@revoked * {key}\n");
    std::fs::write(
        sshd.path("known_hosts"),
        format!("{revoked}[127.0.0.2]:{} {key}\n", sshd.port),
    )
    .unwrap();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&runbook)
        .args(RUN)
        .status(1)
        .stdout_contains("REVOKED HOST KEY for `a`: offered ssh-ed25519 SHA256:")
        .stdout_contains("marks it @revoked; refusing to connect")
        .run();
    std::fs::write(sshd.path("known_hosts"), &revoked).unwrap();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", ", host_key_checking: accept-new")
        ))
        .runbook(&runbook)
        .args(RUN)
        .status(1)
        .stdout_contains("REVOKED HOST KEY for `a`")
        .run();
    assert_eq!(read(&sshd.path("known_hosts")), revoked, "re-trusted");
    assert!(
        !marker.exists(),
        "the command ran on a host with a revoked key"
    );
}

#[test]
fn many_new_hosts_at_once_record_one_well_formed_line_each() {
    const HOSTS: usize = 128;
    let addresses: Vec<String> = (1..=HOSTS).map(|i| format!("127.0.1.{i}")).collect();
    let sshd = Sshd::start_many(&addresses);
    // A parent folder that does not exist yet.
    let known_hosts = sshd.path("ssh/fresh/known_hosts");
    let mut inventory = String::from("version: 1\nhosts:\n");
    for (i, address) in addresses.iter().enumerate() {
        inventory.push_str(&format!(
            "  h{i}: {{address: {address}, port: {}, user: root, identity_file: {}, known_hosts: {}, host_key_checking: accept-new, connect_timeout: 120s}}\n",
            sshd.port,
            sshd.path("client_key").display(),
            known_hosts.display()
        ));
    }
    let names: Vec<String> = (0..HOSTS).map(|i| format!("h{i}")).collect();
    inventory.push_str(&format!(
        "groups:\n  all: {{hosts: [{}]}}\n",
        names.join(", ")
    ));
    // The second run reads what the first wrote: every host must match.
    for _ in 0..2 {
        Test::new()
            .inventory(&inventory)
            .runbook(CHECK_ALL)
            .args(RUN)
            .args(["--forks", "128"])
            .stdout_contains("already-ok s")
            .run();
    }
    let key = sshd.host_key(None);
    let text = read(&known_hosts);
    let mut recorded: Vec<&str> = text
        .lines()
        .map(|line| {
            let (name, rest) = line.split_once(' ').unwrap_or_default();
            assert_eq!(rest, key, "malformed line {line:?}");
            name
        })
        .collect();
    recorded.sort_unstable();
    let mut expected: Vec<String> = addresses
        .iter()
        .map(|a| format!("[{a}]:{}", sshd.port))
        .collect();
    expected.sort_unstable();
    assert_eq!(recorded, expected, "one line per host");
    assert!(text.ends_with('\n'));
    use std::os::unix::fs::PermissionsExt as _;
    for dir in ["ssh", "ssh/fresh"] {
        let mode = std::fs::metadata(sshd.path(dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{dir}");
    }
}

/// Runs `test` with the open-files limit set to `soft` (hard `hard`) in the
/// child, before `runbook` starts.
fn run_with_open_files(test: &Test, soft: u64, hard: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = test.command();
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run binary")
}

#[test]
fn more_hosts_than_the_open_files_limit_allows_all_run_and_report() {
    // Each host holds 3 files (its socket, a wake-up pair): 96 hosts need
    // more than 200. A soft limit of 64 under the hard limit is raised;
    // a hard limit of 200 is not, and idle hosts close to make room.
    const HOSTS: usize = 96;
    let addresses: Vec<String> = (1..=HOSTS).map(|i| format!("127.0.3.{i}")).collect();
    let sshd = Sshd::start_many(&addresses);
    let mut inventory = String::from("version: 1\nhosts:\n");
    for (i, address) in addresses.iter().enumerate() {
        let host = sshd.host(address, ", connect_timeout: 120s");
        inventory.push_str(&format!("  h{i}: {host}\n"));
    }
    let names: Vec<String> = (0..HOSTS).map(|i| format!("h{i}")).collect();
    inventory.push_str(&format!(
        "groups:\n  all: {{hosts: [{}]}}\n",
        names.join(", ")
    ));
    let runbook = "version: 1\nname: wide\nsteps:\n  \
        - {id: one, targets: [all], run: 'true', verify: {command: 'true'}}\n  \
        - {id: two, depends_on: [one], targets: [all], run: 'true'}\n";
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit for getrlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
    assert!(
        now.rlim_max > 400,
        "the hard open-files limit is too low for this test"
    );
    for (soft, hard) in [(64, now.rlim_max), (200, 200)] {
        let test = Test::new().inventory(&inventory).runbook(runbook).args(RUN);
        let out = run_with_open_files(&test, soft, hard);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "limit {soft}:{hard}\n{stdout}\n{stderr}"
        );
        let journal = std::fs::read_dir(test.path().join("state/runs"))
            .unwrap()
            .map(|d| read(&d.unwrap().path().join("journal.jsonl")))
            .collect::<String>();
        for step in ["one", "two"] {
            let succeeded = journal
                .lines()
                .filter(|l| {
                    l.contains("\"event\":\"host-finished\"")
                        && l.contains(&format!("\"step\":\"{step}\""))
                        && l.contains("\"outcome\":\"ok\"")
                })
                .count();
            assert_eq!(
                succeeded, HOSTS,
                "limit {soft}:{hard}, step {step}\n{stdout}\n{stderr}"
            );
        }
        let test = Test::new().inventory(&inventory).runbook(runbook).args([
            "status",
            "runbook.yaml",
            "-i",
            "inventory.yaml",
        ]);
        let out = run_with_open_files(&test, soft, hard);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "status, limit {soft}:{hard}\n{stdout}"
        );
    }
}

/// The shell reads the whole script before it runs any of it (itself,
/// without a `cat` per command): a syntax error at the end runs nothing,
/// locally and over SSH, instead of running the lines before it.
#[test]
fn a_script_with_a_syntax_error_at_its_end_runs_none_of_it() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = |at: &str| sshd.path(&format!("ran-{at}"));
    let args = sshd.path("args");
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "version: 1\nname: parse-first\ndefaults: {{timeout: 30s}}\nsteps:\n  \
             - {{id: here, run: \"touch {local}\\nif\"}}\n  \
             - {{id: there, targets: [a], run: \"touch {remote}\\nif\"}}\n  \
             - {{id: args, targets: [a], run: 'printf \"%s %s\" \"$0\" \"$#\" > {args}'}}\n",
            local = marker("here").display(),
            remote = marker("there").display(),
            args = args.display(),
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("failed     here")
        .stdout_contains("failed     there")
        .stdout_contains("ok         args")
        .run();
    assert!(
        !marker("here").exists(),
        "the local script ran up to its error"
    );
    assert!(
        !marker("there").exists(),
        "the remote script ran up to its error"
    );
    let args = read(&args);
    assert!(
        args.starts_with("runbook-") && args.ends_with(" 0"),
        "$0 is the tag word and there are no arguments: {args}"
    );
}

/// The hosts of `inventory` (text), loaded as `run` loads them.
fn inventory(dir: &Path, text: &str) -> runbook::model::Inventory {
    let path = dir.join("inventory.yaml");
    std::fs::write(&path, text).unwrap();
    let (source, raw) = runbook::load::load_inventory(&path).unwrap();
    let checked = runbook::validate::inventory::inventory(&source, &raw);
    checked.inventory.expect("a valid inventory")
}

/// Runs `command` on `host` through `pool`, as a step would.
fn exec(
    pool: &runbook::exec::transport::ssh::SshPool,
    host: &runbook::model::Host,
    command: &str,
) -> Result<runbook::exec::transport::Output, runbook::exec::transport::TransportError> {
    use runbook::exec::transport::{Job, Transport as _, new_tag};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tag = new_tag();
    runtime.block_on(pool.exec(
        host,
        Job {
            command,
            timeout: Some(std::time::Duration::from_secs(30)),
            tag: &tag,
            r#become: None,
        },
    ))
}

/// A host the run is about to use is logged in to at once, in the
/// background (`prepare`): its first command runs on that session, here
/// one the server would no longer open; a host not prepared must connect.
#[test]
fn a_prepared_host_is_logged_in_before_its_first_command() {
    use runbook::exec::context::Secrets;
    use runbook::exec::transport::ssh::SshPool;
    let mut sshd = Sshd::start(&["127.0.0.41", "127.0.0.42"]);
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(
        dir.path(),
        &format!(
            "version: 1\nhosts:\n  early: {}\n  late: {}\n",
            sshd.host("127.0.0.41", ""),
            sshd.host("127.0.0.42", "")
        ),
    );
    let (early, late) = (
        inventory.hosts["early"].clone(),
        inventory.hosts["late"].clone(),
    );
    let pool = SshPool::new(std::sync::Arc::new(inventory), Secrets::default(), 5);
    pool.prepare(std::slice::from_ref(&early));
    let started = std::time::Instant::now();
    while sshd.logins() < 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the prepared host was never logged in to"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sshd.stop_listening();
    let output = exec(&pool, &early, "echo early").expect("runs on the early session");
    assert_eq!(output.stdout, b"early\n");
    assert!(output.exit.success());
    let refused = exec(&pool, &late, "echo late").expect_err("nothing listens any more");
    assert!(
        refused.to_string().starts_with("cannot connect to `late`"),
        "{refused}"
    );
    pool.shutdown(std::time::Duration::from_secs(10));
    assert_eq!(sshd.logins(), 1);
}

/// An early login that fails is told to the host's commands as their own
/// connection's failure would be.
#[test]
fn a_failed_early_login_is_the_commands_error_as_before() {
    use runbook::exec::context::Secrets;
    use runbook::exec::transport::ssh::SshPool;
    let dir = tempfile::tempdir().unwrap();
    let inventory = std::sync::Arc::new(inventory(
        dir.path(),
        &format!(
            "version: 1\nhosts:\n  down: {{address: 127.0.0.43, port: {}, user: root}}\n",
            free_port()
        ),
    ));
    let down = inventory.hosts["down"].clone();
    let unprepared = SshPool::new(std::sync::Arc::clone(&inventory), Secrets::default(), 5);
    let expected = exec(&unprepared, &down, "true").expect_err("nothing listens");
    let prepared = SshPool::new(inventory, Secrets::default(), 5);
    prepared.prepare(std::slice::from_ref(&down));
    let got = exec(&prepared, &down, "true").expect_err("nothing listens");
    assert_eq!(got.to_string(), expected.to_string());
    assert!(
        got.to_string()
            .starts_with("cannot connect to `down` (127.0.0.43:"),
        "{got}"
    );
    unprepared.shutdown(std::time::Duration::from_secs(10));
    prepared.shutdown(std::time::Duration::from_secs(10));
}

/// An early login that no command used does not hold up the end of the
/// run: here one still waiting for a server that never greets it.
#[test]
fn an_unused_early_login_does_not_hold_up_the_shutdown() {
    use std::io::Read as _;

    use runbook::exec::context::Secrets;
    use runbook::exec::transport::ssh::SshPool;
    let listener = std::net::TcpListener::bind("127.0.0.44:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(
        dir.path(),
        &format!(
            "version: 1\nhosts:\n  silent: {{address: 127.0.0.44, port: {port}, user: root, connect_timeout: 120s}}\n"
        ),
    );
    let silent = inventory.hosts["silent"].clone();
    let pool = SshPool::new(std::sync::Arc::new(inventory), Secrets::default(), 5);
    pool.prepare(std::slice::from_ref(&silent));
    listener.set_nonblocking(true).unwrap();
    let started = std::time::Instant::now();
    let mut connection = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "the prepared host was never dialled"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    connection.set_nonblocking(false).unwrap();
    connection
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut greeting = [0u8; 64];
    let n = connection.read(&mut greeting).unwrap();
    assert!(greeting[..n].starts_with(b"SSH-2.0-"), "{greeting:?}");
    // Waiting for the login would take its whole timeout.
    pool.shutdown(std::time::Duration::from_secs(3600));
    connection.set_nonblocking(true).unwrap();
    let after = connection.read(&mut greeting);
    assert!(
        after
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the login still waits for the server: {after:?}"
    );
}
