//! The generator ladder: on a host that refuses live frames (forced here
//! with a seccomp filter that answers `BPF_PROG_TEST_RUN` with `EPERM`, as
//! some kernel builds and container runtimes do) the lab's generator falls
//! back, says so, and the work gets done; asked for by name, the refused
//! engine is a clear error with the errno and the engines that would work.
//! Without the filter, the kernel decides, and both of its answers are
//! checked. Lab tests need root; without it they print SKIPPED and return.

mod cli_support;

use cli_support::{number_after, pktio, text};

use pktio_lab::seccomp::refuse_prog_test_run;
use pktio_lab::{require_root, Lab};

#[test]
fn lab_runs_fall_back_to_af_xdp_transmit_when_live_frames_are_refused() {
    require_root!();
    for mode in ["rxdrop", "l2fwd"] {
        let o = refuse_prog_test_run(&mut pktio())
            .args([mode, "--lab", "-d", "1.5"])
            .output()
            .unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{mode}: {t}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("generator engine: xsk (AF_XDP transmit); live refused:")
                && out.contains("EPERM"),
            "{mode} names the engine and the refusal with its errno: {t}"
        );
        assert!(
            !t.contains("CAP_BPF"),
            "root is not told to get capabilities it has: {t}"
        );
        let n = number_after(&out, &format!("{mode}: ")).unwrap_or(0);
        assert!(n > 1000, "{mode} handled only {n} packets: {t}");
        assert!(number_after(&out, "generator: ").unwrap_or(0) >= n, "{t}");
    }
}

#[test]
fn live_by_name_on_a_refusing_host_is_a_clear_error() {
    require_root!();
    let o = refuse_prog_test_run(&mut pktio())
        .args(["rxdrop", "--lab", "-d", "1", "--generator", "live"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the live generator")
            && err.contains("EPERM")
            && err.contains("engines that work here: xsk, packet, raw"),
        "names the engine, the errno and what works: {t}"
    );
    assert!(!err.contains("CAP_BPF") && !err.contains("panicked"), "{t}");
}

#[test]
fn every_engine_sends_exactly_the_count() {
    require_root!();
    let lab = Lab::new().unwrap();
    let refusing = [false, true];
    for refuse in refusing {
        for engine in ["auto", "xsk", "packet", "raw"] {
            let mut cmd = lab.gen().command(env!("CARGO_BIN_EXE_pktio"));
            if refuse {
                refuse_prog_test_run(&mut cmd);
            }
            let before = lab.gen().stats().tx_packets;
            let o = cmd
                .args(["gen", "-i", lab.gen().ifname(), "--engine", engine])
                .args(["-n", "20000", "-d", "30"])
                .output()
                .unwrap();
            let t = text(&o);
            assert!(o.status.success(), "{engine} (refusing: {refuse}): {t}");
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.contains("gen: 20000 frames"), "{engine}: {t}");
            // Socket engines go through the veth's transmit path: its
            // counter sees exactly the count (live frames bypass it).
            let sent = lab.gen().stats().tx_packets - before;
            let live = out.contains("engine live");
            assert!(!(refuse && live), "live ran under the filter: {t}");
            if !live {
                assert_eq!(sent, 20000, "{engine}: the link counted {sent}: {t}");
            }
        }
    }
}

/// `pktio gen` with the packet engine in a fresh lab, with `args`; its
/// output, after checking it succeeded.
fn gen_packet(args: &[&str]) -> std::process::Output {
    let lab = Lab::new().unwrap();
    let o = lab
        .gen()
        .command(env!("CARGO_BIN_EXE_pktio"))
        .args(["gen", "-i", lab.gen().ifname(), "--engine", "packet"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// `gen --json -`: the summary document on stdout (size on the wire),
/// the text on stderr.
#[test]
fn gen_json_summary() {
    require_root!();
    let o = gen_packet(&["-n", "1000", "-s", "128", "--json", "-"]);
    let t = text(&o);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("only JSON on stdout");
    cli_support::schema::check(&doc, "pktio.gen/1");
    assert_eq!(
        (doc["frames"].as_u64(), doc["size"].as_u64()),
        (Some(1000), Some(128))
    );
    assert_eq!(doc["generator"]["engine"], "packet", "{doc:#}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("gen: 1000 frames of 128 B"),
        "{t}"
    );
}

/// `gen --json-lines`: a record a second, then the summary line.
#[test]
fn gen_json_lines() {
    require_root!();
    let o = gen_packet(&["-d", "2.5", "-r", "10000", "--json-lines"]);
    let t = text(&o);
    let (recs, summary) = cli_support::schema::check_json_lines(
        &String::from_utf8_lossy(&o.stdout),
        "pktio.gen-second/1",
        "pktio.gen/1",
    );
    assert!(recs.len() >= 2, "{t}");
    assert!(summary["frames"].as_u64().unwrap() > 0, "{t}");
}

/// Live frames with the kernel deciding: where it accepts them, frames
/// arrive and the engine is live; where it refuses, `--engine live` is the
/// typed refusal with its errno and `auto` takes the next engine.
#[test]
fn live_engine_either_works_or_is_refused_with_its_errno() {
    require_root!();
    let o = pktio()
        .args(["rxdrop", "--lab", "-d", "1", "--generator", "live"])
        .output()
        .unwrap();
    let t = text(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.success() {
        assert!(out.contains("generator engine: live"), "{t}");
        assert!(number_after(&out, "rxdrop: ").unwrap_or(0) > 1000, "{t}");
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("the live generator") && err.contains("this host refuses live frames"),
            "a refusal, typed: {t}"
        );
        let o = pktio()
            .args(["rxdrop", "--lab", "-d", "1"])
            .output()
            .unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("live refused"),
            "{t}"
        );
    }
}
