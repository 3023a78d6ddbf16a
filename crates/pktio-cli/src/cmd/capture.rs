//! `pktio capture`: tcpdump-style capture with the filter compiled into the
//! XDP steering program. Matching packets go to AF_XDP sockets and into a
//! pcap/pcapng file (or a one-line summary each); everything else continues
//! into the kernel untouched. `--backend packet` captures through AF_PACKET
//! with the filter as classic BPF instead. `-r FILE` reads a capture back.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::ValueEnum;
use pktio::filter::{join_words, Dissected, Filter};
use pktio::pcap::{
    summary, Capture, CaptureBuffers, CaptureConfig, CaptureError, CaptureOutput, CaptureStats,
    CapturedPacket, FileFormat, InterfaceStats, OutputConfig, OutputSummary, PacketCapture,
    PcapError, PcapReader, Queues, Rotation, Target, Timestamp, WriterOptions, MAX_SNAPLEN,
};
use pktio::xdp::{AttachMode, BindMode};

use crate::run::stop_flag;

/// Capture backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// AF_XDP, with the filter compiled into the XDP steering program.
    Xdp,
    /// AF_PACKET (TPACKET_V3 ring) with the filter as classic BPF on the socket:
    /// copies of matching packets; the stack still gets everything (alias `v3`).
    #[value(alias = "v3")]
    Packet,
}

/// XDP attach modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpAttach {
    /// Driver mode where supported, else skb mode.
    Auto,
    /// Driver (native) mode only.
    Driver,
    /// Generic (skb) mode.
    Skb,
}

/// Arguments of `pktio capture`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  \
pktio capture -i eth0 -w /tmp/dns.pcap udp port 53\n  \
pktio capture -i eth0 --all-queues -C 100 -W 5 -w /var/tmp/cap.pcapng --pcapng\n  \
pktio capture -i eth0 -w - 'vlan 100 and tcp dst port 443' | tshark -r -\n  \
pktio capture -r /tmp/dns.pcap 'src host 198.18.0.1'",
    after_long_help = "Filter language (a subset of pcap-filter(7)):\n  \
ether src|dst|host MAC, vlan [ID], ip, ip6, arp, tcp, udp, sctp, icmp, icmp6,\n  \
[ip|ip6] proto N, [ip|ip6|arp] [src|dst] host ADDR, [src|dst] net CIDR,\n  \
[tcp|udp|sctp] [src|dst] port N, [src|dst] portrange A-B, len OP N, greater N, less N,\n  \
and (&&), or (||), not (!), parentheses. As in pcap, `and` and `or` have equal\n  \
precedence, left to right. One VLAN tag is looked through (`ip` matches tagged IPv4\n  \
too); ports are read from first fragments only; IPv6 extension headers are not walked.\n\n\
With --backend xdp (the default), packets the filter matches are steered by the XDP\n\
program into AF_XDP sockets and removed from the kernel's path; everything else reaches\n\
the network stack untouched. With --backend packet, the filter runs as classic BPF on an\n\
AF_PACKET socket (TPACKET_V3 ring): matching packets are copied, the stack still gets\n\
everything, VLAN tags the kernel stripped are put back, timestamps are the kernel's.\n\n\
Examples:\n  \
pktio capture -i eth0 -w /tmp/dns.pcap udp port 53\n  \
pktio capture -i eth0 --all-queues -C 100 -W 5 -w /var/tmp/cap.pcapng --pcapng\n  \
pktio capture -i eth0 -w - 'vlan 100 and tcp dst port 443' | tshark -r -\n  \
pktio capture -r /tmp/dns.pcap 'src host 198.18.0.1'"
)]
pub struct CaptureArgs {
    /// Interface to capture on.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IF",
        required_unless_present = "read"
    )]
    interface: Option<String>,
    /// Receive queue to capture from.
    #[arg(short = 'q', long, default_value_t = 0, conflicts_with = "all_queues")]
    queue: u32,
    /// Capture from every receive queue (one AF_XDP socket and UMEM each).
    #[arg(long)]
    all_queues: bool,
    /// Write packets to FILE (`-` for standard output) instead of printing a line each.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<String>,
    /// Read packets from FILE (`-` for standard input) and print a line each (or write them with -w).
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all = ["interface", "all_queues", "backend"])]
    read: Option<String>,
    /// Stop after COUNT packets.
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Bytes kept of each packet (0 = 262144).
    #[arg(short = 's', long, value_name = "SNAPLEN", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_SNAPLEN)))]
    snaplen: u32,
    /// Start a new file before the current one exceeds MB × 1,000,000 bytes.
    #[arg(short = 'C', value_name = "MB", conflicts_with = "rotate_seconds", requires = "write",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rotate_mb: Option<u64>,
    /// Start a new file for packets arriving SECONDS after the current one began.
    #[arg(short = 'G', value_name = "SECONDS", requires = "write",
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    rotate_seconds: Option<u64>,
    /// Keep at most FILES files, overwriting the oldest (with -C or -G).
    #[arg(short = 'W', value_name = "FILES", requires = "write",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    files: Option<u32>,
    /// Write pcapng instead of pcap.
    #[arg(long)]
    pcapng: bool,
    /// Capture backend.
    #[arg(long, value_enum, default_value = "xdp")]
    backend: Backend,
    /// How to attach the XDP program.
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: XdpAttach,
    /// Bind AF_XDP sockets in copy mode (default: zero-copy where the driver allows).
    #[arg(long)]
    copy: bool,
    /// Read the rings without ever sleeping (one CPU at 100 %): no wake-up
    /// latency, so the rings never overflow while the process wakes up; for
    /// the highest rates. Without it the capture sleeps in poll(2) when idle.
    #[arg(long)]
    spin: bool,
    /// UMEM frames per queue (4 KiB each); the RX ring gets half of them, up
    /// to 16384 entries: more frames ride out longer stalls of the reader.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    frames: u32,
    /// Write buffer in KiB (records are written in whole batches of this size).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(4..=1_048_576))]
    buffer_kib: u32,
    /// The filter (words are joined with spaces, as by tcpdump).
    #[arg(value_name = "FILTER")]
    filter: Vec<String>,
}

