//! BPF maps: the XSKMAP that steers packets into AF_XDP sockets, and u64
//! arrays (shared or per-CPU) for counters.
//!
//! Each map owns its fd; dropping it closes the fd, and the kernel frees the
//! map once no loaded program uses it either.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::BpfError;
use crate::error::SysError;
use crate::sys::bpf::{self as sys, MapFd};

/// `path` as the C string bpf(2) reads; a NUL inside is `EINVAL`.
fn c_path(call: &'static str, path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SysError::from_errno(call, libc::EINVAL))
}

/// Map errors: `EPERM` says what privilege is missing, the rest keep the errno.
fn map_err(e: crate::SysError) -> BpfError {
    BpfError::from_sys(e)
}

/// `bpf(BPF_OBJ_PIN)` of `fd` at `path`, as [`BpfError::Pin`] on failure.
pub(super) fn pin_fd(fd: BorrowedFd<'_>, path: &Path) -> Result<(), BpfError> {
    let pin_err = |source| BpfError::Pin {
        path: path.to_path_buf(),
        source,
    };
    let c = c_path("bpf(BPF_OBJ_PIN)", path).map_err(pin_err)?;
    sys::obj_pin(fd, &c).map_err(pin_err)
}

fn check_key(key: u32, max_entries: u32) -> Result<(), BpfError> {
    if key >= max_entries {
        return Err(BpfError::KeyOutOfRange { key, max_entries });
    }
    Ok(())
}

/// A `BPF_MAP_TYPE_XSKMAP`: slot *i* holds the AF_XDP socket that
/// `bpf_redirect_map(&map, i, …)` delivers to. The steering programs in
/// [`super::progs`] use the receive queue number as the slot.
///
/// Minimum kernel: 4.18.
#[derive(Debug)]
pub struct XskMap {
    fd: MapFd,
    max_entries: u32,
}

impl XskMap {
    /// Creates an empty map with `max_entries` slots (one per receive queue
    /// you may bind a socket to), `bpf(BPF_MAP_CREATE)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::Permission`] without `CAP_BPF`/`CAP_NET_ADMIN`;
    /// [`BpfError::Sys`] with `EINVAL` for `max_entries` 0.
    pub fn new(max_entries: u32) -> Result<XskMap, BpfError> {
        let fd = MapFd::create(sys::BPF_MAP_TYPE_XSKMAP, 4, 4, max_entries, "pktio_xsks")
            .map_err(map_err)?;
        Ok(XskMap { fd, max_entries })
    }

