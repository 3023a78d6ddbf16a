//! Live capture through AF_XDP, with the filter compiled into the XDP
//! steering program: packets the filter matches are redirected into the
//! capture sockets (one per queue), everything else continues into the
//! kernel's network stack untouched.
//!
//! ```no_run
//! use std::time::Duration;
//! use pktio::filter::Filter;
//! use pktio::pcap::{Capture, CaptureBuffers, CaptureConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = CaptureConfig::new("eth0").filter(Filter::parse("udp dst port 4242")?);
//! let buffers = CaptureBuffers::new(&cfg)?; // one UMEM per queue
//! let mut cap = Capture::open(&cfg, &buffers)?;
//! for _ in 0..10 {
//!     cap.poll(Duration::from_millis(100), |p| {
//!         println!("queue {}: {} bytes", p.queue, p.orig_len);
//!     })?;
//! }
//! println!("{:?}", cap.stats()?);
//! # Ok(()) }
//! ```
//!
//! The buffers live outside the [`Capture`] because its sockets borrow
//! them (a [`crate::xdp::Frame`] cannot outlive its UMEM). Dropping the
//! `Capture` closes the sockets and detaches the program: the interface's
//! traffic goes to the stack again.

use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

use super::format::Timestamp;
use super::iface::{link_state, LinkCounters};
use super::MAX_SNAPLEN;
use crate::bpf::XdpMode;
use crate::error::SysError;
use crate::filter::{CompileError, Filter};
use crate::sys;
use crate::xdp::{
    AttachMode, BindMode, Frame, SocketInfo, Umem, UmemConfig, XskError, XskProgram, XskSocket,
    XskStats,
};

/// Which receive queues to capture from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queues {
    /// One queue.
    One(u32),
    /// Every queue the interface has (`ETHTOOL_GCHANNELS`), one socket and
    /// one UMEM each.
    All,
}

/// How to capture.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// The interface.
    pub ifname: String,
    /// Which queues.
    pub queues: Queues,
    /// The filter compiled into the XDP program (empty: every packet).
    pub filter: Filter,
    /// Bytes kept of each packet, 1..=262144 (0 means 262144).
    pub snaplen: u32,
    /// Driver or skb-mode XDP ([`AttachMode::Auto`] tries driver mode first).
    pub attach: AttachMode,
    /// Zero-copy or copy.
    pub bind: BindMode,
    /// UMEM frames per queue (4096-byte frames).
    pub frames: u32,
    /// RX ring entries per socket (a power of two, at most half of `frames`).
    pub ring_size: u32,
    /// Packets taken from a ring at a time.
    pub batch: u32,
}

impl CaptureConfig {
    /// Defaults: queue 0, no filter, full packets, automatic modes, 4096
    /// frames and a 2048-entry ring per queue, batches of 64.
    pub fn new(ifname: &str) -> CaptureConfig {
        CaptureConfig {
            ifname: ifname.to_string(),
            queues: Queues::One(0),
            filter: Filter::all(),
            snaplen: 0,
            attach: AttachMode::Auto,
            bind: BindMode::Auto,
            frames: 4096,
            ring_size: 2048,
            batch: 64,
        }
    }

    /// Sets the filter.
    pub fn filter(mut self, f: Filter) -> Self {
        self.filter = f;
        self
    }

    /// Sets the queues.
    pub fn queues(mut self, q: Queues) -> Self {
        self.queues = q;
        self
    }

    /// Sets the snap length.
    pub fn snaplen(mut self, n: u32) -> Self {
        self.snaplen = n;
        self
    }

    /// The snap length in effect.
    ///
    /// # Errors
    /// [`CaptureError::Snaplen`] when it is above 262144.
    pub fn effective_snaplen(&self) -> Result<u32, CaptureError> {
        match self.snaplen {
            0 => Ok(MAX_SNAPLEN),
            n if n <= MAX_SNAPLEN => Ok(n),
            n => Err(CaptureError::Snaplen { snaplen: n }),
        }
    }
}

