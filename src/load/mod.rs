//! YAML text -> raw types that keep positions. Nothing here knows what a
//! valid runbook is; it only knows what a well-formed one looks like.

pub mod ansible;
pub mod inventory;
pub mod runbook;
pub mod schema_check;
pub mod source;
pub mod span;
pub mod ssh_config;
pub mod structure;
mod syntax;

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

/// The most YAML nodes (scalars, lists and mappings, as written) one file
/// may hold: a generated 20,000-step runbook has about 250,000, and a file
/// at the size limit can reach this only by being degenerate. Aliases are
/// bounded separately (the parser's replay limit), so raising this does
/// not let an alias bomb through.
pub const DEFAULT_MAX_NODES: usize = 2_000_000;

/// What all aliases of a file may expand to, in parser events: far more
/// than shared probes or defaults need, little enough that an alias bomb
/// under `vars` is refused within a few megabytes.
const MAX_REPLAYED_EVENTS: usize = 250_000;

/// The environment variable that raises [`DEFAULT_MAX_NODES`].
pub const MAX_NODES_VAR: &str = "RUNBOOK_MAX_YAML_NODES";

/// Marks every message of a refused document, so that no second pass
/// reads it again.
const REFUSED: &str = "refusing to read it";

fn max_nodes() -> usize {
    std::env::var(MAX_NODES_VAR)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_MAX_NODES)
}

/// Whether `message` is a refusal of the whole document for its size.
#[must_use]
pub fn is_refusal(message: &str) -> bool {
    message.ends_with(REFUSED)
}

pub fn parse<T: DeserializeOwned>(source: &Source) -> Result<T, Box<Diagnostic>> {
    parse_with(source, false)
}

/// `legacy_octal_numbers`: YAML 1.1's `0750` is octal, as Ansible reads it.
/// The budgets against oversized documents and alias bombs hold for every
/// file, runbook or inventory.
pub fn parse_with<T: DeserializeOwned>(
    source: &Source,
    legacy_octal_numbers: bool,
) -> Result<T, Box<Diagnostic>> {
    let nodes = max_nodes();
    let options = serde_saphyr::options! {
        with_snippet: false,
        legacy_octal_numbers: legacy_octal_numbers,
        budget: serde_saphyr::budget! {
            max_nodes: nodes,
            // Every node is at most two events (start and end).
            max_events: nodes.saturating_mul(2).saturating_add(16),
            max_recorded_anchor_events: MAX_REPLAYED_EVENTS,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
        },
    };
    serde_saphyr::from_str_with_options(&source.text, options).map_err(|e| {
        let pos = e.location().map_or(Pos::new(1, 1), |l| {
            Pos::new(
                u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
                u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
            )
        });
        let message = syntax_message(&e, nodes);
        let (pos, problem) = syntax::explain(&source.text, pos, &message).unwrap_or((
            pos,
            Problem::Syntax {
                suggestion: unknown_field_suggestion(&e),
                message,
            },
        ));
        Box::new(Diagnostic::error(&source.path, pos, problem))
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
fn syntax_message(e: &serde_saphyr::Error, max_nodes: usize) -> String {
    use serde_saphyr::budget::BudgetBreach;
    let mut inner = e;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    match inner {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. },
            ..
        } => {
            return format!(
                "the document has more than {max_nodes} YAML nodes (values, lists and \
                 mappings), the limit for one file; split it, or raise the limit with the \
                 environment variable {MAX_NODES_VAR}; {REFUSED}"
            );
        }
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Depth { depth },
            ..
        } => {
            return format!("the document nests lists and mappings {depth} levels deep; {REFUSED}");
        }
        serde_saphyr::Error::Budget { .. }
        | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => {
            return format!(
                "the document's aliases expand too far (`*name` repeats what `&name` \
                 marks); write the values out; {REFUSED}"
            );
        }
        _ => {}
    }
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
