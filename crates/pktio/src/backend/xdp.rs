//! [`XdpBackend`]: an AF_XDP socket and the UMEM it runs on, owned as one
//! value, behind [`PacketIo`].
//!
//! # Owning a UMEM and its socket together
//!
//! [`XskSocket<'u>`](crate::xdp::XskSocket) and [`Frame<'u>`] borrow their
//! [`Umem`], which is what keeps frames from outliving it. A backend has to
//! own both. Rather than a `Box<Umem>` and a lifetime-extended
//! `XskSocket<'static>` (unsafe, and easy to get wrong on drop), the pair
//! lives in a [`self_cell`]: the UMEM is the owner, the socket and the
//! frames waiting to go back to the fill ring are the dependent, built from
//! a `&Umem` and dropped before it. No `unsafe` is needed for that.
//!
//! The frame a closure sees is `frame.data_mut()` of a frame received in
//! this very call; it goes back to the fill ring (or on to the TX ring, for
//! `forward_batch`) before the call returns. Nothing of the UMEM escapes.
//!
//! # Frames and directions
//!
//! With RX only, every UMEM frame starts in the fill ring. With both
//! directions, half do and the other half stay in the free pool for
//! `tx_batch`; received frames are topped up to that half after each
//! batch. Completed TX frames always go back to the free pool.
//!
//! # Multi-buffer
//!
//! With [`BackendConfig::multi_buffer`] the socket binds with `XDP_USE_SG`
//! and steers with a frags-aware program; a packet larger than one UMEM
//! frame then arrives as several descriptors. Every batch reads whole
//! packets ([`RxRing::receive_packets`](crate::xdp::RxRing::receive_packets)):
//! counts are of packets, bytes of whole packets, and every segment's frame
//! goes back to the fill ring. `rx_batch_segments` lends the segments as
//! they are; `rx_batch` and `forward_batch` lend a packet of several
//! segments as one slice, copied into a scratch buffer (and, to forward,
//! copied back); `tx_batch` lends a scratch buffer of the largest frame and
//! spreads what the closure wrote over as many frames as it needs.
//!
//! # Safety
//!
//! `XdpBackend` is `Send` by an `unsafe impl`: the UMEM is `!Sync` (it
//! counts frames in `Cell`s), so the socket and frames that borrow it are
//! `!Send`. Moving the whole group — owner and every borrower — to another
//! thread at once is sound, because no reference to the UMEM exists outside
//! the `XdpBackend`: the self-cell keeps them inside, the closures only see
//! `&mut [u8]`, and the accessors that lend a `&Umem` or `&XskSocket` tie it
//! to a borrow of the backend (which is not `Sync`, so that borrow cannot
//! cross threads).
//! A view of a [`SharedUmem`](crate::xdp::SharedUmem) is such a `Umem`
//! too: what it shares with other threads (the registered area and the
//! frame pool) is `Sync` and reached only through the pool's lock or
//! through chunks this view owns.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

use pktio_host::retry::BusyRetry;
use smallvec::SmallVec;

use super::{
    BackendConfig, BackendError, BackendInfo, BackendKind, BackendStats, Counters, Operation,
    PacketIo,
};
use super::{Direction, Forwarded};
use crate::xdp::{
    segments_for, Accounting, AttachMode, BindMode, BoundMode, Frame, Packet, SocketInfo, Umem,
    UmemConfig, XskError, XskProgram, XskSocket, XskSocketBuilder,
};

/// The socket and the frames waiting to go back to the fill ring.
#[derive(Debug)]
struct Parts<'u> {
    sock: XskSocket<'u>,
    stash: Vec<Frame<'u>>,
}

self_cell::self_cell!(
    struct Cell {
        owner: Umem,
        #[covariant]
        dependent: Parts,
    }
    impl {Debug}
);

