//! [`PacketBackend`]: the AF_PACKET backends, written once over the RX ring
//! kind ([`PacketV2`]: frame ring, [`PacketV3`]: block ring) and the TX
//! frame header, on the socket and rings of [`crate::packet`].

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use super::{
    BackendConfig, BackendError, BackendInfo, BackendKind, BackendStats, Counters, Direction,
    Forwarded, Operation, PacketIo,
};
use crate::packet::geometry::{self, RingRole};
use crate::packet::header::{FrameHeader, PacketSpan, V2, V3};
use crate::packet::ring::{self, BlockRing, FrameRing, RxCount, Step};
use crate::packet::{KernelStats, PacketError, PacketSocket};
use crate::sys::packet::{page_size, Version};

mod sealed {
    pub trait Sealed {}
}

/// An AF_PACKET RX ring: the V2 frame ring or the V3 block ring. Both show
/// packets to a closure in order and release what it consumes.
pub trait RxRing: sealed::Sealed + Send {
    /// Shows up to `max` packets to `f` (see [`FrameRing::receive`],
    /// [`BlockRing::receive`]).
    fn receive<F: FnMut(&mut [u8], &PacketSpan) -> Step>(&mut self, max: u32, f: F) -> RxCount;
    /// Whether a packet is waiting (no system call).
    fn ready(&self) -> bool;
}

impl sealed::Sealed for FrameRing<V2> {}
impl sealed::Sealed for BlockRing {}

impl RxRing for FrameRing<V2> {
    #[inline]
    fn receive<F: FnMut(&mut [u8], &PacketSpan) -> Step>(&mut self, max: u32, f: F) -> RxCount {
        FrameRing::receive(self, max, f)
    }
    fn ready(&self) -> bool {
        self.rx_ready()
    }
}

impl RxRing for BlockRing {
    #[inline]
    fn receive<F: FnMut(&mut [u8], &PacketSpan) -> Step>(&mut self, max: u32, f: F) -> RxCount {
        BlockRing::receive(self, max, f)
    }
    fn ready(&self) -> bool {
        self.rx_ready()
    }
}

/// The TX ring: V2 frames (V2 sockets, and the V3 fallback socket) or V3
/// frames.
#[derive(Debug)]
enum TxRing {
    V2(FrameRing<V2>),
    V3(FrameRing<V3>),
}

/// An AF_PACKET backend with the RX ring `R`. Use the aliases [`PacketV2`]
/// and [`PacketV3`].
#[derive(Debug)]
pub struct PacketBackend<R: RxRing> {
    // Field order is drop order: the rings (and their mapping) go before
    // the sockets close.
    rx: Option<R>,
    tx: Option<TxRing>,
    /// V3 without a V3 TX ring: the TPACKET_V2 socket the TX ring is on.
    tx_sock: Option<PacketSocket>,
    sock: PacketSocket,
    info: BackendInfo,
    c: Counters,
    /// PACKET_STATISTICS resets on read: the totals so far.
    kernel: Cell<KernelStats>,
}

/// AF_PACKET with `TPACKET_V2` RX and TX frame rings (kernel 2.6.27).
pub type PacketV2 = PacketBackend<FrameRing<V2>>;

/// AF_PACKET with a `TPACKET_V3` RX block ring (kernel 3.2) and a V3 TX
/// frame ring (4.11; a V2 TX ring on a second socket before).
pub type PacketV3 = PacketBackend<BlockRing>;

/// The refusal of a queue other than 0 by a backend on an AF_PACKET socket
/// (V2, V3, io_uring): such a socket receives from every queue of the
/// interface and transmits on whichever the stack picks, so
/// [`BackendConfig::queue`] cannot be honoured; a silent "yes" would
/// measure something else than asked.
pub(crate) fn refuse_queue(cfg: &BackendConfig, backend: BackendKind) -> Result<(), BackendError> {
    if cfg.queue == 0 {
        return Ok(());
    }
    Err(BackendError::Config(format!(
        "the {backend} backend (AF_PACKET) cannot bind queue {}: an AF_PACKET socket sees every \
         queue of {}; leave the queue at 0, or use AF_XDP (xdp, xdp-skb) to bind one queue",
        cfg.queue, cfg.interface
    )))
}

