//! `via: HOST`: a network probe's connection opened from an inventory host
//! over its SSH connection (a real sshd on loopback), to a real redis.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{RUN, Test};
use crate::sshd::{Sshd, free_port};

struct Redis {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis(address: &str) -> Redis {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", address])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is missing: run scripts/test.sh, which installs it");
    let started = Instant::now();
    while TcpStream::connect((address, port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis {
        child,
        _dir: dir,
        port,
    }
}

/// One inline command to redis, and its whole answer.
fn ask(address: &str, port: u16, command: &str) -> String {
    let mut s = TcpStream::connect((address, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn inventory(sshd: &Sshd, port: u16) -> String {
    format!(
        "version: 1\nhosts:\n  site-gw: {{address: 127.0.0.2, port: {port}, user: root, identity_file: {}, known_hosts: {}, connect_timeout: 2s}}\n",
        sshd.path("client_key").display(),
        sshd.path("known_hosts").display(),
    )
}

#[test]
fn a_tcp_probe_via_a_site_host_is_connected_by_that_hosts_sshd() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let server = redis("127.0.0.3");
    // The probe names itself, then waits (BLPOP) until the test has seen
    // who holds its connection, and releases it.
    let runbook = format!(
        "version: 1\nname: via\nsteps:\n  - id: reach\n    check:\n      tcp: {{host: 127.0.0.3, port: {}, send: \"CLIENT SETNAME via-probe\\r\\nBLPOP release 60\\r\\n\", expect: released, via: site-gw}}\n      timeout: 90s\n",
        server.port
    );
    let inventory = inventory(&sshd, sshd.port);
    let run = std::thread::spawn(move || {
        Test::new()
            .inventory(&inventory)
            .runbook(&runbook)
            .args(RUN)
            .stdout_contains("already-ok reach")
            .run()
    });
    let started = Instant::now();
    let client = loop {
        let list = ask("127.0.0.3", server.port, "CLIENT LIST");
        if let Some(line) = list.lines().find(|l| l.contains("name=via-probe")) {
            break line
                .split(' ')
                .find_map(|f| f.strip_prefix("addr="))
                .unwrap()
                .to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60) && !run.is_finished(),
            "the probe never reached redis"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let owner = Command::new("ss")
        .args(["-Htnp", "src", &client])
        .output()
        .unwrap();
    let owner = String::from_utf8_lossy(&owner.stdout).into_owned();
    ask("127.0.0.3", server.port, "RPUSH release released");
    run.join().unwrap();
    // The redis client is the site host's sshd, not runbook itself.
    assert!(owner.contains("\"sshd"), "{owner}");
    assert!(!owner.contains("runbook"), "{owner}");
}

#[test]
fn a_via_probe_says_when_the_site_host_is_unreachable_or_the_target_refuses_it() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let closed = free_port();
    let runbook = format!(
        "version: 1\nname: via\nsteps:\n  - id: reach\n    check: {{tcp: {{host: 127.0.0.3, port: {closed}, via: site-gw}}, timeout: 20s}}\n"
    );
    Test::new()
        .inventory(&inventory(&sshd, sshd.port))
        .runbook(&runbook)
        .args(RUN)
        .status(1)
        .stdout_contains(&format!(
            "connection to 127.0.0.3:{closed} refused from `site-gw`"
        ))
        .run();
    Test::new()
        .inventory(&inventory(&sshd, free_port()))
        .runbook(&runbook)
        .args(RUN)
        .status(1)
        .stdout_contains("via host `site-gw` unreachable: cannot connect to `site-gw` (127.0.0.2:")
        .run();
}

#[test]
fn via_must_name_an_inventory_host() {
    let runbook = "
        version: 1
        name: via
        steps:
          - id: reach
            check: {http: {url: 'http://portal/health', via: site-gw}}
          - id: mail
            check: {smtp: {host: mx, via: laptop}}
        ";
    Test::new()
        .inventory(
            "
            version: 1
            hosts:
              site-gw1: {address: 10.0.0.1}
              laptop: {transport: local}
            ",
        )
        .runbook(runbook)
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .status(2)
        .stderr_contains("runbook.yaml:5:54")
        .stderr_contains("unknown via host `site-gw`")
        .stderr_contains("= hint: did you mean `site-gw1`?")
        .run();
}

/// A `local` host is the controller: `via` it opens the connection from
/// here, as the simulated inventory's site host does.
#[test]
fn via_a_local_host_connects_from_the_controller() {
    let server = redis("127.0.0.3");
    let closed = free_port();
    let runbook = format!(
        "version: 1\nname: via\ndefaults: {{on_failure: continue}}\nsteps:\n  - id: reach\n    check: {{tcp: {{host: 127.0.0.3, port: {}, send: \"PING\\r\\n\", expect: PONG, via: laptop}}, timeout: 10s}}\n  - id: closed\n    check: {{tcp: {{host: 127.0.0.3, port: {closed}, via: laptop}}, timeout: 10s}}\n",
        server.port
    );
    let inventory = "version: 1\nhosts:\n  laptop: {transport: local}\n";
    Test::new()
        .inventory(inventory)
        .runbook(&runbook)
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .stdout("valid: 2 files checked, 0 errors, 0 warnings")
        .run();
    Test::new()
        .inventory(inventory)
        .runbook(&runbook)
        .args(RUN)
        .status(1)
        .stdout_contains("already-ok  reach")
        .stdout_contains(&format!(
            "check failed: connection to 127.0.0.3:{closed} refused from `laptop`"
        ))
        .run();
}

#[test]
fn a_rehearsal_shows_the_via_host_and_opens_no_connection() {
    let closed = free_port();
    let runbook = format!(
        "version: 1\nname: via\nsteps:\n  - id: reach\n    check: {{tcp: {{host: 127.0.0.3, port: {closed}, via: site-gw}}}}\n"
    );
    // The site host does not exist: a rehearsal that connected would fail.
    let inventory = format!(
        "version: 1\nhosts:\n  site-gw: {{address: 127.0.0.2, port: {}, connect_timeout: 2s}}\n",
        free_port()
    );
    Test::new()
        .inventory(&inventory)
        .runbook(&runbook)
        .args(RUN)
        .args(["--dry-run"])
        .stdout_contains(&format!("tcp 127.0.0.3:{closed} via site-gw"))
        .run();
}
