//! Numeric flags refuse nonsense when clap parses them: exit 2, a message
//! naming the flag and its valid range, and never a panic (exit 101) or a
//! value that wraps around and passes.
//!
//! Every value here is refused before any socket, thread or lab exists; the
//! deadline only bounds a regression that would start a real run.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pktio");

/// A refused value ends the run at once; a regression may not.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the binary (with backtraces on, so a panic would show), killing it
/// if it outlives [`DEADLINE`].
fn run(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the pktio binary");
    let pid = rustix::process::Pid::from_child(&child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait for pktio"),
        Err(_) => {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            panic!("pktio {args:?} was not refused: still running after {DEADLINE:?}");
        }
    }
}

/// Asserts a usage error (exit 2) that names `flag` and `range`, without a
/// panic or backtrace.
fn assert_refused(args: &[&str], flag: &str, range: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{args:?} panicked: {err}"
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: exit {:?}, stderr: {err}",
        out.status
    );
    assert!(
        err.contains(flag),
        "{args:?}: the message does not name {flag}: {err}"
    );
    assert!(
        err.contains(range),
        "{args:?}: the message does not give the range: {err}"
    );
}

/// Huge, tiny, zero, negative, NaN, infinite and non-numeric seconds.
const BAD_SECONDS: &[&str] = &[
    "1e19", "1e300", "31536001", "1e-300", "0.0001", "0", "-0", "-1", "-1e19", "nan", "NaN", "inf",
    "-inf", "infinity", "ten", "10s", "",
];

const SECONDS_RANGE: &str = "from 0.001 to 31536000";

/// `flag VALUE` and `flag=VALUE` (a negative value must reach the parser,
/// not be taken for an unknown option).
fn both_spellings(flag: &str, v: &str) -> [Vec<String>; 2] {
    [
        vec![flag.to_string(), v.to_string()],
        vec![format!("{flag}={v}")],
    ]
}

#[test]
fn tcp_recv_idle_timeout() {
    for v in BAD_SECONDS {
        for spelled in both_spellings("--idle-timeout", v) {
            let mut args = vec!["tcp-recv", "--engine", "blocking", "--bind", "127.0.0.1:0"];
            args.extend(spelled.iter().map(String::as_str));
            assert_refused(&args, "--idle-timeout", SECONDS_RANGE);
        }
    }
}

#[test]
fn tcp_send_duration() {
    for v in BAD_SECONDS {
        for spelled in both_spellings("--duration", v) {
            // Port 9 (discard) on loopback: nothing is sent anywhere even if
            // the value were accepted.
            let mut args = vec!["tcp-send", "--to", "127.0.0.1:9"];
            args.extend(spelled.iter().map(String::as_str));
            assert_refused(&args, "--duration", SECONDS_RANGE);
        }
    }
}

#[test]
fn bench_tcp_seconds() {
    for v in BAD_SECONDS {
        for spelled in both_spellings("--seconds", v) {
            let mut args = vec!["bench", "tcp"];
            args.extend(spelled.iter().map(String::as_str));
            // `--runs x` is refused by clap after --seconds: if --seconds
            // were accepted, the run still never starts a lab, and the
            // message names --runs instead (so the test fails).
            args.extend(["--runs", "x"]);
            assert_refused(&args, "--seconds", SECONDS_RANGE);
        }
    }
}

#[test]
fn tcp_buffer_sizes() {
    for v in ["1000G", "2G", "1025M", "0", "99999999999999999999G"] {
        assert_refused(
            &["tcp-recv", "--bind", "127.0.0.1:0", "--buf-size", v],
            "--buf-size",
            "1 byte to 1G",
        );
        assert_refused(
            &["tcp-send", "--to", "127.0.0.1:9", "--size", v],
            "--size",
            "1 byte to 1G",
        );
    }
}

#[test]
fn doctor_headroom() {
    for v in [
        "4294967295",
        "4294967296",
        "99999999999999999999999999999999999999999",
        "65217",
        "-1",
        "nan",
        "inf",
        "1e3",
        "1.5",
        "abc",
        "",
    ] {
        for spelled in both_spellings("--headroom", v) {
            let mut args = vec!["doctor", "-i", "lo"];
            args.extend(spelled.iter().map(String::as_str));
            assert_refused(&args, "--headroom", "from 0 to 65216");
        }
    }
}

