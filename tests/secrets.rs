//! Values that must stay inert in commands, and secrets that must stay
//! hidden wherever text leaves the process.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;

use crate::harness::{BIN, Test};
use crate::run::all_files_text;
use crate::sshd::Sshd;

/// Values for two hosts: one that would run `touch PWNED` wherever it is
/// not quoted, and one with every shell trick at once (both quotes, a `;`,
/// a comment, a newline), each touching `PWNED`.
const HOSTILE: [&str; 2] = [
    "$(touch PWNED)`touch PWNED`",
    "a'b\"c $(touch PWNED) `touch PWNED` ; touch PWNED #\ntouch PWNED",
];

/// The `error:` and `-->` lines of a validation, in order.
fn errors(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("  --> ") || l.contains("= hint"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_value_inside_quotes_a_heredoc_or_a_comment_is_refused_where_it_is() {
    let (output, _) = Test::new()
        .runbook(
            r#"
            version: 1
            name: quoting
            vars: {q: x}
            defaults: {timeout: 10s}
            steps:
              - id: dq
                run: echo "x {{ vars.q }}"
                check: {command: "echo '{{ vars.q }}'"}
              - id: block
                check: {command: 'false'}
                run: |
                  echo ok {{ vars.q }} "$(cat {{ vars.q }})" # {{ vars.q }}
                  cat <<EOF
                  {{ vars.q }}
                  EOF
                  echo `ls {{ vars.q }}` \{{ vars.q }} ${{ vars.q }}
                  echo "{% if vars.q %}{% endif %}" {{ vars.q | raw | trim }}
              - {id: flow, check: {command: 'echo {{ vars.q }}'}, run: 'echo "{{ vars.q }}"'}
            "#,
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 11 errors, 0 warnings")
        .run();
    let hint = "  = hint: remove the quotes: the value is quoted for you";
    let inside = |what: &str| {
        format!("error: `{{{{ vars.q }}}}` is inside {what}, where its shell quoting does not hold")
    };
    let block = |tag: &str| {
        format!(
            "error: `{tag}` is inside double quotes, so where the values after it land depends on the branch taken"
        )
    };
    let block_hint =
        "  = hint: close quotes, comments and heredocs before a `{% %}` and open them after it";
    assert_eq!(
        errors(&output.stderr),
        [
            inside("double quotes"),
            "  --> runbook.yaml:7:18".into(),
            hint.into(),
            inside("single quotes"),
            "  --> runbook.yaml:8:29".into(),
            hint.into(),
            inside("a comment"),
            "  --> runbook.yaml:12:52".into(),
            "  = hint: move it out of the comment".into(),
            inside("a heredoc"),
            "  --> runbook.yaml:14:7".into(),
            "  = hint: write the value with `printf '%s\\n' {{ … }}` rather than inside a heredoc"
                .into(),
            inside("backticks"),
            "  --> runbook.yaml:16:16".into(),
            "  = hint: write `$( … )` instead of backticks: the value is quoted for you".into(),
            inside("an escape: right after `\\`"),
            "  --> runbook.yaml:16:31".into(),
            "  = hint: remove the character before it".into(),
            inside("an expansion: right after `$`"),
            "  --> runbook.yaml:16:45".into(),
            "  = hint: remove the character before it".into(),
            block("{% if vars.q %}"),
            "  --> runbook.yaml:17:13".into(),
            block_hint.into(),
            block("{% endif %}"),
            "  --> runbook.yaml:17:28".into(),
            block_hint.into(),
            "error: `raw` in `{{ vars.q | raw | trim }}` is not the last filter of a `{{ }}`"
                .into(),
            "  --> runbook.yaml:17:41".into(),
            "  = hint: write it last: `{{ host.vars.x | raw }}` (the value is then shell code)"
                .into(),
            inside("double quotes"),
            "  --> runbook.yaml:18:67".into(),
            hint.into(),
        ]
    );
}

/// bash (the `sh` of Red Hat hosts) evaluates `$[ ]`, `(( ))` and the
/// subscripts and offsets of `${ }` as arithmetic, running any `$( )` in a
/// value's text, and ends `$'…'` at a quote dash does not: each was a
/// plain word to validation, and ran `touch PWNED` with `sh` being bash.
#[test]
fn bash_arithmetic_and_ambiguous_quotes_are_refused_before_a_value() {
    let (output, _) = Test::new()
        .runbook(
            r#"
            version: 1
            name: bash
            vars: {q: x}
            defaults: {timeout: 10s}
            steps:
              - id: a
                check: {command: 'false'}
                run: |
                  echo $[ 1 + {{ vars.q }} ]
                  (( x = {{ vars.q }} ))
                  for (( i = {{ vars.q }}; i < 1; i++ )); do :; done
                  echo ${a[{{ vars.q }}]} ${y:{{ vars.q }}}
                  echo $'a\' {{ vars.q }} '
                  echo "$(case a in a) echo " {{ vars.q }} " ;; esac)"
              - id: quoted-parens
                check: {command: 'false'}
                run: echo $(( ")) {{ vars.q }} " ))
              - id: fine
                check: {command: 'false'}
                run: echo ${x:-'}'} $'a\\' {{ vars.q }} $((1)) ${x:-a} "$(echo cases)" {{ vars.q }}
            "#,
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 8 errors, 0 warnings")
        .run();
    let inside = |what: &str, at: &str| {
        [
            format!(
                "error: `{{{{ vars.q }}}}` is inside {what}, where its shell quoting does not hold"
            ),
            format!("  --> runbook.yaml:{at}"),
        ]
    };
    let found: Vec<String> = errors(&output.stderr)
        .into_iter()
        .filter(|l| !l.contains("= hint"))
        .collect();
    let arithmetic = "an arithmetic expansion `$(( ))`";
    let expected: Vec<String> = [
        inside(arithmetic, "9:19"),
        inside(arithmetic, "10:14"),
        inside(arithmetic, "11:18"),
        inside("a parameter expansion `${ }`", "12:16"),
        inside("a parameter expansion `${ }`", "12:35"),
        inside("text that POSIX shells read differently", "13:18"),
        inside("text that POSIX shells read differently", "14:35"),
        inside("text that POSIX shells read differently", "17:23"),
    ]
    .concat();
    assert_eq!(found, expected);
}

/// Backquotes drop a backslash before a backslash before the command in
/// them is read: a value quoted `"x\\"` becomes `"x\"`, whose quote no
/// longer closes, and a second value's `'$(touch PWNED)'` ran inside it,
/// even from a `$( )` within the backquotes.
#[test]
fn a_value_anywhere_inside_backquotes_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let (output, _) = Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  h1: {{transport: local, vars: {{a: 'x\\', b: '$(touch {}/PWNED)\\\"'}}}}\n",
            out.path().display()
        ))
        .runbook(
            "
            version: 1
            name: backquotes
            steps:
              - id: a
                targets: [h1]
                check: {command: 'false'}
                timeout: 10s
                run: echo `echo $(echo {{ host.vars.a }} {{ host.vars.b }})`
            ",
        )
        .args(["run", "runbook.yaml", "-i", "inventory.yaml", "--state-dir", "state"])
        .status(2)
        .run();
    assert!(!out.path().join("PWNED").exists(), "the value ran");
    assert_eq!(
        errors(&output.stderr)[..2],
        [
            "error: `{{ host.vars.a }}` is inside backticks, where its shell quoting does not hold",
            "  --> runbook.yaml:8:28",
        ]
    );
}

/// A `\` at the end of a line joins the next before the shell reads
/// anything: `a \⏎#{{ v }}` puts the value in a comment (where a newline
/// in it starts a command), `"$\⏎(echo " {{ v }} ")"` in double quotes.
#[test]
fn a_line_continuation_is_read_as_the_shell_reads_it() {
    let (output, _) = Test::new()
        .runbook(
            r#"
            version: 1
            name: continued
            vars: {q: x}
            steps:
              - id: a
                check: {command: 'false'}
                timeout: 10s
                run: |
                  echo a \
                  #{{ vars.q }}
                  echo "$\
                  (echo " {{ vars.q }} ")"
            "#,
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 2 errors, 0 warnings")
        .run();
    let found: Vec<String> = errors(&output.stderr)
        .into_iter()
        .filter(|l| !l.contains("= hint"))
        .collect();
    assert_eq!(
        found,
        [
            "error: `{{ vars.q }}` is inside a comment, where its shell quoting does not hold",
            "  --> runbook.yaml:10:8",
            "error: `{{ vars.q }}` is inside double quotes, where its shell quoting does not hold",
            "  --> runbook.yaml:12:15",
        ]
    );
}

/// The shell ends a word at a space, a tab or a newline only: with a
/// no-break space or a `\r` after `<<EOF`, the delimiter is longer and
/// the heredoc (whose body expands `$( )`) goes on past the `EOF` line.
#[test]
fn a_heredoc_delimiter_ends_where_the_shell_ends_it() {
    // As YAML escapes, in a double-quoted scalar.
    for separator in ["\\u00a0", "\\r"] {
        let runbook = format!(
            "version: 1\nname: heredoc\nvars: {{q: x}}\nsteps:\n  - id: a\n    check: {{command: 'false'}}\n    timeout: 10s\n    run: \"cat <<EOF{}x\\nEOF\\necho {{{{ vars.q }}}}\\nEOF{}x\\n\"\n",
            separator, separator
        );
        let (output, _) = Test::new()
            .runbook(&runbook)
            .args(["validate", "runbook.yaml"])
            .status(2)
            .run();
        let errors = errors(&output.stderr);
        assert_eq!(
            errors[0],
            "error: `{{ vars.q }}` is inside a heredoc, where its shell quoting does not hold",
            "{separator:?}"
        );
        assert!(errors[1].starts_with("  --> runbook.yaml:8:"), "{errors:?}");
    }
    // In a body that expands, `x\` joins the next line: `xEOF` is no end.
    // A body starts at a newline of the command that wrote `<<EOF`, not at
    // one inside a `$( )` opened after it.
    for before in [
        ["cat <<EOF", "x\\", "EOF"],
        ["cat <<EOF; x=$(", "EOF", "true)"],
    ] {
        let mut runbook = "version: 1\nname: heredoc\nvars: {q: x}\nsteps:\n- id: a\n  check: {command: 'false'}\n  timeout: 10s\n  run: |\n".to_string();
        for line in before.iter().chain(&["echo {{ vars.q }}", "EOF"]) {
            runbook.push_str(&format!("    {line}\n"));
        }
        let (output, _) = Test::new()
            .runbook(&runbook)
            .args(["validate", "runbook.yaml"])
            .status(2)
            .run();
        assert_eq!(
            errors(&output.stderr)[..2],
            [
                "error: `{{ vars.q }}` is inside a heredoc, where its shell quoting does not hold",
                "  --> runbook.yaml:12:10",
            ],
            "{runbook}"
        );
    }
}

/// A runbook whose steps put `{{ host.vars.q }}` in every position that
/// validates, one step each, so that one failing does not hide another;
/// each writes the value it received to `out/STEP.HOST`.
fn every_valid_position(out: &Path) -> String {
    let out = out.display();
    let v = "{{ host.vars.q }}";
    let to = "> {{ host.name }}";
    let steps: Vec<(&str, String)> = vec![
        ("bare", format!("printf %s {v} {to}")),
        ("option", format!("printf %s --opt={v} {to}")),
        (
            "substitution",
            format!("printf %s \"$(printf %s {v})\" {to}"),
        ),
        (
            "safe",
            format!("printf %s {{{{ host.vars.q | safe }}}} {to}"),
        ),
        (
            "escape",
            format!("printf %s {{{{ host.vars.q | e }}}} {to}"),
        ),
        (
            "upper",
            format!("printf %s {{{{ host.vars.q | upper }}}} {to}"),
        ),
        (
            "autoescape",
            format!("{{% autoescape false %}}printf %s {v} {to}{{% endautoescape %}}"),
        ),
        (
            "branch",
            format!("{{% if true %}}printf %s {v} {to}{{% endif %}}"),
        ),
        (
            "after-heredoc",
            format!("cat <<'EOF' > /dev/null\nliteral\nEOF\nprintf %s {v} {to} # note"),
        ),
    ];
    let mut runbook = format!(
        "version: 1\nname: inert\ndefaults: {{timeout: 30s, on_failure: continue}}\nsteps:\n\
         - id: check\n  targets: [all]\n  check: {{command: 'cd {out}/check && printf %s {v} {to}; false'}}\n  run: 'true'\n\
         - id: verify\n  targets: [all]\n  verify: {{command: 'cd {out}/verify && printf %s {v} {to}'}}\n"
    );
    for (id, command) in steps {
        let command = command.replace('\n', "\n    ");
        runbook.push_str(&format!(
            "- id: {id}\n  targets: [all]\n  check: {{command: 'false'}}\n  run: |\n    cd {out}/{id}\n    {command}\n"
        ));
    }
    runbook
}

/// Runs [`every_valid_position`] on hosts `h1` and `h2` and checks that each
/// file holds the host's value, byte for byte, and that nothing was touched.
fn assert_inert(t: Test, out: &Path) {
    let positions = [
        "check",
        "verify",
        "bare",
        "option",
        "substitution",
        "safe",
        "escape",
        "upper",
        "autoescape",
        "branch",
        "after-heredoc",
    ];
    for p in positions {
        std::fs::create_dir(out.join(p)).unwrap();
    }
    let output = t
        .runbook(&every_valid_position(out))
        .args([
            "run",
            "runbook.yaml",
            "-i",
            "inventory.yaml",
            "--state-dir",
            "state",
        ])
        .command()
        .output()
        .unwrap();
    let touched: Vec<&str> = positions
        .iter()
        .filter(|p| out.join(p).join("PWNED").exists())
        .copied()
        .collect();
    assert!(
        touched.is_empty(),
        "a value ran as a command in {touched:?}"
    );
    let read =
        |p: &str, host: &str| std::fs::read_to_string(out.join(p).join(host)).unwrap_or_default();
    for (host, value) in [("h1", HOSTILE[0]), ("h2", HOSTILE[1])] {
        for p in [
            "check",
            "verify",
            "bare",
            "substitution",
            "safe",
            "autoescape",
            "branch",
            "after-heredoc",
        ] {
            assert_eq!(read(p, host), value, "{p} on {host}");
        }
        assert_eq!(read("option", host), format!("--opt={value}"));
        assert_eq!(read("upper", host), value.to_uppercase());
        // HTML-escaped by minijinja, then quoted like any value.
        assert!(!read("escape", host).is_empty(), "escape on {host}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.matches("] ok ").count(), positions.len(), "{stdout}");
}

fn hostile_inventory(h1: &str, h2: &str) -> String {
    let vars = |i: usize| {
        format!(
            "vars: {{q: {}}}",
            serde_json::to_string(HOSTILE[i]).unwrap()
        )
    };
    format!(
        "version: 1\nhosts:\n  h1: {}\n  h2: {}\ngroups:\n  all: {{hosts: [h1, h2]}}\n",
        h1.replace("VARS", &vars(0)),
        h2.replace("VARS", &vars(1))
    )
}

#[test]
fn hostile_values_stay_inert_in_every_valid_position_on_the_controller() {
    let out = tempfile::tempdir().unwrap();
    let local = "{transport: local, VARS}";
    let t = Test::new().inventory(&hostile_inventory(local, local));
    assert_inert(t, out.path());
}

#[test]
fn hostile_values_stay_inert_in_every_valid_position_over_ssh() {
    let sshd = Sshd::start(&["127.0.0.2", "127.0.0.3"]);
    let out = tempfile::tempdir().unwrap();
    let t = Test::new().inventory(&hostile_inventory(
        &sshd.host("127.0.0.2", ", VARS"),
        &sshd.host("127.0.0.3", ", VARS"),
    ));
    assert_inert(t, out.path());
}

#[test]
fn expressions_and_filters_on_secrets_are_refused() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: secret-expr
            steps:
              - id: a
                run: echo {{ secret.T | upper }} {{ 'x' ~ secret.T }} {{ secret.T }} {{ secret.T | raw }}
                check: {command: '{% if secret.T %}true{% endif %}'}
                verify: {http: {url: 'http://h/{{ secret }}'}}
            ",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 4 errors, 0 warnings")
        .run();
    let hint =
        "  = hint: interpolate it alone, as `{{ secret.NAME }}`, and transform it in the command";
    let error = |tag: &str| {
        format!("error: `{tag}` uses a secret in an expression, whose result could not be masked")
    };
    assert_eq!(
        errors(&output.stderr),
        [
            error("{{ secret.T | upper }}"),
            "  --> runbook.yaml:5:15".into(),
            hint.into(),
            error("{{ 'x' ~ secret.T }}"),
            "  --> runbook.yaml:5:38".into(),
            hint.into(),
            error("{% if secret.T %}"),
            "  --> runbook.yaml:6:23".into(),
            hint.into(),
            error("{{ secret }}"),
            "  --> runbook.yaml:7:36".into(),
            hint.into(),
        ]
    );
}

#[test]
fn exported_secrets_do_not_reach_local_commands() {
    let (_, t) = Test::new()
        .runbook(
            "
            version: 1
            name: env
            defaults: {timeout: 10s}
            steps:
              - {id: a, check: {command: 'false'}, run: 'env > env.txt; printf %s {{ secret.USED }} > used.txt'}
            ",
        )
        .env("RUNBOOK_SECRET_USED", "used-value")
        .env("RUNBOOK_SECRET_OTHER", "other-value")
        .args(["run", "runbook.yaml", "--state-dir", "state"])
        .run();
    let env = std::fs::read_to_string(t.path().join("env.txt")).unwrap();
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("RUNBOOK_SECRET"), "{env}");
    assert_eq!(
        std::fs::read_to_string(t.path().join("used.txt")).unwrap(),
        "used-value",
        "a secret reaches a command through its template"
    );
}

