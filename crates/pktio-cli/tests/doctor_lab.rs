//! `pktio doctor` inside the lab's rx namespace, through the built binary:
//! what it reports about a veth (native XDP yes, zero-copy no, the queue
//! counts, the attached program), the `--why-no-packets` checklist with live
//! traffic, and `--apply` (a dry run changes nothing; `--yes` changes a
//! sysctl of the namespace and the printed revert commands restore it).
//! Needs root; skips visibly otherwise.

mod cli_support;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pktio::bpf::{progs, Program, XdpLink, XdpMode};
use pktio_lab::{require_root, Lab};
use serde_json::Value;

fn doctor(lab: &Lab, args: &[&str]) -> Output {
    lab.rx()
        .command(env!("CARGO_BIN_EXE_pktio"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("the pktio binary runs in the lab")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The findings document (exit status 0, or 1 for a finding at the
/// default `--fail-on problem`), checked against docs/JSON.md.
fn json(out: &Output) -> Value {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "doctor failed: {out:?}"
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", text(&out.stdout)));
    let id = v["schema"].as_str().unwrap_or("no schema").to_string();
    cli_support::schema::check(&v, &id);
    assert!(id.starts_with("pktio.doctor"), "{id}");
    let known = pktio_doctor::finding::KNOWN_IDS;
    for f in v["findings"].as_array().into_iter().flatten() {
        let fid = f["id"].as_str().expect("an id");
        assert!(
            known.lines().any(|k| k == fid),
            "{fid} is not a known id: {f}"
        );
    }
    v
}

fn finding<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no finding {name:?} in {doc:#}"))
}

/// Attaches an XDP_PASS program in native mode to the rx veth.
fn attach_pass(lab: &Lab) -> (Program, XdpLink) {
    lab.rx().run(|| {
        let prog = Program::load_xdp(&progs::xdp_pass(), &[]).expect("load XDP_PASS");
        let link = XdpLink::attach(&prog, lab.rx().ifindex(), XdpMode::Driver)
            .expect("native attach on veth");
        (prog, link)
    })
}

#[test]
fn doctor_on_the_lab_veth_reports_native_xdp_zero_copy_and_queues() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let ifname = lab.rx().ifname().to_string();
    let doc = json(&doctor(&lab, &["-i", &ifname, "--json"]));
    assert_eq!(
        finding(&doc, &format!("{ifname} native XDP"))["value"],
        "yes"
    );
    assert_eq!(
        finding(&doc, &format!("{ifname} AF_XDP zero-copy"))["value"],
        "no"
    );
    let q = finding(&doc, &format!("{ifname} queues"));
    assert!(
        q["value"]
            .as_str()
            .unwrap()
            .starts_with("rx 2 of 2, tx 2 of 2"),
        "{q:#}"
    );
    assert_eq!(finding(&doc, &format!("{ifname} driver"))["value"], "veth");
    assert_eq!(
        finding(&doc, &format!("{ifname} XDP program"))["value"],
        "none"
    );
    // sysfs is the lab's (the binary runs like `ip netns exec`): RPS masks are read.
    let rps = finding(&doc, &format!("{ifname} RPS"));
    assert!(rps["value"].as_str().unwrap().contains("rx-1"), "{rps:#}");
    assert_eq!(
        finding(&doc, &format!("{ifname} interrupts"))["value"],
        "none"
    );

    // With a program attached the doctor names its mode and id.
    let (prog, link) = attach_pass(&lab);
    let id = prog.id().expect("program id");
    let doc = json(&doctor(&lab, &["-i", &ifname, "--json"]));
    assert_eq!(
        finding(&doc, &format!("{ifname} XDP program"))["value"],
        format!("native (xdpdrv) (prog id {id})")
    );
    drop(link);
}

#[test]
fn why_no_packets_follows_the_traffic() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let ifname = lab.rx().ifname().to_string();

    // No program yet: that is the verdict.
    let doc = json(&doctor(
        &lab,
        &[
            "--why-no-packets",
            "-i",
            &ifname,
            "-q",
            "0",
            "--sample",
            "0.2",
            "--json",
        ],
    ));
    assert_eq!(doc["verdict"]["level"], "problem", "{doc:#}");
    assert!(
        doc["verdict"]["text"]
            .as_str()
            .unwrap()
            .starts_with("XDP program"),
        "{doc:#}"
    );

    // A queue that does not exist.
    let doc = json(&doctor(
        &lab,
        &[
            "--why-no-packets",
            "-i",
            &ifname,
            "-q",
            "5",
            "--sample",
            "0.2",
            "--json",
        ],
    ));
    let q = finding(&doc, "queue");
    assert_eq!(q["level"], "problem");
    assert_eq!(q["fix"], format!("ethtool -L {ifname} rx 6 tx 6"));

    // A program that passes everything, and UDP traffic from gen while sampling:
    // the per-queue counters (veth's `ethtool -S`) see it, and since nothing
    // is redirected the verdict points at the queue or the missing redirect.
    let (_prog, link) = attach_pass(&lab);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = udp_sender(&lab, Arc::clone(&stop));
    let out = doctor(
        &lab,
        &[
            "--why-no-packets",
            "-i",
            &ifname,
            "-q",
            "0",
            "--sample",
            "1",
            "--json",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender thread");
    let doc = json(&out);
    assert!(sent > 0);
    assert_eq!(finding(&doc, "XDP program")["level"], "ok");
    assert_eq!(finding(&doc, "program stability")["level"], "ok");
    let arrivals = finding(&doc, "arrivals")["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(arrivals.contains("ethtool -S"), "{arrivals}");
    // "q0 N, q1 M in 1.0 s (ethtool -S)": something arrived somewhere.
    let total: u64 = arrivals
        .split(" in ")
        .next()
        .unwrap()
        .split(", ")
        .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert!(total > 0, "{doc:#}");
    assert_eq!(doc["verdict"]["level"], "problem", "{doc:#}");
    let v = doc["verdict"]["text"].as_str().unwrap();
    assert!(
        v.starts_with("arrivals") || v.starts_with("redirects"),
        "{v}"
    );
    drop(link);
}

/// Sends UDP datagrams from the gen namespace until `stop` is set.
fn udp_sender(lab: &Lab, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let dst = lab.rx().addr().socket_addr(9);
    lab.gen().spawn(move || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("udp socket in gen");
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for port in 0..8u16 {
                let d = std::net::SocketAddrV4::new(*dst.ip(), 9 + port);
                if s.send_to(&[0u8; 32], d).is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        sent
    })
}

#[test]
fn why_no_packets_on_a_working_socket_finds_nothing_wrong() {
    require_root!();
    use pktio::xdp::{AttachMode, Frame, Umem, UmemConfig, XskSocket};
    let lab = Lab::new().expect("lab");
    let ifname = lab.rx().ifname().to_string();
    let _ns = lab.rx().enter().expect("enter rx");
    let umem = Umem::new(UmemConfig::default()).expect("umem");
    let mut sock = XskSocket::builder(&ifname)
        .attach_mode(AttachMode::Driver)
        .tx_size(0)
        .build(&umem)
        .expect("AF_XDP socket on queue 0");
    sock.fill_from_pool(u32::MAX).expect("fill");

    let stop = Arc::new(AtomicBool::new(false));
    let sender = udp_sender(&lab, Arc::clone(&stop));
    let mut child = lab
        .rx()
        .command(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "doctor",
            "--why-no-packets",
            "-i",
            &ifname,
            "-q",
            "0",
            "--sample",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("doctor starts");
    // Keep receiving (and recycling frames) while the doctor samples.
    let mut received = 0u64;
    let mut back: Vec<Frame<'_>> = Vec::new();
    while child.try_wait().expect("wait for doctor").is_none() {
        let p = sock.parts();
        let (rx, fill) = (p.rx.expect("rx ring"), p.fill.expect("fill ring"));
        for f in rx.receive(64) {
            received += 1;
            back.push(f);
        }
        fill.fill_from(&mut back);
        if back.is_empty() {
            sock.poll_rx(10).expect("poll");
        }
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender");
    drop(back);
    let out = child.wait_with_output().expect("doctor output");
    let doc = json(&out);
    assert!(received > 0, "the socket received nothing: {doc:#}");
    assert_eq!(finding(&doc, "XDP program")["level"], "ok", "{doc:#}");
    assert_eq!(finding(&doc, "arrivals")["level"], "ok", "{doc:#}");
    assert_eq!(finding(&doc, "redirects")["level"], "ok", "{doc:#}");
    assert_eq!(doc["verdict"]["level"], "ok", "{doc:#}");
    let v = doc["verdict"]["text"].as_str().unwrap();
    assert!(v.contains("arrive on queue 0"), "{doc:#}");
    drop(sock);
}

const KNOB: &str = "net.ipv4.tcp_moderate_rcvbuf";

/// Every sysctl and RPS mask `--apply` could touch in the namespace.
fn snapshot(lab: &Lab) -> BTreeMap<String, String> {
    let ifname = lab.rx().ifname().to_string();
    let out = lab
        .rx()
        .command("sh")
        .arg("-c")
        .arg(format!(
            "for f in /proc/sys/net/core/* /proc/sys/net/ipv4/tcp_* /sys/class/net/{ifname}/queues/*/*_cpus; do \
             [ -r \"$f\" ] && [ -f \"$f\" ] && printf '%s=%s\\n' \"$f\" \"$(cat \"$f\" 2>/dev/null | tr '\\t' ' ')\"; done"
        ))
        .output()
        .expect("sh runs in the lab");
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn knob(lab: &Lab) -> String {
    lab.rx().run(|| {
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_moderate_rcvbuf")
            .expect("read knob")
            .trim()
            .to_string()
    })
}

#[test]
fn apply_dry_run_changes_nothing_and_yes_is_reverted_by_the_printed_commands() {
    require_root!();
    // The printed revert commands are sysctl commands, run as printed.
    cli_support::require_tool("sysctl", "procps");
    let lab = Lab::new().expect("lab");
    // A bad setting in the lab's namespace only (per-namespace sysctl).
    lab.rx()
        .run(|| std::fs::write("/proc/sys/net/ipv4/tcp_moderate_rcvbuf", "0\n").expect("set knob"));
    let before = snapshot(&lab);
    assert_eq!(
        before
            .get("/proc/sys/net/ipv4/tcp_moderate_rcvbuf")
            .map(String::as_str),
        Some("0")
    );

    // Dry run: shows the change, makes none.
    let out = doctor(&lab, &["--apply"]);
    assert!(out.status.success(), "{out:?}");
    let s = text(&out.stdout);
    assert!(s.starts_with("Dry run: nothing was changed."), "{s}");
    assert!(
        s.lines()
            .any(|l| l.trim_start().starts_with(KNOB) && l.trim_end().ends_with("0 → 1")),
        "{s}"
    );
    assert_eq!(snapshot(&lab), before, "a dry run changed something");
    let doc = json(&doctor(&lab, &["--apply", "--json"]));
    assert_eq!(doc["schema"], "pktio.doctor-apply/1");
    assert_eq!(doc["dry_run"], true, "{doc:#}");
    assert_eq!(snapshot(&lab), before, "a dry run changed something");

    // --yes: changes it and prints how to revert.
    let out = doctor(&lab, &["--apply", "--yes"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(knob(&lab), "1", "{s}");
    let reverts: Vec<String> = s
        .lines()
        .skip_while(|l| *l != "To revert:")
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(reverts.contains(&format!("sysctl -w {KNOB}=0")), "{s}");
    for r in &reverts {
        let st = lab
            .rx()
            .command("sh")
            .arg("-c")
            .arg(r)
            .output()
            .expect("revert runs");
        assert!(st.status.success(), "revert {r:?} failed: {st:?}");
    }
    assert_eq!(knob(&lab), "0");
    assert_eq!(
        snapshot(&lab),
        before,
        "the printed reverts did not restore everything"
    );
}

#[test]
fn apply_yes_without_root_fails_clearly_and_changes_nothing() {
    require_root!();
    use std::os::unix::process::CommandExt;
    // As nobody on the host: the privilege check comes before any change
    // (and nobody could not write /proc/sys anyway).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args(["doctor", "--apply", "--yes"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("runs as nobody");
    assert_eq!(out.status.code(), Some(2), "an error: {out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("needs root") && err.contains("nothing was changed"),
        "{err}"
    );
    // A dry run works without root.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args(["doctor", "--apply"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("runs as nobody");
    assert!(out.status.success(), "{out:?}");
}
