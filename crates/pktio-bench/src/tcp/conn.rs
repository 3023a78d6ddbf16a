//! What a receiver knows about one connection, and the report of a whole run.
//!
//! Every engine hands each chunk of bytes it receives to [`ConnRx::feed`],
//! which parses the hello header (possibly split over several chunks),
//! counts the payload and, with verification on, checks it against the
//! pattern. Pure code: engines own the sockets, this owns the bookkeeping.

use std::time::Duration;

use serde::Serialize;

use super::pattern::{self, Hello, HELLO_LEN};

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// Still open when the receiver stopped.
    Open,
    /// The sender closed it (FIN): all its bytes arrived.
    Eof,
    /// The sender reset it (RST); bytes in flight may be lost.
    Reset,
    /// Nothing arrived for the idle timeout; the receiver gave up on it.
    Stalled,
    /// A receive error other than a reset (see the error text).
    Failed,
}

/// The first problem seen on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Problem {
    /// The first 16 bytes were not a pktio hello: not a `pktio tcp-send` peer.
    BadHello,
    /// `--verify` is on but the sender did not write the pattern.
    NoPattern,
    /// The payload differs from the pattern at this payload offset.
    Mismatch {
        /// Offset of the first wrong byte, counted from the end of the hello.
        offset: u64,
    },
    /// The connection ended inside the 16-byte hello.
    ShortHello {
        /// Bytes of the hello that arrived.
        got: usize,
    },
    /// The receive failed with this error.
    Error {
        /// The error text.
        message: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BadHello => write!(f, "the first bytes are not a pktio tcp-send hello"),
            Problem::NoPattern => write!(
                f,
                "--verify is on but the sender does not write the pattern (use tcp-send --pattern)"
            ),
            Problem::Mismatch { offset } => {
                write!(f, "data differs from the pattern at payload byte {offset}")
            }
            Problem::ShortHello { got } => {
                write!(f, "closed after {got} of the 16 hello bytes")
            }
            Problem::Error { message } => write!(f, "receive failed: {message}"),
        }
    }
}

/// Receive-side state of one connection.
#[derive(Debug, Clone)]
pub struct ConnRx {
    verify: bool,
    hello_buf: [u8; HELLO_LEN],
    hello_have: usize,
    hello: Option<Hello>,
    /// Payload bytes (after the hello) received.
    pub payload: u64,
    /// All bytes received, hello included.
    pub total: u64,
    /// How it ended.
    pub end: End,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl ConnRx {
    /// A fresh connection; `verify` checks the payload against the pattern.
    pub fn new(verify: bool) -> Self {
        ConnRx {
            verify,
            hello_buf: [0; HELLO_LEN],
            hello_have: 0,
            hello: None,
            payload: 0,
            total: 0,
            end: End::Open,
            problem: None,
        }
    }

    /// Accounts for (and checks) the next `data` received on this connection.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.hello_have < HELLO_LEN {
            let n = (HELLO_LEN - self.hello_have).min(data.len());
            self.hello_buf[self.hello_have..self.hello_have + n].copy_from_slice(&data[..n]);
            self.hello_have += n;
            data = &data[n..];
            if self.hello_have == HELLO_LEN {
                self.hello = Hello::decode(&self.hello_buf);
                match self.hello {
                    None => self.note(Problem::BadHello),
                    Some(h) if self.verify && !h.pattern => self.note(Problem::NoPattern),
                    _ => {}
                }
            }
        }
        if data.is_empty() {
            return;
        }
        if self.verify && self.problem.is_none() {
            if let Some(h) = self.hello {
                if let Some(off) = pattern::check(h.conn, self.payload, data) {
                    self.note(Problem::Mismatch { offset: off });
                }
            }
        }
        self.payload += data.len() as u64;
    }

    /// Records the end of the connection (the first one wins).
    ///
    /// A connection that closes after part of the hello is a problem; one that
    /// closes before sending anything is just an early close.
    pub fn finish(&mut self, end: End) {
        if self.end == End::Open {
            self.end = end;
            if end == End::Eof && (1..HELLO_LEN).contains(&self.hello_have) {
                self.note(Problem::ShortHello {
                    got: self.hello_have,
                });
            }
        }
    }

    /// Records a receive error and marks the connection failed (or reset).
    pub fn fail(&mut self, err: &std::io::Error) {
        if err.kind() == std::io::ErrorKind::ConnectionReset {
            self.finish(End::Reset);
        } else {
            self.note(Problem::Error {
                message: err.to_string(),
            });
            self.finish(End::Failed);
        }
    }

    fn note(&mut self, p: Problem) {
        if self.problem.is_none() {
            self.problem = Some(p);
        }
    }

    /// The sender's connection index, once the hello arrived.
    pub fn index(&self) -> Option<u32> {
        self.hello.map(|h| h.conn)
    }

    /// The final record of this connection.
    pub fn report(&self) -> ConnReport {
        ConnReport {
            conn: self.index(),
            payload_bytes: self.payload,
            total_bytes: self.total,
            end: self.end,
            verified: self.verify && self.hello.is_some() && self.problem.is_none(),
            problem: self.problem.clone(),
        }
    }
}

