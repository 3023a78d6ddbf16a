//! The XSK steering program's lifecycle on one interface: an XSKMAP, the
//! [`xsk_redirect`](crate::bpf::progs::xsk_redirect) program, and the
//! `bpf_link` that attaches it (driver mode, or skb mode as the fallback).
//!
//! Several sockets on one interface (one per queue) share one `XskProgram`:
//! build it with [`XskProgram::attach`] and hand it to each socket with
//! [`XskSocketBuilder::program`](super::XskSocketBuilder::program). A socket
//! built without one attaches its own. Dropping the `XskProgram` detaches
//! the program (the link's fd closes); so does the process exiting, even by a
//! crash.
//!
//! An interface that already runs an XDP program (libxdp's dispatcher, or any
//! other) is refused with [`BpfError::Busy`](crate::bpf::BpfError::Busy),
//! naming that program and what to do: see "Sharing an interface with other
//! XDP programs" in [`crate::xdp`]. [`XskProgram::pin_map`] lets another
//! process (an unprivileged worker, [`super::handoff`]) put its sockets into
//! this program's map.

use std::os::fd::{AsFd, BorrowedFd};

use super::mode::AttachMode;
use super::XskError;
use crate::bpf::progs::{RxMetaKfuncs, XskRedirectOpts};
use crate::bpf::{progs, LoadOptions, PerCpuArray, Program, ProgramKind, XdpLink, XdpMode, XskMap};

/// An attached XSK steering program and its map. Detached on drop.
#[derive(Debug)]
pub struct XskProgram {
    ifname: String,
    // Field order: the link detaches before the map goes away.
    link: XdpLink,
    map: XskMap,
    reason: Option<String>,
    /// Per-CPU drop counters (entry 0: packets over `max_len`).
    counters: Option<PerCpuArray>,
    opts: SteerOptions,
}

/// What the steering program does besides steering (see
/// [`XskProgram::attach_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SteerOptions {
    /// Load with `BPF_F_XDP_HAS_FRAGS` (kernel 5.18): the program accepts
    /// multi-buffer frames. Needed for `XDP_USE_SG` sockets and for native
    /// XDP on a device whose MTU does not fit one page (veth refuses a
    /// program without it: "Peer MTU is too large to set XDP", `ERANGE`).
    pub frags: bool,
    /// Drop packets longer than this (all buffers), counted in
    /// [`XskProgram::oversize_drops`].
    pub max_len: Option<u32>,
    /// Put the driver's RX timestamp and hash in front of each packet
    /// (device-bound program, driver mode only; kernel 6.3).
    pub rx_metadata: bool,
}

impl XskProgram {
    /// Loads `xsk_redirect` with an XSKMAP of `queues` slots and attaches it
    /// to `ifindex` (`bpf(BPF_MAP_CREATE)`, `bpf(BPF_PROG_LOAD)`,
    /// `bpf(BPF_LINK_CREATE)`; kernel 5.9). [`AttachMode::Auto`] tries driver
    /// mode first and falls back to skb mode, recording why.
    ///
    /// # Errors
    /// [`XskError::Bpf`] with the BPF error (privilege, another program
    /// already attached — [`BpfError::Busy`](crate::bpf::BpfError::Busy)
    /// names it —, driver mode unsupported, verifier log).
    pub fn attach(
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
        queues: u32,
    ) -> Result<XskProgram, XskError> {
        Self::attach_code(ifname, ifindex, mode, queues, &progs::xsk_redirect())
    }