/// Why a capture could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The snap length is out of range.
    #[error(
        "snap length {snaplen} is out of range: use 1..={MAX_SNAPLEN} (0 means {MAX_SNAPLEN})"
    )]
    Snaplen {
        /// The value given.
        snaplen: u32,
    },
    /// The interface does not exist.
    #[error(
        "interface {ifname:?} not found in this network namespace: check the name (`ip link`)"
    )]
    NoInterface {
        /// The name given.
        ifname: String,
        /// The failed lookup.
        #[source]
        source: SysError,
    },
    /// The interface is down.
    #[error("interface {ifname} is down: bring it up (`ip link set {ifname} up`) and try again")]
    InterfaceDown {
        /// The interface.
        ifname: String,
    },
    /// The queue does not exist.
    #[error("queue {queue} does not exist on {ifname}: it has {queues} queue(s), use 0..{queues}")]
    NoSuchQueue {
        /// The interface.
        ifname: String,
        /// The queue asked for.
        queue: u32,
        /// How many it has.
        queues: u32,
    },
    /// The filter did not compile.
    #[error(transparent)]
    Filter(#[from] CompileError),
    /// AF_XDP set-up or receive failed (the message says why; privilege,
    /// another XDP program, the verifier's log, …).
    #[error(transparent)]
    Xsk(#[from] XskError),
    /// AF_PACKET set-up or receive failed.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
}

impl CaptureError {
    /// Advice for a person, when the cause is well known.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CaptureError::Xsk(e) => e.hint(),
            CaptureError::Backend(e) => e.hint(),
            CaptureError::Sys(e) => e.hint(),
            _ => None,
        }
    }
}

/// The index of `ifname`, which must exist and be up (`if_nametoindex`,
/// `RTM_GETLINK`).
pub(crate) fn interface_up(ifname: &str) -> Result<u32, CaptureError> {
    let ifindex = sys::xdp::if_nametoindex(ifname).map_err(|source| CaptureError::NoInterface {
        ifname: ifname.to_string(),
        source,
    })?;
    let state = link_state(ifindex)?;
    if !state.up {
        return Err(CaptureError::InterfaceDown {
            ifname: ifname.to_string(),
        });
    }
    Ok(ifindex)
}

/// The most UMEM frames a capture takes over all its queues (65536
/// frames of 4 KiB: 256 MiB), unless one queue alone is given more: an
/// interface with hundreds of queues gets smaller UMEMs, not gigabytes.
pub const MAX_TOTAL_FRAMES: u32 = 65_536;
/// The fewest UMEM frames a queue gets under [`MAX_TOTAL_FRAMES`] (a
/// 64-entry RX ring).
pub const MIN_QUEUE_FRAMES: u32 = 128;

/// UMEM frames per queue for `queues` queues when `frames` were asked for
/// each: `frames`, or less so the total stays within
/// `max(MAX_TOTAL_FRAMES, frames)`, but never below [`MIN_QUEUE_FRAMES`].
pub fn frames_per_queue(frames: u32, queues: u32) -> u32 {
    let total = MAX_TOTAL_FRAMES.max(frames);
    frames.min((total / queues.max(1)).max(MIN_QUEUE_FRAMES))
}

/// The UMEMs of a capture, one per queue. Create before [`Capture::open`].
#[derive(Debug)]
pub struct CaptureBuffers {
    ifname: String,
    ifindex: u32,
    umems: Vec<(u32, Umem)>,
    frames: u32,
}

