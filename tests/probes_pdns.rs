//! `ping`, `dns` and `tcp` with `send`/`expect`, against real servers from
//! Debian packages (dnsmasq, redis-server) started on loopback addresses,
//! and the kernel's own ICMP echo inside a network namespace of the test
//! (`unshare -n`): nothing leaves the machine.

use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Test};
use crate::run::all_files_text;
use crate::sshd::free_port;

/// A server process of the test, killed when the test ends.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(program: &str, package: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("`{program}` is missing: run scripts/test.sh, which installs {package}")
        })
}

fn wait_listening(address: &str, port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect((address, port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} did not listen on {address}:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The records every dnsmasq of these tests serves, in dnsmasq's own
/// options: one of each type, and a TXT answer too large for UDP.
fn records() -> String {
    let mut lines = String::from(
        "address=/intranet.hospital.example/10.2.0.21\n\
         host-record=portal.hospital.example,10.2.0.22,fd00::22\n\
         cname=records.hospital.example,portal.hospital.example\n\
         mx-host=hospital.example,mail.hospital.example,10\n\
         srv-host=_sip._udp.hospital.example,sip.hospital.example,5060,1,5\n\
         txt-record=hospital.example,\"v=spf1 mx -all\"\n\
         ptr-record=21.0.2.10.in-addr.arpa,intranet.hospital.example\n\
         local=/hospital.example/\n",
    );
    // Eight records of 240 bytes: about 2 KB, more than the 1232 bytes a
    // UDP answer may carry, so the answer comes truncated and the whole of
    // it only over TCP.
    for n in 1..=8 {
        lines.push_str(&format!(
            "txt-record=big.hospital.example,\"part{n}-{}\"\n",
            "x".repeat(232)
        ));
    }
    lines
}

/// dnsmasq on `address:port` with [`records`] and `extra` options.
fn dnsmasq_config(dir: &Path, address: &str, port: u16, extra: &str) -> PathBuf {
    let config = dir.join("dnsmasq.conf");
    std::fs::write(
        &config,
        format!(
            "no-resolv\nno-hosts\nport={port}\nlisten-address={address}\nbind-interfaces\n\
             user=root\npid-file=\nlog-queries\nlog-facility={}\n{}{extra}",
            dir.join("dnsmasq.log").display(),
            records()
        ),
    )
    .unwrap();
    config
}

fn dnsmasq(address: &str, extra: &str) -> (Server, u16) {
    let program = require("dnsmasq", "dnsmasq-base");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dnsmasq_config(dir.path(), address, port, extra);
    let child = Command::new(program)
        .arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", config.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    wait_listening(address, port, "dnsmasq");
    (Server { child, dir }, port)
}

/// The lines of a run's output from the step's name on, as an operator
/// reads a step's outcome.
fn outcome(stdout: &str, step: &str) -> String {
    let mut lines = stdout
        .lines()
        .skip_while(|l| l.split_whitespace().nth(1) != Some(step));
    let head = lines.next().unwrap_or_default();
    let next = lines.next().unwrap_or_default();
    format!("{}\n{}", head.trim(), next.trim())
}

fn run(runbook: &str) -> (String, Test) {
    let (output, t) = Test::new()
        .runbook(runbook)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    (String::from_utf8_lossy(&output.stdout).into_owned(), t)
}

#[test]
fn dns_probes_ask_a_real_dnsmasq_for_each_record_type() {
    let (dns, port) = dnsmasq("127.0.11.1", "");
    let server = format!("127.0.11.1:{port}");
    let steps = [
        ("a", "intranet.hospital.example", "A", "10.2.0.21"),
        ("aaaa", "portal.hospital.example", "AAAA", "fd00:0:0::22"),
        (
            "cname",
            "records.hospital.example",
            "CNAME",
            "portal.hospital.example",
        ),
        ("mx", "hospital.example", "MX", "mail.hospital.example"),
        (
            "mx-whole",
            "hospital.example",
            "MX",
            "10 mail.hospital.example.",
        ),
        (
            "srv",
            "_sip._udp.hospital.example",
            "SRV",
            "sip.hospital.example",
        ),
        ("txt", "hospital.example", "TXT", "v=spf1"),
        ("ptr", "10.2.0.21", "PTR", "intranet.hospital.example"),
        (
            "ptr-name",
            "21.0.2.10.in-addr.arpa",
            "PTR",
            "Intranet.Hospital.Example.",
        ),
        ("truncated", "big.hospital.example", "TXT", "part8-xxx"),
    ];
    let mut runbook = String::from("version: 1\nname: dns\nsteps:\n");
    for (id, name, kind, expect) in steps {
        runbook.push_str(&format!(
            "  - {{id: {id}, check: {{dns: {{name: '{name}', type: {kind}, server: '{server}', expect: '{expect}'}}, timeout: 10s}}}}\n"
        ));
    }
    runbook.push_str(&format!(
        "  - {{id: no-expect, check: {{dns: {{name: portal.hospital.example, server: '{server}'}}, timeout: 10s}}}}\n"
    ));
    let (output, t) = Test::new()
        .runbook(&runbook)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for (id, ..) in steps {
        assert!(
            outcome(&stdout, id).starts_with(&format!("already-ok  {id}")),
            "{id}:\n{stdout}"
        );
    }
    // What each probe saw is kept in the journal.
    let journal = all_files_text(&t.path().join("state"));
    assert!(
        journal.contains("A `intranet.hospital.example`: 10.2.0.21"),
        "{journal}"
    );
    assert!(
        journal.contains("MX `hospital.example`: 10 mail.hospital.example."),
        "{journal}"
    );
    // The truncated answer was asked again over TCP: all eight records.
    assert!(journal.contains("part1-xxx") && journal.contains("part8-xxx"));
    let log = std::fs::read_to_string(dns.dir.path().join("dnsmasq.log")).unwrap();
    assert!(log.contains("query[PTR] 21.0.2.10.in-addr.arpa"), "{log}");
}

#[test]
fn dns_probe_failures_say_what_the_server_answered() {
    // The timeout: dnsmasq forwards `slow.example` to an upstream that
    // receives and never answers.
    let upstream = UdpSocket::bind("127.0.11.3:0").unwrap();
    let silent = upstream.local_addr().unwrap().port();
    let (_dns, port) = dnsmasq(
        "127.0.11.2",
        &format!("server=/slow.example/127.0.11.3#{silent}\n"),
    );
    let server = format!("127.0.11.2:{port}");
    let down = format!("127.0.11.4:{}", free_port());
    let (stdout, _t) = run(&format!(
        "
        version: 1
        name: dns
        defaults: {{on_failure: continue}}
        steps:
          - {{id: wrong, check: {{dns: {{name: intranet.hospital.example, server: '{server}', expect: 10.2.0.2}}}}}}
          - {{id: wrong-mx, check: {{dns: {{name: hospital.example, type: MX, server: '{server}', expect: mail.other.example}}}}}}
          - {{id: nxdomain, check: {{dns: {{name: nowhere.hospital.example, server: '{server}'}}}}}}
          - {{id: no-record, check: {{dns: {{name: portal.hospital.example, type: MX, server: '{server}'}}}}}}
          - {{id: refused, check: {{dns: {{name: portal.elsewhere.example, server: '{server}'}}}}}}
          - {{id: timeout, check: {{dns: {{name: a.slow.example, server: '{server}'}}, timeout: 2s}}}}
          - {{id: down, check: {{dns: {{name: intranet.hospital.example, server: '{down}'}}, timeout: 2s}}}}
        "
    ));
    let expected = [
        (
            "wrong",
            format!("A `intranet.hospital.example` is `10.2.0.21` at {server}, not `10.2.0.2`"),
        ),
        (
            "wrong-mx",
            format!(
                "MX `hospital.example` is `10 mail.hospital.example.` at {server}, not `mail.other.example`"
            ),
        ),
        (
            "nxdomain",
            format!("`nowhere.hospital.example` does not exist at {server} (NXDOMAIN)"),
        ),
        (
            "no-record",
            format!("no MX record for `portal.hospital.example` at {server}"),
        ),
        (
            "refused",
            format!("{server} answered REFUSED for `portal.elsewhere.example`"),
        ),
        ("timeout", format!("no answer from {server} within 2s")),
        ("down", format!("no answer from {down} within 2s")),
    ];
    for (id, message) in expected {
        let seen = outcome(&stdout, id);
        assert!(
            seen.starts_with(&format!("failed      {id}"))
                && seen.ends_with(&format!("controller: failed: check failed: {message}")),
            "{id}: expected `{message}`, got\n{seen}\n---\n{stdout}"
        );
    }
    drop(upstream);
}

/// Runs `script` as root in a new network namespace (only its own
/// loopback) and mount namespace; `$RUNBOOK` is the binary.
fn in_namespace(dir: &Path, script: &str) -> Output {
    let unshare = require("unshare", "util-linux");
    let output = Command::new(unshare)
        .args(["--net", "--mount", "sh", "-euc"])
        .arg(format!("ip link set lo up\n{script}"))
        .current_dir(dir)
        .env("RUNBOOK", BIN)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_STATE_DIR")
        .output()
        .expect("unshare");
    assert!(
        output.status.code().is_some(),
        "killed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn dns_without_server_asks_the_system_resolver() {
    // resolv.conf can only name port 53: dnsmasq listens there inside the
    // test's namespaces, where /etc/resolv.conf is the test's own.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    dnsmasq_config(d, "127.0.0.1", 53, "");
    std::fs::write(d.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    std::fs::write(
        d.join("runbook.yaml"),
        "version: 1\nname: dns\ndefaults: {on_failure: continue}\nsteps:\n\
         - {id: system, check: {dns: {name: intranet.hospital.example, expect: 10.2.0.21}, attempts: 50, interval: 200ms, timeout: 2s}}\n\
         - {id: wrong, check: {dns: {name: portal.hospital.example, type: AAAA, expect: 'fd00::23'}, timeout: 2s}}\n",
    )
    .unwrap();
    let dnsmasq = require("dnsmasq", "dnsmasq-base");
    let output = in_namespace(
        d,
        &format!(
            "mount --bind resolv.conf /etc/resolv.conf\n\
             {} --keep-in-foreground --conf-file=dnsmasq.conf & pid=$!\n\
             \"$RUNBOOK\" run runbook.yaml --state-dir state || true\n\
             kill $pid",
            dnsmasq.display()
        ),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        outcome(&stdout, "system").starts_with("already-ok  system"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        outcome(&stdout, "wrong").ends_with(
            "check failed: AAAA `portal.hospital.example` is `fd00::22` at the system resolver, not `fd00::23`"
        ),
        "{stdout}"
    );
}

#[test]
fn ping_answers_from_loopback_and_fails_for_silent_and_unroutable_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("up.yaml"),
        "version: 1\nname: ping\ndefaults: {on_failure: continue}\nsteps:\n\
         - {id: v4, check: {ping: {host: 127.0.0.1, count: 2}, timeout: 10s}}\n\
         - {id: v6, check: {ping: {host: '::1'}, timeout: 10s}}\n\
         - {id: by-name, check: {ping: {host: localhost, count: 1}, timeout: 10s}}\n\
         - {id: no-route, check: {ping: {host: 192.0.2.1}, timeout: 2s}}\n",
    )
    .unwrap();
    // The namespace's kernel ignores IPv4 echo requests: 127.0.0.1 is a
    // host that is up and does not answer.
    std::fs::write(
        d.join("silent.yaml"),
        "version: 1\nname: ping\ndefaults: {on_failure: continue}\nsteps:\n\
         - {id: silent, check: {ping: {host: 127.0.0.1, count: 2}, timeout: 2s}}\n\
         - {id: loss-allowed, check: {ping: {host: 127.0.0.1, count: 2, max_loss: 100}, timeout: 2s}}\n",
    )
    .unwrap();
    let output = in_namespace(
        d,
        "\"$RUNBOOK\" run up.yaml --state-dir up || true\n\
         echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all\n\
         \"$RUNBOOK\" run silent.yaml --state-dir silent || true",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for id in ["v4", "v6", "by-name", "loss-allowed"] {
        assert!(
            outcome(&stdout, id).starts_with(&format!("already-ok  {id}")),
            "{id}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        outcome(&stdout, "no-route").ends_with(
            "check failed: cannot reach 192.0.2.1: Network is unreachable (os error 101)"
        ),
        "{stdout}"
    );
    assert!(
        outcome(&stdout, "silent")
            .ends_with("check failed: no reply from 127.0.0.1 to 2 echo requests within 2s"),
        "{stdout}"
    );
    let journal = all_files_text(&d.join("up"));
    assert!(
        journal.contains("2 of 2 echo requests to 127.0.0.1 answered"),
        "{journal}"
    );
}

/// Without root, ICMP goes through the kernel's unprivileged datagram
/// sockets when net.ipv4.ping_group_range (per network namespace) has the
/// process's group; otherwise the probe says what to change.
#[test]
fn ping_without_root_uses_datagram_sockets_or_says_why_it_cannot() {
    let setpriv = require("setpriv", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(
        d.join("runbook.yaml"),
        "version: 1\nname: ping\nsteps:\n\
         - {id: ping, check: {ping: {host: 127.0.0.1, count: 1}, timeout: 10s}}\n",
    )
    .unwrap();
    let nobody = format!(
        "{} --reuid=65534 --regid=65534 --clear-groups \"$RUNBOOK\" run runbook.yaml",
        setpriv.display()
    );
    let output = in_namespace(
        d,
        &format!(
            "echo '1 0' > /proc/sys/net/ipv4/ping_group_range\n\
             {nobody} --state-dir refused || true\n\
             echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range\n\
             {nobody} --state-dir allowed || true"
        ),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let runs: Vec<&str> = stdout.split(" of `ping`: ").collect();
    assert_eq!(
        runs.len(),
        3,
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        outcome(runs[1], "ping").ends_with(
            "check failed: this process may not send ICMP echo requests: an unprivileged ICMP socket needs its group (65534) within sysctl net.ipv4.ping_group_range (now `1 0`), a raw socket needs root or CAP_NET_RAW"
        ),
        "{stdout}"
    );
    assert!(
        outcome(runs[2], "ping").starts_with("already-ok  ping"),
        "{stdout}"
    );
}

fn redis(address: &str) -> (Server, u16) {
    let program = require("redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(program)
        .args(["--port", &port.to_string(), "--bind", address])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_listening(address, port, "redis-server");
    (Server { child, dir }, port)
}

#[test]
fn tcp_send_expect_talks_to_a_real_redis() {
    let (_redis, port) = redis("127.0.11.5");
    let closed = free_port();
    let (output, t) = Test::new()
        .runbook(&format!(
            r#"
            version: 1
            name: tcp
            defaults: {{on_failure: continue}}
            steps:
              - {{id: pong, check: {{tcp: {{host: 127.0.11.5, port: {port}, send: "PING\r\n", expect: "+PONG"}}, timeout: 10s}}}}
              - {{id: connect-only, check: {{tcp: {{host: 127.0.11.5, port: {port}}}, timeout: 10s}}}}
              - {{id: wrong, check: {{tcp: {{host: 127.0.11.5, port: {port}, send: "PING\r\n", expect: "+OK"}}, timeout: 2s}}}}
              - {{id: silent, check: {{tcp: {{host: 127.0.11.5, port: {port}, expect: "+OK"}}, timeout: 2s}}}}
              - {{id: closed, check: {{tcp: {{host: 127.0.11.5, port: {port}, send: "QUIT\r\n", expect: "+PONG"}}, timeout: 10s}}}}
              - {{id: down, check: {{tcp: {{host: 127.0.11.5, port: {closed}, send: "PING\r\n", expect: "+PONG"}}, timeout: 10s}}}}
              - {{id: echoed-secret, check: {{tcp: {{host: 127.0.11.5, port: {port}, send: "ECHO {{{{ secret.TOKEN }}}}\r\n", expect: "+PONG"}}, timeout: 2s}}}}
            "#
        ))
        .env("RUNBOOK_SECRET_TOKEN", "s3cret-token")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for id in ["pong", "connect-only"] {
        assert!(
            outcome(&stdout, id).starts_with(&format!("already-ok  {id}")),
            "{id}:\n{stdout}"
        );
    }
    let expected = [
        (
            "wrong",
            r"connected, but `+OK` was not received within 2s; received `+PONG\r\n`",
        ),
        (
            "silent",
            "connected, but `+OK` was not received within 2s; received nothing",
        ),
        (
            "closed",
            r"connection closed before `+PONG` was received; received `+OK\r\n`",
        ),
        ("down", "Connection refused (os error 111)"),
        // Redis answers the secret back: the operator sees it masked.
        (
            "echoed-secret",
            r"connected, but `+PONG` was not received within 2s; received `$12\r\n***\r\n`",
        ),
    ];
    for (id, message) in expected {
        let seen = outcome(&stdout, id);
        assert!(
            seen.starts_with(&format!("failed      {id}"))
                && seen.ends_with(&format!("controller: failed: check failed: {message}")),
            "{id}: expected `{message}`, got\n{seen}\n---\n{stdout}"
        );
    }
    let journal = all_files_text(&t.path().join("state"));
    assert!(!journal.contains("s3cret"), "{journal}");
}

#[test]
fn a_rehearsal_shows_ping_and_dns_probes_without_sending_anything() {
    Test::new()
        .inventory("version: 1\nhosts:\n  gw: {address: 10.9.0.1}\n")
        .runbook(
            "
            version: 1
            name: layers
            steps:
              - {id: link, targets: [gw], check: {ping: {count: 3, max_loss: 34}}}
              - {id: names, check: {dns: {name: intranet.hospital.example, type: MX, server: '10.9.0.53:5353'}}}
              - {id: system, check: {dns: {name: '{{ vars.portal }}'}}}
            vars: {portal: portal.hospital.example}
            ",
        )
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--dry-run"])
        .stdout_contains("gw: check: ping 10.9.0.1 (assumed to pass)")
        .stdout_contains(
            "controller: check: dns MX intranet.hospital.example @10.9.0.53:5353 (assumed to pass)",
        )
        .stdout_contains("controller: check: dns A portal.hospital.example (assumed to pass)")
        .run();
}

/// `dns` with `via`: the query goes over TCP from the site host, through
/// its real sshd, to a real dnsmasq; a `local` site host (the simulated
/// inventory's) is the controller and asks itself.
#[test]
fn dns_probes_via_a_site_host_ask_over_tcp_from_there() {
    let mut sshd = crate::sshd::Sshd::prepare(&["127.0.0.2"]);
    // sshd names the target of each direct-tcpip channel at DEBUG1.
    sshd.set("LogLevel", "DEBUG1");
    sshd.launch();
    let (_dns, port) = dnsmasq("127.0.11.5", "");
    let server = format!("127.0.11.5:{port}");
    let closed = format!("127.0.11.6:{}", free_port());
    let inventory = format!(
        "version: 1\nhosts:\n  site-gw: {}\n  laptop: {{transport: local}}\n",
        sshd.host("127.0.0.2", ", connect_timeout: 5s")
    );
    let (output, t) = Test::new()
        .inventory(&inventory)
        .runbook(&format!(
            "
            version: 1
            name: dns
            defaults: {{on_failure: continue}}
            steps:
              - {{id: site, check: {{dns: {{name: intranet.hospital.example, server: '{server}', expect: 10.2.0.21, via: site-gw}}, timeout: 10s}}}}
              - {{id: site-big, check: {{dns: {{name: big.hospital.example, type: TXT, server: '{server}', expect: part8-xxx, via: site-gw}}, timeout: 10s}}}}
              - {{id: local, check: {{dns: {{name: hospital.example, type: MX, server: '{server}', expect: mail.hospital.example, via: laptop}}, timeout: 10s}}}}
              - {{id: site-nx, check: {{dns: {{name: nowhere.hospital.example, server: '{server}', via: site-gw}}, timeout: 10s}}}}
              - {{id: site-wrong, check: {{dns: {{name: intranet.hospital.example, server: '{server}', expect: 10.2.0.2, via: site-gw}}, timeout: 10s}}}}
              - {{id: site-closed, check: {{dns: {{name: intranet.hospital.example, server: '{closed}', via: site-gw}}, timeout: 10s}}}}
              - {{id: local-closed, check: {{dns: {{name: intranet.hospital.example, server: '{closed}', via: laptop}}, timeout: 10s}}}}
            "
        ))
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for id in ["site", "site-big", "local"] {
        assert!(
            outcome(&stdout, id).starts_with(&format!("already-ok  {id}")),
            "{id}:\n{stdout}"
        );
    }
    let expected = [
        (
            "site-nx",
            format!(
                "`nowhere.hospital.example` does not exist at {server} from `site-gw` (NXDOMAIN)"
            ),
        ),
        (
            "site-wrong",
            format!(
                "A `intranet.hospital.example` is `10.2.0.21` at {server} from `site-gw`, not `10.2.0.2`"
            ),
        ),
        (
            "site-closed",
            format!("connection to {closed} refused from `site-gw` (or unreachable from there)"),
        ),
        (
            "local-closed",
            format!("connection to {closed} refused from `laptop`"),
        ),
    ];
    for (id, message) in expected {
        let seen = outcome(&stdout, id);
        assert!(
            seen.starts_with(&format!("failed      {id}"))
                && seen.ends_with(&format!("controller: failed: check failed: {message}")),
            "{id}: expected `{message}`, got\n{seen}\n---\n{stdout}"
        );
    }
    // Every answer of the eight TXT records came whole, over TCP, and the
    // site host's sshd opened the connections to the server.
    let journal = all_files_text(&t.path().join("state"));
    assert!(journal.contains("part1-xxx") && journal.contains("part8-xxx"));
    let channels = sshd.log_lines(&format!("target 127.0.11.5 port {port}"));
    assert!(channels.len() >= 4, "{channels:?}");
}

#[test]
fn dns_via_needs_a_server_to_ask() {
    Test::new()
        .inventory("version: 1\nhosts:\n  site-gw: {address: 10.0.0.1}\n")
        .runbook(
            "
            version: 1
            name: dns
            steps:
              - id: site
                check: {dns: {name: intranet.hospital.example, via: site-gw}}
            ",
        )
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .status(2)
        .stderr_contains("runbook.yaml:5:57")
        .stderr_contains("needs `server`: the query goes over TCP from that host to that server")
        .run();
}
