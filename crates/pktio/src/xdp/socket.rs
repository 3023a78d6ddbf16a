//! The AF_XDP socket: set-up (ring sizes, bind mode, attach mode, shared
//! UMEM), what was obtained and why, wakeups, and statistics.
//!
//! # Fallbacks, never silent
//!
//! - [`BindMode::Auto`] binds with `XDP_ZEROCOPY` first and falls back to
//!   `XDP_COPY` only on the kernel's answer that the driver cannot
//!   (`EOPNOTSUPP`; `EINVAL` when the program runs in generic/skb mode). The
//!   reason is kept in [`SocketInfo::mode_reason`].
//! - [`AttachMode::Auto`] attaches the steering program in driver (native)
//!   mode first and falls back to skb (generic) mode, likewise recorded.
//! - After bind the mode actually obtained is read back (`XDP_OPTIONS`).
//!
//! # Wakeups
//!
//! With `need_wakeup` (the default) the kernel sets a flag on the fill and TX
//! rings when it needs a system call to make progress. [`XskSocket::kick_tx`]
//! and [`XskSocket::wake_rx`] make that call only when asked — except TX in
//! copy mode, which is always kicked, since there the `sendto` is what sends.
//! Transient answers (`EAGAIN`, `EBUSY`, `ENOBUFS`, `ENETDOWN`) are counted
//! in [`KickCounters`]; anything else is returned as an error.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use rustix::net::xdp::{SocketAddrXdpFlags, XdpDesc};

use super::metadata::{DeviceXdpFeatures, RxMetaSupport, TxMetadataSupport};
pub use super::mode::{AttachMode, BindMode, BoundMode, BusyPoll};
use super::multibuf::segments_for;
use super::rings::{kernel_consumer, kernel_producer, CompletionRing, FillRing, RxRing, TxRing};
use super::steer::{SteerOptions, XskProgram};
use super::umem::{PairFd, Umem};
use super::XskError;
use crate::bpf::XdpMode;
use crate::error::SysError;
use crate::sys;
use crate::sys::xdp::RingKind;

/// What a socket got: interface, queue, driver, modes and why.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Interface name.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// Queue id.
    pub queue: u32,
    /// Driver name (`ETHTOOL_GDRVINFO`), or "unknown".
    pub driver: String,
    /// Zero-copy or copy, as read back from the kernel.
    pub mode: BoundMode,
    /// Why this mode, when it is not what was asked for or `Auto` fell back.
    pub mode_reason: Option<String>,
    /// How the steering program is attached, if this socket attached one.
    pub attach: Option<XdpMode>,
    /// Why that attach mode, when `Auto` fell back.
    pub attach_reason: Option<String>,
    /// Whether `XDP_USE_NEED_WAKEUP` is in effect.
    pub need_wakeup: bool,
    /// Busy-poll settings applied.
    pub busy_poll: Option<BusyPoll>,
    /// Whether the socket shares another socket's UMEM registration.
    pub shared_umem: bool,
    /// Ring sizes: rx, tx, fill, completion (0 = none).
    pub rings: [u32; 4],
    /// Whether the socket is bound with `XDP_USE_SG` (multi-buffer).
    pub multi_buffer: bool,
    /// The largest frame this socket receives whole (bytes, Ethernet
    /// header included; 0 when unknown): the interface MTU + 14, or
    /// [`XskSocketBuilder::max_frame`].
    pub max_frame: u32,
}

impl fmt::Display for SocketInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} queue {} (driver {}): {} mode",
            self.ifname,
            self.queue,
            self.driver,
            match self.mode {
                BoundMode::ZeroCopy => "zero-copy",
                BoundMode::Copy => "copy",
            }
        )?;
        if let Some(r) = &self.mode_reason {
            write!(f, " ({r})")?;
        }
        match self.attach {
            Some(m) => write!(f, ", XDP program attached in {m} mode")?,
            None => write!(f, ", no XDP program attached by this socket")?,
        }
        if let Some(r) = &self.attach_reason {
            write!(f, " ({r})")?;
        }
        write!(
            f,
            ", need_wakeup {}",
            if self.need_wakeup { "on" } else { "off" }
        )?;
        if let Some(b) = self.busy_poll {
            write!(f, ", busy poll {} us / budget {}", b.usecs, b.budget)?;
        }
        if self.shared_umem {
            write!(f, ", shared UMEM")?;
        }
        if self.multi_buffer {
            write!(f, ", multi-buffer (frames up to {} bytes)", self.max_frame)?;
        }
        Ok(())
    }
}

/// `XDP_STATISTICS` (kernel 4.18; the last three fields 5.9, 0 before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Packets dropped for reasons other than a full RX ring / empty fill ring.
    pub rx_dropped: u64,
    /// RX descriptors the kernel found invalid.
    pub rx_invalid_descs: u64,
    /// TX descriptors the kernel found invalid.
    pub tx_invalid_descs: u64,
    /// Packets dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty.
    pub tx_ring_empty_descs: u64,
}

/// Counts of wakeup system calls and their transient failures.
#[derive(Debug, Default, Clone)]
pub struct KickCounters {
    /// `sendto` calls made to drive TX.
    pub tx_kicks: u64,
    /// TX kicks answered EAGAIN/EBUSY/ENOBUFS/ENETDOWN (try again later).
    pub tx_kick_busy: u64,
    /// `recvfrom`/`poll` calls made to drive RX.
    pub rx_wakeups: u64,
    /// RX wakeups answered with a transient error.
    pub rx_wakeup_busy: u64,
}

