//! Where the lab's receive work runs (`--napi`), and how the measured
//! receivers wait for packets there.
//!
//! On veth the receiving end's kernel work (its XDP program, the copy into
//! an AF_XDP UMEM, the stack for AF_PACKET) runs by default as softirq on
//! the *sender's* CPU: the generator's core pays for the receiver, and
//! receive rates are bounded by it. With threaded NAPI pinned to the
//! receiving side's core (`thread`), each side pays for its own receive
//! work, as with a NIC whose interrupt lands on the application's core.
//!
//! There a receiver that spins on the core of its NAPI thread starves it;
//! real deployments either sleep in `poll()` (the kernel thread runs while
//! the application sleeps) or let the application drive NAPI itself
//! (preferred busy polling). The bench's rows say which they used.

use anyhow::Context;
use pktio_lab::{Host, Lab, NapiPlacement, NapiThread};

/// A lab placement of the receive work, as `--napi` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Napi {
    /// The kernel's default on veth: receive work runs as softirq on the
    /// sender's CPU.
    Softirq,
    /// Threaded NAPI, pinned: the receiving end's NAPI thread on the
    /// measured CPU, the generator end's on the generator's CPU.
    Thread,
}

impl Napi {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Napi::Softirq => "softirq",
            Napi::Thread => "thread",
        }
    }

    /// The environment line for this placement.
    pub fn describe(self, measured_cpu: usize, gen_cpu: usize) -> String {
        match self {
            Napi::Softirq => format!(
                "softirq: the receiving veth's kernel work runs on the sender's CPU \
                 (CPU {gen_cpu} for traffic from the generator)"
            ),
            Napi::Thread => format!(
                "thread: threaded NAPI, the receiving end's thread pinned to CPU \
                 {measured_cpu}, the generator end's to CPU {gen_cpu}: each side pays for \
                 its own receive work"
            ),
        }
    }
}

/// How a measured loop waits for packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Spins on its rings without sleeping.
    Spin,
    /// Sleeps in `poll()` when a batch comes back empty.
    Poll,
    /// Preferred busy polling (`SO_PREFER_BUSY_POLL`): the application
    /// drives the NAPI instance from its own syscalls.
    BusyPoll,
}

impl Wait {
    /// The wait mode of one of pktio's rows: what the user asked for, else
    /// what the placement needs. A receiver spinning on the core of its
    /// NAPI thread starves it, so in `thread` a loop that `receives` sleeps
    /// in `poll()`; a pure sender (txpush) has no NAPI work on its core and
    /// spins.
    pub fn of(napi: Napi, receives: bool, poll: bool, busy_poll: bool) -> Wait {
        if busy_poll {
            Wait::BusyPoll
        } else if poll || (napi == Napi::Thread && receives) {
            Wait::Poll
        } else {
            Wait::Spin
        }
    }

    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Wait::Spin => "spin",
            Wait::Poll => "poll",
            Wait::BusyPoll => "busy-poll",
        }
    }
}

