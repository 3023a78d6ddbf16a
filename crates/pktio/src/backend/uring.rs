//! [`UringBackend`]: io_uring on an AF_PACKET socket behind [`PacketIo`],
//! built from the pieces of [`crate::uring`] (the buffer ring, the send
//! pool, the push helpers) and an AF_PACKET [`PacketSocket`].
//!
//! # How it runs
//!
//! - The AF_PACKET socket (bound to the interface, `ETH_P_ALL`, with the
//!   same options as the ring backends: fanout, qdisc bypass, ignore
//!   outgoing) is registered as fixed file 0.
//! - RX: a buffer ring of `frame_count` buffers of `frame_size` bytes
//!   (group 0) and a single `IORING_OP_RECV` with `IORING_RECV_MULTISHOT`
//!   that stays armed; each packet is one CQE naming its buffer. Packets
//!   wait in the socket's receive queue until the owning thread next enters
//!   the ring, so that queue is sized like the buffer ring
//!   (`SO_RCVBUFFORCE`, `frame_count * frame_size` bytes). When the
//!   ring runs dry the kernel ends the receive with `ENOBUFS`; it is
//!   re-armed after buffers are recycled (counted in
//!   [`BackendStats::rx_rearms`]).
//! - TX: `frame_count` send buffers; `tx_batch` queues one `IORING_OP_SEND`
//!   per packet and submits the batch with one `io_uring_enter`.
//! - The ring is created with `IORING_SETUP_SINGLE_ISSUER |
//!   IORING_SETUP_DEFER_TASKRUN` (kernel 6.1) and `IORING_SETUP_R_DISABLED`,
//!   and enabled by the first batch call: the backend can be opened on one
//!   thread and used on another, but after its first use it belongs to that
//!   thread (the kernel answers `EEXIST` otherwise:
//!   [`UringError::WrongThread`]). Older kernels get a plain ring.
//! - [`as_fd`](std::os::fd::AsFd::as_fd) is an eventfd registered with the
//!   ring on first use, so async runtimes can wait for completions.

use std::cell::{Cell, OnceCell};
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, types, IoUring, Probe};

use super::{
    BackendConfig, BackendError, BackendInfo, BackendKind, BackendStats, Counters, Direction,
    Forwarded, Operation, PacketIo,
};
use crate::error::SysError;
use crate::packet::{KernelStats, PacketSocket};
use crate::uring::ring::{self, BufRing, TxPool};
use crate::uring::{setup_error, UringError};

/// CQE tags (`user_data`): the receive, and sends (tag | slot).
const TAG_RECV: u64 = 1 << 62;
const TAG_SEND: u64 = 1 << 61;
const TAG_MASK: u64 = TAG_RECV | TAG_SEND;
/// The buffer group of the receive ring.
const BGID: u16 = 0;

/// io_uring on AF_PACKET behind [`PacketIo`]: see the [`crate::uring`]
/// module docs for when io_uring is unavailable, and `backend/uring.rs`
/// for how it runs.
pub struct UringBackend {
    // Field order is drop order: the ring (and its registrations) goes
    // first, then the memory it used, then the socket.
    ring: IoUring,
    bufs: Option<BufRing>,
    tx: Option<TxPool>,
    sock: PacketSocket,
    evfd: OnceCell<Option<OwnedFd>>,
    /// Packets received (buffer id, length) and not yet shown to the caller.
    pending: VecDeque<(u16, u32)>,
    /// Whether the ring was enabled and the receive first armed.
    started: bool,
    /// Whether the multishot receive is armed.
    armed: bool,
    /// Whether `IORING_SETUP_R_DISABLED` is in effect until started.
    disabled: bool,
    info: BackendInfo,
    c: Counters,
    kernel: Cell<KernelStats>,
}

