//! Faults, through the built binary, in the lab: the interface deleted under
//! a running loop, another XDP program in the way (before and while pktio
//! runs, and pktio's own program detached behind its back), SIGINT and
//! SIGTERM during every long-running command, and least privilege (only the
//! documented capabilities; traffic outside 198.18.0.0/15 refused).
//!
//! Every run of the (debug) binary also checks the UMEM's frame accounting
//! at its end: a broken one fails the run with "frame accounting broken".
//! After each run the tests check that no XDP program was left on the
//! interface (a fresh attach in driver mode succeeds only on an interface
//! without one, in either mode).
//!
//! Lab tests need root; without it they print SKIPPED and return. Nothing
//! here is timed: waits are bounded only so a hang fails instead of blocking.
#![allow(unsafe_code)]

mod cli_support;

use std::process::{Command, ExitStatus};

use cli_support::{number_after, require_tool, Outcome, Watched};

use pktio::bpf::{progs, BpfError, Program, XdpLink, XdpMode};
use pktio_lab::{fmt_mac, require_root, Host, Lab};
use rustix::process::Signal;

const PKTIO: &str = env!("CARGO_BIN_EXE_pktio");

/// Whether a per-second rate line in `err` shows packets.
fn shows_traffic(err: &str) -> bool {
    err.lines()
        .any(|l| l.contains("Mpps") && !l.contains(" 0.000 Mpps"))
}

/// `pktio <args>` inside `host`'s namespace.
fn pktio_in(host: &Host, args: &[&str]) -> Command {
    let mut c = host.command(PKTIO);
    c.args(args);
    c
}

/// A rate-limited live-frame generator from gen to rx, for `secs` seconds.
fn generator(lab: &Lab, secs: u32) -> Watched {
    let (gen, rx) = (lab.gen(), lab.rx());
    let args = [
        "gen".to_string(),
        "-i".into(),
        gen.ifname().into(),
        "--rate".into(),
        "200000".into(),
        "-d".into(),
        secs.to_string(),
        "--src-mac".into(),
        fmt_mac(&gen.mac()),
        "--dst-mac".into(),
        fmt_mac(&rx.mac()),
        "--src-ip".into(),
        gen.addr().to_string(),
        "--dst-ip".into(),
        rx.addr().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Watched::start(pktio_in(gen, &args))
}

/// The summary's frame accounting (`frames: F free, H held, R on the RX
/// path, T on the TX path, U unaccounted`) adds up, and fewer frames are
/// left with the application than the AF_XDP backend holds back for one
/// fill-ring refill (64).
fn assert_summary_accounting(o: &Outcome) {
    let t = o.text();
    assert!(!t.contains("frame accounting broken"), "{t}");
    let line = o
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("frames: "))
        .unwrap_or_else(|| panic!("no accounting in the summary: {t}"));
    let n = |k: &str| {
        let end = line.find(k).unwrap_or_else(|| panic!("{k} in {line}"));
        line[..end]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("a number before {k} in {line}"))
    };
    assert!(n(" held") < 64, "{line}");
    assert_eq!(n(" unaccounted"), 0, "{line}");
    let sum = n(" free") + n(" on the RX path") + n(" on the TX path");
    assert!(sum > 0, "{line}");
}

/// No XDP program is attached to `host`'s veth end: attaching one in driver
/// mode succeeds (an existing program in either mode makes it fail with
/// EBUSY or EEXIST).
fn assert_no_xdp_program(host: &Host) {
    let pass = Program::load_xdp(&progs::xdp_pass(), &[]).expect("load xdp_pass");
    let r = host.run(|| XdpLink::attach(&pass, host.ifindex(), XdpMode::Driver));
    match r {
        Ok(link) => drop(link),
        Err(e) => panic!("an XDP program was left on {}: {e}", host.ifname()),
    }
}

fn no_panic(o: &Outcome) {
    let t = o.text();
    assert!(!t.contains("panicked"), "{t}");
}

// ---------------------------------------------------------------------------
// The interface vanishes.

fn veth_deleted_while(mode: &str) {
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let mut run = Watched::start(pktio_in(rx, &[mode, "-i", rx.ifname(), "-d", "60"]));
    run.wait_for(&format!("{mode}: "));
    let mut gen = generator(&lab, 60);
    // Traffic flows: the per-second line shows packets.
    run.wait_until("traffic", |r| shows_traffic(&r.stderr_now()));
    lab.delete_link().unwrap();
    let o = run.finish();
    let t = o.text();
    no_panic(&o);
    assert!(
        !o.status.success(),
        "a vanished interface is a failure: {t}"
    );
    assert!(t.contains("vanished"), "says why: {t}");
    assert!(t.contains("stopped early"), "{t}");
    let packets = number_after(&o.stdout, &format!("{mode}: ")).unwrap_or(0);
    assert!(packets > 0, "the stats so far: {t}");
    assert!(t.contains("kernel: drops"), "{t}");
    assert_summary_accounting(&o);
    let g = gen.finish();
    no_panic(&g);
}

