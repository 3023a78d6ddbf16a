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
            run.wait_for(&format!("{mode}: xdp"), Duration::from_secs(20));
            // The handler is installed before the backend opens; the first
            // per-second line shows the loop itself is turning.
            run.wait_for("Mpps", Duration::from_secs(5));
            let sent = Instant::now();
            run.signal(sig);
            let Some((st, _)) = run.exit_within(Duration::from_secs(10)) else {
                panic!("{mode} still running 10 s after {name}");
            };
            let took = sent.elapsed();
            let err = run.stderr();
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
    let stderr = run.stderr();
    let mut out = run.child.wait_with_output().expect("pktio output");
    out.stderr = stderr.into_bytes();
    out
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
