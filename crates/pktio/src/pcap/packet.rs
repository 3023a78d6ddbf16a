//! Live capture through AF_PACKET (`TPACKET_V3` block ring), with the filter
//! compiled to classic BPF and attached to the socket (`SO_ATTACH_FILTER`).
//! Unlike [`super::Capture`], this takes nothing away from the kernel: the
//! stack still gets every packet, and the socket gets copies of the ones
//! the filter accepts, cut to the snap length by the filter itself.
//!
//! The kernel strips a received frame's outer VLAN tag before packet
//! sockets see it; this capture puts it back from the packet's metadata
//! (`TP_STATUS_VLAN_VALID`, `tp_vlan_tci`, `tp_vlan_tpid`), as libpcap does,
//! so files hold the frames as they were on the wire. Timestamps are the
//! kernel's (`tp_sec`, `tp_nsec`).
//!
//! On `any` (every interface: the socket bound to interface index 0) the
//! records are Linux cooked v2 (`LINKTYPE_LINUX_SLL2`, as `tcpdump -i any`
//! writes them with libpcap ≥ 1.10): the 20-byte header built from each
//! packet's `sockaddr_ll` (protocol, interface index, ARPHRD type, packet
//! type, link-layer address), then the packet from its network header; a
//! stripped VLAN tag is not put back. The filter is about the Ethernet
//! view of each record ([`LinkType::as_ethernet`]); the kernel runs it,
//! rewritten for the packet's network header and `skb->protocol`
//! ([`crate::filter::cbpf::compile_cooked`]), so only matching packets are
//! copied to user space. A filter that reads what the kernel's program
//! cannot see (`len`, `ether src`), or a kernel before 6.15 (whose loads
//! from the network header miss page fragments), leaves the filter to this
//! process, on every packet of every interface
//! ([`PacketCapture::user_space_filter`] says why). Packets the host sends
//! are captured too (`Out`), but loopback's outgoing copies, as libpcap.

use std::os::fd::AsFd;
use std::time::Duration;

use super::format::Timestamp;
use super::iface::{link_state, LinkCounters};
use super::linktype::LinkType;
use super::live::{interface_up, CaptureConfig, CaptureError, CaptureStats, CapturedPacket};
use crate::backend::{BackendConfig, Direction, PacketV3};
use crate::filter::{CookedProgram, Dissected, Filter};
use crate::packet::{KernelStats, ANY_INTERFACE};
use pktio_host::bytes::{ne_u16 as u16_at, ne_u32 as u32_at};

/// Offset of `hv1.tp_vlan_tci` in `struct tpacket3_hdr`.
const VLAN_TCI: usize = std::mem::offset_of!(libc::tpacket3_hdr, hv1)
    + std::mem::offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
/// Offset of `hv1.tp_vlan_tpid` in `struct tpacket3_hdr`.
const VLAN_TPID: usize = std::mem::offset_of!(libc::tpacket3_hdr, hv1)
    + std::mem::offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);

/// A running AF_PACKET capture.
#[derive(Debug)]
pub struct PacketCapture {
    backend: PacketV3,
    filter: Filter,
    snaplen: usize,
    batch: u32,
    /// Packets queued between `bind` and `SO_ATTACH_FILTER` went past the
    /// filter: until the ring is first empty, the reference evaluator
    /// checks each packet.
    verify: bool,
    scratch: Vec<u8>,
    stats: CaptureStats,
    kernel: KernelStats,
    link_before: Option<LinkCounters>,
    ifindex: u32,
    /// `any`: cooked v2 records.
    any: bool,
    /// Why the filter is evaluated here on every packet (`any` only).
    user_space: Option<String>,
    cooked: Vec<u8>,
    conv: Vec<u8>,
}

/// Where `sockaddr_ll` follows a `tpacket3_hdr` (`TPACKET_ALIGN`).
const SLL_AT: usize = (std::mem::size_of::<libc::tpacket3_hdr>() + 15) & !15;