#[test]
fn a_secret_from_a_block_scalar_is_masked_without_its_newline_everywhere() {
    let secret = "Bl0ck-s3cret";
    let (output, t) = Test::new()
        .file("secrets.yaml", &format!("TOKEN: |\n  {secret}\n"))
        .runbook(
            "
            version: 1
            name: block
            defaults: {timeout: 10s}
            steps:
              - id: a
                check: {command: 'false'}
                run: printf '%s' {{ secret.TOKEN }} | tr -d '\\n'; printf '%s' {{ secret.TOKEN }} | tr -d '\\n' >&2; exit 1
            ",
        )
        .args([
            "run",
            "runbook.yaml",
            "--state-dir",
            "state",
            "--secrets",
            "secrets.yaml",
            "-v",
        ])
        .status(1)
        .run();
    let mut everything = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        all_files_text(&t.path().join("state"))
    );
    for format in ["md", "html", "json", "junit"] {
        let report = Command::new(BIN)
            .current_dir(t.path())
            .args(["report", "--state-dir", "state", "--format", format])
            .output()
            .unwrap();
        assert!(report.status.success(), "report --format {format}");
        everything.push_str(&String::from_utf8_lossy(&report.stdout));
    }
    assert!(everything.contains("***"), "{everything}");
    assert!(
        !everything.contains("s3cret"),
        "the secret leaked:\n{everything}"
    );
}

