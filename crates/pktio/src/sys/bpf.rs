//! bpf(2): map create/update/lookup/delete, program load, test runs, links,
//! object info. The raw ABI of [`crate::bpf`].
//!
//! Every `union bpf_attr` member used here is written as its own `#[repr(C)]`
//! *prefix* struct: the fields up to the last one we set, with the size
//! asserted at compile time. The kernel accepts an attr shorter than its own
//! `union bpf_attr` (it zero-fills the rest), and rejects a longer one only if
//! the bytes it does not know are non-zero (`bpf_check_uarg_tail_zero`), so a
//! prefix works on old and new kernels alike.
//!
//! Layouts follow `include/uapi/linux/bpf.h` at kernel tag `v6.18`:
//! <https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/include/uapi/linux/bpf.h?h=v6.18>
//!
//! # Safety
//!
//! [`bpf`] is the only `unsafe` system call in this file. It passes a pointer
//! to an attr struct and that struct's size. The attr structs are private to
//! this file and implement the (private, `unsafe`) [`Attr`] trait, whose
//! contract is that every pointer-valued field points into memory borrowed
//! for at least as long as the struct (the `'a` lifetime each carries), and is
//! readable — and writable where the kernel writes — for the length given in
//! the companion size field. The safe wrapper functions below are the only
//! code that builds attrs, and they take those pointers from Rust slices and
//! references whose lengths they pass alongside. Lengths the kernel derives
//! from a map's own definition (key and value sizes) are checked against the
//! slices by [`MapFd`], which remembers them from creation. File descriptors
//! returned by the kernel are fresh and owned, and become [`OwnedFd`]s at once.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::SysError;
use crate::sys::cvt_long;

// ---------------------------------------------------------------------------
// struct bpf_insn
// ---------------------------------------------------------------------------

/// One eBPF instruction, `struct bpf_insn` (include/uapi/linux/bpf.h, v6.18).
///
/// `repr(C)`, 8 bytes, 4-byte aligned: a `&[Insn]` is exactly what
/// `BPF_PROG_LOAD` reads. The register nibbles follow the C bitfield
/// `dst_reg:4, src_reg:4`, so their position depends on the host byte order;
/// use [`Insn::new`], [`Insn::dst`] and [`Insn::src`] rather than the raw byte.
///
/// Defined here, with the kernel ABI, and re-exported as
/// `pktio::bpf::insn::Insn`; the decoding accessors ([`Insn::class`] …)
/// live with the opcode constants in `bpf::insn`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    /// Opcode: class | size/op | mode/source.
    pub code: u8,
    regs: u8,
    /// Signed 16-bit offset (memory displacement, jump distance).
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

const _: () = assert!(size_of::<Insn>() == 8);
const _: () = assert!(align_of::<Insn>() == 4);

