//! Typed fronts over the generic [`ring`](crate::ring): the fill and
//! completion rings carry UMEM addresses (`u64`), the RX and TX rings carry
//! descriptors (`xdp_desc`). Each front speaks in [`Frame`]s, so frame
//! ownership moves with the descriptor.
//!
//! `kernel_producer` and `kernel_consumer` (crate-private) size one of a
//! socket's four rings (`setsockopt(XDP_*_RING)`), map it and make it a
//! generic ring end.
//!
//! # Safety
//!
//! The one `unsafe` call here hands a ring mapping to
//! `Producer::from_mmap` / `Consumer::from_mmap`. The mapping comes
//! from `sys::xdp::map_ring`, which maps exactly `entries` elements of the
//! ring's element type past the offsets the kernel reported; the socket
//! builder maps each of its rings once, so each ring end is the only one.
#![allow(unsafe_code)]

use std::os::fd::BorrowedFd;

use rustix::net::xdp::{XdpDesc, XdpDescOptions};

use super::umem::{Frame, Place, Umem};
use crate::error::SysError;
use crate::ring::{Consumer, Peek, Producer, Reserve};
use crate::sys::mmap::{Mmap, RingLayout};
use crate::sys::xdp::RingKind;

/// The fill ring: frames given to the kernel to receive into.
#[derive(Debug)]
pub struct FillRing<'u> {
    pub(crate) ring: Producer<u64>,
    pub(crate) umem: &'u Umem,
}

/// The completion ring: frames the kernel has finished sending.
#[derive(Debug)]
pub struct CompletionRing<'u> {
    pub(crate) ring: Consumer<u64>,
    pub(crate) umem: &'u Umem,
}

/// The RX ring: received packets.
#[derive(Debug)]
pub struct RxRing<'u> {
    pub(crate) ring: Consumer<XdpDesc>,
    pub(crate) umem: &'u Umem,
}

/// The TX ring: packets to send.
#[derive(Debug)]
pub struct TxRing<'u> {
    pub(crate) ring: Producer<XdpDesc>,
    pub(crate) umem: &'u Umem,
}

impl<'u> FillRing<'u> {
    /// Moves up to `n` frames from the UMEM's free pool into the fill ring.
    /// Returns how many went in.
    pub fn fill_from_pool(&mut self, n: u32) -> u32 {
        let mut r = self.ring.reserve(n);
        while r.remaining() > 0 {
            match self.umem.pop_free() {
                Some(addr) => {
                    if let Err(addr) = r.push(addr) {
                        self.umem.push_free(addr, Place::RxPath);
                        break;
                    }
                }
                None => break,
            }
        }
        r.commit()
    }

    /// Moves as many frames as fit from the end of `frames` into the fill
    /// ring (frames that do not fit stay in `frames`). Returns how many went in.
    pub fn fill_from(&mut self, frames: &mut Vec<Frame<'u>>) -> u32 {
        let mut b = self.reserve(frames.len() as u32);
        while b.remaining() > 0 {
            let Some(f) = frames.pop() else { break };
            if let Err(f) = b.push(f) {
                frames.push(f);
                break;
            }
        }
        b.commit()
    }

    /// Reserves up to `n` slots for frames.
    #[inline]
    pub fn reserve(&mut self, n: u32) -> FillBatch<'_, 'u> {
        FillBatch {
            umem: self.umem,
            inner: self.ring.reserve(n),
        }
    }

    /// Whether the kernel asked for a wakeup to see new fill entries.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    /// Entries published and not yet taken by the kernel.
    #[inline]
    pub fn in_ring(&self) -> u32 {
        self.ring.in_flight()
    }

    /// Ring size.
    #[inline]
    pub fn size(&self) -> u32 {
        self.ring.size()
    }
}

/// Fill slots reserved by [`FillRing::reserve`].
#[must_use = "frames pushed are returned to the pool unless the batch is committed"]
#[derive(Debug)]
pub struct FillBatch<'r, 'u> {
    umem: &'u Umem,
    inner: Reserve<'r, u64>,
}

impl<'u> FillBatch<'_, 'u> {
    /// Puts `frame` in the next slot; gives it back when the batch is full.
    #[inline]
    pub fn push(&mut self, frame: Frame<'u>) -> Result<(), Frame<'u>> {
        if self.inner.remaining() == 0 {
            return Err(frame);
        }
        let (addr, _) = frame.into_ring(Place::RxPath);
        let pushed = self.inner.push(addr);
        debug_assert!(pushed.is_ok(), "remaining() was checked");
        Ok(())
    }

    /// Slots still free in the batch.
    #[inline]
    pub fn remaining(&self) -> u32 {
        self.inner.remaining()
    }

    /// Publishes the frames pushed; returns how many.
    #[inline]
    pub fn commit(mut self) -> u32 {
        self.inner.commit_in_place()
    }
}

