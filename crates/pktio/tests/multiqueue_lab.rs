//! Many queues (`pktio::queues`), in a two-queue veth lab: one backend per
//! queue, each on a thread of its own pinned to a CPU. Every frame carries
//! its sequence number, and frames of one flow (UDP source port) go out on
//! one queue, as RSS would keep them; the tests check that each frame
//! arrives exactly once, on the queue it was sent to.
//!
//! The sender is a `QueueSet` too: AF_XDP transmit bound to gen queue `q`
//! reaches rx queue `q` (veth picks the peer's RX queue from the sending TX
//! queue). A sender keeps at most `WINDOW` frames of its queue in flight, so
//! the veth's per-queue ring never overflows and no frame is lost by design.
//! Needs root; without it each test prints SKIPPED and returns.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{frame_index, is_test_frame, TEST_PORT};
use pktio::backend::{Backend, BackendConfig, BackendKind, Direction, PacketIo};
use pktio::queues::{QueueHandle, QueueSet, Queues};
use pktio::wire::UdpFrame;
use pktio_lab::{require_root, Lab};

const QUEUES: u32 = 2;
const FLOWS: usize = 8;
const FRAMES: usize = 4000;
const WINDOW: u64 = 128;
const DEADLINE: Duration = Duration::from_secs(20);

/// The queue frame `i` is sent on: its flow's.
fn queue_of(i: usize) -> u32 {
    ((i % FLOWS) % QUEUES as usize) as u32
}

/// `n` frames gen → rx in `FLOWS` flows (source ports 1000..), each
/// carrying its index first in the payload.
fn flow_frames(lab: &Lab, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let spec = UdpFrame {
                src_mac: lab.gen().mac(),
                dst_mac: lab.rx().mac(),
                src_ip: lab.gen().addr().ip(),
                dst_ip: lab.rx().addr().ip(),
                src_port: 1000 + (i % FLOWS) as u16,
                dst_port: TEST_PORT,
            };
            let len = 60 + (i * 37) % 200;
            let mut payload = (i as u32).to_be_bytes().to_vec();
            payload.resize(len - 42, i as u8);
            let mut out = vec![0u8; len];
            spec.emit(&payload, len, &mut out).expect("frame fits");
            out
        })
        .collect()
}

fn two_queue_lab() -> Lab {
    Lab::builder().queues(QUEUES).build().expect("lab")
}

fn config(lab_if: &str, dir: Direction) -> BackendConfig {
    let mut c = BackendConfig::new(lab_if);
    c.direction = dir;
    c.frame_count = 1024;
    c
}

fn cpus() -> Vec<usize> {
    pktio_host::cpu::allowed_cpus().expect("affinity")
}

/// Per-queue counters shared by senders and receivers.
#[derive(Default)]
struct Flight {
    sent: [AtomicU64; QUEUES as usize],
    arrived: [AtomicU64; QUEUES as usize],
    stop: AtomicBool,
}

impl Flight {
    fn arrived_total(&self) -> u64 {
        self.arrived.iter().map(|a| a.load(Ordering::Acquire)).sum()
    }

    /// Frames sent on queue `q` that have not arrived yet.
    fn in_flight(&self, q: usize) -> u64 {
        let sent = self.sent[q].load(Ordering::Acquire);
        sent.saturating_sub(self.arrived[q].load(Ordering::Acquire))
    }

