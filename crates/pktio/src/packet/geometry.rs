//! Ring geometry: turning frame and block sizes into a `tpacket_req`, and
//! refusing — with the kernel's reason in words — what the kernel would
//! refuse with a bare `EINVAL`.
//!
//! The rules are `packet_set_ring` in `net/packet/af_packet.c` (v6.18):
//!
//! - the block size is positive and a multiple of the page size;
//! - a frame is at least `tp_hdrlen` bytes (52 for V2, 68 for V3) and a
//!   multiple of `TPACKET_ALIGNMENT` (16);
//! - at least one frame fits in a block, and for V3 a block holds its
//!   48-byte descriptor plus one minimal frame;
//! - `frame_nr` is exactly `frames_per_block * block_nr`.
//!
//! Pure code, unit-tested; a root-only test checks the kernel agrees.

use super::header::FrameHeader;
use super::PacketError;
use crate::sys::packet::{RingReq, TPACKET_ALIGNMENT};

use super::block::BLOCK_HEADER_LEN;

/// Largest ring pktio asks the kernel for (bytes per ring): 4 GiB. The
/// kernel's own limit is memory; this one keeps `block_size * block_nr`
/// inside `u32` arithmetic on every side.
const MAX_RING_BYTES: u64 = 1 << 32;

/// Which ring a geometry is for (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingRole {
    /// The RX ring.
    Rx,
    /// The TX ring.
    Tx,
}

impl std::fmt::Display for RingRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RingRole::Rx => "RX",
            RingRole::Tx => "TX",
        })
    }
}

fn bad(role: RingRole, problem: String) -> PacketError {
    PacketError::Geometry {
        ring: role,
        problem,
        source: None,
    }
}

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

/// Checks a frame size for header layout `H`.
fn check_frame<H: FrameHeader>(role: RingRole, frame_size: u32) -> Result<(), PacketError> {
    let align = TPACKET_ALIGNMENT as u32;
    if frame_size < H::HDRLEN as u32 {
        return Err(bad(
            role,
            format!(
                "frame size {frame_size} is smaller than the {} header ({} bytes): \
                 a frame holds its header and the packet",
                H::NAME,
                H::HDRLEN
            ),
        ));
    }
    if frame_size % align != 0 {
        let lo = frame_size / align * align;
        return Err(bad(
            role,
            format!(
                "frame size {frame_size} is not a multiple of TPACKET_ALIGNMENT ({align}): \
                 use {lo} or {}",
                lo + align
            ),
        ));
    }
    Ok(())
}

/// A frame ring (V2 RX/TX, V3 TX) of at least `frame_count` frames of
/// `frame_size` bytes. Blocks are the smallest page multiple that holds a
/// frame; the frame count is rounded up to whole blocks.
///
/// # Errors
/// [`PacketError::Geometry`] naming the rule broken.
pub(crate) fn frame_ring<H: FrameHeader>(
    role: RingRole,
    frame_size: u32,
    frame_count: u32,
    page: usize,
) -> Result<RingReq, PacketError> {
    check_frame::<H>(role, frame_size)?;
    if frame_count == 0 {
        return Err(bad(role, "frame count must be at least 1".into()));
    }
    let page = page as u64;
    let block_size = round_up(frame_size as u64, page);
    let per_block = block_size / frame_size as u64;
    let block_nr = (frame_count as u64).div_ceil(per_block);
    let bytes = block_size * block_nr;
    if bytes > MAX_RING_BYTES || block_size > u32::MAX as u64 {
        return Err(bad(
            role,
            format!(
                "{frame_count} frames of {frame_size} bytes make a {bytes}-byte ring; \
                 the limit is {MAX_RING_BYTES} bytes"
            ),
        ));
    }
    Ok(RingReq {
        block_size: block_size as u32,
        block_nr: block_nr as u32,
        frame_size,
        frame_nr: (per_block * block_nr) as u32,
        retire_blk_tov: 0,
    })
}