/// Socket options and bind, shared by every AF_PACKET socket the backends
/// open (the io_uring one included). Returns notes for `reasons`.
pub(crate) fn configure(
    sock: &PacketSocket,
    cfg: &BackendConfig,
    receive: bool,
    reasons: &mut Vec<String>,
) -> Result<(), PacketError> {
    if cfg.qdisc_bypass {
        sock.set_qdisc_bypass(true)?;
    }
    if receive && cfg.ignore_outgoing && !sock.set_ignore_outgoing(true)? {
        reasons.push(
            "PACKET_IGNORE_OUTGOING unsupported (kernel < 4.20): outgoing packets are seen too"
                .into(),
        );
    }
    if let Some(b) = cfg.busy_poll {
        sock.set_busy_poll(b)?;
    }
    sock.bind(receive)?;
    if let Some(f) = cfg.fanout {
        sock.join_fanout(f)?;
    }
    Ok(())
}

fn kib(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

fn tx_words<H: FrameHeader>(r: &FrameRing<H>) -> String {
    format!(
        "TX {} frames x {} B ({})",
        r.frames(),
        r.frame_size(),
        H::NAME
    )
}

impl PacketBackend<FrameRing<V2>> {
    /// Opens an AF_PACKET socket with `TPACKET_V2` rings on `cfg.interface`:
    /// `socket(AF_PACKET)`, `PACKET_VERSION`, `PACKET_RX_RING` /
    /// `PACKET_TX_RING` ([`Direction`]), one `mmap`, `PACKET_LOSS`,
    /// `PACKET_QDISC_BYPASS`, `PACKET_IGNORE_OUTGOING`, `bind`,
    /// `PACKET_FANOUT`.
    ///
    /// Uses `frame_size` (default 2048) and `frame_count` (default 2048,
    /// per ring).
    ///
    /// # Errors
    /// [`PacketError::Geometry`] for frame sizes the kernel refuses (with the
    /// rule), [`PacketError::FanoutClash`], [`PacketError::NoInterface`],
    /// privilege (`EPERM`).
    pub fn open(cfg: &BackendConfig) -> Result<PacketV2, BackendError> {
        cfg.check_common()?;
        cfg.refuse_multi_buffer(BackendKind::PacketV2)?;
        refuse_queue(cfg, BackendKind::PacketV2)?;
        let fs = BackendConfig::or(cfg.frame_size, 2048);
        let fc = BackendConfig::or(cfg.frame_count, 2048);
        let page = page_size();
        let dir = cfg.direction;
        let rx_req = match dir.rx() {
            true => Some(geometry::frame_ring::<V2>(RingRole::Rx, fs, fc, page)?),
            false => None,
        };
        let tx_req = match dir.tx() {
            true => Some(geometry::frame_ring::<V2>(RingRole::Tx, fs, fc, page)?),
            false => None,
        };
        let sock = PacketSocket::open(&cfg.interface)?;
        sock.set_version(Version::V2, V2::SIZE)?;
        // PACKET_LOSS, like the version, must precede the rings (EBUSY after).
        if tx_req.is_some() {
            sock.set_loss(true)?;
        }
        let (inst, _) = sock.install(Version::V2, rx_req, tx_req, false)?;
        let (rx, tx) = ring::v2_rings(&inst);
        let mut reasons = Vec::new();
        configure(&sock, cfg, dir.rx(), &mut reasons)?;
        let mut rings = Vec::new();
        if let Some(r) = &rx {
            rings.push(format!("RX {} frames x {} B", r.frames(), r.frame_size()));
        }
        if let Some(t) = &tx {
            rings.push(tx_words(t));
        }
        Ok(Self::assemble(
            BackendKind::PacketV2,
            cfg,
            sock,
            rx,
            tx.map(TxRing::V2),
            None,
            rings.join(", "),
            reasons,
        ))
    }
}

impl PacketBackend<BlockRing> {
    /// Opens an AF_PACKET socket with a `TPACKET_V3` RX block ring and a V3
    /// TX frame ring on `cfg.interface` (calls as for
    /// [`PacketV2::open`](PacketBackend::open)). Where the kernel refuses a
    /// V3 TX ring (before 4.11), TX goes through a `TPACKET_V2` ring on a
    /// second socket, and [`BackendInfo::reasons`] says so.
    ///
    /// Uses `block_size` (default 256 KiB), `block_count` (default 64),
    /// `retire_timeout_ms` for RX; `frame_size`/`frame_count` for TX.
    ///
    /// A block must hold a whole frame of the interface's MTU (plus
    /// Ethernet and VLAN headers): the default 256 KiB does up to 64 KiB
    /// MTUs; for MTU 9000 a block needs at least 12 KiB.
    ///
    /// # Errors
    /// As [`PacketV2::open`](PacketBackend::open); geometry errors name the
    /// block rules (page multiple, frame fits in block, block holds an
    /// MTU-sized frame); [`BackendError::Unsupported`] for
    /// [`BackendConfig::multi_buffer`].
    pub fn open(cfg: &BackendConfig) -> Result<PacketV3, BackendError> {
        Self::open_inner(cfg, false)
    }

    /// As [`open`](Self::open), but always sends through the V2 TX ring on a
    /// second socket (the fallback for kernels before 4.11), so that path
    /// can be tested on any kernel.
    #[doc(hidden)]
    pub fn open_with_v2_tx(cfg: &BackendConfig) -> Result<PacketV3, BackendError> {
        Self::open_inner(cfg, true)
    }

    fn open_inner(cfg: &BackendConfig, force_v2_tx: bool) -> Result<PacketV3, BackendError> {
        cfg.check_common()?;
        cfg.refuse_multi_buffer(BackendKind::PacketV3)?;
        refuse_queue(cfg, BackendKind::PacketV3)?;
        let page = page_size();
        let dir = cfg.direction;
        let fs = BackendConfig::or(cfg.frame_size, 2048);
        let fc = BackendConfig::or(cfg.frame_count, 2048);
        let block_size = BackendConfig::or(cfg.block_size, 256 << 10);
        if dir.rx() {
            // An unknown interface is reported by the socket's bind below.
            if let Ok(mtu) = crate::sys::xdp::mtu(&cfg.interface) {
                geometry::check_block_holds_mtu::<V3>(&cfg.interface, block_size, mtu, page)?;
            }
        }
        let rx_req = match dir.rx() {
            true => Some(geometry::block_ring::<V3>(
                block_size,
                BackendConfig::or(cfg.block_count, 64),
                fs,
                cfg.retire_timeout_ms,
                page,
            )?),
            false => None,
        };
        let tx_req = match dir.tx() {
            true => Some(geometry::frame_ring::<V3>(RingRole::Tx, fs, fc, page)?),
            false => None,
        };
        let sock = PacketSocket::open(&cfg.interface)?;
        sock.set_version(Version::V3, V3::SIZE)?;
        let want_v3_tx = if force_v2_tx { None } else { tx_req };
        if want_v3_tx.is_some() {
            sock.set_loss(true)?;
        }
        let (inst, refused) = sock.install(Version::V3, rx_req, want_v3_tx, true)?;
        let (rx, tx3) = ring::v3_rings(&inst);
        let mut reasons = Vec::new();
        let mut rings = Vec::new();
        if let Some(r) = &rx {
            rings.push(format!(
                "RX {} blocks x {} (retire {} ms)",
                r.blocks(),
                kib(r.block_size()),
                cfg.retire_timeout_ms
            ));
        }
        let (tx, tx_sock) = match (tx3, dir.tx()) {
            (Some(t), _) => {
                rings.push(tx_words(&t));
                (Some(TxRing::V3(t)), None)
            }
            (None, false) => (None, None),
            (None, true) => {
                reasons.push(match refused {
                    Some(e) => format!(
                        "the kernel refused a TPACKET_V3 TX ring ({e}; it has one since 4.11): \
                         TX goes through a TPACKET_V2 ring on a second socket"
                    ),
                    None => "TX through a TPACKET_V2 ring on a second socket (forced)".into(),
                });
                let req = geometry::frame_ring::<V2>(RingRole::Tx, fs, fc, page)?;
                let ts = PacketSocket::open(&cfg.interface)?;
                ts.set_version(Version::V2, V2::SIZE)?;
                ts.set_loss(true)?;
                let (ti, _) = ts.install(Version::V2, None, Some(req), false)?;
                let (_, t) = ring::v2_rings(&ti);
                if cfg.qdisc_bypass {
                    ts.set_qdisc_bypass(true)?;
                }
                ts.bind(false)?;
                let t = t.ok_or_else(|| {
                    BackendError::Config("internal: the V2 TX ring was not installed".into())
                })?;
                rings.push(tx_words(&t));
                (Some(TxRing::V2(t)), Some(ts))
            }
        };
        configure(&sock, cfg, dir.rx(), &mut reasons)?;
        Ok(Self::assemble(
            BackendKind::PacketV3,
            cfg,
            sock,
            rx,
            tx,
            tx_sock,
            rings.join(", "),
            reasons,
        ))
    }
}

/// Fills up to `max` TX frames through `f`. Returns how many, or the
/// too-long error (frames filled before it stay queued).
fn tx_fill<H: FrameHeader, F: FnMut(&mut [u8]) -> Option<usize>>(
    ring: &mut FrameRing<H>,
    max: u32,
    f: &mut F,
    c: &mut Counters,
) -> Result<u32, BackendError> {
    let mut n = 0;
    while n < max {
        let Some(mut slot) = ring.reserve() else {
            c.tx_ring_full += 1;
            break;
        };
        let len = match f(slot.buffer()) {
            Some(0) | None => break,
            Some(len) => len,
        };
        let capacity = slot.capacity();
        if slot.send(len).is_err() {
            return Err(BackendError::PacketTooLong { len, capacity });
        }
        n += 1;
        c.tx_packets += 1;
        c.tx_bytes += len as u64;
    }
    Ok(n)
}

/// Receives from `rx` into free TX frames of `tx`: one copy per packet
/// forwarded. Stops (leaving the packet in RX) when TX is full.
fn forward_on<R: RxRing, H: FrameHeader, F: FnMut(&mut [u8]) -> bool>(
    rx: &mut R,
    tx: &mut FrameRing<H>,
    max: u32,
    f: &mut F,
    c: &mut Counters,
) -> Forwarded {
    let (mut sent, mut bytes, mut full, mut too_long) = (0u32, 0u64, false, 0u64);
    let got = rx.receive(max, |pkt, _span| {
        let Some(mut slot) = tx.reserve() else {
            full = true;
            return Step::Stop;
        };
        if !f(pkt) || pkt.is_empty() {
            return Step::Consume; // dropped; the TX slot stays free
        }
        let buf = slot.buffer();
        let Some(dst) = buf.get_mut(..pkt.len()) else {
            too_long += 1;
            return Step::Consume;
        };
        dst.copy_from_slice(pkt);
        if slot.send(pkt.len()).is_ok() {
            sent += 1;
            bytes += pkt.len() as u64;
        }
        Step::Consume
    });
    c.rx_packets += got.packets as u64;
    c.rx_bytes += got.bytes;
    c.invalid += got.malformed as u64 + too_long;
    c.tx_packets += sent as u64;
    c.tx_bytes += bytes;
    c.tx_ring_full += full as u64;
    Forwarded {
        rx: got.packets,
        tx: sent,
    }
}

impl<R: RxRing> PacketBackend<R> {
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        kind: BackendKind,
        cfg: &BackendConfig,
        sock: PacketSocket,
        rx: Option<R>,
        tx: Option<TxRing>,
        tx_sock: Option<PacketSocket>,
        rings: String,
        reasons: Vec<String>,
    ) -> Self {
        let info = BackendInfo {
            kind,
            interface: cfg.interface.clone(),
            ifindex: sock.ifindex(),
            queue: None,
            direction: cfg.direction,
            zero_copy: false,
            mode: "mmap ring (copy)".into(),
            attach: None,
            rings,
            reasons,
            skipped: Vec::new(),
        };
        PacketBackend {
            rx,
            tx,
            tx_sock,
            sock,
            info,
            c: Counters::default(),
            kernel: Cell::new(KernelStats::default()),
        }
    }

    pub(crate) fn info_mut(&mut self) -> &mut BackendInfo {
        &mut self.info
    }

    /// The socket (RX, and TX unless TX fell back to a second socket).
    pub fn socket(&self) -> &PacketSocket {
        &self.sock
    }

    /// The RX ring itself, for what [`PacketIo`] does not show: each
    /// packet's [`PacketSpan`] (wire length, timestamp, status) through
    /// `receive`, or whole V3 [`Block`](crate::packet::ring::Block)s through
    /// [`BlockRing::block`]. Packets taken this way are not counted in
    /// [`stats`](PacketIo::stats)' `rx_packets`.
    pub fn rx_ring(&mut self) -> Option<&mut R> {
        self.rx.as_mut()
    }

    fn unsupported(&self, operation: Operation) -> BackendError {
        BackendError::Unsupported {
            backend: self.info.kind,
            operation,
            why: Some(match self.info.direction {
                Direction::Rx => "it was opened for RX only",
                Direction::Tx => "it was opened for TX only",
                Direction::Both => "it has no such ring",
            }),
        }
    }

    fn tx_socket(&self) -> &PacketSocket {
        self.tx_sock.as_ref().unwrap_or(&self.sock)
    }

    /// Asks the kernel to send the frames marked since the last kick.
    fn kick(&mut self) -> Result<(), BackendError> {
        let unkicked = match &self.tx {
            Some(TxRing::V2(t)) => t.unkicked(),
            Some(TxRing::V3(t)) => t.unkicked(),
            None => 0,
        };
        if unkicked == 0 {
            return Ok(());
        }
        self.c.tx_kicks += 1;
        if self.tx_socket().kick_tx()? {
            match &mut self.tx {
                Some(TxRing::V2(t)) => t.kicked(),
                Some(TxRing::V3(t)) => t.kicked(),
                None => {}
            }
        } else {
            self.c.tx_kick_busy += 1;
        }
        Ok(())
    }

    fn reap(&mut self) {
        match &mut self.tx {
            Some(TxRing::V2(t)) => {
                t.reap();
            }
            Some(TxRing::V3(t)) => {
                t.reap();
            }
            None => {}
        }
    }

    fn read_kernel(&self) -> Result<KernelStats, BackendError> {
        let now = self.sock.statistics()?;
        let mut k = self.kernel.get();
        k.packets += now.packets;
        k.drops += now.drops;
        k.freezes += now.freezes;
        self.kernel.set(k);
        Ok(k)
    }
}