impl Insn {
    /// Builds an instruction; `dst` and `src` are cut to 4 bits.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: pack_regs(dst & 0x0f, src & 0x0f),
            off,
            imm,
        }
    }

    /// Destination register number (0..=15; 0..=10 are valid).
    pub const fn dst(&self) -> u8 {
        unpack_regs(self.regs).0
    }

    /// Source register number, or the pseudo-source of a 64-bit load / call.
    pub const fn src(&self) -> u8 {
        unpack_regs(self.regs).1
    }

    /// The 8 bytes the kernel reads (host byte order).
    pub fn to_bytes(&self) -> [u8; 8] {
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, self.regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// The instruction encoded by `bytes` (host byte order).
    pub fn from_bytes(bytes: [u8; 8]) -> Insn {
        Insn {
            code: bytes[0],
            regs: bytes[1],
            off: i16::from_ne_bytes([bytes[2], bytes[3]]),
            imm: i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

#[cfg(target_endian = "little")]
const fn pack_regs(dst: u8, src: u8) -> u8 {
    dst | (src << 4)
}
#[cfg(target_endian = "little")]
const fn unpack_regs(regs: u8) -> (u8, u8) {
    (regs & 0x0f, regs >> 4)
}
#[cfg(target_endian = "big")]
const fn pack_regs(dst: u8, src: u8) -> u8 {
    (dst << 4) | src
}
#[cfg(target_endian = "big")]
const fn unpack_regs(regs: u8) -> (u8, u8) {
    (regs >> 4, regs & 0x0f)
}

// ---------------------------------------------------------------------------
// Constants (include/uapi/linux/bpf.h, v6.18)
// ---------------------------------------------------------------------------

/// `enum bpf_cmd`: the commands this crate issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Cmd {
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    ProgLoad = 5,
    ObjPin = 6,
    ObjGet = 7,
    ProgTestRun = 10,
    ProgGetFdById = 13,
    ObjGetInfoByFd = 15,
    LinkCreate = 28,
    LinkDetach = 34,
}

impl Cmd {
    /// The call as a person would write it, for [`SysError::call`].
    pub(crate) const fn call(self) -> &'static str {
        match self {
            Cmd::MapCreate => "bpf(BPF_MAP_CREATE)",
            Cmd::MapLookupElem => "bpf(BPF_MAP_LOOKUP_ELEM)",
            Cmd::MapUpdateElem => "bpf(BPF_MAP_UPDATE_ELEM)",
            Cmd::MapDeleteElem => "bpf(BPF_MAP_DELETE_ELEM)",
            Cmd::ProgLoad => "bpf(BPF_PROG_LOAD)",
            Cmd::ObjPin => "bpf(BPF_OBJ_PIN)",
            Cmd::ObjGet => "bpf(BPF_OBJ_GET)",
            Cmd::ProgGetFdById => "bpf(BPF_PROG_GET_FD_BY_ID)",
            Cmd::ProgTestRun => "bpf(BPF_PROG_TEST_RUN)",
            Cmd::ObjGetInfoByFd => "bpf(BPF_OBJ_GET_INFO_BY_FD)",
            Cmd::LinkCreate => "bpf(BPF_LINK_CREATE)",
            Cmd::LinkDetach => "bpf(BPF_LINK_DETACH)",
        }
    }
}

// enum bpf_map_type
pub(crate) const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub(crate) const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
pub(crate) const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub(crate) const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
pub(crate) const BPF_MAP_TYPE_XSKMAP: u32 = 17;

// enum bpf_prog_type
pub(crate) const BPF_PROG_TYPE_XDP: u32 = 6;

// enum bpf_attach_type
pub(crate) const BPF_XDP: u32 = 37;

// enum bpf_link_type
pub(crate) const BPF_LINK_TYPE_XDP: u32 = 6;

// BPF_MAP_UPDATE_ELEM flags
pub(crate) const BPF_ANY: u64 = 0;

// BPF_PROG_LOAD prog_flags
/// `BPF_F_XDP_HAS_FRAGS`: the XDP program handles multi-buffer packets (5.18).
pub(crate) const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
/// `BPF_F_XDP_DEV_BOUND_ONLY`: the program is bound to `prog_ifindex` and
/// may call that device's XDP metadata kfuncs (6.3).
pub(crate) const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;

// BPF_PROG_TEST_RUN flags
pub(crate) const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

// include/uapi/linux/if_link.h: XDP_FLAGS_*
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// `BPF_OBJ_NAME_LEN`.
const BPF_OBJ_NAME_LEN: usize = 16;

/// `BPF_TAG_SIZE`.
pub(crate) const BPF_TAG_SIZE: usize = 8;

/// And at most this long (`UINT_MAX >> 2` since 5.2).
pub(crate) const LOG_MAX: usize = (u32::MAX >> 2) as usize;

// ---------------------------------------------------------------------------
// The choke point
// ---------------------------------------------------------------------------

/// A `#[repr(C)]` prefix of `union bpf_attr`.
///
/// # Safety
///
/// Implementors are `#[repr(C)]`, contain no padding the kernel would read as
/// a field (padding is spelled out as zeroed fields), and every pointer field
/// is valid for its companion length for as long as the value lives (they
/// carry a lifetime tying them to the borrowed memory).
unsafe trait Attr {}

/// `syscall(SYS_bpf, cmd, attr, sizeof(*attr))`: the one place this crate
/// enters bpf(2).
fn bpf<T: Attr>(cmd: Cmd, attr: &mut T) -> Result<libc::c_long, SysError> {
    let size = size_of::<T>() as libc::c_long;
    // SAFETY: `attr` is an exclusive borrow of a `T: Attr`, so it is a live, writable `#[repr(C)]` bpf_attr prefix of exactly `size` bytes, and (by the `Attr` contract) every pointer inside it is valid for the length the kernel will use. The kernel reads at most `size` bytes of the attr and writes only output fields inside it, and touches no memory after the call returns.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_long, attr as *mut T, size) };
    cvt_long(cmd.call(), ret)
}

/// Turns a file descriptor the kernel just returned into an owned one.
fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) commands that create objects return a new file
    // descriptor (with O_CLOEXEC) on success; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }
}

