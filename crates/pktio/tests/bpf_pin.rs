//! Pinning maps and programs on a bpffs, and opening a pinned XSKMAP:
//! the round trip, and every refusal with its advice (a name taken, nothing
//! pinned, not a bpffs, a map of another type, not a map at all).
//!
//! Each test mounts a private bpffs in a fresh temp directory, removed on
//! drop. Needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN; skips visibly
//! otherwise.

#[path = "common/bpffs.rs"]
mod bpffs;

use pktio::bpf::{progs, ArrayMap, BpfError, Program, XskMap};
use pktio_lab::skip::{skip_unless, Cap};

const NEEDS: &[Cap] = &[Cap::BPF, Cap::NET_ADMIN, Cap::SYS_ADMIN];
const WHY: &str = "BPF maps and a bpffs mount";

#[test]
fn a_pinned_xskmap_opens_as_the_same_map() {
    skip_unless!(NEEDS, WHY);
    let fs = bpffs::Bpffs::mount("pin");
    let path = fs.path().join("xsks");
    let map = XskMap::new(4).unwrap();
    map.pin(&path).unwrap();
    let opened = XskMap::from_pinned(&path).unwrap();
    assert_eq!(opened.max_entries(), 4);
    assert_eq!(opened.id().unwrap(), map.id().unwrap());
    // The map lives on through the pin alone.
    let id = map.id().unwrap();
    drop((map, opened));
    assert_eq!(XskMap::from_pinned(&path).unwrap().id().unwrap(), id);

    // The name is taken now.
    let other = XskMap::new(1).unwrap();
    match other.pin(&path) {
        Err(e @ BpfError::Pin { .. }) => {
            assert_eq!(e.errno(), Some(libc::EEXIST));
            assert!(e.to_string().contains("remove the stale pin"), "{e}");
        }
        other => panic!("expected Pin, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    match XskMap::from_pinned(&path) {
        Err(e @ BpfError::OpenPinned { .. }) => {
            assert_eq!(e.errno(), Some(libc::ENOENT));
            assert!(e.to_string().contains("nothing is pinned there"), "{e}");
        }
        other => panic!("expected OpenPinned, got {other:?}"),
    }
}

#[test]
fn pinning_outside_a_bpffs_is_refused_with_advice() {
    skip_unless!(NEEDS, WHY);
    let map = XskMap::new(1).unwrap();
    let path = std::env::temp_dir().join(format!("pktio-not-bpffs-{}", std::process::id()));
    match map.pin(&path) {
        Err(e @ BpfError::Pin { .. }) => {
            assert_eq!(e.errno(), Some(libc::EPERM), "{e}");
            assert!(e.to_string().contains("mount -t bpf"), "{e}");
        }
        other => panic!("expected Pin, got {other:?}"),
    }
    assert!(!path.exists());
}

#[test]
fn only_an_xskmap_opens_as_one() {
    skip_unless!(NEEDS, WHY);
    let fs = bpffs::Bpffs::mount("pin");
    // A map of another type.
    let array = ArrayMap::new(2).unwrap();
    let a = fs.path().join("array");
    array.pin(&a).unwrap();
    match XskMap::from_pinned(&a) {
        Err(
            e @ BpfError::NotAnXskMap {
                map_type: Some(2),
                key_size: 4,
                value_size: 8,
                ..
            },
        ) => assert!(
            e.to_string().contains("is not an XSKMAP (map type 2"),
            "{e}"
        ),
        other => panic!("expected NotAnXskMap, got {other:?}"),
    }
    // Not a map at all.
    let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
    let p = fs.path().join("prog");
    prog.pin(&p).unwrap();
    match XskMap::from_pinned(&p) {
        Err(e @ BpfError::NotAnXskMap { map_type: None, .. }) => {
            assert!(e.to_string().contains("not a BPF map"), "{e}")
        }
        other => panic!("expected NotAnXskMap, got {other:?}"),
    }
    std::fs::remove_file(&a).unwrap();
    std::fs::remove_file(&p).unwrap();
}
