//! Checked reads of integers from byte buffers the kernel or a file hands
//! over: `None` when the field does not lie wholly inside the buffer (never a
//! panic, whatever the offset), native-endian for kernel structs and netlink,
//! big-endian for packet headers.
//!
//! ```
//! use pktio_host::bytes::{be_u16, ne_u32};
//!
//! let b = [0x08, 0x00, 1, 0, 0, 0];
//! assert_eq!(be_u16(&b, 0), Some(0x0800));
//! assert_eq!(ne_u32(&b, 2), Some(u32::from_ne_bytes([1, 0, 0, 0])));
//! assert_eq!(ne_u32(&b, 3), None);
//! assert_eq!(be_u16(&b, usize::MAX), None);
//! ```

/// The `N` bytes at `at`, if they are all inside `b`.
#[inline]
pub fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The byte at `at`.
#[inline]
pub fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

/// The native-endian `u16` at `at`.
#[inline]
pub fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_ne_bytes)
}

/// The native-endian `u32` at `at`.
#[inline]
pub fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_ne_bytes)
}

/// The native-endian `u64` at `at`.
#[inline]
pub fn ne_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_ne_bytes)
}

/// The big-endian (network order) `u16` at `at`.
#[inline]
pub fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

/// The big-endian (network order) `u32` at `at`.
#[inline]
pub fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offset_near_the_end_and_past_it_is_none_not_a_panic() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        for at in [5, 6, 7, 8, 9, usize::MAX - 1, usize::MAX] {
            assert_eq!(ne_u64(&b, at), None);
            assert_eq!(be_u32(&b, at), None);
        }
        assert_eq!(ne_u64(&b, 0), Some(u64::from_ne_bytes(b)));
        assert_eq!(be_u32(&b, 4), Some(0x0506_0708));
        assert_eq!(be_u16(&b, 6), Some(0x0708));
        assert_eq!(be_u16(&b, 7), None);
        assert_eq!(u8_at(&b, 7), Some(8));
        assert_eq!(u8_at(&b, 8), None);
    }
}
