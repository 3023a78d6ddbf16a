//! The kernel's receive path: per-CPU softnet statistics, the NAPI budget
//! (`netdev_budget`, `netdev_budget_usecs`, `dev_weight`), the per-CPU
//! backlog (`netdev_max_backlog`), `default_qdisc`, and software steering
//! (RPS / RFS / XPS masks).

use pktio_host::cpu::{self as cpus, CpuSet};

use super::finding::{read_text, Action, Area, Finding, Got, Level};
use super::nic::{HostCtx, Nic};
use super::sysctl::Sysctls;

/// One CPU's line of `/proc/net/softnet_stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Softnet {
    /// CPU number (from the file's CPU column on 5.10+, else the line index).
    pub cpu: u32,
    /// Frames processed by NAPI / the backlog.
    pub processed: u64,
    /// Frames dropped because the backlog (netdev_max_backlog) was full.
    pub dropped: u64,
    /// Times net_rx_action ran out of budget or time with work left.
    pub squeezed: u64,
    /// Times this CPU was woken to process RPS packets.
    pub received_rps: u64,
    /// Packets dropped by the flow limit.
    pub flow_limit: u64,
}

/// Parses `/proc/net/softnet_stat`. Handles the 10-column (2.6), 11-column
/// (3.x–5.9), 13-column (5.10+, with the CPU number, so offline CPUs are
/// skipped correctly) and 15-column (6.x) layouts. Columns are hexadecimal.
/// Lines that do not parse are skipped.
pub fn parse_softnet(text: &str) -> Vec<Softnet> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Option<Vec<u64>> = line
            .split_whitespace()
            .map(|c| u64::from_str_radix(c, 16).ok())
            .collect();
        let Some(c) = cols else { continue };
        if c.len() < 3 {
            continue;
        }
        let at = |k: usize| c.get(k).copied().unwrap_or(0);
        out.push(Softnet {
            cpu: if c.len() >= 13 {
                at(12) as u32
            } else {
                i as u32
            },
            processed: at(0),
            dropped: at(1),
            squeezed: at(2),
            received_rps: at(9),
            flow_limit: at(10),
        });
    }
    out
}

/// Reads `/proc/net/softnet_stat`.
pub fn read_softnet() -> Got<Vec<Softnet>> {
    read_text("/proc/net/softnet_stat").map(|t| parse_softnet(&t))
}

/// What the stack checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFacts {
    /// Sysctls.
    pub sysctl: Sysctls,
    /// softnet_stat.
    pub softnet: Got<Vec<Softnet>>,
}

fn sf(level: Level, name: &str, value: impl Into<String>, why: impl Into<String>) -> Finding {
    Finding::new(Area::Stack, level, name, value, why)
}

