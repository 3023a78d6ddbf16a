//! Issue #15, "safe in careless and hostile hands", for the packet loops
//! (`rxdrop`, `txpush`, `l2fwd`) and the generator: prompt stops, sizes
//! checked before anything is opened, and consent before taking over or
//! sending on an interface pktio did not build.
//!
//! Lab tests need root; without it they print SKIPPED and return.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{text, Watched};
use pktio_lab::{require_root, Lab};
use rustix::process::Signal;

const PKTIO: &str = env!("CARGO_BIN_EXE_pktio");

/// `rxdrop -p -d 1` on a link with no traffic ends at its deadline: the
/// idle `poll()` waits no longer than the time left (before: the stop flag
/// was read every 64 turns of 100 ms polls, 6.4 s).
#[test]
fn idle_poll_loop_ends_at_its_deadline() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    for backend in ["xdp", "v3"] {
        let t0 = Instant::now();
        let o = rx
            .command(PKTIO)
            .args(["rxdrop", "-i", rx.ifname(), "--backend", backend])
            .args(["-p", "-d", "1", "--quiet"])
            .output()
            .unwrap();
        let took = t0.elapsed();
        let t = text(&o);
        assert!(o.status.success(), "{backend}: {t}");
        assert!(t.contains("rxdrop: 0 packets"), "{backend}: idle link: {t}");
        assert!(
            took < Duration::from_millis(1300),
            "{backend}: rxdrop -p -d 1 took {took:?} on an idle link: {t}"
        );
    }
}

/// Ctrl-C (SIGINT) and SIGTERM reach an idle `--poll` loop at once: the
/// process is gone within 300 ms of the signal (before: ~5 s).
#[test]
fn signals_stop_an_idle_poll_loop_promptly() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    for (sig, name) in [(Signal::INT, "SIGINT"), (Signal::TERM, "SIGTERM")] {
        for mode in ["rxdrop", "l2fwd"] {
            let mut cmd = rx.command(PKTIO);
            cmd.args([mode, "-i", rx.ifname(), "-p", "--backend", "xdp"]);
            let mut run = Watched::start(cmd);
            // The backend line comes just before the loop starts.
            run.wait_for(&format!("{mode}: xdp"));
            // The handler is installed before the backend opens; the first
            // per-second line shows the loop itself is turning.
            run.wait_for("Mpps");
            let sent = Instant::now();
            run.signal(sig);
            let Some((st, _)) = run.exit_within(Duration::from_secs(10)) else {
                panic!("{mode} still running 10 s after {name}");
            };
            let took = sent.elapsed();
            let err = run.finish().stderr;
            assert!(st.success(), "{mode} after {name}: {st:?}\n{err}");
            assert!(
                took < Duration::from_millis(300),
                "{mode} took {took:?} to exit after {name}:\n{err}"
            );
        }
    }
}

/// Runs pktio in `host`'s namespace with a 30 s bound (a regression that
/// runs instead of refusing still ends).
fn pktio_in(host: &pktio_lab::Host, args: &[&str]) -> std::process::Output {
    let mut cmd = host.command(PKTIO);
    cmd.args(args);
    let mut run = Watched::start(cmd);
    let Some(_) = run.exit_within(Duration::from_secs(30)) else {
        panic!("pktio {args:?} still running after 30 s");
    };
    let o = run.finish();
    std::process::Output {
        status: o.status,
        stdout: o.stdout.into_bytes(),
        stderr: o.stderr.into_bytes(),
    }
}

/// A frame longer than an AF_XDP frame holds is refused before anything
/// is opened (before: txpush sent 0 packets and exited 0).
#[test]
fn txpush_refuses_frames_longer_than_an_xdp_frame() {
    require_root!();
    let lab = Lab::new().unwrap();
    let gen = lab.gen();
    for (args, most) in [
        (&["-s", "4000"][..], "at most 3840 bytes"),
        (
            &["-s", "1800", "-f", "2048", "--backend", "xdp-skb"],
            "at most 1792 bytes",
        ),
    ] {
        let mut all = vec!["txpush", "-i", gen.ifname(), "-d", "1"];
        all.extend_from_slice(args);
        let o = pktio_in(gen, &all);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains(most) && t.contains("--multi-buffer"),
            "{args:?}: {t}"
        );
        assert!(!t.contains("txpush: 0 packets"), "nothing ran: {t}");
    }
}

