//! The mmap'd TPACKET rings: the frame ring (V2 RX and TX, V3 TX), the V3
//! block ring (RX) with its [`Block`] guard, and the one mapping they share.
//!
//! # The status handshake
//!
//! Every frame (and every V3 block) carries a status word shared with the
//! kernel; whoever the status names owns the frame, and only the owner
//! touches the rest of it:
//!
//! | ring | user space may use it when | user space hands it over with |
//! |---|---|---|
//! | RX frame (V2) | `tp_status & TP_STATUS_USER` | `TP_STATUS_KERNEL` |
//! | RX block (V3) | `block_status & TP_STATUS_USER` | `TP_STATUS_KERNEL` |
//! | TX frame | `tp_status == TP_STATUS_AVAILABLE` | `TP_STATUS_SEND_REQUEST` |
//!
//! The status words are read and written as `AtomicU32`: an `Acquire` load
//! takes a slot (it pairs with the kernel's `smp_wmb()` before the status
//! store that gave the slot to us, so everything the kernel wrote before is
//! visible), and a `Release` store hands it back (it pairs with the
//! kernel's `smp_rmb()` after it reads the status, so everything we wrote —
//! or finished reading — is done before the kernel reuses the slot). Each
//! atomic below names its kernel partner in an `ORDERING:` comment.
//!
//! # Safety
//!
//! The mapping is owned by `RingMap` and shared (`Arc`) by the rings cut
//! from it, so it outlives every pointer derived from it. The geometry a
//! ring walks is the one handed to the kernel by `install` itself, so
//! every frame and block offset lies inside the mapping. Bytes of a frame or
//! block are read or written only while its status word gives it to user
//! space, when the kernel does not write them (it may still *read* a status
//! word, which we then only read too); the status words themselves are
//! accessed only atomically. Slices handed to callers borrow the ring
//! mutably, so no two of them overlap and none outlives the slot's
//! ownership.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::block::{self, BlockCursor, BlockError, BlockHeader};
use super::geometry::RingRole;
use super::header::{parse_header, FrameHeader, PacketSpan, V2, V3};
use crate::error::SysError;
use crate::sys::mmap::Mmap;
use crate::sys::packet::{self as sys, RingReq, Version, BLOCK_STATUS_OFFSET};

const TP_STATUS_KERNEL: u32 = libc::TP_STATUS_KERNEL;
const TP_STATUS_USER: u32 = libc::TP_STATUS_USER;
const TP_STATUS_SEND_REQUEST: u32 = libc::TP_STATUS_SEND_REQUEST;
const TP_STATUS_SENDING: u32 = libc::TP_STATUS_SENDING;
const TP_STATUS_WRONG_FORMAT: u32 = libc::TP_STATUS_WRONG_FORMAT;

/// The shared mapping of a socket's rings: RX first, then TX.
#[derive(Debug)]
pub(crate) struct RingMap {
    map: Mmap,
}

// SAFETY: `RingMap` only hands out its base address; every access to the memory goes through the ring types below, which follow the status handshake (and need `&mut` for anything but status loads), so sharing the owner between the RX and TX ring (even on different threads) adds no race.
unsafe impl Sync for RingMap {}

impl RingMap {
    fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }
}

/// What [`install`] set up on a socket: the mapping and the geometry the
/// kernel accepted for each ring.
#[derive(Debug)]
pub(crate) struct Installed {
    /// `None` when neither ring was installed (nothing to map).
    map: Option<Arc<RingMap>>,
    version: Version,
    rx: Option<RingReq>,
    tx: Option<RingReq>,
}

/// Why [`install`] failed: which step, for which ring.
#[derive(Debug)]
pub(crate) struct InstallError {
    pub(crate) ring: Option<RingRole>,
    pub(crate) source: SysError,
}

