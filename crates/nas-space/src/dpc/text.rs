//! The DPC text format: the branches separated by whitespace, each `{op}<{input}`.

use std::fmt;
use std::str::FromStr;

use super::{DpcArch, DpcBranch, DpcOp, DpcSpace, FORMAT};
use crate::common::{check_item_count, item_done, write_list};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{SearchSpace, TextFormat};

const KNOWN_OPS: [&str; 3] = ["conv_1x1", "sep_atrous_3x3_r{h}x{w}", "spp_{h}x{w}"];

impl fmt::Display for DpcOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpcOp::Conv1x1 => f.write_str("conv_1x1"),
            DpcOp::SepAtrous3x3 { rate_h, rate_w } => {
                write!(f, "sep_atrous_3x3_r{rate_h}x{rate_w}")
            }
            DpcOp::Spp { grid_h, grid_w } => write!(f, "spp_{grid_h}x{grid_w}"),
        }
    }
}

impl FromStr for DpcOp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        DpcOp::from_name(s).ok_or_else(|| unknown_op(s, 0))
    }
}

fn unknown_op(name: &str, pos: usize) -> ParseError {
    ParseError::new(
        FORMAT,
        ParseErrorKind::UnknownOp {
            known: KNOWN_OPS.iter().map(|s| s.to_string()).collect(),
        },
        pos,
        name,
    )
}

impl fmt::Display for DpcArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, ["", " ", ""], &self.branches, |f, b| {
            write!(f, "{}<{}", b.op, b.input)
        })
    }
}

/// The byte range of a parsed branch.
type Span = (usize, usize);

/// Parses any number of branches with any operation parameters; checks that inputs are earlier.
/// Returns each branch with its byte range.
fn parse_branches(s: &str) -> Result<Vec<(DpcBranch, Span)>, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.skip_ws();
    let mut out = Vec::new();
    loop {
        let b = out.len() + 1;
        let (name, start) = c.ident()?;
        let op = DpcOp::from_name(name).ok_or_else(|| unknown_op(name, start))?;
        c.expect_char('<')?;
        let (input, ipos) = c.number()?;
        if input >= b {
            return Err(c.error_at(
                ParseErrorKind::EdgeFromLaterNode { from: input, to: b },
                ipos,
                &input.to_string(),
            ));
        }
        out.push((DpcBranch { input, op }, (start, c.pos())));
        if item_done(&mut c)? {
            break;
        }
    }
    Ok(out)
}

impl FromStr for DpcArch {
    type Err = ParseError;

    /// Parses any number of branches; [`DpcSpace`]'s `parse` also checks them against its
    /// configuration.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(DpcArch {
            branches: parse_branches(s)?.into_iter().map(|(b, _)| b).collect(),
        })
    }
}

impl TextFormat for DpcSpace {
    fn to_text(&self, arch: &DpcArch) -> String {
        arch.to_string()
    }

    /// Parses the text and checks it against this space: the branch count
    /// ([`ParseErrorKind::WrongCount`], at the end of the input or at the first extra branch)
    /// and each operation's rates or grid ([`ParseErrorKind::InvalidNumber`] at the operation).
    fn parse(&self, text: &str) -> Result<DpcArch, SpaceError> {
        let parsed = parse_branches(text)?;
        let spans: Vec<Span> = parsed.iter().map(|&(_, p)| p).collect();
        check_item_count(FORMAT, "branches", self.branches(), text, &spans)?;
        for &(b, (start, _)) in &parsed {
            if self.op_pos(b.op).is_none() {
                return Err(ParseError::new(
                    FORMAT,
                    ParseErrorKind::InvalidNumber {
                        reason: self.op_error(b.op),
                    },
                    start,
                    b.op.to_string(),
                )
                .into());
            }
        }
        let arch = DpcArch {
            branches: parsed.into_iter().map(|(b, _)| b).collect(),
        };
        self.validate(&arch)?;
        Ok(arch)
    }
}
