//! The one conformance suite (`backend_common::conformance`), run against
//! every backend, each in its own lab (the tests run in parallel).
//! Needs root; without it each test prints SKIPPED and returns.

mod backend_common;

use backend_common::{conformance, Subject};
use pktio::backend::{BackendConfig, BackendKind};
use pktio_lab::require_root;

fn none(_: &mut BackendConfig) {}

#[test]
fn conformance_xdp() {
    require_root!();
    conformance(&Subject {
        kind: BackendKind::Xdp,
        tweak: none,
        small: |c| c.ring_size = 64,
    });
}

#[test]
fn conformance_xdp_skb() {
    require_root!();
    conformance(&Subject {
        kind: BackendKind::XdpSkb,
        tweak: none,
        small: |c| c.ring_size = 64,
    });
}

#[test]
fn conformance_packet_v2() {
    require_root!();
    conformance(&Subject {
        kind: BackendKind::PacketV2,
        tweak: |c| c.qdisc_bypass = true,
        small: |c| c.frame_count = 64,
    });
}

#[test]
fn conformance_packet_v3() {
    require_root!();
    conformance(&Subject {
        kind: BackendKind::PacketV3,
        tweak: none,
        small: |c| {
            c.block_size = 4096;
            c.block_count = 2;
        },
    });
}

#[test]
fn conformance_uring() {
    require_root!();
    conformance(&Subject {
        kind: BackendKind::Uring,
        tweak: none,
        small: |c| c.frame_count = 64,
    });
}
