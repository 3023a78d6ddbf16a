//! `pktio rxdrop | txpush | l2fwd` as a user runs them: in the lab, on an
//! interface that vanishes, and with bad input or too little privilege.
//! Lab tests need root; without it they print SKIPPED and return.

mod cli_support;

use std::process::Command;
use std::time::Duration;

use cli_support::{number_after, pktio, require_tool, text, Watched};

use pktio_lab::{require_root, Lab};

/// The count of a summary line `<what> <ifname>: N packets`: the first
/// number after the colon (the interface name has digits too).
fn count_on_line(out: &str, what: &str) -> u64 {
    out.lines()
        .find(|l| l.contains(what))
        .and_then(|l| number_after(l, ": "))
        .unwrap_or(0)
}

#[test]
fn rxdrop_txpush_l2fwd_in_the_lab_move_packets() {
    require_root!();
    for mode in ["rxdrop", "txpush", "l2fwd"] {
        let o = pktio().args([mode, "--lab", "-d", "1.5"]).output().unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{mode}: {t}");
        let out = String::from_utf8_lossy(&o.stdout);
        let n = number_after(&out, &format!("{mode}: ")).unwrap_or(0);
        assert!(n > 1000, "{mode} handled only {n} packets: {t}");
        assert!(
            t.contains("copy mode") && t.contains("zero-copy refused"),
            "{mode} reports the mode and why: {t}"
        );
        match mode {
            "txpush" => {
                // Every frame sent arrived, counted by the far end's XDP
                // sink (its stack would answer each with an ICMP error on
                // the sender's core).
                let arrived = count_on_line(&out, "arrived at");
                assert!(arrived > 1000, "{t}");
                assert!(
                    out.contains(&format!(": {arrived} packets, 0 dropped")),
                    "{t}"
                );
                // Copy mode with XDP_MAX_TX_SKB_BUDGET 256 and batches of
                // 64: the kernel takes each kick's frames at once (with its
                // default of 32 every kick answered EAGAIN).
                let kicks = number_after(&out, "wakeups: tx ").unwrap_or(0);
                let busy = number_after(&out, &format!("wakeups: tx {kicks} (")).unwrap_or(0);
                assert!(
                    kicks > 0 && busy * 10 < kicks,
                    "{busy} of {kicks} kicks busy: {t}"
                );
            }
            "l2fwd" => assert!(count_on_line(&out, "came back to") > 1000, "{t}"),
            _ => {}
        }
    }
}