/// Installs the rings on a socket whose `PACKET_VERSION` is `version`:
/// `setsockopt(PACKET_RX_RING)`, `setsockopt(PACKET_TX_RING)`, then one
/// `mmap` of both. With `tx_optional`, a TX ring the kernel refuses is left
/// out (the refusal is returned beside the result) instead of failing.
pub(crate) fn install(
    fd: BorrowedFd<'_>,
    version: Version,
    rx: Option<RingReq>,
    tx: Option<RingReq>,
    tx_optional: bool,
) -> Result<(Installed, Option<SysError>), InstallError> {
    let err = |ring, source| InstallError { ring, source };
    if let Some(r) = &rx {
        sys::set_ring(fd, version, false, r).map_err(|e| err(Some(RingRole::Rx), e))?;
    }
    let mut refused = None;
    let tx = match tx {
        Some(r) => match sys::set_ring(fd, version, true, &r) {
            Ok(()) => Some(r),
            Err(e) if tx_optional => {
                refused = Some(e);
                None
            }
            Err(e) => return Err(err(Some(RingRole::Tx), e)),
        },
        None => None,
    };
    let len = rx.map_or(0, |r| r.bytes()) + tx.map_or(0, |r| r.bytes());
    let map = match len {
        0 => None,
        _ => Some(Arc::new(RingMap {
            map: sys::map_rings(fd, len).map_err(|e| err(None, e))?,
        })),
    };
    Ok((
        Installed {
            map,
            version,
            rx,
            tx,
        },
        refused,
    ))
}

/// What an RX callback tells the ring about the packet it was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Done with it: release it and go on.
    Consume,
    /// Leave it (and the rest) in the ring for the next call.
    Stop,
}

/// Counts of one RX pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCount {
    /// Packets shown to the callback and consumed.
    pub packets: u32,
    /// Their captured bytes.
    pub bytes: u64,
    /// Frames or blocks whose headers made no sense (skipped, released).
    pub malformed: u32,
}

/// A ring of fixed-size frames: V2 RX, V2 TX, V3 TX (`H` is the frame header).
#[derive(Debug)]
pub struct FrameRing<H: FrameHeader> {
    mem: Arc<RingMap>,
    /// Byte offset of the ring in the mapping.
    offset: usize,
    block_size: usize,
    frame_size: usize,
    frames_per_block: u32,
    frame_nr: u32,
    /// RX: next frame to read. TX: next frame to fill.
    head: u32,
    /// TX: oldest frame handed to the kernel and not seen completed.
    tail: u32,
    /// TX: frames handed to the kernel (`head - tail`).
    in_flight: u32,
    /// TX: frames marked since the last kick.
    unkicked: u32,
    /// TX: completed frames the kernel marked `TP_STATUS_WRONG_FORMAT`.
    wrong_format: u64,
    _h: PhantomData<H>,
}

impl<H: FrameHeader> FrameRing<H> {
    /// The `role` ring of `inst`, if it has one and its version is `H`'s.
    pub(crate) fn from_installed(inst: &Installed, role: RingRole) -> Option<FrameRing<H>> {
        if inst.version != super::header::version_of::<H>() {
            return None;
        }
        let (req, offset) = match role {
            RingRole::Rx => (inst.rx?, 0),
            RingRole::Tx => (inst.tx?, inst.rx.map_or(0, |r| r.bytes())),
        };
        if inst.version == Version::V3 && role == RingRole::Rx {
            return None; // a V3 RX ring is a block ring
        }
        let frames_per_block = req.block_size / req.frame_size;
        Some(FrameRing {
            mem: Arc::clone(inst.map.as_ref()?),
            offset,
            block_size: req.block_size as usize,
            frame_size: req.frame_size as usize,
            frames_per_block,
            frame_nr: req.frame_nr,
            head: 0,
            tail: 0,
            in_flight: 0,
            unkicked: 0,
            wrong_format: 0,
            _h: PhantomData,
        })
    }

