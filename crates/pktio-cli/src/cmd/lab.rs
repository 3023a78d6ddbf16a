//! `pktio lab up | down | exec | status`: a persistent lab built and
//! removed by hand, for running pktio and external tools in it.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use pktio_lab::{fmt_mac, Lab, LabError, LinkInfo};

/// Default lab name.
const DEFAULT_NAME: &str = "pktio";

/// Exit status of `pktio lab status` when the lab is not up.
const EXIT_NOT_UP: u8 = 3;

/// Arguments of `pktio lab`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  \
pktio lab up --queues 2\n  \
pktio lab exec rx -- tcpdump -ni vrx\n  \
pktio lab exec gen -- ping -c1 198.18.0.2\n  \
pktio lab status\n  \
pktio lab down",
    after_long_help = "A lab is two network namespaces, <NAME>-gen and <NAME>-rx (default NAME: pktio), \
joined by a veth pair vgen <-> vrx with addresses 198.18.0.1/24 and 198.18.0.2/24 (RFC 2544 \
benchmarking range), fixed MACs 02:00:c6:12:00:01 / 02:00:c6:12:00:02, static ARP entries and \
IPv6 off, so nothing but your own traffic crosses it. The namespaces are bind-mounted under \
/run/netns, so `ip netns exec <NAME>-rx ...` and tools such as dpdk-testpmd or tcpdump can use \
them too. The lab stays up until `pktio lab down`. Every subcommand needs root.\n\n\
Examples:\n  \
pktio lab up --queues 2\n  \
pktio lab exec rx -- tcpdump -ni vrx\n  \
pktio lab exec gen -- ping -c1 198.18.0.2\n  \
pktio lab status\n  \
pktio lab down"
)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Build a persistent lab and print how to use it (fails if it is already up).
    Up(UpArgs),
    /// Remove a persistent lab: delete its veth pair, unmount and remove its namespaces.
    Down(NameArgs),
    /// Run a command inside the gen or rx namespace of a lab; its exit status is passed through.
    #[command(
        long_about = "Run a command inside the gen or rx namespace of a lab.\n\n\
The command sees only that namespace's interfaces (lo and vgen or vrx), and a \
fresh /sys, as under `ip netns exec`. Its exit status is passed through (128+N \
if it was killed by signal N)."
    )]
    Exec(ExecArgs),
    /// Show whether a lab is up, with its interfaces, addresses, MACs, state and counters.
    #[command(
        long_about = "Show whether a lab is up, with its namespaces, interfaces, addresses, \
MACs, link state, queues and counters, and list the other labs under /run/netns.\n\n\
Exit status: 0 if the lab is up, 3 if it is not, 1 on error."
    )]
    Status(NameArgs),
}

