//! Child processes that die with their parent: `prctl(PR_SET_PDEATHSIG,
//! SIGKILL)` between `fork` and `exec`.
//!
//! A tool pktio starts (dpdk-testpmd, tcpdump, a second pktio) must not
//! outlive it: if pktio is killed (`SIGKILL` included, where no cleanup
//! code runs) the kernel sends the child `SIGKILL` as well, so it neither
//! keeps a queue of a lab interface nor goes on writing a capture file.
//!
//! # Safety
//!
//! The `pre_exec` hook runs in the forked child, which has a single thread
//! and whatever locks other threads of the parent held at `fork`: it may
//! only make async-signal-safe calls. It makes two raw system calls through
//! rustix (`prctl(PR_SET_PDEATHSIG)`, `getppid`), compares two integers and
//! returns either `Ok` or an `io::Error` built from an errno (no
//! allocation, no lock).

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{getpid, getppid, set_parent_process_death_signal, Signal};

/// Makes the child of `cmd` receive `SIGKILL` when its parent dies:
/// `prctl(PR_SET_PDEATHSIG, SIGKILL)` in a `pre_exec` hook, then a
/// `getppid()` check that closes the race where the parent died between
/// `fork` and the `prctl` (the child then exits before `exec`, with
/// `ESRCH`). [`Host::command`](crate::Host::command) does this for every
/// command it builds; call it on a plain [`Command`] that should not outlive
/// this process.
///
/// Three rules of the kernel to know:
/// - "Parent" is the **thread** that spawned the child: when that thread
///   exits, the child is killed even though the process lives on. Spawn
///   from a thread that outlives the child (the main thread, or the one
///   that waits for it), not from a short-lived helper thread.
/// - The setting is cleared when the child changes its effective user or
///   group ID (a tool that drops privileges, such as Debian's `tcpdump`
///   without `-Z root`) and when it executes a set-user-ID binary or one
///   with file capabilities.
/// - It is inherited by nobody: grandchildren need their own.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // Read before the fork: the process the child must not outlive.
    let parent = getpid();
    let hook = move || -> io::Result<()> {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        // The parent may have died before the prctl: the child was then
        // already re-parented and no signal will ever come.
        if getppid() != Some(parent) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook only calls prctl(PR_SET_PDEATHSIG) and getppid(),
    // raw async-signal-safe system calls, and builds an io::Error from an
    // errno without allocating (see the module's Safety section).
    unsafe {
        cmd.pre_exec(hook);
    }
    cmd
}