/// AF_XDP behind [`PacketIo`]: one socket on one queue, with its own UMEM
/// and (for RX) its own XDP steering program, or the one the queues of a
/// [`QueueSet`](crate::queues::QueueSet) share.
///
/// It owns the [`Umem`] and the [`XskSocket`] that borrows it together (a
/// self-referential cell, no `unsafe`), and is `Send`: open it on one thread
/// and run it on another. With both directions, half the UMEM frames feed
/// the fill ring and half are kept for `tx_batch`.
#[derive(Debug)]
pub struct XdpBackend {
    cell: Cell,
    info: BackendInfo,
    c: Counters,
    /// Frames the RX path (fill ring, kernel, RX ring) should hold.
    rx_target: u32,
    direction: Direction,
    /// Multi-buffer: the largest frame (bytes) and the most frames it takes.
    multi: Option<MultiBuf>,
    /// The steering program this socket shares with the other queues of its
    /// interface ([`crate::queues`]); declared after `cell` so the socket
    /// closes first. `None`: the socket attached its own (or none).
    shared_program: Option<Arc<XskProgram>>,
}

/// What the queues of a [`QueueSet`](crate::queues::QueueSet) share,
/// given to [`XdpBackend::open_steered`]; the default shares nothing.
#[derive(Debug, Default)]
pub(crate) struct Steering<'a> {
    /// An XSK program already attached to the interface: the socket inserts
    /// itself in its map at `cfg.queue` and attaches nothing.
    pub(crate) program: Option<&'a Arc<XskProgram>>,
    /// A view of a [`SharedUmem`](crate::xdp::SharedUmem) to run on instead
    /// of a UMEM of its own, and this queue's share of its frames.
    pub(crate) view: Option<(Umem, u32)>,
}

/// What a multi-buffer backend needs besides the socket.
#[derive(Debug)]
struct MultiBuf {
    /// The largest frame the socket accepts (MTU + 14 or `max_frame`).
    max_frame: u32,
    /// UMEM frames the largest frame takes.
    max_segments: u32,
    /// Where a packet of several segments is copied to be lent as one slice.
    scratch: Vec<u8>,
}

// SAFETY: see the module's Safety section — the UMEM and every reference to
// it move together, and none is reachable from outside the backend without
// borrowing it.
unsafe impl Send for XdpBackend {}

