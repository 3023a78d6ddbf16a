//! The per-interface checks: pure functions over a [`Nic`].

use pktio_host::cpu as cpus;
use pktio_host::netlink::ethtool::{Features, Rings};

use super::super::finding::{Action, Area, Finding, Level};
use super::super::rtnl::XdpMode;
use super::{HostCtx, Nic, L2_OVERHEAD, XDP_HEADROOM};

/// All per-interface findings (area `nic`).
pub fn check(n: &Nic, h: &HostCtx) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(check_link(n));
    out.push(check_driver(n));
    out.extend(check_queues(n, h));
    out.extend(check_rings(n));
    out.push(check_coalesce(n));
    out.extend(check_offloads(n));
    out.push(check_mtu(n, h));
    out.extend(check_xdp(n));
    out.push(check_promisc(n));
    out.push(check_numa(n));
    out.extend(check_drops(n));
    out.extend(check_qdisc(n));
    out
}

fn nf(
    n: &Nic,
    level: Level,
    what: &str,
    value: impl Into<String>,
    why: impl Into<String>,
) -> Finding {
    Finding::new(Area::Nic, level, format!("{} {what}", n.name()), value, why)
}

/// Link state: down, no carrier, or up.
pub fn check_link(n: &Nic) -> Finding {
    let l = &n.link;
    let value = format!(
        "{}{}, operstate {}",
        if l.up { "up" } else { "down" },
        if l.lower_up {
            ", carrier"
        } else {
            ", no carrier"
        },
        if l.oper_state.is_empty() {
            "?"
        } else {
            &l.oper_state
        }
    );
    if !l.up {
        nf(
            n,
            Level::Note,
            "link",
            value,
            "The interface is administratively down: it receives nothing.",
        )
        .fix(format!("ip link set dev {} up", n.name()))
    } else if !l.lower_up {
        nf(
            n,
            Level::Warn,
            "link",
            value,
            "The interface is up but has no carrier (cable, peer or switch port): nothing arrives.",
        )
    } else {
        nf(n, Level::Ok, "link", value, "Up with carrier.")
    }
}

fn check_driver(n: &Nic) -> Finding {
    match &n.driver {
        Some(d) => {
            let value = match &n.bus_info {
                Some(b) => format!("{d} ({b})"),
                None => d.clone(),
            };
            nf(n, Level::Ok, "driver", value, "The driver decides which XDP modes, queues and offloads exist.")
        }
        None => nf(n, Level::Note, "driver", "unknown", "Neither ethtool nor sysfs names a driver for this interface; the checks below use only what the kernel reports."),
    }
}

fn check_queues(n: &Nic, h: &HostCtx) -> Vec<Finding> {
    let ncpu = h.online.len().max(1) as u32;
    let mut out = Vec::new();
    match &n.channels {
        Ok(c) => {
            let (cur, max) = (c.rx_queues(), c.rx_queues_max());
            let mut parts = Vec::new();
            for (word, cur, max) in [
                ("rx", c.rx, c.rx_max),
                ("tx", c.tx, c.tx_max),
                ("combined", c.combined, c.combined_max),
            ] {
                if max > 0 || cur > 0 {
                    parts.push(format!("{word} {cur} of {max}"));
                }
            }
            let value = format!("{} (CPUs {ncpu})", parts.join(", "));
            let want = max.min(ncpu);
            if cur < want {
                let fix = if c.combined_max > 0 && c.rx_max == 0 {
                    format!("ethtool -L {} combined {want}", n.name())
                } else {
                    format!("ethtool -L {} rx {want} tx {want}", n.name())
                };
                out.push(nf(n, Level::Warn, "queues", value, format!(
                    "Only {cur} receive queue(s) in use while the NIC allows {max} and {ncpu} CPUs are online: RSS can spread packets (and their interrupts) over at most {cur} CPU(s); use as many queues as CPUs, or the NIC maximum if lower.")).fix(fix));
            } else {
                out.push(nf(
                    n,
                    Level::Ok,
                    "queues",
                    value,
                    "Enough receive queues for RSS to spread the load over the CPUs.",
                ));
            }
        }
        Err(e) => {
            let q = n.link.num_rx_queues.unwrap_or(1);
            out.push(nf(n, Level::Note, "queues", format!("{q} allocated"), format!("The driver does not report channels ({e}); RSS spread cannot be changed with ethtool -L.")));
        }
    }
    if let Ok(r) = &n.rss {
        if !r.indir.is_empty() {
            let used = r.queues();
            let cur = n.rx_queue_count();
            let value = format!(
                "{} buckets over queues {}",
                r.indir.len(),
                cpus::format_list(&used)
            );
            if (used.len() as u32) < cur {
                out.push(nf(n, Level::Warn, "RSS table", value, format!("The RSS indirection table sends flows to only {} of the {cur} receive queues: the others stay idle.", used.len()))
                    .fix(format!("ethtool -X {} equal {cur}", n.name())));
            } else {
                out.push(nf(
                    n,
                    Level::Ok,
                    "RSS table",
                    value,
                    "The RSS indirection table spreads flows over every receive queue.",
                ));
            }
        }
    }
    out
}

