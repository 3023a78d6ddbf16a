//! Which XDP program an interface already runs: asked when an attach finds
//! the interface taken, so the error can name the program and, for
//! libxdp's multi-program dispatcher, its component programs.
//!
//! The kernel reports an interface's XDP program ids only over netlink
//! (`RTM_GETLINK`, `IFLA_XDP_{DRV,SKB,HW}_PROG_ID`); the names come from
//! `bpf(BPF_PROG_GET_FD_BY_ID)` and `bpf(BPF_OBJ_GET_INFO_BY_FD)`, which
//! need `CAP_SYS_ADMIN` (without it the names stay unknown, the ids do not).
//!
//! # libxdp's dispatcher
//!
//! libxdp (xdp-tools: `xdp-loader`, and daemons built on it) shares an
//! interface between several XDP programs by attaching one program named
//! `xdp_dispatcher`, which calls its components through `freplace`
//! (`BPF_PROG_TYPE_EXT`) slots. It pins each component under
//! `<bpffs>/xdp/dispatch-<ifindex>-<dispatcher id>/prog<N>-prog` (`<bpffs>`
//! is `$LIBXDP_BPFFS` or `/sys/fs/bpf`); that is where
//! [`AttachedProgram::components`] comes from.

use std::fmt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::BpfError;
use crate::sys::bpf as sys;

/// The name libxdp gives its multi-program dispatcher.
pub const LIBXDP_DISPATCHER: &str = "xdp_dispatcher";

/// Where an attached program runs, as `IFLA_XDP` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachedMode {
    /// Driver (native) mode (`IFLA_XDP_DRV_PROG_ID`).
    Driver,
    /// Skb (generic) mode (`IFLA_XDP_SKB_PROG_ID`).
    Skb,
    /// Offloaded to the NIC (`IFLA_XDP_HW_PROG_ID`).
    Hardware,
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachedMode::Driver => "driver (native) mode",
            AttachedMode::Skb => "skb (generic) mode",
            AttachedMode::Hardware => "hardware offload",
        })
    }
}

/// A component of libxdp's dispatcher (one of its `freplace` slots).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// The slot (`N` of `prog<N>-prog`).
    pub slot: u32,
    /// The program's id.
    pub id: u32,
    /// The program's name.
    pub name: String,
}

/// An XDP program attached to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachedProgram {
    /// The interface.
    pub ifindex: u32,
    /// The program's id (`bpftool prog show id N`).
    pub id: u32,
    /// Its name, or `None` when it could not be read (reading it needs
    /// `CAP_SYS_ADMIN`).
    pub name: Option<String>,
    /// Where it runs.
    pub mode: AttachedMode,
    /// For libxdp's dispatcher, its component programs as libxdp pinned
    /// them (empty when none are pinned or they could not be read).
    pub components: Vec<Component>,
}

impl AttachedProgram {
    /// Whether this is libxdp's multi-program dispatcher (by its name,
    /// `xdp_dispatcher`).
    pub fn is_libxdp_dispatcher(&self) -> bool {
        self.name.as_deref() == Some(LIBXDP_DISPATCHER)
    }
}

impl fmt::Display for AttachedProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "program \"{n}\" (id {}, {})", self.id, self.mode)?,
            None => write!(f, "program id {} ({})", self.id, self.mode)?,
        }
        if self.is_libxdp_dispatcher() {
            f.write_str(", libxdp's multi-program dispatcher (xdp-tools)")?;
            if !self.components.is_empty() {
                f.write_str(" running ")?;
                for (i, c) in self.components.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}\"{}\" (id {})", c.name, c.id)?;
                }
            }
        }
        Ok(())
    }
}

