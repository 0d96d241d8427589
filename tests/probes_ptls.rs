//! The `tls` probe and `http` over https against a real nginx on loopback,
//! with a CA and certificates made here by the `openssl` CLI: one valid,
//! one expiring in 3 days, one for another name, one self-signed.
//! `scripts/test.sh` installs nginx and openssl; missing ones fail loudly.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Test;

/// The loopback address the servers listen on.
const ADDR: &str = "127.0.0.61";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (package openssl) must be installed: run scripts/test.sh");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind((ADDR, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test CA and the server certificates, in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

const KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

impl Pki {
    fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = pki.dir.path();
        std::fs::write(
            d.join("ca.cnf"),
            "[req]\ndistinguished_name = dn\nx509_extensions = ca\n[dn]\n\
             [ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n\
             [self]\nsubjectAltName = DNS:portal.test, IP:127.0.0.61\nbasicConstraints = CA:FALSE\n\
             keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        let mut args = vec!["req", "-x509", "-config", "ca.cnf", "-nodes"];
        args.extend(KEY);
        args.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Runbook Test CA",
        ]);
        openssl(d, &args);
        // The address too, for `http` probes by URL.
        pki.leaf("valid", "DNS:portal.test, IP:127.0.0.61", "30");
        pki.leaf("expiring", "DNS:portal.test", "3");
        pki.leaf("other", "DNS:other.test", "30");
        let mut args = vec!["req", "-x509", "-config", "ca.cnf", "-nodes"];
        args.extend(KEY);
        args.extend([
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-days",
            "30",
            "-subj",
            "/CN=portal.test",
            "-extensions",
            "self",
        ]);
        openssl(d, &args);
        pki
    }

    /// `NAME.pem` and `NAME.key`, for `names` (`DNS:a, IP:b`), signed by the CA.
    fn leaf(&self, name: &str, names: &str, days: &str) {
        let d = self.dir.path();
        std::fs::write(
            d.join(format!("{name}.ext")),
            format!(
                "subjectAltName = {names}\nbasicConstraints = CA:FALSE\n\
                 extendedKeyUsage = serverAuth\n"
            ),
        )
        .unwrap();
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subject = "/CN=runbook-test";
        let mut args = vec!["req", "-new", "-config", "ca.cnf", "-nodes"];
        args.extend(KEY);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
        openssl(d, &args);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                days,
                "-out",
                &pem,
                "-extfile",
                &ext,
            ],
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The day a certificate expires, as `openssl` reads it: `2026-12-02`.
    fn expiry_day(&self, name: &str) -> String {
        let output = Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
            .arg(self.path(&format!("{name}.pem")))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let date = text.trim().trim_start_matches("notAfter=");
        date.split_whitespace().next().unwrap().to_string()
    }
}

