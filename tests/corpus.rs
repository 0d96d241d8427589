//! Every file under tests/corpus/bad carries its expected diagnostic in a
//! first-line comment: `# expect: LINE:COL SEVERITY: MESSAGE`.

use std::process::Command;

use crate::harness::{BIN, repo};

#[test]
fn every_bad_file_fails_with_its_exact_location_and_message() {
    let dir = repo().join("tests/corpus/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "corpus has only {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
        let (location, rest) = expect.split_once(' ').expect("LINE:COL first");
        let (severity, message) = rest.split_once(": ").expect("SEVERITY: MESSAGE");
        let (line, column) = location.split_once(':').expect("LINE:COL");
        let output = Command::new(BIN)
            .current_dir(repo())
            .args([
                "validate",
                "--format",
                "json",
                "-i",
                "tests/corpus/inventory.yaml",
            ])
            .arg(file)
            .output()
            .expect("run");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{}: bad JSON ({e})", file.display()));
        let found = json["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .any(|d| {
                d["line"].as_u64().map(|n| n.to_string()).as_deref() == Some(line)
                    && d["column"].as_u64().map(|n| n.to_string()).as_deref() == Some(column)
                    && d["severity"] == severity
                    && d["message"] == message
                    && d["file"]
                        .as_str()
                        .is_some_and(|f| f.ends_with(&*file.file_name().unwrap().to_string_lossy()))
            });
        if output.status.code() != Some(2) || !found {
            failures.push(format!(
                "{}: expected exit 2 and `{expect}`, got exit {:?} and {:#}",
                file.display(),
                output.status.code(),
                json["diagnostics"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