impl XdpBackend {
    /// Opens AF_XDP on `cfg.interface` queue `cfg.queue` with the bind and
    /// attach modes of `cfg` (`xdp_bind`, `xdp_attach`).
    ///
    /// Kernel calls: those of [`Umem::new`] and
    /// [`XskSocketBuilder::build`](crate::xdp::XskSocketBuilder::build)
    /// (kernel 5.9 for the steering program's `bpf_link`).
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] for a fanout (AF_XDP splits traffic by
    /// queue); [`BackendError::Xsk`] otherwise (see [`XskError`]).
    pub fn open(cfg: &BackendConfig) -> Result<XdpBackend, BackendError> {
        Self::open_with(cfg, cfg.xdp_bind, cfg.xdp_attach)
    }

    /// [`open`](Self::open) with explicit bind and attach modes (the auto
    /// ladder's steps).
    pub fn open_with(
        cfg: &BackendConfig,
        bind: BindMode,
        attach: AttachMode,
    ) -> Result<XdpBackend, BackendError> {
        Self::open_steered(cfg, bind, attach, Steering::default())
    }

    /// [`open_with`](Self::open_with), with what a
    /// [`QueueSet`](crate::queues::QueueSet) shares between its queues (see
    /// [`Steering`]).
    pub(crate) fn open_steered(
        cfg: &BackendConfig,
        bind: BindMode,
        attach: AttachMode,
        steering: Steering<'_>,
    ) -> Result<XdpBackend, BackendError> {
        let program = steering.program;
        cfg.check_common()?;
        if cfg.fanout.is_some() {
            return Err(BackendError::Unsupported {
                backend: BackendKind::Xdp,
                operation: Operation::Fanout,
                why: Some("AF_XDP splits traffic by queue: open one backend per queue"),
            });
        }
        if cfg.qdisc_bypass {
            return Err(BackendError::Unsupported {
                backend: BackendKind::Xdp,
                operation: Operation::QdiscBypass,
                why: Some("AF_XDP TX never goes through a qdisc"),
            });
        }
        let dir = cfg.direction;
        let ucfg = UmemConfig {
            frame_size: BackendConfig::or(cfg.frame_size, 4096),
            frame_count: BackendConfig::or(cfg.frame_count, 4096),
            ..UmemConfig::default()
        };
        let ring = BackendConfig::or(cfg.ring_size, 2048);
        let (umem, frames) = match steering.view {
            Some((view, frames)) => (view, frames),
            None => {
                let frames = ucfg.frame_count;
                (Umem::new(ucfg).map_err(BackendError::Xsk)?, frames)
            }
        };
        // A TX-only socket attaches no program: it would steer the queue's
        // traffic into a socket that cannot receive.
        let attach = if dir.rx() { attach } else { AttachMode::None };
        let builder = XskSocket::builder(&cfg.interface)
            .queue(cfg.queue)
            .rx_size(if dir.rx() { ring } else { 0 })
            .tx_size(if dir.tx() { ring } else { 0 })
            .bind_mode(bind)
            .attach_mode(attach)
            .need_wakeup(cfg.need_wakeup)
            .busy_poll(cfg.busy_poll)
            .tx_skb_budget(cfg.tx_skb_budget)
            .multi_buffer(cfg.multi_buffer)
            // The fill ring is populated before the socket is steered to.
            .prefill(rx_target(dir, frames));
        let builder = match program {
            Some(p) if dir.rx() => builder.program(p),
            _ => builder,
        };
        let cell = Cell::try_new(umem, |u| {
            let sock = match build_retrying_busy(&builder, u) {
                // XDP_MAX_TX_SKB_BUDGET is a tuning (kernel 6.17): a kernel
                // without it sends with its default.
                Err(XskError::Sys {
                    op: "tx skb budget",
                    ..
                }) if builder.has_tx_skb_budget() => {
                    build_retrying_busy(&builder.clone().tx_skb_budget(None), u)?
                }
                r => r?,
            };
            Ok::<_, XskError>(Parts {
                sock,
                stash: Vec::new(),
            })
        })?;
        let rx_target = rx_target(dir, frames);
        let si = cell.borrow_dependent().sock.info().clone();
        let per_frame = cell.borrow_owner().max_packet();
        let multi = si.multi_buffer.then(|| {
            // A frame size the socket did not learn (no MTU) is taken as
            // what the kernel's segment limit allows.
            let max_frame = match si.max_frame {
                0 => per_frame * cell.borrow_dependent().sock.max_segments(),
                m => m,
            };
            MultiBuf {
                max_frame,
                max_segments: segments_for(max_frame, per_frame),
                scratch: Vec::new(),
            }
        });
        let kind = BackendKind::Xdp;
        let mut reasons: Vec<String> = Vec::new();
        reasons.extend(si.mode_reason.clone());
        reasons.extend(si.attach_reason.clone());
        // A shared program is ours too (the queue set attached it).
        let shared = program.filter(|_| dir.rx());
        reasons.extend(shared.and_then(|p| p.mode_reason().map(str::to_owned)));
        let info = BackendInfo {
            kind,
            interface: si.ifname.clone(),
            ifindex: si.ifindex,
            queue: Some(si.queue),
            direction: dir,
            zero_copy: si.mode == BoundMode::ZeroCopy,
            mode: match &multi {
                Some(m) => format!(
                    "{} (driver {}), multi-buffer (frames up to {} B in up to {} segments)",
                    si.mode, si.driver, m.max_frame, m.max_segments
                ),
                None => format!("{} (driver {})", si.mode, si.driver),
            },
            attach: si.attach.or(shared.map(|p| p.mode())),
            rings: format!(
                "UMEM {frames} x {} B, RX {} / TX {} / fill {} / completion {}",
                cell.borrow_owner().frame_size(),
                si.rings[0],
                si.rings[1],
                si.rings[2],
                si.rings[3]
            ),
            reasons,
            skipped: Vec::new(),
        };
        let mut b = XdpBackend {
            cell,
            info,
            c: Counters::default(),
            rx_target,
            direction: dir,
            multi,
            shared_program: shared.cloned(),
        };
        if dir.rx() {
            // `prefill` already put what the fill ring holds; top up to the
            // target (a fill ring smaller than the target leaves the rest for
            // `refill`), never beyond it: the other frames are for TX.
            b.cell.with_dependent_mut(|umem, p| {
                let on_path = umem.accounting().rx_path;
                p.sock.fill_from_pool(rx_target.saturating_sub(on_path))
            })?;
        }
        Ok(b)
    }

    pub(crate) fn set_kind(&mut self, kind: BackendKind) {
        self.info.kind = kind;
    }

    pub(crate) fn info_mut(&mut self) -> &mut BackendInfo {
        &mut self.info
    }

    /// What the socket got (mode, attach, driver, rings).
    pub fn socket_info(&self) -> &SocketInfo {
        self.cell.borrow_dependent().sock.info()
    }

    /// Where the UMEM's frames are (free pool, application, RX path, TX
    /// path); `unaccounted()` is 0 unless a frame leaked.
    pub fn accounting(&self) -> Accounting {
        self.cell.borrow_owner().accounting()
    }

    /// Checks the frame accounting of the UMEM (debug builds check every
    /// frame's place too).
    pub fn check_accounting(&self) -> Result<Accounting, String> {
        self.cell.borrow_owner().check_accounting()
    }

    /// Why receiving cannot go on, if the steering program this backend
    /// attached was detached behind its back: its link then reports no
    /// interface (`bpf(BPF_OBJ_GET_INFO_BY_FD)`).
    pub fn program_detached(&self) -> Option<&'static str> {
        let sock = &self.cell.borrow_dependent().sock;
        let prog = sock.program().or(self.shared_program.as_deref())?;
        match prog.link().info() {
            Ok(info) if info.ifindex.is_none() => Some(
                "the XDP steering program was detached by someone else (bpf_link detached); \
                 nothing reaches the socket any more",
            ),
            _ => None,
        }
    }

    fn unsupported(&self, operation: Operation) -> BackendError {
        BackendError::Unsupported {
            backend: self.info.kind,
            operation,
            why: Some(match self.direction {
                Direction::Rx => "it was opened for RX only",
                Direction::Tx => "it was opened for TX only",
                Direction::Both => "it has no such ring",
            }),
        }
    }
}

