//! The TPACKET_V3 block walker over arbitrary block contents: it trusts no
//! field the kernel wrote, never panics, always ends, and every packet it
//! hands out lies inside the block, after its own header, with headers in
//! increasing order and no more packets than the descriptor counts. A block
//! built well (before the input's corruptions) walks back exactly.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pktio::packet::block::{block_header, walk_block, BLOCK_HEADER_LEN};
use pktio::packet::header::{parse_header, FrameHeader, V2, V3};

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any bytes as a block.
    Raw(Vec<u8>),
    /// A well-formed block of these packets, then bytes overwritten.
    Built {
        packets: Vec<Vec<u8>>,
        mac_pad: u8,
        slack: u16,
        corrupt: Vec<(u16, u8)>,
    },
    /// A V2 frame header at any offset of any bytes.
    V2Frame { bytes: Vec<u8>, at: u16 },
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// A block as the kernel lays it out: descriptor, then each packet's
/// `tpacket3_hdr` with its data at `tp_mac`, the next header 8-aligned.
fn build(packets: &[Vec<u8>], mac_pad: usize, slack: usize) -> Vec<u8> {
    let mac = V3::SIZE + mac_pad;
    let mut len = BLOCK_HEADER_LEN;
    for p in packets {
        len = align8(len + mac + p.len());
    }
    let mut b = vec![0u8; len + slack];
    put_u32(&mut b, 8, 1); // block_status: TP_STATUS_USER
    put_u32(&mut b, 12, packets.len() as u32);
    put_u32(&mut b, 16, BLOCK_HEADER_LEN as u32);
    put_u32(&mut b, 20, len as u32);
    let mut at = BLOCK_HEADER_LEN;
    for (k, p) in packets.iter().enumerate() {
        let next = align8(at + mac + p.len());
        let next_off = if k + 1 < packets.len() { next - at } else { 0 };
        put_u32(&mut b, at, next_off as u32);
        put_u32(&mut b, at + V3::SEC, k as u32);
        put_u32(&mut b, at + V3::NSEC, 7);
        put_u32(&mut b, at + V3::SNAPLEN, p.len() as u32);
        put_u32(&mut b, at + V3::LEN, p.len() as u32 + 4);
        put_u32(&mut b, at + V3::STATUS, 1);
        put_u16(&mut b, at + V3::MAC, mac as u16);
        b[at + mac..at + mac + p.len()].copy_from_slice(p);
        at = next;
    }
    b
}

/// The walk's invariants, whatever the bytes.
fn check_walk(block: &[u8]) -> Vec<std::ops::Range<usize>> {
    let count = block_header(block).map(|h| h.num_pkts).ok();
    let mut spans = Vec::new();
    let mut last_header = None;
    let mut errors = 0;
    for r in walk_block(block) {
        assert_eq!(errors, 0, "the walk went on after an error");
        match r {
            Ok(s) => {
                assert!(
                    s.header >= BLOCK_HEADER_LEN,
                    "header {} inside the descriptor",
                    s.header
                );
                assert!(s.header + V3::SIZE <= block.len());
                assert!(s.data.start <= s.data.end && s.data.end <= block.len());
                if !s.data.is_empty() {
                    assert!(s.data.start >= s.header + V3::SIZE, "data over its header");
                }
                if let Some(h) = last_header {
                    assert!(s.header > h, "headers go backwards: {h} then {}", s.header);
                }
                last_header = Some(s.header);
                let _ = &block[s.data.clone()];
                spans.push(s.data);
            }
            Err(e) => {
                let _ = e.to_string();
                errors += 1;
            }
        }
        assert!(
            spans.len() as u64 <= u64::from(count.unwrap_or(0)),
            "more packets than num_pkts"
        );
    }
    spans
}

fuzz_target!(|i: Input| {
    match i {
        Input::Raw(block) => {
            check_walk(&block);
        }
        Input::Built {
            packets,
            mac_pad,
            slack,
            corrupt,
        } => {
            let packets: Vec<Vec<u8>> = packets
                .into_iter()
                .take(64)
                .map(|mut p| {
                    p.truncate(1600);
                    p
                })
                .collect();
            let mut b = build(&packets, usize::from(mac_pad), usize::from(slack % 512));
            let spans = check_walk(&b);
            assert_eq!(
                spans.len(),
                packets.len(),
                "a well-formed block walks whole"
            );
            for (s, p) in spans.iter().zip(&packets) {
                assert_eq!(&b[s.clone()], &p[..]);
            }
            if !b.is_empty() {
                for (at, v) in corrupt {
                    let at = usize::from(at) % b.len();
                    b[at] = v;
                }
                check_walk(&b);
            }
        }
        Input::V2Frame { bytes, at } => {
            if let Ok(s) = parse_header::<V2>(&bytes, usize::from(at)) {
                assert!(usize::from(at) + V2::SIZE <= bytes.len());
                assert!(s.data.end <= bytes.len());
                let _ = s.truncated();
            }
        }
    }
});
