//! Multi-buffer AF_XDP in the lab (MTU 9000 veth): jumbo frames through
//! multi-buffer TX and RX intact, oversize frames dropped and counted, and
//! the MTU-versus-UMEM check; the same through `Backend` (a jumbo frame is
//! one packet) and AF_PACKET V3 (a block must hold it). Needs root; prints
//! SKIPPED otherwise.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pktio::bpf::XdpMode;
use pktio::wire::UdpFrame;
use pktio::xdp::{
    AttachMode, Packet, SteerOptions, Umem, UmemConfig, XskError, XskProgram, XskSocket,
};
use pktio_lab::{require_root, Lab};

fn assert_accounted(umem: &Umem) {
    let a = umem.check_accounting().expect("frame accounting");
    assert_eq!(a.app, 0, "frames still held by the test: {a:?}");
    assert_eq!(a.unaccounted(), 0, "{a:?}");
}

/// A UDP frame of exactly `len` bytes to `port`, carrying `idx` and a
/// pattern that depends on every byte's position.
fn pattern_frame(lab: &Lab, len: usize, idx: u32, port: u16) -> Vec<u8> {
    let spec = UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 9,
        dst_port: port,
    };
    let mut payload = idx.to_be_bytes().to_vec();
    payload.extend((0..len - 42 - 4).map(|k| ((k * 7 + idx as usize * 13) % 251) as u8));
    let mut out = vec![0u8; len];
    spec.emit(&payload, len, &mut out).expect("frame fits");
    out
}

/// Sends `frames` from gen with a multi-buffer AF_XDP TX socket; returns
/// how many frames each packet took.
fn send_xdp_mb(lab: &Lab, frames: &[Vec<u8>]) -> Vec<usize> {
    lab.gen().run(|| {
        let umem = Umem::new(UmemConfig::default()).expect("gen umem");
        let mut segs = Vec::new();
        {
            let mut sock = XskSocket::builder(lab.gen().ifname())
                .rx_size(0)
                .attach_mode(AttachMode::None)
                .multi_buffer(true)
                .build(&umem)
                .expect("multi-buffer tx socket");
            assert!(sock.info().multi_buffer);
            assert!(sock.max_segments() >= 3, "{}", sock.max_segments());
            for f in frames {
                let p = Packet::from_bytes(&umem, f).expect("packet");
                segs.push(p.segment_count());
                let tx = sock.tx().unwrap();
                let mut b = tx.reserve(p.segment_count() as u32);
                b.push_packet(p).expect("room for the whole packet");
                b.commit();
                sock.kick_tx().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            let end = Instant::now() + Duration::from_secs(5);
            while umem.accounting().tx_path > 0 && Instant::now() < end {
                sock.kick_tx().unwrap();
                sock.completion().unwrap().reap(u32::MAX);
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(umem.accounting().tx_path, 0, "every descriptor completed");
            assert_eq!(sock.statistics().unwrap().tx_invalid_descs, 0);
        }
        assert_accounted(&umem);
        segs
    })
}

/// Receives packets to `port` on a multi-buffer socket until `want` came or
/// `timeout`; returns (bytes, segments) of each.
fn receive_packets(
    sock: &mut XskSocket<'_>,
    want: usize,
    port: u16,
    timeout: Duration,
) -> Vec<(Vec<u8>, usize)> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut back = Vec::new();
    while got.len() < want && Instant::now() < end {
        let p = sock.parts();
        let (rx, fill) = (p.rx.unwrap(), p.fill.unwrap());
        let mut batch = rx.receive_packets(16);
        for pkt in batch.by_ref() {
            let bytes = pkt.to_vec();
            if is_test_frame(&bytes, port) {
                got.push((bytes, pkt.segment_count()));
            }
            back.extend(pkt.into_frames());
        }
        assert_eq!(batch.truncated(), 0, "a packet cut in the middle");
        drop(batch);
        fill.fill_from(&mut back);
        if back.is_empty() {
            sock.poll_rx(10).unwrap();
        }
    }
    got
}

fn jumbo_round_trip(mode: AttachMode, want_mode: XdpMode) {
    let lab = Lab::builder().mtu(9000).build().expect("lab");
    let port = TEST_PORT + 90;
    let sizes = [60usize, 1514, 3840, 3841, 7000, 9014, 9014, 4096];
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern_frame(&lab, n, i as u32, port))
        .collect();
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .attach_mode(mode)
            .tx_size(0)
            .multi_buffer(true)
            .build(&umem)
            .expect("multi-buffer rx socket");
        assert_eq!(sock.info().attach, Some(want_mode), "{}", sock.info());
        assert_eq!(sock.info().max_frame, 9014);
        assert!(
            sock.program().unwrap().options().frags,
            "frags-aware program"
        );
        sock.fill_from_pool(u32::MAX).unwrap();
        let tx_segs = send_xdp_mb(&lab, &frames);
        // 3840 bytes fit a 4096-byte frame (4096 - 256 headroom).
        assert_eq!(tx_segs, [1, 1, 1, 2, 2, 3, 3, 2]);
        let got = receive_packets(&mut sock, frames.len(), port, Duration::from_secs(10));
        assert_eq!(got.len(), frames.len(), "received {} packets", got.len());
        for (bytes, segs) in &got {
            let i = frame_index(bytes).expect("index") as usize;
            assert_eq!(bytes.len(), sizes[i], "packet {i} length");
            assert!(
                bytes == &frames[i],
                "packet {i} ({} bytes) corrupted",
                sizes[i]
            );
            assert_eq!(*segs, tx_segs[i], "packet {i} segments on RX");
        }
        let st = sock.statistics().unwrap();
        assert_eq!((st.rx_dropped, st.rx_invalid_descs), (0, 0), "{st:?}");
    }
    assert_accounted(&umem);
}

