//! Every receive engine gets exactly the bytes that were sent, pattern-checked,
//! also when connections close early, reset, or stall. Each test runs the
//! built `pktio` in a private network namespace over 127.0.0.1.

mod tcp_support;

use std::time::Duration;

use tcp_support::*;

const ENGINES: [&str; 3] = ["blocking", "epoll", "uring"];

fn assert_complete(r: &serde_json::Value, conn: u32, payload: u64) {
    let c = conn_record(r, conn);
    assert_eq!(c["payload_bytes"], payload, "connection {conn}: {c:#}");
    assert_eq!(c["end"], "eof", "connection {conn}: {c:#}");
    assert_eq!(c["verified"], true, "connection {conn}: {c:#}");
    assert_eq!(
        c["problem"],
        serde_json::Value::Null,
        "connection {conn}: {c:#}"
    );
}

#[test]
fn each_engine_receives_exactly_the_bytes_sent() {
    in_private_netns("each_engine_receives_exactly_the_bytes_sent", || {
        for engine in ENGINES {
            for (conns, size) in [(1usize, "64K"), (3, "1K"), (8, "64K")] {
                // An odd length, so the last write is short and unaligned.
                let bytes: u64 = 1_048_576 + 12_345;
                let n = conns.to_string();
                let rx = start_receiver(&["--engine", engine, "--conns", &n, "--verify"]);
                let tx = run_sender(
                    rx.addr,
                    &[
                        "--conns",
                        &n,
                        "--size",
                        size,
                        "--bytes",
                        &bytes.to_string(),
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
                    "{engine} × {conns}: {:?}\n{}\n{}",
                    f.status,
                    f.stdout,
                    f.stderr
                );
                assert_eq!(f.report["engine"], engine);
                assert_eq!(f.report["conns"].as_array().map(Vec::len), Some(conns));
                for i in 0..conns as u32 {
                    assert_complete(&f.report, i, bytes);
                }
                assert_eq!(f.report["bytes"], (bytes + 16) * conns as u64);
                assert!(f.report["cpu_seconds"].as_f64().is_some_and(|c| c >= 0.0));
            }
        }
    });
}

#[test]
fn uring_engine_works_without_bundles_and_with_a_small_buffer_ring() {
    in_private_netns("uring_engine_works_without_bundles", || {
        for extra in [
            &["--no-bundle"][..],
            &["--buffers", "4", "--buf-size", "1K"][..],
        ] {
            let mut args = vec!["--engine", "uring", "--conns", "4", "--verify"];
            args.extend_from_slice(extra);
            let rx = start_receiver(&args);
            let tx = run_sender(
                rx.addr,
                &[
                    "--conns",
                    "4",
                    "--size",
                    "7000",
                    "--bytes",
                    "500000",
                    "--pattern",
                ],
            );
            assert!(tx.status.success());
            let f = rx.finish();
            assert!(f.status.success(), "{extra:?}: {}\n{}", f.stdout, f.stderr);
            for i in 0..4 {
                assert_complete(&f.report, i, 500_000);
            }
        }
    });
}

#[test]
fn early_closing_connections_are_counted_exactly() {
    in_private_netns("early_closing_connections_are_counted_exactly", || {
        for engine in ENGINES {
            let rx = start_receiver(&["--engine", engine, "--conns", "5", "--verify"]);
            let mut only_hello = Script::new(1, 0);
            only_hello.chunk = 16;
            let mut short = Script::new(2, 300_000);
            short.cut_at = Some(16 + 5_000);
            let mut nothing = Script::new(3, 0);
            nothing.cut_at = Some(0);
            let mut odd_chunks = Script::new(4, 77_777);
            odd_chunks.chunk = 333;
            play_all(
                rx.addr,
                &[
                    Script::new(0, 400_000),
                    only_hello,
                    short,
                    nothing,
                    odd_chunks,
                ],
            );
            let f = rx.finish();
            assert!(f.status.success(), "{engine}: {}\n{}", f.stdout, f.stderr);
            assert_complete(&f.report, 0, 400_000);
            assert_complete(&f.report, 1, 0);
            assert_complete(&f.report, 2, 5_000);
            assert_complete(&f.report, 4, 77_777);
            // The connection that sent nothing has no index and no bytes.
            let empty = f.report["conns"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["conn"].is_null()))
                .unwrap_or_else(|| panic!("{engine}: no empty connection in {:#}", f.report));
            assert_eq!(empty["total_bytes"], 0);
            assert_eq!(empty["end"], "eof");
        }
    });
}

#[test]
fn a_connection_closing_inside_the_hello_is_reported() {
    in_private_netns("a_connection_closing_inside_the_hello_is_reported", || {
        for engine in ENGINES {
            let rx = start_receiver(&["--engine", engine, "--conns", "2", "--verify"]);
            let mut cut = Script::new(1, 0);
            cut.cut_at = Some(7);
            play_all(rx.addr, &[Script::new(0, 10_000), cut]);
            let f = rx.finish();
            assert_eq!(
                f.status.code(),
                Some(2),
                "{engine}: {}\n{}",
                f.stdout,
                f.stderr
            );
            assert_complete(&f.report, 0, 10_000);
            assert!(
                f.stderr.contains("closed after 7 of the 16 hello bytes"),
                "{}",
                f.stderr
            );
        }
    });
}

