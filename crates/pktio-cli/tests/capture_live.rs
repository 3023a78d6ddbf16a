//! `pktio capture -i` in a lab: the default capture leaves the host's
//! traffic flowing (a UDP socket on the capturing side gets every
//! datagram while pktio prints them, as tcpdump does), promiscuous mode is
//! on while it runs and off after it, however it ends (exit, SIGINT,
//! SIGTERM, SIGKILL; `-p` never sets it), and `--steal` says so and takes
//! the packets (the UDP socket then gets none); `-Z nobody` runs as
//! nobody once the capture and the output file are open; `-i any` writes
//! the veth's packets as LINUX_SLL2 records tcpdump reads, its filter run
//! by the kernel (or by pktio, with a note, for one the kernel cannot
//! run). Needs root.

mod capture_support;
mod cli_support;

use std::net::UdpSocket;
use std::time::Duration;

use cli_support::{require_tool, Watched};
use pktio_lab::{require_root, Host, Lab};
use rustix::process::Signal;

const PKTIO: &str = env!("CARGO_BIN_EXE_pktio");
const PORT: u16 = 4242;

/// `program args` in `host`'s namespace (in UTC), watched.
fn start_in(host: &Host, program: &str, args: &[&str]) -> Watched {
    let mut c = host.command(program);
    c.args(args).env("TZ", "UTC");
    Watched::start(c)
}

/// `IFLA_PROMISCUITY` of the rx end: how many hold it promiscuous.
fn promiscuity(rx: &Host) -> u32 {
    let ifindex = rx.ifindex();
    rx.run(move || pktio::pcap::link_state(ifindex))
        .unwrap()
        .promiscuity
        .expect("IFLA_PROMISCUITY")
}

/// A UDP socket on the rx end's address.
fn receiver(rx: &Host) -> UdpSocket {
    let addr = rx.addr().socket_addr(PORT);
    let s = rx.run(move || UdpSocket::bind(addr)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends `n` 18-byte datagrams from the gen end, from `ports` source ports
/// in turn (different flows).
fn send(lab: &Lab, n: usize, ports: u16) {
    let (from, to) = (lab.gen().addr(), lab.rx().addr().socket_addr(PORT));
    lab.gen().run(move || {
        let socks: Vec<UdpSocket> = (0..ports)
            .map(|p| UdpSocket::bind(from.socket_addr(40000 + p)).unwrap())
            .collect();
        for i in 0..n {
            socks[i % socks.len()]
                .send_to(b"hello world 123456", to)
                .unwrap();
        }
    });
}

#[test]
fn default_capture_leaves_the_hosts_traffic_flowing() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let sock = receiver(rx);
    assert_eq!(promiscuity(rx), 0);
    let n = 50;
    let count = n.to_string();
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "-i",
            rx.ifname(),
            "-c",
            &count,
            "-tt",
            "udp",
            "dst",
            "port",
            "4242",
        ],
    );
    cap.wait_for("listening on");
    assert!(
        cap.stderr_now().contains("the host keeps every packet"),
        "{}",
        cap.stderr_now()
    );
    assert_eq!(promiscuity(rx), 1, "promiscuous while capturing");
    send(&lab, n, 1);
    let mut buf = [0u8; 64];
    for i in 0..n {
        let got = sock.recv(&mut buf);
        assert!(
            matches!(got, Ok(18)),
            "datagram {i} of {n} did not reach the host's socket while capturing: {got:?}"
        );
    }
    let o = cap.finish();
    let (code, out) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0), "{out}");
    let want = format!(
        "IP {}.40000 > {}.{PORT}: UDP, length 18",
        lab.gen().addr().ip(),
        rx.addr().ip()
    );
    assert_eq!(out.lines().count(), n, "{out}");
    for l in out.lines() {
        assert!(l.ends_with(&want), "{l:?} vs {want:?}");
    }
    assert_eq!(
        promiscuity(rx),
        0,
        "promiscuous mode ended with the capture"
    );
}