/// One-shot HTTP server on loopback answering 200; returns its port.
fn http_ok() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(5) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    port
}

#[test]
fn rust_log_at_debug_or_trace_keeps_dependencies_quiet_unless_named() {
    let secret = "Url-s3cret";
    for (rust_log, ureq_shown) in [
        ("debug", false),
        ("trace", false),
        ("warn,ureq=debug", true),
    ] {
        let port = http_ok();
        let (output, _) = Test::new()
            .runbook(&format!(
                "
                version: 1
                name: url
                steps:
                  - {{id: a, check: {{http: {{url: 'http://127.0.0.1:{port}/{{{{ secret.TOKEN }}}}?k=v'}}}}}}
                "
            ))
            .env("RUST_LOG", rust_log)
            .env("RUNBOOK_SECRET_TOKEN", secret)
            .args(["status", "runbook.yaml"])
            .run();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains(secret), "RUST_LOG={rust_log}:\n{stderr}");
        assert_eq!(
            stderr.contains("Call<"),
            ureq_shown,
            "RUST_LOG={rust_log}:\n{stderr}"
        );
        assert_eq!(
            stderr.contains("DEBUG runbook validated"),
            !ureq_shown,
            "a bare level applies to runbook itself:\n{stderr}"
        );
    }
}

