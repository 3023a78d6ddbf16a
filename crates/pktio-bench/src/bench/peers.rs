//! Existing tools run in the same lab as `pktio bench`, as rows of the same
//! table: dpdk-testpmd with `net_af_xdp` and `net_af_packet` (rxonly,
//! txonly, macswap), with its defaults, as `shared/lab/lab.sh` runs it.
//!
//! testpmd is driven through its interactive prompt: `show port stats all`
//! brackets the measured window, the packets counted are its own RX counter
//! (rxonly) or the arrivals at the far end (txonly, macswap: an XDP_DROP
//! sink there, like ours), and its cost is the CPU time of the whole process
//! (`/proc/PID/stat`) plus the softirq time of its forwarding core.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pktio::bpf::XdpAction;
use pktio_lab::{Host, Lab};

use crate::bench::cell::{busy_pct, CellError, GenCpu, RunResult};
use crate::bench::lab::{attach_sink, join_generator, start_generator, GenPlan};
use crate::bench::matrix::BenchMode;
use crate::bench::sink::sink_window;
use crate::bench::window::{sleep_unless_stopped, sleep_window, Stopped, STOP_SLICE};
use crate::run::CpuTimes;

/// An existing tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// dpdk-testpmd on `net_af_xdp` (AF_XDP, copy mode on veth).
    TestpmdXdp,
    /// dpdk-testpmd on `net_af_packet` (TPACKET_V2 mmap rings).
    TestpmdPacket,
}

impl Peer {
    /// Its row name.
    pub fn name(self) -> &'static str {
        match self {
            Peer::TestpmdXdp => "testpmd-xdp",
            Peer::TestpmdPacket => "testpmd-pkt",
        }
    }
}

/// Where a tool of xdp-tools is: the path in `env` (`XDP_BENCH`,
/// `XDP_TRAFFICGEN`, as `shared/lab/lab.sh` takes them), else the first
/// `name` on `PATH`. Debian's xdp-tools 1.3.1 does not run on kernels
/// ≥ 6.16; whether the one found runs is seen when it is started.
pub fn find_xdp_tool(env: &str, name: &str) -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(p.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What to say of a tool of xdp-tools (found through `env`, see
/// [`find_xdp_tool`]) that could not run.
pub fn xdp_tool_unusable(
    name: &str,
    env: &str,
    path: &std::path::Path,
    e: &anyhow::Error,
) -> String {
    format!(
        "{name} ({}): unusable: {e:#} (xdp-tools ≥ 1.5.6 runs on kernels ≥ 6.16; name one in {env})",
        path.display()
    )
}

/// An existing tool running as our child for one measured window.
#[derive(Debug)]
pub struct ToolChild {
    child: Child,
}

impl ToolChild {
    /// Starts `cmd` with its output discarded and its stderr kept for the
    /// reason it might fail.
    pub fn spawn(mut cmd: std::process::Command) -> anyhow::Result<ToolChild> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", cmd.get_program().to_string_lossy()))?;
        Ok(ToolChild { child })
    }

    /// Stops it (SIGINT to its PID, SIGKILL after 3 s). `Err` if it had
    /// already exited: it could not run, and the error says why (the last
    /// line it wrote to stderr).
    pub fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            let why = err
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("no message");
            bail!("exited on its own ({why})");
        }
        // Our own child, by its PID: SIGINT is how these tools stop cleanly.
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// The XDP_DROP ceiling with `xdp-bench drop` (native mode) as the sink on
/// the receiving veth instead of pktio's program: packets per second
/// counted by the link, same generator.
pub fn measure_xdp_bench_ceiling(
    lab: &Lab,
    gen: &GenPlan,
    path: &std::path::Path,
    size: u32,
    gen_cpu: usize,
    warmup: f64,
    seconds: f64,
) -> anyhow::Result<f64> {
    let mut cmd = lab.rx().command(path);
    cmd.args(["drop", "-m", "native", lab.rx().ifname()]);
    let tool = ToolChild::spawn(cmd)?;
    let stop = Arc::new(AtomicBool::new(false));
    let g = match start_generator(lab, gen, size, gen_cpu, None, stop.clone()) {
        Ok(g) => g,
        Err(e) => {
            let _ = tool.stop();
            return Err(e);
        }
    };
    let window = sink_window(lab, gen_cpu, warmup, seconds, Some(&g.progress));
    stop.store(true, Ordering::SeqCst);
    let gen = join_generator(g);
    tool.stop()?;
    gen?;
    Ok(window?.pps())
}

/// The peers installed here; the missing ones are added to `notes`.
pub fn available(notes: &mut Vec<String>) -> Vec<Peer> {
    if installed(
        "dpdk-testpmd",
        "dpdk dpdk-dev librte-net-af-xdp23 librte-net-af-packet23",
        notes,
    ) {
        vec![Peer::TestpmdXdp, Peer::TestpmdPacket]
    } else {
        vec![]
    }
}

/// Whether `bin --version` runs here; if not, a note (once) naming the
/// Debian packages `pkgs` that bring it.
pub(crate) fn installed(bin: &str, pkgs: &str, notes: &mut Vec<String>) -> bool {
    let ok = pktio_lab::die_with_parent(&mut std::process::Command::new(bin))
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        let n = format!("peers: {bin} not installed (Debian: apt-get install {pkgs})");
        if !notes.contains(&n) {
            notes.push(n);
        }
    }
    ok
}