/// The Linux cooked v2 record of the packet `data` (from its link header
/// on), its `tpacket3_hdr` at `at` in `hdr`; returns its wire length.
fn sll2_record(hdr: &[u8], at: usize, data: &[u8], wire_len: u32, out: &mut Vec<u8>) -> u32 {
    let mac = u16_at(hdr, at + std::mem::offset_of!(libc::tpacket3_hdr, tp_mac)).unwrap_or(0);
    let net = u16_at(hdr, at + std::mem::offset_of!(libc::tpacket3_hdr, tp_net)).unwrap_or(mac);
    let skip = usize::from(net.saturating_sub(mac)).min(data.len());
    let ll = hdr.get(at + SLL_AT..at + SLL_AT + 20).unwrap_or(&[0; 20]);
    out.clear();
    out.extend_from_slice(&ll[2..4]); // sll_protocol, already big-endian
    out.extend_from_slice(&[0, 0]);
    let ifindex = i32::from_ne_bytes([ll[4], ll[5], ll[6], ll[7]]);
    out.extend_from_slice(&ifindex.to_be_bytes());
    let hatype = u16::from_ne_bytes([ll[8], ll[9]]);
    out.extend_from_slice(&hatype.to_be_bytes());
    out.extend_from_slice(&ll[10..20]); // pkttype, halen, addr[8]
    out.extend_from_slice(&data[skip..]);
    wire_len.saturating_sub(skip as u32) + 20
}

/// The program for an `any` socket, or why the filter stays in user space.
fn cooked_program(
    filter: &Filter,
) -> Result<Result<crate::filter::CbpfProgram, String>, CaptureError> {
    Ok(match filter.cbpf_program_cooked()? {
        CookedProgram::UserSpace(why) => Err(why.to_string()),
        CookedProgram::Kernel(p) => match kernel_release() {
            Some(v) if v >= NET_OFF_READS_FRAGMENTS => Ok(p),
            _ => Err(format!(
                "this kernel's socket filters read the network header of a packet's linear \
                 part only (page fragments from Linux {}.{} on)",
                NET_OFF_READS_FRAGMENTS.0, NET_OFF_READS_FRAGMENTS.1
            )),
        },
    })
}

/// The first Linux whose `SKF_NET_OFF` loads read page fragments too.
const NET_OFF_READS_FRAGMENTS: (u32, u32) = (6, 15);

