//! Batch guards: a borrow of a ring end *is* a batch.
//!
//! - [`Reserve`]: reserve → write → [`commit`](Reserve::commit). Dropping it
//!   without commit cancels every slot (written or not).
//! - [`Peek`]: peek → read → release. Entries read are released to the
//!   producer when the guard drops (or on [`release`](Peek::release));
//!   entries not read stay in the ring and are seen again by the next peek.

use super::{Consumer, Producer};

/// Slots reserved on a [`Producer`]. Write them in order with
/// [`push`](Reserve::push), then [`commit`](Reserve::commit).
#[must_use = "reserved slots are cancelled unless the batch is committed"]
#[derive(Debug)]
pub struct Reserve<'r, T: Copy> {
    ring: &'r mut Producer<T>,
    start: u32,
    len: u32,
    written: u32,
    committed: bool,
}

impl<'r, T: Copy> Reserve<'r, T> {
    pub(super) fn new(ring: &'r mut Producer<T>, start: u32, len: u32) -> Self {
        Reserve {
            ring,
            start,
            len,
            written: 0,
            committed: false,
        }
    }

    /// Slots reserved.
    pub fn capacity(&self) -> u32 {
        self.len
    }

    /// Slots written so far.
    pub fn written(&self) -> u32 {
        self.written
    }

    /// Slots still free in this batch.
    pub fn remaining(&self) -> u32 {
        self.len - self.written
    }

    /// Writes the next slot. Gives the value back when the batch is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.written == self.len {
            return Err(value);
        }
        let idx = self.start.wrapping_add(self.written);
        // SAFETY: `idx` lies in [start, start+len), reserved by this guard and
        // beyond the published producer index, so the consumer cannot read it.
        unsafe { self.ring.raw.write(idx, value) };
        self.written += 1;
        Ok(())
    }

    /// The value written in slot `i` of this batch (`i < written()`), for
    /// callers that must recover what a cancelled batch held.
    pub fn get(&self, i: u32) -> Option<T> {
        (i < self.written).then(|| {
            // SAFETY: slot `start+i` was written by this guard and is not yet
            // published, so only we access it.
            unsafe { self.ring.raw.read(self.start.wrapping_add(i)) }
        })
    }

    /// Publishes the written slots to the consumer and gives back the
    /// unwritten ones. Returns how many were published.
    pub fn commit(mut self) -> u32 {
        self.commit_in_place()
    }

    /// Whether [`commit`](Reserve::commit) already ran.
    pub fn is_committed(&self) -> bool {
        self.committed
    }

    /// Commit through a `&mut` (for wrappers that implement their own Drop);
    /// the guard then does nothing on drop. Returns how many were published.
    pub(crate) fn commit_in_place(&mut self) -> u32 {
        if self.committed {
            return 0;
        }
        let n = self.written;
        // Give back what was reserved but not written.
        self.ring.cached_prod = self.start.wrapping_add(n);
        if n > 0 {
            self.ring.publish(self.ring.cached_prod);
        }
        self.committed = true;
        n
    }
}

impl<T: Copy> Drop for Reserve<'_, T> {
    fn drop(&mut self) {
        if !self.committed {
            // Cancel: nothing of this batch was published, so rolling the
            // cached index back makes the slots free again.
            self.ring.cached_prod = self.start;
        }
    }
}

/// Entries taken from a [`Consumer`]. Read them with [`Iterator::next`].
#[must_use = "a peeked batch releases only the entries that are read"]
#[derive(Debug)]
pub struct Peek<'r, T: Copy> {
    ring: &'r mut Consumer<T>,
    start: u32,
    len: u32,
    read: u32,
}

impl<'r, T: Copy> Peek<'r, T> {
    pub(super) fn new(ring: &'r mut Consumer<T>, start: u32, len: u32) -> Self {
        Peek {
            ring,
            start,
            len,
            read: 0,
        }
    }

    /// Entries in this batch.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the batch holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries not read yet.
    pub fn remaining(&self) -> u32 {
        self.len - self.read
    }

    /// Releases the entries read so far and ends the batch; unread entries
    /// stay in the ring. Returns how many were released.
    pub fn release(self) -> u32 {
        self.read
        // Drop does the work.
    }
}

impl<T: Copy> Iterator for Peek<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.read == self.len {
            return None;
        }
        // SAFETY: the slot lies in [start, start+len), below the producer
        // index acquired by `available`, and not yet released: the producer
        // will not write it until we publish a consumer index past it.
        let v = unsafe { self.ring.raw.read(self.start.wrapping_add(self.read)) };
        self.read += 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let r = self.remaining() as usize;
        (r, Some(r))
    }
}

impl<T: Copy> ExactSizeIterator for Peek<'_, T> {}

impl<T: Copy> Drop for Peek<'_, T> {
    fn drop(&mut self) {
        let end = self.start.wrapping_add(self.read);
        // Unread entries go back: the next peek sees them again.
        self.ring.cached_cons = end;
        if self.read > 0 {
            self.ring.release_to(end);
        }
    }
}
