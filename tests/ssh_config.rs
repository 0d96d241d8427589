//! Hosts described by an OpenSSH client configuration, against a real
//! sshd. The binary's HOME is the test's own directory (see the harness).

use std::path::Path;

use crate::harness::{RUN, Test, read};
use crate::sshd::{Sshd, free_port};

/// The lines that give `sshd`'s client settings to a `Host` block.
fn client(sshd: &Sshd) -> String {
    format!(
        "  Port {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
        sshd.port,
        sshd.path("client_key").display(),
        sshd.path("known_hosts").display()
    )
}

/// A step on `target` that records the address its session reached.
fn where_it_ran(target: &str, out: &Path) -> String {
    format!(
        "version: 1\nname: cfg\nsteps:\n  - {{id: s, targets: [{target}], check: {{command: 'set -- $SSH_CONNECTION; echo $3 > {}'}}}}\n",
        out.display()
    )
}

#[test]
fn a_host_with_only_a_name_is_reached_through_the_ssh_config() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let out = sshd.path("out");
    Test::new()
        .file(
            "ssh/cfg",
            &format!(
                // Keywords runbook does not use, known to ssh or not, are
                // skipped.
                "ForwardAgent yes\nNoSuchKeyword at all\nHost db\n  HostName 127.0.0.2\n{}  ServerAliveInterval 5\n",
                client(&sshd)
            ),
        )
        .inventory("version: 1\ndefaults: {ssh_config: ssh/cfg}\nhosts:\n  db: {}\n")
        .runbook(&where_it_ran("db", &out))
        .args(RUN)
        .stdout_contains("already-ok s")
        .stderr("")
        .run();
    assert_eq!(read(&out).trim(), "127.0.0.2");
}

#[test]
fn include_and_negated_patterns_choose_the_block_from_the_default_config() {
    let sshd = Sshd::start(&["127.0.0.2", "127.0.0.3"]);
    let out = sshd.path("out");
    // ~/.ssh/config is read without `ssh_config`; a relative Include is
    // relative to ~/.ssh, as for ssh.
    Test::new()
        .file(
            ".ssh/config",
            &format!(
                "Host db-* !db-old\n  Include conf.d/*.conf\nHost *\n  HostName 127.0.0.3\n  Port {}\n",
                free_port()
            ),
        )
        .file(
            ".ssh/conf.d/db.conf",
            &format!("HostName 127.0.0.2\n{}", client(&sshd)),
        )
        .inventory("version: 1\nhosts:\n  db-new: {}\n  db-old: {connect_timeout: 2s}\n")
        .runbook(&format!(
            "version: 1\nname: cfg\nsteps:\n  - {{id: s, targets: [db-new, db-old], check: {{command: 'set -- $SSH_CONNECTION; echo $3 >> {}'}}}}\n",
            out.display()
        ))
        .args(RUN)
        .status(1)
        .stdout_contains("cannot connect to `db-old` (127.0.0.3:")
        .run();
    assert_eq!(read(&out).trim(), "127.0.0.2", "only db-new ran");
}

