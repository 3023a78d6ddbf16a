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

use std::os::fd::{AsFd, BorrowedFd};

use super::socket::AttachMode;
use super::XskError;
use crate::bpf::{progs, Program, XdpLink, XdpMode, XskMap};

/// An attached XSK steering program and its map. Detached on drop.
#[derive(Debug)]
pub struct XskProgram {
    ifname: String,
    // Field order: the link detaches before the map goes away.
    link: XdpLink,
    map: XskMap,
    reason: Option<String>,
}

impl XskProgram {
    /// Loads `xsk_redirect` with an XSKMAP of `queues` slots and attaches it
    /// to `ifindex` (`bpf(BPF_MAP_CREATE)`, `bpf(BPF_PROG_LOAD)`,
    /// `bpf(BPF_LINK_CREATE)`; kernel 5.9). [`AttachMode::Auto`] tries driver
    /// mode first and falls back to skb mode, recording why.
    ///
    /// # Errors
    /// [`XskError::Bpf`] with the BPF error (privilege, another program
    /// already attached, driver mode unsupported, verifier log).
    pub fn attach(
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
        queues: u32,
    ) -> Result<XskProgram, XskError> {
        Self::attach_code(ifname, ifindex, mode, queues, &progs::xsk_redirect())
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
        let prog = Program::load_xdp(code, &[map.as_fd()]).map_err(bpf)?;
        let link = XdpLink::attach(&prog, ifindex, mode).map_err(bpf)?;
        let reason = link.fallback().map(|f| f.to_string());
        Ok(XskProgram {
            ifname: ifname.to_string(),
            link,
            map,
            reason,
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
