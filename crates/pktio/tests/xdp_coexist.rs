//! Attaching pktio's steering program beside another XDP user: the
//! interface already runs a program — a "dispatcher-shaped" one named
//! `xdp_dispatcher`, as libxdp's multi-program dispatcher is, with a
//! component pinned where libxdp pins them, or any other program — and
//! `XskProgram::attach` must refuse with an error that names it (id, name,
//! mode, components) and says what to do, leaving the interface as it was.
//!
//! Each test builds its own lab (veth pair in private namespaces) and
//! attaches in the rx namespace; the link, the lab and the private bpffs go
//! away on drop, also when an assertion fails. Needs root; skips visibly
//! otherwise.

#[path = "common/bpffs.rs"]
mod bpffs;
mod common;

use std::time::{Duration, Instant};

use common::{is_test_frame, test_frames, RawSocket, TEST_PORT};
use pktio::bpf::{
    attached_programs, progs, AttachedMode, BpfError, Program, XdpLink, XdpMode, XskMap,
    LIBXDP_DISPATCHER,
};
use pktio::xdp::{AttachMode, Frame, Umem, UmemConfig, XskError, XskProgram, XskSocket};
use pktio_lab::skip::{skip_unless, Cap};
use pktio_lab::Lab;

const NEEDS: &[Cap] = &[Cap::BPF, Cap::NET_ADMIN, Cap::SYS_ADMIN];
const WHY: &str = "a lab, and XDP programs attached in it";

/// The `BpfError::Busy` inside an attach error, or a panic naming what came.
fn busy_of(r: Result<XskProgram, XskError>) -> (BpfError, String) {
    match r {
        Err(XskError::Bpf { source, .. }) => {
            let text = source.to_string();
            assert!(matches!(source, BpfError::Busy { .. }), "{text}");
            (source, text)
        }
        Err(e) => panic!("expected a Busy refusal, got {e}"),
        Ok(p) => panic!("the steering program attached over another: {p:?}"),
    }
}

#[test]
fn attaching_beside_a_libxdp_dispatcher_is_refused_naming_it() {
    skip_unless!(NEEDS, WHY);
    let lab = Lab::builder().build().expect("lab");
    let fs = bpffs::Bpffs::mount("coexist");
    let rx = lab.rx();
    let (ifname, ifindex) = (rx.ifname().to_string(), rx.ifindex());
    // libxdp finds its pins under $LIBXDP_BPFFS/xdp; only this test reads it.
    std::env::set_var("LIBXDP_BPFFS", fs.path());
    rx.run(|| {
        // The dispatcher-shaped program: XDP_PASS named like libxdp's.
        let dispatcher =
            Program::load_xdp(&progs::xdp_pass().with_name(LIBXDP_DISPATCHER), &[]).unwrap();
        assert_eq!(dispatcher.name().unwrap(), LIBXDP_DISPATCHER);
        let link = XdpLink::attach(&dispatcher, ifindex, XdpMode::Skb).unwrap();
        let id = dispatcher.id().unwrap();
        // One component, pinned where libxdp pins slot 0.
        let component = Program::load_xdp(&progs::xdp_pass().with_name("my_filter"), &[]).unwrap();
        let pins = fs
            .path()
            .join("xdp")
            .join(format!("dispatch-{ifindex}-{id}"));
        std::fs::create_dir_all(&pins).unwrap();
        component.pin(pins.join("prog0-prog")).unwrap();

        let (err, text) = busy_of(XskProgram::attach(&ifname, ifindex, AttachMode::Auto, 1));
        println!("the refusal reads: {text}");
        let BpfError::Busy { attached, .. } = &err else {
            unreachable!()
        };
        assert_eq!(attached.len(), 1, "{attached:?}");
        let a = &attached[0];
        assert_eq!(
            (a.id, a.name.as_deref(), a.mode),
            (id, Some(LIBXDP_DISPATCHER), AttachedMode::Skb)
        );
        assert!(a.is_libxdp_dispatcher());
        assert_eq!(a.components.len(), 1, "{a:?}");
        assert_eq!(a.components[0].name, "my_filter");
        assert_eq!(a.components[0].id, component.id().unwrap());
        // The documented message: the program, its id and mode, what it is,
        // and what to do.
        for part in [
            "\"xdp_dispatcher\"".to_string(),
            format!("id {id}"),
            "skb (generic) mode".into(),
            "libxdp's multi-program dispatcher".into(),
            "\"my_filter\"".into(),
            "pktio does not join libxdp's dispatcher".into(),
            "XskMap::from_pinned".into(),
            "AttachMode::None".into(),
            "xdp-loader unload".into(),
        ] {
            assert!(text.contains(&part), "{part:?} missing from: {text}");
        }

        // Nothing changed: the dispatcher still runs, alone, on its link.
        let now = attached_programs(ifindex).unwrap();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!((now[0].id, now[0].mode), (id, AttachedMode::Skb));
        assert_eq!(link.info().unwrap().ifindex, Some(ifindex));
        assert_eq!(link.info().unwrap().prog_id, id);
        std::fs::remove_file(pins.join("prog0-prog")).unwrap();
    });
}