/// Builds an [`XskSocket`]. Start with [`XskSocket::builder`].
#[derive(Debug, Clone)]
pub struct XskSocketBuilder<'p> {
    ifname: String,
    queue: u32,
    rx_size: u32,
    tx_size: u32,
    bind: BindMode,
    attach: AttachMode,
    need_wakeup: bool,
    busy_poll: Option<BusyPoll>,
    tx_skb_budget: Option<u32>,
    program: Option<&'p XskProgram>,
    multi_buffer: bool,
    max_frame: Option<u32>,
    rx_metadata: bool,
    prefill: u32,
}

impl<'p> XskSocketBuilder<'p> {
    /// Puts up to `n` free frames of the UMEM on the fill ring *before* the
    /// socket enters the steering program's map, so the first packets
    /// steered to it find buffers instead of being dropped ("no fill
    /// buffer") while the caller has not filled the ring yet. Default 0
    /// (fill it yourself with [`XskSocket::fill_from_pool`]).
    pub fn prefill(mut self, n: u32) -> Self {
        self.prefill = n;
        self
    }

    /// Queue id to bind to (default 0).
    pub fn queue(mut self, q: u32) -> Self {
        self.queue = q;
        self
    }
    /// RX ring entries (power of two; 0 = no RX ring). Default 2048.
    pub fn rx_size(mut self, n: u32) -> Self {
        self.rx_size = n;
        self
    }
    /// TX ring entries (power of two; 0 = no TX ring). Default 2048.
    pub fn tx_size(mut self, n: u32) -> Self {
        self.tx_size = n;
        self
    }
    /// Zero-copy or copy (default [`BindMode::Auto`]).
    pub fn bind_mode(mut self, m: BindMode) -> Self {
        self.bind = m;
        self
    }
    /// Driver or skb attach of the steering program (default [`AttachMode::Auto`]).
    pub fn attach_mode(mut self, m: AttachMode) -> Self {
        self.attach = m;
        self
    }
    /// `XDP_USE_NEED_WAKEUP` (default on; kernel 5.4).
    pub fn need_wakeup(mut self, on: bool) -> Self {
        self.need_wakeup = on;
        self
    }
    /// Busy polling (default off).
    pub fn busy_poll(mut self, b: Option<BusyPoll>) -> Self {
        self.busy_poll = b;
        self
    }
    /// `XDP_MAX_TX_SKB_BUDGET`: descriptors one copy-mode `sendto` may send
    /// (kernel 6.17; default: the kernel's, 32).
    pub fn tx_skb_budget(mut self, n: Option<u32>) -> Self {
        self.tx_skb_budget = n;
        self
    }

    /// Whether a TX skb budget is asked for.
    pub fn has_tx_skb_budget(&self) -> bool {
        self.tx_skb_budget.is_some()
    }
    /// Use an already attached program (several sockets, one program): the
    /// socket inserts itself into its map and attaches nothing itself.
    pub fn program(mut self, p: &'p XskProgram) -> Self {
        self.program = Some(p);
        self
    }
    /// Multi-buffer (jumbo frames): bind with `XDP_USE_SG` (kernel 6.6) and
    /// steer with a frags-aware program (`BPF_F_XDP_HAS_FRAGS`), so a frame
    /// larger than a UMEM frame arrives as several descriptors — read them
    /// with [`RxRing::receive_packets`] — and packets of several frames can
    /// be sent ([`TxBatch::push_packet`](super::TxBatch::push_packet)).
    /// Default off. A shared-UMEM socket inherits the first socket's setting.
    pub fn multi_buffer(mut self, on: bool) -> Self {
        self.multi_buffer = on;
        self
    }
    /// The largest frame to accept, in bytes with the Ethernet header
    /// (default: the interface's MTU + 14). Longer frames are dropped by the
    /// steering program this socket attaches and counted in
    /// [`XskProgram::oversize_drops`] (without multi-buffer the kernel also
    /// drops what does not fit a frame, in [`XskStats::rx_dropped`]).
    pub fn max_frame(mut self, bytes: Option<u32>) -> Self {
        self.max_frame = bytes;
        self
    }
    /// RX metadata: steer with a device-bound program that asks the driver
    /// for each packet's RX timestamp and hash (XDP metadata kfuncs, kernel
    /// 6.3) and puts them in front of the packet, for
    /// [`Frame::take_rx_metadata`](super::Frame::take_rx_metadata). Driver
    /// (native) attach only. What the driver provides:
    /// [`XskSocket::rx_metadata_support`]. Default off.
    pub fn rx_metadata(mut self, on: bool) -> Self {
        self.rx_metadata = on;
        self
    }

    fn validate(&self) -> Result<(), XskError> {
        let bad = |m: String| Err(XskError::Config(m));
        if self.rx_size == 0 && self.tx_size == 0 {
            return bad("a socket needs an RX ring, a TX ring, or both".into());
        }
        for (name, v) in [("rx", self.rx_size), ("tx", self.tx_size)] {
            if v != 0 && !v.is_power_of_two() {
                return bad(format!(
                    "{name} ring size {v} is not a power of two (try {})",
                    v.next_power_of_two()
                ));
            }
        }
        if let Some(b) = self.busy_poll {
            if b.budget == 0 {
                return bad("busy-poll budget must be at least 1".into());
            }
        }
        if let Some(m) = self.max_frame {
            if m < 60 {
                return bad(format!(
                    "max frame {m} is shorter than a minimal Ethernet frame (60 bytes)"
                ));
            }
        }
        if self.rx_metadata && self.attach == AttachMode::Skb {
            return bad(
                "RX metadata needs the program in driver (native) mode, not skb mode".into(),
            );
        }
        Ok(())
    }

