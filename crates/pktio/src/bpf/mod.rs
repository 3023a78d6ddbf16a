//! The XDP steering program, generated and loaded from Rust: no clang, no
//! libbpf, no ELF.
//!
//! # What this module owns
//!
//! - [`insn`]: the 8-byte instruction encoding, opcode constants and a
//!   bpftool-style listing (pure).
//! - [`asm`]: an assembler with the kernel's macro names (`mov64_imm`,
//!   `ldx_mem`, `jmp_imm`, `call`, `exit`, …), labels and map-fd
//!   placeholders (pure).
//! - [`progs`]: the programs pktio needs — [`progs::xsk_redirect`] (AF_XDP
//!   steering), [`progs::xdp_pass`]/[`progs::xdp_drop`]/[`progs::xdp_tx`],
//!   [`progs::count_then`] (pure).
//! - maps ([`XskMap`], [`ArrayMap`], [`PerCpuArray`]), loading and test runs
//!   ([`Program`]), attaching ([`XdpLink`]): thin shells over bpf(2), whose
//!   raw ABI lives in the crate's private `sys::bpf`. This module has no
//!   `unsafe`.
//!
//! It leaves to others: the AF_XDP socket ([`crate::xdp`]), and netlink
//! attachment (kernels before 5.9).
//!
//! # Steering packets into AF_XDP sockets
//!
//! ```no_run
//! use pktio::bpf::{progs, Program, XdpLink, XdpMode, XskMap};
//! use std::os::fd::AsFd;
//! # fn socket_for_queue(q: u32) -> std::os::fd::OwnedFd { unimplemented!() }
//! # fn main() -> Result<(), pktio::bpf::BpfError> {
//! let ifindex = 2;
//! let queues = 4;
//! // 1. The map: one slot per receive queue.
//! let map = XskMap::new(queues)?;
//! // 2. The program, with the map in its slot 0.
//! let prog = Program::load_xdp(&progs::xsk_redirect(), &[map.as_fd()])?;
//! // 3. Attach; Auto tries driver mode and falls back to skb mode.
//! let link = XdpLink::attach(&prog, ifindex, XdpMode::Auto)?;
//! if let Some(why) = link.fallback() {
//!     eprintln!("{why}");
//! }
//! // 4. Each socket, once created (before or after bind), into its queue's slot.
//! let socket = socket_for_queue(0);
//! map.set(0, socket.as_fd())?;
//! // … receive …
//! // 5. Teardown: drop the link (detaches), then the program and the map.
//! drop(link);
//! # Ok(()) }
//! ```
//!
//! Packets on a queue whose slot is empty go to the network stack
//! (`XDP_PASS`), so steps 3 and 4 can happen in either order without losing
//! the interface's normal traffic. The program can be dropped once attached
//! (the link holds it); the map must stay alive as long as sockets should be
//! added or removed.
//!
//! # Which program is attached?
//!
//! `BPF_PROG_QUERY` does not cover XDP; the kernel reports an interface's
//! XDP programs over netlink (`RTM_GETLINK`, `IFLA_XDP`), which
//! [`attached_programs`] asks (through `pktio-host`), adding each program's
//! name and, for libxdp's dispatcher, its pinned components. An attach over
//! an existing program fails with [`BpfError::Busy`], which carries that
//! answer; an [`XdpLink`] cannot be replaced by anyone else, and
//! [`XdpLink::info`] says whether the link is still on its interface and
//! which program id it runs.
//!
//! # Pinning
//!
//! [`XskMap::pin`] and [`Program::pin`] make a map or program a file on a
//! bpffs (`BPF_OBJ_PIN`); [`XskMap::from_pinned`] opens a pinned XSKMAP
//! (`BPF_OBJ_GET`), which needs only file permissions on kernel 6.5 and
//! later — how an unprivileged process joins a program someone else
//! attached ([`crate::xdp::handoff`]).
//!
//! # Privileges
//!
//! Creating maps and loading programs needs `CAP_BPF` (or `CAP_SYS_ADMIN`);
//! XDP programs and attaching also need `CAP_NET_ADMIN`. Root has both.
//! Maps and programs are charged to the memory cgroup (kernel ≥ 5.11), not
//! to `RLIMIT_MEMLOCK`.

pub mod asm;
mod attached;
pub mod btf;
pub mod insn;
mod link;
mod map;
mod prog;
pub mod progs;