#[test]
fn veth_deleted_during_rxdrop_with_traffic() {
    require_root!();
    veth_deleted_while("rxdrop");
}

#[test]
fn veth_deleted_during_l2fwd_with_traffic() {
    require_root!();
    veth_deleted_while("l2fwd");
}

// ---------------------------------------------------------------------------
// Another XDP program.

#[test]
fn a_program_already_attached_is_named_as_the_cause() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let other = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
    for mode in [XdpMode::Driver, XdpMode::Skb] {
        let link = rx
            .run(|| XdpLink::attach(&other, rx.ifindex(), mode))
            .unwrap();
        // AF_XDP asked for: a clear error.
        for args in [
            &["rxdrop", "--backend", "xdp", "-i", rx.ifname(), "-d", "1"][..],
            &[
                "l2fwd",
                "--backend",
                "xdp-skb",
                "-i",
                rx.ifname(),
                "-d",
                "1",
            ][..],
            &["capture", "--steal", "-i", rx.ifname(), "-c", "1"][..],
        ] {
            let o = Watched::start(pktio_in(rx, args)).finish();
            let t = o.text();
            no_panic(&o);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{args:?} over a {mode} program: {t}"
            );
            assert!(
                t.contains("already has an XDP program attached"),
                "{args:?}: names the cause ({mode}): {t}"
            );
            assert!(
                t.contains("stop the process that owns it"),
                "says what to do: {t}"
            );
            assert!(
                t.contains("hint: to run beside that program without XDP"),
                "names the flags that do without XDP: {t}"
            );
        }
        // The automatic choice says why AF_XDP was skipped and falls back to
        // AF_PACKET, which works beside any XDP program.
        let o = Watched::start(pktio_in(rx, &["rxdrop", "-i", rx.ifname(), "-d", "1"])).finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "{t}");
        assert!(
            t.contains("skipped AF_XDP") && t.contains("already has an XDP program attached"),
            "{t}"
        );
        // The foreign program is untouched.
        assert_eq!(link.info().unwrap().ifindex, Some(rx.ifindex()));
        drop(link);
    }
    assert_no_xdp_program(rx);
}

#[test]
fn a_foreign_attach_while_running_fails_and_pktio_keeps_running() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let mut run = Watched::start(pktio_in(rx, &["rxdrop", "-i", rx.ifname(), "-d", "60"]));
    run.wait_for("rxdrop: ");
    run.wait_for_handlers();
    let gen = generator(&lab, 60);
    let other = Program::load_xdp(&progs::xdp_drop(), &[]).unwrap();
    for mode in [XdpMode::Driver, XdpMode::Skb, XdpMode::Auto] {
        match rx.run(|| XdpLink::attach(&other, rx.ifindex(), mode)) {
            Err(BpfError::Busy { .. }) => {}
            Err(e) => panic!("expected Busy in {mode} mode, got {e}"),
            Ok(_) => panic!("a foreign program replaced pktio's in {mode} mode"),
        }
    }
    assert!(!run.exited(), "pktio keeps running: {}", run.stderr_now());
    // And keeps receiving: packets arrive after the attempts.
    let seen = run.stderr_now().len();
    run.wait_until("packets after the attempts", |r| {
        shows_traffic(&r.stderr_now()[seen..])
    });
    run.signal(Signal::INT);
    let o = run.finish();
    let t = o.text();
    no_panic(&o);
    assert!(o.status.success(), "{t}");
    assert!(number_after(&o.stdout, "rxdrop: ").unwrap_or(0) > 0, "{t}");
    assert_summary_accounting(&o);
    drop(gen);
    assert_no_xdp_program(rx);
}

