//! RX and TX metadata in the lab: the driver's RX hash per packet (veth
//! implements the kfuncs), the typed "unsupported" answers, and TX checksum
//! requests plus completion timestamps in copy mode. Needs root.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use pktio::bpf::{BpfError, XdpMode};
use pktio::wire::UdpFrame;
use pktio::xdp::{
    AttachMode, ChecksumRequest, DeviceXdpFeatures, MetaValue, Packet, SteerOptions, Support,
    TxMetadataMode, TxRequest, Umem, UmemConfig, XskError, XskProgram, XskSocket,
};
use pktio_lab::{require_root, Lab};

fn assert_accounted(umem: &Umem) {
    let a = umem.check_accounting().expect("frame accounting");
    assert_eq!(a.app, 0, "{a:?}");
    assert_eq!(a.unaccounted(), 0, "{a:?}");
}

fn spec(lab: &Lab, src_port: u16, dst_port: u16) -> UdpFrame {
    UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port,
        dst_port,
    }
}

fn frame(s: &UdpFrame, idx: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut payload = idx.to_be_bytes().to_vec();
    payload.extend((0..len - 46).map(|k| (k as u32 ^ idx) as u8));
    s.emit(&payload, len, &mut out).unwrap();
    out
}

#[test]
fn rx_hash_per_packet_on_veth() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let port = TEST_PORT + 80;
    // Two flows (source ports 1000 and 2000), five frames each.
    let (a, b) = (spec(&lab, 1000, port), spec(&lab, 2000, port));
    let frames: Vec<Vec<u8>> = (0..10)
        .map(|i| frame(if i % 2 == 0 { &a } else { &b }, i, 100 + i as usize))
        .collect();
    let _ns = lab.rx().enter().expect("enter rx");

    // What the drivers declare: veth implements the kfuncs, lo does not.
    let veth = DeviceXdpFeatures::query(lab.rx().ifindex()).expect("netdev netlink");
    assert!(veth.rx_hash && veth.rx_timestamp, "{veth:?}");
    assert!(veth.rx_sg, "veth does native multi-buffer: {veth:?}");
    let lo = DeviceXdpFeatures::query(1).expect("netdev netlink on lo");
    assert!(!lo.rx_hash && !lo.rx_timestamp, "{lo:?}");

    let umem = Umem::new(UmemConfig::default()).expect("umem");
    {
        let mut sock = XskSocket::builder(lab.rx().ifname())
            .tx_size(0)
            .rx_metadata(true)
            .build(&umem)
            .expect("socket with RX metadata");
        assert_eq!(sock.info().attach, Some(XdpMode::Driver));
        let sup = sock.rx_metadata_support().expect("asked for").clone();
        assert!(sup.hash.is_yes() && sup.timestamp.is_yes(), "{sup:?}");
        sock.fill_from_pool(u32::MAX).unwrap();
        let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
        for f in &frames {
            raw.send(f);
        }
        let mut hashes: HashMap<u16, Vec<u32>> = HashMap::new();
        let mut seen = 0;
        let mut back = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while seen < frames.len() && Instant::now() < end {
            let p = sock.parts();
            let (rx, fill) = (p.rx.unwrap(), p.fill.unwrap());
            for mut pkt in rx.receive_packets(64) {
                let bytes = pkt.to_vec();
                let meta = pkt.take_rx_metadata();
                if is_test_frame(&bytes, port) {
                    seen += 1;
                    let m = meta.expect("the program wrote metadata");
                    assert_eq!(m.len as usize, bytes.len(), "length the program saw");
                    let (h, ty) = m.hash.value().expect("veth gives an RX hash");
                    assert_ne!(h, 0);
                    assert!(ty.is_l4(), "a flow hash over the ports: {ty:?}");
                    // veth has no hardware clock: no timestamp, but the
                    // kfunc exists (not Unsupported).
                    assert!(
                        matches!(m.timestamp, MetaValue::NoData | MetaValue::Value(_)),
                        "{:?}",
                        m.timestamp
                    );
                    let sport = u16::from_be_bytes([bytes[34], bytes[35]]);
                    hashes.entry(sport).or_default().push(h);
                    // Read once: the mark is cleared.
                    assert!(pkt.take_rx_metadata().is_none());
                }
                back.extend(pkt.into_frames());
            }
            fill.fill_from(&mut back);
            if back.is_empty() {
                sock.poll_rx(10).unwrap();
            }
        }
        assert_eq!(seen, frames.len());
        // Same flow, same hash; the two flows differ.
        let ha = &hashes[&1000];
        let hb = &hashes[&2000];
        assert!(ha.iter().all(|h| *h == ha[0]), "{ha:?}");
        assert!(hb.iter().all(|h| *h == hb[0]), "{hb:?}");
        assert_ne!(ha[0], hb[0]);
    }
    assert_accounted(&umem);
}

