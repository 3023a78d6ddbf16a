//! An interface's state and counters over rtnetlink (`RTM_GETLINK`), in
//! the calling thread's network namespace: whether it is up, and its
//! receive and drop counters (`IFLA_STATS64`). Safe code over rustix's
//! netlink socket; no `ip` involved.

use std::os::fd::AsFd;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::error::SysError;

const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS64: u16 = 23;
const IFLA_PROMISCUITY: u16 = 30;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;

/// An interface's receive counters (`struct rtnl_link_stats64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets the driver or stack dropped on receive.
    pub rx_dropped: u64,
    /// Packets the hardware missed (no buffer).
    pub rx_missed: u64,
}

impl LinkCounters {
    /// The counts since `earlier` (counters that went backwards count 0).
    pub fn since(&self, earlier: &LinkCounters) -> LinkCounters {
        LinkCounters {
            rx_packets: self.rx_packets.saturating_sub(earlier.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(earlier.rx_dropped),
            rx_missed: self.rx_missed.saturating_sub(earlier.rx_missed),
        }
    }
}

/// What `RTM_GETLINK` said about an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_LOWER_UP`: carrier (for a veth: its peer is up).
    pub lower_up: bool,
    /// The counters, if the kernel sent them.
    pub counters: Option<LinkCounters>,
    /// `IFLA_PROMISCUITY`: how many holders keep the interface promiscuous
    /// (packet sockets with `PACKET_MR_PROMISC`, `ip link set promisc on`);
    /// `None` if the kernel did not say (before 3.3).
    pub promiscuity: Option<u32>,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Asks the kernel about interface `ifindex`: `socket(AF_NETLINK,
/// NETLINK_ROUTE)`, `send(RTM_GETLINK)`, `recv`.
///
/// # Errors
/// The failed call; `ENODEV` when no interface has this index.
pub fn link_state(ifindex: u32) -> Result<LinkState, SysError> {
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
        .map_err(crate::sys::rx("socket(AF_NETLINK)"))?;
    let mut req = Vec::with_capacity(32);
    req.extend_from_slice(&32u32.to_ne_bytes());
    req.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
    req.extend_from_slice(&[0u8, 0]); // family, pad
    req.extend_from_slice(&0u16.to_ne_bytes()); // type
    req.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes()); // flags
    req.extend_from_slice(&0u32.to_ne_bytes()); // change
    rustix::net::send(fd.as_fd(), &req, SendFlags::empty())
        .map_err(crate::sys::rx("send(RTM_GETLINK)"))?;
    let mut buf = vec![0u8; 32 * 1024];
    let (n, _) = rustix::net::recv(fd.as_fd(), &mut buf[..], RecvFlags::empty())
        .map_err(crate::sys::rx("recv(RTM_GETLINK)"))?;
    parse_reply(&buf[..n.min(buf.len())])
}

