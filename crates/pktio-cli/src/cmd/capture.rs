//! `pktio capture`: tcpdump-style capture. By default an AF_PACKET socket
//! (TPACKET_V3 ring) with the filter as classic BPF receives copies of the
//! matching packets: the host keeps every packet. `--steal` captures
//! through AF_XDP instead, the filter compiled into the XDP program: the
//! matching packets are taken away from the host (for a mirror port or a
//! dedicated interface), each queue (`--queues`) read by a thread of its
//! own (pinned with `--cpus`) feeding one writer. Without `-w`, one line
//! per packet as `tcpdump -n` prints it; `--json-lines` prints a record a
//! second instead. `-r FILE` reads a capture back (Ethernet, Linux cooked
//! v1/v2, raw IP).

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::ValueEnum;
use pktio::bpf::XdpMode;
use pktio::filter::{join_words, CookedProgram, Dissected, Filter, Network};
use pktio::pcap::{
    ascii, hex, hex_and_ascii, link_header, summary_verbose, summary_without_link_verbose, Capture,
    CaptureBuffers, CaptureConfig, CaptureError, CaptureOutput, CaptureStats, CapturedPacket,
    FileFormat, InterfaceStats, LinkType, OutputConfig, OutputSummary, PacketCapture, PcapError,
    PcapReader, Promiscuous, QueueStats, Queues, Rotation, Stamper, Target, ThreadedCapture,
    TimeFormat, Timestamp, WriterOptions, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, MAX_SNAPLEN,
};
use pktio::xdp::{AttachMode, BindMode, SocketInfo};

use crate::args::{parse_cpus, CpuList};
use crate::run::stop_flag;

/// Capture backends (`--backend`, kept for scripts: `xdp` is `--steal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// AF_XDP: the same as --steal (matching packets are taken from the host).
    Xdp,
    /// AF_PACKET (TPACKET_V3 ring), the default (alias `v3`).
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

const STEAL_HELP: &str =
    "Capture through AF_XDP and TAKE the matching packets away from the host: \
they no longer reach its network stack (sessions, services and replies on this \
interface that match the filter stop working). For a mirror/SPAN port or an \
interface dedicated to capture. Every receive queue (one AF_XDP socket and one \
thread each) unless -q/--queues";