impl<R: RxRing> PacketIo for PacketBackend<R> {
    fn rx_batch<F: FnMut(&mut [u8])>(&mut self, max: u32, mut f: F) -> Result<u32, BackendError> {
        let Some(rx) = self.rx.as_mut() else {
            return Err(self.unsupported(Operation::Receive));
        };
        let got = rx.receive(max, |pkt, _| {
            f(pkt);
            Step::Consume
        });
        self.c.rx_packets += got.packets as u64;
        self.c.rx_bytes += got.bytes;
        self.c.invalid += got.malformed as u64;
        Ok(got.packets)
    }

    fn tx_batch<F: FnMut(&mut [u8]) -> Option<usize>>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        let r = match &mut self.tx {
            Some(TxRing::V2(t)) => tx_fill(t, max, &mut f, &mut self.c),
            Some(TxRing::V3(t)) => tx_fill(t, max, &mut f, &mut self.c),
            None => return Err(self.unsupported(Operation::Transmit)),
        };
        self.kick()?;
        r
    }

    fn forward_batch<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<Forwarded, BackendError> {
        let Some(rx) = self.rx.as_mut() else {
            return Err(self.unsupported(Operation::Forward));
        };
        let r = match &mut self.tx {
            Some(TxRing::V2(t)) => forward_on(rx, t, max, &mut f, &mut self.c),
            Some(TxRing::V3(t)) => forward_on(rx, t, max, &mut f, &mut self.c),
            None => return Err(self.unsupported(Operation::Forward)),
        };
        if r.tx > 0 {
            self.kick()?;
        }
        Ok(r)
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.kick()?;
        self.reap();
        Ok(())
    }

    fn wait(&mut self, timeout_ms: i32) -> Result<bool, BackendError> {
        match &self.rx {
            None => return Err(self.unsupported(Operation::Receive)),
            Some(rx) if rx.ready() => return Ok(true),
            Some(_) => {}
        }
        self.c.rx_wakeups += 1;
        Ok(self.sock.poll_in(timeout_ms)?)
    }

    fn stats(&self) -> Result<BackendStats, BackendError> {
        let k = self.read_kernel()?;
        let mut s = self.c.stats();
        s.kernel_drops = k.drops;
        s.freezes = k.freezes;
        let (in_flight, wrong) = match &self.tx {
            Some(TxRing::V2(t)) => (t.in_flight(), t.wrong_format()),
            Some(TxRing::V3(t)) => (t.in_flight(), t.wrong_format()),
            None => (0, 0),
        };
        s.tx_in_flight = in_flight as u64;
        s.invalid += wrong;
        Ok(s)
    }

    fn describe(&self) -> &BackendInfo {
        &self.info
    }
}

impl<R: RxRing> AsFd for PacketBackend<R> {
    /// The socket (poll it for `POLLIN`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl<R: RxRing> AsRawFd for PacketBackend<R> {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_fd().as_raw_fd()
    }
}
