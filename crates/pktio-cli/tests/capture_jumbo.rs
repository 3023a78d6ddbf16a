//! `pktio capture --steal` at MTU 9000: frames longer than one 4 KiB UMEM
//! buffer arrive over multi-buffer AF_XDP (frags-aware program,
//! `XDP_USE_SG` sockets) and land in the file whole, byte for byte; the
//! filter still selects on them (ports, and `greater` on the whole
//! frame's length), and what it does not select still reaches the host.
//! Needs root.

mod cli_support;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use cli_support::Watched;
use pktio::pcap::{PcapReader, LINKTYPE_ETHERNET};
use pktio::wire::UdpFrame;
use pktio_lab::{require_root, Host, Lab};

const PKTIO: &str = env!("CARGO_BIN_EXE_pktio");

/// A scratch directory, removed however the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("pktio-capture-jumbo-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `pktio capture args` in `host`'s namespace, watched (killed if the
/// test fails before it ends).
fn capture_in(host: &Host, args: &[&str]) -> Watched {
    let mut c = host.command(PKTIO);
    c.arg("capture").args(args);
    Watched::start_to(c, Stdio::null())
}

/// A UDP frame of `len` bytes (Ethernet header included, no FCS) from the
/// gen end to the rx end's `port`, its payload a pattern of `seed`.
fn frame(lab: &Lab, len: usize, port: u16, seed: u8) -> Vec<u8> {
    let spec = UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 40000,
        dst_port: port,
    };
    let payload: Vec<u8> = (0..len - UdpFrame::MIN_LEN)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let mut f = vec![0u8; len];
    spec.emit(&payload, len, &mut f).unwrap();
    f
}

/// Sends `frames` from the gen end through an AF_PACKET socket, in order.
fn send(lab: &Lab, frames: &[Vec<u8>]) {
    let gen = lab.gen();
    let ifname = gen.ifname().to_string();
    let frames = frames.to_vec();
    gen.run(move || {
        let sock = pktio::packet::PacketSocket::open(&ifname).unwrap();
        sock.bind(false).unwrap();
        for f in &frames {
            while !sock.send(f).unwrap() {
                std::thread::yield_now();
            }
        }
    });
}

/// The records of a pcap file: (orig_len, bytes).
fn records(path: &std::path::Path) -> Vec<(u32, Vec<u8>)> {
    let mut r = PcapReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        assert_eq!(rec.linktype, LINKTYPE_ETHERNET);
        out.push((rec.orig_len, rec.data));
    }
    out
}

fn lab_9000() -> Lab {
    let lab = Lab::builder().mtu(9000).build().unwrap();
    assert_eq!(lab.rx().link_info().unwrap().mtu, 9000);
    lab
}

/// Frames of 9014 bytes (MTU 9000), and every size in between down to the
/// 60-byte minimum, each written whole: record length = wire length, and
/// the bytes are the ones sent. 7681 bytes is two full 3840-byte buffers
/// and one byte; 3840 exactly fills one.
#[test]
fn jumbo_frames_are_captured_whole_over_af_xdp() {
    require_root!();
    // Driver (native) XDP on the veth, and generic (skb) XDP.
    for mode in ["driver", "skb"] {
        whole_frames(mode);
    }
}

fn whole_frames(mode: &str) {
    let lab = lab_9000();
    let rx = lab.rx();
    let dir = Scratch::new(mode);
    let file = dir.0.join("jumbo.pcap");
    let sizes = [9014, 9000, 7681, 5000, 3841, 3840, 1514, 64, 60];
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| frame(&lab, n, 4242, i as u8))
        .collect();
    let count = frames.len().to_string();
    let mut cap = capture_in(
        rx,
        &[
            "--steal",
            "--xdp-mode",
            mode,
            "-i",
            rx.ifname(),
            "-c",
            &count,
            "-w",
            file.to_str().unwrap(),
            "udp",
        ],
    );
    cap.wait_for("listening on");
    assert!(
        cap.stderr_now().contains(&format!("XDP program in {mode}")),
        "{}",
        cap.stderr_now()
    );
    assert!(
        cap.stderr_now().contains("multi-buffer (MTU 9000"),
        "the start-up line says the capture is multi-buffer: {}",
        cap.stderr_now()
    );
    send(&lab, &frames);
    let o = cap.finish();
    let (code, err) = (o.code(), o.stderr);
    assert_eq!(code, Some(0), "{err}");
    let got = records(&file);
    assert_eq!(got.len(), frames.len(), "{mode} mode: {err}");
    for ((orig_len, data), sent) in got.iter().zip(&frames) {
        assert_eq!(*orig_len as usize, sent.len(), "{mode} mode: wire length");
        assert_eq!(
            data.len(),
            sent.len(),
            "{mode} mode: a {}-byte frame cut",
            sent.len()
        );
        assert!(
            data == sent,
            "{mode} mode: the {}-byte frame's bytes differ (first at {:?})",
            sent.len(),
            data.iter().zip(sent).position(|(a, b)| a != b)
        );
    }
}

