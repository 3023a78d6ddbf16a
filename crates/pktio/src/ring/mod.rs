//! The shared-memory single-producer / single-consumer ring that all four
//! AF_XDP rings (fill, completion, RX, TX) are made of. Nothing here knows
//! about AF_XDP: a ring is built from a mapping and the offsets of its words
//! in it (a `RingLayout`); [`crate::xdp`] sizes and maps the socket's rings
//! and puts typed fronts on them.
//!
//! # The protocol
//!
//! A ring is a power-of-two array of `T` plus two `u32` indices, `producer`
//! and `consumer`, shared with the other side (the kernel). The indices run
//! freely and wrap at 2³²; an index is turned into a slot with `idx & mask`.
//! Because the size divides 2³², `producer - consumer` (wrapping) is always
//! the number of filled entries, even across the wrap.
//!
//! Each side keeps *cached* copies of both indices so that the shared words
//! are touched once per batch, not once per entry:
//! - the producer's `cached_cons` is the consumer index **plus the ring
//!   size**, so `cached_cons - cached_prod` is directly the free space (the
//!   trick libxdp's `xsk_prod_nb_free` uses); it re-reads the shared consumer
//!   only when the cached free space is not enough;
//! - the consumer re-reads the shared producer only when its cached view is
//!   empty.
//!
//! # Memory ordering
//!
//! The kernel side (`net/xdp/xsk_queue.h`, v6.18) uses this pattern:
//!
//! ```text
//! producer:                          consumer:
//!   if (LOAD ->consumer) {   (A)       LOAD.acquire ->producer   (C)
//!      STORE entries                   LOAD entries
//!      STORE.release ->producer (B)    STORE.release ->consumer  (D)
//!   }
//! ```
//!
//! The orderings this module uses, and what each meets on the kernel's side:
//!
//! | our side | access | ordering | kernel partner |
//! |---|---|---|---|
//! | producer (fill, TX) | load `consumer` (A) | `Acquire` | (D) `smp_store_release`: a real release/acquire pair |
//! | producer (fill, TX) | store `producer` (B) | `Release` | (C) `smp_load_acquire`: a real pair |
//! | consumer (RX, completion) | load `producer` (C) | `Acquire` | (B) `smp_store_release`: a real pair |
//! | consumer (RX, completion) | store `consumer` (D) | `Release` | (A) a plain `READ_ONCE` |
//!
//! The last row is *not* an acquire/release pair: the kernel's (A) orders its
//! overwrite of a slot after its read of `consumer` by a control dependency
//! (it writes only when the index says there is room), which the Linux
//! memory model honours and Rust's has no word for. Our `Release` is what
//! that argument needs from us — our reads of the released slots happen
//! before the store that frees them. Where both ends are in Rust
//! ([`HeapRing`], the tests and miri), (A) is our own `Acquire` load and
//! every edge is a release/acquire pair.
//!
//! The flags word (need-wakeup) is set and cleared by the kernel with plain
//! stores, so our `Acquire` load of it synchronises with nothing: the flag
//! is a hint. [`Producer::needs_wakeup`] puts a `SeqCst` fence between the
//! publish of `producer` and that load, which orders *our* two accesses
//! (store then load); it promises nothing about the kernel's.
//! The initial snapshots taken when a ring end is made, and
//! [`Producer::in_flight`] (a statistic, `Relaxed`), add no edge.
//!
//! # Batches
//!
//! [`Producer::reserve`] returns a [`Reserve`] guard (reserve → write →
//! [`commit`](Reserve::commit)); [`Consumer::peek`] returns a [`Peek`] guard
//! (peek → read → release on drop). A borrow *is* the batch: only one guard
//! per ring can exist, and Drop of a guard cancels what was not committed
//! (producer) or not read (consumer). These are the seed's "packet arrays"
//! (`tp4a_populate → tp4a_next_frame → tp4a_flush`).
//!
//! # Safety
//!
//! A ring's memory (a kernel mapping or a heap block in tests) is owned by the
//! ring value itself (`RingMem`), so the raw pointers into it are valid for
//! as long as the ring exists. Slots are only read or written between the
//! index loads and stores described above, which is what makes the accesses
//! race-free with respect to the other side.
#![allow(unsafe_code)]

mod batch;

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub use batch::{Peek, Reserve};

use crate::sys::mmap::{Mmap, RingLayout};

/// The need-wakeup bit of a ring's flags word (AF_XDP's
/// `XDP_RING_NEED_WAKEUP`).
const NEED_WAKEUP: u32 = 1;

