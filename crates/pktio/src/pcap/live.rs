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
//!
//! # Jumbo frames
//!
//! An interface whose MTU allows frames longer than one buffer holds
//! ([`needs_multi_buffer`]: above 3518 bytes, an MTU above 3504) is
//! captured multi-buffer: the filter's program is loaded frags-aware
//! (`BPF_F_XDP_HAS_FRAGS`, kernel 5.18; its header loads stay within the
//! first buffer, `len` counts all of them) and the sockets are bound with
//! `XDP_USE_SG` (kernel 6.6), so a 9014-byte frame arrives as three
//! descriptors ([`crate::xdp::multibuf`]). The capture joins them: each
//! [`CapturedPacket`] is the whole frame, cut to the snap length. Where the
//! kernel or the driver cannot do this, [`CaptureError::MultiBuffer`] says
//! so and points to the AF_PACKET capture ([`super::PacketCapture`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{
    channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::format::Timestamp;
use super::iface::{link_state, LinkCounters};
use super::MAX_SNAPLEN;
use crate::bpf::BpfError;
use crate::bpf::XdpMode;
use crate::error::SysError;
use crate::filter::{CompileError, Filter};
pub use crate::queues::Queues;
use crate::sys;
use crate::xdp::{
    AttachMode, BindMode, Frame, SocketInfo, Umem, UmemConfig, XskError, XskProgram, XskSocket,
    XskStats,
};

/// The UMEM frame size of a capture, in bytes.
const FRAME_SIZE: u32 = 4096;

/// The longest frame (Ethernet header included) a single-buffer XDP
/// program is given where the driver builds frames in one 4 KiB page:
/// 4096 − `XDP_PACKET_HEADROOM` 256 − `NET_IP_ALIGN` 2 − `skb_shared_info`
/// 320 (x86-64) = 3518 bytes, i.e. an MTU of 3504 (veth's limit; other
/// drivers' limits are near it). A capture on an interface whose MTU
/// allows longer frames is multi-buffer ([`needs_multi_buffer`]).
pub const SINGLE_BUFFER_FRAME: u32 = 3518;

/// Whether an interface of this MTU is captured multi-buffer: its frames
/// (MTU + the 14-byte Ethernet header) may be longer than
/// [`SINGLE_BUFFER_FRAME`]. A driver whose limit is lower still refuses
/// the single-buffer program (`ERANGE`); [`Capture::open`] then retries
/// multi-buffer.
pub fn needs_multi_buffer(mtu: u32) -> bool {
    mtu.saturating_add(14) > SINGLE_BUFFER_FRAME
}

/// How to capture.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// The interface.
    pub ifname: String,
    /// Which queues ([`Queues::List`] or [`Queues::All`]; the AF_PACKET
    /// capture, [`super::PacketCapture`], sees the whole interface and
    /// ignores this).
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
            queues: Queues::List(vec![0]),
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
    /// The queue list is empty or names a queue twice.
    #[error("invalid queue list: {0}")]
    Queues(String),
    /// A CPU list for the queue threads does not match the queues.
    #[error(
        "{cpus} CPU(s) given for {queues} queue(s): give one CPU per queue, in the queues' order"
    )]
    CpuCount {
        /// The queues captured.
        queues: usize,
        /// The CPUs given.
        cpus: usize,
    },
    /// A queue's thread could not be pinned to its CPU.
    #[error("cannot pin the capture thread of queue {queue} to CPU {cpu} (sched_setaffinity): is the CPU online and allowed to this process (`taskset -p $$`)?")]
    Pin {
        /// The queue.
        queue: u32,
        /// The CPU.
        cpu: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A capture thread panicked (a bug: please report it).
    #[error("the capture thread of queue {queue} panicked")]
    Panicked {
        /// The queue.
        queue: u32,
    },
    /// The queue does not exist.
    #[error(
        "queue {queue} does not exist on {ifname}: it has {queues} queue(s), {}",
        crate::xdp::valid_queues(*queues)
    )]
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
    /// The interface's MTU makes frames span several buffers, and the
    /// kernel or the driver refused the multi-buffer AF_XDP capture this
    /// takes; the source is the refusal.
    #[error(
        "cannot capture {ifname}'s frames over AF_XDP: its MTU {mtu} allows frames of {} bytes, \
         more than one {FRAME_SIZE}-byte buffer holds, which takes multi-buffer XDP (a frags-aware \
         program, BPF_F_XDP_HAS_FRAGS, kernel 5.18, and sockets bound with XDP_USE_SG, kernel 6.6, \
         in a driver that supports both); capture with AF_PACKET instead (`pktio capture` without \
         --steal: frames of any length, and the host keeps them), or lower the MTU to 3504 \
         (`ip link set {ifname} mtu 3504`). {what} failed",
        mtu.saturating_add(14)
    )]
    MultiBuffer {
        /// The interface.
        ifname: String,
        /// Its MTU.
        mtu: u32,
        /// The step refused, in words.
        what: &'static str,
        /// The refusal.
        #[source]
        source: Box<XskError>,
    },
}