/// `bpf(cmd, attr)` with a zeroed 16-byte attr holding `word0`.
fn bpf_u32(cmd: i32, word0: u32) -> std::io::Result<i64> {
    let mut attr = [0u32; 4];
    attr[0] = word0;
    // SAFETY: `attr` is a live, zero-padded buffer of the size passed; the
    // commands used (BPF_LINK_GET_FD_BY_ID, BPF_LINK_DETACH) read the first
    // word only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

const BPF_LINK_GET_FD_BY_ID: i32 = 30;
const BPF_LINK_DETACH: i32 = 34;

/// The ids of the XDP links held by process `pid` (its fdinfo says
/// `link_type: xdp` and `link_id: N`).
fn xdp_link_ids(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for e in dir.flatten() {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        if info
            .lines()
            .any(|l| l.starts_with("link_type:") && l.contains("xdp"))
        {
            if let Some(id) = info
                .lines()
                .find_map(|l| l.strip_prefix("link_id:"))
                .and_then(|v| v.trim().parse().ok())
            {
                ids.push(id);
            }
        }
    }
    ids
}

/// What `bpftool link detach id N` does to pktio's program is the one way
/// another program can take its place: pktio notices and stops with the
/// stats so far.
#[test]
fn pktio_notices_its_program_detached_by_another_process() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let mut run = Watched::start(pktio_in(rx, &["rxdrop", "-i", rx.ifname(), "-d", "60"]));
    run.wait_for("rxdrop: ");
    let ids = xdp_link_ids(run.child.id());
    assert_eq!(ids.len(), 1, "pktio holds one XDP link: {ids:?}");
    let fd = bpf_u32(BPF_LINK_GET_FD_BY_ID, ids[0]).expect("BPF_LINK_GET_FD_BY_ID");
    let detached = bpf_u32(BPF_LINK_DETACH, fd as u32);
    // SAFETY: `fd` is the descriptor BPF_LINK_GET_FD_BY_ID just returned to us.
    unsafe { libc::close(fd as i32) };
    detached.expect("BPF_LINK_DETACH");
    // The interface is free now: another program could attach.
    let o = run.finish();
    let t = o.text();
    no_panic(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("was detached by someone else"), "{t}");
    assert!(t.contains("rxdrop: ") && t.contains("kernel: drops"), "{t}");
    assert_summary_accounting(&o);
    assert_no_xdp_program(rx);
}

// ---------------------------------------------------------------------------
// SIGINT and SIGTERM.

const SIGNALS: [(Signal, &str); 2] = [(Signal::INT, "SIGINT"), (Signal::TERM, "SIGTERM")];

/// Starts `args` in `host`, waits for `ready` on stderr and for the signal
/// handlers, optionally lets traffic flow, sends `sig`, and returns how it ended.
fn interrupted(host: &Host, args: &[&str], ready: &str, sig: Signal) -> Outcome {
    let mut run = Watched::start(pktio_in(host, args));
    run.wait_for_handlers();
    run.wait_for(ready);
    run.signal(sig);
    run.finish()
}

#[test]
fn signals_stop_rxdrop_and_l2fwd_cleanly() {
    require_root!();
    for mode in ["rxdrop", "l2fwd"] {
        for (sig, name) in SIGNALS {
            let lab = Lab::new().unwrap();
            let rx = lab.rx();
            let gen = generator(&lab, 60);
            let o = interrupted(rx, &[mode, "-i", rx.ifname()], " Mpps", sig);
            let t = o.text();
            no_panic(&o);
            assert!(o.status.success(), "{mode} after {name}: {t}");
            assert!(
                o.stdout.contains(&format!("{mode}: ")),
                "{mode} {name}: stats: {t}"
            );
            assert!(!t.contains("stopped early"), "{t}");
            assert_summary_accounting(&o);
            drop(gen);
            assert_no_xdp_program(rx);
        }
    }
}

#[test]
fn signals_stop_txpush_cleanly() {
    require_root!();
    for (sig, name) in SIGNALS {
        let lab = Lab::new().unwrap();
        let gen = lab.gen();
        let (src, dst) = (fmt_mac(&gen.mac()), fmt_mac(&lab.rx().mac()));
        let (sip, dip) = (gen.addr().to_string(), lab.rx().addr().to_string());
        let o = interrupted(
            gen,
            &[
                "txpush",
                "-i",
                gen.ifname(),
                "--src-mac",
                &src,
                "--dst-mac",
                &dst,
                "--src-ip",
                &sip,
                "--dst-ip",
                &dip,
            ],
            " Mpps",
            sig,
        );
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "txpush after {name}: {t}");
        assert!(number_after(&o.stdout, "txpush: ").unwrap_or(0) > 0, "{t}");
        assert_summary_accounting(&o);
        assert_no_xdp_program(gen);
    }
}

#[test]
fn signals_stop_lab_runs_cleanly() {
    require_root!();
    for (mode, (sig, name)) in [
        ("rxdrop", SIGNALS[0]),
        ("l2fwd", SIGNALS[1]),
        ("txpush", SIGNALS[0]),
    ] {
        let mut run = Watched::start({
            let mut c = Command::new(PKTIO);
            c.args([mode, "--lab", "-d", "60"]);
            c
        });
        run.wait_for_handlers();
        run.wait_for(" Mpps");
        run.signal(sig);
        let o = run.finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "{mode} --lab after {name}: {t}");
        assert!(
            number_after(&o.stdout, &format!("{mode}: ")).unwrap_or(0) > 0,
            "{t}"
        );
        assert!(t.contains("generator:") || mode == "txpush", "{t}");
        assert_summary_accounting(&o);
    }
}

