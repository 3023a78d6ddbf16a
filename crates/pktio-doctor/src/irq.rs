//! Hardware interrupts of an interface's queues: which IRQs they are
//! (`/proc/interrupts`, the device's `msi_irqs`), which CPUs may and do
//! handle them (`/proc/irq/N/smp_affinity_list`, `effective_affinity_list`,
//! the per-CPU counts), their NUMA placement, and whether irqbalance runs.

use std::collections::BTreeSet;

use pktio_host::cpu::{self as cpus, CpuSet};

use super::finding::{read_text, read_trim, Area, Finding, Got, Level};
use super::nic::{HostCtx, Nic};

/// One numbered line of `/proc/interrupts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqLine {
    /// IRQ number.
    pub irq: u32,
    /// Interrupts per CPU (CPU numbers from the header: offline CPUs are absent).
    pub counts: Vec<(u32, u64)>,
    /// Action name (`eth3-TxRx-0`, `virtio2-input.0`, `mlx5_comp3@pci:…`).
    pub name: String,
}

impl IrqLine {
    /// CPUs that handled at least one.
    pub fn busy_cpus(&self) -> CpuSet {
        self.counts
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(cpu, _)| *cpu)
            .collect()
    }
}

/// Parses `/proc/interrupts` (numbered IRQs only; NMI, LOC, … are skipped).
pub fn parse_interrupts(text: &str) -> Vec<IrqLine> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cpus: Vec<u32> = header
        .split_whitespace()
        .filter_map(|t| t.strip_prefix("CPU").and_then(|n| n.parse().ok()))
        .collect();
    let mut out = Vec::new();
    for line in lines {
        let mut toks = line.split_whitespace();
        let Some(label) = toks.next() else { continue };
        let Some(irq) = label.strip_suffix(':').and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let rest: Vec<&str> = toks.collect();
        if rest.len() < cpus.len() {
            continue;
        }
        let counts: Option<Vec<(u32, u64)>> = cpus
            .iter()
            .zip(&rest)
            .map(|(c, v)| v.parse().ok().map(|v| (*c, v)))
            .collect();
        let Some(counts) = counts else { continue };
        let tail = &rest[cpus.len()..];
        // The action name is the last token; shared IRQs list "a, b".
        let mut start = tail.len().saturating_sub(1);
        while start > 0 && tail[start - 1].ends_with(',') {
            start -= 1;
        }
        let name = tail[start..].join(" ");
        out.push(IrqLine { irq, counts, name });
    }
    out
}

/// Whether an IRQ name looks like a queue interrupt rather than a
/// config/async/link one.
pub fn is_queue_irq(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let queue_word = [
        "rx", "tx", "txrx", "comp", "input", "output", "queue", "fp-",
    ]
    .iter()
    .any(|w| n.contains(w));
    let ends_with_digit = n
        .split('@')
        .next()
        .is_some_and(|s| s.ends_with(|c: char| c.is_ascii_digit()));
    let control = ["config", "async", "-event", "ctrl", "admin"]
        .iter()
        .any(|w| n.contains(w));
    queue_word && ends_with_digit && !control
}

/// The queue IRQs of an interface: those in the device's `msi_irqs` (when
/// known), or whose name carries the interface name or a device name (e.g.
/// `virtio2`) as a whole token.
pub fn interface_irqs<'a>(
    lines: &'a [IrqLine],
    ifname: &str,
    devnames: &[String],
    msi: &BTreeSet<u32>,
) -> Vec<&'a IrqLine> {
    let token_match = |name: &str, word: &str| {
        name.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|t| t == word)
    };
    lines
        .iter()
        .filter(|l| is_queue_irq(&l.name))
        .filter(|l| {
            msi.contains(&l.irq)
                || token_match(&l.name, ifname)
                || devnames.iter().any(|d| {
                    // A bus address (`0000:3b:00.0`) is matched as a substring.
                    if d.contains(':') {
                        l.name.contains(d.as_str())
                    } else {
                        token_match(&l.name, d)
                    }
                })
        })
        .collect()
}