#[test]
fn jumbo_frames_cross_multi_buffer_tx_and_rx_native() {
    require_root!();
    jumbo_round_trip(AttachMode::Driver, XdpMode::Driver);
}

#[test]
fn jumbo_frames_cross_multi_buffer_tx_and_rx_skb() {
    require_root!();
    jumbo_round_trip(AttachMode::Skb, XdpMode::Skb);
}

#[test]
fn jumbo_frames_from_af_packet_arrive_whole() {
    require_root!();
    let lab = Lab::builder().mtu(9000).build().expect("lab");
    let port = TEST_PORT + 91;
    let frames: Vec<Vec<u8>> = (0..20)
        .map(|i| pattern_frame(&lab, 9014 - (i as usize * 331), i, port))
        .collect();
    let _ns = lab.rx().enter().expect("enter rx");
    // 2048-byte frames: up to 1792 bytes each, so 9014 bytes take 6.
    let umem = Umem::new(UmemConfig {
        frame_size: 2048,
        ..Default::default()
    })
    .expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .tx_size(0)
            .multi_buffer(true)
            .build(&umem)
            .expect("socket");
        sock.fill_from_pool(u32::MAX).unwrap();
        let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
        for f in &frames {
            raw.send(f);
        }
        let got = receive_packets(&mut sock, frames.len(), port, Duration::from_secs(10));
        assert_eq!(got.len(), frames.len());
        for (bytes, segs) in &got {
            let i = frame_index(bytes).unwrap() as usize;
            assert!(bytes == &frames[i], "packet {i} corrupted");
            assert_eq!(*segs, bytes.len().div_ceil(1792), "packet {i}");
        }
    }
    assert_accounted(&umem);
}

