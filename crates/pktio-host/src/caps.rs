//! Capability probes: the effective capability set of a process
//! (`CapEff:` of `/proc/PID/status`), the capabilities pktio cares about by
//! name, and which of a required set are missing (what a privileged test
//! skips on).
//!
//! ```
//! use pktio_host::caps::{self, Cap};
//! let missing = caps::missing(&[Cap::NET_ADMIN, Cap::SYS_ADMIN]).unwrap();
//! if !missing.is_empty() {
//!     eprintln!("SKIPPED: needs {}", caps::names(&missing));
//! }
//! ```

use std::fmt;
use std::io;

use crate::procfs;

/// One Linux capability (`<linux/capability.h>`), by its bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(u8);

impl Cap {
    /// `CAP_SETGID`.
    pub const SETGID: Cap = Cap(6);
    /// `CAP_SETUID`.
    pub const SETUID: Cap = Cap(7);
    /// `CAP_NET_ADMIN`: links, addresses, XDP attach, ethtool writes.
    pub const NET_ADMIN: Cap = Cap(12);
    /// `CAP_NET_RAW`: AF_PACKET and AF_XDP sockets.
    pub const NET_RAW: Cap = Cap(13);
    /// `CAP_IPC_LOCK`: locking UMEM pages beyond `RLIMIT_MEMLOCK`.
    pub const IPC_LOCK: Cap = Cap(14);
    /// `CAP_SYS_ADMIN`: namespaces, mounts, io_uring when restricted.
    pub const SYS_ADMIN: Cap = Cap(21);
    /// `CAP_SYS_RESOURCE`: raising resource limits.
    pub const SYS_RESOURCE: Cap = Cap(24);
    /// `CAP_PERFMON` (5.8+): tracing and BPF programs that read kernel memory.
    pub const PERFMON: Cap = Cap(38);
    /// `CAP_BPF` (5.8+): loading BPF programs and maps.
    pub const BPF: Cap = Cap(39);

    const NAMES: [(Cap, &'static str); 9] = [
        (Cap::SETGID, "CAP_SETGID"),
        (Cap::SETUID, "CAP_SETUID"),
        (Cap::NET_ADMIN, "CAP_NET_ADMIN"),
        (Cap::NET_RAW, "CAP_NET_RAW"),
        (Cap::IPC_LOCK, "CAP_IPC_LOCK"),
        (Cap::SYS_ADMIN, "CAP_SYS_ADMIN"),
        (Cap::SYS_RESOURCE, "CAP_SYS_RESOURCE"),
        (Cap::PERFMON, "CAP_PERFMON"),
        (Cap::BPF, "CAP_BPF"),
    ];

    /// The capability with bit number `bit` (0..64).
    pub const fn from_bit(bit: u8) -> Option<Cap> {
        if bit < 64 {
            Some(Cap(bit))
        } else {
            None
        }
    }

    /// Its bit number.
    pub const fn bit(self) -> u32 {
        self.0 as u32
    }

    /// Its name (`CAP_NET_ADMIN`), or `cap_<bit>` for one not named here.
    pub fn name(self) -> String {
        Self::NAMES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or_else(|| format!("cap_{}", self.0), |(_, n)| (*n).to_string())
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A set of capabilities, as the 64-bit mask `/proc/PID/status` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Whether `cap` is in the set.
    pub fn has(self, cap: Cap) -> bool {
        self.0 & (1u64 << cap.bit()) != 0
    }

    /// Whether every capability of `required` is in the set.
    pub fn has_all(self, required: &[Cap]) -> bool {
        required.iter().all(|&c| self.has(c))
    }

    /// The capabilities of `required` not in the set, in `required`'s order.
    pub fn missing(self, required: &[Cap]) -> Vec<Cap> {
        required.iter().copied().filter(|&c| !self.has(c)).collect()
    }
}

/// `CapEff:` from the text of a `/proc/PID/status` file.
pub fn parse_cap_eff(status: &str) -> Option<CapSet> {
    procfs::status_field(status, "CapEff")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .map(CapSet)
}

/// The effective capabilities of process `pid` (`/proc/PID/status`).
///
/// # Errors
/// Reading the file; `InvalidData` when it has no `CapEff:` line.
pub fn of_process(pid: u32) -> io::Result<CapSet> {
    read(&format!("/proc/{pid}/status"))
}

/// The effective capabilities of this process (`/proc/self/status`).
///
/// # Errors
/// Reading the file; `InvalidData` when it has no `CapEff:` line.
pub fn effective() -> io::Result<CapSet> {
    read("/proc/self/status")
}

fn read(path: &str) -> io::Result<CapSet> {
    let status = std::fs::read_to_string(path)?;
    parse_cap_eff(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no CapEff line in {path}"),
        )
    })
}

/// The capabilities of `required` this process lacks (empty: it has them all).
///
/// # Errors
/// As [`effective`].
pub fn missing(required: &[Cap]) -> io::Result<Vec<Cap>> {
    effective().map(|set| set.missing(required))
}

/// `CAP_NET_ADMIN, CAP_SYS_ADMIN`: names for a message.
pub fn names(caps: &[Cap]) -> String {
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_parses() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let all = parse_cap_eff(s).unwrap();
        assert_eq!(all, CapSet(0x1ff_ffff_ffff));
        assert!(all.has_all(&[Cap::BPF, Cap::PERFMON, Cap::NET_ADMIN]));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
        assert_eq!(parse_cap_eff("CapEff:\tnot hex\n"), None);
        // setcap cap_net_raw,cap_net_admin,cap_ipc_lock,cap_bpf+ep
        let setcap = parse_cap_eff("CapEff:\t0000008000007000\n").unwrap();
        assert!(setcap.has(Cap::NET_RAW) && setcap.has(Cap::BPF));
        assert_eq!(
            setcap.missing(&[Cap::NET_ADMIN, Cap::SYS_ADMIN, Cap::PERFMON]),
            [Cap::SYS_ADMIN, Cap::PERFMON]
        );
        assert!(CapSet(0).missing(&[]).is_empty());
    }

    #[test]
    fn names_and_bits() {
        assert_eq!(Cap::NET_ADMIN.to_string(), "CAP_NET_ADMIN");
        assert_eq!(Cap::from_bit(40).unwrap().name(), "cap_40");
        assert_eq!(Cap::from_bit(64), None);
        assert_eq!(Cap::BPF.bit(), 39);
        assert_eq!(
            names(&[Cap::NET_RAW, Cap::IPC_LOCK]),
            "CAP_NET_RAW, CAP_IPC_LOCK"
        );
    }

    #[test]
    fn this_process_has_a_readable_set() {
        let me = effective().unwrap();
        assert_eq!(of_process(std::process::id()).unwrap(), me);
        assert_eq!(missing(&[]).unwrap(), []);
    }
}
