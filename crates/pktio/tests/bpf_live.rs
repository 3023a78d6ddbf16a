//! XDP programs on a real veth pair (the `pktio-lab` network lab): native
//! attach, live-frame generation with `xdp_tx`, and the steering program's
//! pass-through with an empty map. Needs root; skips visibly otherwise.
//! Everything (namespaces, veth, links) goes away when the lab and the
//! links drop, also on panic.

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::time::Duration;

use pktio::bpf::{
    progs, BpfError, LiveFramesResult, PerCpuArray, Program, XdpAction, XdpLink, XdpMode, XskMap,
};
use pktio_lab::seccomp::refuse_prog_test_run;
use pktio_lab::{require_root, Lab};

/// A live-frames call's result where the kernel allows them; where it
/// refuses them (some builds do, even to root), the refusal must be the
/// typed one with its errno, and the test checks that instead of arrivals.
fn live_or_refused(r: Result<LiveFramesResult, BpfError>) -> Option<LiveFramesResult> {
    match r {
        Ok(r) => Some(r),
        Err(BpfError::LiveFramesRefused {
            errno, errno_name, ..
        }) => {
            assert!(
                [libc::EPERM, libc::EACCES, libc::EOPNOTSUPP, 524].contains(&errno),
                "{errno_name}"
            );
            eprintln!("this kernel refuses live frames ({errno_name}): checked the typed refusal");
            None
        }
        Err(e) => panic!("live frames: neither frames nor the typed refusal: {e}"),
    }
}

/// Set in the child that [`refused_live_frames_are_typed`] runs under the
/// seccomp filter.
const UNDER_FILTER: &str = "PKTIO_TEST_UNDER_SECCOMP";

/// On a host that refuses live frames (a seccomp filter answering
/// `BPF_PROG_TEST_RUN` with `EPERM`, whatever this kernel does), the call
/// is [`BpfError::LiveFramesRefused`] with the errno, and its message does
/// not send root after capabilities it has. The test runs itself again in
/// a child under the filter; the program is `XDP_DROP`, so nothing could be
/// sent even if the call went through.
#[test]
fn refused_live_frames_are_typed() {
    require_root!();
    if std::env::var_os(UNDER_FILTER).is_some() {
        let prog = Program::load_xdp(&progs::xdp_drop(), &[]).unwrap();
        match prog.run_live_frames(1, &[0u8; 60], 1, 1) {
            Err(
                e @ BpfError::LiveFramesRefused {
                    errno, errno_name, ..
                },
            ) => {
                assert_eq!((errno, errno_name), (libc::EPERM, "EPERM"));
                let msg = e.to_string();
                assert!(
                    msg.contains("refuses live frames") && msg.contains("holds every capability"),
                    "{msg}"
                );
                assert!(!msg.contains("CAP_BPF"), "{msg}");
                println!("UNDER FILTER: typed refusal checked");
            }
            other => panic!("expected LiveFramesRefused, got {other:?}"),
        }
        return;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "refused_live_frames_are_typed", "--nocapture"])
        .env(UNDER_FILTER, "1");
    let o = refuse_prog_test_run(&mut cmd).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("UNDER FILTER: typed refusal checked"),
        "{:?}\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A receive timeout, so a lost datagram fails the test instead of hanging
/// it (not a timing assertion: nothing measures how long it took).
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

const PORT: u16 = 9000;

/// A 64-byte Ethernet / IPv4 / UDP frame from gen to rx, `PORT` → `PORT`,
/// with `marker` filling the payload.
fn gen_to_rx_frame(lab: &Lab, marker: u8) -> Vec<u8> {
    let (gen, rx) = (lab.gen(), lab.rx());
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&rx.mac());
    f.extend_from_slice(&gen.mac());
    f.extend_from_slice(&[0x08, 0x00]);
    let total: u16 = 64 - 14;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&gen.addr().octets());
    ip[16..20].copy_from_slice(&rx.addr().octets());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&PORT.to_be_bytes());
    f.extend_from_slice(&PORT.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum
    f.resize(64, marker);
    f
}

/// A UDP socket on rx's address, with room for many queued datagrams.
fn rx_socket(lab: &Lab) -> UdpSocket {
    let rx = lab.rx();
    let sock = rx
        .run(|| UdpSocket::bind(rx.addr().socket_addr(PORT)))
        .unwrap();
    sock.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
    // Frames built from XDP are charged up to a page each: make room for all
    // (SO_RCVBUFFORCE, root only, goes past net.core.rmem_max).
    rustix::net::sockopt::set_socket_recv_buffer_size_force(&sock, 8 << 20).unwrap();
    sock
}

