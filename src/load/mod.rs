//! YAML text -> raw types that keep positions. Nothing here knows what a
//! valid runbook is; it only knows what a well-formed one looks like.

pub mod ansible;
pub mod inventory;
pub mod runbook;
pub mod schema_check;
pub mod source;
pub mod span;
pub mod structure;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use inventory::RawInventory;
pub use runbook::RawRunbook;
pub use source::Source;
pub use span::{Pos, Sp};

use crate::diagnostic::{Diagnostic, Problem};

/// What a YAML file holds, guessed from its top-level keys so that
/// `validate runbooks/` can check inventories and runbooks side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Runbook,
    Inventory,
}

impl FileKind {
    #[must_use]
    pub fn sniff(text: &str) -> Self {
        let top_level = |key: &str| {
            text.lines()
                .any(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with(':'))
        };
        if !top_level("steps") && (top_level("hosts") || top_level("groups")) {
            Self::Inventory
        } else {
            Self::Runbook
        }
    }
}

pub fn parse<T: DeserializeOwned>(source: &Source) -> Result<T, Box<Diagnostic>> {
    parse_with(
        source,
        serde_saphyr::options! {
            with_snippet: false,
        },
    )
}

pub fn parse_with<T: DeserializeOwned>(
    source: &Source,
    options: serde_saphyr::Options,
) -> Result<T, Box<Diagnostic>> {
    serde_saphyr::from_str_with_options(&source.text, options).map_err(|e| {
        let pos = e.location().map_or(Pos::new(1, 1), |l| {
            Pos::new(
                u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
                u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
            )
        });
        Box::new(Diagnostic::error(
            &source.path,
            pos,
            Problem::Syntax {
                suggestion: unknown_field_suggestion(&e),
                message: syntax_message(&e),
            },
        ))
    })
}

pub fn load_runbook(path: &Path) -> Result<(Source, RawRunbook), Box<Diagnostic>> {
    let source = Source::read(path)?;
    let raw = parse(&source)?;
    Ok((source, raw))
}

pub fn load_inventory(path: &Path) -> Result<(Source, RawInventory), Box<Diagnostic>> {
    let source = Source::read(path)?;
    let raw = parse(&source)?;
    Ok((source, raw))
}

/// The parser's message without its own location suffix, which the
/// diagnostic prints in its own format.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    humanize(text.trim().trim_end_matches('.'))
}

/// "did you mean" for an unknown field, from the fields the parser expected.
fn unknown_field_suggestion(e: &serde_saphyr::Error) -> Option<String> {
    let text = e.without_snippet().to_string();
    let rest = text.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let (_, expected) = rest.split_once("expected one of ")?;
    let expected = expected.split(" at line ").next().unwrap_or(expected);
    let expected = expected.trim().trim_end_matches('.');
    crate::diagnostic::suggest(field, expected.split(", ").map(|f| f.trim_matches('`')))
}

/// Rewords the parser's messages that speak Rust or name its options.
fn humanize(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("budget breached: ") {
        let detail = rest.split(" at line ").next().unwrap_or(rest);
        return format!(
            "the document is too large or its aliases expand too far ({detail}); \
             refusing to read it"
        );
    }
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    match text {
        "invalid u8" | "invalid u32" | "invalid u64" => {
            return "expected a whole number, zero or more".into();
        }
        "invalid u16" => return "expected a whole number from 0 to 65535".into(),
        "expected sequence start" => return "expected a list".into(),
        "expected mapping start" => return "expected a mapping of keys to values".into(),
        _ => {}
    }
    if let Some((head, list)) = text.split_once("expected one of ") {
        let names: Vec<String> = list.split(", ").map(|n| format!("`{n}`")).collect();
        return format!("{head}expected one of {}", names.join(", "));
    }
    text.to_string()
}
