//! Bad input and refusals, per backend: unknown interface, ring geometry the
//! kernel refuses, fanout clashes, io_uring switched off, options a backend
//! cannot honour, the auto ladder's reasons, and an interface that vanishes.
//! Needs root; without it each test prints SKIPPED and returns.

mod backend_common;

use std::time::Duration;

use backend_common::{chain, open, receive_test_frames, send_from_gen};
use backend_common::{is_test_frame, test_frames, RawSocket, TEST_PORT};
use pktio::backend::{
    AutoStep, Backend, BackendConfig, BackendError, BackendKind, Direction, Fanout, FanoutFlags,
    FanoutMode, Operation, PacketIo, PacketV3,
};
use pktio::packet::{PacketError, RingRole};
use pktio::uring::{UringCause, UringError};
use pktio_lab::{require_root, Lab};

fn open_err(kind: BackendKind, cfg: &BackendConfig) -> BackendError {
    match Backend::open(kind, cfg) {
        Ok(b) => panic!("{kind}: expected an error, opened {}", b.describe()),
        Err(e) => e,
    }
}

#[test]
fn unknown_interface_is_named_by_every_backend() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let cfg = BackendConfig::new("pktio-nosuch0");
    for kind in BackendKind::ALL.into_iter().chain([BackendKind::Auto]) {
        match open_err(kind, &cfg) {
            BackendError::NoInterface { ifname, source } => {
                assert_eq!(ifname, "pktio-nosuch0");
                assert_eq!(source.errno(), Some(libc::ENODEV), "{kind}");
            }
            e => panic!("{kind}: expected NoInterface, got {}", chain(&e)),
        }
    }
    // The concrete backends say the same when opened directly.
    match PacketV3::open(&cfg) {
        Err(BackendError::Packet(PacketError::NoInterface { .. })) => {}
        r => panic!(
            "expected NoInterface, got {:?}",
            r.map(|_| ()).map_err(|e| chain(&e))
        ),
    }
}

fn geometry(e: BackendError) -> (RingRole, String, bool) {
    match e {
        BackendError::Packet(PacketError::Geometry {
            ring,
            problem,
            source,
        }) => (ring, problem, source.is_some()),
        e => panic!("expected a geometry error, got {}", chain(&e)),
    }
}

#[test]
fn ring_geometry_the_kernel_refuses_is_explained() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let base = BackendConfig::new(lab.rx().ifname());

    let mut c = base.clone();
    c.block_size = 5000;
    let e = open_err(BackendKind::PacketV3, &c);
    assert!(
        e.hint().is_some_and(|h| h.contains("page size")),
        "{:?}",
        e.hint()
    );
    let (ring, p, _) = geometry(e);
    assert_eq!(ring, RingRole::Rx);
    assert!(
        p.contains("not a multiple of the page size (4096)") && p.contains("4096 or 8192"),
        "{p}"
    );

    let mut c = base.clone();
    c.block_size = 4096;
    c.frame_size = 8192;
    let (_, p, _) = geometry(open_err(BackendKind::PacketV3, &c));
    assert!(p.contains("does not fit in a 4096-byte block"), "{p}");

    let mut c = base.clone();
    c.frame_size = 1000;
    let (_, p, _) = geometry(open_err(BackendKind::PacketV2, &c));
    assert!(
        p.contains("multiple of TPACKET_ALIGNMENT (16)") && p.contains("992 or 1008"),
        "{p}"
    );

    let mut c = base.clone();
    c.frame_size = 48;
    c.direction = Direction::Tx;
    let (ring, p, _) = geometry(open_err(BackendKind::PacketV2, &c));
    assert_eq!(ring, RingRole::Tx);
    assert!(
        p.contains("smaller than the TPACKET_V2 header (52 bytes)"),
        "{p}"
    );

    // A ring larger than pktio maps (4 GiB).
    let mut c = base.clone();
    c.block_size = 4096;
    c.block_count = (1 << 20) + 1;
    let (_, p, _) = geometry(open_err(BackendKind::PacketV3, &c));
    assert!(p.contains("limit"), "{p}");

    // The io_uring buffer ring must be a power of two.
    let mut c = base.clone();
    c.frame_count = 1000;
    match open_err(BackendKind::Uring, &c) {
        BackendError::Config(m) => assert!(m.contains("power of two"), "{m}"),
        e => panic!("expected Config, got {}", chain(&e)),
    }
    // AF_XDP: the UMEM's own rules.
    let mut c = base.clone();
    c.frame_size = 3000;
    let e = open_err(BackendKind::Xdp, &c);
    assert!(chain(&e).contains("frame size 3000"), "{}", chain(&e));
}