pub use asm::{Asm, AsmError, Code, Label};
pub use attached::{
    attached_programs, AttachedMode, AttachedProgram, Component, LIBXDP_DISPATCHER,
};
pub use btf::{Btf, BtfError};
pub use insn::{AluOp, ByteOrder, Helper, Insn, JmpOp, Listing, Reg, Size};
pub use link::{Fallback, LinkInfo, XdpLink, XdpMode};
pub use map::{ArrayMap, PerCpuArray, XskMap};
pub use prog::{
    LiveFramesResult, LoadOptions, Program, ProgramKind, TestRunResult, XdpAction, DEFAULT_LICENSE,
    MAX_LIVE_BATCH, MIN_TEST_FRAME,
};

use crate::error::SysError;

/// Errors of the `bpf` module. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BpfError {
    /// The verifier refused the program. The log is the verifier's own
    /// account, kept whole; its last lines usually name the problem.
    #[error(
        "the kernel refused to load the program ({source}); the verifier's log:\n{}",
        if verifier_log.is_empty() { "(empty)" } else { verifier_log.as_str() }
    )]
    Load {
        /// The failed `bpf(BPF_PROG_LOAD)`.
        source: SysError,
        /// The verifier log (level 1), possibly empty.
        verifier_log: String,
    },

    /// `EPERM`: not privileged enough (or, for root, forbidden by a policy).
    #[error("{source}: {}", permission_advice(*caps_held))]
    Permission {
        /// The refused call.
        source: SysError,
        /// Whether the refused thread held the capabilities BPF needs (as
        /// root does): then no capability is missing and the advice says so.
        caps_held: bool,
    },

    /// The kernel refused `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`
    /// for a program it had loaded: live frames are not allowed on this host
    /// (a kernel before 5.18, a build or lockdown mode that forbids them, a
    /// seccomp policy). The same program can still be run without the flag.
    #[error(
        "this host refuses live frames: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES was \
         answered {errno_name} ({source}) for a program the kernel had loaded; {}",
        if *errno == libc::EPERM && *caps_held {
            "the process holds every capability it needs (as root does): this kernel \
             build, its lockdown mode or a seccomp policy forbids live frames"
        } else if *errno == libc::EPERM {
            "it needs CAP_BPF and CAP_NET_ADMIN (or root), and a kernel that allows it"
        } else {
            "live frames need kernel 5.18 or later, built with them"
        }
    )]
    LiveFramesRefused {
        /// The errno (`EPERM`, `EOPNOTSUPP`, `EINVAL` on kernels without the flag).
        errno: i32,
        /// Its name, e.g. `EPERM`.
        errno_name: &'static str,
        /// Whether the refused thread held the capabilities BPF needs.
        caps_held: bool,
        /// The refused call.
        source: SysError,
    },

    /// Another XDP program is attached to the interface. The message names
    /// it (id, name, mode; for libxdp's dispatcher, its components) and
    /// says what to do: pktio does not join libxdp's dispatcher (see
    /// [`crate::xdp`]'s "Sharing an interface with other XDP programs").
    #[error("{}", busy_message(*ifindex, *mode, attached, source))]
    Busy {
        /// The interface.
        ifindex: u32,
        /// The mode we asked for.
        mode: XdpMode,
        /// What is attached, as netlink reported it right after the refusal
        /// (empty if it could not be asked, or the program went away).
        attached: Vec<AttachedProgram>,
        /// The `EBUSY` or `EEXIST` from `bpf(BPF_LINK_CREATE)`.
        source: SysError,
    },

    /// [`XskMap::pin`], [`ArrayMap::pin`] or [`Program::pin`] failed.
    #[error("cannot pin the map at {}: {source}; {}", path.display(), pin_advice(source))]
    Pin {
        /// Where.
        path: std::path::PathBuf,
        /// The failed `bpf(BPF_OBJ_PIN)`.
        source: SysError,
    },

    /// [`XskMap::from_pinned`] could not open the pin.
    #[error("cannot open the pinned map {}: {source}; {}", path.display(), open_pinned_advice(source))]
    OpenPinned {
        /// Where.
        path: std::path::PathBuf,
        /// The failed `bpf(BPF_OBJ_GET)` (or the info query after it).
        source: SysError,
    },

    /// The object pinned there is not an XSKMAP with 4-byte keys and values.
    #[error(
        "{} is not an XSKMAP ({}): pin the XSKMAP (BPF_MAP_TYPE_XSKMAP, 4-byte keys and values) \
         of the program that steers into the sockets there",
        path.display(),
        match map_type {
            Some(t) => format!("map type {t}, key size {key_size}, value size {value_size}"),
            None => "not a BPF map".to_string(),
        }
    )]
    NotAnXskMap {
        /// Where.
        path: std::path::PathBuf,
        /// The map's type (`enum bpf_map_type`; 17 is an XSKMAP), or `None`
        /// for an object that is not a map (a program, a link).
        map_type: Option<u32>,
        /// Its key size.
        key_size: u32,
        /// Its value size.
        value_size: u32,
    },

    /// No interface with this index in the calling thread's network namespace.
    #[error(
        "no interface with index {ifindex} in this network namespace (it may have been \
         removed, or live in another namespace) ({source})"
    )]
    NoSuchInterface {
        /// The interface index.
        ifindex: u32,
        /// The `EINVAL` or `ENODEV` from the kernel.
        source: SysError,
    },

    /// The driver cannot run XDP in the mode asked for.
    #[error(
        "the driver of interface index {ifindex} does not support {mode} XDP: use \
         XdpMode::Skb or XdpMode::Auto ({source})"
    )]
    ModeUnsupported {
        /// The interface.
        ifindex: u32,
        /// The mode asked for.
        mode: XdpMode,
        /// The `EOPNOTSUPP`.
        source: SysError,
    },

    /// The interface's MTU needs frames of several buffers and the program
    /// was not loaded frags-aware (`ERANGE`: veth, and drivers with XDP
    /// multi-buffer, refuse a single-buffer program at such an MTU).
    #[error(
        "interface index {ifindex} refused the XDP program ({source}): its MTU is too large \
         for a single-buffer program (frames would span several buffers); load it frags-aware \
         (multi-buffer: BPF_F_XDP_HAS_FRAGS, pktio's --multi-buffer) or lower the MTU"
    )]
    MtuTooLarge {
        /// The interface.
        ifindex: u32,
        /// The mode asked for.
        mode: XdpMode,
        /// The `ERANGE`.
        source: SysError,
    },

    /// Attaching failed for another reason.
    #[error(
        "attaching an XDP program to interface index {ifindex} in {mode} mode failed \
         ({source}){}",
        attach_hint(source)
    )]
    Attach {
        /// The interface.
        ifindex: u32,
        /// The mode asked for.
        mode: XdpMode,
        /// The kernel's answer.
        source: SysError,
    },

    /// The number of maps given to [`Program::load`] does not match the program.
    #[error("the program uses {expected} map slot(s) but {got} map(s) were given")]
    MapCount {
        /// [`Code::map_slots`].
        expected: usize,
        /// Maps given.
        got: usize,
    },

    /// A map key beyond the map's size.
    #[error("key {key} is out of range: the map has {max_entries} entries")]
    KeyOutOfRange {
        /// The key.
        key: u32,
        /// The map's size.
        max_entries: u32,
    },

    /// A test frame shorter than an Ethernet header.
    #[error(
        "a test frame must be at least {MIN_TEST_FRAME} bytes (an Ethernet header); got {len}"
    )]
    FrameTooShort {
        /// The length given.
        len: usize,
    },

    /// A live-frames batch larger than the kernel allows.
    #[error("live-frames batch size {batch_size} is larger than the kernel's {MAX_LIVE_BATCH}")]
    BatchTooLarge {
        /// The batch size given.
        batch_size: u32,
    },

    /// The license string contains a NUL byte.
    #[error("the program license must not contain NUL bytes")]
    BadLicense,

    /// The kernel's BTF could not be parsed.
    #[error("reading the kernel's BTF: {0}")]
    Btf(#[from] BtfError),

    /// A kernel function (kfunc) the program calls is not in the kernel's BTF.
    #[error(
        "the kernel has no function {name} in its BTF (/sys/kernel/btf/vmlinux): it is too old \
         ({min_kernel} or later needed) or built without it"
    )]
    NoKfunc {
        /// The function's name.
        name: &'static str,
        /// The first kernel that has it.
        min_kernel: &'static str,
    },

    /// A device-bound program was asked for in a mode that cannot run it.
    #[error(
        "a device-bound XDP program (RX metadata kfuncs) cannot be attached in {mode} mode: \
         use driver (native) mode"
    )]
    DevBoundMode {
        /// The mode asked for.
        mode: XdpMode,
    },

    /// The program did not assemble.
    #[error(transparent)]
    Asm(#[from] AsmError),

    /// Any other failed call; [`SysError::hint`] may have advice.
    #[error(transparent)]
    Sys(#[from] SysError),
}

/// The advice of [`BpfError::Permission`]: what to grant, or, for root,
/// that nothing is missing and a policy forbids the call.
fn permission_advice(caps_held: bool) -> &'static str {
    if caps_held {
        crate::error::CAPS_HELD_REFUSED
    } else {
        "creating BPF maps and loading or attaching XDP programs needs CAP_BPF and \
         CAP_NET_ADMIN (or root); capture filters (variable-offset packet access) also \
         need CAP_PERFMON"
    }
}