#[test]
fn a_reset_connection_is_reported_and_the_others_complete() {
    in_private_netns("a_reset_connection_is_reported", || {
        for engine in ENGINES {
            let rx = start_receiver(&["--engine", engine, "--conns", "2", "--verify"]);
            let mut rst = Script::new(1, 100_000);
            rst.reset = true;
            play_all(rx.addr, &[Script::new(0, 200_000), rst]);
            let f = rx.finish();
            assert_eq!(
                f.status.code(),
                Some(2),
                "{engine}: {}\n{}",
                f.stdout,
                f.stderr
            );
            assert_complete(&f.report, 0, 200_000);
            let c = conn_record(&f.report, 1);
            assert_eq!(c["end"], "reset", "{engine}: {c:#}");
            // Whatever arrived before the reset was the right data.
            assert_eq!(c["problem"], serde_json::Value::Null, "{engine}: {c:#}");
            assert!(c["payload_bytes"].as_u64().is_some_and(|b| b <= 100_000));
            assert!(
                f.stderr.contains("connection 1: reset by the sender"),
                "{}",
                f.stderr
            );
        }
    });
}

#[test]
fn a_sender_that_stalls_briefly_loses_nothing() {
    in_private_netns("a_sender_that_stalls_briefly_loses_nothing", || {
        for engine in ENGINES {
            let rx = start_receiver(&[
                "--engine",
                engine,
                "--conns",
                "3",
                "--verify",
                "--idle-timeout",
                "10",
            ]);
            let mut slow = Script::new(1, 300_000);
            slow.stall = Some((16 + 100_003, Duration::from_millis(700)));
            let mut slow_hello = Script::new(2, 50_000);
            slow_hello.stall = Some((9, Duration::from_millis(400)));
            play_all(rx.addr, &[Script::new(0, 300_000), slow, slow_hello]);
            let f = rx.finish();
            assert!(f.status.success(), "{engine}: {}\n{}", f.stdout, f.stderr);
            assert_complete(&f.report, 0, 300_000);
            assert_complete(&f.report, 1, 300_000);
            assert_complete(&f.report, 2, 50_000);
        }
    });
}

#[test]
fn a_sender_stalled_past_the_idle_timeout_is_given_up() {
    in_private_netns("a_sender_stalled_past_the_idle_timeout_is_given_up", || {
        for engine in ENGINES {
            let rx = start_receiver(&[
                "--engine",
                engine,
                "--conns",
                "2",
                "--verify",
                "--idle-timeout",
                "1",
            ]);
            let mut stuck = Script::new(1, 20_000);
            stuck.stall = Some((16 + 10_000, Duration::from_secs(3)));
            let addr = rx.addr;
            let senders = std::thread::spawn(move || {
                // The receiver gives up first, so the stuck sender's last writes may fail.
                let _ =
                    std::panic::catch_unwind(|| play_all(addr, &[Script::new(0, 50_000), stuck]));
            });
            let f = rx.finish();
            let _ = senders.join();
            assert_eq!(
                f.status.code(),
                Some(2),
                "{engine}: {}\n{}",
                f.stdout,
                f.stderr
            );
            assert_complete(&f.report, 0, 50_000);
            let c = conn_record(&f.report, 1);
            assert_eq!(c["end"], "stalled", "{engine}: {c:#}");
            assert_eq!(c["payload_bytes"], 10_000, "{engine}: {c:#}");
            assert_eq!(f.report["timed_out"], true);
            assert!(f.stderr.contains("connection 1: stalled"), "{}", f.stderr);
        }
    });
}

#[test]
fn missing_connections_end_the_run_after_the_idle_timeout() {
    in_private_netns("missing_connections_end_the_run", || {
        for engine in ENGINES {
            let rx = start_receiver(&[
                "--engine",
                engine,
                "--conns",
                "3",
                "--verify",
                "--idle-timeout",
                "1",
            ]);
            play_all(rx.addr, &[Script::new(0, 1000), Script::new(1, 1000)]);
            let f = rx.finish();
            assert_eq!(
                f.status.code(),
                Some(2),
                "{engine}: {}\n{}",
                f.stdout,
                f.stderr
            );
            assert_complete(&f.report, 0, 1000);
            assert_complete(&f.report, 1, 1000);
            assert!(
                f.stderr.contains("only 2 of 3 connections arrived"),
                "{}",
                f.stderr
            );
        }
    });
}

#[test]
fn verification_catches_a_sender_without_the_pattern() {
    in_private_netns("verification_catches_a_sender_without_the_pattern", || {
        let rx = start_receiver(&["--engine", "epoll", "--verify"]);
        let tx = run_sender(rx.addr, &["--bytes", "10000"]);
        assert!(tx.status.success());
        let f = rx.finish();
        assert_eq!(f.status.code(), Some(2));
        assert!(f.stderr.contains("use tcp-send --pattern"), "{}", f.stderr);
    });
}

#[test]
fn uring_zc_on_a_device_without_header_split_says_why() {
    in_private_netns("uring_zc_on_a_device_without_header_split_says_why", || {
        let out = std::process::Command::new(BIN)
            .args(["tcp-recv", "--engine", "uring-zc", "--bind", "127.0.0.1:0"])
            .output()
            .expect("run pktio");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(
                "uring-zc: unsupported: the device needs header/data split and flow steering"
            ),
            "{err}"
        );
        assert!(err.contains("interface lo"), "{err}");
        assert!(err.contains("device-less"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    });
}