/// `--json -` with the packets written to a file: the stop summary's
/// numbers as one document on stdout. Without `-w FILE` stdout is the
/// packets', and `--json -` is refused.
#[test]
fn the_stop_summary_as_json() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let _sock = receiver(rx);
    let file = std::env::temp_dir().join(format!("pktio-capture-json-{}.pcap", std::process::id()));
    let path = file.to_str().unwrap();
    let args = [
        "capture",
        "-i",
        rx.ifname(),
        "-c",
        "5",
        "-w",
        path,
        "--json",
        "-",
    ];
    let mut cap = start_in(
        rx,
        PKTIO,
        &[&args[..], &["udp", "dst", "port", "4242"]].concat(),
    );
    cap.wait_for("listening on");
    send(&lab, 5, 1);
    let o = cap.finish();
    let _ = std::fs::remove_file(&file);
    assert_eq!(o.code(), Some(0), "{}", o.text());
    let doc: serde_json::Value = serde_json::from_str(&o.stdout).expect("only JSON on stdout");
    cli_support::schema::check(&doc, "pktio.capture/1");
    assert_eq!(doc["captured"], 5, "{doc:#}");
    assert_eq!(doc["writer"]["packets"], 5, "{doc:#}");
    assert_eq!(doc["backend"], "packet", "{doc:#}");
    assert_eq!(doc["stopped_by"], "the packet count", "{doc:#}");

    let o = std::process::Command::new(PKTIO)
        .args(["capture", "-i", "lo", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--json -"),
        "{o:?}"
    );
}

#[test]
fn promiscuous_mode_ends_with_the_capture_however_it_ends() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    for (sig, name) in [
        (Signal::INT, "SIGINT"),
        (Signal::TERM, "SIGTERM"),
        (Signal::KILL, "SIGKILL"),
    ] {
        for no_promisc in [false, true] {
            let mut args = vec!["capture", "-i", rx.ifname(), "udp"];
            if no_promisc {
                args.push("-p");
            }
            let mut cap = start_in(rx, PKTIO, &args);
            cap.wait_for("listening on");
            let want = if no_promisc { 0 } else { 1 };
            assert_eq!(promiscuity(rx), want, "{args:?} while running");
            cap.signal(sig);
            let o = cap.finish();
            let (code, _) = (o.code(), o.stdout.clone());
            if sig != Signal::KILL {
                assert_eq!(code, Some(0), "{name}");
            }
            assert_eq!(promiscuity(rx), 0, "{args:?} after {name}");
        }
    }
    // Another holder of promiscuous mode is not undone by a capture.
    let mut outer = start_in(rx, PKTIO, &["capture", "-i", rx.ifname(), "udp"]);
    outer.wait_for("listening on");
    let mut inner = start_in(rx, PKTIO, &["capture", "-i", rx.ifname(), "udp"]);
    inner.wait_for("listening on");
    assert_eq!(promiscuity(rx), 2);
    inner.signal(Signal::KILL);
    inner.finish();
    assert_eq!(promiscuity(rx), 1, "the other capture keeps it");
    outer.signal(Signal::INT);
    outer.finish();
    assert_eq!(promiscuity(rx), 0);
}

#[test]
fn steal_says_so_and_takes_the_packets() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let sock = receiver(rx);
    let n = 20;
    let count = n.to_string();
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "--steal",
            "-i",
            rx.ifname(),
            "-c",
            &count,
            "udp",
            "dst",
            "port",
            "4242",
        ],
    );
    cap.wait_for("listening on");
    let err = cap.stderr_now();
    assert!(
        err.contains("WARNING: --steal")
            && err.contains("no longer reach this host's network stack"),
        "{err}"
    );
    assert_eq!(promiscuity(rx), 1);
    send(&lab, n, 1);
    let o = cap.finish();
    let (code, out) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.lines().count(), n, "{out}");
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let got = sock.recv(&mut buf);
    assert!(
        matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a stolen datagram reached the host: {got:?}"
    );
    assert_eq!(promiscuity(rx), 0);
}