/// The text of [`BpfError::Busy`]: what is attached, and what to do.
fn busy_message(
    ifindex: u32,
    mode: XdpMode,
    attached: &[AttachedProgram],
    source: &SysError,
) -> String {
    let mut m = format!("interface index {ifindex} already has an XDP program attached");
    if attached.is_empty() {
        m.push_str(&format!(
            " (requested {mode} mode; a program in either mode blocks it; {source}): stop the \
             process that owns it, or remove it with `ip link set dev <name> xdp off` if it was \
             attached through netlink"
        ));
        return m;
    }
    m.push_str(": ");
    let names: Vec<String> = attached.iter().map(ToString::to_string).collect();
    m.push_str(&names.join("; "));
    m.push_str(&format!(" (requested {mode} mode; {source}). "));
    if attached.iter().any(AttachedProgram::is_libxdp_dispatcher) {
        m.push_str(
            "pktio does not join libxdp's dispatcher (its components must be freplace programs \
             with BTF, which pktio's generated programs lack). To share the interface: add an \
             XDP program of your own that redirects into an XSKMAP as a dispatcher component \
             (`xdp-loader load --pin-path DIR`), open its pinned XSKMAP with \
             XskMap::from_pinned and build the sockets with AttachMode::None and \
             XskSocketBuilder::xsk_map; or unload the dispatcher (`xdp-loader unload <dev> \
             --all`, after stopping the programs' owners); or use the AF_PACKET backend",
        );
    } else {
        m.push_str(
            "Only one program can own an interface's XDP hook: stop the process that owns it \
             (a bpf_link goes away with its owner; `ip link set dev <name> xdp off`, or \
             `xdpgeneric off` in skb mode, removes a program attached through netlink); or \
             have that program redirect into pktio's sockets (AttachMode::None, with its \
             XSKMAP pinned and given to XskSocketBuilder::xsk_map); or use the AF_PACKET backend",
        );
    }
    m
}

