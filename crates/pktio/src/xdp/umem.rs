//! The UMEM: the packet buffer user space registers with the kernel, and the
//! ownership of its frames.
//!
//! The area is split into `frame_count` chunks of `frame_size` bytes. A chunk
//! is at every moment in exactly one place, and the types make that so:
//!
//! | place | who holds it | how it gets there |
//! |---|---|---|
//! | free pool | [`Umem`] | start, [`Frame`] dropped, completion reaped |
//! | RX path: fill ring, kernel, RX ring | the kernel | [`FillRing`](super::FillRing) submit |
//! | application | a [`Frame<'u>`](Frame) | [`Umem::alloc`], RX, completion |
//! | TX path: TX ring, kernel, completion ring | the kernel | [`TxRing`](super::TxRing) submit |
//!
//! A [`Frame<'u>`](Frame) borrows its `Umem` (it cannot outlive it), is
//! neither `Copy` nor `Clone`, and putting it on a ring consumes it. Debug
//! builds additionally keep a state per chunk and panic on a transition that
//! cannot happen (a chunk returned by the kernel that was never given to it —
//! a foreign address —, or a chunk submitted twice). [`Umem::accounting`]
//! reports how many chunks are where, so tests can assert that none leaked.
//!
//! A [`SharedUmem`] is one area for several threads: each runs a view (a
//! `Umem` whose free pool is a cache filled from the shared frame pool). For a view the table above has one more place, the shared pool
//! (or another view), reached only through the pool's lock.
//!
//! # Safety
//!
//! A `Frame` hands out `&[u8]`/`&mut [u8]` into the shared area. This is sound
//! because (1) a chunk has at most one `Frame` at a time (ownership above), and
//! (2) the kernel reads or writes a chunk only while it is on the RX or TX path,
//! never while a `Frame` for it exists. The area is unmapped only when the
//! last `Umem` on it drops (views share it through an `Arc`), which the
//! `'u` borrows order after every `Frame`. (3) Views of a [`SharedUmem`]
//! hand chunks to each other only through the pool's lock, and a view gives
//! back the chunks on its sockets' paths only when those sockets are closed
//! (its `Drop`, after every borrower); so (1) holds across threads.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::pool::{FramePool, PoolAccounting};
use super::XskError;
use crate::sys;
use crate::sys::mmap::Mmap;

/// Headroom the kernel reserves in front of each received packet in a chunk
/// (`XDP_PACKET_HEADROOM`), on top of the UMEM's own configured headroom.
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// `sizeof(union xsk_tx_metadata)`: flags (8), then request {csum_start,
/// csum_offset, pad, launch_time} or completion {tx_timestamp} (16).
pub(crate) const XSK_TX_METADATA_SIZE: u32 = 24;

/// Whether (and how) a [`Umem`] carries TX metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxMetadataMode {
    /// No TX metadata (the default).
    #[default]
    Off,
    /// `tx_metadata_len` = `sizeof(union xsk_tx_metadata)` (kernel 6.8).
    On,
    /// As `On`, and copy mode computes requested checksums in software
    /// (`XDP_UMEM_TX_SW_CSUM`: for testing and devices without offload).
    SoftwareChecksum,
}

impl TxMetadataMode {
    /// `tx_metadata_len` to register.
    pub fn metadata_len(self) -> u32 {
        match self {
            TxMetadataMode::Off => 0,
            _ => XSK_TX_METADATA_SIZE,
        }
    }

    /// Whether no TX metadata is carried.
    pub fn is_off(self) -> bool {
        self == TxMetadataMode::Off
    }
}

/// Bits of an unaligned-mode address that hold the offset (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`).
const UNALIGNED_OFFSET_SHIFT: u32 = 48;
const UNALIGNED_ADDR_MASK: u64 = (1 << UNALIGNED_OFFSET_SHIFT) - 1;

/// How to build a [`Umem`].
#[derive(Debug, Clone)]
pub struct UmemConfig {
    /// Bytes per frame (chunk): 2048 or 4096 in aligned mode; 2048..=65536 when unaligned.
    pub frame_size: u32,
    /// Number of frames.
    pub frame_count: u32,
    /// Extra headroom reserved by the kernel before each received packet.
    pub headroom: u32,
    /// Back the area with huge pages (`MAP_HUGETLB`); they must be reserved
    /// (`/proc/sys/vm/nr_hugepages`).
    pub hugepages: bool,
    /// Unaligned chunk mode (`XDP_UMEM_UNALIGNED_CHUNK_FLAG`, kernel 5.4):
    /// descriptors may point anywhere, not just at chunk starts.
    pub unaligned: bool,
    /// Fill ring entries (power of two). 0 means twice the frame count: the
    /// kernel publishes its fill-ring consumer index lazily, so a fill ring no
    /// larger than the frame count can look full while frames wait to go back.
    pub fill_size: u32,
    /// Completion ring entries (power of two). 0 means twice the frame count.
    pub completion_size: u32,
    /// TX metadata (`tx_metadata_len` in `XDP_UMEM_REG`, kernel 6.8): room
    /// for a `struct xsk_tx_metadata` before each TX packet, to request
    /// checksum offload and completion timestamps per packet
    /// ([`super::metadata`]).
    pub tx_metadata: TxMetadataMode,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig {
            frame_size: 4096,
            frame_count: 4096,
            headroom: 0,
            hugepages: false,
            unaligned: false,
            fill_size: 0,
            completion_size: 0,
            tx_metadata: TxMetadataMode::Off,
        }
    }
}

