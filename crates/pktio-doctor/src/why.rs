//! `pktio doctor --why-no-packets -i IF -q Q`: the AF_XDP checklist for one
//! queue, ending in a verdict and the fix.
//!
//! The usual reasons an AF_XDP socket receives nothing, checked in the order
//! a packet meets them: the interface is down; no XDP program (or it keeps
//! being replaced); the queue does not exist; the traffic lands on other
//! queues (RSS); the NIC filters it by MAC (promiscuous mode); the frame is
//! larger than a UMEM chunk; no socket is bound to the queue, or the program
//! does not redirect (XSKMAP entry missing); the socket drops (fill ring
//! empty, RX ring full).
//!
//! [`gather`] samples the per-queue counters twice, `--sample` seconds apart;
//! [`check`] is pure.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use pktio_host::cpu as cpus;
use pktio_host::netlink::ethtool::{Channels, Ethtool, Rss};
use pktio_host::netlink::netdev::{DevFeatures, Netdev};
use pktio_host::netlink::sock_diag::{self as xsk_diag, XskSocket};

use super::ethtool_stats;
use super::finding::{Area, Finding, Got, Level, Unavailable};
use super::nic::{HostCtx, L2_OVERHEAD, XDP_HEADROOM};
use super::rtnl::{Link, Rtnl, XdpMode};

/// Per-queue counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Where they came from (`netdev qstats`, `ethtool -S`).
    pub source: String,
    /// RX packets per queue.
    pub rx: BTreeMap<u32, u64>,
    /// XDP_REDIRECT verdicts per queue (drivers that count them).
    pub redirect: BTreeMap<u32, u64>,
}

/// What the checklist reads.
#[derive(Debug, Clone, PartialEq)]
pub struct WhyFacts {
    /// The queue asked about.
    pub queue: u32,
    /// Seconds between the two samples.
    pub sample_secs: f64,
    /// The link before sampling.
    pub link: Link,
    /// The link after sampling.
    pub link_after: Link,
    /// `ethtool -l`.
    pub channels: Got<Channels>,
    /// `ethtool -x`.
    pub rss: Got<Rss>,
    /// netdev XDP features.
    pub xdp: Got<DevFeatures>,
    /// Per-queue counters before and after.
    pub before: Got<QueueCounters>,
    /// After the sample.
    pub after: Got<QueueCounters>,
    /// AF_XDP sockets of the namespace.
    pub sockets: Got<Vec<XskSocket>>,
    /// Frame size and headroom the user plans (used when no socket is found).
    pub host: HostCtx,
}

/// The conclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Severity of the deciding finding.
    pub level: Level,
    /// One sentence.
    pub text: String,
    /// What to do.
    pub fix: Option<String>,
}

fn delta(a: &BTreeMap<u32, u64>, b: &BTreeMap<u32, u64>) -> BTreeMap<u32, u64> {
    b.iter()
        .map(|(q, v)| (*q, v.saturating_sub(a.get(q).copied().unwrap_or(0))))
        .collect()
}

fn wf(level: Level, name: &str, value: impl Into<String>, why: impl Into<String>) -> Finding {
    Finding::new(Area::Why, level, name, value, why)
}

/// Active RX queues: channels when known, else the counters' queues, else
/// the allocated count.
fn active_queues(f: &WhyFacts) -> Option<u32> {
    if let Ok(c) = &f.channels {
        if c.rx_queues() > 0 {
            return Some(c.rx_queues());
        }
    }
    if let Ok(b) = &f.before {
        if let Some(q) = b.rx.keys().next_back() {
            return Some(q + 1);
        }
    }
    f.link.num_rx_queues
}

