//! Attaching an XDP program to an interface through a `bpf_link`
//! (`BPF_LINK_CREATE`), which detaches when its fd closes — when the
//! [`XdpLink`] is dropped or the process dies.
//!
//! A link cannot be replaced behind its owner's back: while it exists, other
//! attaches to the same interface fail with `EBUSY`/`EEXIST`, which is
//! reported as [`BpfError::Busy`], naming the program already there
//! ([`super::attached_programs`]). Netlink attachment (`IFLA_XDP`, for
//! kernels before 5.9) is not implemented.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{BpfError, Program};
use crate::error::SysError;
use crate::sys::bpf as sys;

/// Where in the receive path the program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// Try [`XdpMode::Driver`]; if the driver refuses (`EOPNOTSUPP` or
    /// `EINVAL`), use [`XdpMode::Skb`] and say why in [`XdpLink::fallback`].
    /// Only ever requested; a link reports the mode it got.
    Auto,
    /// Native XDP in the driver (`XDP_FLAGS_DRV_MODE`): before any skb is
    /// built. Needs driver support (veth, most 10G+ NICs).
    Driver,
    /// Generic XDP (`XDP_FLAGS_SKB_MODE`): after the skb is built. Works on
    /// every interface, slower.
    Skb,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Driver => sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Skb => sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Auto => "auto",
            XdpMode::Driver => "driver (native)",
            XdpMode::Skb => "skb (generic)",
        })
    }
}

/// Why an [`XdpMode::Auto`] attach ended up in skb mode.
#[derive(Debug)]
pub struct Fallback {
    /// The refused driver-mode attach (`EOPNOTSUPP`: the driver has no native
    /// XDP; `EINVAL`: it refused this configuration, e.g. an MTU too large).
    pub driver_error: SysError,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "driver (native) mode was refused ({}), attached in skb (generic) mode",
            self.driver_error.source
        )
    }
}

/// What the kernel reports about a link, `bpf(BPF_OBJ_GET_INFO_BY_FD)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's id (`bpftool link`).
    pub id: u32,
    /// The attached program's id (see [`Program::id`]).
    pub prog_id: u32,
    /// The interface, or `None` once it went away (which detaches the link).
    pub ifindex: Option<u32>,
}

/// An XDP program attached to an interface. Dropping it detaches the program.
#[derive(Debug)]
pub struct XdpLink {
    fd: OwnedFd,
    ifindex: u32,
    mode: XdpMode,
    fallback: Option<Fallback>,
}

impl XdpLink {
    /// Attaches `prog` to interface `ifindex` (in the calling thread's network
    /// namespace), `bpf(BPF_LINK_CREATE, attach_type = BPF_XDP)` with
    /// `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`. The link holds its own
    /// reference to the program: `prog` may be dropped afterwards.
    ///
    /// With [`XdpMode::Auto`], tries driver mode and falls back to skb mode
    /// on `EOPNOTSUPP` or `EINVAL`; [`XdpLink::mode`] and
    /// [`XdpLink::fallback`] then say what happened.
    ///
    /// # Errors
    ///
    /// - [`BpfError::Busy`]: another program is attached (`EBUSY`, or
    ///   `EEXIST` when it is attached in the other mode); the error names it
    ///   (asked over netlink right after the refusal).
    /// - [`BpfError::NoSuchInterface`] (`EINVAL` for an index that does not
    ///   exist, as `ioctl(SIOCGIFNAME)` then confirms; or `ENODEV`).
    /// - [`BpfError::Permission`] (`EPERM`: needs `CAP_NET_ADMIN` and `CAP_BPF`).
    /// - [`BpfError::ModeUnsupported`]: driver mode asked for explicitly on a
    ///   driver without native XDP (`EOPNOTSUPP`).
    /// - [`BpfError::MtuTooLarge`]: a single-buffer program on an interface
    ///   whose MTU needs several buffers per frame (`ERANGE`).
    /// - [`BpfError::Attach`]: anything else, e.g. `EINVAL` on kernels before 5.9.
    ///
    /// Minimum kernel: 5.9 (XDP links).
    pub fn attach(prog: &Program, ifindex: u32, mode: XdpMode) -> Result<XdpLink, BpfError> {
        match mode {
            XdpMode::Driver | XdpMode::Skb => Ok(XdpLink {
                fd: attach_once(prog, ifindex, mode)?,
                ifindex,
                mode,
                fallback: None,
            }),
            XdpMode::Auto => match attach_once(prog, ifindex, XdpMode::Driver) {
                Ok(fd) => Ok(XdpLink {
                    fd,
                    ifindex,
                    mode: XdpMode::Driver,
                    fallback: None,
                }),
                Err(BpfError::ModeUnsupported { source, .. }) => {
                    XdpLink::attach_skb_after(prog, ifindex, source)
                }
                Err(BpfError::Attach { source, .. }) if source.errno() == Some(libc::EINVAL) => {
                    XdpLink::attach_skb_after(prog, ifindex, source)
                }
                Err(other) => Err(other),
            },
        }
    }

