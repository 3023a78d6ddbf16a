//! `pktio doctor`: read the host's network tuning. (In progress.)

use std::process::ExitCode;

pub mod cpus;
pub mod ethtool;
pub mod ethtool_stats;
pub mod finding;
pub mod irq;
pub mod kernel;
pub mod netdev;
pub mod netlink;
pub mod nic;
pub mod rtnl;
pub mod sockets;
pub mod stack;
pub mod sysctl;
pub mod why;
pub mod xsk_diag;

/// Arguments of `pktio doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

/// Runs `pktio doctor`.
pub fn run(_a: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("doctor is not implemented yet")
}

#[cfg(test)]
mod probe_tmp {
    #[test]
    fn live_probe() {
        let name = std::env::var("PROBE_IF").unwrap_or("eth0".into());
        let mut r = super::rtnl::Rtnl::open().unwrap();
        let l = r.link_by_name(&name);
        println!("{l:?}");
        let Ok(l) = l else { return };
        println!("qdiscs {:?}", r.qdiscs(l.ifindex));
        let mut e = super::ethtool::Ethtool::open().unwrap();
        println!("channels {:?}", e.channels(l.ifindex));
        println!("rings {:?}", e.rings(l.ifindex));
        println!("coalesce {:?}", e.coalesce(l.ifindex));
        println!("features {:?}", e.features(l.ifindex));
        println!("rss {:?}", e.rss(l.ifindex));
        let mut n = super::netdev::Netdev::open().unwrap();
        println!("dev {:?}", n.dev(l.ifindex));
        println!("qstats {:?}", n.rx_queue_packets(l.ifindex));
        println!("missing {:?}", r.link_by_name("nonexist0"));
    }
}
