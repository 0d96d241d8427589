//! The hospital lab (`scripts/hospital-lab.sh`, docs/lab.md): the hosts of
//! `inventory/simulated.yaml` at its addresses, each reached over SSH, real
//! Debian daemons for DNS, NTP, mail, SIP, the records database and the
//! portals (TLS from the lab CA). A power cut stops them all and the
//! hospital runbook brings them back over SSH. Needs root and the packages
//! `scripts/test.sh` installs; without them it fails loudly.

use std::io::Read as _;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{HospitalAddresses, Test, hospital_addresses, repo};

/// The hosts' addresses, inventory/simulated.yaml's.
const DNS: &str = "127.100.1.53";
const NTP: &str = "127.100.1.123";
const MAIL: &str = "127.100.4.25";
const PBX: &str = "127.100.4.50";
const DB_PRIMARY: &str = "127.102.0.11";
const DB_STANDBY: &str = "127.102.0.12";
/// A page of each portal (the simulation's), over https, and what it says;
/// 127.102.0.20 is the records address (`records_url`), pr-app-1's too.
const PORTALS: [(&str, &str); 9] = [
    (
        "https://127.102.0.20:8443/api/patients/TEST-0001",
        r#""name":"Test Patient""#,
    ),
    ("https://127.102.0.21:8443/health", r#""status":"UP""#),
    ("https://127.102.0.22:8443/health", r#""status":"UP""#),
    ("https://127.102.0.50:8443/health", r#""board":"live""#),
    (
        "https://127.102.0.60:8443/eprescribing/health",
        r#""national_gateway":"connected""#,
    ),
    (
        "https://127.102.0.70:8443/health",
        r#""analysers":"connected""#,
    ),
    ("https://127.102.0.80:8443/health", r#""status":"UP""#),
    ("https://127.103.0.10:8443/worklist/today", "published"),
    (
        "https://127.104.0.5:8443/status",
        r#""instruments":"connected""#,
    ),
];

/// The hospital's 10.A.B.C is 127.(100+A).B.C: A is 0 to 10.
fn hospital_address(address: &str) -> bool {
    let mut octets = address.split('.');
    octets.next() == Some("127")
        && octets
            .next()
            .and_then(|o| o.parse::<u8>().ok())
            .is_some_and(|o| (100..=110).contains(&o))
}

/// A lab taken `down` on drop, so that a failing test leaves nothing running.
struct Lab {
    _dir: tempfile::TempDir,
    state: PathBuf,
    // Dropped last: the addresses are free again once the lab is down.
    _addresses: HospitalAddresses,
}

fn script(action: &str, state: &Path) -> Output {
    Command::new(repo().join("scripts/hospital-lab.sh"))
        .arg(action)
        .arg("--state")
        .arg(state)
        .output()
        .expect("run scripts/hospital-lab.sh")
}

fn check(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

impl Lab {
    fn up() -> Self {
        // SAFETY: a plain getter.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the hospital lab binds ports 22, 25, 53, 123, 5060 and 5432: run the tests as root"
        );
        let addresses = hospital_addresses();
        let dir = tempfile::tempdir().unwrap();
        // The daemons run as their own users, who must reach the state dir.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let lab = Self {
            state: dir.path().join("lab"),
            _dir: dir,
            _addresses: addresses,
        };
        check(&script("up", &lab.state), "hospital-lab.sh up");
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = script("down", &self.state);
    }
}

fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} ({e}): run scripts/test.sh, which installs it"))
}

/// `dig +short`'s answer from the lab's DNS server (its errors dropped).
fn dig(args: &[&str]) -> String {
    let server = format!("@{DNS}");
    let mut all = vec!["+short", "+time=2", "+tries=1", server.as_str()];
    all.extend(args);
    let out = tool("dig", &all);
    // dig prints its errors (";; communications error ...") on stdout.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(";;"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A step's status in the run's summary (`    ok    records-db    1.5s`).
fn step_status<'a>(summary: &'a str, step: &str) -> Option<&'a str> {
    summary.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        let status = words.next()?;
        (words.next()? == step).then_some(status)
    })
}

