//! Error types shared by every module.
//!
//! Every kernel call made by this crate goes through `crate::sys` (private) and fails
//! with a [`SysError`], which names the call and keeps the `io::Error`. Domain
//! errors ([`crate::xdp::XskError`], [`crate::bpf::BpfError`], …) wrap it and add
//! what the user needs to know (interface, queue, mode). [`hint`] turns an errno
//! into advice a person can act on.

use std::io;

/// A failed system call: which call, and what the kernel answered.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed: {source}")]
pub struct SysError {
    /// The call as it would be written in C, e.g. `setsockopt(XDP_UMEM_REG)`.
    pub call: &'static str,
    /// The kernel's answer.
    #[source]
    pub source: io::Error,
}

impl SysError {
    /// Wraps the calling thread's last `errno` (read right after the failing call).
    pub fn last(call: &'static str) -> Self {
        SysError {
            call,
            source: io::Error::last_os_error(),
        }
    }

    /// Builds an error from an explicit errno value.
    pub fn from_errno(call: &'static str, errno: i32) -> Self {
        SysError {
            call,
            source: io::Error::from_raw_os_error(errno),
        }
    }

    /// The raw errno, when the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// Advice for a person, when this errno has a well-known cause (see [`hint`]).
    pub fn hint(&self) -> Option<&'static str> {
        self.errno().and_then(|e| hint(self.call, e))
    }
}

/// Advice for `EPERM`/`EACCES` when the process already holds the
/// capabilities (as root does): telling the user to grant them would mislead.
pub(crate) const CAPS_HELD_REFUSED: &str =
    "refused although the process holds every capability this call needs (as root \
     does): no capability is missing; a security policy forbids this call (kernel \
     lockdown, a seccomp filter, an LSM such as SELinux or AppArmor) or this kernel \
     build does not allow it";

/// Whether the calling thread holds, effective, the capabilities BPF and
/// XDP need (`CAP_SYS_ADMIN`, or `CAP_BPF` with `CAP_NET_ADMIN`), as root
/// does unless it dropped them.
pub(crate) fn holds_bpf_capabilities() -> bool {
    use rustix::thread::CapabilitySet as C;
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective.contains(C::SYS_ADMIN) || c.effective.contains(C::BPF | C::NET_ADMIN)
    })
}

/// Whether the calling thread holds every capability the advice below
/// would tell the user to grant for `call`.
fn holds_capabilities_for(call: &str) -> bool {
    use rustix::thread::CapabilitySet as C;
    if call.starts_with("bpf") {
        return holds_bpf_capabilities();
    }
    holds_bpf_capabilities()
        && rustix::thread::capabilities(None).is_ok_and(|c| {
            c.effective
                .contains(C::NET_RAW | C::NET_ADMIN | C::IPC_LOCK)
        })
}

/// Advice for a person for a failed `call` with `errno`, or `None` when there
/// is nothing better to say than the errno itself.
///
/// The mapping follows the causes seen in practice: missing privilege,
/// the locked-memory limit on UMEM registration, a vanished interface, a
/// driver that cannot do zero-copy, a queue that is already bound.
pub fn hint(call: &str, errno: i32) -> Option<&'static str> {
    match errno {
        libc::EPERM | libc::EACCES if holds_capabilities_for(call) => Some(CAPS_HELD_REFUSED),
        libc::EPERM | libc::EACCES if call.starts_with("bpf") => Some(
            "loading or attaching BPF needs CAP_BPF and CAP_NET_ADMIN (or root); programs \
             with variable-offset packet access (capture filters) also need CAP_PERFMON; \
             the verifier log, when present, says more",
        ),
        libc::EPERM | libc::EACCES => Some(
            "this needs privilege: run as root, or grant CAP_NET_RAW, CAP_NET_ADMIN, \
             CAP_BPF and CAP_IPC_LOCK to the binary (setcap)",
        ),
        libc::ENOBUFS | libc::ENOMEM
            if call.contains("XDP_UMEM_REG") || call.starts_with("mmap") =>
        {
            Some(
                "the UMEM is charged to RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK: \
                 raise it (`ulimit -l unlimited`, or LimitMEMLOCK=infinity in a systemd unit), \
                 grant CAP_IPC_LOCK, or use fewer/smaller frames",
            )
        }
        libc::ENODEV | libc::ENXIO => {
            Some("the interface does not exist (any more): check the name with `ip link`")
        }
        libc::EOPNOTSUPP => Some(
            "the driver does not support this mode (zero-copy or native XDP); \
             use copy mode / skb attach, or `--copy` / `--skb` on the command line",
        ),
        libc::EBUSY => Some(
            "the queue or interface is in use: another AF_XDP socket is bound to this queue, \
             or another XDP program is attached (`ip link show DEV`)",
        ),
        libc::EAFNOSUPPORT => Some("this kernel was built without AF_XDP (CONFIG_XDP_SOCKETS)"),
        _ => None,
    }
}

/// A host-layer error (an `io::Error` or a `pktio_host::HostError`) as a
/// [`SysError`] naming `call`; the errno survives.
pub(crate) fn sys_error<E: Into<io::Error>>(call: &'static str) -> impl FnOnce(E) -> SysError {
    move |e| SysError {
        call,
        source: e.into(),
    }
}
