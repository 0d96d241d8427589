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