    /// Frames in the ring.
    pub fn frames(&self) -> u32 {
        self.frame_nr
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// The largest packet a TX frame holds.
    pub fn tx_capacity(&self) -> usize {
        self.frame_size - H::TX_DATA
    }

    /// Byte offset of frame `i` in the mapping (`packet_lookup_frame`:
    /// frames never straddle blocks).
    fn frame_offset(&self, i: u32) -> usize {
        self.offset
            + (i / self.frames_per_block) as usize * self.block_size
            + (i % self.frames_per_block) as usize * self.frame_size
    }

    fn frame_ptr(&self, i: u32) -> *mut u8 {
        debug_assert!(i < self.frame_nr);
        // SAFETY: `frame_offset(i) + frame_size` lies inside the mapping for
        // every `i < frame_nr` (the geometry the kernel accepted and mapped).
        unsafe { self.mem.base().add(self.frame_offset(i)) }
    }

    /// Frame `i`'s status word.
    fn status(&self, i: u32) -> &AtomicU32 {
        // SAFETY: the word lies inside frame `i` (H::STATUS + 4 <= H::SIZE <= frame_size), is 4-aligned (frames are 16-aligned inside page-aligned blocks), lives as long as `self.mem`, and is only ever accessed atomically on our side (the kernel uses READ_ONCE/WRITE_ONCE).
        unsafe { &*self.frame_ptr(i).add(H::STATUS).cast::<AtomicU32>() }
    }

    fn next(&self, i: u32) -> u32 {
        if i + 1 == self.frame_nr {
            0
        } else {
            i + 1
        }
    }

    // ---- RX ----

    /// Shows up to `max` received packets to `f`, in order, as mutable
    /// slices of the ring; each one `f` consumes goes back to the kernel.
    pub fn receive<F>(&mut self, max: u32, mut f: F) -> RxCount
    where
        F: FnMut(&mut [u8], &PacketSpan) -> Step,
    {
        let mut c = RxCount::default();
        while c.packets < max {
            let i = self.head;
            // ORDERING: Acquire pairs with the smp_wmb() before
            // __packet_set_status(TP_STATUS_USER) in tpacket_rcv: the header
            // and data the kernel wrote are visible once we see USER.
            if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            let p = self.frame_ptr(i);
            let span = {
                // SAFETY: frame `i` is ours (status USER); the kernel at most
                // reads its status word. The shared slice ends with this block.
                let frame = unsafe { std::slice::from_raw_parts(p, self.frame_size) };
                parse_header::<H>(frame, 0)
            };
            let step = match span {
                Ok(span) => {
                    // SAFETY: `span.data` was bounds-checked against the frame and starts after the header (so it excludes the status word); the frame is ours and `&mut self` makes the slice exclusive until `f` returns.
                    let data = unsafe {
                        std::slice::from_raw_parts_mut(p.add(span.data.start), span.data.len())
                    };
                    let step = f(data, &span);
                    if step == Step::Consume {
                        c.packets += 1;
                        c.bytes += span.data.len() as u64;
                    }
                    step
                }
                Err(_) => {
                    c.malformed += 1;
                    Step::Consume
                }
            };
            if step == Step::Stop {
                break;
            }
            // ORDERING: Release pairs with the smp_rmb() after the status
            // read in __packet_get_status (tpacket_rcv looking for a free
            // frame): our reads of the frame are done before it refills it.
            self.status(i).store(TP_STATUS_KERNEL, Ordering::Release);
            self.head = self.next(i);
        }
        c
    }

    /// Whether the next frame holds a packet (no system call).
    pub fn rx_ready(&self) -> bool {
        // ORDERING: Acquire, as in `receive` (a hint only; `receive` re-reads).
        self.status(self.head).load(Ordering::Acquire) & TP_STATUS_USER != 0
    }

    // ---- TX ----

    /// The next free TX frame, or `None` when every frame is with the kernel.
    pub fn reserve(&mut self) -> Option<TxSlot<'_, H>> {
        if self.in_flight == self.frame_nr {
            self.reap();
            if self.in_flight == self.frame_nr {
                return None;
            }
        }
        let i = self.head;
        // ORDERING: Acquire pairs with the smp_wmb() before
        // __packet_set_status(TP_STATUS_AVAILABLE) in tpacket_destruct_skb:
        // the kernel has finished reading the frame.
        let st = self.status(i).load(Ordering::Acquire);
        if st & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING) != 0 {
            // Our count says it is free; the kernel disagrees. Wait for it.
            return None;
        }
        Some(TxSlot { ring: self, idx: i })
    }

    /// Counts the frames the kernel has finished sending (status back to
    /// `TP_STATUS_AVAILABLE`, or `TP_STATUS_WRONG_FORMAT`), oldest first.
    /// Returns how many completed.
    pub fn reap(&mut self) -> u32 {
        let mut n = 0;
        while self.in_flight > 0 {
            // ORDERING: Acquire, as in `reserve`.
            let st = self.status(self.tail).load(Ordering::Acquire);
            if st & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING) != 0 {
                break;
            }
            if st & TP_STATUS_WRONG_FORMAT != 0 {
                self.wrong_format += 1;
            }
            self.tail = self.next(self.tail);
            self.in_flight -= 1;
            n += 1;
        }
        n
    }

    /// Frames handed to the kernel and not seen completed.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Frames marked for sending since the last [`kicked`](Self::kicked).
    pub fn unkicked(&self) -> u32 {
        self.unkicked
    }

    /// Records that the kernel was asked to send (`sendto`).
    pub fn kicked(&mut self) {
        self.unkicked = 0;
    }

    /// Completed frames the kernel refused as malformed.
    pub fn wrong_format(&self) -> u64 {
        self.wrong_format
    }
}