impl CaptureBuffers {
    /// Checks the interface (exists, is up, has the queues) and allocates
    /// one UMEM per queue (`mmap`; registered with the first socket).
    ///
    /// # Errors
    /// [`CaptureError::NoInterface`], [`CaptureError::InterfaceDown`],
    /// [`CaptureError::NoSuchQueue`], [`CaptureError::Snaplen`], or the
    /// UMEM's [`XskError`].
    pub fn new(cfg: &CaptureConfig) -> Result<CaptureBuffers, CaptureError> {
        cfg.effective_snaplen()?;
        let ifindex = interface_up(&cfg.ifname)?;
        let count = match sys::ethtool::channels(&cfg.ifname) {
            Ok(ch) => ch.rx.max(ch.combined).max(1),
            Err(_) => 1,
        };
        let queues: Vec<u32> = match cfg.queues {
            Queues::One(q) if q >= count && sys::ethtool::channels(&cfg.ifname).is_ok() => {
                return Err(CaptureError::NoSuchQueue {
                    ifname: cfg.ifname.clone(),
                    queue: q,
                    queues: count,
                })
            }
            Queues::One(q) => vec![q],
            Queues::All => (0..count).collect(),
        };
        let frames = frames_per_queue(cfg.frames, queues.len() as u32);
        let mut umems = Vec::with_capacity(queues.len());
        for q in queues {
            let umem = Umem::new(UmemConfig {
                frame_size: 4096,
                frame_count: frames,
                ..UmemConfig::default()
            })?;
            umems.push((q, umem));
        }
        Ok(CaptureBuffers {
            ifname: cfg.ifname.clone(),
            ifindex,
            umems,
            frames,
        })
    }

    /// The queues, in order.
    pub fn queues(&self) -> Vec<u32> {
        self.umems.iter().map(|(q, _)| *q).collect()
    }

    /// UMEM frames of each queue (see [`frames_per_queue`]).
    pub fn frames_per_queue(&self) -> u32 {
        self.frames
    }
}

/// A captured packet, borrowed from the UMEM for the callback's duration.
#[derive(Debug)]
pub struct CapturedPacket<'a> {
    /// When the batch it came in was taken from the ring (user-space clock:
    /// AF_XDP delivers no kernel timestamp).
    pub ts: Timestamp,
    /// The packet, cut to the snap length.
    pub data: &'a [u8],
    /// Its full length.
    pub orig_len: u32,
    /// The receive queue.
    pub queue: u32,
}

#[derive(Debug)]
struct QueueSocket<'b> {
    queue: u32,
    sock: XskSocket<'b>,
    /// Frames waiting for room on the fill ring.
    stash: Vec<Frame<'b>>,
}

/// Counters of a capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// When the capture started.
    pub started: Timestamp,
    /// Packets the filter matched that were read from the sockets.
    pub matched: u64,
    /// Their bytes (full lengths).
    pub bytes: u64,
    /// Packets the sockets dropped: RX ring full or no fill buffer
    /// (`rx_ring_full + rx_dropped` of `XDP_STATISTICS`).
    pub socket_dropped: u64,
    /// `XDP_STATISTICS`, summed over the sockets.
    pub xsk: XskStats,
    /// The interface's counters since the capture started (`None` if the
    /// kernel did not report them).
    pub interface: Option<LinkCounters>,
}

/// A running capture: the steering program with the compiled filter and
/// one AF_XDP socket per queue.
#[derive(Debug)]
pub struct Capture<'b> {
    // Field order: the sockets close before the program detaches.
    sockets: Vec<QueueSocket<'b>>,
    program: XskProgram,
    snaplen: usize,
    batch: u32,
    stats: CaptureStats,
    link_before: Option<LinkCounters>,
    ifindex: u32,
    next: usize,
}