#[test]
fn rx_metadata_unsupported_answers() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    // Generic XDP has no metadata kfuncs: refused before anything is built.
    let e = XskSocket::builder(lab.rx().ifname())
        .rx_metadata(true)
        .attach_mode(AttachMode::Skb)
        .build(&umem)
        .unwrap_err();
    assert!(e.to_string().contains("driver (native) mode"), "{e}");
    let e = XskProgram::attach_with(
        lab.rx().ifname(),
        lab.rx().ifindex(),
        AttachMode::Skb,
        1,
        &SteerOptions {
            rx_metadata: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    match e {
        XskError::Bpf {
            source: BpfError::DevBoundMode { .. },
            ..
        } => {}
        e => panic!("expected DevBoundMode, got {e:?}"),
    }
    // A socket without RX metadata reports none, and its frames carry none.
    let sock = XskSocket::builder(lab.rx().ifname())
        .tx_size(0)
        .build(&umem)
        .expect("plain socket");
    assert!(sock.rx_metadata_support().is_none());
    let mut f = umem.alloc().unwrap();
    assert!(f.take_rx_metadata().is_none());
}

#[test]
fn tx_checksum_and_completion_timestamps_in_copy_mode() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let port = TEST_PORT + 81;
    let s = spec(&lab, 9, port);
    let frames: Vec<Vec<u8>> = (0..20)
        .map(|i| frame(&s, i, 60 + 37 * i as usize))
        .collect();
    let peer = lab.rx().run(|| RawSocket::open(lab.rx().ifindex()));
    let _ns = lab.gen().enter().expect("enter gen");
    let umem = Umem::new(UmemConfig {
        tx_metadata: TxMetadataMode::SoftwareChecksum,
        ..Default::default()
    })
    .expect("umem with TX metadata");
    assert_eq!(umem.tx_metadata_len(), 24);
    {
        let mut sock = XskSocket::builder(lab.gen().ifname())
            .rx_size(0)
            .attach_mode(AttachMode::None)
            .build(&umem)
            .expect("socket");
        let sup = sock.tx_metadata_support().clone();
        assert!(sup.checksum.is_yes() && sup.timestamp.is_yes(), "{sup:?}");
        let req_ts = TxRequest {
            checksum: None,
            timestamp: true,
        };
        sock.check_tx_request(&req_ts).unwrap();
        let tai = || {
            let mut t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `t` is a live timespec the call writes into.
            assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_TAI, &mut t) }, 0);
            t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
        };
        let t0 = tai();
        let received = std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                peer.recv_matching(frames.len(), Duration::from_secs(10), |f| {
                    is_test_frame(f, port)
                })
            });
            let mut stamps = Vec::new();
            for f in &frames {
                let mut fr = umem.alloc().unwrap();
                fr.write(f).unwrap();
                let csum = ChecksumRequest::udp_ipv4(fr.data_mut()).expect("udp");
                let req = TxRequest {
                    checksum: Some(csum),
                    timestamp: true,
                };
                let mut b = sock.tx().unwrap().reserve(1);
                b.push_with_metadata(fr, &req).expect("pushed");
                b.commit();
                sock.kick_tx().unwrap();
                let end = Instant::now() + Duration::from_secs(5);
                loop {
                    let c = sock.completion().unwrap();
                    let done: Vec<_> = c.complete(16).collect();
                    if let Some(fr) = done.into_iter().next() {
                        stamps.push(fr.tx_timestamp());
                        break;
                    }
                    assert!(Instant::now() < end, "no completion");
                    sock.kick_tx().unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            (h.join().unwrap(), stamps)
        });
        let t1 = tai();
        let (got, stamps) = received;
        assert_eq!(got.len(), frames.len());
        for g in &got {
            let i = frame_index(g).unwrap() as usize;
            let sent = &frames[i];
            assert_eq!(g.len(), sent.len());
            assert_eq!(&g[..40], &sent[..40], "headers before the checksum");
            assert_eq!(&g[42..], &sent[42..], "payload");
            assert!(
                udp_checksum_ok(g),
                "frame {i}: checksum filled in and valid"
            );
        }
        // A software timestamp per packet, in order, within the run.
        let ts: Vec<u64> = stamps.iter().map(|t| t.expect("a timestamp")).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        assert!(ts[0] >= t0 && *ts.last().unwrap() <= t1, "{t0} {ts:?} {t1}");
    }
    assert_accounted(&umem);

    // A UMEM without TX metadata: the typed unsupported answer. (The first
    // UMEM held the queue; the kernel releases it a few ms after it closes.)
    drop(umem);
    let plain = Umem::new(UmemConfig::default()).expect("umem");
    {
        let mut sock = once_the_queue_is_free(|| {
            XskSocket::builder(lab.gen().ifname())
                .rx_size(0)
                .attach_mode(AttachMode::None)
                .build(&plain)
        });
        assert!(matches!(
            sock.tx_metadata_support().timestamp,
            Support::No(_)
        ));
        let req = TxRequest {
            checksum: None,
            timestamp: true,
        };
        match sock.check_tx_request(&req) {
            Err(XskError::Unsupported { reason, .. }) => {
                assert!(reason.contains("UmemConfig::tx_metadata"), "{reason}")
            }
            r => panic!("expected Unsupported, got {r:?}"),
        }
        let fr = plain.alloc().unwrap();
        let mut b = sock.tx().unwrap().reserve(1);
        let e = b
            .push_with_metadata(Packet::single(fr), &req)
            .expect_err("no TX metadata");
        assert!(matches!(
            e.error.as_deref(),
            Some(XskError::Unsupported { .. })
        ));
        drop(e);
        drop(b);
    }
    assert_accounted(&plain);
}

/// Whether an Ethernet/IPv4/UDP frame's UDP checksum is present and valid.
fn udp_checksum_ok(f: &[u8]) -> bool {
    let udp = &f[34..];
    if udp[6..8] == [0, 0] {
        return false;
    }
    let mut sum: u32 = 0;
    for w in f[26..34].chunks(2) {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    sum += 17 + udp.len() as u32;
    for w in udp.chunks(2) {
        sum += ((w[0] as u32) << 8) | *w.get(1).unwrap_or(&0) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}