fn ptr<T>(p: *const T) -> u64 {
    p as usize as u64
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd() as u32
}

/// A kernel object name (`BPF_OBJ_NAME_LEN`, NUL-terminated): characters
/// outside `[A-Za-z0-9_.]` become `_` (the kernel rejects them with EINVAL),
/// and the name is cut to 15 bytes.
pub(crate) fn obj_name(name: &str) -> [u8; BPF_OBJ_NAME_LEN] {
    let mut out = [0u8; BPF_OBJ_NAME_LEN];
    for (slot, b) in out.iter_mut().zip(name.bytes().take(BPF_OBJ_NAME_LEN - 1)) {
        *slot = if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            b
        } else {
            b'_'
        };
    }
    out
}

// ---------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------

/// `union bpf_attr` for `BPF_MAP_CREATE`, up to `map_name`
/// (include/uapi/linux/bpf.h, v6.18: `map_type` … `map_name[BPF_OBJ_NAME_LEN]`).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; BPF_OBJ_NAME_LEN],
}
const _: () = assert!(size_of::<MapCreateAttr>() == 44);
// SAFETY: no pointer fields.
unsafe impl Attr for MapCreateAttr {}

/// `union bpf_attr` for `BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM`
/// (include/uapi/linux/bpf.h, v6.18: `map_fd`, `key`, `value`, `flags`).
#[repr(C)]
struct MapElemAttr<'a> {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
    _borrow: PhantomData<&'a mut [u8]>,
}
const _: () = assert!(size_of::<MapElemAttr<'static>>() == 32);
// SAFETY: `key` and `value` are set only by the wrappers below from slices
// borrowed for `'a`, whose lengths `MapFd` checks against the map's sizes.
unsafe impl Attr for MapElemAttr<'_> {}

/// A map fd that remembers how many bytes the kernel reads or writes per key
/// and per value, so the element calls can check the buffers they pass.
#[derive(Debug)]
pub(crate) struct MapFd {
    fd: OwnedFd,
    key_size: usize,
    /// Bytes per value as seen from user space: `value_size`, or for per-CPU
    /// maps `round_up(value_size, 8) * possible CPUs` (`bpf_map_value_size`).
    value_len: usize,
}

impl MapFd {
    /// `bpf(BPF_MAP_CREATE)`.
    pub(crate) fn create(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> Result<MapFd, SysError> {
        let value_len = match map_type {
            BPF_MAP_TYPE_PERCPU_ARRAY | BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_LRU_PERCPU_HASH => {
                (value_size as usize).div_ceil(8) * 8 * possible_cpus()?
            }
            _ => value_size as usize,
        };
        let mut attr = MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_name: obj_name(name),
            ..MapCreateAttr::default()
        };
        let fd = owned_fd(bpf(Cmd::MapCreate, &mut attr)?);
        Ok(MapFd {
            fd,
            key_size: key_size as usize,
            value_len,
        })
    }

    /// A map fd obtained otherwise (`BPF_OBJ_GET`), with the sizes the
    /// kernel reported for it: only for maps whose values are not per-CPU.
    pub(crate) fn from_owned(fd: OwnedFd, info: &MapInfo) -> MapFd {
        debug_assert!(!matches!(
            info.map_type,
            BPF_MAP_TYPE_PERCPU_ARRAY | BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_LRU_PERCPU_HASH
        ));
        MapFd {
            fd,
            key_size: info.key_size as usize,
            value_len: info.value_size as usize,
        }
    }

    /// Bytes per value in lookups and updates (see the field).
    pub(crate) fn value_len(&self) -> usize {
        self.value_len
    }

    fn elem_attr<'a>(&self, key: &'a [u8], value: u64, flags: u64) -> MapElemAttr<'a> {
        assert_eq!(
            key.len(),
            self.key_size,
            "map key length mismatch (crate bug)"
        );
        MapElemAttr {
            map_fd: fd_u32(self.fd.as_fd()),
            _pad: 0,
            key: ptr(key.as_ptr()),
            value,
            flags,
            _borrow: PhantomData,
        }
    }

    /// `bpf(BPF_MAP_UPDATE_ELEM)`: the kernel reads `key_size` bytes of `key`
    /// and `value_len` bytes of `value`.
    ///
    /// # Panics
    ///
    /// If the slices are not exactly those lengths (a bug in this crate).
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), SysError> {
        assert_eq!(
            value.len(),
            self.value_len,
            "map value length mismatch (crate bug)"
        );
        let mut attr = self.elem_attr(key, ptr(value.as_ptr()), flags);
        bpf(Cmd::MapUpdateElem, &mut attr).map(drop)
    }

    /// `bpf(BPF_MAP_LOOKUP_ELEM)`: the kernel writes `value_len` bytes into `value`.
    ///
    /// # Panics
    ///
    /// If the slices are not exactly the map's lengths (a bug in this crate).
    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), SysError> {
        assert_eq!(
            value.len(),
            self.value_len,
            "map value length mismatch (crate bug)"
        );
        let mut attr = self.elem_attr(key, ptr(value.as_mut_ptr()), 0);
        bpf(Cmd::MapLookupElem, &mut attr).map(drop)
    }

    /// `bpf(BPF_MAP_DELETE_ELEM)`.
    ///
    /// # Panics
    ///
    /// If `key` is not the map's key length (a bug in this crate).
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), SysError> {
        let mut attr = self.elem_attr(key, 0, 0);
        bpf(Cmd::MapDeleteElem, &mut attr).map(drop)
    }
}

