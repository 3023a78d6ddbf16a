//! `pktio`: fast packet I/O for Linux, from the command line.
//!
//! A shell over the library crates: each subcommand's flags (clap), its
//! checks and consent, the printing of results and the exit codes live
//! under `cmd/` (one file per subcommand: `xsk.rs` for rxdrop, txpush and
//! l2fwd, `gen.rs`, `bench.rs` for `bench`, `bench harness` and `bench
//! gen`, `doctor.rs`, `tcp/` for tcp-recv, tcp-send and `bench tcp`, …),
//! flag parsing in `args.rs`, where `--json` output goes in `output.rs`.
//! The engines they call are library crates:
//! `pktio-bench` (the packet loops `loops`, the generators `gen`, the
//! benchmark `bench`, `soak`, `latency`, the TCP engines `tcp`, reports
//! `report` and the run machinery `run`: stop flag, pinning, meters — the
//! last two also known here as `crate::run` and `crate::report`) and
//! `pktio-doctor`; capture and the backends are `pktio`'s.
//!
//! Kernel calls go through the safe APIs of those crates, `pktio-host` and
//! `pktio-lab`; this crate has no `unsafe`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod cmd;
mod output;
// The engines' run machinery (stop flag, pinning, meters) and reports,
// under the names the commands know them by: `crate::run`, `crate::report`.
use pktio_bench::{report, run};

/// Fast packet I/O for Linux: AF_XDP, AF_PACKET and io_uring, measured side by side.
///
/// Without a spare NIC, every command can run in a lab of two network
/// namespaces joined by a veth pair that pktio builds and removes itself
/// (addresses from 198.18.0.0/15 only).
#[derive(Debug, Parser)]
#[command(name = "pktio", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive and drop packets (AF_XDP, or any --backend), printing rates every second.
    Rxdrop(cmd::xsk::RxdropArgs),
    /// Transmit generated UDP frames (AF_XDP, or any --backend) as fast as possible.
    Txpush(cmd::xsk::TxpushArgs),
    /// Receive, swap MAC addresses, send back out (AF_XDP, or any --backend).
    L2fwd(cmd::xsk::L2fwdArgs),
    /// Build, inspect and remove the lab of network namespaces by hand.
    Lab(cmd::lab::LabArgs),
    /// Read this host's network tuning and say what limits packet rates.
    Doctor(cmd::doctor::DoctorArgs),
    /// Receive TCP with a chosen engine (blocking, epoll, io_uring).
    TcpRecv(cmd::tcp::RecvArgs),
    /// Send TCP to a tcp-recv server.
    TcpSend(cmd::tcp::SendArgs),
    /// Run the benchmark matrix in the lab and print it.
    ///
    /// Backends × modes × frame sizes (64..=9000 bytes on the wire), N runs
    /// each, with the XDP_DROP ceiling of each size. The generator is the
    /// fastest engine this host allows for each size (live frames, else
    /// AF_XDP transmit, an AF_PACKET TX ring, a raw socket; --generator
    /// names one); each cell records what it offered beside what was
    /// delivered, and a row that took ≥ 99 % of it is marked source-bound
    /// (≥ x, no ratio). Sizes above 1518 run at MTU 9000; only xdp-mb
    /// (AF_XDP multi-buffer) and the AF_PACKET / io_uring backends carry
    /// such frames, the other AF_XDP rows say "unsupported" and why.
    Bench(Box<cmd::bench::BenchArgs>),
    /// Generate UDP traffic: the fastest engine this host allows (in-kernel
    /// live frames, AF_XDP transmit, an AF_PACKET TX ring, a raw socket).
    Gen(cmd::gen::GenArgs),
    /// Ping/pong round trips in the lab: an HDR histogram per backend and wakeup mode.
    Latency(cmd::latency::LatencyArgs),
    /// Capture packets tcpdump-style (AF_PACKET, the host keeps every packet; --steal: AF_XDP, takes them).
    Capture(cmd::capture::CaptureArgs),
    /// Print a completion script for SHELL to stdout, e.g.
    /// `pktio completions bash > /etc/bash_completion.d/pktio`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `pktio man | man -l -`.
    Man,
    /// Run rxdrop and l2fwd in the lab for minutes, checking that rate, frame accounting and memory stay flat.
    Soak(cmd::soak::SoakArgs),
}

