//! Many queues, many threads: one [`PacketIo`](crate::backend::PacketIo)
//! backend per queue of an interface, each a `Send` value to run on its own
//! (pinned) thread.
//!
//! A NIC spreads flows over its queues (RSS), so one socket bound to one
//! queue sees only its share. [`QueueSet::open`] opens one backend per queue
//! — all of the interface's queues, or a list — and hands them out as
//! [`QueueHandle`]s; [`QueueSet::run_pinned`] runs a closure per queue, each
//! on a thread pinned to a CPU of a list. `PacketIo` stays per queue: the
//! handles share nothing on the packet path.
//!
//! How each backend scales:
//!
//! | backend | one per queue | how a packet finds its handle |
//! |---|---|---|
//! | AF_XDP (`Xdp`, `XdpSkb`) | socket bound to the queue, with its own fill/completion rings and UMEM (or view of a shared one) | one steering program for the interface, its XSKMAP keyed by queue id |
//! | AF_PACKET (`PacketV2`, `PacketV3`), io_uring (`Uring`) | socket on the interface | a `PACKET_FANOUT` group of all of them ([`FanoutMode::Hash`] unless the config names one) |
//!
//! With [`QueueSet::open`] each AF_XDP queue has a UMEM of its own
//! (`BackendConfig::frame_count` frames each): no frame is shared between
//! threads, so nothing on the packet path synchronises. With
//! [`QueueSet::open_shared`] the queues share one
//! [`SharedUmem`]: each socket runs on a view of it
//! that draws frames from a shared pool in batches (a lock per batch, none
//! per packet). The steering program is shared either way (an
//! `Arc<XskProgram>`) and detaches when the last handle drops.
//!
//! ```no_run
//! use pktio::backend::{BackendConfig, BackendKind, PacketIo};
//! use pktio::queues::{QueueSet, Queues};
//! # fn main() -> Result<(), pktio::queues::QueueError> {
//! let set = QueueSet::open(BackendKind::Xdp, &BackendConfig::new("eth0"), &Queues::All)?;
//! // One thread per queue, pinned to CPUs 2 and 3 in turn.
//! let counts = set.run_pinned(&[2, 3], |mut q| {
//!     let mut n = 0u64;
//!     for _ in 0..1000 {
//!         n += u64::from(q.backend_mut().rx_batch(64, |_pkt| {}).unwrap_or(0));
//!     }
//!     (q.queue(), n)
//! })?;
//! for (queue, n) in counts {
//!     println!("queue {queue}: {n} packets");
//! }
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use crate::backend::{
    AttachMode, Backend, BackendConfig, BackendError, BackendKind, BindMode, Fanout, FanoutMode,
    Steering, XdpBackend,
};
use crate::sys;
use crate::xdp::{SharedUmem, SteerOptions, UmemConfig, XskError, XskProgram};

/// Which queues of an interface to open. Parses (`str::parse`) from `all`
/// or a list of ids and ranges such as `0,2-3`, the way a `--queues`
/// option would take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queues {
    /// Every RX queue the device has (ethtool channels: the larger of the
    /// RX and combined counts).
    All,
    /// These queue ids, in this order.
    List(Vec<u32>),
}

impl std::str::FromStr for Queues {
    type Err = String;

    /// `all`, or a list of queue ids and ranges: `0,2`, `0-3`, `0-1,6`.
    fn from_str(s: &str) -> Result<Queues, String> {
        if s == "all" {
            return Ok(Queues::All);
        }
        let ids = pktio_host::idlist::parse_ids(s, "queue", "`all` or a list such as 0,2-3")?;
        Ok(Queues::List(ids))
    }
}