    /// Waits until queue `q` has fewer than `WINDOW` frames in flight.
    fn wait_window(&self, q: usize, end: Instant) -> bool {
        while self.in_flight(q) >= WINDOW {
            if Instant::now() > end || self.stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }
}

/// Sends, on its queue, the frames `queue_of` gives it, `WINDOW` at most in
/// flight (`arrived` counted by whoever receives them).
fn send_share(h: &mut QueueHandle, frames: &[Vec<u8>], flight: &Flight, end: Instant) {
    let q = h.queue() as usize;
    let mine: Vec<&Vec<u8>> = (0..frames.len())
        .filter(|&i| queue_of(i) == h.queue())
        .map(|i| &frames[i])
        .collect();
    let mut next = 0;
    while next < mine.len() && flight.wait_window(q, end) {
        let room = WINDOW - flight.in_flight(q);
        let want = (mine.len() - next).min(room as usize).min(32) as u32;
        let sent = h
            .backend_mut()
            .tx_batch(want, |buf| {
                let f = mine.get(next)?;
                buf[..f.len()].copy_from_slice(f);
                next += 1;
                Some(f.len())
            })
            .expect("tx_batch");
        flight.sent[q].fetch_add(u64::from(sent), Ordering::AcqRel);
        h.backend_mut().flush().expect("flush");
    }
    assert_eq!(
        next,
        mine.len(),
        "queue {q}: sender stalled (frames not arriving)"
    );
}

/// Receives test frames on one queue (or fanout member) until every frame
/// arrived, wherever it landed, or the deadline; counts each against the
/// queue it was sent on (which keeps the senders' windows) and returns the
/// sequence numbers seen here.
fn receive_share(h: &mut QueueHandle, want: u64, flight: &Flight, end: Instant) -> Vec<u32> {
    let mut seqs = Vec::new();
    while flight.arrived_total() < want && Instant::now() < end {
        let n = h
            .backend_mut()
            .rx_batch(64, |p| {
                if let Some(i) = frame_index(p).filter(|_| is_test_frame(p, TEST_PORT)) {
                    flight.arrived[queue_of(i as usize) as usize].fetch_add(1, Ordering::AcqRel);
                    seqs.push(i);
                }
            })
            .expect("rx_batch");
        if n == 0 {
            h.backend_mut().wait(5).expect("wait");
        }
    }
    seqs
}

/// Checks that the receivers together saw every frame exactly once.
fn check_union(what: &str, got: &[Vec<u32>], n: usize) {
    let mut seen = BTreeSet::new();
    for (member, seqs) in got.iter().enumerate() {
        for &i in seqs {
            assert!(
                seen.insert(i),
                "{what}: frame {i} seen twice (member {member})"
            );
        }
    }
    assert_eq!(
        seen.len(),
        n,
        "{what}: every frame exactly once across the queues"
    );
}

/// Sends this queue's share of `frames`, at most `WINDOW` unreturned, and
/// receives what comes back on the same queue; returns its sequence numbers.
fn send_and_collect(
    h: &mut QueueHandle,
    frames: &[Vec<u8>],
    flight: &Flight,
    end: Instant,
) -> Vec<u32> {
    let q = h.queue();
    let mine: Vec<&Vec<u8>> = (0..frames.len())
        .filter(|&i| queue_of(i) == q)
        .map(|i| &frames[i])
        .collect();
    let (mut next, mut seqs) = (0, Vec::new());
    while seqs.len() < mine.len() && Instant::now() < end {
        let in_flight = next as u64 - seqs.len() as u64;
        if next < mine.len() && in_flight < WINDOW {
            let want = ((WINDOW - in_flight) as usize)
                .min(mine.len() - next)
                .min(32) as u32;
            let sent = h
                .backend_mut()
                .tx_batch(want, |buf| {
                    let f = mine.get(next)?;
                    buf[..f.len()].copy_from_slice(f);
                    next += 1;
                    Some(f.len())
                })
                .expect("tx_batch");
            flight.sent[q as usize].fetch_add(u64::from(sent), Ordering::AcqRel);
            h.backend_mut().flush().expect("flush");
        }
        let n = h
            .backend_mut()
            .rx_batch(64, |p| {
                if is_test_frame(p, TEST_PORT) {
                    seqs.extend(frame_index(p));
                }
            })
            .expect("rx_batch");
        if n == 0 && next == mine.len() {
            h.backend_mut().wait(5).expect("wait");
        }
    }
    seqs
}

/// Checks that queue `q` got exactly the frames sent on it, each once.
fn check_queue(what: &str, q: u32, seqs: &[u32], n: usize) {
    let got: BTreeSet<u32> = seqs.iter().copied().collect();
    assert_eq!(got.len(), seqs.len(), "{what}: queue {q} got a frame twice");
    let want: BTreeSet<u32> = (0..n)
        .filter(|&i| queue_of(i) == q)
        .map(|i| i as u32)
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: queue {q} got {} of its {} frames",
        got.len(),
        want.len()
    );
    assert_eq!(got, want, "{what}: queue {q} got another queue's frames");
}

fn check_xdp_accounting(b: &Backend) {
    if let Some(Err(e)) = b.check_accounting().transpose() {
        panic!("frame accounting of {}: {e}", b.describe().interface);
    }
}

#[test]
fn xdp_two_queues_receive_every_frame_once_on_its_queue() {
    require_root!();
    receive_on_two_queues(BackendKind::Xdp);
}

#[test]
fn xdp_skb_two_queues_receive_every_frame_once() {
    require_root!();
    receive_on_two_queues(BackendKind::XdpSkb);
}

