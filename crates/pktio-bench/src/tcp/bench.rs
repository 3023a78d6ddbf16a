//! The TCP benchmark matrix (`pktio bench tcp`): engines × connection
//! counts × write sizes, several runs each.
//!
//! Each measurement runs the receiving engine on one thread (blocking: one per
//! connection) pinned to the receiver CPU, and the sender's threads pinned to
//! the sender CPU, both inside this process. In the lab the receiver lives in
//! the rx namespace and the sender in the gen namespace, joined by veth; over
//! [`Network::Loopback`] both live in a private namespace of their own over
//! 127.0.0.1. The receiver reports bytes, the time from first accept to last
//! close, and the CPU time of its own threads (CLOCK_THREAD_CPUTIME_ID).
//!
//! [`run`] returns the samples of every cell in a [`MatrixReport`] and tells
//! the caller about each run as it ends through a [`Progress`] callback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::conn::RecvReport;
use super::engine::{self, Engine, RecvConfig};
use super::pattern::HELLO_LEN;
use super::send::{self, SendConfig, SendReport};
use super::{listen, sys, TcpError};

/// Where the receiver and the sender run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The lab: receiver in its rx namespace, sender in its gen namespace,
    /// over the veth pair; `gro` turns GRO on at the receiving end.
    Lab {
        /// GRO on at the lab's receiving veth end (the kernel's default: off).
        gro: bool,
    },
    /// Both in a private network namespace, over 127.0.0.1.
    Loopback,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct MatrixConfig {
    /// Engines, in report order (uring-zc is probed first and left out,
    /// with a note, when unsupported).
    pub engines: Vec<Engine>,
    /// Connection counts (each at least 1).
    pub conns: Vec<usize>,
    /// Write sizes, bytes.
    pub sizes: Vec<usize>,
    /// Runs per cell (at least 1).
    pub runs: usize,
    /// Sending time per run.
    pub duration: Duration,
    /// Send the pattern and verify every byte.
    pub verify: bool,
    /// CPU of the receiver.
    pub rx_cpu: usize,
    /// CPU of the sender.
    pub tx_cpu: usize,
    /// Where the two sides run.
    pub network: Network,
}

/// One cell of the matrix: the samples of its clean runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// The receiving engine.
    pub engine: Engine,
    /// Connections.
    pub conns: usize,
    /// Bytes per write.
    pub size: usize,
    /// Throughput of each clean run, Gbit/s.
    pub gbits: Vec<f64>,
    /// Receiver CPU seconds per GB of each clean run (NaN when unmeasured).
    pub cpu_per_gb: Vec<f64>,
}

/// The whole matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixReport {
    /// What the network was: `lab veth` or `private netns, loopback`.
    pub network: &'static str,
    /// Whether io_uring used receive bundles (the uring engine's answer).
    pub bundles: Option<String>,
    /// The engines that ran (those left out are explained in `notes`).
    pub engines: Vec<Engine>,
    /// Every cell, engine-major, in the order of the configuration.
    pub cells: Vec<CellResult>,
    /// Engines left out, failed runs and problems, one sentence each.
    pub notes: Vec<String>,
    /// Runs that failed or had problems.
    pub problems: usize,
}

/// Which run of the matrix: `[n/total] engine, conns conns, size writes, run r/runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId {
    /// This run's number, from 1.
    pub n: usize,
    /// Runs in the whole matrix.
    pub total: usize,
    /// The receiving engine.
    pub engine: Engine,
    /// Connections.
    pub conns: usize,
    /// Bytes per write.
    pub size: usize,
    /// The run within its cell, from 1.
    pub run: usize,
    /// Runs per cell.
    pub runs: usize,
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}/{}] {}, {} conn{}, {} writes, run {}/{}",
            self.n,
            self.total,
            self.engine,
            self.conns,
            if self.conns == 1 { "" } else { "s" },
            size_label(self.size),
            self.run,
            self.runs
        )
    }
}