impl AsFd for MapFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The number of possible CPUs as the kernel sizes per-CPU map values
/// (`num_possible_cpus()`): one more than the highest CPU listed in
/// `/sys/devices/system/cpu/possible` (the same source libbpf uses).
pub(crate) fn possible_cpus() -> Result<usize, SysError> {
    const PATH: &str = "/sys/devices/system/cpu/possible";
    const CALL: &str = "read(/sys/devices/system/cpu/possible)";
    let text = std::fs::read_to_string(PATH).map_err(|source| SysError { call: CALL, source })?;
    parse_cpu_list(&text).ok_or_else(|| SysError {
        call: CALL,
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected CPU list {:?}", text.trim()),
        ),
    })
}

/// Parses a kernel CPU list (`0-3,5,7-8`) and returns the highest CPU + 1.
pub(crate) fn parse_cpu_list(text: &str) -> Option<usize> {
    let mut max = None::<usize>;
    for part in text.trim().split(',') {
        let last = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                if a > b {
                    return None;
                }
                b
            }
            None => part.parse::<usize>().ok()?,
        };
        max = Some(max.map_or(last, |m| m.max(last)));
    }
    max.and_then(|m| m.checked_add(1))
}

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`
/// (include/uapi/linux/bpf.h, v6.18: `prog_type` … `expected_attach_type`).
#[repr(C)]
struct ProgLoadAttr<'a> {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; BPF_OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _borrow: PhantomData<&'a mut [u8]>,
}
const _: () = assert!(size_of::<ProgLoadAttr<'static>>() == 72);
// SAFETY: `insns`, `license` and `log_buf` are set only by `prog_load` from
// borrowed slices / a C string, with `insn_cnt` and `log_size` their lengths.
unsafe impl Attr for ProgLoadAttr<'_> {}

/// What `prog_load` passes to the kernel.
pub(crate) struct ProgLoad<'a> {
    pub(crate) prog_type: u32,
    pub(crate) expected_attach_type: u32,
    pub(crate) insns: &'a [Insn],
    pub(crate) license: &'a CStr,
    pub(crate) name: &'a str,
    /// `prog_flags` (`BPF_F_XDP_HAS_FRAGS`, `BPF_F_XDP_DEV_BOUND_ONLY`).
    pub(crate) prog_flags: u32,
    /// `prog_ifindex`: the device a dev-bound program is bound to (0: none).
    pub(crate) prog_ifindex: u32,
}

/// `bpf(BPF_PROG_LOAD)`. With `log`, asks for the verifier log at level 1
/// (`log` must be between 128 and [`LOG_MAX`] bytes; the kernel
/// writes a NUL-terminated string into it).
pub(crate) fn prog_load(load: &ProgLoad<'_>, log: Option<&mut [u8]>) -> Result<OwnedFd, SysError> {
    let insn_cnt = u32::try_from(load.insns.len())
        .map_err(|_| SysError::from_errno(Cmd::ProgLoad.call(), libc::E2BIG))?;
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => {
            let len = buf.len().min(LOG_MAX);
            (1, len as u32, ptr(buf.as_mut_ptr()))
        }
        None => (0, 0, 0),
    };
    let mut attr = ProgLoadAttr {
        prog_type: load.prog_type,
        insn_cnt,
        insns: ptr(load.insns.as_ptr()),
        license: ptr(load.license.as_ptr()),
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: load.prog_flags,
        prog_name: obj_name(load.name),
        prog_ifindex: load.prog_ifindex,
        expected_attach_type: load.expected_attach_type,
        _borrow: PhantomData,
    };
    bpf(Cmd::ProgLoad, &mut attr).map(owned_fd)
}

/// `union bpf_attr` for `BPF_PROG_TEST_RUN` (`test`), up to `batch_size`
/// (include/uapi/linux/bpf.h, v6.18), with the tail padding spelled out.
#[repr(C)]
struct TestRunAttr<'a> {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
    _borrow: PhantomData<&'a mut [u8]>,
}
const _: () = assert!(size_of::<TestRunAttr<'static>>() == 80);
// SAFETY: `data_in`, `data_out` and `ctx_in` are set only by `prog_test_run` from borrowed slices / a reference, with their lengths beside them; `data_out` is non-null only with a non-zero `data_size_out` (with zero the kernel would copy the whole output, `bpf_test_finish`). `ctx_out` stays null.
unsafe impl Attr for TestRunAttr<'_> {}

/// `struct xdp_md` (include/uapi/linux/bpf.h, v6.18): the XDP context,
/// passed as `ctx_in` of a test run.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XdpMd {
    pub(crate) data: u32,
    pub(crate) data_end: u32,
    pub(crate) data_meta: u32,
    pub(crate) ingress_ifindex: u32,
    pub(crate) rx_queue_index: u32,
    pub(crate) egress_ifindex: u32,
}
const _: () = assert!(size_of::<XdpMd>() == 24);

/// Inputs of `prog_test_run`.
pub(crate) struct TestRun<'a> {
    pub(crate) data_in: &'a [u8],
    /// Where the kernel copies the packet after the run (at most its length).
    pub(crate) data_out: Option<&'a mut [u8]>,
    pub(crate) ctx_in: Option<&'a XdpMd>,
    pub(crate) repeat: u32,
    pub(crate) flags: u32,
    pub(crate) batch_size: u32,
}

/// Outputs of `prog_test_run`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestRunOut {
    pub(crate) retval: u32,
    /// Mean nanoseconds per repetition.
    pub(crate) duration: u32,
    /// Bytes of packet data after the run (may exceed what fit in `data_out`).
    pub(crate) data_size_out: u32,
}

/// `bpf(BPF_PROG_TEST_RUN)`.
pub(crate) fn prog_test_run(
    prog: BorrowedFd<'_>,
    run: TestRun<'_>,
) -> Result<TestRunOut, SysError> {
    let call = Cmd::ProgTestRun.call();
    let too_big = |_| SysError::from_errno(call, libc::E2BIG);
    let data_size_in = u32::try_from(run.data_in.len()).map_err(too_big)?;
    let (data_out, data_size_out) = match run.data_out {
        Some(buf) if !buf.is_empty() => (
            ptr(buf.as_mut_ptr()),
            u32::try_from(buf.len()).unwrap_or(u32::MAX),
        ),
        _ => (0, 0),
    };
    let (ctx_in, ctx_size_in) = match run.ctx_in {
        Some(ctx) => (ptr(ctx as *const XdpMd), size_of::<XdpMd>() as u32),
        None => (0, 0),
    };
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(prog),
        retval: 0,
        data_size_in,
        data_size_out,
        data_in: ptr(run.data_in.as_ptr()),
        data_out,
        repeat: run.repeat,
        duration: 0,
        ctx_size_in,
        ctx_size_out: 0,
        ctx_in,
        ctx_out: 0,
        flags: run.flags,
        cpu: 0,
        batch_size: run.batch_size,
        _pad: 0,
        _borrow: PhantomData,
    };
    bpf(Cmd::ProgTestRun, &mut attr)?;
    Ok(TestRunOut {
        retval: attr.retval,
        duration: attr.duration,
        data_size_out: attr.data_size_out,
    })
}

// ---------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------

/// `union bpf_attr` for `BPF_LINK_CREATE` (`link_create`), up to `flags`
/// (include/uapi/linux/bpf.h, v6.18: `prog_fd`, `target_ifindex`,
/// `attach_type`, `flags`).
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}
const _: () = assert!(size_of::<LinkCreateAttr>() == 16);
// SAFETY: no pointer fields.
unsafe impl Attr for LinkCreateAttr {}

/// `bpf(BPF_LINK_CREATE)` with a target ifindex (XDP). Minimum kernel 5.9.
pub(crate) fn link_create(
    prog: BorrowedFd<'_>,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> Result<OwnedFd, SysError> {
    let mut attr = LinkCreateAttr {
        prog_fd: fd_u32(prog),
        target_ifindex,
        attach_type,
        flags,
    };
    bpf(Cmd::LinkCreate, &mut attr).map(owned_fd)
}

/// `union bpf_attr` for `BPF_LINK_DETACH` (`link_detach`: `link_fd`).
#[repr(C)]
struct LinkDetachAttr {
    link_fd: u32,
}
const _: () = assert!(size_of::<LinkDetachAttr>() == 4);
// SAFETY: no pointer fields.
unsafe impl Attr for LinkDetachAttr {}

/// `bpf(BPF_LINK_DETACH)`: detaches the link's program now; the fd stays
/// open but defunct. Minimum kernel 5.9.
pub(crate) fn link_detach(link: BorrowedFd<'_>) -> Result<(), SysError> {
    let mut attr = LinkDetachAttr {
        link_fd: fd_u32(link),
    };
    bpf(Cmd::LinkDetach, &mut attr).map(drop)
}

// ---------------------------------------------------------------------------
// Object info
// ---------------------------------------------------------------------------

/// `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD` (`info`: `bpf_fd`,
/// `info_len`, `info`).
#[repr(C)]
struct InfoAttr<'a> {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
    _borrow: PhantomData<&'a mut [u8]>,
}
const _: () = assert!(size_of::<InfoAttr<'static>>() == 16);
// SAFETY: `info` is set only by `obj_info` from an exclusive borrow of a
// `#[repr(C)]` struct of `info_len` bytes.
unsafe impl Attr for InfoAttr<'_> {}