/// The running kernel's version, `(major, minor)`, from
/// `/proc/sys/kernel/osrelease`.
fn kernel_release() -> Option<(u32, u32)> {
    parse_release(&std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

fn parse_release(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl PacketCapture {
    /// Opens an AF_PACKET socket with a `TPACKET_V3` RX ring on the
    /// interface (every queue; `cfg.queues` does not apply), compiles the
    /// filter to classic BPF and attaches it (`socket(AF_PACKET)`,
    /// `PACKET_VERSION`, `PACKET_RX_RING`, `mmap`, `bind`,
    /// `SO_ATTACH_FILTER`). Needs `CAP_NET_RAW`; kernel 3.2.
    ///
    /// # Errors
    /// [`CaptureError::NoInterface`], [`CaptureError::InterfaceDown`],
    /// [`CaptureError::Snaplen`], [`CaptureError::Filter`] (over 4096
    /// instructions), [`CaptureError::Backend`] (privilege, ring geometry),
    /// [`CaptureError::Sys`] if the kernel refuses the filter.
    pub fn open(cfg: &CaptureConfig) -> Result<PacketCapture, CaptureError> {
        let snaplen = cfg.effective_snaplen()?;
        let any = cfg.ifname == ANY_INTERFACE;
        let ifindex = if any { 0 } else { interface_up(&cfg.ifname)? };
        let (prog, user_space) = if any {
            match cooked_program(&cfg.filter)? {
                Ok(p) => (Some(p), None),
                Err(why) => (None, Some(why)),
            }
        } else {
            (Some(cfg.filter.cbpf_program(snaplen)?), None)
        };
        let mut bc = BackendConfig::new(&cfg.ifname);
        bc.direction = Direction::Rx;
        bc.batch = cfg.batch.max(1);
        // What the host sends is captured too, as tcpdump does (its default
        // direction is `-Q inout`).
        bc.ignore_outgoing = false;
        let backend = PacketV3::open(&bc)?;
        if let Some(prog) = &prog {
            prog.attach(backend.socket().as_fd())?;
        }
        let link_before = match any {
            true => None,
            false => link_state(ifindex).ok().and_then(|s| s.counters),
        };
        Ok(PacketCapture {
            backend,
            filter: cfg.filter.clone(),
            snaplen: snaplen as usize,
            batch: cfg.batch.max(1),
            verify: true,
            scratch: Vec::with_capacity(snaplen as usize + 4),
            stats: CaptureStats {
                started: Timestamp::now(),
                ..CaptureStats::default()
            },
            kernel: KernelStats::default(),
            link_before,
            ifindex,
            any,
            user_space,
            cooked: Vec::new(),
            conv: Vec::new(),
        })
    }

    /// Why the filter runs in this process on every packet instead of in
    /// the kernel (`any` with a filter the kernel's program cannot
    /// express, or an older kernel); `None` when the socket's classic BPF
    /// filter selects the packets.
    pub fn user_space_filter(&self) -> Option<&str> {
        self.user_space.as_deref()
    }

    /// Hands the packets waiting in the ring to `f`; if there were none,
    /// waits up to `timeout` (`poll(2)`) and hands those. Returns how many.
    /// A block the kernel has not closed yet is handed over after its
    /// retire timeout (10 ms). A zero `timeout` never sleeps and makes no
    /// `poll(2)` call.
    ///
    /// # Errors
    /// [`CaptureError::Backend`] when `poll` fails or the interface vanished.
    pub fn poll<F: FnMut(&CapturedPacket<'_>)>(
        &mut self,
        timeout: Duration,
        mut f: F,
    ) -> Result<usize, CaptureError> {
        let n = self.drain(&mut f);
        if n > 0 || timeout.is_zero() {
            return Ok(n);
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let ready = self
            .backend
            .socket()
            .poll_in(ms)
            .map_err(crate::backend::BackendError::from)?;
        if !ready {
            return Ok(0);
        }
        Ok(self.drain(&mut f))
    }

    fn drain<F: FnMut(&CapturedPacket<'_>)>(&mut self, f: &mut F) -> usize {
        let max = 16 * self.batch as usize;
        let PacketCapture {
            backend,
            filter,
            snaplen,
            verify,
            scratch,
            stats,
            any,
            user_space,
            cooked,
            conv,
            ..
        } = self;
        let any = *any;
        let user_space = user_space.is_some();
        let Some(ring) = backend.rx_ring() else {
            return 0;
        };
        let mut n = 0usize;
        let mut deliver = |data: &[u8], orig_len: u32, sec: u32, nsec: u32, n: &mut usize| {
            if *verify || user_space {
                let (frame, wire) = match any {
                    true => LinkType::LinuxSll2.as_ethernet(data, orig_len, conv),
                    false => (data, orig_len),
                };
                if !filter.matches_dissected(&Dissected::new(frame, wire as usize)) {
                    return;
                }
            }
            f(&CapturedPacket {
                ts: Timestamp {
                    sec: u64::from(sec),
                    nsec,
                },
                data: &data[..data.len().min(*snaplen)],
                orig_len,
                queue: 0,
            });
            stats.matched += 1;
            stats.bytes += u64::from(orig_len);
            *n += 1;
        };
        while n < max {
            let Some(mut blk) = ring.block() else { break };
            loop {
                // The packet, or (for a stripped tag) its copy in `scratch`.
                let span = {
                    let Some(item) = blk.next_mut() else { break };
                    let Ok((data, span)) = item else { break };
                    if !any && (span.status & libc::TP_STATUS_VLAN_VALID == 0 || data.len() < 12) {
                        deliver(data, span.wire_len, span.sec, span.nsec, &mut n);
                        continue;
                    }
                    scratch.clear();
                    scratch.extend_from_slice(data);
                    span
                };
                let hdr = blk.bytes();
                if any {
                    let wire = sll2_record(hdr, span.header, scratch, span.wire_len, cooked);
                    // As libpcap: loopback's outgoing copy of a packet is
                    // left out (it comes back in).
                    if cooked.get(8..11) == Some(&[0x03, 0x04, 4]) {
                        continue;
                    }
                    deliver(cooked, wire, span.sec, span.nsec, &mut n);
                    continue;
                }
                let tci = u32_at(hdr, span.header + VLAN_TCI).unwrap_or(0) as u16;
                let tpid = match u16_at(hdr, span.header + VLAN_TPID) {
                    Some(t) if span.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && t != 0 => t,
                    _ => crate::filter::ETH_P_8021Q,
                };
                let mut tag = [0u8; 4];
                tag[..2].copy_from_slice(&tpid.to_be_bytes());
                tag[2..].copy_from_slice(&tci.to_be_bytes());
                scratch.splice(12..12, tag);
                deliver(scratch, span.wire_len + 4, span.sec, span.nsec, &mut n);
            }
            // Dropping the block hands it back to the kernel.
        }
        if n == 0 {
            *verify = false;
        }
        n
    }

    /// Checks that the interface still exists.
    ///
    /// # Errors
    /// [`CaptureError::Backend`] when it vanished.
    pub fn check_interface(&self) -> Result<(), CaptureError> {
        self.backend
            .socket()
            .check_interface()
            .map_err(|e| crate::backend::BackendError::from(e).into())
    }

    /// The counters so far: packets read, the socket's drops
    /// (`getsockopt(PACKET_STATISTICS)`, ring full), the interface's
    /// counters (`RTM_GETLINK`).
    ///
    /// # Errors
    /// [`CaptureError::Backend`] if `getsockopt` fails.
    pub fn stats(&mut self) -> Result<CaptureStats, CaptureError> {
        let k = self
            .backend
            .socket()
            .statistics()
            .map_err(crate::backend::BackendError::from)?;
        self.kernel.packets += k.packets;
        self.kernel.drops += k.drops;
        self.kernel.freezes += k.freezes;
        let mut st = self.stats.clone();
        st.socket_dropped = self.kernel.drops;
        st.socket_received = self.kernel.packets;
        st.interface = match (self.link_before, link_state(self.ifindex)) {
            (Some(before), Ok(now)) => now.counters.map(|c| c.since(&before)),
            _ => None,
        };
        Ok(st)
    }

    /// The backend, for its description (`info()`) and socket.
    pub fn backend(&self) -> &PacketV3 {
        &self.backend
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases() {
        assert_eq!(parse_release("6.18.0-rc3-amd64\n"), Some((6, 18)));
        assert_eq!(parse_release("5.15.0"), Some((5, 15)));
        assert_eq!(parse_release("6.1-custom"), Some((6, 1)));
        assert_eq!(parse_release("garbage"), None);
        assert!(Some((6, 18)) >= Some(NET_OFF_READS_FRAGMENTS));
        assert!((6, 9) < NET_OFF_READS_FRAGMENTS);
    }

    #[test]
    fn any_filters_that_read_the_length_stay_in_user_space() {
        let why = cooked_program(&Filter::parse("len > 100").unwrap())
            .unwrap()
            .unwrap_err();
        assert!(why.contains("len/greater/less"), "{why}");
    }
}