/// What [`run`] tells its caller while it runs.
#[derive(Debug)]
pub enum Progress<'a> {
    /// uring-zc is not possible here; it is left out of the matrix.
    ZeroCopyUnsupported(&'a TcpError),
    /// A run ended with every byte accounted for.
    Clean(RunId, &'a RecvReport),
    /// A run ended with problems, explained in `note` (also in the report's notes).
    Problem(RunId, &'a RecvReport, &'a str),
    /// A run failed.
    Failed(RunId, &'a TcpError),
}

/// Where the two sides run and how to reach the receiver.
trait Sides: Sync {
    /// Spawns `f` on a thread on the receiver's side (in its namespace).
    fn rx_spawn(
        &self,
        f: Box<dyn FnOnce() -> Result<RecvReport, TcpError> + Send>,
    ) -> JoinHandle<Result<RecvReport, TcpError>>;
    /// Runs `f` on the sender's side (in its namespace) and returns its result.
    fn tx_run(
        &self,
        f: Box<dyn FnOnce() -> Result<SendReport, TcpError> + Send>,
    ) -> Result<SendReport, TcpError>;
    /// Runs `f` on the receiver's side and returns its result.
    fn rx_run(&self, f: Box<dyn FnOnce() -> Result<(), TcpError> + Send>) -> Result<(), TcpError>;
    /// The receiver's address.
    fn rx_ip(&self) -> IpAddr;
    /// What the network is, for the report.
    fn describe(&self) -> &'static str;
}

/// Both sides in the calling thread's network namespace (a private one, see `bench`).
struct Local;

impl Sides for Local {
    fn rx_spawn(
        &self,
        f: Box<dyn FnOnce() -> Result<RecvReport, TcpError> + Send>,
    ) -> JoinHandle<Result<RecvReport, TcpError>> {
        thread::spawn(f)
    }
    fn tx_run(
        &self,
        f: Box<dyn FnOnce() -> Result<SendReport, TcpError> + Send>,
    ) -> Result<SendReport, TcpError> {
        f()
    }
    fn rx_run(&self, f: Box<dyn FnOnce() -> Result<(), TcpError> + Send>) -> Result<(), TcpError> {
        f()
    }
    fn rx_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
    fn describe(&self) -> &'static str {
        "private netns, loopback"
    }
}

/// Receiver in the lab's rx namespace, sender in its gen namespace, over the veth pair.
struct LabSides {
    lab: pktio_lab::Lab,
}

impl Sides for LabSides {
    fn rx_spawn(
        &self,
        f: Box<dyn FnOnce() -> Result<RecvReport, TcpError> + Send>,
    ) -> JoinHandle<Result<RecvReport, TcpError>> {
        self.lab.rx().spawn(f)
    }
    fn tx_run(
        &self,
        f: Box<dyn FnOnce() -> Result<SendReport, TcpError> + Send>,
    ) -> Result<SendReport, TcpError> {
        self.lab
            .gen()
            .try_run(f)
            .map_err(|e| TcpError::Config(format!("cannot enter the lab's gen namespace: {e}")))?
    }
    fn rx_run(&self, f: Box<dyn FnOnce() -> Result<(), TcpError> + Send>) -> Result<(), TcpError> {
        self.lab
            .rx()
            .try_run(f)
            .map_err(|e| TcpError::Config(format!("cannot enter the lab's rx namespace: {e}")))?
    }
    fn rx_ip(&self) -> IpAddr {
        self.lab.rx().addr().into()
    }
    fn describe(&self) -> &'static str {
        "lab veth"
    }
}

/// One measurement: a receiver with `engine` and a sender with `conns` × `size` writes.
fn measure(
    sides: &dyn Sides,
    engine: Engine,
    cfg: &RecvConfig,
    send_cfg: &SendConfig,
    rx_cpu: usize,
) -> Result<(RecvReport, SendReport), TcpError> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, TcpError>>();
    let rx_ip = sides.rx_ip();
    let rcfg = cfg.clone();
    let rx = sides.rx_spawn(Box::new(move || {
        let _ = pktio_host::cpu::pin_current_thread(rx_cpu);
        let l = match listen(SocketAddr::new(rx_ip, 0)) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready_tx.send(Err(TcpError::Config(e.to_string())));
                return Err(e);
            }
        };
        let addr = l.local_addr().map_err(|e| TcpError::sys("getsockname", e));
        let _ = ready_tx.send(addr);
        engine::run(engine, l, &rcfg)
    }));
    let addr = match ready_rx.recv() {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(rx
                .join()
                .map_err(|_| TcpError::Panicked("the receiver"))?
                .err()
                .unwrap_or(TcpError::Panicked("the receiver")))
        }
    };
    let mut sc = send_cfg.clone();
    sc.to = addr;
    let sent = sides.tx_run(Box::new(move || send::run(&sc)));
    let got = rx.join().map_err(|_| TcpError::Panicked("the receiver"))?;
    // A receiver error (io_uring off, zcrx unsupported) explains a sender error too.
    let got = got?;
    Ok((got, sent?))
}