impl<'b> Capture<'b> {
    /// Compiles the filter into the XDP program, attaches it to the
    /// interface, and binds one socket per queue of `buffers`
    /// (`bpf(BPF_PROG_LOAD)`, `bpf(BPF_LINK_CREATE)`, `socket(AF_XDP)`,
    /// `bind`, `bpf(BPF_MAP_UPDATE_ELEM)`). Needs `CAP_NET_ADMIN`,
    /// `CAP_BPF` and `CAP_NET_RAW` (or root); kernel 5.9.
    ///
    /// # Errors
    /// [`CaptureError::Filter`] if the filter does not compile,
    /// [`CaptureError::Xsk`] for privilege, another XDP program on the
    /// interface, the verifier's refusal (with its log), a busy queue.
    pub fn open(
        cfg: &CaptureConfig,
        buffers: &'b CaptureBuffers,
    ) -> Result<Capture<'b>, CaptureError> {
        let snaplen = cfg.effective_snaplen()? as usize;
        let code = cfg.filter.xdp_program()?;
        let slots = buffers.umems.iter().map(|(q, _)| q + 1).max().unwrap_or(1);
        let program =
            XskProgram::attach_code(&buffers.ifname, buffers.ifindex, cfg.attach, slots, &code)?;
        let link_before = link_state(buffers.ifindex).ok().and_then(|s| s.counters);
        // The ring holds at most half the queue's frames (the rest wait on
        // the fill ring), as a power of two.
        let half = (buffers.frames / 2).max(1);
        let fit = 1u32 << (31 - half.leading_zeros());
        let ring_size = cfg.ring_size.min(fit);
        let mut sockets = Vec::with_capacity(buffers.umems.len());
        for (q, umem) in &buffers.umems {
            let mut sock = XskSocket::builder(&buffers.ifname)
                .queue(*q)
                .rx_size(ring_size)
                .tx_size(0)
                .bind_mode(cfg.bind)
                .program(&program)
                .prefill(u32::MAX)
                .build(umem)?;
            sock.fill_from_pool(u32::MAX)?;
            sockets.push(QueueSocket {
                queue: *q,
                sock,
                stash: Vec::with_capacity(cfg.batch as usize),
            });
        }
        Ok(Capture {
            sockets,
            program,
            snaplen,
            batch: cfg.batch.max(1),
            stats: CaptureStats {
                started: Timestamp::now(),
                ..CaptureStats::default()
            },
            link_before,
            ifindex: buffers.ifindex,
            next: 0,
        })
    }

    /// Each socket as bound (queue, copy or zero-copy, why).
    pub fn sockets(&self) -> Vec<&SocketInfo> {
        self.sockets.iter().map(|s| s.sock.info()).collect()
    }

    /// How the program is attached (driver or skb mode) and, when `Auto`
    /// fell back, why.
    pub fn attach_mode(&self) -> (XdpMode, Option<&str>) {
        (self.program.mode(), self.program.mode_reason())
    }

    /// Hands every packet waiting in the rings to `f` (at most one batch
    /// per socket per round, round-robin, until the rings are empty); if
    /// there were none, waits up to `timeout` for some (`poll(2)` on the
    /// sockets) and hands those. Returns how many packets were handed.
    /// A zero `timeout` never sleeps and makes no `poll(2)` call: a caller
    /// that spins on it reads the rings as fast as they fill, with no
    /// wake-up latency (the kernel is still woken when it asks to be).
    ///
    /// # Errors
    /// [`CaptureError::Xsk`] when a wakeup or poll fails, e.g. the
    /// interface vanished.
    pub fn poll<F: FnMut(&CapturedPacket<'_>)>(
        &mut self,
        timeout: Duration,
        mut f: F,
    ) -> Result<usize, CaptureError> {
        let n = self.drain(&mut f);
        if n > 0 {
            return Ok(n);
        }
        for s in &mut self.sockets {
            s.sock.wake_rx()?;
        }
        if timeout.is_zero() {
            return Ok(0);
        }
        let ready = {
            let mut fds: Vec<PollFd<'_>> = self
                .sockets
                .iter()
                .map(|s| PollFd::from_borrowed_fd(s.sock.fd(), PollFlags::IN))
                .collect();
            let ts = rustix::time::Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => 0,
                Err(e) => return Err(SysError::from_errno("poll(AF_XDP)", e.raw_os_error()).into()),
            }
        };
        if ready == 0 {
            return Ok(0);
        }
        Ok(self.drain(&mut f))
    }

    fn drain<F: FnMut(&CapturedPacket<'_>)>(&mut self, f: &mut F) -> usize {
        let mut total = 0;
        loop {
            let mut round = 0;
            let count = self.sockets.len();
            for i in 0..count {
                let idx = (self.next + i) % count;
                round += self.drain_one(idx, f);
            }
            self.next = (self.next + 1) % count.max(1);
            total += round;
            if round == 0 || total >= 16 * self.batch as usize {
                return total;
            }
        }
    }

    fn drain_one<F: FnMut(&CapturedPacket<'_>)>(&mut self, idx: usize, f: &mut F) -> usize {
        let snaplen = self.snaplen;
        let batch = self.batch;
        let s = &mut self.sockets[idx];
        let queue = s.queue;
        let parts = s.sock.parts();
        let (Some(rx), Some(fill)) = (parts.rx, parts.fill) else {
            return 0;
        };
        if !s.stash.is_empty() {
            fill.fill_from(&mut s.stash);
        }
        let frames = rx.receive(batch);
        if frames.is_empty() {
            return 0;
        }
        let ts = Timestamp::now();
        let mut n = 0;
        let mut bytes = 0u64;
        for frame in frames {
            let data = frame.data();
            f(&CapturedPacket {
                ts,
                data: &data[..data.len().min(snaplen)],
                orig_len: data.len() as u32,
                queue,
            });
            n += 1;
            bytes += data.len() as u64;
            s.stash.push(frame);
        }
        fill.fill_from(&mut s.stash);
        self.stats.matched += n as u64;
        self.stats.bytes += bytes;
        n
    }

    /// Checks that the interface still exists.
    ///
    /// # Errors
    /// [`CaptureError::Xsk`] with [`XskError::InterfaceGone`].
    pub fn check_interface(&self) -> Result<(), CaptureError> {
        for s in &self.sockets {
            s.sock.check_interface()?;
        }
        Ok(())
    }

    /// The counters so far: packets read, `XDP_STATISTICS` of each socket
    /// (`getsockopt(XDP_STATISTICS)`), the interface's counters
    /// (`RTM_GETLINK`).
    ///
    /// # Errors
    /// [`CaptureError::Xsk`] if `getsockopt` fails.
    pub fn stats(&self) -> Result<CaptureStats, CaptureError> {
        let mut st = self.stats.clone();
        let mut xsk = XskStats::default();
        for s in &self.sockets {
            let x = s.sock.statistics()?;
            xsk.rx_dropped += x.rx_dropped;
            xsk.rx_invalid_descs += x.rx_invalid_descs;
            xsk.tx_invalid_descs += x.tx_invalid_descs;
            xsk.rx_ring_full += x.rx_ring_full;
            xsk.rx_fill_ring_empty_descs += x.rx_fill_ring_empty_descs;
            xsk.tx_ring_empty_descs += x.tx_ring_empty_descs;
        }
        st.socket_dropped = xsk.rx_dropped + xsk.rx_ring_full;
        st.xsk = xsk;
        st.interface = match (self.link_before, link_state(self.ifindex)) {
            (Some(before), Ok(now)) => now.counters.map(|c| c.since(&before)),
            _ => None,
        };
        Ok(st)
    }

    /// The file descriptors to wait on, for callers with their own event
    /// loop.
    pub fn fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        self.sockets.iter().map(|s| s.sock.fd()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_bounded_with_many_queues() {
        assert_eq!(frames_per_queue(4096, 1), 4096);
        assert_eq!(frames_per_queue(4096, 16), 4096);
        assert_eq!(frames_per_queue(4096, 64), 1024);
        assert_eq!(frames_per_queue(4096, 256), 256);
        // Never below the floor: 1024 queues × 128 frames × 4 KiB = 512 MiB.
        assert_eq!(frames_per_queue(4096, 1024), MIN_QUEUE_FRAMES);
        // One queue gets what it asks for, past the total.
        assert_eq!(frames_per_queue(262_144, 1), 262_144);
        assert_eq!(frames_per_queue(262_144, 4), 65_536);
        for q in 1..=4096 {
            let total = u64::from(frames_per_queue(4096, q)) * u64::from(q);
            assert!(
                total
                    <= u64::from(MAX_TOTAL_FRAMES).max(u64::from(MIN_QUEUE_FRAMES) * u64::from(q)),
                "{q} queues: {total} frames"
            );
        }
    }
}