/// The RX test for an AF_XDP kind: each rx queue gets exactly the frames
/// sent on the same gen queue.
fn receive_on_two_queues(kind: BackendKind) {
    let lab = two_queue_lab();
    let frames = flow_frames(&lab, FRAMES);
    let rx_cfg = config(lab.rx().ifname(), Direction::Rx);
    let rx = lab
        .rx()
        .run(|| QueueSet::open(kind, &rx_cfg, &Queues::All))
        .expect("rx queue set");
    assert_eq!(rx.len(), QUEUES as usize, "Queues::All opens every queue");
    for (i, h) in rx.handles().iter().enumerate() {
        let info = h.backend().describe();
        assert_eq!((h.queue(), info.queue), (i as u32, Some(i as u32)));
        assert!(
            info.attach.is_some(),
            "queue {i} is steered by the shared program"
        );
    }
    let tx_cfg = config(lab.gen().ifname(), Direction::Tx);
    let tx = lab
        .gen()
        .run(|| QueueSet::open(BackendKind::Xdp, &tx_cfg, &Queues::List(vec![0, 1])))
        .expect("tx queue set");
    let (flight, cpus) = (Flight::default(), cpus());
    let end = Instant::now() + DEADLINE;
    let got = std::thread::scope(|s| {
        let receivers = s.spawn(|| {
            rx.run_pinned(&cpus, |mut h| {
                let seqs = receive_share(&mut h, FRAMES as u64, &flight, end);
                check_xdp_accounting(h.backend());
                (h.queue(), seqs)
            })
        });
        let sent = tx.run_pinned(&cpus, |mut h| send_share(&mut h, &frames, &flight, end));
        if sent.is_err() {
            flight.stop.store(true, Ordering::Release);
        }
        sent.expect("senders");
        receivers
            .join()
            .expect("receivers")
            .expect("receiver threads")
    });
    let what = format!("{kind} RX");
    let seqs: Vec<Vec<u32>> = got.iter().map(|(_, s)| s.clone()).collect();
    check_union(&what, &seqs, FRAMES);
    // Native XDP on veth runs on the RX queue the sender's TX queue names.
    // Generic (skb) XDP does not: veth records no RX queue on the skb, so
    // generic XDP runs every frame as queue 0's, and queue 0's socket gets
    // them all (checked, so a kernel that changes this is noticed).
    for (q, seqs) in &got {
        match kind {
            BackendKind::XdpSkb if *q == 0 => assert_eq!(seqs.len(), FRAMES, "{what}"),
            BackendKind::XdpSkb => assert!(seqs.is_empty(), "{what}: queue {q} got {}", seqs.len()),
            _ => check_queue(&what, *q, seqs, FRAMES),
        }
    }
}

#[test]
fn xdp_forwarder_on_two_queues_returns_every_frame() {
    require_root!();
    forward_on_two_queues(false);
}

#[test]
fn xdp_shared_umem_forwarder_on_two_threads_accounts_every_frame() {
    require_root!();
    forward_on_two_queues(true);
}

/// A forwarder on both rx queues (one UMEM per queue, or one `SharedUmem`
/// for both), the generator's queues sending and taking back their shares.
fn forward_on_two_queues(shared: bool) {
    let lab = two_queue_lab();
    let frames = flow_frames(&lab, FRAMES);
    let fwd_cfg = config(lab.rx().ifname(), Direction::Both);
    let fwd = lab
        .rx()
        .run(|| match shared {
            true => QueueSet::open_shared(BackendKind::Xdp, &fwd_cfg, &Queues::All),
            false => QueueSet::open(BackendKind::Xdp, &fwd_cfg, &Queues::All),
        })
        .expect("forwarder queue set");
    let pool = fwd.shared_umem().cloned();
    assert_eq!(pool.is_some(), shared);
    for h in fwd.handles() {
        let Backend::Xdp(b) = h.backend() else {
            panic!("an AF_XDP queue set")
        };
        // The first socket is the UMEM's registration socket; the other
        // binds to it with XDP_SHARED_UMEM.
        let want = shared && h.queue() != 0;
        assert_eq!(b.socket_info().shared_umem, want, "queue {}", h.queue());
    }
    let gen_cfg = config(lab.gen().ifname(), Direction::Both);
    let gen = lab
        .gen()
        .run(|| QueueSet::open(BackendKind::Xdp, &gen_cfg, &Queues::All))
        .expect("generator queue set");
    let (flight, cpus) = (Flight::default(), cpus());
    let end = Instant::now() + DEADLINE;
    let forwarded = std::thread::scope(|s| {
        let forwarders = s.spawn(|| {
            fwd.run_pinned(&cpus, |mut h| {
                let mut n = 0u64;
                while !flight.stop.load(Ordering::Acquire) && Instant::now() < end {
                    let r = h
                        .backend_mut()
                        .forward_batch(64, |p| {
                            pktio::wire::swap_macs(p);
                            true
                        })
                        .expect("forward_batch");
                    n += u64::from(r.tx);
                    h.backend_mut().flush().expect("flush");
                    if r.rx == 0 {
                        h.backend_mut().wait(5).expect("wait");
                    }
                }
                check_xdp_accounting(h.backend());
                (n, h.backend().accounting().expect("an AF_XDP backend"))
            })
        });
        // Each generator queue sends its share and takes back what returns.
        let returned = gen.run_pinned(&cpus, |mut h| {
            let seqs = send_and_collect(&mut h, &frames, &flight, end);
            check_xdp_accounting(h.backend());
            (h.queue(), seqs)
        });
        flight.stop.store(true, Ordering::Release);
        let f = forwarders
            .join()
            .expect("forwarders")
            .expect("forwarder threads");
        (returned.expect("generator threads"), f)
    });
    let (returned, fwd_end) = forwarded;
    let per_forwarder: Vec<u64> = fwd_end.iter().map(|(n, _)| *n).collect();
    let mut total = 0;
    for (q, seqs) in &returned {
        check_queue("AF_XDP forward", *q, seqs, FRAMES);
        total += seqs.len();
    }
    assert_eq!(total, FRAMES, "every frame returned exactly once");
    assert_eq!(
        per_forwarder.iter().sum::<u64>(),
        FRAMES as u64,
        "forwarded {per_forwarder:?}"
    );
    assert!(
        per_forwarder.iter().all(|&n| n > 0),
        "both forwarders worked: {per_forwarder:?}"
    );
    if let Some(pool) = pool {
        // Every view is gone. Queue 0's socket took the registration
        // socket, which lives as long as the UMEM: the frames on its RX and
        // TX paths stay with it; every other frame is back in the pool.
        let parked = fwd_end[0].1.rx_path + fwd_end[0].1.tx_path;
        let acc = pool.accounting();
        assert_eq!(acc.total, 1024);
        assert_eq!(
            (acc.free, acc.in_views),
            (acc.total - parked, parked),
            "shared pool after the views: {acc:?}, queue 0 parked {parked}"
        );
        assert!(
            fwd_end.iter().all(|(_, a)| a.total > 0),
            "both views drew frames: {fwd_end:?}"
        );
    }
}