impl CaptureError {
    /// Advice for a person, when the cause is well known.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CaptureError::Xsk(e) => e.hint(),
            CaptureError::MultiBuffer { source, .. } => source.hint(),
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

/// The queue ids `queues` names on `ifname`, checked: not empty, no queue
/// twice, each one the interface has. [`Queues::All`] is every queue
/// `ETHTOOL_GCHANNELS` reports (the larger of the RX and combined counts);
/// where the kernel reports none (a driver without channels), queue 0
/// alone, and a list is taken as given (the bind says if a queue is
/// missing). Reads the interface's channels and touches nothing, so a
/// command can check its `--queues` before it opens anything.
///
/// # Errors
/// [`CaptureError::Queues`] for an empty list or a queue given twice,
/// [`CaptureError::NoSuchQueue`] for a queue the interface does not have.
pub fn resolve_queues(ifname: &str, queues: &Queues) -> Result<Vec<u32>, CaptureError> {
    let count = crate::host::ethtool::channels(ifname)
        .ok()
        .map(|ch| ch.rx.max(ch.combined).max(1));
    let ids: Vec<u32> = match queues {
        Queues::All => (0..count.unwrap_or(1)).collect(),
        Queues::List(l) => l.clone(),
    };
    if ids.is_empty() {
        return Err(CaptureError::Queues("no queue given".into()));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(CaptureError::Queues(format!(
            "queue {} given twice: name each queue once",
            w[0]
        )));
    }
    if let (Some(count), Some(&q)) = (count, sorted.last()) {
        if q >= count {
            return Err(CaptureError::NoSuchQueue {
                ifname: ifname.to_string(),
                queue: q,
                queues: count,
            });
        }
    }
    Ok(ids)
}

/// The UMEMs of a capture, one per queue. Create before [`Capture::open`].
#[derive(Debug)]
pub struct CaptureBuffers {
    ifname: String,
    ifindex: u32,
    umems: Vec<(u32, Umem)>,
    frames: u32,
    mtu: Option<u32>,
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
        let queues = resolve_queues(&cfg.ifname, &cfg.queues)?;
        let frames = frames_per_queue(cfg.frames, queues.len() as u32);
        let mtu = sys::xdp::mtu(&cfg.ifname).ok();
        let mut umems = Vec::with_capacity(queues.len());
        for q in queues {
            let umem = Umem::new(UmemConfig {
                frame_size: FRAME_SIZE,
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
            mtu,
        })
    }

    /// The interface's MTU, when the kernel reported it.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    /// Whether the capture is set up multi-buffer for the interface's MTU
    /// ([`needs_multi_buffer`]; [`Capture::multi_buffer`] says what it got).
    pub fn multi_buffer(&self) -> bool {
        self.mtu.is_some_and(needs_multi_buffer)
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
    /// The packet, cut to the snap length (a multi-buffer frame's buffers
    /// joined).
    pub data: &'a [u8],
    /// Its full length (all its buffers).
    pub orig_len: u32,
    /// The receive queue.
    pub queue: u32,
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
    /// AF_PACKET: packets the socket's filter let through to its ring,
    /// dropped ones included (`tp_packets` of `PACKET_STATISTICS`); what
    /// the kernel filtered out is not counted. 0 for AF_XDP.
    pub socket_received: u64,
    /// The interface's counters since the capture started (`None` if the
    /// kernel did not report them).
    pub interface: Option<LinkCounters>,
}

/// The counters of one queue of an AF_XDP capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue.
    pub queue: u32,
    /// Packets read from its socket.
    pub matched: u64,
    /// Their bytes (full lengths).
    pub bytes: u64,
    /// Packets its socket dropped (`rx_ring_full + rx_dropped`, and frames
    /// whose last buffer never came).
    pub dropped: u64,
    /// Its socket's `XDP_STATISTICS`.
    pub xsk: XskStats,
}

/// The sum of per-queue counters as a [`CaptureStats`] (interface counters
/// not included).
fn sum_stats(started: Timestamp, queues: &[QueueStats]) -> CaptureStats {
    let mut st = CaptureStats {
        started,
        ..CaptureStats::default()
    };
    for q in queues {
        st.matched += q.matched;
        st.bytes += q.bytes;
        st.socket_dropped += q.dropped;
        let (x, s) = (&q.xsk, &mut st.xsk);
        s.rx_dropped += x.rx_dropped;
        s.rx_invalid_descs += x.rx_invalid_descs;
        s.tx_invalid_descs += x.tx_invalid_descs;
        s.rx_ring_full += x.rx_ring_full;
        s.rx_fill_ring_empty_descs += x.rx_fill_ring_empty_descs;
        s.tx_ring_empty_descs += x.tx_ring_empty_descs;
    }
    st
}

/// How every socket of a capture is bound.
#[derive(Clone, Debug)]
struct SocketSetup {
    ifname: String,
    mtu: Option<u32>,
    snaplen: usize,
    batch: u32,
    ring_size: u32,
    bind: BindMode,
    multi_buffer: bool,
}

impl SocketSetup {
    fn new(
        cfg: &CaptureConfig,
        buffers: &CaptureBuffers,
        multi_buffer: bool,
    ) -> Result<SocketSetup, CaptureError> {
        // The ring holds at most half the queue's frames (the rest wait on
        // the fill ring), as a power of two.
        let half = (buffers.frames / 2).max(1);
        let fit = 1u32 << (31 - half.leading_zeros());
        Ok(SocketSetup {
            ifname: buffers.ifname.clone(),
            mtu: buffers.mtu,
            snaplen: cfg.effective_snaplen()? as usize,
            batch: cfg.batch.max(1),
            ring_size: cfg.ring_size.min(fit),
            bind: cfg.bind,
            multi_buffer,
        })
    }
}

/// One queue's socket and what reading it takes.
#[derive(Debug)]
struct QueueSocket<'b> {
    queue: u32,
    sock: XskSocket<'b>,
    /// Frames waiting for room on the fill ring.
    stash: Vec<Frame<'b>>,
    snaplen: usize,
    batch: u32,
    /// Bound with `XDP_USE_SG`.
    multi_buffer: bool,
    /// A multi-buffer frame's buffers joined, up to the snap length.
    joined: Vec<u8>,
    /// Frames whose last buffer never came (freed, counted as dropped).
    partial: u64,
    matched: u64,
    bytes: u64,
}

