//! A small cursor used by the architecture-string parsers of this crate.
//!
//! It is public so that custom spaces can write parsers with the same error reporting
//! (byte positions and offending tokens) as the built-in ones.

use crate::error::{ParseError, ParseErrorKind};

/// A position in an input string, with helpers that produce [`ParseError`]s.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    input: &'a str,
    pos: usize,
    format: &'static str,
}

impl<'a> Cursor<'a> {
    /// Starts at the beginning of `input`; `format` names the format in error messages.
    pub fn new(input: &'a str, format: &'static str) -> Self {
        Self {
            input,
            pos: 0,
            format,
        }
    }

    /// Fails with [`ParseErrorKind::Empty`] if the input holds only whitespace.
    pub fn non_empty(&self) -> Result<(), ParseError> {
        if self.input.trim().is_empty() {
            Err(ParseError::new(self.format, ParseErrorKind::Empty, 0, ""))
        } else {
            Ok(())
        }
    }

    /// The current byte offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    /// True at the end of the input.
    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Skips spaces, tabs and newlines.
    pub fn skip_ws(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    /// The next character without consuming it.
    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The token at the current position, for error messages: the run of characters up to the
    /// next delimiter (or a single delimiter character).
    pub fn token_here(&self) -> String {
        token_at(self.rest())
    }

    /// An error of kind `kind` at the current position, naming the token found there.
    pub fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.format, kind, self.pos, self.token_here())
    }

    /// An error at an explicit position and token.
    pub fn error_at(&self, kind: ParseErrorKind, pos: usize, token: &str) -> ParseError {
        ParseError::new(self.format, kind, pos, token)
    }

    /// Consumes `c` or fails with [`ParseErrorKind::Expected`].
    pub fn expect_char(&mut self, c: char) -> Result<(), ParseError> {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(ParseErrorKind::Expected {
                expected: format!("`{c}`"),
            }))
        }
    }

    /// Consumes `c` if it is next.
    pub fn eat_char(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes the literal `s` or fails with [`ParseErrorKind::Expected`].
    pub fn expect_str(&mut self, s: &str) -> Result<(), ParseError> {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            Ok(())
        } else {
            Err(self.error(ParseErrorKind::Expected {
                expected: format!("`{s}`"),
            }))
        }
    }

    /// Consumes the literal `s` if it is next.
    pub fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Reads an identifier (`[A-Za-z0-9_]+`), returning it and its start offset.
    pub fn ident(&mut self) -> Result<(&'a str, usize), ParseError> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error(ParseErrorKind::Expected {
                expected: "a name".into(),
            }));
        }
        self.pos += len;
        Ok((&self.input[start..start + len], start))
    }

    /// Reads a decimal unsigned integer, returning it and its start offset.
    pub fn number(&mut self) -> Result<(usize, usize), ParseError> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error(ParseErrorKind::Expected {
                expected: "a number".into(),
            }));
        }
        let text = &self.input[start..start + len];
        let value = text.parse::<usize>().map_err(|e| {
            self.error_at(
                ParseErrorKind::InvalidNumber {
                    reason: e.to_string(),
                },
                start,
                text,
            )
        })?;
        self.pos += len;
        Ok((value, start))
    }

    /// Reads a quoted string (`'...'` or `"..."`), returning its content and the offset of the
    /// opening quote.
    pub fn quoted(&mut self) -> Result<(&'a str, usize), ParseError> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => {
                return Err(self.error(ParseErrorKind::Expected {
                    expected: "a quoted name".into(),
                }));
            }
        };
        let body = &self.input[start + 1..];
        match body.find(quote) {
            Some(end) => {
                self.pos = start + 1 + end + 1;
                Ok((&body[..end], start))
            }
            None => Err(self.error_at(ParseErrorKind::Unbalanced { bracket: quote }, start, "")),
        }
    }

    /// Fails with [`ParseErrorKind::TrailingInput`] unless only whitespace is left.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        self.skip_ws();
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error(ParseErrorKind::TrailingInput))
        }
    }

    /// Checks that every bracket of `pairs` (e.g. `&[('(', ')'), ('[', ']')]`) in the input is
    /// balanced and properly nested, ignoring quoted text, and reports the first offending one.
    /// Parsers call this first so that a missing bracket is reported as such, not as a
    /// confusing "expected" error somewhere later.
    pub fn check_brackets(&self, pairs: &[(char, char)]) -> Result<(), ParseError> {
        let mut stack: Vec<(char, usize)> = Vec::new();
        let mut quote: Option<(char, usize)> = None;
        for (i, c) in self.input.char_indices() {
            if let Some((q, _)) = quote {
                if c == q {
                    quote = None;
                }
                continue;
            }
            if c == '\'' || c == '"' {
                quote = Some((c, i));
            } else if pairs.iter().any(|&(o, _)| o == c) {
                stack.push((c, i));
            } else if let Some(&(open, _)) = pairs.iter().find(|&&(_, cl)| cl == c) {
                match stack.pop() {
                    Some((o, _)) if o == open => {}
                    Some((o, at)) => {
                        return Err(self.error_at(
                            ParseErrorKind::Unbalanced { bracket: o },
                            at,
                            &o.to_string(),
                        ));
                    }
                    None => {
                        return Err(self.error_at(
                            ParseErrorKind::Unbalanced { bracket: c },
                            i,
                            &c.to_string(),
                        ));
                    }
                }
            }
        }
        if let Some((q, at)) = quote {
            return Err(self.error_at(
                ParseErrorKind::Unbalanced { bracket: q },
                at,
                &q.to_string(),
            ));
        }
        if let Some((o, at)) = stack.pop() {
            return Err(self.error_at(
                ParseErrorKind::Unbalanced { bracket: o },
                at,
                &o.to_string(),
            ));
        }
        Ok(())
    }
}

fn token_at(rest: &str) -> String {
    let mut chars = rest.chars();
    match chars.next() {
        None => String::new(),
        Some(c) if !(c.is_alphanumeric() || c == '_') => c.to_string(),
        Some(_) => rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Finds `name` in `names` (exact match) or returns an [`ParseErrorKind::UnknownOp`] error at
/// `pos`, listing the known names.
pub fn lookup<T: Copy>(
    format: &'static str,
    table: &[(&str, T)],
    name: &str,
    pos: usize,
) -> Result<T, ParseError> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, v)| v)
        .ok_or_else(|| {
            ParseError::new(
                format,
                ParseErrorKind::UnknownOp {
                    known: table.iter().map(|(n, _)| n.to_string()).collect(),
                },
                pos,
                name,
            )
        })
}
