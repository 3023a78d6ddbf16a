//! `pktio bench tcp`: the flags, and the table, JSON and SVG of what
//! [`pktio_bench::tcp::bench::run`] measures (every engine × {1, 8}
//! connections × {1 KiB, 64 KiB} writes by default).

use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use pktio_bench::tcp::bench::{self as matrix, MatrixConfig, MatrixReport, Network, Progress};
use pktio_bench::tcp::{Engine, TcpError};

use super::parse_size;
use crate::output::{human, JsonTo};
use crate::report::{fmt_num, Cell, Environment, Labels, Report};

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
    /// Write the report as JSON to FILE, or to stdout with `-` (the table
    /// then goes to stderr).
    #[arg(long, value_name = "FILE|-", value_parser = crate::output::parse_json_to)]
    pub json: Option<JsonTo>,
    /// Write SVG bar charts: throughput to this file, CPU per GB next to it (`NAME.cpu.svg`).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Print the table as Markdown instead of aligned text.
    #[arg(long)]
    pub markdown: bool,
}

/// Prints a run's line to stderr as the matrix goes.
fn show(p: Progress<'_>) {
    match p {
        Progress::ZeroCopyUnsupported(e) => eprintln!("pktio: {e}"),
        Progress::Clean(id, r) => eprintln!(
            "{id}: {:.2} Gbit/s, {} CPU s/GB",
            r.gbits(),
            r.cpu_per_gb().map_or("–".into(), fmt_num)
        ),
        Progress::Problem(id, r, note) => {
            eprintln!(
                "{id}: {:.2} Gbit/s, {} CPU s/GB (PROBLEM, see below)",
                r.gbits(),
                r.cpu_per_gb().map_or("–".into(), fmt_num)
            );
            eprintln!("pktio: {note}");
        }
        Progress::Failed(id, e) => eprintln!("{id}: failed: {e}"),
    }
}

/// The matrix to run, from the flags.
fn config(a: &TcpBenchArgs) -> Result<MatrixConfig, TcpError> {
    let ncpu = thread::available_parallelism().map_or(1, |n| n.get());
    let (runs, seconds) = if a.quick {
        (1, 1.0)
    } else {
        (a.runs.max(1), a.seconds)
    };
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|_| TcpError::Config(format!("--seconds must be positive, not {seconds}")))?;
    let network = match (a.loopback, a.gro) {
        (false, gro) => Network::Lab { gro },
        (true, false) => Network::Loopback,
        (true, true) => {
            return Err(TcpError::Config(
                "--gro applies to the lab's veth, not to --loopback".into(),
            ))
        }
    };
    Ok(MatrixConfig {
        engines: a.engines.clone(),
        conns: a.conns.clone(),
        sizes: a.sizes.clone(),
        runs,
        duration,
        verify: a.verify,
        rx_cpu: a.rx_cpu.unwrap_or(ncpu.saturating_sub(1)),
        tx_cpu: a.tx_cpu.unwrap_or(0),
        network,
    })
}

/// The printable report of a measured matrix.
fn report(cfg: &MatrixConfig, m: MatrixReport) -> Report {
    let mut env = Environment::detect();
    env.cores.insert("receiver".into(), vec![cfg.rx_cpu]);
    env.cores.insert("sender".into(), vec![cfg.tx_cpu]);
    env.set("network", m.network);
    env.set("seconds", format!("{}", cfg.duration.as_secs_f64()));
    env.set("runs", cfg.runs.to_string());
    env.set("verify", if cfg.verify { "yes" } else { "no" });
    if let Network::Lab { gro } = cfg.network {
        env.set("gro", if gro { "on" } else { "kernel default (off)" });
    }
    if let Some(b) = m.bundles {
        env.set("uring bundles", b);
    }
    let mut report = Report::new("TCP receive", env, &["engine", "conns", "write"]);
    report.notes.push(
        "receiver CPU = CPU clock (CLOCK_THREAD_CPUTIME_ID) of the receiving threads per GB received; \
         on veth most of the kernel's receive path runs in softirq on the sender's CPU"
            .into(),
    );
    report.notes.extend(m.notes);
    for c in m.cells {
        let labels = Labels::new([
            ("engine", c.engine.name().to_string()),
            ("conns", c.conns.to_string()),
            ("write", matrix::size_label(c.size)),
        ]);
        report
            .cells
            .push(Cell::new(labels.clone(), "throughput", "Gbit/s", c.gbits));
        report
            .cells
            .push(Cell::new(labels, "receiver CPU", "s/GB", c.cpu_per_gb));
    }
    report
}

/// Writes `text` to `path`, naming the file in the error.
fn write(path: &std::path::Path, text: String) -> anyhow::Result<()> {
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Runs `pktio bench tcp`.
pub fn bench(a: TcpBenchArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(&a)?;
    let m = matrix::run(&cfg, &mut show)?;
    let problems = m.problems;
    let baseline = m
        .engines
        .contains(&Engine::Epoll)
        .then_some(("engine", "epoll"));
    let report = report(&cfg, m);
    let table = if a.markdown {
        report.to_markdown(baseline)
    } else {
        report.to_text(baseline)
    };
    human(a.json.as_ref(), &table);
    if let Some(to) = &a.json {
        to.write(&report.to_json())?;
    }
    if let Some(p) = &a.svg {
        write(
            p,
            report.to_svg("throughput", &["conns", "write"], "engine"),
        )?;
        write(
            &p.with_extension("cpu.svg"),
            report.to_svg("receiver CPU", &["conns", "write"], "engine"),
        )?;
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
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
            json: Some(JsonTo::File(dir.join("tcp.json"))),
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
}
