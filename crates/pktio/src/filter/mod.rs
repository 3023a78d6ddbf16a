//! tcpdump-style capture filters: parsed once, compiled into the XDP
//! steering program (eBPF) or into a socket filter (classic BPF), and
//! evaluated in user space by a reference implementation.
//!
//! ```
//! use pktio::filter::Filter;
//! use pktio::bpf::XdpAction;
//!
//! let f = Filter::parse("udp dst port 4242 and not src net 198.18.1.0/24")?;
//! // The XDP program: matching packets to the AF_XDP socket of their
//! // queue (XSKMAP in map slot 0), everything else to the stack.
//! let xdp = f.xdp_program()?;
//! assert_eq!(xdp.map_slots(), 1);
//! // For AF_PACKET: classic BPF returning 128 bytes of a matching packet.
//! let cbpf = f.cbpf_program(128)?;
//! assert!(cbpf.insns().len() > 10);
//! // In user space (the reference semantics).
//! assert!(!f.matches(&[0u8; 60]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The language
//!
//! A subset of pcap-filter(7), with its syntax:
//!
//! | primitive | matches |
//! |---|---|
//! | `ether src\|dst\|host MAC` | the Ethernet source / destination / either address |
//! | `vlan`, `vlan ID` | an 802.1Q, 802.1ad or 0x9100 tag (with that VLAN ID); shifts what follows by 4 |
//! | `ip`, `ip6`, `arp`, `ether proto N` | the EtherType (N above 1500) |
//! | `tcp`, `udp`, `sctp`, `icmp`, `icmp6` | the IP protocol (`icmp`: IPv4 only; `icmp6`: IPv6 only) |
//! | `proto N`, `ip proto N`, `ip6 proto N` | the IPv4 protocol / IPv6 next header (`\tcp`-style names too) |
//! | `host ADDR`, `src host ADDR`, `dst host ADDR` | IPv4 or IPv6 source / destination; for IPv4 also ARP's sender / target address, as pcap does (`ip host` or `arp host` to choose) |
//! | `net CIDR` (`src`/`dst` too) | the same, under a prefix: `198.18.0.0/15`, `198.18` (= /16), `2001:db8::/32` |
//! | `port N`, `src port N`, `dst port N` | TCP, UDP or SCTP port (`tcp port`, `udp port`, `sctp port` to choose) |
//! | `portrange A-B` (`src`/`dst` too) | a port in `A..=B` |
//! | `len OP N` (`<`, `<=`, `>`, `>=`, `==`, `!=`), `greater N`, `less N` | the frame length (`greater N` is `len >= N`, `less N` is `len <= N`) |
//!
//! Combine with `and`/`&&`, `or`/`||`, `not`/`!` and parentheses. As in
//! pcap, `not` binds tightest and **`and` and `or` have the same precedence,
//! left to right**: `tcp or udp and port 53` is `(tcp or udp) and port 53`.
//! A direction can be `src or dst` (the default) or `src and dst`. A bare
//! value repeats the previous primitive's qualifiers: `port 80 or 443`,
//! `host 198.18.0.1 or 198.18.0.2`. Numbers are decimal or `0x` hex.
//!
//! Names are not resolved (no host or service names). pcap-filter
//! primitives outside the subset (`gateway`, `broadcast`, `mask`,
//! `protochain`, byte accessors like `tcp[13]`, …) are refused with their
//! name; every parse error gives the byte position and what was expected
//! ([`ParseError::render`] draws a caret under it).
//!
//! # Semantics
//!
//! libpcap's, as `tcpdump -r FILE` applies them to Ethernet frames; the
//! XDP program, the socket filter and [`Filter::matches`] walk the same
//! decision graph, and `tests/filter_tcpdump.rs` holds all three to what
//! tcpdump selects from a generated capture:
//!
//! - **A load past the captured bytes rejects the packet**, whatever the
//!   rest of the filter says, even under `not` (`not ip` rejects a 10-byte
//!   frame). Tests libpcap's optimizer removes load nothing: `ip or not ip`
//!   accepts every frame.
//! - **VLAN only through `vlan`.** Without it a tagged frame is not looked
//!   through (`udp` is false for a tagged UDP frame, `not ip` true). `vlan`
//!   tests the EtherType field for 0x8100, 0x88a8 or 0x9100 (`vlan ID`
//!   also the 12-bit VLAN ID after it), and every primitive written after
//!   it reads 4 bytes further, even across `or` and `not`: `vlan and vlan
//!   and ip` is IPv4 in a QinQ frame, `vlan or udp` is false for an
//!   untagged UDP frame.
//! - **IPv4**: ports are read only from first fragments (offset 0), behind
//!   the header length in IHL; `tcp`/`udp`/`proto N` match every fragment.
//! - **IPv6**: `tcp`, `proto N`, `ip6 proto N` … match the fixed header's
//!   next header, or a fragment header (44) followed by it; ports only
//!   right after the fixed header.
//! - **`host`/`net`** with an IPv4 address: IPv4 source/destination, or
//!   ARP's and RARP's sender/target address (`ip host`, `arp host` to
//!   choose).
//! - **`len`** is the length on the wire (a pcap record's `len`, not its
//!   `caplen`).
//!
//! In XDP the program sees the frame as the driver hands it (whole, so
//! `len` is its length): a NIC with hardware VLAN stripping on removes the
//! tag before XDP runs (turn `rxvlan` offload off to filter on VLANs
//! there). The socket filter reads a tag the kernel stripped from the
//! packet's metadata, so it judges the frame as it was on the wire (see
//! [`cbpf`]).
//!
//! # What this module owns
//!
//! Parsing ([`Filter::parse`], the [`Expr`] tree), the reference evaluator
//! ([`Filter::matches`], over a [`Dissected`] frame), and the two
//! compilers ([`xdp::compile`], [`cbpf::compile`] and, for cooked `any`
//! sockets, [`cbpf::compile_cooked`]). It has no `unsafe` and
//! makes no system call except [`CbpfProgram::attach`]; loading and
//! attaching the XDP program is [`crate::xdp::XskProgram::attach_code`]'s
//! job, capturing is [`crate::pcap`]'s.