/// One queue IRQ with its affinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueIrq {
    /// The line from `/proc/interrupts`.
    pub line: IrqLine,
    /// CPUs allowed (`smp_affinity_list`).
    pub allowed: Option<CpuSet>,
    /// CPUs actually targeted (`effective_affinity_list`).
    pub effective: Option<CpuSet>,
}

/// What the IRQ checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqFacts {
    /// `/proc/interrupts`.
    pub lines: Got<Vec<IrqLine>>,
    /// Whether an `irqbalance` process runs.
    pub irqbalance: Got<bool>,
}

impl IrqFacts {
    /// Reads `/proc/interrupts` and looks for irqbalance in `/proc/*/comm`.
    pub fn read() -> IrqFacts {
        IrqFacts {
            lines: read_text("/proc/interrupts").map(|t| parse_interrupts(&t)),
            irqbalance: irqbalance_running(),
        }
    }
}

fn irqbalance_running() -> Got<bool> {
    let rd = std::fs::read_dir("/proc")
        .map_err(|e| super::finding::Unavailable::from_io("/proc", &e))?;
    let comms = rd.flatten().filter_map(|e| {
        let n = e.file_name();
        let n = n.to_str()?;
        n.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| read_trim(&format!("/proc/{n}/comm")).ok())?
    });
    Ok(comms.into_iter().any(|c| c == "irqbalance"))
}

/// Reads the device's MSI IRQ numbers (the device or its parent, which holds
/// them for virtio) and the names it may appear under in `/proc/interrupts`.
pub fn device_irq_ids(n: &Nic) -> (BTreeSet<u32>, Vec<String>) {
    let mut msi = BTreeSet::new();
    let mut names = Vec::new();
    if let Some(dev) = &n.device_path {
        let mut p = std::path::PathBuf::from(dev);
        if let Some(b) = p.file_name() {
            names.push(b.to_string_lossy().into_owned());
        }
        for _ in 0..2 {
            if let Ok(rd) = std::fs::read_dir(p.join("msi_irqs")) {
                msi.extend(
                    rd.flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()),
                );
                break;
            }
            if !p.pop() {
                break;
            }
        }
    }
    if let Some(b) = &n.bus_info {
        names.push(b.clone());
    }
    (msi, names)
}

/// Adds affinity to each queue IRQ from `/proc/irq/N/`.
pub fn with_affinity(lines: Vec<&IrqLine>) -> Vec<QueueIrq> {
    lines
        .into_iter()
        .map(|l| {
            let get = |f: &str| {
                read_trim(&format!("/proc/irq/{}/{f}", l.irq))
                    .ok()
                    .and_then(|s| cpus::parse_list(&s))
            };
            QueueIrq {
                line: l.clone(),
                allowed: get("smp_affinity_list"),
                effective: get("effective_affinity_list"),
            }
        })
        .collect()
}

/// The CPUs an IRQ lands on: effective affinity, else the CPUs that counted it.
fn lands_on(q: &QueueIrq) -> CpuSet {
    match &q.effective {
        Some(e) if !e.is_empty() => e.clone(),
        _ => q.line.busy_cpus(),
    }
}

