//! `pktio bench tcp`: every engine × {1, 8} connections × {1 KiB, 64 KiB} writes.
//!
//! Each measurement runs the receiving engine on one thread (blocking: one per
//! connection) pinned to the receiver CPU, and the sender's threads pinned to
//! the sender CPU, both inside this process. In the lab the receiver lives in
//! the rx namespace and the sender in the gen namespace, joined by veth; with
//! `--loopback` both live in a private namespace of their own over 127.0.0.1.
//! The receiver reports bytes, the time from first accept to last close, and
//! the CPU time of its own threads (CLOCK_THREAD_CPUTIME_ID).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::conn::RecvReport;
use super::engine::{self, Engine, RecvConfig};
use super::send::{self, SendConfig, SendReport};
use super::{listen, parse_size, sys, TcpError};
use crate::report::{Cell, Environment, Labels, Report};

/// Arguments of `pktio bench tcp`.
#[derive(Debug, clap::Args)]
pub struct TcpBenchArgs {
    /// Engines to measure (uring-zc is probed and reported as a note when unsupported).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Engine::ALL)]
    pub engines: Vec<Engine>,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    pub conns: Vec<usize>,
    /// Write sizes (K/M suffixes allowed).
    #[arg(long, value_delimiter = ',', default_values = ["1K", "64K"], value_parser = parse_size)]
    pub sizes: Vec<usize>,
    /// Runs per cell (the table shows the median and min–max).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds per run (0.001 to 31536000).
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS",
          value_parser = crate::args::parse_seconds, allow_hyphen_values = true)]
    pub seconds: f64,
    /// One run of one second per cell: a smoke test, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// Send the pattern and verify every byte (costs CPU on both sides).
    #[arg(long)]
    pub verify: bool,
    /// CPU for the receiver (default: the last CPU).
    #[arg(long)]
    pub rx_cpu: Option<usize>,
    /// CPU for the sender (default: CPU 0).
    #[arg(long)]
    pub tx_cpu: Option<usize>,
    /// Run in a private network namespace over 127.0.0.1 instead of the lab's veth pair.
    #[arg(long)]
    pub loopback: bool,
    /// Turn GRO on at the lab's receiving veth end (default: the kernel's, off).
    #[arg(long)]
    pub gro: bool,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write SVG bar charts: throughput to this file, CPU per GB next to it (`NAME.cpu.svg`).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Print the table as Markdown instead of aligned text.
    #[arg(long)]
    pub markdown: bool,
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
        let _ = sys::pin_current_thread(rx_cpu);
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

/// Runs `pktio bench tcp`.
pub fn bench(a: TcpBenchArgs) -> anyhow::Result<ExitCode> {
    let ncpu = thread::available_parallelism().map_or(1, |n| n.get());
    let rx_cpu = a.rx_cpu.unwrap_or(ncpu.saturating_sub(1));
    let tx_cpu = a.tx_cpu.unwrap_or(0);
    for c in [rx_cpu, tx_cpu] {
        if c >= ncpu {
            return Err(
                TcpError::Config(format!("CPU {c} does not exist: this host has {ncpu}")).into(),
            );
        }
    }
    let (runs, seconds) = if a.quick {
        (1, 1.0)
    } else {
        (a.runs.max(1), a.seconds)
    };
    let max_conns = a.conns.iter().copied().max().unwrap_or(1);
    if a.conns.contains(&0) {
        return Err(TcpError::Config("--conns values must be at least 1".into()).into());
    }
    super::check_fd_limit(2 * max_conns, 32)?;
    let dur = Duration::try_from_secs_f64(seconds)
        .map_err(|_| TcpError::Config(format!("--seconds must be positive, not {seconds}")))?;

    if !a.loopback {
        let mut b = pktio_lab::Lab::builder();
        if a.gro {
            b = b.gro(true);
        }
        let lab = b.build().map_err(|e| {
            anyhow::anyhow!("cannot build the lab (two namespaces and a veth pair): {e}")
        })?;
        return run_matrix(&LabSides { lab }, &a, runs, dur, rx_cpu, tx_cpu);
    }
    if a.gro {
        return Err(
            TcpError::Config("--gro applies to the lab's veth, not to --loopback".into()).into(),
        );
    }
    let job = move || -> anyhow::Result<ExitCode> {
        sys::enter_private_netns().map_err(|e| TcpError::sys("unshare(CLONE_NEWNET)", e))?;
        run_matrix(&Local, &a, runs, dur, rx_cpu, tx_cpu)
    };
    // The namespace belongs to the thread that enters it: do that on a thread of our own.
    thread::spawn(job)
        .join()
        .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?
}

