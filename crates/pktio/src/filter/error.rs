//! Errors of the filter module: parsing (with the position) and compiling.

use std::fmt;

/// What went wrong at a position of the filter text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Something else was expected here; `found` is `None` at the end of
    /// the filter.
    Expected {
        /// What the parser expected, in words.
        expected: String,
        /// What it found instead, as written.
        found: Option<String>,
    },
    /// A pcap-filter primitive or operator outside pktio's subset.
    Unsupported {
        /// The primitive, named.
        what: String,
        /// What to do instead.
        note: &'static str,
    },
    /// A value of the right shape but out of range or inconsistent.
    Invalid {
        /// The value as written.
        value: String,
        /// Why it is refused.
        why: String,
    },
}

/// A filter that does not parse: where (byte offset and length in the
/// filter text) and why. [`ParseError::render`] draws a caret under the spot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Byte offset of the offending token in the filter text.
    pub pos: usize,
    /// Its length in bytes (0 at the end of the filter).
    pub len: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(pos: usize, len: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { pos, len, kind }
    }

    /// The filter text with a line of carets under the offending token, for
    /// a terminal:
    ///
    /// ```text
    /// udp port foo
    ///          ^^^
    /// ```
    ///
    /// A long filter is shown as a window of at most [`RENDER_CONTEXT`]
    /// characters either side of the token, cut ends marked `…`, so that a
    /// huge filter is not echoed whole.
    pub fn render(&self, filter: &str) -> String {
        let chars: Vec<char> = filter.chars().collect();
        let at = filter
            .get(..self.pos)
            .map_or(self.pos, |s| s.chars().count())
            .min(chars.len());
        let width = filter
            .get(self.pos..self.pos + self.len)
            .map_or(self.len, |s| s.chars().count())
            .clamp(1, RENDER_CONTEXT);
        let from = at.saturating_sub(RENDER_CONTEXT);
        let to = (at + width + RENDER_CONTEXT).min(chars.len());
        let head = if from > 0 { "…" } else { "" };
        let tail = if to < chars.len() { "…" } else { "" };
        let shown: String = chars[from..to].iter().collect();
        let pad = at - from + head.chars().count();
        format!(
            "{head}{shown}{tail}\n{}{}",
            " ".repeat(pad),
            "^".repeat(width)
        )
    }
}

/// Characters of filter text [`ParseError::render`] shows either side of
/// the offending token.
pub const RENDER_CONTEXT: usize = 60;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filter, at byte {}: ", self.pos)?;
        match &self.kind {
            ParseErrorKind::Expected {
                expected,
                found: Some(found),
            } => write!(f, "expected {expected}, found `{found}`"),
            ParseErrorKind::Expected {
                expected,
                found: None,
            } => write!(f, "expected {expected}, found the end of the filter"),
            ParseErrorKind::Unsupported { what, note } => {
                write!(f, "{what} is not supported: {note}")
            }
            ParseErrorKind::Invalid { value, why } => write!(f, "`{value}`: {why}"),
        }
    }
}

/// A parsed filter that cannot be turned into a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The classic BPF program would exceed the kernel's 4096 instructions
    /// (`BPF_MAXINSNS`).
    #[error(
        "the filter compiles to {insns} classic BPF instructions, more than the kernel's \
         limit of {max}: simplify it (fewer primitives)"
    )]
    TooLong {
        /// Instructions needed.
        insns: usize,
        /// The limit.
        max: usize,
    },
    /// The eBPF program did not assemble (a jump farther than 32767
    /// instructions).
    #[error("the filter's XDP program does not assemble ({0}): simplify it (fewer primitives)")]
    Asm(#[from] crate::bpf::AsmError),
}
