//! Small typed readers of `/proc`: sysctls (`/proc/sys`), fields of
//! `/proc/PID/status`, a process's name and start time (`/proc/PID/stat`).
//!
//! The parsers are pure and tested here; the readers are thin `std::fs`
//! calls. Files under `/proc/sys/net` resolve to the network namespace of
//! the thread that opens them.

use std::io;
use std::path::PathBuf;

/// The `/proc/sys` file of a sysctl: `net.core.rmem_max` (dots) or
/// `net/ipv6/conf/eth0.1/disable_ipv6` (slashes, for keys whose parts hold
/// dots, such as VLAN interface names).
pub fn sysctl_path(key: &str) -> PathBuf {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    PathBuf::from("/proc/sys").join(rel)
}

/// Reads a sysctl, trimmed (`net.core.max_skb_frags` → `"17"`).
///
/// # Errors
/// Reading the file (`NotFound` for a key this kernel does not have).
pub fn sysctl(key: &str) -> io::Result<String> {
    read_trimmed(sysctl_path(key))
}

/// Reads a numeric sysctl.
///
/// # Errors
/// As [`sysctl`]; `InvalidData` when the value is not a number.
pub fn sysctl_u64(key: &str) -> io::Result<u64> {
    parse_number(&sysctl(key)?, key)
}

/// Writes a sysctl (`value` as the file's new contents).
///
/// # Errors
/// Writing the file (`NotFound`, `EACCES`/`EPERM` without privilege).
pub fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    std::fs::write(sysctl_path(key), value)
}

/// Reads a text file holding one value and trims it.
///
/// # Errors
/// Reading the file.
pub fn read_trimmed(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string())
}

/// A number read from a one-value file, with `what` naming it in the error.
pub(crate) fn parse_number(s: &str, what: &str) -> io::Result<u64> {
    s.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} is `{s}`, not a number"),
        )
    })
}

/// The value of field `name` (`CapEff`, `Threads`, `VmRSS`…) in the text of
/// a `/proc/PID/status` file, trimmed.
pub fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim())
    })
}

/// Field `name` of this process's `/proc/self/status`.
///
/// # Errors
/// Reading the file; `NotFound` when it has no such field.
pub fn self_status_field(name: &str) -> io::Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status_field(&status, name)
        .map(str::to_string)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no {name} in /proc/self/status"),
            )
        })
}

/// The fields of a `/proc/PID/stat` line after the command name, which may
/// hold spaces and parentheses: the first one returned is field 3 (`state`).
pub fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().collect())
}

/// Field `n` (1-based, as `proc(5)` numbers them; `n >= 3`) of a
/// `/proc/PID/stat` line, as a number.
pub fn stat_field(stat: &str, n: usize) -> Option<u64> {
    stat_fields(stat)?.get(n.checked_sub(3)?)?.parse().ok()
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, clock
/// ticks since boot): with the pid, it names one process for good, where a
/// pid alone is reused.
///
/// # Errors
/// Reading the file (`NotFound`: no such process); `InvalidData` for a
/// line without the field.
pub fn start_time(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)?;
    stat_field(&stat, 22).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no start time in {path}"),
        )
    })
}

/// The name of process or thread `pid` (`/proc/PID/comm`, trimmed).
///
/// # Errors
/// Reading the file (`NotFound`: no such process, or one in another PID
/// namespace).
pub fn comm(pid: u32) -> io::Result<String> {
    read_trimmed(format!("/proc/{pid}/comm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("net.core.rmem_max"),
            PathBuf::from("/proc/sys/net/core/rmem_max")
        );
        assert_eq!(
            sysctl_path("net/ipv6/conf/eth0.1/disable_ipv6"),
            PathBuf::from("/proc/sys/net/ipv6/conf/eth0.1/disable_ipv6")
        );
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tpktio\nCapEff:\t000001ffffffffff\nThreads:\t3\n";
        assert_eq!(status_field(s, "CapEff"), Some("000001ffffffffff"));
        assert_eq!(status_field(s, "Threads"), Some("3"));
        assert_eq!(status_field(s, "Cap"), None);
        assert_eq!(status_field(s, "Nope"), None);
    }

    #[test]
    fn stat_fields_skip_an_odd_command_name() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 \
                    98765 1000 10 18446744073709551615";
        assert_eq!(stat_fields(stat).unwrap()[0], "S");
        assert_eq!(stat_field(stat, 4), Some(1));
        assert_eq!(stat_field(stat, 14), Some(7), "utime");
        assert_eq!(stat_field(stat, 22), Some(98765), "starttime");
        assert_eq!(stat_field(stat, 2), None);
        assert_eq!(stat_field("no paren", 3), None);
    }

    #[test]
    fn readers_of_this_process() {
        let me = std::process::id();
        assert!(start_time(me).unwrap() > 0);
        assert_eq!(start_time(me).unwrap(), start_time(me).unwrap());
        assert!(!comm(me).unwrap().is_empty());
        assert!(self_status_field("CapEff").is_ok());
        assert_eq!(
            self_status_field("NoSuchField").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(sysctl_u64("kernel.pid_max").unwrap() > 0);
        assert_eq!(
            sysctl("net.core.no_such_key").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            parse_number("x", "k").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
