//! Hostile and unlucky inputs: alias bombs, special files, names that are
//! paths or terminal escapes, NUL bytes, documents near the size limits.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Test};

/// Address space allowed to the binary: pre-fix, the alias bombs below
/// took it to all memory (OOM-killed at 24 GB).
const MEMORY_LIMIT: u64 = 256 * 1024 * 1024;

/// Runs the binary with at most [`MEMORY_LIMIT`] of address space and 60 s
/// of CPU, killing it after 120 s: a hang guard, not a timing assertion.
pub fn run_bounded(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = |bytes| libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit(MEMORY_LIMIT)) != 0
                || libc::setrlimit(libc::RLIMIT_CPU, &limit(60)) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("`runbook {}` hung", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Nine levels of ten aliases each: 10^9 nodes once expanded.
fn bomb(indent: &str) -> String {
    let mut out = format!("{indent}l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        out.push_str(&format!("{indent}l{i}: &l{i} [{refs}]\n"));
    }
    out
}

#[test]
fn alias_bombs_are_refused_with_a_located_error_in_bounded_memory() {
    let b = bomb("  ");
    let deep = bomb("      ");
    let t = Test::new()
        .file(
            "unknown-key.yaml",
            &format!("version: 1\nname: x\nsteps: [{{id: a, run: 'true'}}]\nbomb:\n{b}"),
        )
        .file(
            "vars.yaml",
            &format!("version: 1\nname: x\nvars:\n{b}steps: [{{id: a, run: 'true'}}]\n"),
        )
        .file(
            "inventory.yaml",
            &format!("version: 1\nhosts:\n  a: {{}}\nbomb:\n{b}"),
        )
        .file(
            "inventory-vars.yaml",
            &format!("version: 1\nhosts:\n  a:\n    vars:\n{deep}"),
        );
    std::fs::write(
        t.path().join("ok.yaml"),
        "version: 1\nname: ok\nsteps: [{id: a, run: 'true'}]\n",
    )
    .unwrap();
    let runs: [(&[&str], &str); 8] = [
        (&["validate", "unknown-key.yaml"], "unknown-key.yaml:4:1"),
        (&["plan", "unknown-key.yaml"], "unknown-key.yaml:4:1"),
        (&["validate", "vars.yaml"], "vars.yaml:"),
        (&["plan", "vars.yaml"], "vars.yaml:"),
        (&["validate", "inventory.yaml"], "inventory.yaml:4:1"),
        (
            &["plan", "ok.yaml", "-i", "inventory.yaml"],
            "inventory.yaml:4:1",
        ),
        (&["validate", "inventory-vars.yaml"], "inventory-vars.yaml:"),
        (
            &["plan", "ok.yaml", "-i", "inventory-vars.yaml"],
            "inventory-vars.yaml:",
        ),
    ];
    for (args, located) in runs {
        let output = run_bounded(t.path(), args, &[]);
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {:?}\n{stdout}\n{stderr}",
            output.status
        );
        assert!(stderr.contains(located), "{args:?}:\n{stderr}");
    }
    let (_, stderr) = text(&run_bounded(t.path(), &["validate", "vars.yaml"], &[]));
    assert!(
        stderr.contains("aliases expand too far") && stderr.contains("refusing to read it"),
        "{stderr}"
    );
}

#[test]
fn special_files_are_refused_without_reading_or_echoing_them() {
    let t = Test::new().file(
        "runbooks/ok.yaml",
        "version: 1\nname: ok\nsteps: [{id: a, run: 'true'}]\n",
    );
    let dir = t.path().join("runbooks");
    std::os::unix::fs::symlink("/proc/self/environ", dir.join("environ.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.yaml")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("loop")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo.yaml").to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::write(dir.join("nul.yaml"), b"version: 1\nname: a\0b\n").unwrap();
    let canary = "canary-7f3a9c-environment-value";
    let output = run_bounded(
        t.path(),
        &["validate", "runbooks"],
        &[("RUNBOOK_CANARY", canary)],
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains(canary) && !stdout.contains(canary),
        "{stderr}"
    );
    for expected in [
        "runbooks/environ.yaml:1:1",
        "runbooks/zero.yaml:1:1",
        "runbooks/fifo.yaml:1:1",
        "error: the file holds a NUL byte, so it is not a text file\n  --> runbooks/nul.yaml:2:8",
    ] {
        assert!(stderr.contains(expected), "no `{expected}` in:\n{stderr}");
    }
    assert!(
        stdout.contains("invalid: 5 files checked, 4 errors"),
        "the folder link back up is not followed: {stdout}"
    );
    for args in [
        ["validate", "/dev/zero"],
        ["validate", "runbooks/fifo.yaml"],
    ] {
        let output = run_bounded(t.path(), &args, &[]);
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
    let output = run_bounded(
        t.path(),
        &[
            "run",
            "runbooks/ok.yaml",
            "--secrets",
            "/dev/zero",
            "--state-dir",
            "s",
        ],
        &[],
    );
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("cannot read the secrets file /dev/zero"),
        "{stderr}"
    );
}

#[test]
fn an_error_shows_at_most_an_excerpt_of_its_line() {
    let long = format!("version: 1\nname: x\nsteps: [{}]]]\n", "a".repeat(100_000));
    let (output, _) = Test::new()
        .file("long.yaml", &long)
        .args(["validate", "long.yaml"])
        .status(2)
        .stderr_contains("long.yaml:3:")
        .run();
    assert!(output.stderr.len() < 2_000, "{}", output.stderr.len());
}

#[test]
fn host_and_group_names_that_are_paths_or_escapes_are_refused_at_their_key() {
    let (output, _) = Test::new()
        .file(
            "inventory.yaml",
            "
            version: 1
            defaults: {transport: local}
            hosts:
              \"../../escaped\": {}
              \"red\\e[31mhost\": {}
              \"two\\nlines\": {}
              web-1.example.com: {}
              10.0.0.1: {}
              \"2001:db8::1\": {}
              DB_primary: {}
            groups:
              \"a b\": {hosts: [DB_primary]}
              ok: {hosts: [web-1.example.com]}
            ",
        )
        .runbook(
            "
            version: 1
            name: paths
            defaults: {timeout: 10s}
            steps:
              - {id: a, targets: [ok], check: {command: 'false'}, run: 'echo out'}
            ",
        )
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--state-dir", "state/deep"])
        .status(2)
        .stderr_contains("error: invalid host name `../../escaped`: use letters, digits, `.`, `-`, `_` and `:` (a short name, a domain name or an IP address), not starting with `-` or `.`\n  --> inventory.yaml:4:3")
        .stderr_contains("error: invalid host name `red\\u{1b}[31mhost`")
        .stderr_contains("  --> inventory.yaml:5:3")
        .stderr_contains("error: invalid host name `two\\nlines`")
        .stderr_contains("  --> inventory.yaml:6:3")
        .stderr_contains("error: invalid group name `a b`")
        .stderr_contains("  --> inventory.yaml:12:3")
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('\x1b'), "an escape reached the terminal");
    assert_eq!(stderr.matches("error: invalid").count(), 4, "{stderr}");
    // What real inventories use is accepted.
    Test::new()
        .file(
            "inventory.yaml",
            "
            version: 1
            hosts:
              web-1.example.com: {}
              10.0.0.1: {}
              \"2001:db8::1\": {}
              DB_primary: {}
            groups:
              dc_paris-2: {hosts: [DB_primary, 10.0.0.1]}
            ",
        )
        .args(["validate", "inventory.yaml"])
        .stdout("valid: 1 file checked, 0 errors, 0 warnings\n")
        .run();
}

