//! Overload: the peer sends faster than the application drains. The kernel
//! must drop (and count) what does not fit — `rx_ring_full` while the RX ring
//! is full, `rx_fill_ring_empty_descs` while the fill ring is empty — and
//! nothing may crash, leak a frame, or stall the socket afterwards.
//!
//! The flood comes from the gen end of a lab: an `XDP_TX` program run with
//! `BPF_F_TEST_XDP_LIVE_FRAMES` (kernel 5.18) transmits each copy of a frame
//! out of gen's veth; where the kernel refuses live frames (the typed
//! refusal), an AF_PACKET socket on gen sends the copies instead. Needs
//! root; without it the test prints SKIPPED.

use pktio::bpf::{progs, BpfError, Program};
use pktio::packet::PacketSocket;
use pktio::wire::UdpFrame;
use pktio::xdp::{Frame, Umem, UmemConfig, XskSocket, XskStats};
use pktio_lab::{require_root, Lab};

/// UMEM frames: few, so that the rings overflow after a short flood.
const FRAMES: u32 = 512;
/// RX ring entries: half the frames, so the RX ring fills before the fill ring empties.
const RX_RING: u32 = 256;
/// Frames per flood burst.
const BURST: u32 = 4096;
/// Bursts tried before giving up on a counter rising (a bound on the loop,
/// not a timing: each burst either moves the counter or the test fails).
const MAX_BURSTS: usize = 200;

/// The lab's 64-byte UDP frame from gen to rx, port 7777.
fn flood_frame(lab: &Lab) -> Vec<u8> {
    let spec = UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 9,
        dst_port: 7777,
    };
    let mut f = vec![0u8; 60];
    spec.emit(b"overload", 60, &mut f)
        .expect("a 60-byte frame fits");
    f
}

/// The flood's source: live frames, or a packet socket where the kernel
/// refuses them.
enum Source {
    Live(Program),
    Socket(PacketSocket),
}

impl Source {
    fn new(lab: &Lab, frame: &[u8]) -> Source {
        let gen = lab.gen();
        let tx = Program::load_xdp(&progs::xdp_tx(), &[]).expect("XDP_TX program");
        match gen.run(|| tx.run_live_frames(gen.ifindex(), frame, 1, 1)) {
            Ok(_) => Source::Live(tx),
            Err(e @ BpfError::LiveFramesRefused { .. }) => {
                eprintln!("flooding from a packet socket: {e}");
                let sock = gen
                    .run(|| PacketSocket::open(gen.ifname()))
                    .expect("AF_PACKET socket on gen");
                sock.bind(false).expect("bind to gen");
                Source::Socket(sock)
            }
            Err(e) => panic!("live frames: neither frames nor the typed refusal: {e}"),
        }
    }

    /// One burst of `BURST` copies of `frame` out of gen's veth.
    fn flood(&self, lab: &Lab, frame: &[u8]) {
        match self {
            Source::Live(tx) => {
                let gen = lab.gen();
                let r = gen
                    .run(|| tx.run_live_frames(gen.ifindex(), frame, BURST, 64))
                    .expect("live frames from gen");
                assert_eq!(r.frames, BURST);
            }
            Source::Socket(sock) => {
                let mut sent = 0;
                while sent < BURST {
                    if sock.send(frame).expect("send on gen") {
                        sent += 1;
                    } else {
                        std::thread::yield_now(); // the queue is full
                    }
                }
            }
        }
    }
}

fn stats(sock: &XskSocket<'_>) -> XskStats {
    sock.statistics().expect("XDP_STATISTICS")
}

/// Every frame is somewhere known, and the per-frame states agree.
fn assert_accounting(umem: &Umem, app: u32) {
    let a = umem.check_accounting().expect("frame accounting");
    assert_eq!(a.unaccounted(), 0, "{a:?}");
    assert_eq!(a.app, app, "frames held by the test: {a:?}");
    assert_eq!(a.free + a.app + a.rx_path + a.tx_path, FRAMES, "{a:?}");
}

