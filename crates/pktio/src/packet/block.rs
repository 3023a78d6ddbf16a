//! The TPACKET_V3 block walker: a pure function over a block's bytes.
//!
//! A V3 RX block starts with a `tpacket_block_desc` (its `block_status`,
//! `num_pkts`, `offset_to_first_pkt`, `blk_len`, `seq_num`), followed by
//! `num_pkts` packets, each a `tpacket3_hdr` whose `tp_next_offset` leads to
//! the next one (the kernel's `psock_tpacket.c` walk). The kernel writes
//! these fields; this module trusts none of them: every offset is checked
//! against the block's length, a packet header must lie after the previous
//! one, and the walk visits at most `num_pkts` packets. It never panics and
//! always terminates, whatever the bytes — which is what makes it fuzzable
//! (see the property tests below).
//!
//! The walk keeps its position in a [`BlockCursor`] rather than in a borrow
//! of the block, so the ring code can hand each packet out as `&mut [u8]`
//! between two steps (see [`super::ring::BlockRing`]).

use super::header::{parse_header, read_u32, FrameHeader, HeaderError, PacketSpan, V3};

/// `sizeof(struct tpacket_block_desc)`, 8-byte aligned (`BLK_HDR_LEN`).
pub const BLOCK_HEADER_LEN: usize = 48;

const OFF_STATUS: usize = 8;
const OFF_NUM_PKTS: usize = 12;
const OFF_FIRST: usize = 16;
const OFF_BLK_LEN: usize = 20;
const OFF_SEQ: usize = 24;

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(BLOCK_HEADER_LEN == size_of::<libc::tpacket_block_desc>());
    let h = offset_of!(libc::tpacket_block_desc, hdr);
    assert!(OFF_STATUS == h + offset_of!(libc::tpacket_hdr_v1, block_status));
    assert!(OFF_NUM_PKTS == h + offset_of!(libc::tpacket_hdr_v1, num_pkts));
    assert!(OFF_FIRST == h + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt));
    assert!(OFF_BLK_LEN == h + offset_of!(libc::tpacket_hdr_v1, blk_len));
    assert!(OFF_SEQ == h + offset_of!(libc::tpacket_hdr_v1, seq_num));
    assert!(OFF_STATUS == crate::sys::packet::BLOCK_STATUS_OFFSET);
};

/// The fields of a block descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// `block_status` (`TP_STATUS_USER`, `TP_STATUS_BLK_TMO` when the block
    /// was closed by the retire timer rather than by filling up).
    pub status: u32,
    /// `num_pkts`.
    pub num_pkts: u32,
    /// `offset_to_first_pkt`.
    pub first: u32,
    /// `blk_len`: bytes of the block in use.
    pub blk_len: u32,
    /// `seq_num`: the block's sequence number (increments per closed block).
    pub seq: u64,
}

/// What is wrong with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Shorter than a block descriptor.
    #[error("block of {len} bytes is shorter than its descriptor ({BLOCK_HEADER_LEN} bytes)")]
    TooShort {
        /// Block length.
        len: usize,
    },
    /// `offset_to_first_pkt` points into the descriptor or past the end.
    #[error("first packet offset {offset} is outside the block")]
    BadFirstOffset {
        /// The offset.
        offset: u32,
    },
    /// A packet header could not be read.
    #[error("packet {index}: {source}")]
    Packet {
        /// Which packet (0-based).
        index: u32,
        /// What was wrong.
        source: HeaderError,
    },
    /// `tp_next_offset` does not lead forward to another whole header.
    #[error("packet {index}: next offset {offset} does not lead to a further header")]
    BadNextOffset {
        /// Which packet (0-based).
        index: u32,
        /// Its `tp_next_offset`.
        offset: u32,
    },
}

/// Reads a block's descriptor.
///
/// # Errors
/// [`BlockError::TooShort`] when `block` cannot hold one.
pub fn block_header(block: &[u8]) -> Result<BlockHeader, BlockError> {
    let short = BlockError::TooShort { len: block.len() };
    if block.len() < BLOCK_HEADER_LEN {
        return Err(short);
    }
    let u = |at| read_u32(block, at).ok_or(short);
    let lo = u(OFF_SEQ)? as u64;
    let hi = u(OFF_SEQ + 4)? as u64;
    let seq = if cfg!(target_endian = "little") {
        lo | hi << 32
    } else {
        hi | lo << 32
    };
    Ok(BlockHeader {
        status: u(OFF_STATUS)?,
        num_pkts: u(OFF_NUM_PKTS)?,
        first: u(OFF_FIRST)?,
        blk_len: u(OFF_BLK_LEN)?,
        seq,
    })
}

