//! The ProxylessNAS text format: the layers' names separated by whitespace.

use std::str::FromStr;

use super::{FORMAT, MbConvChoice, ProxylessArch, ProxylessSpace};
use crate::common::chain::{parse_layers, parse_words, write_chain};
use crate::common::string_serde;
use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::traits::TextFormat;

fn default_names() -> Vec<String> {
    ProxylessSpace::default()
        .layer_choices(1)
        .iter()
        .map(|c| c.to_string())
        .collect()
}

impl FromStr for MbConvChoice {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        MbConvChoice::from_name(s).ok_or_else(|| {
            ParseError::new(
                FORMAT,
                ParseErrorKind::UnknownOp {
                    known: default_names(),
                },
                0,
                s,
            )
        })
    }
}

string_serde!(MbConvChoice);

impl std::fmt::Display for ProxylessArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_chain(f, &self.layers)
    }
}

impl FromStr for ProxylessArch {
    type Err = ParseError;

    /// Reads any number of layer names (no space configuration is known here; use
    /// [`TextFormat::parse`] of a [`ProxylessSpace`] to also check the count and the choices).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let layers = parse_words(s, FORMAT, |w, pos| {
            MbConvChoice::from_name(w).ok_or_else(|| {
                ParseError::new(
                    FORMAT,
                    ParseErrorKind::UnknownOp {
                        known: default_names(),
                    },
                    pos,
                    w,
                )
            })
        })?;
        Ok(ProxylessArch { layers })
    }
}

string_serde!(ProxylessArch);

impl TextFormat for ProxylessSpace {
    fn to_text(&self, arch: &ProxylessArch) -> String {
        arch.to_string()
    }

    /// Parses layer names separated by whitespace and checks them against this space: an
    /// unknown name or an MBConv the space excludes is [`ParseErrorKind::UnknownOp`] (listing
    /// this space's names), `zero` on a layer that cannot be skipped is
    /// [`ParseErrorKind::Invalid`], too few or too many layer names is
    /// [`ParseErrorKind::WrongCount`], and text after the last layer that is not a layer name
    /// is [`ParseErrorKind::TrailingInput`].
    fn parse(&self, text: &str) -> Result<ProxylessArch, SpaceError> {
        let known = || {
            let mut k: Vec<String> = self.ops().iter().map(|o| o.to_string()).collect();
            if self.config().allow_zero {
                k.push("zero".into());
            }
            k
        };
        let read = |i: usize, w: &str, pos: usize| {
            let unknown =
                || ParseError::new(FORMAT, ParseErrorKind::UnknownOp { known: known() }, pos, w);
            let c = MbConvChoice::from_name(w).ok_or_else(unknown)?;
            if !c.is_zero() && !self.ops().contains(&c) {
                return Err(unknown());
            }
            self.check_layer(i, c).map_err(|reason| {
                ParseError::new(FORMAT, ParseErrorKind::Invalid { reason }, pos, w)
            })?;
            Ok(c)
        };
        let layers = parse_layers(text, FORMAT, self.num_layers(), read, |w| {
            MbConvChoice::from_name(w).is_some()
        })?;
        Ok(ProxylessArch { layers })
    }
}