#[test]
fn flood_without_draining_counts_drops_and_keeps_every_frame() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let frame = flood_frame(&lab);
    let source = Source::new(&lab, &frame);

    let ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig {
        frame_count: FRAMES,
        ..UmemConfig::default()
    })
    .expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .rx_size(RX_RING)
            .tx_size(0)
            .build(&umem)
            .expect("socket");
        assert_eq!(sock.fill_from_pool(u32::MAX).unwrap(), FRAMES);
        let before = stats(&sock);

        // 1. Stop reading: the RX ring fills, then the kernel drops and
        //    counts rx_ring_full.
        let mut bursts = 0;
        while stats(&sock).rx_ring_full == before.rx_ring_full {
            assert!(
                bursts < MAX_BURSTS,
                "rx_ring_full never rose: {:?}",
                stats(&sock)
            );
            source.flood(&lab, &frame);
            bursts += 1;
        }
        let s1 = stats(&sock);
        assert_eq!(
            sock.rx().unwrap().pending(),
            RX_RING,
            "the RX ring is full: {s1:?}"
        );
        assert_eq!(s1.rx_invalid_descs, 0, "{s1:?}");
        assert_accounting(&umem, 0);

        // 2. Read, but keep every frame (give nothing back): the kernel
        //    uses up the fill ring, then counts it empty.
        let mut held: Vec<Frame<'_>> = Vec::new();
        let mut bursts = 0;
        while stats(&sock).rx_fill_ring_empty_descs == before.rx_fill_ring_empty_descs {
            assert!(
                bursts < MAX_BURSTS,
                "fill_ring_empty never rose: {:?}, holding {}",
                stats(&sock),
                held.len()
            );
            held.extend(sock.rx().unwrap().receive(u32::MAX));
            assert_accounting(&umem, held.len() as u32);
            source.flood(&lab, &frame);
            bursts += 1;
        }
        held.extend(sock.rx().unwrap().receive(u32::MAX));
        let s2 = stats(&sock);
        assert!(s2.rx_ring_full >= s1.rx_ring_full, "{s2:?}");
        assert!(
            held.len() as u32 <= FRAMES && held.len() as u32 >= FRAMES - RX_RING,
            "the application holds most of the UMEM: {} of {FRAMES}",
            held.len()
        );
        for f in &held {
            assert_eq!(f.data(), &frame[..], "received frames are intact");
        }
        assert_accounting(&umem, held.len() as u32);

        // 3. Give everything back: the socket recovers and receives again.
        let fill = sock.fill().unwrap();
        while !held.is_empty() {
            assert!(
                fill.fill_from(&mut held) > 0,
                "the fill ring takes the frames back"
            );
        }
        assert_accounting(&umem, 0);
        let mut received = 0u64;
        let mut bursts = 0;
        let mut back: Vec<Frame<'_>> = Vec::new();
        while received < u64::from(BURST) {
            assert!(
                bursts < MAX_BURSTS,
                "the socket did not recover: {received} frames"
            );
            source.flood(&lab, &frame);
            bursts += 1;
            loop {
                let p = sock.parts();
                let (rx, fill) = (p.rx.unwrap(), p.fill.unwrap());
                let n = back.len();
                back.extend(rx.receive(64));
                if back.len() == n {
                    break;
                }
                received += (back.len() - n) as u64;
                fill.fill_from(&mut back);
            }
        }
        drop(back);
        let s3 = stats(&sock);
        assert_eq!(s3.rx_invalid_descs, 0, "{s3:?}");
        eprintln!("overload: RX ring full {s1:?}\n  fill ring empty {s2:?}\n  recovered {s3:?}");
        assert_accounting(&umem, 0);
    }
    drop(ns);
    // The socket is gone: everything is back in the pool or was with the
    // kernel when it closed; no frame is unaccounted for.
    assert_accounting(&umem, 0);
}
