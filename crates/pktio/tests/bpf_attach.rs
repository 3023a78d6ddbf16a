//! Attaching XDP programs through bpf links, and live-frame test runs, on
//! the loopback interface of a private network namespace.
//!
//! Each test runs its body on a fresh thread that unshares its own network
//! namespace (`unshare(CLONE_NEWNET)` affects only the calling thread); the
//! namespace, with its `lo` and anything attached to it, disappears when the
//! thread ends, even if the test panics. Needs CAP_BPF, CAP_NET_ADMIN,
//! CAP_SYS_ADMIN and CAP_NET_RAW; skips visibly otherwise.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use pktio::bpf::{progs, BpfError, Program, XdpAction, XdpLink, XdpMode};
use pktio_lab::skip::{skip_unless, Cap};

/// `lo` is interface 1 in every network namespace.
const LO: u32 = 1;

/// What the tests take: loading and attaching XDP programs, a private
/// network namespace (`unshare(CLONE_NEWNET)`) and an AF_PACKET socket.
const NEEDS: &[Cap] = &[Cap::BPF, Cap::NET_ADMIN, Cap::SYS_ADMIN, Cap::NET_RAW];
/// What for.
const WHY: &str = "XDP programs on lo of a private network namespace";

/// Runs `f` on a new thread inside a new, private network namespace whose
/// `lo` is up.
fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        pktio_lab::enter_private_netns().expect("a private network namespace with lo up");
        f()
    });
    match thread.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn skb_attach_to_lo_is_exclusive_and_goes_away_on_drop() {
    skip_unless!(NEEDS, WHY);
    in_private_netns(|| {
        let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
        let other = Program::load_xdp(&progs::xdp_drop(), &[]).unwrap();

        let link = XdpLink::attach(&prog, LO, XdpMode::Skb).unwrap();
        assert_eq!(link.mode(), XdpMode::Skb);
        assert!(link.fallback().is_none());
        let info = link.info().unwrap();
        assert_eq!(info.ifindex, Some(LO));
        assert_eq!(info.prog_id, prog.id().unwrap());

        // A second program cannot take the interface, in either mode.
        match XdpLink::attach(&other, LO, XdpMode::Skb) {
            Err(BpfError::Busy {
                ifindex: LO,
                mode: XdpMode::Skb,
                source,
                ..
            }) => assert_eq!(source.errno(), Some(libc::EBUSY)),
            other => panic!("expected Busy, got {other:?}"),
        }
        match XdpLink::attach(&other, LO, XdpMode::Driver) {
            // lo has no native XDP and already has an skb-mode link: which
            // of the two the kernel names first differs between builds
            // (seen on 6.18.44: EEXIST on one, EOPNOTSUPP on another).
            Err(BpfError::Busy {
                ifindex: LO,
                mode: XdpMode::Driver,
                source,
                ..
            }) => assert_eq!(source.errno(), Some(libc::EEXIST)),
            Err(BpfError::ModeUnsupported {
                ifindex: LO,
                mode: XdpMode::Driver,
                source,
            }) => assert_eq!(source.errno(), Some(libc::EOPNOTSUPP)),
            other => panic!("expected Busy or ModeUnsupported, got {other:?}"),
        }
        let busy = XdpLink::attach(&other, LO, XdpMode::Skb).unwrap_err();
        assert!(busy.to_string().contains("already has an XDP program"));

        // Dropping the link detaches: the other program can attach now.
        drop(link);
        let link = XdpLink::attach(&other, LO, XdpMode::Skb).unwrap();
        assert_eq!(link.info().unwrap().prog_id, other.id().unwrap());

        // An explicit detach frees the interface as well.
        link.detach().unwrap();
        let link = XdpLink::attach(&prog, LO, XdpMode::Skb).unwrap();
        drop(link);
    });
}

#[test]
fn the_program_may_be_dropped_once_attached() {
    skip_unless!(NEEDS, WHY);
    in_private_netns(|| {
        let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
        let id = prog.id().unwrap();
        let link = XdpLink::attach(&prog, LO, XdpMode::Skb).unwrap();
        drop(prog);
        assert_eq!(link.info().unwrap().prog_id, id);
    });
}

#[test]
fn auto_falls_back_to_skb_where_the_driver_has_no_xdp() {
    skip_unless!(NEEDS, WHY);
    in_private_netns(|| {
        let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
        // lo has no native XDP.
        match XdpLink::attach(&prog, LO, XdpMode::Driver) {
            Err(BpfError::ModeUnsupported {
                ifindex: LO,
                mode: XdpMode::Driver,
                source,
            }) => assert_eq!(source.errno(), Some(libc::EOPNOTSUPP)),
            other => panic!("expected ModeUnsupported, got {other:?}"),
        }
        let link = XdpLink::attach(&prog, LO, XdpMode::Auto).unwrap();
        assert_eq!(link.mode(), XdpMode::Skb);
        let fallback = link.fallback().expect("a reason for the fallback");
        assert_eq!(fallback.driver_error.errno(), Some(libc::EOPNOTSUPP));
        assert!(fallback.to_string().contains("skb (generic) mode"));
        assert_eq!(link.info().unwrap().ifindex, Some(LO));
    });
}