/// The record of one connection in a [`RecvReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnReport {
    /// The sender's index (from the hello), `None` if no hello arrived.
    pub conn: Option<u32>,
    /// Payload bytes after the hello.
    pub payload_bytes: u64,
    /// All bytes including the hello.
    pub total_bytes: u64,
    /// How it ended.
    pub end: End,
    /// Every payload byte matched the pattern (verification on, no problem).
    pub verified: bool,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// The result of one receiver run.
#[derive(Debug, Clone, Serialize)]
pub struct RecvReport {
    /// Engine name.
    pub engine: String,
    /// Connections the receiver waited for.
    pub expected_conns: usize,
    /// One record per accepted connection, sorted by sender index.
    pub conns: Vec<ConnReport>,
    /// All bytes received.
    pub bytes: u64,
    /// From the first accepted connection to the last end, in seconds.
    pub seconds: f64,
    /// CPU seconds used by the receiver's threads (each thread's CPU clock, CLOCK_THREAD_CPUTIME_ID, summed).
    pub cpu_seconds: f64,
    /// Whether the run ended because nothing happened for the idle timeout.
    pub timed_out: bool,
    /// Problems that concern the run as a whole (missing connections, duplicates).
    pub notes: Vec<String>,
    /// Engine details (bundles on/off, buffer sizes, …).
    pub details: Vec<(String, String)>,
}

impl RecvReport {
    /// Builds the report from the connections' state.
    pub fn new(
        engine: &str,
        expected: usize,
        conns: &[ConnRx],
        elapsed: Duration,
        cpu: Duration,
        timed_out: bool,
    ) -> Self {
        let mut list: Vec<ConnReport> = conns.iter().map(ConnRx::report).collect();
        list.sort_by_key(|c| (c.conn.is_none(), c.conn));
        let mut notes = Vec::new();
        if list.len() < expected {
            notes.push(format!(
                "only {} of {expected} connections arrived before the idle timeout",
                list.len()
            ));
        }
        for w in list.windows(2) {
            if w[0].conn.is_some() && w[0].conn == w[1].conn {
                notes.push(format!(
                    "connection index {} was used twice: two senders at once?",
                    w[0].conn.unwrap_or_default()
                ));
            }
        }
        RecvReport {
            engine: engine.to_string(),
            expected_conns: expected,
            bytes: list.iter().map(|c| c.total_bytes).sum(),
            conns: list,
            seconds: elapsed.as_secs_f64(),
            cpu_seconds: cpu.as_secs_f64(),
            timed_out,
            notes,
            details: Vec::new(),
        }
    }

