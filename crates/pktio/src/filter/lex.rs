//! Splits a filter into tokens, each with its byte position.

use super::ast::CmpOp;
use super::error::{ParseError, ParseErrorKind};

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// A keyword, number, address, range or `\name`.
    Word(&'a str),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// `<`, `<=`, `>`, `>=`, `=`, `==`, `!=`
    Cmp(CmpOp),
}

/// A token and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    /// Byte offset in the filter text.
    pub(crate) pos: usize,
    /// Length in bytes.
    pub(crate) len: usize,
}

impl Token<'_> {
    /// The token as written.
    pub(crate) fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.pos..self.pos + self.len).unwrap_or("")
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-' | b'\\')
}

/// Tokenizes `src`.
///
/// # Errors
/// A character that is not part of the language, with its position;
/// pcap operators pktio does not support (`[`, `&`, `|`, arithmetic) are
/// named.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let two = bytes.get(i + 1).copied();
        let (tok, len) = match (b, two) {
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'!', Some(b'=')) => (Tok::Cmp(CmpOp::Ne), 2),
            (b'!', _) => (Tok::Bang, 1),
            (b'<', Some(b'=')) => (Tok::Cmp(CmpOp::Le), 2),
            (b'<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            (b'>', Some(b'=')) => (Tok::Cmp(CmpOp::Ge), 2),
            (b'>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            (b'=', Some(b'=')) => (Tok::Cmp(CmpOp::Eq), 2),
            (b'=', _) => (Tok::Cmp(CmpOp::Eq), 1),
            (b'[' | b']', _) => {
                return Err(ParseError::new(
                    start,
                    1,
                    ParseErrorKind::Unsupported {
                        what: "the packet data accessor `proto[offset:size]`".into(),
                        note: "pktio's filters have no byte accessors; use the primitives listed in the module docs",
                    },
                ))
            }
            (b'&' | b'|' | b'+' | b'*' | b'%' | b'^' | b'~', _) => {
                return Err(ParseError::new(
                    start,
                    1,
                    ParseErrorKind::Unsupported {
                        what: format!("the arithmetic operator `{}`", b as char),
                        note: "pktio's filters compare only `len` with a number; use `and`/`&&` and `or`/`||` to combine primitives",
                    },
                ))
            }
            _ if is_word_byte(b) => {
                let mut j = i;
                while j < bytes.len() && is_word_byte(bytes[j]) {
                    j += 1;
                }
                (Tok::Word(&src[i..j]), j - i)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::new(
                    start,
                    ch.len_utf8(),
                    ParseErrorKind::Expected {
                        expected: "a primitive, `(`, `)`, `!`, `&&` or `||`".into(),
                        found: Some(ch.to_string()),
                    },
                ));
            }
        };
        out.push(Token {
            tok,
            pos: start,
            len,
        });
        i += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(Tok<'_>, usize)> {
        tokenize(s)
            .unwrap()
            .into_iter()
            .map(|t| (t.tok, t.pos))
            .collect()
    }

    #[test]
    fn words_operators_positions() {
        assert_eq!(
            toks("udp and(port 53||!len<=100)"),
            [
                (Tok::Word("udp"), 0),
                (Tok::Word("and"), 4),
                (Tok::LParen, 7),
                (Tok::Word("port"), 8),
                (Tok::Word("53"), 13),
                (Tok::OrOr, 15),
                (Tok::Bang, 17),
                (Tok::Word("len"), 18),
                (Tok::Cmp(CmpOp::Le), 21),
                (Tok::Word("100"), 23),
                (Tok::RParen, 26),
            ]
        );
        assert_eq!(
            toks("host fe80::1 ether src 02:00:c6:12:00:01 portrange 1-1024 proto \\tcp"),
            [
                (Tok::Word("host"), 0),
                (Tok::Word("fe80::1"), 5),
                (Tok::Word("ether"), 13),
                (Tok::Word("src"), 19),
                (Tok::Word("02:00:c6:12:00:01"), 23),
                (Tok::Word("portrange"), 41),
                (Tok::Word("1-1024"), 51),
                (Tok::Word("proto"), 58),
                (Tok::Word("\\tcp"), 64),
            ]
        );
    }

    #[test]
    fn unsupported_characters_have_positions() {
        let e = tokenize("tcp[13] & 2 != 0").unwrap_err();
        assert_eq!(e.pos, 3);
        assert!(e.to_string().contains("accessor"), "{e}");
        let e = tokenize("len + 1").unwrap_err();
        assert_eq!(e.pos, 4);
        let e = tokenize("ip é").unwrap_err();
        assert_eq!((e.pos, e.len), (3, 2));
    }
}
