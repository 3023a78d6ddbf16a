//! The AF_XDP socket: set-up (ring sizes, bind mode, attach mode, shared
//! UMEM; the builder and its steps are in `socket/build.rs`), what was
//! obtained and why, wakeups, and statistics.
//!
//! # Fallbacks, never silent
//!
//! - [`BindMode::Auto`] binds with `XDP_ZEROCOPY` first and falls back to
//!   `XDP_COPY` only on the kernel's answer that the driver cannot
//!   (`EOPNOTSUPP`; `EINVAL` when the program runs in generic/skb mode). The
//!   reason is kept in [`SocketInfo::mode_reason`].
//! - [`AttachMode::Auto`] attaches the steering program in driver (native)
//!   mode first and falls back to skb (generic) mode, likewise recorded.
//! - After bind the mode actually obtained is read back (`XDP_OPTIONS`).
//!
//! # Wakeups
//!
//! With `need_wakeup` (the default) the kernel sets a flag on the fill and TX
//! rings when it needs a system call to make progress. [`XskSocket::kick_tx`]
//! and [`XskSocket::wake_rx`] make that call only when asked — except TX in
//! copy mode, which is always kicked, since there the `sendto` is what sends.
//! Transient answers (`EAGAIN`, `EBUSY`, `ENOBUFS`, `ENETDOWN`) are counted
//! in [`KickCounters`]; anything else is returned as an error.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::metadata::{DeviceXdpFeatures, RxMetaSupport, TxMetadataSupport};
mod build;

pub use self::build::XskSocketBuilder;
pub use super::mode::{AttachMode, BindMode, BoundMode, BusyPoll};
use super::rings::{CompletionRing, FillRing, RxRing, TxRing};
use super::steer::XskProgram;
use super::umem::Umem;
use super::XskError;
use crate::bpf::XdpMode;
use crate::error::SysError;
use crate::sys;

/// What a socket got: interface, queue, driver, modes and why.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Interface name.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// Queue id.
    pub queue: u32,
    /// Driver name (`ETHTOOL_GDRVINFO`), or "unknown".
    pub driver: String,
    /// Zero-copy or copy, as read back from the kernel.
    pub mode: BoundMode,
    /// Why this mode, when it is not what was asked for or `Auto` fell back.
    pub mode_reason: Option<String>,
    /// How the steering program is attached, if this socket attached one.
    pub attach: Option<XdpMode>,
    /// Why that attach mode, when `Auto` fell back.
    pub attach_reason: Option<String>,
    /// Whether `XDP_USE_NEED_WAKEUP` is in effect.
    pub need_wakeup: bool,
    /// Busy-poll settings applied.
    pub busy_poll: Option<BusyPoll>,
    /// Whether the socket shares another socket's UMEM registration.
    pub shared_umem: bool,
    /// Ring sizes: rx, tx, fill, completion (0 = none).
    pub rings: [u32; 4],
    /// Whether the socket is bound with `XDP_USE_SG` (multi-buffer).
    pub multi_buffer: bool,
    /// The largest frame this socket receives whole (bytes, Ethernet
    /// header included; 0 when unknown): the interface MTU + 14, or
    /// [`XskSocketBuilder::max_frame`].
    pub max_frame: u32,
}

impl fmt::Display for SocketInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} queue {} (driver {}): {} mode",
            self.ifname,
            self.queue,
            self.driver,
            match self.mode {
                BoundMode::ZeroCopy => "zero-copy",
                BoundMode::Copy => "copy",
            }
        )?;
        if let Some(r) = &self.mode_reason {
            write!(f, " ({r})")?;
        }
        match self.attach {
            Some(m) => write!(f, ", XDP program attached in {m} mode")?,
            None => write!(f, ", no XDP program attached by this socket")?,
        }
        if let Some(r) = &self.attach_reason {
            write!(f, " ({r})")?;
        }
        write!(
            f,
            ", need_wakeup {}",
            if self.need_wakeup { "on" } else { "off" }
        )?;
        if let Some(b) = self.busy_poll {
            write!(f, ", busy poll {} us / budget {}", b.usecs, b.budget)?;
        }
        if self.shared_umem {
            write!(f, ", shared UMEM")?;
        }
        if self.multi_buffer {
            write!(f, ", multi-buffer (frames up to {} bytes)", self.max_frame)?;
        }
        Ok(())
    }
}

/// `XDP_STATISTICS` (kernel 4.18; the last three fields 5.9, 0 before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Packets dropped for reasons other than a full RX ring / empty fill ring.
    pub rx_dropped: u64,
    /// RX descriptors the kernel found invalid.
    pub rx_invalid_descs: u64,
    /// TX descriptors the kernel found invalid.
    pub tx_invalid_descs: u64,
    /// Packets dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty.
    pub tx_ring_empty_descs: u64,
}

/// Counts of wakeup system calls and their transient failures.
#[derive(Debug, Default, Clone)]
pub struct KickCounters {
    /// `sendto` calls made to drive TX.
    pub tx_kicks: u64,
    /// TX kicks answered EAGAIN/EBUSY/ENOBUFS/ENETDOWN (try again later).
    pub tx_kick_busy: u64,
    /// `recvfrom`/`poll` calls made to drive RX.
    pub rx_wakeups: u64,
    /// RX wakeups answered with a transient error.
    pub rx_wakeup_busy: u64,
}

