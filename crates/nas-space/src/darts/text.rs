//! The DARTS genotype notation: Python's `repr` of the DARTS repository's `Genotype`.

use std::fmt;
use std::str::FromStr;

use super::{DartsOp, DartsSpace, FORMAT, Genotype};
use crate::common::cells::{ParsedList, number_token, op_input, open_call, parse_tuples};
use crate::common::{string_serde, write_list};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{SearchSpace, TextFormat};

fn write_concat(f: &mut fmt::Formatter<'_>, concat: &[usize], steps: usize) -> fmt::Result {
    if steps > 0 && concat.iter().copied().eq(2..steps + 2) {
        return write!(f, "range(2, {})", steps + 2);
    }
    write_list(f, ["[", ", ", "]"], concat, |f, v| write!(f, "{v}"))
}

fn write_cell(f: &mut fmt::Formatter<'_>, cell: &[(DartsOp, usize)]) -> fmt::Result {
    write_list(f, ["[", ", ", "]"], cell, |f, (op, j)| {
        write!(f, "('{op}', {j})")
    })
}

impl fmt::Display for Genotype {
    /// Python's `repr` of the DARTS namedtuple; a concat equal to all intermediate nodes prints
    /// as `range(2, steps + 2)`, as DARTS' search code produces it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Genotype(normal=")?;
        write_cell(f, &self.normal)?;
        f.write_str(", normal_concat=")?;
        write_concat(f, &self.normal_concat, self.normal.len() / 2)?;
        f.write_str(", reduce=")?;
        write_cell(f, &self.reduce)?;
        f.write_str(", reduce_concat=")?;
        write_concat(f, &self.reduce_concat, self.reduce.len() / 2)?;
        f.write_str(")")
    }
}

/// A cell list as read, with the positions needed for count errors.
type ParsedCell = ParsedList<(DartsOp, usize)>;

fn parse_cell(c: &mut Cursor<'_>) -> Result<ParsedCell, ParseError> {
    parse_tuples(c, |c, entries| {
        op_input(c, FORMAT, &DartsOp::table(), entries.len() / 2 + 2)
    })
}

/// Longest `range(a, b)` accepted in a concat (guards against `range(0, 10**18)`).
const MAX_RANGE: usize = 64;

fn parse_concat(c: &mut Cursor<'_>) -> Result<Vec<(usize, usize, String)>, ParseError> {
    let mut out = Vec::new();
    if c.eat_str("range") {
        c.skip_ws();
        c.expect_char('(')?;
        c.skip_ws();
        let (a, apos, atok) = number_token(c)?;
        c.skip_ws();
        c.expect_char(',')?;
        c.skip_ws();
        let (b, bpos, btok) = number_token(c)?;
        c.skip_ws();
        c.eat_char(',');
        c.skip_ws();
        c.expect_char(')')?;
        if b <= a {
            return Err(c.error_at(
                ParseErrorKind::Invalid {
                    reason: format!("`range({a}, {b})` is empty; a cell must output something"),
                },
                apos,
                atok,
            ));
        }
        if b - a > MAX_RANGE {
            return Err(c.error_at(
                ParseErrorKind::InvalidNumber {
                    reason: format!("a concat range is at most {MAX_RANGE} states long"),
                },
                bpos,
                btok,
            ));
        }
        out.extend((a..b).map(|v| (v, apos, v.to_string())));
        return Ok(out);
    }
    if c.peek() != Some('[') {
        return Err(c.error(ParseErrorKind::Expected {
            expected: "a list `[2, 3, 4, 5]` or `range(2, 6)`".into(),
        }));
    }
    c.expect_char('[')?;
    loop {
        c.skip_ws();
        if c.peek() == Some(']') {
            break;
        }
        let (v, pos, tok) = number_token(c)?;
        out.push((v, pos, tok.to_string()));
        c.skip_ws();
        if !c.eat_char(',') {
            c.skip_ws();
            break;
        }
    }
    c.expect_char(']')?;
    Ok(out)
}

fn check_count(
    c: &Cursor<'_>,
    cell: &ParsedCell,
    field: &str,
    expected_steps: Option<usize>,
) -> Result<(), ParseError> {
    let n = cell.items.len();
    match expected_steps {
        Some(steps) if n != 2 * steps => Err(cell.count_error(
            c,
            format!("inputs in `{field}` (two per node, {steps} nodes)"),
            2 * steps,
        )),
        None if n == 0 || n % 2 == 1 => Err(cell.count_error(
            c,
            format!("inputs in `{field}` (two per node)"),
            if n == 0 { 2 } else { n + 1 },
        )),
        _ => Ok(()),
    }
}

