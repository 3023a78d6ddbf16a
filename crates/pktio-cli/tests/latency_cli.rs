//! `pktio latency` as a user runs it: a short run in the lab whose
//! histogram holds exactly the answered pings, the same between two named
//! interfaces (a veth pair in a namespace this test makes with `ip`), the
//! report formats, and bad input. Tests that need root print SKIPPED and
//! return without it.

mod cli_support;

use std::process::Command;

use cli_support::{pktio, require_tool, text};

use pktio_lab::require_root;

/// The median of the cell with `metric` for `backend` and `mode`.
fn cell(v: &serde_json::Value, backend: &str, mode: &str, metric: &str) -> Option<f64> {
    v["cells"].as_array()?.iter().find_map(|c| {
        (c["labels"]["backend"] == backend && c["labels"]["mode"] == mode && c["metric"] == metric)
            .then(|| c["median"].as_f64())
            .flatten()
    })
}

/// The status label of an unmeasured row ("unsupported: why"), if it is one.
fn status(v: &serde_json::Value, backend: &str, mode: &str) -> Option<String> {
    v["cells"].as_array()?.iter().find_map(|c| {
        (c["labels"]["backend"] == backend && c["labels"]["mode"] == mode)
            .then(|| c["labels"]["status"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Whether `kernel.io_uring_disabled` keeps this process from io_uring.
fn io_uring_disabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|t| t.trim() != "0")
}

const BACKENDS: [&str; 5] = ["xdp", "xdp-skb", "v2", "v3", "uring"];

/// Every backend (the default list) in both modes: each row's histogram
/// holds exactly the pings answered, and every ping is answered or lost.
#[test]
fn every_backend_answers_and_its_histogram_holds_the_pings_answered() {
    require_root!();
    let dir = std::env::temp_dir().join(format!("pktio-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("lat.json");
    let svg = dir.join("lat.svg");
    let o = pktio()
        .args(["latency", "--count", "100", "--warmup", "10", "--runs", "1"])
        .args(["--timeout-ms", "2000"])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let out = String::from_utf8_lossy(&o.stdout);
    for h in [
        "p50 (µs)",
        "p99 (µs)",
        "p99.9 (µs)",
        "min (µs)",
        "max (µs)",
        "busy-poll",
        "interrupt",
    ] {
        assert!(out.contains(h), "table lacks {h}: {t}");
    }
    assert!(!out.contains("not measured"), "stale note: {t}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");
    for backend in BACKENDS {
        for mode in ["busy-poll", "interrupt"] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(backend) && l.contains(mode)),
                "no {backend} {mode} row: {t}"
            );
            if let Some(s) = status(&v, backend, mode) {
                // Only a host that switched io_uring off may leave a row out.
                assert!(
                    backend == "uring" && io_uring_disabled(),
                    "{backend} {mode}: {s}: {t}"
                );
                assert!(
                    out.contains(&format!("{backend} {mode}: unsupported")),
                    "{t}"
                );
                eprintln!("SKIPPED {backend} {mode}: {s}");
                continue;
            }
            let sent = cell(&v, backend, mode, "sent").unwrap();
            let answered = cell(&v, backend, mode, "answered").unwrap();
            let lost = cell(&v, backend, mode, "lost").unwrap();
            let samples = cell(&v, backend, mode, "histogram samples").unwrap();
            assert_eq!(sent, 100.0, "{backend} {mode}");
            assert_eq!(answered + lost, sent, "{backend} {mode}");
            assert_eq!(samples, answered, "{backend} {mode}: histogram vs answered");
            assert!(answered > 0.0, "{backend} {mode}: nothing answered: {t}");
            let (min, p50, p99, max) = (
                cell(&v, backend, mode, "min").unwrap(),
                cell(&v, backend, mode, "p50").unwrap(),
                cell(&v, backend, mode, "p99").unwrap(),
                cell(&v, backend, mode, "max").unwrap(),
            );
            assert!(
                0.0 < min && min <= p50 && p50 <= p99 && p99 <= max,
                "{backend} {mode}: {min} {p50} {p99} {max}"
            );
        }
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    for backend in BACKENDS {
        if status(&v, backend, "busy-poll").is_none() {
            assert!(
                svg.contains(&format!("backend={backend}")),
                "{backend}: {svg}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn markdown_output() {
    require_root!();
    let o = pktio()
        .args(["latency", "--count", "50", "--warmup", "5", "--runs", "1"])
        .args(["--backends", "xdp", "--modes", "interrupt", "--markdown"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("### pktio latency"), "{t}");
    assert!(
        out.contains("| backend | mode | min (µs) | p50 (µs) |"),
        "{t}"
    );
    assert!(out.contains("| xdp | interrupt |"), "{t}");
}

#[test]
fn bad_input_is_refused_with_a_message() {
    for (args, want) in [
        (vec!["--count", "0"], "--count <COUNT>': 0 is out of range"),
        (
            vec!["--runs", "0"],
            "expected a whole number from 1 to 1000",
        ),
        (
            vec!["--size", "9000"],
            "expected a whole number from 64 to 1518",
        ),
        (vec!["--timeout-ms", "0"], "--timeout-ms"),
        (vec!["--ping-cpu", "4096"], "CPU 4096 does not exist"),
        (vec!["--backends", "carrier-pigeon"], "invalid value"),
    ] {
        let o = pktio().arg("latency").args(&args).output().unwrap();
        let t = text(&o);
        // A usage error, before anything is built.
        assert_eq!(o.status.code(), Some(2), "{args:?} accepted: {t}");
        assert!(t.contains(want), "{args:?}: {t}");
    }
}

#[test]
fn bad_interface_input_is_refused_before_touching_anything() {
    for (args, want) in [
        (
            vec!["--pinger-if", "lo"],
            "--pinger-if and --ponger-if go together",
        ),
        (
            vec!["--ponger-if", "lo"],
            "--pinger-if and --ponger-if go together",
        ),
        (
            vec!["--pinger-if", "lo", "--ponger-if", "lo"],
            "both lo: the pinger and the ponger need two interfaces",
        ),
        (
            vec!["--pinger-if", "pktiono0", "--ponger-if", "pktiono1"],
            "interface \"pktiono0\" not found",
        ),
        (
            vec![
                "--pinger-if",
                "a0",
                "--ponger-if",
                "b0",
                "--pinger-ip",
                "8.8.8.8",
            ],
            "8.8.8.8 is outside 198.18.0.0/15",
        ),
        (
            vec![
                "--pinger-if",
                "a0",
                "--ponger-if",
                "b0",
                "--ponger-ip",
                "10.1.2.3",
            ],
            "10.1.2.3 is outside 198.18.0.0/15",
        ),
        (vec!["--ponger-ip", "198.18.0.9"], "go with --pinger-if"),
    ] {
        let o = pktio().arg("latency").args(&args).output().unwrap();
        let t = text(&o);
        assert!(!o.status.success(), "{args:?} accepted: {t}");
        assert!(t.contains(want), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
}

/// A network namespace of this test's own, made and removed with `ip`
/// (Drop removes it, with the veth pair in it, also on a failed assert).
struct TestNs {
    name: String,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", text(&o));
}

impl TestNs {
    fn new(name: String) -> TestNs {
        ip(&["netns", "add", &name]);
        TestNs { name }
    }

    /// `program args` run in the namespace (`ip netns exec`, which also
    /// remounts /sys for it).
    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Waits until `ifname` is operationally up: before, frames sent on it
    /// are dropped.
    fn wait_up(&self, ifname: &str) {
        let what = format!("{ifname} in {} up", self.name);
        pktio_lab::wait::until(std::time::Duration::from_secs(5), &what, || {
            let o = Command::new("ip")
                .args(["-n", &self.name, "-br", "link", "show", "dev", ifname])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).contains(" UP ")
        });
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two named interfaces (a veth pair whose ends are both in one namespace
/// of this test, GRO on at both ends so that AF_XDP TX and the AF_PACKET
/// backends are received through NAPI): every backend's histogram holds
/// exactly the pings answered, and the environment names the interfaces.
#[test]
fn named_interfaces_answer_and_the_histogram_holds_the_pings_answered() {
    require_root!();
    require_tool("ip", "iproute2");
    require_tool("ethtool", "ethtool");
    let pid = std::process::id();
    let ns = TestNs::new(format!("pktio-latif-{pid}"));
    let (a, b) = (format!("lia{pid}"), format!("lib{pid}"));
    let n = ns.name.as_str();
    // One queue each, like the lab: the AF_XDP sockets bind queue 0.
    ip(&[
        "-n",
        n,
        "link",
        "add",
        &a,
        "numtxqueues",
        "1",
        "numrxqueues",
        "1",
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "numtxqueues",
        "1",
        "numrxqueues",
        "1",
    ]);
    for i in [&a, &b] {
        // What Host::set_gro does (ETHTOOL_SGRO), from the command line.
        let o = ns.exec("ethtool").args(["-K", i, "gro", "on"]).output();
        let o = o.expect("ethtool runs");
        assert!(o.status.success(), "ethtool -K {i} gro on: {}", text(&o));
        ip(&["-n", n, "link", "set", i, "up"]);
    }
    ns.wait_up(&a);
    ns.wait_up(&b);

    let dir = std::env::temp_dir().join(format!("pktio-latency-if-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("lat.json");
    let o = ns
        .exec(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "latency",
            "--pinger-if",
            &a,
            "--ponger-if",
            &b,
            "--take-over",
        ])
        .args(["--backends", "xdp,v2", "--count", "100", "--warmup", "10"])
        .args(["--runs", "1", "--timeout-ms", "2000", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let raw = std::fs::read(&json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");
    let env = v["environment"].to_string();
    assert!(env.contains(&format!("{a} -> {b}")), "environment: {env}");
    assert!(
        env.contains("198.18.0.1 -> 198.18.0.2"),
        "environment: {env}"
    );
    assert!(!env.contains("veth NAPI"), "the lab's GRO note: {env}");
    for backend in ["xdp", "v2"] {
        for mode in ["busy-poll", "interrupt"] {
            assert_eq!(status(&v, backend, mode), None, "{backend} {mode}: {t}");
            let sent = cell(&v, backend, mode, "sent").unwrap();
            let answered = cell(&v, backend, mode, "answered").unwrap();
            let lost = cell(&v, backend, mode, "lost").unwrap();
            let samples = cell(&v, backend, mode, "histogram samples").unwrap();
            assert_eq!(sent, 100.0, "{backend} {mode}");
            assert_eq!(answered + lost, sent, "{backend} {mode}");
            assert_eq!(samples, answered, "{backend} {mode}: histogram vs answered");
            assert!(answered > 0.0, "{backend} {mode}: nothing answered: {t}");
        }
    }
    // GRO is the test's, not the command's: still on at both ends.
    for i in [&a, &b] {
        let o = ns.exec("ethtool").args(["-k", i]).output().unwrap();
        let k = String::from_utf8_lossy(&o.stdout);
        assert!(
            k.contains("generic-receive-offload: on"),
            "GRO of {i} changed: {k}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