impl<'b> QueueSocket<'b> {
    /// Binds a socket on `queue` with `umem`, in `program`'s map, its fill
    /// ring full.
    fn bind(
        s: &SocketSetup,
        queue: u32,
        umem: &'b Umem,
        program: &XskProgram,
    ) -> Result<QueueSocket<'b>, CaptureError> {
        let mut sock = XskSocket::builder(&s.ifname)
            .queue(queue)
            .rx_size(s.ring_size)
            .tx_size(0)
            .bind_mode(s.bind)
            .program(program)
            .multi_buffer(s.multi_buffer)
            .prefill(u32::MAX)
            .build(umem)
            .map_err(|e| {
                multi_buffer_error(
                    &s.ifname,
                    s.mtu,
                    s.multi_buffer,
                    "binding the AF_XDP socket with XDP_USE_SG",
                    e,
                )
            })?;
        sock.fill_from_pool(u32::MAX)?;
        Ok(QueueSocket {
            queue,
            sock,
            stash: Vec::with_capacity(s.batch as usize),
            snaplen: s.snaplen,
            batch: s.batch,
            multi_buffer: s.multi_buffer,
            joined: Vec::new(),
            partial: 0,
            matched: 0,
            bytes: 0,
        })
    }

    /// Hands the packets waiting in the ring to `f`, batch after batch, up
    /// to 16 batches; if there were none and `timeout` is not zero, waits
    /// for some (`poll(2)`) and hands those.
    fn poll<F: FnMut(&CapturedPacket<'_>)>(
        &mut self,
        timeout: Duration,
        f: &mut F,
    ) -> Result<usize, CaptureError> {
        let mut total = 0;
        loop {
            let n = self.drain(f);
            total += n;
            if n == 0 || total >= 16 * self.batch as usize {
                break;
            }
        }
        if total > 0 {
            return Ok(total);
        }
        self.sock.wake_rx()?;
        if timeout.is_zero() || !wait_readable(&[self.sock.fd()], timeout)? {
            return Ok(0);
        }
        Ok(self.drain(f))
    }

    /// One batch from the ring to `f`; the frames go back to the fill ring.
    fn drain<F: FnMut(&CapturedPacket<'_>)>(&mut self, f: &mut F) -> usize {
        if self.multi_buffer {
            return self.drain_multi(f);
        }
        let (snaplen, queue) = (self.snaplen, self.queue);
        let parts = self.sock.parts();
        let (Some(rx), Some(fill)) = (parts.rx, parts.fill) else {
            return 0;
        };
        if !self.stash.is_empty() {
            fill.fill_from(&mut self.stash);
        }
        let frames = rx.receive(self.batch);
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
            self.stash.push(frame);
        }
        fill.fill_from(&mut self.stash);
        self.matched += n as u64;
        self.bytes += bytes;
        n
    }

    /// [`drain`](QueueSocket::drain) for `XDP_USE_SG` sockets: a frame may
    /// come in several descriptors, handed on as one packet with its
    /// buffers joined (up to the snap length).
    fn drain_multi<F: FnMut(&CapturedPacket<'_>)>(&mut self, f: &mut F) -> usize {
        let (snaplen, queue) = (self.snaplen, self.queue);
        let joined = &mut self.joined;
        let stash = &mut self.stash;
        let parts = self.sock.parts();
        let (Some(rx), Some(fill)) = (parts.rx, parts.fill) else {
            return 0;
        };
        if !stash.is_empty() {
            fill.fill_from(stash);
        }
        let mut packets = rx.receive_packets(self.batch);
        let ts = Timestamp::now();
        let mut n = 0;
        let mut bytes = 0u64;
        for pkt in &mut packets {
            let len = pkt.len();
            if len == 0 {
                // No frame the UMEM recognised (never from a sane kernel).
                stash.extend(pkt.into_frames());
                continue;
            }
            let data: &[u8] = match pkt.segments() {
                [one] => one.data(),
                segs => {
                    joined.clear();
                    for seg in segs {
                        let room = snaplen - joined.len();
                        if room == 0 {
                            break;
                        }
                        let d = seg.data();
                        joined.extend_from_slice(&d[..d.len().min(room)]);
                    }
                    &joined[..]
                }
            };
            f(&CapturedPacket {
                ts,
                data: &data[..data.len().min(snaplen)],
                orig_len: len as u32,
                queue,
            });
            n += 1;
            bytes += len as u64;
            stash.extend(pkt.into_frames());
        }
        let partial = packets.truncated();
        drop(packets);
        if n > 0 {
            fill.fill_from(stash);
        }
        if partial > 0 {
            // A partial frame's buffers went back to the UMEM's pool: put
            // them on the fill ring again.
            fill.fill_from_pool(u32::MAX);
        }
        self.partial += u64::from(partial);
        self.matched += n as u64;
        self.bytes += bytes;
        n
    }

    /// This queue's counters (`getsockopt(XDP_STATISTICS)`).
    fn stats(&self) -> Result<QueueStats, CaptureError> {
        let xsk = self.sock.statistics()?;
        Ok(QueueStats {
            queue: self.queue,
            matched: self.matched,
            bytes: self.bytes,
            dropped: xsk.rx_dropped + xsk.rx_ring_full + self.partial,
            xsk,
        })
    }
}

