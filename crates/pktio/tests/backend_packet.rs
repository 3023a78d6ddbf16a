//! The AF_PACKET rings below `PacketIo`: the V3 block guard (hand-back on
//! drop, pause and resume) and per-packet metadata. Needs root.

mod backend_common;

use std::time::{Duration, Instant};

use backend_common::{
    chain, check_exact, frame_index, is_test_frame, test_frames, RawSocket, TEST_PORT,
};
use pktio::backend::{BackendConfig, Direction, PacketV2, PacketV3};
use pktio::packet::ring::Step;
use pktio_lab::{require_root, Lab};

#[test]
fn v3_block_guard_pauses_resumes_and_hands_back() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let port = TEST_PORT + 50;
    let frames = test_frames(&lab, 6, port);
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let mut cfg = BackendConfig::new(lab.rx().ifname());
    cfg.direction = Direction::Rx;
    cfg.retire_timeout_ms = 20;
    let mut b = PacketV3::open(&cfg).unwrap_or_else(|e| panic!("{}", chain(&e)));
    for f in &frames {
        raw.send(f);
    }
    let ring = b.rx_ring().expect("rx ring");
    let end = Instant::now() + Duration::from_secs(5);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut paused_once = false;
    while got.len() < frames.len() && Instant::now() < end {
        let Some(mut blk) = ring.block() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let h = blk.header().expect("descriptor");
        assert_ne!(h.status & libc::TP_STATUS_USER, 0);
        assert!(blk.bytes().len() >= h.blk_len as usize);
        // Take one packet, then pause: the same block comes back, resumed.
        if let Some(p) = blk.next_mut() {
            let (data, span) = p.expect("well-formed block");
            assert_eq!(span.wire_len as usize, data.len(), "not truncated");
            if is_test_frame(data, port) {
                got.push(data.to_vec());
            }
        }
        if !paused_once {
            paused_once = true;
            let seq = h.seq;
            blk.pause();
            let blk = ring.block().expect("a paused block is still ours");
            assert_eq!(blk.header().expect("descriptor").seq, seq, "same block");
            blk.pause(); // the rest is walked by `receive`, from where we stopped
            let n = ring.receive(u32::MAX, |data, _| {
                if is_test_frame(data, port) {
                    got.push(data.to_vec());
                }
                Step::Consume
            });
            assert!(n.packets as usize <= frames.len());
            continue;
        }
        while let Some(p) = blk.next_mut() {
            let (data, _) = p.expect("well-formed block");
            if is_test_frame(data, port) {
                got.push(data.to_vec());
            }
        }
        // Dropping `blk` hands it back.
    }
    got.sort_by_key(|f| frame_index(f));
    check_exact("V3 blocks", &frames, &got);
}

#[test]
fn frame_ring_metadata_and_stop_leave_packets_in_place() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let port = TEST_PORT + 51;
    let frames = test_frames(&lab, 4, port);
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let mut cfg = BackendConfig::new(lab.rx().ifname());
    cfg.direction = Direction::Rx;
    let mut b = PacketV2::open(&cfg).unwrap_or_else(|e| panic!("{}", chain(&e)));
    for f in &frames {
        raw.send(f);
    }
    let ring = b.rx_ring().expect("rx ring");
    let end = Instant::now() + Duration::from_secs(5);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut stopped = 0;
    while got.len() < frames.len() && Instant::now() < end {
        // Stop at every test frame the first time it is shown: it must be
        // shown again, first, by the next call.
        let mut first: Option<Vec<u8>> = None;
        ring.receive(64, |data, span| {
            assert!(span.sec > 0, "timestamped");
            if !is_test_frame(data, port) {
                return Step::Consume;
            }
            if stopped <= got.len() {
                stopped += 1;
                first = Some(data.to_vec());
                return Step::Stop;
            }
            got.push(data.to_vec());
            Step::Consume
        });
        if let Some(f) = first {
            let mut again = None;
            ring.receive(1, |data, _| {
                again = Some(data.to_vec());
                Step::Stop
            });
            assert_eq!(again.as_ref(), Some(&f), "a stopped packet stays first");
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    check_exact("V2 frames", &frames, &got);
}
