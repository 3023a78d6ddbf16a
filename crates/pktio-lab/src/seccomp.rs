//! For tests: run a command as on a host that refuses live frames, whatever
//! this kernel does. A seccomp filter (as a container runtime installs one)
//! answers `bpf(BPF_PROG_TEST_RUN, …)` with `EPERM`, which is what kernel
//! builds that refuse `BPF_F_TEST_XDP_LIVE_FRAMES` answer (seccomp cannot
//! look inside the attribute, so plain test runs are refused too). Every
//! other call, every other `bpf` command included, goes through.

// Installing a seccomp filter is two raw system calls in a forked child
// (`prctl`, `seccomp`): nothing safer exists for it.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// `struct sock_filter` (classic BPF), as seccomp takes it.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
const BPF_PROG_TEST_RUN: u32 = 10;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Installs the filter in `cmd`'s child before `exec` (with
/// `PR_SET_NO_NEW_PRIVS`, so it also works without `CAP_SYS_ADMIN`). The
/// filter is inherited by every thread and child of that process.
pub fn refuse_prog_test_run(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and makes
    // only two async-signal-safe system calls on data on its own stack.
    unsafe { cmd.pre_exec(install) }
}

fn install() -> std::io::Result<()> {
    let stmt = |code, k| SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k, jt, jf| SockFilter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    // seccomp_data: nr at 0, arch at 4, args[0] (low word) at 16.
    let filter = [
        stmt(LD_W_ABS, 4),
        jeq(AUDIT_ARCH, 0, 5),
        stmt(LD_W_ABS, 0),
        jeq(libc::SYS_bpf as u32, 0, 3),
        stmt(LD_W_ABS, 16),
        jeq(BPF_PROG_TEST_RUN, 0, 1),
        stmt(RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(RET_K, SECCOMP_RET_ALLOW),
    ];
    let prog = SockFprog {
        len: filter.len() as u16,
        filter: filter.as_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `prog` points at `filter`, both alive for the call; the
    // kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const SockFprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
