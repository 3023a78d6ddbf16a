//! What the kernel can do for fast packet I/O: AF_XDP sockets and the
//! AF_XDP features that came with later kernels, io_uring, the BPF JIT, and
//! the privileges this process holds.
//!
//! Probes (an AF_XDP socket, an io_uring instance) are made once in
//! [`KernelFacts::probe`]; the checks are pure.

use pktio_host::caps::{Cap, CapSet};

use super::finding::{Action, Area, Finding, Got, Level, Unavailable};
use super::sysctl::Sysctls;

/// Capability bits (`include/uapi/linux/capability.h`).
/// The fix for missing capabilities: root, or the capabilities for the
/// members of one group only (never for everyone who may execute pktio).
pub const GROUP_RECIPE: &str = "run as root, or give the capabilities to one group's members: \
chown root:pktio, chmod 0750, then setcap cap_net_raw,cap_net_admin,cap_bpf,cap_ipc_lock+ep \
on the binary (docs/CAPABILITIES.md, recipe 2)";

/// Reads this process's effective capabilities (`CapEff:` of
/// `/proc/self/status`).
pub fn read_caps() -> Got<CapSet> {
    pktio_host::caps::effective().map_err(|e| Unavailable::from_io("/proc/self/status", &e))
}

/// `(major, minor, patch)` from a release string such as `6.18.44-fc-v669`.
pub fn parse_release(release: &str) -> Option<(u32, u32, u32)> {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    let major = it.next()??;
    let minor = it.next()??;
    let patch = it.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// What the probes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFacts {
    /// `uname -r`.
    pub release: String,
    /// `socket(AF_XDP, SOCK_RAW, 0)`: `Ok` or the errno.
    pub af_xdp: Result<(), i32>,
    /// `io_uring_setup(2)`: `Ok` or the errno.
    pub io_uring: Result<(), i32>,
    /// Effective capabilities.
    pub caps: Got<CapSet>,
}

impl KernelFacts {
    /// Probes this host: `uname(2)`, `socket(AF_XDP, SOCK_RAW, 0)` and
    /// `io_uring_setup(2)` (both closed at once).
    pub fn probe() -> KernelFacts {
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        let af_xdp = rustix::net::socket(
            rustix::net::AddressFamily::XDP,
            rustix::net::SocketType::RAW,
            None,
        )
        .map(drop)
        .map_err(|e| e.raw_os_error());
        let io_uring = io_uring::IoUring::new(2)
            .map(drop)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
        KernelFacts {
            release,
            af_xdp,
            io_uring,
            caps: read_caps(),
        }
    }
}

fn kf(level: Level, name: &str, value: impl Into<String>, why: impl Into<String>) -> Finding {
    Finding::new(Area::Kernel, level, name, value, why)
}

