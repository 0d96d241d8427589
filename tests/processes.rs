//! What a command leaves on its hosts: its command line, its background
//! children, its output's size, and what `resume` finds still running after
//! the controller was killed. Local and over the real sshd.

use std::path::Path;
use std::process::{Child, Stdio};

use crate::harness::{
    RUN, Test, assert_no_process, interrupt_until_it_stops, read, run_dir, wait_for,
};
use crate::sshd::Sshd;

/// The pids of processes whose command line contains `marker`.
fn pids_of(marker: &str) -> Vec<i32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Ends the processes this test left behind on purpose, by their ids.
fn kill_pids(pids: &[i32]) {
    for pid in pids {
        // SAFETY: signalling processes this test started.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
}

/// Every process's command line, as `ps` shows it to any user.
pub fn all_command_lines() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
            all.push_str(&String::from_utf8_lossy(&bytes).replace('\0', " "));
            all.push('\n');
        }
    }
    all
}

fn spawn_run(t: &Test) -> Child {
    t.command()
        .args(RUN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_secret_in_a_command_is_in_no_command_line_locally_or_on_the_remote_host() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let secret = format!("argv-s3cret-{}", std::process::id());
    let release = sshd.path("release");
    let t = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n  me: {{transport: local}}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: argv
            steps:
              - id: s
                targets: [a, me]
                timeout: 30s
                run: 'echo {{{{ secret.TOKEN }}}} > /dev/null; touch {dir}/started.{{{{ host.name }}}}; while [ ! -e {release} ]; do sleep 0.05; done'
            ",
            dir = sshd.dir.path().display(),
            release = release.display()
        ))
        .env("RUNBOOK_SECRET_TOKEN", &secret);
    let child = spawn_run(&t);
    wait_for(&sshd.path("started.a"));
    wait_for(&sshd.path("started.me"));
    // The sshd runs on this machine: /proc holds both sides' processes.
    let lines = all_command_lines();
    std::fs::write(&release, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let leaked: Vec<&str> = lines.lines().filter(|l| l.contains(&secret)).collect();
    assert!(
        leaked.is_empty(),
        "the secret is in a command line: {leaked:?}"
    );
}

#[test]
fn a_remote_command_ends_when_it_exits_even_if_a_background_child_holds_its_output() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let marker = format!("sleep 2{}.25", std::process::id() % 1000);
    let (_, t) = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: background
            steps:
              - id: s
                targets: [a]
                timeout: 1s
                run: '({marker}; echo late) & echo started; echo to-stderr >&2'
            "
        ))
        .args(RUN)
        .stdout_contains("ok         s")
        .run();
    let left = pids_of(&marker);
    kill_pids(&left);
    assert!(
        !left.is_empty(),
        "the background child is left running, as documented"
    );
    let run = run_dir(&t);
    assert!(read(&run.join("logs/s/a.stdout")).contains("started\n"));
    let stderr = read(&run.join("logs/s/a.stderr"));
    assert!(stderr.contains("to-stderr\n"), "{stderr}");
    assert!(!stderr.contains("runbook-"), "a marker leaked: {stderr}");
}

