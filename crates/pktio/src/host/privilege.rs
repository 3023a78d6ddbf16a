//! Dropping root after the capture is open (`tcpdump -Z USER`).
//!
//! The order is tcpdump's: `setgroups` to the user's supplementary groups,
//! then `setresgid`, then `setresuid` (real, effective and saved ids all
//! set, so root cannot be taken back). Any failure is an error: the
//! caller must not go on with privileges it meant to give up.
//!
//! Threads: the raw Linux system calls change the credentials of the
//! calling thread only. glibc's `setgroups`, `setresgid` and `setresuid`
//! apply them to every thread of the process (its "setxid" broadcast),
//! which is why these go through libc, not through a raw syscall. Call
//! [`User::become_user`] before spawning threads anyway: then no thread
//! ever runs with the old credentials while others have the new ones.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;

/// A user account from the password database (`getpwnam_r`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Every group of the user, the primary one included (`getgrouplist`).
    pub groups: Vec<u32>,
}

impl User {
    /// Looks `name` up in the password and group databases (NSS: files,
    /// LDAP, …). An unknown user is an `io::ErrorKind::NotFound` error.
    pub fn lookup(name: &str) -> io::Result<User> {
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a user name has no NUL"))?;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: an all-zero passwd is a valid value (null pointers,
            // zero ids); getpwnam_r only writes into it.
            let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            // SAFETY: cname is NUL-terminated; pw, buf (with its true
            // length) and found are valid for writes for the call; the
            // strings pw points to live in buf, read below while buf lives.
            let rc = unsafe {
                libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut found,
                )
            };
            if rc == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            if found.is_null() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no user {name:?} in the password database"),
                ));
            }
            // SAFETY: pw.pw_name points into buf, NUL-terminated (getpwnam_r succeeded).
            let login = unsafe { CStr::from_ptr(pw.pw_name) }
                .to_string_lossy()
                .into_owned();
            let (uid, gid) = (pw.pw_uid, pw.pw_gid);
            let groups = group_list(&cname, gid)?;
            return Ok(User {
                name: login,
                uid,
                gid,
                groups,
            });
        }
    }

    /// Makes the whole process this user: supplementary groups, then the
    /// group ids, then the user ids (real, effective, saved), and checks
    /// the result. Needs CAP_SETUID and CAP_SETGID.
    pub fn become_user(&self) -> io::Result<()> {
        let groups: Vec<libc::gid_t> = self.groups.clone();
        // SAFETY: groups is a valid array of groups.len() gid_t values.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
            return Err(step("setgroups"));
        }
        // SAFETY: plain system call wrappers on integer arguments.
        if unsafe { libc::setresgid(self.gid, self.gid, self.gid) } != 0 {
            return Err(step("setresgid"));
        }
        // SAFETY: as above.
        if unsafe { libc::setresuid(self.uid, self.uid, self.uid) } != 0 {
            return Err(step("setresuid"));
        }
        // SAFETY: getuid/getgid/geteuid/getegid cannot fail.
        let now = unsafe {
            (
                libc::getuid(),
                libc::geteuid(),
                libc::getgid(),
                libc::getegid(),
            )
        };
        if now != (self.uid, self.uid, self.gid, self.gid) {
            return Err(io::Error::other(format!(
                "the ids after the drop are {now:?}, not {}/{}",
                self.uid, self.gid
            )));
        }
        Ok(())
    }
}

/// Looks `user` up and becomes it ([`User::lookup`], [`User::become_user`]).
pub fn drop_privileges(user: &str) -> io::Result<User> {
    let u = User::lookup(user)?;
    u.become_user()?;
    Ok(u)
}

fn step(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// `getgrouplist`: the user's groups, `gid` included.
fn group_list(name: &CStr, gid: u32) -> io::Result<Vec<u32>> {
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: name is NUL-terminated; groups holds n entries and n is
        // valid for writes; getgrouplist writes at most n entries.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        if n <= asked {
            n = asked * 2;
        }
        if n > 65536 {
            return Err(io::Error::other("getgrouplist: more than 65536 groups"));
        }
    }
}