#[test]
fn steal_takes_every_queue_and_q_one() {
    require_root!();
    let lab = Lab::builder().queues(2).build().unwrap();
    let rx = lab.rx();
    let sock = receiver(rx);
    let n = 200;
    // -q 0: what the flows hashed to queue 1 bring still reaches the host.
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "--steal",
            "-q",
            "0",
            "-i",
            rx.ifname(),
            "-w",
            "/dev/null",
            "udp",
        ],
    );
    cap.wait_for("listening on");
    assert!(
        cap.stderr_now().contains("queue(s) [0]"),
        "{}",
        cap.stderr_now()
    );
    send(&lab, n, 16);
    let mut host = 0;
    let mut buf = [0u8; 64];
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while sock.recv(&mut buf).is_ok() {
        host += 1;
    }
    cap.signal(Signal::INT);
    let err = cap.stderr_now();
    cap.finish();
    assert!(
        host > 0 && host < n,
        "-q 0 left {host} of {n} to the host: {err}"
    );
    // Every queue (the default): all of them captured, none to the host.
    let count = n.to_string();
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "--steal",
            "-i",
            rx.ifname(),
            "-c",
            &count,
            "-w",
            "/dev/null",
            "udp",
        ],
    );
    cap.wait_for("listening on");
    assert!(
        cap.stderr_now().contains("queue(s) [0, 1]"),
        "{}",
        cap.stderr_now()
    );
    send(&lab, n, 16);
    let o = cap.finish();
    let (code, _) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0));
    sock.set_nonblocking(true).unwrap();
    assert!(sock.recv(&mut buf).is_err(), "every queue is captured");
}

#[test]
fn live_lines_match_tcpdumps() {
    require_root!();
    require_tool("tcpdump", "tcpdump");
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let _sock = receiver(rx);
    let n = 10;
    let count = n.to_string();
    let mut ours = start_in(
        rx,
        PKTIO,
        &["capture", "-i", rx.ifname(), "-e", "-c", &count, "udp"],
    );
    let mut theirs = start_in(
        rx,
        "tcpdump",
        &["-n", "-e", "-i", rx.ifname(), "-c", &count, "udp"],
    );
    ours.wait_for("listening on");
    theirs.wait_for("listening on");
    send(&lab, n, 3);
    let o = ours.finish();
    let (c1, a) = (o.code(), o.stdout.clone());
    let o = theirs.finish();
    let (c2, b) = (o.code(), o.stdout.clone());
    assert_eq!((c1, c2), (Some(0), Some(0)));
    // The same lines, time stamps aside (each read the clock its own way).
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_once(' ').map_or("", |(_, r)| r).to_string())
            .collect()
    };
    assert_eq!(
        strip(&a),
        strip(&b),
        "pktio (left) vs tcpdump -n -e (right)"
    );
    assert_eq!(a.lines().count(), n);
}

/// The `Uid:` and `Gid:` lines of /proc/PID/status (real, effective, saved, fs).
fn ids(pid: u32) -> (String, String) {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = |k: &str| {
        st.lines()
            .find(|l| l.starts_with(k))
            .map(|l| {
                l[k.len()..]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    (line("Uid:"), line("Gid:"))
}

#[test]
fn z_drops_to_the_user_after_opening_the_capture_and_the_file() {
    require_root!();
    let nobody =
        pktio::host::User::lookup("nobody").expect("the user nobody (every Debian system has it)");
    let dir = capture_support::TempDir::new("cap-z");
    // A directory only root may write into: the file must be opened before the drop.
    std::fs::set_permissions(
        dir.path(""),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
    )
    .unwrap();

    // An unknown user: exit 2 before anything is opened.
    let never = dir.path("never.pcap");
    let o = std::process::Command::new(PKTIO)
        .args(["capture", "-i", "lo", "-Z", "pktio-no-such-user", "-w"])
        .arg(&never)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("-Z pktio-no-such-user: cannot find the user"),
        "{e}"
    );
    assert!(!never.exists(), "nothing opened for an unknown user");

    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let out = dir.path("z.pcap");
    let n = 20;
    let count = n.to_string();
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "-i",
            rx.ifname(),
            "-c",
            &count,
            "-Z",
            "nobody",
            "-w",
            out.to_str().unwrap(),
            "udp",
            "dst",
            "port",
            "4242",
        ],
    );
    cap.wait_for("running as user nobody");
    let (uid, gid) = ids(cap.child.id());
    let u = nobody.uid.to_string();
    let g = nobody.gid.to_string();
    assert_eq!(
        uid,
        [u.as_str(); 4].join(" "),
        "Uid: real, effective, saved, fs"
    );
    assert_eq!(
        gid,
        [g.as_str(); 4].join(" "),
        "Gid: real, effective, saved, fs"
    );
    send(&lab, n, 1);
    let o = cap.finish();
    let (code, _) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0), "{}", o.stderr);
    let back = std::process::Command::new(PKTIO)
        .args(["capture", "-r"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(back.status.success());
    assert_eq!(
        String::from_utf8_lossy(&back.stdout).lines().count(),
        n,
        "every packet written after the drop"
    );
    // -r with -Z: the input and the output opened as root, then nobody.
    let copy = dir.path("copy.pcap");
    let o = std::process::Command::new(PKTIO)
        .args(["capture", "-Z", "nobody", "-r"])
        .arg(&out)
        .arg("-w")
        .arg(&copy)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("running as user nobody"), "{e}");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&out).unwrap());
}