fn psql(address: &str, sql: &str) -> String {
    let out = tool(
        "psql",
        &[
            "-h",
            address,
            "-U",
            "postgres",
            "-d",
            "patient_records",
            "-tAc",
            sql,
        ],
    );
    check(&out, &format!("psql on {address}"))
        .trim()
        .to_string()
}

fn smtp_banner() -> String {
    let mut stream = TcpStream::connect((MAIL, 25)).expect("exim on mail-1:25");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut banner = [0; 128];
    let n = stream.read(&mut banner).unwrap();
    String::from_utf8_lossy(&banner[..n]).to_string()
}

/// A real SIP OPTIONS over UDP; the answer.
fn sip_options() -> String {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-labtest\r\n\
         Max-Forwards: 70\r\nFrom: <sip:test@{local}>;tag=t\r\nTo: <sip:{PBX}>\r\n\
         Call-ID: labtest\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), (PBX, 5060)).unwrap();
    let mut answer = [0; 1500];
    let n = socket.recv(&mut answer).expect("kamailio answers OPTIONS");
    String::from_utf8_lossy(&answer[..n]).to_string()
}

/// `chronyd -Q`: one NTP exchange with the lab's server, the clock untouched.
fn ntp_answers() -> bool {
    tool(
        "chronyd",
        &[
            "-Q",
            "-t",
            "5",
            &format!("server {NTP} iburst maxsamples 1"),
        ],
    )
    .status
    .success()
}

/// The lab's TCP and UDP sockets, as `ss` lists them (SSH's included).
fn lab_listeners() -> Vec<String> {
    let out = tool("ss", &["-Hlntup"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(4)
                .and_then(|a| a.rsplit_once(':'))
                .is_some_and(|(address, _)| hospital_address(address))
        })
        .map(str::to_string)
        .collect()
}

/// Processes holding a lab socket, or naming or working in the state dir.
fn lab_processes(state: &Path) -> Vec<(u32, String)> {
    let state = state.to_string_lossy().to_string();
    let mut pids: Vec<u32> = lab_listeners()
        .iter()
        .flat_map(|l| l.split("pid=").skip(1).map(str::to_string))
        .filter_map(|p| p.split(',').next()?.parse().ok())
        .collect();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&state) || cwd.starts_with(&state) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .filter(|p| *p != std::process::id())
        .filter_map(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            Some((p, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

/// Exists and is not a zombie: a container's init may reap only now and then.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|s| !s.starts_with('Z'))
    })
}

/// `run` or `status` of the hospital runbook on the lab, which trusts the
/// lab CA as a controller trusts its internal PKI (OpenSSL's
/// `SSL_CERT_FILE`) unless `trust_lab_ca` is false; the exit code expected.
fn runbook(lab: &Lab, command: &str, trust_lab_ca: bool, status: i32) -> String {
    let args = [
        command,
        &repo()
            .join("runbooks/datacenter-power-loss.yaml")
            .to_string_lossy(),
        "-i",
        &lab.path("lab-inventory.yaml").to_string_lossy(),
        "--state-dir",
        "runs",
    ]
    .map(str::to_string);
    let mut test = Test::new().args(args).status(status);
    if trust_lab_ca {
        test = test.env("SSL_CERT_FILE", &lab.path("pki/ca.pem").to_string_lossy());
    }
    if command == "run" {
        test = test.args(["--yes"]);
    }
    String::from_utf8_lossy(&test.run().0.stdout).into_owned()
}

