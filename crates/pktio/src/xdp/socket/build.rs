//! [`XskSocketBuilder`]: a socket's configuration, and
//! [`build`](XskSocketBuilder::build), the steps that turn it into a bound
//! [`XskSocket`] (see its docs for the order).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::net::xdp::{SocketAddrXdpFlags, XdpDesc};

use super::{KickCounters, SocketInfo, XskSocket};
use crate::bpf::{XdpMode, XskMap};
use crate::error::SysError;
use crate::sys;
use crate::sys::xdp::RingKind;
use crate::xdp::metadata::{DeviceXdpFeatures, RxMetaSupport, TxMetadataSupport};
use crate::xdp::mode::{AttachMode, BindMode, BoundMode, BusyPoll};
use crate::xdp::multibuf::segments_for;
use crate::xdp::rings::{
    kernel_consumer, kernel_producer, CompletionRing, FillRing, RxRing, TxRing,
};
use crate::xdp::steer::{SteerOptions, XskProgram};
use crate::xdp::umem::{PairFd, Umem};
use crate::xdp::XskError;

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
    xsk_map: Option<&'p XskMap>,
    socket: Option<Arc<OwnedFd>>,
    multi_buffer: bool,
    max_frame: Option<u32>,
    rx_metadata: bool,
    prefill: u32,
}

impl<'p> XskSocketBuilder<'p> {
    /// The defaults: queue 0, RX and TX rings of 2048, automatic bind and
    /// attach modes, need-wakeup on, nothing else.
    pub(super) fn new(ifname: &str) -> XskSocketBuilder<'static> {
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
            xsk_map: None,
            socket: None,
            multi_buffer: false,
            max_frame: None,
            rx_metadata: false,
            prefill: 0,
        }
    }

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

    /// Steer with someone else's program: the socket puts itself into slot
    /// `queue` of `map` (an XSKMAP that program redirects with, e.g. opened
    /// with [`XskMap::from_pinned`]) once bound, and attaches nothing
    /// itself, whatever the [`AttachMode`]. This is how a worker joins a
    /// helper's [`XskProgram`] ([`crate::xdp::handoff`]), and how pktio's
    /// sockets serve a program of your own (see "Sharing an interface with
    /// other XDP programs" in [`crate::xdp`]).
    pub fn xsk_map(mut self, map: &'p XskMap) -> Self {
        self.xsk_map = Some(map);
        self
    }

    /// Build on this AF_XDP socket instead of opening one (which needs
    /// `CAP_NET_RAW`): one received from a privileged helper
    /// ([`crate::xdp::handoff`]). Only for a UMEM's second and later
    /// sockets — the first is the one the UMEM is registered on
    /// ([`Umem::with_socket`]). Checked at build: an AF_XDP socket (one
    /// already bound makes the bind fail).
    pub fn socket(mut self, fd: OwnedFd) -> Self {
        self.socket = Some(Arc::new(fd));
        self
    }

    /// Multi-buffer (jumbo frames): bind with `XDP_USE_SG` (kernel 6.6) and
    /// steer with a frags-aware program (`BPF_F_XDP_HAS_FRAGS`), so a frame
    /// larger than a UMEM frame arrives as several descriptors — read them
    /// with [`RxRing::receive_packets`] — and packets of several frames can
    /// be sent ([`TxBatch::push_packet`](crate::xdp::TxBatch::push_packet)).
    /// Default off. A shared-UMEM socket inherits the first socket's setting.
    pub fn multi_buffer(mut self, on: bool) -> Self {
        self.multi_buffer = on;
        self
    }
    /// The largest frame to accept, in bytes with the Ethernet header
    /// (default: the interface's MTU + 14). Longer frames are dropped by the
    /// steering program this socket attaches and counted in
    /// [`XskProgram::oversize_drops`] (without multi-buffer the kernel also
    /// drops what does not fit a frame, in [`XskStats::rx_dropped`](super::XskStats::rx_dropped)).
    pub fn max_frame(mut self, bytes: Option<u32>) -> Self {
        self.max_frame = bytes;
        self
    }
    /// RX metadata: steer with a device-bound program that asks the driver
    /// for each packet's RX timestamp and hash (XDP metadata kfuncs, kernel
    /// 6.3) and puts them in front of the packet, for
    /// [`Frame::take_rx_metadata`](crate::xdp::Frame::take_rx_metadata). Driver
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
        if let Some(map) = self.xsk_map {
            if self.program.is_some() {
                return bad(
                    "give either a program (XskSocketBuilder::program) or an XSKMAP \
                     (XskSocketBuilder::xsk_map), not both"
                        .into(),
                );
            }
            if self.queue >= map.max_entries() {
                return bad(format!(
                    "queue {} is beyond the given XSKMAP's {} slot(s): the map's owner must \
                     create it with more entries",
                    self.queue,
                    map.max_entries()
                ));
            }
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
        if let Some(s) = &self.socket {
            if let Err(what) = crate::xdp::handoff::check_xdp_socket(s.as_fd()) {
                return Err(XskError::Config(format!(
                    "XskSocketBuilder::socket needs an AF_XDP socket, got {what}"
                )));
            }
        }
        // The UMEM's first socket is its registration socket.
        let first = umem.claim_fd();
        let guard = ClaimGuard { umem, first };
        let own_fd = match (first, &self.socket) {
            (true, Some(_)) => {
                return Err(XskError::Config(
                    "XskSocketBuilder::socket was given for the UMEM's first socket, which is \
                     the socket the UMEM is registered on: build the first socket without it \
                     (Umem::with_socket takes the first received socket) and give the others \
                     to later builds"
                        .into(),
                ))
            }
            (true, None) => None,
            (false, Some(s)) => Some(Arc::clone(s)),
            (false, None) => Some(Arc::new(sys::xdp::socket().map_err(XskError::Socket)?)),
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
        let driver =
            crate::host::ethtool::driver_name(&ifname).unwrap_or_else(|_| "unknown".into());
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

    /// For [`Self::map_rings`]: the ring sizes to map (fill and completion only when this
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

    /// Step 2: sizes and maps the socket's rings.
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

    /// Step 3: attaches our own steering program, unless given one or told
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
            _ if self.xsk_map.is_some() => {
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

    /// Step 4: binds (see [`Self::bind_with_fallback`]) and reads back the
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

    /// Step 5: puts the bound socket into service: frames into the fill
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
            } else if let Some(map) = self.xsk_map {
                map.set(target.queue, fd).map_err(|source| match source {
                    crate::bpf::BpfError::KeyOutOfRange { key, max_entries } => {
                        XskError::Config(format!(
                            "queue {key} is beyond the given XSKMAP's {max_entries} slot(s) \
                             on {}: the map's owner must create it with more entries",
                            target.ifname
                        ))
                    }
                    source => XskError::Bpf {
                        ifname: target.ifname.clone(),
                        source,
                    },
                })?;
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

    /// Step 6: what the socket got, for [`XskSocket::info`].
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

    /// Step 7: what the device offers this socket: its XDP features (netdev
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
            if let Ok(ch) = crate::host::ethtool::channels(ifname) {
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