/// nginx serving each certificate on its own port of [`ADDR`], killed on drop.
struct Nginx {
    child: Child,
    /// Port by certificate name.
    ports: Vec<(&'static str, u16)>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(pki: &Pki) -> Self {
        let nginx = Path::new("/usr/sbin/nginx");
        assert!(
            nginx.exists(),
            "/usr/sbin/nginx is missing: the TLS probe tests need nginx (scripts/test.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut ports = Vec::new();
        let mut servers = String::new();
        // Held until all four are chosen: a port freed and picked again
        // would give two server blocks one port, and nginx would answer
        // both names with the first one's certificate.
        let held: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind((ADDR, 0)).unwrap())
            .collect();
        for (name, listener) in ["valid", "expiring", "other", "self"]
            .into_iter()
            .zip(&held)
        {
            let port = listener.local_addr().unwrap().port();
            ports.push((name, port));
            servers.push_str(&format!(
                "server {{ listen {ADDR}:{port} ssl; server_name _; \
                 ssl_certificate {cert}; ssl_certificate_key {key}; \
                 location = /health {{ return 200 \"portal ok\\n\"; }} \
                 location = /empty {{ return 204; }} \
                 location = /submit {{ if ($request_method = POST) {{ return 201 \"created\\n\"; }} return 405; }} \
                 }}\n",
                cert = pki.path(&format!("{name}.pem")).display(),
                key = pki.path(&format!("{name}.key")).display(),
            ));
        }
        let config = format!(
            "daemon off; master_process off; pid {0}/nginx.pid; error_log {0}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {0}/body;\n{servers}}}\n",
            d.display()
        );
        std::fs::write(d.join("nginx.conf"), config).unwrap();
        drop(held);
        let child = Command::new(nginx)
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let started = Instant::now();
        for (_, port) in &ports {
            while std::net::TcpStream::connect((ADDR, *port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "nginx did not listen on {ADDR}:{port}: {}",
                    std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Self {
            child,
            ports,
            _dir: dir,
        }
    }

    fn port(&self, name: &str) -> u16 {
        self.ports.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(runbook: &str, pki: &Pki) -> Test {
    let test = Test::new().runbook(runbook);
    std::fs::copy(pki.path("ca.pem"), test.path().join("ca.pem")).unwrap();
    test.args(["run", "runbook.yaml", "--state-dir", "state"])
}

#[test]
fn the_tls_probe_checks_trust_name_and_days_left_and_says_which_failed() {
    let pki = Pki::new();
    let nginx = Nginx::start(&pki);
    let (valid, expiring, other, selfsigned) = (
        nginx.port("valid"),
        nginx.port("expiring"),
        nginx.port("other"),
        nginx.port("self"),
    );
    let down = free_port();
    // Accepts connections (the kernel does) but never speaks TLS.
    let silent = TcpListener::bind((ADDR, 0)).unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let tls = |port: u16, extra: &str| {
        format!("{{tls: {{host: {ADDR}, port: {port}, server_name: portal.test{extra}}}}}")
    };
    let ca = ", ca_file: ca.pem";
    let runbook = format!(
        "
        version: 1
        name: tls
        defaults: {{on_failure: continue}}
        steps:
          - {{id: valid, check: {}}}
          - {{id: expiring-enough, check: {}}}
          - {{id: expiring-short, check: {}}}
          - {{id: wrong-name, check: {}}}
          - {{id: self-signed, check: {}}}
          - {{id: system-roots, check: {}}}
          - {{id: down, check: {}}}
          - {{id: silent, check: {{tls: {{host: {ADDR}, port: {silent_port}}}, timeout: 1s}}}}
        ",
        tls(valid, &format!("{ca}, min_days_valid: 14")),
        tls(expiring, &format!("{ca}, min_days_valid: 2")),
        tls(expiring, &format!("{ca}, min_days_valid: 14")),
        tls(other, ca),
        tls(selfsigned, ca),
        tls(valid, ""),
        tls(down, ca),
    );
    let soon = pki.expiry_day("expiring");
    let other_day = pki.expiry_day("other");
    let (output, _) = run(&runbook, &pki)
        .status(1)
        .stdout_contains("already-ok valid")
        .stdout_contains("already-ok expiring-enough")
        .stdout_contains(&format!(
            "failed     expiring-short @ controller: check failed: expires too soon: {soon} "
        ))
        .stdout_contains(", fewer than the 14 days required")
        .stdout_contains(&format!(
            "failed     wrong-name @ controller: check failed: name mismatch: the certificate is for other.test, not portal.test (the certificate expires on {other_day} "
        ))
        .stdout_contains(
            "failed     self-signed @ controller: check failed: chain not trusted by ca.pem: self-signed certificate (the certificate expires on ",
        )
        .stdout_contains(
            "failed     system-roots @ controller: check failed: chain not trusted by the system roots: unable to get local issuer certificate",
        )
        .stdout_contains(&format!(
            "failed     down @ controller: check failed: cannot connect to {ADDR}:{down}: Connection refused"
        ))
        .stdout_contains(&format!(
            "failed     silent @ controller: check failed: no TLS handshake from {ADDR}:{silent_port} within 1s: the connection was accepted but the server did not answer"
        ))
        .run();
    // One failed check each: a valid chain is not called untrusted.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wrong_name = stdout.lines().find(|l| l.contains("wrong-name @")).unwrap();
    assert!(!wrong_name.contains("not trusted"), "{wrong_name}");
    drop(silent);
}

#[test]
fn the_tls_probe_journals_the_expiry_date_it_saw() {
    let pki = Pki::new();
    let nginx = Nginx::start(&pki);
    let port = nginx.port("valid");
    let day = pki.expiry_day("valid");
    let (_, test) = run(
        &format!(
            "
            version: 1
            name: tls
            steps:
              - {{id: valid, check: {{tls: {{host: {ADDR}, port: {port}, server_name: portal.test, ca_file: ca.pem}}}}}}
            "
        ),
        &pki,
    )
    .run();
    let journal = crate::run::all_files_text(&test.path().join("state"));
    assert!(
        journal.contains(&format!(
            "certificate for portal.test, 127.0.0.61, valid until {day} "
        )),
        "{journal}"
    );
}

#[test]
fn http_over_https_trusts_ca_file_takes_a_method_and_a_list_of_statuses() {
    let pki = Pki::new();
    let nginx = Nginx::start(&pki);
    let valid = nginx.port("valid");
    let selfsigned = nginx.port("self");
    let down = free_port();
    let url = |port: u16, path: &str| format!("'https://{ADDR}:{port}{path}'");
    let base = |path: &str| url(valid, path);
    let secret_url = format!("https://{ADDR}:{valid}/missing");
    let runbook = format!(
        "
        version: 1
        name: https
        defaults: {{on_failure: continue}}
        steps:
          - {{id: get-list, check: {{http: {{url: {}, status: [200, 204], body_contains: portal ok, ca_file: ca.pem}}}}}}
          - {{id: one-status, check: {{http: {{url: {}, status: 204, ca_file: ca.pem}}}}}}
          - {{id: head, check: {{http: {{url: {}, method: HEAD, status: [200], ca_file: ca.pem}}}}}}
          - {{id: post, check: {{http: {{url: {}, method: POST, status: [201], body_contains: created, ca_file: ca.pem}}}}}}
          - {{id: get-not-allowed, check: {{http: {{url: {}, status: [201], ca_file: ca.pem}}}}}}
          - {{id: missing, check: {{http: {{url: {}, status: [200, 204], ca_file: ca.pem}}}}}}
          - {{id: wrong-body, check: {{http: {{url: {}, body_contains: nope, ca_file: ca.pem}}}}}}
          - {{id: system-roots, check: {{http: {{url: {}}}}}}}
          - {{id: self-signed, check: {{http: {{url: {}, ca_file: ca.pem}}}}}}
          - {{id: down, check: {{http: {{url: {}, ca_file: ca.pem}}}}}}
          - {{id: secret, check: {{http: {{url: '{}?token={{{{ secret.PORTAL_TOKEN }}}}', status: [200], ca_file: ca.pem}}}}}}
        ",
        base("/health"),
        base("/empty"),
        base("/health"),
        base("/submit"),
        base("/submit"),
        base("/missing"),
        base("/health"),
        base("/health"),
        url(selfsigned, "/health"),
        url(down, "/health"),
        secret_url,
    );
    let secret = "Tok3n-never-shown";
    let (output, _) = run(&runbook, &pki)
        .env("RUNBOOK_SECRET_PORTAL_TOKEN", secret)
        .status(1)
        .stdout_contains("already-ok get-list")
        .stdout_contains("already-ok one-status")
        .stdout_contains("already-ok head")
        .stdout_contains("already-ok post")
        .stdout_contains("failed     get-not-allowed @ controller: check failed: status 405, expected 201 (")
        .stdout_contains("failed     missing @ controller: check failed: status 404, expected 200 or 204 (")
        .stdout_contains("failed     wrong-body @ controller: check failed: body does not contain `nope` (")
        .stdout_contains(
            "failed     system-roots @ controller: check failed: TLS certificate not accepted: unable to get local issuer certificate (",
        )
        .stdout_contains(
            "failed     self-signed @ controller: check failed: TLS certificate not accepted: self-signed certificate (",
        )
        .stdout_contains("failed     down @ controller: check failed: ")
        .stdout_contains("Connection refused")
        .stdout_contains("failed     secret @ controller: check failed: status 404, expected 200 (")
        .run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(secret), "{all}");
}

#[test]
fn a_rehearsal_shows_the_new_probes_without_touching_the_network() {
    Test::new()
        .runbook(
            "
            version: 1
            name: dry
            steps:
              - {id: t, check: {tls: {host: 192.0.2.1, port: 8443, server_name: portal.test}}}
              - {id: h, check: {http: {url: 'https://192.0.2.1/x', method: POST, status: [201, 202]}}}
            ",
        )
        .args(["run", "runbook.yaml", "--dry-run", "--state-dir", "state"])
        .stdout_contains("tls 192.0.2.1:8443 (portal.test)")
        .stdout_contains("http POST https://192.0.2.1/x")
        .run();
}

/// `via`: the same checks, the connection opened by a site host's sshd.
#[test]
fn http_and_tls_via_a_site_host_check_the_portal_as_the_site_sees_it() {
    let pki = Pki::new();
    let nginx = Nginx::start(&pki);
    let sshd = crate::sshd::Sshd::start(&["127.0.0.62"]);
    let (valid, selfsigned, down) = (nginx.port("valid"), nginx.port("self"), free_port());
    let runbook = format!(
        "
        version: 1
        name: via
        defaults: {{on_failure: continue}}
        steps:
          - {{id: get, check: {{http: {{url: 'https://{ADDR}:{valid}/health', body_contains: portal ok, ca_file: ca.pem, via: site-gw}}}}}}
          - {{id: post, check: {{http: {{url: 'https://{ADDR}:{valid}/submit', method: POST, status: 201, body_contains: created, ca_file: ca.pem, via: site-gw}}}}}}
          - {{id: missing, check: {{http: {{url: 'https://{ADDR}:{valid}/missing', ca_file: ca.pem, via: site-gw}}}}}}
          - {{id: self-signed, check: {{http: {{url: 'https://{ADDR}:{selfsigned}/health', ca_file: ca.pem, via: site-gw}}}}}}
          - {{id: down, check: {{http: {{url: 'https://{ADDR}:{down}/health', via: site-gw}}}}}}
          - {{id: cert, check: {{tls: {{host: {ADDR}, port: {valid}, server_name: portal.test, ca_file: ca.pem, min_days_valid: 7, via: site-gw}}}}}}
        "
    );
    let test = Test::new().runbook(&runbook).inventory(&format!(
        "version: 1\nhosts:\n  site-gw: {}\n",
        sshd.host("127.0.0.62", "")
    ));
    std::fs::copy(pki.path("ca.pem"), test.path().join("ca.pem")).unwrap();
    test.args([
        "run",
        "runbook.yaml",
        "-i",
        "inventory.yaml",
        "--state-dir",
        "state",
    ])
    .status(1)
    .stdout_contains("already-ok get")
    .stdout_contains("already-ok post")
    .stdout_contains("already-ok cert")
    .stdout_contains("failed     missing @ controller: check failed: status 404 (")
    .stdout_contains(
        "failed     self-signed @ controller: check failed: TLS certificate not accepted: self-signed certificate (",
    )
    .stdout_contains(&format!(
        "failed     down @ controller: check failed: connection to {ADDR}:{down} refused from `site-gw`"
    ))
    .run();
}