/// A free TX frame. Write the packet into [`buffer`](TxSlot::buffer), then
/// [`send`](TxSlot::send) it; dropping the slot leaves the frame free.
#[must_use = "the frame is sent only by send()"]
#[derive(Debug)]
pub struct TxSlot<'r, H: FrameHeader> {
    ring: &'r mut FrameRing<H>,
    idx: u32,
}

impl<H: FrameHeader> TxSlot<'_, H> {
    /// The frame's packet area (its previous contents are stale).
    pub fn buffer(&mut self) -> &mut [u8] {
        let cap = self.ring.tx_capacity();
        // SAFETY: the frame is ours (status AVAILABLE, not in flight by our
        // count); the packet area starts after the header, so it excludes the
        // status word; `&mut self` makes the slice exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(self.ring.frame_ptr(self.idx).add(H::TX_DATA), cap)
        }
    }

    /// Bytes the packet area holds.
    pub fn capacity(&self) -> usize {
        self.ring.tx_capacity()
    }

    /// Marks the first `len` bytes of the buffer for sending
    /// (`TP_STATUS_SEND_REQUEST`); a `sendto` then transmits it.
    ///
    /// # Errors
    /// Gives the slot back when `len` is 0 or more than the capacity.
    pub fn send(self, len: usize) -> Result<(), Self> {
        if len == 0 || len > self.capacity() {
            return Err(self);
        }
        let p = self.ring.frame_ptr(self.idx);
        // SAFETY: the header lies in our frame (H::LEN + 4 and the next-offset
        // word are inside H::SIZE); plain stores are fine while we own the
        // frame, and the Release store below publishes them.
        unsafe {
            p.add(H::LEN).cast::<u32>().write(len as u32);
            if let Some(off) = H::NEXT_OFFSET {
                // V3 TX frames are fixed-size: tp_next_offset must be 0.
                p.add(off).cast::<u32>().write(0);
            }
        }
        // ORDERING: Release pairs with the smp_rmb() after the status read in
        // __packet_get_status (packet_current_frame in tpacket_snd): the
        // packet bytes and tp_len are visible once the kernel sees SEND_REQUEST.
        self.ring
            .status(self.idx)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        let r = self.ring;
        r.head = r.next(self.idx);
        r.in_flight += 1;
        r.unkicked += 1;
        Ok(())
    }
}

