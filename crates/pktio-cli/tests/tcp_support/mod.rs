//! Helpers for the `pktio tcp-recv` / `tcp-send` tests: a private network
//! namespace per test, the built binary, and a hand-written sender that can
//! close early, reset or stall.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_pktio");

/// Runs `f` on a fresh thread that first moves into a private network
/// namespace with loopback up; processes it spawns inherit the namespace.
/// Returns `None`, after the skip line, when the process lacks
/// `CAP_SYS_ADMIN` for the namespace; any other failure fails the test.
pub fn in_private_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let needs = &[pktio_lab::skip::Cap::SYS_ADMIN];
    if pktio_lab::skip::lacks(name, needs, "a private network namespace") {
        return None;
    }
    let h = thread::spawn(move || {
        pktio_lab::enter_private_netns().expect("a private network namespace with lo up");
        f()
    });
    match h.join() {
        Ok(v) => Some(v),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A running `pktio tcp-recv`.
pub struct Receiver {
    pub child: Child,
    pub addr: SocketAddr,
    stderr_head: String,
    stderr_rest: thread::JoinHandle<String>,
}

/// Starts `pktio tcp-recv --bind 127.0.0.1:0 --json ARGS…` and waits for its "listening" line.
pub fn start_receiver(args: &[&str]) -> Receiver {
    let mut c = Command::new(BIN);
    c.args(["tcp-recv", "--bind", "127.0.0.1:0", "--json"])
        .args(args);
    start_receiver_cmd(c)
}

/// Starts a prepared `pktio tcp-recv … --json` command and waits for its "listening" line.
pub fn start_receiver_cmd(mut cmd: Command) -> Receiver {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pktio tcp-recv");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr);
    let mut head = String::new();
    let addr = loop {
        let mut line = String::new();
        let n = lines.read_line(&mut line).expect("read stderr");
        head.push_str(&line);
        if n == 0 {
            let _ = child.kill();
            panic!("tcp-recv ended before listening:\n{head}");
        }
        if let Some(rest) = line.trim().strip_prefix("pktio: listening on ") {
            let a = rest.split_whitespace().next().expect("address");
            break a.parse().expect("socket address");
        }
    };
    let stderr_rest = thread::spawn(move || {
        let mut s = String::new();
        let _ = lines.read_to_string(&mut s);
        s
    });
    Receiver {
        child,
        addr,
        stderr_head: head,
        stderr_rest,
    }
}

/// What a receiver printed and how it exited.
pub struct Finished {
    pub status: ExitStatus,
    pub report: serde_json::Value,
    pub stdout: String,
    pub stderr: String,
}

impl Receiver {
    /// Waits for the receiver to exit and parses its JSON report.
    pub fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut stdout).expect("read stdout");
        }
        let status = self.child.wait().expect("wait tcp-recv");
        let stderr = self.stderr_head + &self.stderr_rest.join().unwrap_or_default();
        let report: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
        if !report.is_null() {
            assert_eq!(report["schema"], "pktio.tcp-recv/1", "{report:#}");
        }
        Finished {
            status,
            report,
            stdout,
            stderr,
        }
    }
}

/// Runs `pktio tcp-send --to ADDR ARGS…` to completion.
pub fn run_sender(to: SocketAddr, args: &[&str]) -> std::process::Output {
    run_sender_cmd(Command::new(BIN), to, args)
}

/// Runs a prepared `pktio` command as `tcp-send --to ADDR ARGS…` to completion.
pub fn run_sender_cmd(mut cmd: Command, to: SocketAddr, args: &[&str]) -> std::process::Output {
    cmd.args(["tcp-send", "--to", &to.to_string()])
        .args(args)
        .output()
        .expect("run pktio tcp-send")
}

// The pattern, restated from its specification (cmd/tcp/pattern.rs) so the
// tests check the receiver against an independent sender.
fn word(conn: u32, w: u64) -> u64 {
    w.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (u64::from(conn) + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// The hello plus `len` pattern bytes of connection `conn`.
pub fn stream_bytes(conn: u32, len: usize) -> Vec<u8> {
    let mut v = b"PKTIOTCP".to_vec();
    v.extend_from_slice(&conn.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..len as u64 {
        v.push(word(conn, i / 8).to_le_bytes()[(i % 8) as usize]);
    }
    v
}

/// How a hand-written test connection behaves.
#[derive(Clone, Debug)]
pub struct Script {
    pub conn: u32,
    /// Payload bytes to send (after the hello).
    pub payload: usize,
    /// Send only the first `n` bytes of the whole stream (hello included), then close.
    pub cut_at: Option<usize>,
    /// After this many stream bytes, pause for the duration.
    pub stall: Option<(usize, Duration)>,
    /// Close with RST (SO_LINGER 0) instead of FIN.
    pub reset: bool,
    /// Write size.
    pub chunk: usize,
}

impl Script {
    pub fn new(conn: u32, payload: usize) -> Self {
        Script {
            conn,
            payload,
            cut_at: None,
            stall: None,
            reset: false,
            chunk: 4096,
        }
    }
}

/// Plays `script` on a new connection to `to` (blocking until done).
pub fn play(to: SocketAddr, script: &Script) {
    let mut s = TcpStream::connect(to).expect("connect to tcp-recv");
    let mut bytes = stream_bytes(script.conn, script.payload);
    if let Some(n) = script.cut_at {
        bytes.truncate(n);
    }
    let mut sent = 0usize;
    while sent < bytes.len() {
        let mut end = (sent + script.chunk).min(bytes.len());
        if let Some((at, _)) = script.stall {
            if sent < at && end > at {
                end = at;
            }
        }
        s.write_all(&bytes[sent..end]).expect("write");
        sent = end;
        if let Some((at, d)) = script.stall {
            if sent == at {
                thread::sleep(d);
            }
        }
    }
    if script.reset {
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid linger struct of the size passed, on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_LINGER");
    }
    drop(s);
}

/// Plays every script on its own thread, all at once.
pub fn play_all(to: SocketAddr, scripts: &[Script]) {
    let hs: Vec<_> = scripts
        .iter()
        .cloned()
        .map(|s| thread::spawn(move || play(to, &s)))
        .collect();
    for h in hs {
        h.join().expect("sender thread");
    }
}

/// The report's record of sender connection `conn`.
pub fn conn_record(report: &serde_json::Value, conn: u32) -> &serde_json::Value {
    report["conns"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["conn"] == conn))
        .unwrap_or_else(|| panic!("connection {conn} missing in {report:#}"))
}