/// Parses the filter words, rendering an error with a caret under its position.
fn parse_filter(words: &[String]) -> anyhow::Result<Filter> {
    Filter::from_words(words).map_err(|e| {
        let text = join_words(words);
        anyhow::anyhow!("{e}\n  {}", e.render(&text).replace('\n', "\n  "))
    })
}

fn output_config(a: &CaptureArgs, snaplen: u32, ifname: Option<&str>) -> Option<OutputConfig> {
    let w = a.write.as_ref()?;
    Some(OutputConfig {
        target: if w == "-" {
            Target::Stdout
        } else {
            Target::File(PathBuf::from(w))
        },
        writer: WriterOptions {
            format: if a.pcapng {
                FileFormat::PcapNg
            } else {
                FileFormat::Pcap
            },
            snaplen,
            ifname: ifname.map(str::to_string),
            buffer_size: a.buffer_kib as usize * 1024,
        },
        rotation: match (a.rotate_mb, a.rotate_seconds) {
            (Some(mb), _) => Rotation::Size(mb * 1_000_000),
            (_, Some(s)) => Rotation::Time(Duration::from_secs(s)),
            _ => Rotation::None,
        },
        max_files: a.files,
    })
}

/// `pktio capture`.
pub fn run(a: CaptureArgs) -> anyhow::Result<ExitCode> {
    let filter = parse_filter(&a.filter)?;
    if a.files.is_some() && a.rotate_mb.is_none() && a.rotate_seconds.is_none() {
        bail!("-W FILES needs a rotation: -C MB or -G SECONDS");
    }
    if let Some(path) = &a.read {
        return read(&a, path, &filter);
    }
    live(&a, filter)
}

/// A line for a packet: time, length, summary.
fn line(ts: Timestamp, data: &[u8], orig_len: u32) -> String {
    let d = Dissected::new(data, orig_len as usize);
    format!("{ts} {orig_len:>5} {}", summary(&d))
}

fn read(a: &CaptureArgs, path: &str, filter: &Filter) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    read_to(a, path, filter, &mut BufWriter::new(stdout.lock()))
}

