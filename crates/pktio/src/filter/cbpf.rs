//! Filter → classic BPF (`struct sock_filter`), for sockets: attached with
//! `setsockopt(SO_ATTACH_FILTER)` to an AF_PACKET socket (or any socket
//! whose data starts with an Ethernet header) with [`compile`], or to an
//! AF_PACKET socket bound to every interface (`any`, cooked records) with
//! [`compile_cooked`].
//!
//! The program returns the snap length for a match and 0 otherwise. It is
//! the filter's decision graph (see the [module docs](super)), one test per
//! node, with libpcap's semantics: a load past the end of the packet ends
//! the program with 0, whatever the rest of the filter says.
//!
//! **VLAN tags on AF_PACKET.** The kernel usually removes a received frame's
//! outer tag before packet sockets see it and keeps it as metadata
//! (`skb->vlan_tci`, `skb->vlan_proto`). The filter is about the frame as it
//! was on the wire (as pktio writes it to a file, tag put back), so the
//! program has two copies of the graph: for a packet with its tag in the
//! frame, and for one whose tag is in metadata (`vlan_avail`), where the
//! TPID and TCI come from ancillary loads (`vlan_tpid`, `vlan_tci`), bytes
//! after the tag are 4 earlier in the packet, and `len` counts the tag's 4
//! bytes. (libpcap's live filters differ here: on Linux `ip` also matches
//! a packet whose tag was stripped; pktio's match `tcpdump -r` of the file.)
//!
//! **Cooked (`any`) sockets.** There the filter is about the Ethernet view
//! of each Linux cooked v2 record, and the kernel's program reads its
//! fields where the kernel has them: the EtherType is `skb->protocol`, the
//! rest is loaded from the network header (`SKF_NET_OFF`), whatever link
//! header each interface has. It is libpcap's `fix_program` rewrite
//! (`pcap-linux.c`) done in the compiler, on a `SOCK_RAW` socket, where
//! libpcap subtracts the cooked header length on a `SOCK_DGRAM` one. What
//! the kernel does not have (the source MAC, the length as pktio counts
//! it) leaves the filter to user space ([`CookedUnfit`]).

use std::fmt;
use std::os::fd::BorrowedFd;

use super::ast::CmpOp;
use super::error::CompileError;
use super::lower::{full_mask, Atom, Base, Dag, Next, Test};
use super::Filter;
use crate::error::SysError;

/// One classic BPF instruction, `struct sock_filter` (`<linux/filter.h>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// The kernel's limit on classic BPF program length (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

// Opcode parts, `<linux/bpf_common.h>` / `<linux/filter.h>`.
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const ADD: u16 = 0x00;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const K: u16 = 0x00;
const X: u16 = 0x08;
const TXA: u16 = 0x80;
const RET_A: u16 = 0x10;

/// `SKF_AD_OFF`: ancillary data loads start here (negative offsets).
const SKF_AD_OFF: i32 = -0x1000;
/// `SKF_AD_VLAN_TAG`: the stripped tag's TCI.
const SKF_AD_VLAN_TAG: i32 = 44;
/// `SKF_AD_VLAN_TAG_PRESENT`: whether a tag was stripped into metadata.
const SKF_AD_VLAN_TAG_PRESENT: i32 = 48;
/// `SKF_AD_VLAN_TPID`: the stripped tag's TPID (Linux 3.19).
const SKF_AD_VLAN_TPID: i32 = 60;
/// `SKF_AD_PROTOCOL`: `skb->protocol`, host order (a cooked record's
/// protocol field).
const SKF_AD_PROTOCOL: i32 = 0;
/// `SKF_AD_PKTTYPE`: `skb->pkt_type` (`sll_pkttype`).
const SKF_AD_PKTTYPE: i32 = 4;
/// `SKF_AD_HATYPE`: the device's ARPHRD type (`sll_hatype`).
const SKF_AD_HATYPE: i32 = 28;
/// `SKF_NET_OFF`: loads at `SKF_NET_OFF + k` read byte `k` of the network
/// header, whatever link header comes before it.
const SKF_NET_OFF: i32 = -0x10_0000;
/// `PACKET_OUTGOING` and `ARPHRD_LOOPBACK`: loopback's outgoing copy.
const PACKET_OUTGOING: u32 = 4;
const ARPHRD_LOOPBACK: u32 = 772;
/// What a cooked program returns for a match: the whole packet, as a
/// socket without a filter gets it (pktio cuts the record to the snap
/// length).
const WHOLE_PACKET: u32 = u32::MAX;
const MSH: u16 = 0xa0;