#[test]
fn a_frame_over_the_configured_maximum_is_dropped_and_counted() {
    require_root!();
    let lab = Lab::builder().mtu(9000).build().expect("lab");
    let port = TEST_PORT + 92;
    let small = pattern_frame(&lab, 3000, 0, port);
    let big = pattern_frame(&lab, 9014, 1, port);
    let small2 = pattern_frame(&lab, 4000, 2, port);
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        // Multi-buffer, but frames above 4000 bytes are not wanted.
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .tx_size(0)
            .multi_buffer(true)
            .max_frame(Some(4000))
            .build(&umem)
            .expect("socket");
        assert_eq!(sock.info().max_frame, 4000);
        sock.fill_from_pool(u32::MAX).unwrap();
        let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
        for f in [&small, &big, &small2] {
            raw.send(f);
        }
        let got = receive_packets(&mut sock, 2, port, Duration::from_secs(10));
        assert_eq!(got.len(), 2);
        assert!(got[0].0 == small && got[1].0 == small2, "the others intact");
        // Nothing else arrives: the big one is gone, and counted.
        let more = receive_packets(&mut sock, 1, port, Duration::from_millis(300));
        assert!(more.is_empty(), "the oversize frame was delivered");
        let drops = sock.program().unwrap().oversize_drops().unwrap();
        assert_eq!(drops, Some(1));
    }
    assert_accounted(&umem);

    // Without multi-buffer and without a limit in the program, the kernel
    // drops what does not fit one frame and counts it in rx_dropped. (The
    // queue is released a few ms after the first socket closes; the UMEM
    // holds the first socket's fd.)
    drop(umem);
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        let prog = XskProgram::attach_with(
            lab.rx().ifname(),
            lab.rx().ifindex(),
            AttachMode::Driver,
            1,
            &SteerOptions {
                frags: true,
                ..Default::default()
            },
        )
        .expect("program");
        let mut sock = once_the_queue_is_free(|| {
            XskSocket::builder(lab.rx().ifname())
                .tx_size(0)
                .program(&prog)
                .max_frame(Some(umem.max_packet()))
                .build(&umem)
        });
        sock.fill_from_pool(u32::MAX).unwrap();
        let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
        for f in [&small, &big] {
            raw.send(f);
        }
        let got = receive_packets(&mut sock, 1, port, Duration::from_secs(10));
        assert_eq!(got.len(), 1);
        assert!(got[0].0 == small);
        pktio_lab::wait::until(Duration::from_secs(5), "a drop counted", || {
            sock.statistics().unwrap().rx_dropped > 0
        });
        assert_eq!(sock.statistics().unwrap().rx_dropped, 1);
    }
    assert_accounted(&umem);
}

#[test]
fn an_mtu_the_umem_cannot_carry_is_a_clear_error() {
    require_root!();
    let lab = Lab::builder().mtu(9000).build().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    let e = XskSocket::builder(lab.rx().ifname())
        .build(&umem)
        .expect_err("9014-byte frames do not fit 4096-byte frames");
    match &e {
        XskError::FrameTooLarge(m) => {
            // One line, no runs of spaces from a broken string continuation.
            assert!(!m.contains("  "), "{m}");
            assert!(m.contains("MTU 9000"), "{m}");
            assert!(m.contains("multi_buffer"), "{m}");
            assert!(m.contains("UmemConfig::frame_size"), "{m}");
        }
        e => panic!("expected FrameTooLarge, got {e:?}"),
    }
    // With multi-buffer it binds.
    XskSocket::builder(lab.rx().ifname())
        .multi_buffer(true)
        .build(&umem)
        .expect("multi-buffer socket");

    // 65000-byte MTU in 2048-byte frames: 37 segments, over the limit.
    lab.rx().set_mtu(65000).expect("mtu");
    let small = Umem::new(UmemConfig {
        frame_size: 2048,
        ..Default::default()
    })
    .expect("umem");
    let e = XskSocket::builder(lab.rx().ifname())
        .multi_buffer(true)
        .build(&small)
        .expect_err("too many segments");
    match &e {
        XskError::FrameTooLarge(m) => {
            // One line, no runs of spaces from a broken string continuation.
            assert!(!m.contains("  "), "{m}");
            assert!(m.contains("37 UMEM frames"), "{m}");
            assert!(m.contains("UmemConfig::frame_size"), "{m}");
            assert!(m.contains("max_skb_frags"), "{m}");
        }
        e => panic!("expected FrameTooLarge, got {e:?}"),
    }
}

/// Receives through `b` until `want` test packets to `port` came (or 10 s):
/// (total length, segment lengths) of each, via `rx_batch_segments`.
fn backend_receive(
    b: &mut pktio::backend::Backend,
    want: usize,
    port: u16,
) -> Vec<(Vec<u8>, Vec<usize>)> {
    use pktio::backend::PacketIo;
    let end = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < end {
        let n = b
            .rx_batch_segments(64, |segs| {
                let bytes: Vec<u8> = segs.iter().flat_map(|s| s.iter().copied()).collect();
                if is_test_frame(&bytes, port) {
                    got.push((bytes, segs.iter().map(|s| s.len()).collect()));
                }
            })
            .expect("rx_batch_segments");
        if n == 0 {
            b.wait(10).expect("wait");
        }
    }
    got
}