/// What can go wrong opening or running a [`QueueSet`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue list is empty, has a duplicate, or the device's queue count
    /// cannot be read; the message says which.
    #[error("invalid queue set: {0}")]
    Config(String),
    /// Opening the backend of one queue failed.
    #[error("cannot open queue {queue}")]
    Open {
        /// The queue.
        queue: u32,
        /// Why.
        #[source]
        source: BackendError,
    },
    /// Creating the shared UMEM of [`QueueSet::open_shared`] failed.
    #[error("cannot create the UMEM shared by the queues")]
    Umem(#[source] XskError),
    /// Attaching the interface's shared XDP steering program failed.
    #[error("cannot attach the XDP steering program shared by the queues")]
    Steer(#[source] XskError),
    /// Pinning a queue's thread to its CPU failed.
    #[error("cannot pin the thread of queue {queue} to CPU {cpu}")]
    Pin {
        /// The queue.
        queue: u32,
        /// The CPU.
        cpu: usize,
        /// Why (`sched_setaffinity`).
        #[source]
        source: std::io::Error,
    },
    /// A queue's closure panicked.
    #[error("the thread of queue {queue} panicked")]
    Panicked {
        /// The queue.
        queue: u32,
    },
}

/// One queue's backend, to move to the thread that runs it.
#[derive(Debug)]
pub struct QueueHandle {
    queue: u32,
    backend: Backend,
}

impl QueueHandle {
    /// The queue id (AF_XDP: the device queue the socket is bound to;
    /// AF_PACKET and io_uring: the id this member was opened for — the
    /// fanout group picks which packets it gets).
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The backend, to receive and send on.
    pub fn backend_mut(&mut self) -> &mut Backend {
        &mut self.backend
    }

    /// The backend, owned.
    pub fn into_backend(self) -> Backend {
        self.backend
    }
}

/// One backend per queue of an interface. See the [module docs](self).
#[derive(Debug)]
pub struct QueueSet {
    handles: Vec<QueueHandle>,
    shared: Option<SharedUmem>,
}

// Every handle moves to a thread of its own.
const _: fn() = || {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<QueueHandle>();
    sync::<XskProgram>();
};

impl QueueSet {
    /// Opens `kind` on each queue of `queues` of `cfg.interface` (`cfg.queue`
    /// is ignored; `cfg.direction` and the sizes apply to every queue).
    ///
    /// AF_XDP attaches one steering program for all the queues (unless
    /// `cfg.xdp_attach` is [`AttachMode::None`] or the direction has no RX),
    /// then binds one socket per queue with a UMEM of its own. AF_PACKET and
    /// io_uring open one socket per queue in the fanout group of
    /// `cfg.fanout`, or else a new [`FanoutMode::Hash`] group.
    /// [`BackendKind::Auto`] tries AF_XDP (native, then skb) and then
    /// AF_PACKET V3, stopping at the first kind that opens every queue.
    ///
    /// # Errors
    /// [`QueueError::Config`] for an empty or duplicate list, or when
    /// [`Queues::All`] cannot read the queue count; [`QueueError::Steer`]
    /// when the program cannot be attached; [`QueueError::Open`] naming the
    /// first queue that failed (the queues opened before it are closed).
    pub fn open(
        kind: BackendKind,
        cfg: &BackendConfig,
        queues: &Queues,
    ) -> Result<QueueSet, QueueError> {
        let ids = queue_ids(&cfg.interface, queues)?;
        match kind {
            BackendKind::Auto => open_auto(cfg, &ids),
            BackendKind::Xdp | BackendKind::XdpSkb => open_xdp(kind, cfg, &ids, None),
            BackendKind::PacketV2 | BackendKind::PacketV3 | BackendKind::Uring => {
                open_fanout(kind, cfg, &ids)
            }
        }
    }

    /// [`open`](Self::open) for AF_XDP (`kind` [`BackendKind::Xdp`] or
    /// [`BackendKind::XdpSkb`]) with one UMEM for all the queues: a
    /// [`SharedUmem`] of `cfg.frame_count` frames in all (default 4096),
    /// each queue's socket on a view of it, drawing its frames from the
    /// shared pool ([`shared_umem`](Self::shared_umem) tells where they
    /// are). Each queue aims at an equal share for its RX path.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`QueueError::Config`] for another kind,
    /// [`QueueError::Umem`] when the UMEM cannot be created.
    pub fn open_shared(
        kind: BackendKind,
        cfg: &BackendConfig,
        queues: &Queues,
    ) -> Result<QueueSet, QueueError> {
        if !matches!(kind, BackendKind::Xdp | BackendKind::XdpSkb) {
            return Err(QueueError::Config(format!(
                "a shared UMEM is an AF_XDP thing: use xdp or xdp-skb, not {kind}"
            )));
        }
        let ids = queue_ids(&cfg.interface, queues)?;
        let shared = SharedUmem::new(UmemConfig {
            frame_size: BackendConfig::or(cfg.frame_size, 4096),
            frame_count: BackendConfig::or(cfg.frame_count, 4096),
            ..UmemConfig::default()
        })
        .map_err(QueueError::Umem)?;
        open_xdp(kind, cfg, &ids, Some(&shared))
    }

    /// The UMEM the queues share, for sets from
    /// [`open_shared`](Self::open_shared): its pool's accounting shows
    /// where the frames are (clone it to keep it past the set).
    pub fn shared_umem(&self) -> Option<&SharedUmem> {
        self.shared.as_ref()
    }

    /// How many queues.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the set has no queue (never true for a set [`open`](Self::open) built).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The queue handles, to look at before handing them out.
    pub fn handles(&self) -> &[QueueHandle] {
        &self.handles
    }

    /// The queue handles, one per queue in the order asked for.
    pub fn into_handles(self) -> Vec<QueueHandle> {
        self.handles
    }

    /// Runs `f` once per queue, each on a thread of its own pinned to a CPU
    /// of `cpus` (queue `i` of the set on `cpus[i % cpus.len()]`; an empty
    /// list pins nothing), and returns the results in queue order once every
    /// thread is done. The threads start in the calling thread's network
    /// namespace.
    ///
    /// # Errors
    /// [`QueueError::Pin`] when a thread cannot be pinned (its closure does
    /// not run); [`QueueError::Panicked`] when a closure panicked. Every
    /// thread is joined before the first error is returned.
    pub fn run_pinned<F, R>(self, cpus: &[usize], f: F) -> Result<Vec<R>, QueueError>
    where
        F: Fn(QueueHandle) -> R + Sync,
        R: Send,
    {
        let f = &f;
        std::thread::scope(|s| {
            let threads: Vec<_> = self
                .handles
                .into_iter()
                .enumerate()
                .map(|(i, h)| {
                    let queue = h.queue;
                    let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
                    let t = s.spawn(move || {
                        if let Some(cpu) = cpu {
                            pktio_host::cpu::pin_current_thread(cpu)
                                .map_err(|source| QueueError::Pin { queue, cpu, source })?;
                        }
                        Ok(f(h))
                    });
                    (queue, t)
                })
                .collect();
            let results: Vec<_> = threads
                .into_iter()
                .map(|(queue, t)| t.join().unwrap_or(Err(QueueError::Panicked { queue })))
                .collect();
            results.into_iter().collect()
        })
    }
}

/// The queue ids `queues` names on `ifname`, checked.
fn queue_ids(ifname: &str, queues: &Queues) -> Result<Vec<u32>, QueueError> {
    let ids = match queues {
        Queues::All => (0..queue_count(ifname)?).collect(),
        Queues::List(l) => l.clone(),
    };
    if ids.is_empty() {
        return Err(QueueError::Config("no queue given".into()));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(QueueError::Config(format!("queue {} given twice", w[0])));
    }
    Ok(ids)
}

/// The device's RX queue count (ethtool channels).
fn queue_count(ifname: &str) -> Result<u32, QueueError> {
    let ch = crate::host::ethtool::channels(ifname).map_err(|e| {
        QueueError::Config(format!(
            "cannot read the queue count of {ifname} ({e}): give a list of queues"
        ))
    })?;
    match ch.rx.max(ch.combined) {
        0 => Err(QueueError::Config(format!(
            "{ifname} reports no RX or combined channels: give a list of queues"
        ))),
        n => Ok(n),
    }
}

/// Opens one backend per queue with `open`, naming the queue that failed.
fn open_each(
    ids: &[u32],
    open: impl Fn(u32) -> Result<Backend, BackendError>,
) -> Result<QueueSet, QueueError> {
    let handles = ids
        .iter()
        .map(|&queue| {
            let backend = open(queue).map_err(|source| QueueError::Open { queue, source })?;
            Ok(QueueHandle { queue, backend })
        })
        .collect::<Result<_, QueueError>>()?;
    Ok(QueueSet {
        handles,
        shared: None,
    })
}

/// AF_XDP: one steering program for the interface, one socket per queue,
/// each with a UMEM of its own or a view of `shared`.
fn open_xdp(
    kind: BackendKind,
    cfg: &BackendConfig,
    ids: &[u32],
    shared: Option<&SharedUmem>,
) -> Result<QueueSet, QueueError> {
    let (bind, attach) = match kind {
        BackendKind::XdpSkb => (BindMode::Copy, AttachMode::Skb),
        _ => (cfg.xdp_bind, cfg.xdp_attach),
    };
    let program = match attach {
        AttachMode::None => None,
        _ if !cfg.direction.rx() => None,
        _ => Some(Arc::new(steer(cfg, attach, ids)?)),
    };
    let share = shared.map(|u| u.config().frame_count / ids.len() as u32);
    let mut set = open_each(ids, |queue| {
        let mut c = cfg.clone();
        c.queue = queue;
        let view = match (shared, share) {
            (Some(u), Some(n)) => Some((u.view()?, n)),
            _ => None,
        };
        let steering = Steering {
            program: program.as_ref(),
            view,
        };
        let mut b = XdpBackend::open_steered(&c, bind, attach, steering)?;
        if kind == BackendKind::XdpSkb {
            b.set_kind(kind);
        }
        Ok(Backend::Xdp(b))
    })?;
    set.shared = shared.cloned();
    Ok(set)
}

/// Attaches the XSK program the queues share, its map sized for the
/// highest queue id.
fn steer(cfg: &BackendConfig, attach: AttachMode, ids: &[u32]) -> Result<XskProgram, QueueError> {
    let ifname = &cfg.interface;
    let ifindex = sys::xdp::if_nametoindex(ifname).map_err(|source| QueueError::Open {
        queue: ids[0],
        source: BackendError::NoInterface {
            ifname: ifname.clone(),
            source,
        },
    })?;
    // As a socket attaching its own: frags-aware for multi-buffer, and when
    // the MTU does not fit a page (drivers such as veth refuse a plain one).
    let mtu = sys::xdp::mtu(ifname).ok();
    let opts = SteerOptions {
        frags: cfg.multi_buffer || mtu.is_some_and(|m| m > 3000),
        ..SteerOptions::default()
    };
    let slots = ids.iter().max().map_or(1, |m| m + 1);
    XskProgram::attach_with(ifname, ifindex, attach, slots, &opts).map_err(QueueError::Steer)
}

/// AF_PACKET and io_uring: one socket per queue in one fanout group.
fn open_fanout(
    kind: BackendKind,
    cfg: &BackendConfig,
    ids: &[u32],
) -> Result<QueueSet, QueueError> {
    let mut cfg = cfg.clone();
    if cfg.fanout.is_none() {
        cfg.fanout = Some(Fanout::new(fresh_group(), FanoutMode::Hash));
    }
    // Every member is opened on queue 0: an AF_PACKET socket sees every
    // queue, and the fanout group does the splitting.
    cfg.queue = 0;
    open_each(ids, |_| Backend::open(kind, &cfg))
}

/// A fanout group id for a new group: the process id mixed with a counter,
/// so two sets of one process, and most sets of different processes, do not
/// meet in one group. (Members of a group must agree on mode and flags; a
/// clash is refused by the kernel, not silently merged.)
fn fresh_group() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (std::process::id() as u16).wrapping_mul(31).wrapping_add(n)
}