fn gen_interrupted(engine: &str) {
    for (sig, name) in SIGNALS {
        let lab = Lab::new().unwrap();
        let gen = lab.gen();
        if engine == "live" {
            // Where this kernel refuses live frames, asking for them by name
            // is a typed error with the errno and the engines that work.
            let o = Watched::start(pktio_in(
                gen,
                &["gen", "-i", gen.ifname(), "--engine", "live", "-n", "1"],
            ))
            .finish();
            let t = o.text();
            no_panic(&o);
            if !o.status.success() {
                assert!(
                    t.contains("this host refuses live frames")
                        && t.contains("engines that work here"),
                    "{t}"
                );
                return;
            }
        }
        let mut run = Watched::start(pktio_in(
            gen,
            &["gen", "-i", gen.ifname(), "--engine", engine],
        ));
        run.wait_for_handlers();
        if engine == "xsk" {
            run.wait_for(" Mpps");
        }
        run.signal(sig);
        let o = run.finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "gen {engine} after {name}: {t}");
        assert!(o.stdout.contains("gen: "), "prints what it sent: {t}");
        assert_summary_free_of_breakage(&o);
        assert_no_xdp_program(gen);
    }
}

#[test]
fn signals_stop_gen_xsk_cleanly() {
    require_root!();
    gen_interrupted("xsk");
}

/// The signal lands on the generating thread, inside `BPF_PROG_RUN`, which
/// the kernel then ends with EINTR: `pktio gen` must take that as "stop
/// (or go on)", not as an error that loses the count.
#[test]
fn signals_stop_gen_live_cleanly() {
    require_root!();
    gen_interrupted("live");
}

/// For commands whose summary does not print the accounting: the run's own
/// end-of-run check did not fail.
fn assert_summary_free_of_breakage(o: &Outcome) {
    assert!(
        !o.text().contains("frame accounting broken"),
        "{}",
        o.text()
    );
}

#[test]
fn signals_stop_bench_quick_with_the_table_so_far() {
    require_root!();
    for (sig, name) in SIGNALS {
        let mut run = Watched::start({
            let mut c = Command::new(PKTIO);
            c.args([
                "bench",
                "--quick",
                "--modes",
                "rxdrop",
                "--backends",
                "xdp",
                "--sizes",
                "64,1500",
            ]);
            c
        });
        run.wait_for_handlers();
        run.wait_for("rxdrop");
        run.signal(sig);
        let o = run.finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "bench after {name}: {t}");
        assert!(t.contains("interrupted: the table is incomplete"), "{t}");
        assert_summary_free_of_breakage(&o);
    }
}

/// tcp-recv and doctor --watch hold no XDP program, UMEM or file: the
/// default action of SIGINT/SIGTERM (termination) loses nothing. What they
/// must do: end at once, without a panic, and leave nothing bound.
#[test]
fn signals_end_tcp_recv_and_doctor_watch() {
    require_root!();
    for (sig, name) in SIGNALS {
        let lab = Lab::new().unwrap();
        let rx = lab.rx();
        let bind = rx.addr().socket_addr(5201).to_string();
        let mut run = Watched::start(pktio_in(
            rx,
            &[
                "tcp-recv",
                "--lab",
                "--bind",
                &bind,
                "--idle-timeout",
                "600",
            ],
        ));
        run.wait_for("listening on");
        run.signal(sig);
        let o = run.finish();
        no_panic(&o);
        assert!(
            o.status.success() || ended_by(&o.status, sig),
            "tcp-recv after {name}: {}",
            o.text()
        );
        // The port is free again.
        let again = rx.run(|| std::net::TcpListener::bind(rx.addr().socket_addr(5201)));
        assert!(again.is_ok(), "port 5201 still bound after {name}");

        let mut run = Watched::start(pktio_in(rx, &["doctor", "--watch", "0.2"]));
        // The signal comes between reports, once one is out.
        run.wait_until("a report", |r| !r.stdout_now().is_empty());
        run.signal(sig);
        let o = run.finish();
        no_panic(&o);
        assert!(
            o.status.success() || ended_by(&o.status, sig),
            "doctor --watch after {name}: {}",
            o.text()
        );
        assert!(
            o.stdout.is_empty() || o.stdout.ends_with('\n'),
            "whole lines only: {}",
            o.text()
        );
    }
}

fn ended_by(status: &ExitStatus, sig: Signal) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(sig.as_raw()) || status.code() == Some(128 + sig.as_raw())
}

