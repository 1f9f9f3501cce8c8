//! The NAS-Bench-201 text format, `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.

use std::fmt;
use std::str::FromStr;

use super::{EDGES, FORMAT, NODES, Nb201Arch, Nb201Op, edge_index};
use crate::common::string_serde;
use crate::error::{ParseError, ParseErrorKind};
use crate::text::{Cursor, lookup};

impl fmt::Display for Nb201Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for to in 1..NODES {
            if to > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..to {
                write!(f, "{}~{}|", self.edge(to, from), from)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Nb201Arch {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut c = Cursor::new(s, FORMAT);
        c.non_empty()?;
        c.skip_ws();
        let mut edges = [Nb201Op::None; EDGES];
        for to in 1..NODES {
            if to > 1 {
                c.expect_char('+').map_err(|e| {
                    if c.at_end() {
                        c.error(ParseErrorKind::WrongCount {
                            what: "nodes after the input".into(),
                            expected: NODES - 1,
                            found: to - 1,
                        })
                    } else {
                        e
                    }
                })?;
            }
            c.expect_char('|')?;
            let mut count = 0;
            while matches!(c.peek(), Some(ch) if ch.is_ascii_alphanumeric() || ch == '_') {
                let (name, pos) = c.ident()?;
                let op = lookup(FORMAT, &Nb201Op::table(), name, pos)?;
                c.expect_char('~')?;
                let (from, fpos) = c.number()?;
                if from >= to {
                    return Err(c.error_at(
                        ParseErrorKind::EdgeFromLaterNode { from, to },
                        fpos,
                        &from.to_string(),
                    ));
                }
                if from != count {
                    return Err(c.error_at(
                        ParseErrorKind::Invalid {
                            reason: format!(
                                "the edges into node {to} must be listed from node 0 upwards; expected `~{count}` here"
                            ),
                        },
                        fpos,
                        &from.to_string(),
                    ));
                }
                edges[edge_index(to, from)] = op;
                count += 1;
                c.expect_char('|')?;
            }
            if count != to {
                return Err(c.error(ParseErrorKind::WrongCount {
                    what: format!("edges into node {to}"),
                    expected: to,
                    found: count,
                }));
            }
        }
        if c.peek() == Some('+') {
            return Err(c.error(ParseErrorKind::WrongCount {
                what: "nodes after the input".into(),
                expected: NODES - 1,
                found: NODES - 1 + c.rest().matches('+').count(),
            }));
        }
        c.finish()?;
        Ok(Nb201Arch { edges })
    }
}

string_serde!(Nb201Arch);