/// A position in a block walk: the next packet's header offset and how
/// many packets are left. Plain data, so the walk can pause between packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCursor {
    next: usize,
    index: u32,
    left: u32,
    broken: Option<BlockError>,
}

impl BlockCursor {
    /// The start of the walk over the block whose descriptor is `h`.
    pub fn start(h: &BlockHeader) -> BlockCursor {
        let broken = ((h.first as usize) < BLOCK_HEADER_LEN && h.num_pkts > 0)
            .then_some(BlockError::BadFirstOffset { offset: h.first });
        BlockCursor {
            next: h.first as usize,
            index: 0,
            left: h.num_pkts,
            broken,
        }
    }

    /// Packets not walked yet (by the descriptor's count).
    pub fn remaining(&self) -> u32 {
        self.left
    }

    /// Packets walked so far.
    pub fn walked(&self) -> u32 {
        self.index
    }

    /// Whether the walk is over: every packet seen, or the block is malformed.
    pub fn is_done(&self) -> bool {
        self.left == 0
    }
}

/// One step of the walk: the packet at the cursor, and the cursor moved on.
///
/// Returns `None` when the walk is over; `Some(Err)` once for a malformed
/// block, after which the walk is over.
pub fn next_packet(block: &[u8], cur: &mut BlockCursor) -> Option<Result<PacketSpan, BlockError>> {
    if cur.left == 0 {
        return None;
    }
    if let Some(e) = cur.broken.take() {
        cur.left = 0;
        return Some(Err(e));
    }
    let index = cur.index;
    let span = match parse_header::<V3>(block, cur.next) {
        Ok(s) => s,
        Err(source) => {
            cur.left = 0;
            return Some(Err(BlockError::Packet { index, source }));
        }
    };
    cur.left -= 1;
    cur.index += 1;
    if cur.left > 0 {
        // The header was read whole, so tp_next_offset is inside the block.
        let off_field = V3::NEXT_OFFSET.unwrap_or(0);
        let next_off = read_u32(block, cur.next + off_field).unwrap_or(0);
        match cur.next.checked_add(next_off as usize) {
            Some(n) if next_off as usize >= V3::SIZE && n < block.len() => cur.next = n,
            _ => {
                cur.broken = Some(BlockError::BadNextOffset {
                    index,
                    offset: next_off,
                })
            }
        }
    }
    Some(Ok(span))
}

/// An iterator over a block's packets (read-only use: inspecting a block,
/// tests, fuzzing). Yields at most one error, then stops.
#[derive(Debug, Clone)]
pub struct BlockWalk<'a> {
    block: &'a [u8],
    cur: BlockCursor,
}

/// Walks the packets of `block`. A block too short for its descriptor
/// yields one [`BlockError::TooShort`].
pub fn walk_block(block: &[u8]) -> BlockWalk<'_> {
    let cur = match block_header(block) {
        Ok(h) => BlockCursor::start(&h),
        Err(e) => BlockCursor {
            next: 0,
            index: 0,
            left: 1,
            broken: Some(e),
        },
    };
    BlockWalk { block, cur }
}