// ---------------------------------------------------------------------------
// Least privilege.

/// The capabilities docs/CAPABILITIES.md lists for rxdrop/txpush/l2fwd on
/// an existing interface.
const XSK_CAPS: &str = "net_raw,net_admin,bpf,ipc_lock";

/// `setpriv` arguments running a command as `nobody` with exactly `caps`
/// (effective, permitted, inheritable and ambient; bounding set cut to them).
fn as_nobody_with(caps: &str) -> Vec<String> {
    let plus: Vec<String> = caps.split(',').map(|c| format!("+{c}")).collect();
    let plus = plus.join(",");
    vec![
        "--reuid=65534".into(),
        "--regid=65534".into(),
        "--clear-groups".into(),
        format!("--inh-caps=-all,{plus}"),
        format!("--ambient-caps=-all,{plus}"),
        format!("--bounding-set=-all,{plus}"),
        "--".into(),
    ]
}

#[test]
fn xsk_commands_work_with_only_the_documented_capabilities() {
    require_root!();
    require_tool("setpriv", "util-linux");
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    // txpush (AF_XDP) transmits only: no XDP program, so no CAP_BPF or
    // CAP_NET_ADMIN. First, before the lab's generator takes gen's queue
    // (an AF_XDP generator does, where the kernel refuses live frames).
    let gen_host = lab.gen();
    let mut c = gen_host.command("setpriv");
    c.args(as_nobody_with("net_raw,ipc_lock")).arg(PKTIO).args([
        "txpush",
        "--backend",
        "xdp",
        "-i",
        gen_host.ifname(),
        "-d",
        "1",
    ]);
    let o = Watched::start(c).finish();
    no_panic(&o);
    assert!(
        o.status.success(),
        "txpush with net_raw,ipc_lock only: {}",
        o.text()
    );
    assert!(
        number_after(&o.stdout, "txpush: ").unwrap_or(0) > 0,
        "{}",
        o.text()
    );
    assert_summary_accounting(&o);
    let gen = generator(&lab, 60);
    for mode in ["rxdrop", "l2fwd"] {
        let mut c = rx.command("setpriv");
        c.args(as_nobody_with(XSK_CAPS)).arg(PKTIO).args([
            mode,
            "--backend",
            "xdp",
            "-i",
            rx.ifname(),
            "-d",
            "1.5",
        ]);
        let o = Watched::start(c).finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "{mode} with {XSK_CAPS} only: {t}");
        assert!(
            number_after(&o.stdout, &format!("{mode}: ")).unwrap_or(0) > 0,
            "{t}"
        );
        assert_summary_accounting(&o);
        assert_no_xdp_program(rx);
    }
    // capture (AF_XDP): the same four without a filter; a filter program
    // does variable-offset packet pointer arithmetic, which the verifier
    // allows only with CAP_PERFMON (Spectre v1 hardening for "!root").
    for (caps, filter) in [
        (XSK_CAPS.to_string(), None),
        (format!("{XSK_CAPS},perfmon"), Some("udp")),
    ] {
        let mut c = rx.command("setpriv");
        c.args(as_nobody_with(&caps))
            .arg(PKTIO)
            .args(["capture", "--steal", "-i", rx.ifname(), "-c", "100"])
            .args(filter);
        let o = Watched::start(c).finish();
        no_panic(&o);
        assert!(
            o.status.success(),
            "capture {filter:?} with {caps} only: {}",
            o.text()
        );
        assert_eq!(o.stdout.lines().count(), 100, "{}", o.text());
        assert_no_xdp_program(rx);
    }
    // AF_PACKET backends need CAP_NET_RAW only. (Without an XDP program the
    // veth needs GRO to receive the generator's frames.)
    rx.set_gro(true).unwrap();
    for args in [
        &["rxdrop", "--backend", "v3", "-i", rx.ifname(), "-d", "1"][..],
        &[
            "capture",
            "--backend",
            "packet",
            "-i",
            rx.ifname(),
            "-c",
            "100",
            "udp",
        ][..],
    ] {
        let mut c = rx.command("setpriv");
        c.args(as_nobody_with("net_raw")).arg(PKTIO).args(args);
        let o = Watched::start(c).finish();
        no_panic(&o);
        assert!(
            o.status.success(),
            "{args:?} with net_raw only: {}",
            o.text()
        );
    }
    // The automatic choice, with CAP_NET_RAW only, says why AF_XDP is out.
    let mut c = rx.command("setpriv");
    c.args(as_nobody_with("net_raw"))
        .arg(PKTIO)
        // A UMEM within the default RLIMIT_MEMLOCK, so that the first thing
        // missing is CAP_BPF.
        .args(["rxdrop", "-i", rx.ifname(), "-d", "1", "--frames", "1024"]);
    let o = Watched::start(c).finish();
    let t = o.text();
    no_panic(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("skipped AF_XDP") && t.contains("CAP_BPF"), "{t}");
    drop(gen);
    // One capability fewer: each missing one gives an error naming what is needed.
    for (missing, want) in [
        ("net_raw", "CAP_NET_RAW"),
        ("bpf", "CAP_BPF"),
        ("net_admin", "CAP_NET_ADMIN"),
        ("ipc_lock", "RLIMIT_MEMLOCK"),
    ] {
        let caps: Vec<&str> = XSK_CAPS.split(',').filter(|c| *c != missing).collect();
        let mut c = rx.command("prlimit");
        c.arg("--memlock=65536:65536")
            .arg("setpriv")
            .args(as_nobody_with(&caps.join(",")))
            .arg(PKTIO)
            .args(["rxdrop", "--backend", "xdp", "-i", rx.ifname(), "-d", "1"]);
        let o = Watched::start(c).finish();
        let t = o.text();
        no_panic(&o);
        assert_eq!(o.status.code(), Some(1), "without {missing}: {t}");
        assert!(
            t.contains(want),
            "without {missing} the error names {want}: {t}"
        );
    }
    assert_no_xdp_program(rx);
}