/// Waits up to `timeout` for one of `fds` to be readable (`poll(2)`; an
/// interrupted wait is a timeout).
fn wait_readable(
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: Duration,
) -> Result<bool, CaptureError> {
    let mut fds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
        .collect();
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(SysError::from_errno("poll(AF_XDP)", e.raw_os_error()).into()),
    }
}

/// Compiles the filter and attaches it, frags-aware for a multi-buffer
/// capture; if the driver's single-buffer limit is below ours (`ERANGE`),
/// goes multi-buffer. Returns the program and whether it is multi-buffer.
fn attach_program(
    cfg: &CaptureConfig,
    buffers: &CaptureBuffers,
) -> Result<(XskProgram, bool), CaptureError> {
    let slots = buffers.umems.iter().map(|(q, _)| q + 1).max().unwrap_or(1);
    let attach = |multi_buffer: bool| {
        let code = if multi_buffer {
            cfg.filter.xdp_program_multi_buffer()?
        } else {
            cfg.filter.xdp_program()?
        };
        XskProgram::attach_code_frags(
            &buffers.ifname,
            buffers.ifindex,
            cfg.attach,
            slots,
            &code,
            multi_buffer,
        )
        .map_err(|e| {
            multi_buffer_error(
                &buffers.ifname,
                buffers.mtu,
                multi_buffer,
                "loading and attaching the frags-aware XDP program (BPF_F_XDP_HAS_FRAGS)",
                e,
            )
        })
    };
    let multi_buffer = buffers.multi_buffer();
    match attach(multi_buffer) {
        Err(CaptureError::Xsk(XskError::Bpf {
            source: BpfError::MtuTooLarge { .. },
            ..
        })) if !multi_buffer => Ok((attach(true)?, true)),
        r => Ok((r?, multi_buffer)),
    }
}

/// A running capture: the steering program with the compiled filter and
/// one AF_XDP socket per queue, all read by the calling thread
/// ([`Capture::poll`]). [`ThreadedCapture`] reads each queue on a thread
/// of its own instead.
#[derive(Debug)]
pub struct Capture<'b> {
    // Field order: the sockets close before the program detaches.
    sockets: Vec<QueueSocket<'b>>,
    program: XskProgram,
    started: Timestamp,
    link_before: Option<LinkCounters>,
    ifindex: u32,
    next: usize,
    batch: u32,
    /// Sockets bound with `XDP_USE_SG`, program loaded frags-aware.
    multi_buffer: bool,
}

impl<'b> Capture<'b> {
    /// Compiles the filter into the XDP program, attaches it to the
    /// interface, and binds one socket per queue of `buffers`
    /// (`bpf(BPF_PROG_LOAD)`, `bpf(BPF_LINK_CREATE)`, `socket(AF_XDP)`,
    /// `bind`, `bpf(BPF_MAP_UPDATE_ELEM)`). Needs `CAP_NET_ADMIN`,
    /// `CAP_BPF` and `CAP_NET_RAW` (or root); kernel 5.9.
    ///
    /// On an interface whose MTU needs it ([`CaptureBuffers::multi_buffer`]),
    /// or whose driver refuses the single-buffer program for its MTU
    /// (`ERANGE`), the capture is multi-buffer: program loaded with
    /// `BPF_F_XDP_HAS_FRAGS`, sockets bound with `XDP_USE_SG` (kernel 6.6).
    ///
    /// # Errors
    /// [`CaptureError::Filter`] if the filter does not compile,
    /// [`CaptureError::Xsk`] for privilege, another XDP program on the
    /// interface, the verifier's refusal (with its log), a busy queue;
    /// [`CaptureError::MultiBuffer`] when a multi-buffer capture is needed
    /// and the kernel or the driver refuses it.
    pub fn open(
        cfg: &CaptureConfig,
        buffers: &'b CaptureBuffers,
    ) -> Result<Capture<'b>, CaptureError> {
        cfg.effective_snaplen()?;
        let (program, multi_buffer) = attach_program(cfg, buffers)?;
        let setup = SocketSetup::new(cfg, buffers, multi_buffer)?;
        let link_before = link_state(buffers.ifindex).ok().and_then(|s| s.counters);
        let sockets = buffers
            .umems
            .iter()
            .map(|(q, umem)| QueueSocket::bind(&setup, *q, umem, &program))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Capture {
            sockets,
            program,
            started: Timestamp::now(),
            link_before,
            ifindex: buffers.ifindex,
            next: 0,
            batch: setup.batch,
            multi_buffer,
        })
    }

    /// Whether the capture is multi-buffer (frags-aware program,
    /// `XDP_USE_SG` sockets): the interface's MTU allows frames longer than
    /// one buffer.
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
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
        if timeout.is_zero() || !wait_readable(&self.fds(), timeout)? {
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
                round += self.sockets[idx].drain(f);
            }
            self.next = (self.next + 1) % count.max(1);
            total += round;
            if round == 0 || total >= 16 * self.batch as usize {
                return total;
            }
        }
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

    /// Each queue's counters (`getsockopt(XDP_STATISTICS)` of its socket),
    /// in the queues' order.
    ///
    /// # Errors
    /// [`CaptureError::Xsk`] if `getsockopt` fails.
    pub fn queue_stats(&self) -> Result<Vec<QueueStats>, CaptureError> {
        self.sockets.iter().map(QueueSocket::stats).collect()
    }

    /// The counters so far: packets read, `XDP_STATISTICS` of each socket
    /// (`getsockopt(XDP_STATISTICS)`), the interface's counters
    /// (`RTM_GETLINK`).
    ///
    /// # Errors
    /// [`CaptureError::Xsk`] if `getsockopt` fails.
    pub fn stats(&self) -> Result<CaptureStats, CaptureError> {
        let mut st = sum_stats(self.started, &self.queue_stats()?);
        st.interface = since(self.link_before, self.ifindex);
        Ok(st)
    }

    /// The file descriptors to wait on, for callers with their own event
    /// loop.
    pub fn fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        self.sockets.iter().map(|s| s.sock.fd()).collect()
    }
}

