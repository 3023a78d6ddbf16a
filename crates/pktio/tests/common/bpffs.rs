//! A private bpffs for a test: a fresh directory under the temp dir with a
//! bpf filesystem mounted on it, unmounted and removed on drop (also when
//! the test panics). Pins made there never touch `/sys/fs/bpf`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A mounted bpffs; see the module docs.
#[derive(Debug)]
pub struct Bpffs {
    dir: PathBuf,
}

impl Bpffs {
    /// Mounts a bpffs on a new directory named after `tag`, the pid and a
    /// counter (mode 0755: other users may look up pins inside it; the
    /// bpffs root itself is 01777).
    pub fn mount(tag: &str) -> Bpffs {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pktio-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).expect("a directory for the bpffs");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod the bpffs directory");
        let target = CString::new(dir.as_os_str().as_bytes()).expect("no NUL in a temp path");
        // SAFETY: every pointer is a NUL-terminated string that outlives the call; `data` is null, which mount(2) accepts for bpffs.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                target.as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_dir(&dir);
            panic!("mount -t bpf on {}: {e}", dir.display());
        }
        Bpffs { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let Ok(target) = CString::new(self.dir.as_os_str().as_bytes()) else {
            return;
        };
        // SAFETY: `target` is a NUL-terminated path that outlives the call. MNT_DETACH: pins still open elsewhere do not keep the mount busy.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.dir);
    }
}
