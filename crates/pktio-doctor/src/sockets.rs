//! Socket-side limits: `rmem`/`wmem` and the TCP buffer ranges, receive
//! buffer auto-tuning, busy polling, hugepages for the UMEM, and
//! `RLIMIT_MEMLOCK` against `CAP_IPC_LOCK`.

use super::finding::{read_text, Action, Area, Finding, Got, Level};
use pktio_host::caps::{Cap, CapSet};

use super::sysctl::Sysctls;

/// 16 MiB: the buffer ceiling the guide recommends.
const BIG: u64 = 16 << 20;

/// Hugepage counters from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hugepages {
    /// `HugePages_Total`.
    pub total: u64,
    /// `HugePages_Free`.
    pub free: u64,
    /// `Hugepagesize` in kB.
    pub size_kb: u64,
}

/// Parses the hugepage lines of `/proc/meminfo`.
pub fn parse_meminfo(text: &str) -> Option<Hugepages> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Hugepages {
        total: field("HugePages_Total:")?,
        free: field("HugePages_Free:")?,
        size_kb: field("Hugepagesize:").unwrap_or(2048),
    })
}

/// `RLIMIT_MEMLOCK` soft limit in bytes; `None` is unlimited.
pub fn read_memlock() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Memlock).current
}

/// What the socket checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFacts {
    /// Sysctls.
    pub sysctl: Sysctls,
    /// `/proc/meminfo` hugepages.
    pub hugepages: Got<Option<Hugepages>>,
    /// `RLIMIT_MEMLOCK` soft limit (`None`: unlimited).
    pub memlock: Option<u64>,
    /// Effective capabilities.
    pub caps: Got<CapSet>,
}

impl SocketFacts {
    /// Reads this host.
    pub fn read(sysctl: Sysctls, caps: Got<CapSet>) -> SocketFacts {
        SocketFacts {
            sysctl,
            hugepages: read_text("/proc/meminfo").map(|t| parse_meminfo(&t)),
            memlock: read_memlock(),
            caps,
        }
    }
}

fn so(level: Level, name: &str, value: impl Into<String>, why: impl Into<String>) -> Finding {
    Finding::new(Area::Sockets, level, name, value, why)
}

/// `4194304` → `4 MiB`.
pub fn bytes(v: u64) -> String {
    if v >= 1 << 20 && v % (1 << 20) == 0 {
        format!("{} MiB", v >> 20)
    } else if v >= 1 << 10 && v % (1 << 10) == 0 {
        format!("{} KiB", v >> 10)
    } else {
        format!("{v} B")
    }
}

fn core_max(s: &Sysctls, key: &str, dir: &str) -> Finding {
    let name = key.rsplit('.').next().unwrap_or(key);
    match s.num(key) {
        Ok(v) if v >= BIG => so(Level::Ok, name, bytes(v), format!("The largest {dir} buffer a socket may ask for (SO_{}BUF).", if dir == "receive" { "RCV" } else { "SND" })),
        Ok(v) => so(Level::Warn, name, bytes(v), format!(
            "Caps the {dir} buffer any socket can get with SO_{}BUF (UDP, AF_PACKET, TCP with a fixed buffer): bursts beyond it are dropped at the socket; the guide recommends as large as the kernel allows, 16 MiB or more.",
            if dir == "receive" { "RCV" } else { "SND" }))
            .action(Action::Sysctl { key: key.into(), value: BIG.to_string() }),
        Err(e) => Finding::unreadable(Area::Sockets, name, key, &e),
    }
}

fn tcp_range(s: &Sysctls, key: &str) -> Finding {
    let name = key.rsplit('.').next().unwrap_or(key);
    match s.triple(key) {
        Ok([min, def, max]) => {
            let value = format!(
                "min {}, default {}, max {}",
                bytes(min),
                bytes(def),
                bytes(max)
            );
            let action = Action::Sysctl {
                key: key.into(),
                value: format!("{min} {def} {BIG}"),
            };
            let why = "TCP auto-tunes each socket's buffer between min and max; max bounds the window, so throughput on long fat paths.";
            if max < 4 << 20 {
                so(
                    Level::Warn,
                    name,
                    value,
                    format!("{why} Below 4 MiB the window caps throughput (bandwidth × RTT)."),
                )
                .action(action)
            } else if max < BIG {
                so(
                    Level::Note,
                    name,
                    value,
                    format!("{why} Raise max for high bandwidth × RTT paths."),
                )
                .action(action)
            } else {
                so(Level::Ok, name, value, why)
            }
        }
        Err(e) => Finding::unreadable(Area::Sockets, name, key, &e),
    }
}