    /// The frame-size check: the largest frame (MTU + 14, or `max_frame`)
    /// must fit one UMEM frame, or — with multi-buffer — the kernel's
    /// segment limit of frames. Returns (largest frame, segment limit).
    fn check_frames(
        &self,
        umem: &Umem,
        ifname: &str,
        mtu: Option<u32>,
    ) -> Result<(u32, u32), XskError> {
        let per_frame = umem.max_packet();
        let fs = umem.frame_size();
        let hr = umem.config().headroom;
        let segs_limit = if self.multi_buffer {
            sys::xdp::max_skb_frags() + 1
        } else {
            1
        };
        let (largest, source) = match (self.max_frame, mtu) {
            (Some(m), _) => (m, format!("max_frame is {m}")),
            (None, Some(mtu)) => (
                mtu.saturating_add(14),
                format!(
                    "interface {ifname} has MTU {mtu}, so frames of up to {} bytes",
                    mtu.saturating_add(14)
                ),
            ),
            (None, None) => return Ok((0, segs_limit)),
        };
        if self.rx_size == 0 && !self.multi_buffer {
            return Ok((largest, segs_limit));
        }
        let need = segments_for(largest, per_frame);
        if !self.multi_buffer && need > 1 {
            return Err(XskError::FrameTooLarge(format!(
                "{source}, but a {fs}-byte UMEM frame holds {per_frame} bytes (frame size − \
                 headroom {hr} − XDP_PACKET_HEADROOM 256): enable multi-buffer \
                 (XskSocketBuilder::multi_buffer(true), kernel 6.6), raise UmemConfig::frame_size \
                 (unaligned mode allows up to 65536), lower the MTU, or set \
                 XskSocketBuilder::max_frame to at most {per_frame} to drop longer frames"
            )));
        }
        if need > segs_limit {
            return Err(XskError::FrameTooLarge(format!(
                "{source}, which take {need} UMEM frames of {per_frame} bytes each, more than the \
                 kernel's limit of {segs_limit} per packet (MAX_SKB_FRAGS + 1, \
                 /proc/sys/net/core/max_skb_frags): raise UmemConfig::frame_size (unaligned mode \
                 allows up to 65536) so that {largest} bytes fit {segs_limit} frames, or lower \
                 the MTU / XskSocketBuilder::max_frame"
            )));
        }
        Ok((largest, segs_limit))
    }