impl UmemConfig {
    /// Checks the configuration; the error says which setting to change.
    pub fn validate(&self) -> Result<(), XskError> {
        let bad = |m: String| Err(XskError::Config(m));
        if self.unaligned {
            if !(2048..=65536).contains(&self.frame_size) {
                return bad(format!(
                    "frame size {} not allowed in unaligned mode: use 2048..=65536",
                    self.frame_size
                ));
            }
        } else if self.frame_size != 2048 && self.frame_size != 4096 {
            return bad(format!(
                "frame size {} not allowed: use 2048 or 4096 (or unaligned mode)",
                self.frame_size
            ));
        }
        if self.frame_count == 0 {
            return bad("frame count must be at least 1".into());
        }
        if self.headroom + XDP_PACKET_HEADROOM + 64 > self.frame_size {
            return bad(format!(
                "headroom {} leaves no room for a packet in a {}-byte frame",
                self.headroom, self.frame_size
            ));
        }
        for (name, v) in [
            ("fill", self.fill_size),
            ("completion", self.completion_size),
        ] {
            if v != 0 && !v.is_power_of_two() {
                return bad(format!("{name} ring size {v} is not a power of two"));
            }
        }
        if (self.frame_size as u64) * (self.frame_count as u64) > (1u64 << 40) {
            return bad("UMEM larger than 1 TiB".into());
        }
        Ok(())
    }

    pub(crate) fn fill_entries(&self) -> u32 {
        ring_default(self.fill_size, self.frame_count)
    }

    pub(crate) fn completion_entries(&self) -> u32 {
        ring_default(self.completion_size, self.frame_count)
    }
}

fn ring_default(set: u32, frames: u32) -> u32 {
    if set != 0 {
        set
    } else {
        (frames.saturating_mul(2)).next_power_of_two().max(64)
    }
}

/// Address ↔ chunk arithmetic of a UMEM geometry, on the per-packet path.
///
/// Aligned UMEMs have a power-of-two frame size (2048 or 4096, checked by
/// [`UmemConfig::validate`]), so a chunk base is `addr & !mask` and a chunk
/// index `addr >> shift`: no division per packet. Unaligned UMEMs carry the
/// offset in the address's top bits and may have any frame size, so their
/// foreign-address check keeps a division.
#[derive(Debug, Clone, Copy)]
struct Chunks {
    frame_size: u64,
    frame_count: u64,
    unaligned: bool,
    /// `log2(frame_size)` (aligned mode).
    shift: u32,
    /// `frame_size - 1` (aligned mode).
    mask: u64,
}

impl Chunks {
    fn new(cfg: &UmemConfig) -> Chunks {
        debug_assert!(cfg.unaligned || cfg.frame_size.is_power_of_two());
        Chunks {
            frame_size: cfg.frame_size as u64,
            frame_count: cfg.frame_count as u64,
            unaligned: cfg.unaligned,
            shift: cfg.frame_size.trailing_zeros(),
            mask: cfg.frame_size as u64 - 1,
        }
    }

    /// The descriptor address of `offset` bytes into the chunk at `base`.
    #[inline]
    fn encode(&self, base: u64, offset: u64) -> u64 {
        if self.unaligned {
            base | (offset << UNALIGNED_OFFSET_SHIFT)
        } else {
            base + offset
        }
    }

    /// (chunk base, byte offset of the data in the area) of a descriptor address.
    #[inline]
    fn decode(&self, addr: u64) -> (u64, u64) {
        if self.unaligned {
            let base = addr & UNALIGNED_ADDR_MASK;
            (base, base + (addr >> UNALIGNED_OFFSET_SHIFT))
        } else {
            (addr & !self.mask, addr)
        }
    }

    /// The chunk index of a descriptor address, or `None` if it is not one
    /// of ours (a foreign address).
    #[inline]
    fn chunk_of(&self, addr: u64) -> Option<u32> {
        if self.unaligned {
            let (base, data) = self.decode(addr);
            let fs = self.frame_size;
            let idx = base / fs;
            (base % fs == 0 && idx < self.frame_count && data < (idx + 1) * fs)
                .then_some(idx as u32)
        } else {
            // The base is chunk-aligned and the data inside its chunk by
            // construction: only the index needs checking.
            let idx = addr >> self.shift;
            (idx < self.frame_count).then_some(idx as u32)
        }
    }
}

/// The socket that owns a device queue's fill and completion rings.
#[derive(Debug, Clone)]
pub(crate) enum PairFd {
    /// The UMEM's registration socket.
    Registration,
    /// Another socket of this UMEM (weak: it may have been dropped).
    Socket(std::sync::Weak<OwnedFd>),
}

/// Where a chunk is (debug builds track this per chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Place {
    Free,
    App,
    RxPath,
    TxPath,
    /// With the pool of a [`SharedUmem`] or another of its views (a view's
    /// debug table only).
    Away,
}

/// How many frames are where (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accounting {
    /// Frames in the UMEM.
    pub total: u32,
    /// In the free pool.
    pub free: u32,
    /// Held by the application as [`Frame`]s.
    pub app: u32,
    /// Given to the kernel for receiving: in the fill ring, in the kernel, or
    /// in the RX ring not yet read.
    pub rx_path: u32,
    /// Given to the kernel for sending: in the TX ring, in the kernel, or in
    /// the completion ring not yet reaped.
    pub tx_path: u32,
    /// Descriptors the kernel returned that named no frame of this UMEM
    /// (skipped; always 0 unless something is badly wrong).
    pub kernel_invalid: u64,
}

impl Accounting {
    /// Frames that are nowhere: `total - (free + app + rx_path + tx_path)`.
    /// Always 0 unless a frame was leaked (e.g. `mem::forget`).
    pub fn unaccounted(&self) -> i64 {
        self.total as i64 - (self.free + self.app + self.rx_path + self.tx_path) as i64
    }
}