#[test]
fn a_missing_interface_is_named_as_such() {
    skip_unless!(NEEDS, WHY);
    in_private_netns(|| {
        let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
        for mode in [XdpMode::Skb, XdpMode::Driver, XdpMode::Auto] {
            match XdpLink::attach(&prog, 4242, mode) {
                Err(BpfError::NoSuchInterface { ifindex: 4242, .. }) => {}
                other => panic!("{mode}: expected NoSuchInterface, got {other:?}"),
            }
        }
        match prog.run_live_frames(4242, &[0; 64], 1, 0) {
            Err(BpfError::NoSuchInterface { ifindex: 4242, .. }) => {}
            // A kernel that refuses live frames may say so first.
            Err(e @ BpfError::LiveFramesRefused { .. }) => refused(e),
            other => panic!("expected NoSuchInterface, got {other:?}"),
        }
    });
}

/// Where this kernel refuses live frames, the refusal must be the typed one
/// with its errno (checked instead of arrivals); anything else fails.
fn refused(e: BpfError) {
    match e {
        BpfError::LiveFramesRefused {
            errno, errno_name, ..
        } => {
            assert!(
                [libc::EPERM, libc::EACCES, libc::EOPNOTSUPP, 524].contains(&errno),
                "{errno_name}"
            );
            eprintln!("this kernel refuses live frames ({errno_name}): checked the typed refusal");
        }
        e => panic!("live frames: neither frames nor the typed refusal: {e}"),
    }
}

/// A 64-byte frame for `lo` (destination MAC 00:00:00:00:00:00, lo's own):
/// IPv4/UDP 127.0.0.1:9 → 127.0.0.1:9, with a marker payload.
fn lo_frame(marker: u8) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [
        0x45, 0, 0, 50, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0, 9, 0, 9, 0, 30, 0, 0]);
    f.resize(64, marker);
    f
}

/// An AF_PACKET socket seeing every frame of every interface in the
/// calling thread's namespace (only `lo` in a private one).
fn packet_socket() -> OwnedFd {
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::PACKET,
        rustix::net::SocketType::RAW,
        Some(rustix::net::eth::ALL),
    )
    .expect("socket(AF_PACKET)");
    // Live-frame skbs are charged a whole page each: make room for all of
    // them (SO_RCVBUFFORCE, root only, goes past net.core.rmem_max).
    rustix::net::sockopt::set_socket_recv_buffer_size_force(&sock, 8 << 20)
        .expect("SO_RCVBUFFORCE");
    // A guard against hanging if frames never come, not a timed assertion.
    rustix::net::sockopt::set_socket_timeout(
        &sock,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(5)),
    )
    .expect("SO_RCVTIMEO");
    sock
}

#[test]
fn live_frames_with_xdp_pass_arrive_on_lo() {
    skip_unless!(NEEDS, WHY);
    in_private_netns(|| {
        let sock = packet_socket();
        let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
        let frame = lo_frame(0xa5);
        const N: u32 = 100;
        let run = match prog.run_live_frames(LO, &frame, N, 16) {
            Ok(run) => run,
            Err(e) => return refused(e),
        };
        assert_eq!(run.frames, N);

        // Every frame was handed to the stack of lo, where AF_PACKET sees it.
        let mut seen = 0;
        let mut buf = [0u8; 2048];
        while seen < N {
            let (len, _) =
                rustix::net::recv(sock.as_fd(), &mut buf, rustix::net::RecvFlags::empty())
                    .unwrap_or_else(|e| panic!("after {seen} of {N} frames: {e}"));
            if buf[..len] == frame[..] {
                seen += 1;
            }
        }
        // And no more than that: the run delivers synchronously, so anything
        // else would already be queued.
        while let Ok((len, _)) =
            rustix::net::recv(sock.as_fd(), &mut buf, rustix::net::RecvFlags::DONTWAIT)
        {
            assert_ne!(buf[..len], frame[..], "more than {N} frames");
        }
    });
}

#[test]
fn live_frames_with_xdp_drop_deliver_nothing() {
    skip_unless!(NEEDS, WHY);
    in_private_netns(|| {
        let sock = packet_socket();
        let drop_all = Program::load_xdp(&progs::xdp_drop(), &[]).unwrap();
        let pass = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
        let dropped = lo_frame(0x11);
        let passed = lo_frame(0x22);
        if let Err(e) = drop_all.run_live_frames(LO, &dropped, 50, 0) {
            return refused(e);
        }
        // A marker run after the dropped ones: once it arrives, any dropped
        // frame that was going to arrive would have come before it.
        pass.run_live_frames(LO, &passed, 1, 0).unwrap();
        let mut buf = [0u8; 2048];
        loop {
            let (len, _) =
                rustix::net::recv(sock.as_fd(), &mut buf, rustix::net::RecvFlags::empty())
                    .expect("the marker frame");
            assert_ne!(
                buf[..len],
                dropped[..],
                "an XDP_DROP frame reached the stack"
            );
            if buf[..len] == passed[..] {
                break;
            }
        }
        // The verdict itself, for the record.
        let run = drop_all.test_run(&dropped, 1).unwrap();
        assert_eq!(run.action(), Some(XdpAction::Drop));
    });
}