/// Runs the checklist.
pub fn check(f: &WhyFacts) -> (Vec<Finding>, Verdict) {
    let ifname = f.link.ifname.as_str();
    let q = f.queue;
    let mut out = Vec::new();
    out.push(wf(
        Level::Ok,
        "interface",
        format!("{ifname} (ifindex {})", f.link.ifindex),
        "The interface exists in this network namespace.",
    ));

    // 1. Link state.
    let l = &f.link;
    out.push(if !l.up {
        wf(Level::Problem, "link", "down", "The interface is administratively down: it receives nothing.").fix(format!("ip link set dev {ifname} up"))
    } else if !l.lower_up {
        wf(Level::Problem, "link", "up, no carrier", "No carrier: the cable, the peer (for veth: the other end is down) or the switch port delivers nothing.")
            .fix(format!("bring the peer up / check the cable (ip link show {ifname})"))
    } else {
        wf(Level::Ok, "link", "up, carrier", "The link is up.")
    });

    // 2. XDP program and its stability.
    let a = &f.link_after;
    out.push(match l.xdp_mode {
        XdpMode::None => wf(Level::Problem, "XDP program", "none attached", "Without an XDP program nothing redirects packets into an AF_XDP socket: they all go to the kernel stack.")
            .fix(format!("attach the redirect program, e.g. run pktio rxdrop -i {ifname} -q {q} (it loads and attaches it)")),
        XdpMode::Skb => wf(Level::Note, "XDP program", format!("{} id {}", l.xdp_mode.word(), l.xdp_prog_id.unwrap_or(0)), "Generic mode works but builds an skb per packet first (slow); copy mode only."),
        m => wf(Level::Ok, "XDP program", format!("{} id {}", m.word(), l.xdp_prog_id.unwrap_or(0)), "An XDP program sees every packet of this interface first."),
    });
    if l.xdp_mode != XdpMode::None {
        if a.xdp_mode == XdpMode::None {
            out.push(wf(Level::Problem, "program stability", "detached during the sample", "The XDP program went away while sampling: the process that attached it exited (a bpf_link dies with its owner).")
                .fix("keep the loading process (or the pinned link) alive while receiving"));
        } else if a.xdp_prog_id != l.xdp_prog_id {
            out.push(wf(Level::Warn, "program stability", format!("id {} → {}", l.xdp_prog_id.unwrap_or(0), a.xdp_prog_id.unwrap_or(0)), "The program was replaced during the sample: two loaders are fighting over this interface, and each replacement drops the other's XSKMAP.")
                .fix("make sure a single process owns the XDP program on this interface"));
        } else {
            out.push(wf(
                Level::Ok,
                "program stability",
                format!(
                    "id {} unchanged over {:.1} s",
                    l.xdp_prog_id.unwrap_or(0),
                    f.sample_secs
                ),
                "Nobody replaced the program while sampling.",
            ));
        }
    }

    // 3. The queue exists.
    let active = active_queues(f);
    match active {
        Some(n) if q >= n => {
            let fix = match &f.channels {
                Ok(c) if c.combined_max > 0 && c.rx_max == 0 => {
                    format!("ethtool -L {ifname} combined {}", q + 1)
                }
                _ => format!("ethtool -L {ifname} rx {} tx {}", q + 1, q + 1),
            };
            out.push(wf(Level::Problem, "queue", format!("queue {q} of {n} (0..{})", n - 1), format!("Queue {q} is not in use: binding to it fails with EINVAL, and no packet ever arrives there.")).fix(fix));
        }
        Some(n) => out.push(wf(
            Level::Ok,
            "queue",
            format!("queue {q} of {n}"),
            "The queue exists.",
        )),
        None => out.push(wf(
            Level::Note,
            "queue",
            "unknown",
            "The number of queues could not be read.",
        )),
    }

    // 4. Where the traffic arrives.
    let link_rx = a.stats.rx_packets.saturating_sub(l.stats.rx_packets);
    let mut arrivals_on_q = None;
    match (&f.before, &f.after) {
        (Ok(b), Ok(af)) if !af.rx.is_empty() => {
            let d = delta(&b.rx, &af.rx);
            let total: u64 = d.values().sum();
            let on_q = d.get(&q).copied().unwrap_or(0);
            arrivals_on_q = Some(on_q);
            let elsewhere: cpus::CpuSet = d.iter().filter(|(k, v)| **k != q && **v > 0).map(|(k, _)| *k).collect();
            let value = d.iter().map(|(k, v)| format!("q{k} {v}")).collect::<Vec<_>>().join(", ");
            let value = format!("{value} in {:.1} s ({})", f.sample_secs, af.source);
            if total == 0 {
                out.push(wf(Level::Warn, "arrivals", value, if link_rx > 0 {
                    "Packets reached the interface but none was counted per queue (veth counts only frames its XDP program saw)."
                } else {
                    "Nothing arrived on any queue while sampling: is the traffic reaching this interface at all (routes, ARP/neighbour, the sender)?"
                }));
            } else if on_q == 0 {
                let rss_hint = match &f.rss {
                    Ok(r) if !r.indir.is_empty() && !r.queues().contains(&q) => format!(" The RSS table never selects queue {q}."),
                    _ => String::new(),
                };
                out.push(wf(Level::Problem, "arrivals", value, format!(
                    "Traffic arrives on queue(s) {}, not on queue {q}: RSS hashes these flows elsewhere.{rss_hint} Bind a socket per queue, or steer the flow to queue {q}.",
                    cpus::format_list(&elsewhere)))
                    .fix(format!("ethtool -N {ifname} flow-type udp4 dst-port PORT action {q}   (or: ethtool -X {ifname} equal {})", q + 1)));
            } else {
                out.push(wf(Level::Ok, "arrivals", value, format!("Packets arrive on queue {q}.")));
            }
        }
        (Err(e), _) | (_, Err(e)) => out.push(wf(Level::Note, "arrivals", format!("{link_rx} packets on the link in {:.1} s", f.sample_secs), format!("Per-queue counters are not available ({e}): cannot tell which queue the traffic lands on."))),
        _ => out.push(wf(Level::Note, "arrivals", format!("{link_rx} packets on the link in {:.1} s", f.sample_secs), "The driver has no per-queue counters: cannot tell which queue the traffic lands on.")),
    }

    // 5. RSS table (when it excludes the queue).
    if let Ok(r) = &f.rss {
        if !r.indir.is_empty() && !r.queues().contains(&q) {
            out.push(wf(Level::Warn, "RSS", format!("table spreads over queues {}", cpus::format_list(&r.queues())), format!("The RSS indirection table never sends a flow to queue {q}; only an ntuple rule can."))
                .fix(format!("ethtool -X {ifname} equal {}", q + 1)));
        }
    }

    // 6. MAC filtering.
    let otherhost = a.stats.rx_otherhost.saturating_sub(l.stats.rx_otherhost);
    out.push(if l.promisc {
        wf(Level::Ok, "promiscuous", "on", "Frames for any MAC address are accepted.")
    } else if otherhost > 0 {
        wf(Level::Warn, "promiscuous", format!("off; {otherhost} frames for other MACs dropped in {:.1} s", f.sample_secs), format!("Frames addressed to another MAC arrive and are dropped: if that is your traffic, the sender uses the wrong destination MAC (this one is {}), or enable promiscuous mode.", super::nic::mac(&l.mac)))
            .fix(format!("ip link set dev {ifname} promisc on"))
    } else {
        wf(Level::Ok, "promiscuous", "off", format!("Only frames for {} (and broadcast/multicast) pass the NIC; if the sender addresses another MAC, nothing arrives: enable promiscuous mode (ip link set dev {ifname} promisc on).", super::nic::mac(&l.mac)))
    });

    // 7. The AF_XDP socket on this queue.
    let mine: Vec<&XskSocket> = match &f.sockets {
        Ok(list) => list.iter().filter(|s| s.ifindex == l.ifindex).collect(),
        Err(_) => Vec::new(),
    };
    let on_q: Option<&XskSocket> = mine.iter().copied().find(|s| s.queue == q);
    match &f.sockets {
        Ok(_) => match on_q {
            Some(s) => {
                let u = s.umem.unwrap_or_default();
                out.push(wf(Level::Ok, "AF_XDP socket", format!(
                    "ino {}, rx ring {}, fill ring {}, {} B chunks, {} mode",
                    s.ino, s.rx_ring.unwrap_or(0), s.fill_ring.unwrap_or(0), u.chunk_size, if u.zero_copy { "zero-copy" } else { "copy" }),
                    "A socket is bound to this queue."));
                if s.rx_ring.is_none() {
                    out.push(wf(Level::Problem, "RX ring", "none", "The socket has no RX ring: it can only transmit.").fix("set XDP_RX_RING before bind"));
                }
            }
            None => {
                let others: Vec<String> = mine.iter().map(|s| s.queue.to_string()).collect();
                let why = if others.is_empty() {
                    format!("No AF_XDP socket is bound to {ifname}: the program's redirect finds no socket and the packets are dropped or passed to the stack.")
                } else {
                    format!("Sockets are bound to queue(s) {} of {ifname}, not to queue {q}.", others.join(", "))
                };
                out.push(wf(Level::Problem, "AF_XDP socket", "none on this queue", why)
                    .fix(format!("bind an AF_XDP socket to {ifname} queue {q} and put it in the XSKMAP at key {q}")));
            }
        },
        Err(e) => out.push(wf(Level::Note, "AF_XDP socket", "cannot list", format!("AF_XDP sockets cannot be listed ({e}): the kernel lacks CONFIG_XDP_SOCKETS_DIAG (modprobe xsk_diag); bind and XSKMAP are not checked."))),
    }

    // 8. Redirects: the program ran but did not hand the packet to a socket.
    if let (Ok(b), Ok(af), Some(arr)) = (&f.before, &f.after, arrivals_on_q) {
        if !af.redirect.is_empty() && arr > 0 && l.xdp_mode != XdpMode::None {
            let red = delta(&b.redirect, &af.redirect)
                .get(&q)
                .copied()
                .unwrap_or(0);
            if red == 0 {
                out.push(wf(Level::Problem, "redirects", format!("{arr} arrived on q{q}, 0 redirected"), format!(
                    "The XDP program saw the packets on queue {q} but redirected none: the XSKMAP has no socket at key {q} (insert the socket after bind), or the program passes these packets.")).fix(format!("insert the socket's fd into the XSKMAP at key {q} (bpf_map_update_elem)")));
            } else {
                out.push(wf(
                    Level::Ok,
                    "redirects",
                    format!("{red} of {arr} redirected on q{q}"),
                    "The program redirects packets to the socket.",
                ));
            }
        }
    }

    // 9. MTU against the frame.
    let (chunk, headroom, from) = match on_q.and_then(|s| s.umem) {
        Some(u) => (u.chunk_size, u.headroom, "the socket's UMEM"),
        None => (f.host.frame_size, f.host.headroom, "--frame-size"),
    };
    let room = chunk.saturating_sub(XDP_HEADROOM + headroom);
    let need = l.mtu + L2_OVERHEAD;
    let sg = f.xdp.as_ref().map(|x| x.rx_sg()).unwrap_or(false);
    out.push(if need <= room {
        wf(Level::Ok, "MTU vs frame", format!("MTU {} ({need} B) fits {room} B ({chunk} B chunk from {from})", l.mtu), "Every frame fits one UMEM chunk.")
    } else {
        wf(if sg { Level::Warn } else { Level::Problem }, "MTU vs frame", format!("MTU {} ({need} B) > {room} B ({chunk} B chunk from {from})", l.mtu),
            "Frames larger than a chunk minus the 256 B XDP headroom are dropped unless the socket is bound with XDP_USE_SG (multi-buffer).")
            .fix(format!("ip link set dev {ifname} mtu {}", room.saturating_sub(L2_OVERHEAD)))
    });

    // 10. Socket-side drops.
    if let Some(st) = on_q.and_then(|s| s.stats) {
        if st.fill_ring_empty > 0 {
            out.push(wf(Level::Warn, "fill ring", format!("empty {} times", st.fill_ring_empty), "The kernel found the fill ring empty: the application does not give frames back (or never filled it), so arriving packets are dropped.")
                .fix("fill the fill ring before binding and after each batch (fill ring 2 × the frames in flight)"));
        }
        if st.rx_full > 0 {
            out.push(wf(Level::Warn, "RX ring", format!("full {} times", st.rx_full), "The RX ring was full: the application reads too slowly or has stopped polling.")
                .fix("poll the RX ring more often, or grow it"));
        }
        if st.rx_dropped > 0 {
            out.push(wf(
                Level::Warn,
                "socket drops",
                format!("{} dropped", st.rx_dropped),
                "The socket dropped frames (too large for a chunk, or no room).",
            ));
        }
    }

    // Verdict: the first problem in packet order, else the first warning.
    let verdict = out
        .iter()
        .find(|f| f.level == Level::Problem)
        .or_else(|| out.iter().find(|f| f.level == Level::Warn))
        .map(|d| Verdict { level: d.level, text: format!("{}: {}", d.name, d.why), fix: d.fix.clone() })
        .unwrap_or_else(|| Verdict {
            level: Level::Ok,
            text: match arrivals_on_q {
                Some(n) if n > 0 => format!("packets arrive on queue {q} and nothing on the path drops them: check the application's ring handling (need_wakeup kicks, polling the fill and RX rings)."),
                _ => format!("nothing on {ifname} queue {q} is misconfigured; make sure traffic is flowing while you sample."),
            },
            fix: None,
        });
    (out, verdict)
}

