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

use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

use super::format::Timestamp;
use super::iface::{link_state, LinkCounters};
use super::MAX_SNAPLEN;
use crate::bpf::BpfError;
use crate::bpf::XdpMode;
use crate::error::SysError;
use crate::filter::{CompileError, Filter};
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
        let count = match crate::host::ethtool::channels(&cfg.ifname) {
            Ok(ch) => ch.rx.max(ch.combined).max(1),
            Err(_) => 1,
        };
        let queues: Vec<u32> = match cfg.queues {
            Queues::One(q) if q >= count && crate::host::ethtool::channels(&cfg.ifname).is_ok() => {
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
    /// AF_PACKET: packets the socket's filter let through to its ring,
    /// dropped ones included (`tp_packets` of `PACKET_STATISTICS`); what
    /// the kernel filtered out is not counted. 0 for AF_XDP.
    pub socket_received: u64,
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
    /// Sockets bound with `XDP_USE_SG`, program loaded frags-aware.
    multi_buffer: bool,
    /// A multi-buffer frame's buffers joined, up to the snap length.
    joined: Vec<u8>,
    /// Frames whose last buffer never came (freed, counted as dropped).
    partial: u64,
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
        let snaplen = cfg.effective_snaplen()? as usize;
        let slots = buffers.umems.iter().map(|(q, _)| q + 1).max().unwrap_or(1);
        let mut multi_buffer = buffers.multi_buffer();
        let program = match Self::attach(cfg, buffers, slots, multi_buffer) {
            // The driver's single-buffer limit is below ours: go multi-buffer.
            Err(CaptureError::Xsk(XskError::Bpf {
                source: BpfError::MtuTooLarge { .. },
                ..
            })) if !multi_buffer => {
                multi_buffer = true;
                Self::attach(cfg, buffers, slots, true)?
            }
            r => r?,
        };
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
                .multi_buffer(multi_buffer)
                .prefill(u32::MAX)
                .build(umem)
                .map_err(|e| {
                    multi_buffer_error(
                        buffers,
                        multi_buffer,
                        "binding the AF_XDP socket with XDP_USE_SG",
                        e,
                    )
                })?;
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
            multi_buffer,
            joined: Vec::new(),
            partial: 0,
        })
    }

    /// Compiles and attaches the filter program, frags-aware for a
    /// multi-buffer capture.
    fn attach(
        cfg: &CaptureConfig,
        buffers: &CaptureBuffers,
        slots: u32,
        multi_buffer: bool,
    ) -> Result<XskProgram, CaptureError> {
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
                buffers,
                multi_buffer,
                "loading and attaching the frags-aware XDP program (BPF_F_XDP_HAS_FRAGS)",
                e,
            )
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
        if self.multi_buffer {
            return self.drain_one_multi(idx, f);
        }
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

    /// [`drain_one`](Capture::drain_one) for `XDP_USE_SG` sockets: a frame
    /// may come in several descriptors, handed on as one packet with its
    /// buffers joined (up to the snap length).
    fn drain_one_multi<F: FnMut(&CapturedPacket<'_>)>(&mut self, idx: usize, f: &mut F) -> usize {
        let snaplen = self.snaplen;
        let batch = self.batch;
        let joined = &mut self.joined;
        let s = &mut self.sockets[idx];
        let queue = s.queue;
        let parts = s.sock.parts();
        let (Some(rx), Some(fill)) = (parts.rx, parts.fill) else {
            return 0;
        };
        if !s.stash.is_empty() {
            fill.fill_from(&mut s.stash);
        }
        let mut packets = rx.receive_packets(batch);
        let ts = Timestamp::now();
        let mut n = 0;
        let mut bytes = 0u64;
        for pkt in &mut packets {
            let len = pkt.len();
            if len == 0 {
                // No frame the UMEM recognised (never from a sane kernel).
                s.stash.extend(pkt.into_frames());
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
            s.stash.extend(pkt.into_frames());
        }
        let partial = packets.truncated();
        drop(packets);
        if n > 0 {
            fill.fill_from(&mut s.stash);
        }
        if partial > 0 {
            // A partial frame's buffers went back to the UMEM's pool: put
            // them on the fill ring again.
            fill.fill_from_pool(u32::MAX);
        }
        self.partial += u64::from(partial);
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
        st.socket_dropped = xsk.rx_dropped + xsk.rx_ring_full + self.partial;
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

/// A set-up error of a multi-buffer capture, as
/// [`CaptureError::MultiBuffer`] when it is the kernel or the driver
/// refusing multi-buffer (not privilege, a busy interface or queue, …).
fn multi_buffer_error(
    buffers: &CaptureBuffers,
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
    match buffers.mtu {
        Some(mtu) if multi_buffer && refusal => CaptureError::MultiBuffer {
            ifname: buffers.ifname.clone(),
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
