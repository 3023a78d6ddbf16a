//! The memory io_uring reads and writes behind our back: the provided
//! buffer ring ([`BufRing`]), the send buffers ([`TxPool`]) and plain
//! anonymous memory for registrations ([`AnonMap`]); and the only places
//! that push submission entries ([`push_plain`] for requests that point at
//! no memory of ours).
//!
//! # Safety
//!
//! - **Buffer ring.** The ring of `io_uring_buf` entries and the buffers
//!   they point to are anonymous mappings owned by [`BufRing`]. The kernel
//!   reads entries between its private head and the tail we publish, and
//!   writes a buffer only after taking its entry; it hands the buffer back
//!   in a CQE (`IORING_CQE_F_BUFFER`, buffer id). A buffer is therefore ours
//!   from its CQE until we write its entry at the tail again, and an entry
//!   slot at our tail is never one the kernel may still read (at most
//!   `entries` buffers exist, so the tail never laps the head).
//! - **Send buffers.** A [`TxPool`] slot is written by the caller only while
//!   it is `Filling`; [`push_send`] moves it to `InFlight` and only its CQE
//!   ([`TxPool::complete`]) frees it, so the kernel reads a buffer nobody
//!   writes.
//! - **Lifetime.** Both mappings must outlive every request that points
//!   into them. The backend cancels its receive and waits for every
//!   completion before dropping them; when it cannot (see
//!   [`UringBackend`](crate::backend::UringBackend)'s Drop), it calls
//!   [`BufRing::leak`] / [`TxPool::leak`] and the memory is never unmapped.
//!   A [`BufRing`] registered through the public
//!   [`register`](BufRing::register) keeps its own reference to the ring
//!   (a duplicate of its fd) and, when dropped, unregisters its group
//!   (`IORING_UNREGISTER_PBUF_RING`) before unmapping: after that the kernel
//!   selects none of its buffers, whatever the owner of the `IoUring` did
//!   meanwhile. If the kernel refuses to unregister, the memory is leaked.
//! - **Plain requests.** [`push_plain`] queues only [`PlainOp`]s, which
//!   carry no pointer: a receive that writes into memory names a buffer
//!   group, whose memory its [`BufRing`] keeps mapped while the kernel can
//!   select from it.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::squeue::PushError;
use io_uring::{cqueue, opcode, squeue, types, IoUring, SubmissionQueue};

use crate::error::SysError;
use crate::sys::mmap::Mmap;

/// `struct io_uring_buf`: addr (u64), len (u32), bid (u16), resv (u16); the
/// `resv` of entry 0 is the ring's tail (`io_uring_buf_ring`).
const ENTRY: usize = 16;
const E_ADDR: usize = 0;
const E_LEN: usize = 8;
const E_BID: usize = 12;
const TAIL: usize = 14;
const _: () = assert!(std::mem::size_of::<types::BufRingEntry>() == ENTRY);

/// A provided-buffer ring (`IORING_REGISTER_PBUF_RING`, kernel 5.19) and its
/// buffers: `entries` buffers of `buf_size` bytes that the kernel fills in
/// the order it takes them from the ring, each handed back in a completion
/// (`IORING_CQE_F_BUFFER`, [`io_uring::cqueue::buffer_select`]).
///
/// The owner's cycle: [`new`](Self::new) (every buffer in the ring),
/// [`register`](Self::register), [`publish`](Self::publish); then, for each
/// completion, read [`buffer`](Self::buffer) and give it back with
/// [`recycle`](Self::recycle), and [`publish`](Self::publish) once per
/// batch. Dropping it unregisters the group before unmapping the memory,
/// so the kernel never writes into memory that is gone.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ring = io_uring::IoUring::new(64)?;
/// let mut bufs = pktio::uring::BufRing::new(256, 2048)?;
/// bufs.register(&ring, 7)?;
/// bufs.publish();
/// // ... RecvMulti requests with buffer group 7 (pktio::uring::PlainOp) ...
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BufRing {
    ring: ManuallyDrop<Mmap>,
    bufs: ManuallyDrop<Mmap>,
    entries: u16,
    buf_size: u32,
    /// Our tail: entries written so far.
    tail: u16,
    /// The tail the kernel has seen.
    published: u16,
    leak: bool,
    /// Set by the public `register`: our own reference to the ring, and the
    /// group to unregister on drop.
    owner: Option<(OwnedFd, u16)>,
}