#[test]
fn attaching_beside_another_program_is_refused_naming_it() {
    skip_unless!(NEEDS, WHY);
    let lab = Lab::builder().build().expect("lab");
    let rx = lab.rx();
    let (ifname, ifindex) = (rx.ifname().to_string(), rx.ifindex());
    rx.run(|| {
        let other = Program::load_xdp(&progs::xdp_pass().with_name("their_prog"), &[]).unwrap();
        let link = XdpLink::attach(&other, ifindex, XdpMode::Driver).unwrap();
        let id = other.id().unwrap();
        for mode in [AttachMode::Auto, AttachMode::Skb, AttachMode::Driver] {
            let (err, text) = busy_of(XskProgram::attach(&ifname, ifindex, mode, 1));
            let BpfError::Busy { attached, .. } = &err else {
                unreachable!()
            };
            assert_eq!(attached.len(), 1, "{attached:?}");
            assert_eq!(
                (
                    attached[0].id,
                    attached[0].name.as_deref(),
                    attached[0].mode
                ),
                (id, Some("their_prog"), AttachedMode::Driver)
            );
            assert!(!attached[0].is_libxdp_dispatcher());
            for part in [
                "\"their_prog\"".to_string(),
                format!("id {id}"),
                "driver (native) mode".into(),
                "stop the process that owns it".into(),
            ] {
                assert!(text.contains(&part), "{part:?} missing from: {text}");
            }
            assert!(!text.contains("libxdp"), "{text}");
        }
        let now = attached_programs(ifindex).unwrap();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0].id, id);
        assert_eq!(link.info().unwrap().ifindex, Some(ifindex));
    });
    // Once the other program is gone, the interface is free again.
    rx.run(|| {
        assert!(attached_programs(ifindex).unwrap().is_empty());
        let p = XskProgram::attach(&ifname, ifindex, AttachMode::Auto, 1).unwrap();
        let now = attached_programs(ifindex).unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].name.as_deref(), Some("pktio_xsk"));
        drop(p);
    });
}

/// "Bring your own program": the interface runs a program of the user's
/// (here pktio's redirect code, loaded and attached by the test as any
/// other loader would) with its own XSKMAP; pktio's socket, built with
/// `AttachMode::None` and that map, attaches nothing and receives what the
/// program steers to it.
#[test]
fn a_socket_serves_a_program_of_your_own_through_its_xskmap() {
    skip_unless!(NEEDS, WHY);
    let lab = Lab::builder().build().expect("lab");
    let rx = lab.rx();
    let (ifname, ifindex) = (rx.ifname().to_string(), rx.ifindex());
    let (map, link) = rx.run(|| {
        let map = XskMap::new(1).unwrap();
        let prog = Program::load_xdp(
            &progs::xsk_redirect().with_name("users_prog"),
            &[std::os::fd::AsFd::as_fd(&map)],
        )
        .unwrap();
        (map, XdpLink::attach(&prog, ifindex, XdpMode::Auto).unwrap())
    });
    // The socket is built on this thread, inside the rx namespace.
    let in_rx = rx.enter().expect("enter the rx namespace");
    let umem = Umem::new(UmemConfig {
        frame_count: 512,
        ..UmemConfig::default()
    })
    .unwrap();
    // A queue beyond the map is refused before anything is bound.
    let beyond = XskSocket::builder(&ifname)
        .queue(1)
        .attach_mode(AttachMode::None)
        .xsk_map(&map)
        .build(&umem)
        .unwrap_err();
    assert!(
        beyond
            .to_string()
            .contains("beyond the given XSKMAP's 1 slot"),
        "{beyond}"
    );
    let mut sock = XskSocket::builder(&ifname)
        .attach_mode(AttachMode::Auto) // ignored: a map was given
        .xsk_map(&map)
        .prefill(256)
        .build(&umem)
        .unwrap();
    // pktio attached nothing: the user's program is still the one there.
    let now = attached_programs(ifindex).unwrap();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].name.as_deref(), Some("users_prog"));
    assert_eq!(Some(now[0].id), link.info().ok().map(|i| i.prog_id));

    let sent = test_frames(&lab, 16, TEST_PORT);
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    for f in &sent {
        raw.send(f);
    }
    // A guard against lost frames, not a timing assertion.
    let end = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut back: Vec<Frame<'_>> = Vec::new();
    while got.len() < sent.len() && Instant::now() < end {
        let p = sock.parts();
        let (rxr, fill) = (p.rx.unwrap(), p.fill.unwrap());
        for f in rxr.receive(64) {
            if is_test_frame(f.data(), TEST_PORT) {
                got.push(f.data().to_vec());
            }
            back.push(f);
        }
        let idle = back.is_empty();
        fill.fill_from(&mut back);
        if idle {
            sock.poll_rx(10).unwrap();
        }
    }
    drop(back);
    assert_eq!(
        got, sent,
        "the frames the user's program steered to pktio's socket"
    );
    drop(sock);
    drop(in_rx);
    drop(link);
}
