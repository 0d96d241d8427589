//! Where an interpolated value lands in a POSIX shell command.
//!
//! A shell-quoted value is one inert word only where the shell is reading
//! plain words: inside `"…"` its single quotes are literal and `$(…)` in it
//! runs; inside `'…'` it closes the quotes; in a heredoc or a comment a
//! newline in it starts a new command. The scanner follows the literal text
//! of a template, so that validation can refuse an interpolation anywhere
//! but in a plain word.

/// Where the next character of the command would be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A plain word, where a quoted value is one inert argument.
    Word,
    SingleQuotes,
    DoubleQuotes,
    Backticks,
    Arithmetic,
    Heredoc,
    Comment,
    /// Right after a `\`, which would escape the value's opening quote.
    Backslash,
    /// Right after a `$`, which would make `$'…'` of the value's quotes.
    Dollar,
    /// After a `#` that follows a `{% … %}`: whether it starts a comment
    /// depends on what the branches wrote, so nothing after it is known.
    Unknown,
    /// Inside `${ … }`, where bash evaluates a subscript or an offset as
    /// arithmetic, running any `$( )` in the value's text.
    Parameter,
    /// After text that POSIX shells read differently (`\'` in `$'…'`, `'`
    /// in `"${ }"`, a `case` inside `$( )`): nothing after it is known.
    Ambiguous,
}

impl Context {
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Word => "a plain word",
            Self::SingleQuotes => "single quotes",
            Self::DoubleQuotes => "double quotes",
            Self::Backticks => "backticks",
            Self::Arithmetic => "an arithmetic expansion `$(( ))`",
            Self::Heredoc => "a heredoc",
            Self::Comment => "a comment",
            Self::Backslash => "an escape: right after `\\`",
            Self::Dollar => "an expansion: right after `$`",
            Self::Unknown => "a line whose quoting depends on a `{% %}` branch",
            Self::Parameter => "a parameter expansion `${ }`",
            Self::Ambiguous => "text that POSIX shells read differently",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Commands: the top level or a `$( … )`, with its open parentheses.
    Code(u32),
    Single,
    /// `$'…'`: bash and the POSIX of 2024 read `\'` in it as a quote.
    AnsiC,
    Double,
    Backtick,
    /// `$(( … ))` and bash's `(( … ))`, with open parentheses.
    Arithmetic(u32),
    /// bash's `$[ … ]`, with open brackets.
    Brackets(u32),
    /// `${ … }`; `true` inside double quotes.
    Parameter(bool),
    Comment,
    Unknown,
    Ambiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordStart {
    Yes,
    No,
    /// Right after a `{% … %}`: the branches decide.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    /// The depth of the frame it was written in: its body starts at a
    /// newline of that frame, not at one inside a `$( )` opened after it.
    depth: usize,
}

#[derive(Debug, Clone)]
pub struct Scanner {
    stack: Vec<Frame>,
    escaped: bool,
    dollar: bool,
    word_start: WordStart,
    /// `<<WORD` seen: the delimiter being read, and whether it has started.
    delimiter: Option<(Heredoc, bool)>,
    /// Heredocs whose bodies start at the next newline.
    pending: Vec<Heredoc>,
    /// The heredoc whose body is being read, with the current line.
    body: Option<(Heredoc, String)>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            stack: vec![Frame::Code(0)],
            escaped: false,
            dollar: false,
            word_start: WordStart::Yes,
            delimiter: None,
            pending: Vec::new(),
            body: None,
        }
    }
}