/// What keeps a ring's memory alive.
#[derive(Debug)]
pub(crate) enum RingMem {
    /// A shared mapping of a kernel ring.
    Mmap(#[allow(dead_code)] Mmap),
    /// A heap block, shared by the two ends of a simulated ring.
    Heap(#[allow(dead_code)] Arc<HeapRing>),
}

/// A ring in ordinary memory with both ends in user space: used by tests (and
/// miri) to play the kernel's side.
#[derive(Debug)]
pub struct HeapRing {
    words: Box<[AtomicU32]>,
}

/// Byte offsets of a [`HeapRing`]'s fields, one cache line apart like the
/// kernel's (producer and consumer on separate lines avoid false sharing).
const HEAP_PRODUCER: usize = 0;
const HEAP_CONSUMER: usize = 64;
const HEAP_FLAGS: usize = 128;
const HEAP_DESC: usize = 192;

/// Shared pointers of one ring, and its geometry.
#[derive(Debug)]
struct RawRing<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: Option<NonNull<AtomicU32>>,
    desc: NonNull<T>,
    mask: u32,
    _mem: RingMem,
    _t: PhantomData<T>,
}

// SAFETY: the ring owns its memory (`_mem`); the pointers are only
// dereferenced through `&self`/`&mut self` of the one owner, which may live
// on any thread. `T` is plain data (`Copy`) moved across by value.
unsafe impl<T: Copy + Send> Send for RawRing<T> {}

impl<T: Copy> RawRing<T> {
    /// # Safety
    /// `base` points to a live mapping owned by `mem` that is at least
    /// `layout.desc + size * size_of::<T>()` bytes long, with the producer,
    /// consumer and flags words 4-byte aligned and the descriptors aligned for `T`.
    unsafe fn new(base: *mut u8, layout: RingLayout, size: u32, mem: RingMem) -> Self {
        assert!(size.is_power_of_two(), "ring size must be a power of two");
        let at = |off: usize| {
            // SAFETY: the caller guarantees that `off` lies inside the mapping.
            let p = unsafe { base.add(off) };
            NonNull::new(p).expect("mapping base is non-null")
        };
        RawRing {
            producer: at(layout.producer).cast(),
            consumer: at(layout.consumer).cast(),
            flags: layout.flags.map(|f| at(f).cast()),
            desc: at(layout.desc).cast(),
            mask: size - 1,
            _mem: mem,
            _t: PhantomData,
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into memory owned by `self._mem`, 4-byte aligned
        // (checked by `new`'s caller); shared words are only accessed atomically.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> Option<&AtomicU32> {
        // SAFETY: as for `producer`.
        self.flags.map(|f| unsafe { &*f.as_ptr() })
    }

    fn size(&self) -> u32 {
        self.mask + 1
    }

    /// Reads slot `idx` (wrapped).
    ///
    /// # Safety
    /// The slot must be owned by this side: between the consumer's cached
    /// consumer and an acquired producer index (consumer side), or reserved
    /// and written by this side (producer side).
    unsafe fn read(&self, idx: u32) -> T {
        // SAFETY: `idx & mask < size`, so the slot lies inside the descriptor
        // array; the caller guarantees the other side is not writing it.
        unsafe {
            self.desc
                .as_ptr()
                .add((idx & self.mask) as usize)
                .read_volatile()
        }
    }

    /// Writes slot `idx` (wrapped).
    ///
    /// # Safety
    /// The slot must be reserved by this producer and not yet published.
    unsafe fn write(&self, idx: u32, value: T) {
        // SAFETY: in bounds as in `read`; the caller guarantees the consumer
        // cannot be reading this slot (it lies beyond the published producer).
        unsafe {
            self.desc
                .as_ptr()
                .add((idx & self.mask) as usize)
                .write_volatile(value)
        }
    }
}

/// The producing end of a ring (fill and TX for AF_XDP).
#[derive(Debug)]
pub struct Producer<T> {
    raw: RawRing<T>,
    cached_prod: u32,
    /// The consumer index plus the ring size (see the module docs).
    cached_cons: u32,
}

/// The consuming end of a ring (completion and RX for AF_XDP).
#[derive(Debug)]
pub struct Consumer<T> {
    raw: RawRing<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> Producer<T> {
    /// The producer end of a ring in the shared mapping `map`, whose words lie
    /// at `layout`'s offsets, with `size` slots of `T`.
    ///
    /// # Safety
    /// `map` is at least `layout.desc + size * size_of::<T>()` bytes long,
    /// with the producer, consumer and flags words 4-byte aligned and the
    /// slots aligned for `T` and holding `T`s; `size` is a power of two; and
    /// this value is the only producer of the ring in this process (no other
    /// mapping of the same ring is written from this side).
    pub(crate) unsafe fn from_mmap(map: Mmap, layout: RingLayout, size: u32) -> Self {
        let base = map.as_ptr();
        // SAFETY: forwarded from the caller.
        let raw = unsafe { RawRing::new(base, layout, size, RingMem::Mmap(map)) };
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawRing<T>) -> Self {
        // ORDERING: initial snapshot; Acquire on the consumer so that, if the
        // other side already consumed entries, their reads happened-before our
        // first overwrite (edge A/D).
        let cons = raw.consumer().load(Ordering::Acquire);
        let prod = raw.producer().load(Ordering::Relaxed);
        Producer {
            cached_cons: cons.wrapping_add(raw.size()),
            cached_prod: prod,
            raw,
        }
    }

    /// The number of slots.
    pub fn size(&self) -> u32 {
        self.raw.size()
    }

    /// How many slots are free, refreshing the consumer index from shared
    /// memory only if fewer than `want` are known to be free.
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        // ORDERING: Acquire pairs with the consumer's Release store of its
        // index (D; the kernel's smp_store_release): its reads of the slots
        // we are about to reuse are done.
        let cons = self.raw.consumer().load(Ordering::Acquire);
        self.cached_cons = cons.wrapping_add(self.raw.size());
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Reserves up to `n` slots (as many as are free) and returns the batch.
    /// The batch may be empty. Nothing is visible to the consumer until
    /// [`Reserve::commit`].
    pub fn reserve(&mut self, n: u32) -> Reserve<'_, T> {
        let n = n.min(self.free(n));
        let start = self.cached_prod;
        self.cached_prod = self.cached_prod.wrapping_add(n);
        Reserve::new(self, start, n)
    }

