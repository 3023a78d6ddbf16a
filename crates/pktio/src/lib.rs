//! # pktio: fast packet I/O for Linux
//!
//! pktio moves packets between a network interface and user space without a
//! system call per packet. The fastest path is AF_XDP: user space registers a
//! packet buffer (the [UMEM](xdp::Umem)), and the kernel and the application
//! pass descriptors to each other through four shared single-producer /
//! single-consumer rings (fill, completion, RX, TX). An XDP program, generated
//! and loaded from Rust (no clang), steers packets into the socket.
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
//! - [`filter`]: tcpdump-style capture filters compiled into the XDP steering
//!   program (eBPF) and into classic BPF for AF_PACKET, checked against an
//!   independent evaluator.
//! - [`pcap`]: pcap/pcapng files (writing with rotation, reading) and live
//!   capture over AF_XDP or AF_PACKET.
//! - [`wire`]: Ethernet / IPv4 / UDP build and parse, for generators and tests.
//! - [`host`]: host queries for tools: CPU time, interface addresses, a
//!   driver's name and `ethtool -S` counters.
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
#![warn(missing_docs)]

pub mod backend;
pub mod bpf;
pub mod error;
pub mod filter;
pub mod host;
pub mod packet;
pub mod pcap;
pub mod ring;
pub(crate) mod sys;
pub mod uring;
pub mod wire;
pub mod xdp;

pub use error::{hint, SysError};