/// A prefix of `struct bpf_prog_info` (include/uapi/linux/bpf.h, v6.18:
/// `type`, `id`, `tag[BPF_TAG_SIZE]`, `jited_prog_len` … `name`). The
/// pointer fields (`jited_prog_insns`, `xlated_prog_insns`, `map_ids`) stay
/// 0 with their lengths 0, so the kernel copies nothing through them.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ProgInfo {
    pub(crate) prog_type: u32,
    pub(crate) id: u32,
    pub(crate) tag: [u8; BPF_TAG_SIZE],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    /// `name[BPF_OBJ_NAME_LEN]`, NUL-padded (kernel 4.15).
    pub(crate) name: [u8; BPF_OBJ_NAME_LEN],
}
const _: () = assert!(size_of::<ProgInfo>() == 80);

impl ProgInfo {
    /// The program's name, up to its first NUL, lossily decoded.
    pub(crate) fn name(&self) -> String {
        name_of(&self.name)
    }
}

/// A prefix of `struct bpf_map_info` (include/uapi/linux/bpf.h, v6.18:
/// `type`, `id`, `key_size`, `value_size`, `max_entries`, `map_flags`,
/// `name`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MapInfo {
    pub(crate) map_type: u32,
    pub(crate) id: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) map_flags: u32,
    pub(crate) name: [u8; BPF_OBJ_NAME_LEN],
}
const _: () = assert!(size_of::<MapInfo>() == 40);