/// A V3 block ring (RX) of `block_count` blocks of `block_size` bytes.
/// `frame_size` only has to satisfy the kernel's checks (V3 packets are
/// variable-sized; the largest packet a block holds is
/// `block_size - 48` minus its header).
///
/// # Errors
/// [`PacketError::Geometry`] naming the rule broken.
pub(crate) fn block_ring<H: FrameHeader>(
    block_size: u32,
    block_count: u32,
    frame_size: u32,
    retire_ms: u32,
    page: usize,
) -> Result<RingReq, PacketError> {
    let role = RingRole::Rx;
    if block_size == 0 || block_size as usize % page != 0 {
        let lo = block_size as usize / page * page;
        let hint = if lo == 0 {
            format!("use {page}")
        } else {
            format!("use {lo} or {}", lo + page)
        };
        return Err(bad(
            role,
            format!("block size {block_size} is not a multiple of the page size ({page}): {hint}"),
        ));
    }
    if block_count == 0 {
        return Err(bad(role, "block count must be at least 1".into()));
    }
    check_frame::<H>(role, frame_size)?;
    if frame_size > block_size {
        return Err(bad(
            role,
            format!(
                "frame size {frame_size} does not fit in a {block_size}-byte block: \
                 use blocks of at least {} bytes or smaller frames",
                round_up(frame_size as u64, page as u64)
            ),
        ));
    }
    if (block_size as usize) < BLOCK_HEADER_LEN + H::HDRLEN {
        return Err(bad(
            role,
            format!(
                "a {block_size}-byte block cannot hold its {BLOCK_HEADER_LEN}-byte descriptor \
                 and one {}-byte packet header",
                H::HDRLEN
            ),
        ));
    }
    let bytes = block_size as u64 * block_count as u64;
    if bytes > MAX_RING_BYTES {
        return Err(bad(
            role,
            format!(
                "{block_count} blocks of {block_size} bytes make a {bytes}-byte ring; \
                 the limit is {MAX_RING_BYTES} bytes"
            ),
        ));
    }
    let per_block = block_size / frame_size;
    Ok(RingReq {
        block_size,
        block_nr: block_count,
        frame_size,
        frame_nr: per_block * block_count,
        retire_blk_tov: retire_ms,
    })
}

/// The largest frame (Ethernet header included) a V3 block of `block_size`
/// bytes holds whole: `tpacket_rcv` (v6.18) puts the frame at
/// `macoff = TPACKET_ALIGN(tp_hdrlen + 16) - 14` after the 48-byte block
/// descriptor and cuts what does not fit (`max_frame_len`).
pub(crate) fn v3_max_frame<H: FrameHeader>(block_size: u32) -> u32 {
    let netoff = round_up(H::HDRLEN as u64 + 16, TPACKET_ALIGNMENT as u64);
    let macoff = netoff - 14;
    (block_size as u64).saturating_sub(BLOCK_HEADER_LEN as u64 + macoff) as u32
}

/// Checks that a V3 block holds a whole frame of an interface with MTU
/// `mtu` (plus its 14-byte Ethernet header and one 4-byte VLAN tag): the
/// kernel would otherwise hand over such frames cut short.
///
/// # Errors
/// [`PacketError::Geometry`] naming the smallest block size that does.
pub(crate) fn check_block_holds_mtu<H: FrameHeader>(
    ifname: &str,
    block_size: u32,
    mtu: u32,
    page: usize,
) -> Result<(), PacketError> {
    let frame = mtu.saturating_add(18);
    let holds = v3_max_frame::<H>(block_size);
    if frame <= holds {
        return Ok(());
    }
    let need = round_up(block_size as u64 + (frame - holds) as u64, page as u64);
    Err(bad(
        RingRole::Rx,
        format!(
            "a TPACKET_V3 block must hold a whole frame: {ifname} has MTU {mtu}, so frames of up \
             to {frame} bytes (Ethernet and VLAN headers included), but a {block_size}-byte \
             block holds at most {holds} after its descriptor and packet header; the kernel \
             would cut longer frames short: use block_size >= {need} (or lower the MTU)"
        ),
    ))
}

/// The constraints, in words, for an `EINVAL` the checks above did not
/// foresee (a kernel with other rules).
pub(crate) const KERNEL_RULES: &str = "the kernel wants: block size a multiple of the page size, \
     frame size a multiple of 16 and at least the TPACKET header, whole frames per block, \
     frame count = frames per block x block count";

#[cfg(test)]
mod tests {
    use super::super::header::{V2, V3};
    use super::*;
    use crate::sys::packet::Version;

    fn problem(e: PacketError) -> String {
        match e {
            PacketError::Geometry { problem, .. } => problem,
            e => panic!("expected a geometry error, got {e:?}"),
        }
    }

    #[test]
    fn frame_rings_round_up_to_whole_blocks() {
        let r = frame_ring::<V2>(RingRole::Rx, 2048, 4095, 4096).unwrap();
        assert_eq!((r.block_size, r.block_nr, r.frame_nr), (4096, 2048, 4096));
        let r = frame_ring::<V2>(RingRole::Tx, 1536, 10, 4096).unwrap();
        assert_eq!((r.block_size, r.frame_nr), (4096, 10));
        let r = frame_ring::<V3>(RingRole::Tx, 9216, 3, 4096).unwrap();
        assert_eq!((r.block_size, r.block_nr, r.frame_nr), (12288, 3, 3));
    }

    #[test]
    fn bad_frame_sizes_say_why() {
        let p = problem(frame_ring::<V2>(RingRole::Rx, 1000, 64, 4096).unwrap_err());
        assert!(
            p.contains("not a multiple of TPACKET_ALIGNMENT (16)"),
            "{p}"
        );
        assert!(p.contains("992 or 1008"), "{p}");
        let p = problem(frame_ring::<V3>(RingRole::Tx, 64, 64, 4096).unwrap_err());
        assert!(
            p.contains("smaller than the TPACKET_V3 header (68 bytes)"),
            "{p}"
        );
        let p = problem(frame_ring::<V2>(RingRole::Rx, 2048, 0, 4096).unwrap_err());
        assert!(p.contains("frame count"), "{p}");
    }