/// The interface's counters since `before` (`None` if either reading is
/// missing).
fn since(before: Option<LinkCounters>, ifindex: u32) -> Option<LinkCounters> {
    match (before, link_state(ifindex)) {
        (Some(before), Ok(now)) => now.counters.map(|c| c.since(&before)),
        _ => None,
    }
}

/// Packets one queue's thread read, copied out of its UMEM, on their way
/// to the reader of a [`ThreadedCapture`].
#[derive(Debug)]
struct Batch {
    queue: u32,
    /// The packets' bytes, one after another.
    data: Vec<u8>,
    /// (time stamp, end in `data`, full length) of each packet.
    packets: Vec<(Timestamp, usize, u32)>,
}

impl Batch {
    fn new(queue: u32) -> Batch {
        Batch {
            queue,
            data: Vec::new(),
            packets: Vec::new(),
        }
    }

    fn push(&mut self, p: &CapturedPacket<'_>) {
        self.data.extend_from_slice(p.data);
        self.packets.push((p.ts, self.data.len(), p.orig_len));
    }

    /// Hands each packet to `f`.
    fn each<F: FnMut(&CapturedPacket<'_>)>(&self, f: &mut F) {
        let mut start = 0;
        for &(ts, end, orig_len) in &self.packets {
            f(&CapturedPacket {
                ts,
                data: &self.data[start..end],
                orig_len,
                queue: self.queue,
            });
            start = end;
        }
    }
}

/// What a queue's thread sends its reader.
#[derive(Debug)]
enum Event {
    Batch(Batch),
    /// The thread stopped on this error.
    Failed(CaptureError),
}

/// A queue's counters, published by its thread for the reader.
#[derive(Debug, Default)]
struct SharedCounters {
    matched: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    rx_dropped: AtomicU64,
    rx_ring_full: AtomicU64,
    rx_fill_ring_empty_descs: AtomicU64,
    rx_invalid_descs: AtomicU64,
}

impl SharedCounters {
    fn publish(&self, s: &QueueStats) {
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Release);
        set(&self.matched, s.matched);
        set(&self.bytes, s.bytes);
        set(&self.dropped, s.dropped);
        set(&self.rx_dropped, s.xsk.rx_dropped);
        set(&self.rx_ring_full, s.xsk.rx_ring_full);
        set(
            &self.rx_fill_ring_empty_descs,
            s.xsk.rx_fill_ring_empty_descs,
        );
        set(&self.rx_invalid_descs, s.xsk.rx_invalid_descs);
    }

    fn read(&self, queue: u32) -> QueueStats {
        let get = |a: &AtomicU64| a.load(Ordering::Acquire);
        QueueStats {
            queue,
            matched: get(&self.matched),
            bytes: get(&self.bytes),
            dropped: get(&self.dropped),
            xsk: XskStats {
                rx_dropped: get(&self.rx_dropped),
                rx_ring_full: get(&self.rx_ring_full),
                rx_fill_ring_empty_descs: get(&self.rx_fill_ring_empty_descs),
                rx_invalid_descs: get(&self.rx_invalid_descs),
                ..XskStats::default()
            },
        }
    }
}

/// How long a queue's thread sleeps in `poll(2)` at most: it sees a stop
/// within this (and the reader within [`ThreadedCapture::poll`]'s timeout).
const THREAD_WAIT: Duration = Duration::from_millis(50);
/// How often a queue's thread publishes its socket's counters.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Batches in flight from the queues' threads to the reader, per queue.
/// When the reader falls this far behind, the threads wait for it and the
/// kernel counts what then overflows the RX rings (`rx_ring_full`).
const BATCHES_PER_QUEUE: usize = 64;

