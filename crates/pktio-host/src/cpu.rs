//! CPUs: pinning threads (`sched_setaffinity`), reading affinities
//! (`sched_getaffinity`), and CPU sets as the kernel writes them:
//! hexadecimal masks in 32-bit groups separated by commas (`smp_affinity`,
//! `rps_cpus`, `xps_cpus`: `ffffffff,00000000`) and CPU lists (`cpulist`,
//! `online`: `0-5,8`). The mask and list parsers are pure and tested here.

use std::collections::BTreeSet;
use std::io;

use rustix::process::Pid;
use rustix::thread::CpuSet as RawCpuSet;

/// The number of CPUs a `cpu_set_t` holds: pinning to a CPU at or above it
/// is `EINVAL`.
pub const MAX_CPU: usize = RawCpuSet::MAX_CPU;

fn pid_of(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pid {pid} out of range"),
            )
        })
}

fn raw_set(cpus: &[usize]) -> io::Result<RawCpuSet> {
    let mut set = RawCpuSet::new();
    for &c in cpus {
        if c >= MAX_CPU {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        set.set(c);
    }
    Ok(set)
}

/// `sched_setaffinity(pid, cpus)`; `None` is the calling thread.
///
/// # Errors
/// `EINVAL` for a CPU at or above [`MAX_CPU`], or when none of `cpus` is
/// online and allowed; `ESRCH`, `EPERM` from the kernel.
pub fn set_affinity(pid: Option<u32>, cpus: &[usize]) -> io::Result<()> {
    let set = raw_set(cpus)?;
    let pid = pid.map(pid_of).transpose()?;
    rustix::thread::sched_setaffinity(pid, &set).map_err(io::Error::from)
}

/// `sched_getaffinity(pid)` as a list of CPUs, ascending; `None` is the
/// calling thread.
///
/// # Errors
/// `ESRCH` for no such thread.
pub fn affinity(pid: Option<u32>) -> io::Result<Vec<usize>> {
    let pid = pid.map(pid_of).transpose()?;
    let set = rustix::thread::sched_getaffinity(pid)?;
    Ok((0..MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

/// Pins the calling thread to `cpu`: `sched_setaffinity(0, {cpu})`.
///
/// # Errors
/// As [`set_affinity`].
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    set_affinity(None, &[cpu])
}

/// Pins thread `pid` (a NAPI kthread, say) to `cpu`.
///
/// # Errors
/// As [`set_affinity`].
pub fn pin_thread(pid: u32, cpu: usize) -> io::Result<()> {
    set_affinity(Some(pid), &[cpu])
}

/// The CPUs the calling thread may run on, ascending.
///
/// # Errors
/// As [`affinity`].
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    affinity(None)
}

/// A set of CPU numbers.
pub type CpuSet = BTreeSet<u32>;

/// Parses a hexadecimal CPU mask (`f`, `0003`, `ffffffff,00000000`).
/// Returns `None` for anything that is not hexadecimal.
pub fn parse_mask(s: &str) -> Option<CpuSet> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut set = CpuSet::new();
    // Least significant group last; within a group, least significant digit last.
    let digits: Vec<char> = s.chars().filter(|&c| c != ',').collect();
    for (i, c) in digits.iter().rev().enumerate() {
        let v = c.to_digit(16)?;
        for b in 0..4 {
            if v & (1 << b) != 0 {
                set.insert((i * 4 + b) as u32);
            }
        }
    }
    Some(set)
}

/// Formats a CPU set as a mask the kernel accepts (comma every 32 CPUs).
pub fn format_mask(set: &CpuSet) -> String {
    let top = set.iter().next_back().copied().unwrap_or(0);
    let groups = (top / 32 + 1) as usize;
    let mut words = vec![0u32; groups];
    for &c in set {
        words[(c / 32) as usize] |= 1 << (c % 32);
    }
    let mut parts: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate().rev() {
        if i == groups - 1 {
            parts.push(format!("{w:x}"));
        } else {
            parts.push(format!("{w:08x}"));
        }
    }
    parts.join(",")
}

/// Parses a CPU list (`0-3,8,10-11`; empty: no CPU), as sysfs prints
/// them. Returns `None` on malformed input.
pub fn parse_list(s: &str) -> Option<CpuSet> {
    if s.trim().is_empty() {
        return Some(CpuSet::new());
    }
    let ids = crate::idlist::parse_ids(s, "CPU", "a CPU list").ok()?;
    Some(ids.into_iter().collect())
}

/// Formats a CPU set as a short list (`0-3,8`).
pub fn format_list(set: &CpuSet) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_this_thread_and_back() {
        let before = allowed_cpus().unwrap();
        assert!(!before.is_empty());
        let t = std::thread::spawn(move || {
            pin_current_thread(before[0]).unwrap();
            let after = allowed_cpus().unwrap();
            let e = pin_current_thread(MAX_CPU).unwrap_err();
            (after, e.raw_os_error())
        });
        let (after, e) = t.join().unwrap();
        assert_eq!(after, vec![before_first()]);
        assert_eq!(e, Some(libc::EINVAL));
        let me = std::process::id();
        assert!(!affinity(Some(me)).unwrap().is_empty());
        assert!(pin_thread(u32::MAX, 0).is_err());
    }

    fn before_first() -> usize {
        allowed_cpus().unwrap()[0]
    }

    #[test]
    fn masks() {
        assert_eq!(parse_mask("f").unwrap(), (0..4).collect());
        assert_eq!(parse_mask("00000000").unwrap(), CpuSet::new());
        assert_eq!(parse_mask("2").unwrap(), [1].into_iter().collect());
        let upper = parse_mask("ffffffff,00000000").unwrap();
        assert_eq!(upper, (32..64).collect());
        assert_eq!(
            parse_mask("1,00000001").unwrap(),
            [0, 32].into_iter().collect()
        );
        assert!(parse_mask("xyz").is_none());
        assert!(parse_mask("").is_none());
    }

    #[test]
    fn mask_round_trip() {
        for set in [
            CpuSet::from([0]),
            CpuSet::from([1, 2, 3]),
            CpuSet::from([0, 33, 63]),
            (0..96).collect::<CpuSet>(),
        ] {
            assert_eq!(parse_mask(&format_mask(&set)).unwrap(), set);
        }
        assert_eq!(format_mask(&CpuSet::from([1, 2, 3])), "e");
        assert_eq!(format_mask(&CpuSet::from([0, 32])), "1,00000001");
    }

    #[test]
    fn lists() {
        assert_eq!(
            parse_list("0-3,8").unwrap(),
            [0, 1, 2, 3, 8].into_iter().collect()
        );
        assert_eq!(parse_list("").unwrap(), CpuSet::new());
        assert_eq!(parse_list("5\n").unwrap(), CpuSet::from([5]));
        assert!(parse_list("3-1").is_none());
        assert!(parse_list("a").is_none());
        assert_eq!(
            format_list(&[0, 1, 2, 3, 8, 10, 11].into_iter().collect()),
            "0-3,8,10-11"
        );
        assert_eq!(format_list(&CpuSet::new()), "none");
    }
}
