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

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The accounts `scripts/test.sh` creates: `rb-nopw` may sudo without a
/// password, `rb-pw` with [`RB_PW_PASSWORD`], which is also its login
/// password. Missing accounts are a loud failure.
pub const RB_PW_PASSWORD: &str = "rb-pw-Sudo-4711";

pub fn require_user(user: &str) {
    let known = Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        known && Path::new("/usr/bin/sudo").exists(),
        "the account `{user}` or sudo is missing: run scripts/test.sh, which creates the test accounts"
    );
}

/// A passphrase-protected ed25519 key pair at `path` (and `path.pub`).
pub fn keygen_with_passphrase(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "runbook-test",
            "-f",
        ])
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
        // sshd reads the keys as the user logging in, who may not be root
        // (the private keys stay 0600).
        chmod(d, 0o755);
        chmod(&d.join("authorized_keys"), 0o644);
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

    /// Stops the listening server(s): new connections are refused, while
    /// the sessions already open go on (each has its own process).
    pub fn stop_listening(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for addr in &self.addresses {
            assert!(
                TcpStream::connect((addr.as_str(), self.port)).is_err(),
                "sshd still listens on {addr}"
            );
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
        self.host_as(address, "root", extra)
    }

    /// The same, logging in as `user` (one of the accounts
    /// `scripts/test.sh` creates: see [`require_user`]).
    pub fn host_as(&self, address: &str, user: &str, extra: &str) -> String {
        format!(
            "{{address: {address}, port: {}, user: {user}, identity_file: {}, known_hosts: {}{extra}}}",
            self.port,
            self.path("client_key").display(),
            self.path("known_hosts").display()
        )
    }

    /// Sets an sshd_config keyword before `launch` (sshd takes the first
    /// occurrence of a keyword, so the line is replaced, not appended).
    pub fn set(&self, keyword: &str, value: &str) {
        let path = self.path("sshd_config");
        let config = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = config
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(keyword))
            .map(str::to_string)
            .collect();
        lines.insert(0, format!("{keyword} {value}"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    /// Lets the public key at `public` log in too.
    pub fn authorize(&self, public: &Path) {
        let key = std::fs::read_to_string(public).unwrap();
        let path = self.path("authorized_keys");
        let mut keys = std::fs::read_to_string(&path).unwrap();
        keys.push_str(&key);
        std::fs::write(&path, keys).unwrap();
    }

    /// Lines of the server's log that contain `text`.
    pub fn log_lines(&self, text: &str) -> Vec<String> {
        std::fs::read_to_string(self.path("sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(text))
            .map(str::to_string)
            .collect()
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
