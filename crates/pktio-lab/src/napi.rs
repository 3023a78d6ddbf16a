//! Where a veth end's receive work runs: [`NapiPlacement`] and the
//! [`NapiThread`]s of threaded NAPI.
//!
//! veth has no interrupts: a frame sent into one end schedules the other
//! end's NAPI instance on the *sender's* CPU, so by default the receiving
//! side's kernel work (XDP program, copy into an AF_XDP UMEM, skb build) is
//! paid by the generator's core. With threaded NAPI the instance is polled
//! by a kernel thread `napi/<if>-<napi id>` instead, and pinning that thread
//! to the receiving application's core makes the receiving side pay for its
//! own receive work, as with a NIC whose interrupt lands on that core.
//!
//! # How the lab finds and switches the NAPI
//!
//! `/sys/class/net/<if>/threaded` shows the devices of the namespace sysfs
//! was *mounted* in, not those of the calling thread's namespace, so the
//! lab does not use it. It uses the `netdev` generic-netlink family from a
//! socket opened inside the host's namespace (which sees exactly that
//! namespace's devices): `napi-get` lists the NAPI instances of the veth
//! end's ifindex with their id, their `threaded` state and, while threaded,
//! the kthread's pid; `napi-set` with `threaded` (Linux 6.17+) switches one
//! instance. The pid comes from the kernel for this very device, so labs
//! running in parallel with equal interface names (`vrx` in two persistent
//! labs) never mix up their threads; the thread's name
//! (`/proc/<pid>/comm`) is read only to report it.
//!
//! On a kernel that lists NAPI instances but has no per-NAPI `threaded`
//! (6.9 to 6.16) the lab falls back to the device-wide sysfs file, written
//! by a child process that mounted its own sysfs inside the namespace (the
//! [`Host::command`](crate::Host::command) mechanism, as `ip netns exec`
//! does).

use std::fmt;
use std::str::FromStr;

use pktio_host::cpu;

use crate::error::{LabError, Result};

/// Where the receiving veth end's NAPI work runs.
///
/// `Display` and `FromStr` use `softirq`, `thread` and `thread:<cpu>`.
///
/// ```
/// use pktio_lab::NapiPlacement;
/// let p: NapiPlacement = "thread:1".parse().unwrap();
/// assert_eq!(p, NapiPlacement::Thread { cpu: Some(1) });
/// assert_eq!(p.to_string(), "thread:1");
/// assert_eq!("softirq".parse::<NapiPlacement>().unwrap(), NapiPlacement::Softirq);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NapiPlacement {
    /// The kernel's default: NAPI runs as softirq on the CPU that queued the
    /// frame, i.e. the sender's.
    #[default]
    Softirq,
    /// Threaded NAPI: a `napi/<if>-<id>` kernel thread polls the instance;
    /// pinned to `cpu` if given, else left where the scheduler puts it.
    Thread {
        /// The CPU the NAPI thread is pinned to.
        cpu: Option<usize>,
    },
}

impl fmt::Display for NapiPlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NapiPlacement::Softirq => f.write_str("softirq"),
            NapiPlacement::Thread { cpu: None } => f.write_str("thread"),
            NapiPlacement::Thread { cpu: Some(c) } => write!(f, "thread:{c}"),
        }
    }
}

impl FromStr for NapiPlacement {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            LabError::InvalidConfig(format!(
                "`{s}` is not a NAPI placement: use `softirq` (the default: receive work runs \
                 on the sender's CPU), `thread` (a NAPI kernel thread) or `thread:<cpu>` (that \
                 thread pinned to <cpu>)"
            ))
        };
        match s {
            "softirq" => Ok(NapiPlacement::Softirq),
            "thread" => Ok(NapiPlacement::Thread { cpu: None }),
            _ => {
                let cpu = s.strip_prefix("thread:").ok_or_else(bad)?;
                let cpu = cpu.parse::<usize>().map_err(|_| bad())?;
                Ok(NapiPlacement::Thread { cpu: Some(cpu) })
            }
        }
    }
}