fn drops_at_nic(n: &Nic) -> u64 {
    let s = &n.link.stats;
    s.rx_missed + s.rx_fifo + s.rx_over
}

fn check_rings(n: &Nic) -> Vec<Finding> {
    let r = match &n.rings {
        Ok(r) => r,
        Err(e) => {
            return vec![nf(n, Level::Ok, "rings", "not reported", format!("The driver has no descriptor rings to size ({e}); virtual devices queue in software."))];
        }
    };
    let (Some(rx), Some(rx_max)) = (r.rx, r.rx_max) else {
        return vec![nf(
            n,
            Level::Ok,
            "rings",
            "not reported",
            "The driver reports no RX ring size.",
        )];
    };
    let value = format!("rx {rx} of {rx_max}, tx {} of {}", opt(r.tx), opt(r.tx_max));
    let missed = drops_at_nic(n);
    let grow_tx = match (r.tx, r.tx_max) {
        (Some(t), Some(m)) if t < m => Some(m),
        _ => None,
    };
    let action = Action::Rings {
        ifname: n.name().to_string(),
        ifindex: n.link.ifindex,
        rx: Some(rx_max),
        tx: grow_tx,
    };
    if rx < rx_max && missed > 0 {
        vec![nf(n, Level::Warn, "rings", value, format!("The NIC ran out of RX descriptors {missed} times (missed/fifo/overrun): a burst longer than the {rx}-entry ring is dropped before the kernel sees it; a larger ring gives the kernel more time to drain it, at a small latency cost.")).action(action)]
    } else if rx < rx_max {
        vec![nf(n, Level::Note, "rings", value, "The RX ring is smaller than the NIC allows; no drops so far, but if drops appear, a larger ring absorbs bursts (more latency under load).").action(action)]
    } else if missed > 0 {
        vec![nf(n, Level::Warn, "rings", value, format!("The ring is at its maximum and the NIC still missed {missed} packets: the CPUs drain it too slowly; spread over more queues/CPUs or lower the per-packet cost."))]
    } else {
        vec![nf(
            n,
            Level::Ok,
            "rings",
            value,
            "The RX ring is at the NIC's maximum.",
        )]
    }
}