    #[test]
    fn a_v3_block_must_hold_a_whole_frame() {
        use crate::packet::header::V3;
        // 48-byte block descriptor + macoff 82 (TPACKET_ALIGN(68 + 16) - 14).
        assert_eq!(v3_max_frame::<V3>(4096), 4096 - 48 - 82);
        assert!(check_block_holds_mtu::<V3>("vrx", 4096, 1500, 4096).is_ok());
        assert!(check_block_holds_mtu::<V3>("vrx", 12288, 9000, 4096).is_ok());
        let e = check_block_holds_mtu::<V3>("vrx", 8192, 9000, 4096).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("MTU 9000"), "{m}");
        assert!(m.contains("block_size >= 12288"), "{m}");
        assert!(m.contains("whole frame"), "{m}");
        // Exactly enough.
        let exact = 9018 + 48 + 82;
        assert_eq!(v3_max_frame::<V3>(exact), 9018);
        assert!(check_block_holds_mtu::<V3>("vrx", exact, 9000, 1).is_ok());
        assert!(check_block_holds_mtu::<V3>("vrx", exact - 1, 9000, 1).is_err());
    }

    #[test]
    fn bad_block_sizes_say_why() {
        let p = problem(block_ring::<V3>(5000, 4, 2048, 10, 4096).unwrap_err());
        assert!(p.contains("not a multiple of the page size (4096)"), "{p}");
        assert!(p.contains("4096 or 8192"), "{p}");
        let p = problem(block_ring::<V3>(100, 4, 2048, 10, 4096).unwrap_err());
        assert!(p.contains("use 4096"), "{p}");
        let p = problem(block_ring::<V3>(4096, 4, 8192, 10, 4096).unwrap_err());
        assert!(p.contains("does not fit in a 4096-byte block"), "{p}");
        let p = problem(block_ring::<V3>(4096, 0, 2048, 10, 4096).unwrap_err());
        assert!(p.contains("block count"), "{p}");
        let p = problem(block_ring::<V3>(1 << 30, 8, 2048, 10, 4096).unwrap_err());
        assert!(p.contains("limit"), "{p}");
        let r = block_ring::<V3>(1 << 20, 8, 2048, 10, 4096).unwrap();
        assert_eq!(r.frame_nr, 512 * 8);
    }

    /// The checks above and the kernel agree: what they accept the kernel
    /// accepts, and a geometry they refuse only because of a kernel rule
    /// (not pktio's own limits) the kernel refuses with EINVAL. Needs
    /// CAP_NET_RAW for the socket; no interface.
    #[test]
    fn the_kernel_agrees() {
        use crate::sys::packet as sys;
        pktio_host::skip_unless!(&[pktio_host::caps::Cap::NET_RAW], "an AF_PACKET socket");
        let fd = sys::socket().expect("an AF_PACKET socket");
        use std::os::fd::AsFd;
        let page = sys::page_size();
        let v3 = |bs: u32, bn: u32, fs: u32| RingReq {
            block_size: bs,
            block_nr: bn,
            frame_size: fs,
            frame_nr: if fs > 0 && bs >= fs { bs / fs * bn } else { bn },
            retire_blk_tov: 10,
        };
        // Each case on a fresh socket (a ring can be set once).
        let kernel = |v: Version, req: &RingReq| {
            let fd = sys::socket().expect("socket");
            sys::set_version(fd.as_fd(), v).expect("version");
            sys::set_ring(fd.as_fd(), v, false, req).map_err(|e| e.errno())
        };
        drop(fd);
        // V3 block rings.
        for (bs, bn, fs) in [
            (4096u32, 4u32, 2048u32),
            (1 << 20, 2, 2048),
            (5000, 4, 2048),
            (4096, 4, 8192),
            (4096, 4, 1000),
            (4096, 4, 64),
            (6000, 1, 2048),
        ] {
            let ours = block_ring::<V3>(bs, bn, fs, 10, page);
            let theirs = kernel(Version::V3, &v3(bs, bn, fs));
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "V3 block {bs} x {bn}, frame {fs}: pktio {ours:?}, kernel {theirs:?}"
            );
            if ours.is_err() {
                assert_eq!(theirs, Err(Some(libc::EINVAL)));
            }
        }
        // Frame rings (V2 RX; the kernel's checks are the same for TX).
        for (fs, n) in [
            (2048u32, 64u32),
            (1536, 10),
            (1000, 64),
            (48, 64),
            (9216, 3),
        ] {
            let ours = frame_ring::<V2>(RingRole::Rx, fs, n, page);
            let req = ours.as_ref().copied().unwrap_or(RingReq {
                block_size: page as u32,
                block_nr: n,
                frame_size: fs,
                frame_nr: (page as u32).checked_div(fs).map_or(n, |per| per * n),
                retire_blk_tov: 0,
            });
            let theirs = kernel(Version::V2, &req);
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "V2 frame {fs} x {n}: pktio {ours:?}, kernel {theirs:?}"
            );
        }
    }
}