#[test]
fn any_captures_every_interface_in_linux_cooked_v2() {
    require_root!();
    // --steal needs one interface: refused before anything is opened.
    let o = std::process::Command::new(PKTIO)
        .args(["capture", "--steal", "-i", "any", "udp"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--steal needs one interface"), "{e}");

    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let _sock = receiver(rx);
    let dir = capture_support::TempDir::new("cap-any");
    let out = dir.path("any.pcap");
    let n = 10;
    let count = n.to_string();
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "-i",
            "any",
            "-c",
            &count,
            "-w",
            out.to_str().unwrap(),
            "udp",
            "dst",
            "port",
            "4242",
        ],
    );
    cap.wait_for("listening on any");
    assert!(
        cap.stderr_now().contains("LINUX_SLL2"),
        "{}",
        cap.stderr_now()
    );
    send(&lab, n, 1);
    let o = cap.finish();
    let (code, _) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0), "{}", o.stderr);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        u32::from_ne_bytes(bytes[20..24].try_into().unwrap()),
        276,
        "LINKTYPE_LINUX_SLL2, as tcpdump -i any writes"
    );
    // Each record: the veth's interface index and ARPHRD_ETHER in the cooked header.
    let back = std::process::Command::new(PKTIO)
        .args(["capture", "-tt", "-r"])
        .arg(&out)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&back.stdout).into_owned();
    let want = format!(
        "IP {}.40000 > {}.{PORT}: UDP, length 18",
        lab.gen().addr().ip(),
        rx.addr().ip()
    );
    assert_eq!(lines.lines().count(), n, "{lines}");
    assert!(lines.lines().all(|l| l.ends_with(&want)), "{lines}");
    let ifindex = rx.ifindex().to_be_bytes();
    assert_eq!(&bytes[24 + 16 + 4..24 + 16 + 8], &ifindex, "sll2_if_index");
    assert_eq!(&bytes[24 + 16 + 8..24 + 16 + 10], &[0, 1], "ARPHRD_ETHER");
    // What the host sends is seen too ("Out" on the veth), as with tcpdump -i any.
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture", "-i", "any", "-c", "1", "-e", "udp", "src", "port", "4243",
        ],
    );
    cap.wait_for("listening on any");
    let (from, to) = (rx.addr().socket_addr(4243), lab.gen().addr().socket_addr(9));
    rx.run(move || {
        UdpSocket::bind(from)
            .unwrap()
            .send_to(b"out", to)
            .map(|_| ())
    })
    .unwrap();
    let o = cap.finish();
    let (code, line) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0), "{}", o.stderr);
    assert!(
        line.contains(&format!("{:<5} Out ifindex {}", rx.ifname(), rx.ifindex())),
        "{line}"
    );
    // tcpdump reads the file back.
    require_tool("tcpdump", "tcpdump");
    let t = std::process::Command::new("tcpdump")
        .args(["-n", "-tt", "-r"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let tl = String::from_utf8_lossy(&t.stdout).into_owned();
    assert_eq!(tl.lines().count(), n, "{tl}");
    assert!(
        tl.lines().all(|l| l.ends_with(&want)),
        "tcpdump reads it: {tl}"
    );
}

/// The records of a classic pcap file of cooked IPv4 packets, without
/// what differs from one run to the next: the timestamps, the IPv4 ID and
/// header checksum.
fn records_without_time(pcap: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_ne_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let mut r = pcap[at + 8..at + 16 + caplen].to_vec();
        let ip = 8 + 20;
        r[ip + 4..ip + 6].fill(0);
        r[ip + 10..ip + 12].fill(0);
        out.push(r);
        at += 16 + caplen;
    }
    out
}