/// The registered packet buffer. See the module docs.
///
/// `Umem` is `Send` but not `Sync`: it and the sockets and frames that borrow
/// it live on one thread (create one UMEM per thread for multi-threaded use;
/// [`crate::queues::QueueSet`] does that, one per queue).
#[derive(Debug)]
pub struct Umem {
    /// The area and the socket it is registered on (shared with the other
    /// views of a [`SharedUmem`]).
    reg: Arc<Registration>,
    /// Whether a socket of this `Umem` took the registration socket.
    claimed: Cell<bool>,
    /// The pool of the [`SharedUmem`] this is a view of, and its id there.
    shared: Option<(Arc<FramePool>, u16)>,
    /// Frames this `Umem` holds: all of them, unless it is a view.
    held: Cell<u32>,
    /// Ring sizes already set on the registration socket (fill, completion,
    /// rx, tx; 0 = not set): a socket option that can be set only once.
    reg_rings: Cell<[u32; 4]>,
    /// (ifindex, queue, raw fd, owner) of each socket owning a device
    /// queue's fill/completion rings.
    pairs: RefCell<Vec<(u32, u32, RawFd, PairFd)>>,
    cfg: UmemConfig,
    /// Address ↔ chunk arithmetic, precomputed from `cfg`.
    chunks: Chunks,
    /// The free frames (of a view: its cache, refilled from and spilled to
    /// the shared pool `VIEW_BATCH` at a time).
    pool: RefCell<Vec<u64>>,
    app: Cell<u32>,
    rx_path: Cell<u32>,
    tx_path: Cell<u32>,
    kernel_invalid: Cell<u64>,
    #[cfg(debug_assertions)]
    places: Box<[Cell<Place>]>,
}

impl Umem {
    /// Maps the area and registers it:
    /// `mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE[|MAP_HUGETLB])`,
    /// `socket(AF_XDP)`, `setsockopt(SOL_XDP, XDP_UMEM_REG)`. Kernel 4.18.
    ///
    /// # Errors
    /// [`XskError::Config`] for a bad configuration; [`XskError::NoHugepages`]
    /// when huge pages were asked for but none are reserved;
    /// [`XskError::UmemReg`] when registration fails (most often
    /// RLIMIT_MEMLOCK without CAP_IPC_LOCK: the error's hint says how to raise it).
    pub fn new(cfg: UmemConfig) -> Result<Umem, XskError> {
        let reg = Registration::new(&cfg, None)?;
        Ok(Umem::assemble(Arc::new(reg), cfg, None))
    }

    /// As [`Umem::new`], registering the UMEM on a given AF_XDP socket
    /// instead of opening one (libxdp's `xsk_umem__create_with_fd`): the
    /// socket an unprivileged worker received from a privileged helper
    /// ([`crate::xdp::handoff`]). The UMEM's first socket
    /// ([`XskSocketBuilder::build`](super::XskSocketBuilder::build)) is then
    /// this one; no capability is needed for any of it.
    ///
    /// The UMEM is charged to the caller's `RLIMIT_MEMLOCK` unless it holds
    /// `CAP_IPC_LOCK`: a worker needs a limit of at least
    /// `frame_size * frame_count` bytes (plus what its other sockets pin).
    ///
    /// # Errors
    /// [`XskError::Config`] when `socket` is not an AF_XDP socket, or for a
    /// bad configuration; [`XskError::UmemReg`] when registration fails
    /// (`ENOBUFS`/`ENOMEM`: `RLIMIT_MEMLOCK` too low — raise it with
    /// `ulimit -l`, `LimitMEMLOCK=` in a systemd unit, or `prlimit` from the
    /// helper; `EBUSY`: a UMEM is already registered on this socket).
    pub fn with_socket(socket: OwnedFd, cfg: UmemConfig) -> Result<Umem, XskError> {
        if let Err(what) = super::handoff::check_xdp_socket(socket.as_fd()) {
            return Err(XskError::Config(format!(
                "Umem::with_socket needs an AF_XDP socket, got {what}"
            )));
        }
        let reg = Registration::new(&cfg, Some(socket))?;
        Ok(Umem::assemble(Arc::new(reg), cfg, None))
    }

    /// A `Umem` on `reg`: all frames free, or (a view) none yet.
    fn assemble(
        reg: Arc<Registration>,
        cfg: UmemConfig,
        shared: Option<(Arc<FramePool>, u16)>,
    ) -> Umem {
        let view = shared.is_some();
        let pool = match view {
            true => Vec::new(),
            false => (0..cfg.frame_count)
                .rev()
                .map(|i| i as u64 * cfg.frame_size as u64)
                .collect(),
        };
        #[cfg(debug_assertions)]
        let start = if view { Place::Away } else { Place::Free };
        Umem {
            #[cfg(debug_assertions)]
            places: (0..cfg.frame_count).map(|_| Cell::new(start)).collect(),
            reg,
            claimed: Cell::new(false),
            held: Cell::new(if view { 0 } else { cfg.frame_count }),
            shared,
            reg_rings: Cell::new([0; 4]),
            pairs: RefCell::new(Vec::new()),
            pool: RefCell::new(pool),
            app: Cell::new(0),
            rx_path: Cell::new(0),
            tx_path: Cell::new(0),
            kernel_invalid: Cell::new(0),
            chunks: Chunks::new(&cfg),
            cfg,
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &UmemConfig {
        &self.cfg
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.cfg.frame_size
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.cfg.frame_count
    }

    /// The largest packet a received frame can hold
    /// (`frame_size - headroom - XDP_PACKET_HEADROOM`).
    pub fn max_packet(&self) -> u32 {
        self.cfg.frame_size - self.cfg.headroom - XDP_PACKET_HEADROOM
    }

    /// Frames in the free pool.
    pub fn free_frames(&self) -> u32 {
        self.pool.borrow().len() as u32
    }

    /// Takes a frame from the free pool, with its data starting after the
    /// configured headroom and `XDP_PACKET_HEADROOM` (so a frame built here
    /// looks like a received one) and length 0.
    #[inline]
    pub fn alloc(&self) -> Option<Frame<'_>> {
        let base = self.take_free()?;
        self.moved(base, Place::Free, Place::App);
        let off = (self.cfg.headroom + XDP_PACKET_HEADROOM) as u64;
        Some(Frame {
            umem: self,
            addr: self.encode(base, off),
            len: 0,
        })
    }

    /// How many frames are where.
    pub fn accounting(&self) -> Accounting {
        Accounting {
            total: self.held.get(),
            free: self.free_frames(),
            app: self.app.get(),
            rx_path: self.rx_path.get(),
            tx_path: self.tx_path.get(),
            kernel_invalid: self.kernel_invalid.get(),
        }
    }

    /// Checks the per-frame states against the counters (debug builds; always
    /// `Ok` in release builds, which keep only the counters).
    pub fn check_accounting(&self) -> Result<Accounting, String> {
        let a = self.accounting();
        if a.unaccounted() != 0 {
            return Err(format!(
                "{} frame(s) unaccounted for: {a:?}",
                a.unaccounted()
            ));
        }
        if a.kernel_invalid != 0 {
            return Err(format!(
                "the kernel returned {} descriptor(s) naming no frame of this UMEM",
                a.kernel_invalid
            ));
        }
        #[cfg(debug_assertions)]
        {
            let mut n = [0u32; 5];
            for p in self.places.iter() {
                n[p.get() as usize] += 1;
            }
            let want = [a.free, a.app, a.rx_path, a.tx_path];
            if n[..4] != want {
                return Err(format!(
                    "per-frame states {n:?} (free, app, rx, tx, away) disagree with counters {want:?}"
                ));
            }
        }
        Ok(a)
    }

    /// The fd the UMEM is registered on.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.reg.fd.as_fd()
    }