    /// Publishes everything up to `idx` (called by [`Reserve::commit`]).
    fn publish(&mut self, idx: u32) {
        // ORDERING: Release pairs with the consumer's Acquire load of the
        // producer index (B/C): the slots written before this store are
        // visible to a consumer that sees the new index.
        self.raw.producer().store(idx, Ordering::Release);
    }

    /// Whether the kernel asked to be woken up (`XDP_RING_NEED_WAKEUP`) after
    /// the last publish. Always `true` when the ring has no flags word
    /// (kernels before 5.4), which makes callers kick every time.
    pub fn needs_wakeup(&self) -> bool {
        match self.raw.flags() {
            Some(f) => {
                // ORDERING: our publish of the producer index (a Release
                // store) must not be ordered after our read of the flag. A
                // Release store followed by an Acquire load may be
                // reordered (store→load); the SeqCst fence between them
                // forbids that on our side (one fence per kick decision, not
                // per entry). The kernel writes the flag with plain stores,
                // so the Acquire pairs with nothing: the flag is a hint.
                std::sync::atomic::fence(Ordering::SeqCst);
                f.load(Ordering::Acquire) & NEED_WAKEUP != 0
            }
            None => true,
        }
    }

    /// Entries published by us and not yet consumed by the other side
    /// (reads the shared consumer index).
    pub fn in_flight(&self) -> u32 {
        // ORDERING: a statistic only; Relaxed is enough.
        let cons = self.raw.consumer().load(Ordering::Relaxed);
        self.cached_prod.wrapping_sub(cons)
    }
}

impl<T: Copy> Consumer<T> {
    /// The consumer end of a ring in the shared mapping `map`, whose words lie
    /// at `layout`'s offsets, with `size` slots of `T`.
    ///
    /// # Safety
    /// `map` is at least `layout.desc + size * size_of::<T>()` bytes long,
    /// with the producer, consumer and flags words 4-byte aligned and the
    /// slots aligned for `T` and holding `T`s; `size` is a power of two; and
    /// this value is the only consumer of the ring in this process (no other
    /// mapping of the same ring is written from this side).
    pub(crate) unsafe fn from_mmap(map: Mmap, layout: RingLayout, size: u32) -> Self {
        let base = map.as_ptr();
        // SAFETY: forwarded from the caller.
        let raw = unsafe { RawRing::new(base, layout, size, RingMem::Mmap(map)) };
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawRing<T>) -> Self {
        // ORDERING: Acquire pairs with the producer's Release (B/C).
        let prod = raw.producer().load(Ordering::Acquire);
        let cons = raw.consumer().load(Ordering::Relaxed);
        Consumer {
            cached_prod: prod,
            cached_cons: cons,
            raw,
        }
    }

