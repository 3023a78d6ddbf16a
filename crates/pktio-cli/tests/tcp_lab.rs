//! `pktio tcp-recv` in the lab's rx namespace, `pktio tcp-send` in its gen
//! namespace, over the veth pair: exact, pattern-checked bytes per engine,
//! and the documented refusal of zero-copy receive on veth.

mod tcp_support;

use tcp_support::*;

#[test]
fn every_engine_receives_exactly_the_bytes_sent_over_the_lab_veth() {
    pktio_lab::require_root!();
    let lab = pktio_lab::Lab::new().expect("lab");
    let bind = lab.rx().addr().socket_addr(0).to_string();
    for engine in ["blocking", "epoll", "uring"] {
        for conns in [1usize, 8] {
            let n = conns.to_string();
            let mut rx = lab.rx().command(BIN);
            rx.args(["tcp-recv", "--lab", "--json", "--bind", &bind]);
            rx.args(["--engine", engine, "--conns", &n, "--verify"]);
            let rx = start_receiver_cmd(rx);
            let tx = run_sender_cmd(
                lab.gen().command(BIN),
                rx.addr,
                &[
                    "--lab",
                    "--conns",
                    &n,
                    "--size",
                    "1K",
                    "--bytes",
                    "300001",
                    "--pattern",
                ],
            );
            assert!(
                tx.status.success(),
                "tcp-send: {}",
                String::from_utf8_lossy(&tx.stderr)
            );
            let f = rx.finish();
            assert!(
                f.status.success(),
                "{engine} × {conns}: {}\n{}",
                f.stdout,
                f.stderr
            );
            for i in 0..conns as u32 {
                let c = conn_record(&f.report, i);
                assert_eq!(c["payload_bytes"], 300_001, "{c:#}");
                assert_eq!(c["verified"], true, "{c:#}");
                assert_eq!(c["end"], "eof", "{c:#}");
            }
        }
    }
}

#[test]
fn uring_zc_on_veth_returns_the_documented_unsupported_error() {
    pktio_lab::require_root!();
    let lab = pktio_lab::Lab::new().expect("lab");
    let bind = lab.rx().addr().socket_addr(0).to_string();
    let out = lab
        .rx()
        .command(BIN)
        .args(["tcp-recv", "--lab", "--engine", "uring-zc", "--bind", &bind])
        .output()
        .expect("run pktio");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("uring-zc: unsupported: the device needs header/data split and flow steering"),
        "{err}"
    );
    assert!(
        err.contains(&format!("interface {}", lab.rx().ifname())),
        "{err}"
    );
    assert!(err.contains("Operation not supported"), "{err}");
    assert!(err.contains("device-less zcrx test mode"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