#[test]
fn a_double_ctrl_c_kills_remote_commands_even_when_the_login_shell_prints_first() {
    let mut sshd = Sshd::prepare(&["127.0.0.2"]);
    let wrapper = sshd.path("login.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\necho 'Could not chdir to home directory /nonexistent: No such file or directory' >&2\nexec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = sshd.path("sshd_config");
    let mut text = read(&config);
    text.push_str(&format!("ForceCommand {}\n", wrapper.display()));
    std::fs::write(&config, text).unwrap();
    sshd.launch();
    let marker = format!("sleep 8{}.5", std::process::id() % 1000);
    let started = sshd.path("started");
    let t = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&format!(
            "
            version: 1
            name: banner
            steps:
              - {{id: first, targets: [a], timeout: 30s, run: 'echo hi >&2'}}
              - {{id: s, depends_on: [first], targets: [a], timeout: 60s, run: 'touch {}; {marker} & {marker}; wait'}}
            ",
            started.display()
        ));
    let mut child = spawn_run(&t);
    wait_for(&started);
    interrupt_until_it_stops(&mut child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_no_process(&marker, "remote processes survived a double Ctrl-C");
    let stderr = read(&run_dir(&t).join("logs/first/a.stderr"));
    assert!(stderr.contains("Could not chdir"), "{stderr}");
    assert!(stderr.contains("hi\n"), "{stderr}");
    assert!(!stderr.contains("runbook-"), "a marker leaked: {stderr}");
}

/// Runs the runbook until its step has started, kills the controller with
/// SIGKILL, and returns `resume`'s output; the step's command still runs.
fn kill_9_then_resume(t: &Test, started: &Path) -> std::process::Output {
    let mut child = spawn_run(t);
    wait_for(started);
    // The command may start before its `host-started` is journaled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !journals(t).contains("\"host-started\"") {
        assert!(
            std::time::Instant::now() < deadline,
            "host-started never journaled"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    let _ = child.wait();
    t.command()
        .args(["resume", "--state-dir", "state"])
        .output()
        .unwrap()
}

/// Every journal under the state dir, staged or published.
fn journals(t: &Test) -> String {
    std::fs::read_dir(t.path().join("state/runs"))
        .map(|dirs| {
            dirs.flatten()
                .map(|d| read(&d.path().join("journal.jsonl")))
                .collect()
        })
        .unwrap_or_default()
}

/// The process groups `resume` named, after "process group ".
fn named_groups(stderr: &str) -> Vec<i32> {
    stderr
        .split("process group ")
        .skip(1)
        .filter_map(|rest| rest.split(" (").next())
        .flat_map(|list| list.split(", ").filter_map(|g| g.parse().ok()))
        .collect()
}

fn assert_resume_refuses_then_works(t: &Test, started: &Path, count: &Path, host: &str) {
    let refused = kill_9_then_resume(t, started);
    let stderr = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("step `s` on `{host}`: process group ")),
        "{stderr}"
    );
    assert!(stderr.contains("then run `runbook resume "), "{stderr}");
    assert_eq!(read(count).lines().count(), 1, "no second copy started");
    let groups = named_groups(&stderr);
    assert!(!groups.is_empty(), "{stderr}");
    for g in groups {
        // SAFETY: the process group of the command this test's run started.
        unsafe {
            libc::kill(-g, libc::SIGKILL);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let resumed = t
        .command()
        .args(["resume", "--state-dir", "state"])
        .output()
        .unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        read(count).lines().count(),
        2,
        "run again once the first copy ended"
    );
}

fn long_step(dir: &Path, targets: &str) -> String {
    format!(
        "
        version: 1
        name: k9
        steps:
          - id: s
            targets: [{targets}]
            timeout: 60s
            run: 'echo x >> {dir}/count; if [ ! -e {dir}/started ]; then touch {dir}/started; sleep 45; fi'
        ",
        dir = dir.display()
    )
}

#[test]
fn resume_after_kill_9_refuses_while_the_local_command_still_runs() {
    let work = tempfile::tempdir().unwrap();
    let t = Test::new()
        .inventory("version: 1\nhosts:\n  me: {transport: local}\n")
        .runbook(&long_step(work.path(), "me"));
    assert_resume_refuses_then_works(
        &t,
        &work.path().join("started"),
        &work.path().join("count"),
        "me",
    );
}

#[test]
fn resume_after_kill_9_refuses_while_the_remote_command_still_runs() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let t = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  a: {}\n",
            sshd.host("127.0.0.2", "")
        ))
        .runbook(&long_step(sshd.dir.path(), "a"));
    assert_resume_refuses_then_works(&t, &sshd.path("started"), &sshd.path("count"), "a");
}

#[test]
fn output_over_the_cap_keeps_its_end_and_is_marked_truncated() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: big
            steps:
              - {id: s, timeout: 60s, run: 'head -c 9437184 /dev/zero | tr \"\\0\" x; echo; echo THE-END; echo failing >&2; exit 1'}
            ",
        )
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .status(1)
        .run();
    let log = read(&run_dir(&t).join("logs/s/controller.stdout"));
    assert!(
        log.contains("[truncated: the first 1048585 bytes of stdout were dropped"),
        "{}",
        &log[..log.len().min(300)]
    );
    assert!(
        log.ends_with("x\nTHE-END\n"),
        "the end of the stream is kept"
    );
}
