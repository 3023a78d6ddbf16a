//! The backend conformance suite, written once over [`PacketIo`] and run
//! against every backend by `backend_conformance.rs`; plus helpers the
//! backend tests share (the raw-socket peer and the test frames come from
//! `tests/common`).
#![allow(dead_code, unsafe_code)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pktio::backend::{
    Backend, BackendConfig, BackendError, BackendKind, Direction, Operation, PacketIo,
};
use pktio_lab::Lab;

/// Opens `kind` with `cfg` for `dir`, in the calling thread's namespace.
pub fn open(kind: BackendKind, cfg: &BackendConfig, dir: Direction) -> Backend {
    let mut cfg = cfg.clone();
    cfg.direction = dir;
    match Backend::open(kind, &cfg) {
        Ok(b) => b,
        Err(e) => panic!(
            "open {kind} on {} ({dir:?}): {}\nhint: {:?}",
            cfg.interface,
            chain(&e),
            e.hint()
        ),
    }
}

/// An error with its sources.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Sends `frames` from the gen namespace on a thread, a few at a time so
/// the veth never overflows. Join the handle to wait for the last one.
pub fn send_from_gen(lab: &Lab, frames: Vec<Vec<u8>>) -> std::thread::JoinHandle<()> {
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    std::thread::spawn(move || {
        for (i, f) in frames.iter().enumerate() {
            raw.send(f);
            if i % 32 == 31 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })
}

/// Asserts `got` holds each of `sent` exactly once, byte for byte.
pub fn check_exact(what: &str, sent: &[Vec<u8>], got: &[Vec<u8>]) {
    assert_eq!(
        got.len(),
        sent.len(),
        "{what}: {} of {} frames",
        got.len(),
        sent.len()
    );
    let mut seen = HashSet::new();
    for g in got {
        let i = frame_index(g).expect("a test frame carries its index") as usize;
        assert!(seen.insert(i), "{what}: frame {i} twice");
        assert_eq!(
            g, &sent[i],
            "{what}: frame {i} arrived with different content"
        );
    }
}

/// Receives on `b` until `want` test frames to `port` arrived or `timeout`.
pub fn receive_test_frames(
    b: &mut Backend,
    want: usize,
    port: u16,
    timeout: Duration,
) -> Vec<Vec<u8>> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < end {
        let n = b
            .rx_batch(64, |pkt| {
                if is_test_frame(pkt, port) {
                    got.push(pkt.to_vec());
                }
            })
            .unwrap_or_else(|e| panic!("rx_batch: {}", chain(&e)));
        if n == 0 {
            b.wait(20).unwrap_or_else(|e| panic!("wait: {}", chain(&e)));
        }
    }
    got
}