#[test]
fn gen_works_with_only_the_documented_capabilities() {
    require_root!();
    require_tool("setpriv", "util-linux");
    let lab = Lab::new().unwrap();
    let gen = lab.gen();
    // Live frames: BPF_PROG_RUN needs CAP_BPF (loading) and CAP_NET_ADMIN
    // (XDP); where the host refuses them, the ladder's next engines need
    // CAP_NET_RAW (and CAP_IPC_LOCK for the UMEM).
    let mut c = gen.command("setpriv");
    c.args(as_nobody_with("net_admin,bpf,net_raw,ipc_lock"))
        .arg(PKTIO)
        .args(["gen", "-i", gen.ifname(), "-n", "1000"]);
    let o = Watched::start(c).finish();
    let t = o.text();
    no_panic(&o);
    assert!(
        o.status.success(),
        "gen with the documented capabilities: {t}"
    );
    assert_eq!(number_after(&o.stdout, "gen: "), Some(1000), "{t}");
}

#[test]
fn lab_commands_say_they_need_more_than_the_xsk_capabilities() {
    require_root!();
    require_tool("setpriv", "util-linux");
    let o = Watched::start({
        let mut c = Command::new("setpriv");
        c.args(as_nobody_with(XSK_CAPS))
            .arg(PKTIO)
            .args(["rxdrop", "--lab", "-d", "1"]);
        c
    })
    .finish();
    let t = o.text();
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("CAP_SYS_ADMIN"),
        "names the missing capability: {t}"
    );
}

/// Generated traffic goes only to 198.18.0.0/15: every command that sends
/// refuses any other destination before it touches the network.
#[test]
fn traffic_outside_the_benchmarking_range_is_refused() {
    let cases: &[&[&str]] = &[
        &["txpush", "-i", "lo", "--dst-ip", "10.0.0.1", "-d", "1"],
        &["txpush", "--lab", "--dst-ip", "192.168.1.1", "-d", "1"],
        &["gen", "-i", "lo", "--dst-ip", "8.8.8.8", "-n", "1"],
        &["gen", "-i", "lo", "--dst-ip", "198.20.0.1", "-n", "1"],
        &["gen", "-i", "lo", "--dst-ip", "198.17.255.255", "-n", "1"],
    ];
    for args in cases {
        let o = Command::new(PKTIO).args(*args).output().unwrap();
        let t = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(2), "{args:?} must be refused: {t}");
        assert!(t.contains("outside 198.18.0.0/15"), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{t}");
    }
    let tcp: &[&[&str]] = &[
        &[
            "tcp-send",
            "--lab",
            "--to",
            "10.1.2.3:5201",
            "--duration",
            "1",
        ],
        &["tcp-send", "--lab", "--to", "[::1]:5201", "--duration", "1"],
        &["tcp-recv", "--lab", "--bind", "0.0.0.0:5201"],
    ];
    for args in tcp {
        let o = Command::new(PKTIO).args(*args).output().unwrap();
        let t = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{args:?} must be refused: {t}");
        assert!(
            t.contains("outside the lab") && t.contains("198.18.0.0/15"),
            "{args:?}: {t}"
        );
    }
}

// ---------------------------------------------------------------------------
// Soak.