/// The count on the stop summary's line that ends with `what`.
fn count_of(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.ends_with(what))
        .unwrap_or_else(|| panic!("no {what:?} line: {stderr}"));
    line.split(' ').next().unwrap().parse().unwrap()
}

/// `-i any FILTER` runs the filter in the kernel: of the 200 datagrams to
/// another port only the matching 20 reach pktio (the stop summary's
/// "passed the socket's kernel filter"); a filter the kernel cannot run
/// (`greater`) says so, and every packet reaches pktio; both write the
/// same records.
#[test]
fn any_filters_in_the_kernel_unless_it_cannot() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let _sock = receiver(rx);
    let dir = capture_support::TempDir::new("cap-any-kernel");
    let (n, noise) = (20usize, 200usize);
    let mut files = Vec::new();
    for (name, filter) in [
        ("kernel", "udp dst port 4242"),
        ("pktio", "greater 60 and udp dst port 4242"),
    ] {
        let out = dir.path(&format!("{name}.pcap"));
        let mut args = vec![
            "capture",
            "-i",
            "any",
            "-c",
            "20",
            "-w",
            out.to_str().unwrap(),
        ];
        args.extend(filter.split(' '));
        let mut cap = start_in(rx, PKTIO, &args);
        cap.wait_for("listening on any");
        // Noise first (to a port nobody listens on), then what matches.
        let (from, to) = (lab.gen().addr(), rx.addr().socket_addr(PORT + 1));
        lab.gen().run(move || {
            let s = UdpSocket::bind(from.socket_addr(40000)).unwrap();
            for _ in 0..noise {
                s.send_to(b"hello world 123456", to).unwrap();
            }
        });
        send(&lab, n, 1);
        let o = cap.finish();
        let err = o.stderr.clone();
        assert_eq!(o.code(), Some(0), "{}", o.text());
        assert_eq!(count_of(&err, "packets captured"), n as u64, "{err}");
        let passed = count_of(&err, "packets passed the socket's kernel filter");
        let note = err.contains("note: on -i any the filter runs in pktio");
        if name == "kernel" {
            assert!(!note, "{err}");
            assert!(err.contains("every interface, classic BPF filter"), "{err}");
            // The noise (and the ICMP errors it causes) stayed in the kernel.
            assert!(passed < (n + noise / 2) as u64, "{passed} passed: {err}");
        } else {
            assert!(note && err.contains("len/greater/less"), "{err}");
            assert!(passed >= (n + noise) as u64, "{passed} passed: {err}");
        }
        files.push(records_without_time(&std::fs::read(&out).unwrap()));
    }
    assert_eq!(files[0].len(), n);
    assert_eq!(files[0], files[1], "the same records either way");
}

/// The default capture on one interface sees what the host sends on it,
/// as tcpdump does (`-Q inout`); before, outgoing packets were ignored.
#[test]
fn the_default_capture_sees_what_the_host_sends() {
    require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();
    let mut cap = start_in(
        rx,
        PKTIO,
        &[
            "capture",
            "-i",
            rx.ifname(),
            "-c",
            "1",
            "udp",
            "src",
            "port",
            "4243",
        ],
    );
    cap.wait_for("listening on");
    let (from, to) = (rx.addr().socket_addr(4243), lab.gen().addr().socket_addr(9));
    rx.run(move || {
        UdpSocket::bind(from)
            .unwrap()
            .send_to(b"out", to)
            .map(|_| ())
    })
    .unwrap();
    let o = cap.finish();
    let (code, line) = (o.code(), o.stdout.clone());
    assert_eq!(code, Some(0), "{}", o.stderr);
    assert!(
        line.contains(&format!("{}.4243 > ", rx.addr().ip())),
        "{line}"
    );
}