/// Flushes until no TX slot is in flight (or `timeout`); returns the count
/// still in flight.
pub fn drain_tx(b: &mut Backend, timeout: Duration) -> u64 {
    let end = Instant::now() + timeout;
    loop {
        b.flush().unwrap_or_else(|e| panic!("flush: {}", chain(&e)));
        let left = b.stats().expect("stats").tx_in_flight;
        if left == 0 || Instant::now() >= end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Which backend, how to configure it for the suite, and how small a ring
/// makes it overflow.
pub struct Subject {
    /// The backend.
    pub kind: BackendKind,
    /// Tweaks on top of the defaults (all checks).
    pub tweak: fn(&mut BackendConfig),
    /// Makes the RX ring small enough to overflow with a few thousand frames.
    pub small: fn(&mut BackendConfig),
}

impl Subject {
    fn cfg(&self, ifname: &str) -> BackendConfig {
        let mut c = BackendConfig::new(ifname);
        (self.tweak)(&mut c);
        c
    }
}

/// The whole suite against one backend: receive, transmit, forward,
/// overflow, unsupported operations; and after each, nothing left behind
/// (the same backend opens again on the same interface at once, and TX has
/// nothing in flight).
pub fn conformance(s: &Subject) {
    let lab = Lab::new().expect("lab");
    receive_exactly(s, &lab);
    transmit_intact(s, &lab, Direction::Tx);
    // Opened for both directions (as a ping/pong end is), a backend still
    // has buffers to send from: the receive side does not take them all.
    transmit_intact(s, &lab, Direction::Both);
    forward_swaps_macs(s, &lab);
    overflow_moves_drop_counters(s, &lab);
    refuses_what_it_cannot_do(s, &lab);
    // Nothing left behind: the rx side opens once more with every direction.
    let _ns = lab.rx().enter().expect("enter rx");
    let b = open(s.kind, &s.cfg(lab.rx().ifname()), Direction::Both);
    assert_eq!(b.describe().kind, s.kind);
}

/// RX: exactly the N frames sent arrive, with their content.
pub fn receive_exactly(s: &Subject, lab: &Lab) {
    let port = TEST_PORT + 10;
    let frames = test_frames(lab, 300, port);
    let _ns = lab.rx().enter().expect("enter rx");
    let mut b = open(s.kind, &s.cfg(lab.rx().ifname()), Direction::Rx);
    let sender = send_from_gen(lab, frames.clone());
    let got = receive_test_frames(&mut b, frames.len(), port, Duration::from_secs(15));
    sender.join().expect("sender");
    // Nothing more arrives than was sent.
    let late = receive_test_frames(&mut b, 1, port, Duration::from_millis(100));
    check_exact(&format!("{} receive", s.kind), &frames, &got);
    assert!(late.is_empty(), "{}: a frame arrived twice", s.kind);
    let st = b.stats().expect("stats");
    assert!(st.rx_packets >= frames.len() as u64, "{st:?}");
    assert_eq!(
        st.kernel_drops, 0,
        "{}: drops without overflow: {st:?}",
        s.kind
    );
    assert_eq!(st.invalid, 0, "{st:?}");
}

/// TX: N frames handed to `tx_batch` arrive intact at the peer, and every
/// TX slot comes back.
pub fn transmit_intact(s: &Subject, lab: &Lab, dir: Direction) {
    let port = TEST_PORT + 11 + u16::from(dir == Direction::Both);
    let frames = test_frames(lab, 300, port);
    let peer = lab.rx().run(|| RawSocket::open(lab.rx().ifindex()));
    let _ns = lab.gen().enter().expect("enter gen");
    let mut b = open(s.kind, &s.cfg(lab.gen().ifname()), dir);
    let got = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            peer.recv_matching(frames.len(), Duration::from_secs(15), |f| {
                is_test_frame(f, port)
            })
        });
        let mut next = 0;
        let end = Instant::now() + Duration::from_secs(15);
        while next < frames.len() && Instant::now() < end {
            let n = b
                .tx_batch(16, |buf| {
                    let f = frames.get(next)?;
                    buf[..f.len()].copy_from_slice(f);
                    next += 1;
                    Some(f.len())
                })
                .unwrap_or_else(|e| panic!("tx_batch: {}", chain(&e)));
            if n == 0 {
                b.flush().expect("flush");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let left = drain_tx(&mut b, Duration::from_secs(5));
        assert_eq!(left, 0, "{}: TX slots still in flight", s.kind);
        h.join().expect("peer")
    });
    check_exact(&format!("{} transmit ({dir:?})", s.kind), &frames, &got);
    let st = b.stats().expect("stats");
    assert_eq!(st.tx_packets, frames.len() as u64, "{st:?}");
    assert_eq!(st.tx_errors, 0, "{st:?}");
}

/// Forward: frames come back to the sender with their MACs swapped and the
/// rest untouched; frames `f` refuses are dropped.
pub fn forward_swaps_macs(s: &Subject, lab: &Lab) {
    let port = TEST_PORT + 12;
    let frames = test_frames(lab, 200, port);
    let gen_raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let mut b = open(s.kind, &s.cfg(lab.rx().ifname()), Direction::Both);
    let mut forwarded = 0u32;
    let back = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            gen_raw.recv_matching(frames.len(), Duration::from_secs(20), |f| {
                is_test_frame(f, port)
            })
        });
        let sender = sc.spawn(|| {
            for (i, f) in frames.iter().enumerate() {
                gen_raw.send(f);
                if i % 32 == 31 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let end = Instant::now() + Duration::from_secs(15);
        while (forwarded as usize) < frames.len() && Instant::now() < end {
            let r = b
                .forward_batch(64, |pkt| {
                    if !is_test_frame(pkt, port) {
                        return false;
                    }
                    pktio::wire::swap_macs(pkt);
                    true
                })
                .unwrap_or_else(|e| panic!("forward_batch: {}", chain(&e)));
            forwarded += r.tx;
            if r.rx == 0 {
                b.flush().expect("flush");
                b.wait(20).expect("wait");
            }
        }
        sender.join().expect("sender");
        assert_eq!(drain_tx(&mut b, Duration::from_secs(5)), 0, "TX drained");
        h.join().expect("gen receiver")
    });
    assert_eq!(forwarded as usize, frames.len(), "{} forwarded", s.kind);
    assert_eq!(back.len(), frames.len(), "{}: frames back at gen", s.kind);
    let mut seen = HashSet::new();
    for f in &back {
        let i = frame_index(f).expect("index") as usize;
        assert!(seen.insert(i), "frame {i} twice");
        let sent = &frames[i];
        assert_eq!(&f[0..6], &sent[6..12], "dst MAC is the old src");
        assert_eq!(&f[6..12], &sent[0..6], "src MAC is the old dst");
        assert_eq!(&f[12..], &sent[12..], "payload untouched");
    }
}