/// `-r`: prints a line per packet to `lines` (or writes the packets with `-w`).
fn read_to(
    a: &CaptureArgs,
    path: &str,
    filter: &Filter,
    lines: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn Iterator<Item = Result<pktio::pcap::Record, PcapError>>> = if path == "-" {
        Box::new(PcapReader::new(std::io::stdin().lock())?)
    } else {
        Box::new(PcapReader::open(std::path::Path::new(path))?)
    };
    let mut out = match output_config(
        a,
        if a.snaplen == 0 {
            MAX_SNAPLEN
        } else {
            a.snaplen
        },
        None,
    ) {
        Some(cfg) => Some(CaptureOutput::open(cfg)?),
        None => None,
    };
    let mut n = 0u64;
    let mut result = Ok(());
    for rec in reader {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if !filter.matches_dissected(&Dissected::new(&rec.data, rec.orig_len as usize)) {
            continue;
        }
        match &mut out {
            Some(o) => o.write_packet(rec.ts, &rec.data, rec.orig_len)?,
            None => {
                if let Err(e) = writeln!(lines, "{}", line(rec.ts, &rec.data, rec.orig_len)) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::SUCCESS);
                    }
                    return Err(e).context("writing to standard output");
                }
            }
        }
        n += 1;
        if a.count.is_some_and(|c| n >= c) {
            break;
        }
    }
    match lines.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing to standard output")
        }
        _ => {}
    }
    if let Some(o) = out {
        o.finish(None)?;
    }
    result.with_context(|| format!("reading {path} (after {n} packet(s))"))?;
    Ok(ExitCode::SUCCESS)
}

/// The capture, by backend. One lives per run, on the stack: the size
/// difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Source<'b> {
    Xdp(Capture<'b>),
    Packet(PacketCapture),
}

impl Source<'_> {
    fn poll<F: FnMut(&CapturedPacket<'_>)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> Result<usize, CaptureError> {
        match self {
            Source::Xdp(c) => c.poll(timeout, f),
            Source::Packet(c) => c.poll(timeout, f),
        }
    }

    fn stats(&mut self) -> Result<CaptureStats, CaptureError> {
        match self {
            Source::Xdp(c) => c.stats(),
            Source::Packet(c) => c.stats(),
        }
    }

    fn check_interface(&self) -> Result<(), CaptureError> {
        match self {
            Source::Xdp(c) => c.check_interface(),
            Source::Packet(c) => c.check_interface(),
        }
    }
}

