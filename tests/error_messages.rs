//! Human diagnostics, caret diagram included, asserted verbatim.

use crate::harness::Test;

#[test]
fn unknown_dependency_points_at_the_name_with_a_suggestion() {
    Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: restart-db
                check: {command: 'true'}
              - id: app
                depends_on: [restart-bd]
                check: {command: 'true'}
            ",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 1 error, 0 warnings")
        .stderr(
            "
            error: unknown step `restart-bd`
              --> runbook.yaml:7:18
              |
            7 |     depends_on: [restart-bd]
              |                  ^^^^^^^^^^
              = hint: did you mean `restart-db`?
            ",
        )
        .run();
}

#[test]
fn all_errors_of_a_file_are_reported_in_one_pass_in_source_order() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: a
                phase: nope
                check: {command: 'true'}
              - id: b
                depends_on: [zz]
                check: {command: 'echo {{ vars.missing }}'}
            ",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 3 errors, 0 warnings")
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let locations: Vec<&str> = stderr.lines().filter(|l| l.contains("--> ")).collect();
    assert_eq!(
        locations,
        [
            "  --> runbook.yaml:5:12",
            "  --> runbook.yaml:8:18",
            "  --> runbook.yaml:9:31"
        ]
    );
}

#[test]
fn structural_errors_are_all_reported_too() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: a
                comand: 'true'
                timeout: 5x
              - id: b
                retries: twice
                on_failure: retry
                check: {command: 'true', attemps: 3}
              - title: no id
                run: 'true'
            ",
        )
        .args(["validate", "runbook.yaml"])
        .status(2)
        .stdout("invalid: 1 file checked, 6 errors, 0 warnings")
        .stderr_contains("error: invalid type: `twice` where a whole number was expected\n  --> runbook.yaml:8:14")
        .stderr_contains("error: unknown `on_failure` value `retry`; expected `abort`, `continue` or `pause`\n  --> runbook.yaml:9:17")
        .stderr_contains("error: unknown field `attemps`\n  --> runbook.yaml:10:30")
        .stderr_contains("= hint: did you mean `attempts`?")
        .stderr_contains("error: missing field `id`\n  --> runbook.yaml:11:5")
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: unknown field `comand`"),
        "{stderr}"
    );
}

#[test]
fn github_format_prints_workflow_annotations() {
    Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: a
                run: systemctl restart nginx
            ",
        )
        .args(["validate", "runbook.yaml", "--format", "github"])
        .status(0)
        .stdout(
            "
            ::warning file=runbook.yaml,line=5,col=10::step `a` runs a command with neither `check` nor `verify` (hint: add a `check` so a restored host is skipped, or a `verify` so success is proven)
            ::warning file=runbook.yaml,line=5,col=10::step `a` runs a command with no timeout (hint: set `timeout` on the step or under `defaults`)
            ",
        )
        .run();
}

#[test]
fn strict_turns_warnings_into_exit_1() {
    Test::new()
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: a
                run: systemctl restart nginx
                check: {command: 'systemctl is-active nginx'}
            ",
        )
        .args(["validate", "--strict", "runbook.yaml"])
        .status(1)
        .stdout("valid: 1 file checked, 0 errors, 1 warning")
        .stderr_contains("warning: step `a` runs a command with no timeout")
        .run();
}

#[test]
fn lints_warn_about_literal_secrets_unused_phases_and_continue_with_dependents() {
    let (output, _) = Test::new()
        .runbook(
            "
            version: 1
            name: demo
            defaults: {timeout: 1m}
            phases:
              - id: unused
            steps:
              - id: db
                run: psql 'postgres://admin:x@db/app' --password=Sup3rS3cret
                check: {command: 'pg_isready'}
                on_failure: continue
              - id: app
                depends_on: [db]
                check: {command: 'true'}
            ",
        )
        .args(["validate", "runbook.yaml", "--format", "json"])
        .status(0)
        .run();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let codes: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["unused", "continue-with-dependents", "literal-secret"]
    );
    assert_eq!(json["warnings"], 3);
}

#[test]
fn unknown_var_override_is_an_error_with_a_suggestion() {
    Test::new()
        .runbook(
            "
            version: 1
            name: demo
            vars: {site: paris}
            steps:
              - id: a
                check: {command: 'echo {{ vars.site }}'}
            ",
        )
        .args(["validate", "runbook.yaml", "--var", "stie=lyon"])
        .status(2)
        .stderr_contains("error: `--var stie` does not override any variable declared under `vars`")
        .stderr_contains("= hint: did you mean `site`?")
        .run();
}