/// An AF_XDP capture that reads each queue on a thread of its own
/// (optionally pinned to a CPU), the packets going to one reader:
/// [`ThreadedCapture::poll`] hands them to the caller's thread (to write
/// one capture file, say), queue after queue in the order they arrived.
///
/// Each thread owns its queue's UMEM and socket (a UMEM is not `Sync`),
/// binds it, and copies what it reads into batches sent to the reader over
/// a bounded channel; the steering program is shared and detaches after
/// the last socket closed. [`ThreadedCapture::stop`] ends the threads:
/// each reads its ring once more, and [`ThreadedCapture::poll`] still
/// hands out everything read until [`ThreadedCapture::is_finished`] —
/// nothing the threads took from the rings is lost.
///
/// ```no_run
/// use std::time::Duration;
/// use pktio::pcap::{CaptureBuffers, CaptureConfig, ThreadedCapture};
/// use pktio::queues::Queues;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = CaptureConfig::new("eth0").queues(Queues::List(vec![0, 1]));
/// let buffers = CaptureBuffers::new(&cfg)?;
/// // Queue 0's thread on CPU 2, queue 1's on CPU 3.
/// let mut cap = ThreadedCapture::open(&cfg, buffers, &[2, 3], false)?;
/// let mut n = [0u64; 2];
/// for _ in 0..100 {
///     cap.poll(Duration::from_millis(100), |p| n[p.queue as usize] += 1)?;
/// }
/// cap.stop();
/// while !cap.is_finished() {
///     cap.poll(Duration::from_millis(100), |p| n[p.queue as usize] += 1)?;
/// }
/// println!("{n:?} {:?}", cap.stats());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ThreadedCapture {
    // Field order: the threads (and their sockets) end in `Drop`, before
    // the program detaches.
    threads: Vec<(u32, Option<std::thread::JoinHandle<()>>)>,
    batches: Receiver<Event>,
    stop: Arc<AtomicBool>,
    counters: Vec<(u32, Arc<SharedCounters>)>,
    sockets: Vec<SocketInfo>,
    program: Arc<XskProgram>,
    started: Timestamp,
    link_before: Option<LinkCounters>,
    ifindex: u32,
    multi_buffer: bool,
    finished: bool,
}

impl ThreadedCapture {
    /// Attaches the filter's program (as [`Capture::open`] does) and starts
    /// one thread per queue of `buffers`, which takes its queue's UMEM,
    /// pins itself to `cpus[i]` (the i-th queue's CPU; an empty list pins
    /// nothing) and binds its socket. Returns once every socket is bound.
    /// `spin`: the threads never sleep in `poll(2)` (a CPU each at 100 %,
    /// no wake-up latency).
    ///
    /// # Errors
    /// [`CaptureError::CpuCount`] when `cpus` is neither empty nor one per
    /// queue (checked before anything is attached); [`CaptureError::Pin`];
    /// what [`Capture::open`] returns. On an error every thread started is
    /// stopped and the program detached.
    pub fn open(
        cfg: &CaptureConfig,
        buffers: CaptureBuffers,
        cpus: &[usize],
        spin: bool,
    ) -> Result<ThreadedCapture, CaptureError> {
        if !cpus.is_empty() && cpus.len() != buffers.umems.len() {
            return Err(CaptureError::CpuCount {
                queues: buffers.umems.len(),
                cpus: cpus.len(),
            });
        }
        cfg.effective_snaplen()?;
        let (program, multi_buffer) = attach_program(cfg, &buffers)?;
        let program = Arc::new(program);
        let setup = SocketSetup::new(cfg, &buffers, multi_buffer)?;
        let link_before = link_state(buffers.ifindex).ok().and_then(|s| s.counters);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, batches) = sync_channel(BATCHES_PER_QUEUE * buffers.umems.len());
        let (ready_tx, ready) = channel();
        let mut cap = ThreadedCapture {
            threads: Vec::new(),
            batches,
            stop: stop.clone(),
            counters: Vec::new(),
            sockets: Vec::new(),
            program: program.clone(),
            started: Timestamp::now(),
            link_before,
            ifindex: buffers.ifindex,
            multi_buffer,
            finished: false,
        };
        let count = buffers.umems.len();
        for (i, (queue, umem)) in buffers.umems.into_iter().enumerate() {
            let counters = Arc::new(SharedCounters::default());
            cap.counters.push((queue, counters.clone()));
            let run = QueueThread {
                index: i,
                queue,
                cpu: cpus.get(i).copied(),
                setup: setup.clone(),
                program: program.clone(),
                stop: stop.clone(),
                counters,
                tx: tx.clone(),
                spin,
            };
            let ready = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("capture-q{queue}"))
                .spawn(move || run.run(umem, ready));
            match spawned {
                Ok(t) => cap.threads.push((queue, Some(t))),
                Err(e) => {
                    // `cap`'s Drop waits for every sender to go: ours too.
                    drop((tx, ready_tx));
                    return Err(SysError::from_errno(
                        "spawning a capture thread",
                        e.raw_os_error().unwrap_or(libc::EAGAIN),
                    )
                    .into());
                }
            }
        }
        drop((tx, ready_tx, program));
        let mut bound: Vec<Option<SocketInfo>> = vec![None; count];
        let mut first_error = None;
        for _ in 0..count {
            match ready.recv() {
                Ok((i, Ok(info))) => bound[i] = Some(info),
                Ok((_, Err(e))) => {
                    first_error.get_or_insert(e);
                }
                // A thread ended without a word: it panicked.
                Err(_) => break,
            }
        }
        if let Some(e) = first_error {
            return Err(e); // `cap`'s Drop stops and joins the others
        }
        if bound.iter().any(Option::is_none) {
            let queue = cap
                .counters
                .iter()
                .zip(&bound)
                .find(|(_, b)| b.is_none())
                .map_or(0, |((q, _), _)| *q);
            return Err(CaptureError::Panicked { queue });
        }
        cap.sockets = bound.into_iter().flatten().collect();
        Ok(cap)
    }

    /// Hands the packets the threads read to `f`: waits up to `timeout`
    /// for a batch, then takes what else is waiting (up to 64 batches).
    /// Returns how many packets were handed (0: none came, or every thread
    /// has ended: see [`is_finished`](ThreadedCapture::is_finished)).
    ///
    /// # Errors
    /// The error a queue's thread stopped on (the interface vanished, a
    /// wakeup failed): the capture is then stopping, and the packets
    /// already read are still handed out by the next calls.
    pub fn poll<F: FnMut(&CapturedPacket<'_>)>(
        &mut self,
        timeout: Duration,
        mut f: F,
    ) -> Result<usize, CaptureError> {
        if self.finished {
            return Ok(0);
        }
        let mut n = 0;
        let first = if timeout.is_zero() {
            self.batches.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            self.batches.recv_timeout(timeout)
        };
        let mut next = first;
        for _ in 0..64 {
            match next {
                Ok(Event::Batch(b)) => {
                    b.each(&mut f);
                    n += b.packets.len();
                }
                Ok(Event::Failed(e)) => {
                    self.stop();
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => return Ok(n),
                Err(RecvTimeoutError::Disconnected) => {
                    self.join();
                    return Ok(n);
                }
            }
            next = self.batches.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            });
        }
        Ok(n)
    }

    /// Asks the threads to stop: each reads its ring once more and ends.
    /// Keep calling [`poll`](ThreadedCapture::poll) until
    /// [`is_finished`](ThreadedCapture::is_finished) for what they read.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether every thread has ended and everything it read was handed
    /// out (the counters are then final).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Joins the threads (they have ended: the channel is closed).
    fn join(&mut self) {
        for (_, t) in &mut self.threads {
            if let Some(t) = t.take() {
                let _ = t.join();
            }
        }
        self.finished = true;
    }

    /// Whether the capture is multi-buffer (see [`Capture::multi_buffer`]).
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// Each socket as bound (queue, copy or zero-copy, why), in the
    /// queues' order.
    pub fn sockets(&self) -> &[SocketInfo] {
        &self.sockets
    }

    /// The queues, in order.
    pub fn queues(&self) -> Vec<u32> {
        self.counters.iter().map(|(q, _)| *q).collect()
    }

    /// How the program is attached (driver or skb mode) and, when `Auto`
    /// fell back, why.
    pub fn attach_mode(&self) -> (XdpMode, Option<&str>) {
        (self.program.mode(), self.program.mode_reason())
    }

    /// Each queue's counters as its thread last published them (every
    /// 100 ms, and when it ends: final once
    /// [`is_finished`](ThreadedCapture::is_finished)).
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.counters.iter().map(|(q, c)| c.read(*q)).collect()
    }

    /// The counters summed over the queues ([`queue_stats`](Self::queue_stats)),
    /// and the interface's since the start (`RTM_GETLINK`).
    pub fn stats(&self) -> CaptureStats {
        let mut st = sum_stats(self.started, &self.queue_stats());
        st.interface = since(self.link_before, self.ifindex);
        st
    }
}

