//! Fixture interfaces for the checks' tests: the lab's veth, a well-tuned
//! NIC ("good host") and a badly tuned one ("bad host").

use pktio_host::netlink::ethtool::{Channels, Coalesce, Features, Rings, Rss};
use pktio_host::netlink::netdev::DevFeatures;

use super::super::finding::Unavailable;
use super::super::rtnl::{Link, LinkStats, Qdisc, XdpMode};
use super::{HostCtx, Nic, QueueFiles};

pub fn host(ncpu: u32) -> HostCtx {
    HostCtx {
        online: (0..ncpu).collect(),
        frame_size: 4096,
        headroom: 0,
    }
}

fn missing() -> Unavailable {
    Unavailable::Missing("ethtool netlink: not supported by this driver".into())
}

/// The lab's rx veth: two allocated queues, one in use, native XDP
/// without zero-copy, no rings or coalescing, GRO off.
pub fn veth() -> Nic {
    Nic {
        link: Link {
            ifindex: 7,
            ifname: "vrx".into(),
            up: true,
            lower_up: true,
            oper_state: "UP".into(),
            mtu: 1500,
            num_rx_queues: Some(2),
            num_tx_queues: Some(2),
            qdisc: Some("noqueue".into()),
            kind: Some("veth".into()),
            mac: vec![2, 0, 0xc6, 0x12, 0, 2],
            ..Link::default()
        },
        driver: Some("veth".into()),
        bus_info: None,
        channels: Ok(Channels {
            rx_max: 2,
            tx_max: 2,
            rx: 1,
            tx: 1,
            ..Channels::default()
        }),
        rings: Err(missing()),
        coalesce: Err(missing()),
        features: Ok(Features {
            hw: [
                "rx-gro",
                "rx-checksum",
                "tx-generic-segmentation",
                "tx-tcp-segmentation",
            ]
            .map(String::from)
            .into(),
            active: [
                "rx-checksum",
                "tx-generic-segmentation",
                "tx-tcp-segmentation",
            ]
            .map(String::from)
            .into(),
            nochange: Default::default(),
        }),
        rss: Err(missing()),
        xdp: Ok(DevFeatures {
            xdp: 0x23,
            zc_max_segs: None,
            rx_metadata: Some(7),
            xsk: Some(0),
        }),
        qdiscs: Ok(vec![Qdisc {
            kind: "noqueue".into(),
            root: true,
            ..Qdisc::default()
        }]),
        numa_node: None,
        node_cpus: None,
        // sysfs lists the queues in use (real_num_rx_queues): one.
        rx_queues: Ok(vec![QueueFiles {
            index: 0,
            mask: Some("0".into()),
            flow_cnt: Some(0),
        }]),
        tx_queues: Ok(vec![QueueFiles {
            index: 0,
            mask: Some("0".into()),
            flow_cnt: None,
        }]),
        device_path: None,
    }
}

/// A physical NIC tuned well: 8 combined queues on 8 CPUs, rings at
/// maximum, adaptive coalescing, offloads on, zero-copy, no drops.
pub fn good_nic() -> Nic {
    let mut n = veth();
    n.link.ifname = "eth0".into();
    n.link.kind = None;
    n.driver = Some("mlx5_core".into());
    n.bus_info = Some("0000:03:00.0".into());
    n.channels = Ok(Channels {
        combined_max: 8,
        combined: 8,
        ..Channels::default()
    });
    n.rings = Ok(Rings {
        rx_max: Some(8192),
        tx_max: Some(8192),
        rx: Some(8192),
        tx: Some(8192),
    });
    n.coalesce = Ok(Coalesce {
        rx_usecs: Some(8),
        rx_frames: Some(64),
        adaptive_rx: Some(true),
        ..Coalesce::default()
    });
    n.features = Ok(Features {
        hw: ["rx-gro", "rx-lro", "rx-checksum"].map(String::from).into(),
        active: [
            "rx-gro",
            "rx-checksum",
            "tx-generic-segmentation",
            "tx-tcp-segmentation",
        ]
        .map(String::from)
        .into(),
        nochange: Default::default(),
    });
    n.rss = Ok(Rss {
        indir: (0..128).map(|i| i % 8).collect(),
    });
    n.xdp = Ok(DevFeatures {
        xdp: 0x2f,
        zc_max_segs: Some(1),
        rx_metadata: Some(7),
        xsk: Some(3),
    });
    n.numa_node = Some(0);
    n.node_cpus = Some((0..8).collect());
    n.qdiscs = Ok(vec![Qdisc {
        kind: "mq".into(),
        root: true,
        ..Qdisc::default()
    }]);
    n.rx_queues = Ok((0..8)
        .map(|i| QueueFiles {
            index: i,
            mask: Some("00".into()),
            flow_cnt: Some(0),
        })
        .collect());
    n.tx_queues = Ok((0..8)
        .map(|i| QueueFiles {
            index: i,
            mask: Some(format!("{:x}", 1u32 << i)),
            flow_cnt: None,
        })
        .collect());
    n
}

/// A badly tuned physical NIC: 2 of 16 queues on 8 CPUs, small ring with
/// overruns, per-packet interrupts, LRO on, no native XDP, jumbo MTU,
/// promiscuous, qdisc drops, an skb-mode program.
pub fn bad_nic() -> Nic {
    let mut n = good_nic();
    n.link.ifname = "eth1".into();
    n.link.mtu = 9000;
    n.link.promisc = true;
    n.link.promiscuity = 1;
    n.link.xdp_mode = XdpMode::Skb;
    n.link.xdp_prog_id = Some(9);
    n.link.stats = LinkStats {
        rx_packets: 1_000_000,
        rx_missed: 5000,
        rx_dropped: 20,
        ..LinkStats::default()
    };
    n.channels = Ok(Channels {
        combined_max: 16,
        combined: 2,
        ..Channels::default()
    });
    n.rss = Ok(Rss {
        indir: vec![0; 128],
    });
    n.rings = Ok(Rings {
        rx_max: Some(4096),
        tx_max: Some(4096),
        rx: Some(256),
        tx: Some(256),
    });
    n.coalesce = Ok(Coalesce {
        rx_usecs: Some(0),
        rx_frames: Some(1),
        adaptive_rx: Some(false),
        ..Coalesce::default()
    });
    n.features = Ok(Features {
        hw: ["rx-gro", "rx-lro", "rx-checksum"].map(String::from).into(),
        active: ["rx-lro", "rx-checksum"].map(String::from).into(),
        nochange: Default::default(),
    });
    n.xdp = Ok(DevFeatures {
        xdp: 0,
        ..DevFeatures::default()
    });
    n.qdiscs = Ok(vec![Qdisc {
        kind: "pfifo_fast".into(),
        root: true,
        drops: 77,
        ..Qdisc::default()
    }]);
    n
}