/// A short soak: every interval accounted for, memory flat (in the table
/// and in its `--json` document), and a signal ends it with the report so
/// far.
#[test]
fn soak_reports_flat_accounting_and_stops_on_a_signal() {
    require_root!();
    let json = TempFile::new("soak-json");
    let o = Watched::start({
        let mut c = Command::new(PKTIO);
        c.args([
            "soak",
            "--minutes",
            "0.1",
            "--interval",
            "3",
            "--rate",
            "100000",
            "--json",
            json.path(),
        ]);
        c
    })
    .finish();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json.0).unwrap_or_default()).unwrap_or_default();
    cli_support::schema::check(&doc, "pktio.soak/1");
    assert_eq!(doc["ok"], true, "{doc:#}");
    let intervals = doc["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 4, "{doc:#}");
    for iv in intervals {
        assert_eq!(iv["frames"]["total"], 4096, "{iv}");
        assert_eq!(iv["frames"]["unaccounted"], 0, "{iv}");
    }
    let t = o.text();
    no_panic(&o);
    assert!(o.status.success(), "{t}");
    for mode in ["rxdrop", "l2fwd"] {
        let lines: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with(mode)).collect();
        assert_eq!(lines.len(), 2, "two intervals of {mode}: {t}");
        for l in lines {
            assert!(l.contains("of 4096"), "frames accounted: {l}");
            assert!(l.contains("MiB"), "VmRSS: {l}");
        }
    }
    assert!(o.stdout.contains("soak: ok"), "{t}");

    for (sig, name) in SIGNALS {
        let mut run = Watched::start({
            let mut c = Command::new(PKTIO);
            c.args([
                "soak",
                "--minutes",
                "10",
                "--interval",
                "2",
                "--rate",
                "100000",
            ]);
            c
        });
        run.wait_for_handlers();
        // Into the soak: its table's header is out.
        run.wait_until("the soak's table", |r| {
            r.stdout_now().contains("unaccounted")
        });
        run.signal(sig);
        let o = run.finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "soak after {name}: {t}");
        assert!(
            o.stdout.contains("interrupted") && o.stdout.contains("soak: ok"),
            "{t}"
        );
    }
}

/// What a lab run needs on top of the AF_XDP capabilities: CAP_SYS_ADMIN
/// (docs/CAPABILITIES.md).
const LAB_CAPS: &str = "net_raw,net_admin,bpf,ipc_lock,sys_admin";

#[test]
fn lab_runs_work_with_the_documented_capabilities() {
    require_root!();
    require_tool("setpriv", "util-linux");
    let mut c = Command::new("setpriv");
    c.args(as_nobody_with(LAB_CAPS))
        .arg(PKTIO)
        .args(["rxdrop", "--lab", "-d", "1.5"]);
    let o = Watched::start(c).finish();
    let t = o.text();
    no_panic(&o);
    assert!(o.status.success(), "rxdrop --lab with {LAB_CAPS} only: {t}");
    assert!(number_after(&o.stdout, "rxdrop: ").unwrap_or(0) > 0, "{t}");
    assert_summary_accounting(&o);
}

// ---------------------------------------------------------------------------
// Capture: the file stays valid whatever stops it.

/// A file name no other test uses, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        TempFile(std::env::temp_dir().join(format!(
            "pktio-faults-{}-{}-{tag}.pcap",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The packets a capture file holds, read back with `pktio capture -r`
