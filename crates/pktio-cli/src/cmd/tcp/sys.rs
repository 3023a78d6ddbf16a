//! The few kernel calls the TCP benchmark makes outside std, rustix and io-uring.
//!
//! Each wrapper names its call; the `unsafe` here is limited to passing
//! pointers to stack structs the kernel fills in.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

/// CPU time used so far by the calling thread: `getrusage(RUSAGE_THREAD)`, user + system.
pub fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time used so far by the whole process: `getrusage(RUSAGE_SELF)`, user + system.
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` that outlives the call; `who` is
    // RUSAGE_THREAD or RUSAGE_SELF, which the kernel always accepts.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Pins the calling thread to one CPU: `sched_setaffinity(0, {cpu})`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    if cpu >= rustix::thread::CpuSet::MAX_CPU {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}

/// The soft limit on open files (`getrlimit(RLIMIT_NOFILE)`), `None` when unlimited.
pub fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// How many file descriptors this process has open now (entries of `/proc/self/fd`).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// `kernel.io_uring_disabled` from procfs: 0 allowed, 1 only for `kernel.io_uring_group`
/// (or CAP_SYS_ADMIN), 2 off for everyone; `None` when the file is absent (before 6.6).
pub fn io_uring_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The interface that holds address `ip`, as `(ifindex, name)`, found with `getifaddrs(3)`.
pub fn interface_of(ip: IpAddr) -> io::Result<Option<(u32, String)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, which stays
        // valid until freeifaddrs below.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: `ifa_addr` is non-null and points to a sockaddr whose family field is valid.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let addr = match family {
            libc::AF_INET => {
                // SAFETY: the family is AF_INET, so the sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
            }
            libc::AF_INET6 => {
                // SAFETY: the family is AF_INET6, so the sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                IpAddr::from(sin6.sin6_addr.s6_addr)
            }
            _ => continue,
        };
        if addr == ip {
            // SAFETY: `ifa_name` is a non-null NUL-terminated string owned by the list.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            // SAFETY: `name` is a valid NUL-terminated C string.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            found = Some((index, name.to_string_lossy().into_owned()));
            break;
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// Moves the calling thread into a new, private network namespace
/// (`unshare(CLONE_NEWNET)`) and brings its loopback up (`ioctl(SIOCSIFFLAGS, IFF_UP)`).
///
/// Threads the caller spawns afterwards start in the same namespace; it
/// disappears when the last of them ends. Needs CAP_SYS_ADMIN.
pub fn enter_private_netns() -> io::Result<()> {
    // SAFETY: CLONE_NEWNET only changes this thread's network namespace; it does not
    // unshare the file table or memory that other threads rely on.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
        .map_err(io::Error::from)?;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").or_else(|_| {
        // Loopback is still down, so binding to 127.0.0.1 may fail; any AF_INET socket will do.
        std::net::UdpSocket::bind("0.0.0.0:0")
    })?;
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero `ifreq` is a valid value of this plain C struct.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq naming "lo"; SIOCGIFFLAGS writes ifru_flags only.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just initialised the flags member of the union.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `ifr` is a valid ifreq naming "lo" with the new flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_grows_with_work() {
        let before = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() == before {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(thread_cpu() > before);
        assert!(process_cpu() >= thread_cpu());
    }

    #[test]
    fn loopback_is_found_by_address() {
        let lo = interface_of(IpAddr::from([127, 0, 0, 1])).unwrap();
        // In a namespace whose lo is down the address is still listed.
        if let Some((index, name)) = lo {
            assert_eq!(name, "lo");
            assert!(index > 0);
        }
        assert_eq!(interface_of(IpAddr::from([192, 0, 2, 77])).unwrap(), None);
    }
}

/// Anonymous, page-aligned, zero-filled memory: `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`,
/// unmapped on drop. Used for memory the kernel reads and writes behind our back
/// (provided-buffer rings, zero-copy areas), which is why it is handed out as a
/// raw pointer rather than a slice.
#[derive(Debug)]
pub struct AnonMap {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl AnonMap {
    /// Maps `len` bytes (rounded up to whole pages by the kernel).
    pub fn new(len: usize) -> io::Result<Self> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh anonymous mapping at an address the kernel picks aliases nothing.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::POPULATE,
            )
        }
        .map_err(io::Error::from)?;
        let ptr = std::ptr::NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(AnonMap { ptr, len })
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length asked for.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for AnonMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and nothing
        // borrows from it any more (its users hold it by reference).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory owned by this value; moving the owner to
// another thread moves the right to use it.
unsafe impl Send for AnonMap {}
