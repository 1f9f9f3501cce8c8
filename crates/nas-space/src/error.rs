//! Errors of the `nas-space` crate.

use std::fmt;

/// What went wrong while parsing an architecture string.
///
/// Every variant is reported together with the byte position of the offending token
/// (see [`ParseError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input was empty (or only whitespace). Give a non-empty architecture string.
    Empty,
    /// A specific character or keyword was expected here.
    Expected {
        /// What the parser expected, e.g. `'|'` or `"normal="`.
        expected: String,
    },
    /// An operation name that the space does not know. The message lists the known ones.
    UnknownOp {
        /// The operation names this format accepts.
        known: Vec<String>,
    },
    /// A number could not be read, or is outside the allowed range.
    InvalidNumber {
        /// Why the number is not acceptable.
        reason: String,
    },
    /// A cell or chain has the wrong number of nodes, edges or layers.
    WrongCount {
        /// What was counted (e.g. "nodes", "edges into node 2", "layers").
        what: String,
        /// The number this space requires.
        expected: usize,
        /// The number found in the input.
        found: usize,
    },
    /// An edge reads from a node that is not earlier than the node it feeds
    /// (cells are directed acyclic graphs in topological order).
    EdgeFromLaterNode {
        /// The source node written in the string.
        from: usize,
        /// The node the edge feeds.
        to: usize,
    },
    /// An opening bracket has no matching closing bracket, or vice versa.
    Unbalanced {
        /// The bracket that is not matched.
        bracket: char,
    },
    /// The architecture was read completely but text follows it.
    TrailingInput,
    /// The string is well formed but describes an architecture the space rejects.
    Invalid {
        /// Why the architecture is not in the space.
        reason: String,
    },
}

/// A parse failure: what went wrong, where (byte offset into the input) and on which token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The format being parsed, e.g. `"NAS-Bench-201 architecture string"`.
    pub format: &'static str,
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Byte offset of the offending token in the input.
    pub position: usize,
    /// The offending token (may be empty at the end of the input).
    pub token: String,
}

impl ParseError {
    /// Creates a parse error.
    pub fn new(
        format: &'static str,
        kind: ParseErrorKind,
        position: usize,
        token: impl Into<String>,
    ) -> Self {
        Self {
            format,
            kind,
            position,
            token: token.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.token.is_empty() {
            format!("at byte {} (end of input)", self.position)
        } else {
            format!("at byte {} (`{}`)", self.position, self.token)
        };
        write!(f, "invalid {} {}: ", self.format, at)?;
        match &self.kind {
            ParseErrorKind::Empty => write!(f, "the string is empty"),
            ParseErrorKind::Expected { expected } => write!(f, "expected {expected}"),
            ParseErrorKind::UnknownOp { known } => {
                write!(
                    f,
                    "unknown operation; known operations: {}",
                    known.join(", ")
                )
            }
            ParseErrorKind::InvalidNumber { reason } => write!(f, "invalid number: {reason}"),
            ParseErrorKind::WrongCount {
                what,
                expected,
                found,
            } => write!(f, "expected {expected} {what}, found {found}"),
            ParseErrorKind::EdgeFromLaterNode { from, to } => write!(
                f,
                "edge from node {from} into node {to}: an edge must come from an earlier node (source < {to})"
            ),
            ParseErrorKind::Unbalanced { bracket } => {
                write!(f, "unbalanced bracket `{bracket}`")
            }
            ParseErrorKind::TrailingInput => {
                write!(f, "unexpected text after the end of the architecture")
            }
            ParseErrorKind::Invalid { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Errors of search spaces: parsing, validation, indexing and configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpaceError {
    /// An architecture string could not be parsed. The inner error names the token and position.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The architecture is well formed but not a member of this space (wrong length, an operation
    /// the space's configuration excludes, an input out of range...). Fix the architecture or
    /// use a space whose configuration admits it.
    #[error("architecture not in the {space} space: {reason}")]
    InvalidArch {
        /// The space's name.
        space: String,
        /// What is wrong with the architecture.
        reason: String,
    },
    /// An index outside `0..size` was given to [`crate::Enumerable::arch_at`].
    #[error("index {index} is out of range for the {space} space of {size} architectures")]
    IndexOutOfRange {
        /// The space's name.
        space: String,
        /// The index asked for.
        index: u128,
        /// The number of architectures in the space.
        size: u128,
    },
    /// A space configuration value is invalid. The message says which field and why.
    #[error("invalid {space} configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The space's name.
        space: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The architecture has no neighbour (every choice in the space has a single option), so it
    /// cannot be mutated. Widen the space's configuration.
    #[error(
        "the {space} space has no neighbour of this architecture: every decision has a single option"
    )]
    NoNeighbor {
        /// The space's name.
        space: String,
    },
}

impl SpaceError {
    /// Shorthand for [`SpaceError::InvalidArch`].
    pub fn invalid(space: impl Into<String>, reason: impl Into<String>) -> Self {
        SpaceError::InvalidArch {
            space: space.into(),
            reason: reason.into(),
        }
    }

    /// `Ok` when `index < size`, else [`SpaceError::IndexOutOfRange`]: the bounds check of every
    /// [`crate::Enumerable::arch_at`].
    pub fn check_index(space: impl Into<String>, index: u128, size: u128) -> Result<(), Self> {
        if index < size {
            Ok(())
        } else {
            Err(SpaceError::IndexOutOfRange {
                space: space.into(),
                index,
                size,
            })
        }
    }

    /// Shorthand for [`SpaceError::InvalidConfig`].
    pub fn config(
        space: impl Into<String>,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        SpaceError::InvalidConfig {
            space: space.into(),
            field,
            reason: reason.into(),
        }
    }
}
