//! # pktio: fast packet I/O for Linux
//!
//! pktio moves packets between a network interface and user space without a
//! system call per packet. The fastest path is AF_XDP: user space registers a
//! packet buffer (the [UMEM](xdp::Umem)), and the kernel and the application
//! pass descriptors to each other through four shared single-producer /
//! single-consumer rings (fill, completion, RX, TX). An XDP program, generated
//! and loaded from Rust (no clang), steers packets into the socket.
//!
//! ## Quick start
//!
//! The types you meet first are re-exported here at the root:
//! [`Backend`], [`BackendConfig`], [`PacketIo`] for any interface;
//! [`Umem`], [`XskSocket`], [`Frame`] for AF_XDP by hand; [`Filter`];
//! [`PcapWriter`] and [`PcapReader`]; [`UdpFrame`].
//!
//! **Any interface, the fastest path the host allows.** [`Backend::auto`]
//! tries AF_XDP zero-copy, AF_XDP copy (driver, then skb mode), TPACKET_V3
//! and io_uring, and says why it skipped each (needs `CAP_NET_RAW`, and for
//! AF_XDP `CAP_NET_ADMIN` + `CAP_BPF`):
//!
//! ```no_run
//! use pktio::{Backend, BackendConfig, Direction, PacketIo};
//!
//! let mut cfg = BackendConfig::new("eth0");
//! cfg.direction = Direction::Rx;
//! let (mut io, skipped) = Backend::auto(&cfg)?;
//! eprintln!("{} (skipped: {skipped:?})", io.describe());
//! let mut bytes = 0;
//! let n = io.rx_batch(64, |packet| bytes += packet.len())?;
//! println!("{n} packets, {bytes} bytes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **One backend by name.** The same loop runs on each; here a forwarder
//! that swaps the MAC addresses and sends every frame back, on TPACKET_V3
//! (or [`BackendKind::PacketV2`], [`BackendKind::Uring`],
//! [`BackendKind::Xdp`], [`BackendKind::XdpSkb`]):
//!
//! ```no_run
//! use pktio::{Backend, BackendConfig, BackendKind, PacketIo};
//!
//! let cfg = BackendConfig::new("eth0");
//! let mut io = Backend::open(BackendKind::PacketV3, &cfg)?;
//! let done = io.forward_batch(64, |frame| {
//!     pktio::wire::swap_macs(frame);
//!     true
//! })?;
//! println!("{} received, {} sent back", done.rx, done.tx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **AF_XDP by hand**: a UMEM, a socket on queue 0 (the XDP steering
//! program is generated, loaded and attached for you, and detached when the
//! socket goes), frames that borrow the UMEM and cannot outlive it:
//!
//! ```no_run
//! use pktio::{Frame, Umem, UmemConfig, XskSocket};
//!
//! let umem = Umem::new(UmemConfig::default())?;
//! let mut sock = XskSocket::builder("eth0").queue(0).tx_size(0).build(&umem)?;
//! sock.fill_from_pool(u32::MAX)?;
//! let mut held: Vec<Frame<'_>> = Vec::with_capacity(64);
//! let parts = sock.parts();
//! let (rx, fill) = (parts.rx.ok_or("no rx ring")?, parts.fill.ok_or("no fill ring")?);
//! held.extend(rx.receive(64));
//! println!("{} packets", held.len());
//! fill.fill_from(&mut held); // hand the frames straight back to the kernel
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Filters** (no privilege needed): tcpdump's syntax and libpcap's
//! semantics, compiled to the XDP program's eBPF and to classic BPF for
//! AF_PACKET, both checked against the evaluator:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use pktio::{Filter, UdpFrame};
//!
//! let f = Filter::parse("udp dst port 4242 and not src net 10.0.0.0/8")?;
//! let udp = UdpFrame {
//!     src_mac: [2, 0, 0, 0, 0, 1],
//!     dst_mac: [2, 0, 0, 0, 0, 2],
//!     src_ip: Ipv4Addr::new(198, 18, 0, 1),
//!     dst_ip: Ipv4Addr::new(198, 18, 0, 2),
//!     src_port: 9,
//!     dst_port: 4242,
//! };
//! let mut frame = [0u8; 60];
//! udp.emit(b"hello", 60, &mut frame)?;
//! assert!(f.matches(&frame));
//! assert!(!f.cbpf_program(262_144)?.insns().is_empty()); // what AF_PACKET gets
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **pcap files** (no privilege needed):
//!
//! ```
//! use pktio::pcap::{Timestamp, WriterOptions};
//! use pktio::{PcapReader, PcapWriter};
//!
//! let path = std::env::temp_dir().join(format!("pktio-doc-{}.pcap", std::process::id()));
//! let mut w = PcapWriter::create(&path, WriterOptions::default())?;
//! w.write_packet(Timestamp::now(), &[0xff; 60], 64)?;
//! w.finish(None)?;
//! let mut r = PcapReader::open(&path)?;
//! let rec = r.next_record()?.expect("one record");
//! assert_eq!((rec.data.len(), rec.orig_len, rec.linktype), (60, 64, 1));
//! std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `examples/` folder has whole programs: `rxdrop`, `txpush`, `l2fwd`
//! (AF_XDP) and `async_rx` (any backend under tokio, feature `tokio`).
//!
//! ## A tour, bottom to top
//!
//! Each module uses only those above it in this list (no import cycles);
//! host queries beyond the crate's own needs come from the `pktio-host`
//! crate (capabilities, the EBUSY retry policy).
//!
//! - `sys` (private): every kernel struct and system call, nothing else. Raw
//!   kernel ABI lives only here (`struct bpf_insn` too, re-exported as
//!   [`bpf::insn::Insn`]).
//! - [`host`]: host queries for tools and for the modules below: CPU time,
//!   interface addresses, a driver's name, channels and `ethtool -S`
//!   counters, a device's XDP features (through `pktio-host`).
//! - [`ring`]: the shared-memory SPSC ring protocol (free-running indices,
//!   cached heads, the memory orderings) and its batch guards: a borrow *is*
//!   a batch, `commit` publishes, `Drop` rolls back. It knows nothing of
//!   AF_XDP: it is made from a mapping and the offsets of its words.
//! - [`bpf`]: an eBPF instruction builder, the XSK steering program, maps,
//!   loading with the whole verifier log on failure, `BPF_PROG_TEST_RUN`, and
//!   attaching through a `bpf_link` that disappears with the process.
//! - [`xdp`]: in order, the socket's modes (`mode`), the UMEM and frame
//!   ownership (a [`xdp::Frame`] borrows its UMEM and cannot outlive it; the
//!   UMEM registers itself), the typed ring fronts that map the kernel's
//!   rings (`rings`), packets of several frames (`multibuf`), the steering
//!   program's lifecycle (`steer`), per-packet metadata (`metadata`), and the
//!   AF_XDP socket with its bind-mode and attach-mode fallbacks (`socket`).
//! - [`packet`]: the AF_PACKET socket, TPACKET_V2 frame rings and TPACKET_V3
//!   block rings (one implementation generic over the header), fanout,
//!   qdisc bypass.
//! - [`uring`]: the io_uring pieces: a provided-buffer ring, send buffers,
//!   safe pushes of requests that point at no caller memory, and the
//!   classification of a failed `io_uring_setup`.
//! - [`backend`]: the one batch API ([`backend::PacketIo`]) and all three of
//!   its implementations (`backend/xdp.rs`, `backend/packet.rs`,
//!   `backend/uring.rs`) over the modules above, and
//!   [`backend::Backend::auto`], the ladder AF_XDP zero-copy → AF_XDP copy
//!   (native) → AF_XDP copy (skb) → TPACKET_V3 → io_uring, which says why it
//!   skipped each step.
//! - [`queues`]: many queues on many cores: one backend per queue of an
//!   interface ([`queues::QueueSet`]; AF_XDP sockets under one steering
//!   program, AF_PACKET and io_uring sockets in one fanout group), each a
//!   `Send` handle run on a thread pinned to a CPU of a list.
//! - [`filter`]: tcpdump-style capture filters compiled into the XDP steering
//!   program (eBPF) and into classic BPF for AF_PACKET, checked against an
//!   independent evaluator.
//! - [`pcap`]: pcap/pcapng files (writing with rotation, reading) and live
//!   capture over AF_XDP or AF_PACKET.
//! - [`wire`]: Ethernet / IPv4 / UDP build and parse, for generators and tests.
//!
//! The network lab used by tests, examples and benchmarks lives in the
//! separate `pktio-lab` crate; the `pktio` command-line tool in `pktio-cli`.
//!
//! ## Safety
//!
//! The crate denies `unsafe_code`; only the modules that touch shared memory
//! or the kernel ABI opt back in — `sys` (all of it; `sys::bpf` also has its
//! own `# Safety` section), `ring`, `xdp::umem`, `xdp::rings` (handing the
//! kernel's ring mappings to `ring`), `backend::xdp` (its `Send`, the UMEM
//! moving with the sockets that borrow it), `packet::ring` and
//! `uring::ring`, each opening with a `# Safety` paragraph; and
//! `host::privilege` (the libc user-database and credential calls of
//! dropping root, argued call by call). Every `unsafe` block carries a
//! `// SAFETY:` comment naming the invariant it relies on, and every
//! `unsafe fn` a `# Safety` section.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod bpf;
pub mod error;
pub mod filter;
pub mod host;
pub mod packet;
pub mod pcap;
pub mod queues;
pub mod ring;
pub(crate) mod sys;
pub mod uring;
pub mod wire;
pub mod xdp;

pub use backend::{Backend, BackendConfig, BackendError, BackendKind, Direction, PacketIo};
pub use error::{hint, SysError};
pub use filter::Filter;
pub use pcap::{PcapReader, PcapWriter};
pub use wire::UdpFrame;
pub use xdp::{Frame, Umem, UmemConfig, XskSocket};