    /// As [`attach`](XskProgram::attach), with [`SteerOptions`]: a
    /// frags-aware load, a length limit, RX metadata
    /// ([`progs::xsk_redirect_with`]). With `rx_metadata` the kfuncs' BTF
    /// ids come from `/sys/kernel/btf/vmlinux`, the program is bound to
    /// `ifindex` (`BPF_F_XDP_DEV_BOUND_ONLY`) and attached in driver mode
    /// ([`AttachMode::Auto`] does not fall back to skb mode then).
    ///
    /// # Errors
    /// As [`attach`](XskProgram::attach); [`XskError::Bpf`] with
    /// [`BpfError::NoKfunc`](crate::bpf::BpfError::NoKfunc) on kernels
    /// without the metadata kfuncs, or
    /// [`BpfError::DevBoundMode`](crate::bpf::BpfError::DevBoundMode) for
    /// `rx_metadata` with [`AttachMode::Skb`].
    pub fn attach_with(
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
        queues: u32,
        opts: &SteerOptions,
    ) -> Result<XskProgram, XskError> {
        let bpf = |source| XskError::Bpf {
            ifname: ifname.to_string(),
            source,
        };
        let mut xdp_mode = match mode {
            AttachMode::Auto => XdpMode::Auto,
            AttachMode::Driver => XdpMode::Driver,
            AttachMode::Skb => XdpMode::Skb,
            AttachMode::None => {
                return Err(XskError::Config(
                    "AttachMode::None attaches no program".into(),
                ))
            }
        };
        let rx_meta: Option<RxMetaKfuncs> = if opts.rx_metadata {
            if xdp_mode == XdpMode::Skb {
                return Err(bpf(crate::bpf::BpfError::DevBoundMode { mode: xdp_mode }));
            }
            xdp_mode = XdpMode::Driver;
            Some(RxMetaKfuncs::vmlinux().map_err(bpf)?)
        } else {
            None
        };
        let code = progs::xsk_redirect_with(&XskRedirectOpts {
            max_len: opts.max_len,
            rx_meta,
        });
        let map = XskMap::new(queues.max(1)).map_err(bpf)?;
        let counters = match opts.max_len {
            Some(_) => Some(PerCpuArray::new(1).map_err(bpf)?),
            None => None,
        };
        let mut fds = vec![map.as_fd()];
        if let Some(c) = &counters {
            fds.push(c.as_fd());
        }
        let load = LoadOptions {
            frags: opts.frags,
            dev_bound_ifindex: rx_meta.map(|_| ifindex),
            ..LoadOptions::default()
        };
        let prog = Program::load_with(ProgramKind::Xdp, &code, &fds, &load).map_err(bpf)?;
        let link = XdpLink::attach(&prog, ifindex, xdp_mode).map_err(bpf)?;
        let reason = link.fallback().map(|f| f.to_string());
        Ok(XskProgram {
            ifname: ifname.to_string(),
            link,
            map,
            reason,
            counters,
            opts: *opts,
        })
    }

    /// The options the program was built with (all off for
    /// [`attach`](XskProgram::attach) and [`attach_code`](XskProgram::attach_code);
    /// `frags` as asked for [`attach_code_frags`](XskProgram::attach_code_frags)).
    pub fn options(&self) -> &SteerOptions {
        &self.opts
    }

    /// Packets the program dropped for being longer than
    /// [`SteerOptions::max_len`] (summed over CPUs), or `None` without a limit
    /// (`bpf(BPF_MAP_LOOKUP_ELEM)`).
    ///
    /// # Errors
    /// [`XskError::Bpf`] when the map cannot be read.
    pub fn oversize_drops(&self) -> Result<Option<u64>, XskError> {
        match &self.counters {
            None => Ok(None),
            Some(c) => c.sum(0).map(Some).map_err(|source| XskError::Bpf {
                ifname: self.ifname.clone(),
                source,
            }),
        }
    }

    /// As [`attach`](XskProgram::attach), with a program of the caller's:
    /// `code` must use map slot 0 as the XSKMAP (e.g. a capture filter that
    /// redirects matching packets by `rx_queue_index` and passes the rest).
    ///
    /// # Errors
    /// As [`attach`](XskProgram::attach); a verifier rejection carries the log.
    pub fn attach_code(
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
        queues: u32,
        code: &crate::bpf::Code,
    ) -> Result<XskProgram, XskError> {
        Self::attach_code_frags(ifname, ifindex, mode, queues, code, false)
    }

