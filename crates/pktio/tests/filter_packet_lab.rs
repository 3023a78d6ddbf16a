//! The classic BPF filters on real AF_PACKET sockets, in the lab: the rx
//! end's kernel strips a received frame's outer VLAN tag into the packet's
//! metadata before packet sockets see it, so this is where the filter's
//! `SKF_AD_VLAN_TAG` path runs (the socketpair test in `filter_kernel.rs`
//! only sees tags in the frame). Every corpus frame is sent from gen; each
//! filter's socket on rx must receive exactly the frames the evaluator
//! accepts on the frame as it was sent (tag in place, `len` counting it):
//! the program reads the stripped TPID and TCI from metadata and the rest
//! 4 bytes earlier.
//! Needs root; skipped visibly otherwise.

#![allow(unsafe_code)]

#[path = "filter_corpus.rs"]
mod corpus;

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use corpus::{base_frames, FILTERS};
use pktio::filter::Filter;
use pktio_lab::{require_root, Lab};

/// An AF_PACKET socket on one interface, all protocols, big receive buffer.
fn packet_socket(ifindex: u32) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(proto),
        )
    };
    assert!(
        fd >= 0,
        "socket(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let size: libc::c_int = 8 << 20;
    // SAFETY: a live c_int of the length passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the length passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0, "bind(AF_PACKET): {}", std::io::Error::last_os_error());
    fd
}

fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: `frame` is a live buffer of the length passed.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// Every incoming frame queued on `fd` now (outgoing ones skipped).
fn drain(fd: &OwnedFd) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: sockaddr_ll is plain data.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: `buf` and `from` are live and sized as passed.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return out;
        }
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            out.push(buf[..n as usize].to_vec());
        }
    }
}

fn outer_tagged(f: &[u8]) -> bool {
    f.len() >= 18 && matches!(u16::from_be_bytes([f[12], f[13]]), 0x8100 | 0x88a8)
}

/// The frame as a packet socket on the receiving end sees it: the outer
/// tag moved into metadata.
fn as_seen(f: &[u8]) -> Vec<u8> {
    if outer_tagged(f) {
        [&f[..12], &f[16..]].concat()
    } else {
        f.to_vec()
    }
}

/// A frame nothing else looks like, sent last: once a socket that takes
/// everything has it, every socket has seen every frame before it.
fn barrier() -> Vec<u8> {
    let mut f = vec![0xffu8; 6];
    f.extend_from_slice(&[2, 0, 0xc6, 0x12, 0, 1]);
    f.extend_from_slice(&0x88b5u16.to_be_bytes()); // local experimental
    f.extend_from_slice(b"pktio barrier: end of the corpus........");
    f
}

#[test]
fn classic_bpf_on_packet_sockets_reads_stripped_vlan_tags() {
    require_root!();
    let lab = Lab::new().expect("lab");
    // Frames of at least 14 bytes with distinct received forms; tagged
    // frames must keep at least their tag (18 bytes) for the kernel to
    // strip it.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut seen_forms = HashSet::new();
    for (_, f) in base_frames() {
        let mut cuts: Vec<usize> = (14..f.len().min(80)).step_by(3).collect();
        cuts.push(f.len());
        for n in cuts {
            let cut = f[..n].to_vec();
            if outer_tagged(&f) && n < 18 {
                continue;
            }
            if seen_forms.insert(as_seen(&cut)) {
                frames.push(cut);
            }
        }
    }
    assert!(frames.iter().filter(|f| outer_tagged(f)).count() > 20);

    let filters: Vec<Filter> = FILTERS.iter().map(|t| Filter::parse(t).unwrap()).collect();
    let ifindex = lab.rx().ifindex();
    let (clock, sockets) = lab.rx().run(|| {
        let clock = packet_socket(ifindex);
        let socks: Vec<OwnedFd> = filters
            .iter()
            .map(|f| {
                let s = packet_socket(ifindex);
                // Frames queued before the filter was attached: thrown away.
                f.cbpf_program(0)
                    .unwrap()
                    .attach(s.as_fd())
                    .expect("SO_ATTACH_FILTER");
                drain(&s);
                s
            })
            .collect();
        drain(&clock);
        (clock, socks)
    });

    // Send from one CPU so the receiving side processes frames in order.
    let gen_if = lab.gen().ifindex();
    let all = frames.clone();
    lab.gen().run(move || {
        let mut set = rustix::thread::CpuSet::new();
        set.set(0);
        let _ = rustix::thread::sched_setaffinity(None, &set);
        let out = packet_socket(gen_if);
        for (i, f) in all.iter().enumerate() {
            send(&out, f);
            if i % 32 == 31 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        send(&out, &barrier());
    });
    let bar = barrier();
    pktio_lab::wait::until(Duration::from_secs(10), "the barrier frame", || {
        drain(&clock).contains(&bar)
    });

    let index: HashMap<Vec<u8>, usize> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (as_seen(f), i))
        .collect();
    for ((text, filter), sock) in FILTERS.iter().zip(&filters).zip(&sockets) {
        let got: HashSet<usize> = drain(sock)
            .iter()
            .filter_map(|f| index.get(f).copied())
            .collect();
        let want: HashSet<usize> = frames
            .iter()
            .enumerate()
            // The frame as it was on the wire, tag and all.
            .filter(|(_, f)| filter.matches(f))
            .map(|(i, _)| i)
            .collect();
        if let Some(i) = want.symmetric_difference(&got).next() {
            panic!(
                "{text:?} on frame {i} ({} bytes: {:02x?}): evaluator {}, AF_PACKET socket {}",
                frames[*i].len(),
                frames[*i],
                want.contains(i),
                got.contains(i)
            );
        }
    }
}