impl UringBackend {
    /// Opens an AF_PACKET socket on `cfg.interface`, an io_uring
    /// (`io_uring_setup`), registers the socket (`IORING_REGISTER_FILES`)
    /// and, for RX, a buffer ring (`IORING_REGISTER_PBUF_RING`). The receive
    /// is armed by the first batch call. Needs kernel 6.0 (multishot
    /// receive); 6.1 for the single-issuer/deferred-task-run ring.
    ///
    /// # Errors
    /// [`UringError::Unavailable`] naming the cause (sysctl, sandbox, not
    /// built); [`UringError::MissingFeature`]; the socket's
    /// [`PacketError`](crate::packet::PacketError)s (no interface, privilege,
    /// fanout clash).
    pub fn open(cfg: &BackendConfig) -> Result<UringBackend, BackendError> {
        cfg.check_common()?;
        cfg.refuse_multi_buffer(BackendKind::Uring)?;
        super::packet::refuse_queue(cfg, BackendKind::Uring)?;
        let dir = cfg.direction;
        let buf_size = BackendConfig::or(cfg.frame_size, 2048);
        let count = BackendConfig::or(cfg.frame_count, 1024);
        if !(64..=65535).contains(&buf_size) {
            return Err(BackendError::Config(format!(
                "io_uring buffer size {buf_size} out of range: use 64..=65535"
            )));
        }
        if dir.rx() && (!count.is_power_of_two() || count > 32768) {
            return Err(BackendError::Config(format!(
                "io_uring receive buffers: {count} is not a power of two up to 32768 \
                 (a provided-buffer ring's size)"
            )));
        }
        let sock = PacketSocket::open(&cfg.interface)?;
        let sys = |op: &'static str, call: &'static str| {
            let ifname = cfg.interface.clone();
            move |e: std::io::Error| {
                BackendError::Uring(UringError::Sys {
                    op,
                    ifname,
                    source: SysError { call, source: e },
                })
            }
        };
        let sq = (cfg.batch.max(64)).next_power_of_two().min(4096) * 2;
        let cq = (count * 2).max(sq * 2).next_power_of_two();
        let mut reasons = Vec::new();
        let (ring, disabled) = match IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_r_disabled()
            .setup_cqsize(cq)
            .build(sq)
        {
            Ok(r) => (r, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                reasons.push(
                    "no IORING_SETUP_DEFER_TASKRUN (kernel < 6.1): completions run as task work"
                        .to_string(),
                );
                let r = IoUring::builder()
                    .setup_cqsize(cq)
                    .build(sq)
                    .map_err(setup_error)?;
                (r, false)
            }
            Err(e) => return Err(setup_error(e).into()),
        };
        // Multishot receive (6.0) arrived with IORING_OP_SEND_ZC (6.0):
        // probing for the latter tells whether the kernel has the former.
        let mut probe = Probe::new();
        if ring.submitter().register_probe(&mut probe).is_ok()
            && (!probe.is_supported(opcode::RecvMulti::CODE)
                || !probe.is_supported(opcode::SendZc::CODE))
        {
            return Err(UringError::MissingFeature {
                feature: "multishot receive (IORING_RECV_MULTISHOT)",
                since: "6.0",
                source: None,
            }
            .into());
        }
        ring.submitter()
            .register_files(&[sock.as_fd().as_raw_fd()])
            .map_err(sys(
                "register the socket",
                "io_uring_register(IORING_REGISTER_FILES)",
            ))?;
        let bufs = match dir.rx() {
            true => {
                let b = BufRing::new(count as u16, buf_size).map_err(|source| UringError::Sys {
                    op: "map the receive buffers",
                    ifname: cfg.interface.clone(),
                    source,
                })?;
                b.register_unowned(&ring, BGID).map_err(|e| {
                    if e.raw_os_error() == Some(libc::EINVAL) {
                        BackendError::Uring(UringError::MissingFeature {
                            feature: "provided-buffer rings (IORING_REGISTER_PBUF_RING)",
                            since: "5.19",
                            source: Some(SysError {
                                call: "io_uring_register(IORING_REGISTER_PBUF_RING)",
                                source: e,
                            }),
                        })
                    } else {
                        (sys(
                            "register the buffer ring",
                            "io_uring_register(IORING_REGISTER_PBUF_RING)",
                        ))(e)
                    }
                })?;
                Some(b)
            }
            false => None,
        };
        let tx = match dir.tx() {
            true => Some(
                TxPool::new(count, buf_size).map_err(|source| UringError::Sys {
                    op: "map the send buffers",
                    ifname: cfg.interface.clone(),
                    source,
                })?,
            ),
            false => None,
        };
        if dir.rx() {
            // Packets wait in the socket's receive queue until this thread
            // next enters the ring (deferred task work): give the queue as
            // much room as the buffer ring, not the 208 KiB default.
            let want = count.saturating_mul(buf_size);
            if !sock.set_rcvbuf(want)? {
                reasons.push(format!(
                    "socket receive queue capped at net.core.rmem_max (no CAP_NET_ADMIN for \
                     SO_RCVBUFFORCE {want} B): bursts may be dropped"
                ));
            }
        }
        super::packet::configure(&sock, cfg, dir.rx(), &mut reasons)?;
        let mut rings = Vec::new();
        if let Some(b) = &bufs {
            rings.push(format!(
                "RX {} provided buffers x {} B",
                b.entries(),
                b.buf_size()
            ));
        }
        if let Some(t) = &tx {
            rings.push(format!("TX {} send buffers x {} B", t.count(), t.size()));
        }
        rings.push(format!("SQ {sq} / CQ {cq}"));
        let info = BackendInfo {
            kind: BackendKind::Uring,
            interface: cfg.interface.clone(),
            ifindex: sock.ifindex(),
            queue: None,
            direction: dir,
            zero_copy: false,
            mode: "multishot recv + send (copy)".into(),
            attach: None,
            rings: rings.join(", "),
            reasons,
            skipped: Vec::new(),
        };
        Ok(UringBackend {
            ring,
            pending: VecDeque::with_capacity(bufs.as_ref().map_or(0, |b| b.entries() as usize)),
            bufs,
            tx,
            sock,
            evfd: OnceCell::new(),
            started: false,
            armed: false,
            disabled,
            info,
            c: Counters::default(),
            kernel: Cell::new(Default::default()),
        })
    }

