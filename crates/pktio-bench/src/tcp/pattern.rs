//! The data check: a hello header that names the connection, then a known byte pattern.
//!
//! Every connection opened by `pktio tcp-send` starts with a 16-byte [`Hello`]:
//! the magic `PKTIOTCP`, the sender's connection index (u32 LE) and flags
//! (u32 LE, bit 0 = "the payload is the pattern"). The payload that follows is
//! the stream of 64-bit little-endian words
//!
//! ```text
//! word(c, w) = (w + 1) * 0x9E37_79B9_7F4A_7C15  XOR  (c + 1) * 0xD1B5_4A32_D192_ED03   (mod 2^64)
//! ```
//!
//! where `c` is the connection index and `w` the word's index in the payload.
//! Multiplying by an odd constant is a bijection on u64, so no two words of one
//! connection are equal and the words of different connections differ: a lost,
//! duplicated, reordered or corrupted byte, or bytes of the wrong connection,
//! change what the receiver sees at that offset. Generating or checking it costs
//! one multiply and one XOR per 8 bytes. Pure code, no I/O.

/// Length of the hello header in bytes.
pub const HELLO_LEN: usize = 16;
/// The first 8 bytes of every connection.
pub const MAGIC: [u8; 8] = *b"PKTIOTCP";
/// Hello flag: the payload is the pattern.
pub const FLAG_PATTERN: u32 = 1;

const K_WORD: u64 = 0x9E37_79B9_7F4A_7C15;
const K_CONN: u64 = 0xD1B5_4A32_D192_ED03;

/// The header a sender writes first on every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The sender's index of this connection (0-based).
    pub conn: u32,
    /// Whether the payload is the pattern.
    pub pattern: bool,
}

impl Hello {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.conn.to_le_bytes());
        let flags = if self.pattern { FLAG_PATTERN } else { 0 };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b
    }

    /// Decodes a header, or `None` when the magic is wrong (not a pktio sender).
    pub fn decode(b: &[u8; HELLO_LEN]) -> Option<Hello> {
        if b[..8] != MAGIC {
            return None;
        }
        let conn = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let flags = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        Some(Hello {
            conn,
            pattern: flags & FLAG_PATTERN != 0,
        })
    }
}

/// The 64-bit word number `w` of connection `conn`'s payload.
#[inline]
pub fn word(conn: u32, w: u64) -> u64 {
    w.wrapping_add(1).wrapping_mul(K_WORD) ^ (u64::from(conn) + 1).wrapping_mul(K_CONN)
}

/// The payload byte at `offset` of connection `conn`.
#[inline]
pub fn byte_at(conn: u32, offset: u64) -> u8 {
    word(conn, offset / 8).to_le_bytes()[(offset % 8) as usize]
}

/// Fills `buf` with the payload of connection `conn` starting at byte `offset`.
pub fn fill(conn: u32, offset: u64, buf: &mut [u8]) {
    let mut off = offset;
    let mut rest: &mut [u8] = buf;
    // Unaligned head, byte by byte.
    while !off.is_multiple_of(8) && !rest.is_empty() {
        rest[0] = byte_at(conn, off);
        rest = &mut rest[1..];
        off += 1;
    }
    let mut chunks = rest.chunks_exact_mut(8);
    let mut w = off / 8;
    for c in &mut chunks {
        c.copy_from_slice(&word(conn, w).to_le_bytes());
        w += 1;
    }
    let tail = chunks.into_remainder();
    let bytes = word(conn, w).to_le_bytes();
    let n = tail.len();
    tail.copy_from_slice(&bytes[..n]);
}

/// Checks that `data` is the payload of connection `conn` from byte `offset` on.
///
/// Returns the offset (in the payload) of the first wrong byte, or `None` when
/// every byte matches.
pub fn check(conn: u32, offset: u64, data: &[u8]) -> Option<u64> {
    let mut off = offset;
    let mut rest = data;
    while !off.is_multiple_of(8) && !rest.is_empty() {
        if rest[0] != byte_at(conn, off) {
            return Some(off);
        }
        rest = &rest[1..];
        off += 1;
    }
    let mut chunks = rest.chunks_exact(8);
    let mut w = off / 8;
    for c in &mut chunks {
        let want = word(conn, w).to_le_bytes();
        if c != want {
            let i = c
                .iter()
                .zip(want.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Some(w * 8 + i as u64);
        }
        w += 1;
    }
    let tail = chunks.remainder();
    let want = word(conn, w).to_le_bytes();
    tail.iter()
        .zip(want.iter())
        .position(|(a, b)| a != b)
        .map(|i| w * 8 + i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_foreign_bytes() {
        let h = Hello {
            conn: 7,
            pattern: true,
        };
        assert_eq!(Hello::decode(&h.encode()), Some(h));
        let h = Hello {
            conn: u32::MAX,
            pattern: false,
        };
        assert_eq!(Hello::decode(&h.encode()), Some(h));
        let mut b = h.encode();
        b[0] = b'X';
        assert_eq!(Hello::decode(&b), None);
    }

    #[test]
    fn fill_matches_byte_at_at_any_alignment() {
        for start in 0..17u64 {
            for len in [0usize, 1, 7, 8, 9, 31, 100] {
                let mut buf = vec![0u8; len];
                fill(3, start, &mut buf);
                for (i, b) in buf.iter().enumerate() {
                    assert_eq!(*b, byte_at(3, start + i as u64), "start {start} i {i}");
                }
                assert_eq!(check(3, start, &buf), None);
            }
        }
    }

    #[test]
    fn check_finds_the_first_wrong_byte() {
        let mut buf = vec![0u8; 64];
        fill(1, 5, &mut buf);
        buf[20] ^= 0x40;
        assert_eq!(check(1, 5, &buf), Some(25));
        buf[3] ^= 1;
        assert_eq!(check(1, 5, &buf), Some(8));
    }

    #[test]
    fn detects_loss_reordering_and_the_wrong_connection() {
        let mut stream = vec![0u8; 4096];
        fill(0, 0, &mut stream);
        // Loss: bytes 100..108 missing, the rest shifted.
        let mut lost = stream.clone();
        lost.drain(100..108);
        assert_eq!(check(0, 0, &lost), Some(100));
        // Reordering: two 1 KiB blocks swapped.
        let mut swapped = stream[..1024].to_vec();
        swapped.extend_from_slice(&stream[2048..3072]);
        swapped.extend_from_slice(&stream[1024..2048]);
        assert_eq!(check(0, 0, &swapped), Some(1024));
        // Another connection's bytes at the same offset.
        let mut other = vec![0u8; 64];
        fill(1, 0, &mut other);
        assert_eq!(check(0, 0, &other), Some(0));
    }

    #[test]
    fn words_of_one_connection_do_not_repeat_in_a_long_window() {
        let mut seen = std::collections::HashSet::new();
        for w in 0..100_000 {
            assert!(seen.insert(word(9, w)));
        }
    }
}