/// Arguments of `pktio capture`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  \
pktio capture -i eth0 udp port 53\n  \
pktio capture -i eth0 -w /var/tmp/dns.pcap udp port 53\n  \
pktio capture -i eth0 -e -X -c 10 'tcp port 80'\n  \
pktio capture -i mirror0 --steal -C 100 -W 5 -w /var/tmp/cap.pcapng --pcapng\n  \
pktio capture -r any.pcap 'src host 198.18.0.1'",
    after_long_help = "Filter language (a subset of pcap-filter(7)):\n  \
ether src|dst|host MAC, vlan [ID], ip, ip6, arp, tcp, udp, sctp, icmp, icmp6,\n  \
[ip|ip6] proto N, [ip|ip6|arp] [src|dst] host ADDR, [src|dst] net CIDR,\n  \
[tcp|udp|sctp] [src|dst] port N, [src|dst] portrange A-B, len OP N, greater N, less N,\n  \
and (&&), or (||), not (!), parentheses. As in pcap, `and` and `or` have equal\n  \
precedence, left to right.\n\n\
By default the capture takes nothing from the host: an AF_PACKET socket (TPACKET_V3\n\
ring) with the filter as classic BPF gets copies of the matching packets, in\n\
promiscuous mode unless -p (the kernel ends it when the capture ends, however it\n\
ends). VLAN tags the kernel stripped are put back; time stamps are the kernel's.\n\n\
With --steal, the filter is compiled into an XDP program that redirects the\n\
matching packets into AF_XDP sockets (every receive queue, or --queues LIST, -q Q):\n\
those packets NO LONGER REACH THE HOST's network stack. Everything else passes untouched. Use it\n\
on a mirror/SPAN port or a dedicated interface, never on the one you are logged in\n\
through with a filter that matches your session. Above an MTU of 3504 (jumbo\n\
frames) the --steal capture is multi-buffer (a frags-aware XDP program, XDP_USE_SG\n\
sockets; kernel 6.6): each frame is written whole, its buffers joined. Each queue\n\
is read by a thread of its own (pinned with --cpus LIST, one CPU per queue in the\n\
queues' order), all feeding one writer: packets are written in the order the\n\
threads read them, and on Ctrl-C everything read is written before the summary,\n\
which counts packets per queue. --queues and --cpus need --steal: the default\n\
AF_PACKET capture sees every queue of the interface on one socket.\n\n\
--json FILE|- writes the stop summary as JSON (pktio.capture/1); --json-lines\n\
prints a JSON object a second on stdout (pktio.capture-second/1: packets and bytes\n\
captured, the kernel's drop count, per queue with --steal) and the summary as the\n\
last line; it needs -w FILE (no packet lines are printed). docs/JSON.md lists the\n\
fields.\n\n\
Without -w, one line per packet as `tcpdump -n` prints it (local time; -t, -tt,\n\
-ttt, -tttt, -ttttt for the other forms; -e for the link header; -x, -xx, -X, -XX,\n\
-A for the bytes; -v, -vv for the IP header's fields and the checksums). Names are never resolved (-n, -nn accepted). -r reads pcap and\n\
pcapng files of link type Ethernet, Linux cooked v1/v2 (`-i any`) or raw IP.\n\n\
Examples:\n  \
pktio capture -i eth0 udp port 53\n  \
pktio capture -i eth0 -w /var/tmp/dns.pcap udp port 53\n  \
pktio capture -i eth0 -e -X -c 10 'tcp port 80'\n  \
pktio capture -i mirror0 --steal -C 100 -W 5 -w /var/tmp/cap.pcapng --pcapng\n  \
pktio capture -i mirror0 --steal --queues 0-3 --cpus 4-7 -w /var/tmp/cap.pcap --json-lines\n  \
pktio capture -r any.pcap 'src host 198.18.0.1'"
)]
pub struct CaptureArgs {
    /// Interface to capture on (`any`: every interface, Linux cooked v2
    /// records as tcpdump -i any, the filter run by the kernel unless it
    /// reads len/greater/less or ether src/host, which pktio evaluates on
    /// every packet (a note says so); not with --steal).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IF",
        required_unless_present_any = ["read", "list_interfaces", "dump_program"]
    )]
    interface: Option<String>,
    #[arg(long, help = STEAL_HELP, conflicts_with = "read")]
    steal: bool,
    /// With --steal: capture from receive queue Q only (the same as
    /// --queues Q; default: every queue).
    #[arg(short = 'q', long, value_name = "Q", conflicts_with_all = ["all_queues", "queues"])]
    queue: Option<u32>,
    /// With --steal: every receive queue (the default there).
    #[arg(long, hide = true, conflicts_with = "queues")]
    all_queues: bool,
    /// With --steal: the receive queues to capture from, `all` (the default)
    /// or a list such as 0,2-3; one AF_XDP socket and one thread each. Not
    /// without --steal: the default AF_PACKET capture sees every queue of
    /// the interface already.
    #[arg(long, value_name = "all|LIST", value_parser = parse_queues)]
    queues: Option<Queues>,
    /// With --steal: pin the capture thread of each queue to a CPU, in the
    /// queues' order (the i-th queue on the i-th CPU, e.g. --queues 0,1
    /// --cpus 2,3; round robin when fewer CPUs than queues, more is an
    /// error; a CPU may repeat). The writer runs on the main thread,
    /// unpinned.
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    cpus: Option<CpuList>,
    /// Do not put the interface in promiscuous mode (as tcpdump -p).
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    no_promiscuous: bool,
    /// Write packets to FILE (`-` for standard output) instead of printing a
    /// line each. A symbolic link at FILE is refused, not followed.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<String>,
    /// Read packets from FILE (`-` for standard input) and print a line each (or write them with -w).
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all = ["interface", "all_queues", "backend"])]
    read: Option<String>,
    /// Write the stop summary's numbers as JSON to FILE, or to stdout with
    /// `-` (only with -w FILE, when no packets go to stdout); live capture
    /// only.
    #[arg(long, value_name = "FILE|-", conflicts_with = "read",
          value_parser = crate::output::parse_json_to)]
    json: Option<crate::output::JsonTo>,
    /// Print a JSON object a second on stdout (schema
    /// pktio.capture-second/1: packets and bytes captured, drops, per
    /// queue with --steal) and the stop summary as the last line
    /// (pktio.capture/1); needs -w FILE (stdout carries the records, so no
    /// packet lines are printed); live capture only.
    #[arg(long, conflicts_with_all = ["json", "read"])]
    json_lines: bool,
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
    /// Read the filter from FILE (`#` starts a comment) instead of the command line.
    #[arg(short = 'F', value_name = "FILE")]
    filter_file: Option<PathBuf>,
    /// Print the compiled filter and exit: classic BPF (as tcpdump -d), or
    /// with --steal the XDP program's instructions.
    #[arg(short = 'd', action = clap::ArgAction::Count)]
    dump_program: u8,
    /// List the interfaces and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    list_interfaces: bool,
    /// Do not resolve addresses and ports (never done; accepted as in tcpdump, also -nn).
    #[arg(short = 'n', action = clap::ArgAction::Count)]
    numeric: u8,
    /// Absolute TCP sequence numbers (always so; accepted as in tcpdump).
    #[arg(short = 'S')]
    absolute_seq: bool,
    /// Verbose lines, as tcpdump -v: the IP header's fields (tos, ttl, id,
    /// offset, flags, proto, length) and the checksums (-vv: UDP over IPv4's too).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// After opening the capture and the output file, become USER (its
    /// groups, then group, then user id), as tcpdump -Z; the capture stops
    /// if any step fails. Files that -C/-G open later are opened as USER.
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    user: Option<String>,
    /// -Z's account, looked up before anything is opened.
    #[arg(skip)]
    become_user: Option<pktio::host::User>,
    /// Print the link-level header on each line (MACs, ethertype, length).
    #[arg(short = 'e')]
    link_level: bool,
    /// Time stamps: -t none, -tt seconds since the epoch, -ttt since the
    /// previous packet, -tttt date and time, -ttttt since the first packet.
    #[arg(short = 't', action = clap::ArgAction::Count)]
    time: u8,
    /// Print each packet in hex, without its link header (-xx: with it).
    #[arg(short = 'x', action = clap::ArgAction::Count)]
    hex: u8,
    /// Print each packet in hex and ASCII, without its link header (-XX: with it).
    #[arg(short = 'X', action = clap::ArgAction::Count)]
    hex_ascii: u8,
    /// Print each packet in ASCII, without its link header.
    #[arg(short = 'A')]
    ascii: bool,
    /// Flush standard output after every line (for `| grep`), as tcpdump -l.
    #[arg(short = 'l')]
    line_buffered: bool,
    /// Backend, for scripts: `xdp` is --steal, `packet` (`v3`) the default.
    #[arg(long, value_enum, hide = true, conflicts_with = "steal")]
    backend: Option<Backend>,
    /// With --steal: how to attach the XDP program.
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: XdpAttach,
    /// With --steal: bind the AF_XDP sockets in copy mode (default: zero-copy where the driver allows).
    #[arg(long)]
    copy: bool,
    /// Read the rings without ever sleeping (one CPU at 100 %; with --steal,
    /// one per queue thread): no wake-up latency, so the rings never
    /// overflow while the process wakes up; for the highest rates. Without
    /// it the capture sleeps in poll(2) when idle.
    #[arg(long)]
    spin: bool,
    /// With --steal: UMEM frames per queue (4 KiB each; fewer per queue past
    /// 65536 in all, with many queues); the RX ring gets half of them, up
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

