//! AF_XDP in the lab: receive, transmit, forward, shared UMEM, mode
//! fallbacks and bad input, each on its own lab (run in parallel).
//! Needs root; without it each test prints SKIPPED and returns.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use pktio::bpf::XdpMode;
use pktio::wire::UdpFrame;
use pktio::xdp::{
    AttachMode, BindMode, BoundMode, Frame, Umem, UmemConfig, XskError, XskProgram, XskSocket,
};
use pktio_lab::{require_root, Lab};

/// Asserts that every frame is back in the pool or with the kernel and that
/// the per-frame states agree with the counters.
fn assert_accounted(umem: &Umem) {
    let a = umem.check_accounting().expect("frame accounting");
    assert_eq!(a.app, 0, "frames still held by the test: {a:?}");
    assert_eq!(a.unaccounted(), 0, "{a:?}");
}

/// Receives on `sock` until `want` test frames arrived or `timeout`, giving
/// every frame straight back to the fill ring. Returns the test frames' bytes.
fn receive_test_frames(
    sock: &mut XskSocket<'_>,
    want: usize,
    port: u16,
    timeout: Duration,
) -> Vec<Vec<u8>> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut back: Vec<Frame<'_>> = Vec::new();
    while got.len() < want && Instant::now() < end {
        let p = sock.parts();
        let (rx, fill) = (p.rx.unwrap(), p.fill.unwrap());
        for f in rx.receive(64) {
            if is_test_frame(f.data(), port) {
                got.push(f.data().to_vec());
            }
            back.push(f);
        }
        fill.fill_from(&mut back);
        if back.is_empty() {
            sock.poll_rx(10).unwrap();
        }
    }
    drop(back);
    got
}

/// Sends `frames` from the gen namespace through an AF_PACKET socket, a few
/// at a time so the veth ring (256) never overflows.
fn send_from_gen(lab: &Lab, frames: &[Vec<u8>]) {
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    for (i, f) in frames.iter().enumerate() {
        raw.send(f);
        if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn check_exact(sent: &[Vec<u8>], got: &[Vec<u8>]) {
    assert_eq!(
        got.len(),
        sent.len(),
        "received {} of {} frames",
        got.len(),
        sent.len()
    );
    let mut seen = HashSet::new();
    for g in got {
        let i = frame_index(g).expect("a test frame carries its index") as usize;
        assert!(seen.insert(i), "frame {i} received twice");
        assert_eq!(g, &sent[i], "frame {i} arrived with different content");
    }
}

fn rx_exactly_n(mode: AttachMode, want: XdpMode, cfg: UmemConfig) {
    let lab = Lab::new().expect("lab");
    assert_lab_addresses(&lab);
    let frames = test_frames(&lab, 300, TEST_PORT);
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(cfg).expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .attach_mode(mode)
            .tx_size(0)
            .build(&umem)
            .expect("socket");
        assert_eq!(sock.info().attach, Some(want), "{}", sock.info());
        assert_eq!(sock.info().mode, BoundMode::Copy, "veth has no zero-copy");
        sock.fill_from_pool(u32::MAX).unwrap();
        send_from_gen(&lab, &frames);
        let got = receive_test_frames(&mut sock, frames.len(), TEST_PORT, Duration::from_secs(10));
        check_exact(&frames, &got);
        let stats = sock.statistics().unwrap();
        assert_eq!(stats.rx_invalid_descs, 0);
    }
    assert_accounted(&umem);
}

#[test]
fn rx_exactly_the_frames_sent_native() {
    require_root!();
    rx_exactly_n(AttachMode::Driver, XdpMode::Driver, UmemConfig::default());
}

#[test]
fn rx_exactly_the_frames_sent_unaligned_2k_frames_with_headroom() {
    require_root!();
    let cfg = UmemConfig {
        frame_size: 2048,
        frame_count: 2048,
        headroom: 128,
        unaligned: true,
        ..UmemConfig::default()
    };
    rx_exactly_n(AttachMode::Driver, XdpMode::Driver, cfg);
}

#[test]
fn rx_exactly_the_frames_sent_skb() {
    require_root!();
    rx_exactly_n(AttachMode::Skb, XdpMode::Skb, UmemConfig::default());
}

#[test]
fn tx_frames_arrive_intact() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let frames = test_frames(&lab, 300, TEST_PORT + 1);
    let peer = lab.rx().run(|| RawSocket::open(lab.rx().ifindex()));
    let _ns = lab.gen().enter().expect("enter gen");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        let mut sock = XskSocket::builder(lab.gen().ifname())
            .rx_size(0)
            .build(&umem)
            .expect("socket");
        let receiver = std::thread::scope(|s| {
            let h = s.spawn(|| {
                peer.recv_matching(frames.len(), Duration::from_secs(10), |f| {
                    is_test_frame(f, TEST_PORT + 1)
                })
            });
            let mut next = 0;
            let end = Instant::now() + Duration::from_secs(10);
            while next < frames.len() && Instant::now() < end {
                let p = sock.parts();
                let (tx, comp) = (p.tx.unwrap(), p.completion.unwrap());
                comp.reap(u32::MAX);
                let mut b = tx.reserve(16);
                while b.remaining() > 0 && next < frames.len() {
                    let mut f = umem.alloc().expect("a free frame");
                    f.write(&frames[next]).unwrap();
                    b.push(f).unwrap();
                    next += 1;
                }
                b.commit();
                sock.kick_tx().unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            // Let the last completions come back.
            let end = Instant::now() + Duration::from_secs(5);
            while umem.accounting().tx_path > 0 && Instant::now() < end {
                sock.kick_tx().unwrap();
                sock.completion().unwrap().reap(u32::MAX);
                std::thread::sleep(Duration::from_millis(1));
            }
            h.join().unwrap()
        });
        check_exact(&frames, &receiver);
        assert_eq!(umem.accounting().tx_path, 0, "every sent frame completed");
    }
    assert_accounted(&umem);
}