/// An address reaches a resolver (a jump host's may stop reading at a
/// space), the terminal and, with `accept-new`, `known_hosts`, where a
/// newline or a comma would write a line trusting a key for other hosts.
#[test]
fn an_address_with_whitespace_a_comma_or_a_leading_dash_is_refused_at_its_key() {
    let (output, _) = Test::new()
        .file(
            "inventory.yaml",
            "
            version: 1
            defaults: {address: \"x y\"}
            hosts:
              a: {address: \"10.0.0.1\\n* ssh-ed25519 AAAA\"}
              b: {address: \"10.0.0.2,*\"}
              c: {address: \"-oProxyCommand=x\"}
              d: {address: \"red\\e[31m\"}
              e: {address: \"fe80::1%eth0\"}
              f: {address: web-1.example.com}
              g: {address: 10.0.0.3}
            ",
        )
        .args(["validate", "inventory.yaml"])
        .status(2)
        .stderr_contains("error: invalid address `x y`: use a domain name or an IP address (letters, digits, `.`, `-`, `_`, `:` and `%`), not starting with `-`\n  --> inventory.yaml:2:12")
        .stderr_contains("error: invalid address `10.0.0.1\\n* ssh-ed25519 AAAA`")
        .stderr_contains("  --> inventory.yaml:4:7")
        .stderr_contains("error: invalid address `10.0.0.2,*`")
        .stderr_contains("error: invalid address `-oProxyCommand=x`")
        .stderr_contains("error: invalid address `red\\u{1b}[31m`")
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('\x1b'), "an escape reached the terminal");
    assert_eq!(stderr.matches("error: invalid").count(), 5, "{stderr}");
}

#[test]
fn a_nul_in_a_rendered_value_fails_the_host_instead_of_running_a_cut_command() {
    let (output, t) = Test::new()
        .runbook(
            "
            version: 1
            name: nul
            defaults: {timeout: 10s}
            steps:
              - {id: a, check: {command: 'false'}, run: 'touch ran-{{ secret.X }}'}
            ",
        )
        .file("secrets.yaml", "X: \"a\\0b\"\n")
        .args([
            "run",
            "runbook.yaml",
            "--secrets",
            "secrets.yaml",
            "--state-dir",
            "state",
        ])
        .status(1)
        .run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("NUL byte"), "{all}");
    assert!(
        std::fs::read_dir(t.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("ran")),
        "the command ran"
    );
}

/// A plain generated runbook of `steps` steps, about 17 YAML nodes each.
fn plain_runbook(steps: usize) -> String {
    let mut text = String::from("version: 1\nname: big\ndefaults: {timeout: 1m}\nsteps:\n");
    for i in 0..steps {
        let dep = if i == 0 {
            String::new()
        } else {
            format!("    depends_on: [s{}]\n", i - 1)
        };
        text.push_str(&format!(
            "  - id: s{i}\n{dep}    run: systemctl restart svc{i}\n    check: {{command: 'systemctl is-active svc{i}'}}\n    tags: [restart, svc]\n"
        ));
    }
    text
}

#[test]
fn twenty_thousand_plain_steps_validate_and_the_node_limit_says_how_to_raise_it() {
    let t = Test::new().file("big.yaml", &plain_runbook(20_000));
    let output = run_bounded(t.path(), &["validate", "big.yaml"], &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let output = run_bounded(
        t.path(),
        &["validate", "big.yaml"],
        &[("RUNBOOK_MAX_YAML_NODES", "1000")],
    );
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: the document has more than 1000 YAML nodes (values, lists and mappings), the limit for one file; split it, or raise the limit with the environment variable RUNBOOK_MAX_YAML_NODES; refusing to read it\n  --> big.yaml:"
        ),
        "{stderr}"
    );
}
