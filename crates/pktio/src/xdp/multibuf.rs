//! Multi-buffer AF_XDP (kernel 6.6): packets larger than one UMEM frame,
//! spread over several descriptors.
//!
//! A socket built with
//! [`XskSocketBuilder::multi_buffer`](super::XskSocketBuilder::multi_buffer)
//! binds with `XDP_USE_SG` and steers with a program loaded with
//! `BPF_F_XDP_HAS_FRAGS`. The kernel then hands a packet that does not fit
//! one frame over as several RX descriptors, all but the last flagged
//! `XDP_PKT_CONTD`, and published together; a packet to send is written the
//! same way. This module presents both as a [`Packet`]: the frames of one
//! packet, in order.
//!
//! ```no_run
//! # use pktio::xdp::{Umem, UmemConfig, XskSocket, Packet};
//! # fn main() -> Result<(), pktio::xdp::XskError> {
//! let umem = Umem::new(UmemConfig::default())?;
//! let mut sock = XskSocket::builder("eth0").multi_buffer(true).build(&umem)?;
//! sock.fill_from_pool(u32::MAX)?;
//! let parts = sock.parts();
//! let (rx, fill) = (parts.rx.unwrap(), parts.fill.unwrap());
//! let mut back = Vec::new();
//! for pkt in rx.receive_packets(64) {
//!     println!("{} bytes in {} frame(s)", pkt.len(), pkt.segment_count());
//!     back.extend(pkt.into_frames());
//! }
//! fill.fill_from(&mut back);
//! # Ok(()) }
//! ```
//!
//! Ownership is the frames': a [`Packet`] owns its [`Frame`]s, dropping it
//! returns them to the pool, and sending it ([`TxBatch::push_packet`])
//! consumes it. The per-frame accounting of [`Umem`] sees nothing new.

use rustix::net::xdp::{XdpDesc, XdpDescOptions};
use smallvec::SmallVec;

use super::rings::{RxRing, TxBatch};
use super::umem::{Frame, Place, Umem};
use super::XskError;
use crate::ring::Peek;

/// Frames held inline by a [`Packet`] before it allocates: a 9000-byte
/// frame in 4096-byte chunks needs 3.
const INLINE_SEGMENTS: usize = 4;

/// One packet: one or more frames of a [`Umem`], in order.
///
/// Not `Clone`; dropping it returns its frames to the pool.
#[derive(Debug, Default)]
pub struct Packet<'u> {
    segs: SmallVec<[Frame<'u>; INLINE_SEGMENTS]>,
}

impl<'u> Packet<'u> {
    /// An empty packet (no frames).
    pub fn new() -> Packet<'u> {
        Packet {
            segs: SmallVec::new(),
        }
    }

    /// A packet of one frame.
    pub fn single(frame: Frame<'u>) -> Packet<'u> {
        let mut p = Packet::new();
        p.push(frame);
        p
    }

    /// Appends a frame as the next segment.
    pub fn push(&mut self, frame: Frame<'u>) {
        self.segs.push(frame);
    }

    /// Copies `bytes` into frames taken from `umem`'s free pool, each
    /// filled to its capacity (`Umem::max_packet` bytes for a fresh frame).
    ///
    /// # Errors
    /// [`XskError::Config`] for an empty packet or when the pool runs out
    /// (the frames taken so far go back to it).
    pub fn from_bytes(umem: &'u Umem, bytes: &[u8]) -> Result<Packet<'u>, XskError> {
        if bytes.is_empty() {
            return Err(XskError::Config("a packet needs at least one byte".into()));
        }
        let mut p = Packet::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let Some(mut f) = umem.alloc() else {
                return Err(XskError::Config(format!(
                    "the UMEM's free pool ran out building a {}-byte packet: \
                     use more frames (UmemConfig::frame_count) or reap completions first",
                    bytes.len()
                )));
            };
            let n = rest.len().min(f.capacity() as usize);
            // Cannot fail: n is at most the capacity.
            let _ = f.write(&rest[..n]);
            rest = &rest[n..];
            p.push(f);
        }
        Ok(p)
    }

    /// The frames, in order.
    pub fn segments(&self) -> &[Frame<'u>] {
        &self.segs
    }

    /// The frames, writable in place.
    pub fn segments_mut(&mut self) -> &mut [Frame<'u>] {
        &mut self.segs
    }

    /// Number of frames.
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// Total packet length in bytes (all frames).
    pub fn len(&self) -> usize {
        self.segs.iter().map(|f| f.len() as usize).sum()
    }

    /// Whether the packet has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first frame (the Ethernet header is in it), if any.
    pub fn first(&self) -> Option<&Frame<'u>> {
        self.segs.first()
    }

    /// The first frame, writable.
    pub fn first_mut(&mut self) -> Option<&mut Frame<'u>> {
        self.segs.first_mut()
    }

    /// Appends all the packet's bytes to `out`.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        for f in &self.segs {
            out.extend_from_slice(f.data());
        }
    }

    /// The packet's bytes in one `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.copy_to(&mut v);
        v
    }

    /// Gives the frames back one by one (e.g. to put them on the fill ring).
    pub fn into_frames(self) -> impl Iterator<Item = Frame<'u>> {
        self.segs.into_iter()
    }
}

