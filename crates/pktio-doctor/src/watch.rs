//! `--watch SECONDS`: rates instead of counters. Samples softnet_stat and
//! the interfaces' counters every interval and prints per-second rates
//! (processed / dropped / squeezed per CPU; packets and drops per
//! interface), plus the findings the deltas show (drops or squeezes that
//! are still growing). [`run`] hands each report to the caller, which
//! prints it; it runs until the process ends, or for `count` reports.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::finding::{Finding, Level};
use super::rtnl::{Link, LinkStats, Rtnl};
use super::stack::{self, Softnet};
use super::sysctl::Sysctls;

/// One reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// softnet_stat rows.
    pub softnet: Vec<Softnet>,
    /// Interface name and counters.
    pub links: Vec<(String, LinkStats)>,
}

/// Per-CPU rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuRate {
    /// CPU number.
    pub cpu: u32,
    /// Frames processed per second.
    pub processed: f64,
    /// Backlog drops per second.
    pub dropped: f64,
    /// Budget squeezes per second.
    pub squeezed: f64,
}

/// Per-interface rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IfRate {
    /// Interface.
    pub ifname: String,
    /// Received packets per second.
    pub rx_pps: f64,
    /// Receive drops per second (kernel drops + NIC missed/fifo/overrun).
    pub rx_drops: f64,
    /// Transmitted packets per second.
    pub tx_pps: f64,
    /// Transmit drops per second.
    pub tx_drops: f64,
}

/// Rates between two samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// Seconds between the samples.
    pub seconds: f64,
    /// Per CPU.
    pub cpus: Vec<CpuRate>,
    /// Per interface.
    pub interfaces: Vec<IfRate>,
}

/// Computes rates and the per-CPU deltas (for the checks).
pub fn rates(a: &Sample, b: &Sample, seconds: f64) -> (Rates, Vec<Softnet>) {
    let s = seconds.max(1e-9);
    let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / s;
    let mut deltas = Vec::new();
    let mut cpus = Vec::new();
    for nb in &b.softnet {
        let na = a
            .softnet
            .iter()
            .find(|r| r.cpu == nb.cpu)
            .copied()
            .unwrap_or_default();
        deltas.push(Softnet {
            cpu: nb.cpu,
            processed: nb.processed.saturating_sub(na.processed),
            dropped: nb.dropped.saturating_sub(na.dropped),
            squeezed: nb.squeezed.saturating_sub(na.squeezed),
            received_rps: nb.received_rps.saturating_sub(na.received_rps),
            flow_limit: nb.flow_limit.saturating_sub(na.flow_limit),
        });
        cpus.push(CpuRate {
            cpu: nb.cpu,
            processed: per(na.processed, nb.processed),
            dropped: per(na.dropped, nb.dropped),
            squeezed: per(na.squeezed, nb.squeezed),
        });
    }
    let mut interfaces = Vec::new();
    for (name, lb) in &b.links {
        let Some((_, la)) = a.links.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let rxd = |l: &LinkStats| l.rx_dropped + l.rx_missed + l.rx_fifo + l.rx_over;
        interfaces.push(IfRate {
            ifname: name.clone(),
            rx_pps: per(la.rx_packets, lb.rx_packets),
            rx_drops: per(rxd(la), rxd(lb)),
            tx_pps: per(la.tx_packets, lb.tx_packets),
            tx_drops: per(la.tx_dropped, lb.tx_dropped),
        });
    }
    (
        Rates {
            seconds,
            cpus,
            interfaces,
        },
        deltas,
    )
}

fn num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The rates as two small tables.
pub fn render(r: &Rates, findings: &[Finding]) -> String {
    let mut out = format!("-- rates over the last {:.1} s --\n", r.seconds);
    out.push_str(&format!(
        "{:<6} {:>12} {:>12} {:>12}\n",
        "CPU", "processed/s", "dropped/s", "squeezed/s"
    ));
    for c in &r.cpus {
        out.push_str(&format!(
            "{:<6} {:>12} {:>12} {:>12}\n",
            format!("CPU{}", c.cpu),
            num(c.processed),
            num(c.dropped),
            num(c.squeezed)
        ));
    }
    if !r.interfaces.is_empty() {
        let w = r
            .interfaces
            .iter()
            .map(|i| i.ifname.len())
            .max()
            .unwrap_or(9)
            .max(9);
        out.push_str(&format!(
            "{:<w$} {:>12} {:>12} {:>12} {:>12}\n",
            "INTERFACE", "rx pkt/s", "rx drop/s", "tx pkt/s", "tx drop/s"
        ));
        for i in &r.interfaces {
            out.push_str(&format!(
                "{:<w$} {:>12} {:>12} {:>12} {:>12}\n",
                i.ifname,
                num(i.rx_pps),
                num(i.rx_drops),
                num(i.tx_pps),
                num(i.tx_drops)
            ));
        }
    }
    for f in findings {
        out.push_str(&format!("{:<8} {}  {}\n", f.level.word(), f.name, f.value));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("         fix: {fix}\n"));
        }
    }
    out
}