/// testpmd's CPU time (all threads), ns, from /proc/PID/stat.
pub(crate) fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the ")" of the command name: utime is the 14th field overall.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks * 10_000_000
}

/// The `RX-packets:` value of every "NIC statistics" block testpmd printed
/// (the answers to `show port stats all`, in order).
fn nic_rx_packets(out: &str) -> Vec<u64> {
    let mut v = Vec::new();
    let mut in_block = false;
    for l in out.lines() {
        if l.contains("NIC statistics for port") {
            in_block = true;
        } else if in_block {
            if let Some(r) = l.trim().strip_prefix("RX-packets:") {
                if let Some(n) = r.split_whitespace().next().and_then(|x| x.parse().ok()) {
                    v.push(n);
                }
                in_block = false;
            }
        }
    }
    v
}

/// A running `dpdk-testpmd`, driven through its interactive prompt.
#[derive(Debug)]
pub struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<String>>,
}

impl Testpmd {
    /// Starts testpmd in `host`'s namespace on its interface with `peer`'s
    /// driver, forward mode `fwd`, its forwarding lcore on `cpu` (the main
    /// lcore on another CPU). For `txonly`, `size`-byte frames (FCS
    /// included) from the lab's gen address to rx's.
    pub fn start(
        lab: &Lab,
        host: &Host,
        peer: Peer,
        fwd: &str,
        size: u32,
        cpu: usize,
    ) -> anyhow::Result<Testpmd> {
        let vdev = match peer {
            Peer::TestpmdXdp => format!(
                "net_af_xdp0,iface={},start_queue=0,queue_count=1",
                host.ifname()
            ),
            Peer::TestpmdPacket => format!("net_af_packet0,iface={},qpairs=1", host.ifname()),
        };
        let other = if cpu == 0 { 1 } else { 0 };
        let mut cmd = host.command("dpdk-testpmd");
        cmd.args([
            "-l",
            &format!("{other},{cpu}"),
            "--main-lcore",
            &other.to_string(),
        ])
        .args(["--file-prefix", &format!("pktio-{}", std::process::id())])
        .args([
            "--no-huge",
            "-m",
            "1024",
            "--no-pci",
            "--vdev",
            &vdev,
            "--",
            "-i",
        ])
        .arg(format!("--forward-mode={fwd}"))
        .arg("--total-num-mbufs=32768");
        if fwd == "txonly" {
            let m = lab.rx().mac();
            cmd.arg(format!("--txpkts={}", size - 4)).arg(format!(
                "--eth-peer=0,{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ));
            cmd.arg(format!("--tx-ip={},{}", lab.gen().addr(), lab.rx().addr()));
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting dpdk-testpmd")?;
        let (out, _readers) = collect_output(&mut child);
        let stdin = child.stdin.take().context("testpmd stdin")?;
        Ok(Testpmd { child, stdin, out })
    }

    /// Waits for the port to come up, then starts forwarding. `Err`
    /// ([`Stopped`]) at once on Ctrl-C/SIGTERM.
    pub fn start_forwarding(&mut self) -> anyhow::Result<()> {
        self.wait_for("Checking link statuses", Duration::from_secs(20))?;
        if !sleep_unless_stopped(Duration::from_millis(300), &crate::run::stop_flag()) {
            return Err(Stopped.into());
        }
        self.send("start")
    }

    fn send(&mut self, cmd: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{cmd}").context("writing to testpmd")?;
        self.stdin.flush().context("writing to testpmd")
    }

    fn output(&self) -> String {
        self.out.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until testpmd's output contains `what` (or it exits, or
    /// Ctrl-C/SIGTERM: [`Stopped`]).
    fn wait_for(&mut self, what: &str, timeout: Duration) -> anyhow::Result<()> {
        let stop = crate::run::stop_flag();
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.output().contains(what) {
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!("dpdk-testpmd exited ({st}):\n{}", tail(&self.output()));
            }
            if !sleep_unless_stopped(STOP_SLICE, &stop) {
                return Err(Stopped.into());
            }
        }
        bail!(
            "dpdk-testpmd did not say {what:?} within {timeout:?}:\n{}",
            tail(&self.output())
        )
    }

    /// Asks for the port counters. testpmd's stdout is a pipe, so it is
    /// block-buffered: the answers are read after it exits (`quit`), each
    /// holding the counter at the moment it was asked for.
    fn stats(&mut self) -> anyhow::Result<()> {
        self.send("show port stats all")
    }

    /// Stops testpmd and returns everything it printed.
    pub fn quit(mut self) -> String {
        let _ = self.send("stop");
        let _ = self.send("quit");
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Let the reader threads drain the pipes.
        std::thread::sleep(Duration::from_millis(200));
        self.output()
    }
}

/// Collects `child`'s stdout and stderr, as they come, into one shared
/// text (raw reads, not lines: netsniff-ng ends its lines with `\r`), on
/// reader threads that end when the pipes close; join them to have it all.
pub(crate) fn collect_output(child: &mut Child) -> (Arc<Mutex<String>>, Vec<JoinHandle<()>>) {
    let out = Arc::new(Mutex::new(String::new()));
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    let readers = pipes
        .into_iter()
        .flatten()
        .map(|mut r| {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = r.read(&mut buf) {
                    if let Ok(mut o) = out.lock() {
                        o.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            })
        })
        .collect();
    (out, readers)
}

pub(crate) fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs one cell with `peer` in the lab.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    lab: &Lab,
    gen: &GenPlan,
    peer: Peer,
    mode: BenchMode,
    size: u32,
    (cpu, gen_cpu): (usize, usize),
    rate: Option<f64>,
    warmup: f64,
    seconds: f64,
) -> Result<RunResult, CellError> {
    let (host, far) = match mode {
        BenchMode::Txpush => (lab.gen(), lab.rx()),
        _ => (lab.rx(), lab.gen()),
    };
    let _sink = match mode {
        BenchMode::Txpush => Some(attach_sink(lab.rx(), XdpAction::Drop)?),
        BenchMode::L2fwd => Some(attach_sink(lab.gen(), XdpAction::Drop)?),
        BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => None,
    };
    // net_af_packet sees frames only through the stack: give the veth a NAPI
    // for the generator's XDP_TX frames (GRO), as lab.sh does.
    let gro = peer == Peer::TestpmdPacket && mode != BenchMode::Txpush;
    if gro {
        lab.rx().set_gro(true)?;
    }
    let fwd = match mode {
        BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => "rxonly",
        BenchMode::Txpush => "txonly",
        BenchMode::L2fwd => "macswap",
    };
    let stop = crate::run::stop_flag();
    let mut tp = Testpmd::start(lab, host, peer, fwd, size, cpu)?;
    type Window = (f64, u64, u64, GenCpu, Option<f64>, bool);
    let window = (|| -> Result<Window, CellError> {
        tp.start_forwarding()?;
        let gen_stop = Arc::new(AtomicBool::new(false));
        let g = match mode {
            BenchMode::Txpush => None,
            _ => Some(start_generator(
                lab,
                gen,
                size,
                gen_cpu,
                rate,
                gen_stop.clone(),
            )?),
        };
        // Whatever happens in the window (a stop, an error), the generator
        // is stopped and joined.
        // In the thread placement the tool's receive work runs in the NAPI
        // threads pinned to its core: its CPU per packet includes them.
        let napi = crate::bench::napi::threads_of(host);
        let measured = (|| -> Result<Window, CellError> {
            let sent = || g.as_ref().map(|g| g.progress.frames());
            let held = || g.as_ref().map_or(0, |g| g.progress.held_back());
            sleep_window(warmup, &stop)?;
            let pid = tp.child.id();
            tp.stats()?;
            let (c0, s0, f0, t0) = (
                process_cpu_ns(pid),
                crate::bench::napi::receive_work_ns(cpu, &napi),
                far.try_stats()?.rx_packets,
                Instant::now(),
            );
            let (g0, o0, h0) = (CpuTimes::now(gen_cpu), sent(), held());
            sleep_window(seconds, &stop)?;
            tp.stats()?;
            let (c1, s1, f1, dt) = (
                process_cpu_ns(pid),
                crate::bench::napi::receive_work_ns(cpu, &napi),
                far.try_stats()?.rx_packets,
                t0.elapsed().as_secs_f64(),
            );
            let (g1, o1, h1) = (CpuTimes::now(gen_cpu), sent(), held());
            Ok((
                dt,
                f1.saturating_sub(f0),
                c1.saturating_sub(c0) + s1.saturating_sub(s0),
                busy_pct(g0, g1),
                o0.zip(o1).map(|(a, b)| b.saturating_sub(a) as f64 / dt),
                h1 > h0,
            ))
        })();
        gen_stop.store(true, Ordering::SeqCst);
        if let Some(g) = g {
            join_generator(g)?;
        }
        measured
    })();
    let out = tp.quit();
    if gro {
        lab.rx().set_gro(false)?;
    }
    let (dt, far_delta, cpu_ns, gen_cpu_pct, offered_pps, held_back) = window?;
    let rx = nic_rx_packets(&out);
    let [.., rx0, rx1] = rx[..] else {
        return Err(CellError::Failed(anyhow::anyhow!(
            "dpdk-testpmd printed {} port-stats answers, expected 2:\n{}",
            rx.len(),
            tail(&out)
        )));
    };
    let tool_rx = rx1.saturating_sub(rx0);
    let handled = match mode {
        BenchMode::Rxdrop | BenchMode::L2fwd | BenchMode::Capture | BenchMode::CaptureTmpfs => {
            tool_rx
        }
        BenchMode::Txpush => far_delta,
    };
    let delivered = match mode {
        BenchMode::Rxdrop | BenchMode::Capture | BenchMode::CaptureTmpfs => tool_rx,
        _ => far_delta,
    };
    Ok(RunResult {
        pps: delivered as f64 / dt,
        drops_pct: None,
        gen_cpu_pct: gen_cpu_pct.filter(|_| mode != BenchMode::Txpush),
        offered_pps,
        held_back,
        ns_per_packet: if handled > 0 {
            cpu_ns as f64 / handled as f64
        } else {
            0.0
        },
        queue_pps: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rx_packets_of_each_stats_answer() {
        let out = "testpmd> show port stats all\n  ######################## NIC statistics for port 0  ########################\n  RX-packets: 1200       RX-missed: 0          RX-bytes:  76800\n  RX-errors: 0\n  TX-packets: 0\n  ---------------------- Forward statistics for port 0  ----------------------\n  RX-packets: 99             RX-dropped: 0             RX-total: 99\n  ######################## NIC statistics for port 0  ########################\n  RX-packets: 3400       RX-missed: 5          RX-bytes:  217600\n";
        assert_eq!(nic_rx_packets(out), vec![1200, 3400]);
        assert!(nic_rx_packets("nothing").is_empty());
    }
}