/// An AF_XDP socket bound to one queue of one interface, on a [`Umem`].
#[derive(Debug)]
pub struct XskSocket<'u> {
    umem: &'u Umem,
    /// `None` for the UMEM's first socket, which uses the registration fd.
    own_fd: Option<Arc<OwnedFd>>,
    fd_raw: RawFd,
    rx: Option<RxRing<'u>>,
    tx: Option<TxRing<'u>>,
    fill: Option<FillRing<'u>>,
    completion: Option<CompletionRing<'u>>,
    program: Option<XskProgram>,
    info: SocketInfo,
    kicks: KickCounters,
    owns_pair: bool,
    features: Option<DeviceXdpFeatures>,
    rx_meta: Option<RxMetaSupport>,
    tx_meta: TxMetadataSupport,
    max_segments: u32,
}

/// Mutable access to all four rings at once (each `None` when this socket
/// does not have it: no RX/TX ring configured, or fill/completion shared with
/// the socket that owns this device queue's pair).
#[derive(Debug)]
pub struct Parts<'s, 'u> {
    /// The RX ring.
    pub rx: Option<&'s mut RxRing<'u>>,
    /// The TX ring.
    pub tx: Option<&'s mut TxRing<'u>>,
    /// The fill ring.
    pub fill: Option<&'s mut FillRing<'u>>,
    /// The completion ring.
    pub completion: Option<&'s mut CompletionRing<'u>>,
}