/// What to do about a failed [`XskMap::pin`].
fn pin_advice(source: &SysError) -> &'static str {
    match source.errno() {
        Some(libc::EEXIST) => {
            "a file of that name exists: remove the stale pin or pick another name"
        }
        Some(libc::ENOENT) => "the directory does not exist: create it first",
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "the directory must be on a bpffs (`mount -t bpf bpf /sys/fs/bpf`) and writable \
             by this process"
        }
        _ => "the directory must be on a bpffs (`mount -t bpf bpf /sys/fs/bpf`)",
    }
}

/// What to do about a failed [`XskMap::from_pinned`].
fn open_pinned_advice(source: &SysError) -> &'static str {
    match source.errno() {
        Some(libc::ENOENT) => "nothing is pinned there: start the helper that pins it first",
        Some(libc::EACCES) => {
            "no read and write permission on the pin (or search permission on its \
             directories): the owner must chown or chmod them for this user"
        }
        Some(libc::EPERM) => {
            "refused: kernels before 6.5 with kernel.unprivileged_bpf_disabled set refuse \
             every bpf(2) command without CAP_BPF; or the path is not on a bpffs"
        }
        Some(libc::EINVAL) => "the path is not on a bpffs or contains a NUL byte",
        _ => "check the path and that it is on a bpffs",
    }
}

/// The name of an errno the live-frames call is refused with.
pub(crate) fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        libc::ENOSYS => "ENOSYS",
        _ => "an error",
    }
}

/// What an unexplained attach failure may mean: `EINVAL` is how kernels
/// before 5.9 answer a request for an XDP link.
fn attach_hint(source: &SysError) -> &'static str {
    match source.errno() {
        Some(libc::EINVAL) => "; XDP links need kernel 5.9 or later",
        _ => "",
    }
}

impl BpfError {
    /// The errno of the kernel's answer, when there was one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            BpfError::Load { source, .. }
            | BpfError::Permission { source, .. }
            | BpfError::LiveFramesRefused { source, .. }
            | BpfError::Busy { source, .. }
            | BpfError::NoSuchInterface { source, .. }
            | BpfError::ModeUnsupported { source, .. }
            | BpfError::MtuTooLarge { source, .. }
            | BpfError::Attach { source, .. }
            | BpfError::Pin { source, .. }
            | BpfError::OpenPinned { source, .. }
            | BpfError::Sys(source) => source.errno(),
            _ => None,
        }
    }

    /// `EPERM` → [`BpfError::Permission`], anything else → [`BpfError::Sys`].
    pub(crate) fn from_sys(e: SysError) -> BpfError {
        match e.errno() {
            Some(libc::EPERM) => BpfError::Permission {
                source: e,
                caps_held: crate::error::holds_bpf_capabilities(),
            },
            _ => BpfError::Sys(e),
        }
    }
}
