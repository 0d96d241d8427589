//! `smtp` and `sip` probes against real servers from Debian packages,
//! started here on loopback addresses and free ports in temp dirs: Exim
//! (exim4-daemon-light) as the MTA, Kamailio as the SIP server. Missing
//! packages are a loud failure: `scripts/test.sh` installs them.

use std::io::Read as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::sshd::{Sshd, free_port};

/// A server in its own process group (Exim forks per connection), ended
/// with SIGTERM to the whole group so that none of it outlives the test.
struct Server {
    dir: tempfile::TempDir,
    address: String,
    port: u16,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: signalling the process group of our own child.
        unsafe {
            libc::kill(-group, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Server {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }

    fn spawn(dir: tempfile::TempDir, address: &str, port: u16, command: &mut Command) -> Self {
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?} ({e}): run scripts/test.sh"));
        Self {
            dir,
            address: address.into(),
            port,
            child,
        }
    }

    /// Waits until the TCP port accepts and, if `greeting`, until the
    /// server sends it.
    fn wait(self, greeting: Option<&str>) -> Self {
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the server on {}:{} never answered:\n{}",
                self.address,
                self.port,
                self.log()
            );
            if let Ok(mut stream) = TcpStream::connect((self.address.as_str(), self.port)) {
                let Some(greeting) = greeting else {
                    return self;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut first = [0; 64];
                let n = stream.read(&mut first).unwrap_or(0);
                if first[..n].starts_with(greeting.as_bytes()) {
                    return self;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn require(binary: &str, package: &str) {
    assert!(
        Path::new(binary).exists(),
        "{binary} is missing: these tests need {package} (scripts/test.sh installs it)"
    );
}

/// A self-signed certificate and its key for an IP address, made with the
/// `openssl` command: `cert.pem` is also what a test trusts.
fn certificate(dir: &Path, ip: &str) {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"])
        .args(["-keyout", "key.pem", "-out", "cert.pem", "-subj"])
        .arg(format!("/CN={ip}"))
        .arg("-addext")
        .arg(format!("subjectAltName=IP:{ip}"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed: run scripts/test.sh");
    assert!(status.success());
}

/// Exim in the foreground with a configuration of its own: listens on
/// `addresses`, spools and logs in its temp dir, runs as whoever runs the
/// tests. With `tls_for`, it offers STARTTLS with a certificate for that
/// address only; without, it offers no STARTTLS.
fn exim(addresses: &[&str], tls_for: Option<&str>) -> Server {
    require("/usr/sbin/exim4", "exim4-daemon-light");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let port = free_port();
    let tls = match tls_for {
        Some(ip) => {
            certificate(dir.path(), ip);
            format!(
                "tls_advertise_hosts = *\ntls_certificate = {d}/cert.pem\ntls_privatekey = {d}/key.pem\n"
            )
        }
        None => "tls_advertise_hosts =\n".into(),
    };
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let config = format!(
        "primary_hostname = mx.hospital.test\nexim_user = {uid}\nexim_group = {gid}\n\
         keep_environment =\nspool_directory = {d}/spool\nlog_file_path = {d}/%slog\n\
         pid_file_path = {d}/exim.pid\nlocal_interfaces = {}\n{tls}\
         begin acl\nbegin routers\nbegin transports\n",
        addresses.join(" : ")
    );
    std::fs::write(dir.path().join("exim.conf"), config).unwrap();
    let conf = dir.path().join("exim.conf");
    let server = Server::spawn(
        dir,
        addresses[0],
        port,
        Command::new("/usr/sbin/exim4")
            .args(["-bdf", "-oX", &port.to_string(), "-C"])
            .arg(conf),
    );
    server.wait(Some("220 "))
}

/// Kamailio in the foreground, on UDP and TCP: `reply` is the request
/// route's answer to OPTIONS (`sl_send_reply`), or `None` to stay silent.
fn kamailio(address: &str, reply: Option<(&str, &str)>) -> Server {
    require("/usr/sbin/kamailio", "kamailio");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_udp_and_tcp(address);
    let route = match reply {
        Some((code, reason)) => format!("sl_send_reply(\"{code}\", \"{reason}\");"),
        None => "drop;".into(),
    };
    let config = format!(
        "#!KAMAILIO\ndebug=2\nlog_stderror=yes\nchildren=1\ntcp_children=1\nauto_aliases=no\n\
         listen=udp:{address}:{port}\nlisten=tcp:{address}:{port}\nloadmodule \"sl.so\"\n\
         request_route {{\n  if (method == \"OPTIONS\") {{\n    {route}\n    exit;\n  }}\n  drop;\n}}\n"
    );
    std::fs::write(dir.path().join("kamailio.cfg"), config).unwrap();
    let d = dir.path().to_path_buf();
    let server = Server::spawn(
        dir,
        address,
        port,
        Command::new("/usr/sbin/kamailio")
            .args(["-DD", "-E", "-m", "16", "-M", "4", "-f"])
            .arg(d.join("kamailio.cfg"))
            .arg("-P")
            .arg(d.join("kamailio.pid"))
            .arg("-w")
            .arg(&d),
    );
    // The UDP socket is bound before the TCP one listens.
    server.wait(None)
}

fn free_port_udp_and_tcp(address: &str) -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind((address, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind((address, port)).is_ok() {
            return port;
        }
    }
}

/// The `detail` of each journaled probe of the test's run, by step.
fn details(dir: &Path) -> Vec<(String, bool, String)> {
    let runs = dir.join("state/runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    std::fs::read_to_string(run.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "action")
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_string(),
                e["passed"] == true,
                e["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn detail_of(dir: &Path, step: &str) -> (bool, String) {
    details(dir)
        .into_iter()
        .find(|(s, ..)| s == step)
        .map(|(_, passed, detail)| (passed, detail))
        .unwrap_or_else(|| panic!("no probe of `{step}` in the journal"))
}

fn run(runbook: &str) -> Test {
    Test::new()
        .runbook(runbook)
        .args(["run", "runbook.yaml", "--state-dir", "state"])
}

#[test]
fn smtp_probe_reads_the_banner_of_a_real_mta_says_ehlo_and_upgrades_to_tls() {
    let mx = exim(&["127.0.25.1"], Some("127.0.25.1"));
    let port = mx.port;
    let (_, t) = run(&format!(
        "
        version: 1
        name: mail
        steps:
          - {{id: plain, check: {{smtp: {{host: 127.0.25.1, port: {port}}}}}}}
          - {{id: tls, check: {{smtp: {{host: 127.0.25.1, port: {port}, starttls: true}}, timeout: 10s}}}}
        "
    ))
    .env("SSL_CERT_FILE", &mx.path("cert.pem").display().to_string())
    .stdout_contains("already-ok plain")
    .stdout_contains("already-ok tls")
    .run();
    let (passed, plain) = detail_of(t.path(), "plain");
    assert!(
        passed && plain.starts_with("220 mx.hospital.test ESMTP Exim"),
        "{plain}"
    );
    let (passed, tls) = detail_of(t.path(), "tls");
    assert!(
        passed && tls.ends_with("; STARTTLS, certificate trusted"),
        "{tls}"
    );
}

#[test]
fn smtp_starttls_fails_on_a_missing_offer_an_untrusted_certificate_and_another_address() {
    // One Exim on two addresses, its certificate for the first only; another
    // offers no STARTTLS.
    let mx = exim(&["127.0.25.2", "127.0.25.3"], Some("127.0.25.2"));
    let plain = exim(&["127.0.25.4"], None);
    let runbook = format!(
        "
        version: 1
        name: mail
        defaults: {{on_failure: continue}}
        steps:
          - {{id: right-name, check: {{smtp: {{host: 127.0.25.2, port: {0}, starttls: true}}, timeout: 10s}}}}
          - {{id: wrong-name, check: {{smtp: {{host: 127.0.25.3, port: {0}, starttls: true}}, timeout: 10s}}}}
          - {{id: no-offer, check: {{smtp: {{host: 127.0.25.4, port: {1}, starttls: true}}, timeout: 10s}}}}
        ",
        mx.port, plain.port
    );
    let (_, t) = run(&runbook)
        .env("SSL_CERT_FILE", &mx.path("cert.pem").display().to_string())
        .status(1)
        .stdout_contains("already-ok right-name")
        .stdout_contains(
            "failed     wrong-name @ controller: check failed: TLS handshake after STARTTLS failed: certificate not trusted: IP address mismatch",
        )
        .stdout_contains(
            "failed     no-offer @ controller: check failed: the server does not offer STARTTLS (EHLO lists: SIZE, 8BITMIME, PIPELINING",
        )
        .run();
    drop(t);
    // The same server, its certificate no longer trusted.
    run(&runbook)
        .env("SSL_CERT_FILE", "/nonexistent")
        .status(1)
        .stdout_contains(
            "failed     right-name @ controller: check failed: TLS handshake after STARTTLS failed: certificate not trusted: self-signed certificate",
        )
        .run();
}

#[test]
fn smtp_probe_failures_say_what_answered_instead_of_a_mail_server() {
    let sshd = Sshd::start(&["127.0.25.5"]);
    let silent = kamailio("127.0.25.6", Some(("200", "OK")));
    let down = free_port();
    let sshd_port = sshd.port;
    let silent_port = silent.port;
    run(&format!(
        "
        version: 1
        name: mail
        defaults: {{on_failure: continue}}
        steps:
          - {{id: down, check: {{smtp: {{host: 127.0.25.7, port: {down}}}}}}}
          - {{id: ssh, check: {{smtp: {{host: 127.0.25.5, port: {sshd_port}}}, timeout: 10s}}}}
          - {{id: silent, check: {{smtp: {{host: 127.0.25.6, port: {silent_port}}}, timeout: 2s}}}}
        "
    ))
    .status(1)
    .stdout_contains(&format!(
        "failed     down @ controller: check failed: connection refused: nothing listens on tcp 127.0.25.7:{down}"
    ))
    .stdout_contains("failed     ssh @ controller: check failed: expected an SMTP banner, got `SSH-2.0-OpenSSH")
    // A SIP server on TCP waits for a request: the MTA's banner never comes.
    .stdout_contains("failed     silent @ controller: check failed: no banner within 2s")
    .run();
}

#[test]
fn sip_probe_passes_on_any_final_answer_of_a_real_server_over_udp_and_tcp() {
    let pbx = kamailio("127.0.50.1", Some(("200", "OK")));
    let strict = kamailio("127.0.50.2", Some(("405", "Method Not Allowed")));
    let (p, s) = (pbx.port, strict.port);
    let (_, t) = run(&format!(
        "
        version: 1
        name: telephony
        steps:
          - {{id: udp, check: {{sip: {{host: 127.0.50.1, port: {p}}}, timeout: 10s}}}}
          - {{id: tcp, check: {{sip: {{host: 127.0.50.1, port: {p}, transport: tcp}}, timeout: 10s}}}}
          - {{id: refusing, check: {{sip: {{host: 127.0.50.2, port: {s}, transport: udp}}, timeout: 10s}}}}
        "
    ))
    .stdout_contains("already-ok udp")
    .stdout_contains("already-ok tcp")
    .stdout_contains("already-ok refusing")
    .run();
    assert_eq!(detail_of(t.path(), "udp"), (true, "SIP/2.0 200 OK".into()));
    assert_eq!(detail_of(t.path(), "tcp"), (true, "SIP/2.0 200 OK".into()));
    assert_eq!(
        detail_of(t.path(), "refusing"),
        (true, "SIP/2.0 405 Method Not Allowed".into())
    );
}

#[test]
fn sip_probe_failures_name_a_missing_server_another_protocol_and_silence() {
    let silent = kamailio("127.0.50.3", None);
    let mx = exim(&["127.0.50.4"], None);
    let down = free_port_udp_and_tcp("127.0.50.5");
    let (quiet, mail) = (silent.port, mx.port);
    run(&format!(
        "
        version: 1
        name: telephony
        defaults: {{on_failure: continue}}
        steps:
          - {{id: down-udp, check: {{sip: {{host: 127.0.50.5, port: {down}}}, timeout: 10s}}}}
          - {{id: down-tcp, check: {{sip: {{host: 127.0.50.5, port: {down}, transport: tcp}}, timeout: 10s}}}}
          - {{id: mta, check: {{sip: {{host: 127.0.50.4, port: {mail}, transport: tcp}}, timeout: 10s}}}}
          - {{id: quiet-udp, check: {{sip: {{host: 127.0.50.3, port: {quiet}}}, timeout: 2s}}}}
          - {{id: quiet-tcp, check: {{sip: {{host: 127.0.50.3, port: {quiet}, transport: tcp}}, timeout: 2s}}}}
        "
    ))
    .status(1)
    .stdout_contains(&format!(
        "failed     down-udp @ controller: check failed: connection refused: nothing listens on udp 127.0.50.5:{down}"
    ))
    .stdout_contains(&format!(
        "failed     down-tcp @ controller: check failed: connection refused: nothing listens on tcp 127.0.50.5:{down}"
    ))
    .stdout_contains(
        "failed     mta @ controller: check failed: expected a SIP response, got `220 mx.hospital.test ESMTP Exim",
    )
    .stdout_contains("failed     quiet-udp @ controller: check failed: no answer to OPTIONS within 2s")
    .stdout_contains("failed     quiet-tcp @ controller: check failed: no answer to OPTIONS within 2s")
    .run();
    drop(silent);
}

#[test]
fn smtp_and_sip_default_to_the_target_address_and_their_standard_ports() {
    run("
        version: 1
        name: defaults
        steps:
          - {id: mail, targets: [mx], check: {smtp: {}}}
          - {id: phone, targets: [pbx], check: {sip: {}}}
        ")
    .inventory("version: 1\nhosts:\n  mx: {address: 10.4.0.25}\n  pbx: {address: 10.5.0.10}\n")
    .args(["-i", "inventory.yaml", "--dry-run"])
    .stdout_contains("smtp 10.4.0.25:25")
    .stdout_contains("sip udp 10.5.0.10:5060")
    .run();
}

/// `via`: the SMTP conversation through a site host's sshd, STARTTLS too.
#[test]
fn smtp_via_a_site_host_talks_to_the_mta_through_its_sshd() {
    let mx = exim(&["127.0.25.5"], Some("127.0.25.5"));
    let port = mx.port;
    let sshd = Sshd::start(&["127.0.25.6"]);
    let closed = free_port();
    let (_, t) = Test::new()
        .runbook(&format!(
            "
            version: 1
            name: mail
            defaults: {{on_failure: continue}}
            steps:
              - {{id: tls, check: {{smtp: {{host: 127.0.25.5, port: {port}, starttls: true, via: site-gw}}, timeout: 10s}}}}
              - {{id: down, check: {{smtp: {{host: 127.0.25.5, port: {closed}, via: site-gw}}, timeout: 10s}}}}
            "
        ))
        .inventory(&format!(
            "version: 1\nhosts:\n  site-gw: {}\n",
            sshd.host("127.0.25.6", "")
        ))
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--state-dir", "state"])
        .env("SSL_CERT_FILE", &mx.path("cert.pem").display().to_string())
        .status(1)
        .stdout_contains("already-ok tls")
        .stdout_contains(&format!(
            "failed     down @ controller: check failed: connection to 127.0.25.5:{closed} refused from `site-gw`"
        ))
        .run();
    let (passed, tls) = detail_of(t.path(), "tls");
    assert!(
        passed
            && tls.starts_with("220 mx.hospital.test ESMTP Exim")
            && tls.ends_with("; STARTTLS, certificate trusted"),
        "{tls}"
    );
}

/// A `tcp` probe's `send` template keeps its final `\r\n`: a SIP request (as the
/// hospital runbook sends one from a site) ends with the blank line after
/// its headers, without which a real server waits for more.
#[test]
fn tcp_send_keeps_the_blank_line_that_ends_a_sip_request() {
    let pbx = kamailio("127.0.50.6", Some(("200", "OK")));
    let p = pbx.port;
    run(&format!(
        r#"
        version: 1
        name: telephony
        vars: {{pbx: 127.0.50.6}}
        steps:
          - id: options
            check:
              tcp:
                host: 127.0.50.6
                port: {p}
                send: "OPTIONS sip:{{{{ vars.pbx }}}} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-runbook\r\nMax-Forwards: 70\r\nFrom: <sip:runbook@127.0.0.1>;tag=runbook\r\nTo: <sip:{{{{ vars.pbx }}}}>\r\nCall-ID: runbook-tcp-send\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                expect: SIP/2.0 200
              timeout: 5s
        "#
    ))
    .stdout_contains("already-ok options")
    .run();
}