    /// Creates, configures and binds the socket on `umem`, attaching the
    /// steering program unless told otherwise.
    ///
    /// The steps, in order: check the configuration, look up the interface
    /// (`Target`), take the UMEM's registration socket or open one, size
    /// and map the rings, attach the steering program, bind (with the
    /// zero-copy → copy fallback), put the socket into service (fill ring,
    /// XSKMAP, busy poll), and record what was obtained.
    ///
    /// Kernel calls: `socket(AF_XDP)` (except for the UMEM's first socket,
    /// which uses the registration socket), `setsockopt(XDP_{RX,TX,UMEM_FILL,
    /// UMEM_COMPLETION}_RING)`, `mmap` of each ring, `bind(sockaddr_xdp)`,
    /// `getsockopt(XDP_OPTIONS)`, `bpf(BPF_MAP_UPDATE_ELEM)` on the XSKMAP.
    ///
    /// # Errors
    /// See [`XskError`]: unknown interface, queue beyond the device's queues,
    /// ring sizes, `RequireZeroCopy` refused, privilege, memory limits.
    pub fn build<'u>(self, umem: &'u Umem) -> Result<XskSocket<'u>, XskError> {
        self.validate()?;
        let target = self.target(umem)?;
        // The UMEM's first socket is its registration socket.
        let first = umem.claim_fd();
        let guard = ClaimGuard { umem, first };
        let own_fd = match first {
            true => None,
            false => Some(Arc::new(sys::xdp::socket().map_err(XskError::Socket)?)),
        };
        let fd: BorrowedFd<'_> = match &own_fd {
            Some(f) => f.as_fd(),
            None => umem.fd(),
        };
        // Fill and completion rings: one pair per (device, queue). A socket on
        // a (device, queue) that already has them shares them.
        let shares_pair = umem.pair_owner(target.ifindex, target.queue);
        let make_fq = shares_pair.is_none();
        let mut rings = self.map_rings(umem, fd, first, make_fq, &target)?;
        let attached = self.attach_program(&target)?;
        let shared = match first {
            true => None,
            false => Some(SharedFd::of(umem, shares_pair.as_ref(), &target)?),
        };
        let bound = self.bind(fd, &target, shared.as_ref(), attached.mode)?;
        self.go_live(fd, &target, &mut rings, attached.program.as_ref())?;
        if make_fq {
            let owner = match &own_fd {
                Some(f) => PairFd::Socket(Arc::downgrade(f)),
                None => PairFd::Registration,
            };
            umem.add_pair(target.ifindex, target.queue, fd.as_raw_fd(), owner);
        }
        std::mem::forget(guard);
        let fd_raw = fd.as_raw_fd();
        let mode = bound.mode;
        let info = self.socket_info(target, &rings, first, bound, &attached);
        let caps = self.capabilities(umem, &info);
        let mut sock = XskSocket {
            umem,
            own_fd,
            fd_raw,
            rx: rings.rx,
            tx: rings.tx,
            fill: rings.fill,
            completion: rings.completion,
            program: attached.program,
            info,
            kicks: KickCounters::default(),
            owns_pair: make_fq,
            features: caps.features,
            rx_meta: caps.rx_meta,
            tx_meta: caps.tx_meta,
            max_segments: caps.max_segments,
        };
        // TX-only sockets in zero-copy mode: drivers run their NAPI only with a
        // populated fill ring. Give it a few frames without the user asking.
        if sock.rx.is_none() && mode == BoundMode::ZeroCopy {
            sock.fill_from_pool(64.min(umem.frame_count() / 8))?;
        }
        Ok(sock)
    }

    /// Step 1: the interface and queue, what is known of the device (index,
    /// driver, MTU), and the largest frame (checked against the UMEM).
    fn target(&self, umem: &Umem) -> Result<Target, XskError> {
        let ifname = self.ifname.clone();
        let ifindex =
            sys::xdp::if_nametoindex(&ifname).map_err(|source| XskError::NoInterface {
                ifname: ifname.clone(),
                source,
            })?;
        let driver = sys::ethtool::driver_name(&ifname).unwrap_or_else(|_| "unknown".into());
        let mtu = sys::xdp::mtu(&ifname).ok();
        let (max_frame, _) = self.check_frames(umem, &ifname, mtu)?;
        Ok(Target {
            ifname,
            ifindex,
            queue: self.queue,
            driver,
            mtu,
            max_frame,
        })
    }

    /// Step 2: the ring sizes to map (fill and completion only when this
    /// socket makes the queue's pair), and whether each size must still be
    /// set. Ring sizes can be set once per socket: a build that failed after
    /// setting them on the UMEM's registration socket (a bind refused, say)
    /// left them set, and they are mapped again if the sizes agree.
    fn ring_sizes(
        &self,
        umem: &Umem,
        first: bool,
        make_fq: bool,
    ) -> Result<([u32; 4], [bool; 4]), XskError> {
        let pair = |n: u32| if make_fq { n } else { 0 };
        let sizes = [
            pair(umem.config().fill_entries()),
            pair(umem.config().completion_entries()),
            self.rx_size,
            self.tx_size,
        ];
        if !first {
            return Ok((sizes, [true; 4]));
        }
        let prior = umem.registration_rings();
        for (k, name) in ["fill", "completion", "rx", "tx"].iter().enumerate() {
            if prior[k] != 0 && prior[k] != sizes[k] {
                return Err(XskError::Config(format!(
                    "the UMEM's first socket already has a {name} ring of {} entries from an \
                     earlier build that failed; build with the same ring sizes or use a new Umem",
                    prior[k]
                )));
            }
        }
        umem.set_registration_rings(sizes);
        Ok((sizes, prior.map(|p| p == 0)))
    }

    /// Step 3: sizes and maps the socket's rings.
    fn map_rings<'u>(
        &self,
        umem: &'u Umem,
        fd: BorrowedFd<'_>,
        first: bool,
        make_fq: bool,
        target: &Target,
    ) -> Result<Rings<'u>, XskError> {
        let (sizes, set) = self.ring_sizes(umem, first, make_fq)?;
        let (fill, completion) = if make_fq {
            let p = kernel_producer::<u64>(fd, RingKind::Fill, sizes[0], set[0])
                .map_err(target.sys_err("fill ring"))?;
            let c = kernel_consumer::<u64>(fd, RingKind::Completion, sizes[1], set[1])
                .map_err(target.sys_err("completion ring"))?;
            (
                Some(FillRing { ring: p, umem }),
                Some(CompletionRing { ring: c, umem }),
            )
        } else {
            (None, None)
        };
        let rx = match self.rx_size {
            0 => None,
            n => Some(RxRing {
                ring: kernel_consumer::<XdpDesc>(fd, RingKind::Rx, n, set[2])
                    .map_err(target.sys_err("rx ring"))?,
                umem,
            }),
        };
        let tx = match self.tx_size {
            0 => None,
            n => Some(TxRing {
                ring: kernel_producer::<XdpDesc>(fd, RingKind::Tx, n, set[3])
                    .map_err(target.sys_err("tx ring"))?,
                umem,
            }),
        };
        Ok(Rings {
            fill,
            completion,
            rx,
            tx,
        })
    }

    /// Step 4: attaches our own steering program, unless given one or told
    /// not to.
    fn attach_program(&self, target: &Target) -> Result<Attached, XskError> {
        let mode = match (self.program, self.attach) {
            (Some(_), _) | (None, AttachMode::None) => {
                return Ok(Attached {
                    program: None,
                    mode: None,
                    reason: None,
                })
            }
            (None, mode) => mode,
        };
        // A frags-aware program also when the MTU does not fit a page:
        // drivers (veth) refuse a plain one then.
        let opts = SteerOptions {
            frags: self.multi_buffer || target.mtu.is_some_and(|m| m > 3000),
            max_len: self.max_frame,
            rx_metadata: self.rx_metadata,
        };
        let (ifname, ifindex, queue) = (&target.ifname, target.ifindex, target.queue);
        let p = XskProgram::attach_with(ifname, ifindex, mode, queue + 1, &opts)?;
        Ok(Attached {
            mode: Some(p.mode()),
            reason: p.mode_reason().map(str::to_owned),
            program: Some(p),
        })
    }

    /// Step 5: binds (see [`Self::bind_with_fallback`]) and reads back the
    /// mode obtained.
    fn bind(
        &self,
        fd: BorrowedFd<'_>,
        target: &Target,
        shared: Option<&SharedFd<'_>>,
        attach: Option<XdpMode>,
    ) -> Result<Bound, XskError> {
        let (ifname, queue) = (&target.ifname, target.queue);
        let shared_fd = shared.map(SharedFd::as_fd);
        let (mode_reason, _) = self
            .bind_with_fallback(fd, ifname, target.ifindex, queue, &target.driver, shared_fd, attach)
            .map_err(|e| match e {
                XskError::Sys { op: "bind", source, .. }
                    if self.multi_buffer && source.errno() == Some(libc::EINVAL) =>
                {
                    XskError::Unsupported {
                        feature: "multi-buffer AF_XDP (XDP_USE_SG)",
                        reason: format!(
                            "bind on {ifname} queue {queue} refused it (EINVAL): it needs kernel 6.6"
                        ),
                    }
                }
                e => e,
            })?;
        let zc = sys::xdp::is_zerocopy(fd).map_err(target.sys_err("read XDP_OPTIONS"))?;
        let mode = if zc {
            BoundMode::ZeroCopy
        } else {
            BoundMode::Copy
        };
        Ok(Bound { mode, mode_reason })
    }

    /// Step 6: puts the bound socket into service: frames into the fill
    /// ring first, then the socket into the XSKMAP (a packet steered here
    /// before the fill ring has entries would be dropped), then the socket
    /// options that need a bound socket.
    fn go_live(
        &self,
        fd: BorrowedFd<'_>,
        target: &Target,
        rings: &mut Rings<'_>,
        own_prog: Option<&XskProgram>,
    ) -> Result<(), XskError> {
        if self.prefill > 0 && self.rx_size > 0 {
            if let Some(f) = rings.fill.as_mut() {
                f.fill_from_pool(self.prefill);
            }
        }
        // Into the map (only sockets that receive: a TX-only socket in the
        // map would swallow the queue's traffic).
        if self.rx_size > 0 {
            if let Some(p) = self.program.or(own_prog) {
                p.insert(target.queue, fd)?;
            }
        }
        if let Some(b) = self.busy_poll {
            sys::xdp::set_busy_poll(fd, b.usecs, b.budget).map_err(target.sys_err("busy poll"))?;
        }
        if let Some(n) = self.tx_skb_budget {
            sys::xdp::set_tx_skb_budget(fd, n).map_err(target.sys_err("tx skb budget"))?;
        }
        Ok(())
    }

    /// Step 7: what the socket got, for [`XskSocket::info`].
    fn socket_info(
        &self,
        target: Target,
        rings: &Rings<'_>,
        first: bool,
        bound: Bound,
        attached: &Attached,
    ) -> SocketInfo {
        SocketInfo {
            ifname: target.ifname,
            ifindex: target.ifindex,
            queue: target.queue,
            driver: target.driver,
            mode: bound.mode,
            mode_reason: bound.mode_reason,
            attach: attached.mode,
            attach_reason: attached.reason.clone(),
            // Shared sockets inherit need_wakeup with the UMEM's mode; the
            // builder's value is assumed to match the first socket's.
            need_wakeup: self.need_wakeup,
            busy_poll: self.busy_poll,
            shared_umem: !first,
            rings: [
                self.rx_size,
                self.tx_size,
                rings.fill.as_ref().map_or(0, |f| f.size()),
                rings.completion.as_ref().map_or(0, |c| c.ring.size()),
            ],
            multi_buffer: self.multi_buffer,
            max_frame: target.max_frame,
        }
    }

    /// Step 8: what the device offers this socket: its XDP features (netdev
    /// netlink), RX and TX metadata support, and the most segments a packet
    /// may have.
    fn capabilities(&self, umem: &Umem, info: &SocketInfo) -> Capabilities {
        let features = DeviceXdpFeatures::query(info.ifindex).map_err(|e| e.to_string());
        let answer = features.as_ref().map_err(String::as_str);
        let skb_attach = info.attach == Some(XdpMode::Skb);
        let rx_meta = self
            .rx_metadata
            .then(|| DeviceXdpFeatures::rx_meta_support(answer, &info.driver, skb_attach));
        let tx_meta = DeviceXdpFeatures::tx_meta_support(
            answer,
            &info.driver,
            info.mode,
            umem.config().tx_metadata,
        );
        let max_segments = match (self.multi_buffer, info.mode, &features) {
            (false, _, _) => 1,
            (true, BoundMode::Copy, _) => sys::xdp::max_skb_frags() + 1,
            (true, BoundMode::ZeroCopy, Ok(f)) => f.zc_max_segs.max(1),
            (true, BoundMode::ZeroCopy, Err(_)) => 1,
        };
        Capabilities {
            features: features.ok(),
            rx_meta,
            tx_meta,
            max_segments,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn bind_with_fallback(
        &self,
        fd: BorrowedFd<'_>,
        ifname: &str,
        ifindex: u32,
        queue: u32,
        driver: &str,
        shared_fd: Option<BorrowedFd<'_>>,
        attach: Option<XdpMode>,
    ) -> Result<(Option<String>, ()), XskError> {
        let mut wake = if self.need_wakeup {
            SocketAddrXdpFlags::XDP_USE_NEED_WAKEUP
        } else {
            SocketAddrXdpFlags::empty()
        };
        if self.multi_buffer {
            wake |= SocketAddrXdpFlags::XDP_USE_SG;
        }
        let err = |source: SysError| self.bind_error(ifname, queue, source);
        if let Some(shared) = shared_fd {
            // The kernel takes no mode flags with XDP_SHARED_UMEM: the mode is
            // the UMEM's (read back with XDP_OPTIONS afterwards).
            sys::xdp::bind(
                fd,
                SocketAddrXdpFlags::XDP_SHARED_UMEM,
                ifindex,
                queue,
                Some(shared),
            )
            .map_err(err)?;
            return Ok((Some("mode inherited from the shared UMEM".into()), ()));
        }
        match self.bind {
            BindMode::Copy => {
                sys::xdp::bind(
                    fd,
                    SocketAddrXdpFlags::XDP_COPY | wake,
                    ifindex,
                    queue,
                    None,
                )
                .map_err(err)?;
                Ok((None, ()))
            }
            BindMode::RequireZeroCopy | BindMode::Auto => {
                let zc = sys::xdp::bind(
                    fd,
                    SocketAddrXdpFlags::XDP_ZEROCOPY | wake,
                    ifindex,
                    queue,
                    None,
                );
                let Err(e) = zc else { return Ok((None, ())) };
                let errno = e.errno().unwrap_or(0);
                let skb = attach == Some(XdpMode::Skb);
                let refusal = match errno {
                    libc::EOPNOTSUPP => Some(format!(
                        "driver {driver} has no AF_XDP zero-copy support (bind with XDP_ZEROCOPY: EOPNOTSUPP)"
                    )),
                    libc::EINVAL if skb => Some(
                        "zero-copy needs the program in driver mode; it is attached in skb mode (EINVAL)".to_string(),
                    ),
                    _ => None,
                };
                let Some(reason) = refusal else {
                    return Err(err(e));
                };
                if self.bind == BindMode::RequireZeroCopy {
                    return Err(XskError::ZeroCopyUnsupported {
                        ifname: ifname.into(),
                        queue,
                        driver: driver.into(),
                        reason,
                        source: e,
                    });
                }
                sys::xdp::bind(
                    fd,
                    SocketAddrXdpFlags::XDP_COPY | wake,
                    ifindex,
                    queue,
                    None,
                )
                .map_err(err)?;
                Ok((Some(format!("zero-copy refused: {reason}")), ()))
            }
        }
    }

    /// Turns a failed bind into the most useful error.
    fn bind_error(&self, ifname: &str, queue: u32, source: SysError) -> XskError {
        if source.errno() == Some(libc::EINVAL) {
            if let Ok(ch) = sys::ethtool::channels(ifname) {
                let queues = ch.rx.max(ch.combined).max(ch.tx);
                if queues > 0 && queue >= queues {
                    return XskError::NoSuchQueue {
                        ifname: ifname.into(),
                        queue,
                        queues,
                    };
                }
            }
        }
        XskError::Sys {
            op: "bind",
            ifname: ifname.into(),
            queue,
            source,
        }
    }
}

/// The interface and queue a socket is being built on, as looked up by
/// [`XskSocketBuilder::build`].
struct Target {
    ifname: String,
    ifindex: u32,
    queue: u32,
    driver: String,
    mtu: Option<u32>,
    /// The largest frame accepted (0: unknown).
    max_frame: u32,
}

impl Target {
    /// Wraps a failed call of step `op` on this interface and queue.
    fn sys_err(&self, op: &'static str) -> impl FnOnce(SysError) -> XskError {
        let (ifname, queue) = (self.ifname.clone(), self.queue);
        move |source| XskError::Sys {
            op,
            ifname,
            queue,
            source,
        }
    }
}

/// The rings a build mapped (each `None` when the socket has no such ring).
struct Rings<'u> {
    fill: Option<FillRing<'u>>,
    completion: Option<CompletionRing<'u>>,
    rx: Option<RxRing<'u>>,
    tx: Option<TxRing<'u>>,
}