/// A kernel object name: the bytes before the first NUL.
fn name_of(raw: &[u8; BPF_OBJ_NAME_LEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// A prefix of `struct bpf_link_info` (include/uapi/linux/bpf.h, v6.18:
/// `type`, `id`, `prog_id`, then the union, 8-aligned, whose `xdp` member is
/// `ifindex`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LinkInfo {
    pub(crate) link_type: u32,
    pub(crate) id: u32,
    pub(crate) prog_id: u32,
    _pad: u32,
    /// `xdp.ifindex` for an XDP link: 0 once the device went away.
    pub(crate) xdp_ifindex: u32,
    _pad2: u32,
}
const _: () = assert!(size_of::<LinkInfo>() == 24);

/// Info structs `obj_info` may fill.
///
/// # Safety
///
/// Implementors are `#[repr(C)]` structs of integers only, valid for any bit
/// pattern the kernel writes into them.
unsafe trait Info: Default {}
// SAFETY: `#[repr(C)]`, integers only.
unsafe impl Info for ProgInfo {}
// SAFETY: `#[repr(C)]`, integers only.
unsafe impl Info for LinkInfo {}
// SAFETY: `#[repr(C)]`, integers only.
unsafe impl Info for MapInfo {}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)`: the kernel fills at most `size_of::<T>()` bytes.
fn obj_info<T: Info>(fd: BorrowedFd<'_>) -> Result<T, SysError> {
    let mut info = T::default();
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len: size_of::<T>() as u32,
        info: ptr(&mut info as *mut T),
        _borrow: PhantomData,
    };
    bpf(Cmd::ObjGetInfoByFd, &mut attr)?;
    Ok(info)
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a program.
pub(crate) fn prog_info(prog: BorrowedFd<'_>) -> Result<ProgInfo, SysError> {
    obj_info(prog)
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a link.
pub(crate) fn link_info(link: BorrowedFd<'_>) -> Result<LinkInfo, SysError> {
    obj_info(link)
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a map.
pub(crate) fn map_info(map: BorrowedFd<'_>) -> Result<MapInfo, SysError> {
    obj_info(map)
}

/// Whether `fd` is a BPF map (`/proc/self/fd/N` links to
/// `anon_inode:bpf-map`), or `None` when `/proc` cannot say.
pub(crate) fn is_map_fd(fd: BorrowedFd<'_>) -> Option<bool> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    Some(link.as_os_str() == "anon_inode:bpf-map")
}

// ---------------------------------------------------------------------------
// Pinning (bpffs) and ids
// ---------------------------------------------------------------------------

/// `union bpf_attr` for `BPF_OBJ_PIN` / `BPF_OBJ_GET` (include/uapi/linux/bpf.h,
/// v6.18: `pathname`, `bpf_fd`, `file_flags`).
#[repr(C)]
struct ObjAttr<'a> {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    _borrow: PhantomData<&'a CStr>,
}
const _: () = assert!(size_of::<ObjAttr<'static>>() == 16);
// SAFETY: `pathname` is set only by `obj_pin`/`obj_get` from a `&'a CStr`,
// which the kernel reads up to its NUL.
unsafe impl Attr for ObjAttr<'_> {}

