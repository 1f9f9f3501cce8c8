//! The NAS-RL text format: the layers separated by whitespace, each
//! `{h}x{w}x{filters}s{stride}[{inputs}]`.

use std::fmt;
use std::str::FromStr;

use super::{FORMAT, NasRlArch, NasRlLayer, NasRlSpace};
use crate::common::{check_item_count, item_done, write_list};
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::text::Cursor;
use crate::traits::{SearchSpace, TextFormat};

impl fmt::Display for NasRlLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}x{}s{}",
            self.filter_height, self.filter_width, self.filters, self.stride
        )?;
        write_list(f, ["[", ",", "]"], &self.inputs, |f, j| write!(f, "{j}"))
    }
}

impl fmt::Display for NasRlArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, ["", " ", ""], &self.layers, |f, l| write!(f, "{l}"))
    }
}

/// Byte positions of the fields of one parsed layer, for error messages.
#[derive(Debug, Clone, Copy)]
struct LayerPos {
    start: usize,
    end: usize,
    height: usize,
    width: usize,
    filters: usize,
    stride: usize,
}

fn number_u32(c: &mut Cursor<'_>) -> Result<(u32, usize), ParseError> {
    let (v, pos) = c.number()?;
    let v = u32::try_from(v).map_err(|_| {
        c.error_at(
            ParseErrorKind::InvalidNumber {
                reason: format!("{v} does not fit in 32 bits"),
            },
            pos,
            &v.to_string(),
        )
    })?;
    Ok((v, pos))
}

/// Parses the layers (any number, any values) and checks the structure of the inputs.
fn parse_layers(s: &str) -> Result<Vec<(NasRlLayer, LayerPos)>, ParseError> {
    let mut c = Cursor::new(s, FORMAT);
    c.non_empty()?;
    c.check_brackets(&[('[', ']')])?;
    c.skip_ws();
    let mut out: Vec<(NasRlLayer, LayerPos)> = Vec::new();
    loop {
        let i = out.len() + 1;
        let start = c.pos();
        let (filter_height, height) = number_u32(&mut c)?;
        c.expect_char('x')?;
        let (filter_width, width) = number_u32(&mut c)?;
        c.expect_char('x')?;
        let (filters, fpos) = number_u32(&mut c)?;
        c.expect_char('s')?;
        let (stride, spos) = number_u32(&mut c)?;
        c.expect_char('[')?;
        let mut inputs: Vec<usize> = Vec::new();
        if !c.eat_char(']') {
            loop {
                let (j, jpos) = c.number()?;
                if j == 0 {
                    return Err(c.error_at(
                        ParseErrorKind::Invalid {
                            reason: "layers are numbered from 1; write `[]` for a layer that reads the image".into(),
                        },
                        jpos,
                        "0",
                    ));
                }
                if j >= i {
                    return Err(c.error_at(
                        ParseErrorKind::EdgeFromLaterNode { from: j, to: i },
                        jpos,
                        &j.to_string(),
                    ));
                }
                if inputs.last().is_some_and(|&last| last >= j) {
                    return Err(c.error_at(
                        ParseErrorKind::Invalid {
                            reason: format!("the inputs of layer {i} must be sorted and distinct"),
                        },
                        jpos,
                        &j.to_string(),
                    ));
                }
                inputs.push(j);
                if c.eat_char(']') {
                    break;
                }
                c.expect_char(',')?;
            }
        }
        let layer = NasRlLayer {
            filter_height,
            filter_width,
            filters,
            stride,
            inputs,
        };
        let pos = LayerPos {
            start,
            end: c.pos(),
            height,
            width,
            filters: fpos,
            stride: spos,
        };
        out.push((layer, pos));
        if item_done(&mut c)? {
            break;
        }
    }
    Ok(out)
}

impl FromStr for NasRlArch {
    type Err = ParseError;

    /// Parses any number of layers with any values; [`NasRlSpace`]'s `parse` also checks them
    /// against its configuration.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(NasRlArch {
            layers: parse_layers(s)?.into_iter().map(|(l, _)| l).collect(),
        })
    }
}

impl TextFormat for NasRlSpace {
    fn to_text(&self, arch: &NasRlArch) -> String {
        arch.to_string()
    }

    /// Parses the text and checks it against this space: the layer count
    /// ([`ParseErrorKind::WrongCount`], at the end of the input or at the first extra layer)
    /// and each value ([`ParseErrorKind::InvalidNumber`] at the value).
    fn parse(&self, text: &str) -> Result<NasRlArch, SpaceError> {
        let parsed = parse_layers(text)?;
        let spans: Vec<(usize, usize)> = parsed.iter().map(|(_, p)| (p.start, p.end)).collect();
        check_item_count(FORMAT, "layers", self.layers(), text, &spans)?;
        for (k, (l, p)) in parsed.iter().enumerate() {
            if let Err((reason, field)) = self.check_layer_values(k + 1, l) {
                let (pos, v) = match field {
                    0 => (p.height, l.filter_height),
                    1 => (p.width, l.filter_width),
                    2 => (p.filters, l.filters),
                    _ => (p.stride, l.stride),
                };
                return Err(ParseError::new(
                    FORMAT,
                    ParseErrorKind::InvalidNumber { reason },
                    pos,
                    v.to_string(),
                )
                .into());
            }
        }
        let arch = NasRlArch {
            layers: parsed.into_iter().map(|(l, _)| l).collect(),
        };
        self.validate(&arch)?;
        Ok(arch)
    }
}
