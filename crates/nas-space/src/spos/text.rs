//! The SPOS text format: the blocks' names separated by whitespace.

use std::fmt;
use std::str::FromStr;

use super::{FORMAT, SposArch, SposChoice, SposSpace};
use crate::common::chain::{parse_layers, parse_words, write_chain};
use crate::common::string_serde;
use crate::error::{ParseError, SpaceError};
use crate::text::lookup;
use crate::traits::TextFormat;

impl fmt::Display for SposArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_chain(f, &self.choices)
    }
}

impl FromStr for SposArch {
    type Err = ParseError;

    /// Reads any number of block names (use [`TextFormat::parse`] of a [`SposSpace`] to also
    /// check the count).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let choices = parse_words(s, FORMAT, |w, pos| {
            lookup(FORMAT, &SposChoice::table(), w, pos)
        })?;
        Ok(Self { choices })
    }
}

string_serde!(SposArch);

impl TextFormat for SposSpace {
    fn to_text(&self, arch: &SposArch) -> String {
        arch.to_string()
    }

    /// Parses block names separated by whitespace: an unknown name is
    /// [`ParseErrorKind::UnknownOp`](crate::ParseErrorKind::UnknownOp), too few or too many
    /// names is [`ParseErrorKind::WrongCount`](crate::ParseErrorKind::WrongCount), and text
    /// after the last layer that is not a block name is
    /// [`ParseErrorKind::TrailingInput`](crate::ParseErrorKind::TrailingInput).
    fn parse(&self, text: &str) -> Result<SposArch, SpaceError> {
        let choices = parse_layers(
            text,
            FORMAT,
            self.num_layers(),
            |_, w, pos| lookup(FORMAT, &SposChoice::table(), w, pos),
            |w| SposChoice::table().iter().any(|(name, _)| *name == w),
        )?;
        Ok(SposArch { choices })
    }
}