/// A batch dropped without commit: the frames pushed into it go back to the
/// pool (from `place`), and the inner guard's Drop cancels the slots.
fn give_back_uncommitted<T: Copy>(
    umem: &Umem,
    inner: &Reserve<'_, T>,
    place: Place,
    addr: impl Fn(T) -> u64,
) {
    if inner.is_committed() {
        return;
    }
    for i in 0..inner.written() {
        if let Some(v) = inner.get(i) {
            umem.push_free(addr(v), place);
        }
    }
}

impl Drop for FillBatch<'_, '_> {
    fn drop(&mut self) {
        give_back_uncommitted(self.umem, &self.inner, Place::RxPath, |addr| addr);
    }
}

impl<'u> CompletionRing<'u> {
    /// Returns up to `max` completed frames to the UMEM's free pool.
    pub fn reap(&mut self, max: u32) -> u32 {
        let mut n = 0;
        for addr in self.ring.peek(max) {
            if !self.umem.kernel_desc_ok(addr, 0) {
                self.umem.reject_kernel_desc(addr, 0);
                continue;
            }
            self.umem.push_free(addr, Place::TxPath);
            n += 1;
        }
        n
    }

    /// Moves up to `max` completed frames straight into the fill ring (the
    /// l2fwd / rxdrop recycling path: no pool round trip). Frames that do not
    /// fit in the fill ring go to the pool.
    pub fn recycle_into(&mut self, fill: &mut FillRing<'u>, max: u32) -> u32 {
        let mut f = fill.ring.reserve(max);
        let mut n = 0;
        for addr in self.ring.peek(f.remaining()) {
            if !self.umem.kernel_desc_ok(addr, 0) {
                self.umem.reject_kernel_desc(addr, 0);
                continue;
            }
            self.umem.moved(addr, Place::TxPath, Place::RxPath);
            // The fill ring wants a chunk address; any address inside the
            // chunk is accepted in aligned mode, and in unaligned mode the
            // kernel takes the address as is.
            if f.push(addr).is_err() {
                self.umem.push_free(addr, Place::RxPath);
            }
            n += 1;
        }
        f.commit();
        n
    }

    /// Takes up to `max` completed frames back as [`Frame`]s (to send again).
    #[inline]
    pub fn complete(&mut self, max: u32) -> CompletionBatch<'_, 'u> {
        CompletionBatch {
            umem: self.umem,
            inner: self.ring.peek(max),
        }
    }

    /// Entries waiting to be reaped (reads the shared producer index).
    #[inline]
    pub fn pending(&mut self) -> u32 {
        self.ring.available(u32::MAX)
    }
}

/// Completed frames taken by [`CompletionRing::complete`].
#[must_use = "unread completions stay in the ring"]
#[derive(Debug)]
pub struct CompletionBatch<'r, 'u> {
    umem: &'u Umem,
    inner: Peek<'r, u64>,
}

impl<'u> Iterator for CompletionBatch<'_, 'u> {
    type Item = Frame<'u>;
    #[inline]
    fn next(&mut self) -> Option<Frame<'u>> {
        loop {
            let addr = self.inner.next()?;
            if let Some(f) = self.umem.frame_from_kernel(addr, 0, Place::TxPath) {
                return Some(f);
            }
        }
    }
    /// At most the addresses left (a bad one is skipped).
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

impl<'u> RxRing<'u> {
    /// Takes up to `max` received packets. Packets read from the batch become
    /// [`Frame`]s owned by the caller; unread ones stay in the ring.
    #[inline]
    pub fn receive(&mut self, max: u32) -> RxBatch<'_, 'u> {
        RxBatch {
            umem: self.umem,
            inner: self.ring.peek(max),
        }
    }

    /// Packets waiting (reads the shared producer index when the cached view is empty).
    #[inline]
    pub fn pending(&mut self) -> u32 {
        self.ring.available(u32::MAX)
    }

    /// Ring size.
    #[inline]
    pub fn size(&self) -> u32 {
        self.ring.size()
    }
}

/// Received packets taken by [`RxRing::receive`].
#[must_use = "unread packets stay in the ring"]
#[derive(Debug)]
pub struct RxBatch<'r, 'u> {
    umem: &'u Umem,
    inner: Peek<'r, XdpDesc>,
}