fn list_cpus(rows: &[Softnet], f: impl Fn(&Softnet) -> u64) -> String {
    rows.iter()
        .filter(|r| f(r) > 0)
        .map(|r| format!("CPU{} {}", r.cpu, f(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Findings from softnet counters (since boot, or deltas under `--watch`).
/// `window` names the period for the value text.
pub fn check_softnet(rows: &[Softnet], sys: &Sysctls, window: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let processed: u64 = rows.iter().map(|r| r.processed).sum();
    let dropped: u64 = rows.iter().map(|r| r.dropped).sum();
    let squeezed: u64 = rows.iter().map(|r| r.squeezed).sum();
    out.push(sf(
        Level::Ok,
        "softnet",
        format!("{processed} processed on {} CPUs, {dropped} dropped, {squeezed} squeezed ({window})", rows.len()),
        "Per-CPU receive processing (/proc/net/softnet_stat): column 1 processed, 2 dropped at the backlog, 3 budget ran out.",
    ));
    if dropped > 0 {
        let mut f = sf(
            Level::Warn,
            "backlog drops",
            format!("{} ({window})", list_cpus(rows, |r| r.dropped)),
            "The per-CPU backlog queue (netdev_max_backlog) overflowed and packets were dropped before the protocol stack: double netdev_max_backlog until the drops stop.",
        );
        if let Ok(b) = sys.num("net.core.netdev_max_backlog") {
            f = f.action(Action::Sysctl {
                key: "net.core.netdev_max_backlog".into(),
                value: (b * 2).to_string(),
            });
        } else {
            f = f.fix("sysctl -w net.core.netdev_max_backlog=2000");
        }
        out.push(f);
    }
    if squeezed > 0 {
        // A few squeezes are normal; a growing share of the polls is not.
        let heavy = squeezed * 1000 > processed.max(1);
        let value = format!("{} ({window})", list_cpus(rows, |r| r.squeezed));
        let mut f = sf(
            if heavy { Level::Warn } else { Level::Note },
            "time squeeze",
            value,
            if heavy {
                "net_rx_action often ran out of netdev_budget packets or netdev_budget_usecs with packets still waiting: the softirq is cut short and the NIC ring fills; raise the budget."
            } else {
                "net_rx_action ran out of budget a few times with work left; small numbers are normal, watch whether they grow (--watch)."
            },
        );
        let budget = sys.num("net.core.netdev_budget").unwrap_or(300);
        let action = Action::Sysctl {
            key: "net.core.netdev_budget".into(),
            value: (budget * 2).to_string(),
        };
        f = if heavy {
            f.action(action)
        } else {
            f.fix(action.command())
        };
        out.push(f);
    }
    if rows.len() > 1 && processed > 10_000 {
        if let Some(top) = rows.iter().max_by_key(|r| r.processed) {
            if top.processed * 10 > processed * 9 {
                out.push(sf(
                    Level::Note,
                    "softnet spread",
                    format!("CPU{} did {}% of receive processing", top.cpu, top.processed * 100 / processed),
                    "Nearly all receive processing ran on one CPU: spread it with more RSS queues and IRQ affinity, or RPS for a single-queue NIC.",
                ));
            }
        }
    }
    out
}

fn sysctl_value(sys: &Sysctls, key: &str, min_ok: u64, why_ok: &str, why_low: &str) -> Finding {
    let name = key.rsplit('.').next().unwrap_or(key);
    match sys.num(key) {
        Ok(v) if v >= min_ok => sf(Level::Ok, name, v.to_string(), why_ok),
        Ok(v) => sf(Level::Warn, name, v.to_string(), why_low).action(Action::Sysctl {
            key: key.into(),
            value: min_ok.to_string(),
        }),
        Err(e) => Finding::unreadable(Area::Stack, name, key, &e),
    }
}

/// Budget, backlog and qdisc sysctls plus softnet counters.
pub fn check(f: &StackFacts) -> Vec<Finding> {
    let s = &f.sysctl;
    let mut out = Vec::new();
    match &f.softnet {
        Ok(rows) => out.extend(check_softnet(rows, s, "since boot")),
        Err(e) => out.push(Finding::unreadable(
            Area::Stack,
            "softnet",
            "/proc/net/softnet_stat",
            e,
        )),
    }
    out.push(sysctl_value(s, "net.core.netdev_budget", 300,
        "Packets one net_rx_action run may take from all NAPI instances before giving the CPU back (default 300).",
        "Below the default 300: the softirq yields early and rings fill under load."));
    out.push(sysctl_value(s, "net.core.netdev_budget_usecs", 2000,
        "Microseconds one net_rx_action run may last; with netdev_budget it bounds each poll cycle.",
        "Below the default 2000 µs: polling stops early and leaves packets in the ring."));
    out.push(sysctl_value(
        s,
        "net.core.dev_weight",
        64,
        "Packets one NAPI poll of one device may take per round (default 64).",
        "Below the default 64: each device poll takes fewer packets per round.",
    ));
    out.push(sysctl_value(s, "net.core.netdev_max_backlog", 1000,
        "Packets queued per CPU between the driver and the protocols (RPS, non-NAPI drivers); drops show in softnet column 2.",
        "Below the default 1000: the per-CPU backlog overflows on bursts."));
    out.push(match s.get("net.core.default_qdisc") {
        Ok(q) if q == "pfifo_fast" => sf(Level::Note, "default_qdisc", q,
            "pfifo_fast is a plain FIFO: one bulk flow fills txqueuelen and delays every other flow (bufferbloat); fq_codel or fq keep queues short and fair.")
            .fix("sysctl -w net.core.default_qdisc=fq_codel"),
        Ok(q) => sf(Level::Ok, "default_qdisc", q, "The qdisc new interfaces get; fq/fq_codel/cake work well without configuration."),
        Err(e) => Finding::unreadable(Area::Stack, "default_qdisc", "net.core.default_qdisc", &e),
    });
    out
}

fn masks_of(n: &Nic, rx: bool) -> Option<Vec<(u32, CpuSet)>> {
    let q = if rx { &n.rx_queues } else { &n.tx_queues };
    q.as_ref().ok().map(|v| {
        v.iter()
            .map(|q| {
                (
                    q.index,
                    q.mask
                        .as_deref()
                        .and_then(cpus::parse_mask)
                        .unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// One CPU per TX queue, round robin over the online CPUs.
fn xps_fix(ifname: &str, tx: &[(u32, CpuSet)], online: &CpuSet) -> String {
    let cpus: Vec<u32> = online.iter().copied().collect();
    if cpus.is_empty() {
        return String::new();
    }
    tx.iter()
        .enumerate()
        .map(|(i, (q, _))| {
            let mask = cpus::format_mask(&CpuSet::from([cpus[i % cpus.len()]]));
            format!("echo {mask} > /sys/class/net/{ifname}/queues/tx-{q}/xps_cpus")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// RPS, RFS and XPS for one interface, following the kernel's scaling guide:
/// RPS for single-queue devices (RSS makes it redundant), RFS on top of RPS,
/// XPS for multi-queue transmit.
pub fn check_steering(n: &Nic, h: &HostCtx, sys: &Sysctls) -> Vec<Finding> {
    let name = |w: &str| format!("{} {w}", n.name());
    let mut out = Vec::new();
    let Some(rx) = masks_of(n, true) else {
        if let Err(e) = &n.rx_queues {
            out.push(Finding::unreadable(
                Area::Stack,
                name("RPS"),
                "the rx queue files in sysfs",
                e,
            ));
        }
        return out;
    };
    let active = n.rx_queue_count().max(1);
    let ncpu = h.online.len() as u32;
    let rps_on = rx.iter().any(|(_, m)| !m.is_empty());
    let value = rx
        .iter()
        .map(|(q, m)| {
            format!(
                "rx-{q} {}",
                if m.is_empty() {
                    "off".to_string()
                } else {
                    cpus::format_list(m)
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if rps_on {
        out.push(Finding::new(
            Area::Stack,
            Level::Ok,
            name("RPS"),
            value,
            "Receive Packet Steering hands protocol processing to the CPUs in each queue's mask.",
        ));
    } else if active >= 2 || ncpu <= 1 {
        out.push(Finding::new(
            Area::Stack,
            Level::Ok,
            name("RPS"),
            value,
            "RPS is off; with RSS spreading over several queues it would be redundant.",
        ));
    } else {
        // Single receive queue on a multi-CPU host: spread over the NIC's
        // NUMA node (or every CPU), as the guide suggests.
        let target: CpuSet = n
            .node_cpus
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| h.online.clone());
        let mask = cpus::format_mask(&target);
        out.push(
            Finding::new(Area::Stack, Level::Warn, name("RPS"), value, format!(
                "One receive queue and {ncpu} CPUs: all protocol processing runs on the CPU that services the queue; RPS spreads it (here over CPUs {}; at high rates leave out the interrupting CPU).",
                cpus::format_list(&target)))
            .action(Action::RpsCpus { ifname: n.name().to_string(), queue: 0, mask }),
        );
    }
    if rps_on {
        let entries = sys.num("net.core.rps_sock_flow_entries").unwrap_or(0);
        let cnt: Vec<u32> = n
            .rx_queues
            .as_ref()
            .map(|v| v.iter().map(|q| q.flow_cnt.unwrap_or(0)).collect())
            .unwrap_or_default();
        if entries == 0 {
            let per_q = 32768 / rx.len().max(1) as u32;
            out.push(Finding::new(Area::Stack, Level::Note, name("RFS"), "off (rps_sock_flow_entries 0)",
                "RPS picks CPUs by flow hash, not by where the application reads: RFS steers each flow to its reader's CPU and keeps the cache warm (32768 entries, split over the queues' rps_flow_cnt).")
                .fix(std::iter::once("sysctl -w net.core.rps_sock_flow_entries=32768".to_string())
                    .chain(rx.iter().map(|(q, _)| format!("echo {per_q} > /sys/class/net/{}/queues/rx-{q}/rps_flow_cnt", n.name())))
                    .collect::<Vec<_>>()
                    .join("; ")));
        } else {
            out.push(Finding::new(
                Area::Stack,
                Level::Ok,
                name("RFS"),
                format!("rps_sock_flow_entries {entries}, rps_flow_cnt {cnt:?}"),
                "Receive Flow Steering follows the reading application's CPU.",
            ));
        }
    }
    if let Some(tx) = masks_of(n, false) {
        if tx.len() > 1 {
            let xps_on = tx.iter().any(|(_, m)| !m.is_empty());
            let value = tx
                .iter()
                .map(|(q, m)| {
                    format!(
                        "tx-{q} {}",
                        if m.is_empty() {
                            "off".into()
                        } else {
                            cpus::format_list(m)
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            if xps_on {
                out.push(Finding::new(Area::Stack, Level::Ok, name("XPS"), value, "Transmit Packet Steering maps CPUs to TX queues: no queue lock shared between CPUs."));
            } else {
                out.push(Finding::new(Area::Stack, Level::Note, name("XPS"), value, "XPS is unset: any CPU may pick any TX queue, so queue locks and cache lines bounce between CPUs; map each CPU to its own queue.")
                    .fix(xps_fix(n.name(), &tx, &h.online)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::nic::fixtures::{good_nic, host, veth};
    use super::*;

    #[test]
    fn softnet_layouts_of_several_kernels() {
        let old = parse_softnet(include_str!("fixtures/softnet_stat_2.6.txt"));
        assert_eq!(old.len(), 2);
        assert_eq!(old[0].processed, 0x73d76b);
        assert_eq!(old[0].squeezed, 0x49ae);
        let v419 = parse_softnet(include_str!("fixtures/softnet_stat_4.19.txt"));
        assert_eq!(v419.len(), 4);
        assert_eq!((v419[3].cpu, v419[3].squeezed), (3, 3));
        // 5.10+: CPU 2 offline, the third line is CPU 3.
        let v515 = parse_softnet(include_str!("fixtures/softnet_stat_5.15_cpu2_offline.txt"));
        assert_eq!(
            v515.iter().map(|r| r.cpu).collect::<Vec<_>>(),
            vec![0, 1, 3]
        );
        let v618 = parse_softnet(include_str!("fixtures/softnet_stat_6.18.txt"));
        assert_eq!(v618.len(), 2);
        assert_eq!(v618[1].cpu, 1);
        assert!(parse_softnet("garbage line\n\n").is_empty());
    }

    #[test]
    fn bad_host_softnet() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_bad.txt"));
        let rows = parse_softnet(include_str!("fixtures/softnet_stat_bad.txt"));
        assert_eq!(rows[1].dropped, 0xa51c);
        assert_eq!(rows[1].received_rps, 0x0104f2a1);
        let fs = check(&StackFacts {
            sysctl: sys,
            softnet: Ok(rows),
        });
        let d = fs.iter().find(|f| f.name == "backlog drops").unwrap();
        assert_eq!(d.level, Level::Warn);
        assert!(d.value.starts_with("CPU1 42268"), "{}", d.value);
        assert_eq!(
            d.fix.as_deref(),
            Some("sysctl -w net.core.netdev_max_backlog=2000")
        );
        let s = fs.iter().find(|f| f.name == "time squeeze").unwrap();
        assert_eq!(s.level, Level::Warn);
        assert_eq!(
            s.fix.as_deref(),
            Some("sysctl -w net.core.netdev_budget=300")
        );
        let b = fs.iter().find(|f| f.name == "netdev_budget").unwrap();
        assert_eq!(
            (b.level, b.fix.as_deref()),
            (Level::Warn, Some("sysctl -w net.core.netdev_budget=300"))
        );
        assert!(fs.iter().any(|f| f.name == "softnet spread"));
        let q = fs.iter().find(|f| f.name == "default_qdisc").unwrap();
        assert_eq!(
            q.fix.as_deref(),
            Some("sysctl -w net.core.default_qdisc=fq_codel")
        );
    }

    #[test]
    fn good_host_stack_is_ok() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_good.txt"));
        let rows = parse_softnet(include_str!("fixtures/softnet_stat_good.txt"));
        let fs = check(&StackFacts {
            sysctl: sys,
            softnet: Ok(rows),
        });
        let bad: Vec<_> = fs.iter().filter(|f| f.level > Level::Note).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        // A handful of squeezes is a note, not a warning.
        assert_eq!(
            fs.iter().find(|f| f.name == "time squeeze").unwrap().level,
            Level::Note
        );
    }

    #[test]
    fn unreadable_softnet_is_a_finding() {
        let sys = Sysctls::parse("");
        let fs = check(&StackFacts {
            sysctl: sys,
            softnet: Err(super::super::finding::Unavailable::Denied(
                "/proc/net/softnet_stat".into(),
            )),
        });
        assert_eq!(fs[0].name, "softnet");
        assert_eq!(fs[0].level, Level::Warn);
        assert!(fs
            .iter()
            .any(|f| f.name == "netdev_budget" && f.value == "unknown"));
    }

    #[test]
    fn single_queue_gets_rps_over_all_cpus() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_bad.txt"));
        let mut n = veth();
        n.channels = Err(super::super::finding::Unavailable::Missing("x".into()));
        n.rx_queues.as_mut().unwrap().truncate(1);
        let fs = check_steering(&n, &host(4), &sys);
        let rps = &fs[0];
        assert_eq!(rps.level, Level::Warn);
        assert_eq!(
            rps.fix.as_deref(),
            Some("echo f > /sys/class/net/vrx/queues/rx-0/rps_cpus")
        );
    }

    #[test]
    fn rss_nic_needs_no_rps_and_xps_is_set() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_good.txt"));
        let fs = check_steering(&good_nic(), &host(8), &sys);
        assert!(fs.iter().all(|f| f.level == Level::Ok), "{fs:#?}");
        assert!(fs.iter().any(|f| f.name == "eth0 XPS"));
    }

    #[test]
    fn unset_xps_gets_one_cpu_per_queue() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_good.txt"));
        let mut n = veth();
        n.tx_queues = Ok((0..2)
            .map(|i| super::super::nic::QueueFiles {
                index: i,
                mask: Some("0".into()),
                flow_cnt: None,
            })
            .collect());
        let fs = check_steering(&n, &host(2), &sys);
        let xps = fs.iter().find(|f| f.name == "vrx XPS").unwrap();
        assert_eq!(xps.level, Level::Note);
        assert_eq!(
            xps.fix.as_deref(),
            Some("echo 1 > /sys/class/net/vrx/queues/tx-0/xps_cpus; echo 2 > /sys/class/net/vrx/queues/tx-1/xps_cpus")
        );
    }

    #[test]
    fn rps_without_rfs_is_a_note() {
        let sys = Sysctls::parse(include_str!("fixtures/sysctl_bad.txt"));
        let mut n = veth();
        for q in n.rx_queues.as_mut().unwrap() {
            q.mask = Some("3".into());
        }
        let fs = check_steering(&n, &host(2), &sys);
        assert_eq!(fs[0].level, Level::Ok);
        let rfs = fs.iter().find(|f| f.name == "vrx RFS").unwrap();
        assert_eq!(rfs.level, Level::Note);
        assert!(rfs
            .fix
            .as_deref()
            .unwrap()
            .contains("rps_sock_flow_entries=32768"));
        assert!(rfs
            .fix
            .as_deref()
            .unwrap()
            .ends_with("echo 32768 > /sys/class/net/vrx/queues/rx-0/rps_flow_cnt"));
    }
}
