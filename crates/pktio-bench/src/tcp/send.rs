//! The sender: N connections, each a thread writing fixed-size chunks.
//!
//! Every connection writes the [`Hello`] first, then `size`-byte writes of
//! zeros or (with `pattern`) of the known pattern, until the duration is over
//! or `bytes` payload bytes are written, then closes its side (FIN).

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::pattern::{self, Hello};
use super::TcpError;

/// What a sender run should do.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// The receiver.
    pub to: SocketAddr,
    /// Connections, one thread each.
    pub conns: usize,
    /// Bytes per `write(2)`.
    pub size: usize,
    /// Stop after this long (whichever of duration/bytes comes first).
    pub duration: Option<Duration>,
    /// Stop after this many payload bytes per connection.
    pub bytes: Option<u64>,
    /// Write the pattern instead of zeros.
    pub pattern: bool,
    /// Pin every sender thread to this CPU.
    pub cpu: Option<usize>,
}

/// The result of a sender run.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    /// Connections opened.
    pub conns: usize,
    /// Payload bytes written, per connection (in connection order).
    pub payload_bytes: Vec<u64>,
    /// From the moment all connections were up to the last close, seconds.
    pub seconds: f64,
    /// Errors, one line per connection that had one.
    pub errors: Vec<String>,
}

impl SendReport {
    /// Total payload bytes.
    pub fn total(&self) -> u64 {
        self.payload_bytes.iter().sum()
    }

    /// Gbit/s of payload over the window.
    pub fn gbits(&self) -> f64 {
        if self.seconds > 0.0 {
            self.total() as f64 * 8.0 / self.seconds / 1e9
        } else {
            0.0
        }
    }
}

/// Opens the connections, sends, closes; returns when every connection is done.
///
/// # Errors
/// [`TcpError::Connect`] when a connection cannot be opened (nothing listening,
/// no route); write errors once sending started are per connection, in the report.
pub fn run(cfg: &SendConfig) -> Result<SendReport, TcpError> {
    if cfg.size == 0 {
        return Err(TcpError::Config("--size must be at least 1 byte".into()));
    }
    let mut streams = Vec::with_capacity(cfg.conns);
    for _ in 0..cfg.conns {
        let s = TcpStream::connect(cfg.to).map_err(|err| TcpError::Connect { to: cfg.to, err })?;
        streams.push(s);
    }
    let barrier = Arc::new(Barrier::new(cfg.conns + 1));
    let mut handles = Vec::with_capacity(cfg.conns);
    for (i, s) in streams.into_iter().enumerate() {
        let cfg = cfg.clone();
        let b = Arc::clone(&barrier);
        let h = thread::Builder::new()
            .name(format!("tx-conn-{i}"))
            .spawn(move || {
                if let Some(cpu) = cfg.cpu {
                    // Best effort: a failed pin shows in the numbers, not as an error.
                    let _ = pktio_host::cpu::pin_current_thread(cpu);
                }
                b.wait();
                send_conn(s, i as u32, &cfg)
            })
            .map_err(|e| TcpError::sys("pthread_create", e))?;
        handles.push(h);
    }
    barrier.wait();
    let start = Instant::now();
    let mut payload_bytes = Vec::with_capacity(cfg.conns);
    let mut errors = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let (n, err) = h
            .join()
            .map_err(|_| TcpError::Panicked("a sender thread"))?;
        payload_bytes.push(n);
        if let Some(e) = err {
            errors.push(format!("connection {i}: {e}"));
        }
    }
    Ok(SendReport {
        conns: cfg.conns,
        payload_bytes,
        seconds: start.elapsed().as_secs_f64(),
        errors,
    })
}

fn send_conn(mut s: TcpStream, conn: u32, cfg: &SendConfig) -> (u64, Option<std::io::Error>) {
    let hello = Hello {
        conn,
        pattern: cfg.pattern,
    };
    if let Err(e) = s.write_all(&hello.encode()) {
        return (0, Some(e));
    }
    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let limit = cfg.bytes.unwrap_or(u64::MAX);
    let mut buf = vec![0u8; cfg.size];
    let mut sent = 0u64;
    while sent < limit && deadline.is_none_or(|d| Instant::now() < d) {
        let n = (cfg.size as u64).min(limit - sent) as usize;
        if cfg.pattern {
            pattern::fill(conn, sent, &mut buf[..n]);
        }
        if let Err(e) = s.write_all(&buf[..n]) {
            return (sent, Some(e));
        }
        sent += n as u64;
    }
    let _ = s.shutdown(Shutdown::Write);
    (sent, None)
}