/// One `RTM_NEWLINK` message: index, name (`IFLA_IFNAME`), state.
fn parse_link(msg: &[u8]) -> Result<(u32, String, LinkState), SysError> {
    let bad = || SysError::from_errno("recv(RTM_GETLINK)", libc::EBADMSG);
    let ifindex = u32_at(msg, 20).ok_or_else(bad)?;
    let flags = u32_at(msg, 24).ok_or_else(bad)?;
    let mut name = String::new();
    let mut state = LinkState {
        up: flags & IFF_UP != 0,
        lower_up: flags & IFF_LOWER_UP != 0,
        counters: None,
        promiscuity: None,
    };
    let mut attrs = msg.get(32..).unwrap_or(&[]);
    while attrs.len() >= 4 {
        let alen = usize::from(u16_at(attrs, 0).ok_or_else(bad)?);
        let atype = u16_at(attrs, 2).ok_or_else(bad)? & 0x3fff;
        if alen < 4 || alen > attrs.len() {
            break;
        }
        let v = &attrs[4..alen];
        match atype {
            IFLA_IFNAME => {
                let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
                name = String::from_utf8_lossy(&v[..end]).into_owned();
            }
            IFLA_PROMISCUITY => state.promiscuity = u32_at(v, 0),
            IFLA_STATS64 => {
                if let (Some(p), Some(d), Some(m)) =
                    (u64_at(v, 0), u64_at(v, 6 * 8), u64_at(v, 15 * 8))
                {
                    state.counters = Some(LinkCounters {
                        rx_packets: p,
                        rx_dropped: d,
                        rx_missed: m,
                    });
                }
            }
            _ => {}
        }
        attrs = attrs.get(alen.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    Ok((ifindex, name, state))
}

/// Every interface of the calling thread's network namespace, by index:
/// `(ifindex, name, state)` (`RTM_GETLINK` with `NLM_F_DUMP`), as
/// `tcpdump -D` lists them.
///
/// # Errors
/// The failed call.
pub fn interfaces() -> Result<Vec<(u32, String, LinkState)>, SysError> {
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
        .map_err(crate::sys::rx("socket(AF_NETLINK)"))?;
    let mut req = Vec::with_capacity(32);
    req.extend_from_slice(&32u32.to_ne_bytes());
    req.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid
    req.extend_from_slice(&[0u8; 16]); // ifinfomsg: all interfaces
    rustix::net::send(fd.as_fd(), &req, SendFlags::empty())
        .map_err(crate::sys::rx("send(RTM_GETLINK)"))?;
    let bad = || SysError::from_errno("recv(RTM_GETLINK)", libc::EBADMSG);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = rustix::net::recv(fd.as_fd(), &mut buf[..], RecvFlags::empty())
            .map_err(crate::sys::rx("recv(RTM_GETLINK)"))?;
        let mut b = &buf[..n.min(buf.len())];
        if b.is_empty() {
            return Err(bad());
        }
        while b.len() >= 16 {
            let len = u32_at(b, 0).ok_or_else(bad)? as usize;
            let kind = u16_at(b, 4).ok_or_else(bad)?;
            if len < 16 || len > b.len() {
                return Err(bad());
            }
            match kind {
                NLMSG_DONE => {
                    out.sort_by_key(|(i, _, _)| *i);
                    return Ok(out);
                }
                NLMSG_ERROR => {
                    let err = u32_at(b, 16).ok_or_else(bad)? as i32;
                    if err != 0 {
                        return Err(SysError::from_errno("RTM_GETLINK", -err));
                    }
                }
                RTM_NEWLINK => out.push(parse_link(&b[..len])?),
                _ => {}
            }
            b = b.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
        }
    }
}

fn parse_reply(mut b: &[u8]) -> Result<LinkState, SysError> {
    let bad = || SysError::from_errno("recv(RTM_GETLINK)", libc::EBADMSG);
    while b.len() >= 16 {
        let len = u32_at(b, 0).ok_or_else(bad)? as usize;
        let kind = u16_at(b, 4).ok_or_else(bad)?;
        if len < 16 || len > b.len() {
            return Err(bad());
        }
        let msg = &b[..len];
        match kind {
            NLMSG_ERROR => {
                let err = u32_at(msg, 16).ok_or_else(bad)? as i32;
                if err != 0 {
                    return Err(SysError::from_errno("RTM_GETLINK", -err));
                }
            }
            RTM_NEWLINK => return parse_link(msg).map(|(_, _, st)| st),
            _ => {}
        }
        b = b.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_counts() {
        // `lo` is index 1 in every network namespace.
        let s = link_state(1).expect("RTM_GETLINK for lo");
        assert!(s.up);
        assert!(s.counters.is_some());
        assert!(s.promiscuity.is_some());
    }

    #[test]
    fn the_dump_lists_loopback() {
        let all = interfaces().expect("RTM_GETLINK dump");
        let lo = all.iter().find(|(i, _, _)| *i == 1).expect("lo");
        assert_eq!(lo.1, "lo");
        assert!(lo.2.up);
    }

    #[test]
    fn missing_interface_is_enodev() {
        let e = link_state(0x7fff_fff0).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
    }

    #[test]
    fn garbage_replies_are_errors() {
        assert!(parse_reply(&[]).is_err());
        assert!(parse_reply(&[0xff; 40]).is_err());
        let mut m = vec![0u8; 20];
        m[0..4].copy_from_slice(&20u32.to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse_reply(&m).unwrap_err().errno(), Some(libc::EPERM));
    }
}