    /// Claims the registration fd for the first socket; false if taken.
    pub(crate) fn claim_fd(&self) -> bool {
        let first = !self.reg.fd_bound.swap(true, Ordering::AcqRel);
        if first {
            self.claimed.set(true);
        }
        first
    }

    /// Ring sizes set on the registration socket so far.
    pub(crate) fn registration_rings(&self) -> [u32; 4] {
        self.reg_rings.get()
    }

    /// Records ring sizes set on the registration socket (0 keeps the old value).
    pub(crate) fn set_registration_rings(&self, sizes: [u32; 4]) {
        let mut r = self.reg_rings.get();
        for (old, new) in r.iter_mut().zip(sizes) {
            if new != 0 {
                *old = new;
            }
        }
        self.reg_rings.set(r);
    }

    /// Gives the registration fd back when that socket's bind failed.
    pub(crate) fn release_fd(&self) {
        self.reg.fd_bound.store(false, Ordering::Release);
        self.claimed.set(false);
    }

    /// The socket owning the fill/completion rings of (ifindex, queue), if any.
    pub(crate) fn pair_owner(&self, ifindex: u32, queue: u32) -> Option<PairFd> {
        self.pairs
            .borrow()
            .iter()
            .find(|p| p.0 == ifindex && p.1 == queue)
            .map(|p| p.3.clone())
    }

    pub(crate) fn add_pair(&self, ifindex: u32, queue: u32, fd: RawFd, owner: PairFd) {
        self.pairs.borrow_mut().push((ifindex, queue, fd, owner));
    }

    pub(crate) fn remove_pair(&self, fd: RawFd) {
        self.pairs.borrow_mut().retain(|p| p.2 != fd);
    }

    // ---- chunk address arithmetic (see `Chunks`) ----

    #[inline]
    fn encode(&self, base: u64, offset: u64) -> u64 {
        self.chunks.encode(base, offset)
    }

    #[inline]
    fn decode(&self, addr: u64) -> (u64, u64) {
        self.chunks.decode(addr)
    }

    /// The chunk index of a descriptor address, or `None` if it is not one
    /// of ours (a foreign address).
    #[inline]
    pub(crate) fn chunk_of(&self, addr: u64) -> Option<u32> {
        self.chunks.chunk_of(addr)
    }

    #[inline]
    fn counter(&self, p: Place) -> Option<&Cell<u32>> {
        match p {
            Place::Free | Place::Away => None,
            Place::App => Some(&self.app),
            Place::RxPath => Some(&self.rx_path),
            Place::TxPath => Some(&self.tx_path),
        }
    }

    /// Records that the chunk holding `addr` moved from `from` to `to`.
    ///
    /// # Panics
    /// In debug builds, when the chunk was not in `from` (a double submit, or
    /// an address the kernel returned that was not given to it), or `addr` is
    /// not in this UMEM.
    #[inline]
    pub(crate) fn moved(&self, addr: u64, from: Place, to: Place) {
        #[cfg(not(debug_assertions))]
        let _ = addr;
        #[cfg(debug_assertions)]
        {
            let Some(idx) = self.chunk_of(addr) else {
                panic!("pktio: address {addr:#x} is not a frame of this UMEM (foreign address)");
            };
            let cell = &self.places[idx as usize];
            assert_eq!(
                cell.get(),
                from,
                "pktio: frame {idx} (address {addr:#x}) moved {from:?} -> {to:?} but it was {:?} \
                 (double submit, or a descriptor the kernel returned twice)",
                cell.get()
            );
            cell.set(to);
        }
        if let Some(c) = self.counter(from) {
            c.set(c.get() - 1);
        }
        if let Some(c) = self.counter(to) {
            c.set(c.get() + 1);
        }
    }

    /// Takes a chunk base from the pool for the fill ring (no `Frame` made).
    #[inline]
    pub(crate) fn pop_free(&self) -> Option<u64> {
        let base = self.take_free()?;
        self.moved(base, Place::Free, Place::RxPath);
        Some(base)
    }

    /// Returns a chunk to the pool from `from`.
    #[inline]
    pub(crate) fn push_free(&self, addr: u64, from: Place) {
        let (base, _) = self.decode(addr);
        self.moved(base, from, Place::Free);
        let cached = {
            let mut pool = self.pool.borrow_mut();
            pool.push(base);
            pool.len()
        };
        if self.shared.is_some() && cached > 2 * VIEW_BATCH {
            self.spill();
        }
    }

    /// A chunk base from the free list (of a view: refilled from the
    /// shared pool when empty).
    #[inline]
    fn take_free(&self) -> Option<u64> {
        let base = self.pool.borrow_mut().pop();
        match base {
            Some(b) => Some(b),
            None => self.refill(),
        }
    }