    /// The number of slots.
    pub fn size(&self) -> u32 {
        self.raw.size()
    }

    /// How many entries can be read, up to `max`, refreshing the producer
    /// index from shared memory only when the cached view is empty.
    pub fn available(&mut self, max: u32) -> u32 {
        let mut entries = self.cached_prod.wrapping_sub(self.cached_cons);
        if entries == 0 {
            // ORDERING: Acquire pairs with the producer's Release store (B/C):
            // the entries up to the new index are fully written.
            self.cached_prod = self.raw.producer().load(Ordering::Acquire);
            entries = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        entries.min(max)
    }

    /// Takes up to `max` entries (as many as are available) as a batch. The
    /// batch may be empty. Entries read from it are released to the producer
    /// when the batch is dropped; unread ones stay in the ring.
    pub fn peek(&mut self, max: u32) -> Peek<'_, T> {
        let n = self.available(max);
        let start = self.cached_cons;
        self.cached_cons = self.cached_cons.wrapping_add(n);
        Peek::new(self, start, n)
    }

    /// Releases everything up to `idx` to the producer (called by [`Peek`]).
    fn release_to(&mut self, idx: u32) {
        // ORDERING: Release (D). The kernel's producer reads this index with
        // a plain READ_ONCE and a control dependency (A), not an acquire (see
        // the module docs); a heap ring's Rust producer loads it Acquire.
        // Either way our reads of the released slots come before its reuse.
        self.raw.consumer().store(idx, Ordering::Release);
    }

    /// Whether the flags word asks for a wakeup (used on the RX side only for
    /// diagnostics; the kernel sets it on the fill and TX rings).
    pub fn needs_wakeup(&self) -> bool {
        match self.raw.flags() {
            // ORDERING: a hint written by the kernel with plain stores (see
            // Producer::needs_wakeup); the Acquire pairs with nothing there.
            Some(f) => f.load(Ordering::Acquire) & NEED_WAKEUP != 0,
            None => false,
        }
    }
}

impl HeapRing {
    /// Creates a ring of `size` entries of `T` in ordinary memory, with both
    /// indices starting at `start` (tests use a start near `u32::MAX` to cross
    /// the wrap), and returns its producer and consumer ends.
    ///
    /// # Panics
    /// If `size` is not a power of two or `T` needs more than 8-byte alignment.
    pub fn pair<T: Copy>(size: u32, start: u32) -> (Producer<T>, Consumer<T>) {
        assert!(size.is_power_of_two(), "ring size must be a power of two");
        assert!(
            std::mem::align_of::<T>() <= 8,
            "descriptors need at most 8-byte alignment"
        );
        let bytes = HEAP_DESC + size as usize * std::mem::size_of::<T>();
        // AtomicU32 words; one extra so that 8-byte descriptors can be aligned.
        let words: Box<[AtomicU32]> = (0..bytes.div_ceil(4) + 2)
            .map(|_| AtomicU32::new(0))
            .collect();
        let ring = Arc::new(HeapRing { words });
        let base = ring.words.as_ptr() as *mut u8;
        // Align the base to 8 so that descriptors of u64 are aligned.
        let pad = base.align_offset(8);
        // SAFETY: `pad` ≤ 4 and the block has 8 spare bytes.
        let base = unsafe { base.add(pad) };
        let layout = RingLayout {
            producer: HEAP_PRODUCER,
            consumer: HEAP_CONSUMER,
            flags: Some(HEAP_FLAGS),
            desc: HEAP_DESC,
        };
        // SAFETY: the block is large enough for the layout, 8-byte aligned,
        // and kept alive by the Arc each end holds.
        let (p, c) = unsafe {
            (
                RawRing::<T>::new(base, layout, size, RingMem::Heap(ring.clone())),
                RawRing::<T>::new(base, layout, size, RingMem::Heap(ring)),
            )
        };
        p.producer().store(start, Ordering::Relaxed);
        p.consumer().store(start, Ordering::Relaxed);
        (Producer::from_raw(p), Consumer::from_raw(c))
    }
}

/// Sets or clears the simulated need-wakeup flag of a heap ring (tests).
impl<T: Copy> Consumer<T> {
    /// Test hook: raise or clear `XDP_RING_NEED_WAKEUP` as the kernel would.
    pub fn set_need_wakeup(&self, on: bool) {
        if let Some(f) = self.raw.flags() {
            // ORDERING: advisory flag.
            f.store(if on { NEED_WAKEUP } else { 0 }, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests;
