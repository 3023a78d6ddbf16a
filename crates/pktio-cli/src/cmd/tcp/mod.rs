//! `pktio tcp-recv`, `pktio tcp-send` and `pktio bench tcp` (in [`bench`]):
//! the flags, and the printing of what the engines of
//! [`pktio_bench::tcp`] report.
//!
//! Exit codes of `tcp-recv`: 0 when every connection arrived, ended with FIN and
//! (with `--verify`) matched the pattern; 2 when the run completed with problems
//! (stalled, reset or missing connections, pattern mismatch); 1 on errors
//! (bad input, setup failures).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use pktio_bench::report::schema::{TCP_RECV, TCP_SEND};
use pktio_bench::tcp::{check_fd_limit, check_lab, engine, listen, send, TcpError};
use pktio_bench::tcp::{Engine, RecvConfig};

pub mod bench;

pub use bench::{bench, TcpBenchArgs};

/// Arguments of `pktio tcp-recv`.
#[derive(Debug, clap::Args)]
pub struct RecvArgs {
    /// How to read: blocking (thread per connection), epoll, uring (io_uring), uring-zc.
    #[arg(long, value_enum, default_value_t = Engine::Epoll)]
    pub engine: Engine,
    /// Address and port to listen on (port 0: any free port, printed on start).
    #[arg(long, default_value = "0.0.0.0:5201")]
    pub bind: SocketAddr,
    /// Connections to wait for; the receiver exits when all of them have ended.
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// Check every byte against the pattern (the sender must use --pattern).
    #[arg(long)]
    pub verify: bool,
    /// Read size, and provided-buffer size for uring (1 byte to 1G; K/M suffixes allowed).
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    pub buf_size: usize,
    /// Provided buffers in the io_uring buffer ring (power of two).
    #[arg(long, default_value_t = 256)]
    pub buffers: u16,
    /// Do not use io_uring receive bundles even when the kernel has them.
    #[arg(long)]
    pub no_bundle: bool,
    /// Give up on a connection, or on waiting for one, after this many seconds without data
    /// (0.001 to 31536000).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS",
          value_parser = crate::args::parse_seconds, allow_hyphen_values = true)]
    pub idle_timeout: f64,
    /// NIC receive queue for uring-zc.
    #[arg(long, default_value_t = 0)]
    pub zc_queue: u32,
    /// Lab mode: refuse addresses outside 198.18.0.0/15.
    #[arg(long)]
    pub lab: bool,
    /// Pin the receiving thread(s) to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Write the report as JSON to FILE, or to stdout with `-` or no value
    /// (the text line then goes to stderr).
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::output::parse_json_to)]
    pub json: Option<crate::output::JsonTo>,
}

/// Arguments of `pktio tcp-send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The receiver (`pktio tcp-recv`).
    #[arg(long)]
    pub to: SocketAddr,
    /// Connections, one thread each.
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// Bytes per write, 1 byte to 1G (K/M suffixes allowed: 1K, 64KiB).
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    pub size: usize,
    /// Seconds to send, 0.001 to 31536000 (default 10 unless --bytes is given).
    #[arg(long, value_name = "SECONDS",
          value_parser = crate::args::parse_seconds, allow_hyphen_values = true)]
    pub duration: Option<f64>,
    /// Payload bytes per connection, then close (K/M/G suffixes allowed).
    #[arg(long, value_parser = parse_size_u64)]
    pub bytes: Option<u64>,
    /// Write the known pattern (for tcp-recv --verify) instead of zeros.
    #[arg(long)]
    pub pattern: bool,
    /// Lab mode: refuse addresses outside 198.18.0.0/15.
    #[arg(long)]
    pub lab: bool,
    /// Pin the sender threads to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Write the report as JSON to FILE, or to stdout with `-` or no value
    /// (the text line then goes to stderr).
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::output::parse_json_to)]
    pub json: Option<crate::output::JsonTo>,
}

/// Parses a byte count: `1500`, `1K`/`1KiB` (1024), `2M`/`2MiB`, `1G`/`1GiB`.
pub fn parse_size_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (num, mult) = [
        ("kib", 1u64 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("k", 1 << 10),
        ("m", 1 << 20),
        ("g", 1 << 30),
    ]
    .iter()
    .find_map(|(suf, m)| lower.strip_suffix(suf).map(|n| (n.trim().to_string(), *m)))
    .unwrap_or((lower.clone(), 1));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a byte count (examples: 1024, 1K, 64KiB, 2M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// The largest buffer [`parse_size`] accepts: 1 GiB (each connection
/// allocates one; larger ones abort the process when memory runs out).
pub const MAX_BUF_SIZE: u64 = 1 << 30;

/// [`parse_size_u64`] for buffer sizes: 1 byte to [`MAX_BUF_SIZE`] (1G).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let n = parse_size_u64(s).map_err(|e| format!("{e}; use 1 byte to 1G"))?;
    if n == 0 || n > MAX_BUF_SIZE {
        return Err(format!("`{s}` is out of range; use 1 byte to 1G"));
    }
    usize::try_from(n).map_err(|_| format!("`{s}` is out of range; use 1 byte to 1G"))
}

fn secs(s: f64, what: &str) -> Result<Duration, TcpError> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        TcpError::Config(format!(
            "{what} must be a non-negative number of seconds, not {s}"
        ))
    })
}