/// Per-interface IRQ findings.
pub fn check_nic(n: &Nic, irqs: &[QueueIrq], h: &HostCtx) -> Vec<Finding> {
    let name = format!("{} interrupts", n.name());
    if irqs.is_empty() {
        let why = if n.link.kind.as_deref() == Some("veth") || n.driver.as_deref() == Some("veth") {
            "veth has no interrupts: its NAPI runs in softirq on the CPU that sent the packet, so pin the sender to place the receive work."
        } else {
            "No queue interrupts found for this interface (virtual device, or names this check does not recognise)."
        };
        return vec![Finding::new(Area::Irq, Level::Ok, name, "none", why)];
    }
    let mut used = CpuSet::new();
    for q in irqs {
        used.extend(lands_on(q));
    }
    let value = format!(
        "{} queue IRQs on CPUs {} ({})",
        irqs.len(),
        cpus::format_list(&used),
        irqs.iter()
            .map(|q| format!("{}→{}", q.line.irq, cpus::format_list(&lands_on(q))))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut out = Vec::new();
    let target: Vec<u32> = n
        .node_cpus
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| h.online.clone())
        .into_iter()
        .collect();
    let spread_fix = || {
        irqs.iter()
            .enumerate()
            .map(|(i, q)| {
                format!(
                    "echo {} > /proc/irq/{}/smp_affinity_list",
                    target[i % target.len()],
                    q.line.irq
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if irqs.len() > 1 && used.len() == 1 && h.online.len() > 1 && !target.is_empty() {
        out.push(Finding::new(Area::Irq, Level::Warn, name.clone(), value, format!(
            "All {} queue interrupts are handled by one CPU: RSS spreads packets over queues but a single CPU takes every interrupt and, usually, its softirq; give each queue its own CPU (stop irqbalance first).",
            irqs.len())).fix(spread_fix()));
    } else {
        out.push(Finding::new(Area::Irq, Level::Ok, name.clone(), value, "Queue interrupts are spread over CPUs; put the application's threads next to them (same CPU or same cache)."));
    }
    if let Some(node) = n.node_cpus.as_ref().filter(|c| !c.is_empty()) {
        let outside: CpuSet = used.difference(node).copied().collect();
        if !outside.is_empty() {
            out.push(Finding::new(Area::Irq, Level::Warn, format!("{} IRQ NUMA", n.name()), format!(
                "CPUs {} outside node {} (CPUs {})", cpus::format_list(&outside), n.numa_node.unwrap_or(-1), cpus::format_list(node)),
                "Some queue interrupts run on another NUMA node than the NIC: every packet crosses the interconnect; keep them on the NIC's node.")
                .fix(spread_fix()));
        }
    }
    out
}

/// Host-wide IRQ findings: irqbalance.
pub fn check_host(f: &IrqFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(e) = &f.lines {
        out.push(Finding::unreadable(
            Area::Irq,
            "interrupts",
            "/proc/interrupts",
            e,
        ));
    }
    out.push(match &f.irqbalance {
        Ok(true) => Finding::new(Area::Irq, Level::Note, "irqbalance", "running",
            "irqbalance moves interrupts between CPUs: hand-set smp_affinity is overwritten; stop it before pinning queue interrupts (or ban those IRQs).")
            .fix("systemctl stop irqbalance"),
        Ok(false) => Finding::new(Area::Irq, Level::Ok, "irqbalance", "not running",
            "Interrupt affinities stay where the driver or you put them."),
        Err(e) => Finding::unreadable(Area::Irq, "irqbalance", "/proc", e),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::nic::fixtures::{good_nic, host, veth};
    use super::*;

    #[test]
    fn virtio_names() {
        let l = parse_interrupts(include_str!("fixtures/interrupts_virtio.txt"));
        let q: Vec<_> = l.iter().filter(|l| l.name.starts_with("virtio2")).collect();
        assert_eq!(q.len(), 3);
        let irqs = interface_irqs(&l, "eth0", &["virtio2".into()], &BTreeSet::new());
        let names: Vec<_> = irqs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["virtio2-input.0", "virtio2-output.0"]);
        assert_eq!(irqs[0].counts.len(), 2);
    }

    #[test]
    fn mlx5_by_msi_irqs() {
        let l = parse_interrupts(include_str!("fixtures/interrupts_mlx5.txt"));
        assert_eq!(
            l.iter().find(|l| l.irq == 121).unwrap().name,
            "mlx5_comp0@pci:0000:3b:00.0"
        );
        let msi: BTreeSet<u32> = (120..=124).collect();
        let irqs = interface_irqs(&l, "ens1f0np0", &[], &msi);
        assert_eq!(irqs.len(), 4, "async0 is not a queue");
        // The same found by bus address.
        let irqs = interface_irqs(&l, "ens1f0np0", &["0000:3b:00.0".into()], &BTreeSet::new());
        assert_eq!(irqs.len(), 4);
    }

    #[test]
    fn ixgbe_by_name_and_not_a_longer_name() {
        let l = parse_interrupts(include_str!("fixtures/interrupts_ixgbe.txt"));
        let irqs = interface_irqs(&l, "eth3", &[], &BTreeSet::new());
        assert_eq!(
            irqs.iter().map(|l| l.irq).collect::<Vec<_>>(),
            vec![64, 65, 66, 67]
        );
        let irqs = interface_irqs(&l, "eth30", &[], &BTreeSet::new());
        assert_eq!(irqs.iter().map(|l| l.irq).collect::<Vec<_>>(), vec![70]);
        assert_eq!(irqs[0].busy_cpus(), CpuSet::from([0, 1]));
    }

    #[test]
    fn offline_cpus_keep_their_numbers() {
        let l = parse_interrupts(include_str!("fixtures/interrupts_cpu1_offline.txt"));
        assert_eq!(l[0].counts, vec![(0, 100), (2, 200), (3, 300)]);
        assert!(parse_interrupts("").is_empty());
    }

    fn qi(line: &IrqLine, eff: &[u32]) -> QueueIrq {
        QueueIrq {
            line: line.clone(),
            allowed: None,
            effective: Some(eff.iter().copied().collect()),
        }
    }

    #[test]
    fn all_queues_on_one_cpu_is_a_warning() {
        let l = parse_interrupts(include_str!("fixtures/interrupts_mlx5.txt"));
        let q: Vec<QueueIrq> = l
            .iter()
            .filter(|l| (121..=124).contains(&l.irq))
            .map(|l| qi(l, &[0]))
            .collect();
        let mut n = good_nic();
        n.node_cpus = Some((0..4).collect());
        let fs = check_nic(&n, &q, &host(8));
        assert_eq!(fs[0].level, Level::Warn);
        assert_eq!(
            fs[0].fix.as_deref(),
            Some("echo 0 > /proc/irq/121/smp_affinity_list; echo 1 > /proc/irq/122/smp_affinity_list; echo 2 > /proc/irq/123/smp_affinity_list; echo 3 > /proc/irq/124/smp_affinity_list")
        );
    }

    #[test]
    fn spread_queues_are_ok_but_numa_matters() {
        let l = parse_interrupts(include_str!("fixtures/interrupts_ixgbe.txt"));
        let q: Vec<QueueIrq> = l
            .iter()
            .filter(|l| (64..=67).contains(&l.irq))
            .map(|l| qi(l, &[l.irq - 64]))
            .collect();
        let mut n = good_nic();
        n.node_cpus = Some((0..4).collect());
        let fs = check_nic(&n, &q, &host(4));
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].level, Level::Ok);
        n.node_cpus = Some((2..4).collect());
        let fs = check_nic(&n, &q, &host(4));
        assert_eq!(fs[1].level, Level::Warn);
        assert!(fs[1].value.starts_with("CPUs 0-1 outside node 0"));
    }

    #[test]
    fn veth_has_no_interrupts() {
        let fs = check_nic(&veth(), &[], &host(2));
        assert_eq!(fs[0].value, "none");
        assert!(fs[0].why.contains("veth"));
    }

    #[test]
    fn irqbalance_finding() {
        let fs = check_host(&IrqFacts {
            lines: Ok(vec![]),
            irqbalance: Ok(true),
        });
        assert_eq!(fs[0].fix.as_deref(), Some("systemctl stop irqbalance"));
        let fs = check_host(&IrqFacts {
            lines: Ok(vec![]),
            irqbalance: Ok(false),
        });
        assert_eq!(fs[0].level, Level::Ok);
    }

    #[test]
    fn is_queue_irq_names() {
        for y in [
            "eth3-TxRx-0",
            "virtio2-input.0",
            "mlx5_comp3@pci:0000:3b:00.0",
            "eth0-rx-1",
            "i40e-eth0-TxRx-12",
            "ens5-Tx-Rx-3",
        ] {
            assert!(is_queue_irq(y), "{y}");
        }
        for n in [
            "virtio2-config",
            "mlx5_async0@pci:0000:3b:00.0",
            "eth3",
            "timer",
            "virtio3-event",
        ] {
            assert!(!is_queue_irq(n), "{n}");
        }
    }
}
