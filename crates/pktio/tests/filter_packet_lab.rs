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
use pktio::filter::{CbpfProgram, CookedProgram, Filter};
use pktio::pcap::LinkType;
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

/// Every packet queued on `fd` now, with the address it came with.
fn recv_queued(fd: &OwnedFd) -> Vec<(libc::sockaddr_ll, Vec<u8>)> {
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
        out.push((from, buf[..n as usize].to_vec()));
    }
}

/// Every incoming frame queued on `fd` now (outgoing ones skipped).
fn drain(fd: &OwnedFd) -> Vec<Vec<u8>> {
    recv_queued(fd)
        .into_iter()
        .filter(|(from, _)| from.sll_pkttype != libc::PACKET_OUTGOING)
        .map(|(_, frame)| frame)
        .collect()
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

/// Frames of at least 14 bytes with distinct received forms; tagged
/// frames keep at least their tag (18 bytes) for the kernel to strip it.
fn lab_frames() -> Vec<Vec<u8>> {
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
    frames
}

/// Sends `frames` and then the barrier from gen, and waits until `clock`
/// (a socket on rx that takes everything, drained with `drain`) has the
/// barrier.
fn send_and_wait<T>(
    lab: &Lab,
    frames: &[Vec<u8>],
    clock: &OwnedFd,
    mut drain: impl FnMut(&OwnedFd) -> Vec<T>,
    is_barrier: impl Fn(&T) -> bool,
) {
    // Send from one CPU so the receiving side processes frames in order.
    let gen_if = lab.gen().ifindex();
    let all = frames.to_vec();
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
    pktio_lab::wait::until(Duration::from_secs(10), "the barrier frame", || {
        drain(clock).iter().any(&is_barrier)
    });
}

#[test]
fn classic_bpf_on_packet_sockets_reads_stripped_vlan_tags() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let frames = lab_frames();

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

    let bar = barrier();
    send_and_wait(&lab, &frames, &clock, drain, |f| *f == bar);

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

/// `ARPHRD_NONE`: a TUN device's link type (no link header).
const ARPHRD_NONE: u16 = 0xfffe;

/// A TUN device (`IFF_TUN | IFF_NO_PI`: what is written to it arrives as
/// an IP packet without a link header) named `name`, in the calling
/// thread's namespace; it lives as long as the descriptor.
fn tun_device(name: &str) -> OwnedFd {
    // SAFETY: plain open(2) of a NUL-terminated path; checked below.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(fd >= 0, "/dev/net/tun: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zero is a valid start.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the live `ifr` passed.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
    assert_eq!(r, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    fd
}

/// Every incoming packet queued on `fd` (an `any` socket) now, as the
/// Linux cooked v2 record `pktio capture -i any` writes for it: the
/// header from its `sockaddr_ll`, then the packet from its network header
/// (14 bytes in on the lab's veth, at once on a TUN device).
fn drain_cooked(fd: &OwnedFd) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (from, packet) in recv_queued(fd) {
        let n = packet.len();
        // The link header: none on a TUN device, Ethernet's on the veth.
        let l2 = if from.sll_hatype == ARPHRD_NONE {
            0
        } else {
            14
        };
        if from.sll_pkttype == libc::PACKET_OUTGOING || n < l2 {
            continue;
        }
        let mut rec = from.sll_protocol.to_ne_bytes().to_vec(); // big-endian already
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(&from.sll_ifindex.to_be_bytes());
        rec.extend_from_slice(&from.sll_hatype.to_be_bytes());
        rec.extend_from_slice(&[from.sll_pkttype, from.sll_halen]);
        rec.extend_from_slice(&from.sll_addr);
        rec.extend_from_slice(&packet[l2..]);
        out.push(rec);
    }
    out
}

#[test]
fn cooked_programs_on_any_sockets_select_what_the_evaluator_selects() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let frames = lab_frames();
    // The filters the kernel can run on a cooked socket.
    let filters: Vec<(&str, Filter, CbpfProgram)> = FILTERS
        .iter()
        .filter_map(|t| {
            let f = Filter::parse(t).unwrap();
            match f.cbpf_program_cooked().unwrap() {
                CookedProgram::Kernel(p) => Some((*t, f, p)),
                CookedProgram::UserSpace(_) => None,
            }
        })
        .collect();
    assert!(
        filters.len() * 4 > FILTERS.len() * 3,
        "only {} of {} filters run in the kernel",
        filters.len(),
        FILTERS.len()
    );
    let (clock, sockets) = lab.rx().run(|| {
        // Bound to interface index 0: every interface, as `-i any`.
        let clock = packet_socket(0);
        let socks: Vec<OwnedFd> = filters
            .iter()
            .map(|(_, _, p)| {
                let s = packet_socket(0);
                p.attach(s.as_fd()).expect("SO_ATTACH_FILTER");
                drain_cooked(&s);
                s
            })
            .collect();
        drain_cooked(&clock);
        (clock, socks)
    });
    // IP packets arriving without a link header: loads from the network
    // header must not depend on the link header's length.
    let tun = lab.rx().run(|| tun_device("pktiotun0"));
    let up = lab
        .rx()
        .command("ip")
        .args(["link", "set", "pktiotun0", "up"])
        .status()
        .expect("ip link set up");
    assert!(up.success());
    let ip_packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| as_seen(f))
        .filter(|f| {
            f.len() > 14 && matches!((&f[12..14], f[14] >> 4), ([8, 0], 4) | ([0x86, 0xdd], 6))
        })
        .map(|f| f[14..].to_vec())
        .collect();
    assert!(ip_packets.len() > 50);
    for p in &ip_packets {
        // SAFETY: `p` is a live buffer of the length passed.
        let n = unsafe { libc::write(tun.as_raw_fd(), p.as_ptr().cast(), p.len()) };
        assert_eq!(n, p.len() as isize, "write to the TUN device");
    }
    let mut records = Vec::new();
    let bar = barrier()[14..].to_vec();
    send_and_wait(
        &lab,
        &frames,
        &clock,
        |fd| {
            let got = drain_cooked(fd);
            records.extend(got.iter().cloned());
            got
        },
        |r| r[20..] == bar[..],
    );
    // Only the corpus's packets (the lab's own traffic is not compared).
    let payloads: HashSet<Vec<u8>> = frames.iter().map(|f| as_seen(f)[14..].to_vec()).collect();
    let ours = |r: &Vec<u8>| payloads.contains(&r[20..]);
    drop(tun);
    let total = records.iter().filter(|r| ours(r)).count();
    let through_tun = records
        .iter()
        .filter(|r| ours(r) && r[8..10] == ARPHRD_NONE.to_be_bytes())
        .count();
    assert_eq!(
        through_tun,
        ip_packets.len(),
        "packets through the TUN device"
    );
    assert!(
        total >= frames.len() + ip_packets.len(),
        "{total} of {} packets arrived",
        frames.len() + ip_packets.len()
    );
    let mut conv = Vec::new();
    let mut selective = 0;
    for ((text, filter, _), sock) in filters.iter().zip(&sockets) {
        let mut want: Vec<Vec<u8>> = records
            .iter()
            .filter(|r| ours(r))
            .filter(|r| {
                let (frame, wire) = LinkType::LinuxSll2.as_ethernet(r, r.len() as u32, &mut conv);
                filter.matches_captured(frame, wire as usize)
            })
            .cloned()
            .collect();
        let mut got: Vec<Vec<u8>> = drain_cooked(sock).into_iter().filter(|r| ours(r)).collect();
        want.sort();
        got.sort();
        selective += usize::from(!want.is_empty() && want.len() < total);
        if want != got {
            let extra = got.iter().find(|r| !want.contains(r));
            let missing = want.iter().find(|r| !got.contains(r));
            panic!(
                "{text:?}: the kernel's cooked program took {} packets, the evaluator {}; \
                 first taken wrongly: {extra:02x?}; first missed: {missing:02x?}",
                got.len(),
                want.len()
            );
        }
    }
    assert!(
        selective * 2 > filters.len(),
        "{selective} filters select some packets"
    );
}
