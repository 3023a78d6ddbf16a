//! Loading programs (`BPF_PROG_LOAD`, with the verifier log on failure) and
//! running them on test input (`BPF_PROG_TEST_RUN`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::asm::Code;
use super::insn::Insn;
use super::BpfError;
use crate::sys::bpf as sys;

/// The license [`Program::load_xdp`] declares: GPL-compatible for the
/// kernel (so GPL-only helpers are allowed), and permissive.
pub const DEFAULT_LICENSE: &str = "Dual MIT/GPL";

/// First verifier log buffer size on a failed load.
const LOG_START: usize = 64 * 1024;
/// The log buffer grows (×4 on `ENOSPC`) up to this size.
const LOG_CAP: usize = 16 * 1024 * 1024;

/// Shortest frame `BPF_PROG_TEST_RUN` takes for XDP (`ETH_HLEN`).
pub const MIN_TEST_FRAME: usize = 14;

/// Most frames a live-frames run processes per batch (`TEST_XDP_MAX_BATCH`).
pub const MAX_LIVE_BATCH: u32 = 256;

/// The kind of program, `enum bpf_prog_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgramKind {
    /// `BPF_PROG_TYPE_XDP`, loaded with `expected_attach_type = BPF_XDP`.
    Xdp,
}

impl ProgramKind {
    fn prog_type(self) -> u32 {
        match self {
            ProgramKind::Xdp => sys::BPF_PROG_TYPE_XDP,
        }
    }

    fn expected_attach_type(self) -> u32 {
        match self {
            ProgramKind::Xdp => sys::BPF_XDP,
        }
    }
}

/// What an XDP program returns (`enum xdp_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XdpAction {
    /// `XDP_ABORTED`: drop and fire the `xdp_exception` tracepoint.
    Aborted = 0,
    /// `XDP_DROP`: drop.
    Drop = 1,
    /// `XDP_PASS`: hand to the network stack.
    Pass = 2,
    /// `XDP_TX`: send back out of the interface it came in on.
    Tx = 3,
    /// `XDP_REDIRECT`: to the target chosen by a redirect helper.
    Redirect = 4,
}

impl XdpAction {
    /// The action for a program's return value, if it is one.
    pub const fn from_retval(retval: u32) -> Option<XdpAction> {
        Some(match retval {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            _ => return None,
        })
    }

    /// The value a program returns for this action.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

/// Load-time options beyond the instructions: `BPF_PROG_LOAD`'s
/// `prog_flags` and `prog_ifindex`, and the license.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Declare multi-buffer support (`BPF_F_XDP_HAS_FRAGS`, kernel 5.18):
    /// the program may see frames spread over several buffers (jumbo
    /// frames, `XDP_USE_SG` sockets), where direct packet access covers the
    /// first buffer only. Drivers refuse a program without it when the MTU
    /// needs several buffers (veth: `ERANGE`, "Peer MTU is too large").
    pub frags: bool,
    /// Bind the program to this interface (`BPF_F_XDP_DEV_BOUND_ONLY` with
    /// `prog_ifindex`, kernel 6.3): required to call the device's XDP
    /// metadata kfuncs; the program then attaches only to this device, and
    /// only in driver mode.
    pub dev_bound_ifindex: Option<u32>,
    /// The license (default [`DEFAULT_LICENSE`]; kfunc calls need a
    /// GPL-compatible one).
    pub license: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            frags: false,
            dev_bound_ifindex: None,
            license: DEFAULT_LICENSE.to_string(),
        }
    }
}

impl LoadOptions {
    fn prog_flags(&self) -> u32 {
        let mut f = 0;
        if self.frags {
            f |= sys::BPF_F_XDP_HAS_FRAGS;
        }
        if self.dev_bound_ifindex.is_some() {
            f |= sys::BPF_F_XDP_DEV_BOUND_ONLY;
        }
        f
    }
}