    /// A view's cache is empty: takes `VIEW_BATCH` chunks from the shared
    /// pool and returns one of them.
    #[cold]
    fn refill(&self) -> Option<u64> {
        let (pool, view) = self.shared.as_ref()?;
        let mut cache = self.pool.borrow_mut();
        let n = pool.take(*view, VIEW_BATCH, &mut cache);
        for &b in &cache[cache.len() - n..] {
            self.moved(b, Place::Away, Place::Free);
        }
        self.held.set(self.held.get() + n as u32);
        cache.pop()
    }

    /// A view's cache is over `2 * VIEW_BATCH`: gives `VIEW_BATCH` chunks
    /// back to the shared pool, for the other views.
    #[cold]
    fn spill(&self) {
        let Some((pool, view)) = self.shared.as_ref() else {
            return;
        };
        let mut cache = self.pool.borrow_mut();
        let from = cache.len().saturating_sub(VIEW_BATCH);
        for &b in &cache[from..] {
            self.moved(b, Place::Free, Place::Away);
        }
        let n = cache.len() - from;
        pool.give(*view, cache.drain(from..));
        self.held.set(self.held.get() - n as u32);
    }

    /// Whether a descriptor the kernel handed back names a chunk of this
    /// UMEM and its length fits in that chunk. Checked in every build: a
    /// `Frame` turns the descriptor into a slice of the area.
    #[inline]
    pub(crate) fn kernel_desc_ok(&self, addr: u64, len: u32) -> bool {
        self.chunk_of(addr).is_some() && len <= self.room(addr)
    }

    /// A descriptor from the kernel that fails [`kernel_desc_ok`]: a debug
    /// build stops here (it is a bug, ours or the kernel's); a release build
    /// counts it in [`Accounting::kernel_invalid`] and skips it.
    ///
    /// [`kernel_desc_ok`]: Umem::kernel_desc_ok
    pub(crate) fn reject_kernel_desc(&self, addr: u64, len: u32) {
        debug_assert!(
            false,
            "pktio: the kernel returned descriptor {addr:#x}+{len}, which is not a frame of this UMEM (foreign address)"
        );
        self.kernel_invalid.set(self.kernel_invalid.get() + 1);
    }

    /// Wraps a descriptor the kernel handed back as a `Frame` (RX or
    /// completion); `None` (and counted) if it is not one of ours.
    #[inline]
    pub(crate) fn frame_from_kernel(&self, addr: u64, len: u32, from: Place) -> Option<Frame<'_>> {
        if !self.kernel_desc_ok(addr, len) {
            self.reject_kernel_desc(addr, len);
            return None;
        }
        self.moved(addr, from, Place::App);
        Some(Frame {
            umem: self,
            addr,
            len,
        })
    }

    /// The largest length a frame at `addr` can have.
    #[inline]
    fn room(&self, addr: u64) -> u32 {
        let (base, data) = self.decode(addr);
        (base + self.cfg.frame_size as u64 - data) as u32
    }

    /// Pointer to the data of the descriptor address.
    #[inline]
    fn data_ptr(&self, addr: u64) -> *mut u8 {
        let (_, data) = self.decode(addr);
        debug_assert!(data < self.reg.area.len() as u64);
        // SAFETY: `chunk_of` (checked when the frame was created) keeps `data`
        // inside the area.
        unsafe { self.reg.area.as_ptr().add(data as usize) }
    }
}

/// Frames a view of a [`SharedUmem`] takes from (or gives back to) the
/// shared pool at once.
const VIEW_BATCH: usize = 64;

/// The area and the AF_XDP socket it is registered on.
#[derive(Debug)]
struct Registration {
    /// The first socket built on the UMEM uses it; later ones bind with
    /// `XDP_SHARED_UMEM` to it. Declared before `area` so that it closes
    /// first.
    fd: OwnedFd,
    area: Mmap,
    /// Whether a socket has taken `fd` as its own.
    fd_bound: AtomicBool,
}

impl Registration {
    /// Maps the area and registers it (see [`Umem::new`]), on `socket` when
    /// given (see [`Umem::with_socket`]).
    fn new(cfg: &UmemConfig, socket: Option<OwnedFd>) -> Result<Registration, XskError> {
        cfg.validate()?;
        let len = cfg.frame_size as usize * cfg.frame_count as usize;
        let area = match Mmap::anonymous(len, cfg.hugepages) {
            Ok(a) => a,
            Err(e) if cfg.hugepages => {
                return Err(XskError::NoHugepages {
                    bytes: len,
                    source: e,
                })
            }
            Err(e) => {
                return Err(XskError::UmemReg {
                    bytes: len,
                    source: e,
                })
            }
        };
        let fd = match socket {
            Some(fd) => fd,
            None => sys::xdp::socket().map_err(XskError::Socket)?,
        };
        register(fd.as_fd(), &area, cfg)?;
        Ok(Registration {
            fd,
            area,
            fd_bound: AtomicBool::new(false),
        })
    }
}

/// One UMEM for several threads: one registration, one area, and a frame
/// pool the threads share.
///
/// Each thread works on a [`view`](SharedUmem::view): a [`Umem`] (so
/// `Send`, not `Sync`, with its own sockets, rings and [`Frame`]s) over the
/// whole area, that takes free frames from the shared pool 64 at a time into
/// a cache of its own and gives surplus back the same way; the pool's lock
/// is taken once per batch, not per packet. A frame is at every moment in
/// the pool or with exactly one view. The views' sockets bind with
/// `XDP_SHARED_UMEM` (one per queue, each with its own fill and completion
/// rings); the first socket of any view takes the registration socket.
///
/// Frames do not cross between views except through the pool: a frame
/// received on one view's socket is sent, recycled or dropped by that view.
/// A view that goes gives its frames back; see [`Umem`]'s `Drop`.
///
/// A view's sockets borrow it, so they are built on the thread that runs
/// them, in order: the shared UMEM's first socket must be bound before the
/// others bind to it. ([`QueueSet::open_shared`](crate::queues::QueueSet::open_shared)
/// does all this for you, each view and socket owned together.)
///
/// ```no_run
/// use pktio::xdp::{AttachMode, SharedUmem, UmemConfig, XskError, XskSocket};
/// # fn main() -> Result<(), XskError> {
/// let shared = SharedUmem::new(UmemConfig::default())?;
/// let (bound_tx, bound_rx) = std::sync::mpsc::channel();
/// std::thread::scope(|s| {
///     for queue in 0..2u32 {
///         let umem = shared.view().expect("a view");
///         let bound = bound_tx.clone();
///         s.spawn(move || -> Result<(), XskError> {
///             // One steering program for the interface (`XskProgram`,
///             // given with `.program(..)`) steers every queue.
///             let mut sock = XskSocket::builder("eth0")
///                 .queue(queue)
///                 .attach_mode(AttachMode::None)
///                 .build(&umem)?;
///             let _ = bound.send(queue);
///             sock.fill_from_pool(1024)?;
///             // ... receive on `sock` ...
///             Ok(())
///         });
///         let _ = bound_rx.recv(); // this queue's socket is bound
///     }
/// });
/// println!("{:?}", shared.accounting());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SharedUmem {
    reg: Arc<Registration>,
    pool: Arc<FramePool>,
    cfg: UmemConfig,
}