#[test]
fn the_hospital_runbook_restores_a_lab_of_real_services_over_ssh_after_a_power_cut() {
    let lab = Lab::up();

    // Up: the real daemons answer on their hosts' addresses.
    assert_eq!(dig(&["intranet.hospital.example"]), "127.102.0.20");
    assert!(ntp_answers(), "chronyd on ntp-1 does not answer NTP");
    assert_eq!(
        psql(DB_STANDBY, "select status from pg_stat_wal_receiver"),
        "streaming"
    );

    // The power cut: nothing of the lab listens but its SSH servers.
    check(&script("cut", &lab.state), "hospital-lab.sh cut");
    let left: Vec<String> = lab_listeners()
        .into_iter()
        .filter(|l| !l.contains(":22 "))
        .collect();
    assert!(
        left.is_empty(),
        "still listening after the cut:\n{}",
        left.join("\n")
    );

    // The runbook restores them over SSH, in its dependency order: DNS and
    // NTP too, which the first edition never restored.
    let summary = runbook(&lab, "run", true, 0);
    assert!(summary.contains("finished: succeeded"), "{summary}");
    for step in [
        "dc-dns",
        "ntp",
        "mail-relay",
        "telephony",
        "records-db",
        "records-db-replica",
        "records-app",
        "lab-results-portal",
        "emergency-department",
    ] {
        assert_eq!(
            step_status(&summary, step),
            Some("ok"),
            "step {step} did not restart its service:\n{summary}"
        );
    }
    // Checks only: the database's log shows its crash recovery (the cut
    // was immediate), the certificates are checked for real over TLS.
    for step in ["records-db-recovery", "portal-certificates", "site-records"] {
        assert_eq!(step_status(&summary, step), Some("already-ok"), "{summary}");
    }

    // Each service answers as its clients see it, from the real daemon.
    assert_eq!(dig(&["intranet.hospital.example"]), "127.102.0.20");
    assert!(
        dig(&["version.bind", "chaos", "txt"]).starts_with("\"dnsmasq-"),
        "not dnsmasq on {DNS}"
    );
    assert_eq!(
        dig(&["_ldap._tcp.hospital.example", "srv"])
            .lines()
            .filter(|l| l.ends_with(" 389 dc-1.hospital.example."))
            .count(),
        1
    );
    assert!(ntp_answers(), "chronyd on ntp-1 does not answer NTP");
    let banner = smtp_banner();
    assert!(
        banner.starts_with("220 mail-1.hospital.example ESMTP Exim"),
        "{banner}"
    );
    let sip = sip_options();
    assert!(
        sip.starts_with("SIP/2.0 200") && sip.contains("Server: kamailio"),
        "{sip}"
    );
    assert_eq!(
        psql(
            DB_PRIMARY,
            "select name from patient where id = 'TEST-0001'"
        ),
        "Test Patient"
    );
    assert_eq!(
        psql(DB_STANDBY, "select status from pg_stat_wal_receiver"),
        "streaming"
    );
    assert_eq!(
        psql(
            DB_STANDBY,
            "select name from patient where id = 'TEST-0001'"
        ),
        "Test Patient"
    );
    let ca = lab.path("pki/ca.pem");
    for (url, says) in PORTALS {
        let out = tool("curl", &["-fsSi", "--cacert", &ca.to_string_lossy(), url]);
        let page = check(&out, &format!("{url} with the lab CA"));
        assert!(
            page.contains("Server: nginx") && page.contains(says),
            "{url}:\n{page}"
        );
    }

    // `status` over the lab: every probe passes; without the lab CA the
    // portals' https and certificates are refused: TLS is checked for real.
    let board = runbook(&lab, "status", true, 0);
    assert!(board.contains(" up, 0 down, "), "{board}");
    let board = runbook(&lab, "status", false, 1);
    assert!(
        board.contains("DOWN     portal-certificates")
            && board.contains("chain not trusted by the system roots"),
        "{board}"
    );

    // Down: no process and no socket of the lab is left.
    let running = lab_processes(&lab.state);
    assert!(!running.is_empty(), "no lab process found while it is up");
    check(&script("down", &lab.state), "hospital-lab.sh down");
    let listeners = lab_listeners();
    assert!(
        listeners.is_empty(),
        "still listening after down:\n{}",
        listeners.join("\n")
    );
    let alive: Vec<String> = running
        .iter()
        .filter(|(pid, _)| alive(*pid))
        .map(|(pid, cmd)| format!("{pid} {cmd}"))
        .collect();
    assert!(
        alive.is_empty(),
        "still running after down:\n{}",
        alive.join("\n")
    );
    assert!(!lab.state.exists(), "down left {}", lab.state.display());
}