    pub(crate) fn info_mut(&mut self) -> &mut BackendInfo {
        &mut self.info
    }

    /// The AF_PACKET socket under the ring.
    pub fn socket(&self) -> &PacketSocket {
        &self.sock
    }

    fn sys_err(&self, op: &'static str, call: &'static str, e: std::io::Error) -> BackendError {
        if e.raw_os_error() == Some(libc::EEXIST) && self.disabled {
            return UringError::WrongThread.into();
        }
        UringError::Sys {
            op,
            ifname: self.info.interface.clone(),
            source: SysError { call, source: e },
        }
        .into()
    }

    fn unsupported(&self, operation: Operation) -> BackendError {
        BackendError::Unsupported {
            backend: BackendKind::Uring,
            operation,
            why: Some(match self.info.direction {
                Direction::Rx => "it was opened for RX only",
                Direction::Tx => "it was opened for TX only",
                Direction::Both => "it has no such ring",
            }),
        }
    }

    /// Enables the ring on this thread and arms the receive (first use).
    fn start(&mut self) -> Result<(), BackendError> {
        if self.started {
            return Ok(());
        }
        if self.disabled {
            self.ring.submitter().register_enable_rings().map_err(|e| {
                self.sys_err(
                    "enable the ring",
                    "io_uring_register(IORING_REGISTER_ENABLE_RINGS)",
                    e,
                )
            })?;
        }
        self.started = true;
        if let Some(b) = self.bufs.as_mut() {
            b.publish();
            self.arm()?;
        }
        Ok(())
    }

    fn arm(&mut self) -> Result<(), BackendError> {
        ring::push_recv(&mut self.ring, BGID, TAG_RECV)
            .map_err(|e| self.sys_err("arm the receive", "io_uring_enter", e))?;
        self.armed = true;
        self.ring
            .submit()
            .map_err(|e| self.sys_err("arm the receive", "io_uring_enter", e))?;
        Ok(())
    }

