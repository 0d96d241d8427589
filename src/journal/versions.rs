//! Each runbook a run executed, kept by hash in the run directory, so that a
//! report shows the steps as they ran and `resume` can tell which finished
//! steps have been edited since.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The copy of the runbook with this SHA-256 in a run directory. The
/// version a run starts with is `runbook.yaml`; each other version a
/// resumption executes is kept beside it under its hash.
#[must_use]
pub fn kept_copy(run_dir: &Path, sha256: &str) -> PathBuf {
    let by_hash = run_dir.join(file_name(sha256));
    if by_hash.exists() {
        by_hash
    } else {
        run_dir.join("runbook.yaml")
    }
}

#[must_use]
pub fn file_name(sha256: &str) -> String {
    // The hash is read back from a journal: only hex digits reach a path.
    let prefix: String = sha256
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    format!("runbook-{prefix}.yaml")
}

/// Each step's definition as written, by id: what "the step changed" means.
/// A runbook that does not parse has none.
#[must_use]
pub fn step_definitions(text: &str) -> BTreeMap<String, serde_json::Value> {
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(text) else {
        return BTreeMap::new();
    };
    doc.get("steps")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s.get("id")?.as_str()?.to_string(), s.clone())))
        .collect()
}

/// Whether `step` is defined differently in `after` than in `before`
/// (present in both).
#[must_use]
pub fn changed(
    before: &BTreeMap<String, serde_json::Value>,
    after: &BTreeMap<String, serde_json::Value>,
    step: &str,
) -> bool {
    matches!((before.get(step), after.get(step)), (Some(b), Some(a)) if a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_changed_when_its_definition_differs_not_its_layout() {
        let before = step_definitions(
            "version: 1\nname: x\nsteps:\n  - {id: a, run: 'echo 1'}\n  - {id: b, run: 'echo b'}\n",
        );
        let after = step_definitions(
            "version: 1\nname: x\nsteps:\n  - id: b\n    run: 'echo b'\n  - {id: a, run: 'echo 2'}\n",
        );
        assert!(changed(&before, &after, "a"));
        assert!(
            !changed(&before, &after, "b"),
            "moved and reflowed, same step"
        );
        assert!(!changed(&before, &after, "gone"));
    }
}
