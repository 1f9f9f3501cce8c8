//! The NASNet text format, `NASNet(normal=[('op', input, 'op', input, 'add'), ...], reduce=[...])`.

use std::fmt;
use std::str::FromStr;

use super::{Combiner, FORMAT, NasNetArch, NasNetBlock, NasNetOp, NasNetSpace};
use crate::common::cells::{ParsedList, comma, op_input, open_call, parse_tuples};
use crate::common::{string_serde, write_list};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::{Cursor, lookup};
use crate::traits::{SearchSpace, TextFormat};

fn write_cell(f: &mut fmt::Formatter<'_>, cell: &[NasNetBlock]) -> fmt::Result {
    write_list(f, ["[", ", ", "]"], cell, |f, b| {
        write!(
            f,
            "('{}', {}, '{}', {}, '{}')",
            b.ops[0], b.inputs[0], b.ops[1], b.inputs[1], b.combine
        )
    })
}

impl fmt::Display for NasNetArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NASNet(normal=")?;
        write_cell(f, &self.normal)?;
        f.write_str(", reduce=")?;
        write_cell(f, &self.reduce)?;
        f.write_str(")")
    }
}

fn parse_cell(c: &mut Cursor<'_>) -> Result<ParsedList<NasNetBlock>, ParseError> {
    let table = NasNetOp::table();
    parse_tuples(c, |c, blocks| {
        let to = blocks.len() + 2;
        let (a, i) = op_input(c, FORMAT, &table, to)?;
        comma(c)?;
        let (b, j) = op_input(c, FORMAT, &table, to)?;
        comma(c)?;
        let (name, qpos) = c.quoted()?;
        let combine = lookup(FORMAT, &Combiner::table(), name, qpos + 1).map_err(|e| {
            ParseError::new(
                FORMAT,
                ParseErrorKind::Expected {
                    expected: "a combiner, `'add'` or `'concat'`".into(),
                },
                e.position,
                e.token,
            )
        })?;
        Ok(NasNetBlock::new((a, i), (b, j), combine))
    })
}

fn check_count(
    c: &Cursor<'_>,
    cell: &ParsedList<NasNetBlock>,
    field: &str,
    expected: Option<usize>,
) -> Result<(), ParseError> {
    let wrong = |expected| cell.count_error(c, format!("blocks in `{field}`"), expected);
    match expected {
        Some(e) if cell.items.len() != e => Err(wrong(e)),
        None if cell.items.is_empty() => Err(wrong(1)),
        _ => Ok(()),
    }
}

fn parse_arch(s: &str, expected_blocks: Option<usize>) -> Result<NasNetArch, ParseError> {
    let mut c = open_call(s, FORMAT, "NASNet")?;
    c.skip_ws();
    c.expect_str("normal")?;
    c.skip_ws();
    c.expect_char('=')?;
    c.skip_ws();
    let normal = parse_cell(&mut c)?;
    check_count(&c, &normal, "normal", expected_blocks)?;
    comma(&mut c)?;
    c.expect_str("reduce")?;
    c.skip_ws();
    c.expect_char('=')?;
    c.skip_ws();
    let reduce = parse_cell(&mut c)?;
    check_count(&c, &reduce, "reduce", Some(normal.items.len()))?;
    c.skip_ws();
    c.eat_char(',');
    c.skip_ws();
    c.expect_char(')')?;
    c.finish()?;
    Ok(NasNetArch {
        normal: normal.items,
        reduce: reduce.items,
    })
}

impl FromStr for NasNetArch {
    type Err = ParseError;

    /// Parses the notation; the number of blocks is taken from `normal` (and `reduce` must
    /// have as many).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_arch(s, None)
    }
}

string_serde!(NasNetArch);

impl TextFormat for NasNetSpace {
    fn to_text(&self, arch: &NasNetArch) -> String {
        arch.to_string()
    }

    /// Parses the notation, reporting a cell with another number of blocks than the space as
    /// [`ParseErrorKind::WrongCount`], then validates against the space.
    fn parse(&self, text: &str) -> Result<NasNetArch, SpaceError> {
        let a = parse_arch(text, Some(self.config.blocks))?;
        self.validate(&a)?;
        Ok(a)
    }
}