/// Runs `pktio tcp-recv`.
pub fn recv(a: RecvArgs) -> anyhow::Result<ExitCode> {
    check_lab(a.lab, a.bind.ip())?;
    if a.conns == 0 {
        return Err(TcpError::Config("--conns must be at least 1".into()).into());
    }
    check_fd_limit(a.conns, 16)?;
    if matches!(a.engine, Engine::Uring | Engine::UringZc) {
        engine::uring_check_enabled()?;
    }
    let cfg = RecvConfig {
        conns: a.conns,
        verify: a.verify,
        buf_size: a.buf_size,
        buffers: a.buffers,
        bundle: !a.no_bundle,
        idle_timeout: secs(a.idle_timeout, "--idle-timeout")?,
        zc_queue: a.zc_queue,
    };
    if a.engine == Engine::UringZc {
        // Refused before listening: the device decides, not the peer.
        engine::zcrx::setup(a.bind.ip(), a.zc_queue)?;
    }
    let listener = listen(a.bind)?;
    let local = listener
        .local_addr()
        .map_err(|e| TcpError::sys("getsockname", e))?;
    if let Some(cpu) = a.cpu {
        pktio_host::cpu::pin_current_thread(cpu)
            .map_err(|e| TcpError::sys("sched_setaffinity", e))?;
    }
    eprintln!(
        "pktio: listening on {local} (engine {}, waiting for {} connection{})",
        a.engine,
        a.conns,
        if a.conns == 1 { "" } else { "s" }
    );
    let cpu0 = pktio_host::iface::process_cpu_time();
    let mut report = engine::run(a.engine, listener, &cfg)?;
    report.details.push((
        "process_cpu_seconds".into(),
        format!(
            "{:.6}",
            pktio_host::iface::process_cpu_time()
                .saturating_sub(cpu0)
                .as_secs_f64()
        ),
    ));
    crate::output::emit(a.json.as_ref(), TCP_RECV, &report)?;
    crate::output::human(
        a.json.as_ref(),
        &format!(
            "{}: {} bytes on {} connection{} in {:.3} s: {:.2} Gbit/s, receiver CPU {:.3} s ({} s/GB){}\n",
            report.engine,
            report.bytes,
            report.conns.len(),
            if report.conns.len() == 1 { "" } else { "s" },
            report.seconds,
            report.gbits(),
            report.cpu_seconds,
            report
                .cpu_per_gb()
                .map_or("–".to_string(), crate::report::fmt_num),
            if cfg.verify && report.clean() { ", pattern verified" } else { "" }
        ),
    );
    let problems = report.problems();
    for p in &problems {
        eprintln!("pktio: {p}");
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Runs `pktio tcp-send`.
pub fn send(a: SendArgs) -> anyhow::Result<ExitCode> {
    check_lab(a.lab, a.to.ip())?;
    if a.conns == 0 {
        return Err(TcpError::Config("--conns must be at least 1".into()).into());
    }
    check_fd_limit(a.conns, 16)?;
    let duration = match (a.duration, a.bytes) {
        (Some(d), _) => Some(secs(d, "--duration")?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let cfg = send::SendConfig {
        to: a.to,
        conns: a.conns,
        size: a.size,
        duration,
        bytes: a.bytes,
        pattern: a.pattern,
        cpu: a.cpu,
    };
    let r = send::run(&cfg)?;
    crate::output::emit(a.json.as_ref(), TCP_SEND, &r)?;
    crate::output::human(
        a.json.as_ref(),
        &format!(
            "sent {} payload bytes on {} connection{} in {:.3} s: {:.2} Gbit/s\n",
            r.total(),
            r.conns,
            if r.conns == 1 { "" } else { "s" },
            r.seconds,
            r.gbits()
        ),
    );
    for e in &r.errors {
        eprintln!("pktio: {e}");
    }
    Ok(if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert_eq!(parse_size_u64("1G"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 apples").is_err());
        assert!(parse_size_u64("99999999999999999999G").is_err());
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        for big in ["1025M", "2G", "1000G"] {
            assert!(
                parse_size(big).unwrap_err().contains("1 byte to 1G"),
                "{big}"
            );
        }
    }
}