/// [`BackendKind::Auto`]: AF_XDP native, AF_XDP skb, AF_PACKET V3; stops at
/// a configuration mistake (every kind would refuse it).
fn open_auto(cfg: &BackendConfig, ids: &[u32]) -> Result<QueueSet, QueueError> {
    let mut last = None;
    for kind in [BackendKind::Xdp, BackendKind::XdpSkb, BackendKind::PacketV3] {
        let r = match kind {
            BackendKind::PacketV3 => open_fanout(kind, cfg, ids),
            _ => open_xdp(kind, cfg, ids, None),
        };
        match r {
            Ok(set) => return Ok(set),
            Err(e @ QueueError::Config(_)) => return Err(e),
            Err(QueueError::Open { queue, source }) if source.is_configuration() => {
                return Err(QueueError::Open { queue, source })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| QueueError::Config("no backend kind to try".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lists_are_checked() {
        let e = queue_ids("lo", &Queues::List(vec![])).unwrap_err();
        assert!(e.to_string().contains("no queue"), "{e}");
        let e = queue_ids("lo", &Queues::List(vec![0, 3, 0])).unwrap_err();
        assert!(e.to_string().contains("queue 0 given twice"), "{e}");
        assert_eq!(
            queue_ids("lo", &Queues::List(vec![2, 0])).unwrap(),
            vec![2, 0]
        );
    }

    #[test]
    fn queue_lists_parse_like_cpu_lists() {
        assert_eq!("all".parse(), Ok(Queues::All));
        assert_eq!("0-2,5".parse(), Ok(Queues::List(vec![0, 1, 2, 5])));
        assert_eq!("3".parse(), Ok(Queues::List(vec![3])));
        for bad in ["", "x", "2-1", "0,,1", "-1"] {
            assert!(bad.parse::<Queues>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_interface_has_no_queue_count() {
        let e = queue_ids("pktio-no-such0", &Queues::All).unwrap_err();
        assert!(e.to_string().contains("give a list of queues"), "{e}");
    }

    #[test]
    fn fanout_groups_differ_within_a_process() {
        assert_ne!(fresh_group(), fresh_group());
    }

    /// A set of real handles needs a lab: tests/multiqueue_*.rs run them.
    #[test]
    fn an_empty_set_runs_nothing() {
        let set = QueueSet {
            handles: Vec::new(),
            shared: None,
        };
        let r: Vec<u32> = set.run_pinned(&[0], |h| h.queue()).unwrap();
        assert!(r.is_empty());
    }
}