impl SharedUmem {
    /// Maps and registers the area, as [`Umem::new`] does; every frame
    /// starts in the shared pool.
    ///
    /// # Errors
    /// As [`Umem::new`].
    pub fn new(cfg: UmemConfig) -> Result<SharedUmem, XskError> {
        let reg = Registration::new(&cfg, None)?;
        Ok(SharedUmem {
            reg: Arc::new(reg),
            pool: Arc::new(FramePool::new(cfg.frame_size, cfg.frame_count)),
            cfg,
        })
    }

    /// A new view for one thread: a [`Umem`] holding no frame yet.
    ///
    /// # Errors
    /// [`XskError::Config`] after 65535 views.
    pub fn view(&self) -> Result<Umem, XskError> {
        let id = self
            .pool
            .new_view()
            .ok_or_else(|| XskError::Config("a shared UMEM has at most 65535 views".into()))?;
        let shared = Some((Arc::clone(&self.pool), id));
        Ok(Umem::assemble(
            Arc::clone(&self.reg),
            self.cfg.clone(),
            shared,
        ))
    }

    /// How many frames are in the pool and with the views.
    pub fn accounting(&self) -> PoolAccounting {
        self.pool.accounting()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &UmemConfig {
        &self.cfg
    }
}

/// Registers the UMEM (`XDP_UMEM_REG`), with TX metadata when configured:
/// first with `XDP_UMEM_TX_METADATA_LEN` (6.11), then without it (6.8–6.10).
fn register(fd: BorrowedFd<'_>, area: &Mmap, cfg: &UmemConfig) -> Result<(), XskError> {
    let len = area.len();
    let reg = |tx_len: u32, flags: u32| {
        // `Umem::new` drops `fd` before `area` on failure, and a `Umem` closes
        // `fd` before unmapping `area` (field order); Rust code reaches into
        // the area only through `Frame`s of chunks the kernel does not hold.
        // SAFETY: `area` is the UMEM's own mapping and outlives the registration (above).
        unsafe {
            sys::xdp::umem_reg_ext(
                fd,
                area,
                cfg.frame_size,
                cfg.headroom,
                cfg.unaligned,
                tx_len,
                flags,
            )
        }
    };
    let mode = cfg.tx_metadata;
    if mode.is_off() {
        return reg(0, 0).map_err(|source| XskError::UmemReg { bytes: len, source });
    }
    let sw = if mode == TxMetadataMode::SoftwareChecksum {
        sys::xdp::XDP_UMEM_TX_SW_CSUM
    } else {
        0
    };
    match reg(mode.metadata_len(), sw | sys::xdp::XDP_UMEM_TX_METADATA_LEN) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Some(libc::EINVAL) => match reg(mode.metadata_len(), sw) {
            Ok(()) => Ok(()),
            Err(e2) if e2.errno() == Some(libc::EINVAL) => Err(XskError::Unsupported {
                feature: "TX metadata",
                reason: format!(
                    "the kernel refused tx_metadata_len {} in XDP_UMEM_REG (EINVAL): it needs \
                     kernel 6.8; set UmemConfig::tx_metadata to Off",
                    mode.metadata_len()
                ),
            }),
            Err(source) => Err(XskError::UmemReg { bytes: len, source }),
        },
        Err(source) => Err(XskError::UmemReg { bytes: len, source }),
    }
}

impl Drop for Umem {
    /// Debug builds check the frame accounting one last time, so every test
    /// that drops a UMEM asserts that no frame leaked (frames still with the
    /// kernel are fine: the sockets are gone and the kernel lets go of them).
    ///
    /// A view of a [`SharedUmem`] gives its frames back to the pool: all of
    /// them, as its sockets are closed — except when one of its sockets took
    /// the registration socket, which stays open (and its fill ring full)
    /// until the `SharedUmem` goes: then only the free ones.
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        if !std::thread::panicking() {
            if let Err(e) = self.check_accounting() {
                panic!("pktio: UMEM dropped with broken frame accounting: {e}");
            }
        }
        if let Some((pool, view)) = &self.shared {
            if self.claimed.get() {
                pool.give(*view, self.pool.get_mut().drain(..));
            } else {
                pool.reclaim(*view);
            }
        }
    }
}

/// One frame of a [`Umem`], owned by the application.
///
/// Not `Copy`, not `Clone`; borrows its UMEM. Dropping it returns it to the
/// UMEM's free pool; putting it on the fill or TX ring consumes it.
#[derive(Debug)]
pub struct Frame<'u> {
    umem: &'u Umem,
    addr: u64,
    len: u32,
}