fn live(a: &CaptureArgs, filter: Filter) -> anyhow::Result<ExitCode> {
    let ifname = a
        .interface
        .clone()
        .context("give an interface with -i IF")?;
    let mut cfg = CaptureConfig::new(&ifname)
        .filter(filter.clone())
        .snaplen(a.snaplen);
    cfg.queues = if a.all_queues {
        Queues::All
    } else {
        Queues::One(a.queue)
    };
    cfg.attach = match a.xdp_mode {
        XdpAttach::Auto => AttachMode::Auto,
        XdpAttach::Driver => AttachMode::Driver,
        XdpAttach::Skb => AttachMode::Skb,
    };
    cfg.bind = if a.copy {
        BindMode::Copy
    } else {
        BindMode::Auto
    };
    cfg.frames = a.frames;
    cfg.ring_size = (a.frames / 2).next_power_of_two().min(16384);
    if cfg.ring_size > a.frames / 2 {
        cfg.ring_size /= 2;
    }
    let snaplen = cfg.effective_snaplen()?;

    // Open the output first: an unwritable file fails before anything is attached.
    let mut out = match output_config(a, snaplen, Some(&ifname)) {
        Some(c) => Some(CaptureOutput::open(c)?),
        None => None,
    };
    let buffers = match a.backend {
        Backend::Xdp => Some(CaptureBuffers::new(&cfg).map_err(with_hint)?),
        Backend::Packet => None,
    };
    let mut cap = match &buffers {
        Some(b) => {
            let cap = Capture::open(&cfg, b).map_err(with_hint)?;
            let (mode, why) = cap.attach_mode();
            eprintln!(
                "pktio capture: listening on {ifname} queue(s) {:?}, XDP program in {mode} mode{}, filter: {filter}",
                b.queues(),
                why.map(|w| format!(" ({w})")).unwrap_or_default()
            );
            for s in cap.sockets() {
                eprintln!("pktio capture: {s}");
            }
            Source::Xdp(cap)
        }
        None => {
            if a.all_queues || a.queue != 0 {
                eprintln!(
                    "pktio capture: note: AF_PACKET sees every queue; -q/--all-queues do not apply"
                );
            }
            let cap = PacketCapture::open(&cfg).map_err(with_hint)?;
            eprintln!(
                "pktio capture: listening on {ifname} (AF_PACKET, TPACKET_V3 ring, classic BPF filter), filter: {filter}"
            );
            Source::Packet(cap)
        }
    };

    let stop = stop_flag();
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut lines = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut captured = 0u64;
    let mut write_error: Option<PcapError> = None;
    let mut print_error: Option<std::io::Error> = None;
    let mut stopped_by = "interrupt";
    let mut last_check = Instant::now();
    let mut last_flush = Instant::now();
    let mut result: anyhow::Result<()> = Ok(());
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let wait = if a.spin {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        };
        let polled = cap.poll(wait, |p| {
            if captured >= a.count.unwrap_or(u64::MAX)
                || write_error.is_some()
                || print_error.is_some()
            {
                return;
            }
            match &mut out {
                Some(o) => match o.write_packet(p.ts, p.data, p.orig_len) {
                    Ok(()) => captured += 1,
                    Err(e) => write_error = Some(e),
                },
                None => match writeln!(lines, "{}", line(p.ts, p.data, p.orig_len)) {
                    Ok(()) => captured += 1,
                    Err(e) => print_error = Some(e),
                },
            }
        });
        let n = match polled {
            Ok(n) => n,
            Err(e) => {
                stopped_by = "a capture error (the interface vanished, or the socket failed)";
                result = Err(with_hint(e));
                break;
            }
        };
        if write_error.is_some() || print_error.is_some() {
            stopped_by = "an output error";
            break;
        }
        if a.count.is_some_and(|c| captured >= c) {
            stopped_by = "the packet count";
            break;
        }
        // Idle: let readers of the file or pipe see what we have (spinning,
        // at most every 100 ms: an empty ring is then no sign of a pause).
        if n == 0 && (!a.spin || last_flush.elapsed() >= Duration::from_millis(100)) {
            last_flush = Instant::now();
            if let Some(o) = &mut out {
                if let Err(e) = o.flush() {
                    write_error = Some(e);
                    stopped_by = "an output error";
                    break;
                }
            }
            if let Err(e) = lines.flush() {
                print_error = Some(e);
                stopped_by = "an output error";
                break;
            }
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            if let Err(e) = cap.check_interface() {
                result = Err(with_hint(e));
                stopped_by = "the interface vanishing";
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let stats = cap.stats().unwrap_or_default();
    drop(cap); // detach before the final writes: the interface is back to normal
    let _ = lines.flush();
    let isb = InterfaceStats {
        start: stats.started,
        end: Timestamp::now(),
        if_received: stats.interface.map(|c| c.rx_packets),
        if_dropped: stats.interface.map(|c| c.rx_dropped + c.rx_missed),
        filter_accepted: Some(stats.matched),
        os_dropped: Some(stats.socket_dropped),
        delivered: Some(captured),
    };
    let out_summary = match out {
        Some(o) if write_error.is_none() => match o.finish(Some(&isb)) {
            Ok(s) => Some(s),
            Err(e) => {
                write_error = Some(e);
                None
            }
        },
        Some(o) => {
            // The error is already known; close what is left.
            drop(o);
            None
        }
        None => None,
    };
    print_summary(
        &stats,
        a.backend,
        captured,
        elapsed,
        out_summary.as_ref(),
        stopped_by,
    );
    if let Some(e) = print_error {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing to standard output");
        }
    }
    if let Some(e) = write_error {
        if let PcapError::Write { source, name, .. } = &e {
            if name == "standard output" && source.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
        }
        return Err(e.into());
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// A capture error for `main`, which prints the hint of the `SysError` in
/// the chain.
fn with_hint(e: CaptureError) -> anyhow::Error {
    anyhow::Error::new(e)
}

fn print_summary(
    s: &CaptureStats,
    backend: Backend,
    captured: u64,
    elapsed: Duration,
    out: Option<&OutputSummary>,
    stopped_by: &str,
) {
    let secs = elapsed.as_secs_f64();
    eprintln!("pktio capture: stopped by {stopped_by} after {secs:.1} s");
    eprintln!(
        "{captured} packets captured\n{} packets matched the filter (received from the socket{})",
        s.matched,
        if backend == Backend::Xdp { "s" } else { "" }
    );
    match backend {
        Backend::Xdp => eprintln!(
            "{} packets dropped by the socket (RX ring full {}, no fill buffer {})",
            s.socket_dropped, s.xsk.rx_ring_full, s.xsk.rx_dropped
        ),
        Backend::Packet => eprintln!(
            "{} packets dropped by the socket (ring full, PACKET_STATISTICS)",
            s.socket_dropped
        ),
    }
    match s.interface {
        Some(c) => eprintln!(
            "{} packets received by the interface, {} dropped by the kernel (rx_dropped {}, rx_missed {})",
            c.rx_packets,
            c.rx_dropped + c.rx_missed,
            c.rx_dropped,
            c.rx_missed
        ),
        None => eprintln!("interface counters unavailable"),
    }
    if backend == Backend::Xdp {
        eprintln!(
            "XDP_STATISTICS: rx_dropped {}, rx_ring_full {}, rx_fill_ring_empty_descs {}, rx_invalid_descs {}",
            s.xsk.rx_dropped, s.xsk.rx_ring_full, s.xsk.rx_fill_ring_empty_descs, s.xsk.rx_invalid_descs
        );
    }
    if let Some(o) = out {
        let share = if secs > 0.0 {
            o.stats.write_time.as_secs_f64() / secs * 100.0
        } else {
            0.0
        };
        eprintln!(
            "writer: {} packets, {} bytes in {} file(s){}, {} write(2) calls taking {:.3} s ({share:.1}% of the run)",
            o.stats.packets,
            o.stats.bytes,
            o.files_opened,
            o.last_file
                .as_ref()
                .map(|p| format!(" (last: {})", p.display()))
                .unwrap_or_default(),
            o.stats.write_calls,
            o.stats.write_time.as_secs_f64()
        );
        if s.socket_dropped > 0 && share > 20.0 {
            eprintln!(
                "pktio capture: the writer fell behind: the socket dropped {} packets while \
                 writing took {share:.0}% of the run; write to faster storage, raise --frames, or use --buffer-kib",
                s.socket_dropped
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        a: CaptureArgs,
    }

    fn args(v: &[&str]) -> Result<CaptureArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("capture").chain(v.iter().copied())).map(|c| c.a)
    }

    #[test]
    fn tcpdump_style_arguments() {
        let a = args(&[
            "-i", "eth0", "-c", "5", "-w", "x.pcap", "udp", "dst", "port", "4242",
        ])
        .unwrap();
        assert_eq!(a.filter.join(" "), "udp dst port 4242");
        assert_eq!(a.count, Some(5));
        // Options may follow the filter words, as with tcpdump.
        let a = args(&["-i", "eth0", "--backend", "v3", "tcp", "-s", "96"]).unwrap();
        assert_eq!(a.backend, Backend::Packet);
        assert_eq!((a.filter.join(" "), a.snaplen), ("tcp".to_string(), 96));
        for bad in [
            &["-i", "eth0", "-s", "262145"][..],
            &["-i", "eth0", "-w", "x", "-C", "1", "-G", "1"],
            &["-i", "eth0", "-C", "1"],
            &["-r", "x.pcap", "-i", "eth0"],
            &["-i", "eth0", "-q", "1", "--all-queues"],
            &["-i", "eth0", "-c", "0"],
            &["tcp"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn filter_errors_show_a_caret() {
        let words: Vec<String> = ["udp", "port", "foo"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = parse_filter(&words).unwrap_err().to_string();
        assert!(e.contains("at byte 9"), "{e}");
        assert!(e.ends_with("  udp port foo\n           ^^^"), "{e}");
    }

    #[test]
    fn read_prints_matching_packets_and_reports_a_cut_file() {
        let dir = std::env::temp_dir().join(format!("pktio-cli-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.pcap");
        let spec = pktio::wire::UdpFrame {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: "198.18.0.1".parse().unwrap(),
            dst_ip: "198.18.0.2".parse().unwrap(),
            src_port: 9,
            dst_port: 4242,
        };
        let mut w = pktio::pcap::PcapWriter::create(&path, WriterOptions::default()).unwrap();
        for i in 0..4u16 {
            let mut f = vec![0u8; 60];
            let mut s = spec;
            s.dst_port = 4240 + i;
            s.emit(b"hi", 60, &mut f).unwrap();
            w.write_packet(
                Timestamp {
                    sec: 86_400,
                    nsec: u32::from(i),
                },
                &f,
                60,
            )
            .unwrap();
        }
        w.finish(None).unwrap();
        let p = path.to_str().unwrap();
        let a = args(&["-r", p, "udp", "dst", "portrange", "4241-4242"]).unwrap();
        let filter = parse_filter(&a.filter).unwrap();
        let mut out = Vec::new();
        read_to(&a, p, &filter, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "1970-01-02T00:00:00.000000001Z    60 IP 198.18.0.1.9 > 198.18.0.2.4241: UDP, length 18\n\
             1970-01-02T00:00:00.000000002Z    60 IP 198.18.0.1.9 > 198.18.0.2.4242: UDP, length 18\n"
        );
        // A file cut inside its last record: the whole ones, then an error.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let a = args(&["-r", p]).unwrap();
        let mut out = Vec::new();
        let e = read_to(&a, p, &Filter::all(), &mut out).unwrap_err();
        assert!(format!("{e:#}").contains("ends inside"), "{e:#}");
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