/// The steering program a build attached itself, if any, and how.
struct Attached {
    program: Option<XskProgram>,
    mode: Option<XdpMode>,
    /// Why that mode, when `Auto` fell back.
    reason: Option<String>,
}

/// The mode a bind obtained, and why when it is not what was asked.
struct Bound {
    mode: BoundMode,
    mode_reason: Option<String>,
}

/// What the device offers a socket (see `XskSocketBuilder::capabilities`).
struct Capabilities {
    features: Option<DeviceXdpFeatures>,
    rx_meta: Option<RxMetaSupport>,
    tx_meta: TxMetadataSupport,
    max_segments: u32,
}

/// The socket a shared-UMEM bind names: the UMEM's registration socket, or
/// the socket that owns the queue's fill and completion rings (kept alive
/// here for the bind).
enum SharedFd<'u> {
    Umem(BorrowedFd<'u>),
    Socket(Arc<OwnedFd>),
}

impl<'u> SharedFd<'u> {
    /// The socket to bind a UMEM's second or later socket against.
    fn of(umem: &'u Umem, pair: Option<&PairFd>, target: &Target) -> Result<Self, XskError> {
        match pair {
            None | Some(PairFd::Registration) => Ok(SharedFd::Umem(umem.fd())),
            Some(PairFd::Socket(w)) => w.upgrade().map(SharedFd::Socket).ok_or_else(|| {
                XskError::Config(format!(
                    "the socket that owned the fill ring of {} queue {} was dropped; keep it \
                     alive while other sockets share its queue",
                    target.ifname, target.queue
                ))
            }),
        }
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            SharedFd::Umem(fd) => fd.as_fd(),
            SharedFd::Socket(s) => s.as_fd(),
        }
    }
}