#[test]
fn l2fwd_swaps_macs_without_copying() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let frames = test_frames(&lab, 200, TEST_PORT + 2);
    let gen_raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .build(&umem)
            .expect("socket");
        sock.fill_from_pool(u32::MAX).unwrap();
        let mut forwarded_addrs = HashSet::new();
        let mut completed_addrs = HashSet::new();
        let back = std::thread::scope(|s| {
            let h = s.spawn(|| {
                gen_raw.recv_matching(frames.len(), Duration::from_secs(15), |f| {
                    is_test_frame(f, TEST_PORT + 2)
                })
            });
            for (i, f) in frames.iter().enumerate() {
                gen_raw.send(f);
                if i % 32 == 31 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            let end = Instant::now() + Duration::from_secs(10);
            while completed_addrs.len() < frames.len() && Instant::now() < end {
                let p = sock.parts();
                let (rx, tx, fill, comp) = (
                    p.rx.unwrap(),
                    p.tx.unwrap(),
                    p.fill.unwrap(),
                    p.completion.unwrap(),
                );
                for f in comp.complete(64) {
                    completed_addrs.insert(f.addr());
                    let mut v = vec![f];
                    fill.fill_from(&mut v);
                }
                let mut b = tx.reserve(64);
                for mut f in rx.receive(b.remaining()) {
                    if !is_test_frame(f.data(), TEST_PORT + 2) {
                        continue; // dropped: back to the pool
                    }
                    pktio::wire::swap_macs(f.data_mut());
                    forwarded_addrs.insert(f.addr());
                    b.push(f).unwrap();
                }
                b.commit();
                sock.kick_tx().unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
            h.join().unwrap()
        });
        // The frames that went out are the very UMEM chunks that came in.
        assert_eq!(forwarded_addrs.len(), frames.len());
        assert_eq!(
            completed_addrs, forwarded_addrs,
            "TX used the RX descriptors' addresses"
        );
        assert_eq!(back.len(), frames.len(), "all frames came back");
        let mut seen = HashSet::new();
        for f in &back {
            let i = frame_index(f).unwrap() as usize;
            assert!(seen.insert(i));
            let sent = &frames[i];
            assert_eq!(&f[0..6], &sent[6..12], "dst MAC is the old src");
            assert_eq!(&f[6..12], &sent[0..6], "src MAC is the old dst");
            assert_eq!(&f[12..], &sent[12..], "payload untouched");
        }
    }
    assert_accounted(&umem);
}