    /// Runs deferred completions (one `io_uring_enter` with
    /// `IORING_ENTER_GETEVENTS`, no wait), submitting what is queued.
    fn enter(&mut self, wait: Option<Duration>) -> Result<(), BackendError> {
        let ts = types::Timespec::from(wait.unwrap_or(Duration::ZERO));
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.sys_err("wait for completions", "io_uring_enter", e)),
        }
    }

    /// Moves every posted completion where it belongs: received packets to
    /// `pending`, finished sends back to the pool.
    fn reap(&mut self) -> Result<(), BackendError> {
        let mut err = None;
        let mut rearm = false;
        for cqe in self.ring.completion() {
            let (tag, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            match tag & TAG_MASK {
                TAG_RECV => {
                    if !cqueue::more(flags) {
                        self.armed = false;
                    }
                    match (res, cqueue::buffer_select(flags)) {
                        (n, Some(bid)) if n >= 0 => admit(
                            &mut self.pending,
                            &mut self.c,
                            self.bufs.as_ref(),
                            bid,
                            n as u32,
                        ),
                        (n, None) if n >= 0 => {}
                        (e, _) if -e == libc::ENOBUFS => rearm = true,
                        (e, _) if -e == libc::ECANCELED => {}
                        (e, _)
                            if -e == libc::EINVAL
                                && self.c.rx_packets == 0
                                && self.pending.is_empty() =>
                        {
                            err.get_or_insert(BackendError::Uring(UringError::MissingFeature {
                                feature: "multishot receive on this socket (IORING_RECV_MULTISHOT)",
                                since: "6.0",
                                source: Some(SysError::from_errno("IORING_OP_RECV", libc::EINVAL)),
                            }));
                        }
                        (e, _) => {
                            err.get_or_insert(BackendError::Packet(
                                self.sock
                                    .gone_or("receive", SysError::from_errno("IORING_OP_RECV", -e)),
                            ));
                        }
                    }
                }
                TAG_SEND => {
                    let slot = (tag & !TAG_MASK) as u32;
                    if let Some(t) = self.tx.as_mut() {
                        t.complete(slot);
                    }
                    if res < 0 {
                        self.c.tx_errors += 1;
                    }
                }
                _ => {}
            }
        }
        if rearm {
            self.c.rx_rearms += 1;
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Re-arms the receive if it ended (buffers ran out), once buffers are back.
    fn rearm_if_needed(&mut self) -> Result<(), BackendError> {
        if !self.started || self.armed {
            return Ok(());
        }
        let Some(b) = self.bufs.as_mut() else {
            return Ok(());
        };
        // Only with a buffer back in the ring: else the receive would end
        // at once with ENOBUFS again.
        if self.pending.len() >= b.entries() as usize {
            return Ok(());
        }
        b.publish();
        self.arm()
    }

    /// Fills `pending` with what has arrived (one system call).
    fn poll_rx(&mut self) -> Result<(), BackendError> {
        self.enter(None)?;
        self.reap()?;
        self.rearm_if_needed()
    }

    fn evfd(&self) -> Option<BorrowedFd<'_>> {
        self.evfd.get().and_then(|f| f.as_ref()).map(|f| f.as_fd())
    }

    /// Shows up to `max` pending packets to `f` (`Some(slot)`: forward into
    /// that TX slot). Returns (received, sent).
    fn deliver<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        mut f: F,
        forward: bool,
    ) -> Result<Forwarded, BackendError> {
        let mut r = Forwarded::default();
        let Some(bufs) = self.bufs.as_mut() else {
            return Ok(r);
        };
        while r.rx < max {
            let Some(&(bid, len)) = self.pending.front() else {
                break;
            };
            let slot = if forward {
                match self.tx.as_mut().and_then(|t| t.take()) {
                    Some(s) => Some(s),
                    None => {
                        self.c.tx_ring_full += 1;
                        break;
                    }
                }
            } else {
                None
            };
            self.pending.pop_front();
            r.rx += 1;
            match bufs.buffer(bid, len) {
                Some(pkt) => {
                    self.c.rx_bytes += pkt.len() as u64;
                    let send = f(pkt);
                    if let (Some(s), Some(tx)) = (slot, self.tx.as_mut()) {
                        let mut queued = false;
                        if send && !pkt.is_empty() {
                            if let Some(dst) = tx.buffer(s).and_then(|b| b.get_mut(..pkt.len())) {
                                dst.copy_from_slice(pkt);
                                let n = pkt.len();
                                queued =
                                    ring::push_send(&mut self.ring, tx, s, n, TAG_SEND | s as u64)
                                        .map_err(|e| {
                                            BackendError::Uring(UringError::Sys {
                                                op: "queue a send",
                                                ifname: self.info.interface.clone(),
                                                source: SysError {
                                                    call: "io_uring_enter",
                                                    source: e,
                                                },
                                            })
                                        })?;
                                if queued {
                                    r.tx += 1;
                                    self.c.tx_bytes += n as u64;
                                }
                            } else {
                                self.c.invalid += 1;
                            }
                        }
                        if !queued {
                            tx.untake(s);
                        }
                    }
                }
                None => self.c.invalid += 1,
            }
            // `admit` let in only our ids, so this cannot refuse; if it
            // did, the refusal is counted and the id stays out of the ring.
            if !bufs.recycle(bid) {
                self.c.invalid += 1;
            }
        }
        bufs.publish();
        self.c.rx_packets += r.rx as u64;
        self.c.tx_packets += r.tx as u64;
        Ok(r)
    }

    fn rx_common<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        mut f: F,
        forward: bool,
    ) -> Result<Forwarded, BackendError> {
        self.start()?;
        if (self.pending.len() as u32) < max {
            self.poll_rx()?;
        }
        let mut r = self.deliver(max, &mut f, forward)?;
        if r.rx == 0 && self.evfd().is_some() {
            // Idle: clear the readiness eventfd *before* looking again, so a
            // packet arriving after the look signals it anew.
            if let Some(fd) = self.evfd() {
                crate::sys::packet::eventfd_clear(fd).map_err(|source| UringError::Sys {
                    op: "clear the eventfd",
                    ifname: self.info.interface.clone(),
                    source,
                })?;
            }
            self.poll_rx()?;
            r = self.deliver(max, &mut f, forward)?;
        }
        if r.tx > 0 {
            self.c.tx_kicks += 1;
            self.ring
                .submit()
                .map_err(|e| self.sys_err("submit sends", "io_uring_enter", e))?;
        }
        self.rearm_if_needed()?;
        Ok(r)
    }
}