#[test]
fn unused_group_is_a_warning_when_validating_with_the_inventory() {
    Test::new()
        .inventory(
            "
            version: 1
            hosts:
              a: {transport: local}
            groups:
              used: {hosts: [a]}
              spare: {hosts: [a]}
            ",
        )
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: s
                targets: [used]
                check: {command: 'true'}
            ",
        )
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .stdout("valid: 2 files checked, 0 errors, 1 warning")
        .stderr_contains("warning: group `spare` is never used\n  --> inventory.yaml:6:10")
        .run();
}

#[test]
fn hostile_inputs_end_in_a_clear_error() {
    let t = Test::new().file("empty.yaml", "").file(
        "bomb.yaml",
        "
            version: 1
            name: bomb
            vars:
              a: &a [x, x, x, x, x, x, x, x, x, x]
              b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
              c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
              d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
              e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
              f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
              g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
              h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
            steps: [{id: a, check: {command: 'true'}}]
            ",
    );
    std::fs::write(t.path().join("latin1.yaml"), b"version: 1\nname: caf\xe9\n").unwrap();
    let big = "# padding\n".repeat(4 * 1024 * 1024);
    std::fs::write(t.path().join("huge.yaml"), big).unwrap();
    let (output, _) = t
        .args([
            "validate",
            "empty.yaml",
            "bomb.yaml",
            "latin1.yaml",
            "huge.yaml",
            "--format",
            "json",
        ])
        .status(2)
        .run();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let got: Vec<(String, u64, u64, String)> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("empty.yaml".into(), 1, 1, "empty".into()),
            // Where the expansion crosses the budget: inside `f`.
            ("bomb.yaml".into(), 9, 10, "syntax".into()),
            ("latin1.yaml".into(), 2, 10, "not-utf8".into()),
            ("huge.yaml".into(), 1, 1, "too-large".into()),
        ]
    );
    let bomb = &json["diagnostics"][1]["message"];
    assert!(
        bomb.as_str().unwrap().contains("aliases expand too far"),
        "{bomb}"
    );
}

#[test]
fn a_jump_chain_longer_than_seven_hosts_is_refused_where_it_is_written() {
    let hosts: String = (1..=8)
        .map(|i| format!("  j{i}: {{address: 10.0.0.{i}, jump: j{}}}\n", i - 1))
        .collect();
    Test::new()
        .inventory(&format!(
            "version: 1\nhosts:\n  j0: {{address: 10.0.0.100}}\n{hosts}"
        ))
        .runbook("version: 1\nname: deep\nsteps:\n  - {id: s, targets: [j8], check: {command: 'true'}}\n")
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .status(2)
        .stderr_contains(
            "error: host `j8` is reached through 8 jump hosts (j7 -> j6 -> j5 -> j4 -> j3 -> j2 -> j1 -> j0), more than the 7 supported\n  --> inventory.yaml:11:33",
        )
        .run();
}

