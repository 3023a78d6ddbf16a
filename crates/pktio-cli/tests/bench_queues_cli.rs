//! `pktio bench --queues N`: the lab gets N queues, pktio's rows a loop per
//! queue, and each row its queues' Mpps beside the total (JSON and table);
//! the flag checks. No timed assertions: only that the numbers are there
//! and consistent.

mod cli_support;

use cli_support::{pktio, schema, text};
use pktio_lab::require_root;
use serde_json::Value;

/// The cells of `doc` with `metric` for `mode`/`backend`.
fn cell<'a>(doc: &'a Value, mode: &str, backend: &str, metric: &str) -> Option<&'a Value> {
    doc["cells"].as_array()?.iter().find(|c| {
        c["labels"]["mode"] == mode && c["labels"]["backend"] == backend && c["metric"] == metric
    })
}

#[test]
fn two_queue_rows_have_each_queue_and_the_total() {
    require_root!();
    let o = pktio()
        .args(["bench", "--queues", "2", "--runs", "1", "--seconds", "0.5"])
        .args([
            "--sizes",
            "64",
            "--modes",
            "rxdrop,l2fwd",
            "--backends",
            "xdp,v2",
        ])
        .args(["--json", "-"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let doc: Value = serde_json::from_slice(&o.stdout).expect(&t);
    schema::check(&doc, "pktio.bench/1");
    for mode in ["rxdrop", "l2fwd"] {
        for backend in ["xdp", "v2"] {
            let total = cell(&doc, mode, backend, "Mpps").unwrap_or_else(|| panic!("{t}"));
            assert_eq!(total["labels"]["queues"], "2", "{total}");
            let q: Vec<f64> = ["q0", "q1"]
                .iter()
                .map(|m| {
                    cell(&doc, mode, backend, m)
                        .and_then(|c| c["samples"][0].as_f64())
                        .unwrap_or_else(|| panic!("{mode} {backend} {m}: {t}"))
                })
                .collect();
            if mode == "rxdrop" {
                // rxdrop's total is what its loops took: the queues' sum.
                let sum: f64 = q.iter().sum();
                let all = total["samples"][0].as_f64().unwrap();
                assert!((sum - all).abs() <= 1e-6 * all.max(1.0), "{sum} vs {all}");
            }
            if backend == "xdp" {
                // Native XDP keeps veth's queues apart: both are fed.
                assert!(q.iter().all(|&x| x > 0.0), "{mode}: {q:?}: {t}");
            }
        }
    }
    let notes = doc["notes"].to_string();
    assert!(notes.contains("2 queues"), "{notes}");
    let table = String::from_utf8_lossy(&o.stderr);
    assert!(
        table.contains("q0 (Mpps)") && table.contains("q1 (Mpps)"),
        "{t}"
    );
}

#[test]
fn queue_flags_are_checked_first() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "--queues", "0"], "--queues"),
        (&["bench", "--queues", "65"], "--queues"),
        (&["bench", "--queues", "2", "--peers"], "leave out --peers"),
        (
            &["bench", "--queues", "2", "--modes", "capture"],
            "capture modes run on one queue",
        ),
        (&["bench", "--cpus", "0"], "give --queues too"),
        (
            &["bench", "--queues", "2", "-i", "lo"],
            "does not apply with -i",
        ),
    ];
    for (args, want) in cases {
        let o = pktio().args(*args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?} is a usage error: {t}");
        assert!(t.contains(want), "{args:?} should say {want:?}: {t}");
    }
}