impl BufRing {
    /// Maps a ring of `entries` entries (a power of two, at most 32768) and
    /// `entries` buffers of `buf_size` bytes, every buffer in the ring (not
    /// yet published: [`register`](Self::register), then
    /// [`publish`](Self::publish)).
    ///
    /// # Errors
    /// `EINVAL` for a count that is not a power of two or a zero size;
    /// the `mmap` errno (`ENOMEM`) otherwise.
    pub fn new(entries: u16, buf_size: u32) -> Result<BufRing, SysError> {
        if !entries.is_power_of_two() || buf_size == 0 {
            return Err(SysError::from_errno("mmap(provided buffers)", libc::EINVAL));
        }
        let ring_len = (entries as usize * ENTRY).next_multiple_of(crate::sys::packet::page_size());
        let ring = Mmap::anonymous(ring_len, false)?;
        let bufs = Mmap::anonymous(entries as usize * buf_size as usize, false)?;
        let mut r = BufRing {
            ring: ManuallyDrop::new(ring),
            bufs: ManuallyDrop::new(bufs),
            entries,
            buf_size,
            tail: 0,
            published: 0,
            leak: false,
            owner: None,
        };
        for bid in 0..entries {
            let ours = r.recycle(bid);
            debug_assert!(ours);
        }
        Ok(r)
    }