/// The outcome of [`Program::test_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunResult {
    /// What the program returned (see [`TestRunResult::action`]).
    pub retval: u32,
    /// The packet after the run (the program may rewrite or resize it).
    pub data_out: Vec<u8>,
    /// Mean nanoseconds per repetition, as the kernel timed it.
    pub duration_ns: u32,
}

impl TestRunResult {
    /// `retval` as an XDP action, if it is one.
    pub fn action(&self) -> Option<XdpAction> {
        XdpAction::from_retval(self.retval)
    }
}

/// The outcome of [`Program::run_live_frames`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveFramesResult {
    /// Frames the program ran on (the `repeat` asked for, at least 1).
    pub frames: u32,
    /// Mean nanoseconds per frame, as the kernel timed it.
    pub ns_per_frame: u32,
}

/// A loaded BPF program. Dropping it closes the fd; the kernel frees the
/// program once nothing else (a link, a prog array) holds it.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    kind: ProgramKind,
    insn_count: usize,
}

impl Program {
    /// Loads `code` as a `kind` program, filling map slot *i* with `maps[i]`
    /// (see [`Code::map_slots`]).
    ///
    /// Calls `bpf(BPF_PROG_LOAD)` without a verifier log first. If the
    /// kernel refuses, loads again with a log (level 1), growing the buffer
    /// on `ENOSPC` from 64 KiB up to 16 MiB, and returns the log whole.
    ///
    /// # Errors
    ///
    /// - [`BpfError::Load`] with the verifier log when the program is refused.
    /// - [`BpfError::Permission`] on `EPERM` (needs `CAP_BPF`, and
    ///   `CAP_NET_ADMIN` for XDP, or root).
    /// - [`BpfError::MapCount`] if `maps.len()` is not `code.map_slots()`.
    /// - [`BpfError::BadLicense`] if `license` contains a NUL byte.
    ///
    /// Minimum kernel: 4.8 for XDP; 5.9 to attach through a link.
    pub fn load(
        kind: ProgramKind,
        code: &Code,
        maps: &[BorrowedFd<'_>],
        license: &str,
    ) -> Result<Program, BpfError> {
        let opts = LoadOptions {
            license: license.to_string(),
            ..LoadOptions::default()
        };
        Program::load_with_log_start(kind, code, maps, &opts, LOG_START)
    }

    /// [`Program::load`] with [`LoadOptions`]: multi-buffer support
    /// (`BPF_F_XDP_HAS_FRAGS`) and device binding
    /// (`BPF_F_XDP_DEV_BOUND_ONLY` + `prog_ifindex`).
    ///
    /// # Errors
    ///
    /// As [`Program::load`]; an old kernel refuses unknown `prog_flags` with
    /// `EINVAL` (the verifier log then says so), a device-bound load of an
    /// index that does not exist in this namespace fails with `ENODEV`.
    pub fn load_with(
        kind: ProgramKind,
        code: &Code,
        maps: &[BorrowedFd<'_>],
        opts: &LoadOptions,
    ) -> Result<Program, BpfError> {
        Program::load_with_log_start(kind, code, maps, opts, LOG_START)
    }

    /// [`Program::load`] with the first log buffer `log_start` bytes long.
    fn load_with_log_start(
        kind: ProgramKind,
        code: &Code,
        maps: &[BorrowedFd<'_>],
        opts: &LoadOptions,
        log_start: usize,
    ) -> Result<Program, BpfError> {
        let license = CString::new(opts.license.as_str()).map_err(|_| BpfError::BadLicense)?;
        let insns = relocate(code, maps)?;
        let name = if code.name().is_empty() {
            "pktio"
        } else {
            code.name()
        };
        let load = sys::ProgLoad {
            prog_type: kind.prog_type(),
            expected_attach_type: kind.expected_attach_type(),
            insns: &insns,
            license: &license,
            name,
            prog_flags: opts.prog_flags(),
            prog_ifindex: opts.dev_bound_ifindex.unwrap_or(0),
        };
        let first = match sys::prog_load(&load, None) {
            Ok(fd) => return Ok(Program::new(fd, kind, insns.len())),
            Err(e) => e,
        };
        if first.errno() == Some(libc::EPERM) {
            return Err(BpfError::Permission {
                source: first,
                caps_held: crate::error::holds_bpf_capabilities(),
            });
        }
        let mut size = log_start;
        loop {
            let mut log = vec![0u8; size];
            match sys::prog_load(&load, Some(&mut log)) {
                // A retry that loads (the first failure was transient): fine.
                Ok(fd) => return Ok(Program::new(fd, kind, insns.len())),
                Err(e) if e.errno() == Some(libc::ENOSPC) && size < LOG_CAP => size *= 4,
                Err(e) => {
                    // ENOSPC at the cap means the log was cut; the first
                    // error is the verifier's own answer.
                    let source = if e.errno() == Some(libc::ENOSPC) {
                        first
                    } else {
                        e
                    };
                    return Err(BpfError::Load {
                        source,
                        verifier_log: log_text(&log),
                    });
                }
            }
        }
    }

    /// [`Program::load`] for XDP with [`DEFAULT_LICENSE`].
    ///
    /// # Errors
    ///
    /// As [`Program::load`].
    pub fn load_xdp(code: &Code, maps: &[BorrowedFd<'_>]) -> Result<Program, BpfError> {
        Program::load(ProgramKind::Xdp, code, maps, DEFAULT_LICENSE)
    }

    fn new(fd: OwnedFd, kind: ProgramKind, insn_count: usize) -> Program {
        Program {
            fd,
            kind,
            insn_count,
        }
    }

    /// The program kind.
    pub fn kind(&self) -> ProgramKind {
        self.kind
    }

    /// Instruction slots loaded.
    pub fn insn_count(&self) -> usize {
        self.insn_count
    }

    /// The kernel's id for this program (as `bpftool prog` and
    /// [`super::LinkInfo::prog_id`] show it), via `bpf(BPF_OBJ_GET_INFO_BY_FD)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::Sys`] if the kernel refuses (it should not for a live fd).
    pub fn id(&self) -> Result<u32, BpfError> {
        Ok(sys::prog_info(self.fd.as_fd())?.id)
    }

    /// The name the kernel keeps for this program (at most 15 characters),
    /// via `bpf(BPF_OBJ_GET_INFO_BY_FD)`.
    ///
    /// # Errors
    ///
    /// [`BpfError::Sys`] if the kernel refuses.
    pub fn name(&self) -> Result<String, BpfError> {
        Ok(sys::prog_info(self.fd.as_fd())?.name())
    }

    /// Pins the program at `path` on a bpffs, `bpf(BPF_OBJ_PIN)` (the pin
    /// keeps it loaded until removed with [`std::fs::remove_file`]).
    ///
    /// # Errors
    ///
    /// [`BpfError::Pin`] (not a bpffs, no such directory, name taken).
    pub fn pin(&self, path: impl AsRef<std::path::Path>) -> Result<(), BpfError> {
        super::map::pin_fd(self.fd.as_fd(), path.as_ref())
    }

    /// Runs the program once per repetition on a copy of `data` (an
    /// Ethernet frame) in the kernel, `bpf(BPF_PROG_TEST_RUN)`. Nothing is
    /// sent or received; a redirect only reports [`XdpAction::Redirect`].
    ///
    /// The context is that of `lo`'s queue 0 in the calling thread's network
    /// namespace (`ctx->rx_queue_index` is 0). `repeat` 0 counts as 1.
    ///
    /// # Errors
    ///
    /// - [`BpfError::FrameTooShort`] below 14 bytes (`ETH_HLEN`).
    /// - [`BpfError::Permission`] on `EPERM`, [`BpfError::Sys`] otherwise
    ///   (for example `EINTR` when a signal arrived during a long run).
    ///
    /// Minimum kernel: 4.12.
    pub fn test_run(&self, data: &[u8], repeat: u32) -> Result<TestRunResult, BpfError> {
        check_frame(data)?;
        // The program may move the start of the frame back by up to the
        // headroom (256 bytes) and grow the tail within the page.
        let mut out = vec![0u8; data.len() + 4096];
        let run = sys::TestRun {
            data_in: data,
            data_out: Some(&mut out),
            ctx_in: None,
            repeat,
            flags: 0,
            batch_size: 0,
        };
        let result = sys::prog_test_run(self.fd.as_fd(), run).map_err(BpfError::from_sys)?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunResult {
            retval: result.retval,
            data_out: out,
            duration_ns: result.duration,
        })
    }

    /// Runs the program on `repeat` copies of `frame` as if they arrived on
    /// interface `ifindex` (queue 0), and carries out its verdicts for real:
    /// `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`.
    ///
    /// This is a frame generator: with a program returning
    /// [`XdpAction::Tx`] (such as [`super::progs::xdp_tx`]) every copy is
    /// transmitted out of `ifindex` (the kernel turns `XDP_TX` into a
    /// redirect to the same device, `ndo_xdp_xmit`); `XDP_PASS` hands frames
    /// to the stack; `XDP_REDIRECT` goes where the program sends it. The
    /// kernel re-initialises the frame from `frame` for each run unless the
    /// program changed it, and processes `batch_size` frames per batch (0
    /// means the kernel default, 64; at most [`MAX_LIVE_BATCH`]).
    ///
    /// `ifindex` is looked up in the calling thread's network namespace;
    /// 0 runs the program in the context of that namespace's loopback
    /// device (the kernel's default when no interface is given), where only
    /// a redirect to another interface sends anything (xdp-trafficgen's way).
    /// For a veth, the peer must have NAPI enabled (an XDP program attached,
    /// e.g. [`super::progs::xdp_pass`]) or the transmitted frames are dropped.
    ///
    /// # Errors
    ///
    /// - [`BpfError::FrameTooShort`] below 14 bytes; [`BpfError::BatchTooLarge`].
    /// - [`BpfError::NoSuchInterface`] on `ENODEV`.
    /// - [`BpfError::LiveFramesRefused`] on `EPERM`, `EACCES`, `EOPNOTSUPP`
    ///   or `ENOTSUPP`: this host does not allow live frames (some kernel
    ///   builds refuse them even to root; so do seccomp policies).
    /// - `EINVAL` ([`BpfError::Sys`]) for frames larger than a page minus
    ///   headroom and tailroom (about 3.5 KiB), and on kernels without live
    ///   frames.
    ///
    /// Minimum kernel: 5.18.
    pub fn run_live_frames(
        &self,
        ifindex: u32,
        frame: &[u8],
        repeat: u32,
        batch_size: u32,
    ) -> Result<LiveFramesResult, BpfError> {
        check_frame(frame)?;
        if batch_size > MAX_LIVE_BATCH {
            return Err(BpfError::BatchTooLarge { batch_size });
        }
        let ctx = sys::XdpMd {
            data: 0,
            data_end: frame.len() as u32,
            ingress_ifindex: ifindex,
            ..sys::XdpMd::default()
        };
        let run = sys::TestRun {
            data_in: frame,
            data_out: None,
            ctx_in: Some(&ctx),
            repeat,
            flags: sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size,
        };
        let result = sys::prog_test_run(self.fd.as_fd(), run).map_err(|e| match e.errno() {
            Some(libc::ENODEV) => BpfError::NoSuchInterface { ifindex, source: e },
            // The program is loaded (so privilege to use BPF is there): the
            // refusal is of live frames themselves.
            Some(errno @ (libc::EPERM | libc::EACCES | libc::EOPNOTSUPP | 524)) => {
                BpfError::LiveFramesRefused {
                    errno,
                    errno_name: super::errno_name(errno),
                    caps_held: crate::error::holds_bpf_capabilities(),
                    source: e,
                }
            }
            _ => BpfError::from_sys(e),
        })?;
        Ok(LiveFramesResult {
            frames: repeat.max(1),
            ns_per_frame: result.duration,
        })
    }
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn check_frame(data: &[u8]) -> Result<(), BpfError> {
    if data.len() < MIN_TEST_FRAME {
        return Err(BpfError::FrameTooShort { len: data.len() });
    }
    Ok(())
}

/// The instructions with each map slot replaced by its fd.
fn relocate(code: &Code, maps: &[BorrowedFd<'_>]) -> Result<Vec<Insn>, BpfError> {
    if maps.len() != code.map_slots() {
        return Err(BpfError::MapCount {
            expected: code.map_slots(),
            got: maps.len(),
        });
    }
    let mut insns = code.insns().to_vec();
    for (at, slot) in code.map_loads() {
        // In range: map_slots() is one more than the highest slot.
        insns[at].imm = maps[slot as usize].as_raw_fd();
    }
    Ok(insns)
}

/// The log as text: up to the first NUL, invalid UTF-8 replaced.
fn log_text(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::asm::Asm;
    use crate::bpf::insn::Reg::*;
    use std::os::fd::AsFd;

    #[test]
    fn relocation_writes_fds_into_map_loads() {
        let mut a = Asm::new();
        a.ld_map_fd(R1, 1).ld_map_fd(R2, 0).mov64_imm(R0, 2).exit();
        let code = a.finish().unwrap();
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let (fd0, fd1) = (stdin.as_fd(), stdout.as_fd());
        let insns = relocate(&code, &[fd0, fd1]).unwrap();
        assert_eq!(insns[0].imm, fd1.as_raw_fd());
        assert_eq!(insns[2].imm, fd0.as_raw_fd());
        // The code itself keeps its placeholders.
        assert_eq!(code.insns()[0].imm, 1);
        assert!(matches!(
            relocate(&code, &[fd0]),
            Err(BpfError::MapCount {
                expected: 2,
                got: 1
            })
        ));
    }

    #[test]
    fn actions_round_trip() {
        for action in [
            XdpAction::Aborted,
            XdpAction::Drop,
            XdpAction::Pass,
            XdpAction::Tx,
            XdpAction::Redirect,
        ] {
            assert_eq!(XdpAction::from_retval(action.code()), Some(action));
        }
        assert_eq!(XdpAction::from_retval(5), None);
    }

    #[test]
    fn a_small_log_buffer_grows_until_the_whole_log_fits() {
        use pktio_host::caps::Cap;
        pktio_host::skip_unless!(&[Cap::BPF, Cap::NET_ADMIN], "loading an XDP program");
        // Fail at the end of a long straight line: the level-1 log then
        // holds a line per instruction, far more than 128 bytes.
        let mut a = Asm::new();
        for _ in 0..64 {
            a.mov64_imm(R2, 1);
        }
        a.ldx_mem(crate::bpf::Size::W, R0, R1, 40).exit();
        let code = a.finish().unwrap();
        let err = Program::load_with_log_start(
            ProgramKind::Xdp,
            &code,
            &[],
            &LoadOptions::default(),
            128,
        )
        .unwrap_err();
        match err {
            BpfError::Load {
                source,
                verifier_log,
            } => {
                // The verifier's error, not the ENOSPC of a short buffer.
                assert_eq!(source.errno(), Some(libc::EACCES));
                assert!(verifier_log.len() > 128, "{verifier_log}");
                assert!(verifier_log.contains("invalid bpf_context access off=40"));
                // The whole log: its first and last lines are there.
                assert!(verifier_log.starts_with("func#0 @0") || verifier_log.starts_with("0: "));
                assert!(verifier_log
                    .lines()
                    .last()
                    .unwrap()
                    .starts_with("processed "));
            }
            other => panic!("expected BpfError::Load, got {other:?}"),
        }
    }

    #[test]
    fn log_text_stops_at_nul() {
        assert_eq!(log_text(b"R1 !read_ok\n\0garbage"), "R1 !read_ok");
        assert_eq!(log_text(b"no nul"), "no nul");
    }
}