fn errno_name(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

/// AF_XDP features and the kernel that brought them.
const AF_XDP_FEATURES: &[(&str, (u32, u32))] = &[
    ("need_wakeup", (5, 4)),
    ("shared-umem across devices", (5, 10)),
    ("busy-poll", (5, 11)),
    ("multi-buffer", (6, 6)),
    ("tx-metadata", (6, 8)),
];

/// Kernel capability findings.
pub fn check(k: &KernelFacts, sys: &Sysctls) -> Vec<Finding> {
    let mut out = Vec::new();
    let ver = parse_release(&k.release);
    out.push(kf(
        Level::Ok,
        "kernel",
        format!("Linux {}", k.release),
        "AF_XDP needs 4.18+, and 5.4+ for need_wakeup; later kernels add the features below.",
    ));

    out.push(match k.af_xdp {
        Ok(()) => kf(Level::Ok, "AF_XDP sockets", "available", "socket(AF_XDP) works: the kernel has CONFIG_XDP_SOCKETS."),
        Err(e) if e == libc::EAFNOSUPPORT => kf(Level::Problem, "AF_XDP sockets", "not built in", "socket(AF_XDP) fails with EAFNOSUPPORT: the kernel lacks CONFIG_XDP_SOCKETS, so no AF_XDP at all.")
            .fix("use a kernel built with CONFIG_XDP_SOCKETS=y (4.18+)"),
        Err(e) if e == libc::EPERM || e == libc::EACCES => kf(Level::Warn, "AF_XDP sockets", "permission denied", "socket(AF_XDP) needs CAP_NET_RAW.")
            .fix(GROUP_RECIPE),
        Err(e) => kf(Level::Warn, "AF_XDP sockets", errno_name(e), "socket(AF_XDP) failed unexpectedly."),
    });

    if let Some((maj, min, _)) = ver {
        let have = |v: (u32, u32)| (maj, min) >= v;
        let value = AF_XDP_FEATURES
            .iter()
            .map(|(n, v)| format!("{n} {}", if have(*v) { "yes" } else { "no" }))
            .collect::<Vec<_>>()
            .join(", ");
        let missing: Vec<String> = AF_XDP_FEATURES
            .iter()
            .filter(|(_, v)| !have(*v))
            .map(|(n, v)| format!("{n} ({}.{})", v.0, v.1))
            .collect();
        if missing.is_empty() {
            out.push(kf(Level::Ok, "AF_XDP features", value, "By kernel version: wakeups only when needed, busy polling, one UMEM shared by several devices, frames larger than a chunk, TX checksum/timestamp metadata."));
        } else {
            out.push(
                kf(
                    Level::Note,
                    "AF_XDP features",
                    value,
                    format!(
                        "This kernel predates {}: pktio falls back where it can.",
                        missing.join(", ")
                    ),
                )
                .fix("upgrade to Linux 6.8 or later"),
            );
        }
    }

    let disabled = sys.num("kernel.io_uring_disabled");
    out.push(match (&k.io_uring, disabled) {
        (Ok(()), _) => kf(Level::Ok, "io_uring", "available", "io_uring_setup works."),
        (Err(e), _) if *e == libc::ENOSYS => kf(
            Level::Warn,
            "io_uring",
            "not built in",
            "io_uring_setup fails with ENOSYS: the kernel lacks CONFIG_IO_URING.",
        ),
        (Err(_), Ok(2)) => kf(
            Level::Warn,
            "io_uring",
            "disabled (io_uring_disabled = 2)",
            "io_uring is switched off for every process.",
        )
        .fix("sysctl -w kernel.io_uring_disabled=0"),
        (Err(_), Ok(1)) => kf(
            Level::Note,
            "io_uring",
            "restricted (io_uring_disabled = 1)",
            "Only processes with CAP_SYS_ADMIN or in kernel.io_uring_group may create rings.",
        )
        .fix("sysctl -w kernel.io_uring_disabled=0"),
        (Err(e), _) => kf(
            Level::Warn,
            "io_uring",
            errno_name(*e),
            "io_uring_setup failed.",
        ),
    });

    out.push(match sys.num("net.core.bpf_jit_enable") {
        Ok(1) => kf(Level::Ok, "BPF JIT", "on", "XDP programs run as native code."),
        Ok(0) => kf(Level::Warn, "BPF JIT", "off", "XDP programs run in the BPF interpreter, several times slower per packet.")
            .action(Action::Sysctl { key: "net.core.bpf_jit_enable".into(), value: "1".into() }),
        Ok(v) => kf(Level::Note, "BPF JIT", format!("{v} (debug)"), "The JIT is on and also dumps every program to the kernel log.")
            .fix("sysctl -w net.core.bpf_jit_enable=1"),
        Err(Unavailable::Missing(_)) => kf(Level::Note, "BPF JIT", "unknown", "net.core.bpf_jit_enable is not visible here (global setting, or a kernel without CONFIG_BPF_JIT)."),
        Err(e) => Finding::unreadable(Area::Kernel, "BPF JIT", "net.core.bpf_jit_enable", &e),
    });

    out.push(match &k.caps {
        Ok(c) => {
            let want = [Cap::NET_RAW, Cap::NET_ADMIN, Cap::BPF, Cap::IPC_LOCK];
            let missing: Vec<String> = want
                .into_iter()
                .filter(|&w| !(c.has(w) || (w == Cap::BPF && c.has(Cap::SYS_ADMIN))))
                .map(Cap::name)
                .collect();
            if missing.is_empty() {
                kf(Level::Ok, "privileges", "CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF, CAP_IPC_LOCK", "Enough to open AF_XDP sockets, load and attach XDP programs and lock the UMEM.")
            } else {
                kf(Level::Note, "privileges", format!("missing {}", missing.join(", ")), "AF_XDP needs CAP_NET_RAW for the socket, CAP_NET_ADMIN and CAP_BPF to attach the XDP program, and CAP_IPC_LOCK (or a large RLIMIT_MEMLOCK) for the UMEM; some checks here also read less.")
                    .fix(GROUP_RECIPE)
            }
        }
        Err(e) => Finding::unreadable(Area::Kernel, "privileges", "/proc/self/status", e),
    });
    out
}

#[cfg(test)]
mod tests {
    use pktio_host::caps::parse_cap_eff;

    use super::*;

    fn facts(
        release: &str,
        af_xdp: Result<(), i32>,
        io_uring: Result<(), i32>,
        status: &str,
    ) -> KernelFacts {
        KernelFacts {
            release: release.into(),
            af_xdp,
            io_uring,
            caps: parse_cap_eff(status).ok_or(Unavailable::Other("x".into())),
        }
    }

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18, 44)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15, 0)));
        assert_eq!(parse_release("6.8"), Some((6, 8, 0)));
        assert_eq!(parse_release("weird"), None);
    }

    #[test]
    fn caps_from_status() {
        let root = parse_cap_eff(include_str!("fixtures/status_root.txt")).unwrap();
        assert!(root.has(Cap::NET_ADMIN) && root.has(Cap::BPF) && root.has(Cap::IPC_LOCK));
        let user = parse_cap_eff(include_str!("fixtures/status_user.txt")).unwrap();
        assert!(!user.has(Cap::NET_RAW));
        let setcap = parse_cap_eff(include_str!("fixtures/status_setcap.txt")).unwrap();
        assert!(setcap.has(Cap::NET_RAW) && setcap.has(Cap::BPF) && !setcap.has(Cap::IPC_LOCK));
    }

    #[test]
    fn good_host_kernel() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_good.txt"));
        let fs = check(
            &facts(
                "6.18.44",
                Ok(()),
                Ok(()),
                include_str!("fixtures/status_root.txt"),
            ),
            &sys,
        );
        let bad: Vec<_> = fs.iter().filter(|f| f.level != Level::Ok).collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn bad_host_kernel() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_bad.txt"));
        let fs = check(
            &facts(
                "5.4.0-150-generic",
                Err(libc::EAFNOSUPPORT),
                Err(libc::EPERM),
                include_str!("fixtures/status_user.txt"),
            ),
            &sys,
        );
        let by = |n: &str| fs.iter().find(|f| f.name == n).unwrap();
        assert_eq!(by("AF_XDP sockets").level, Level::Problem);
        let feat = by("AF_XDP features");
        assert_eq!(feat.level, Level::Note);
        assert!(feat.value.contains("need_wakeup yes"));
        assert!(feat.value.contains("multi-buffer no"));
        assert_eq!(
            by("io_uring").fix.as_deref(),
            Some("sysctl -w kernel.io_uring_disabled=0")
        );
        assert_eq!(
            by("BPF JIT").fix.as_deref(),
            Some("sysctl -w net.core.bpf_jit_enable=1")
        );
        assert!(by("privileges").value.contains("CAP_NET_RAW"));
    }

    #[test]
    fn probing_this_host_does_not_panic() {
        let k = KernelFacts::probe();
        assert!(parse_release(&k.release).is_some());
    }
}