    /// Buffers in the ring.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Bytes per buffer.
    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// `IORING_REGISTER_PBUF_RING` as group `bgid` of `ring`, for the
    /// backend, which orders the drops itself (module Safety).
    pub(crate) fn register_unowned(&self, ring: &IoUring, bgid: u16) -> std::io::Result<()> {
        // SAFETY: the ring memory is page-aligned, `entries * 16` bytes long
        // and lives until this BufRing drops, which the backend orders after
        // the IoUring (and so the registration) is gone — or never (leak).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.ring.as_ptr() as u64,
                self.entries,
                bgid,
                0,
            )
        }
    }

    /// Registers the ring with `ring` as buffer group `bgid`
    /// (`IORING_REGISTER_PBUF_RING`, kernel 5.19), and keeps a duplicate of
    /// the ring's fd so that dropping this value can unregister the group
    /// first, whenever the `IoUring` itself is dropped.
    ///
    /// Drop this value on the thread that submits to `ring` when it was
    /// built with `IORING_SETUP_SINGLE_ISSUER`: the kernel refuses the
    /// unregistration from other threads (`EEXIST`), and the memory is then
    /// leaked rather than unmapped.
    ///
    /// # Errors
    /// `EBUSY` if this ring is registered already; the kernel's errno
    /// (`EINVAL` before 5.19, `EEXIST` for a group id in use).
    pub fn register<S: squeue::EntryMarker, C: cqueue::EntryMarker>(
        &mut self,
        ring: &IoUring<S, C>,
        bgid: u16,
    ) -> std::io::Result<()> {
        if self.owner.is_some() {
            return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
        }
        let fd = ring.as_fd().try_clone_to_owned()?;
        // SAFETY: the ring memory is page-aligned, `entries * 16` bytes long,
        // and is unmapped only after Drop has unregistered group `bgid`
        // through `fd`, which keeps the ring alive until then (module Safety).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.ring.as_ptr() as u64,
                self.entries,
                bgid,
                0,
            )
        }?;
        self.owner = Some((fd, bgid));
        Ok(())
    }

    /// Unregisters the group [`register`](Self::register) registered, if
    /// any, through our own fd of the ring.
    fn unregister(&mut self) -> Result<(), SysError> {
        match self.owner.take() {
            Some((fd, bgid)) => crate::sys::uring::unregister_pbuf_ring(fd.as_fd(), bgid),
            None => Ok(()),
        }
    }

    fn tail_word(&self) -> &AtomicU16 {
        // SAFETY: bytes 14..16 of entry 0 (inside the mapping, 2-aligned);
        // our entry writes never touch them, and we access them only
        // atomically (the kernel with smp_load_acquire).
        unsafe { &*self.ring.as_ptr().add(TAIL).cast::<AtomicU16>() }
    }

    /// Whether `bid` names one of our buffers. Ids come from CQEs, which we
    /// do not take on trust.
    pub fn is_ours(&self, bid: u16) -> bool {
        bid < self.entries
    }

    /// Puts buffer `bid` back at the tail (seen by the kernel after
    /// [`publish`](Self::publish)). Refuses (`false`, nothing written) an id
    /// that is not one of ours, in every build: its entry would send the
    /// kernel's next write outside the buffer area.
    #[must_use = "a refused id must be counted"]
    pub fn recycle(&mut self, bid: u16) -> bool {
        if !self.is_ours(bid) {
            return false;
        }
        let slot = (self.tail & (self.entries - 1)) as usize;
        let addr = self.bufs.as_ptr() as u64 + bid as u64 * self.buf_size as u64;
        // SAFETY: `slot < entries` lies inside the ring; the kernel reads only published slots it has not consumed, and this one is past the published tail (module Safety). Field writes leave bytes 14..16 (the tail word of entry 0) alone.
        unsafe {
            let e = self.ring.as_ptr().add(slot * ENTRY);
            e.add(E_ADDR).cast::<u64>().write(addr);
            e.add(E_LEN).cast::<u32>().write(self.buf_size);
            e.add(E_BID).cast::<u16>().write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// Publishes the entries written since the last call.
    pub fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        // ORDERING: Release pairs with the kernel's smp_load_acquire of
        // br->tail (io_ring_buffer_select, io_ring_buffers_peek): the entries
        // written before are visible once it sees the new tail.
        self.tail_word().store(self.tail, Ordering::Release);
        self.published = self.tail;
    }

    /// The first `len` bytes of buffer `bid`, which a CQE just handed back.
    /// `None` for an id or length out of range.
    pub fn buffer(&mut self, bid: u16, len: u32) -> Option<&mut [u8]> {
        if bid >= self.entries || len > self.buf_size {
            return None;
        }
        // SAFETY: buffer `bid` came back in a CQE and is not in the ring
        // until `recycle(bid)`, so the kernel does not write it; it lies
        // inside the mapping; `&mut self` makes the slice exclusive.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                self.bufs
                    .as_ptr()
                    .add(bid as usize * self.buf_size as usize),
                len as usize,
            )
        })
    }

    /// Never unmap this memory (the kernel may still hold requests on it).
    pub(crate) fn leak(&mut self) {
        self.leak = true;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leak {
            return;
        }
        if self.unregister().is_err() {
            // The kernel may still select our buffers: never unmap them.
            return;
        }
        // SAFETY: dropped exactly once, here; no request points into the
        // memory any more (the backend waited, or the group was just
        // unregistered, or we returned above).
        unsafe {
            ManuallyDrop::drop(&mut self.ring);
            ManuallyDrop::drop(&mut self.bufs);
        }
    }
}

/// Page-aligned, zero-filled anonymous memory
/// (`mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE)`), unmapped on drop:
/// for memory handed to the kernel by address, such as a zero-copy receive
/// area or a refill-ring region (`IORING_REGISTER_ZCRX_IFQ`).
///
/// Only its address is exposed. Whoever registers it keeps it alive until
/// the registration is gone (drop the `IoUring` first).
#[derive(Debug)]
pub struct AnonMap {
    map: Mmap,
}

impl AnonMap {
    /// Maps `len` bytes (whole pages: the kernel rounds up).
    ///
    /// # Errors
    /// The `mmap` errno (`EINVAL` for 0 bytes, `ENOMEM`).
    pub fn new(len: usize) -> Result<AnonMap, SysError> {
        Ok(AnonMap {
            map: Mmap::anonymous(len, false)?,
        })
    }