/// The largest snap length a socket filter can return usefully (and
/// tcpdump's default): 262144.
pub const MAX_SNAPLEN: u32 = 262_144;

/// A classic BPF program, ready for `SO_ATTACH_FILTER`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CbpfProgram {
    insns: Vec<SockFilter>,
}

impl CbpfProgram {
    /// The instructions.
    pub fn insns(&self) -> &[SockFilter] {
        &self.insns
    }

    /// Attaches the program to a socket:
    /// `setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &sock_fprog)`. It
    /// replaces a filter already attached. Needs no privilege beyond owning
    /// the socket (creating an AF_PACKET socket needs `CAP_NET_RAW`).
    ///
    /// # Errors
    /// The kernel's answer: `EINVAL` if it rejects the program (it should
    /// not: it is checked to be within `BPF_MAXINSNS` and to jump forward),
    /// `ENOMEM` when the socket's option memory (`net.core.optmem_max`) is
    /// too small for it.
    pub fn attach(&self, fd: BorrowedFd<'_>) -> Result<(), SysError> {
        let raw: Vec<crate::sys::filter::RawSockFilter> = self
            .insns
            .iter()
            .map(|i| crate::sys::filter::RawSockFilter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        crate::sys::filter::attach_filter(fd, &raw)
    }

    /// A `tcpdump -d`-style listing.
    pub fn listing(&self) -> CbpfListing<'_> {
        CbpfListing(&self.insns)
    }
}

/// Removes the classic filter from a socket:
/// `setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER)`.
///
/// # Errors
/// `ENOENT` when no filter is attached.
pub fn detach(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    crate::sys::filter::detach_filter(fd)
}

/// Displays a program like `tcpdump -d`.
#[derive(Debug)]
pub struct CbpfListing<'a>(&'a [SockFilter]);