/// (one line each); the read must succeed, i.e. the file is whole.
fn packets_in(file: &TempFile) -> usize {
    let o = Command::new(PKTIO)
        .args(["capture", "-r", file.path()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} does not read back: {}",
        file.path(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).lines().count()
}

/// The number before " packets captured" in capture's summary.
fn captured(o: &Outcome) -> usize {
    let line = o
        .stderr
        .lines()
        .find(|l| l.ends_with(" packets captured"))
        .unwrap_or_else(|| panic!("no summary: {}", o.text()));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Call once the capture listens: waits until the generator reports a
/// second of traffic after that, so the capture has packets to count.
fn let_it_capture(run: &mut Watched, gen: &mut Watched) {
    let seen = gen.stderr_now().len();
    gen.wait_until("traffic", |g| shows_traffic(&g.stderr_now()[seen..]));
    assert!(!run.exited(), "capture ended early: {}", run.stderr_now());
}

/// The live-frame generator's frames reach a veth end only through a NAPI
/// instance: an XDP program gives it one, GRO does without.
fn napi_for(lab: &Lab, backend: &str) {
    if backend == "packet" {
        lab.rx().set_gro(true).unwrap();
    }
}

/// `pktio capture --backend B -i IF -w FILE EXTRA...` in `rx`, watched.
fn capture_to_file(rx: &Host, backend: &str, file: &TempFile, extra: &[&str]) -> Watched {
    let mut args = vec!["capture", "--backend", backend, "-i", rx.ifname()];
    args.extend(["-w", file.path()]);
    args.extend(extra);
    Watched::start(pktio_in(rx, &args))
}

#[test]
fn veth_deleted_during_capture_keeps_the_file_valid() {
    require_root!();
    for backend in ["xdp", "packet"] {
        let lab = Lab::new().unwrap();
        let rx = lab.rx();
        let file = TempFile::new("vanish");
        napi_for(&lab, backend);
        let mut run = capture_to_file(rx, backend, &file, &["udp"]);
        run.wait_for("listening on");
        let mut gen = generator(&lab, 60);
        let_it_capture(&mut run, &mut gen);
        lab.delete_link().unwrap();
        let o = run.finish();
        let t = o.text();
        no_panic(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{backend}: a vanished interface is a failure: {t}"
        );
        // The summary comes first, then the error naming the cause.
        assert!(
            t.contains(" packets captured") && t.contains("vanished"),
            "{backend}: {t}"
        );
        let n = captured(&o);
        assert!(n > 0, "{backend}: {t}");
        assert_eq!(
            packets_in(&file),
            n,
            "{backend}: the file holds what the summary says: {t}"
        );
        drop(gen);
    }
}

#[test]
fn signals_stop_capture_with_the_file_whole() {
    require_root!();
    for backend in ["xdp", "packet"] {
        for (sig, name) in SIGNALS {
            let lab = Lab::new().unwrap();
            let rx = lab.rx();
            let file = TempFile::new("signal");
            napi_for(&lab, backend);
            let mut gen = generator(&lab, 60);
            let mut run = capture_to_file(rx, backend, &file, &[]);
            run.wait_for_handlers();
            run.wait_for("listening on");
            let_it_capture(&mut run, &mut gen);
            run.signal(sig);
            let o = run.finish();
            let t = o.text();
            no_panic(&o);
            assert!(o.status.success(), "{backend} after {name}: {t}");
            assert!(t.contains("stopped by interrupt"), "{t}");
            let n = captured(&o);
            assert!(n > 0, "{t}");
            assert_eq!(
                packets_in(&file),
                n,
                "{backend} after {name}: flushed and whole: {t}"
            );
            drop(gen);
            assert_no_xdp_program(rx);
        }
    }
}

#[test]
fn signals_stop_latency_with_the_table_so_far() {
    require_root!();
    for (sig, name) in SIGNALS {
        let mut run = Watched::start({
            let mut c = Command::new(PKTIO);
            c.args(["latency", "--count", "2000000", "--runs", "1"]);
            c
        });
        run.wait_for_handlers();
        run.wait_for("pings");
        run.signal(sig);
        let o = run.finish();
        let t = o.text();
        no_panic(&o);
        assert!(o.status.success(), "latency after {name}: {t}");
        assert!(t.contains("interrupted: the table is incomplete"), "{t}");
    }
}

/// `-w -`: the pcap stream goes to stdout, whole, whether the capture ends
/// by its count or by SIGINT; the summary stays on stderr.
#[test]
fn capture_to_stdout_is_a_whole_pcap_stream() {
    require_root!();
    for backend in ["xdp", "packet"] {
        for by_signal in [false, true] {
            let lab = Lab::new().unwrap();
            let rx = lab.rx();
            let file = TempFile::new("stdout");
            napi_for(&lab, backend);
            let out = std::fs::File::create(file.path()).unwrap();
            let mut args = vec![
                "capture",
                "--backend",
                backend,
                "-i",
                rx.ifname(),
                "-w",
                "-",
            ];
            if by_signal {
                // Spinning, the capture still sees the signal and stops cleanly.
                args.push("--spin");
            } else {
                args.extend(["-c", "200"]);
            }
            let mut run = Watched::start_to(pktio_in(rx, &args), out.into());
            let mut gen = generator(&lab, 60);
            if by_signal {
                run.wait_for_handlers();
                run.wait_for("listening on");
                let_it_capture(&mut run, &mut gen);
                run.signal(Signal::INT);
            }
            let o = run.finish();
            drop(gen);
            let err = o.stderr;
            assert!(o.status.success(), "{backend} (signal {by_signal}): {err}");
            assert!(!err.contains("panicked"), "{err}");
            let summary: usize = err
                .lines()
                .find(|l| l.ends_with(" packets captured"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no summary on stderr: {err}"));
            if !by_signal {
                assert_eq!(summary, 200, "{err}");
            }
            assert!(summary > 0, "{err}");
            // Only pcap on stdout: it reads back, every packet the summary counts.
            assert_eq!(packets_in(&file), summary, "{backend}: {err}");
            assert_no_xdp_program(rx);
        }
    }
}
