//! `pktio capture --queues --cpus --json-lines` in a two-queue lab: with
//! `--steal` each queue is read by a thread of its own (pinned with
//! `--cpus`), all feeding one pcap writer; every frame sent on either queue
//! is in the file exactly once, the per-queue counts of the summary add up
//! to the total, and the `--json-lines` records follow `docs/JSON.md` with
//! the last total equal to the file's packet count. Bad `--queues`,
//! `--cpus` and `--json-lines` combinations are refused before anything is
//! opened. Needs root.

mod cli_support;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::path::Path;

use cli_support::Watched;
use pktio::backend::{BackendConfig, BackendKind, Direction, PacketIo};
use pktio::pcap::PcapReader;
use pktio::queues::{QueueSet, Queues};
use pktio::wire::UdpFrame;
use pktio_lab::{require_root, Host, Lab};
use rustix::process::Signal;

const PKTIO: &str = env!("CARGO_BIN_EXE_pktio");
/// The destination port of the test frames (the capture's filter).
const PORT: u16 = 4243;
/// Frames sent on each queue: fewer than a veth queue's ring (256) holds,
/// so none is lost even if the receiving side has not run yet.
const PER_QUEUE: usize = 100;

/// `pktio args` in `host`'s namespace, watched.
fn start_in(host: &Host, args: &[&str]) -> Watched {
    let mut c = host.command(PKTIO);
    c.args(args).env("TZ", "UTC");
    Watched::start(c)
}

/// A scratch file name, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        Scratch(std::env::temp_dir().join(format!(
            "pktio-capture-queues-{what}-{}.pcap",
            std::process::id()
        )))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The sequence numbers (first 4 payload bytes) of the file's UDP frames.
fn sequence_numbers(path: &Path) -> Vec<u32> {
    let mut r = PcapReader::open(path).expect("the capture file");
    let mut seqs = Vec::new();
    while let Some(rec) = r.next_record().expect("whole records") {
        let udp = pktio::wire::parse_udp(&rec.data).expect("a UDP frame");
        seqs.push(u32::from_be_bytes(udp.payload[..4].try_into().unwrap()));
    }
    seqs
}

/// Frame `i` of queue `q`: gen → rx, UDP to `PORT` from port 1000 + q,
/// its global index `q * PER_QUEUE + i` first in the payload.
fn frame(lab: &Lab, q: u32, i: usize) -> Vec<u8> {
    let spec = UdpFrame {
        src_mac: lab.gen().mac(),
        dst_mac: lab.rx().mac(),
        src_ip: lab.gen().addr().ip(),
        dst_ip: lab.rx().addr().ip(),
        src_port: 1000 + q as u16,
        dst_port: PORT,
    };
    let seq = q * PER_QUEUE as u32 + i as u32;
    let mut payload = seq.to_be_bytes().to_vec();
    payload.resize(60, q as u8);
    let mut out = vec![0u8; 102];
    spec.emit(&payload, 102, &mut out).expect("frame fits");
    out
}

/// Sends `PER_QUEUE` frames on each of gen's two TX queues over AF_XDP: a
/// frame sent on gen queue q arrives on rx queue q (native XDP on veth).
fn send_on_both_queues(lab: &Lab) {
    let mut cfg = BackendConfig::new(lab.gen().ifname());
    cfg.direction = Direction::Tx;
    cfg.frame_count = 1024;
    let set = lab
        .gen()
        .run(|| QueueSet::open(BackendKind::Xdp, &cfg, &Queues::List(vec![0, 1])))
        .expect("AF_XDP senders on gen queues 0 and 1");
    let frames: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|q| (0..PER_QUEUE).map(|i| frame(lab, q, i)).collect())
        .collect();
    for mut h in set.into_handles() {
        let mine = &frames[h.queue() as usize];
        let mut next = 0;
        while next < mine.len() {
            let want = (mine.len() - next).min(32) as u32;
            h.backend_mut()
                .tx_batch(want, |buf| {
                    let f = mine.get(next)?;
                    buf[..f.len()].copy_from_slice(f);
                    next += 1;
                    Some(f.len())
                })
                .expect("tx_batch");
            h.backend_mut().flush().expect("flush");
        }
        // Kicks out what is left before the socket closes.
        h.backend_mut().flush().expect("flush");
    }
}

/// The largest `total_packets` of the `--json-lines` records so far.
fn total_so_far(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["schema"] == "pktio.capture-second/1")
        .filter_map(|v| v["total_packets"].as_u64())
        .max()
        .unwrap_or(0)
}