/// The shell's own separators only: a no-break space or a `\r` is part of
/// a word (a heredoc's delimiter included).
fn ends_word(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

impl Scanner {
    /// Where a value interpolated now would land.
    #[must_use]
    pub fn context(&self) -> Context {
        if self.body.is_some() {
            return Context::Heredoc;
        }
        // A backquoted command is read twice, its backslashes first: a
        // value's `"a\\"` becomes `"a\"` even inside a `$( )` in it.
        if self.stack.contains(&Frame::Backtick) {
            return Context::Backticks;
        }
        match self.stack.last() {
            _ if self.escaped => Context::Backslash,
            Some(Frame::Single | Frame::AnsiC) => Context::SingleQuotes,
            Some(Frame::Double) => Context::DoubleQuotes,
            Some(Frame::Backtick) => Context::Backticks,
            Some(Frame::Arithmetic(_) | Frame::Brackets(_)) => Context::Arithmetic,
            Some(Frame::Parameter(_)) => Context::Parameter,
            Some(Frame::Ambiguous) => Context::Ambiguous,
            Some(Frame::Comment) => Context::Comment,
            Some(Frame::Unknown) => Context::Unknown,
            Some(Frame::Code(_)) | None if self.dollar => Context::Dollar,
            Some(Frame::Code(_)) | None => Context::Word,
        }
    }

    /// Whether a `{% … %}` may stand here: only at the top level, outside
    /// any quotes or heredoc, so that every branch starts and ends in the
    /// same state and the linear scan holds for every path through them.
    #[must_use]
    pub fn at_rest(&self) -> bool {
        self.stack == [Frame::Code(0)]
            && !self.escaped
            && !self.dollar
            && self.delimiter.is_none()
            && self.pending.is_empty()
            && self.body.is_none()
    }

    /// A value was written: a word whose text the scanner does not know.
    /// `raw` text may end in anything, so a `#` after it is not known to
    /// start a word or not.
    pub fn value(&mut self, raw: bool) {
        self.escaped = false;
        self.dollar = false;
        self.word_start = if raw {
            WordStart::Unknown
        } else {
            WordStart::No
        };
        if let Some((_, started)) = &mut self.delimiter {
            *started = true;
        }
    }

    /// A `{% … %}` was passed.
    pub fn block(&mut self) {
        self.word_start = WordStart::Unknown;
    }

    pub fn feed(&mut self, text: &str) {
        // Line continuations go before anything else is read: `a \⏎#` is a
        // comment, `$\⏎(` is `$(`, `x\⏎EOF` ends no heredoc. (In single
        // quotes, a comment or a quoted heredoc, they are text: dropping
        // them there only ever makes the scan stricter.)
        let mut chars: Vec<char> = Vec::with_capacity(text.len());
        let mut input = text.chars().peekable();
        while let Some(c) = input.next() {
            match (c, input.peek()) {
                ('\\', Some('\n')) => {
                    input.next();
                }
                ('\\', Some(&escaped)) => {
                    chars.extend([c, escaped]);
                    input.next();
                }
                _ => chars.push(c),
            }
        }
        let mut i = 0;
        while i < chars.len() {
            i += self.step(&chars[i..]);
        }
    }

    /// Reads the first character of `rest` (the rest is lookahead);
    /// returns how many characters were consumed.
    fn step(&mut self, rest: &[char]) -> usize {
        let (c, next, after) = (rest[0], rest.get(1).copied(), rest.get(2).copied());
        if let Some((heredoc, line)) = &mut self.body {
            if c == '\n' {
                let text = if heredoc.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if text == heredoc.delimiter {
                    self.body = None;
                    self.start_body();
                } else {
                    line.clear();
                }
            } else {
                line.push(c);
            }
            return 1;
        }
        if self.escaped {
            self.escaped = false;
            self.word_start = WordStart::No;
            return 1;
        }
        let top = *self.stack.last().unwrap_or(&Frame::Code(0));
        let dollar = std::mem::take(&mut self.dollar);
        match top {
            Frame::Code(parens) => return self.code(rest, parens, dollar),
            Frame::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
            }
            // dash reads `$'a\'` as `$` then `'a\'`: the shells disagree
            // on where the string ends.
            Frame::AnsiC => match (c, next) {
                ('\\', Some('\'')) => self.stack.push(Frame::Ambiguous),
                ('\\', _) => return 2,
                ('\'', _) => {
                    self.stack.pop();
                }
                _ => {}
            },
            Frame::Double | Frame::Backtick | Frame::Parameter(_) => match c {
                '\\' => self.escaped = true,
                '"' if top == Frame::Double => {
                    self.stack.pop();
                }
                '"' if top != Frame::Backtick => self.stack.push(Frame::Double),
                '`' if top == Frame::Backtick => {
                    self.stack.pop();
                }
                '`' => self.stack.push(Frame::Backtick),
                '}' if matches!(top, Frame::Parameter(_)) => {
                    self.stack.pop();
                }
                '\'' if top == Frame::Parameter(false) => self.stack.push(Frame::Single),
                // Literal in `"${x:-'…'}"` for dash, a quote for bash.
                '\'' if top == Frame::Parameter(true) => self.stack.push(Frame::Ambiguous),
                '$' => return self.expansion(next, after, top == Frame::Parameter(false)),
                _ => {}
            },
            // bash skips a `))` in quotes inside `$(( ))`, dash does not.
            Frame::Arithmetic(_) | Frame::Brackets(_) if matches!(c, '"' | '\'' | '`' | '\\') => {
                self.stack.push(Frame::Ambiguous);
            }
            Frame::Arithmetic(depth) => match c {
                '(' => self.set_top(Frame::Arithmetic(depth + 1)),
                ')' if depth == 0 && next == Some(')') => {
                    self.stack.pop();
                    return 2;
                }
                ')' => self.set_top(Frame::Arithmetic(depth.saturating_sub(1))),
                _ => {}
            },
            Frame::Brackets(depth) => match c {
                '[' => self.set_top(Frame::Brackets(depth + 1)),
                ']' if depth == 0 => {
                    self.stack.pop();
                }
                ']' => self.set_top(Frame::Brackets(depth - 1)),
                _ => {}
            },
            Frame::Comment => {
                if c == '\n' {
                    self.stack.pop();
                    self.word_start = WordStart::Yes;
                    self.start_body();
                }
            }
            Frame::Unknown | Frame::Ambiguous => {}
        }
        1
    }

    /// At a `$` that opens an expansion in a frame whose quotes are
    /// `"…"`-like; `ansi_c`: whether `$'` opens a string here.
    fn expansion(&mut self, next: Option<char>, after: Option<char>, ansi_c: bool) -> usize {
        let frame = match (next, after) {
            (Some('('), Some('(')) => {
                self.stack.push(Frame::Arithmetic(0));
                return 3;
            }
            (Some('('), _) => {
                self.word_start = WordStart::Yes;
                Frame::Code(0)
            }
            // A backquoted command ends at the next backquote, whatever
            // it holds.
            (Some('[' | '{'), _) if self.stack.last() == Some(&Frame::Backtick) => return 1,
            (Some('['), _) => Frame::Brackets(0),
            (Some('{'), _) => Frame::Parameter(matches!(
                self.stack.last(),
                Some(Frame::Double | Frame::Parameter(true))
            )),
            (Some('\''), _) if ansi_c => Frame::AnsiC,
            _ => return 1,
        };
        self.stack.push(frame);
        2
    }

    fn code(&mut self, rest: &[char], parens: u32, dollar: bool) -> usize {
        let (c, next, after) = (rest[0], rest.get(1).copied(), rest.get(2).copied());
        if let Some((heredoc, started)) = &mut self.delimiter {
            if !*started && matches!(c, ' ' | '\t') {
                return 1;
            }
            if !ends_word(c) {
                *started = true;
                if !matches!(c, '\'' | '"' | '\\') {
                    heredoc.delimiter.push(c);
                }
                return 1;
            }
            if let Some((heredoc, _)) = self.delimiter.take() {
                self.pending.push(heredoc);
            }
        }
        let word_start = std::mem::replace(&mut self.word_start, WordStart::No);
        match c {
            '\\' => self.escaped = true,
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '`' => self.stack.push(Frame::Backtick),
            '#' => match word_start {
                WordStart::Yes => self.stack.push(Frame::Comment),
                WordStart::Unknown => self.stack.push(Frame::Unknown),
                WordStart::No => {}
            },
            '$' if next == Some('(') || (!dollar && matches!(next, Some('[' | '{' | '\''))) => {
                return self.expansion(next, after, true);
            }
            '$' if !dollar => self.dollar = true,
            // bash's arithmetic command, also `for ((…))`.
            '(' if next == Some('(') && word_start != WordStart::No => {
                self.stack.push(Frame::Arithmetic(0));
                return 2;
            }
            // In `$( )`, a `case` pattern's `)` would look like its end.
            'c' if word_start != WordStart::No
                && self.stack.len() > 1
                && rest.starts_with(&['c', 'a', 's', 'e'])
                && rest.get(4).is_none_or(|&c| ends_word(c)) =>
            {
                self.stack.push(Frame::Ambiguous);
            }
            '(' => {
                self.set_top(Frame::Code(parens + 1));
                self.word_start = WordStart::Yes;
            }
            ')' if parens == 0 && self.stack.len() > 1 => {
                // A heredoc whose body would start after its `$( )` closed:
                // bash reads one there, dash none.
                let orphan = self.pending.iter().any(|h| h.depth == self.stack.len());
                self.stack.pop();
                if orphan {
                    self.stack.push(Frame::Ambiguous);
                }
            }
            ')' => {
                self.set_top(Frame::Code(parens.saturating_sub(1)));
                self.word_start = WordStart::Yes;
            }
            // `<<<` is a here-string: a word follows, not a heredoc.
            '<' if next == Some('<') && after == Some('<') => {
                self.word_start = WordStart::Yes;
                return 3;
            }
            '<' if next == Some('<') => {
                let strip_tabs = after == Some('-');
                self.delimiter = Some((
                    Heredoc {
                        delimiter: String::new(),
                        strip_tabs,
                        depth: self.stack.len(),
                    },
                    false,
                ));
                return if strip_tabs { 3 } else { 2 };
            }
            '\n' => {
                self.word_start = WordStart::Yes;
                self.start_body();
            }
            c if ends_word(c) => self.word_start = WordStart::Yes,
            _ => {}
        }
        1
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            *top = frame;
        }
    }

    /// At a newline: the next pending heredoc's body begins.
    fn start_body(&mut self) {
        if self
            .pending
            .first()
            .is_some_and(|h| h.depth == self.stack.len())
        {
            self.body = Some((self.pending.remove(0), String::new()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Context, Scanner};

    fn after(text: &str) -> Context {
        let mut s = Scanner::default();
        s.feed(text);
        s.context()
    }

    #[test]
    fn finds_where_a_value_would_land() {
        for (text, expected) in [
            ("echo ", Context::Word),
            ("echo --opt=", Context::Word),
            ("curl http://", Context::Word),
            ("echo 'a' \"b\" `c` ", Context::Word),
            ("echo \"x ", Context::DoubleQuotes),
            ("echo 'x ", Context::SingleQuotes),
            ("echo \"it's ", Context::DoubleQuotes),
            ("echo 'say \"", Context::SingleQuotes),
            ("echo `cat ", Context::Backticks),
            ("echo \"$(cat ", Context::Word),
            ("echo \"$(cat a)", Context::DoubleQuotes),
            ("echo $(cat a) ", Context::Word),
            ("echo $(( 1 + ", Context::Arithmetic),
            ("echo $(( (1) + 2 )) ", Context::Word),
            ("echo \\", Context::Backslash),
            ("echo \\\\", Context::Word),
            ("echo $", Context::Dollar),
            ("echo ok # note ", Context::Comment),
            ("echo a#b ", Context::Word),
            ("echo ok # note\necho ", Context::Word),
            ("cat <<EOF\nline ", Context::Heredoc),
            ("cat <<'EOF' > f\n", Context::Heredoc),
            ("cat <<-EOF\n\tx\n\tEOF\necho ", Context::Word),
            ("cat <<EOF\nx\nEOF\necho ", Context::Word),
            ("cat <<A <<B\nA\nb ", Context::Heredoc),
            ("cat <<A <<B\nA\nB\necho ", Context::Word),
            ("echo \"a\\\" ", Context::DoubleQuotes),
            ("cat <<< ", Context::Word),
            // bash (the `sh` of Red Hat hosts) reparses these as code.
            ("echo $'a\\' ", Context::Ambiguous),
            ("echo $'a\\'' ", Context::Ambiguous),
            ("echo $'a' ", Context::Word),
            ("echo $'a\\\\' ", Context::Word),
            ("echo $'a ", Context::SingleQuotes),
            ("echo \"$'\" ", Context::Word),
            ("echo $$'a' ", Context::Word),
            ("echo $[ 1 + ", Context::Arithmetic),
            ("echo $[ a[1] ] ", Context::Word),
            ("(( x = ", Context::Arithmetic),
            ("for (( i = ", Context::Arithmetic),
            ("(( x = 1 )); echo ", Context::Word),
            ("( (echo a) ) ", Context::Word),
            ("echo ${a[", Context::Parameter),
            ("echo ${y:", Context::Parameter),
            ("echo ${x:-", Context::Parameter),
            ("echo \"${x:-", Context::Parameter),
            ("echo ${x:-'}'} ", Context::Word),
            ("echo \"${x:-'}\" ", Context::Ambiguous),
            ("echo \"${x:-a}\" ", Context::Word),
            ("echo ${x:-\"}\"} ", Context::Word),
            ("echo ${x%)} $(echo ", Context::Word),
            ("echo \"$(echo ${x%)}) ", Context::DoubleQuotes),
            ("echo \"$(case a in a) echo \" ", Context::Ambiguous),
            ("echo $(echo case) ", Context::Ambiguous),
            ("case a in a) echo ", Context::Word),
            ("echo $(echo cases) ", Context::Word),
            ("echo `echo ${x` ", Context::Word),
            // The delimiter is `EOF\u{a0}x` for the shell.
            ("cat <<EOF\u{a0}x\nEOF\necho ", Context::Heredoc),
            ("cat <<EOF\rx\nEOF\necho ", Context::Heredoc),
            ("cat <<EOF\u{a0}x\nEOF\u{a0}x\necho ", Context::Word),
            // `x\` joins the `EOF` line: the body goes on.
            ("cat <<EOF\nx\\\nEOF\necho ", Context::Heredoc),
            ("cat <<EOF\nx\\\nEOF\nEOF\necho ", Context::Word),
            ("cat <<EOF\nx\\\\\nEOF\necho ", Context::Word),
            ("cat <<'EOF'\nx\\\nEOF\necho ", Context::Heredoc),
            ("cat <<\\EOF\nx\\\nEOF\necho ", Context::Heredoc),
            // The body starts at the first newline after `true)`.
            ("cat <<EOF; x=$(\nEOF\ntrue)\necho ", Context::Heredoc),
            ("cat <<EOF; x=$(\nEOF\ntrue)\nEOF\necho ", Context::Word),
            ("x=$(cat <<EOF\nb\nEOF\n) ", Context::Word),
            ("x=$(cat <<EOF\nb\n", Context::Heredoc),
            ("x=$(cat <<EOF) ", Context::Ambiguous),
            ("echo $(( \")) \" )) ", Context::Ambiguous),
            ("echo $(( $(echo 1) + 2 )) ", Context::Word),
            ("echo `echo $(echo ", Context::Backticks),
            ("echo `echo $(echo a)` ", Context::Word),
            // Line continuations vanish.
            ("echo a \\\n#", Context::Comment),
            ("echo a\\\n#", Context::Word),
            ("echo $\\\n'a\\' ", Context::Ambiguous),
            ("echo $\\\n", Context::Dollar),
            ("echo \\\\\n#", Context::Comment),
            ("echo 'a\\\n", Context::SingleQuotes),
            ("echo # a\\\necho ", Context::Comment),
            ("echo \"$\\\n(echo \" ", Context::DoubleQuotes),
            ("echo $(\\\n( 1 + ", Context::Arithmetic),
            ("echo $(ca\\\nse ", Context::Ambiguous),
        ] {
            assert_eq!(after(text), expected, "{text:?}");
        }
    }

    #[test]
    fn a_block_is_at_rest_only_outside_quotes() {
        let mut s = Scanner::default();
        s.feed("echo a ");
        assert!(s.at_rest());
        s.feed("\"");
        assert!(!s.at_rest());
        let mut s = Scanner::default();
        s.block();
        s.feed("#'");
        assert_eq!(s.context(), Context::Unknown);
        s.feed("\n");
        assert_eq!(s.context(), Context::Unknown, "never known again");
    }
}