/// A NAPI kernel thread of a veth end, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NapiThread {
    /// The NAPI instance's id (global across namespaces).
    pub napi_id: u32,
    /// The kernel thread's pid (`NETDEV_A_NAPI_PID`).
    pub pid: u32,
    /// Its name from `/proc/<pid>/comm`: `napi/<ifname>-<napi_id>`.
    pub name: String,
    /// The CPUs it may run on (`sched_getaffinity`), ascending.
    pub cpus: Vec<usize>,
}

impl fmt::Display for NapiThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus: Vec<String> = self.cpus.iter().map(usize::to_string).collect();
        write!(
            f,
            "{} (pid {}) on CPU {}",
            self.name,
            self.pid,
            cpus.join(",")
        )
    }
}

/// Describes thread `pid` of NAPI instance `napi_id`: its name and affinity.
pub(crate) fn describe(napi_id: u32, pid: u32) -> Result<NapiThread> {
    let name = pktio_host::procfs::comm(pid).map_err(|e| {
        LabError::sys(
            format!(
                "reading /proc/{pid}/comm, the name of NAPI thread {pid} (if this process runs in \
                 its own PID namespace, it cannot see kernel threads: run it in the initial one)"
            ),
            e,
        )
    })?;
    Ok(NapiThread {
        napi_id,
        pid,
        name,
        cpus: affinity(pid)?,
    })
}

/// `sched_getaffinity(pid)` as a list of CPUs.
pub(crate) fn affinity(pid: u32) -> Result<Vec<usize>> {
    cpu::affinity(Some(pid)).map_err(|e| {
        LabError::sys(
            format!("reading the CPU affinity of NAPI thread {pid} (sched_getaffinity)"),
            e,
        )
    })
}

/// `sched_setaffinity(pid, {cpu})`.
pub(crate) fn pin(pid: u32, cpu: usize) -> Result<()> {
    if cpu >= cpu::MAX_CPU {
        return Err(LabError::InvalidConfig(format!(
            "CPU {cpu} is out of range (at most {}): pick one of {}",
            cpu::MAX_CPU - 1,
            online_cpus_hint()
        )));
    }
    match cpu::pin_thread(pid, cpu) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(LabError::InvalidConfig(format!(
            "cannot pin NAPI thread {pid} to CPU {cpu}: that CPU is not online or not allowed \
             to this process; pick one of {}",
            online_cpus_hint()
        ))),
        Err(e) => Err(LabError::sys(
            format!("pinning NAPI thread {pid} to CPU {cpu} (sched_setaffinity)"),
            e,
        )),
    }
}

/// The CPUs this process may use, for error messages (`0,1`).
fn online_cpus_hint() -> String {
    match cpu::allowed_cpus() {
        Ok(cpus) => {
            let v: Vec<String> = cpus.iter().map(usize::to_string).collect();
            format!("CPUs {}", v.join(","))
        }
        Err(_) => "the CPUs in /sys/devices/system/cpu/online".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_parses_and_displays() {
        for (s, p) in [
            ("softirq", NapiPlacement::Softirq),
            ("thread", NapiPlacement::Thread { cpu: None }),
            ("thread:0", NapiPlacement::Thread { cpu: Some(0) }),
            ("thread:17", NapiPlacement::Thread { cpu: Some(17) }),
        ] {
            assert_eq!(s.parse::<NapiPlacement>().unwrap(), p);
            assert_eq!(p.to_string(), s);
        }
        for bad in [
            "",
            "thread:",
            "thread:-1",
            "thread:x",
            "threaded",
            "Softirq",
            "irq",
        ] {
            let e = bad.parse::<NapiPlacement>().unwrap_err();
            assert!(matches!(e, LabError::InvalidConfig(_)), "{bad}");
            assert!(e.to_string().contains("thread:<cpu>"), "{e}");
        }
        assert_eq!(NapiPlacement::default(), NapiPlacement::Softirq);
    }

    #[test]
    fn own_affinity_and_bad_cpu() {
        let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
        assert!(!affinity(me).unwrap().is_empty());
        let e = pin(me, cpu::MAX_CPU).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
