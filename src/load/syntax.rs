//! Plain words for the YAML parser's two most common complaints, tabs and
//! indentation, which it reports in its own terms and often a line early.

use super::Pos;
use crate::diagnostic::Problem;

/// A better position and problem for the parser's `message` at `pos`, when
/// it is about tabs or indentation.
#[must_use]
pub fn explain(text: &str, pos: Pos, message: &str) -> Option<(Pos, Problem)> {
    let lines: Vec<&str> = text.lines().collect();
    if message.contains("tab") {
        return tab(&lines, pos);
    }
    let about_indentation = [
        "did not find expected key",
        "did not find expected '-' indicator",
        "mapping values are not allowed in this context",
    ]
    .iter()
    .any(|m| message.contains(m));
    if about_indentation {
        return indentation(&lines, pos);
    }
    None
}

/// The first tab indenting a line at or after the parser's line: for a
/// tab on a continuation line the parser points at the line before.
fn tab(lines: &[&str], pos: Pos) -> Option<(Pos, Problem)> {
    let first = pos.line.saturating_sub(1) as usize;
    let (index, column) = lines.iter().enumerate().skip(first).find_map(|(i, line)| {
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        indent.find('\t').map(|col| (i, col))
    })?;
    let hint = "replace the tab with spaces (most editors can insert spaces when Tab is pressed)";
    Some((
        Pos::new(line_number(index), line_number(column)),
        Problem::Tab { hint: hint.into() },
    ))
}

/// A block the offending line could belong to: a mapping key or a list item.
struct Block {
    line: usize,
    column: usize,
    name: Option<String>,
}

impl Block {
    fn describe(&self) -> String {
        let what = self
            .name
            .as_ref()
            .map_or_else(|| "the list item".to_string(), |n| format!("`{n}`"));
        format!("{what} on line {} (column {})", self.line, self.column)
    }
}

/// The key a line starts with, without the `- ` of a list item.
fn key_of(content: &str) -> Option<String> {
    let key = content
        .char_indices()
        .find(|&(i, c)| {
            c == ':'
                && content[i + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, _)| &content[..i])?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty() && !key.contains(['{', '[', '#'])).then(|| key.to_string())
}

/// The blocks a line starts: a key at its indentation, or a list item at
/// its dash and the key written after the dash. Columns are 1-based.
fn blocks(line: &str, number: usize) -> Vec<(Block, bool)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let content = &line[indent..];
    let mut out = Vec::new();
    if let Some(rest) = content.strip_prefix('-')
        && (rest.is_empty() || rest.starts_with(' '))
    {
        let inner = rest.trim_start_matches(' ');
        if let Some(key) = key_of(inner) {
            let column = indent + 1 + (content.len() - inner.len());
            out.push((
                Block {
                    line: number,
                    column,
                    name: Some(key),
                },
                false,
            ));
        }
        out.push((
            Block {
                line: number,
                column: indent + 1,
                name: None,
            },
            true,
        ));
    } else if let Some(key) = key_of(content) {
        out.push((
            Block {
                line: number,
                column: indent + 1,
                name: Some(key),
            },
            false,
        ));
    }
    out
}

fn indentation(lines: &[&str], pos: Pos) -> Option<(Pos, Problem)> {
    let index = pos.line.checked_sub(1)? as usize;
    let line = *lines.get(index)?;
    let own = blocks(line, index + 1);
    // The line's own block, the one that should line up with its siblings.
    let (me, is_item) = own.into_iter().last()?;
    // The blocks still open above it, innermost first.
    let mut open: Vec<(Block, bool)> = Vec::new();
    for (i, above) in lines[..index].iter().enumerate().rev() {
        let trimmed = above.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || above.starts_with('\t') {
            continue;
        }
        for (block, item) in blocks(above, i + 1) {
            if open.last().is_none_or(|(b, _)| block.column < b.column) {
                open.push((block, item));
            }
        }
        if open.last().is_some_and(|(b, _)| b.column == 1) {
            break;
        }
    }
    let nearest = open
        .iter()
        .find(|(_, item)| *item == is_item)
        .map(|(b, _)| b)?;
    let column = me.column;
    let relation = if column > nearest.column {
        format!("more than {}", nearest.describe())
    } else if column < nearest.column {
        match open.iter().find(|(b, _)| b.column <= column) {
            // It lines up with an outer block: the parser's complaint is
            // about something else.
            Some((outer, item)) if outer.column == column && *item == is_item => return None,
            Some((outer, item)) if *item == is_item => format!(
                "less than {} and more than {}",
                nearest.describe(),
                outer.describe()
            ),
            _ => format!("less than {}", nearest.describe()),
        }
    } else {
        return None;
    };
    let subject = me
        .name
        .as_ref()
        .filter(|_| !is_item)
        .map_or_else(|| "this list item".to_string(), |n| format!("`{n}`"));
    let hint =
        format!("this line is indented {relation}; indent it like the lines it belongs with");
    Some((
        Pos::new(pos.line, u32::try_from(column).unwrap_or(pos.column)),
        Problem::Indentation {
            subject: format!("{subject} at column {column}"),
            hint,
        },
    ))
}

fn line_number(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(text: &str, line: u32, message: &str) -> Option<(Pos, String)> {
        explain(text, Pos::new(line, 1), message).map(|(p, problem)| {
            (
                p,
                format!("{problem} / {}", problem.hint().unwrap_or_default()),
            )
        })
    }

    #[test]
    fn a_key_between_two_levels_names_both() {
        let text = "steps:\n  - id: a\n    check:\n      command: x\n     timeout: 5s\n";
        let (pos, text) = hint(text, 5, "did not find expected key").unwrap();
        assert_eq!(pos, Pos::new(5, 6));
        assert!(
            text.contains("less than `command` on line 4 (column 7) and more than `check` on line 3 (column 5)"),
            "{text}"
        );
    }

    #[test]
    fn a_well_indented_line_gets_no_indentation_hint() {
        let text = "a:\n  b: 1\n  c: x: y\n";
        assert_eq!(
            hint(text, 3, "mapping values are not allowed in this context"),
            None
        );
    }
}