#[test]
fn good_values_still_parse() {
    // `--help` after the flags: clap validates the values, then prints help
    // and exits 0 without running anything.
    for args in [
        &["tcp-recv", "--idle-timeout", "0.001", "--help"][..],
        &[
            "tcp-send",
            "--to",
            "127.0.0.1:9",
            "--duration",
            "31536000",
            "--help",
        ],
        &["tcp-send", "--to", "127.0.0.1:9", "--size", "1G", "--help"],
        &["doctor", "--headroom", "65216", "--help"],
        &["doctor", "--headroom", "0", "--help"],
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// What a numeric flag takes, for the generated table of bad values.
#[derive(Clone, Copy)]
enum Kind {
    /// A whole number; `zero` says whether 0 is valid.
    Whole { zero: bool },
    /// A real number (seconds, minutes, a rate); `zero` as above.
    Real { zero: bool },
}

/// Huge, tiny, zero, negative, NaN, infinite and non-numeric values that
/// `kind` must refuse.
fn bad_values(kind: Kind) -> Vec<&'static str> {
    let mut v = vec![
        "1e300",
        "99999999999999999999999",
        "18446744073709551616",
        "-1",
        "-1e19",
        "-99999999999999999999999",
        "1e-300",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "ten",
        "",
        "0x10",
        "1;2",
    ];
    match kind {
        Kind::Whole { zero } => {
            v.push("1.5");
            if !zero {
                v.extend(["0", "-0"]);
            }
        }
        Kind::Real { zero } => {
            if !zero {
                v.extend(["0", "-0", "0.0"]);
            }
        }
    }
    v
}

/// Every numeric flag of rxdrop, txpush, l2fwd, gen, latency, soak and
/// lab up, with a generated table of bad values: each is a usage error
/// (exit 2) that names the flag, never a panic, a backtrace or a run. The
/// interface named does not exist, so a value wrongly accepted ends in
/// "not found" (exit 1) instead of a run.
#[test]
fn every_numeric_flag_of_the_packet_commands_refuses_bad_values() {
    const NOIF: &str = "pktio-noif0";
    let xsk_flags: &[(&str, Kind)] = &[
        ("--duration", Kind::Real { zero: false }),
        ("--cpu", Kind::Whole { zero: true }),
        ("--queue", Kind::Whole { zero: true }),
        ("--batch", Kind::Whole { zero: false }),
        ("--frame-size", Kind::Whole { zero: false }),
        ("--frames", Kind::Whole { zero: false }),
        ("--ring-size", Kind::Whole { zero: false }),
        ("--busy-poll", Kind::Whole { zero: false }),
        ("--busy-poll-budget", Kind::Whole { zero: false }),
    ];
    let mut table: Vec<(Vec<&str>, &str, Kind)> = Vec::new();
    for cmd in ["rxdrop", "txpush", "l2fwd"] {
        for &(flag, kind) in xsk_flags {
            table.push((vec![cmd, "-i", NOIF], flag, kind));
        }
        table.push((vec![cmd, "--lab"], "--gen-cpu", Kind::Whole { zero: true }));
    }
    for (flag, kind) in [
        ("--size", Kind::Whole { zero: false }),
        ("--dst-port", Kind::Whole { zero: true }),
    ] {
        table.push((vec!["txpush", "-i", NOIF], flag, kind));
    }
    for (flag, kind) in [
        ("--size", Kind::Whole { zero: false }),
        ("--count", Kind::Whole { zero: false }),
        ("--rate", Kind::Real { zero: false }),
        ("--flows", Kind::Whole { zero: false }),
        ("--duration", Kind::Real { zero: false }),
        ("--cpu", Kind::Whole { zero: true }),
        ("--dst-port", Kind::Whole { zero: true }),
    ] {
        table.push((vec!["gen", "-i", NOIF], flag, kind));
    }
    for (flag, kind) in [
        ("--count", Kind::Whole { zero: false }),
        ("--warmup", Kind::Whole { zero: true }),
        ("--runs", Kind::Whole { zero: false }),
        ("--size", Kind::Whole { zero: false }),
        ("--timeout-ms", Kind::Whole { zero: false }),
        ("--ping-cpu", Kind::Whole { zero: true }),
        ("--pong-cpu", Kind::Whole { zero: true }),
    ] {
        // --pinger-if with a missing interface: a value wrongly accepted
        // ends in "not found", not in a lab.
        table.push((
            vec!["latency", "--pinger-if", NOIF, "--ponger-if", "pktio-noif1"],
            flag,
            kind,
        ));
    }
    for (flag, kind) in [
        ("--minutes", Kind::Real { zero: false }),
        ("--interval", Kind::Real { zero: false }),
        ("--rate", Kind::Real { zero: true }),
        ("--size", Kind::Whole { zero: false }),
        ("--max-rss-growth", Kind::Whole { zero: true }),
        ("--gen-cpu", Kind::Whole { zero: true }),
        ("--cpu", Kind::Whole { zero: true }),
    ] {
        // A soak that started would build a lab: a bad --modes after the
        // flag is refused by clap if the value passed.
        table.push((vec!["soak"], flag, kind));
    }
    for (flag, kind) in [
        ("--queues", Kind::Whole { zero: false }),
        ("--mtu", Kind::Whole { zero: false }),
    ] {
        table.push((vec!["lab", "up", "--name", "pktio-flagtest-!"], flag, kind));
    }
    let mut cases = 0;
    for (prefix, flag, kind) in &table {
        for v in bad_values(*kind) {
            let spelled = format!("{flag}={v}");
            let mut args = prefix.clone();
            args.push(&spelled);
            if prefix[0] == "soak" {
                args.extend(["--modes", "carrier-pigeon"]);
            }
            let out = run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains("panicked") && !err.contains("backtrace"),
                "{args:?} panicked: {err}"
            );
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: exit {:?}, stderr: {err}",
                out.status
            );
            assert!(
                err.contains(flag),
                "{args:?}: the message does not name {flag}: {err}"
            );
            cases += 1;
        }
    }
    assert!(cases > 600, "{cases} cases");
}

/// An error chain names the kernel's answer once (a system call's error
/// shows it in its own text and also as its source).
#[test]
fn the_kernels_answer_is_printed_once() {
    let o = Command::new(BIN)
        .args(["capture", "-i", "pktio-no-such-if0", "-c", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert_eq!(
        err.matches("No such device (os error 19)").count(),
        1,
        "{err}"
    );
}