#[test]
fn packet_fanout_across_two_threads_sees_every_frame_once() {
    require_root!();
    let lab = two_queue_lab();
    let frames = flow_frames(&lab, FRAMES);
    let rx_cfg = config(lab.rx().ifname(), Direction::Rx);
    let rx = lab
        .rx()
        .run(|| QueueSet::open(BackendKind::PacketV3, &rx_cfg, &Queues::List(vec![0, 1])))
        .expect("fanout queue set");
    let tx_cfg = config(lab.gen().ifname(), Direction::Tx);
    let tx = lab
        .gen()
        .run(|| QueueSet::open(BackendKind::Xdp, &tx_cfg, &Queues::All))
        .expect("tx queue set");
    let (flight, cpus) = (Flight::default(), cpus());
    let end = Instant::now() + DEADLINE;
    // Fanout spreads by flow hash, not by queue: a receiver counts what it
    // gets against the queue it was sent on, so the senders' windows hold.
    let got = std::thread::scope(|s| {
        let receivers = s.spawn(|| {
            rx.run_pinned(&cpus, |mut h| {
                receive_share(&mut h, FRAMES as u64, &flight, end)
            })
        });
        tx.run_pinned(&cpus, |mut h| send_share(&mut h, &frames, &flight, end))
            .expect("senders");
        receivers
            .join()
            .expect("receivers")
            .expect("receiver threads")
    });
    assert!(
        got.iter().all(|s| !s.is_empty()),
        "the group spreads the flows: {:?} frames per member",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    check_union("fanout", &got, FRAMES);
    for (member, seqs) in got.iter().enumerate() {
        // Hash fanout keeps a flow on one member.
        let flows: BTreeSet<usize> = seqs.iter().map(|&i| i as usize % FLOWS).collect();
        for other in got.iter().skip(member + 1) {
            let shared: Vec<_> = other
                .iter()
                .map(|&i| i as usize % FLOWS)
                .filter(|f| flows.contains(f))
                .collect();
            assert!(shared.is_empty(), "flows split across members: {shared:?}");
        }
    }
}

#[test]
fn a_queue_the_device_lacks_is_named_and_nothing_stays_attached() {
    require_root!();
    let lab = two_queue_lab();
    let cfg = config(lab.rx().ifname(), Direction::Rx);
    let e = lab
        .rx()
        .run(|| QueueSet::open(BackendKind::Xdp, &cfg, &Queues::List(vec![0, 5])))
        .expect_err("queue 5 of a two-queue veth");
    assert!(
        matches!(e, pktio::queues::QueueError::Open { queue: 5, .. }),
        "{e:?}"
    );
    // Queue 0's socket and the shared program went with the error: the
    // whole interface can be opened again.
    let set = lab
        .rx()
        .run(|| QueueSet::open(BackendKind::Xdp, &cfg, &Queues::All))
        .expect("reopen after a failed set");
    assert_eq!(set.len(), 2);
}