/// Queues a received buffer (id and length from a receive CQE) for
/// delivery if the id is one of ours. Any other id (a kernel bug, a corrupt
/// CQE) is counted in `invalid` and dropped, in every build: recycling it
/// would hand the kernel an address outside the buffer area.
fn admit(
    pending: &mut VecDeque<(u16, u32)>,
    c: &mut Counters,
    bufs: Option<&BufRing>,
    bid: u16,
    len: u32,
) {
    if bufs.is_some_and(|b| b.is_ours(bid)) {
        pending.push_back((bid, len));
    } else {
        c.invalid += 1;
    }
}

impl PacketIo for UringBackend {
    fn rx_batch<F: FnMut(&mut [u8])>(&mut self, max: u32, mut f: F) -> Result<u32, BackendError> {
        if self.bufs.is_none() {
            return Err(self.unsupported(Operation::Receive));
        }
        self.rx_common(
            max,
            |p| {
                f(p);
                false
            },
            false,
        )
        .map(|r| r.rx)
    }

    fn tx_batch<F: FnMut(&mut [u8]) -> Option<usize>>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        if self.tx.is_none() {
            return Err(self.unsupported(Operation::Transmit));
        }
        self.start()?;
        self.reap()?;
        if self.tx.as_ref().is_some_and(|t| t.in_flight() == t.count()) {
            self.enter(None)?;
            self.reap()?;
        }
        let mut n = 0;
        let mut too_long = None;
        while n < max {
            let Some(tx) = self.tx.as_mut() else { break };
            let Some(slot) = tx.take() else {
                self.c.tx_ring_full += 1;
                break;
            };
            let Some(buf) = tx.buffer(slot) else { break };
            let capacity = buf.len();
            let len = match f(buf) {
                None | Some(0) => {
                    tx.untake(slot);
                    break;
                }
                Some(len) if len > capacity => {
                    tx.untake(slot);
                    too_long = Some(BackendError::PacketTooLong { len, capacity });
                    break;
                }
                Some(len) => len,
            };
            let ok = ring::push_send(&mut self.ring, tx, slot, len, TAG_SEND | slot as u64)
                .map_err(|e| self.sys_err("queue a send", "io_uring_enter", e))?;
            if !ok {
                if let Some(tx) = self.tx.as_mut() {
                    tx.untake(slot);
                }
                break;
            }
            n += 1;
            self.c.tx_packets += 1;
            self.c.tx_bytes += len as u64;
        }
        if n > 0 {
            self.c.tx_kicks += 1;
            self.ring
                .submit()
                .map_err(|e| self.sys_err("submit sends", "io_uring_enter", e))?;
        }
        match too_long {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    fn forward_batch<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        f: F,
    ) -> Result<Forwarded, BackendError> {
        if self.bufs.is_none() || self.tx.is_none() {
            return Err(self.unsupported(Operation::Forward));
        }
        self.start()?;
        self.reap()?;
        self.rx_common(max, f, true)
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        if !self.started {
            return Ok(());
        }
        self.enter(None)?;
        self.reap()?;
        self.rearm_if_needed()
    }