#[derive(Debug, clap::Args)]
struct NameArgs {
    /// Lab name: the namespaces are /run/netns/<NAME>-gen and /run/netns/<NAME>-rx.
    #[arg(long, default_value = DEFAULT_NAME)]
    name: String,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    name: NameArgs,
    /// Number of rx and tx queues on both veth ends.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    queues: u32,
    /// MTU of both veth ends (default: the kernel's, 1500).
    #[arg(long, value_parser = clap::value_parser!(u32).range(68..=65535))]
    mtu: Option<u32>,
    /// Turn GRO on at vrx: gives it a NAPI instance, which frames sent into it with
    /// ndo_xdp_xmit (XDP_REDIRECT, XDP_TX, in-kernel generators) need to arrive at all.
    #[arg(long)]
    gro: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Side {
    /// The generator side (vgen, 198.18.0.1).
    Gen,
    /// The receiving side (vrx, 198.18.0.2).
    Rx,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// Which namespace to run in.
    side: Side,
    #[command(flatten)]
    name: NameArgs,
    /// The command and its arguments (put `--` before it if it has options of its own).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Runs `pktio lab`.
pub fn run(a: LabArgs) -> anyhow::Result<ExitCode> {
    if !pktio_lab::have_privilege() {
        bail!(
            "pktio lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create and enter network \
             namespaces: run it as root, e.g. with sudo"
        );
    }
    match a.command {
        LabCommand::Up(u) => up(u),
        LabCommand::Down(n) => down(&n.name),
        LabCommand::Exec(e) => exec(e),
        LabCommand::Status(n) => status(&n.name),
    }
}

fn up(a: UpArgs) -> anyhow::Result<ExitCode> {
    let name = a.name.name;
    let mut b = Lab::builder().persistent(&name).queues(a.queues);
    if let Some(mtu) = a.mtu {
        b = b.mtu(mtu);
    }
    if a.gro {
        b = b.gro(true);
    }
    let lab = b
        .build()
        .with_context(|| format!("bringing up lab `{name}`"))?;
    println!("lab `{name}` is up");
    describe(&lab)?;
    let rx = lab.rx();
    println!();
    println!("use it:");
    println!(
        "  pktio lab exec rx{} -- <command>     (or: ip netns exec {} <command>)",
        name_flag(&name),
        rx.name()
    );
    println!("  pktio lab status{}", name_flag(&name));
    println!("remove it:");
    println!("  pktio lab down{}", name_flag(&name));
    lab.keep();
    Ok(ExitCode::SUCCESS)
}

fn down(name: &str) -> anyhow::Result<ExitCode> {
    Lab::destroy_persistent(name).with_context(|| format!("removing lab `{name}`"))?;
    println!("lab `{name}` removed");
    Ok(ExitCode::SUCCESS)
}

fn exec(a: ExecArgs) -> anyhow::Result<ExitCode> {
    let name = a.name.name;
    let lab = Lab::open_persistent(&name)?;
    let host = match a.side {
        Side::Gen => lab.gen(),
        Side::Rx => lab.rx(),
    };
    let (program, args) = match a.command.split_first() {
        Some(x) => x,
        None => bail!("no command given (usage: pktio lab exec gen|rx -- CMD [ARGS...])"),
    };
    let status = host.command(program).args(args).status().with_context(|| {
        format!(
            "running `{}` in namespace {}",
            program.to_string_lossy(),
            host.name()
        )
    })?;
    let code = match status.code() {
        Some(c) => c,
        None => {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }
    };
    Ok(ExitCode::from((code & 0xff) as u8))
}

fn status(name: &str) -> anyhow::Result<ExitCode> {
    let others: Vec<String> = Lab::list_persistent()?
        .into_iter()
        .filter(|n| n != name)
        .collect();
    let code = match Lab::open_persistent(name) {
        Ok(lab) => {
            println!("lab `{name}` is up");
            describe(&lab)?;
            for h in [lab.gen(), lab.rx()] {
                let s = h.try_stats()?;
                println!(
                    "  {:<4} counters: rx {} packets / {} bytes, tx {} packets / {} bytes, \
                     dropped rx {} tx {}, errors rx {} tx {}",
                    h.ifname(),
                    s.rx_packets,
                    s.rx_bytes,
                    s.tx_packets,
                    s.tx_bytes,
                    s.rx_dropped,
                    s.tx_dropped,
                    s.rx_errors,
                    s.tx_errors
                );
            }
            ExitCode::SUCCESS
        }
        Err(LabError::NotUp { .. }) => {
            println!(
                "lab `{name}` is not up (start it with: pktio lab up{})",
                name_flag(name)
            );
            ExitCode::from(EXIT_NOT_UP)
        }
        Err(e) => return Err(e).with_context(|| format!("opening lab `{name}`")),
    };
    if !others.is_empty() {
        println!("other labs under /run/netns: {}", others.join(", "));
    }
    Ok(code)
}

/// Prints the namespaces, interfaces, addresses, MACs and link state.
fn describe(lab: &Lab) -> anyhow::Result<()> {
    for h in [lab.gen(), lab.rx()] {
        let info = h.link_info()?;
        let gro = h.gro()?;
        println!(
            "  {:<3} namespace {} (/run/netns/{})",
            h.role().as_str(),
            h.name(),
            h.name()
        );
        println!(
            "      interface {} (ifindex {}), {}/{}, mac {}, {}",
            h.ifname(),
            h.ifindex(),
            h.addr(),
            h.prefix_len(),
            fmt_mac(&h.mac()),
            state(&info)
        );
        println!(
            "      mtu {}, {} rx / {} tx queues, gro {}, static ARP {} -> {}",
            info.mtu,
            info.rx_queues,
            info.tx_queues,
            if gro { "on" } else { "off" },
            h.peer_addr(),
            fmt_mac(&h.peer_mac())
        );
    }
    Ok(())
}

fn state(info: &LinkInfo) -> &'static str {
    match (info.up, info.lower_up) {
        (true, true) => "up",
        (true, false) => "up, no carrier (peer down)",
        (false, _) => "down",
    }
}

fn name_flag(name: &str) -> String {
    if name == DEFAULT_NAME {
        String::new()
    } else {
        format!(" --name {name}")
    }
}