/// The XDP programs attached to interface `ifindex` in the calling thread's
/// network namespace (usually one; a driver-mode and an skb-mode program can
/// coexist), with names and dispatcher components where they can be read.
///
/// # Errors
/// [`BpfError::Sys`] when netlink cannot be asked (no such interface:
/// `ENODEV`).
pub fn attached_programs(ifindex: u32) -> Result<Vec<AttachedProgram>, BpfError> {
    let call = "netlink RTM_GETLINK (IFLA_XDP)";
    let ids = pktio_host::netlink::route::Route::new()
        .and_then(|mut r| r.xdp_prog_ids(ifindex))
        .map_err(crate::error::sys_error(call))?;
    let mut out = Vec::new();
    for (id, mode) in [
        (ids.drv, AttachedMode::Driver),
        (ids.skb, AttachedMode::Skb),
        (ids.hw, AttachedMode::Hardware),
    ] {
        if id == 0 {
            continue;
        }
        let name = prog_name(id);
        let mut p = AttachedProgram {
            ifindex,
            id,
            name,
            mode,
            components: Vec::new(),
        };
        if p.is_libxdp_dispatcher() {
            p.components = dispatcher_components(&libxdp_bpffs_dir(), ifindex, id);
        }
        out.push(p);
    }
    Ok(out)
}

/// The name of loaded program `id`, if this process may read it.
fn prog_name(id: u32) -> Option<String> {
    let fd = sys::prog_get_fd_by_id(id).ok()?;
    let info = sys::prog_info(fd.as_fd()).ok()?;
    Some(info.name())
}

/// libxdp's pin directory: `$LIBXDP_BPFFS/xdp`, or `/sys/fs/bpf/xdp`.
fn libxdp_bpffs_dir() -> PathBuf {
    let base = std::env::var_os("LIBXDP_BPFFS").unwrap_or_else(|| "/sys/fs/bpf".into());
    Path::new(&base).join("xdp")
}

/// The components pinned under `<dir>/dispatch-<ifindex>-<id>/prog<N>-prog`,
/// by slot. Unreadable entries are left out.
fn dispatcher_components(dir: &Path, ifindex: u32, id: u32) -> Vec<Component> {
    let pins = dir.join(format!("dispatch-{ifindex}-{id}"));
    let Ok(entries) = std::fs::read_dir(&pins) else {
        return Vec::new();
    };
    let mut out: Vec<Component> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name();
            let slot = slot_of(name.to_str()?)?;
            let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(
                e.path().as_os_str(),
            ))
            .ok()?;
            let fd = sys::obj_get(&c).ok()?;
            let info = sys::prog_info(fd.as_fd()).ok()?;
            Some(Component {
                slot,
                id: info.id,
                name: info.name(),
            })
        })
        .collect();
    out.sort_by_key(|c| c.slot);
    out
}

/// `N` of a pin named `prog<N>-prog`.
fn slot_of(file: &str) -> Option<u32> {
    file.strip_prefix("prog")?
        .strip_suffix("-prog")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_pin_names() {
        assert_eq!(slot_of("prog0-prog"), Some(0));
        assert_eq!(slot_of("prog12-prog"), Some(12));
        assert_eq!(slot_of("prog0-link"), None);
        assert_eq!(slot_of("progx-prog"), None);
    }

    #[test]
    fn display_names_the_dispatcher_and_its_components() {
        let p = AttachedProgram {
            ifindex: 3,
            id: 41,
            name: Some(LIBXDP_DISPATCHER.into()),
            mode: AttachedMode::Skb,
            components: vec![Component {
                slot: 0,
                id: 42,
                name: "xdp_filter".into(),
            }],
        };
        assert!(p.is_libxdp_dispatcher());
        assert_eq!(
            p.to_string(),
            "program \"xdp_dispatcher\" (id 41, skb (generic) mode), libxdp's multi-program \
             dispatcher (xdp-tools) running \"xdp_filter\" (id 42)"
        );
        let q = AttachedProgram {
            name: None,
            components: vec![],
            ..p
        };
        assert!(!q.is_libxdp_dispatcher());
        assert_eq!(q.to_string(), "program id 41 (skb (generic) mode)");
    }
}
