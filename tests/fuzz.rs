//! Arbitrary and mutated YAML never panics the loader or the validator.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use runbook::load::{self, FileKind, Source};
use runbook::validate;

fn check(bytes: Vec<u8>) {
    let Ok(source) = Source::from_bytes(Path::new("fuzz.yaml"), bytes) else {
        return;
    };
    match FileKind::sniff(&source.text) {
        FileKind::Runbook => match load::parse(&source) {
            Ok(raw) => {
                let checked = validate::runbook(&source, raw, None, &BTreeMap::new());
                for d in &checked.diagnostics {
                    let _ = d.render(Some(&source.text));
                }
            }
            Err(first) => {
                for d in load::structure::explain(&source, FileKind::Runbook, *first) {
                    let _ = d.render(Some(&source.text));
                }
            }
        },
        FileKind::Inventory => match load::parse(&source) {
            Ok(raw) => {
                let _ = validate::inventory::inventory(&source, &raw);
            }
            Err(first) => {
                let _ = load::structure::explain(&source, FileKind::Inventory, *first);
            }
        },
    }
}

/// YAML-ish text built from anchors and aliases: each line defines an
/// anchor from earlier ones (up to ten references each, so nesting
/// multiplies), under a key the formats know or not, with some lines
/// mangled. Exponential once expanded; the passes must stay bounded.
fn aliased_yaml() -> impl Strategy<Value = String> {
    let line = (
        proptest::collection::vec((0..8usize, 0..6u8), 2..12),
        prop::sample::select(vec!["[", "[", "{", "- ", ""]),
        0..8u8,
    );
    (
        prop::sample::select(vec![
            "bomb:\n",
            "vars:\n",
            "defaults:\n  vars:\n",
            "hosts:\n  a:\n    vars:\n",
            "groups:\n  g:\n    vars:\n",
            "steps:\n  - id: a\n    run: x\n    tags:\n",
        ]),
        proptest::collection::vec(line, 2..14),
    )
        .prop_map(|(section, lines)| {
            let last = section.lines().last().unwrap_or_default();
            let indent = " ".repeat(last.len() - last.trim_start().len() + 2);
            let mut text = format!("version: 1\nname: fuzz\n{section}");
            let count = lines.len();
            for (i, (refs, open, mangle)) in lines.into_iter().enumerate() {
                let items: Vec<String> = refs
                    .iter()
                    .map(|&(r, kind)| match kind {
                        // Mostly the anchor just before: that is what multiplies.
                        _ if i == 0 => format!("v{r}"),
                        0 => format!("v{r}"),
                        1 => format!("*a{}", r % i),
                        _ => format!("*a{}", i - 1),
                    })
                    .collect();
                let body = match open {
                    "[" => format!("[{}]", items.join(", ")),
                    "{" => {
                        let pairs: Vec<String> = items
                            .iter()
                            .enumerate()
                            .map(|(k, v)| format!("k{k}: {v}"))
                            .collect();
                        format!("{{{}}}", pairs.join(", "))
                    }
                    "- " => format!("\n{indent}  - {}", items.join(&format!("\n{indent}  - "))),
                    _ => items[0].clone(),
                };
                let line = format!("{indent}k{i}: &a{i} {body}\n");
                // A broken last line: the error comes after the expansion.
                let broken = mangle == 0 && i + 1 == count;
                text.push_str(if broken { line.trim_start() } else { &line });
            }
            text
        })
}

fn hospital() -> Vec<u8> {
    std::fs::read(crate::harness::repo().join("runbooks/datacenter-power-loss.yaml")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    // Text, not raw bytes: random bytes are almost never UTF-8 and would
    // stop at the encoding check, never reaching the parser.
    fn arbitrary_bytes_never_panic(text in "(?s).{0,512}") {
        check(text.into_bytes());
    }

    #[test]
    fn yamlish_text_never_panics(text in "(version: 1\n|name: [a-z]{1,5}\n|steps:\n|  - id: [a-z]{1,3}\n|    depends_on: \\[[a-z,]{0,6}\\]\n|    run: [a-z{} .]{0,12}\n|    check: \\{command: x\\}\n|    timeout: [0-9a-z]{1,4}\n|    targets: \\[[a-z]{1,3}\\]\n|phases:\n|  - id: [a-z]\n|&a |\\*a|[:\\[\\]{}#'\"-]){0,40}") {
        check(text.into_bytes());
    }

    #[test]
    fn aliased_yaml_never_panics_nor_expands(text in aliased_yaml()) {
        check(text.into_bytes());
    }

    #[test]
    fn mutated_hospital_runbook_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0..3u8), 1..8)
    ) {
        // Edits by character, so that the result stays UTF-8 and reaches
        // the parser and the validator.
        let mut chars: Vec<char> = String::from_utf8(hospital()).unwrap().chars().collect();
        for (at, c, op) in edits {
            let i = at.index(chars.len());
            match op {
                0 => chars[i] = c,
                1 => { chars.remove(i); }
                _ => chars.insert(i, c),
            }
        }
        check(chars.into_iter().collect::<String>().into_bytes());
    }
}

proptest! {
    // Each case starts the binary: fewer cases, each under a memory limit.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn aliased_yaml_is_refused_or_accepted_in_bounded_memory(text in aliased_yaml()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fuzz.yaml"), &text).unwrap();
        let output = crate::inputs::run_bounded(dir.path(), &["validate", "fuzz.yaml"], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        prop_assert!(
            matches!(output.status.code(), Some(0..=2)),
            "{:?} on:\n{text}\n{stderr}",
            output.status
        );
        prop_assert!(output.status.code() != Some(2) || stderr.contains("fuzz.yaml:"), "{stderr}");
    }
}