#[test]
fn fanout_members_share_traffic_and_a_clash_is_named() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let port = TEST_PORT + 30;
    let frames = test_frames(&lab, 200, port);
    let _ns = lab.rx().enter().expect("enter rx");
    let mut cfg = BackendConfig::new(lab.rx().ifname());
    cfg.direction = Direction::Rx;
    cfg.fanout = Some(Fanout::new(77, FanoutMode::LoadBalance));
    let mut a = open(BackendKind::PacketV2, &cfg, Direction::Rx);
    let mut b = open(BackendKind::PacketV3, &cfg, Direction::Rx);
    let mut u = open(BackendKind::Uring, &cfg, Direction::Rx);

    // Another mode on the same group: refused, and said why.
    let mut clash = cfg.clone();
    clash.fanout = Some(Fanout::new(77, FanoutMode::Hash));
    for kind in [
        BackendKind::PacketV2,
        BackendKind::PacketV3,
        BackendKind::Uring,
    ] {
        let e = open_err(kind, &clash);
        let text = chain(&e);
        assert!(
            matches!(
                &e,
                BackendError::Packet(PacketError::FanoutClash { .. })
                    | BackendError::Uring(UringError::Packet(PacketError::FanoutClash { .. }))
            ),
            "{kind}: {text}"
        );
        assert!(
            text.contains("group 77 (hash)") && text.contains("EINVAL"),
            "{text}"
        );
        assert!(
            e.hint().is_some_and(|h| h.contains("same mode")),
            "{:?}",
            e.hint()
        );
    }
    // Same mode, other flags: refused too.
    let mut flags = cfg.clone();
    flags.fanout = Some(Fanout {
        group: 77,
        mode: FanoutMode::LoadBalance,
        flags: FanoutFlags::DEFRAG,
    });
    assert!(matches!(
        open_err(BackendKind::PacketV3, &flags),
        BackendError::Packet(PacketError::FanoutClash { .. })
    ));

    // The three members split the traffic: each frame reaches exactly one.
    let sender = send_from_gen(&lab, frames.clone());
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut per = [0usize; 3];
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < frames.len() && std::time::Instant::now() < end {
        for (k, m) in [&mut a, &mut b, &mut u].into_iter().enumerate() {
            let r = receive_test_frames(m, frames.len(), port, Duration::from_millis(5));
            per[k] += r.len();
            got.extend(r);
        }
    }
    sender.join().expect("sender");
    backend_common::check_exact("fanout", &frames, &got);
    assert!(
        per.iter().all(|&n| n > 0),
        "round robin reached every member: {per:?}"
    );
}

#[test]
fn xdp_refuses_options_it_cannot_honour() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let mut c = BackendConfig::new(lab.rx().ifname());
    c.fanout = Some(Fanout::new(1, FanoutMode::Hash));
    match open_err(BackendKind::Xdp, &c) {
        BackendError::Unsupported {
            backend: BackendKind::Xdp,
            operation: Operation::Fanout,
            ..
        } => {}
        e => panic!("expected Unsupported fanout, got {}", chain(&e)),
    }
    let mut c = BackendConfig::new(lab.rx().ifname());
    c.qdisc_bypass = true;
    match open_err(BackendKind::XdpSkb, &c) {
        BackendError::Unsupported {
            operation: Operation::QdiscBypass,
            ..
        } => {}
        e => panic!("expected Unsupported qdisc bypass, got {}", chain(&e)),
    }
}