#[test]
fn a_jumbo_frame_through_the_multi_buffer_backend_is_one_packet() {
    use pktio::backend::{Backend, BackendConfig, BackendKind, Direction, PacketIo};
    require_root!();
    let lab = Lab::builder().mtu(9000).build().expect("lab");
    let port = TEST_PORT + 93;
    let frames: Vec<Vec<u8>> = (0..4).map(|i| pattern_frame(&lab, 9000, i, port)).collect();
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let mut cfg = BackendConfig::new(lab.rx().ifname());
    cfg.direction = Direction::Rx;
    cfg.xdp_bind = pktio::backend::BindMode::Copy;
    cfg.xdp_attach = AttachMode::Driver;
    cfg.multi_buffer = true;
    let mut b = Backend::open(BackendKind::Xdp, &cfg).expect("multi-buffer AF_XDP backend");
    assert!(
        b.describe().mode.contains("multi-buffer"),
        "{}",
        b.describe()
    );

    // rx_batch_segments: one packet, three segments (3840 + 3840 + 1320).
    raw.send(&frames[0]);
    let got = backend_receive(&mut b, 1, port);
    assert_eq!(got.len(), 1, "the jumbo frame arrived");
    assert!(got[0].0 == frames[0], "intact");
    assert_eq!(got[0].1, [3840, 3840, 1320]);

    // rx_batch: the same packets, each lent as one 9000-byte slice.
    for f in &frames[1..] {
        raw.send(f);
    }
    let before = b.stats().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 3 && Instant::now() < end {
        let n = b
            .rx_batch(64, |p| {
                if is_test_frame(p, port) {
                    seen.push(p.to_vec());
                }
            })
            .unwrap();
        if n == 0 {
            b.wait(10).unwrap();
        }
    }
    assert_eq!(seen.len(), 3);
    for s in &seen {
        let i = frame_index(s).unwrap() as usize;
        assert!(s == &frames[i], "packet {i} intact in one slice");
    }
    let st = b.stats().unwrap();
    // Counted as packets of 9000 bytes, not descriptors (other traffic,
    // if any, is whole packets too).
    let (pk, by) = (
        st.rx_packets - before.rx_packets,
        st.rx_bytes - before.rx_bytes,
    );
    assert!(pk >= 3, "{st:?}");
    assert!(by >= 3 * 9000, "{st:?}");
    assert_eq!(st.invalid, 0, "{st:?}");
    assert_eq!(st.kernel_drops, 0, "{st:?}");
    let a = b
        .check_accounting()
        .expect("frame accounting")
        .expect("AF_XDP");
    assert_eq!(a.unaccounted(), 0, "{a:?}");
    // Every segment's frame is held for the fill ring: the four packets'
    // 12 frames wait in the backend's refill stash (it hands frames back
    // 64 at a time), the rest are on the RX path.
    assert_eq!(a.app, 12, "{a:?}");
    assert_eq!(a.free + a.app + a.rx_path, a.total, "{a:?}");
}

#[test]
fn af_packet_v3_receives_a_jumbo_frame_whole_or_says_the_block_is_too_small() {
    use pktio::backend::{Backend, BackendConfig, BackendError, BackendKind, Direction};
    use pktio::packet::PacketError;
    require_root!();
    let lab = Lab::builder().mtu(9000).build().expect("lab");
    let port = TEST_PORT + 94;
    let frame = pattern_frame(&lab, 9000, 0, port);
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let mut cfg = BackendConfig::new(lab.rx().ifname());
    cfg.direction = Direction::Rx;

    // An 8 KiB block cannot hold a 9018-byte frame.
    cfg.block_size = 8192;
    match Backend::open(BackendKind::PacketV3, &cfg) {
        Err(BackendError::Packet(PacketError::Geometry { problem, .. })) => {
            assert!(problem.contains("MTU 9000"), "{problem}");
            assert!(problem.contains("block_size >= 12288"), "{problem}");
        }
        r => panic!("expected a geometry error, got {:?}", r.map(|b| b.kind())),
    }
    // Multi-buffer is an AF_XDP option.
    cfg.block_size = 0;
    cfg.multi_buffer = true;
    match Backend::open(BackendKind::PacketV3, &cfg) {
        Err(e @ BackendError::Unsupported { .. }) => {
            assert!(e.to_string().contains("multi-buffer"), "{e}")
        }
        r => panic!("expected Unsupported, got {:?}", r.map(|b| b.kind())),
    }
    cfg.multi_buffer = false;

    // The default 256 KiB block: whole.
    let mut b = Backend::open(BackendKind::PacketV3, &cfg).expect("V3");
    raw.send(&frame);
    let got = backend_receive(&mut b, 1, port);
    assert_eq!(got.len(), 1);
    assert!(got[0].0 == frame, "intact");
    assert_eq!(got[0].1, [9000], "one segment");
}