/// Gives the stashed frames back to the fill ring and tops the RX path up
/// to `target` frames from the free pool.
/// Frames handed back to the fill ring at once. Publishing a handful at a
/// time makes the kernel (on the CPU that runs the device's NAPI) refresh its
/// view of the fill ring, a cache miss on a line we just wrote, every few
/// packets; in batches it is once per batch. The frames held back are a
/// small share of the UMEM.
const REFILL_BATCH: usize = 64;

fn refill(umem: &Umem, p: &mut Parts<'_>, target: u32) {
    let Some(fill) = p.sock.fill() else { return };
    if p.stash.len() < REFILL_BATCH && umem.accounting().rx_path >= target / 2 {
        return;
    }
    fill.fill_from(&mut p.stash);
    let on_path = umem.accounting().rx_path + p.stash.len() as u32;
    if on_path < target {
        fill.fill_from_pool(target - on_path);
    }
}

/// Builds the socket, retrying while its bind is answered `EBUSY`: the
/// kernel releases a queue some milliseconds after its previous socket
/// closed (pktio-host's [`BusyRetry::QUEUE_RELEASE`] policy).
fn build_retrying_busy<'u>(
    builder: &XskSocketBuilder<'_>,
    umem: &'u Umem,
) -> Result<XskSocket<'u>, XskError> {
    let bind_busy = |e: &XskError| matches!(e, XskError::Sys { op: "bind", source, .. } if source.errno() == Some(libc::EBUSY));
    BusyRetry::QUEUE_RELEASE.run(bind_busy, || builder.clone().build(umem))
}