/// Gives the UMEM's registration fd back if the build fails.
struct ClaimGuard<'u> {
    umem: &'u Umem,
    first: bool,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if self.first {
            self.umem.release_fd();
        }
    }
}

/// An AF_XDP socket bound to one queue of one interface, on a [`Umem`].
#[derive(Debug)]
pub struct XskSocket<'u> {
    umem: &'u Umem,
    /// `None` for the UMEM's first socket, which uses the registration fd.
    own_fd: Option<Arc<OwnedFd>>,
    fd_raw: RawFd,
    rx: Option<RxRing<'u>>,
    tx: Option<TxRing<'u>>,
    fill: Option<FillRing<'u>>,
    completion: Option<CompletionRing<'u>>,
    program: Option<XskProgram>,
    info: SocketInfo,
    kicks: KickCounters,
    owns_pair: bool,
    features: Option<DeviceXdpFeatures>,
    rx_meta: Option<RxMetaSupport>,
    tx_meta: TxMetadataSupport,
    max_segments: u32,
}

/// Mutable access to all four rings at once (each `None` when this socket
/// does not have it: no RX/TX ring configured, or fill/completion shared with
/// the socket that owns this device queue's pair).
#[derive(Debug)]
pub struct Parts<'s, 'u> {
    /// The RX ring.
    pub rx: Option<&'s mut RxRing<'u>>,
    /// The TX ring.
    pub tx: Option<&'s mut TxRing<'u>>,
    /// The fill ring.
    pub fill: Option<&'s mut FillRing<'u>>,
    /// The completion ring.
    pub completion: Option<&'s mut CompletionRing<'u>>,
}

