//! Live capture in the lab, with the filter in the XDP program: mixed
//! traffic from the gen namespace, filter `udp dst port 4242` on the rx end.
//! Only the matching packets are captured, and the rest still reaches the
//! rx namespace's network stack (a UDP socket there receives it). Also:
//! all queues, and bad input (interface down, missing, snap length).
//! Needs root; skipped visibly otherwise.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use pktio::filter::Filter;
use pktio::pcap::{Capture, CaptureBuffers, CaptureConfig, CaptureError, Queues};
use pktio::wire::UdpFrame;
use pktio_lab::{require_root, Lab};

/// A UDP frame from gen to rx with the index in its payload.
fn udp(lab: &Lab, sport: u16, dport: u16, index: u32, len: usize) -> Vec<u8> {
    let spec = UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: sport,
        dst_port: dport,
    };
    let mut f = vec![0u8; len];
    spec.emit(&index.to_be_bytes(), len, &mut f).expect("fits");
    f
}

fn send_all(raw: &RawSocket, frames: &[Vec<u8>]) {
    for (i, f) in frames.iter().enumerate() {
        raw.send(f);
        if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn filter_in_xdp_captures_only_matches_and_the_stack_gets_the_rest() {
    require_root!();
    let lab = Lab::new().expect("lab");
    assert_lab_addresses(&lab);
    // Interleaved: to port 4242 (captured), to port 5000 (stack), and from
    // port 4242 to 5000 (stack: `dst port` only).
    let mut matching = Vec::new();
    let mut other = Vec::new();
    let mut frames = Vec::new();
    for i in 0..150u32 {
        let len = 60 + (i as usize * 37) % 900;
        let m = udp(&lab, 9, 4242, i, len);
        matching.push(m.clone());
        frames.push(m);
        let o = udp(&lab, if i % 2 == 0 { 4242 } else { 7 }, 5000, 1000 + i, len);
        other.push(o.clone());
        frames.push(o);
    }
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let sink = lab
        .rx()
        .run(|| UdpSocket::bind((lab.rx().addr().ip(), 5000)))
        .expect("UDP socket in rx");
    sink.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Read the stack's share while the capture runs (a socket buffer would
    // overflow otherwise).
    let want_other = other.len();
    let gen_ip = lab.gen().addr().ip();
    let stack = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut seen = std::collections::HashSet::new();
        let end = Instant::now() + Duration::from_secs(15);
        while seen.len() < want_other && Instant::now() < end {
            if let Ok((n, from)) = sink.recv_from(&mut buf) {
                assert!(n >= 4);
                assert_eq!(from.ip(), gen_ip);
                seen.insert(u32::from_be_bytes(buf[..4].try_into().unwrap()));
            }
        }
        seen
    });

    let _ns = lab.rx().enter().expect("enter rx");
    let cfg = CaptureConfig::new(lab.rx().ifname())
        .filter(Filter::parse("udp dst port 4242").unwrap())
        .snaplen(128);
    let buffers = CaptureBuffers::new(&cfg).expect("buffers");
    let mut cap = Capture::open(&cfg, &buffers).expect("capture");
    assert_eq!(cap.sockets().len(), 1);

    send_all(&raw, &frames);
    let mut got: Vec<(Vec<u8>, u32)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < matching.len() && Instant::now() < end {
        cap.poll(Duration::from_millis(50), |p| {
            got.push((p.data.to_vec(), p.orig_len));
        })
        .expect("poll");
    }
    // A little longer: nothing else may arrive.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        cap.poll(Duration::from_millis(50), |p| {
            got.push((p.data.to_vec(), p.orig_len))
        })
        .unwrap();
    }
    assert_eq!(
        got.len(),
        matching.len(),
        "captured exactly the matching packets"
    );
    for (data, orig) in &got {
        let i = u32::from_be_bytes(data[42..46].try_into().unwrap()) as usize;
        let sent = &matching[i];
        assert_eq!(*orig as usize, sent.len());
        assert_eq!(
            data[..],
            sent[..sent.len().min(128)],
            "packet {i} (cut to 128)"
        );
    }
    let stats = cap.stats().unwrap();
    assert_eq!(stats.matched, matching.len() as u64);
    assert_eq!(stats.socket_dropped, 0, "{stats:?}");
    if let Some(ifc) = stats.interface {
        assert!(ifc.rx_packets >= frames.len() as u64, "{stats:?}");
    }

    // The stack got every other packet.
    let seen = stack.join().expect("stack reader");
    assert_eq!(
        seen.len(),
        other.len(),
        "the UDP socket received all non-matching packets"
    );
    assert!(seen
        .iter()
        .all(|i| (1000..1000 + other.len() as u32).contains(i)));
    drop(cap);
}

