//! The frame pool a [`SharedUmem`](super::SharedUmem) hands out to its
//! per-thread views: which chunks are free, and which view holds each of
//! the others.
//!
//! A view takes chunks in batches into a cache of its own (its `Umem`'s
//! free list), works from that cache without touching the pool, and gives
//! surplus back in batches; so the pool's lock is taken once per batch, not
//! per packet. A chunk belongs to exactly one of: the pool, or one view.
//! When a view goes, every chunk it still holds comes back
//! ([`reclaim`](FramePool::reclaim)): the pool records the holder of each
//! chunk, so it needs no help from the view to find them.
//!
//! The pool is `Sync` through a `Mutex` (no lock-free code).

use std::sync::{Mutex, MutexGuard};

/// Who holds each chunk: 0 is the pool, any other value a view.
type Owner = u16;

/// The pool. See the module docs.
#[derive(Debug)]
pub(crate) struct FramePool {
    state: Mutex<State>,
    frame_size: u64,
}

#[derive(Debug)]
struct State {
    /// Chunk bases in the pool (the top is taken first).
    free: Vec<u64>,
    /// The holder of each chunk, by chunk index.
    owner: Vec<Owner>,
    /// The last view id handed out.
    last_view: Owner,
}

/// How many frames are in the pool and with the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolAccounting {
    /// Frames of the UMEM.
    pub total: u32,
    /// In the pool.
    pub free: u32,
    /// Held by views (their caches, their frames, their sockets' rings).
    pub in_views: u32,
}

impl FramePool {
    /// A pool of `count` chunks of `frame_size` bytes, all free.
    pub(crate) fn new(frame_size: u32, count: u32) -> FramePool {
        let fs = u64::from(frame_size);
        FramePool {
            state: Mutex::new(State {
                free: (0..u64::from(count)).rev().map(|i| i * fs).collect(),
                owner: vec![0; count as usize],
                last_view: 0,
            }),
            frame_size: fs,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every
        // method moves one chunk at a time), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new view id; `None` once 65535 have been handed out.
    pub(crate) fn new_view(&self) -> Option<u16> {
        let mut s = self.lock();
        s.last_view = s.last_view.checked_add(1)?;
        Some(s.last_view)
    }

    /// Moves up to `n` chunk bases from the pool to `view`, appending them to
    /// `out`. Returns how many.
    pub(crate) fn take(&self, view: u16, n: usize, out: &mut Vec<u64>) -> usize {
        let mut s = self.lock();
        let k = n.min(s.free.len());
        let from = s.free.len() - k;
        for i in from..s.free.len() {
            let base = s.free[i];
            let idx = (base / self.frame_size) as usize;
            debug_assert_eq!(s.owner[idx], 0, "chunk {idx} in the pool has a holder");
            s.owner[idx] = view;
        }
        out.extend(s.free.drain(from..));
        k
    }

    /// Gives chunk bases held by `view` back to the pool.
    pub(crate) fn give(&self, view: u16, bases: impl Iterator<Item = u64>) {
        let mut s = self.lock();
        for base in bases {
            let idx = (base / self.frame_size) as usize;
            debug_assert_eq!(
                s.owner[idx], view,
                "chunk {idx} given back by a view not holding it"
            );
            s.owner[idx] = 0;
            s.free.push(base);
        }
    }

    /// Gives back every chunk `view` still holds (the view is gone and the
    /// kernel no longer has its frames). Returns how many came back.
    pub(crate) fn reclaim(&self, view: u16) -> u32 {
        let mut s = self.lock();
        let State { free, owner, .. } = &mut *s;
        let mut n = 0;
        for (idx, o) in owner.iter_mut().enumerate() {
            if *o == view {
                *o = 0;
                free.push(idx as u64 * self.frame_size);
                n += 1;
            }
        }
        n
    }

    /// Where the frames are.
    pub(crate) fn accounting(&self) -> PoolAccounting {
        let s = self.lock();
        let total = s.owner.len() as u32;
        let free = s.free.len() as u32;
        PoolAccounting {
            total,
            free,
            in_views: s.owner.iter().filter(|&&o| o != 0).count() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_move_between_the_pool_and_views_and_come_back() {
        let p = FramePool::new(2048, 16);
        let (a, b) = (p.new_view().unwrap(), p.new_view().unwrap());
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        assert_eq!(p.take(a, 10, &mut ca), 10);
        assert_eq!(p.take(b, 10, &mut cb), 6, "only what is left");
        assert_eq!(p.take(b, 1, &mut cb), 0);
        let acc = p.accounting();
        assert_eq!((acc.total, acc.free, acc.in_views), (16, 0, 16));
        p.give(a, ca.drain(..4));
        assert_eq!(p.accounting().free, 4);
        assert_eq!(p.reclaim(a), 6, "the six a kept");
        assert_eq!(p.reclaim(b), 6);
        let acc = p.accounting();
        assert_eq!((acc.free, acc.in_views), (16, 0));
        let mut all: Vec<u64> = Vec::new();
        p.take(a, 16, &mut all);
        all.sort_unstable();
        assert_eq!(
            all,
            (0..16).map(|i| i * 2048).collect::<Vec<_>>(),
            "each chunk once"
        );
    }

    #[test]
    fn threads_trading_chunks_lose_none() {
        let p = FramePool::new(4096, 256);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let v = p.new_view().unwrap();
                    let mut cache = Vec::new();
                    for round in 0..200 {
                        p.take(v, 1 + round % 50, &mut cache);
                        let keep = cache.len() / 2;
                        p.give(v, cache.drain(keep..));
                    }
                    p.give(v, cache.drain(..));
                });
            }
        });
        let acc = p.accounting();
        assert_eq!((acc.free, acc.in_views), (256, 0));
    }
}