impl<'u> XskSocket<'u> {
    /// Starts building a socket on interface `ifname`.
    pub fn builder(ifname: &str) -> XskSocketBuilder<'static> {
        XskSocketBuilder {
            ifname: ifname.to_string(),
            queue: 0,
            rx_size: 2048,
            tx_size: 2048,
            bind: BindMode::Auto,
            attach: AttachMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            tx_skb_budget: None,
            program: None,
            multi_buffer: false,
            max_frame: None,
            rx_metadata: false,
            prefill: 0,
        }
    }

    /// What was bound, in which modes, and why.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    /// The UMEM this socket is on.
    pub fn umem(&self) -> &'u Umem {
        self.umem
    }

    /// The socket's file descriptor (for poll/epoll).
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.own_fd {
            Some(f) => f.as_ref().as_fd(),
            None => self.umem.fd(),
        }
    }

    /// All four rings at once.
    pub fn parts(&mut self) -> Parts<'_, 'u> {
        Parts {
            rx: self.rx.as_mut(),
            tx: self.tx.as_mut(),
            fill: self.fill.as_mut(),
            completion: self.completion.as_mut(),
        }
    }

    /// The RX ring, if configured.
    pub fn rx(&mut self) -> Option<&mut RxRing<'u>> {
        self.rx.as_mut()
    }
    /// The TX ring, if configured.
    pub fn tx(&mut self) -> Option<&mut TxRing<'u>> {
        self.tx.as_mut()
    }
    /// The fill ring, if this socket owns its queue's pair.
    pub fn fill(&mut self) -> Option<&mut FillRing<'u>> {
        self.fill.as_mut()
    }
    /// The completion ring, if this socket owns its queue's pair.
    pub fn completion(&mut self) -> Option<&mut CompletionRing<'u>> {
        self.completion.as_mut()
    }

    /// Moves up to `n` frames from the UMEM's free pool to the fill ring.
    ///
    /// # Errors
    /// [`XskError::Config`] if this socket shares another socket's fill ring.
    pub fn fill_from_pool(&mut self, n: u32) -> Result<u32, XskError> {
        match self.fill.as_mut() {
            Some(f) => Ok(f.fill_from_pool(n)),
            None => Err(XskError::Config(
                "this socket shares its queue's fill ring with another socket: fill through that one"
                    .into(),
            )),
        }
    }

    /// Asks the kernel to send what is on the TX ring, when it needs asking:
    /// always in copy mode, or when the TX ring's need-wakeup flag is set.
    /// Returns whether a system call was made.
    ///
    /// # Errors
    /// [`XskError::InterfaceGone`] when the device vanished; other errors are
    /// the kernel's. Transient answers are only counted.
    pub fn kick_tx(&mut self) -> Result<bool, XskError> {
        let need = match &self.tx {
            Some(tx) => {
                !self.info.need_wakeup || self.info.mode == BoundMode::Copy || tx.needs_wakeup()
            }
            None => false,
        };
        if !need {
            return Ok(false);
        }
        self.kicks.tx_kicks += 1;
        match sys::xdp::kick_tx(self.fd()) {
            Ok(()) => Ok(true),
            Err(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => {
                self.kicks.tx_kick_busy += 1;
                Ok(true)
            }
            Err(e) => Err(self.kick_error("sendto(AF_XDP)", e)),
        }
    }

    /// Wakes the kernel's RX side when the fill ring asks for it (or always,
    /// with busy poll, where this call is what drives the NAPI loop).
    /// Returns whether a system call was made.
    pub fn wake_rx(&mut self) -> Result<bool, XskError> {
        let need = self.info.busy_poll.is_some()
            || !self.info.need_wakeup
            || self.fill.as_ref().is_some_and(|f| f.needs_wakeup());
        if !need {
            return Ok(false);
        }
        self.kicks.rx_wakeups += 1;
        match sys::xdp::kick_rx(self.fd()) {
            Ok(()) => Ok(true),
            Err(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR) => {
                self.kicks.rx_wakeup_busy += 1;
                Ok(true)
            }
            Err(e) => Err(self.kick_error("recvfrom(AF_XDP)", e)),
        }
    }

    /// Blocks up to `timeout_ms` until packets are readable (`poll(POLLIN)`).
    pub fn poll_rx(&mut self, timeout_ms: i32) -> Result<bool, XskError> {
        self.kicks.rx_wakeups += 1;
        let r = sys::xdp::poll_in(self.fd(), timeout_ms);
        r.map_err(|e| self.sys_error("poll", e))
    }

    /// Kick counters so far.
    pub fn kicks(&self) -> &KickCounters {
        &self.kicks
    }

    /// `getsockopt(SOL_XDP, XDP_STATISTICS)`.
    pub fn statistics(&self) -> Result<XskStats, XskError> {
        let s = sys::xdp::statistics(self.fd()).map_err(|e| self.sys_error("statistics", e))?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full.unwrap_or(0),
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs.unwrap_or(0),
            tx_ring_empty_descs: s.tx_ring_empty_descs.unwrap_or(0),
        })
    }

    /// Checks that the interface still exists under the same index.
    ///
    /// # Errors
    /// [`XskError::InterfaceGone`] when it vanished.
    pub fn check_interface(&self) -> Result<(), XskError> {
        match sys::xdp::if_indextoname(self.info.ifindex) {
            Ok(_) => Ok(()),
            Err(_) => Err(XskError::InterfaceGone {
                ifname: self.info.ifname.clone(),
                ifindex: self.info.ifindex,
            }),
        }
    }

    /// The steering program this socket attached, if any.
    pub fn program(&self) -> Option<&XskProgram> {
        self.program.as_ref()
    }

    /// The most descriptors one packet may span: 1 without multi-buffer;
    /// in copy mode `MAX_SKB_FRAGS + 1` (18 by default); in zero-copy mode
    /// the driver's `xdp-zc-max-segs`.
    pub fn max_segments(&self) -> u32 {
        self.max_segments
    }

    /// What the driver declares about XDP (`netdev` netlink, kernel 6.3),
    /// if the kernel could be asked.
    pub fn device_features(&self) -> Option<&DeviceXdpFeatures> {
        self.features.as_ref()
    }

    /// Whether the driver provides the RX timestamp and hash, for a socket
    /// built with [`XskSocketBuilder::rx_metadata`] (`None` otherwise). Each
    /// packet's own answer is in its [`RxMetadata`](super::RxMetadata).
    pub fn rx_metadata_support(&self) -> Option<&RxMetaSupport> {
        self.rx_meta.as_ref()
    }

    /// Whether checksum offload and completion timestamps can be requested
    /// per packet ([`TxRequest`](super::TxRequest)), and how they are done.
    pub fn tx_metadata_support(&self) -> &TxMetadataSupport {
        &self.tx_meta
    }

    /// Checks a TX metadata request against [`tx_metadata_support`](XskSocket::tx_metadata_support).
    ///
    /// # Errors
    /// [`XskError::Unsupported`] naming the part that is not supported, and why.
    pub fn check_tx_request(&self, req: &super::TxRequest) -> Result<(), XskError> {
        use super::Support;
        if req.checksum.is_some() {
            if let Support::No(why) = &self.tx_meta.checksum {
                return Err(XskError::Unsupported {
                    feature: "TX checksum offload",
                    reason: why.clone(),
                });
            }
        }
        if req.timestamp {
            if let Support::No(why) = &self.tx_meta.timestamp {
                return Err(XskError::Unsupported {
                    feature: "TX completion timestamps",
                    reason: why.clone(),
                });
            }
        }
        Ok(())
    }

    fn sys_error(&self, op: &'static str, source: SysError) -> XskError {
        XskError::Sys {
            op,
            ifname: self.info.ifname.clone(),
            queue: self.info.queue,
            source,
        }
    }

    fn kick_error(&self, call: &'static str, errno: i32) -> XskError {
        if matches!(errno, libc::ENXIO | libc::ENODEV) && self.check_interface().is_err() {
            return XskError::InterfaceGone {
                ifname: self.info.ifname.clone(),
                ifindex: self.info.ifindex,
            };
        }
        self.sys_error("wakeup", SysError::from_errno(call, errno))
    }
}

impl Drop for XskSocket<'_> {
    fn drop(&mut self) {
        if self.owns_pair {
            self.umem.remove_pair(self.fd_raw);
        }
        // Rings unmap (their Mmap owners drop) before the socket fd closes:
        // a ring mapping holds a reference to the socket, and leaving it
        // mapped would keep the queue bound (EBUSY on the next bind).
        self.rx = None;
        self.tx = None;
        self.fill = None;
        self.completion = None;
        self.own_fd = None;
    }
}
