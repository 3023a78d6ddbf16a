//! Multi-buffer AF_XDP in the lab (MTU 9000 veth): jumbo frames through
//! multi-buffer TX and RX intact, oversize frames dropped and counted, and
//! the MTU-versus-UMEM check. Needs root; prints SKIPPED otherwise.

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
    std::thread::sleep(Duration::from_millis(200));
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
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .tx_size(0)
            .program(&prog)
            .max_frame(Some(umem.max_packet()))
            .build(&umem)
            .expect("single-buffer socket with a max frame");
        sock.fill_from_pool(u32::MAX).unwrap();
        let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
        for f in [&small, &big] {
            raw.send(f);
        }
        let got = receive_packets(&mut sock, 1, port, Duration::from_secs(10));
        assert_eq!(got.len(), 1);
        assert!(got[0].0 == small);
        let end = Instant::now() + Duration::from_secs(5);
        while sock.statistics().unwrap().rx_dropped == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
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
            assert!(m.contains("37 UMEM frames"), "{m}");
            assert!(m.contains("UmemConfig::frame_size"), "{m}");
            assert!(m.contains("max_skb_frags"), "{m}");
        }
        e => panic!("expected FrameTooLarge, got {e:?}"),
    }
}