mod ast;
pub mod cbpf;
mod dissect;
mod error;
mod eval;
mod lex;
mod lower;
mod parse;
mod words;
pub mod xdp;

use std::fmt;
use std::sync::Arc;

use lower::Dag;

pub use ast::{
    CmpOp, Dir, Expr, Family, IpNet, PortProto, Primitive, V4Scope, ETH_P_8021AD, ETH_P_8021Q,
    ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_P_RARP,
};
pub use cbpf::{CbpfProgram, CookedProgram, CookedUnfit, SockFilter};
pub use dissect::{Arp, Dissected, Ipv4, Ipv6, Network, Transport, VlanTag};
pub use error::{CompileError, ParseError, ParseErrorKind, RENDER_CONTEXT};
pub use xdp::OnMatch;

use crate::bpf::{Code, XdpAction};

/// A parsed filter: its text and its syntax tree (`None` for the empty
/// filter, which matches everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    text: String,
    expr: Option<Expr>,
    /// What the evaluator walks and the compilers emit.
    dag: Arc<Dag>,
}

impl Filter {
    /// Parses a filter (see the [module docs](self) for the language).
    ///
    /// # Errors
    /// [`ParseError`] with the byte position of the problem, what was
    /// expected there, or the name of an unsupported primitive.
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let expr = parse::parse(text)?;
        Ok(Filter::new(text.to_string(), expr))
    }

    /// Joins command-line words with spaces (as tcpdump does) and parses
    /// the result. Error positions refer to the joined text: render an
    /// error against [`join_words`]`(words)`.
    ///
    /// # Errors
    /// As [`Filter::parse`].
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Result<Filter, ParseError> {
        Filter::parse(&join_words(words))
    }

    /// The empty filter: matches every packet.
    pub fn all() -> Filter {
        Filter::new(String::new(), None)
    }

    fn new(text: String, expr: Option<Expr>) -> Filter {
        let dag = Arc::new(Dag::build(expr.as_ref()));
        Filter { text, expr, dag }
    }

    pub(crate) fn dag(&self) -> &Dag {
        &self.dag
    }

    /// Builds a filter from a syntax tree (its text is the canonical form).
    pub fn from_expr(expr: Expr) -> Filter {
        Filter::new(expr.to_string(), Some(expr))
    }

    /// The text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The syntax tree; `None` for the empty filter.
    pub fn expr(&self) -> Option<&Expr> {
        self.expr.as_ref()
    }

    /// Whether this is the empty filter (matches everything).
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether a whole frame matches (the reference semantics).
    pub fn matches(&self, frame: &[u8]) -> bool {
        eval::matches(&self.dag, frame, frame.len())
    }

    /// Whether a packet matches of which `data` was captured, out of
    /// `wire_len` bytes on the wire (a pcap record's `caplen` bytes and its
    /// `len`).
    pub fn matches_captured(&self, data: &[u8], wire_len: usize) -> bool {
        eval::matches(&self.dag, data, wire_len)
    }

    /// Whether a dissected frame matches (for a truncated capture, give the
    /// wire length to [`Dissected::new`]).
    pub fn matches_dissected(&self, packet: &Dissected<'_>) -> bool {
        eval::matches(&self.dag, packet.data, packet.wire_len)
    }

    /// The XDP steering program: matching packets go to the AF_XDP socket of
    /// their receive queue (an XSKMAP in map slot 0), the rest to the
    /// network stack. For [`crate::xdp::XskProgram::attach_code`].
    ///
    /// # Errors
    /// See [`xdp::compile`].
    pub fn xdp_program(&self) -> Result<Code, CompileError> {
        xdp::compile(self, OnMatch::Redirect, XdpAction::Pass)
    }

    /// [`xdp_program`](Filter::xdp_program) for a program loaded
    /// frags-aware (`BPF_F_XDP_HAS_FRAGS`, multi-buffer frames): `len` is
    /// the whole frame's length over all its buffers (see
    /// [`xdp::compile_multi_buffer`]).
    ///
    /// # Errors
    /// See [`xdp::compile`].
    pub fn xdp_program_multi_buffer(&self) -> Result<Code, CompileError> {
        xdp::compile_multi_buffer(self, OnMatch::Redirect, XdpAction::Pass)
    }

    /// An XDP program with other actions (see [`xdp::compile`]).
    ///
    /// # Errors
    /// See [`xdp::compile`].
    pub fn xdp_program_with(
        &self,
        on_match: OnMatch,
        on_miss: XdpAction,
    ) -> Result<Code, CompileError> {
        xdp::compile(self, on_match, on_miss)
    }

    /// A classic BPF socket filter keeping `snaplen` bytes of matching
    /// packets (see [`cbpf::compile`]).
    ///
    /// # Errors
    /// See [`cbpf::compile`].
    pub fn cbpf_program(&self, snaplen: u32) -> Result<CbpfProgram, CompileError> {
        cbpf::compile(self, snaplen)
    }

    /// The classic BPF socket filter for a cooked capture (`any`), or why
    /// the filter cannot run in the kernel there (see
    /// [`cbpf::compile_cooked`]).
    ///
    /// # Errors
    /// See [`cbpf::compile_cooked`].
    pub fn cbpf_program_cooked(&self) -> Result<CookedProgram, CompileError> {
        cbpf::compile_cooked(self)
    }
}

/// Joins command-line words into one filter text, with single spaces.
pub fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            None => f.write_str("(everything)"),
            Some(_) => f.write_str(&self.text),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Filter, ParseError> {
        Filter::parse(s)
    }
}