fn check_concat(
    c: &Cursor<'_>,
    concat: &[(usize, usize, String)],
    field: &str,
    steps: usize,
) -> Result<Vec<usize>, ParseError> {
    let mut out: Vec<usize> = Vec::with_capacity(concat.len());
    for (v, pos, tok) in concat {
        if !(2..steps + 2).contains(v) {
            return Err(c.error_at(
                ParseErrorKind::InvalidNumber {
                    reason: format!(
                        "`{field}` may only list intermediate nodes, states 2..{} here",
                        steps + 2
                    ),
                },
                *pos,
                tok,
            ));
        }
        if out.contains(v) {
            return Err(c.error_at(
                ParseErrorKind::Invalid {
                    reason: format!("state {v} appears twice in `{field}`"),
                },
                *pos,
                tok,
            ));
        }
        out.push(*v);
    }
    Ok(out)
}

const FIELDS: [&str; 4] = ["normal", "normal_concat", "reduce", "reduce_concat"];

/// Parses a genotype; with `expected_steps`, a cell with another number of nodes is a
/// [`ParseErrorKind::WrongCount`] at the offending position.
fn parse_genotype(s: &str, expected_steps: Option<usize>) -> Result<Genotype, ParseError> {
    let mut c = open_call(s, FORMAT, "Genotype")?;
    let mut cells: [Option<ParsedCell>; 2] = [None, None];
    let mut concats: [Option<Vec<(usize, usize, String)>>; 2] = [None, None];
    loop {
        c.skip_ws();
        if c.peek() == Some(')') {
            break;
        }
        let (name, pos) = c.ident().map_err(|_| {
            c.error(ParseErrorKind::Expected {
                expected: "a field: `normal`, `normal_concat`, `reduce` or `reduce_concat`".into(),
            })
        })?;
        let Some(field) = FIELDS.iter().position(|&f| f == name) else {
            return Err(c.error_at(
                ParseErrorKind::Expected {
                    expected: "a field: `normal`, `normal_concat`, `reduce` or `reduce_concat`"
                        .into(),
                },
                pos,
                name,
            ));
        };
        let (is_cell, k) = (field % 2 == 0, field / 2);
        let taken = if is_cell {
            cells[k].is_some()
        } else {
            concats[k].is_some()
        };
        if taken {
            return Err(c.error_at(
                ParseErrorKind::Invalid {
                    reason: format!("the field `{name}` is given twice"),
                },
                pos,
                name,
            ));
        }
        c.skip_ws();
        c.expect_char('=')?;
        c.skip_ws();
        if is_cell {
            cells[k] = Some(parse_cell(&mut c)?);
        } else {
            concats[k] = Some(parse_concat(&mut c)?);
        }
        c.skip_ws();
        if !c.eat_char(',') {
            c.skip_ws();
            if c.peek() != Some(')') {
                return Err(c.error(ParseErrorKind::Expected {
                    expected: "`,` or `)`".into(),
                }));
            }
            break;
        }
    }
    let close = c.pos();
    c.expect_char(')')?;
    c.finish()?;
    let missing = |field: &str| {
        c.error_at(
            ParseErrorKind::Expected {
                expected: format!("the field `{field}`"),
            },
            close,
            ")",
        )
    };
    let [normal, reduce] = cells;
    let [normal_concat, reduce_concat] = concats;
    let normal = normal.ok_or_else(|| missing("normal"))?;
    let normal_concat = normal_concat.ok_or_else(|| missing("normal_concat"))?;
    let reduce = reduce.ok_or_else(|| missing("reduce"))?;
    let reduce_concat = reduce_concat.ok_or_else(|| missing("reduce_concat"))?;
    check_count(&c, &normal, "normal", expected_steps)?;
    let steps = normal.items.len() / 2;
    check_count(&c, &reduce, "reduce", Some(steps))?;
    let normal_concat = check_concat(&c, &normal_concat, "normal_concat", steps)?;
    let reduce_concat = check_concat(&c, &reduce_concat, "reduce_concat", steps)?;
    Ok(Genotype {
        normal: normal.items,
        normal_concat,
        reduce: reduce.items,
        reduce_concat,
    })
}

impl FromStr for Genotype {
    type Err = ParseError;

    /// Parses the DARTS notation; the number of nodes is taken from `normal` (and `reduce`
    /// must have as many).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        parse_genotype(s, None)
    }
}

string_serde!(Genotype);

impl TextFormat for DartsSpace {
    fn to_text(&self, arch: &Genotype) -> String {
        arch.to_string()
    }

    /// Parses the DARTS notation, reporting a cell with another number of nodes than the space
    /// as [`ParseErrorKind::WrongCount`], then validates the genotype against the space.
    fn parse(&self, text: &str) -> Result<Genotype, SpaceError> {
        let g = parse_genotype(text, Some(self.config.steps))?;
        self.validate(&g)?;
        Ok(g)
    }
}
