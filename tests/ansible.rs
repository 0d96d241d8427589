//! Ansible inventories as `-i`: resolved exactly as Ansible resolves them
//! (checked against `ansible-inventory` itself), bad input located, and
//! usable for `run` on local and SSH hosts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Test, repo};
use crate::sshd::Sshd;

/// `ansible-inventory` from `scripts/test.sh`'s virtualenv; a missing one
/// fails the test rather than skipping it.
fn ansible_inventory() -> PathBuf {
    let candidates = [
        std::env::var_os("RUNBOOK_ANSIBLE_INVENTORY").map(PathBuf::from),
        Some(repo().join("target/ansible-venv/bin/ansible-inventory")),
        Some(PathBuf::from("ansible-inventory")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "ansible-inventory (ansible-core) is missing: run scripts/test.sh, which installs it",
        )
}

fn json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn compare(inventory: &Path) {
    let ansible = json(
        Command::new(ansible_inventory())
            .args(["--list", "-i"])
            .arg(inventory)
            .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false"),
    );
    let runbook = json(
        Command::new(crate::harness::BIN)
            .args(["inventory", "--format", "json", "-i"])
            .arg(inventory),
    );
    assert_eq!(
        runbook,
        ansible,
        "{}: runbook (left) differs from ansible-inventory (right)",
        inventory.display()
    );
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/ansible").join(name)
}

#[test]
fn ini_inventory_with_ranges_children_and_group_vars_folders_equals_ansible() {
    compare(&fixture("hospital-ini/hosts.ini"));
}

#[test]
fn yaml_inventory_with_nested_children_and_vars_folders_equals_ansible() {
    compare(&fixture("hospital-yaml/inventory.yml"));
}

#[test]
fn ini_edge_cases_equal_ansible() {
    // Children declared before their group, group priority, Python
    // literals, `host:port` overridden inline.
    compare(&fixture("edge.ini"));
}

#[test]
fn a_yaml_inventory_without_extension_equals_ansible() {
    let t = Test::new().file(
        "hosts",
        "
        web:
          hosts:
            web[1:2]:
              http_port: 8080
        db:
          hosts:
            db1:
        ",
    );
    compare(&t.path().join("hosts"));
}

#[test]
fn text_output_shows_each_setting_and_where_it_came_from() {
    let inv = fixture("hospital-ini/hosts.ini");
    let inv = inv.to_str().unwrap();
    let (out, _) = Test::new()
        .args([
            "inventory",
            "-i",
            inv,
            "--host",
            "pr-db-01.hospital.example",
        ])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` line in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(text.starts_with("pr-db-01.hospital.example\n"), "{text}");
    assert_eq!(line("port"), "port 2222 (host)");
    assert_eq!(
        line("address"),
        "address pr-db-01.hospital.example (default)"
    );
    assert_eq!(
        line("groups"),
        "groups all, clinical, patient_records, records_db"
    );
    assert!(
        line("pg_version").ends_with("host_vars/pr-db-01.hospital.example:2)"),
        "{text}"
    );
    let tier = line("tier ");
    assert!(tier.starts_with("tier 2 ("), "{text}");
    assert!(
        tier.ends_with("hospital-ini/group_vars/clinical/main.yml:2)"),
        "{text}"
    );
    assert_eq!(line("service"), "service dpi (group patient_records)");
    // Connection variables are settings, not host variables.
    assert!(!text.contains("ansible_port"), "{text}");
}

#[test]
fn a_malformed_ini_line_is_reported_at_its_line_and_column() {
    Test::new()
        .file("hosts.ini", "[web]\nweb1 ansible_port=22\nweb2 port 22\n")
        .args(["validate", "hosts.ini", "-i", "hosts.ini"])
        .status(2)
        .stderr_contains("error: expected a `key=value` host variable, found `port`")
        .stderr_contains("--> hosts.ini:3:6")
        .run();
    Test::new()
        .file("hosts.ini", "[web:vars]\nx=1\n")
        .args(["inventory", "-i", "hosts.ini"])
        .status(2)
        .stderr_contains("section [web:vars] is for a group that is never declared")
        .stderr_contains("--> hosts.ini:1:1")
        .run();
}

#[test]
fn a_vault_value_is_reported_where_it_is() {
    Test::new()
        .file("inventory.yml", "all:\n  hosts:\n    db1:\n")
        .file(
            "group_vars/all.yml",
            "
            ntp: ntp.example
            db_password: !vault |
              $ANSIBLE_VAULT;1.1;AES256
              62313365396662343061393464336163383764373764613633653634306231386433626436623361
            ",
        )
        .args(["inventory", "-i", "inventory.yml"])
        .status(2)
        .stderr_contains("error: vault-encrypted values are not supported")
        .stderr_contains("--> group_vars/all.yml:2:14")
        .run();
}

#[test]
fn a_literal_become_password_is_refused() {
    Test::new()
        .file(
            "hosts",
            "db1 ansible_become=true ansible_become_password=hunter2\n",
        )
        .args(["inventory", "-i", "hosts"])
        .status(2)
        .stderr_contains("`ansible_become_password` must reference a secret")
        .stderr_contains("--> hosts:1:1")
        .run();
}

#[test]
fn a_local_host_of_an_ansible_inventory_runs_steps() {
    let t = Test::new()
        .file(
            "hosts.ini",
            "[ops]\nlaptop ansible_connection=local marker=from-ansible\n",
        )
        .runbook(
            "
            version: 1
            name: local
            steps:
              - id: write
                targets: [ops]
                run: echo {{ host.vars.marker }} {{ host.address }} > out.txt
                verify: {command: test -s out.txt}
                timeout: 30s
            ",
        )
        .args(["run", "runbook.yaml", "-i", "hosts.ini", "--yes"])
        .run()
        .1;
    let written = std::fs::read_to_string(t.path().join("out.txt")).unwrap();
    assert_eq!(written, "from-ansible 127.0.0.1\n");
}

#[test]
fn an_ssh_host_of_an_ansible_inventory_runs_steps() {
    let sshd = Sshd::start(&["127.0.0.2"]);
    let seen = sshd.path("seen");
    let inventory = format!(
        "all:\n  children:\n    db:\n      hosts:\n        records-db:\n          ansible_host: 127.0.0.2\n          ansible_port: {}\n          ansible_user: root\n          ansible_ssh_private_key_file: {}\n          ansible_ssh_common_args: -o UserKnownHostsFile={}\n          role: primary\n",
        sshd.port,
        sshd.path("client_key").display(),
        sshd.path("known_hosts").display(),
    );
    let runbook = format!(
        "version: 1\nname: ssh\nsteps:\n  - id: s\n    targets: [db]\n    run: 'set -- $SSH_CONNECTION; echo $3 {{{{ host.vars.role }}}} > {}'\n    verify: {{command: 'true'}}\n    timeout: 30s\n",
        seen.display()
    );
    Test::new()
        .file("inventory.yml", &inventory)
        .runbook(&runbook)
        .args(["run", "runbook.yaml", "-i", "inventory.yml", "--yes"])
        .run();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "127.0.0.2 primary\n"
    );
    assert_eq!(sshd.logins(), 1);
}

#[test]
fn a_native_inventory_is_listed_in_the_same_shape() {
    let (out, _) = Test::new()
        .inventory(
            "
            version: 1
            defaults: {user: ops}
            hosts:
              bastion: {address: 192.0.2.10}
              db1: {address: 10.2.0.11, jump: bastion, vars: {role: primary}}
            groups:
              records: {hosts: [db1], vars: {tier: 1}}
              core: {children: [records]}
            ",
        )
        .args(["inventory", "-i", "inventory.yaml", "--format", "json"])
        .run();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!({
            "_meta": {
                "hostvars": {
                    "bastion": {"ansible_host": "192.0.2.10", "ansible_user": "ops"},
                    "db1": {
                        "ansible_host": "10.2.0.11",
                        "ansible_user": "ops",
                        "ansible_ssh_common_args": "-J bastion",
                        "role": "primary",
                        "tier": 1
                    }
                },
                "profile": "inventory_legacy"
            },
            "all": {"children": ["ungrouped", "core"]},
            "core": {"children": ["records"]},
            "records": {"hosts": ["db1"]},
            "ungrouped": {"hosts": ["bastion"]}
        })
    );
}

#[test]
fn ansible_become_variables_set_the_hosts_become() {
    let t = Test::new().file(
        "hosts.ini",
        "[db]\npg1 ansible_host=127.0.0.1 ansible_become=yes ansible_become_user=postgres ansible_become_password='{{ secret.SUDO_PG }}'\npg2 ansible_host=127.0.0.1\n",
    );
    let (out, _) = t
        .args(["inventory", "-i", "hosts.ini", "--host", "pg1"])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    let sudo = text
        .lines()
        .find(|l| l.trim_start().starts_with("become"))
        .unwrap_or_else(|| panic!("no become line in\n{text}"));
    assert!(
        sudo.contains("sudo as postgres, password {{ secret.SUDO_PG }}"),
        "{sudo}"
    );
    let (out, _) = Test::new()
        .file("hosts.ini", "[db]\npg2 ansible_host=127.0.0.1\n")
        .args(["inventory", "-i", "hosts.ini", "--host", "pg2"])
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("become"), "{text}");
}