    /// As [`attach_code`](XskProgram::attach_code), loading the program
    /// frags-aware when `frags` is set (`BPF_F_XDP_HAS_FRAGS`, kernel 5.18;
    /// [`SteerOptions::frags`]): for `XDP_USE_SG` sockets and interfaces
    /// whose MTU does not fit one buffer. `code` must then read only the
    /// first buffer directly (its `data`..`data_end`).
    ///
    /// # Errors
    /// As [`attach`](XskProgram::attach).
    pub fn attach_code_frags(
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
        queues: u32,
        code: &crate::bpf::Code,
        frags: bool,
    ) -> Result<XskProgram, XskError> {
        let bpf = |source| XskError::Bpf {
            ifname: ifname.to_string(),
            source,
        };
        let mode = match mode {
            AttachMode::Auto => XdpMode::Auto,
            AttachMode::Driver => XdpMode::Driver,
            AttachMode::Skb => XdpMode::Skb,
            AttachMode::None => {
                return Err(XskError::Config(
                    "AttachMode::None attaches no program".into(),
                ))
            }
        };
        let map = XskMap::new(queues.max(1)).map_err(bpf)?;
        let prog = if frags {
            let load = LoadOptions {
                frags: true,
                ..LoadOptions::default()
            };
            Program::load_with(ProgramKind::Xdp, code, &[map.as_fd()], &load)
        } else {
            Program::load_xdp(code, &[map.as_fd()])
        }
        .map_err(bpf)?;
        let link = XdpLink::attach(&prog, ifindex, mode).map_err(bpf)?;
        let reason = link.fallback().map(|f| f.to_string());
        Ok(XskProgram {
            ifname: ifname.to_string(),
            link,
            map,
            reason,
            counters: None,
            opts: SteerOptions {
                frags,
                ..SteerOptions::default()
            },
        })
    }

    /// The mode obtained: [`XdpMode::Driver`] or [`XdpMode::Skb`].
    pub fn mode(&self) -> XdpMode {
        self.link.mode()
    }

    /// Why this mode, when `Auto` fell back to skb mode.
    pub fn mode_reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The link (to ask the kernel whether it is still attached).
    pub fn link(&self) -> &XdpLink {
        &self.link
    }

    /// The XSKMAP the program steers with (slot = receive queue).
    pub fn map(&self) -> &XskMap {
        &self.map
    }

    /// Pins the program's XSKMAP at `path` on a bpffs ([`XskMap::pin`]), so
    /// that another process — an unprivileged worker — can put its own
    /// sockets into it ([`XskMap::from_pinned`],
    /// [`XskSocketBuilder::xsk_map`](super::XskSocketBuilder::xsk_map)).
    /// The pin outlives the program: remove it (`std::fs::remove_file`)
    /// when the program goes. Steering stops when this `XskProgram` is
    /// dropped, pin or not.
    ///
    /// # Errors
    /// [`XskError::Bpf`] with [`BpfError::Pin`](crate::bpf::BpfError::Pin).
    pub fn pin_map(&self, path: impl AsRef<std::path::Path>) -> Result<(), XskError> {
        self.map.pin(path).map_err(|source| XskError::Bpf {
            ifname: self.ifname.clone(),
            source,
        })
    }

    /// Steers queue `queue` to socket `fd` (`bpf(BPF_MAP_UPDATE_ELEM)`).
    ///
    /// # Errors
    /// [`XskError::Config`] when the queue is beyond the map's slots;
    /// [`XskError::Bpf`] when the kernel refuses.
    pub fn insert(&self, queue: u32, fd: BorrowedFd<'_>) -> Result<(), XskError> {
        if queue >= self.map.max_entries() {
            return Err(XskError::Config(format!(
                "queue {queue} is beyond the steering map's {} slot(s) on {}: \
                 create the XskProgram with more queues",
                self.map.max_entries(),
                self.ifname
            )));
        }
        self.map.set(queue, fd).map_err(|source| XskError::Bpf {
            ifname: self.ifname.clone(),
            source,
        })
    }

    /// Stops steering queue `queue` (its packets go to the stack again).
    pub fn remove(&self, queue: u32) -> Result<(), XskError> {
        self.map.unset(queue).map_err(|source| XskError::Bpf {
            ifname: self.ifname.clone(),
            source,
        })
    }
}