    /// The start of the mapping (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The length asked for.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the length is 0 (never: such a mapping cannot be made).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Filling,
    InFlight,
}

/// Send buffers: `count` slots of `size` bytes.
#[derive(Debug)]
pub(crate) struct TxPool {
    area: ManuallyDrop<Mmap>,
    size: usize,
    state: Vec<Slot>,
    free: Vec<u32>,
    in_flight: u32,
    leak: bool,
}

impl TxPool {
    /// Maps `count` buffers of `size` bytes.
    pub(crate) fn new(count: u32, size: u32) -> Result<TxPool, SysError> {
        let area = Mmap::anonymous(count as usize * size as usize, false)?;
        Ok(TxPool {
            area: ManuallyDrop::new(area),
            size: size as usize,
            state: vec![Slot::Free; count as usize],
            free: (0..count).rev().collect(),
            in_flight: 0,
            leak: false,
        })
    }

    /// Slots.
    pub(crate) fn count(&self) -> u32 {
        self.state.len() as u32
    }

    /// Bytes per slot.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Sends not completed yet.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Takes a free slot to fill.
    pub(crate) fn take(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        self.state[i as usize] = Slot::Filling;
        Some(i)
    }

    /// Gives back a slot taken and not sent.
    pub(crate) fn untake(&mut self, i: u32) {
        if self.state.get(i as usize) == Some(&Slot::Filling) {
            self.state[i as usize] = Slot::Free;
            self.free.push(i);
        }
    }

    /// The buffer of a slot being filled.
    pub(crate) fn buffer(&mut self, i: u32) -> Option<&mut [u8]> {
        if self.state.get(i as usize) != Some(&Slot::Filling) {
            return None;
        }
        // SAFETY: slot `i` is Filling: the kernel does not read it (no send
        // in flight) and `&mut self` makes the slice exclusive; it lies
        // inside the mapping.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                self.area.as_ptr().add(i as usize * self.size),
                self.size,
            )
        })
    }

    /// A send's completion came back: slot `i` is free again. `false` for
    /// a slot that was not in flight (a foreign completion).
    pub(crate) fn complete(&mut self, i: u32) -> bool {
        if self.state.get(i as usize) != Some(&Slot::InFlight) {
            return false;
        }
        self.state[i as usize] = Slot::Free;
        self.free.push(i);
        self.in_flight -= 1;
        true
    }

    /// Never unmap this memory (the kernel may still read it).
    pub(crate) fn leak(&mut self) {
        self.leak = true;
    }
}

impl Drop for TxPool {
    fn drop(&mut self) {
        if self.leak {
            return;
        }
        // SAFETY: dropped exactly once, here; no send is in flight any more.
        unsafe { ManuallyDrop::drop(&mut self.area) }
    }
}

/// A request that points at no memory of the caller's (a receive writes
/// only into buffers of a registered group, see [`BufRing`]), so it can be
/// queued from safe code with [`push_plain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlainOp {
    /// `IORING_OP_ACCEPT` multishot (kernel 5.19) on registered file
    /// `file`, each connection put straight into a free slot of the
    /// registered-file table (`IORING_FILE_INDEX_ALLOC`), whose index is the
    /// completion's result.
    AcceptMultiFixed {
        /// The listener's registered-file index.
        file: u32,
    },
    /// `IORING_OP_RECV` multishot (kernel 6.0) on registered file `file`,
    /// into buffers of group `bgid`; with `bundle`, one completion may carry
    /// several consecutive buffers (`IORING_RECVSEND_BUNDLE`, kernel 6.10).
    RecvMulti {
        /// The socket's registered-file index.
        file: u32,
        /// The buffer group.
        bgid: u16,
        /// Receive bundles.
        bundle: bool,
    },
    /// `IORING_OP_CLOSE` of registered-file slot `file` (kernel 5.15).
    CloseFixed {
        /// The registered-file index.
        file: u32,
    },
    /// `IORING_OP_ASYNC_CANCEL` of the request tagged `user_data`.
    Cancel {
        /// The tag of the request to cancel.
        user_data: u64,
    },
}