/// The V3 RX ring: `block_nr` blocks the kernel fills with packets of any
/// size and hands over whole.
#[derive(Debug)]
pub struct BlockRing {
    mem: Arc<RingMap>,
    block_size: usize,
    block_nr: u32,
    /// The next block to read.
    current: u32,
    /// Where the walk of `current` paused (`None`: at its start).
    cursor: Option<BlockCursor>,
}

impl BlockRing {
    /// The RX block ring of `inst`, if it is a V3 installation with one.
    pub(crate) fn from_installed(inst: &Installed) -> Option<BlockRing> {
        if inst.version != Version::V3 {
            return None;
        }
        let req = inst.rx?;
        Some(BlockRing {
            mem: Arc::clone(inst.map.as_ref()?),
            block_size: req.block_size as usize,
            block_nr: req.block_nr,
            current: 0,
            cursor: None,
        })
    }

    /// Blocks in the ring.
    pub fn blocks(&self) -> u32 {
        self.block_nr
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    fn block_ptr(&self, i: u32) -> *mut u8 {
        debug_assert!(i < self.block_nr);
        // SAFETY: block `i < block_nr` lies inside the mapping (RX ring first).
        unsafe { self.mem.base().add(i as usize * self.block_size) }
    }

    fn status(&self, i: u32) -> &AtomicU32 {
        // SAFETY: `block_status` is at byte 8 of the block (asserted in
        // sys::packet), 4-aligned, inside the mapping, accessed atomically.
        unsafe {
            &*self
                .block_ptr(i)
                .add(BLOCK_STATUS_OFFSET)
                .cast::<AtomicU32>()
        }
    }

    /// Whether the current block is with user space (no system call).
    pub fn rx_ready(&self) -> bool {
        // ORDERING: Acquire, as in `block`.
        self.status(self.current).load(Ordering::Acquire) & TP_STATUS_USER != 0
    }

    /// The current block, if the kernel has closed it and handed it over.
    /// Dropping the [`Block`] gives it back to the kernel.
    pub fn block(&mut self) -> Option<Block<'_>> {
        let i = self.current;
        // ORDERING: Acquire pairs with the smp_wmb() before the
        // BLOCK_STATUS(pbd) = TP_STATUS_USER store in prb_close_block: the
        // packets and the descriptor are visible once we see USER.
        if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        let header = {
            // SAFETY: the block is ours (status USER); the kernel at most
            // reads its status word. The shared slice ends with this block.
            let b = unsafe { std::slice::from_raw_parts(self.block_ptr(i), self.block_size) };
            block::block_header(b)
        };
        let (header, cur) = match header {
            Ok(h) => (
                Some(h),
                self.cursor.take().unwrap_or_else(|| BlockCursor::start(&h)),
            ),
            Err(_) => (None, BlockCursor::start(&empty_header())),
        };
        Some(Block {
            ring: self,
            idx: i,
            header,
            cur,
            prev: cur,
            keep: false,
        })
    }

    /// Shows up to `max` packets to `f`, across blocks, in order. Blocks
    /// walked to their end go back to the kernel; a block `f` stops in (or
    /// that `max` ends in) stays with user space and the next call resumes
    /// at the packet it stopped at.
    pub fn receive<F>(&mut self, max: u32, mut f: F) -> RxCount
    where
        F: FnMut(&mut [u8], &PacketSpan) -> Step,
    {
        let mut c = RxCount::default();
        while c.packets < max {
            let Some(mut blk) = self.block() else { break };
            loop {
                if c.packets == max {
                    blk.pause();
                    return c;
                }
                match blk.next_mut() {
                    None => break, // walked to the end: Drop hands it back
                    Some(Err(_)) => {
                        c.malformed += 1;
                        break;
                    }
                    Some(Ok((data, span))) => match f(data, &span) {
                        Step::Consume => {
                            c.packets += 1;
                            c.bytes += span.data.len() as u64;
                        }
                        Step::Stop => {
                            blk.unread();
                            blk.pause();
                            return c;
                        }
                    },
                }
            }
        }
        c
    }
}