/// Overflow: with a small ring and nobody reading, the kernel's drop
/// counter moves, and every frame is either received or counted as dropped
/// (by our socket or by the veth).
pub fn overflow_moves_drop_counters(s: &Subject, lab: &Lab) {
    let port = TEST_PORT + 13;
    let m = 3000;
    let frames = test_frames(lab, m, port);
    let _ns = lab.rx().enter().expect("enter rx");
    let mut cfg = s.cfg(lab.rx().ifname());
    (s.small)(&mut cfg);
    let mut b = open(s.kind, &cfg, Direction::Rx);
    let before = (lab.rx().stats(), lab.gen().stats());
    send_from_gen(lab, frames).join().expect("sender");
    // Drain what the ring holds (the full timeout: more never fits).
    let got = receive_test_frames(&mut b, m, port, Duration::from_millis(1500));
    let st = b.stats().expect("stats");
    let veth = lab.rx().stats().since(&before.0).rx_dropped
        + lab.gen().stats().since(&before.1).tx_dropped;
    assert!(
        st.kernel_drops > 0,
        "{}: no drops counted after {m} frames into a small ring: {st:?}",
        s.kind
    );
    assert!(got.len() < m, "{}: everything fit", s.kind);
    assert!(
        got.len() as u64 + st.kernel_drops + veth >= m as u64,
        "{}: {} received + {} dropped by us + {veth} by the veth < {m} sent: {st:?}",
        s.kind,
        got.len(),
        st.kernel_drops
    );
    // After the overflow the backend still receives: frame by frame (the
    // ring is tiny), each one sent only when the previous one arrived.
    let frames = test_frames(lab, 20, port + 1);
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let mut again = Vec::new();
    for f in &frames {
        raw.send(f);
        again.extend(receive_test_frames(
            &mut b,
            1,
            port + 1,
            Duration::from_secs(5),
        ));
    }
    check_exact(
        &format!("{} receive after overflow", s.kind),
        &frames,
        &again,
    );
}

fn expect_unsupported<T>(r: Result<T, BackendError>, kind: BackendKind, op: Operation) {
    match r {
        Err(BackendError::Unsupported {
            backend, operation, ..
        }) => {
            assert_eq!(operation, op);
            assert!(
                backend == kind || (kind == BackendKind::XdpSkb && backend == BackendKind::Xdp),
                "{backend} for {kind}"
            );
        }
        Err(e) => panic!("{kind} {op}: expected Unsupported, got {}", chain(&e)),
        Ok(_) => panic!("{kind} {op}: expected Unsupported, got Ok"),
    }
}

/// An operation a backend cannot do (as opened) is a typed error.
pub fn refuses_what_it_cannot_do(s: &Subject, lab: &Lab) {
    let _ns = lab.rx().enter().expect("enter rx");
    let cfg = s.cfg(lab.rx().ifname());
    {
        let mut rx_only = open(s.kind, &cfg, Direction::Rx);
        expect_unsupported(
            rx_only.tx_batch(1, |_| Some(60)),
            s.kind,
            Operation::Transmit,
        );
        expect_unsupported(
            rx_only.forward_batch(1, |_| true),
            s.kind,
            Operation::Forward,
        );
        let e = rx_only.tx_batch(1, |_| Some(60)).unwrap_err();
        assert!(e.to_string().contains("RX only"), "{e}");
        assert!(e.hint().is_some());
    }
    {
        let mut tx_only = open(s.kind, &cfg, Direction::Tx);
        expect_unsupported(tx_only.rx_batch(1, |_| {}), s.kind, Operation::Receive);
        expect_unsupported(tx_only.wait(0), s.kind, Operation::Receive);
        expect_unsupported(
            tx_only.forward_batch(1, |_| true),
            s.kind,
            Operation::Forward,
        );
        // A packet longer than the slot is refused, not truncated.
        match tx_only.tx_batch(1, |buf| Some(buf.len() + 1)) {
            Err(BackendError::PacketTooLong { len, capacity }) => assert_eq!(len, capacity + 1),
            r => panic!(
                "{}: expected PacketTooLong, got {:?}",
                s.kind,
                r.map_err(|e| chain(&e))
            ),
        }
    }
}

// The raw-socket helpers and the test frames are the lab tests' shared ones.
#[path = "../common/mod.rs"]
mod common;
pub use common::*;