    /// Gbit/s over the measured window (0 when the window is empty).
    pub fn gbits(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 * 8.0 / self.seconds / 1e9
        } else {
            0.0
        }
    }

    /// Receiver CPU seconds per GB (10^9 bytes); `None` when nothing arrived.
    pub fn cpu_per_gb(&self) -> Option<f64> {
        (self.bytes > 0).then(|| self.cpu_seconds / (self.bytes as f64 / 1e9))
    }

    /// True when every expected connection arrived and ended with EOF without problems.
    pub fn clean(&self) -> bool {
        self.notes.is_empty()
            && self.conns.len() >= self.expected_conns
            && self
                .conns
                .iter()
                .all(|c| c.end == End::Eof && c.problem.is_none())
    }

    /// One line per problem, for people.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.notes.clone();
        for c in &self.conns {
            let who = c
                .conn
                .map_or("a connection without hello".to_string(), |i| {
                    format!("connection {i}")
                });
            if let Some(p) = &c.problem {
                out.push(format!("{who}: {p}"));
            }
            match c.end {
                End::Eof => {}
                End::Reset => out.push(format!(
                    "{who}: reset by the sender after {} bytes",
                    c.total_bytes
                )),
                End::Stalled => out.push(format!(
                    "{who}: stalled (nothing for the idle timeout) after {} bytes",
                    c.total_bytes
                )),
                End::Open => out.push(format!("{who}: still open at the end")),
                End::Failed => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(conn: u32, payload: usize, pattern: bool) -> Vec<u8> {
        let mut v = Hello { conn, pattern }.encode().to_vec();
        let mut p = vec![0u8; payload];
        if pattern {
            pattern::fill(conn, 0, &mut p);
        }
        v.extend_from_slice(&p);
        v
    }

    #[test]
    fn any_chunking_gives_the_same_verified_result() {
        let s = stream(4, 1000, true);
        for chunk in [1, 3, 15, 16, 17, 64, 2000] {
            let mut c = ConnRx::new(true);
            for part in s.chunks(chunk) {
                c.feed(part);
            }
            c.finish(End::Eof);
            let r = c.report();
            assert_eq!(r.conn, Some(4));
            assert_eq!(r.payload_bytes, 1000);
            assert_eq!(r.total_bytes, 1016);
            assert!(r.verified, "chunk {chunk}: {r:?}");
        }
    }

    #[test]
    fn corruption_and_missing_pattern_are_reported() {
        let mut s = stream(0, 100, true);
        s[16 + 50] ^= 1;
        let mut c = ConnRx::new(true);
        c.feed(&s);
        assert_eq!(c.problem, Some(Problem::Mismatch { offset: 50 }));
        assert!(!c.report().verified);

        let mut c = ConnRx::new(true);
        c.feed(&stream(0, 100, false));
        assert_eq!(c.problem, Some(Problem::NoPattern));

        let mut c = ConnRx::new(false);
        c.feed(b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(c.problem, Some(Problem::BadHello));
    }

    #[test]
    fn a_connection_closing_inside_the_hello_is_a_problem_but_an_empty_one_is_not() {
        let mut c = ConnRx::new(true);
        c.feed(&MAGIC_PREFIX[..5]);
        c.finish(End::Eof);
        assert_eq!(c.problem, Some(Problem::ShortHello { got: 5 }));
        let mut c = ConnRx::new(true);
        c.finish(End::Eof);
        assert_eq!(c.problem, None);
        assert_eq!(c.report().conn, None);
    }

    const MAGIC_PREFIX: [u8; 8] = pattern::MAGIC;

    #[test]
    fn report_flags_missing_duplicate_and_unfinished_connections() {
        let mut a = ConnRx::new(true);
        a.feed(&stream(1, 10, true));
        a.finish(End::Eof);
        let mut b = ConnRx::new(true);
        b.feed(&stream(1, 10, true));
        b.finish(End::Stalled);
        let r = RecvReport::new(
            "x",
            3,
            &[a, b],
            Duration::from_secs(1),
            Duration::ZERO,
            true,
        );
        assert!(!r.clean());
        let p = r.problems().join("\n");
        assert!(p.contains("only 2 of 3"), "{p}");
        assert!(p.contains("used twice"), "{p}");
        assert!(p.contains("stalled"), "{p}");
        assert_eq!(r.bytes, 52);
    }

    #[test]
    fn rates_are_computed_from_bytes_and_time() {
        let mut a = ConnRx::new(false);
        a.feed(&[0u8; 16]);
        a.feed(&vec![0u8; 1_249_984]);
        a.finish(End::Eof);
        let r = RecvReport::new(
            "x",
            1,
            &[a],
            Duration::from_millis(1),
            Duration::from_micros(500),
            false,
        );
        assert!((r.gbits() - 10.0).abs() < 1e-9);
        assert!((r.cpu_per_gb().unwrap() - 0.4).abs() < 1e-9);
    }
}
