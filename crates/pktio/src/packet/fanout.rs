//! `PACKET_FANOUT`: several AF_PACKET sockets (one per thread, typically)
//! share one interface's traffic, the kernel picking a socket per packet.
//!
//! Sockets join a group by id (per network namespace). Every member must
//! ask for the same mode and flags on the same interface; the kernel refuses
//! a mismatch with `EINVAL`, reported as [`PacketError::FanoutClash`](super::PacketError::FanoutClash).

use std::fmt;

/// How the kernel picks a group member for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// `PACKET_FANOUT_HASH`: by flow hash (a flow stays on one socket).
    Hash,
    /// `PACKET_FANOUT_LB`: round robin.
    LoadBalance,
    /// `PACKET_FANOUT_CPU`: by the CPU the packet arrived on.
    Cpu,
    /// `PACKET_FANOUT_ROLLOVER`: fill one socket, then the next.
    Rollover,
    /// `PACKET_FANOUT_RND`: at random (kernel 3.14).
    Random,
    /// `PACKET_FANOUT_QM`: by the packet's receive queue (kernel 4.0).
    QueueMapping,
}

impl FanoutMode {
    fn raw(self) -> u16 {
        (match self {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
            FanoutMode::LoadBalance => libc::PACKET_FANOUT_LB,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::Rollover => libc::PACKET_FANOUT_ROLLOVER,
            FanoutMode::Random => libc::PACKET_FANOUT_RND,
            FanoutMode::QueueMapping => libc::PACKET_FANOUT_QM,
        }) as u16
    }
}

impl fmt::Display for FanoutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FanoutMode::Hash => "hash",
            FanoutMode::LoadBalance => "lb",
            FanoutMode::Cpu => "cpu",
            FanoutMode::Rollover => "rollover",
            FanoutMode::Random => "random",
            FanoutMode::QueueMapping => "qm",
        })
    }
}

impl std::str::FromStr for FanoutMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "hash" => FanoutMode::Hash,
            "lb" => FanoutMode::LoadBalance,
            "cpu" => FanoutMode::Cpu,
            "rollover" => FanoutMode::Rollover,
            "random" | "rnd" => FanoutMode::Random,
            "qm" => FanoutMode::QueueMapping,
            _ => {
                return Err(format!(
                    "unknown fanout mode {s:?}: use hash, lb, cpu, rollover, random or qm"
                ))
            }
        })
    }
}

bitflags::bitflags! {
    /// Fanout flags (`PACKET_FANOUT_FLAG_*`), or-ed into the mode.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct FanoutFlags: u16 {
        /// `PACKET_FANOUT_FLAG_ROLLOVER`: when the chosen socket is full,
        /// try the next one (kernel 3.10).
        const ROLLOVER = libc::PACKET_FANOUT_FLAG_ROLLOVER as u16;
        /// `PACKET_FANOUT_FLAG_DEFRAG`: reassemble IP fragments before
        /// choosing, so a datagram's fragments stay together (kernel 3.1).
        const DEFRAG = libc::PACKET_FANOUT_FLAG_DEFRAG as u16;
        /// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING`: members do not see the
        /// host's own outgoing packets (kernel 4.20).
        const IGNORE_OUTGOING = libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING as u16;
    }
}

/// A fanout group to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Group id (per network namespace).
    pub group: u16,
    /// How packets are spread.
    pub mode: FanoutMode,
    /// Flags.
    pub flags: FanoutFlags,
}

impl Fanout {
    /// A group with no flags.
    pub fn new(group: u16, mode: FanoutMode) -> Fanout {
        Fanout {
            group,
            mode,
            flags: FanoutFlags::empty(),
        }
    }

    /// The `type_flags` half of the `PACKET_FANOUT` argument.
    pub(crate) fn type_flags(&self) -> u16 {
        self.mode.raw() | self.flags.bits()
    }
}

impl fmt::Display for Fanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {} ({}", self.group, self.mode)?;
        for (name, _) in self.flags.iter_names() {
            write!(f, "+{}", name.to_ascii_lowercase())?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_mode_and_flags_like_the_uapi() {
        let f = Fanout {
            group: 7,
            mode: FanoutMode::Hash,
            flags: FanoutFlags::DEFRAG | FanoutFlags::ROLLOVER,
        };
        assert_eq!(f.type_flags(), 0x8000 | 0x1000);
        assert_eq!(Fanout::new(1, FanoutMode::QueueMapping).type_flags(), 5);
        assert_eq!(f.to_string(), "group 7 (hash+rollover+defrag)");
        assert_eq!("lb".parse::<FanoutMode>(), Ok(FanoutMode::LoadBalance));
        assert!("nope".parse::<FanoutMode>().is_err());
    }
}