/// `bpf(BPF_OBJ_PIN)`: makes `fd`'s object a file at `path` on a bpffs.
pub(crate) fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> Result<(), SysError> {
    let mut attr = ObjAttr {
        pathname: ptr(path.as_ptr()),
        bpf_fd: fd_u32(fd),
        file_flags: 0,
        _borrow: PhantomData,
    };
    bpf(Cmd::ObjPin, &mut attr).map(drop)
}

/// `bpf(BPF_OBJ_GET)`: a new fd (read-write) for the object pinned at `path`.
pub(crate) fn obj_get(path: &CStr) -> Result<OwnedFd, SysError> {
    let mut attr = ObjAttr {
        pathname: ptr(path.as_ptr()),
        bpf_fd: 0,
        file_flags: 0,
        _borrow: PhantomData,
    };
    bpf(Cmd::ObjGet, &mut attr).map(owned_fd)
}

/// `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID` (`prog_id`, `next_id`,
/// `open_flags`).
#[repr(C)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}
const _: () = assert!(size_of::<GetFdByIdAttr>() == 12);
// SAFETY: no pointer fields.
unsafe impl Attr for GetFdByIdAttr {}

/// `bpf(BPF_PROG_GET_FD_BY_ID)`: an fd for the loaded program `id`
/// (needs `CAP_SYS_ADMIN`).
pub(crate) fn prog_get_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    let mut attr = GetFdByIdAttr {
        id,
        next_id: 0,
        open_flags: 0,
    };
    bpf(Cmd::ProgGetFdById, &mut attr).map(owned_fd)
}