impl<'u> From<Frame<'u>> for Packet<'u> {
    fn from(f: Frame<'u>) -> Self {
        Packet::single(f)
    }
}

impl<'u> RxRing<'u> {
    /// Takes up to `max` received *packets*, each possibly spread over
    /// several descriptors (`XDP_PKT_CONTD` on all but the last). Packets
    /// not read stay in the ring; a batch never stops in the middle of a
    /// packet.
    ///
    /// The kernel publishes all descriptors of a packet at once. Should a
    /// batch still end inside one (a kernel that breaks that promise), the
    /// partial packet's frames go back to the pool and
    /// [`PacketBatch::truncated`] counts it.
    ///
    /// Works for single-buffer sockets too (every packet has one segment).
    pub fn receive_packets(&mut self, max: u32) -> PacketBatch<'_, 'u> {
        PacketBatch {
            umem: self.umem,
            inner: self.ring.peek(u32::MAX),
            left: max,
            truncated: 0,
        }
    }
}

/// Received packets taken by [`RxRing::receive_packets`].
#[must_use = "unread packets stay in the ring"]
#[derive(Debug)]
pub struct PacketBatch<'r, 'u> {
    umem: &'u Umem,
    inner: Peek<'r, XdpDesc>,
    left: u32,
    truncated: u32,
}

impl PacketBatch<'_, '_> {
    /// Packets whose last descriptor was missing (dropped, frames freed).
    pub fn truncated(&self) -> u32 {
        self.truncated
    }

    /// Descriptors still unread in the batch.
    pub fn remaining_descriptors(&self) -> u32 {
        self.inner.remaining()
    }
}

impl<'u> Iterator for PacketBatch<'_, 'u> {
    type Item = Packet<'u>;

    fn next(&mut self) -> Option<Packet<'u>> {
        if self.left == 0 {
            return None;
        }
        let mut p = Packet::new();
        loop {
            let Some(d) = self.inner.next() else {
                if !p.segs.is_empty() {
                    // Dropping `p` returns its frames to the pool.
                    self.truncated += 1;
                }
                return None;
            };
            if let Some(f) = self.umem.frame_from_kernel(d.addr, d.len, Place::RxPath) {
                p.push(f);
            }
            if !d.options.contains(XdpDescOptions::XDP_PKT_CONTD) {
                break;
            }
        }
        self.left -= 1;
        Some(p)
    }
}

/// `XDP_TX_METADATA` (if_xdp.h, kernel 6.8): the first descriptor of a
/// packet carries a `struct xsk_tx_metadata` before its address.
pub(crate) const XDP_TX_METADATA: u32 = 1 << 1;

impl<'u> TxBatch<'_, 'u> {
    /// Queues a packet of one or more frames: one descriptor per frame,
    /// `XDP_PKT_CONTD` on all but the last. Needs a socket bound with
    /// multi-buffer when the packet has more than one frame (the kernel
    /// counts it in `tx_invalid_descs` otherwise), and at most the kernel's
    /// segment limit of frames ([`super::XskSocket::max_segments`]).
    ///
    /// Gives the packet back when the batch has fewer free slots than the
    /// packet has frames, or the packet or one of its frames is empty.
    pub fn push_packet(&mut self, packet: Packet<'u>) -> Result<(), Packet<'u>> {
        self.push_packet_opts(packet, 0)
    }

    /// [`push_packet`](TxBatch::push_packet) with `first` option bits on
    /// the first descriptor.
    pub(crate) fn push_packet_opts(
        &mut self,
        packet: Packet<'u>,
        first: u32,
    ) -> Result<(), Packet<'u>> {
        let n = packet.segs.len();
        if n == 0 || self.inner.remaining() < n as u32 || packet.segs.iter().any(|f| f.is_empty()) {
            return Err(packet);
        }
        debug_assert!(
            packet
                .segs
                .iter()
                .all(|f| std::ptr::eq(f.umem(), self.umem)),
            "frame of another UMEM"
        );
        for (i, f) in packet.segs.into_iter().enumerate() {
            let mut options = if i + 1 < n {
                XdpDescOptions::XDP_PKT_CONTD
            } else {
                XdpDescOptions::empty()
            };
            if i == 0 {
                options |= XdpDescOptions::from_bits_retain(first);
            }
            let (addr, len) = f.into_ring(Place::TxPath);
            let pushed = self.inner.push(XdpDesc { addr, len, options });
            debug_assert!(pushed.is_ok(), "remaining() was checked");
        }
        Ok(())
    }
}

/// How many frames a packet of `len` bytes needs when each holds `per_frame`.
pub fn segments_for(len: u32, per_frame: u32) -> u32 {
    if per_frame == 0 {
        return u32::MAX;
    }
    len.div_ceil(per_frame).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_arithmetic() {
        assert_eq!(segments_for(9014, 3840), 3);
        assert_eq!(segments_for(3840, 3840), 1);
        assert_eq!(segments_for(3841, 3840), 2);
        assert_eq!(segments_for(0, 3840), 1);
        assert_eq!(segments_for(1, 0), u32::MAX);
        assert_eq!(segments_for(65535, 1792), 37);
    }
}