/// The frames kept on the receive path (fill ring, kernel, RX ring): all
/// of them for RX only, half when the socket also transmits.
fn rx_target(dir: Direction, frames: u32) -> u32 {
    match dir {
        Direction::Rx => frames,
        Direction::Both => frames / 2,
        Direction::Tx => 0,
    }
}

fn missing(ring: &'static str) -> BackendError {
    BackendError::Xsk(XskError::Config(format!(
        "the socket has no {ring} ring (it shares its queue's rings with another socket)"
    )))
}

/// The segments as one slice: the only segment itself, or a copy of all
/// of them in `scratch`.
fn linear<'a>(segs: &'a mut [&mut [u8]], scratch: &'a mut Vec<u8>) -> &'a mut [u8] {
    if let [one] = segs {
        return one;
    }
    scratch.clear();
    for s in segs.iter() {
        scratch.extend_from_slice(s);
    }
    scratch
}

impl XdpBackend {
    /// The multi-buffer receive path: whole packets, each lent as its
    /// segments; every segment's frame goes back to the fill ring.
    fn rx_packets<F: FnMut(&mut [&mut [u8]])>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        if !self.direction.rx() {
            return Err(self.unsupported(Operation::Receive));
        }
        let target = self.rx_target;
        let c = &mut self.c;
        self.cell.with_dependent_mut(|umem, p| {
            let rx = p.sock.rx().ok_or_else(|| missing("RX"))?;
            let mut n = 0;
            let mut batch = rx.receive_packets(max);
            for mut pkt in batch.by_ref() {
                let len = pkt.len();
                let mut segs: SmallVec<[&mut [u8]; 4]> = pkt
                    .segments_mut()
                    .iter_mut()
                    .map(|s| s.data_mut())
                    .collect();
                f(&mut segs);
                drop(segs);
                n += 1;
                c.rx_bytes += len as u64;
                p.stash.extend(pkt.into_frames());
            }
            // A packet whose last descriptor never came: its frames went
            // back to the pool, and refill() puts them on the fill ring.
            c.invalid += u64::from(batch.truncated());
            drop(batch);
            c.rx_packets += u64::from(n);
            refill(umem, p, target);
            if n == 0 {
                p.sock.wake_rx()?;
            }
            Ok(n)
        })
    }

    /// The multi-buffer TX path: the closure writes into a scratch buffer
    /// of the largest frame; the packet is copied into as many UMEM frames
    /// as it needs and queued as one packet.
    fn tx_packets<F: FnMut(&mut [u8]) -> Option<usize>>(
        &mut self,
        max: u32,
        mut f: F,
        scratch: &mut Vec<u8>,
        (max_frame, max_segs): (u32, u32),
    ) -> Result<u32, BackendError> {
        let c = &mut self.c;
        self.cell.with_dependent_mut(|umem, p| {
            let parts = p.sock.parts();
            let tx = parts.tx.ok_or_else(|| missing("TX"))?;
            let comp = parts.completion.ok_or_else(|| missing("completion"))?;
            comp.reap(u32::MAX);
            let mut batch = tx.reserve(max.saturating_mul(max_segs).min(umem.free_frames()));
            if batch.remaining() < max_segs && max > 0 {
                c.tx_ring_full += 1;
            }
            scratch.resize(max_frame as usize, 0);
            let (mut n, mut too_long) = (0u32, None);
            while n < max && batch.remaining() >= max_segs && umem.free_frames() >= max_segs {
                let len = match f(scratch) {
                    None | Some(0) => break,
                    Some(len) if len > scratch.len() => {
                        too_long = Some(BackendError::PacketTooLong {
                            len,
                            capacity: scratch.len(),
                        });
                        break;
                    }
                    Some(len) => len,
                };
                // Cannot run out: max_segs frames are free.
                let pkt = Packet::from_bytes(umem, &scratch[..len])?;
                if batch.push_packet(pkt).is_err() {
                    break; // the packet's frames went back to the pool
                }
                n += 1;
                c.tx_bytes += len as u64;
            }
            batch.commit();
            c.tx_packets += u64::from(n);
            p.sock.kick_tx()?;
            match too_long {
                Some(e) => Err(e),
                None => Ok(n),
            }
        })
    }

    /// The multi-buffer forward path: whole packets; one of several
    /// segments is lent as one slice (a copy) and copied back if it goes out.
    fn forward_packets<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        mut f: F,
        scratch: &mut Vec<u8>,
        max_segs: u32,
    ) -> Result<Forwarded, BackendError> {
        let target = self.rx_target;
        let c = &mut self.c;
        self.cell.with_dependent_mut(|umem, p| {
            let parts = p.sock.parts();
            let rx = parts.rx.ok_or_else(|| missing("RX"))?;
            let tx = parts.tx.ok_or_else(|| missing("TX"))?;
            let comp = parts.completion.ok_or_else(|| missing("completion"))?;
            comp.reap(u32::MAX);
            let mut out = tx.reserve(max.saturating_mul(max_segs));
            let room = out.remaining() / max_segs;
            if room == 0 && max > 0 {
                c.tx_ring_full += 1;
            }
            let mut r = Forwarded::default();
            let mut batch = rx.receive_packets(room.min(max));
            for mut pkt in batch.by_ref() {
                r.rx += 1;
                let len = pkt.len() as u64;
                c.rx_bytes += len;
                let keep = match pkt.segments_mut() {
                    [one] => f(one.data_mut()),
                    segs => {
                        scratch.clear();
                        for s in segs.iter() {
                            scratch.extend_from_slice(s.data());
                        }
                        let keep = f(scratch);
                        if keep {
                            let mut at = 0;
                            for s in segs.iter_mut() {
                                let d = s.data_mut();
                                d.copy_from_slice(&scratch[at..at + d.len()]);
                                at += d.len();
                            }
                        }
                        keep
                    }
                };
                if !keep {
                    p.stash.extend(pkt.into_frames());
                    continue;
                }
                match out.push_packet(pkt) {
                    Ok(()) => {
                        r.tx += 1;
                        c.tx_bytes += len;
                    }
                    Err(pkt) => p.stash.extend(pkt.into_frames()),
                }
            }
            c.invalid += u64::from(batch.truncated());
            drop(batch);
            out.commit();
            let left_in_ring = tx.in_ring();
            c.rx_packets += u64::from(r.rx);
            c.tx_packets += u64::from(r.tx);
            refill(umem, p, target);
            // Also kick while the kernel leaves descriptors in the ring: in
            // copy mode it takes them only in sendto(), and one that
            // answered EBUSY (the device's queue stopped) has to be retried,
            // or a full ring with nothing new to push would stall for good.
            if r.tx > 0 || left_in_ring > 0 {
                p.sock.kick_tx()?;
            }
            if r.rx == 0 {
                p.sock.wake_rx()?;
            }
            Ok(r)
        })
    }
}