// ---------------------------------------------------------------------------
// Interfaces
// ---------------------------------------------------------------------------

/// Whether interface `ifindex` exists in the calling thread's network
/// namespace (`ioctl(SIOCGIFNAME)` on a fresh socket), or `None` if that
/// cannot be asked. `BPF_LINK_CREATE` answers `EINVAL`, not `ENODEV`, for a
/// missing interface (`bpf_xdp_link_attach`); this tells the two apart.
pub(crate) fn ifindex_exists(ifindex: u32) -> Option<bool> {
    use rustix::net::{netdevice, socket, AddressFamily, SocketType};
    let probe = socket(AddressFamily::UNIX, SocketType::DGRAM, None).ok()?;
    match netdevice::index_to_name(&probe, ifindex) {
        Ok(_) => Some(true),
        Err(rustix::io::Errno::NODEV) => Some(false),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0\n"), Some(1));
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0-3,8-11"), Some(12));
        assert_eq!(parse_cpu_list("5,0-2"), Some(6));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn loopback_exists_and_a_huge_index_does_not() {
        assert_eq!(ifindex_exists(1), Some(true));
        assert_eq!(ifindex_exists(u32::MAX - 7), Some(false));
    }

    #[test]
    fn object_names() {
        assert_eq!(&obj_name("xsk")[..4], b"xsk\0");
        assert_eq!(&obj_name("a-b c")[..6], b"a_b_c\0");
        let long = obj_name("0123456789abcdefXYZ");
        assert_eq!(&long[..15], b"0123456789abcde");
        assert_eq!(long[15], 0);
    }
}
