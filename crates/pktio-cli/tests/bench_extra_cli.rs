//! `pktio bench` capture into tmpfs with the tools' kernel drops, and
//! `pktio bench harness` (what measuring costs), with tiny durations.
//! No timed assertions: only that the figures are there and consistent.

mod cli_support;

use std::process::{Command, Output};

use pktio_lab::require_root;

fn pktio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp_json(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pktio-{name}-{}.json", std::process::id()))
}

/// What run `pid` of capture-tmpfs leaves in /dev/shm (there should be
/// nothing): its run directory `pktio-<pid>-<start time>`, or a pcap file as
/// earlier versions wrote it.
fn leftovers_of(pid: u32) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.starts_with(&format!("pktio-{pid}-"))
                        || n.starts_with(&format!("pktio-bench-{pid}-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn capture_to_null_and_tmpfs_reports_rates_and_drops() {
    require_root!();
    let json = temp_json("capture");
    let child = Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "bench",
            "--modes",
            "capture,capture-tmpfs",
            "--backends",
            "v3,xdp",
            "--sizes",
            "64",
            "--runs",
            "1",
            "--seconds",
            "0.4",
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");
    let _ = std::fs::remove_file(&json);
    let cells = v["cells"].as_array().unwrap();
    let cell = |mode: &str, backend: &str, metric: &str| {
        cells
            .iter()
            .find(|c| {
                c["metric"] == metric
                    && c["labels"]["mode"] == mode
                    && c["labels"]["backend"] == backend
            })
            .unwrap_or_else(|| panic!("no {metric} cell for {mode}/{backend}: {v}"))
            .clone()
    };
    for mode in ["capture", "capture-tmpfs"] {
        for backend in ["v3", "xdp"] {
            let mpps = cell(mode, backend, "Mpps");
            assert!(mpps["median"].as_f64().unwrap() > 0.0, "{mpps}");
            // Each tool's own count of kernel drops, as a share of what it was offered.
            let drops = cell(mode, backend, "drops");
            let d = drops["median"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&d), "{drops}");
        }
    }
    // The files went to tmpfs and were removed after each run.
    assert!(t.contains("capture-tmpfs"), "{t}");
    let left = leftovers_of(pid);
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

#[test]
fn harness_cost_measures_both_experiments_off_and_on() {
    require_root!();
    let json = temp_json("harness");
    let o = pktio(&[
        "bench",
        "harness",
        "--runs",
        "1",
        "--seconds",
        "0.4",
        "--json",
        json.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");
    let _ = std::fs::remove_file(&json);
    let cells = v["cells"].as_array().unwrap();
    for (experiment, unit) in [("generator", "Mpps"), ("loop", "ns/packet")] {
        for harness in ["off", "on"] {
            let c = cells
                .iter()
                .find(|c| {
                    c["labels"]["experiment"] == experiment && c["labels"]["harness"] == harness
                })
                .unwrap_or_else(|| panic!("no cell {experiment}/{harness}: {v}"));
            assert_eq!(c["unit"], unit, "{c}");
            let s = c["samples"].as_array().unwrap();
            assert_eq!(s.len(), 1, "{c}");
            assert!(s[0].as_f64().unwrap() > 0.0, "{c}");
        }
    }
    // The watcher's own CPU, once per run with the harness on.
    let w = cells
        .iter()
        .find(|c| c["metric"] == "watcher CPU")
        .unwrap_or_else(|| panic!("no watcher CPU cell: {v}"));
    assert_eq!(w["unit"], "µs/s", "{w}");
    assert_eq!(w["samples"].as_array().unwrap().len(), 2, "{w}");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("generator: the harness costs") && notes.contains("loop: the harness costs"),
        "{notes}"
    );
}

#[test]
fn harness_bad_input_is_an_error_not_a_panic() {
    for (args, want) in [
        (&["bench", "harness", "--runs", "0"][..], "--runs"),
        (&["bench", "harness", "--seconds", "0"][..], "--seconds"),
        (
            &["bench", "harness", "--size", "20"][..],
            "outside 64..=1518",
        ),
        (&["bench", "harness", "--loop-rate", "5"][..], "--loop-rate"),
        (&["bench", "harness", "--cpu", "4096"][..], "does not exist"),
    ] {
        let o = pktio(args);
        let t = text(&o);
        assert!(!o.status.success(), "{args:?}: {t}");
        assert!(t.contains(want), "{args:?}: {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
}