impl PlainOp {
    fn entry(self, user_data: u64) -> squeue::Entry {
        let e = match self {
            PlainOp::AcceptMultiFixed { file } => opcode::AcceptMulti::new(types::Fixed(file))
                .allocate_file_index(true)
                .build(),
            PlainOp::RecvMulti {
                file,
                bgid,
                bundle: false,
            } => opcode::RecvMulti::new(types::Fixed(file), bgid).build(),
            PlainOp::RecvMulti {
                file,
                bgid,
                bundle: true,
            } => opcode::RecvMultiBundle::new(types::Fixed(file), bgid).build(),
            PlainOp::CloseFixed { file } => opcode::Close::new(types::Fixed(file)).build(),
            PlainOp::Cancel { user_data } => opcode::AsyncCancel::new(user_data).build(),
        };
        e.user_data(user_data)
    }
}

/// Queues `op` tagged `user_data` on `sq` (seen by the kernel at the next
/// submit).
///
/// # Errors
/// The queue is full: submit, then push again.
pub fn push_plain(
    sq: &mut SubmissionQueue<'_>,
    op: PlainOp,
    user_data: u64,
) -> Result<(), PushError> {
    let e = op.entry(user_data);
    // SAFETY: a PlainOp carries no pointer; a receive writes only into a
    // registered buffer group, whose memory its owner keeps mapped while
    // the kernel can select from it (module Safety).
    unsafe { sq.push(&e) }
}

/// Pushes one entry, submitting first if the submission queue is full.
///
/// # Safety
/// Whatever `e` points to (a buffer to send from, or to receive into) must
/// stay valid — mapped, and not written by us while the kernel reads it —
/// until the request's last completion has been reaped. An entry that
/// points at no memory of ours meets this trivially.
unsafe fn push(ring: &mut IoUring, e: &squeue::Entry) -> std::io::Result<()> {
    loop {
        // SAFETY: forwarded from the caller (io_uring's `push` has the same
        // contract).
        let pushed = unsafe { ring.submission().push(e) };
        match pushed {
            Ok(()) => return Ok(()),
            Err(_full) => {
                ring.submit()?;
            }
        }
    }
}

/// Queues a multishot receive (`IORING_OP_RECV` with
/// `IORING_RECV_MULTISHOT`, kernel 6.0) on registered file 0, picking
/// buffers from group `bgid`. It points at no memory of ours directly.
pub(crate) fn push_recv(ring: &mut IoUring, bgid: u16, tag: u64) -> std::io::Result<()> {
    let e = opcode::RecvMulti::new(types::Fixed(0), bgid)
        .build()
        .user_data(tag);
    // SAFETY: the entry points at no memory; the kernel writes only into
    // buffers of group `bgid`, whose BufRing the backend keeps mapped until
    // the receive has ended or leaks it (module Safety, Lifetime).
    unsafe { push(ring, &e) }
}

/// Queues a send of the first `len` bytes of `pool` slot `i` (which must be
/// `Filling`) on registered file 0, and marks the slot in flight.
pub(crate) fn push_send(
    ring: &mut IoUring,
    pool: &mut TxPool,
    i: u32,
    len: usize,
    tag: u64,
) -> std::io::Result<bool> {
    if pool.state.get(i as usize) != Some(&Slot::Filling) || len > pool.size || len == 0 {
        return Ok(false);
    }
    // SAFETY: slot `i` lies inside the area.
    let ptr = unsafe { pool.area.as_ptr().add(i as usize * pool.size) };
    let e = opcode::Send::new(types::Fixed(0), ptr, len as u32)
        .build()
        .user_data(tag);
    pool.state[i as usize] = Slot::InFlight;
    pool.in_flight += 1;
    // SAFETY: the slot is now InFlight, so nobody writes it until its CQE
    // frees it (TxPool::complete); the pool outlives every request or is
    // leaked (module Safety, Send buffers and Lifetime).
    if let Err(err) = unsafe { push(ring, &e) } {
        pool.state[i as usize] = Slot::Filling;
        pool.in_flight -= 1;
        return Err(err);
    }
    Ok(true)
}

