//! Filter → classic BPF (`struct sock_filter`), for sockets: attached with
//! `setsockopt(SO_ATTACH_FILTER)` to an AF_PACKET socket (or any socket
//! whose data starts with an Ethernet header).
//!
//! The program returns the snap length for a match and 0 otherwise. Its
//! prologue works out, into scratch memory, what every primitive needs:
//!
//! | slot | holds |
//! |---|---|
//! | `M[0]` | the EtherType after at most one tag (`0x10000`: frame too short) |
//! | `M[1]` | the L3 offset: 14, or 18 behind an in-frame tag |
//! | `M[2]` | the VLAN tag: TCI, `0x10000` untagged, `0x30000` tagged but cut short |
//! | `M[3]` | scratch: the IPv4 transport offset |
//!
//! **VLAN tags on AF_PACKET.** The kernel usually removes a received frame's
//! outer tag before packet sockets see it and keeps it as metadata
//! (`skb->vlan_tci`). The prologue reads that metadata first (`SKF_AD_VLAN_TAG_PRESENT`,
//! `SKF_AD_VLAN_TAG`): with a stripped tag the frame's own EtherType field is
//! the inner one and L3 is at 14, so a filter means the same whether the tag
//! is in the frame or in the metadata. (`len` then counts the frame without
//! the 4 stripped bytes, as with libpcap.)
//!
//! Loads are preceded by a comparison with the packet length (`ld len`):
//! in classic BPF a load past the end aborts the whole program with 0, which
//! would make `not PRIMITIVE` reject short frames too.

use std::fmt;
use std::os::fd::BorrowedFd;

use super::ast::{CmpOp, ETH_P_8021AD, ETH_P_8021Q};
use super::error::CompileError;
use super::lower::{fold, full_mask, gen, len_const, lower, Atom, Base, Emit, Folded, Test};
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
const MISC: u16 = 0x07;
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
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;
const RET_A: u16 = 0x10;

/// `SKF_AD_OFF`: ancillary data loads start here (negative offsets).
const SKF_AD_OFF: i32 = -0x1000;
/// `SKF_AD_VLAN_TAG`: the stripped tag's TCI.
const SKF_AD_VLAN_TAG: i32 = 44;
/// `SKF_AD_VLAN_TAG_PRESENT`: whether a tag was stripped into metadata.
const SKF_AD_VLAN_TAG_PRESENT: i32 = 48;

