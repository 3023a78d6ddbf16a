//! A full disk: writing into a 64 KiB tmpfs, mounted in a private mount
//! namespace of a thread of this test (so nothing else sees it, and it
//! disappears with the thread), fails with ENOSPC; the file is cut back to
//! its last whole record and reads back — with pktio's reader and with
//! `tshark -r` — with exactly the packets the error says it kept.
//! Needs CAP_SYS_ADMIN (unshare, mount); skipped visibly otherwise.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use pktio::pcap::{FileFormat, PcapError, PcapReader, PcapWriter, Timestamp, WriterOptions};

/// Enters a new mount namespace (this thread only), makes every mount
/// private to it, and mounts a `size`-limited tmpfs on `dir`.
fn private_tmpfs(dir: &Path, size: &str) -> Result<(), String> {
    // SAFETY: unshare(2) with a flag only; affects this thread's mount
    // namespace (the thread owns its fs_struct after CLONE_NEWNS).
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        ));
    }
    let root = CString::new("/").unwrap();
    let none = CString::new("none").unwrap();
    // SAFETY: valid NUL-terminated strings; NULL data is allowed for a
    // propagation change.
    let r = unsafe {
        libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!(
            "mount(MS_PRIVATE): {}",
            std::io::Error::last_os_error()
        ));
    }
    let target = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let fstype = CString::new("tmpfs").unwrap();
    let data = CString::new(format!("size={size}")).unwrap();
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(format!("mount(tmpfs): {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes the mount point directory at the end, even after a panic.
struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn fill_up(path: &Path, format: FileFormat) -> (u64, u64) {
    let mut w = PcapWriter::create(
        path,
        WriterOptions {
            format,
            buffer_size: 10_000,
            ..WriterOptions::default()
        },
    )
    .expect("create on the small tmpfs");
    let frame: Vec<u8> = (0..333u32).map(|i| i as u8).collect();
    let mut err = None;
    for i in 0..10_000u32 {
        let mut f = frame.clone();
        f[..4].copy_from_slice(&i.to_be_bytes());
        if let Err(e) = w.write_packet(Timestamp::now(), &f, f.len() as u32) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("a 64 KiB file system fills up");
    assert!(err.is_disk_full(), "{err}");
    let PcapError::Write {
        kept_packets,
        whole_records,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert!(whole_records, "{err}");
    assert!(kept_packets > 10, "{err}");
    assert!(err.to_string().contains("disk is full"), "{err}");
    assert!(matches!(w.flush(), Err(PcapError::Failed { .. })));
    drop(w);
    (kept_packets, std::fs::metadata(path).unwrap().len())
}

#[test]
fn a_full_disk_leaves_a_readable_file() {
    pktio_lab::skip::skip_unless!(
        &[pktio_lab::skip::Cap::SYS_ADMIN],
        "a private mount namespace with a small tmpfs"
    );
    let dir = std::env::temp_dir().join(format!("pktio-enospc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Dir(dir.clone());
    let d = dir.clone();
    let result = std::thread::spawn(move || -> Result<(), String> {
        private_tmpfs(&d, "64k")?;
        for (name, format) in [
            ("full.pcap", FileFormat::Pcap),
            ("full.pcapng", FileFormat::PcapNg),
        ] {
            let p = d.join(name);
            let (kept, len) = fill_up(&p, format);
            let per = match format {
                FileFormat::Pcap => 16 + 333,
                FileFormat::PcapNg => 32 + 336,
            };
            let header = len - kept * per;
            assert!(
                header > 0 && header < 200,
                "{name}: {len} bytes for {kept} packets"
            );
            // Our reader: every record whole, numbered in order.
            let recs: Vec<_> = PcapReader::open(&p)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(recs.len() as u64, kept);
            for (i, r) in recs.iter().enumerate() {
                assert_eq!(r.data[..4], (i as u32).to_be_bytes());
            }
            // tshark runs in this thread's mount namespace (inherited).
            let out = Command::new("tshark")
                .env("HOME", &d) // no user preferences
                .arg("-r")
                .arg(&p)
                .output()
                .expect("tshark runs (apt-get install tshark; .ci/run installs it)");
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let n = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
            assert_eq!(n, kept, "tshark's count for {name}");
            std::fs::remove_file(&p).unwrap();
        }
        Ok(())
    })
    .join();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(p) => std::panic::resume_unwind(p),
    }
}