/// Queues a cancellation of the request tagged `tag`.
pub(crate) fn push_cancel(ring: &mut IoUring, tag: u64) -> std::io::Result<()> {
    let e = opcode::AsyncCancel::new(tag).build().user_data(0);
    // SAFETY: a cancellation points at no memory.
    unsafe { push(ring, &e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry at ring slot `slot`: (addr, len, bid).
    fn entry(r: &BufRing, slot: usize) -> (u64, u32, u16) {
        // SAFETY: `slot < entries` lies inside the ring mapping, which no
        // kernel reads (never registered); `&BufRing` keeps it alive.
        unsafe {
            let e = r.ring.as_ptr().add(slot * ENTRY);
            (
                e.add(E_ADDR).cast::<u64>().read(),
                e.add(E_LEN).cast::<u32>().read(),
                e.add(E_BID).cast::<u16>().read(),
            )
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "maps the buffer ring with MAP_SHARED, which miri cannot"
    )]
    fn a_buffer_id_out_of_range_is_never_recycled() {
        let mut r = BufRing::new(8, 256).expect("map an 8-buffer ring");
        assert_eq!(r.tail, 8, "every buffer starts in the ring");
        let before: Vec<_> = (0..8).map(|s| entry(&r, s)).collect();
        for bid in [8, 9, 255, u16::MAX] {
            assert!(!r.is_ours(bid));
            assert!(!r.recycle(bid), "id {bid} was recycled");
        }
        assert_eq!(r.tail, 8, "a refused id must not advance the tail");
        let after: Vec<_> = (0..8).map(|s| entry(&r, s)).collect();
        assert_eq!(before, after, "a refused id must not write an entry");
        assert!(r.buffer(8, 1).is_none());

        // An id in range goes back at the tail, pointing at its own buffer.
        assert!(r.recycle(7));
        assert_eq!(r.tail, 9);
        let base = r.bufs.as_ptr() as u64;
        assert_eq!(entry(&r, 0), (base + 7 * 256, 256, 7));
    }

    #[test]
    fn sizes_that_cannot_be_a_ring_are_refused() {
        for (entries, size) in [(0, 256), (6, 256), (8, 0)] {
            let e = BufRing::new(entries, size).unwrap_err();
            assert_eq!(e.errno(), Some(libc::EINVAL), "{entries} x {size}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "io_uring system calls")]
    fn a_registered_ring_receives_through_a_plain_multishot_recv() {
        use std::net::UdpSocket;
        use std::os::fd::AsRawFd;
        // io_uring is what this test is about: no skip.
        let mut ring = IoUring::new(8).expect("io_uring_setup");
        let mut bufs = BufRing::new(8, 256).expect("map an 8-buffer ring");
        bufs.register(&ring, 5)
            .expect("register a provided-buffer ring");
        let again = bufs.register(&ring, 6).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EBUSY));
        bufs.publish();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        ring.submitter().register_files(&[rx.as_raw_fd()]).unwrap();
        let op = PlainOp::RecvMulti {
            file: 0,
            bgid: 5,
            bundle: false,
        };
        push_plain(&mut ring.submission(), op, 42).unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        ring.submit_and_wait(1).unwrap();
        let cqe = ring.completion().next().expect("a completion");
        assert_eq!((cqe.user_data(), cqe.result()), (42, 5));
        let bid = cqueue::buffer_select(cqe.flags()).expect("a buffer");
        assert_eq!(bid, 0, "the first buffer of the ring");
        assert_eq!(bufs.buffer(bid, 5).unwrap(), b"hello");
        assert!(bufs.recycle(bid));
        bufs.publish();
        push_plain(&mut ring.submission(), PlainOp::Cancel { user_data: 42 }, 1).unwrap();
        ring.submit().unwrap();
        // The IoUring goes first, as owners usually drop it; the BufRing
        // still unregisters through its own fd before unmapping.
        drop(ring);
        bufs.unregister()
            .expect("unregister after the IoUring is gone");
        drop(bufs);
    }
}
