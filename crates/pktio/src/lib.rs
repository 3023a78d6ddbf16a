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
//! - `sys` (private): every kernel struct and system call, nothing else. Raw
//!   kernel ABI lives only here.
//! - [`ring`]: the shared-memory SPSC ring protocol (free-running indices,
//!   cached heads, the memory-ordering argument) and its batch guards: a
//!   borrow *is* a batch, `commit` publishes, `Drop` rolls back.
//! - [`xdp`]: the UMEM and frame ownership (a [`xdp::Frame`] borrows its UMEM and
//!   cannot outlive it), the typed ring fronts, and the AF_XDP socket with its
//!   bind-mode and attach-mode fallbacks.
//! - [`bpf`]: an eBPF instruction builder, the XSK steering program, maps,
//!   loading with the whole verifier log on failure, `BPF_PROG_TEST_RUN`, and
//!   attaching through a `bpf_link` that disappears with the process.
//! - [`packet`]: AF_PACKET with TPACKET_V2 frame rings and TPACKET_V3 block
//!   rings (one implementation generic over the header), fanout, qdisc bypass.
//! - [`uring`]: io_uring on an AF_PACKET socket: multishot receive into a
//!   provided-buffer ring, batched sends.
//! - [`backend`]: the one batch API ([`backend::PacketIo`]) over all of the
//!   above, and [`backend::Backend::auto`], the ladder AF_XDP zero-copy →
//!   AF_XDP copy (native) → AF_XDP copy (skb) → TPACKET_V3 → io_uring, which
//!   says why it skipped each step.
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
//! or the kernel ABI opt back in — `sys` (with `sys::bpf`), `ring`,
//! `xdp::umem`, `backend::xdp` (its `Send`, the UMEM moving with the
//! sockets that borrow it), `packet::ring` and `uring::ring` — and each
//! opens with a `# Safety` paragraph. Every `unsafe` block carries a
//! `// SAFETY:` comment naming the invariant it relies on.
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