impl PacketIo for XdpBackend {
    fn rx_batch<F: FnMut(&mut [u8])>(&mut self, max: u32, mut f: F) -> Result<u32, BackendError> {
        if let Some(m) = self.multi.as_mut() {
            let mut scratch = std::mem::take(&mut m.scratch);
            let r = self.rx_packets(max, |segs| f(linear(segs, &mut scratch)));
            if let Some(m) = self.multi.as_mut() {
                m.scratch = scratch;
            }
            return r;
        }
        if !self.direction.rx() {
            return Err(self.unsupported(Operation::Receive));
        }
        let target = self.rx_target;
        let c = &mut self.c;
        self.cell.with_dependent_mut(|umem, p| {
            let rx = p.sock.rx().ok_or_else(|| missing("RX"))?;
            let mut n = 0;
            for mut frame in rx.receive(max) {
                f(frame.data_mut());
                n += 1;
                c.rx_bytes += frame.len() as u64;
                p.stash.push(frame);
            }
            c.rx_packets += n as u64;
            refill(umem, p, target);
            if n == 0 {
                p.sock.wake_rx()?;
            }
            Ok(n)
        })
    }

    fn rx_batch_segments<F: FnMut(&mut [&mut [u8]])>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        if self.multi.is_some() {
            return self.rx_packets(max, f);
        }
        self.rx_batch(max, |p| f(&mut [p]))
    }

    fn tx_batch<F: FnMut(&mut [u8]) -> Option<usize>>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        if !self.direction.tx() {
            return Err(self.unsupported(Operation::Transmit));
        }
        if let Some(m) = self.multi.as_mut() {
            let mut scratch = std::mem::take(&mut m.scratch);
            let geometry = (m.max_frame, m.max_segments);
            let r = self.tx_packets(max, f, &mut scratch, geometry);
            if let Some(m) = self.multi.as_mut() {
                m.scratch = scratch;
            }
            return r;
        }
        let c = &mut self.c;
        self.cell.with_dependent_mut(|umem, p| {
            let parts = p.sock.parts();
            let tx = parts.tx.ok_or_else(|| missing("TX"))?;
            let comp = parts.completion.ok_or_else(|| missing("completion"))?;
            comp.reap(u32::MAX);
            let mut batch = tx.reserve(max.min(umem.free_frames()));
            if batch.remaining() == 0 && max > 0 {
                c.tx_ring_full += 1;
            }
            let mut too_long = None;
            while batch.remaining() > 0 {
                let Some(mut frame) = umem.alloc() else { break };
                let buf = frame.buffer_mut();
                let capacity = buf.len();
                let len = match f(buf) {
                    None | Some(0) => break,
                    Some(len) if len > capacity => {
                        too_long = Some(BackendError::PacketTooLong { len, capacity });
                        break;
                    }
                    Some(len) => len,
                };
                if frame.set_len(len as u32).is_err() || batch.push(frame).is_err() {
                    break;
                }
                c.tx_bytes += len as u64;
            }
            let n = batch.commit();
            c.tx_packets += n as u64;
            p.sock.kick_tx()?;
            match too_long {
                Some(e) => Err(e),
                None => Ok(n),
            }
        })
    }

    fn forward_batch<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<Forwarded, BackendError> {
        if self.direction != Direction::Both {
            return Err(self.unsupported(Operation::Forward));
        }
        if let Some(m) = self.multi.as_mut() {
            let mut scratch = std::mem::take(&mut m.scratch);
            let segs = m.max_segments;
            let r = self.forward_packets(max, f, &mut scratch, segs);
            if let Some(m) = self.multi.as_mut() {
                m.scratch = scratch;
            }
            return r;
        }
        let target = self.rx_target;
        let c = &mut self.c;
        self.cell.with_dependent_mut(|umem, p| {
            let parts = p.sock.parts();
            let rx = parts.rx.ok_or_else(|| missing("RX"))?;
            let tx = parts.tx.ok_or_else(|| missing("TX"))?;
            let comp = parts.completion.ok_or_else(|| missing("completion"))?;
            comp.reap(u32::MAX);
            let mut out = tx.reserve(max);
            if out.remaining() == 0 && max > 0 {
                c.tx_ring_full += 1;
            }
            let mut r = Forwarded::default();
            // Zero-copy: the received frame itself goes on the TX ring.
            for mut frame in rx.receive(out.remaining()) {
                r.rx += 1;
                c.rx_bytes += frame.len() as u64;
                if f(frame.data_mut()) {
                    let len = frame.len() as u64;
                    match out.push(frame) {
                        Ok(()) => {
                            r.tx += 1;
                            c.tx_bytes += len;
                        }
                        Err(frame) => p.stash.push(frame), // empty: drop it
                    }
                } else {
                    p.stash.push(frame);
                }
            }
            out.commit();
            let left_in_ring = tx.in_ring();
            c.rx_packets += r.rx as u64;
            c.tx_packets += r.tx as u64;
            refill(umem, p, target);
            // Also kick while the kernel leaves descriptors in the ring: in
            // copy mode it takes them only in sendto(), and one that
            // answered EBUSY (the device's queue stopped) has to be retried,
            // or a full ring with nothing new to push would stall for good.
            if r.tx > 0 || left_in_ring > 0 {
                p.sock.kick_tx()?;
            }
            if r.rx == 0 {
                p.sock.wake_rx()?;
            }
            Ok(r)
        })
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        if !self.direction.tx() {
            return Ok(());
        }
        self.cell.with_dependent_mut(|_, p| {
            p.sock.kick_tx()?;
            if let Some(comp) = p.sock.completion() {
                comp.reap(u32::MAX);
            }
            Ok(())
        })
    }

    fn wait(&mut self, timeout_ms: i32) -> Result<bool, BackendError> {
        if !self.direction.rx() {
            return Err(self.unsupported(Operation::Receive));
        }
        self.cell.with_dependent_mut(|_, p| {
            if p.sock.rx().is_some_and(|rx| rx.pending() > 0) {
                return Ok(true);
            }
            Ok(p.sock.poll_rx(timeout_ms)?)
        })
    }

    fn stats(&self) -> Result<BackendStats, BackendError> {
        let p = self.cell.borrow_dependent();
        let k = p.sock.statistics()?;
        let kicks = p.sock.kicks();
        let mut s = self.c.stats();
        s.kernel_drops = k.rx_dropped + k.rx_ring_full;
        s.rx_ring_full = k.rx_ring_full;
        s.fill_ring_empty = k.rx_fill_ring_empty_descs;
        s.invalid += k.rx_invalid_descs + k.tx_invalid_descs;
        s.tx_in_flight = self.cell.borrow_owner().accounting().tx_path as u64;
        s.tx_kicks = kicks.tx_kicks;
        s.tx_kick_busy = kicks.tx_kick_busy;
        s.rx_wakeups = kicks.rx_wakeups;
        Ok(s)
    }

    fn describe(&self) -> &BackendInfo {
        &self.info
    }
}

impl AsFd for XdpBackend {
    /// The AF_XDP socket (poll it for `POLLIN`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.cell.borrow_dependent().sock.fd()
    }
}

impl AsRawFd for XdpBackend {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::linear;

    #[test]
    fn one_segment_is_lent_as_is_several_are_copied_in_order() {
        let mut scratch = Vec::new();
        let mut a = [1u8, 2, 3];
        {
            let mut segs = [&mut a[..]];
            let s = linear(&mut segs, &mut scratch);
            s[0] = 9;
        }
        assert_eq!(a, [9, 2, 3], "the only segment itself, not a copy");
        assert!(scratch.is_empty());
        let (mut x, mut y, mut z) = ([1u8, 2], [3u8], [4u8, 5, 6]);
        let mut segs = [&mut x[..], &mut y[..], &mut z[..]];
        assert_eq!(linear(&mut segs, &mut scratch), [1, 2, 3, 4, 5, 6]);
        // Reused: cleared, not appended to.
        let mut segs = [&mut y[..], &mut x[..]];
        assert_eq!(linear(&mut segs, &mut scratch), [3, 1, 2]);
    }
}