    /// Number of slots.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Pins the map at `path` on a bpffs, `bpf(BPF_OBJ_PIN)`, so that
    /// another process can open it with [`XskMap::from_pinned`] (and put its
    /// own sockets in it). The pin outlives this process: remove it with
    /// [`std::fs::remove_file`] when done.
    ///
    /// The file is created with mode `0600 & !umask`, owned by the caller:
    /// to hand it to a worker running as another user, `chown` it to that
    /// user (or `chmod` it) — opening a pin is a file-permission check
    /// (read and write), no capability is needed for it.
    ///
    /// # Errors
    /// [`BpfError::Pin`]: the directory is not on a bpffs (`EPERM`), does
    /// not exist (`ENOENT`), or the name is taken (`EEXIST`).
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), BpfError> {
        pin_fd(self.fd.as_fd(), path.as_ref())
    }

    /// Opens the XSKMAP pinned at `path` (by [`XskMap::pin`], bpftool,
    /// libxdp or aya), `bpf(BPF_OBJ_GET)`, and checks with
    /// `bpf(BPF_OBJ_GET_INFO_BY_FD)` that it is an XSKMAP with 4-byte keys
    /// and values.
    ///
    /// Needs no capability on kernel 6.5 or later (where bpf(2) checks
    /// privilege only to create maps and load programs): read and write
    /// permission on the pinned file is enough, even with
    /// `kernel.unprivileged_bpf_disabled` set. Earlier kernels with that
    /// sysctl set refuse every bpf(2) command without `CAP_BPF` (`EPERM`).
    ///
    /// # Errors
    /// [`BpfError::OpenPinned`] when the pin cannot be opened (its advice
    /// depends on the errno); [`BpfError::NotAnXskMap`] when the object
    /// there is something else.
    pub fn from_pinned(path: impl AsRef<Path>) -> Result<XskMap, BpfError> {
        let path = path.as_ref();
        let open_err = |source| BpfError::OpenPinned {
            path: path.to_path_buf(),
            source,
        };
        let c = c_path("bpf(BPF_OBJ_GET)", path).map_err(open_err)?;
        let fd = sys::obj_get(&c).map_err(open_err)?;
        // The info call answers for whatever object is pinned there (a
        // program's info starts with its type, too): make sure it is a map.
        let is_map = sys::is_map_fd(fd.as_fd());
        let info = sys::map_info(fd.as_fd()).map_err(open_err)?;
        if is_map == Some(false)
            || info.map_type != sys::BPF_MAP_TYPE_XSKMAP
            || info.key_size != 4
            || info.value_size != 4
        {
            return Err(BpfError::NotAnXskMap {
                path: path.to_path_buf(),
                map_type: if is_map == Some(false) {
                    None
                } else {
                    Some(info.map_type)
                },
                key_size: info.key_size,
                value_size: info.value_size,
            });
        }
        Ok(XskMap {
            fd: MapFd::from_owned(fd, &info),
            max_entries: info.max_entries,
        })
    }

    /// The kernel's id of this map (`bpftool map show id N`),
    /// `bpf(BPF_OBJ_GET_INFO_BY_FD)`.
    ///
    /// # Errors
    /// [`BpfError::Sys`].
    pub fn id(&self) -> Result<u32, BpfError> {
        Ok(sys::map_info(self.fd.as_fd())?.id)
    }

    /// Puts the AF_XDP socket `socket` in slot `key`, replacing what was
    /// there, `bpf(BPF_MAP_UPDATE_ELEM)`. The map keeps its own reference to
    /// the socket until [`XskMap::unset`], replacement, or the map is freed.
    /// The socket may be bound before or after.
    ///
    /// # Errors
    ///
    /// - [`BpfError::KeyOutOfRange`] if `key >= max_entries`.
    /// - [`BpfError::Sys`] with `EOPNOTSUPP` if `socket` is not an AF_XDP socket.
    pub fn set(&self, key: u32, socket: BorrowedFd<'_>) -> Result<(), BpfError> {
        check_key(key, self.max_entries)?;
        let value = (socket.as_raw_fd() as u32).to_ne_bytes();
        self.fd
            .update(&key.to_ne_bytes(), &value, sys::BPF_ANY)
            .map_err(map_err)
    }

    /// Empties slot `key` (packets for it then take the program's fallback,
    /// `XDP_PASS` for [`super::progs::xsk_redirect`]), `bpf(BPF_MAP_DELETE_ELEM)`.
    /// Emptying an empty slot is not an error.
    ///
    /// # Errors
    ///
    /// [`BpfError::KeyOutOfRange`] if `key >= max_entries`.
    pub fn unset(&self, key: u32) -> Result<(), BpfError> {
        check_key(key, self.max_entries)?;
        match self.fd.delete(&key.to_ne_bytes()) {
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
            other => other.map_err(map_err),
        }
    }
}

