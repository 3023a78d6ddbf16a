//! `Mmap`: an owned memory mapping, unmapped on drop.
//!
//! Used for the UMEM area (anonymous, optionally hugepage-backed) and for the
//! AF_XDP rings (shared mappings of the socket at fixed page offsets), and
//! [`RingLayout`], where a shared ring's words lie inside its mapping.

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use crate::error::SysError;

/// The byte offsets, inside one ring mapping, of the producer, consumer and
/// flags words and of the descriptor array.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingLayout {
    pub(crate) producer: usize,
    pub(crate) consumer: usize,
    pub(crate) flags: Option<usize>,
    pub(crate) desc: usize,
}

/// An owned mapping of `len` bytes at `ptr`. `munmap` runs on drop.
///
/// The mapping is never exposed as a Rust reference by this type: callers
/// derive raw pointers from it and state their own aliasing argument.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is plain memory with no thread affinity; moving the
// owner to another thread moves the right (and duty) to unmap it.
unsafe impl Send for Mmap {}
// What threads do with the memory is argued by the callers (for the UMEM:
// each chunk has one owner at a time, and chunks change hands through a lock).
// SAFETY: `&Mmap` gives out only the fixed address and length, never a Rust reference into the mapping.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE[|MAP_HUGETLB], -1, 0)`.
    pub(crate) fn anonymous(len: usize, hugepages: bool) -> Result<Mmap, SysError> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        if hugepages {
            flags |= libc::MAP_HUGETLB;
        }
        // SAFETY: an anonymous mapping at an address of the kernel's choosing
        // cannot overlap or alias any existing Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        Self::from_raw(
            if hugepages {
                "mmap(MAP_HUGETLB)"
            } else {
                "mmap(anonymous)"
            },
            ptr,
            len,
        )
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, offset)`:
    /// maps one of the rings an AF_XDP socket exposes at a fixed page offset.
    pub(crate) fn shared(
        call: &'static str,
        fd: BorrowedFd<'_>,
        len: usize,
        offset: u64,
    ) -> Result<Mmap, SysError> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of the socket's ring at an address of the kernel's choosing; it aliases no Rust object. The kernel keeps the ring alive while the mapping exists (the mapping holds a socket reference).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        Self::from_raw(call, ptr, len)
    }

    fn from_raw(call: &'static str, ptr: *mut libc::c_void, len: usize) -> Result<Mmap, SysError> {
        if ptr == libc::MAP_FAILED {
            return Err(SysError::last(call));
        }
        match NonNull::new(ptr.cast::<u8>()) {
            Some(ptr) => Ok(Mmap { ptr, len }),
            None => Err(SysError::from_errno(call, libc::ENOMEM)),
        }
    }

    /// Start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and still
        // owns; every pointer derived from it is tied to the owner's lifetime.
        let ret = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(ret, 0, "munmap failed: {}", std::io::Error::last_os_error());
    }
}