#[test]
fn all_queues_open_one_socket_each() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let frames: Vec<Vec<u8>> = (0..50).map(|i| udp(&lab, 9, 4242, i, 100)).collect();
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    let cfg = CaptureConfig::new(lab.rx().ifname())
        .queues(Queues::All)
        .filter(Filter::parse("udp port 4242").unwrap());
    let buffers = CaptureBuffers::new(&cfg).expect("buffers");
    assert_eq!(buffers.queues(), [0, 1]);
    let mut cap = Capture::open(&cfg, &buffers).expect("capture");
    assert_eq!(cap.sockets().len(), 2);
    send_all(&raw, &frames);
    let mut n = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while n < frames.len() && Instant::now() < end {
        n += cap.poll(Duration::from_millis(50), |_| {}).unwrap();
    }
    assert_eq!(n, frames.len());
}

#[test]
fn bad_input_is_a_clear_error() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let cfg = CaptureConfig::new("pktio-no-such-if");
    let e = CaptureBuffers::new(&cfg).unwrap_err();
    assert!(matches!(e, CaptureError::NoInterface { .. }), "{e}");
    assert!(e.to_string().contains("not found"), "{e}");

    let cfg = CaptureConfig::new(lab.rx().ifname()).snaplen(300_000);
    let e = CaptureBuffers::new(&cfg).unwrap_err();
    assert!(e.to_string().contains("snap length 300000"), "{e}");

    let cfg = CaptureConfig::new(lab.rx().ifname()).queues(Queues::List(vec![5]));
    let e = CaptureBuffers::new(&cfg).unwrap_err();
    assert!(matches!(e, CaptureError::NoSuchQueue { .. }), "{e}");

    lab.rx().link_up(false).expect("link down");
    let cfg = CaptureConfig::new(lab.rx().ifname());
    let e = CaptureBuffers::new(&cfg).unwrap_err();
    assert!(matches!(e, CaptureError::InterfaceDown { .. }), "{e}");
    assert!(e.to_string().contains("is down"), "{e}");
}

/// `frame` with an 802.1Q tag (VLAN `vid`) after the MAC addresses.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    f.splice(12..12, [0x81, 0x00, (vid >> 8) as u8, vid as u8]);
    f
}

#[test]
fn packet_backend_captures_matches_with_their_vlan_tags() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let mut matching = Vec::new();
    let mut frames = Vec::new();
    for i in 0..60u32 {
        let m = udp(&lab, 9, 4242, i, 80 + i as usize);
        let m = if i % 3 == 0 {
            tagged(&m, 100 + i as u16)
        } else {
            m
        };
        matching.push(m.clone());
        frames.push(m);
        let o = udp(&lab, 4242, 5000, 1000 + i, 90);
        frames.push(if i % 2 == 0 { tagged(&o, 7) } else { o });
    }
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    let _ns = lab.rx().enter().expect("enter rx");
    // libpcap's semantics: tagged frames match only through `vlan`, which
    // shifts what follows it (tcpdump's idiom for "tagged or not").
    let filter = "udp dst port 4242 or (vlan and udp dst port 4242)";
    let cfg = CaptureConfig::new(lab.rx().ifname()).filter(Filter::parse(filter).unwrap());
    let mut cap = pktio::pcap::PacketCapture::open(&cfg).expect("AF_PACKET capture");
    send_all(&raw, &frames);
    let mut got: Vec<(Vec<u8>, u32, u64)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < matching.len() && Instant::now() < end {
        cap.poll(Duration::from_millis(50), |p| {
            got.push((p.data.to_vec(), p.orig_len, p.ts.sec));
        })
        .expect("poll");
    }
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        cap.poll(Duration::from_millis(50), |p| {
            got.push((p.data.to_vec(), p.orig_len, p.ts.sec))
        })
        .unwrap();
    }
    assert_eq!(
        got.len(),
        matching.len(),
        "captured exactly the matching packets"
    );
    let now = pktio::pcap::Timestamp::now().sec;
    for (data, orig, sec) in &got {
        let at = if data[12] == 0x81 { 46 } else { 42 };
        let i = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!(data, &matching[i], "packet {i}, with its VLAN tag put back");
        assert_eq!(*orig as usize, matching[i].len());
        assert!(sec.abs_diff(now) < 3600, "a kernel timestamp: {sec}");
    }
    let stats = cap.stats().unwrap();
    assert_eq!(stats.matched, matching.len() as u64);
    assert_eq!(stats.socket_dropped, 0);
}