impl RxBatch<'_, '_> {
    /// Packets in the batch.
    #[inline]
    pub fn len(&self) -> u32 {
        self.inner.len()
    }
    /// Whether the batch is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl<'u> Iterator for RxBatch<'_, 'u> {
    type Item = Frame<'u>;
    #[inline]
    fn next(&mut self) -> Option<Frame<'u>> {
        loop {
            let d = self.inner.next()?;
            debug_assert!(
                !d.options.contains(XdpDescOptions::XDP_PKT_CONTD),
                "multi-buffer descriptor on a socket bound without XDP_USE_SG"
            );
            if let Some(f) = self.umem.frame_from_kernel(d.addr, d.len, Place::RxPath) {
                return Some(f);
            }
        }
    }
    /// At most the descriptors left: one the kernel got wrong is skipped
    /// (counted as invalid), so the exact count is not known in advance.
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

impl<'u> TxRing<'u> {
    /// Reserves up to `n` TX slots.
    #[inline]
    pub fn reserve(&mut self, n: u32) -> TxBatch<'_, 'u> {
        TxBatch {
            umem: self.umem,
            inner: self.ring.reserve(n),
        }
    }

    /// Whether the kernel asked for a wakeup (`sendto`) to process the ring.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    /// Descriptors published and not yet taken by the kernel.
    #[inline]
    pub fn in_ring(&self) -> u32 {
        self.ring.in_flight()
    }

    /// Ring size.
    #[inline]
    pub fn size(&self) -> u32 {
        self.ring.size()
    }
}

/// TX slots reserved by [`TxRing::reserve`].
#[must_use = "frames pushed are returned to the pool unless the batch is committed"]
#[derive(Debug)]
pub struct TxBatch<'r, 'u> {
    pub(super) umem: &'u Umem,
    pub(super) inner: Reserve<'r, XdpDesc>,
}

impl<'u> TxBatch<'_, 'u> {
    /// Queues `frame` (its current length) for sending; gives it back when
    /// the batch is full or the frame is empty.
    #[inline]
    pub fn push(&mut self, frame: Frame<'u>) -> Result<(), Frame<'u>> {
        if self.inner.remaining() == 0 || frame.is_empty() {
            return Err(frame);
        }
        debug_assert!(
            std::ptr::eq(frame.umem(), self.umem),
            "frame of another UMEM"
        );
        let (addr, len) = frame.into_ring(Place::TxPath);
        let pushed = self.inner.push(XdpDesc {
            addr,
            len,
            options: XdpDescOptions::empty(),
        });
        debug_assert!(pushed.is_ok(), "remaining() was checked");
        Ok(())
    }

    /// Slots still free in the batch.
    #[inline]
    pub fn remaining(&self) -> u32 {
        self.inner.remaining()
    }

    /// Publishes the frames pushed; returns how many.
    #[inline]
    pub fn commit(mut self) -> u32 {
        self.inner.commit_in_place()
    }
}

impl Drop for TxBatch<'_, '_> {
    fn drop(&mut self) {
        give_back_uncommitted(self.umem, &self.inner, Place::TxPath, |d| d.addr);
    }
}

/// Sets the size of one of an AF_XDP socket's rings (unless `set_size` is
/// false: the size can be set only once per socket, the ring mapped again)
/// and maps it as a [`Producer`] (fill, TX). `T` is the ring's element type
/// (`u64` for fill, `xdp_desc` for TX).
pub(crate) fn kernel_producer<T: Copy>(
    fd: BorrowedFd<'_>,
    kind: RingKind,
    entries: u32,
    set_size: bool,
) -> Result<Producer<T>, SysError> {
    let (map, layout) = map_kernel(fd, kind, entries, size_of::<T>(), set_size)?;
    // `map_ring` mapped the kernel's ring of `entries` (a power of two,
    // checked by `map_kernel`) elements of size_of::<T>() at the offsets the
    // kernel reported; the socket builder maps each ring once.
    // SAFETY: so the mapping is large and aligned enough, and this is its only user-space producer.
    Ok(unsafe { Producer::from_mmap(map, layout, entries) })
}

/// As [`kernel_producer`], for the consuming rings (completion, RX).
pub(crate) fn kernel_consumer<T: Copy>(
    fd: BorrowedFd<'_>,
    kind: RingKind,
    entries: u32,
    set_size: bool,
) -> Result<Consumer<T>, SysError> {
    let (map, layout) = map_kernel(fd, kind, entries, size_of::<T>(), set_size)?;
    // SAFETY: as in `kernel_producer`; this value is the only consumer.
    Ok(unsafe { Consumer::from_mmap(map, layout, entries) })
}

fn map_kernel(
    fd: BorrowedFd<'_>,
    kind: RingKind,
    entries: u32,
    elem: usize,
    set_size: bool,
) -> Result<(Mmap, RingLayout), SysError> {
    if !entries.is_power_of_two() {
        return Err(SysError::from_errno(
            "setsockopt(XDP ring size)",
            libc::EINVAL,
        ));
    }
    if set_size {
        crate::sys::xdp::set_ring_size(fd, kind, entries)?;
    }
    crate::sys::xdp::map_ring(fd, kind, entries, elem)
}