    fn attach_skb_after(
        prog: &Program,
        ifindex: u32,
        driver_error: SysError,
    ) -> Result<XdpLink, BpfError> {
        Ok(XdpLink {
            fd: attach_once(prog, ifindex, XdpMode::Skb)?,
            ifindex,
            mode: XdpMode::Skb,
            fallback: Some(Fallback { driver_error }),
        })
    }

    /// The interface index attached to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode obtained: [`XdpMode::Driver`] or [`XdpMode::Skb`].
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Why an [`XdpMode::Auto`] attach fell back to skb mode, if it did.
    pub fn fallback(&self) -> Option<&Fallback> {
        self.fallback.as_ref()
    }

    /// The link as the kernel sees it, `bpf(BPF_OBJ_GET_INFO_BY_FD)`:
    /// `ifindex` is `None` once the interface went away.
    ///
    /// # Errors
    ///
    /// [`BpfError::Sys`] if the kernel refuses (it should not for a live fd).
    pub fn info(&self) -> Result<LinkInfo, BpfError> {
        let info = sys::link_info(self.fd.as_fd())?;
        debug_assert_eq!(info.link_type, sys::BPF_LINK_TYPE_XDP);
        Ok(LinkInfo {
            id: info.id,
            prog_id: info.prog_id,
            ifindex: (info.xdp_ifindex != 0).then_some(info.xdp_ifindex),
        })
    }

    /// Detaches now and reports errors (dropping detaches too, silently),
    /// `bpf(BPF_LINK_DETACH)`, then closes the link.
    ///
    /// # Errors
    ///
    /// [`BpfError::Sys`]; the link is closed either way.
    ///
    /// Minimum kernel: 5.9.
    pub fn detach(self) -> Result<(), BpfError> {
        sys::link_detach(self.fd.as_fd()).map_err(BpfError::from_sys)
    }
}

impl AsFd for XdpLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn attach_once(prog: &Program, ifindex: u32, mode: XdpMode) -> Result<OwnedFd, BpfError> {
    sys::link_create(prog.as_fd(), ifindex, sys::BPF_XDP, mode.flags()).map_err(|source| {
        match source.errno() {
            Some(libc::EBUSY) | Some(libc::EEXIST) => BpfError::Busy {
                ifindex,
                mode,
                attached: super::attached_programs(ifindex).unwrap_or_default(),
                source,
            },
            Some(libc::ENODEV) => BpfError::NoSuchInterface { ifindex, source },
            // bpf_xdp_link_attach answers EINVAL for a missing interface.
            Some(libc::EINVAL) if sys::ifindex_exists(ifindex) == Some(false) => {
                BpfError::NoSuchInterface { ifindex, source }
            }
            Some(libc::EPERM) => BpfError::Permission {
                source,
                caps_held: crate::error::holds_bpf_capabilities(),
            },
            Some(libc::EOPNOTSUPP) => BpfError::ModeUnsupported {
                ifindex,
                mode,
                source,
            },
            Some(libc::ERANGE) => BpfError::MtuTooLarge {
                ifindex,
                mode,
                source,
            },
            _ => BpfError::Attach {
                ifindex,
                mode,
                source,
            },
        }
    })
}