fn run_matrix(
    sides: &dyn Sides,
    a: &TcpBenchArgs,
    runs: usize,
    dur: Duration,
    rx_cpu: usize,
    tx_cpu: usize,
) -> anyhow::Result<ExitCode> {
    let mut env = Environment::detect();
    env.cores.insert("receiver".into(), vec![rx_cpu]);
    env.cores.insert("sender".into(), vec![tx_cpu]);
    env.set("network", sides.describe());
    env.set("seconds", format!("{}", dur.as_secs_f64()));
    env.set("runs", runs.to_string());
    env.set("verify", if a.verify { "yes" } else { "no" });
    if !a.loopback {
        env.set("gro", if a.gro { "on" } else { "kernel default (off)" });
    }
    let mut report = Report::new("TCP receive", env, &["engine", "conns", "write"]);
    report.notes.push(
        "receiver CPU = CPU clock (CLOCK_THREAD_CPUTIME_ID) of the receiving threads per GB received; \
         on veth most of the kernel's receive path runs in softirq on the sender's CPU"
            .into(),
    );

    let mut engines = a.engines.clone();
    if engines.contains(&Engine::UringZc) {
        let ip = sides.rx_ip();
        match sides.rx_run(Box::new(move || engine::zcrx::setup(ip, 0))) {
            Ok(()) => {}
            Err(e) => {
                report.notes.push(e.to_string());
                eprintln!("pktio: {e}");
                engines.retain(|e| *e != Engine::UringZc);
            }
        }
    }
    if engines.iter().any(|e| matches!(e, Engine::Uring)) {
        if let Err(e) = engine::uring_check_enabled() {
            report.notes.push(e.to_string());
            engines.retain(|e| !matches!(e, Engine::Uring));
        }
    }

    let total = engines.len() * a.conns.len() * a.sizes.len() * runs;
    let mut n = 0usize;
    let mut problems = 0usize;
    for &engine in &engines {
        for &conns in &a.conns {
            for &size in &a.sizes {
                let labels = Labels::new([
                    ("engine", engine.name().to_string()),
                    ("conns", conns.to_string()),
                    ("write", size_label(size)),
                ]);
                let mut gbits = Vec::new();
                let mut cpu = Vec::new();
                for run in 1..=runs {
                    n += 1;
                    let cfg = RecvConfig {
                        conns,
                        verify: a.verify,
                        idle_timeout: Duration::from_secs(5).max(dur),
                        ..RecvConfig::default()
                    };
                    let scfg = SendConfig {
                        to: SocketAddr::new(sides.rx_ip(), 0),
                        conns,
                        size,
                        duration: Some(dur),
                        bytes: None,
                        pattern: a.verify,
                        cpu: Some(tx_cpu),
                    };
                    let head = format!(
                        "[{n}/{total}] {engine}, {conns} conn{}, {} writes, run {run}/{runs}",
                        if conns == 1 { "" } else { "s" },
                        size_label(size)
                    );
                    match measure(sides, engine, &cfg, &scfg, rx_cpu) {
                        Ok((r, s)) => {
                            if let Some((_, b)) = r.details.iter().find(|(k, _)| k == "bundle") {
                                if !report
                                    .environment
                                    .extra
                                    .iter()
                                    .any(|(k, _)| k == "uring bundles")
                                {
                                    report.environment.set("uring bundles", b.clone());
                                }
                            }
                            let ok = r.clean()
                                && s.errors.is_empty()
                                && r.bytes == s.total() + 16 * conns as u64;
                            eprintln!(
                                "{head}: {:.2} Gbit/s, {} CPU s/GB{}",
                                r.gbits(),
                                r.cpu_per_gb().map_or("–".into(), crate::report::fmt_num),
                                if ok { "" } else { " (PROBLEM, see below)" }
                            );
                            if ok {
                                gbits.push(r.gbits());
                                cpu.push(r.cpu_per_gb().unwrap_or(f64::NAN));
                            } else {
                                problems += 1;
                                let mut why = r.problems();
                                why.extend(s.errors.iter().cloned());
                                if r.bytes != s.total() + 16 * conns as u64 {
                                    why.push(format!(
                                        "received {} bytes, sender wrote {} (+{} hello)",
                                        r.bytes,
                                        s.total(),
                                        16 * conns
                                    ));
                                }
                                let note = format!("{head}: {}", why.join("; "));
                                eprintln!("pktio: {note}");
                                report.notes.push(note);
                            }
                        }
                        Err(e) => {
                            problems += 1;
                            eprintln!("{head}: failed: {e}");
                            report.notes.push(format!("{head}: failed: {e}"));
                        }
                    }
                }
                report
                    .cells
                    .push(Cell::new(labels.clone(), "throughput", "Gbit/s", gbits));
                report
                    .cells
                    .push(Cell::new(labels, "receiver CPU", "s/GB", cpu));
            }
        }
    }

    let baseline = engines
        .contains(&Engine::Epoll)
        .then_some(("engine", "epoll"));
    if a.markdown {
        print!("{}", report.to_markdown(baseline));
    } else {
        print!("{}", report.to_text(baseline));
    }
    if let Some(p) = &a.json {
        std::fs::write(p, report.to_json())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        std::fs::write(
            p,
            report.to_svg("throughput", &["conns", "write"], "engine"),
        )
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
        let cpu_path = p.with_extension("cpu.svg");
        std::fs::write(
            &cpu_path,
            report.to_svg("receiver CPU", &["conns", "write"], "engine"),
        )
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", cpu_path.display()))?;
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `1 KiB`, `64 KiB`, `1500 B`.
fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{} MiB", size >> 20)
    } else if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(loopback: bool, dir: &std::path::Path) -> TcpBenchArgs {
        TcpBenchArgs {
            engines: Engine::ALL.to_vec(),
            conns: vec![1, 2],
            sizes: vec![1024, 65536],
            runs: 2,
            seconds: 0.2,
            quick: false,
            verify: true,
            rx_cpu: None,
            tx_cpu: None,
            loopback,
            gro: false,
            json: Some(dir.join("tcp.json")),
            svg: Some(dir.join("tcp.svg")),
            markdown: false,
        }
    }

    /// A short, verified matrix in the lab: every cell gets its runs, uring-zc
    /// is reported as unsupported on veth, and JSON/SVG files are written.
    /// Short runs on purpose: this checks the plumbing, not the numbers.
    #[test]
    fn a_tiny_matrix_in_the_lab_fills_every_cell() {
        pktio_lab::require_root!();
        let dir = std::env::temp_dir().join(format!("pktio-tcp-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let code = bench(tiny(false, &dir)).expect("bench runs");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("tcp.json")).unwrap()).unwrap();
        let svg = std::fs::read_to_string(dir.join("tcp.svg")).unwrap();
        let cpu_svg = std::fs::read_to_string(dir.join("tcp.cpu.svg")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, ExitCode::SUCCESS, "{json:#}");
        let cells = json["cells"].as_array().unwrap();
        // 3 engines (uring-zc is unsupported on veth) × 2 conns × 2 sizes × 2 metrics.
        assert_eq!(cells.len(), 24, "{json:#}");
        for c in cells {
            assert_eq!(c["samples"].as_array().map(Vec::len), Some(2), "{c:#}");
            assert!(c["median"].as_f64().is_some_and(|m| m > 0.0), "{c:#}");
        }
        let notes = json["notes"].to_string();
        assert!(
            notes.contains(
                "uring-zc: unsupported: the device needs header/data split and flow steering"
            ),
            "{notes}"
        );
        assert_eq!(json["environment"]["extra"][0][1], "lab veth");
        assert_eq!(
            roxmltree::Document::parse(&svg)
                .unwrap()
                .descendants()
                .filter(|n| n.attribute("class") == Some("bar"))
                .count(),
            12
        );
        assert!(roxmltree::Document::parse(&cpu_svg).is_ok());
    }

    #[test]
    fn the_loopback_variant_runs_in_a_private_namespace() {
        pktio_lab::require_root!();
        let dir = std::env::temp_dir().join(format!("pktio-tcp-bench-lo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = tiny(true, &dir);
        a.engines = vec![Engine::Epoll, Engine::Uring];
        a.conns = vec![2];
        a.sizes = vec![4096];
        a.runs = 1;
        let code = bench(a).expect("bench runs");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("tcp.json")).unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, ExitCode::SUCCESS, "{json:#}");
        assert_eq!(json["cells"].as_array().map(Vec::len), Some(4));
        assert_eq!(
            json["environment"]["extra"][0][1],
            "private netns, loopback"
        );
    }

    #[test]
    fn sizes_are_labelled_in_binary_units() {
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1500), "1500 B");
        assert_eq!(size_label(2 << 20), "2 MiB");
    }
}