#[test]
fn shared_umem_two_queues_two_sockets() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let per_queue = 100;
    // Receivers: two sockets on one UMEM, queues 0 and 1, one program.
    let rx_ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    let ifindex = lab.rx().ifindex();
    let prog =
        XskProgram::attach(lab.rx().ifname(), ifindex, AttachMode::Auto, 2).expect("program");
    let mut a = XskSocket::builder(lab.rx().ifname())
        .queue(0)
        .tx_size(0)
        .program(&prog)
        .build(&umem)
        .expect("socket q0");
    let mut b = XskSocket::builder(lab.rx().ifname())
        .queue(1)
        .tx_size(0)
        .program(&prog)
        .build(&umem)
        .expect("socket q1");
    assert!(!a.info().shared_umem && b.info().shared_umem);
    assert!(b.fill().is_some(), "another queue gets its own fill ring");
    a.fill_from_pool(1024).unwrap();
    b.fill_from_pool(1024).unwrap();
    drop(rx_ns);

    // Senders: AF_XDP TX on gen queues 0 and 1 (a frame sent on gen queue N
    // arrives on rx queue N), also sharing one UMEM.
    let spec = |port| UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 9,
        dst_port: port,
    };
    lab.gen().run(|| {
        let gu = Umem::new(UmemConfig::default()).expect("gen umem");
        let mut socks: Vec<_> = (0..2)
            .map(|q| {
                XskSocket::builder(lab.gen().ifname())
                    .queue(q)
                    .rx_size(0)
                    .attach_mode(AttachMode::None)
                    .build(&gu)
                    .expect("tx socket")
            })
            .collect();
        for (q, s) in socks.iter_mut().enumerate() {
            let spec = spec(5000 + q as u16);
            for i in 0..per_queue {
                let mut f = gu.alloc().unwrap();
                let n = spec
                    .emit(&(i as u32).to_be_bytes(), 60, f.buffer_mut())
                    .unwrap();
                f.set_len(n as u32).unwrap();
                let mut batch = s.tx().unwrap().reserve(1);
                batch.push(f).unwrap();
                batch.commit();
                s.kick_tx().unwrap();
                if i % 16 == 15 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        pktio_lab::wait::until(Duration::from_secs(5), "every gen frame completed", || {
            for s in &mut socks {
                s.kick_tx().unwrap();
                s.completion().unwrap().reap(u32::MAX);
            }
            gu.accounting().tx_path == 0
        });
    });

    let got_a = receive_test_frames(&mut a, per_queue, 5000, Duration::from_secs(5));
    let got_b = receive_test_frames(&mut b, per_queue, 5001, Duration::from_secs(5));
    assert_eq!(got_a.len(), per_queue, "queue 0 socket");
    assert_eq!(got_b.len(), per_queue, "queue 1 socket");
    let idx: HashMap<u32, usize> = got_b
        .iter()
        .filter_map(|f| frame_index(f))
        .map(|i| (i, 1))
        .collect();
    assert_eq!(idx.len(), per_queue, "distinct frames on queue 1");
    drop(a);
    drop(b);
    assert_accounted(&umem);
}

#[test]
fn auto_binds_copy_on_veth_and_says_why_require_zero_copy_fails() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    let err = XskSocket::builder(lab.rx().ifname())
        .bind_mode(BindMode::RequireZeroCopy)
        .build(&umem)
        .expect_err("veth cannot do zero-copy");
    match &err {
        XskError::ZeroCopyUnsupported { driver, reason, .. } => {
            assert_eq!(driver, "veth");
            assert!(reason.contains("EOPNOTSUPP"), "{reason}");
        }
        e => panic!("expected ZeroCopyUnsupported, got {e:?}"),
    }
    assert!(
        err.hint().is_some_and(|h| h.contains("copy")),
        "{:?}",
        err.hint()
    );
    // The failed build gave the UMEM's registration socket back: Auto works.
    let sock = XskSocket::builder(lab.rx().ifname())
        .build(&umem)
        .expect("auto");
    assert_eq!(sock.info().mode, BoundMode::Copy);
    let why = sock.info().mode_reason.clone().unwrap_or_default();
    assert!(
        why.contains("zero-copy refused") && why.contains("veth"),
        "{why}"
    );
    assert!(
        sock.info().to_string().contains("copy mode"),
        "{}",
        sock.info()
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    let e = XskSocket::builder("pktio-nonexistent0")
        .build(&umem)
        .unwrap_err();
    assert!(matches!(e, XskError::NoInterface { .. }), "{e:?}");
    let e = XskSocket::builder(lab.rx().ifname())
        .queue(7)
        .attach_mode(AttachMode::None)
        .build(&umem)
        .unwrap_err();
    match e {
        XskError::NoSuchQueue {
            queue: 7,
            queues: 1,
            ..
        } => {}
        e => panic!("expected NoSuchQueue, got {e:?}"),
    }
    let e = XskSocket::builder(lab.rx().ifname())
        .rx_size(1000)
        .build(&umem)
        .unwrap_err();
    assert!(e.to_string().contains("not a power of two"), "{e}");
    let e = Umem::new(UmemConfig {
        frame_size: 3000,
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("frame size 3000"), "{e}");
    // After all those failures the UMEM still binds.
    XskSocket::builder(lab.rx().ifname())
        .build(&umem)
        .expect("a good socket after bad ones");
}

#[test]
fn interface_vanishing_is_reported() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    let mut sock = XskSocket::builder(lab.rx().ifname())
        .build(&umem)
        .expect("socket");
    sock.fill_from_pool(u32::MAX).unwrap();
    assert!(sock.check_interface().is_ok());
    lab.delete_link().expect("delete the veth");
    match sock.check_interface() {
        Err(XskError::InterfaceGone { .. }) => {}
        r => panic!("expected InterfaceGone, got {r:?}"),
    }
    // The rings are still safe to use: nothing arrives, nothing panics.
    assert_eq!(sock.rx().unwrap().receive(64).count(), 0);
    drop(sock);
    assert_accounted(&umem);
}

/// `prefill` puts frames on the fill ring inside `build`, before the socket
/// is steered to: traffic already flowing finds buffers from the first
/// packet, so the kernel counts no "fill ring empty" drop.
#[test]
fn prefill_fills_before_steering_so_no_packet_finds_an_empty_ring() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let frames = test_frames(&lab, 300, TEST_PORT);
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .tx_size(0)
            .prefill(256)
            .build(&umem)
            .expect("socket");
        // The frames went to the fill ring during build, and only 256 of them.
        let a = umem.accounting();
        assert_eq!(a.rx_path, 256, "{a:?}");
        send_from_gen(&lab, &frames[..200]);
        let got = receive_test_frames(&mut sock, 200, TEST_PORT, Duration::from_secs(10));
        check_exact(&frames[..200], &got);
        let stats = sock.statistics().unwrap();
        assert_eq!(stats.rx_fill_ring_empty_descs, 0, "{stats:?}");
        assert_eq!(stats.rx_dropped, 0, "{stats:?}");
    }
    assert_accounted(&umem);
}