/// `--json` alone is `--json -`: the summary document on stdout, the text
/// on stderr; `--json FILE` writes the file and keeps the text on stdout.
/// `-s` is the frame on the wire: `-s 64` hands the kernel 60 bytes.
#[test]
fn json_summary_on_stdout_or_in_a_file() {
    require_root!();
    let o = pktio()
        .args(["rxdrop", "--lab", "-d", "1", "--json"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("only JSON on stdout");
    cli_support::schema::check(&doc, "pktio.loop/1");
    assert_eq!(doc["mode"], "rxdrop");
    assert!(doc["packets"].as_u64().unwrap() > 0, "{t}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rxdrop: "),
        "{t}"
    );

    let file = std::env::temp_dir().join(format!("pktio-xsk-json-{}.json", std::process::id()));
    let o = pktio()
        .args(["txpush", "--lab", "-d", "1", "-s", "64", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    cli_support::schema::check(&doc, "pktio.loop/1");
    let packets = doc["packets"].as_u64().unwrap();
    assert!(packets > 0, "{t}");
    assert_eq!(
        doc["bytes"].as_u64(),
        Some(packets * 60),
        "-s 64: 60 bytes each: {doc:#}"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("txpush: "),
        "{t}"
    );
}

/// `--json-lines`: a record a second on stdout, the summary as the last
/// line, nothing else on stdout.
#[test]
fn json_lines_a_record_a_second_then_the_summary() {
    require_root!();
    let o = pktio()
        .args(["l2fwd", "--lab", "-d", "2.5", "--json-lines"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let (recs, summary) = cli_support::schema::check_json_lines(
        &String::from_utf8_lossy(&o.stdout),
        "pktio.loop-second/1",
        "pktio.loop/1",
    );
    assert!(recs.len() >= 2, "{t}");
    assert!(recs.iter().all(|r| r["mode"] == "l2fwd"), "{t}");
    assert!(summary["packets"].as_u64().unwrap() > 0, "{t}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("came back to"),
        "{t}"
    );
}

#[test]
fn interface_deleted_while_running_stops_with_the_stats_so_far() {
    require_root!();
    let lab = Lab::new().unwrap();
    let mut cmd = lab.rx().command(env!("CARGO_BIN_EXE_pktio"));
    cmd.args(["rxdrop", "-i", lab.rx().ifname(), "-d", "30"]);
    let mut run = Watched::start(cmd);
    // The loop describes its socket once the socket is open.
    run.wait_for("rxdrop: xdp");
    lab.delete_link().unwrap();
    let stopped = run.exit_within(Duration::from_secs(10));
    assert!(
        stopped.is_some(),
        "rxdrop still ran 10 s after its interface vanished (killed)"
    );
    let o = run.finish();
    let t = o.text();
    assert!(
        !o.status.success(),
        "a vanished interface is a failure: {t}"
    );
    assert!(t.contains("vanished"), "says why: {t}");
    assert!(
        t.contains("rxdrop:") && t.contains("kernel: drops"),
        "prints the summary: {t}"
    );
}

#[test]
fn bad_input_is_refused_clearly() {
    let cases: &[(&[&str], &str)] = &[
        (&["rxdrop"], "give an interface with -i IF"),
        (
            &["rxdrop", "-i", "lo", "--frame-size", "3000"],
            "use 2048 or 4096",
        ),
        (
            &["txpush", "-i", "lo", "--dst-ip", "10.0.0.1"],
            "198.18.0.0/15",
        ),
        (&["rxdrop", "-i", "lo", "--batch", "0"], "batch"),
        (
            &["rxdrop", "-i", "lo", "--ring-size", "1000", "-d", "1"],
            "not a power of two",
        ),
        (&["rxdrop", "-i", "pktio-nosuch0", "-d", "1"], "not found"),
        (&["rxdrop", "-i", "lo", "-d", "-3"], ""),
    ];
    for (args, want) in cases {
        let o = pktio().args(*args).output().unwrap();
        let t = text(&o);
        assert!(!o.status.success(), "{args:?} must fail: {t}");
        assert!(!t.contains("panicked"), "{args:?} panicked: {t}");
        assert!(t.contains(want), "{args:?} should say {want:?}: {t}");
    }
}

#[test]
fn queue_beyond_the_device_is_named() {
    require_root!();
    let lab = Lab::new().unwrap();
    let o = lab
        .rx()
        .command(env!("CARGO_BIN_EXE_pktio"))
        .args(["rxdrop", "-i", lab.rx().ifname(), "-q", "5", "-d", "1"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("queue 5 does not exist") && t.contains("1 queue"),
        "{t}"
    );
}

/// Without CAP_IPC_LOCK the UMEM counts against RLIMIT_MEMLOCK: a low limit
/// must give an error that says how to raise it.
#[test]
fn memlock_limit_is_explained() {
    require_root!();
    require_tool("prlimit", "util-linux");
    require_tool("setpriv", "util-linux");
    let o = Command::new("prlimit")
        .args([
            "--memlock=65536:65536",
            "setpriv",
            "--bounding-set=-ipc_lock",
            "--inh-caps=-ipc_lock",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "rxdrop",
            "-i",
            "lo",
            "-d",
            "1",
            "--backend",
            "xdp",
            "--take-over",
        ])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("cannot register a") && t.contains("UMEM"), "{t}");
    assert!(
        t.contains("RLIMIT_MEMLOCK") && t.contains("CAP_IPC_LOCK"),
        "the hint says how to fix it: {t}"
    );
}

/// Without privilege the error names the capabilities needed.
#[test]
fn missing_privilege_names_the_capability() {
    require_root!();
    require_tool("setpriv", "util-linux");
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pktio"))
        .args(["rxdrop", "-i", "lo", "-d", "1", "--take-over"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("CAP_NET_RAW") || t.contains("CAP_NET_ADMIN"),
        "names the capability: {t}"
    );
    assert!(!t.contains("panicked"), "{t}");
}
