//! One network interface: driver, queues and RSS spread, ring sizes,
//! interrupt coalescing, offloads, MTU against the UMEM frame, XDP features
//! and the attached program, promiscuous mode, NUMA node, drops, qdisc.
//!
//! [`gather`] reads (rtnetlink, ethtool netlink, netdev netlink, the
//! `SIOCETHTOOL` driver info, sysfs) and never fails: what it cannot read
//! becomes an [`Unavailable`]. [`check()`] is pure.

mod check;
#[cfg(test)]
pub(crate) mod fixtures;

pub use check::{check, check_link, mac};

use pktio_host::cpu::{self as cpus, CpuSet};
use pktio_host::netlink::ethtool::{Channels, Coalesce, Ethtool, Features, Rings, Rss};
use pktio_host::netlink::netdev::{DevFeatures, Netdev};

use super::ethtool_stats;
use super::finding::{read_trim, Got, Unavailable};
use super::rtnl::{Link, Qdisc, Rtnl};

/// Bytes the kernel reserves in front of every XDP frame (`XDP_PACKET_HEADROOM`).
pub const XDP_HEADROOM: u32 = 256;
/// Ethernet header plus one VLAN tag: what a frame adds to the MTU.
pub const L2_OVERHEAD: u32 = 18;

/// Host-wide facts the per-interface checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCtx {
    /// Online CPUs.
    pub online: CpuSet,
    /// UMEM frame size the user plans (`--frame-size`).
    pub frame_size: u32,
    /// UMEM headroom the user plans (`--headroom`).
    pub headroom: u32,
}

impl HostCtx {
    /// Largest frame (Ethernet header included) one UMEM frame holds.
    pub fn max_frame(&self) -> u32 {
        self.frame_size.saturating_sub(XDP_HEADROOM + self.headroom)
    }
}

/// Per-queue sysfs settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFiles {
    /// Queue index.
    pub index: u32,
    /// `rps_cpus` (rx) or `xps_cpus` (tx) mask text.
    pub mask: Option<String>,
    /// `rps_flow_cnt` (rx only).
    pub flow_cnt: Option<u32>,
}

/// Everything read about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// rtnetlink facts.
    pub link: Link,
    /// Driver name (ethtool driver info, sysfs, or the link kind).
    pub driver: Option<String>,
    /// Bus address of the device, if any.
    pub bus_info: Option<String>,
    /// `ethtool -l`.
    pub channels: Got<Channels>,
    /// `ethtool -g`.
    pub rings: Got<Rings>,
    /// `ethtool -c`.
    pub coalesce: Got<Coalesce>,
    /// `ethtool -k`.
    pub features: Got<Features>,
    /// `ethtool -x`.
    pub rss: Got<Rss>,
    /// netdev XDP features.
    pub xdp: Got<DevFeatures>,
    /// Qdiscs of the interface.
    pub qdiscs: Got<Vec<Qdisc>>,
    /// NUMA node of the device (`-1` or `None`: no locality).
    pub numa_node: Option<i32>,
    /// CPUs of that node.
    pub node_cpus: Option<CpuSet>,
    /// RX queues' `rps_cpus` / `rps_flow_cnt`.
    pub rx_queues: Got<Vec<QueueFiles>>,
    /// TX queues' `xps_cpus`.
    pub tx_queues: Got<Vec<QueueFiles>>,
    /// Canonical sysfs path of the device (for its MSI interrupts).
    pub device_path: Option<String>,
}

impl Nic {
    /// The interface name.
    pub fn name(&self) -> &str {
        &self.link.ifname
    }

    /// RX queues in use: channels when known, else the sysfs queue count,
    /// else the allocated count.
    pub fn rx_queue_count(&self) -> u32 {
        if let Ok(c) = &self.channels {
            if c.rx_queues() > 0 {
                return c.rx_queues();
            }
        }
        if let Ok(q) = &self.rx_queues {
            if !q.is_empty() {
                return q.len() as u32;
            }
        }
        self.link.num_rx_queues.unwrap_or(1)
    }
}