impl Iterator for BlockWalk<'_> {
    type Item = Result<PacketSpan, BlockError>;
    fn next(&mut self) -> Option<Self::Item> {
        next_packet(self.block, &mut self.cur)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::packet::tpacket_align;
    use proptest::prelude::*;

    /// Builds a block the way the kernel lays one out
    /// (`__packet_lookup_frame_in_block`, `prb_fill_curr_block`): packets one
    /// after another from offset 48, each header 16-aligned, data at
    /// `tp_mac` = aligned header + 16 - 14 (room for the sockaddr_ll).
    pub(crate) fn build_block(packets: &[&[u8]], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let put =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        let mut off = BLOCK_HEADER_LEN;
        put(&mut b, OFF_STATUS, libc::TP_STATUS_USER);
        put(&mut b, OFF_NUM_PKTS, packets.len() as u32);
        put(&mut b, OFF_FIRST, off as u32);
        put(&mut b, OFF_SEQ, 7);
        for (i, p) in packets.iter().enumerate() {
            let mac = tpacket_align(V3::HDRLEN + 14) - 14;
            let total = tpacket_align(mac + p.len());
            put(&mut b, off + V3::SNAPLEN, p.len() as u32);
            put(&mut b, off + V3::LEN, p.len() as u32);
            put(&mut b, off + V3::STATUS, libc::TP_STATUS_USER);
            b[off + V3::MAC..off + V3::MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            b[off + mac..off + mac + p.len()].copy_from_slice(p);
            let next = if i + 1 == packets.len() { 0 } else { total };
            put(&mut b, off, next as u32);
            off += total;
        }
        put(&mut b, OFF_BLK_LEN, off as u32);
        b
    }

    #[test]
    fn walks_every_packet_in_order() {
        let pkts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 60 + i as usize * 100]).collect();
        let refs: Vec<&[u8]> = pkts.iter().map(|p| p.as_slice()).collect();
        let b = build_block(&refs, 4096);
        let h = block_header(&b).unwrap();
        assert_eq!(h.num_pkts, 5);
        assert_eq!(h.seq, 7);
        let got: Vec<&[u8]> = walk_block(&b).map(|s| &b[s.unwrap().data]).collect();
        assert_eq!(got, refs);
    }

    #[test]
    fn an_empty_block_has_no_packets() {
        let b = build_block(&[], 4096);
        assert_eq!(walk_block(&b).count(), 0);
    }

    #[test]
    fn a_cursor_pauses_and_resumes() {
        let pkts: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 64]).collect();
        let refs: Vec<&[u8]> = pkts.iter().map(|p| p.as_slice()).collect();
        let b = build_block(&refs, 4096);
        let mut cur = BlockCursor::start(&block_header(&b).unwrap());
        let first = next_packet(&b, &mut cur).unwrap().unwrap();
        assert_eq!(b[first.data][0], 0);
        let saved = cur;
        let rest: Vec<u8> = std::iter::from_fn(|| next_packet(&b, &mut cur))
            .map(|s| b[s.unwrap().data][0])
            .collect();
        assert_eq!(rest, [1, 2, 3]);
        assert!(cur.is_done());
        let mut again = saved;
        assert_eq!(b[next_packet(&b, &mut again).unwrap().unwrap().data][0], 1);
    }

    #[test]
    fn malformed_blocks_give_one_error_and_stop() {
        assert_eq!(
            walk_block(&[0u8; 10]).collect::<Vec<_>>(),
            [Err(BlockError::TooShort { len: 10 })]
        );
        let pkts = [&[1u8; 60][..], &[2u8; 60][..]];
        // More packets claimed than present: the third header is all zeros
        // with next offset 0 on the second.
        let mut b = build_block(&pkts, 4096);
        b[OFF_NUM_PKTS..OFF_NUM_PKTS + 4].copy_from_slice(&3u32.to_ne_bytes());
        let r: Vec<_> = walk_block(&b).collect();
        assert_eq!(r.len(), 3);
        assert!(matches!(
            r[2],
            Err(BlockError::BadNextOffset {
                index: 1,
                offset: 0
            })
        ));
        // First packet inside the descriptor.
        let mut b = build_block(&pkts, 4096);
        b[OFF_FIRST..OFF_FIRST + 4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(
            walk_block(&b).next(),
            Some(Err(BlockError::BadFirstOffset { offset: 8 }))
        ));
        // Snap length past the end.
        let mut b = build_block(&pkts, 4096);
        let at = BLOCK_HEADER_LEN + V3::SNAPLEN;
        b[at..at + 4].copy_from_slice(&5000u32.to_ne_bytes());
        assert!(matches!(
            walk_block(&b).next(),
            Some(Err(BlockError::Packet { index: 0, .. }))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes: no panic, at most num_pkts items, at most one
        /// error and it comes last, and every span lies inside the block.
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut n = 0u64;
            let mut saw_err = false;
            for item in walk_block(&bytes) {
                prop_assert!(!saw_err, "an item after the error");
                match item {
                    Ok(s) => {
                        prop_assert!(s.data.end <= bytes.len());
                        prop_assert!(s.header + V3::SIZE <= bytes.len());
                    }
                    Err(_) => saw_err = true,
                }
                n += 1;
            }
            if let Ok(h) = block_header(&bytes) {
                prop_assert!(n <= h.num_pkts as u64 + 1);
            }
            prop_assert!(n <= (bytes.len() / V3::SIZE) as u64 + 2);
        }

        /// A valid block with some of its bytes overwritten: still no panic,
        /// and the spans stay inside.
        #[test]
        fn survives_corrupted_valid_blocks(
            lens in proptest::collection::vec(0usize..300, 0..8),
            edits in proptest::collection::vec((0usize..2048, any::<u8>()), 0..16),
        ) {
            let pkts: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0xab; l]).collect();
            let refs: Vec<&[u8]> = pkts.iter().map(|p| p.as_slice()).collect();
            let mut b = build_block(&refs, 4096);
            prop_assert_eq!(walk_block(&b).filter(|r| r.is_ok()).count(), pkts.len());
            for (at, v) in edits {
                b[at] = v;
            }
            for s in walk_block(&b).flatten() {
                prop_assert!(s.data.end <= b.len());
            }
        }
    }
}
