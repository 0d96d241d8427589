//! Authentication against the real sshd: ssh-agent, an encrypted identity
//! file, password and keyboard-interactive, and a failure that lists what
//! was tried.

use std::process::{Child, Command, Stdio};

use crate::harness::{RUN, Test};
use crate::sshd::{RB_PW_PASSWORD, Sshd, keygen_with_passphrase, require_user};

const RUNBOOK: &str =
    "version: 1\nname: login\nsteps:\n  - {id: s, targets: [a], check: {command: 'true'}}\n";

/// Inventory host `a` on this server without any credential; `extra` adds
/// them.
fn host(sshd: &Sshd, user: &str, extra: &str) -> String {
    format!(
        "version: 1\nhosts:\n  a: {{address: 127.0.0.2, port: {}, user: {user}, known_hosts: {}{extra}}}\n",
        sshd.port,
        sshd.path("known_hosts").display()
    )
}

/// A real `ssh-agent` on a socket of its own, killed when dropped.
struct Agent {
    child: Child,
    socket: String,
}

impl Agent {
    fn start(dir: &std::path::Path) -> Self {
        let socket = dir.join("agent.sock").display().to_string();
        let child = Command::new("ssh-agent")
            .args(["-D", "-a", &socket])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) must be installed: run scripts/test.sh");
        crate::harness::wait_for(std::path::Path::new(&socket));
        Self { child, socket }
    }

    fn add(&self, key: &std::path::Path) {
        let status = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ssh-add failed");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_ssh_agent_logs_in_when_no_identity_file_is_given() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let agent = Agent::start(sshd.dir.path());
    agent.add(&sshd.path("client_key"));
    Test::new()
        .inventory(&host(&sshd, "root", ""))
        .runbook(RUNBOOK)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    assert_eq!(sshd.log_lines("Accepted publickey for root").len(), 1);
}

#[test]
fn an_encrypted_identity_file_is_opened_with_its_passphrase() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let key = sshd.path("locked_key");
    keygen_with_passphrase(&key, "open sesame 42");
    sshd.authorize(&sshd.path("locked_key.pub"));
    let inventory = host(
        &sshd,
        "root",
        &format!(
            ", identity_file: {}, passphrase: '{{{{ secret.KEY_PASS }}}}'",
            key.display()
        ),
    );
    Test::new()
        .inventory(&inventory)
        .runbook(RUNBOOK)
        .env("RUNBOOK_SECRET_KEY_PASS", "open sesame 42")
        .env("SSH_AUTH_SOCK", "")
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    Test::new()
        .inventory(&inventory)
        .runbook(RUNBOOK)
        .env("RUNBOOK_SECRET_KEY_PASS", "wrong")
        .env("SSH_AUTH_SOCK", "")
        .args(RUN)
        .status(1)
        .stdout_contains(&format!(
            "authentication failed for `root@a`: tried key {} (",
            key.display()
        ))
        .run();
}

#[test]
fn a_password_logs_in_by_password_authentication() {
    require_user("rb-pw");
    let sshd = Sshd::prepare(&["127.0.0.2"]);
    sshd.set("PasswordAuthentication", "yes");
    let mut sshd = sshd;
    sshd.launch();
    Test::new()
        .inventory(&host(&sshd, "rb-pw", ", password: '{{ secret.LOGIN }}'"))
        .runbook(RUNBOOK)
        .env("RUNBOOK_SECRET_LOGIN", RB_PW_PASSWORD)
        .env("SSH_AUTH_SOCK", "")
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    assert_eq!(sshd.log_lines("Accepted password for rb-pw").len(), 1);
}

#[test]
fn a_password_answers_keyboard_interactive_prompts() {
    require_user("rb-pw");
    let sshd = Sshd::prepare(&["127.0.0.2"]);
    sshd.set("UsePAM", "yes");
    sshd.set("KbdInteractiveAuthentication", "yes");
    let mut sshd = sshd;
    sshd.launch();
    Test::new()
        .inventory(&host(&sshd, "rb-pw", ", password: '{{ secret.LOGIN }}'"))
        .runbook(RUNBOOK)
        .env("RUNBOOK_SECRET_LOGIN", RB_PW_PASSWORD)
        .env("SSH_AUTH_SOCK", "")
        .args(RUN)
        .stdout_contains("already-ok s")
        .run();
    assert_eq!(
        sshd.log_lines("Accepted keyboard-interactive/pam for rb-pw")
            .len(),
        1
    );
}

#[test]
fn a_refused_login_names_the_host_the_user_and_every_method_tried() {
    require_user("rb-pw");
    let sshd = Sshd::prepare(&["127.0.0.2"]);
    sshd.set("PasswordAuthentication", "yes");
    let mut sshd = sshd;
    sshd.launch();
    let agent = Agent::start(sshd.dir.path());
    agent.add(&sshd.path("stranger_key"));
    let stranger = sshd.path("stranger_key");
    Test::new()
        .inventory(&host(
            &sshd,
            "rb-pw",
            &format!(
                ", identity_file: {}, password: '{{{{ secret.LOGIN }}}}'",
                stranger.display()
            ),
        ))
        .runbook(RUNBOOK)
        .env("RUNBOOK_SECRET_LOGIN", "not-the-password")
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(RUN)
        .status(1)
        .stdout_contains(&format!(
            "authentication failed for `rb-pw@a`: tried ssh-agent (Username/PublicKey combination invalid); key {} (Username/PublicKey combination invalid); password (Authentication failed (username/password)); keyboard-interactive (the server does not offer it)",
            stranger.display()
        ))
        .run();
}