impl<'u> Frame<'u> {
    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: this Frame is the only owner of its chunk (module docs), the
        // kernel does not touch a chunk owned by the application, and
        // `len <= room` keeps the slice inside the chunk.
        unsafe { std::slice::from_raw_parts(self.umem.data_ptr(self.addr), self.len as usize) }
    }

    /// The packet bytes, writable in place (e.g. to swap MAC addresses).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `data`; `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.umem.data_ptr(self.addr), self.len as usize) }
    }

    /// All the bytes from the data start to the end of the chunk, for
    /// building a packet; follow with [`set_len`](Frame::set_len).
    #[inline]
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        let room = self.umem.room(self.addr) as usize;
        // SAFETY: as for `data_mut`, with `room` the exact space left in the chunk.
        unsafe { std::slice::from_raw_parts_mut(self.umem.data_ptr(self.addr), room) }
    }

    /// Packet length in bytes.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the packet is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most bytes this frame can hold from its data start.
    #[inline]
    pub fn capacity(&self) -> u32 {
        self.umem.room(self.addr)
    }

    /// Sets the packet length.
    ///
    /// # Errors
    /// Gives back the capacity when `len` does not fit.
    #[inline]
    pub fn set_len(&mut self, len: u32) -> Result<(), u32> {
        let cap = self.capacity();
        if len > cap {
            return Err(cap);
        }
        self.len = len;
        Ok(())
    }

    /// Copies `bytes` in as the whole packet.
    ///
    /// # Errors
    /// Gives back the capacity when `bytes` does not fit.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), u32> {
        let cap = self.capacity();
        if bytes.len() > cap as usize {
            return Err(cap);
        }
        self.buffer_mut()[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len() as u32;
        Ok(())
    }

    /// The descriptor address (offset into the UMEM) of the data.
    #[inline]
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The UMEM this frame belongs to.
    #[inline]
    pub fn umem(&self) -> &'u Umem {
        self.umem
    }

    /// Consumes the frame for a ring: returns (addr, len) and moves it to `to`
    /// without returning it to the pool.
    #[inline]
    pub(crate) fn into_ring(self, to: Place) -> (u64, u32) {
        let (addr, len) = (self.addr, self.len);
        self.umem.moved(addr, Place::App, to);
        std::mem::forget(self);
        (addr, len)
    }
}

impl Drop for Frame<'_> {
    #[inline]
    fn drop(&mut self) {
        self.umem.push_free(self.addr, Place::App);
    }
}

/// Access to the bytes in front of a frame's data (the headroom), for the
/// metadata the kernel or the steering program puts there.
impl Frame<'_> {
    /// The `n` bytes just before the data start, if the chunk has them
    /// (`None` when the data starts less than `n` bytes into its chunk).
    pub(crate) fn prefix(&self, n: u32) -> Option<&[u8]> {
        let before = self.umem.bytes_before(self.addr);
        if before < n as u64 {
            return None;
        }
        // SAFETY: as for `data`: this Frame owns the chunk, and the `n` bytes
        // before the data start lie inside the same chunk (checked above).
        Some(unsafe {
            std::slice::from_raw_parts(self.umem.data_ptr(self.addr).sub(n as usize), n as usize)
        })
    }

    /// [`prefix`](Frame::prefix), writable.
    pub(crate) fn prefix_mut(&mut self, n: u32) -> Option<&mut [u8]> {
        let before = self.umem.bytes_before(self.addr);
        if before < n as u64 {
            return None;
        }
        // SAFETY: as for `prefix`; `&mut self` makes the borrow exclusive.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                self.umem.data_ptr(self.addr).sub(n as usize),
                n as usize,
            )
        })
    }
}

impl Umem {
    /// Bytes of the chunk in front of the data at descriptor address `addr`.
    #[inline]
    fn bytes_before(&self, addr: u64) -> u64 {
        let (base, data) = self.decode(addr);
        data - base
    }