/// The snap length cuts a joined frame: `-s 5000` keeps 5000 bytes of a
/// 9014-byte frame (spread over three buffers), with its wire length.
#[test]
fn snaplen_cuts_a_jumbo_frame_across_its_buffers() {
    require_root!();
    let lab = lab_9000();
    let rx = lab.rx();
    let dir = Scratch::new("snap");
    let file = dir.0.join("snap.pcap");
    let frames = vec![frame(&lab, 9014, 4242, 7), frame(&lab, 1514, 4242, 8)];
    let mut cap = capture_in(
        rx,
        &[
            "--steal",
            "-i",
            rx.ifname(),
            "-s",
            "5000",
            "-c",
            "2",
            "-w",
            file.to_str().unwrap(),
            "udp",
        ],
    );
    cap.wait_for("listening on");
    send(&lab, &frames);
    let o = cap.finish();
    let (code, err) = (o.code(), o.stderr);
    assert_eq!(code, Some(0), "{err}");
    let got = records(&file);
    assert_eq!(got.len(), 2, "{err}");
    assert_eq!(got[0].0, 9014);
    assert_eq!(got[0].1[..], frames[0][..5000]);
    assert_eq!(got[1].0, 1514);
    assert_eq!(got[1].1, frames[1]);
}

/// `udp dst port 4242 and greater 4000` on jumbo frames: only the frames
/// to 4242 of at least 4000 bytes (counted over all buffers, not the first
/// one's 3.5 KiB) are captured; every other frame, jumbo ones included,
/// reaches the host's UDP sockets.
#[test]
fn the_filter_selects_on_jumbo_frames() {
    require_root!();
    let lab = lab_9000();
    let rx = lab.rx();
    let dir = Scratch::new("filter");
    let file = dir.0.join("filter.pcap");
    let bind = |port: u16| {
        let addr = rx.addr().socket_addr(port);
        let s = rx.run(move || UdpSocket::bind(addr)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let (s4242, s4343) = (bind(4242), bind(4343));
    // (length, port): captured are those to 4242 of 4000 bytes or more.
    let plan: [(usize, u16); 9] = [
        (9014, 4343),
        (9014, 4242),
        (1514, 4242),
        (5000, 4343),
        (60, 4242),
        (5000, 4242),
        (3999, 4242),
        (7000, 4343),
        (4000, 4242),
    ];
    let frames: Vec<Vec<u8>> = plan
        .iter()
        .enumerate()
        .map(|(i, &(n, port))| frame(&lab, n, port, i as u8))
        .collect();
    let wanted: Vec<&Vec<u8>> = plan
        .iter()
        .zip(&frames)
        .filter(|((n, port), _)| *port == 4242 && *n >= 4000)
        .map(|(_, f)| f)
        .collect();
    let count = wanted.len().to_string();
    let mut cap = capture_in(
        rx,
        &[
            "--steal",
            "-i",
            rx.ifname(),
            "-c",
            &count,
            "-w",
            file.to_str().unwrap(),
            "udp",
            "dst",
            "port",
            "4242",
            "and",
            "greater",
            "4000",
        ],
    );
    cap.wait_for("listening on");
    send(&lab, &frames);
    let o = cap.finish();
    let (code, err) = (o.code(), o.stderr);
    assert_eq!(code, Some(0), "{err}");
    let got = records(&file);
    assert_eq!(got.len(), wanted.len(), "{err}");
    for ((orig_len, data), sent) in got.iter().zip(&wanted) {
        assert_eq!(*orig_len as usize, sent.len());
        assert!(data == *sent, "a {}-byte frame's bytes differ", sent.len());
    }
    // What the filter left reached the host, whole: UDP payload lengths.
    let mut buf = vec![0u8; 16384];
    let mut host = |s: &UdpSocket, expect: &[usize]| {
        for &n in expect {
            let got = s.recv(&mut buf);
            assert!(
                matches!(got, Ok(m) if m == n - UdpFrame::MIN_LEN),
                "a {n}-byte frame the filter did not select should reach the host: {got:?}"
            );
        }
        s.set_nonblocking(true).unwrap();
        let extra = s.recv(&mut buf);
        assert!(
            matches!(&extra, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a captured frame reached the host: {extra:?}"
        );
    };
    host(&s4343, &[9014, 5000, 7000]);
    host(&s4242, &[1514, 60, 3999]);
}