impl AsFd for XskMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A `BPF_MAP_TYPE_ARRAY` of `u64`, shared by all CPUs (programs update it
/// with atomic adds). Entries start at 0.
///
/// Minimum kernel: 3.19.
#[derive(Debug)]
pub struct ArrayMap {
    fd: MapFd,
    max_entries: u32,
}

impl ArrayMap {
    /// Creates an array of `max_entries` zeros, `bpf(BPF_MAP_CREATE)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::Permission`]; [`BpfError::Sys`] (`EINVAL` for 0 entries).
    pub fn new(max_entries: u32) -> Result<ArrayMap, BpfError> {
        let fd = MapFd::create(sys::BPF_MAP_TYPE_ARRAY, 4, 8, max_entries, "pktio_array")
            .map_err(map_err)?;
        Ok(ArrayMap { fd, max_entries })
    }

    /// Number of entries.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Reads entry `key`, `bpf(BPF_MAP_LOOKUP_ELEM)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::KeyOutOfRange`]; [`BpfError::Sys`].
    pub fn get(&self, key: u32) -> Result<u64, BpfError> {
        check_key(key, self.max_entries)?;
        let mut value = [0u8; 8];
        self.fd
            .lookup(&key.to_ne_bytes(), &mut value)
            .map_err(map_err)?;
        Ok(u64::from_ne_bytes(value))
    }

    /// Writes entry `key`, `bpf(BPF_MAP_UPDATE_ELEM)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::KeyOutOfRange`]; [`BpfError::Sys`].
    pub fn set(&self, key: u32, value: u64) -> Result<(), BpfError> {
        check_key(key, self.max_entries)?;
        self.fd
            .update(&key.to_ne_bytes(), &value.to_ne_bytes(), sys::BPF_ANY)
            .map_err(map_err)
    }
}

impl ArrayMap {
    /// Pins the array at `path` on a bpffs, as [`XskMap::pin`] does.
    ///
    /// # Errors
    /// [`BpfError::Pin`].
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), BpfError> {
        pin_fd(self.fd.as_fd(), path.as_ref())
    }
}

impl AsFd for ArrayMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A `BPF_MAP_TYPE_PERCPU_ARRAY` of `u64`: each CPU has its own copy of
/// every entry, so programs count without atomics; readers sum the copies.
///
/// Minimum kernel: 4.6.
#[derive(Debug)]
pub struct PerCpuArray {
    fd: MapFd,
    max_entries: u32,
}

impl PerCpuArray {
    /// Creates a per-CPU array of `max_entries` zeros, `bpf(BPF_MAP_CREATE)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::Permission`]; [`BpfError::Sys`] (also when
    /// `/sys/devices/system/cpu/possible` cannot be read).
    pub fn new(max_entries: u32) -> Result<PerCpuArray, BpfError> {
        let fd = MapFd::create(
            sys::BPF_MAP_TYPE_PERCPU_ARRAY,
            4,
            8,
            max_entries,
            "pktio_percpu",
        )
        .map_err(map_err)?;
        Ok(PerCpuArray { fd, max_entries })
    }

    /// Number of entries.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Number of per-CPU copies (possible CPUs).
    pub fn cpus(&self) -> usize {
        self.fd.value_len() / 8
    }

    /// Every CPU's copy of entry `key`, `bpf(BPF_MAP_LOOKUP_ELEM)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::KeyOutOfRange`]; [`BpfError::Sys`].
    pub fn get(&self, key: u32) -> Result<Vec<u64>, BpfError> {
        check_key(key, self.max_entries)?;
        let mut values = vec![0u8; self.fd.value_len()];
        self.fd
            .lookup(&key.to_ne_bytes(), &mut values)
            .map_err(map_err)?;
        Ok(values
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// The sum over CPUs of entry `key` (wrapping).
    ///
    /// # Errors
    ///
    /// As [`PerCpuArray::get`].
    pub fn sum(&self, key: u32) -> Result<u64, BpfError> {
        Ok(self
            .get(key)?
            .into_iter()
            .fold(0u64, |acc, v| acc.wrapping_add(v)))
    }

    /// Sets every CPU's copy of entry `key` to `value` (0 to reset a
    /// counter), `bpf(BPF_MAP_UPDATE_ELEM)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::KeyOutOfRange`]; [`BpfError::Sys`].
    pub fn set_all(&self, key: u32, value: u64) -> Result<(), BpfError> {
        check_key(key, self.max_entries)?;
        let values: Vec<u8> = std::iter::repeat(value.to_ne_bytes())
            .take(self.cpus())
            .flatten()
            .collect();
        self.fd
            .update(&key.to_ne_bytes(), &values, sys::BPF_ANY)
            .map_err(map_err)
    }
}

impl AsFd for PerCpuArray {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