    /// The `tx_metadata_len` this UMEM was registered with (0: none).
    pub fn tx_metadata_len(&self) -> u32 {
        self.cfg.tx_metadata.metadata_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_setting() {
        let e = UmemConfig {
            frame_size: 3000,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("frame size 3000"), "{e}");
        let e = UmemConfig {
            fill_size: 1000,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("fill ring size 1000"), "{e}");
        assert!(UmemConfig {
            frame_size: 3000,
            unaligned: true,
            ..Default::default()
        }
        .validate()
        .is_ok());
        assert!(UmemConfig {
            headroom: 4000,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    /// A UMEM needs an AF_XDP socket (CAP_NET_RAW); `None` (after the
    /// skip line) when the process lacks it. Any other failure fails.
    fn small_umem(test: &str) -> Option<Umem> {
        let needs = &[pktio_host::caps::Cap::NET_RAW];
        let test = format!("xdp::umem::tests::{test}");
        if pktio_host::skip::lacks(&test, needs, "the AF_XDP socket of a UMEM") {
            return None;
        }
        let config = UmemConfig {
            frame_count: 8,
            ..Default::default()
        };
        Some(Umem::new(config).expect("a small UMEM"))
    }

    #[test]
    fn accounting_follows_every_move() {
        let Some(u) = small_umem("accounting_follows_every_move") else {
            return;
        };
        assert_eq!(u.check_accounting().unwrap().free, 8);
        let a = u.alloc().unwrap();
        let b = u.alloc().unwrap();
        let (addr_b, _) = b.into_ring(Place::TxPath);
        let fill = u.pop_free().unwrap();
        let acc = u.check_accounting().unwrap();
        assert_eq!((acc.free, acc.app, acc.rx_path, acc.tx_path), (5, 1, 1, 1));
        drop(a);
        u.push_free(addr_b, Place::TxPath);
        let f = u.frame_from_kernel(fill + 256, 60, Place::RxPath).unwrap();
        assert_eq!(f.len(), 60);
        drop(f);
        let acc = u.check_accounting().unwrap();
        assert_eq!((acc.free, acc.app, acc.rx_path, acc.tx_path), (8, 0, 0, 0));
    }

    #[test]
    fn views_draw_from_the_shared_pool_in_batches_and_give_everything_back() {
        let shared = match SharedUmem::new(UmemConfig {
            frame_count: 256,
            ..Default::default()
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("SKIPPED views_draw_from_the_shared_pool: needs CAP_NET_RAW ({e})");
                return;
            }
        };
        let (a, b) = (shared.view().unwrap(), shared.view().unwrap());
        assert_eq!(a.accounting().total, 0, "a view starts with no frame");
        let held: Vec<_> = (0..200).map_while(|_| a.alloc()).collect();
        assert_eq!(held.len(), 200);
        let acc = shared.accounting();
        assert_eq!(
            (acc.free, acc.in_views),
            (256 - 256, 256),
            "four batches of 64"
        );
        // b finds nothing until a gives frames back past its cache limit.
        assert!(b.alloc().is_none());
        drop(held);
        assert_eq!(a.check_accounting().unwrap().total, 2 * VIEW_BATCH as u32);
        let f = b.alloc().expect("a spilled frames to the pool");
        let in_b = f.addr();
        drop(f);
        assert_eq!(b.accounting().total, VIEW_BATCH as u32);
        // A chunk is with one view at a time: b's is not a's.
        assert!(a.pool.borrow().iter().all(|&base| base != in_b & !4095));
        drop(a);
        drop(b);
        let acc = shared.accounting();
        assert_eq!((acc.total, acc.free, acc.in_views), (256, 256, 0));
    }

    #[cfg(debug_assertions)]
    #[test]
    fn debug_builds_catch_foreign_addresses_and_double_submits() {
        let Some(u) = small_umem("debug_builds_catch_foreign_addresses_and_double_submits") else {
            return;
        };
        // An address beyond the UMEM.
        let foreign = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            u.frame_from_kernel(8 * 4096 + 100, 60, Place::RxPath);
        }));
        let msg = foreign.unwrap_err();
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("foreign address"), "{msg}");
        // A frame the kernel "returns" that was never given to it.
        let free_addr = 3 * 4096;
        let never_given = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            u.frame_from_kernel(free_addr, 60, Place::RxPath);
        }));
        let msg = never_given.unwrap_err();
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("double submit"), "{msg}");
        // The same chunk submitted twice to the fill ring.
        let f = u.alloc().unwrap();
        let (addr, _) = f.into_ring(Place::RxPath);
        let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            u.moved(addr, Place::App, Place::RxPath);
        }));
        assert!(
            twice.is_err(),
            "a second submit of the same frame is caught"
        );
    }

    #[test]
    fn hugepages_without_reservation_say_how_to_reserve() {
        let reserved = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let r = Umem::new(UmemConfig {
            frame_count: 512,
            hugepages: true,
            ..Default::default()
        });
        match (reserved, r) {
            (Some(0), Err(e @ XskError::NoHugepages { .. })) => {
                assert!(e.to_string().contains("nr_hugepages"), "{e}");
            }
            (Some(0), Err(e)) => panic!("expected NoHugepages, got {e:?}"),
            (Some(0), Ok(_)) => panic!("a hugepage UMEM without reserved huge pages"),
            // Huge pages are reserved here: the UMEM is built (its socket
            // needs CAP_NET_RAW), or refused as above if they are all taken.
            (_, Ok(_) | Err(XskError::NoHugepages { .. })) => {}
            (_, Err(e)) => {
                let needs = &[pktio_host::caps::Cap::NET_RAW];
                let why = "the AF_XDP socket of a hugepage UMEM";
                let test = "xdp::umem::tests::hugepages_without_reservation_say_how_to_reserve";
                if !pktio_host::skip::lacks(test, needs, why) {
                    panic!("a hugepage UMEM with huge pages reserved: {e}");
                }
            }
        }
    }

    /// The chunk arithmetic as it was, with division: the reference the
    /// shift/mask path must agree with.
    fn chunk_by_division(c: &UmemConfig, addr: u64) -> Option<u32> {
        let fs = c.frame_size as u64;
        let (base, data) = if c.unaligned {
            let base = addr & UNALIGNED_ADDR_MASK;
            (base, base + (addr >> UNALIGNED_OFFSET_SHIFT))
        } else {
            (addr - addr % fs, addr)
        };
        let idx = base / fs;
        (base % fs == 0 && idx < c.frame_count as u64 && data < (idx + 1) * fs)
            .then_some(idx as u32)
    }

    fn geometry(frame_size: u32, frame_count: u32, unaligned: bool) -> UmemConfig {
        UmemConfig {
            frame_size,
            frame_count,
            unaligned,
            ..Default::default()
        }
    }

    #[test]
    fn shift_and_mask_agree_with_division_on_every_frame() {
        for c in [
            geometry(2048, 1, false),
            geometry(2048, 4096, false),
            geometry(4096, 513, false),
            geometry(4096, 4096, false),
            geometry(3000, 100, true),
            geometry(4096, 64, true),
        ] {
            let k = Chunks::new(&c);
            let fs = c.frame_size as u64;
            for i in 0..c.frame_count as u64 + 2 {
                let base = i * fs;
                for off in [0, 1, 256, fs / 2, fs - 1] {
                    let addr = k.encode(base, off);
                    assert_eq!(
                        k.chunk_of(addr),
                        chunk_by_division(&c, addr),
                        "{c:?} {addr:#x}"
                    );
                    let (b, data) = k.decode(addr);
                    assert_eq!((b, data), (base, base + off), "{c:?} {addr:#x}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn chunk_of_matches_division_for_any_address(
            addr in proptest::prelude::any::<u64>(),
            big in proptest::prelude::any::<bool>(),
            count in 1u32..10_000,
            unaligned in proptest::prelude::any::<bool>(),
        ) {
            let c = geometry(if big { 4096 } else { 2048 }, count, unaligned);
            let k = Chunks::new(&c);
            // Addresses near the area, where the answers differ most.
            let near = addr % (2 * c.frame_size as u64 * count as u64);
            for a in [addr, near] {
                proptest::prop_assert_eq!(k.chunk_of(a), chunk_by_division(&c, a));
            }
        }
    }

    #[test]
    fn default_fill_ring_is_twice_the_frames() {
        let c = UmemConfig {
            frame_count: 3000,
            ..Default::default()
        };
        assert_eq!(c.fill_entries(), 8192);
        assert_eq!(c.completion_entries(), 8192);
    }
}
