//! Secret masking at the point where text leaves the process.

/// Replaces every secret value with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

pub const MASK: &str = "***";

impl Redactor {
    #[must_use]
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        // A value read from a YAML block scalar ends with a newline that
        // commands print without, or strip.
        let mut secrets: Vec<String> = values
            .into_iter()
            .flat_map(|s| {
                let trimmed = s.trim().to_string();
                [s, trimmed]
            })
            .filter(|s| !s.is_empty())
            .collect();
        let quoted: Vec<String> = secrets
            .iter()
            .filter_map(|s| shlex::try_quote(s).ok().map(|q| q.into_owned()))
            .filter(|q| !secrets.contains(q))
            .collect();
        secrets.extend(quoted);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Masks every byte that belongs to an occurrence of a secret, found in
    /// the original text: masking one secret first could cut another that
    /// overlaps it (`abcdef` then `defghi` in `abcdefghi` left `ghi`).
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let mut hidden: Vec<(usize, usize)> = Vec::new();
        for secret in &self.secrets {
            let step = secret.chars().next().map_or(1, char::len_utf8);
            let mut from = 0;
            while let Some(at) = text.get(from..).and_then(|rest| rest.find(secret.as_str())) {
                hidden.push((from + at, from + at + secret.len()));
                from += at + step;
            }
        }
        if hidden.is_empty() {
            return text.to_string();
        }
        hidden.sort_unstable();
        let mut out = String::with_capacity(text.len());
        // `text[..shown]` is written or masked.
        let mut shown = 0;
        for (i, (start, end)) in hidden.into_iter().enumerate() {
            if i > 0 && start < shown {
                shown = shown.max(end);
                continue;
            }
            out.push_str(&text[shown..start]);
            out.push_str(MASK);
            shown = end;
        }
        out.push_str(&text[shown..]);
        out
    }

    #[must_use]
    pub fn redact_bytes(&self, bytes: &[u8]) -> String {
        self.redact(&String::from_utf8_lossy(bytes))
    }
}

/// JSON printed for a terminal or a pipe: serde_json leaves DEL and the C1
/// controls (U+0080..U+009F, among them U+009B, which some terminals take
/// for the start of an escape sequence) as they are inside strings; here
/// they become `\u00XX` escapes, which every JSON reader decodes to the
/// same text. They can only be inside strings, so nothing else changes.
#[must_use]
pub fn json_text(text: String) -> String {
    let unsafe_char = |c: char| ('\u{7f}'..='\u{9f}').contains(&c);
    if !text.contains(unsafe_char) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Text a host or an inventory wrote, as shown to the operator (terminal,
/// journal, reports): control characters are written escaped (`\u{1b}`),
/// so that output cannot move the cursor, rewrite a line, retitle the
/// window or set the clipboard (OSC 52); so are the bidirectional overrides
/// and isolates (U+202A..U+202E, U+2066..U+2069), which would show a line's
/// characters in another order than they are. Newlines and tabs are kept.
#[must_use]
pub fn printable(text: &str) -> String {
    let hidden = |c: char| {
        (c.is_control() && !matches!(c, '\n' | '\t'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(hidden) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && hidden(c) {
                c.escape_debug().to_string()
            } else if hidden(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `eprintln!` through [`printable`]: for a message that quotes a journal,
/// a host's answer or a file name, which anyone may have written.
macro_rules! eprintln_printable {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::redact::printable(&format!($($arg)*)))
    };
}
pub(crate) use eprintln_printable;

/// `println!` through [`printable`], as [`eprintln_printable`].
macro_rules! println_printable {
    ($($arg:tt)*) => {
        println!("{}", $crate::redact::printable(&format!($($arg)*)))
    };
}
pub(crate) use println_printable;

#[cfg(test)]
mod tests {
    use super::{Redactor, printable};

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(
            printable("a\u{1b}]52;c;eA==\u{7}\u{1b}[2Jb\rc\u{9b}d\n\te"),
            "a\\u{1b}]52;c;eA==\\u{7}\\u{1b}[2Jb\\rc\\u{9b}d\n\te"
        );
        assert_eq!(printable("plain ünïcode"), "plain ünïcode");
        // "step db done" must not show as "step db enod" or hide a part.
        assert_eq!(
            printable("step \u{202e}enod\u{202c} \u{2066}x\u{2069}"),
            "step \\u{202e}enod\\u{202c} \\u{2066}x\\u{2069}"
        );
    }

    #[test]
    fn masks_plain_and_shell_quoted_secrets() {
        let r = Redactor::new(["s3cr3t pass".to_string(), "abc".to_string()]);
        assert_eq!(r.redact("x 's3cr3t pass' y abc"), "x *** y ***");
        assert_eq!(r.redact("s3cr3t pass"), "***");
    }

    #[test]
    fn overlapping_secrets_are_masked_whole() {
        let r = Redactor::new(["abcdef".to_string(), "defghi".to_string()]);
        assert_eq!(r.redact("x abcdefghi y"), "x *** y");
        assert_eq!(r.redact("defghi abcdef"), "*** ***");
        let r = Redactor::new(["aa".to_string(), "é€".to_string()]);
        assert_eq!(r.redact("aaa é€é€ b"), "*** ****** b");
    }

    #[test]
    fn masks_a_secret_without_its_surrounding_whitespace() {
        let r = Redactor::new(["  line one\nline two\n".to_string()]);
        assert_eq!(r.redact("got: line one\nline two."), "got: ***.");
        assert_eq!(r.redact("'line one\nline two'"), "***");
    }
}