/// A frame longer than the interface's MTU carries is refused (before: the
/// V2 TX ring marked each one wrong, 685 µs apiece, and `-d 1` took 3 s).
#[test]
fn txpush_refuses_frames_longer_than_the_mtu() {
    require_root!();
    let lab = Lab::new().unwrap();
    let gen = lab.gen();
    for backend in ["v2", "v3", "uring"] {
        let t0 = Instant::now();
        let o = pktio_in(
            gen,
            &[
                "txpush",
                "-i",
                gen.ifname(),
                "--backend",
                backend,
                "-s",
                "3900",
                "-d",
                "1",
            ],
        );
        let t = text(&o);
        assert!(!o.status.success(), "{backend}: {t}");
        assert!(
            t.contains("MTU 1500") && t.contains("up to 1514 bytes"),
            "{backend}: {t}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{backend}: refused at once: {t}"
        );
    }
    // In a lab run too, where the interface is pktio's own.
    let o = pktio_in(
        gen,
        &[
            "txpush",
            "--lab",
            "--backend",
            "v2",
            "-s",
            "3900",
            "-d",
            "1",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success() && t.contains("MTU 1500"), "{t}");
}

/// `-q` on a backend that cannot bind a queue is refused, by name (before:
/// ignored, exit 0).
#[test]
fn queue_on_an_af_packet_backend_is_refused() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    for backend in ["v2", "v3", "uring"] {
        let o = pktio_in(
            rx,
            &[
                "rxdrop",
                "-i",
                rx.ifname(),
                "--backend",
                backend,
                "-q",
                "1",
                "-d",
                "1",
            ],
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{backend}: {t}");
        assert!(
            t.contains("-q 1") && t.contains("cannot bind one") && t.contains("--backend xdp"),
            "{backend}: {t}"
        );
    }
}

/// Values are refused before anything is set up: no lab is built, no XDP
/// program attached, no measurement runs (before: `-d 1e20` was refused
/// after XDP was attached, `--gen-cpu 9` after the whole measurement).
#[test]
fn values_are_refused_before_anything_is_opened() {
    let no_cpu = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    for args in [
        vec!["rxdrop", "-i", "pktio-noif0", "-d", "1e20"],
        vec!["rxdrop", "--lab", "-d", "1", "--gen-cpu", &no_cpu],
        vec!["rxdrop", "--lab", "-d", "1", "--cpu", &no_cpu],
        vec!["l2fwd", "-i", "pktio-noif0", "--ring-size", "0"],
        vec!["txpush", "-i", "pktio-noif0", "--ring-size", "1000"],
        vec!["rxdrop", "-i", "pktio-noif0", "--busy-poll-budget", "0"],
        vec!["gen", "-i", "pktio-noif0", "--cpu", &no_cpu],
        vec!["latency", "--ping-cpu", &no_cpu],
        vec!["soak", "--cpu", &no_cpu],
    ] {
        let t0 = Instant::now();
        let o = cli_support::pktio().args(&args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            !t.contains("lab:") && !t.contains("packets in"),
            "{args:?}: {t}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{args:?}: at once: {t}"
        );
    }
}

/// `pktio ARGS` in a fresh network namespace of its own (`unshare --net`),
/// holding only a loopback that is down and has no address: an interface
/// pktio did not build, and nothing of the host's. `None` without unshare.
fn pktio_in_fresh_netns(args: &[&str]) -> std::process::Output {
    cli_support::require_tool("unshare", "util-linux");
    std::process::Command::new("unshare")
        .args(["--net", "--"])
        .arg(PKTIO)
        .args(args)
        .output()
        .expect("unshare --net pktio")
}

/// Taking over or sending on an interface pktio did not build needs
/// `--take-over`, and is announced before it starts (before: rxdrop, l2fwd,
/// txpush, gen and latency ran on any interface without a word).
#[test]
fn interfaces_outside_a_lab_need_take_over() {
    require_root!();
    for args in [
        &["rxdrop", "-i", "lo", "-d", "1"][..],
        &["l2fwd", "-i", "lo", "-d", "1"],
        &["txpush", "-i", "lo", "-d", "1"],
        &["gen", "-i", "lo", "-n", "1"],
        &["rxdrop", "-i", "lo", "-d", "1", "--backend", "v3"],
    ] {
        let o = pktio_in_fresh_netns(args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains("lo is not an interface of a pktio lab")
                && t.contains("--take-over")
                && t.contains("--lab"),
            "{args:?}: {t}"
        );
        assert!(
            !t.contains("packets in") && !t.contains("frames of"),
            "nothing ran: {t}"
        );
    }
    // Given, the run says what it will do before it starts.
    let o = pktio_in_fresh_netns(&["rxdrop", "-i", "lo", "-d", "0.2", "--take-over"]);
    let t = text(&o);
    assert!(
        t.contains("rxdrop: --take-over: will take every packet arriving on queue 0 away from the host on lo"),
        "{t}"
    );
    // latency's named interfaces too.
    let o = pktio_in_fresh_netns(&["latency", "--pinger-if", "lo", "--ponger-if", "lo2"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
}

/// In a pktio lab nothing changes: no flag, no announcement.
#[test]
fn a_lab_interface_needs_no_consent() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let o = pktio_in(rx, &["rxdrop", "-i", rx.ifname(), "-d", "0.3", "--quiet"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("--take-over"), "{t}");
}

/// Sends `n` UDP frames from `lab`'s gen end, from `src` to `dst`.
fn send_from_gen(lab: &Lab, src: [u8; 4], dst: [u8; 4], n: usize) {
    let gen = lab.gen();
    let (ifname, smac, dmac) = (gen.ifname().to_string(), gen.mac(), lab.rx().mac());
    gen.run(move || {
        let sock = pktio::packet::PacketSocket::open(&ifname).unwrap();
        sock.bind(false).unwrap();
        let spec = pktio::wire::UdpFrame {
            src_mac: smac,
            dst_mac: dmac,
            src_ip: src.into(),
            dst_ip: dst.into(),
            src_port: 9,
            dst_port: 9,
        };
        let mut frame = vec![0u8; 60];
        spec.emit(b"pktio test", 60, &mut frame).unwrap();
        let mut sent = 0;
        while sent < n {
            if sock.send(&frame).unwrap() {
                sent += 1;
            } else {
                std::thread::yield_now();
            }
        }
    });
}

/// l2fwd sends back only frames whose source and destination are in the
/// benchmarking range, and counts the others (before: a frame to 8.8.8.8
/// went back onto the wire); `--reflect-any` sends back all.
#[test]
fn l2fwd_reflects_only_the_benchmarking_range() {
    require_root!();
    for (extra, reflected, dropped) in [(None, 40, 80), (Some("--reflect-any"), 120, 0)] {
        let lab = Lab::new().unwrap();
        let rx = lab.rx();
        let mut cmd = rx.command(PKTIO);
        cmd.args(["l2fwd", "-i", rx.ifname(), "--backend", "xdp", "-d", "2"]);
        cmd.args(extra);
        let mut run = Watched::start(cmd);
        run.wait_for("l2fwd: xdp");
        let (inside, outside) = (
            lab.gen().addr().ip().octets(),
            lab.rx().addr().ip().octets(),
        );
        send_from_gen(&lab, inside, outside, 40);
        send_from_gen(&lab, inside, [8, 8, 8, 8], 40);
        send_from_gen(&lab, [10, 1, 2, 3], outside, 40);
        let Some((st, _)) = run.exit_within(Duration::from_secs(20)) else {
            panic!("l2fwd did not end");
        };
        let cli_support::Outcome {
            stdout: out,
            stderr: err,
            ..
        } = run.finish();
        let t = format!("{st:?}\n{out}\n{err}");
        assert!(st.success(), "{t}");
        assert_eq!(
            cli_support::number_after(&out, "l2fwd: "),
            Some(reflected),
            "{extra:?}: {t}"
        );
        assert_eq!(
            cli_support::number_after(&out, "not reflected: ").unwrap_or(0),
            dropped,
            "{extra:?}: {t}"
        );
    }
}

/// A broadcast or multicast destination MAC needs `--allow-broadcast`.
#[test]
fn broadcast_and_multicast_destinations_need_a_flag() {
    for args in [
        &[
            "txpush",
            "--lab",
            "--dst-mac",
            "ff:ff:ff:ff:ff:ff",
            "-d",
            "1",
        ][..],
        &[
            "txpush",
            "-i",
            "pktio-noif0",
            "--dst-mac",
            "01:00:5e:00:00:01",
        ],
        &[
            "gen",
            "-i",
            "pktio-noif0",
            "--dst-mac",
            "33:33:00:00:00:01",
            "-n",
            "1",
        ],
    ] {
        let o = cli_support::pktio().args(args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("--allow-broadcast"), "{args:?}: {t}");
    }
    // Asked by name: accepted (the parse goes on to the next check).
    let o = cli_support::pktio()
        .args(["gen", "-i", "pktio-noif0", "--dst-mac", "ff:ff:ff:ff:ff:ff"])
        .args(["--allow-broadcast", "-n", "1"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        t.contains("not found") && !t.contains("--allow-broadcast"),
        "{t}"
    );
}