fn take(rt: &mut Rtnl, names: &[String]) -> anyhow::Result<Sample> {
    let softnet = stack::read_softnet()
        .map_err(|e| anyhow::anyhow!("cannot read /proc/net/softnet_stat: {e}"))?;
    let mut links = Vec::new();
    for n in names {
        let l: Link = rt
            .link_by_name(n)
            .map_err(|e| anyhow::anyhow!("interface {n}: {e}"))?;
        links.push((n.clone(), l.stats));
    }
    Ok(Sample { softnet, links })
}

/// One report: the rates over the last interval and the findings they
/// show (warnings and problems only). Serialised, one line of
/// `--watch --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Rates over the last interval.
    pub rates: Rates,
    /// Drops or squeezes still growing.
    pub findings: Vec<Finding>,
}

impl std::fmt::Display for Report {
    /// The text form: [`render`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&render(&self.rates, &self.findings))
    }
}

/// Samples the interfaces `names` every `every` and hands each [`Report`]
/// to `report`, `count` times (forever without it), or until `report`
/// fails.
///
/// # Errors
/// Unreadable softnet_stat, a vanished interface, or `report`'s error.
pub fn run(
    names: &[String],
    every: Duration,
    count: Option<u64>,
    mut report: impl FnMut(&Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut rt = Rtnl::open()?;
    let sys = Sysctls::read();
    let mut prev = take(&mut rt, names)?;
    let mut t0 = Instant::now();
    let mut done = 0u64;
    while count.map_or(true, |c| done < c) {
        std::thread::sleep(every);
        let next = take(&mut rt, names)?;
        let now = Instant::now();
        let secs = now.duration_since(t0).as_secs_f64();
        let (rates, deltas) = rates(&prev, &next, secs);
        let window = format!("last {secs:.1} s");
        let findings: Vec<Finding> = stack::check_softnet(&deltas, &sys, &window)
            .into_iter()
            .filter(|f| f.level > Level::Ok)
            .collect();
        report(&Report { rates, findings })?;
        prev = next;
        t0 = now;
        done += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(cpu: u32, processed: u64, dropped: u64, squeezed: u64) -> Softnet {
        Softnet {
            cpu,
            processed,
            dropped,
            squeezed,
            ..Softnet::default()
        }
    }

    #[test]
    fn rates_are_deltas_per_second() {
        let a = Sample {
            softnet: vec![sn(0, 1000, 0, 0), sn(1, 5000, 10, 2)],
            links: vec![(
                "eth0".into(),
                LinkStats {
                    rx_packets: 100,
                    tx_packets: 50,
                    ..LinkStats::default()
                },
            )],
        };
        let b = Sample {
            softnet: vec![sn(0, 3000, 0, 0), sn(1, 9000, 30, 2)],
            links: vec![(
                "eth0".into(),
                LinkStats {
                    rx_packets: 2100,
                    tx_packets: 50,
                    rx_missed: 4,
                    ..LinkStats::default()
                },
            )],
        };
        let (r, d) = rates(&a, &b, 2.0);
        assert_eq!(r.cpus[0].processed, 1000.0);
        assert_eq!(r.cpus[1].dropped, 10.0);
        assert_eq!(r.cpus[1].squeezed, 0.0);
        assert_eq!(r.interfaces[0].rx_pps, 1000.0);
        assert_eq!(r.interfaces[0].rx_drops, 2.0);
        assert_eq!(d[1].dropped, 20);
        // The deltas feed the softnet check: drops are still growing.
        let f = stack::check_softnet(
            &d,
            &Sysctls::parse("net.core.netdev_max_backlog = 1000"),
            "last 2.0 s",
        );
        let drops = f.iter().find(|f| f.name == "backlog drops").unwrap();
        assert_eq!(drops.value, "CPU1 20 (last 2.0 s)");
        let text = render(&r, &f);
        assert!(text.contains("CPU1"));
        assert!(text.contains("eth0"));
    }

    #[test]
    fn counters_going_backwards_do_not_underflow() {
        let a = Sample {
            softnet: vec![sn(0, 10, 5, 5)],
            links: vec![],
        };
        let b = Sample {
            softnet: vec![sn(0, 1, 0, 0)],
            links: vec![],
        };
        let (r, _) = rates(&a, &b, 1.0);
        assert_eq!(r.cpus[0].processed, 0.0);
    }

    #[test]
    fn number_format() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12_345.0), "12.3k");
        assert_eq!(num(3_480_000.0), "3.48M");
    }
}