fn two_cpus() -> String {
    let cpus = pktio_host::cpu::allowed_cpus().expect("affinity");
    let (a, b) = (cpus[0], *cpus.get(1).unwrap_or(&cpus[0]));
    format!("{a},{b}")
}

#[test]
fn steal_on_two_queues_writes_every_frame_once_with_per_queue_counts() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let rx = lab.rx();
    let file = Scratch::new("two");
    let port = PORT.to_string();
    let cpus = two_cpus();
    let mut cap = start_in(
        rx,
        &[
            "capture",
            "--steal",
            "-i",
            rx.ifname(),
            "--queues",
            "0,1",
            "--cpus",
            &cpus,
            "-w",
            file.path(),
            "--json-lines",
            "udp",
            "dst",
            "port",
            &port,
        ],
    );
    cap.wait_for("listening on");
    let err = cap.stderr_now();
    assert!(
        err.contains("queue(s) [0, 1]") && err.contains("one thread per queue"),
        "{err}"
    );
    send_on_both_queues(&lab);
    let want = 2 * PER_QUEUE as u64;
    cap.wait_until("every frame in a --json-lines record", |c| {
        total_so_far(&c.stdout_now()) >= want
    });
    cap.signal(Signal::INT);
    let o = cap.finish();
    assert_eq!(o.code(), Some(0), "{}", o.text());

    // The file: every frame sent, each once.
    let seqs = sequence_numbers(&file.0);
    let unique: BTreeSet<u32> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "a frame written twice: {seqs:?}");
    assert_eq!(
        unique,
        (0..want as u32).collect::<BTreeSet<u32>>(),
        "every frame sent is in the file"
    );

    // The records and the summary (the last line).
    let (records, summary) = cli_support::schema::check_json_lines(
        &o.stdout,
        "pktio.capture-second/1",
        "pktio.capture/1",
    );
    let last = records.last().expect("a record");
    assert_eq!(last["total_packets"], seqs.len() as u64, "{last:#}");
    let sum: u64 = records.iter().map(|r| r["packets"].as_u64().unwrap()).sum();
    assert_eq!(sum, want, "the seconds add up to the total");
    assert_eq!(last["queues"].as_array().map(Vec::len), Some(2), "{last:#}");
    assert_eq!(summary["captured"], want, "{summary:#}");
    assert_eq!(summary["writer"]["packets"], want, "{summary:#}");
    let queues = summary["queues"].as_array().expect("per-queue counts");
    let per: Vec<(u64, u64)> = queues
        .iter()
        .map(|q| {
            (
                q["queue"].as_u64().unwrap(),
                q["captured"].as_u64().unwrap(),
            )
        })
        .collect();
    // Native XDP on veth: a frame arrives on the queue it was sent on.
    assert_eq!(
        per,
        [(0, PER_QUEUE as u64), (1, PER_QUEUE as u64)],
        "{summary:#}"
    );
    let total: u64 = per.iter().map(|(_, n)| n).sum();
    assert_eq!(total, want);
    for q in queues {
        assert_eq!(q["matched"], q["captured"], "{q}");
    }
    // The text summary says the same.
    for q in 0..2 {
        assert!(
            o.stderr
                .contains(&format!("queue {q}: {PER_QUEUE} packets captured")),
            "{}",
            o.stderr
        );
    }
}

/// The default capture (AF_PACKET) with `--json-lines`: records without
/// queues, the last total the file's count.
#[test]
fn json_lines_of_the_default_capture() {
    require_root!();
    let lab = Lab::new().expect("lab");
    let rx = lab.rx();
    let file = Scratch::new("packet");
    let port = PORT.to_string();
    let mut cap = start_in(
        rx,
        &[
            "capture",
            "-i",
            rx.ifname(),
            "-w",
            file.path(),
            "--json-lines",
            "udp",
            "dst",
            "port",
            &port,
        ],
    );
    cap.wait_for("listening on");
    let (from, to) = (lab.gen().addr(), rx.addr().socket_addr(PORT));
    let n = 7;
    lab.gen().run(move || {
        let s = UdpSocket::bind(from.socket_addr(40000)).unwrap();
        for _ in 0..n {
            s.send_to(b"hello world 123456", to).unwrap();
        }
    });
    cap.wait_until("every datagram in a record", |c| {
        total_so_far(&c.stdout_now()) >= n
    });
    cap.signal(Signal::INT);
    let o = cap.finish();
    assert_eq!(o.code(), Some(0), "{}", o.text());
    let (records, summary) = cli_support::schema::check_json_lines(
        &o.stdout,
        "pktio.capture-second/1",
        "pktio.capture/1",
    );
    let count = PcapReader::open(&file.0)
        .map(|mut r| std::iter::from_fn(|| r.next_record().unwrap()).count())
        .unwrap() as u64;
    assert_eq!(count, n);
    let last = records.last().unwrap();
    assert_eq!(last["total_packets"], count, "{last:#}");
    assert!(last["queues"].is_null(), "{last:#}");
    assert_eq!(summary["captured"], n, "{summary:#}");
    assert!(summary["queues"].is_null(), "{summary:#}");
}