impl Drop for ThreadedCapture {
    fn drop(&mut self) {
        self.stop();
        if !self.finished {
            // Unblock threads waiting for room in the channel, until all
            // have ended (their senders dropped).
            while !matches!(
                self.batches.recv_timeout(THREAD_WAIT),
                Err(RecvTimeoutError::Disconnected)
            ) {}
            self.join();
        }
    }
}

/// What a queue's thread takes with it.
struct QueueThread {
    /// Its place in the capture's queue list.
    index: usize,
    queue: u32,
    cpu: Option<usize>,
    setup: SocketSetup,
    program: Arc<XskProgram>,
    stop: Arc<AtomicBool>,
    counters: Arc<SharedCounters>,
    tx: SyncSender<Event>,
    spin: bool,
}

impl QueueThread {
    /// Pins, binds the socket on `umem`, says so on `ready`, and reads the
    /// ring until stopped.
    fn run(self, umem: Umem, ready: Sender<(usize, Result<SocketInfo, CaptureError>)>) {
        let slot = self.index;
        if let Some(cpu) = self.cpu {
            if let Err(source) = pktio_host::cpu::pin_current_thread(cpu) {
                let _ = ready.send((
                    slot,
                    Err(CaptureError::Pin {
                        queue: self.queue,
                        cpu,
                        source,
                    }),
                ));
                return;
            }
        }
        let mut sock = match QueueSocket::bind(&self.setup, self.queue, &umem, &self.program) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send((slot, Err(e)));
                return;
            }
        };
        if ready.send((slot, Ok(sock.sock.info().clone()))).is_err() {
            return;
        }
        drop(ready);
        let wait = if self.spin {
            Duration::ZERO
        } else {
            THREAD_WAIT
        };
        let (mut published, mut checked) = (Instant::now(), Instant::now());
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let mut batch = Batch::new(self.queue);
            let timeout = if stopping { Duration::ZERO } else { wait };
            let polled = sock.poll(timeout, &mut |p| batch.push(p));
            if !batch.packets.is_empty() && self.tx.send(Event::Batch(batch)).is_err() {
                break; // the reader is gone
            }
            if let Err(e) = polled {
                let _ = self.tx.send(Event::Failed(e));
                break;
            }
            if stopping {
                break;
            }
            if published.elapsed() >= PUBLISH_EVERY {
                published = Instant::now();
                if let Ok(s) = sock.stats() {
                    self.counters.publish(&s);
                }
            }
            if checked.elapsed() >= Duration::from_secs(1) {
                checked = Instant::now();
                if let Err(e) = sock.sock.check_interface() {
                    let _ = self.tx.send(Event::Failed(e.into()));
                    break;
                }
            }
        }
        match sock.stats() {
            Ok(s) => self.counters.publish(&s),
            // The socket's counters are gone with the interface: keep ours.
            Err(_) => self.counters.publish(&QueueStats {
                queue: self.queue,
                matched: sock.matched,
                bytes: sock.bytes,
                dropped: self.counters.read(self.queue).dropped,
                xsk: self.counters.read(self.queue).xsk,
            }),
        }
        // The socket closes here, before `self.program`'s reference drops.
        drop(sock);
    }
}

