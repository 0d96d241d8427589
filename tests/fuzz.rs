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
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(bytes);
    }

    #[test]
    fn yamlish_text_never_panics(text in "(version: 1\n|name: [a-z]{1,5}\n|steps:\n|  - id: [a-z]{1,3}\n|    depends_on: \\[[a-z,]{0,6}\\]\n|    run: [a-z{} .]{0,12}\n|    check: \\{command: x\\}\n|    timeout: [0-9a-z]{1,4}\n|    targets: \\[[a-z]{1,3}\\]\n|phases:\n|  - id: [a-z]\n|&a |\\*a|[:\\[\\]{}#'\"-]){0,40}") {
        check(text.into_bytes());
    }

    #[test]
    fn mutated_hospital_runbook_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8)
    ) {
        let mut bytes = hospital();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        check(bytes);
    }
}