/// What a refused command line printed: exit status 2 and the message.
fn refused(host: &Host, args: &[&str]) -> String {
    let o = host.command(PKTIO).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

#[test]
fn bad_queue_cpu_and_json_lines_flags_are_refused_before_anything_is_opened() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let rx = lab.rx();
    let file = Scratch::new("refused");
    let ifname = rx.ifname();
    let w = file.path();
    let cases: &[(&[&str], &str)] = &[
        (&["--steal", "--queues", "0,x"], "bad queue"),
        (&["--steal", "--queues", "1-0"], "empty queue range"),
        (&["--steal", "--queues", "0,0"], "given twice"),
        (&["--steal", "--queues", "5"], "queue 5 does not exist"),
        (
            &["--steal", "--cpus", "0,0,0"],
            "--cpus lists 3 CPUs for 2 queues",
        ),
        (
            &["--steal", "-q", "1", "--cpus", "1000"],
            "CPU 1000 is not one",
        ),
        (&["--steal", "--cpus", "a"], "bad CPU"),
        (&["--queues", "0,1"], "add --steal"),
        (&["--cpus", "0"], "add --steal"),
        (&["-q", "0", "--queues", "1", "--steal"], "cannot be used"),
    ];
    for (extra, says) in cases {
        let mut args = vec!["capture", "-i", ifname, "-w", w];
        args.extend_from_slice(extra);
        let err = refused(rx, &args);
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
        assert!(
            !Path::new(w).exists(),
            "{args:?}: the output file was created before the refusal"
        );
        assert!(!err.contains("listening on"), "{args:?}: {err}");
    }
    // --json-lines takes stdout: the packets go to a file.
    for args in [
        &["capture", "-i", ifname, "--json-lines", "-w", "-"][..],
        &["capture", "-i", ifname, "--json-lines"],
    ] {
        let err = refused(rx, args);
        assert!(err.contains("--json-lines needs"), "{args:?}: {err}");
    }
    let err = refused(
        rx,
        &[
            "capture",
            "-i",
            ifname,
            "--json-lines",
            "--json",
            "x",
            "-w",
            w,
        ],
    );
    assert!(err.contains("cannot be used"), "{err}");
    // Nothing was left attached: the interface is not promiscuous.
    let ifindex = rx.ifindex();
    let st = rx.run(move || pktio::pcap::link_state(ifindex)).unwrap();
    assert_eq!(st.promiscuity, Some(0));
}

/// Ctrl-C while the frames are still coming: whatever the queue threads
/// read from their sockets is in the file (the summary's `matched` equals
/// `captured` and the file's count), however far the capture got.
#[test]
fn ctrl_c_writes_everything_the_queue_threads_read() {
    require_root!();
    let lab = Lab::builder().queues(2).build().expect("lab");
    let rx = lab.rx();
    let file = Scratch::new("ctrl-c");
    let port = PORT.to_string();
    let mut cap = start_in(
        rx,
        &[
            "capture",
            "--steal",
            "-i",
            rx.ifname(),
            "-w",
            file.path(),
            "--json-lines",
            "udp",
            "dst",
            "port",
            &port,
        ],
    );
    cap.wait_for("listening on");
    cap.wait_for_handlers();
    send_on_both_queues(&lab);
    cap.signal(Signal::INT);
    let o = cap.finish();
    assert_eq!(o.code(), Some(0), "{}", o.text());
    let summary: serde_json::Value =
        serde_json::from_str(o.stdout.trim_end().lines().last().expect("the summary"))
            .expect("JSON");
    cli_support::schema::check(&summary, "pktio.capture/1");
    let in_file = sequence_numbers(&file.0).len() as u64;
    assert_eq!(summary["captured"], in_file, "{summary:#}");
    assert_eq!(
        summary["matched"], in_file,
        "read but not written: {summary:#}"
    );
    let per_queue: u64 = summary["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["captured"].as_u64().unwrap())
        .sum();
    assert_eq!(per_queue, in_file, "{summary:#}");
}