/// Socket-side findings.
pub fn check(f: &SocketFacts) -> Vec<Finding> {
    let s = &f.sysctl;
    let mut out = vec![
        core_max(s, "net.core.rmem_max", "receive"),
        core_max(s, "net.core.wmem_max", "send"),
    ];
    match (
        s.num("net.core.rmem_default"),
        s.num("net.core.wmem_default"),
    ) {
        (Ok(r), Ok(w)) => out.push(so(
            Level::Ok,
            "rmem/wmem_default",
            format!("{} / {}", bytes(r), bytes(w)),
            "The buffer a non-TCP socket starts with.",
        )),
        (Err(e), _) | (_, Err(e)) => out.push(Finding::unreadable(
            Area::Sockets,
            "rmem/wmem_default",
            "net.core.rmem_default",
            &e,
        )),
    }
    out.push(tcp_range(s, "net.ipv4.tcp_rmem"));
    out.push(tcp_range(s, "net.ipv4.tcp_wmem"));
    out.push(match s.num("net.ipv4.tcp_moderate_rcvbuf") {
        Ok(0) => so(Level::Warn, "tcp_moderate_rcvbuf", "0", "TCP receive buffer auto-tuning is off: every socket keeps the default tcp_rmem size however fast the path.")
            .action(Action::Sysctl { key: "net.ipv4.tcp_moderate_rcvbuf".into(), value: "1".into() }),
        Ok(v) => so(Level::Ok, "tcp_moderate_rcvbuf", v.to_string(), "TCP grows receive buffers as needed."),
        Err(e) => Finding::unreadable(Area::Sockets, "tcp_moderate_rcvbuf", "net.ipv4.tcp_moderate_rcvbuf", &e),
    });
    out.push(match (s.num("net.core.busy_read"), s.num("net.core.busy_poll")) {
        (Ok(0), Ok(0)) => so(Level::Note, "busy polling", "busy_read 0, busy_poll 0", "Sockets sleep until the interrupt and softirq deliver: busy polling spins on the device queue instead, trading CPU for latency (AF_XDP sets it per socket with SO_BUSY_POLL / SO_PREFER_BUSY_POLL).")
            .fix("sysctl -w net.core.busy_read=50; sysctl -w net.core.busy_poll=50"),
        (Ok(r), Ok(p)) => so(Level::Ok, "busy polling", format!("busy_read {r} µs, busy_poll {p} µs"), "Sockets spin on the device queue for low latency (costs CPU)."),
        (Err(e), _) | (_, Err(e)) => Finding::unreadable(Area::Sockets, "busy polling", "net.core.busy_read", &e),
    });
    out.push(match &f.hugepages {
        Ok(Some(h)) if h.total > 0 => so(Level::Ok, "hugepages", format!("{} of {} free ({} kB)", h.free, h.total, h.size_kb), "Hugepages can back the UMEM: fewer TLB misses per packet."),
        Ok(Some(h)) => so(Level::Note, "hugepages", format!("none reserved ({} kB pages)", h.size_kb), "The UMEM lives on 4 KiB pages (a 16 MiB UMEM needs 4096 TLB entries); reserving hugepages lets it use 2 MiB pages. Optional: AF_XDP works without.")
            .fix("sysctl -w vm.nr_hugepages=512"),
        Ok(None) => so(Level::Note, "hugepages", "not reported", "/proc/meminfo has no hugepage lines (kernel without CONFIG_HUGETLBFS)."),
        Err(e) => Finding::unreadable(Area::Sockets, "hugepages", "/proc/meminfo", e),
    });
    let ipc_lock = f
        .caps
        .as_ref()
        .map(|c| c.has(Cap::IPC_LOCK))
        .unwrap_or(false);
    let limit = f.memlock.map_or("unlimited".to_string(), bytes);
    out.push(if ipc_lock {
        so(Level::Ok, "memlock", format!("{limit}, CAP_IPC_LOCK yes"), "With CAP_IPC_LOCK the UMEM is not charged to RLIMIT_MEMLOCK.")
    } else {
        match f.memlock {
            None => so(Level::Ok, "memlock", "unlimited", "RLIMIT_MEMLOCK does not limit the UMEM."),
            Some(l) if l < 64 << 20 => so(Level::Warn, "memlock", format!("{limit}, no CAP_IPC_LOCK"), format!(
                "Without CAP_IPC_LOCK the UMEM is charged to RLIMIT_MEMLOCK (per user, not per process): registering more than {limit} fails with ENOBUFS, and a 4096 × 4096 B UMEM is 16 MiB."))
                .fix("ulimit -l unlimited (LimitMEMLOCK=infinity in a systemd unit), or CAP_IPC_LOCK for one group's members (docs/CAPABILITIES.md, recipe 2)"),
            Some(_) => so(Level::Ok, "memlock", format!("{limit}, no CAP_IPC_LOCK"), "Large enough for a typical UMEM; each UMEM counts against it."),
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use pktio_host::caps::parse_cap_eff;

    use super::*;

    fn facts(sys: &str, meminfo: &str, memlock: Option<u64>, status: &str) -> SocketFacts {
        SocketFacts {
            sysctl: Sysctls::parse(sys),
            hugepages: Ok(parse_meminfo(meminfo)),
            memlock,
            caps: parse_cap_eff(status)
                .ok_or(super::super::finding::Unavailable::Other("x".into())),
        }
    }

    #[test]
    fn meminfo() {
        let h = parse_meminfo(include_str!("fixtures/meminfo_hugepages.txt")).unwrap();
        assert_eq!(
            h,
            Hugepages {
                total: 1024,
                free: 960,
                size_kb: 2048
            }
        );
        let n = parse_meminfo(include_str!("fixtures/meminfo_no_hugepages.txt")).unwrap();
        assert_eq!(n.total, 0);
        assert!(parse_meminfo("MemTotal: 5 kB\n").is_none());
    }

    #[test]
    fn good_host_sockets() {
        let fs = check(&facts(
            include_str!("fixtures/sysctl_good.txt"),
            include_str!("fixtures/meminfo_hugepages.txt"),
            Some(8 << 20),
            include_str!("fixtures/status_root.txt"),
        ));
        let bad: Vec<_> = fs.iter().filter(|f| f.level != Level::Ok).collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn bad_host_sockets() {
        let fs = check(&facts(
            include_str!("fixtures/sysctl_bad.txt"),
            include_str!("fixtures/meminfo_no_hugepages.txt"),
            Some(8 << 20),
            include_str!("fixtures/status_user.txt"),
        ));
        let by = |n: &str| fs.iter().find(|f| f.name == n).unwrap();
        assert_eq!(
            by("rmem_max").fix.as_deref(),
            Some("sysctl -w net.core.rmem_max=16777216")
        );
        assert_eq!(by("rmem_max").value, "208 KiB");
        assert_eq!(by("wmem_max").level, Level::Warn);
        let t = by("tcp_rmem");
        assert_eq!(t.level, Level::Warn);
        assert_eq!(
            t.fix.as_deref(),
            Some("sysctl -w net.ipv4.tcp_rmem='4096 87380 16777216'")
        );
        assert_eq!(by("tcp_moderate_rcvbuf").level, Level::Warn);
        assert_eq!(by("busy polling").level, Level::Note);
        assert_eq!(
            by("hugepages").fix.as_deref(),
            Some("sysctl -w vm.nr_hugepages=512")
        );
        let m = by("memlock");
        assert_eq!(m.level, Level::Warn);
        assert!(m.value.contains("8 MiB"));
    }

    #[test]
    fn unreadable_sysctls_are_findings_not_panics() {
        let fs = check(&SocketFacts {
            sysctl: Sysctls::parse(""),
            hugepages: Err(super::super::finding::Unavailable::Denied(
                "/proc/meminfo".into(),
            )),
            memlock: None,
            caps: Err(super::super::finding::Unavailable::Denied("status".into())),
        });
        assert!(fs.iter().all(|f| f.level <= Level::Warn));
        assert!(fs
            .iter()
            .any(|f| f.name == "rmem_max" && f.value == "unknown"));
    }
}