#[test]
fn a_proxy_jump_chain_named_only_in_the_ssh_config_is_followed() {
    // jump-a, jump-b and db are three addresses of one sshd: which
    // process connected to each shows the path taken.
    let sshd = Sshd::start(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let seen = sshd.path("seen");
    let port = sshd.port;
    let who = |addr: &str, tag: &str| format!("echo {tag}; ss -Htnp dst {addr}:{port}");
    Test::new()
        .file(
            "cfg",
            &format!(
                "Host jump-a\n  HostName 127.0.0.2\nHost jump-b\n  HostName 127.0.0.3\nHost db\n  HostName 127.0.0.4\n  ProxyJump jump-a,jump-b\nHost *\n{}",
                client(&sshd)
            ),
        )
        .inventory("version: 1\ndefaults: {ssh_config: cfg}\nhosts:\n  db: {}\n")
        .runbook(&format!(
            "version: 1\nname: cfg\nsteps:\n  - {{id: s, targets: [db], check: {{command: '({}; {}; {}) > {}'}}}}\n",
            who("127.0.0.2", "A"),
            who("127.0.0.3", "B"),
            who("127.0.0.4", "DB"),
            seen.display()
        ))
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    let seen = read(&seen);
    let part = |tag: &str, next: &str| {
        let start = seen.find(&format!("{tag}\n")).unwrap();
        let end = seen.find(&format!("{next}\n")).unwrap_or(seen.len());
        seen[start..end].to_string()
    };
    let (a, b, db) = (part("A", "B"), part("B", "DB"), part("DB", "\u{0}"));
    assert!(a.contains("\"runbook\""), "runbook dials jump-a: {seen}");
    for hop in [&b, &db] {
        assert!(hop.contains("\"sshd"), "an sshd tunnel dials it: {seen}");
        assert!(!hop.contains("runbook"), "runbook never dials it: {seen}");
    }
}

#[test]
fn inventory_values_win_over_the_ssh_config() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let out = sshd.path("out");
    Test::new()
        .file(
            "cfg",
            &format!(
                // Port and User are wrong here; the inventory's win.
                "Host db\n  Port {}\n  User nobody\n  HostName 127.0.0.2\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
                free_port(),
                sshd.path("client_key").display(),
                sshd.path("known_hosts").display()
            ),
        )
        .inventory(&format!(
            "version: 1\nhosts:\n  db: {{ssh_config: cfg, port: {}, user: root}}\n",
            sshd.port
        ))
        .runbook(&where_it_ran("db", &out))
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    assert_eq!(read(&out).trim(), "127.0.0.2");
}

#[test]
fn ssh_config_none_ignores_the_default_file_where_proxy_command_is_reported() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let out = sshd.path("out");
    let test = |extra: &str| {
        Test::new()
            .file(".ssh/config", "Host *\n  ProxyCommand nc %h %p\n")
            .runbook(&where_it_ran("db", &out))
            .inventory(&format!(
                "version: 1\nhosts:\n  db: {}\n",
                sshd.host("127.0.0.2", extra)
            ))
            .args(RUN)
    };
    let t = test("");
    let config = t.path().join(".ssh/config");
    t.status(2)
        .stderr_contains("error: `ProxyCommand` (for host `db`) is not supported")
        .stderr_contains(&format!("--> {}:2:16", config.display()))
        .stderr_contains("hint: use `ProxyJump`")
        .run();
    assert!(!out.exists());
    test(", ssh_config: none")
        .stdout_contains("already-ok s")
        .run();
    assert_eq!(read(&out).trim(), "127.0.0.2");
}

#[test]
fn strict_host_key_checking_no_accepts_a_new_key_but_never_a_changed_one() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let known = sshd.path("fresh_known_hosts");
    let out = sshd.path("out");
    let test = || {
        Test::new()
            .file(
                "cfg",
                &format!(
                    "Host db\n  HostName 127.0.0.2\n  Port {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking no\n",
                    sshd.port,
                    sshd.path("client_key").display(),
                    known.display()
                ),
            )
            .inventory("version: 1\ndefaults: {ssh_config: cfg}\nhosts:\n  db: {}\n")
            .runbook(&where_it_ran("db", &out))
            .args(RUN)
    };
    test()
        .stdout_contains("already-ok s")
        .stderr_contains(
            "warning: `StrictHostKeyChecking no` (for host `db`) is treated as `accept-new`",
        )
        // The inventory's own relative path, as its diagnostics show it.
        .stderr_contains("--> cfg:7:25")
        .run();
    assert_eq!(read(&out).trim(), "127.0.0.2");
    assert!(
        read(&known).contains(&sshd.host_key(None)),
        "the new key is recorded"
    );
    let other = read(&sshd.path("stranger_key.pub"));
    let key: Vec<&str> = other.split_whitespace().take(2).collect();
    std::fs::write(
        &known,
        format!("[127.0.0.2]:{} {} {}\n", sshd.port, key[0], key[1]),
    )
    .unwrap();
    std::fs::remove_file(&out).unwrap();
    test()
        .status(1)
        .stdout_contains("HOST KEY MISMATCH for `db`")
        .run();
    assert!(!out.exists(), "ran on a host whose key changed");
}