#[test]
fn auto_records_why_each_step_was_skipped() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let _ns = lab.rx().enter().expect("enter rx");
    let cfg = BackendConfig::new(lab.rx().ifname());
    let (b, skipped) = Backend::auto(&cfg).unwrap_or_else(|e| panic!("{}", chain(&e)));
    // veth: native XDP yes, zero-copy no.
    assert_eq!(b.kind(), BackendKind::Xdp, "{}", b.describe());
    assert!(!b.describe().zero_copy);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].step, AutoStep::XdpZeroCopy);
    let why = skipped[0].to_string();
    assert!(
        why.contains("zero-copy") && why.contains("EOPNOTSUPP"),
        "{why}"
    );
    assert_eq!(b.describe().skipped.len(), 1);
    assert_eq!(b.describe().skipped[0].1, why);
    drop(b);

    // With a fanout asked for, every AF_XDP step is skipped as unsupported.
    let mut cfg = BackendConfig::new(lab.rx().ifname());
    cfg.fanout = Some(Fanout::new(9, FanoutMode::Hash));
    let b = Backend::open(BackendKind::Auto, &cfg).unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(b.kind(), BackendKind::PacketV3);
    let steps: Vec<AutoStep> = b.describe().skipped.iter().map(|s| s.0).collect();
    assert_eq!(
        steps,
        [
            AutoStep::XdpZeroCopy,
            AutoStep::XdpCopyNative,
            AutoStep::XdpCopySkb
        ]
    );
    assert!(
        b.describe().skipped.iter().all(|s| s.1.contains("fanout")),
        "{:?}",
        b.describe().skipped
    );
}

/// Runs `f` on a thread of the lab's rx namespace whose `io_uring_setup`
/// fails with `errno` (a seccomp filter on that thread only; built for the
/// architectures whose `AUDIT_ARCH` it knows).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn without_io_uring<R: Send>(lab: &Lab, errno: u32, f: impl FnOnce() -> R + Send) -> R {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    lab.rx().run(move || {
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let ret = libc::BPF_RET | libc::BPF_K;
        let mut prog = [
            stmt(ld, 4), // seccomp_data.arch
            jeq(AUDIT_ARCH, 1, 0),
            stmt(ret, libc::SECCOMP_RET_ALLOW),
            stmt(ld, 0), // seccomp_data.nr
            jeq(libc::SYS_io_uring_setup as u32, 0, 1),
            stmt(ret, libc::SECCOMP_RET_ERRNO | errno),
            stmt(ret, libc::SECCOMP_RET_ALLOW),
        ];
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: prctl with plain integer arguments; affects this thread only.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_NO_NEW_PRIVS");
        // SAFETY: `fprog` points to a valid filter that outlives the call;
        // the kernel copies it. The filter binds this thread only (no TSYNC)
        // and ends with it.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            )
        };
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
        f()
    })
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn io_uring_switched_off_is_a_clear_error() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let cfg = BackendConfig::new(lab.rx().ifname());
    for (errno, want) in [
        (libc::EPERM as u32, UringCause::NotPermitted),
        (libc::ENOSYS as u32, UringCause::NotImplemented),
    ] {
        let e = without_io_uring(&lab, errno, || {
            Backend::open(BackendKind::Uring, &cfg)
                .map(|b| b.kind())
                .unwrap_err()
        });
        let text = chain(&e);
        match &e {
            BackendError::Uring(UringError::Unavailable { cause, source }) => {
                // The sysctl is 0 on this host: an EPERM is a sandbox's doing.
                let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                    .unwrap_or_default();
                if errno == libc::EPERM as u32 && sysctl.trim() != "0" {
                    assert!(
                        matches!(cause, UringCause::DisabledBySysctl { .. }),
                        "{text}"
                    );
                } else {
                    assert_eq!(*cause, want, "{text}");
                }
                assert_eq!(source.errno(), Some(errno as i32));
            }
            _ => panic!("expected Unavailable, got {text}"),
        }
        assert!(text.contains("io_uring"), "{text}");
        assert!(
            e.hint().is_some_and(|h| h.contains("--backend v3")),
            "{:?}",
            e.hint()
        );
    }
    // With io_uring off and AF_XDP and V3 unusable (a fanout AF_XDP cannot
    // do, a block size the kernel refuses), the ladder fails and lists
    // every step with its reason.
    let got = without_io_uring(&lab, libc::EPERM as u32, || {
        let mut c = cfg.clone();
        c.fanout = Some(Fanout::new(3, FanoutMode::Cpu));
        c.block_size = 5000;
        match Backend::auto(&c) {
            Err(BackendError::NoBackend { skipped, .. }) => {
                let steps: Vec<AutoStep> = skipped.iter().map(|s| s.step).collect();
                let text: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
                Ok((steps, text))
            }
            Err(e) => Err(chain(&e)),
            Ok((b, _)) => Err(format!("opened {}", b.describe())),
        }
    });
    let (steps, text) = got.expect("NoBackend");
    assert_eq!(steps, AutoStep::LADDER);
    assert!(text[3].contains("page size"), "{}", text[3]);
    assert!(
        text[4].contains("io_uring") && text[4].contains("EPERM"),
        "{}",
        text[4]
    );
}