impl fmt::Display for CbpfListing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, i) in self.0.iter().enumerate() {
            write!(f, "({pc:03}) ")?;
            let size = match i.code & 0x18 {
                H => "h",
                B => "b",
                _ => "",
            };
            let target = |off: u8| pc + 1 + usize::from(off);
            let kx = if i.code & X != 0 {
                "x".to_string()
            } else {
                format!("#0x{:x}", i.k)
            };
            match i.code & 0x07 {
                LD | LDX => {
                    let r = if i.code & 0x07 == LDX { "ldx" } else { "ld" };
                    match i.code & 0xe0 {
                        IMM => write!(f, "{r:<6}#0x{:x}", i.k)?,
                        ABS if (i.k as i32) >= SKF_AD_OFF && (i.k as i32) < 0 => {
                            let name = match i.k as i32 - SKF_AD_OFF {
                                SKF_AD_VLAN_TAG => "vlan_tci",
                                SKF_AD_VLAN_TAG_PRESENT => "vlan_avail",
                                SKF_AD_VLAN_TPID => "vlan_tpid",
                                SKF_AD_PROTOCOL => "proto",
                                SKF_AD_PKTTYPE => "type",
                                SKF_AD_HATYPE => "hatype",
                                _ => "?",
                            };
                            write!(f, "{r:<6}{name}")?
                        }
                        ABS => write!(f, "{:<6}[{}]", format!("{r}{size}"), Off(i.k))?,
                        IND => write!(f, "{:<6}[x + {}]", format!("{r}{size}"), Off(i.k))?,
                        MEM => write!(f, "{r:<6}M[{}]", i.k)?,
                        LEN => write!(f, "{r:<6}#pktlen")?,
                        _ => write!(f, "{r:<6}4*([{}]&0xf)", Off(i.k))?,
                    }
                }
                ST => write!(f, "{:<6}M[{}]", "st", i.k)?,
                0x03 => write!(f, "{:<6}M[{}]", "stx", i.k)?,
                ALU => {
                    let op = match i.code & 0xf0 {
                        ADD => "add",
                        0x10 => "sub",
                        0x20 => "mul",
                        0x30 => "div",
                        0x40 => "or",
                        AND => "and",
                        LSH => "lsh",
                        0x70 => "rsh",
                        0x80 => "neg",
                        0x90 => "mod",
                        _ => "xor",
                    };
                    write!(f, "{op:<6}{kx}")?
                }
                JMP if i.code & 0xf0 == JA => write!(f, "{:<6}{}", "ja", pc + 1 + i.k as usize)?,
                JMP => {
                    let op = match i.code & 0xf0 {
                        JEQ => "jeq",
                        JGT => "jgt",
                        JGE => "jge",
                        JSET => "jset",
                        _ => "j?",
                    };
                    write!(f, "{op:<6}{kx:<10}jt {}\tjf {}", target(i.jt), target(i.jf))?
                }
                RET if i.code & RET_A != 0 => write!(f, "{:<6}a", "ret")?,
                RET => write!(f, "{:<6}#{}", "ret", i.k)?,
                _ if i.code & 0xf8 == TXA => write!(f, "txa")?,
                _ => write!(f, "tax")?,
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A load's offset as listed: `net+N` for one from the network header.
struct Off(u32);

impl fmt::Display for Off {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0 as i32).checked_sub(SKF_NET_OFF) {
            Some(n) if (self.0 as i32) < SKF_AD_OFF && n >= 0 => write!(f, "net+{n}"),
            _ => write!(f, "{}", self.0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CLabel(usize);

#[derive(Clone, Copy, Debug)]
enum Item {
    Insn(SockFilter),
    /// Conditional jump on `code` (JEQ/JGT/JGE/JSET | K/X).
    Cond {
        code: u16,
        k: u32,
        t: CLabel,
        f: CLabel,
    },
    Ja(CLabel),
    Bind(CLabel),
}

/// A classic BPF assembler with labels. Conditional jumps reach only 255
/// instructions ahead; [`CAsm::finish`] inserts `ja` trampolines where a
/// target is farther.
#[derive(Debug, Default)]
struct CAsm {
    items: Vec<Item>,
    labels: usize,
}

fn ins(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

impl CAsm {
    fn label(&mut self) -> CLabel {
        self.labels += 1;
        CLabel(self.labels - 1)
    }
    fn bind(&mut self, l: CLabel) {
        self.items.push(Item::Bind(l));
    }
    fn op(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(ins(code, k)));
    }
    fn cond(&mut self, code: u16, k: u32, t: CLabel, f: CLabel) {
        self.items.push(Item::Cond { code, k, t, f });
    }
    fn ja(&mut self, l: CLabel) {
        self.items.push(Item::Ja(l));
    }
    fn finish(self) -> Result<Vec<SockFilter>, CompileError> {
        let n = self.items.len();
        // Per conditional jump: whether its true / false target needs a
        // trampoline. Only ever switches on, so the loop ends.
        let mut far = vec![(false, false); n];
        let (pos, label_pos) = loop {
            let mut pos = Vec::with_capacity(n);
            let mut label_pos = vec![usize::MAX; self.labels];
            let mut pc = 0usize;
            for (i, it) in self.items.iter().enumerate() {
                pos.push(pc);
                match it {
                    Item::Bind(l) => label_pos[l.0] = pc,
                    Item::Insn(_) | Item::Ja(_) => pc += 1,
                    Item::Cond { .. } => pc += 1 + usize::from(far[i].0) + usize::from(far[i].1),
                }
            }
            let mut changed = false;
            for (i, it) in self.items.iter().enumerate() {
                if let Item::Cond { t, f, .. } = it {
                    let next = pos[i] + 1;
                    if !far[i].0 && label_pos[t.0].saturating_sub(next) > 255 {
                        far[i].0 = true;
                        changed = true;
                    }
                    if !far[i].1 && label_pos[f.0].saturating_sub(next) > 255 {
                        far[i].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break (pos, label_pos);
            }
        };
        let mut out = Vec::new();
        let rel = |from_next: usize, to: usize| -> usize {
            debug_assert!(to >= from_next, "classic BPF jumps go forward");
            to.saturating_sub(from_next)
        };
        for (i, it) in self.items.iter().enumerate() {
            let p = pos[i];
            match *it {
                Item::Bind(_) => {}
                Item::Insn(s) => out.push(s),
                Item::Ja(l) => out.push(ins(JMP | JA, rel(p + 1, label_pos[l.0]) as u32)),
                Item::Cond { code, k, t, f } => {
                    let (lt, lf) = (label_pos[t.0], label_pos[f.0]);
                    match far[i] {
                        (false, false) => out.push(SockFilter {
                            code,
                            jt: rel(p + 1, lt) as u8,
                            jf: rel(p + 1, lf) as u8,
                            k,
                        }),
                        (true, false) => {
                            out.push(SockFilter {
                                code,
                                jt: 0,
                                jf: rel(p + 1, lf) as u8,
                                k,
                            });
                            out.push(ins(JMP | JA, rel(p + 2, lt) as u32));
                        }
                        (false, true) => {
                            out.push(SockFilter {
                                code,
                                jt: rel(p + 1, lt) as u8,
                                jf: 0,
                                k,
                            });
                            out.push(ins(JMP | JA, rel(p + 2, lf) as u32));
                        }
                        (true, true) => {
                            out.push(SockFilter {
                                code,
                                jt: 0,
                                jf: 1,
                                k,
                            });
                            out.push(ins(JMP | JA, rel(p + 2, lt) as u32));
                            out.push(ins(JMP | JA, rel(p + 3, lf) as u32));
                        }
                    }
                }
            }
        }
        if out.len() > BPF_MAXINSNS {
            return Err(CompileError::TooLong {
                insns: out.len(),
                max: BPF_MAXINSNS,
            });
        }
        Ok(out)
    }
}

/// Which packet the program reads, and so where a field of the frame the
/// filter is written for comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// The frame as it was on the wire, tag (if any) in place.
    Inline,
    /// A frame whose outer tag the kernel moved into metadata: the bytes
    /// before the tag are in place, the TPID and TCI are ancillary loads,
    /// the bytes after the tag are 4 earlier.
    Meta,
    /// A cooked (`any`) packet: the filter reads the Ethernet frame pktio
    /// makes of its Linux cooked v2 record (see
    /// [`crate::pcap::LinkType::as_ethernet`]); the kernel has its network
    /// header and `skb->protocol` (see [`compile_cooked`]).
    Cooked,
}

/// Where a loaded field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// `ld[bhw] [k]`.
    Abs(u32),
    /// An ancillary load, `ld SKF_AD_OFF + n`.
    Anc(i32),
    /// Always zero (a cooked frame's destination MAC): `ld #0`.
    Zero,
    /// Straddles a stripped tag: not loaded (the packet is rejected).
    None,
}

/// Where a field of `off`, `size` bytes of the frame comes from in `view`;
/// `None` when the kernel does not have it (a cooked frame's source MAC,
/// a piece of its protocol field).
fn frame_src(view: View, off: u32, size: u32) -> Option<Src> {
    Some(match (view, off, size) {
        (View::Inline, ..) => Src::Abs(off),
        (View::Meta, ..) if off + size <= 12 => Src::Abs(off),
        (View::Meta, ..) if off >= 16 => Src::Abs(off - 4),
        (View::Meta, 12, 2) => Src::Anc(SKF_AD_VLAN_TPID),
        (View::Meta, 14, 2) => Src::Anc(SKF_AD_VLAN_TAG),
        (View::Meta, ..) => Src::None,
        (View::Cooked, ..) if off + size <= 6 => Src::Zero,
        (View::Cooked, 12, 2) => Src::Anc(SKF_AD_PROTOCOL),
        (View::Cooked, ..) if off >= 14 => Src::Abs(net_off(off)),
        (View::Cooked, ..) => return None,
    })
}

/// The load offset of byte `frame_off` (≥ 14) of a cooked frame: from the
/// network header.
fn net_off(frame_off: u32) -> u32 {
    (SKF_NET_OFF + (frame_off - 14) as i32) as u32
}

/// Code for the graph's nodes, reading the packet as `view` says. The
/// caller checked that every load has a source ([`cooked_unfit`]).
fn emit_view(a: &mut CAsm, dag: &Dag, view: View, matched: CLabel, missed: CLabel) {
    let labels: Vec<CLabel> = dag.nodes.iter().map(|_| a.label()).collect();
    let target = |n: Next| match n {
        Next::Accept => matched,
        Next::Reject => missed,
        Next::Node(i) => labels[i as usize],
    };
    if let Next::Node(i) = dag.root {
        if i != 0 {
            a.ja(labels[i as usize]);
        }
    }
    for (i, n) in dag.nodes.iter().enumerate() {
        a.bind(labels[i]);
        let (t, f) = (target(n.hi), target(n.lo));
        match n.atom {
            Atom::Len(op, v) => {
                a.op(LD | W | LEN, 0);
                if view == View::Meta {
                    a.op(ALU | ADD | K, 4);
                }
                let (code, yes, no) = match op {
                    CmpOp::Eq => (JEQ, t, f),
                    CmpOp::Ne => (JEQ, f, t),
                    CmpOp::Gt => (JGT, t, f),
                    CmpOp::Ge => (JGE, t, f),
                    CmpOp::Lt => (JGE, f, t),
                    CmpOp::Le => (JGT, f, t),
                };
                a.cond(JMP | code | K, v, yes, no);
            }
            Atom::Field {
                base,
                off,
                size,
                mask,
                test,
            } => {
                let sz = match size {
                    1 => B,
                    2 => H,
                    _ => W,
                };
                let (off, size) = (u32::from(off), u32::from(size));
                match base {
                    Base::Frame => match frame_src(view, off, size).unwrap_or(Src::None) {
                        Src::Abs(o) => a.op(LD | sz | ABS, o),
                        Src::Anc(n) => a.op(LD | W | ABS, (SKF_AD_OFF + n) as u32),
                        Src::Zero => a.op(LD | IMM, 0),
                        Src::None => {
                            a.ja(missed);
                            continue;
                        }
                    },
                    Base::L4v4(l3) => {
                        let l3 = match (view, u32::from(l3)) {
                            (View::Inline, l3) => l3,
                            (View::Meta, l3) if l3 >= 16 => l3 - 4,
                            (View::Cooked, l3) if l3 >= 14 => net_off(l3),
                            _ => {
                                a.ja(missed);
                                continue;
                            }
                        };
                        // X = 4 * (frame[l3] & 0xf); A = frame[X + l3 + off]
                        a.op(LDX | B | MSH, l3);
                        a.op(LD | sz | IND, l3.wrapping_add(off));
                    }
                }
                if mask != full_mask(size as u8) {
                    a.op(ALU | AND | K, mask);
                }
                match test {
                    Test::Eq(v) => a.cond(JMP | JEQ | K, v, t, f),
                    Test::Range(lo, hi) => {
                        let above_lo = a.label();
                        a.cond(JMP | JGE | K, lo, above_lo, f);
                        a.bind(above_lo);
                        a.cond(JMP | JGT | K, hi, f, t);
                    }
                }
            }
        }
    }
}

/// Compiles `filter` for a socket: returns `snaplen` (at most
/// [`MAX_SNAPLEN`]; 0 means [`MAX_SNAPLEN`]) bytes of a matching packet, 0
/// for any other. An empty filter is `ret #snaplen`.
///
/// Minimum kernel: the VLAN metadata loads (`SKF_AD_VLAN_TAG`,
/// `SKF_AD_VLAN_TAG_PRESENT`) predate every kernel pktio supports; the
/// kernel checks the program on attach.
///
/// # Errors
/// [`CompileError::TooLong`] beyond 4096 instructions.
pub fn compile(filter: &Filter, snaplen: u32) -> Result<CbpfProgram, CompileError> {
    let snaplen = if snaplen == 0 || snaplen > MAX_SNAPLEN {
        MAX_SNAPLEN
    } else {
        snaplen
    };
    let dag = filter.dag();
    if let Some(v) = dag.constant() {
        return Ok(CbpfProgram {
            insns: vec![ins(RET | K, if v { snaplen } else { 0 })],
        });
    }
    let mut a = CAsm::default();
    let matched = a.label();
    let missed = a.label();
    let inline = a.label();
    let meta = a.label();
    a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT) as u32);
    a.cond(JMP | JEQ | K, 0, inline, meta);
    a.bind(inline);
    emit_view(&mut a, dag, View::Inline, matched, missed);
    a.bind(meta);
    emit_view(&mut a, dag, View::Meta, matched, missed);
    a.bind(matched);
    a.op(RET | K, snaplen);
    a.bind(missed);
    a.op(RET | K, 0);
    Ok(CbpfProgram { insns: a.finish()? })
}

/// Why a filter cannot run in the kernel on a cooked (`any`) socket: it
/// reads something of the Ethernet frame pktio makes of a cooked record
/// that the kernel's filter does not see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookedUnfit {
    /// `len`, `greater`, `less`: the kernel's length counts the link header
    /// the packet had on its interface, which varies.
    Length,
    /// `ether src`/`ether host`: the link-layer source address is in the
    /// `sockaddr_ll` the kernel fills in after the filter.
    LinkSource,
}

impl fmt::Display for CookedUnfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CookedUnfit::Length => {
                "len/greater/less compare the packet's length, which the kernel counts from \
                 a link header that differs by interface"
            }
            CookedUnfit::LinkSource => {
                "ether src/host read the link-layer source address, which the kernel's \
                 filter does not see"
            }
        })
    }
}

