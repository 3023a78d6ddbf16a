//! `pktio gen --queues`: one generator per TX queue of a two-queue lab,
//! each counted on its own and in the total; and the flag checks. Lab tests
//! need root; without it they print SKIPPED and return.

mod cli_support;

use cli_support::{pktio, schema, text};
use pktio_lab::{require_root, Lab};
use serde_json::Value;

/// With a count, every queue sends exactly that many: the JSON has each
/// queue's frames, adding up to the total the veth counted.
#[test]
fn every_queue_sends_the_count() {
    require_root!();
    let lab = Lab::builder().queues(2).build().unwrap();
    for engine in ["xsk", "packet"] {
        let before = lab.gen().stats().tx_packets;
        let o = lab
            .gen()
            .command(env!("CARGO_BIN_EXE_pktio"))
            .args(["gen", "-i", lab.gen().ifname(), "--engine", engine])
            .args(["--queues", "all", "-n", "5000", "-d", "30", "--json", "-"])
            .output()
            .unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{engine}: {t}");
        let doc: Value = serde_json::from_slice(&o.stdout).expect(&t);
        schema::check(&doc, "pktio.gen/1");
        let queues = doc["queues"].as_array().expect("queues");
        let ids: Vec<u64> = queues
            .iter()
            .map(|q| q["queue"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [0, 1], "{engine}: {doc:#}");
        for q in queues {
            assert_eq!(q["frames"], 5000, "{engine}: {q}");
        }
        assert_eq!(doc["frames"], 10_000, "{engine}: {doc:#}");
        assert_eq!(doc["generator"]["engine"], engine, "{doc:#}");
        let sent = lab.gen().stats().tx_packets - before;
        assert_eq!(sent, 10_000, "{engine}: the link counted {sent}: {t}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("queue 1: 5000 frames"), "{t}");
    }
}

/// `--json-lines`: each record has every queue's rate.
#[test]
fn json_lines_carry_each_queue() {
    require_root!();
    let lab = Lab::builder().queues(2).build().unwrap();
    let o = lab
        .gen()
        .command(env!("CARGO_BIN_EXE_pktio"))
        .args(["gen", "-i", lab.gen().ifname(), "--engine", "xsk"])
        .args(["--queues", "0,1", "-r", "5000", "-d", "2.5", "--json-lines"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let (recs, summary) = schema::check_json_lines(
        &String::from_utf8_lossy(&o.stdout),
        "pktio.gen-second/1",
        "pktio.gen/1",
    );
    assert!(!recs.is_empty(), "{t}");
    for r in &recs {
        assert_eq!(r["queues"].as_array().map(Vec::len), Some(2), "{r}");
    }
    assert_eq!(summary["queues"].as_array().map(Vec::len), Some(2), "{t}");
}

#[test]
fn bad_queue_lists_are_refused() {
    require_root!();
    let lab = Lab::builder().queues(2).build().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--queues", "0,2"], "there is no queue 2"),
        (&["--queues", "x"], "bad queue"),
        (&["--queues", "0", "--cpu", "0"], "cannot be used with"),
        (&["--cpus", "0"], "--queues"),
    ];
    for (args, want) in cases {
        let o = lab
            .gen()
            .command(env!("CARGO_BIN_EXE_pktio"))
            .args(["gen", "-i", lab.gen().ifname(), "-n", "10"])
            .args(*args)
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(want), "{args:?} should say {want:?}: {t}");
    }
    // Nothing was sent by the refused runs.
    assert_eq!(lab.gen().stats().tx_packets, 0);
}

#[test]
fn more_cpus_than_queues_is_refused() {
    // One CPU named twice: two CPUs for one queue, on any host.
    let allowed = pktio_host::cpu::allowed_cpus().expect("affinity");
    let cpus = format!("{0},{0}", allowed[0]);
    let o = pktio()
        .args([
            "gen", "-i", "lo", "--queues", "0", "--cpus", &cpus, "-n", "1",
        ])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("--cpus lists 2 CPUs for 1 queue"), "{t}");
}
