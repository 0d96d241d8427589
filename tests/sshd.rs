//! A real OpenSSH server on loopback addresses, with throwaway host and
//! client keys, for the SSH transport tests. Missing sshd is a loud
//! failure: `scripts/test.sh` installs it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    addresses: Vec<String>,
    children: Vec<Child>,
}

/// sshd takes at most 16 `ListenAddress` lines, so more addresses need
/// more servers (same keys, same port).
const ADDRESSES_PER_SSHD: usize = 16;

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "runbook-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed: run scripts/test.sh");
    assert!(status.success());
}

/// A key of any type `ssh-keygen -t` knows (ecdsa, rsa, ...).
fn keygen_kind(path: &Path, kind: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "runbook-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed: run scripts/test.sh");
    assert!(status.success());
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Sshd {
    /// Listens on each of `addresses` (127.0.0.x) on one free port.
    pub fn start(addresses: &[&str]) -> Self {
        let mut sshd = Self::prepare(addresses);
        sshd.launch();
        sshd
    }

    /// Offers a host key of each of `kinds` (ssh-keygen types) besides the
    /// ed25519 one.
    pub fn start_with_host_keys(addresses: &[&str], kinds: &[&str]) -> Self {
        let mut sshd = Self::prepare(addresses);
        let mut config = std::fs::read_to_string(sshd.path("sshd_config")).unwrap();
        for kind in kinds {
            let key = sshd.path(&format!("host_key_{kind}"));
            keygen_kind(&key, kind);
            config.push_str(&format!("HostKey {}\n", key.display()));
        }
        std::fs::write(sshd.path("sshd_config"), config).unwrap();
        sshd.launch();
        sshd
    }

    /// Listens on each of `addresses`, however many: one sshd per 16, all
    /// on loopback addresses only and one port.
    pub fn start_many(addresses: &[String]) -> Self {
        let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
        Self::start(&addresses)
    }

    /// The public host key (`type base64`): `kind` as given to
    /// `start_with_host_keys`, or `None` for the ed25519 one.
    pub fn host_key(&self, kind: Option<&str>) -> String {
        let name = kind.map_or_else(
            || "host_key.pub".to_string(),
            |k| format!("host_key_{k}.pub"),
        );
        let text = std::fs::read_to_string(self.path(&name)).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Keys, config and known_hosts, without starting the server yet.
    pub fn prepare(addresses: &[&str]) -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: the SSH tests need openssh-server (scripts/test.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        keygen(&d.join("stranger_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let listen: String = addresses
            .iter()
            .map(|a| format!("ListenAddress {a}\n"))
            .collect();
        let config = format!(
            "Port {port}\n{listen}HostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\n\
             PidFile {0}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n\
             AllowTcpForwarding yes\nMaxStartups 200\nMaxSessions 200\nLogLevel VERBOSE\n\
             SetEnv SHLVL=1\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let known: String = addresses
            .iter()
            .map(|a| format!("[{a}]:{port} {} {}\n", key[0], key[1]))
            .collect();
        std::fs::write(d.join("known_hosts"), known).unwrap();
        Self {
            dir,
            port,
            addresses: addresses.iter().map(|a| (*a).to_string()).collect(),
            children: Vec::new(),
        }
    }

    /// Starts the server(s) and waits until every address answers.
    pub fn launch(&mut self) {
        let d = self.dir.path();
        let config = std::fs::read_to_string(d.join("sshd_config")).unwrap();
        let shared: String = config
            .lines()
            .filter(|l| !l.starts_with("ListenAddress ") && !l.starts_with("PidFile "))
            .map(|l| format!("{l}\n"))
            .collect();
        for (n, chunk) in self.addresses.chunks(ADDRESSES_PER_SSHD).enumerate() {
            let listen: String = chunk
                .iter()
                .map(|a| format!("ListenAddress {a}\n"))
                .collect();
            // The first server keeps the file names tests read (log, config).
            let (conf, log, pid) = if n == 0 {
                (
                    "sshd_config".to_string(),
                    "sshd.log".to_string(),
                    "sshd.pid".to_string(),
                )
            } else {
                (
                    format!("sshd_config.{n}"),
                    format!("sshd.{n}.log"),
                    format!("sshd.{n}.pid"),
                )
            };
            std::fs::write(
                d.join(&conf),
                format!("{listen}PidFile {}\n{shared}", d.join(&pid).display()),
            )
            .unwrap();
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-E"])
                .arg(d.join(&log))
                .arg("-f")
                .arg(d.join(&conf))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sshd");
            self.children.push(child);
        }
        let started = Instant::now();
        for addr in &self.addresses {
            while TcpStream::connect((addr.as_str(), self.port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "sshd did not listen on {addr}:{}",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// How many clients authenticated so far (one per SSH connection).
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.path("sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Accepted publickey"))
            .count()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An inventory host entry (flow mapping) for `address` on this server.
    pub fn host(&self, address: &str, extra: &str) -> String {
        format!(
            "{{address: {address}, port: {}, user: root, identity_file: {}, known_hosts: {}{extra}}}",
            self.port,
            self.path("client_key").display(),
            self.path("known_hosts").display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