/// Runs `cmd` with a pseudo-terminal as stdin, stdout and stderr, typing
/// `input`; returns everything it printed.
fn on_terminal(mut cmd: Command, input: &str) -> String {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty only writes the two descriptors it opens; no name,
    // termios or window size is passed.
    let rc = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .env_remove("CI");
    let mut child = cmd.spawn().expect("spawn on a terminal");
    drop(cmd);
    let mut terminal = std::fs::File::from(master);
    terminal.write_all(input.as_bytes()).unwrap();
    let pid = child.id();
    let guard = std::thread::spawn(move || {
        for _ in 0..600 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            // SAFETY: signal 0 only checks that our child still exists.
            if unsafe { libc::kill(pid as i32, 0) } != 0 {
                return;
            }
        }
        // SAFETY: a hang guard killing our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let mut out = Vec::new();
    // Ends with EIO once the child, the last holder of the terminal, exits.
    let _ = terminal.read_to_end(&mut out);
    let _ = child.wait();
    let _ = guard.join();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn manual_text_is_masked_at_the_prompt() {
    let secret = "Pr0mpt-s3cret";
    let t = Test::new()
        .runbook(
            "
            version: 1
            name: manual
            steps:
              - {id: person, manual: 'Unlock the vault with {{ secret.CODE }} now.'}
            ",
        )
        .env("RUNBOOK_SECRET_CODE", secret)
        .args(["run", "runbook.yaml", "--state-dir", "state"]);
    let printed = on_terminal(t.command(), "n\n");
    assert!(
        printed.contains("Unlock the vault with *** now."),
        "{printed}"
    );
    assert!(!printed.contains("s3cret"), "the secret leaked:\n{printed}");
}

/// A host's output and an inventory's values are shown to the operator:
/// as escape sequences they could set the clipboard (OSC 52), retitle the
/// window, clear the screen or rewrite a failure line with `\r`.
#[test]
fn escape_sequences_from_hosts_and_inventories_never_reach_the_terminal() {
    let t = Test::new()
        .inventory(
            "
            version: 1
            hosts:
              h1: {transport: local, vars: {note: \"a\\e]52;c;cHduZWQ=\\a\\e[2Jb\"}}
            ",
        )
        .runbook(
            r"
            version: 1
            name: escapes
            steps:
              - id: loud
                check: {command: 'false'}
                run: printf 'x\033]52;c;cHduZWQ=\007\033[2Jred\rok\n' >&2; exit 1
                timeout: 10s
                on_failure: continue
              - {id: person, targets: [h1], manual: 'Check {{ host.vars.note }} now.'}
            ",
        )
        .args([
            "run",
            "runbook.yaml",
            "-i",
            "inventory.yaml",
            "--state-dir",
            "state",
        ]);
    let printed = on_terminal(t.command(), "n\n");
    for raw in ["\u{1b}]52", "\u{1b}[2J", "red\rok"] {
        assert!(
            !printed.contains(raw),
            "{raw:?} reached the terminal:\n{printed}"
        );
    }
    assert!(
        printed.contains(r"Check a\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2Jb now."),
        "{printed}"
    );
    assert!(
        printed.contains(r"x\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2Jred\rok"),
        "{printed}"
    );
    let report = Command::new(BIN)
        .current_dir(t.path())
        .args(["report", "--state-dir", "state", "--format", "md"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(md.contains(r"\u{1b}]52"), "{md}");
    assert!(!md.contains('\u{1b}'), "{md}");
}
