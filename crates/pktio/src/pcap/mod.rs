//! Packet capture: live capture through AF_XDP with the filter in the XDP
//! program ([`Capture`]), capture files (pcap with nanosecond timestamps,
//! pcapng) written in whole records ([`PcapWriter`], rotated by
//! [`CaptureOutput`]) and read back ([`PcapReader`]), and one-line packet
//! summaries ([`summary`]).
//!
//! ```no_run
//! use std::path::PathBuf;
//! use std::time::Duration;
//! use pktio::filter::Filter;
//! use pktio::pcap::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = CaptureConfig::new("eth0").filter(Filter::parse("udp dst port 4242")?);
//! let buffers = CaptureBuffers::new(&cfg)?;
//! let mut cap = Capture::open(&cfg, &buffers)?;
//! let mut out = CaptureOutput::open(OutputConfig {
//!     target: Target::File(PathBuf::from("/tmp/cap.pcap")),
//!     writer: WriterOptions::default(),
//!     rotation: Rotation::Size(100_000_000),
//!     max_files: Some(4),
//! })?;
//! let mut error = None;
//! for _ in 0..100 {
//!     cap.poll(Duration::from_millis(100), |p| {
//!         if error.is_none() {
//!             error = out.write_packet(p.ts, p.data, p.orig_len).err();
//!         }
//!     })?;
//! }
//! out.finish(None)?;
//! # Ok(()) }
//! ```
//!
//! # Files that stay readable
//!
//! Records are buffered (1 MiB by default) and written out whole: a
//! failure part-way through a write — a full disk — truncates the file
//! back to its last whole record and reports how many packets it keeps
//! ([`PcapError::Write`]); [`PcapWriter`]'s `Drop` flushes, so a capture
//! stopped by a signal that unwinds normally loses nothing. A reader
//! ([`PcapReader`]) reports a file cut inside a record as
//! [`PcapError::Truncated`] after returning every whole record.
//!
//! # What this module owns
//!
//! File formats, rotation, reading, summaries, and the two capture loops:
//! AF_XDP with the filter in the XDP program ([`Capture`] on the calling
//! thread, [`ThreadedCapture`] with a thread per queue: matching packets
//! are taken out of the kernel's path) and AF_PACKET with the filter as
//! classic BPF on a `TPACKET_V3` ring ([`PacketCapture`]: copies, the
//! stack still gets everything). The filter language is
//! [`crate::filter`]'s; sockets, rings and the steering program are
//! [`crate::xdp`]'s and [`crate::packet`]'s.

mod format;
mod hexdump;
mod iface;
mod linktype;
mod live;
mod packet;
mod promisc;
mod reader;
mod rotate;
mod summary;
mod writer;

use std::io;
use std::path::PathBuf;

pub use format::{
    file_header, file_header_for, interface_statistics, record, record_len, FileFormat,
    InterfaceStats, Timestamp, LINKTYPE_ETHERNET, PCAP_FILE_HEADER_LEN, PCAP_MAGIC_NSEC,
    PCAP_MAGIC_USEC,
};
pub use hexdump::{ascii, hex, hex_and_ascii};
pub use iface::{interfaces, link_state, LinkCounters, LinkState};
pub use linktype::{
    LinkType, DLT_RAW_ALIASES, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
};
pub use live::{
    frames_per_queue, needs_multi_buffer, resolve_queues, Capture, CaptureBuffers, CaptureConfig,
    CaptureError, CaptureStats, CapturedPacket, QueueStats, Queues, ThreadedCapture,
    MAX_TOTAL_FRAMES, MIN_QUEUE_FRAMES, SINGLE_BUFFER_FRAME,
};
pub use packet::PacketCapture;
pub use promisc::Promiscuous;
pub use reader::{PcapReader, Record};
pub use rotate::{rotated_name, CaptureOutput, OutputConfig, OutputSummary, Rotation, Target};
pub use summary::{
    link_header, summary, summary_verbose, summary_without_link, summary_without_link_verbose,
    Stamper, TimeFormat,
};
pub use writer::{PcapWriter, WriteStats, WriterOptions};

/// The largest snap length (tcpdump's default): 262144 bytes.
pub const MAX_SNAPLEN: u32 = crate::filter::cbpf::MAX_SNAPLEN;

/// What can go wrong with capture files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// The output file cannot be created.
    #[error("cannot create {path} (check that the directory exists and is writable)")]
    Create {
        /// The file.
        path: PathBuf,
        /// The error from `open(2)`.
        #[source]
        source: io::Error,
    },
    /// The output path is a symbolic link, which is not followed.
    #[error(
        "{path} is a symbolic link: pktio does not write through one (a link planted in a \
         shared directory could point at any file); remove it or write to another name"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Writing failed part-way; the file was cut back to its last whole
    /// record.
    #[error(
        "writing {name} failed{}; {kept_packets} packet(s) were written {}",
        if is_full(source) { " (the disk is full)" } else { "" },
        if *whole_records { "and the file ends after the last whole one, readable" }
        else { "but the output may end inside a record" }
    )]
    Write {
        /// The file (or "standard output").
        name: String,
        /// The error from `write(2)`.
        #[source]
        source: io::Error,
        /// Packets in the file.
        kept_packets: u64,
        /// Whether the output ends on a record boundary.
        whole_records: bool,
    },
    /// An earlier write failed; nothing more is written.
    #[error("{name}: an earlier write failed, nothing more is written")]
    Failed {
        /// The file.
        name: String,
    },
    /// The file to read cannot be opened.
    #[error("cannot open {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The error from `open(2)`.
        #[source]
        source: io::Error,
    },
    /// Reading failed.
    #[error("reading the capture failed")]
    Read {
        /// The error from `read(2)`.
        #[source]
        source: io::Error,
    },
    /// Not a capture file, or a corrupt one.
    #[error("not a valid capture file at byte {offset}: {what}")]
    Format {
        /// Where.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file ends inside a record (the capture was cut short).
    #[error(
        "the capture file ends inside a {what} at byte {offset} (cut short while being written?)"
    )]
    Truncated {
        /// Where the partial record starts.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// An output setting is invalid.
    #[error("{0}")]
    Config(String),
}

fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

impl PcapError {
    /// Whether this is a full disk (or quota): `ENOSPC`, `EDQUOT`.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, PcapError::Write { source, .. } if is_full(source))
    }
}