#[test]
fn io_uring_backend_belongs_to_the_thread_that_first_used_it() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let cfg = BackendConfig::new(lab.rx().ifname());
    // Opened on one thread, used on another: fine (the ring is enabled by
    // the first batch call).
    let mut b = lab
        .rx()
        .run(|| open(BackendKind::Uring, &cfg, Direction::Rx));
    let port = TEST_PORT + 31;
    let frames = test_frames(&lab, 20, port);
    let sender = send_from_gen(&lab, frames.clone());
    let got = receive_test_frames(&mut b, frames.len(), port, Duration::from_secs(10));
    sender.join().expect("sender");
    backend_common::check_exact("uring on a second thread", &frames, &got);
    // Moved on after its first use: a typed error, not a hang or a panic.
    let r = std::thread::scope(|s| {
        s.spawn(|| b.rx_batch(8, |_| {}).map_err(|e| chain(&e)))
            .join()
    });
    match r.expect("thread") {
        Err(text) => assert!(text.contains("thread"), "{text}"),
        Ok(n) => panic!("expected WrongThread, received {n}"),
    }
}

#[test]
fn v3_falls_back_to_a_v2_tx_ring_and_says_so() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let port = TEST_PORT + 32;
    let frames = test_frames(&lab, 50, port);
    let peer = lab.rx().run(|| RawSocket::open(lab.rx().ifindex()));
    let _ns = lab.gen().enter().expect("enter gen");
    let mut cfg = BackendConfig::new(lab.gen().ifname());
    cfg.direction = Direction::Tx;
    let mut b = PacketV3::open_with_v2_tx(&cfg).unwrap_or_else(|e| panic!("{}", chain(&e)));
    let info = b.describe().to_string();
    assert!(
        info.contains("TPACKET_V2 ring on a second socket") && info.contains("TPACKET_V2)"),
        "{info}"
    );
    let got = std::thread::scope(|s| {
        let h = s.spawn(|| {
            peer.recv_matching(frames.len(), Duration::from_secs(10), |f| {
                is_test_frame(f, port)
            })
        });
        let mut next = 0;
        while next < frames.len() {
            b.tx_batch(8, |buf| {
                let f = frames.get(next)?;
                buf[..f.len()].copy_from_slice(f);
                next += 1;
                Some(f.len())
            })
            .expect("tx_batch");
            std::thread::sleep(Duration::from_millis(1));
        }
        b.flush().expect("flush");
        h.join().expect("peer")
    });
    backend_common::check_exact("V3 with V2 TX", &frames, &got);
}

#[test]
fn a_vanished_interface_is_reported_not_a_panic() {
    require_root!();
    for kind in [
        BackendKind::PacketV2,
        BackendKind::PacketV3,
        BackendKind::Uring,
    ] {
        let lab = Lab::new().expect("lab");
        let _ns = lab.rx().enter().expect("enter rx");
        let mut b = open(
            kind,
            &BackendConfig::new(lab.rx().ifname()),
            Direction::Both,
        );
        b.rx_batch(8, |_| {}).expect("rx before");
        lab.delete_link().expect("delete the veth");
        // Waiting or receiving reports the loss.
        let mut err = None;
        for _ in 0..20 {
            if let Err(e) = b.wait(10).and_then(|_| b.rx_batch(8, |_| {})) {
                err = Some(e);
                break;
            }
        }
        let e = err.unwrap_or_else(|| panic!("{kind}: a deleted interface went unnoticed"));
        let text = chain(&e);
        assert!(text.contains("vanished"), "{kind}: {text}");
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("open the backend again")),
            "{:?}",
            e.hint()
        );
    }
}