#[test]
fn xdp_tx_live_frames_from_gen_arrive_at_rx() {
    require_root!();
    let lab = Lab::new().unwrap();
    let (gen, rx) = (lab.gen(), lab.rx());

    // rx: a counting XDP program in driver mode. Besides counting, it gives
    // the rx veth the NAPI instance that frames sent by ndo_xdp_xmit need.
    let counters = PerCpuArray::new(1).unwrap();
    let count =
        Program::load_xdp(&progs::count_then(XdpAction::Pass), &[counters.as_fd()]).unwrap();
    let _rx_link = rx
        .run(|| XdpLink::attach(&count, rx.ifindex(), XdpMode::Driver))
        .unwrap();
    let sock = rx_socket(&lab);

    // gen: xdp_tx run in live-frames mode turns each copy of the frame into
    // a transmission out of gen's veth end. 200 frames fit the rx veth's
    // 256-entry XDP ring even if its NAPI only runs at the end.
    const N: u32 = 200;
    let frame = gen_to_rx_frame(&lab, 0x5a);
    let tx = Program::load_xdp(&progs::xdp_tx(), &[]).unwrap();
    let Some(run) = live_or_refused(gen.run(|| tx.run_live_frames(gen.ifindex(), &frame, N, 64)))
    else {
        return;
    };
    assert_eq!(run.frames, N);

    let mut buf = [0u8; 2048];
    for i in 0..N {
        let (len, from) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} of {N}: {e}"));
        assert_eq!(&buf[..len], &frame[14 + 20 + 8..]);
        assert_eq!(from.ip(), std::net::IpAddr::from(gen.addr()));
    }
    // Every frame went through rx's XDP program exactly once.
    assert_eq!(counters.sum(0).unwrap(), u64::from(N));
    sock.set_nonblocking(true).unwrap();
    assert!(sock.recv_from(&mut buf).is_err(), "more than {N} datagrams");
}

#[test]
fn driver_mode_on_a_veth_and_busy_over_it() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let pass = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
    let drop_all = Program::load_xdp(&progs::xdp_drop(), &[]).unwrap();
    rx.run(|| {
        let ifindex = rx.ifindex();
        // veth has native XDP: Auto gets driver mode, no fallback.
        let link = XdpLink::attach(&pass, ifindex, XdpMode::Auto).unwrap();
        assert_eq!(link.mode(), XdpMode::Driver);
        assert!(link.fallback().is_none());
        assert_eq!(link.info().unwrap().ifindex, Some(ifindex));

        match XdpLink::attach(&drop_all, ifindex, XdpMode::Driver) {
            Err(BpfError::Busy { source, .. }) => assert_eq!(source.errno(), Some(libc::EBUSY)),
            other => panic!("expected Busy, got {other:?}"),
        }
        match XdpLink::attach(&drop_all, ifindex, XdpMode::Skb) {
            Err(BpfError::Busy { source, .. }) => {
                assert_eq!(source.errno(), Some(libc::EEXIST))
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(link);
        let link = XdpLink::attach(&drop_all, ifindex, XdpMode::Driver).unwrap();
        assert_eq!(link.info().unwrap().prog_id, drop_all.id().unwrap());
    });
}

#[test]
fn xsk_redirect_with_an_empty_map_passes_traffic_to_the_stack() {
    require_root!();
    let lab = Lab::new().unwrap();
    let (gen, rx) = (lab.gen(), lab.rx());
    let map = XskMap::new(1).unwrap();
    let steer = Program::load_xdp(&progs::xsk_redirect(), &[map.as_fd()]).unwrap();
    let link = rx
        .run(|| XdpLink::attach(&steer, rx.ifindex(), XdpMode::Driver))
        .unwrap();
    assert_eq!(link.mode(), XdpMode::Driver);
    let sock = rx_socket(&lab);
    let tx = gen
        .run(|| UdpSocket::bind(gen.addr().socket_addr(0)))
        .unwrap();
    for i in 0..10u8 {
        tx.send_to(&[i; 32], rx.addr().socket_addr(PORT)).unwrap();
        let mut buf = [0u8; 64];
        let (len, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &[i; 32]);
    }
}

#[test]
fn a_link_reports_when_its_interface_is_gone() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let pass = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
    let link = rx
        .run(|| XdpLink::attach(&pass, rx.ifindex(), XdpMode::Driver))
        .unwrap();
    assert_eq!(link.info().unwrap().ifindex, Some(rx.ifindex()));
    lab.delete_link().unwrap();
    // Deleting the veth detached the program; the link remains, defunct.
    assert_eq!(link.info().unwrap().ifindex, None);
}