impl<'u> XskSocket<'u> {
    /// Starts building a socket on interface `ifname`.
    pub fn builder(ifname: &str) -> XskSocketBuilder<'static> {
        XskSocketBuilder::new(ifname)
    }

    /// What was bound, in which modes, and why.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    /// The UMEM this socket is on.
    #[inline]
    pub fn umem(&self) -> &'u Umem {
        self.umem
    }

    /// The socket's file descriptor (for poll/epoll).
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.own_fd {
            Some(f) => f.as_ref().as_fd(),
            None => self.umem.fd(),
        }
    }

    /// All four rings at once.
    #[inline]
    pub fn parts(&mut self) -> Parts<'_, 'u> {
        Parts {
            rx: self.rx.as_mut(),
            tx: self.tx.as_mut(),
            fill: self.fill.as_mut(),
            completion: self.completion.as_mut(),
        }
    }

    /// The RX ring, if configured.
    #[inline]
    pub fn rx(&mut self) -> Option<&mut RxRing<'u>> {
        self.rx.as_mut()
    }
    /// The TX ring, if configured.
    #[inline]
    pub fn tx(&mut self) -> Option<&mut TxRing<'u>> {
        self.tx.as_mut()
    }
    /// The fill ring, if this socket owns its queue's pair.
    #[inline]
    pub fn fill(&mut self) -> Option<&mut FillRing<'u>> {
        self.fill.as_mut()
    }
    /// The completion ring, if this socket owns its queue's pair.
    #[inline]
    pub fn completion(&mut self) -> Option<&mut CompletionRing<'u>> {
        self.completion.as_mut()
    }

    /// Moves up to `n` frames from the UMEM's free pool to the fill ring.
    ///
    /// # Errors
    /// [`XskError::Config`] if this socket shares another socket's fill ring.
    pub fn fill_from_pool(&mut self, n: u32) -> Result<u32, XskError> {
        match self.fill.as_mut() {
            Some(f) => Ok(f.fill_from_pool(n)),
            None => Err(XskError::Config(
                "this socket shares its queue's fill ring with another socket: fill through that one"
                    .into(),
            )),
        }
    }

    /// Asks the kernel to send what is on the TX ring, when it needs asking:
    /// always in copy mode, or when the TX ring's need-wakeup flag is set.
    /// Returns whether a system call was made.
    ///
    /// # Errors
    /// [`XskError::InterfaceGone`] when the device vanished; other errors are
    /// the kernel's. Transient answers are only counted.
    pub fn kick_tx(&mut self) -> Result<bool, XskError> {
        let need = match &self.tx {
            Some(tx) => {
                !self.info.need_wakeup || self.info.mode == BoundMode::Copy || tx.needs_wakeup()
            }
            None => false,
        };
        if !need {
            return Ok(false);
        }
        self.kicks.tx_kicks += 1;
        match sys::xdp::kick_tx(self.fd()) {
            Ok(()) => Ok(true),
            Err(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => {
                self.kicks.tx_kick_busy += 1;
                Ok(true)
            }
            Err(e) => Err(self.kick_error("sendto(AF_XDP)", e)),
        }
    }

    /// Wakes the kernel's RX side when the fill ring asks for it (or always,
    /// with busy poll, where this call is what drives the NAPI loop).
    /// Returns whether a system call was made.
    pub fn wake_rx(&mut self) -> Result<bool, XskError> {
        let need = self.info.busy_poll.is_some()
            || !self.info.need_wakeup
            || self.fill.as_ref().is_some_and(|f| f.needs_wakeup());
        if !need {
            return Ok(false);
        }
        self.kicks.rx_wakeups += 1;
        match sys::xdp::kick_rx(self.fd()) {
            Ok(()) => Ok(true),
            Err(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR) => {
                self.kicks.rx_wakeup_busy += 1;
                Ok(true)
            }
            Err(e) => Err(self.kick_error("recvfrom(AF_XDP)", e)),
        }
    }

    /// Blocks up to `timeout_ms` until packets are readable (`poll(POLLIN)`).
    pub fn poll_rx(&mut self, timeout_ms: i32) -> Result<bool, XskError> {
        self.kicks.rx_wakeups += 1;
        let r = sys::xdp::poll_in(self.fd(), timeout_ms);
        r.map_err(|e| self.sys_error("poll", e))
    }

    /// Kick counters so far.
    pub fn kicks(&self) -> &KickCounters {
        &self.kicks
    }

    /// `getsockopt(SOL_XDP, XDP_STATISTICS)`.
    pub fn statistics(&self) -> Result<XskStats, XskError> {
        let s = sys::xdp::statistics(self.fd()).map_err(|e| self.sys_error("statistics", e))?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full.unwrap_or(0),
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs.unwrap_or(0),
            tx_ring_empty_descs: s.tx_ring_empty_descs.unwrap_or(0),
        })
    }

    /// Checks that the interface still exists under the same index.
    ///
    /// # Errors
    /// [`XskError::InterfaceGone`] when it vanished.
    pub fn check_interface(&self) -> Result<(), XskError> {
        match sys::xdp::if_indextoname(self.info.ifindex) {
            Ok(_) => Ok(()),
            Err(_) => Err(XskError::InterfaceGone {
                ifname: self.info.ifname.clone(),
                ifindex: self.info.ifindex,
            }),
        }
    }

    /// The steering program this socket attached, if any.
    pub fn program(&self) -> Option<&XskProgram> {
        self.program.as_ref()
    }

    /// The most descriptors one packet may span: 1 without multi-buffer;
    /// in copy mode `MAX_SKB_FRAGS + 1` (18 by default); in zero-copy mode
    /// the driver's `xdp-zc-max-segs`.
    pub fn max_segments(&self) -> u32 {
        self.max_segments
    }

    /// What the driver declares about XDP (`netdev` netlink, kernel 6.3),
    /// if the kernel could be asked.
    pub fn device_features(&self) -> Option<&DeviceXdpFeatures> {
        self.features.as_ref()
    }

    /// Whether the driver provides the RX timestamp and hash, for a socket
    /// built with [`XskSocketBuilder::rx_metadata`] (`None` otherwise). Each
    /// packet's own answer is in its [`RxMetadata`](super::RxMetadata).
    pub fn rx_metadata_support(&self) -> Option<&RxMetaSupport> {
        self.rx_meta.as_ref()
    }

    /// Whether checksum offload and completion timestamps can be requested
    /// per packet ([`TxRequest`](super::TxRequest)), and how they are done.
    pub fn tx_metadata_support(&self) -> &TxMetadataSupport {
        &self.tx_meta
    }

    /// Checks a TX metadata request against [`tx_metadata_support`](XskSocket::tx_metadata_support).
    ///
    /// # Errors
    /// [`XskError::Unsupported`] naming the part that is not supported, and why.
    pub fn check_tx_request(&self, req: &super::TxRequest) -> Result<(), XskError> {
        use super::Support;
        if req.checksum.is_some() {
            if let Support::No(why) = &self.tx_meta.checksum {
                return Err(XskError::Unsupported {
                    feature: "TX checksum offload",
                    reason: why.clone(),
                });
            }
        }
        if req.timestamp {
            if let Support::No(why) = &self.tx_meta.timestamp {
                return Err(XskError::Unsupported {
                    feature: "TX completion timestamps",
                    reason: why.clone(),
                });
            }
        }
        Ok(())
    }

    fn sys_error(&self, op: &'static str, source: SysError) -> XskError {
        XskError::Sys {
            op,
            ifname: self.info.ifname.clone(),
            queue: self.info.queue,
            source,
        }
    }

    fn kick_error(&self, call: &'static str, errno: i32) -> XskError {
        if matches!(errno, libc::ENXIO | libc::ENODEV) && self.check_interface().is_err() {
            return XskError::InterfaceGone {
                ifname: self.info.ifname.clone(),
                ifindex: self.info.ifindex,
            };
        }
        self.sys_error("wakeup", SysError::from_errno(call, errno))
    }
}

impl Drop for XskSocket<'_> {
    fn drop(&mut self) {
        if self.owns_pair {
            self.umem.remove_pair(self.fd_raw);
        }
        // Rings unmap (their Mmap owners drop) before the socket fd closes:
        // a ring mapping holds a reference to the socket, and leaving it
        // mapped would keep the queue bound (EBUSY on the next bind).
        self.rx = None;
        self.tx = None;
        self.fill = None;
        self.completion = None;
        self.own_fd = None;
    }
}