impl CaptureArgs {
    /// Whether the capture steals: `--steal` or `--backend xdp`.
    fn steals(&self) -> bool {
        self.steal || self.backend == Some(Backend::Xdp)
    }
}

/// Value parser of `--queues`: `all` or a list of queue ids and ranges.
fn parse_queues(s: &str) -> Result<Queues, String> {
    match s.parse::<Queues>()? {
        Queues::List(l) if l.is_empty() => Err("give at least one queue".into()),
        q => Ok(q),
    }
}

/// Parses the filter words, rendering an error with a caret under its position.
fn parse_filter(words: &[String]) -> anyhow::Result<Filter> {
    Filter::from_words(words).map_err(|e| {
        let text = join_words(words);
        anyhow::anyhow!("{e}\n  {}", e.render(&text).replace('\n', "\n  "))
    })
}

/// The filter of `-F FILE`: its words, with `#` comments removed.
fn filter_file_words(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the filter file {} (-F)", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect())
}

/// A usage error: the message, exit status 2 (as for a bad flag).
fn usage(msg: &str) -> anyhow::Result<ExitCode> {
    eprintln!("pktio capture: {msg}");
    Ok(ExitCode::from(2))
}

fn output_config(
    a: &CaptureArgs,
    snaplen: u32,
    ifname: Option<&str>,
    linktype: u16,
) -> Option<OutputConfig> {
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
            linktype,
        },
        rotation: match (a.rotate_mb, a.rotate_seconds) {
            (Some(mb), _) => Rotation::Size(mb * 1_000_000),
            (_, Some(s)) => Rotation::Time(Duration::from_secs(s)),
            _ => Rotation::None,
        },
        max_files: a.files,
    })
}

/// Prints packets as `tcpdump -n` does, with its -e, -t…, -x, -X, -A.
struct Printer {
    stamper: Stamper,
    link: LinkType,
    link_level: bool,
    verbose: u8,
    hex: u8,
    hex_ascii: u8,
    ascii: bool,
    scratch: Vec<u8>,
    /// Interface names by index, for Linux cooked v2 records.
    names: std::collections::HashMap<u32, String>,
}

impl Printer {
    fn new(a: &CaptureArgs, link: LinkType) -> Printer {
        Printer {
            stamper: Stamper::new(TimeFormat::from_count(a.time)),
            link,
            link_level: a.link_level,
            verbose: a.verbose,
            hex: a.hex,
            hex_ascii: a.hex_ascii,
            ascii: a.ascii,
            scratch: Vec::new(),
            names: std::collections::HashMap::new(),
        }
    }

    /// The text for one packet: its line, and the dumps asked for.
    fn text(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> String {
        let link = self.link;
        let (frame, wire) = link.as_ethernet(data, orig_len, &mut self.scratch);
        let d = Dissected::new(frame, wire as usize);
        let mut s = self.stamper.stamp(ts);
        let v = self.verbose;
        if link == LinkType::LinuxSll2 && data.len() >= 20 {
            // tcpdump: the interface (named on this host) and the direction
            // on every line; the cooked header with -e, or when the
            // network layer is not decoded.
            let ifindex = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            let name = self
                .names
                .entry(ifindex)
                .or_insert_with(|| pktio::host::interface_name(ifindex).unwrap_or("?".into()));
            let _ = write!(s, "{name:<5} {:<3} ", packet_type(data[10]));
            if self.link_level || matches!(d.net, Network::Other(_)) {
                let proto = u16::from_be_bytes([data[0], data[1]]);
                let halen = usize::from(data[11]).min(8);
                let addr: Vec<String> = data[12..12 + halen]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let _ = write!(
                    s,
                    "ifindex {ifindex} {} ethertype {} (0x{proto:04x}), length {orig_len}: ",
                    addr.join(":"),
                    ethertype_name(proto)
                );
                s.push_str(&summary_without_link_verbose(&d, v));
            } else {
                s.push_str(&summary_verbose(&d, v));
            }
        } else if !self.link_level {
            s.push_str(&summary_verbose(&d, v));
        } else if link == LinkType::Ethernet {
            s.push_str(&link_header(&d));
            s.push_str(&summary_without_link_verbose(&d, v));
        } else {
            s.push_str(&cooked_header(link, data, orig_len));
            s.push_str(&summary_without_link_verbose(&d, v));
        }
        s.push('\n');
        let dump = self.hex > 0 || self.hex_ascii > 0 || self.ascii;
        if self.hex == 0 && self.hex_ascii == 0 && matches!(d.net, Network::Other(_)) {
            // tcpdump shows what it cannot decode in hex and ASCII.
            s.push_str(&hex_and_ascii(&frame[d.l3_offset.min(frame.len())..]));
        }
        if dump {
            let whole = self.hex.max(self.hex_ascii) >= 2;
            let bytes = if whole {
                data
            } else if link == LinkType::Ethernet {
                &data[d.l3_offset.min(data.len())..]
            } else {
                &data[link.header_len().min(data.len())..]
            };
            if self.hex_ascii > 0 {
                s.push_str(&hex_and_ascii(bytes));
            } else if self.hex > 0 {
                s.push_str(&hex(bytes));
            }
            if self.ascii {
                s.push_str(&ascii(bytes));
            }
        }
        s
    }
}

/// tcpdump's word for a cooked record's packet type (`sll_pkttype`).
fn packet_type(t: u8) -> &'static str {
    match t {
        0 => "In",
        1 => "B",
        2 => "M",
        3 => "P",
        4 => "Out",
        _ => "?",
    }
}

/// tcpdump's name for an ethertype in a cooked header.
fn ethertype_name(proto: u16) -> &'static str {
    match proto {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x0806 => "ARP",
        0x8100 => "802.1Q",
        _ => "Unknown",
    }
}

