//! Bad input to `pktio tcp-recv` / `tcp-send`: a clear message and a non-zero exit, never a panic.

mod tcp_support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use tcp_support::*;

fn pktio(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    c
}

fn assert_fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_port_in_use_is_refused() {
    // Binding to loopback sends nothing anywhere.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr").to_string();
    for engine in ["blocking", "epoll", "uring"] {
        let out = pktio(&["tcp-recv", "--engine", engine, "--bind", &addr])
            .output()
            .expect("run");
        assert_fails_with(&out, "is already in use: pick another port with --bind");
    }
}

#[test]
fn addresses_outside_the_lab_are_refused_in_lab_mode() {
    let out = pktio(&["tcp-recv", "--lab", "--bind", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_fails_with(&out, "127.0.0.1 is outside the lab");
    // Refused before any connection is attempted.
    let out = pktio(&[
        "tcp-send",
        "--lab",
        "--to",
        "192.0.2.1:5201",
        "--bytes",
        "1",
    ])
    .output()
    .expect("run");
    assert_fails_with(
        &out,
        "192.0.2.1 is outside the lab: with --lab, addresses must be in 198.18.0.0/15",
    );
}

#[test]
fn more_connections_than_the_fd_limit_are_refused() {
    for args in [
        &["tcp-recv", "--conns", "100", "--bind", "127.0.0.1:0"][..],
        &[
            "tcp-send",
            "--conns",
            "100",
            "--to",
            "127.0.0.1:9",
            "--bytes",
            "1",
        ][..],
    ] {
        let mut c = pktio(args);
        // SAFETY: only async-signal-safe setrlimit runs between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 32,
                    rlim_max: 32,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = c.output().expect("run");
        assert_fails_with(&out, "but RLIMIT_NOFILE allows 32: raise it (`ulimit -n");
    }
}

/// Installs a seccomp filter that makes io_uring_setup(2) fail with ENOSYS,
/// as on a kernel without io_uring.
fn forbid_io_uring(c: &mut Command) {
    // SAFETY: only prctl(2), async-signal-safe, runs between fork and exec; the
    // filter program lives on the stack for the duration of the call.
    unsafe {
        c.pre_exec(|| {
            const NR_IO_URING_SETUP: u32 = 425;
            let stmt = |code: u32, k: u32| libc::sock_filter {
                code: code as u16,
                jt: 0,
                jf: 0,
                k,
            };
            let filter = [
                // A = seccomp_data.nr
                stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: NR_IO_URING_SETUP,
                },
                stmt(
                    libc::BPF_RET | libc::BPF_K,
                    libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
                ),
                stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn io_uring_switched_off_gives_a_clear_error() {
    for engine in ["uring", "uring-zc"] {
        let mut c = pktio(&["tcp-recv", "--engine", engine, "--bind", "127.0.0.1:0"]);
        forbid_io_uring(&mut c);
        let out = c.output().expect("run");
        assert_fails_with(&out, "io_uring is not available: io_uring_setup");
        assert_fails_with(&out, "pick --engine epoll");
    }
    // The other engines do not need io_uring.
    in_private_netns("io_uring_switched_off_other_engines", || {
        let rx = start_receiver(&["--engine", "epoll", "--idle-timeout", "5"]);
        let mut tx = Command::new(BIN);
        tx.args(["tcp-send", "--to", &rx.addr.to_string(), "--bytes", "1000"]);
        forbid_io_uring(&mut tx);
        assert!(tx.output().expect("run").status.success());
        assert!(rx.finish().status.success());
    });
}

#[test]
fn nonsense_arguments_are_refused() {
    let out = pktio(&["tcp-send", "--to", "127.0.0.1:9", "--size", "lots"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a byte count"));
    let out = pktio(&["tcp-recv", "--conns", "0", "--bind", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_fails_with(&out, "--conns must be at least 1");
    let out = pktio(&[
        "tcp-recv",
        "--engine",
        "uring",
        "--buffers",
        "100",
        "--bind",
        "127.0.0.1:0",
    ])
    .output()
    .expect("run");
    // Checked before any connection is awaited.
    assert_fails_with(&out, "--buffers must be a power of two");
    // Refused by clap (exit 2); tests/flag_values.rs covers every such value.
    let out = pktio(&["tcp-send", "--to", "127.0.0.1:9", "--duration=-1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--duration") && err.contains("from 0.001 to 31536000"),
        "{err}"
    );
}
