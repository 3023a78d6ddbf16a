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