/// `-e` for a record that is not Ethernet: the link type and length (for
/// Linux cooked v1, tcpdump's direction, address and protocol).
fn cooked_header(link: LinkType, data: &[u8], orig_len: u32) -> String {
    if link == LinkType::LinuxSll && data.len() >= 16 {
        let be16 = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
        let dir = match be16(0) {
            0 => " In",
            1 => " B",
            2 => " M",
            3 => " P",
            4 => "Out",
            _ => " ?",
        };
        let halen = usize::from(be16(4)).min(8);
        let addr: Vec<String> = data[6..6 + halen]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let proto = be16(14);
        let name = ethertype_name(proto);
        return format!(
            "{dir} {} ethertype {name} (0x{proto:04x}), length {orig_len}: ",
            addr.join(":")
        );
    }
    format!("{link}, length {orig_len}: ")
}

/// `-D`: the interfaces, as `tcpdump -D` lists them.
fn list_interfaces() -> anyhow::Result<ExitCode> {
    let all = pktio::pcap::interfaces().context("listing the interfaces (RTM_GETLINK)")?;
    for (n, (_, name, st)) in all.iter().enumerate() {
        let mut flags = Vec::new();
        if st.up {
            flags.push("Up");
        }
        if st.lower_up {
            flags.push("Running");
        }
        if name == "lo" {
            flags.push("Loopback");
        }
        println!("{}.{name} [{}]", n + 1, flags.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `a` and `b` name the same file (device and inode; a path that
/// does not exist names no file).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// `pktio capture`.
pub fn run(mut a: CaptureArgs) -> anyhow::Result<ExitCode> {
    if a.list_interfaces {
        return list_interfaces();
    }
    let words = match &a.filter_file {
        Some(path) if !a.filter.is_empty() => {
            return usage(&format!(
                "a filter on the command line ({}) and one from -F {}: give one of them",
                join_words(&a.filter),
                path.display()
            ))
        }
        Some(path) => filter_file_words(path)?,
        None => a.filter.clone(),
    };
    let filter = parse_filter(&words)?;
    let user = match &a.user {
        Some(name) => match pktio::host::User::lookup(name) {
            Ok(u) => Some(u),
            Err(e) => {
                return usage(&format!(
                "-Z {name}: cannot find the user ({e}); give an existing account (e.g. -Z nobody)"
            ))
            }
        },
        None => None,
    };
    a.become_user = user.clone();
    if crate::output::json_on_stdout(a.json.as_ref())
        && matches!(a.write.as_deref(), None | Some("-"))
    {
        return usage(
            "--json - needs standard output to itself: write the packets with -w FILE, or the \
             JSON with --json FILE",
        );
    }
    if a.json_lines && matches!(a.write.as_deref(), None | Some("-")) {
        return usage(
            "--json-lines needs standard output to itself: write the packets with -w FILE \
             (-w /dev/null to only count them)",
        );
    }
    if a.files.is_some() && a.rotate_mb.is_none() && a.rotate_seconds.is_none() {
        bail!("-W FILES needs a rotation: -C MB or -G SECONDS");
    }
    if a.dump_program > 0 {
        return dump_program(&a, &filter);
    }
    if let Some(path) = &a.read {
        if let Some(w) = &a.write {
            if w != "-" && path != "-" && same_file(Path::new(path), Path::new(w)) {
                return usage(&format!(
                    "-r {path} and -w {w} are the same file: writing would destroy what is being read; write to another file"
                ));
            }
        }
        return read(&a, path, &filter);
    }
    if !a.steals() && (a.queue.is_some() || a.all_queues || a.queues.is_some()) {
        return usage(
            "-q/--queues pick AF_XDP queues for --steal; the default capture (AF_PACKET) \
             already sees every queue of the interface: drop -q/--queues, or add --steal to \
             take the packets from the host",
        );
    }
    if !a.steals() && a.cpus.is_some() {
        return usage(
            "--cpus pins the per-queue capture threads of --steal; the default capture \
             (AF_PACKET) reads the interface on one thread: drop --cpus (or run pktio under \
             taskset), or add --steal",
        );
    }
    live(&a, filter, user.as_ref())
}

/// `-Z`: becomes `u` (groups, group, user), or fails the run.
fn drop_to(u: &pktio::host::User) -> anyhow::Result<()> {
    u.become_user().with_context(|| {
        format!(
            "-Z {}: dropping privileges to uid {} gid {} failed; not going on with them",
            u.name, u.uid, u.gid
        )
    })?;
    eprintln!(
        "pktio capture: running as user {} (uid {}, gid {}) from now on (-Z)",
        u.name, u.uid, u.gid
    );
    Ok(())
}

/// `-d`: the program the capture would run.
fn dump_program(a: &CaptureArgs, filter: &Filter) -> anyhow::Result<ExitCode> {
    let snaplen = if a.snaplen == 0 {
        MAX_SNAPLEN
    } else {
        a.snaplen
    };
    if a.steals() {
        let code = filter.xdp_program().map_err(CaptureError::from)?;
        print!("{}", code.listing());
    } else if a.interface.as_deref() == Some(pktio::packet::ANY_INTERFACE) {
        match filter.cbpf_program_cooked().map_err(CaptureError::from)? {
            CookedProgram::Kernel(prog) => print!("{}", prog.listing()),
            CookedProgram::UserSpace(why) => {
                println!("; no kernel program on -i any: the filter runs in pktio ({why})")
            }
        }
    } else {
        let prog = filter.cbpf_program(snaplen).map_err(CaptureError::from)?;
        print!("{}", prog.listing());
    }
    Ok(ExitCode::SUCCESS)
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
    fn go<R: std::io::Read>(
        a: &CaptureArgs,
        path: &str,
        filter: &Filter,
        lines: &mut impl Write,
        mut reader: PcapReader<R>,
    ) -> anyhow::Result<ExitCode> {
        // pcapng names the link type in its first interface block, which
        // comes with the first record.
        let mut pending = Some(reader.next_record());
        let code = match &pending {
            Some(Ok(Some(rec))) => rec.linktype,
            _ => reader.linktype(),
        };
        let Some(link) = LinkType::from_code(code) else {
            bail!(
                "{path}: link type {code} is not supported by -r: pktio reads {} \
                 (convert the file, e.g. with editcap, or read it with tcpdump)",
                LinkType::SUPPORTED
            );
        };
        let snaplen = if a.snaplen == 0 {
            MAX_SNAPLEN
        } else {
            a.snaplen
        };
        let mut out = match output_config(a, snaplen, None, code) {
            Some(cfg) => Some(CaptureOutput::open(cfg)?),
            None => None,
        };
        let mut printer = Printer::new(a, link);
        // -Z: the input and the output are open.
        if let Some(u) = &a.become_user {
            drop_to(u)?;
        }
        let mut scratch = Vec::new();
        let mut n = 0u64;
        let mut result = Ok(());
        loop {
            let next = pending.take().unwrap_or_else(|| reader.next_record());
            let rec = match next {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if rec.linktype != code && LinkType::from_code(rec.linktype) != Some(link) {
                bail!(
                    "{path}: a pcapng interface of link type {} after one of link type {code}: \
                     files mixing link types are not supported",
                    rec.linktype
                );
            }
            let (frame, wire) = link.as_ethernet(&rec.data, rec.orig_len, &mut scratch);
            if !filter.matches_dissected(&Dissected::new(frame, wire as usize)) {
                continue;
            }
            match &mut out {
                Some(o) => o.write_packet(rec.ts, &rec.data, rec.orig_len)?,
                None => {
                    let text = printer.text(rec.ts, &rec.data, rec.orig_len);
                    if let Err(e) = lines.write_all(text.as_bytes()) {
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
    if path == "-" {
        go(
            a,
            path,
            filter,
            lines,
            PcapReader::new(std::io::stdin().lock())?,
        )
    } else {
        go(a, path, filter, lines, PcapReader::open(Path::new(path))?)
    }
}

/// The capture, by backend. One lives per run, on the stack: the size
/// difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Source<'b> {
    /// `--steal` on one queue, no `--cpus`: read by this thread, straight
    /// from the UMEM into the output (no hand-over between threads, no
    /// copy in between).
    XdpOne(Capture<'b>),
    /// `--steal` on several queues, or pinned: a thread per queue.
    Xdp(ThreadedCapture),
    Packet(PacketCapture),
}

impl Source<'_> {
    fn poll<F: FnMut(&CapturedPacket<'_>)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> Result<usize, CaptureError> {
        match self {
            Source::XdpOne(c) => c.poll(timeout, f),
            Source::Xdp(c) => c.poll(timeout, f),
            Source::Packet(c) => c.poll(timeout, f),
        }
    }

    fn stats(&mut self) -> Result<CaptureStats, CaptureError> {
        match self {
            Source::XdpOne(c) => c.stats(),
            Source::Xdp(c) => Ok(c.stats()),
            Source::Packet(c) => c.stats(),
        }
    }

    /// Each queue's counters (`--steal`), none for AF_PACKET.
    fn queue_stats(&self) -> Vec<QueueStats> {
        match self {
            Source::XdpOne(c) => c.queue_stats().unwrap_or_default(),
            Source::Xdp(c) => c.queue_stats(),
            Source::Packet(_) => Vec::new(),
        }
    }

    /// An AF_XDP capture's attach mode and why (after a fallback),
    /// whether it is multi-buffer, and its sockets as bound; `None` for
    /// AF_PACKET.
    fn xdp_info(&self) -> Option<(XdpMode, Option<String>, bool, Vec<String>)> {
        let ((mode, why), multi, sockets): (_, _, Vec<&SocketInfo>) = match self {
            Source::XdpOne(c) => (c.attach_mode(), c.multi_buffer(), c.sockets()),
            Source::Xdp(c) => (
                c.attach_mode(),
                c.multi_buffer(),
                c.sockets().iter().collect(),
            ),
            Source::Packet(_) => return None,
        };
        let sockets = sockets.iter().map(ToString::to_string).collect();
        Some((mode, why.map(str::to_string), multi, sockets))
    }

    /// Whether the interface is still there (the queue threads of a
    /// threaded `--steal` check it themselves and report through `poll`).
    fn check_interface(&self) -> Result<(), CaptureError> {
        match self {
            Source::XdpOne(c) => c.check_interface(),
            Source::Xdp(_) => Ok(()),
            Source::Packet(c) => c.check_interface(),
        }
    }
}

/// Where the captured packets go: the file, or a line each on stdout; and
/// what went there.
struct Sink<'o> {
    out: Option<CaptureOutput>,
    printer: Printer,
    lines: BufWriter<std::io::StdoutLock<'o>>,
    line_buffered: bool,
    /// -c: stop taking packets after this many.
    limit: u64,
    captured: u64,
    bytes: u64,
    /// Packets captured per queue (`--steal`).
    per_queue: std::collections::BTreeMap<u32, u64>,
    write_error: Option<PcapError>,
    print_error: Option<std::io::Error>,
}

impl Sink<'_> {
    /// Writes or prints `p`, unless the count is reached or output failed.
    fn take(&mut self, p: &CapturedPacket<'_>) {
        if self.captured >= self.limit || self.failed() {
            return;
        }
        match &mut self.out {
            Some(o) => {
                if let Err(e) = o.write_packet(p.ts, p.data, p.orig_len) {
                    self.write_error = Some(e);
                    return;
                }
            }
            None => {
                let text = self.printer.text(p.ts, p.data, p.orig_len);
                if let Err(e) = self.lines.write_all(text.as_bytes()) {
                    self.print_error = Some(e);
                    return;
                }
                if self.line_buffered {
                    if let Err(e) = self.lines.flush() {
                        self.print_error = Some(e);
                    }
                }
            }
        }
        self.captured += 1;
        self.bytes += u64::from(p.orig_len);
        *self.per_queue.entry(p.queue).or_default() += 1;
    }

    fn failed(&self) -> bool {
        self.write_error.is_some() || self.print_error.is_some()
    }

    /// Lets readers of the file or pipe see what was captured so far.
    fn flush(&mut self) {
        if let Some(o) = &mut self.out {
            if let Err(e) = o.flush() {
                self.write_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.lines.flush() {
            self.print_error.get_or_insert(e);
        }
    }
}

/// The per-queue part of the summary and of the `--json-lines` records:
/// packets captured (written or printed), read from the socket, dropped by
/// it. `None` for AF_PACKET (no queues).
fn queue_rows(
    queues: &[QueueStats],
    captured: &std::collections::BTreeMap<u32, u64>,
) -> Option<Vec<serde_json::Value>> {
    if queues.is_empty() {
        return None;
    }
    Some(
        queues
            .iter()
            .map(|q| {
                serde_json::json!({
                    "queue": q.queue,
                    "captured": captured.get(&q.queue).copied().unwrap_or(0),
                    "matched": q.matched,
                    "dropped": q.dropped,
                })
            })
            .collect(),
    )
}

/// One `--json-lines` record (schema [`CAPTURE_SECOND`](pktio_bench::report::schema::CAPTURE_SECOND)).
fn second_record(
    at: f64,
    sink: &Sink<'_>,
    last: (u64, u64),
    stats: &CaptureStats,
    queues: &[QueueStats],
) -> serde_json::Value {
    serde_json::json!({
        "at": at,
        "packets": sink.captured - last.0,
        "bytes": sink.bytes - last.1,
        "total_packets": sink.captured,
        "total_bytes": sink.bytes,
        "matched": stats.matched,
        "drops": stats.socket_dropped,
        "queues": queue_rows(queues, &sink.per_queue),
    })
}

fn live(
    a: &CaptureArgs,
    filter: Filter,
    user: Option<&pktio::host::User>,
) -> anyhow::Result<ExitCode> {
    let ifname = a
        .interface
        .clone()
        .context("give an interface with -i IF")?;
    let steal = a.steals();
    let any = ifname == pktio::packet::ANY_INTERFACE;
    if any && steal {
        return usage(
            "--steal needs one interface (AF_XDP binds to an interface's receive queues): \
             capture on -i any without --steal, or name the interface",
        );
    }
    let link = if any {
        LinkType::LinuxSll2
    } else {
        LinkType::Ethernet
    };
    let link_code = if any {
        LINKTYPE_LINUX_SLL2
    } else {
        LINKTYPE_ETHERNET
    };
    let mut cfg = CaptureConfig::new(&ifname)
        .filter(filter.clone())
        .snaplen(a.snaplen);
    cfg.queues = match (a.queue, &a.queues) {
        (Some(q), _) => Queues::List(vec![q]),
        (None, Some(q)) => q.clone(),
        (None, None) => Queues::All,
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
    // --queues and --cpus, checked before anything is opened.
    let mut cpus = a.cpus.clone().map(|c| c.0).unwrap_or_default();
    if steal {
        let queues = match pktio::pcap::resolve_queues(&ifname, &cfg.queues) {
            Ok(q) => q,
            Err(e @ (CaptureError::Queues(_) | CaptureError::NoSuchQueue { .. })) => {
                return usage(&e.to_string())
            }
            Err(e) => return Err(with_hint(e)),
        };
        if !cpus.is_empty() {
            cpus = match crate::args::cpus_for_queues(&cpus, queues.len()) {
                Ok(c) => c,
                Err(e) => return usage(&e),
            };
        }
    }

    // Open the output first: an unwritable file fails before anything is attached.
    let out = match output_config(a, snaplen, Some(&ifname), link_code) {
        Some(c) => Some(CaptureOutput::open(c)?),
        None => None,
    };
    // Promiscuous mode for as long as this lives: the kernel drops it with
    // the socket, however the process ends.
    let promisc = if a.no_promiscuous || any {
        None
    } else {
        Some(
            Promiscuous::enable(&ifname)
                .map_err(with_hint)
                .context("putting the interface in promiscuous mode (-p captures without it)")?,
        )
    };
    let promisc_note = if any {
        "no promiscuous mode on the any device (as tcpdump)"
    } else if promisc.is_some() {
        "promiscuous mode on"
    } else {
        "promiscuous mode off (-p)"
    };
    // The buffers of a one-queue --steal capture, which borrows them.
    let mut one_queue: Option<CaptureBuffers> = None;
    let mut cap = if steal {
        let b = CaptureBuffers::new(&cfg).map_err(with_hint)?;
        let (queues, frames, mtu) = (b.queues(), b.frames_per_queue(), b.mtu());
        eprintln!(
            "pktio capture: WARNING: --steal: packets matching the filter are taken from {ifname}: \
             they no longer reach this host's network stack until the capture ends \
             (without --steal, the capture copies them and the host keeps them)"
        );
        // One queue and no pinning: read it on this thread (no hand-over,
        // no extra copy); several queues, or pinned: a thread per queue.
        let src = if queues.len() == 1 && cpus.is_empty() {
            Source::XdpOne(Capture::open(&cfg, one_queue.insert(b)).map_err(with_hint)?)
        } else {
            Source::Xdp(ThreadedCapture::open(&cfg, b, &cpus, a.spin).map_err(with_hint)?)
        };
        if let Some((mode, why, multi_buffer, sockets)) = src.xdp_info() {
            let multi = if multi_buffer {
                format!(
                    ", multi-buffer (MTU {}: a frame may span several UMEM frames, joined into one record)",
                    mtu.map_or_else(|| "?".to_string(), |m| m.to_string())
                )
            } else {
                String::new()
            };
            let threads = match (&src, cpus.is_empty()) {
                (Source::XdpOne(_), _) => String::new(),
                (_, true) => "; one thread per queue".to_string(),
                (_, false) => format!("; one thread per queue, on CPU(s) {cpus:?}"),
            };
            eprintln!(
                "pktio capture: listening on {ifname} (AF_XDP, stealing) queue(s) {queues:?} ({frames} UMEM frames each{multi}{threads}), XDP program in {mode} mode{}, {promisc_note}, filter: {filter}",
                why.map(|w| format!(" ({w})")).unwrap_or_default()
            );
            for s in sockets {
                eprintln!("pktio capture: {s}");
            }
        }
        src
    } else {
        let cap = PacketCapture::open(&cfg).map_err(with_hint)?;
        let how = match (any, cap.user_space_filter()) {
            (true, Some(why)) => {
                eprintln!(
                    "pktio capture: note: on -i any the filter runs in pktio, not in the \
                     kernel, so every packet of every interface is copied to pktio: {why}"
                );
                "every interface, the filter evaluated in pktio"
            }
            (true, None) => "every interface, classic BPF filter",
            (false, _) => "classic BPF filter",
        };
        eprintln!(
            "pktio capture: listening on {ifname} (AF_PACKET, TPACKET_V3 ring, {how}; \
             the host keeps every packet), link-type {link}, snapshot length {snaplen} bytes, \
             {promisc_note}, filter: {filter}"
        );
        Source::Packet(cap)
    };
    // -Z: the capture and the output are open; give up root before
    // reading a packet (glibc applies the change to every thread of the
    // process, the queue threads of --steal included).
    if let Some(u) = user {
        drop_to(u)?;
    }

    let stop = stop_flag();
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut sink = Sink {
        out,
        printer: Printer::new(a, link),
        lines: BufWriter::with_capacity(64 * 1024, stdout.lock()),
        line_buffered: a.line_buffered,
        limit: a.count.unwrap_or(u64::MAX),
        captured: 0,
        bytes: 0,
        per_queue: std::collections::BTreeMap::new(),
        write_error: None,
        print_error: None,
    };
    let mut stopped_by = "interrupt";
    let mut last_check = Instant::now();
    let mut last_flush = Instant::now();
    let mut next_second = Instant::now() + Duration::from_secs(1);
    let mut last_totals = (0u64, 0u64);
    let mut result: anyhow::Result<()> = Ok(());
    // The queue threads of --steal sleep in poll(2) themselves; the reader
    // waits for their batches. Either way a stop is seen within 100 ms.
    let wait = if a.spin && !matches!(cap, Source::Xdp(_)) {
        Duration::ZERO
    } else {
        Duration::from_millis(50)
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match cap.poll(wait, |p| sink.take(p)) {
            Ok(n) => n,
            Err(e) => {
                stopped_by = "a capture error (the interface vanished, or the socket failed)";
                result = Err(with_hint(e));
                break;
            }
        };
        if sink.failed() {
            stopped_by = "an output error";
            break;
        }
        if sink.captured >= sink.limit {
            stopped_by = "the packet count";
            break;
        }
        // Idle: let readers of the file or pipe see what we have (spinning,
        // at most every 100 ms: an empty ring is then no sign of a pause).
        if n == 0 && (!a.spin || last_flush.elapsed() >= Duration::from_millis(100)) {
            last_flush = Instant::now();
            sink.flush();
            if sink.failed() {
                stopped_by = "an output error";
                break;
            }
        }
        if a.json_lines && Instant::now() >= next_second {
            next_second += Duration::from_secs(1);
            let st = cap.stats().unwrap_or_default();
            let rec = second_record(
                started.elapsed().as_secs_f64(),
                &sink,
                last_totals,
                &st,
                &cap.queue_stats(),
            );
            last_totals = (sink.captured, sink.bytes);
            crate::output::print_line(pktio_bench::report::schema::CAPTURE_SECOND, &rec)?;
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
    // --steal: the queue threads read their rings once more and end; what
    // they read is written (up to -c) before the summary.
    // (A one-queue --steal capture reads on this thread: nothing is in
    // flight.)
    if let Source::Xdp(c) = &mut cap {
        c.stop();
        while !c.is_finished() {
            if let Err(e) = c.poll(Duration::from_millis(50), |p| sink.take(p)) {
                if result.is_ok() {
                    stopped_by = "a capture error (the interface vanished, or the socket failed)";
                    result = Err(with_hint(e));
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let stats = cap.stats().unwrap_or_default();
    let queue_stats = cap.queue_stats();
    drop(cap); // detach before the final writes: the interface is back to normal
    drop(promisc);
    let _ = sink.lines.flush();
    let captured = sink.captured;
    let isb = InterfaceStats {
        start: stats.started,
        end: Timestamp::now(),
        if_received: stats.interface.map(|c| c.rx_packets),
        if_dropped: stats.interface.map(|c| c.rx_dropped + c.rx_missed),
        filter_accepted: Some(stats.matched),
        os_dropped: Some(stats.socket_dropped),
        delivered: Some(captured),
    };
    let mut write_error = sink.write_error.take();
    let out_summary = match sink.out.take() {
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
    let queues = queue_rows(&queue_stats, &sink.per_queue);
    print_summary(
        &stats,
        if steal { Backend::Xdp } else { Backend::Packet },
        captured,
        elapsed,
        out_summary.as_ref(),
        stopped_by,
        queues.as_deref(),
    );
    let doc = summary_doc(
        &stats,
        steal,
        captured,
        elapsed,
        out_summary.as_ref(),
        stopped_by,
        queues,
    );
    crate::output::emit(a.json.as_ref(), pktio_bench::report::schema::CAPTURE, &doc)?;
    if a.json_lines {
        crate::output::print_line(pktio_bench::report::schema::CAPTURE, &doc)?;
    }
    if let Some(e) = sink.print_error.take() {
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

/// The `--json` document of a live capture (schema `pktio.capture/1`):
/// the numbers of the stop summary.
fn summary_doc(
    s: &CaptureStats,
    steal: bool,
    captured: u64,
    elapsed: Duration,
    out: Option<&OutputSummary>,
    stopped_by: &str,
    queues: Option<Vec<serde_json::Value>>,
) -> serde_json::Value {
    serde_json::json!({
        "stopped_by": stopped_by,
        "seconds": elapsed.as_secs_f64(),
        "backend": if steal { "xdp" } else { "packet" },
        "captured": captured,
        "matched": s.matched,
        "socket_received": s.socket_received,
        "socket_dropped": s.socket_dropped,
        "interface": s.interface.map(|c| serde_json::json!({
            "rx_packets": c.rx_packets,
            "rx_dropped": c.rx_dropped,
            "rx_missed": c.rx_missed,
        })),
        "xdp": steal.then(|| serde_json::json!({
            "rx_dropped": s.xsk.rx_dropped,
            "rx_ring_full": s.xsk.rx_ring_full,
            "rx_fill_ring_empty_descs": s.xsk.rx_fill_ring_empty_descs,
            "rx_invalid_descs": s.xsk.rx_invalid_descs,
        })),
        "writer": out.map(|o| serde_json::json!({
            "packets": o.stats.packets,
            "bytes": o.stats.bytes,
            "files": o.files_opened,
            "last_file": o.last_file.as_ref().map(|p| p.display().to_string()),
            "write_calls": o.stats.write_calls,
            "write_seconds": o.stats.write_time.as_secs_f64(),
        })),
        "queues": queues,
    })
}

fn print_summary(
    s: &CaptureStats,
    backend: Backend,
    captured: u64,
    elapsed: Duration,
    out: Option<&OutputSummary>,
    stopped_by: &str,
    queues: Option<&[serde_json::Value]>,
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
            "{} packets passed the socket's kernel filter\n\
             {} packets dropped by the socket (ring full, PACKET_STATISTICS)",
            s.socket_received, s.socket_dropped
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
    for q in queues.unwrap_or_default() {
        eprintln!(
            "queue {}: {} packets captured, {} read from its socket, {} dropped by it",
            q["queue"], q["captured"], q["matched"], q["dropped"]
        );
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
        assert_eq!(a.backend, Some(Backend::Packet));
        assert!(!a.steals());
        // Stealing is asked for by name (or by the old --backend xdp).
        assert!(args(&["-i", "eth0", "--steal"]).unwrap().steals());
        assert!(args(&["-i", "eth0", "--backend", "xdp"]).unwrap().steals());
        assert!(!args(&["-i", "eth0"]).unwrap().steals());
        // tcpdump's short flags.
        let b = args(&["-i", "eth0", "-nn", "-e", "-tttt", "-XX", "-A", "-p", "-l"]).unwrap();
        assert_eq!((b.numeric, b.time, b.hex_ascii), (2, 4, 2));
        assert!(b.link_level && b.ascii && b.no_promiscuous && b.line_buffered);
        assert!(args(&["-D"]).is_ok());
        assert!(args(&["-d", "udp"]).is_ok());
        assert_eq!((a.filter.join(" "), a.snaplen), ("tcp".to_string(), 96));
        for bad in [
            &["-i", "eth0", "-s", "262145"][..],
            &["-i", "eth0", "-w", "x", "-C", "1", "-G", "1"],
            &["-i", "eth0", "-C", "1"],
            &["-r", "x.pcap", "-i", "eth0"],
            &["-i", "eth0", "-q", "1", "--all-queues"],
            &["-i", "eth0", "-c", "0"],
            &["-i", "eth0", "--steal", "--backend", "packet"],
            &["-r", "x.pcap", "--steal"],
            &["tcp"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn queue_and_cpu_lists() {
        // CPUs this process may run on, last first.
        let allowed = pktio_host::cpu::allowed_cpus().unwrap();
        let (lo, hi) = (allowed[0], allowed[allowed.len() - 1]);
        let list = format!("{hi},{lo}-{hi},{lo}");
        let a = args(&[
            "-i", "eth0", "--steal", "--queues", "0,2-3", "--cpus", &list,
        ])
        .unwrap();
        assert_eq!(a.queues, Some(Queues::List(vec![0, 2, 3])));
        // In the order given, repeats allowed (two queues on one CPU).
        let mut want = vec![hi];
        want.extend(lo..=hi);
        want.push(lo);
        assert_eq!(a.cpus, Some(CpuList(want)));
        assert_eq!(
            args(&["-i", "eth0", "--queues", "all"]).unwrap().queues,
            Some(Queues::All)
        );
        for bad in [
            &["-i", "eth0", "--queues", ""][..],
            &["-i", "eth0", "--queues", "0,"],
            &["-i", "eth0", "--queues", "2-1"],
            &["-i", "eth0", "--queues", "-1"],
            &["-i", "eth0", "--cpus", "x"],
            &["-i", "eth0", "--cpus", "3-2"],
            &["-i", "eth0", "--cpus", "99999"],
            &["-i", "eth0", "-q", "0", "--queues", "1"],
            &["-i", "eth0", "--all-queues", "--queues", "1"],
            &["-i", "eth0", "--json-lines", "--json", "x", "-w", "y"],
            &["-r", "x.pcap", "--json-lines"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_json_lines_record_counts_the_second_and_the_total() {
        let sink_queues = std::collections::BTreeMap::from([(0u32, 4u64), (1, 6)]);
        let q = |queue, matched| QueueStats {
            queue,
            matched,
            ..QueueStats::default()
        };
        let rows = queue_rows(&[q(0, 4), q(1, 7)], &sink_queues).unwrap();
        assert_eq!(rows[1]["captured"], 6);
        assert_eq!(rows[1]["matched"], 7);
        assert!(
            queue_rows(&[], &sink_queues).is_none(),
            "AF_PACKET: no queues"
        );
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
        let a = args(&["-r", p, "-tt", "udp", "dst", "portrange", "4241-4242"]).unwrap();
        let filter = parse_filter(&a.filter).unwrap();
        let mut out = Vec::new();
        read_to(&a, p, &filter, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "86400.000000 IP 198.18.0.1.9 > 198.18.0.2.4241: UDP, length 18\n\
             86400.000000 IP 198.18.0.1.9 > 198.18.0.2.4242: UDP, length 18\n"
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