const M_ETYPE: u32 = 0;
const M_L3: u32 = 1;
const M_VLAN: u32 = 2;
const M_L4: u32 = 3;
const ETYPE_NONE: u32 = 0x1_0000;
const VLAN_NONE: u32 = 0x1_0000;
const VLAN_UNKNOWN: u32 = 0x3_0000;
const VLAN_ID_MASK: u32 = 0x1_0fff;

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
    /// `A = len; if A >= n goto t else f`.
    fn len_ge(&mut self, n: u32, t: CLabel, f: CLabel) {
        self.op(LD | W | LEN, 0);
        self.cond(JMP | JGE | K, n, t, f);
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

impl Emit for CAsm {
    type Label = CLabel;

    fn new_label(&mut self) -> CLabel {
        self.label()
    }

    fn bind(&mut self, l: CLabel) {
        CAsm::bind(self, l);
    }

    fn atom(&mut self, atom: &Atom, t: CLabel, f: CLabel) {
        match *atom {
            Atom::Len(op, v) => {
                self.op(LD | W | LEN, 0);
                let (code, yes, no) = match op {
                    CmpOp::Eq => (JEQ, t, f),
                    CmpOp::Ne => (JEQ, f, t),
                    CmpOp::Gt => (JGT, t, f),
                    CmpOp::Ge => (JGE, t, f),
                    CmpOp::Lt => (JGE, f, t),
                    CmpOp::Le => (JGT, f, t),
                };
                self.cond(JMP | code | K, v, yes, no);
            }
            Atom::Tagged => {
                self.op(LD | MEM, M_VLAN);
                self.cond(JMP | JEQ | K, VLAN_NONE, f, t);
            }
            Atom::VlanId(id) => {
                self.op(LD | MEM, M_VLAN);
                self.op(ALU | AND | K, VLAN_ID_MASK);
                self.cond(JMP | JEQ | K, u32::from(id), t, f);
            }
            Atom::EtherType(et) => {
                self.op(LD | MEM, M_ETYPE);
                self.cond(JMP | JEQ | K, u32::from(et), t, f);
            }
            Atom::Field {
                base,
                off,
                size,
                mask,
                test,
            } => {
                let end = u32::from(off) + u32::from(size);
                let sz = match size {
                    1 => B,
                    2 => H,
                    _ => W,
                };
                // `X = base + end; if len < X goto f; X = base` (or nothing
                // for the frame itself).
                let need_x = |a: &mut CAsm, slot: u32, end: u32| {
                    let ok = a.label();
                    a.op(LD | MEM, slot);
                    a.op(ALU | ADD | K, end);
                    a.op(MISC | TAX, 0);
                    a.op(LD | W | LEN, 0);
                    a.cond(JMP | JGE | X, 0, ok, f);
                    a.bind(ok);
                    a.op(LDX | MEM, slot);
                };
                let load_off = match base {
                    Base::Frame => {
                        let ok = self.label();
                        self.len_ge(end, ok, f);
                        self.bind(ok);
                        None
                    }
                    Base::L3 => {
                        need_x(self, M_L3, end);
                        Some(off)
                    }
                    Base::L4v6 => {
                        need_x(self, M_L3, end + 40);
                        Some(off + 40)
                    }
                    Base::L4v4 => {
                        need_x(self, M_L3, 1);
                        self.op(LD | B | IND, 0);
                        self.op(ALU | AND | K, 0x0f);
                        self.op(ALU | LSH | K, 2);
                        self.op(ALU | ADD | X, 0);
                        self.op(ST, M_L4);
                        need_x(self, M_L4, end);
                        Some(off)
                    }
                };
                if mask == 0 {
                    self.ja(t);
                    return;
                }
                match load_off {
                    None => self.op(LD | sz | ABS, u32::from(off)),
                    Some(o) => self.op(LD | sz | IND, u32::from(o)),
                }
                if mask != full_mask(size) {
                    self.op(ALU | AND | K, mask);
                }
                match test {
                    Test::Eq(v) => self.cond(JMP | JEQ | K, v, t, f),
                    Test::Range(lo, hi) => {
                        let above_lo = self.label();
                        self.cond(JMP | JGE | K, lo, above_lo, f);
                        self.bind(above_lo);
                        self.cond(JMP | JGT | K, hi, f, t);
                    }
                }
            }
        }
    }
}

fn prologue(a: &mut CAsm) {
    let done = a.label();
    let inline = a.label();
    let meta = a.label();
    let meta_type = a.label();
    let tagged = a.label();
    let untagged = a.label();
    let check_ad = a.label();
    let tci = a.label();
    let inner = a.label();
    a.op(LD | IMM, ETYPE_NONE);
    a.op(ST, M_ETYPE);
    a.op(LD | IMM, 14);
    a.op(ST, M_L3);
    a.op(LD | IMM, VLAN_NONE);
    a.op(ST, M_VLAN);
    a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT) as u32);
    a.cond(JMP | JEQ | K, 0, inline, meta);
    // A tag stripped into metadata: the frame's EtherType is the inner one.
    a.bind(meta);
    a.op(LD | W | ABS, (SKF_AD_OFF + SKF_AD_VLAN_TAG) as u32);
    a.op(ST, M_VLAN);
    a.len_ge(14, meta_type, done);
    a.bind(meta_type);
    a.op(LD | H | ABS, 12);
    a.op(ST, M_ETYPE);
    a.ja(done);
    // The tag, if any, is in the frame.
    a.bind(inline);
    let have_type = a.label();
    a.len_ge(14, have_type, done);
    a.bind(have_type);
    a.op(LD | H | ABS, 12);
    a.cond(JMP | JEQ | K, u32::from(ETH_P_8021Q), tagged, check_ad);
    a.bind(check_ad);
    a.cond(JMP | JEQ | K, u32::from(ETH_P_8021AD), tagged, untagged);
    a.bind(untagged);
    a.op(ST, M_ETYPE);
    a.ja(done);
    a.bind(tagged);
    a.op(LD | IMM, VLAN_UNKNOWN);
    a.op(ST, M_VLAN);
    a.len_ge(16, tci, done);
    a.bind(tci);
    a.op(LD | H | ABS, 14);
    a.op(ST, M_VLAN);
    a.len_ge(18, inner, done);
    a.bind(inner);
    a.op(LD | H | ABS, 16);
    a.op(ST, M_ETYPE);
    a.op(LD | IMM, 18);
    a.op(ST, M_L3);
    a.bind(done);
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
    let folded = match filter.expr() {
        Some(e) => fold(&lower(e), &|a| len_const(a, u64::from(u32::MAX))),
        None => Folded::Const(true),
    };
    let c = match folded {
        Folded::Const(v) => {
            return Ok(CbpfProgram {
                insns: vec![ins(RET | K, if v { snaplen } else { 0 })],
            })
        }
        Folded::Cond(c) => c,
    };
    let mut a = CAsm::default();
    prologue(&mut a);
    let matched = a.label();
    let missed = a.label();
    gen(&mut a, &c, matched, missed);
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