/// A filter for a cooked (`any`) socket: the kernel program, or why the
/// filter has to run in user space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookedProgram {
    /// Attach this; it selects what the filter selects.
    Kernel(CbpfProgram),
    /// No program can: evaluate the filter on each record.
    UserSpace(CookedUnfit),
}

/// The first load of `dag` the kernel cannot make on a cooked socket.
fn cooked_unfit(dag: &Dag) -> Option<CookedUnfit> {
    dag.nodes.iter().find_map(|n| match n.atom {
        Atom::Len(..) => Some(CookedUnfit::Length),
        Atom::Field {
            base: Base::Frame,
            off,
            size,
            ..
        } => match frame_src(View::Cooked, off.into(), size.into()) {
            Some(_) => None,
            None => Some(CookedUnfit::LinkSource),
        },
        Atom::Field { .. } => None,
    })
}

/// Compiles `filter` for an AF_PACKET socket bound to every interface
/// (`any`), as libpcap rewrites its cooked-mode programs (`fix_program` in
/// `pcap-linux.c`). The filter is about the Ethernet frame pktio makes of
/// each Linux cooked v2 record (see [`crate::pcap::LinkType::as_ethernet`]:
/// destination MAC zero, the record's protocol as EtherType, the packet
/// from its network header); the kernel's program reads the same fields
/// where it has them:
///
/// - the EtherType is `skb->protocol` (`SKF_AD_PROTOCOL`, which is what
///   the record's protocol field holds);
/// - bytes from 14 on are the network header's, loaded at `SKF_NET_OFF +
///   (offset − 14)` whatever link header the interface has (past the end:
///   the packet is rejected, as in user space);
/// - the destination MAC is zero (`ld #0`).
///
/// A filter that reads the source MAC or the length cannot be rewritten
/// ([`CookedProgram::UserSpace`]). The program also drops loopback's
/// outgoing copies (`PACKET_OUTGOING` on `ARPHRD_LOOPBACK`), which the
/// capture leaves out anyway, and returns the whole packet for a match
/// (the capture cuts the record to its snap length, as without a filter).
///
/// Loads at `SKF_NET_OFF` read the packet's page fragments from Linux 6.15
/// on; before, only its linear part (the capture checks the kernel).
///
/// # Errors
/// [`CompileError::TooLong`] beyond 4096 instructions.
pub fn compile_cooked(filter: &Filter) -> Result<CookedProgram, CompileError> {
    let dag = filter.dag();
    if let Some(why) = cooked_unfit(dag) {
        return Ok(CookedProgram::UserSpace(why));
    }
    let mut a = CAsm::default();
    let matched = a.label();
    let missed = a.label();
    let outgoing = a.label();
    let body = a.label();
    a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_PKTTYPE) as u32);
    a.cond(JMP | JEQ | K, PACKET_OUTGOING, outgoing, body);
    a.bind(outgoing);
    a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_HATYPE) as u32);
    a.cond(JMP | JEQ | K, ARPHRD_LOOPBACK, missed, body);
    a.bind(body);
    match dag.constant() {
        Some(true) => a.ja(matched),
        Some(false) => a.ja(missed),
        None => emit_view(&mut a, dag, View::Cooked, matched, missed),
    }
    a.bind(matched);
    a.op(RET | K, WHOLE_PACKET);
    a.bind(missed);
    a.op(RET | K, 0);
    Ok(CookedProgram::Kernel(CbpfProgram { insns: a.finish()? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(filter: &str) -> String {
        let f = Filter::parse(filter).unwrap();
        let p = compile(&f, 65535).unwrap();
        format!("; {filter}\n{}", p.listing())
    }

    #[test]
    fn listing_udp_dst_port() {
        insta::assert_snapshot!(listing("udp dst port 4242"));
    }

    fn cooked(filter: &str) -> CookedProgram {
        compile_cooked(&Filter::parse(filter).unwrap()).unwrap()
    }

    fn cooked_listing(filter: &str) -> String {
        match cooked(filter) {
            CookedProgram::Kernel(p) => format!("; {filter} (cooked)\n{}", p.listing()),
            CookedProgram::UserSpace(why) => panic!("{filter}: user space ({why})"),
        }
    }

    #[test]
    fn listing_cooked_udp_dst_port() {
        // Before: `listing_udp_dst_port` (Ethernet offsets, two views).
        // After: the EtherType from skb->protocol, the rest from the
        // network header, loopback's outgoing copies dropped first.
        insta::assert_snapshot!(cooked_listing("udp dst port 4242"));
    }

    #[test]
    fn cooked_loads_come_from_the_network_header_and_skb_protocol() {
        let CookedProgram::Kernel(p) = cooked("vlan 5 and src net 198.18.0.0/15") else {
            panic!("user space")
        };
        let loads: Vec<(u16, i64)> = p
            .insns()
            .iter()
            .filter(|i| i.code & 0x07 == LD)
            .map(|i| (i.code, i64::from(i.k as i32)))
            .collect();
        let net = i64::from(SKF_NET_OFF);
        let proto = i64::from(SKF_AD_OFF + SKF_AD_PROTOCOL);
        // The TPID is the protocol; the VID and the shifted EtherType are
        // at 14 and 16 of the frame: 0 and 2 of the network header; the
        // IPv4 source at 16 + 12 + 4 = 30 - 14.
        assert!(loads.contains(&(LD | W | ABS, proto)));
        assert!(loads.contains(&(LD | H | ABS, net)));
        assert!(loads.contains(&(LD | H | ABS, net + 2)));
        assert!(loads.contains(&(LD | W | ABS, net + 16)));
        // No load of the frame's own offsets.
        assert!(loads
            .iter()
            .all(|&(code, k)| k < 0 || code & 0xe0 == IMM || code & 0xe0 == LEN));
    }

    #[test]
    fn cooked_destination_mac_is_zero() {
        let CookedProgram::Kernel(p) = cooked("ether dst 02:00:00:00:00:01") else {
            panic!("user space")
        };
        assert!(p.insns().iter().any(|i| i.code == LD | IMM && i.k == 0));
        assert!(!p
            .insns()
            .iter()
            .any(|i| i.code & 0xe0 == ABS && i.k < 0x8000_0000));
    }

    #[test]
    fn cooked_fallbacks_name_what_the_kernel_lacks() {
        for f in ["len > 100", "greater 60", "tcp or less 80"] {
            assert_eq!(
                cooked(f),
                CookedProgram::UserSpace(CookedUnfit::Length),
                "{f}"
            );
        }
        for f in [
            "ether src 02:00:00:00:00:01",
            "ether host 02:00:00:00:00:01",
            "udp and not ether src 02:00:00:00:00:01",
        ] {
            assert_eq!(
                cooked(f),
                CookedProgram::UserSpace(CookedUnfit::LinkSource),
                "{f}"
            );
        }
        // `len >= 0` loads nothing: the graph has no `len` test left.
        assert!(matches!(
            cooked("len >= 0 and udp"),
            CookedProgram::Kernel(_)
        ));
    }

    #[test]
    fn cooked_constant_filters_keep_the_loopback_test() {
        let verdict = |f: &str| match cooked(f) {
            CookedProgram::Kernel(p) => {
                // ld type; jeq; ld hatype; jeq; ja to a ret; ret #all; ret #0
                assert_eq!(p.insns().len(), 7, "{f}: {}", p.listing());
                assert_eq!(p.insns()[4].code, JMP | JA);
                p.insns()[5 + p.insns()[4].k as usize].k
            }
            CookedProgram::UserSpace(why) => panic!("{f}: {why}"),
        };
        assert_eq!(verdict(""), WHOLE_PACKET);
        assert_eq!(verdict("ip or not ip"), WHOLE_PACKET);
        assert_eq!(verdict("ip and ip6"), 0);
    }

    #[test]
    fn empty_filter_accepts_snaplen() {
        let p = compile(&Filter::parse("").unwrap(), 0).unwrap();
        assert_eq!(p.insns(), [ins(RET | K, MAX_SNAPLEN)]);
    }

    #[test]
    fn far_targets_get_trampolines() {
        // 40 MAC primitives: the jump from the first to the end is far.
        let macs: Vec<String> = (0..40)
            .map(|i| format!("ether host 02:00:00:00:00:{i:02x}"))
            .collect();
        let f = Filter::parse(&macs.join(" or ")).unwrap();
        let p = compile(&f, 100).unwrap();
        assert!(p.insns().len() > 300);
        // Every jump lands inside the program, on or before the last insn.
        let n = p.insns().len();
        for (pc, i) in p.insns().iter().enumerate() {
            if i.code & 0x07 == JMP {
                if i.code & 0xf0 == JA {
                    assert!(pc + 1 + (i.k as usize) < n);
                } else {
                    assert!(pc + 1 + usize::from(i.jt) < n && pc + 1 + usize::from(i.jf) < n);
                }
            }
        }
        assert!(p.insns().iter().any(|i| i.code == JMP | JA && i.k > 255));
    }

    #[test]
    fn too_long_is_an_error() {
        let ports: Vec<String> = (0..256).map(|i| format!("port {i}")).collect();
        let f = Filter::parse(&ports.join(" or ")).unwrap();
        assert!(matches!(
            compile(&f, 100),
            Err(CompileError::TooLong { .. })
        ));
    }
}
