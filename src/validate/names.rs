//! Identifier rules and duplicate detection.

use std::collections::HashMap;

use super::Sink;
use crate::diagnostic::Problem;
use crate::load::Sp;

#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Host and group names as real inventories write them: short names,
/// FQDNs, IPv4 and IPv6 addresses. Never a path separator, whitespace or a
/// control character, since names become log file names and terminal
/// output; never a leading `-` or `.` (an option, `..`).
#[must_use]
pub fn is_valid_host_name(name: &str) -> bool {
    !name.starts_with(['-', '.'])
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

pub fn check_name(sink: &mut Sink<'_>, what: &'static str, name: &Sp<String>) {
    if !is_valid_name(name) {
        sink.error(
            name.pos,
            Problem::InvalidName {
                what,
                name: name.value.clone(),
            },
        );
    }
}

/// Assigns indices to names, reporting every repeat against the first.
pub fn index<'a>(
    sink: &mut Sink<'_>,
    what: &'static str,
    names: impl IntoIterator<Item = &'a Sp<String>>,
) -> HashMap<String, usize> {
    let mut seen: HashMap<String, (usize, u32)> = HashMap::new();
    for (i, name) in names.into_iter().enumerate() {
        check_name(sink, what, name);
        if let Some(&(_, first_line)) = seen.get(name.as_str()) {
            sink.error(
                name.pos,
                Problem::Duplicate {
                    what,
                    name: name.value.clone(),
                    first_line,
                },
            );
        } else {
            seen.insert(name.value.clone(), (i, name.pos.line));
        }
    }
    seen.into_iter().map(|(k, (i, _))| (k, i)).collect()
}