/// A set-up error of a multi-buffer capture, as
/// [`CaptureError::MultiBuffer`] when it is the kernel or the driver
/// refusing multi-buffer (not privilege, a busy interface or queue, …).
fn multi_buffer_error(
    ifname: &str,
    mtu: Option<u32>,
    multi_buffer: bool,
    what: &'static str,
    e: XskError,
) -> CaptureError {
    let refusal = match &e {
        XskError::Bpf { source, .. } => matches!(
            source,
            BpfError::Load { .. }
                | BpfError::ModeUnsupported { .. }
                | BpfError::MtuTooLarge { .. }
                | BpfError::Attach { .. }
                | BpfError::Sys(_)
        ),
        XskError::Unsupported { .. }
        | XskError::FrameTooLarge(_)
        | XskError::ZeroCopyUnsupported { .. } => true,
        XskError::Sys { op, .. } => *op == "bind",
        _ => false,
    };
    match mtu {
        Some(mtu) if multi_buffer && refusal => CaptureError::MultiBuffer {
            ifname: ifname.to_string(),
            mtu,
            what,
            source: Box::new(e),
        },
        _ => CaptureError::Xsk(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_buffer_from_the_mtu() {
        assert!(!needs_multi_buffer(1500));
        // veth's single-buffer limit: MTU 3504.
        assert!(!needs_multi_buffer(3504));
        assert!(needs_multi_buffer(3505));
        assert!(needs_multi_buffer(9000));
        assert!(!needs_multi_buffer(0));
    }

    #[test]
    fn a_refused_multi_buffer_capture_names_the_cause_and_the_way_out() {
        let e = CaptureError::MultiBuffer {
            ifname: "eth0".into(),
            mtu: 9000,
            what: "binding the AF_XDP socket with XDP_USE_SG",
            source: Box::new(XskError::Unsupported {
                feature: "multi-buffer AF_XDP (XDP_USE_SG)",
                reason: "bind on eth0 queue 0 refused it (EINVAL): it needs kernel 6.6".into(),
            }),
        };
        let text = e.to_string();
        for part in [
            "MTU 9000",
            "9014 bytes",
            "multi-buffer XDP",
            "BPF_F_XDP_HAS_FRAGS",
            "XDP_USE_SG",
            "without --steal",
            "ip link set eth0 mtu 3504",
            "binding the AF_XDP socket with XDP_USE_SG failed",
        ] {
            assert!(text.contains(part), "{part:?} missing: {text}");
        }
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.contains("kernel 6.6"), "{cause}");
    }

    #[test]
    fn queue_lists_are_checked_before_anything_is_opened() {
        // `lo` reports no channels: a list is taken as given, `all` is
        // queue 0.
        assert_eq!(resolve_queues("lo", &Queues::All).unwrap(), [0]);
        assert_eq!(
            resolve_queues("lo", &Queues::List(vec![3, 1])).unwrap(),
            [3, 1]
        );
        let e = resolve_queues("lo", &Queues::List(vec![])).unwrap_err();
        assert!(e.to_string().contains("no queue given"), "{e}");
        let e = resolve_queues("lo", &Queues::List(vec![0, 2, 0])).unwrap_err();
        assert!(e.to_string().contains("queue 0 given twice"), "{e}");
        let e = CaptureError::CpuCount { queues: 2, cpus: 3 };
        assert!(e.to_string().contains("one CPU per queue"), "{e}");
    }

    #[test]
    fn a_batch_hands_back_each_packet_as_it_was_read() {
        let mut b = Batch::new(3);
        let pkts: [(&[u8], u32); 3] = [(b"abc", 3), (b"", 60), (b"defgh", 9000)];
        for (i, (data, orig_len)) in pkts.iter().enumerate() {
            b.push(&CapturedPacket {
                ts: Timestamp {
                    sec: i as u64,
                    nsec: 7,
                },
                data,
                orig_len: *orig_len,
                queue: 3,
            });
        }
        let mut seen = Vec::new();
        b.each(&mut |p: &CapturedPacket<'_>| {
            seen.push((p.ts.sec, p.data.to_vec(), p.orig_len, p.queue));
        });
        let want: Vec<_> = pkts
            .iter()
            .enumerate()
            .map(|(i, (d, l))| (i as u64, d.to_vec(), *l, 3))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn per_queue_counters_sum_to_the_captures() {
        let q = |queue, matched, dropped, full| QueueStats {
            queue,
            matched,
            bytes: matched * 100,
            dropped,
            xsk: XskStats {
                rx_ring_full: full,
                ..XskStats::default()
            },
        };
        let st = sum_stats(Timestamp::default(), &[q(0, 5, 1, 1), q(1, 7, 2, 2)]);
        assert_eq!((st.matched, st.bytes, st.socket_dropped), (12, 1200, 3));
        assert_eq!(st.xsk.rx_ring_full, 3);
        let c = SharedCounters::default();
        c.publish(&q(4, 9, 1, 1));
        assert_eq!(c.read(4), q(4, 9, 1, 1));
    }

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