/// CPU time the kernel threads `threads` have used since they started, in
/// ns (`/proc/<pid>/schedstat`); threads that vanished count 0.
///
/// In the thread placement the receive work runs in these threads, not as
/// softirq, so a receiver's CPU per packet has to include them.
pub fn threads_cpu_ns(threads: &[NapiThread]) -> u64 {
    threads
        .iter()
        .filter_map(|t| {
            let text = std::fs::read_to_string(format!("/proc/{}/schedstat", t.pid)).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The NAPI threads of `host`'s veth end: none in the softirq placement
/// (and on kernels before 6.9, which cannot list them and where the thread
/// placement is refused before anything runs).
pub fn threads_of(host: &Host) -> Vec<NapiThread> {
    host.napi_threads().unwrap_or_default()
}

/// A measured core's receive work so far, in ns: its softirq time plus the
/// CPU time of the NAPI threads pinned to it (the thread placement).
pub fn receive_work_ns(cpu: usize, threads: &[NapiThread]) -> u64 {
    crate::run::softirq_ns(cpu).unwrap_or(0) + threads_cpu_ns(threads)
}

/// Puts the lab's receive work where `napi` says: in `thread`, the NAPI
/// thread of the lab's receiving end (`rx`) on `rx_cpu` and the
/// generating end's on `gen_cpu` (swap them when the measured side sends,
/// so that each side still pays for what it receives). Returns the NAPI
/// threads it now has.
///
/// `thread` switches GRO on at both ends first: a veth has a NAPI instance
/// only while GRO is on or an XDP program is attached, and the instance
/// (with its thread) has to outlive the programs each cell attaches and
/// detaches. Call it again before each cell: a peer tool that switches GRO
/// off takes the thread away. `softirq` undoes all of it.
///
/// # Errors
/// The lab's errors: [`pktio_lab::LabError::Unsupported`] on kernels
/// without threaded NAPI control, [`pktio_lab::LabError::NoNapi`] and the
/// netlink errors.
pub fn place(
    lab: &Lab,
    napi: Napi,
    rx_cpu: usize,
    gen_cpu: usize,
) -> pktio_lab::Result<Vec<NapiThread>> {
    let ends: [(&Host, usize); 2] = [(lab.rx(), rx_cpu), (lab.gen(), gen_cpu)];
    let mut threads = Vec::new();
    for (host, cpu) in ends {
        match napi {
            Napi::Softirq => {
                // Only threads to undo (listing them needs no Linux 6.9
                // feature to come back empty on older kernels).
                if !threads_of(host).is_empty() {
                    host.set_napi_placement(NapiPlacement::Softirq)?;
                }
                if host.gro()? {
                    host.set_gro(false)?;
                }
                if !host.tso()? {
                    host.set_tso(true)?;
                }
            }
            Napi::Thread => {
                if !host.gro()? {
                    host.set_gro(true)?;
                }
                if host.tso()? {
                    host.set_tso(false)?;
                }
                threads.extend(host.set_napi_placement(NapiPlacement::Thread { cpu: Some(cpu) })?);
            }
        }
    }
    Ok(threads)
}

/// The placements to measure: what the user listed, or the default.
/// Refuses an empty or repeated list.
pub fn placements(asked: &[Napi]) -> anyhow::Result<Vec<Napi>> {
    let mut out: Vec<Napi> = Vec::new();
    for &n in asked {
        if out.contains(&n) {
            anyhow::bail!("--napi lists `{}` twice", n.name());
        }
        out.push(n);
    }
    Ok(out)
}

/// Checks before anything runs that `napi` can be had in `lab`: threaded
/// NAPI needs a kernel with netdev genl `napi-set` or a writable
/// `/sys/class/net/IF/threaded`.
///
/// # Errors
/// What [`place`] would answer, with what to do about it.
pub fn check(lab: &Lab, napi: Napi, measured_cpu: usize, gen_cpu: usize) -> anyhow::Result<()> {
    // Try it, then leave the lab as built until the first cell.
    place(lab, napi, measured_cpu, gen_cpu)
        .and_then(|_| place(lab, Napi::Softirq, measured_cpu, gen_cpu))
        .with_context(|| {
            format!(
                "--napi {}: this host cannot place the lab's receive work there \
                 (threaded NAPI needs Linux ≥ 5.12, pinning its thread netdev genetlink, \
                 Linux ≥ 6.9); use --napi softirq",
                napi.name()
            )
        })?;
    Ok(())
}

/// The placements to measure (`asked`, or `softirq` alone without it),
/// each checked on this host before anything runs.
///
/// # Errors
/// A placement this host cannot make, with the reason.
pub fn choose(
    lab: &Lab,
    asked: Option<&[Napi]>,
    measured_cpu: usize,
    gen_cpu: usize,
) -> anyhow::Result<Vec<Napi>> {
    let Some(asked) = asked else {
        return Ok(vec![Napi::Softirq]);
    };
    let list = placements(asked)?;
    for &n in &list {
        check(lab, n, measured_cpu, gen_cpu)?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_follows_the_placement_unless_asked() {
        assert_eq!(Wait::of(Napi::Softirq, true, false, false), Wait::Spin);
        assert_eq!(Wait::of(Napi::Thread, true, false, false), Wait::Poll);
        assert_eq!(Wait::of(Napi::Thread, false, false, false), Wait::Spin);
        assert_eq!(Wait::of(Napi::Softirq, true, true, false), Wait::Poll);
        assert_eq!(Wait::of(Napi::Thread, true, false, true), Wait::BusyPoll);
        assert_eq!(Wait::of(Napi::Thread, false, true, true), Wait::BusyPoll);
    }

    #[test]
    fn placements_refuse_repeats() {
        assert_eq!(
            placements(&[Napi::Thread, Napi::Softirq]).unwrap(),
            vec![Napi::Thread, Napi::Softirq]
        );
        assert!(placements(&[Napi::Thread, Napi::Thread]).is_err());
    }
}