fn empty_header() -> BlockHeader {
    BlockHeader {
        status: 0,
        num_pkts: 0,
        first: 0,
        blk_len: 0,
        seq: 0,
    }
}

/// A V3 block handed over by the kernel. Walk its packets with
/// [`next_mut`](Block::next_mut) (or read it whole with
/// [`bytes`](Block::bytes)); dropping the guard hands the block back to
/// the kernel.
#[must_use = "dropping the block hands it back to the kernel unread"]
#[derive(Debug)]
pub struct Block<'r> {
    ring: &'r mut BlockRing,
    idx: u32,
    header: Option<BlockHeader>,
    cur: BlockCursor,
    prev: BlockCursor,
    keep: bool,
}

impl Block<'_> {
    /// The block descriptor (`None` if the block is too short for one —
    /// it then walks as empty).
    pub fn header(&self) -> Option<BlockHeader> {
        self.header
    }

    /// The whole block, descriptor included.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the block is ours until this guard drops; `&self` excludes
        // the mutable slices of `next_mut`.
        unsafe { std::slice::from_raw_parts(self.ring.block_ptr(self.idx), self.ring.block_size) }
    }

    /// The next packet: its bytes, writable in place, and where it lies.
    /// `None` at the end of the block; one `Err` for a malformed block.
    pub fn next_mut(&mut self) -> Option<Result<(&mut [u8], PacketSpan), BlockError>> {
        self.prev = self.cur;
        let mut cur = self.cur;
        let step = block::next_packet(self.bytes(), &mut cur)?;
        self.cur = cur;
        Some(step.map(|span| {
            // SAFETY: `span.data` was bounds-checked against the block and
            // lies after its packet header (never over the block status
            // word); the block is ours and `&mut self` makes it exclusive.
            let data = unsafe {
                std::slice::from_raw_parts_mut(
                    self.ring.block_ptr(self.idx).add(span.data.start),
                    span.data.len(),
                )
            };
            (data, span)
        }))
    }

    /// Steps back over the packet the last `next_mut` returned.
    fn unread(&mut self) {
        self.cur = self.prev;
    }

    /// Keeps the block with user space: the next [`BlockRing::block`]
    /// returns it again, positioned where this walk stopped.
    pub fn pause(mut self) {
        self.keep = true;
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        if self.keep && !self.cur.is_done() {
            self.ring.cursor = Some(self.cur);
            return;
        }
        // ORDERING: Release pairs with the smp_rmb()/READ_ONCE of
        // BLOCK_STATUS in prb_dispatch_next_block / prb_curr_blk_in_use: our
        // reads of the block are done before the kernel refills it.
        self.ring
            .status(self.idx)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.ring.cursor = None;
        self.ring.current = if self.idx + 1 == self.ring.block_nr {
            0
        } else {
            self.idx + 1
        };
    }
}

/// Rings of one TPACKET_V2 socket.
pub(crate) type V2Rings = (Option<FrameRing<V2>>, Option<FrameRing<V2>>);
/// Rings of one TPACKET_V3 socket.
pub(crate) type V3Rings = (Option<BlockRing>, Option<FrameRing<V3>>);

/// Cuts the RX and TX rings of a V2 installation.
pub(crate) fn v2_rings(inst: &Installed) -> V2Rings {
    (
        FrameRing::from_installed(inst, RingRole::Rx),
        FrameRing::from_installed(inst, RingRole::Tx),
    )
}

/// Cuts the RX block ring and TX frame ring of a V3 installation.
pub(crate) fn v3_rings(inst: &Installed) -> V3Rings {
    (
        BlockRing::from_installed(inst),
        FrameRing::from_installed(inst, RingRole::Tx),
    )
}