/// The stderr of `validate ARGS` in a directory holding `files`, with the
/// exit code it must end with.
fn validate_stderr(files: &[(&str, &str)], args: &[&str], status: i32) -> String {
    let t = Test::new();
    for (name, text) in files {
        std::fs::write(t.path().join(name), text).unwrap();
    }
    let (output, _) = t
        .args(["validate"])
        .args(args.iter().copied())
        .status(status)
        .run();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_tab_in_the_indentation_is_pointed_at_itself() {
    insta::assert_snapshot!(validate_stderr(
        &[
            (
                "key.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n\trun: 'true'\n"
            ),
            (
                "block.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    run: >\n      echo\n\t  hi\n",
            ),
            (
                "continuation.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    run: echo a\n\t  b\n",
            ),
        ],
        &["key.yaml", "block.yaml", "continuation.yaml"],
        2,
    ));
}

#[test]
fn a_misindented_line_is_named_with_its_siblings_column() {
    insta::assert_snapshot!(validate_stderr(
        &[
            (
                "deeper.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    run: 'true'\n      timeout: 5s\n",
            ),
            (
                "shallower.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    run: 'true'\n   timeout: 5s\n",
            ),
            (
                "between.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    check:\n      command: 'true'\n     timeout: 5s\n",
            ),
            (
                "item.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    run: 'true'\n   - id: b\n",
            ),
            (
                "continued.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    run: 'true'\n  - id: b\n     run: 'true'\n",
            ),
        ],
        &[
            "deeper.yaml",
            "shallower.yaml",
            "between.yaml",
            "item.yaml",
            "continued.yaml",
        ],
        2,
    ));
}

#[test]
fn a_bad_value_does_not_hide_the_other_errors_of_its_file() {
    insta::assert_snapshot!(validate_stderr(
        &[
            (
                "inventory.yaml",
                "version: 1\nhosts:\n  web: {transport: local, port: 99999}\n",
            ),
            (
                "other.yaml",
                "version: 1\nhosts:\n  web: {transport: lokal}\n  db: {jump: bastoin}\n",
            ),
            (
                "runbook.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    timeout: 5x\n    check: {command: 'true', attemps: 3}\n  - id: b\n    depends_on: [zz]\n    targets: [nohost]\n    check: {command: 'echo {{ vars.nope }}'}\n",
            ),
        ],
        &["runbook.yaml", "other.yaml", "-i", "inventory.yaml"],
        2,
    ));
}

#[test]
fn an_unknown_choice_lists_the_choices_in_plain_words() {
    insta::assert_snapshot!(validate_stderr(
        &[
            (
                "inventory.yaml",
                "version: 1\nhosts:\n  web: {transport: lokal, host_key_checking: ask}\n",
            ),
            (
                "runbook.yaml",
                "version: 1\nname: demo\ndefaults: {on_failure: abrot}\nsteps:\n  - id: a\n    check: {command: 'true'}\n",
            ),
        ],
        &["runbook.yaml", "inventory.yaml"],
        2,
    ));
}

#[test]
fn a_field_one_level_too_deep_says_where_it_belongs() {
    insta::assert_snapshot!(validate_stderr(
        &[
            (
                "flow.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    targets: [web]\n    check: {tcp: {port: 1, timeout: 2s}}\n",
            ),
            (
                "block.yaml",
                "version: 1\nname: demo\nsteps:\n  - id: a\n    targets: [web]\n    check:\n      tcp:\n        port: 1\n        attempts: 3\n      timeout: 5x\n",
            ),
        ],
        &["flow.yaml", "block.yaml"],
        2,
    ));
}

#[test]
fn without_an_inventory_validate_says_targets_are_not_checked() {
    let runbook = "version: 1\nname: demo\nsteps:\n  - id: a\n    targets: [web]\n    check: {command: 'true'}\n";
    let plain = validate_stderr(&[("runbook.yaml", runbook)], &["runbook.yaml"], 0);
    let strict = validate_stderr(
        &[("runbook.yaml", runbook)],
        &["--strict", "runbook.yaml"],
        1,
    );
    insta::assert_snapshot!(format!(
        "without --strict:\n{plain}\nwith --strict:\n{strict}"
    ));
    // Nothing to say when no step has targets.
    Test::new()
        .runbook("version: 1\nname: demo\nsteps:\n  - {id: a, check: {command: 'true'}}\n")
        .args(["validate", "--strict", "runbook.yaml"])
        .stderr("")
        .run();
}

#[test]
fn a_step_asking_for_sudo_on_a_host_without_a_shell_is_refused_at_its_become() {
    Test::new()
        .inventory(
            "
            version: 1
            hosts:
              sw1: {shell: none}
              sw2: {shell: none}
              db: {}
            groups:
              all-hosts: {hosts: [sw1, db, sw2]}
            ",
        )
        .runbook(
            "
            version: 1
            name: demo
            steps:
              - id: save
                targets: [all-hosts]
                become_user: admin
                check: {command: 'true'}
              - id: plain
                targets: [all-hosts]
                become: false
                become_user: admin
                check: {command: 'true'}
              - id: db-only
                targets: [db]
                become: true
                check: {command: 'true'}
            ",
        )
        .args(["validate", "runbook.yaml", "-i", "inventory.yaml"])
        .status(2)
        .stdout("invalid: 2 files checked, 1 error, 0 warnings")
        .stderr(
            "
            error: step `save` runs through sudo (`become`) on `sw1`, `sw2` with `shell: none`
              --> runbook.yaml:6:5
              |
            6 |     become_user: admin
              |     ^^^^^^^^^^^
              = hint: sudo needs a shell: remove `become` there, or set `shell: posix` if the host has one
            ",
        )
        .run();
}