fn sysfs_dir(ifname: &str, ifindex: u32) -> Got<String> {
    let dir = format!("/sys/class/net/{ifname}");
    match read_trim(&format!("{dir}/ifindex")) {
        Ok(i) if i == ifindex.to_string() => Ok(dir),
        Ok(_) | Err(Unavailable::Missing(_)) => Err(Unavailable::Missing(
            "sysfs shows another network namespace (run the doctor through `ip netns exec`, which remounts /sys)"
                .into(),
        )),
        Err(e) => Err(e),
    }
}

fn read_queues(dir: &str, prefix: &str, mask_file: &str) -> Got<Vec<QueueFiles>> {
    let qdir = format!("{dir}/queues");
    let rd = std::fs::read_dir(&qdir).map_err(|e| Unavailable::from_io(&qdir, &e))?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(idx) = name
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let base = format!("{qdir}/{name}");
        out.push(QueueFiles {
            index: idx,
            mask: read_trim(&format!("{base}/{mask_file}")).ok(),
            flow_cnt: read_trim(&format!("{base}/rps_flow_cnt"))
                .ok()
                .and_then(|s| s.parse().ok()),
        });
    }
    out.sort_by_key(|q| q.index);
    Ok(out)
}

fn via_ethtool<T>(
    eth: &mut Got<Ethtool>,
    f: impl FnOnce(&mut Ethtool) -> pktio_host::Result<T>,
) -> Got<T> {
    match eth {
        Ok(e) => f(e).map_err(|err| Unavailable::from_host("ethtool netlink", err)),
        Err(u) => Err(u.clone()),
    }
}

/// Reads everything about `link`. Each source that fails is recorded, not fatal.
pub fn gather(rt: &mut Rtnl, eth: &mut Got<Ethtool>, nd: &mut Got<Netdev>, link: Link) -> Nic {
    let idx = link.ifindex;
    let channels = via_ethtool(eth, |e| e.channels(idx));
    let rings = via_ethtool(eth, |e| e.rings(idx));
    let coalesce = via_ethtool(eth, |e| e.coalesce(idx));
    let features = via_ethtool(eth, |e| e.features(idx));
    let rss = via_ethtool(eth, |e| e.rss(idx));
    let xdp = match nd {
        Ok(n) => n
            .dev(idx)
            .map_err(|e| Unavailable::from_host("netdev netlink", e)),
        Err(u) => Err(u.clone()),
    };
    let qdiscs = rt
        .qdiscs(idx)
        .map_err(|e| Unavailable::from_io("qdisc dump", &e));

    let info = ethtool_stats::read(&link.ifname).ok();
    let dir = sysfs_dir(&link.ifname, idx);
    let (mut driver, mut bus_info) = (None, None);
    if let Some(i) = &info {
        if !i.driver.is_empty() {
            driver = Some(i.driver.clone());
        }
        if !i.bus_info.is_empty() && i.bus_info != "N/A" {
            bus_info = Some(i.bus_info.clone());
        }
    }
    let mut numa_node = None;
    let mut node_cpus = None;
    let mut device_path = None;
    if let Ok(d) = &dir {
        if driver.is_none() {
            driver = std::fs::read_link(format!("{d}/device/driver"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
        device_path = std::fs::canonicalize(format!("{d}/device"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        numa_node = find_numa_node(device_path.as_deref());
        if let Some(n) = numa_node.filter(|n| *n >= 0) {
            node_cpus = read_trim(&format!("/sys/devices/system/node/node{n}/cpulist"))
                .ok()
                .and_then(|s| cpus::parse_list(&s));
        }
    }
    if driver.is_none() {
        driver = link.kind.clone();
    }
    let rx_queues = dir.clone().and_then(|d| read_queues(&d, "rx-", "rps_cpus"));
    let tx_queues = dir.and_then(|d| read_queues(&d, "tx-", "xps_cpus"));
    Nic {
        link,
        driver,
        bus_info,
        channels,
        rings,
        coalesce,
        features,
        rss,
        xdp,
        qdiscs,
        numa_node,
        node_cpus,
        rx_queues,
        tx_queues,
        device_path,
    }
}

/// `numa_node` of the device or of its parent (virtio devices sit under a PCI
/// device that holds it).
fn find_numa_node(device: Option<&str>) -> Option<i32> {
    let mut p = std::path::PathBuf::from(device?);
    for _ in 0..2 {
        if let Ok(s) = read_trim(&format!("{}/numa_node", p.display())) {
            return s.parse().ok();
        }
        if !p.pop() {
            break;
        }
    }
    None
}