/// Runs the matrix and returns its samples; `progress` hears of each run.
///
/// # Errors
/// A CPU that does not exist, a connection count of 0, too few file
/// descriptors, or a lab or namespace that cannot be made. A failed run is
/// not an error: it is counted in [`MatrixReport::problems`] and explained in
/// the notes.
pub fn run(
    cfg: &MatrixConfig,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<MatrixReport, TcpError> {
    check(cfg)?;
    match cfg.network {
        Network::Lab { gro } => {
            let mut b = pktio_lab::Lab::builder();
            if gro {
                b = b.gro(true);
            }
            let lab = b.build().map_err(|e| {
                TcpError::Config(format!(
                    "cannot build the lab (two namespaces and a veth pair): {e}"
                ))
            })?;
            Ok(run_matrix(&LabSides { lab }, cfg, progress))
        }
        // The namespace belongs to the thread that enters it: do that on a
        // thread of our own.
        Network::Loopback => thread::scope(|s| {
            s.spawn(|| {
                sys::enter_private_netns()
                    .map_err(|e| TcpError::sys("unshare(CLONE_NEWNET)", e))?;
                Ok(run_matrix(&Local, cfg, progress))
            })
            .join()
            .map_err(|_| TcpError::Panicked("the benchmark thread"))?
        }),
    }
}

/// The checks [`run`] makes before it builds anything.
fn check(cfg: &MatrixConfig) -> Result<(), TcpError> {
    let ncpu = thread::available_parallelism().map_or(1, |n| n.get());
    for c in [cfg.rx_cpu, cfg.tx_cpu] {
        if c >= ncpu {
            return Err(TcpError::Config(format!(
                "CPU {c} does not exist: this host has {ncpu}"
            )));
        }
    }
    if cfg.conns.contains(&0) {
        return Err(TcpError::Config("--conns values must be at least 1".into()));
    }
    let max_conns = cfg.conns.iter().copied().max().unwrap_or(1);
    super::check_fd_limit(2 * max_conns, 32)
}

/// Leaves out the engines this host cannot run, with a note each.
fn usable_engines(
    sides: &dyn Sides,
    cfg: &MatrixConfig,
    notes: &mut Vec<String>,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Vec<Engine> {
    let mut engines = cfg.engines.clone();
    if engines.contains(&Engine::UringZc) {
        let ip = sides.rx_ip();
        if let Err(e) = sides.rx_run(Box::new(move || engine::zcrx::setup(ip, 0))) {
            notes.push(e.to_string());
            progress(Progress::ZeroCopyUnsupported(&e));
            engines.retain(|e| *e != Engine::UringZc);
        }
    }
    if engines.contains(&Engine::Uring) {
        if let Err(e) = engine::uring_check_enabled() {
            notes.push(e.to_string());
            engines.retain(|e| *e != Engine::Uring);
        }
    }
    engines
}

/// Why a run that completed is not clean (the receiver's problems, the
/// sender's errors, bytes missing); `None` when it is clean.
fn run_problems(r: &RecvReport, s: &SendReport, conns: usize) -> Option<Vec<String>> {
    let hello = (HELLO_LEN * conns) as u64;
    let whole = r.bytes == s.total() + hello;
    if r.clean() && s.errors.is_empty() && whole {
        return None;
    }
    let mut why = r.problems();
    why.extend(s.errors.iter().cloned());
    if !whole {
        why.push(format!(
            "received {} bytes, sender wrote {} (+{hello} hello)",
            r.bytes,
            s.total()
        ));
    }
    Some(why)
}

fn run_matrix(
    sides: &dyn Sides,
    cfg: &MatrixConfig,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> MatrixReport {
    let mut report = MatrixReport {
        network: sides.describe(),
        bundles: None,
        engines: Vec::new(),
        cells: Vec::new(),
        notes: Vec::new(),
        problems: 0,
    };
    report.engines = usable_engines(sides, cfg, &mut report.notes, progress);
    let runs = cfg.runs.max(1);
    let total = report.engines.len() * cfg.conns.len() * cfg.sizes.len() * runs;
    let mut n = 0usize;
    for &engine in &report.engines.clone() {
        for &conns in &cfg.conns {
            for &size in &cfg.sizes {
                let mut cell = CellResult {
                    engine,
                    conns,
                    size,
                    gbits: Vec::new(),
                    cpu_per_gb: Vec::new(),
                };
                for run in 1..=runs {
                    n += 1;
                    let id = RunId {
                        n,
                        total,
                        engine,
                        conns,
                        size,
                        run,
                        runs,
                    };
                    one_run(sides, cfg, id, &mut cell, &mut report, progress);
                }
                report.cells.push(cell);
            }
        }
    }
    report
}

/// Measures run `id` and files its result in `cell` and `report`.
fn one_run(
    sides: &dyn Sides,
    cfg: &MatrixConfig,
    id: RunId,
    cell: &mut CellResult,
    report: &mut MatrixReport,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) {
    let rcfg = RecvConfig {
        conns: id.conns,
        verify: cfg.verify,
        idle_timeout: Duration::from_secs(5).max(cfg.duration),
        ..RecvConfig::default()
    };
    let scfg = SendConfig {
        to: SocketAddr::new(sides.rx_ip(), 0),
        conns: id.conns,
        size: id.size,
        duration: Some(cfg.duration),
        bytes: None,
        pattern: cfg.verify,
        cpu: Some(cfg.tx_cpu),
    };
    match measure(sides, id.engine, &rcfg, &scfg, cfg.rx_cpu) {
        Ok((r, s)) => {
            if report.bundles.is_none() {
                report.bundles = r
                    .details
                    .iter()
                    .find(|(k, _)| k == "bundle")
                    .map(|(_, b)| b.clone());
            }
            if let Some(why) = run_problems(&r, &s, id.conns) {
                report.problems += 1;
                let note = format!("{id}: {}", why.join("; "));
                progress(Progress::Problem(id, &r, &note));
                report.notes.push(note);
            } else {
                cell.gbits.push(r.gbits());
                cell.cpu_per_gb.push(r.cpu_per_gb().unwrap_or(f64::NAN));
                progress(Progress::Clean(id, &r));
            }
        }
        Err(e) => {
            report.problems += 1;
            progress(Progress::Failed(id, &e));
            report.notes.push(format!("{id}: failed: {e}"));
        }
    }
}

/// `1 KiB`, `64 KiB`, `1500 B`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_named_by_its_place_in_the_matrix() {
        let id = RunId {
            n: 3,
            total: 24,
            engine: Engine::Uring,
            conns: 8,
            size: 65536,
            run: 1,
            runs: 2,
        };
        assert_eq!(
            id.to_string(),
            "[3/24] uring, 8 conns, 64 KiB writes, run 1/2"
        );
        let one = RunId {
            conns: 1,
            size: 1500,
            ..id
        };
        assert_eq!(
            one.to_string(),
            "[3/24] uring, 1 conn, 1500 B writes, run 1/2"
        );
    }

    #[test]
    fn bad_cpus_and_zero_connections_are_refused_before_any_setup() {
        let ok = MatrixConfig {
            engines: vec![Engine::Epoll],
            conns: vec![1],
            sizes: vec![1024],
            runs: 1,
            duration: Duration::from_millis(10),
            verify: false,
            rx_cpu: 0,
            tx_cpu: 0,
            network: Network::Loopback,
        };
        assert!(check(&ok).is_ok());
        let cpu = MatrixConfig {
            rx_cpu: 1 << 20,
            ..ok.clone()
        };
        assert!(check(&cpu)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        let zero = MatrixConfig {
            conns: vec![1, 0],
            ..ok
        };
        assert!(check(&zero).unwrap_err().to_string().contains("at least 1"));
    }

    #[test]
    fn sizes_are_labelled_in_binary_units() {
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1500), "1500 B");
        assert_eq!(size_label(2 << 20), "2 MiB");
    }
}