fn counters(nd: &mut Got<Netdev>, ifname: &str, ifindex: u32) -> Got<QueueCounters> {
    let drv = ethtool_stats::read(ifname);
    let redirect = drv
        .as_ref()
        .map(|d| ethtool_stats::rx_queue_redirects(&d.stats))
        .unwrap_or_default();
    if let Ok(n) = nd {
        if let Ok(rx) = n.rx_queue_packets(ifindex) {
            if !rx.is_empty() {
                return Ok(QueueCounters {
                    source: "netdev qstats".into(),
                    rx,
                    redirect,
                });
            }
        }
    }
    let d = drv.map_err(|e| Unavailable::from_io("ethtool -S", &e))?;
    Ok(QueueCounters {
        source: "ethtool -S".into(),
        rx: ethtool_stats::rx_queue_packets(&d.stats),
        redirect,
    })
}

/// Reads, samples for `sample` and reads again.
///
/// # Errors
/// An unknown interface (`ENODEV`) or no rtnetlink socket.
pub fn gather(
    ifname: &str,
    queue: u32,
    sample: Duration,
    host: HostCtx,
) -> std::io::Result<WhyFacts> {
    let mut rt = Rtnl::open()?;
    let link = rt.link_by_name(ifname)?;
    let idx = link.ifindex;
    let mut eth = Ethtool::open().map_err(|e| Unavailable::from_host("ethtool netlink", e));
    let mut nd = Netdev::open().map_err(|e| Unavailable::from_host("netdev netlink", e));
    let channels = eth.as_mut().map_err(|e| e.clone()).and_then(|e| {
        e.channels(idx)
            .map_err(|x| Unavailable::from_host("ethtool channels", x))
    });
    let rss = eth.as_mut().map_err(|e| e.clone()).and_then(|e| {
        e.rss(idx)
            .map_err(|x| Unavailable::from_host("ethtool rss", x))
    });
    let xdp = nd.as_mut().map_err(|e| e.clone()).and_then(|n| {
        n.dev(idx)
            .map_err(|x| Unavailable::from_host("netdev dev-get", x))
    });
    let before = counters(&mut nd, ifname, idx);
    std::thread::sleep(sample);
    let after = counters(&mut nd, ifname, idx);
    let link_after = rt.link_by_index(idx)?;
    let sockets = xsk_diag::dump().map_err(|e| Unavailable::from_host("AF_XDP sock_diag", e));
    Ok(WhyFacts {
        queue,
        sample_secs: sample.as_secs_f64(),
        link,
        link_after,
        channels,
        rss,
        xdp,
        before,
        after,
        sockets,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::super::nic::fixtures::{host, veth};
    use super::*;
    use pktio_host::netlink::sock_diag::{Umem, XskStats};

    fn counters(rx: &[(u32, u64)], red: &[(u32, u64)]) -> Got<QueueCounters> {
        Ok(QueueCounters {
            source: "ethtool -S".into(),
            rx: rx.iter().copied().collect(),
            redirect: red.iter().copied().collect(),
        })
    }

    fn socket(queue: u32) -> XskSocket {
        XskSocket {
            ino: 1,
            ifindex: 7,
            queue,
            rx_ring: Some(2048),
            fill_ring: Some(4096),
            umem: Some(Umem {
                size: 16 << 20,
                id: 1,
                chunk_size: 4096,
                headroom: 0,
                zero_copy: false,
            }),
            stats: Some(XskStats::default()),
            ..XskSocket::default()
        }
    }

    /// The lab veth with a native program, 2 queues, socket on queue 1,
    /// traffic arriving on queue 1 and redirected.
    fn healthy() -> WhyFacts {
        let n = veth();
        let mut link = n.link.clone();
        link.xdp_mode = XdpMode::Native;
        link.xdp_prog_id = Some(42);
        let mut link_after = link.clone();
        link_after.stats.rx_packets = 1000;
        WhyFacts {
            queue: 1,
            sample_secs: 1.0,
            link,
            link_after,
            channels: Ok(Channels {
                rx_max: 2,
                tx_max: 2,
                rx: 2,
                tx: 2,
                ..Channels::default()
            }),
            rss: Err(Unavailable::Missing("x".into())),
            xdp: n.xdp.clone(),
            before: counters(&[(0, 0), (1, 0)], &[(0, 0), (1, 0)]),
            after: counters(&[(0, 0), (1, 1000)], &[(0, 0), (1, 1000)]),
            sockets: Ok(vec![socket(1)]),
            host: host(2),
        }
    }

    fn level_of(fs: &[Finding], name: &str) -> Level {
        fs.iter()
            .find(|f| f.name == name)
            .map(|f| f.level)
            .unwrap_or_else(|| panic!("no {name}: {fs:#?}"))
    }

    #[test]
    fn healthy_path_has_an_ok_verdict() {
        let (fs, v) = check(&healthy());
        assert!(fs.iter().all(|f| f.level == Level::Ok), "{fs:#?}");
        assert_eq!(v.level, Level::Ok);
        assert!(v.text.contains("arrive on queue 1"));
    }

    #[test]
    fn no_program() {
        let mut f = healthy();
        f.link.xdp_mode = XdpMode::None;
        f.link_after.xdp_mode = XdpMode::None;
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "XDP program"), Level::Problem);
        assert_eq!(v.level, Level::Problem);
        assert!(v.text.starts_with("XDP program"));
        assert!(v.fix.unwrap().contains("pktio rxdrop -i vrx -q 1"));
    }

    #[test]
    fn program_replaced_or_gone() {
        let mut f = healthy();
        f.link_after.xdp_prog_id = Some(43);
        let (fs, _) = check(&f);
        assert_eq!(level_of(&fs, "program stability"), Level::Warn);
        f.link_after.xdp_mode = XdpMode::None;
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "program stability"), Level::Problem);
        assert!(v.text.starts_with("program stability"));
    }

    #[test]
    fn queue_out_of_range() {
        let mut f = healthy();
        f.queue = 5;
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "queue"), Level::Problem);
        assert_eq!(v.fix.as_deref(), Some("ethtool -L vrx rx 6 tx 6"));
    }

    #[test]
    fn traffic_on_another_queue() {
        let mut f = healthy();
        f.after = counters(&[(0, 900), (1, 0)], &[(0, 0), (1, 0)]);
        f.rss = Ok(Rss { indir: vec![0; 64] });
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "arrivals"), Level::Problem);
        assert_eq!(level_of(&fs, "RSS"), Level::Warn);
        assert!(v.text.contains("queue(s) 0, not on queue 1"), "{}", v.text);
        assert!(v.text.contains("never selects queue 1"));
        assert!(v
            .fix
            .unwrap()
            .starts_with("ethtool -N vrx flow-type udp4 dst-port PORT action 1"));
    }

    #[test]
    fn no_socket_and_no_redirects() {
        let mut f = healthy();
        f.sockets = Ok(vec![socket(0)]);
        f.after = counters(&[(0, 0), (1, 1000)], &[(0, 0), (1, 0)]);
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "AF_XDP socket"), Level::Problem);
        assert_eq!(level_of(&fs, "redirects"), Level::Problem);
        assert!(
            v.text.contains("queue(s) 0 of vrx, not to queue 1"),
            "{}",
            v.text
        );
    }

    #[test]
    fn map_entry_missing_shows_as_no_redirects() {
        let mut f = healthy();
        f.after = counters(&[(0, 0), (1, 1000)], &[(0, 0), (1, 0)]);
        let (_, v) = check(&f);
        assert!(v.text.starts_with("redirects"), "{}", v.text);
        assert!(v.fix.unwrap().contains("XSKMAP at key 1"));
    }

    #[test]
    fn frame_too_small_and_fill_ring_empty() {
        let mut f = healthy();
        f.link.mtu = 9000;
        f.xdp = Ok(DevFeatures::default());
        let mut s = socket(1);
        s.stats = Some(XskStats {
            fill_ring_empty: 77,
            ..XskStats::default()
        });
        f.sockets = Ok(vec![s]);
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "MTU vs frame"), Level::Problem);
        assert_eq!(level_of(&fs, "fill ring"), Level::Warn);
        assert_eq!(v.fix.as_deref(), Some("ip link set dev vrx mtu 3822"));
    }

    #[test]
    fn other_host_frames_suggest_promiscuous_mode() {
        let mut f = healthy();
        f.link_after.stats.rx_otherhost = 500;
        let (fs, _) = check(&f);
        let p = fs.iter().find(|f| f.name == "promiscuous").unwrap();
        assert_eq!(p.level, Level::Warn);
        assert_eq!(p.fix.as_deref(), Some("ip link set dev vrx promisc on"));
    }

    #[test]
    fn unavailable_diag_and_counters_are_notes() {
        let mut f = healthy();
        f.sockets = Err(Unavailable::Missing(
            "AF_XDP sock_diag does not exist".into(),
        ));
        f.before = Err(Unavailable::Missing("ethtool -S".into()));
        let (fs, v) = check(&f);
        assert_eq!(level_of(&fs, "AF_XDP socket"), Level::Note);
        assert_eq!(level_of(&fs, "arrivals"), Level::Note);
        assert_eq!(v.level, Level::Ok);
    }
}
