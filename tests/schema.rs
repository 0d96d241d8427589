//! The JSON Schema: printed by the binary, checked in, and satisfied by
//! every runbook and inventory in the repository.

use std::process::Command;

use crate::harness::{BIN, repo};

fn schema(kind: &str) -> serde_json::Value {
    let out = Command::new(BIN).args(["schema", kind]).output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_repository_file_validates_against_the_schema() {
    for (kind, dir) in [("runbook", "runbooks"), ("inventory", "inventory")] {
        let validator = jsonschema::validator_for(&schema(kind)).unwrap();
        let files = yaml_files(dir);
        assert!(!files.is_empty());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
}

#[test]
fn schema_rejects_an_unknown_field_like_the_loader() {
    let validator = jsonschema::validator_for(&schema("runbook")).unwrap();
    let doc =
        serde_json::json!({"version": 1, "name": "x", "steps": [{"id": "a", "comand": "true"}]});
    assert!(!validator.is_valid(&doc));
}

#[test]
fn checked_in_schemas_are_fresh() {
    for kind in ["runbook", "inventory"] {
        let path = repo().join(format!("docs/schema/{kind}.schema.json"));
        let on_disk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            on_disk,
            schema(kind),
            "regenerate {}: runbook schema {kind} > {}",
            path.display(),
            path.display()
        );
    }
}
