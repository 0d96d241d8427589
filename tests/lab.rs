//! The hospital lab (`scripts/hospital-lab.sh`, docs/lab.md): real Debian
//! daemons on 127.42.x.y, each lab host reached over SSH. A power cut stops
//! them all and the hospital runbook brings them back over SSH. Needs root
//! and the packages `scripts/test.sh` installs; without them it fails loudly.

use std::io::Read as _;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{Test, repo};

/// The lab's addresses (the table at the top of the script).
const LAB_NET: &str = "127.42.";
const DNS: &str = "127.42.1.53";
const NTP: &str = "127.42.1.123";
const MAIL: &str = "127.42.3.25";
const PBX: &str = "127.42.3.50";
const DB_PRIMARY: &str = "127.42.4.11";
const DB_STANDBY: &str = "127.42.4.12";
const PORTALS: [&str; 4] = ["127.42.4.21", "127.42.4.22", "127.42.4.31", "127.42.4.41"];

/// A lab taken `down` on drop, so that a failing test leaves nothing running.
struct Lab {
    _dir: tempfile::TempDir,
    state: PathBuf,
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
            "the hospital lab binds ports 22, 25, 53, 123, 443, 5060 and 5432: run the tests as root"
        );
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

fn dns_answer(name: &str) -> String {
    let out = tool(
        "dig",
        &["+short", "+time=2", "+tries=1", &format!("@{DNS}"), name],
    );
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

/// A real SIP OPTIONS over UDP; the status line of the answer.
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
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
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
                .is_some_and(|a| a.starts_with(LAB_NET))
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

fn runbook(lab: &Lab, command: &str) -> (Output, Test) {
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
    let test = Test::new().args(args);
    if command == "run" {
        test.args(["--yes"]).run()
    } else {
        test.run()
    }
}

#[test]
fn the_hospital_runbook_restores_a_lab_of_real_services_over_ssh_after_a_power_cut() {
    let lab = Lab::up();

    // Up: the real daemons answer on their hosts' addresses.
    assert_eq!(dns_answer("intranet.hospital.example"), "127.42.4.21");
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

    // The runbook restores them over SSH, in its dependency order.
    let (output, _run) = runbook(&lab, "run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for step in [
        "mail-relay",
        "telephony",
        "records-db",
        "records-db-replica",
        "records-app",
    ] {
        assert_eq!(
            step_status(&stdout, step),
            Some("ok"),
            "step {step} did not restart its service:\n{stdout}"
        );
    }

    // Each service answers as its clients see it.
    assert!(
        smtp_banner().starts_with("220 mail-1.lab.hospital.example"),
        "{}",
        smtp_banner()
    );
    assert!(
        sip_options().starts_with("SIP/2.0 200"),
        "{}",
        sip_options()
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
    for portal in PORTALS {
        let out = tool(
            "curl",
            &[
                "-fsS",
                "--cacert",
                &ca.to_string_lossy(),
                &format!("https://{portal}/health"),
            ],
        );
        assert!(
            check(&out, &format!("https://{portal}/health with the lab CA")).contains("\"up\""),
            "{portal}"
        );
    }
    // Not restored by the current runbook, and said so here so that the
    // second edition flips these: its dc-dns check, `dig +short @127.0.0.1
    // NAME | grep -q .`, passes with the server down (dig prints its
    // ";; communications error" on stdout), so the step never restarts
    // DNS; and it has no NTP step.
    assert_eq!(
        dns_answer("intranet.hospital.example"),
        "",
        "DNS answers after the run: the runbook now restores it, assert that instead"
    );
    assert_eq!(
        step_status(&stdout, "dc-dns"),
        Some("already-ok"),
        "{stdout}"
    );
    assert!(
        !ntp_answers(),
        "NTP answers after the run: assert it is restored"
    );

    // `status` over the lab: every probe passes.
    runbook(&lab, "status");

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
