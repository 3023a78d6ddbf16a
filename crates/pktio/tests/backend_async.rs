//! The tokio adapter over every backend: awaiting `rx_batch` returns the
//! frames sent, none lost to a missed wakeup. Needs the `tokio` feature
//! (`cargo test -p pktio --features tokio`) and root.
#![cfg(feature = "tokio")]

mod backend_common;

use std::time::Duration;

use backend_common::{check_exact, open, send_from_gen};
use backend_common::{is_test_frame, test_frames, TEST_PORT};
use pktio::backend::{AsyncBackend, BackendConfig, BackendKind, Direction};
use pktio_lab::{require_root, Lab};

fn async_receive(kind: BackendKind, port: u16) {
    let lab = Lab::new().expect("lab");
    let frames = test_frames(&lab, 200, port);
    let b = lab
        .rx()
        .run(|| open(kind, &BackendConfig::new(lab.rx().ifname()), Direction::Rx));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let got = rt.block_on(async {
        let mut b = AsyncBackend::new(b).expect("register");
        let sender = send_from_gen(&lab, frames.clone());
        let mut got = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(15), async {
            while got.len() < frames.len() {
                b.rx_batch(64, |pkt| {
                    if is_test_frame(pkt, port) {
                        got.push(pkt.to_vec());
                    }
                })
                .await
                .expect("rx_batch");
            }
        })
        .await;
        sender.join().expect("sender");
        assert!(
            r.is_ok(),
            "{kind}: timed out with {} of {} frames",
            got.len(),
            frames.len()
        );
        got
    });
    check_exact(&format!("{kind} async"), &frames, &got);
}

#[test]
fn async_rx_every_backend() {
    require_root!();
    for (i, kind) in BackendKind::ALL.into_iter().enumerate() {
        async_receive(kind, TEST_PORT + 40 + i as u16);
    }
}