fn opt(v: Option<u32>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

fn check_coalesce(n: &Nic) -> Finding {
    let c = match &n.coalesce {
        Ok(c) => c,
        Err(e) => return nf(n, Level::Ok, "coalescing", "not reported", format!("No interrupt coalescing settings ({e}); virtual devices have no interrupts to coalesce.")),
    };
    let adaptive = c.adaptive_rx.unwrap_or(false);
    let value = format!(
        "rx-usecs {}, rx-frames {}, adaptive-rx {}",
        opt(c.rx_usecs),
        opt(c.rx_frames),
        if adaptive { "on" } else { "off" }
    );
    let per_packet = c.rx_usecs.unwrap_or(0) == 0 && c.rx_frames.unwrap_or(1) <= 1;
    if !adaptive && per_packet {
        nf(n, Level::Note, "coalescing", value, "The NIC interrupts for every packet: the lowest latency but the most interrupts; at high packet rates let it batch (adaptive mode, or some microseconds/frames) to save CPU.")
            .fix(format!("ethtool -C {} adaptive-rx on", n.name()))
    } else {
        nf(n, Level::Ok, "coalescing", value, "Interrupts are batched: fewer interrupts at some latency; lower rx-usecs for latency-sensitive traffic.")
    }
}

fn check_offloads(n: &Nic) -> Vec<Finding> {
    let f: &Features = match &n.features {
        Ok(f) => f,
        Err(e) => {
            return vec![Finding::unreadable(
                Area::Nic,
                format!("{} offloads", n.name()),
                "offload features",
                e,
            )]
        }
    };
    let on = |k: &str| if f.on(k) { "on" } else { "off" };
    let value = format!(
        "gro {}, gso {}, tso {}, lro {}, rx-checksum {}",
        on("rx-gro"),
        on("tx-generic-segmentation"),
        on("tx-tcp-segmentation"),
        on("rx-lro"),
        on("rx-checksum")
    );
    let mut out = Vec::new();
    if f.on("rx-lro") {
        out.push(nf(n, Level::Warn, "LRO", "on", "LRO merges packets in the NIC: XDP cannot run on merged frames (native attach fails or the kernel turns it off) and merged packets break forwarding; GRO gives the same saving safely.")
            .fix(format!("ethtool -K {} lro off", n.name())));
    }
    let mut off = Vec::new();
    for (k, word) in [
        ("rx-gro", "gro"),
        ("tx-generic-segmentation", "gso"),
        ("tx-tcp-segmentation", "tso"),
        ("rx-checksum", "rx"),
    ] {
        if !f.on(k) && f.changeable(k) {
            off.push(word);
        }
    }
    if off.is_empty() {
        out.push(nf(n, Level::Ok, "offloads", value, "Batching offloads are on: fewer, larger packets climb the stack (XDP and AF_XDP see frames before GRO)."));
    } else {
        let args: Vec<String> = off.iter().map(|w| format!("{w} on")).collect();
        out.push(nf(n, Level::Note, "offloads", value, format!("{} off: each small packet climbs the stack alone (GRO) or is segmented by the CPU (GSO/TSO); this matters for socket traffic, not for AF_XDP.", off.join(", ")))
            .fix(format!("ethtool -K {} {}", n.name(), args.join(" "))));
    }
    out
}

fn check_mtu(n: &Nic, h: &HostCtx) -> Finding {
    let mtu = n.link.mtu;
    let need = mtu + L2_OVERHEAD;
    let room = h.max_frame();
    let value = format!(
        "MTU {mtu} (frame up to {need} B) vs {room} B per UMEM frame ({} - {XDP_HEADROOM} headroom{})",
        h.frame_size,
        if h.headroom > 0 { format!(" - {}", h.headroom) } else { String::new() }
    );
    let sg = n.xdp.as_ref().map(|x| x.rx_sg()).unwrap_or(false);
    if need <= room {
        nf(
            n,
            Level::Ok,
            "MTU",
            value,
            "Every frame fits in one UMEM frame.",
        )
    } else if sg {
        nf(n, Level::Note, "MTU", value, "Frames can be larger than one UMEM frame: AF_XDP receives them only with multi-buffer (bind with XDP_USE_SG and handle fragments); otherwise they are dropped.")
            .fix(format!("ip link set dev {} mtu {}", n.name(), room - L2_OVERHEAD))
    } else {
        nf(n, Level::Problem, "MTU", value, "Frames larger than one UMEM frame cannot be received by AF_XDP on this driver (no multi-buffer): they are dropped; lower the MTU or use larger frames.")
            .fix(format!("ip link set dev {} mtu {}", n.name(), room - L2_OVERHEAD))
    }
}

fn check_xdp(n: &Nic) -> Vec<Finding> {
    let mut out = Vec::new();
    match &n.xdp {
        Ok(x) => {
            if x.native() {
                out.push(nf(n, Level::Ok, "native XDP", "yes", "The driver runs XDP before allocating an skb: AF_XDP can redirect at full speed."));
            } else {
                out.push(nf(n, Level::Warn, "native XDP", "no", "Only generic (skb) XDP: every packet gets an skb before the program runs, so AF_XDP is several times slower than native."));
            }
            if x.zero_copy() {
                out.push(nf(
                    n,
                    Level::Ok,
                    "AF_XDP zero-copy",
                    "yes",
                    "The NIC can DMA straight into the UMEM: no copy per packet.",
                ));
            } else {
                out.push(nf(n, Level::Note, "AF_XDP zero-copy", "no", "AF_XDP works in copy mode: each frame is copied into the UMEM (zero-copy bind fails with EOPNOTSUPP)."));
            }
            let md = x.rx_metadata_names();
            let xsk = x.xsk_names();
            let value = format!(
                "multi-buffer {}, zc max segs {}, rx metadata [{}], tx metadata [{}]",
                if x.rx_sg() { "yes" } else { "no" },
                x.zc_max_segs.map_or("-".into(), |v| v.to_string()),
                md.join(", "),
                xsk.join(", ")
            );
            out.push(nf(
                n,
                Level::Ok,
                "XDP extras",
                value,
                format!("XDP actions: {}.", x.xdp_names().join(", ")),
            ));
        }
        Err(e) => {
            out.push(nf(n, Level::Note, "XDP features", "unknown", format!("netdev netlink did not answer ({e}); it needs Linux 6.3+. Native XDP support is then only found by attaching.")));
        }
    }
    let l = &n.link;
    let prog = l
        .xdp_prog_id
        .map_or(String::new(), |id| format!(" (prog id {id})"));
    let value = format!("{}{prog}", l.xdp_mode.word());
    let native_ok = n.xdp.as_ref().map(|x| x.native()).unwrap_or(false);
    out.push(match l.xdp_mode {
        XdpMode::None => nf(n, Level::Ok, "XDP program", value, "No XDP program attached: an AF_XDP socket on this interface receives nothing until one redirects to it."),
        XdpMode::Skb if native_ok => nf(n, Level::Warn, "XDP program", value, "The program runs in generic (skb) mode although the driver supports native XDP: every packet pays for an skb first.")
            .fix(format!("detach it (ip link set dev {} xdpgeneric off) and attach in native mode", n.name())),
        _ => nf(n, Level::Ok, "XDP program", value, "An XDP program is attached."),
    });
    out
}

fn check_promisc(n: &Nic) -> Finding {
    let l = &n.link;
    if l.promisc {
        nf(n, Level::Note, "promiscuous", format!("on (promiscuity {})", l.promiscuity), "The NIC passes frames for every MAC address up: more work per second; needed only when traffic is not addressed to this MAC.")
            .fix(format!("ip link set dev {} promisc off", n.name()))
    } else {
        nf(
            n,
            Level::Ok,
            "promiscuous",
            "off",
            format!(
                "Only frames for {} (and broadcast/multicast) are accepted by the NIC.",
                mac(&l.mac)
            ),
        )
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(b: &[u8]) -> String {
    if b.is_empty() {
        return "this MAC".into();
    }
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn check_numa(n: &Nic) -> Finding {
    match (n.numa_node, &n.node_cpus) {
        (Some(node), Some(cpus)) if node >= 0 => nf(n, Level::Ok, "NUMA", format!("node {node} (CPUs {})", cpus::format_list(cpus)), "Keep this interface's interrupts, NAPI and the application on these CPUs: memory on another node is slower."),
        _ => nf(n, Level::Ok, "NUMA", "no locality", "The device has no NUMA node: any CPU is as close as another."),
    }
}

fn check_drops(n: &Nic) -> Vec<Finding> {
    let s = &n.link.stats;
    let mut out = Vec::new();
    let nicd = drops_at_nic(n);
    if nicd > 0 {
        let fix = match &n.rings {
            Ok(Rings {
                rx: Some(rx),
                rx_max: Some(m),
                ..
            }) if rx < m => Some(format!("ethtool -G {} rx {m}", n.name())),
            _ => None,
        };
        let mut f = nf(n, Level::Warn, "NIC drops", format!("missed {} fifo {} over {} (since boot)", s.rx_missed, s.rx_fifo, s.rx_over), "The NIC dropped packets because its RX ring was full: the kernel did not drain it fast enough (see rings, queues, coalescing; --watch shows whether it still grows).");
        if let Some(x) = fix {
            f = f.fix(x);
        }
        out.push(f);
    }
    let value = format!(
        "rx {} packets, dropped {}; tx {} packets, dropped {}",
        s.rx_packets, s.rx_dropped, s.tx_packets, s.tx_dropped
    );
    if s.rx_dropped > 0 {
        out.push(nf(n, Level::Note, "drops", value, "The kernel dropped received packets (no matching protocol or socket, backlog full, or XDP/filters dropping); --watch shows whether it still grows."));
    } else {
        out.push(nf(
            n,
            Level::Ok,
            "drops",
            value,
            "No receive drops counted.",
        ));
    }
    out
}

fn check_qdisc(n: &Nic) -> Vec<Finding> {
    let txq = n
        .link
        .txqlen
        .map_or(String::new(), |t| format!(", txqueuelen {t}"));
    match &n.qdiscs {
        Ok(qs) => {
            let root = qs.iter().find(|q| q.root).or(qs.first());
            let kind = root
                .map(|q| q.kind.clone())
                .or(n.link.qdisc.clone())
                .unwrap_or("?".into());
            let drops: u64 = qs.iter().map(|q| q.drops).sum();
            let value = format!("{kind}{txq}, {drops} dropped");
            if drops > 0 {
                vec![nf(n, Level::Warn, "qdisc", value, format!("The transmit qdisc dropped {drops} packets: bursts overflow txqueuelen or the qdisc's limit; a longer queue absorbs them (at the cost of queueing delay)."))
                    .fix(format!("ip link set dev {} txqueuelen 10000", n.name()))]
            } else {
                vec![nf(
                    n,
                    Level::Ok,
                    "qdisc",
                    value,
                    "No transmit queueing drops.",
                )]
            }
        }
        Err(e) => vec![Finding::unreadable(
            Area::Nic,
            format!("{} qdisc", n.name()),
            "the qdisc statistics",
            e,
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::finding::Unavailable;
    use super::super::fixtures::{bad_nic, good_nic, host, veth};
    use super::super::HostCtx;
    use super::*;

    fn find<'a>(fs: &'a [Finding], name: &str) -> &'a Finding {
        fs.iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no finding {name} in {fs:#?}"))
    }

    #[test]
    fn veth_reports_native_xdp_yes_zero_copy_no_and_queue_counts() {
        let fs = check(&veth(), &host(2));
        assert_eq!(find(&fs, "vrx native XDP").value, "yes");
        assert_eq!(find(&fs, "vrx AF_XDP zero-copy").value, "no");
        let q = find(&fs, "vrx queues");
        assert!(q.value.starts_with("rx 1 of 2"), "{}", q.value);
        assert_eq!(q.level, Level::Warn);
        assert_eq!(q.fix.as_deref(), Some("ethtool -L vrx rx 2 tx 2"));
        assert_eq!(find(&fs, "vrx rings").level, Level::Ok);
        assert_eq!(find(&fs, "vrx MTU").level, Level::Ok);
        let off = find(&fs, "vrx offloads");
        assert_eq!(off.level, Level::Note);
        assert_eq!(off.fix.as_deref(), Some("ethtool -K vrx gro on"));
        assert!(fs.iter().all(|f| f.level < Level::Problem));
    }

    #[test]
    fn good_host_nic_is_all_ok() {
        let fs = check(&good_nic(), &host(8));
        let not_ok: Vec<_> = fs.iter().filter(|f| f.level != Level::Ok).collect();
        assert!(not_ok.is_empty(), "{not_ok:#?}");
        assert!(find(&fs, "eth0 RSS table").value.contains("queues 0-7"));
        assert!(find(&fs, "eth0 NUMA").value.contains("node 0"));
    }

    #[test]
    fn bad_host_nic_finds_every_fault() {
        let fs = check(&bad_nic(), &host(8));
        let q = find(&fs, "eth1 queues");
        assert_eq!(
            (q.level, q.fix.as_deref()),
            (Level::Warn, Some("ethtool -L eth1 combined 8"))
        );
        assert_eq!(find(&fs, "eth1 RSS table").level, Level::Warn);
        let r = find(&fs, "eth1 rings");
        assert_eq!(r.level, Level::Warn);
        assert_eq!(r.fix.as_deref(), Some("ethtool -G eth1 rx 4096 tx 4096"));
        assert!(matches!(
            r.action,
            Some(Action::Rings {
                rx: Some(4096),
                tx: Some(4096),
                ..
            })
        ));
        assert_eq!(
            find(&fs, "eth1 coalescing").fix.as_deref(),
            Some("ethtool -C eth1 adaptive-rx on")
        );
        assert_eq!(
            find(&fs, "eth1 LRO").fix.as_deref(),
            Some("ethtool -K eth1 lro off")
        );
        assert_eq!(find(&fs, "eth1 native XDP").level, Level::Warn);
        let m = find(&fs, "eth1 MTU");
        assert_eq!(m.level, Level::Problem);
        assert_eq!(m.fix.as_deref(), Some("ip link set dev eth1 mtu 3822"));
        assert_eq!(find(&fs, "eth1 promiscuous").level, Level::Note);
        assert_eq!(
            find(&fs, "eth1 NIC drops").fix.as_deref(),
            Some("ethtool -G eth1 rx 4096")
        );
        assert_eq!(find(&fs, "eth1 qdisc").level, Level::Warn);
        // Native XDP unsupported here, so skb mode is not flagged as wrong.
        assert_eq!(find(&fs, "eth1 XDP program").level, Level::Ok);
    }

    #[test]
    fn skb_mode_when_native_is_possible_is_a_warning() {
        let mut n = good_nic();
        n.link.xdp_mode = XdpMode::Skb;
        let fs = check(&n, &host(8));
        assert_eq!(find(&fs, "eth0 XDP program").level, Level::Warn);
    }

    #[test]
    fn jumbo_mtu_with_multibuffer_is_a_note() {
        let mut n = veth();
        n.link.mtu = 9000;
        let fs = check(&n, &host(2));
        assert_eq!(find(&fs, "vrx MTU").level, Level::Note);
        // Larger frames fit.
        let h = HostCtx {
            frame_size: 16384,
            ..host(2)
        };
        assert_eq!(find(&check(&n, &h), "vrx MTU").level, Level::Ok);
    }

    #[test]
    fn unknown_driver_fields_do_not_break_checks() {
        let mut n = veth();
        n.driver = None;
        n.channels = Err(Unavailable::Denied("ethtool netlink".into()));
        n.features = Err(Unavailable::Denied("ethtool netlink".into()));
        n.xdp = Err(Unavailable::Missing("netdev netlink".into()));
        n.qdiscs = Err(Unavailable::Other("x".into()));
        let fs = check(&n, &host(2));
        assert_eq!(find(&fs, "vrx driver").value, "unknown");
        assert_eq!(find(&fs, "vrx offloads").level, Level::Warn);
        assert_eq!(find(&fs, "vrx XDP features").level, Level::Note);
        assert_eq!(find(&fs, "vrx queues").value, "2 allocated");
    }
}