/// SIGINT and SIGTERM set the engines' stop flag: installed by the first
/// command that asks for the flag (the ones that run a loop, a generator or
/// a benchmark), so every other command keeps the default Ctrl-C.
fn install_stop_handler(flag: &std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let f = flag.clone();
    // Only a second installation fails; the flag still works for the
    // deadline, so an error here only costs Ctrl-C handling.
    if let Err(e) = ctrlc::set_handler(move || f.store(true, std::sync::atomic::Ordering::SeqCst)) {
        eprintln!("pktio: warning: cannot install the SIGINT/SIGTERM handler: {e}");
    }
}

fn main() -> ExitCode {
    run::set_stop_hook(install_stop_handler);
    let cli = Cli::parse();
    let mut error_code = ExitCode::FAILURE;
    let result = match cli.command {
        Command::Rxdrop(a) => cmd::xsk::rxdrop(a),
        Command::Txpush(a) => cmd::xsk::txpush(a),
        Command::L2fwd(a) => cmd::xsk::l2fwd(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::Doctor(a) => {
            // doctor's contract: 1 means findings, so an error is 2.
            error_code = ExitCode::from(2);
            cmd::doctor::run(a)
        }
        Command::TcpRecv(a) => cmd::tcp::recv(a),
        Command::TcpSend(a) => cmd::tcp::send(a),
        Command::Bench(a) => cmd::bench::run(*a),
        Command::Gen(a) => cmd::gen::run_gen(a),
        Command::Latency(a) => cmd::latency::run(a),
        Command::Capture(a) => cmd::capture::run(a),
        Command::Soak(a) => cmd::soak::run(a),
        Command::Completions { shell } => {
            let mut cli = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cli, "pktio", &mut text);
            print_all(&text)
        }
        Command::Man => man(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pktio: error: {}", error_line(&e));
            if let Some(h) = cmd::hint_for(&e) {
                eprintln!("pktio: hint: {h}");
            }
            error_code
        }
    }
}

/// `pktio man`: the man page of the command and its subcommands, in roff.
fn man() -> anyhow::Result<ExitCode> {
    let cli = <Cli as clap::CommandFactory>::command();
    let mut text = Vec::new();
    clap_mangen::Man::new(cli.clone()).render(&mut text)?;
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        text.push(b'\n');
        let title = format!("pktio-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone())
            .title(title)
            .render(&mut text)?;
    }
    print_all(&text)
}

/// Writes `text` to stdout; a reader that stops early (`| head`) is not
/// an error.
fn print_all(text: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// An error and its causes on one line, joined by ": ", as `{:#}` does,
/// but without a cause that the message before it already ends with (an
/// error that shows its source in its own text and also returns it from
/// `source()`, like a system call's error, would otherwise print the
/// kernel's answer twice).
fn error_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod error_line_tests {
    use super::error_line;

    #[test]
    fn a_cause_already_shown_is_not_repeated() {
        let sys = pktio::SysError::from_errno("bind(AF_XDP)", libc::EOPNOTSUPP);
        let e = anyhow::Error::new(sys).context("zero-copy refused on lo queue 0");
        let line = error_line(&e);
        assert_eq!(
            line,
            "zero-copy refused on lo queue 0: bind(AF_XDP) failed: Operation not supported \
             (os error 95)"
        );
        // `{:#}` repeats the kernel's answer.
        assert!(format!("{e:#}").ends_with("(os error 95): Operation not supported (os error 95)"));
    }
}
