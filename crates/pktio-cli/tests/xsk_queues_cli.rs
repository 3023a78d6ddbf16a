//! `pktio rxdrop | txpush | l2fwd --queues`: one loop per queue, each on a
//! thread of its own, in a lab whose veth has two queues and a generator
//! per queue; and the flag checks that refuse a bad queue or CPU list
//! before anything is touched. Lab tests need root; without it they print
//! SKIPPED and return.

mod cli_support;

use cli_support::{pktio, schema, text, Watched};
use pktio_bench::report::schema::{LOOP, LOOP_SECOND};
use pktio_lab::{require_root, Lab};
use serde_json::Value;

/// The per-queue entries of a `pktio.loop/1` document, checked: one per
/// queue of `want`, in that order, their packets adding up to the total.
fn per_queue(doc: &Value, want: &[u64], what: &str) -> Vec<u64> {
    schema::check(doc, LOOP);
    let queues = doc["queues"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no queues in {doc:#}"));
    let ids: Vec<u64> = queues
        .iter()
        .map(|q| q["queue"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, want, "{what}: the queues in order: {doc:#}");
    let counts: Vec<u64> = queues
        .iter()
        .map(|q| q["packets"].as_u64().expect("packets"))
        .collect();
    let total = doc["packets"].as_u64().expect("packets");
    assert_eq!(
        counts.iter().sum::<u64>(),
        total,
        "{what}: the queues add up to the total: {doc:#}"
    );
    let bytes: u64 = queues.iter().map(|q| q["bytes"].as_u64().unwrap()).sum();
    assert_eq!(bytes, doc["bytes"].as_u64().unwrap(), "{what}: {doc:#}");
    for q in queues {
        assert!(q["cpu"].is_u64(), "{what}: each queue names its CPU: {q}");
        assert!(q["socket"].is_string() && q["mpps"].is_number(), "{q}");
    }
    counts
}

/// Native XDP on a veth keeps the sender's TX queue: the generator of
/// queue q feeds receive queue q, so both queues see packets.
#[test]
fn rxdrop_and_l2fwd_on_two_queues_count_each_queue() {
    require_root!();
    for mode in ["rxdrop", "l2fwd"] {
        let o = pktio()
            .args([mode, "--lab", "--queues", "0,1", "--backend", "xdp", "-N"])
            .args(["-d", "1.5", "--json"])
            .output()
            .unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{mode}: {t}");
        let doc: Value = serde_json::from_slice(&o.stdout).expect(&t);
        let counts = per_queue(&doc, &[0, 1], mode);
        assert!(
            counts.iter().all(|&n| n > 0),
            "{mode}: both queues received ({counts:?}): {t}"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        for q in ["queue 0 (CPU", "queue 1 (CPU"] {
            assert!(err.contains(q), "{mode}: the text names {q}: {t}");
        }
    }
}

/// txpush sends on every queue; the far end's sink counts them all.
#[test]
fn txpush_on_two_queues_sends_on_each() {
    require_root!();
    let o = pktio()
        .args(["txpush", "--lab", "--queues", "all", "--backend", "xdp"])
        .args(["-d", "1", "--json"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let doc: Value = serde_json::from_slice(&o.stdout).expect(&t);
    let n = doc["queues"].as_array().map_or(0, Vec::len) as u64;
    assert!(n >= 1, "{t}");
    let counts = per_queue(&doc, &(0..n).collect::<Vec<_>>(), "txpush");
    assert!(counts.iter().all(|&c| c > 0), "every queue sent: {t}");
}

/// The AF_PACKET backend on two queues: a fanout group of two sockets,
/// which together see every packet (how the hash splits the flows is the
/// kernel's business, so only the sum is checked).
#[test]
fn v3_on_two_queues_is_a_fanout_group() {
    require_root!();
    let o = pktio()
        .args(["rxdrop", "--lab", "--queues", "0,1", "--backend", "v3"])
        .args(["-d", "1", "--json"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let doc: Value = serde_json::from_slice(&o.stdout).expect(&t);
    per_queue(&doc, &[0, 1], "v3");
    assert!(doc["packets"].as_u64().unwrap() > 0, "{t}");
}

/// `--json-lines`: each second's record has the total and every queue's.
#[test]
fn json_lines_carry_each_queue() {
    require_root!();
    let o = pktio()
        .args(["rxdrop", "--lab", "--queues", "0,1", "--backend", "xdp"])
        .args(["-d", "2.5", "--json-lines"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let out = String::from_utf8_lossy(&o.stdout);
    let (records, summary) = schema::check_json_lines(&out, LOOP_SECOND, LOOP);
    assert!(!records.is_empty(), "{t}");
    for r in &records {
        let qs = r["queues"].as_array().expect("queues in every record");
        assert_eq!(qs.len(), 2, "{r}");
        let sum: f64 = qs.iter().map(|q| q["pps"].as_f64().unwrap()).sum();
        let total = r["pps"].as_f64().unwrap();
        assert!((sum - total).abs() <= 1e-6 * total.max(1.0), "{r}");
    }
    per_queue(&summary, &[0, 1], "json-lines");
}

/// Bad lists are refused by the flag parser, with no root needed.
#[test]
fn bad_queue_and_cpu_lists_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["rxdrop", "-i", "lo", "--queues", "0,,1"], "bad queue"),
        (
            &["rxdrop", "-i", "lo", "--queues", "3-1"],
            "empty queue range",
        ),
        (
            &["rxdrop", "-i", "lo", "--queues", "0", "-q", "1"],
            "cannot be used with",
        ),
        (&["rxdrop", "-i", "lo", "--cpus", "0"], "--queues"),
        (
            &["rxdrop", "-i", "lo", "--queues", "0", "--cpus", "x"],
            "bad CPU \"x\"",
        ),
        (
            &["rxdrop", "-i", "lo", "--queues", "0", "--cpus", "1000"],
            "CPU 1000 is not one",
        ),
        (
            &["rxdrop", "-i", "lo", "--queues", "0", "--cpu", "0"],
            "cannot be used with",
        ),
        (
            &["rxdrop", "--lab", "--queues", "0,100"],
            "at most 64 queues",
        ),
        (
            &["l2fwd", "--lab", "--queues", "0,0"],
            "queue 0 is given twice",
        ),
    ];
    for (args, want) in cases {
        let o = pktio().args(*args).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?} is a usage error: {t}");
        assert!(!t.contains("panicked"), "{args:?} panicked: {t}");
        assert!(t.contains(want), "{args:?} should say {want:?}: {t}");
    }
}

/// More CPUs than queues: refused before the lab is built.
#[test]
fn more_cpus_than_queues_is_refused() {
    // One CPU named twice: two CPUs for one queue, on any host.
    let allowed = pktio_host::cpu::allowed_cpus().expect("affinity");
    let cpus = format!("{0},{0}", allowed[0]);
    let o = pktio()
        .args(["rxdrop", "--lab", "--queues", "0", "--cpus", &cpus])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("--cpus lists 2 CPUs for 1 queue"), "{t}");
}

/// A queue the interface does not have is named, and nothing is attached
/// to the interface.
#[test]
fn queue_beyond_the_device_is_refused_untouched() {
    require_root!();
    let lab = Lab::builder().queues(2).build().unwrap();
    let ifname = lab.rx().ifname();
    let o = lab
        .rx()
        .command(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "rxdrop",
            "-i",
            ifname,
            "--queues",
            "0,3",
            "--backend",
            "xdp",
        ])
        .args(["-d", "1"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("has 2 queues (0-1), there is no queue 3"), "{t}");
    let link = lab
        .rx()
        .command("ip")
        .args(["-d", "link", "show", ifname])
        .output()
        .unwrap();
    let l = String::from_utf8_lossy(&link.stdout);
    assert!(link.status.success(), "ip link: {}", text(&link));
    assert!(!l.contains("prog/xdp"), "no XDP program attached: {l}");
}

/// Ctrl-C ends every queue's loop, and the summary still has each queue.
#[test]
fn ctrl_c_stops_every_queue_with_the_summary() {
    require_root!();
    let mut c = pktio();
    c.args([
        "rxdrop",
        "--lab",
        "--queues",
        "0,1",
        "--backend",
        "xdp",
        "-d",
        "120",
    ]);
    let mut run = Watched::start(c);
    // A per-second line with both queues: the loops run.
    run.wait_until("a per-second line of both queues", |r| {
        r.stderr_now()
            .lines()
            .any(|l| l.contains(" q0 ") && l.contains(" q1 "))
    });
    run.wait_for_handlers();
    run.signal(rustix::process::Signal::INT);
    let o = run.finish();
    assert_eq!(o.code(), Some(0), "{}", o.text());
    let out = o.stdout.clone() + &o.stderr;
    for q in ["queue 0 (CPU", "queue 1 (CPU"] {
        assert!(out.contains(q), "{}", o.text());
    }
    assert!(!out.contains("stopped early"), "{}", o.text());
}
