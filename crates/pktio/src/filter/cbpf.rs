//! Filter → classic BPF (`struct sock_filter`), for sockets: attached with
//! `setsockopt(SO_ATTACH_FILTER)` to an AF_PACKET socket (or any socket
//! whose data starts with an Ethernet header).
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
                        ABS if (i.k as i32) < 0 => {
                            let ad = i.k as i32 - SKF_AD_OFF;
                            let name = match ad {
                                SKF_AD_VLAN_TAG => "vlan_tci",
                                SKF_AD_VLAN_TAG_PRESENT => "vlan_avail",
                                SKF_AD_VLAN_TPID => "vlan_tpid",
                                _ => "?",
                            };
                            write!(f, "{r:<6}{name}")?
                        }
                        ABS => write!(f, "{:<6}[{}]", format!("{r}{size}"), i.k)?,
                        IND => write!(f, "{:<6}[x + {}]", format!("{r}{size}"), i.k)?,
                        MEM => write!(f, "{r:<6}M[{}]", i.k)?,
                        LEN => write!(f, "{r:<6}#pktlen")?,
                        _ => write!(f, "{r:<6}4*([{}]&0xf)", i.k)?,
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

/// Where a field of the frame as it was on the wire comes from, for a
/// packet whose outer tag the kernel moved into metadata: the bytes before
/// the tag are in place, the TPID and TCI are ancillary loads, the bytes
/// after the tag are 4 earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Abs(u32),
    Tpid,
    Tci,
    /// Straddles the stripped tag: not loaded (the packet is rejected).
    None,
}

fn meta_src(off: u32, size: u32) -> Src {
    match (off, size) {
        _ if off + size <= 12 => Src::Abs(off),
        _ if off >= 16 => Src::Abs(off - 4),
        (12, 2) => Src::Tpid,
        (14, 2) => Src::Tci,
        _ => Src::None,
    }
}

/// Code for the graph's nodes; `meta`: the packet's outer tag is in
/// metadata (`vlan_avail`), so frame offsets go through [`meta_src`].
fn emit_view(a: &mut CAsm, dag: &Dag, meta: bool, matched: CLabel, missed: CLabel) {
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
                if meta {
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
                    Base::Frame => match if meta {
                        meta_src(off, size)
                    } else {
                        Src::Abs(off)
                    } {
                        Src::Abs(o) => a.op(LD | sz | ABS, o),
                        Src::Tpid => a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_VLAN_TPID) as u32),
                        Src::Tci => a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_VLAN_TAG) as u32),
                        Src::None => {
                            a.ja(missed);
                            continue;
                        }
                    },
                    Base::L4v4(l3) => {
                        let l3 = u32::from(l3);
                        let l3 = match (meta, l3) {
                            (false, l3) => l3,
                            (true, l3) if l3 >= 16 => l3 - 4,
                            (true, _) => {
                                a.ja(missed);
                                continue;
                            }
                        };
                        // X = 4 * (frame[l3] & 0xf); A = frame[X + l3 + off]
                        a.op(LDX | B | MSH, l3);
                        a.op(LD | sz | IND, l3 + off);
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
    emit_view(&mut a, dag, false, matched, missed);
    a.bind(meta);
    emit_view(&mut a, dag, true, matched, missed);
    a.bind(matched);
    a.op(RET | K, snaplen);
    a.bind(missed);
    a.op(RET | K, 0);
    Ok(CbpfProgram { insns: a.finish()? })
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
