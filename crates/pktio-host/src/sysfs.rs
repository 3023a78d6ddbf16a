//! Small typed readers of `/sys`: attributes of `/sys/class/net/<if>/`
//! and CPU lists (`/sys/devices/system/cpu/online`).
//!
//! `/sys/class/net` lists the interfaces of the network namespace sysfs
//! was *mounted* in, not those of the calling thread's namespace.

use std::io;
use std::path::PathBuf;

use crate::cpu::{parse_list, CpuSet};
use crate::procfs::{parse_number, read_trimmed};

/// `/sys/class/net/<ifname>/<attr>`.
pub fn net_attr_path(ifname: &str, attr: &str) -> PathBuf {
    PathBuf::from("/sys/class/net").join(ifname).join(attr)
}

/// Reads `/sys/class/net/<ifname>/<attr>` (`mtu`, `threaded`,
/// `device/numa_node`, `queues/rx-0/rps_cpus`…), trimmed.
///
/// # Errors
/// Reading the file (`NotFound`: no such interface or attribute).
pub fn net_attr(ifname: &str, attr: &str) -> io::Result<String> {
    read_trimmed(net_attr_path(ifname, attr))
}

/// A numeric `/sys/class/net/<ifname>/<attr>`.
///
/// # Errors
/// As [`net_attr`]; `InvalidData` when the value is not a number.
pub fn net_attr_u64(ifname: &str, attr: &str) -> io::Result<u64> {
    parse_number(&net_attr(ifname, attr)?, &format!("{ifname}/{attr}"))
}

/// The CPUs of a CPU-list file (`/sys/devices/system/cpu/online`).
///
/// # Errors
/// Reading the file; `InvalidData` when it is no CPU list.
pub fn cpu_list(path: &str) -> io::Result<CpuSet> {
    let s = read_trimmed(path)?;
    parse_list(&s).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path} is `{s}`, not a CPU list"),
        )
    })
}

/// The online CPUs (`/sys/devices/system/cpu/online`).
///
/// # Errors
/// As [`cpu_list`].
pub fn online_cpus() -> io::Result<CpuSet> {
    cpu_list("/sys/devices/system/cpu/online")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_attributes() {
        assert_eq!(
            net_attr_path("lo", "mtu"),
            PathBuf::from("/sys/class/net/lo/mtu")
        );
        // sysfs may show another namespace's interfaces, but always a lo.
        assert!(net_attr_u64("lo", "mtu").unwrap() > 0);
        let e = net_attr("pktio-no-such0", "mtu").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(net_attr_u64("lo", "address").is_err());
    }

    #[test]
    fn some_cpu_is_online() {
        assert!(!online_cpus().unwrap().is_empty());
    }
}