    fn wait(&mut self, timeout_ms: i32) -> Result<bool, BackendError> {
        if self.bufs.is_none() {
            return Err(self.unsupported(Operation::Receive));
        }
        self.start()?;
        self.reap()?;
        if !self.pending.is_empty() {
            return Ok(true);
        }
        self.c.rx_wakeups += 1;
        let wait = if timeout_ms < 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(timeout_ms as u64)
        };
        self.enter(Some(wait))?;
        self.reap()?;
        self.rearm_if_needed()?;
        Ok(!self.pending.is_empty())
    }

    fn stats(&self) -> Result<BackendStats, BackendError> {
        let now = self.sock.statistics()?;
        let mut k = self.kernel.get();
        k.packets += now.packets;
        k.drops += now.drops;
        self.kernel.set(k);
        let mut s = self.c.stats();
        s.kernel_drops = k.drops;
        s.tx_in_flight = self.tx.as_ref().map_or(0, |t| t.in_flight() as u64);
        Ok(s)
    }

    fn describe(&self) -> &BackendInfo {
        &self.info
    }
}

impl Drop for UringBackend {
    fn drop(&mut self) {
        // Cancel the receive and let every request finish before the
        // buffers they point into are unmapped (see uring/ring.rs, Safety).
        let mut clean =
            !self.started || (!self.armed && self.tx.as_ref().map_or(0, |t| t.in_flight()) == 0);
        if !clean {
            let end = Instant::now() + Duration::from_secs(2);
            let cancelled = !self.armed || ring::push_cancel(&mut self.ring, TAG_RECV).is_ok();
            while cancelled && Instant::now() < end {
                if self.enter(Some(Duration::from_millis(10))).is_err() {
                    break;
                }
                let _ = self.reap(); // errors of the last packets do not matter now
                if !self.armed && self.tx.as_ref().map_or(0, |t| t.in_flight()) == 0 {
                    clean = true;
                    break;
                }
            }
        }
        if !clean {
            // Requests may still point into the buffers: never unmap them.
            if let Some(b) = self.bufs.as_mut() {
                b.leak();
            }
            if let Some(t) = self.tx.as_mut() {
                t.leak();
            }
        }
    }
}

impl fmt::Debug for UringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringBackend")
            .field("ring_fd", &self.ring.as_raw_fd())
            .field("sock", &self.sock)
            .field("pending", &self.pending.len())
            .field("started", &self.started)
            .field("armed", &self.armed)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl AsFd for UringBackend {
    /// An eventfd registered with the ring (`IORING_REGISTER_EVENTFD`) on
    /// the first call: readable when completions are pending. Falls back
    /// to the ring's own descriptor if that fails.
    fn as_fd(&self) -> BorrowedFd<'_> {
        let fd = self.evfd.get_or_init(|| {
            let fd = crate::sys::packet::eventfd().ok()?;
            self.ring
                .submitter()
                .register_eventfd(fd.as_raw_fd())
                .ok()?;
            Some(fd)
        });
        match fd {
            Some(fd) => fd.as_fd(),
            None => self.ring.as_fd(),
        }
    }
}

impl AsRawFd for UringBackend {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crafted_buffer_id_is_counted_and_not_queued() {
        let bufs = BufRing::new(8, 256).expect("map an 8-buffer ring");
        let mut pending = VecDeque::new();
        let mut c = Counters::default();
        admit(&mut pending, &mut c, Some(&bufs), 8, 60);
        admit(&mut pending, &mut c, Some(&bufs), u16::MAX, 60);
        admit(&mut pending, &mut c, None, 0, 60);
        assert!(pending.is_empty(), "{pending:?}");
        assert_eq!(c.stats().invalid, 3);
        admit(&mut pending, &mut c, Some(&bufs), 7, 60);
        assert_eq!(pending, [(7, 60)]);
        assert_eq!(c.stats().invalid, 3);
    }
}
