//! The compilers' shared intermediate form: each primitive becomes a small
//! formula of *atoms*, each atom one load-and-compare (or a test of what the
//! program's prologue worked out: the EtherType after an optional VLAN tag,
//! the tag itself). Both back ends ([`super::cbpf`], [`super::xdp`]) walk
//! the same formula with the same short-circuit code generator, so their
//! semantics cannot drift apart; the reference evaluator ([`super::eval`])
//! does not use this form.
//!
//! Every field load in the generated code is preceded by a check that the
//! bytes are in the frame; when they are not, the atom is false.

use super::ast::*;

/// Where a field's offset counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// The start of the frame.
    Frame,
    /// The network header (14, or 18 behind a VLAN tag).
    L3,
    /// The IPv4 transport header: L3 + IHL × 4 (IHL read from the frame).
    L4v4,
    /// The transport header after the IPv6 fixed header: L3 + 40.
    L4v6,
}

/// A comparison of a loaded (and masked) field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Test {
    /// `== v`
    Eq(u32),
    /// `lo <= field <= hi`
    Range(u32, u32),
}

/// One test the generated code makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Atom {
    /// The frame length compared with a number.
    Len(CmpOp, u32),
    /// The frame carries an 802.1Q/802.1ad tag.
    Tagged,
    /// The frame carries a tag with this VLAN ID.
    VlanId(u16),
    /// The EtherType after at most one tag.
    EtherType(u16),
    /// `(field & mask)` passes `test`; false when the field is not in the frame.
    Field {
        /// Where `off` counts from.
        base: Base,
        /// Offset from `base`.
        off: u16,
        /// 1, 2 or 4 bytes, big-endian.
        size: u8,
        /// Applied before the test (all ones: no mask).
        mask: u32,
        /// The comparison.
        test: Test,
    },
}

impl Atom {
    fn field(base: Base, off: u16, size: u8, test: Test) -> Atom {
        Atom::Field {
            base,
            off,
            size,
            mask: full_mask(size),
            test,
        }
    }
}

/// All ones for a field of `size` bytes.
pub(crate) fn full_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

/// A formula over atoms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Atom(Atom),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

fn and(v: Vec<Cond>) -> Cond {
    if v.len() == 1 {
        v.into_iter().next().unwrap_or(Cond::And(Vec::new()))
    } else {
        Cond::And(v)
    }
}

fn or(v: Vec<Cond>) -> Cond {
    if v.len() == 1 {
        v.into_iter().next().unwrap_or(Cond::Or(Vec::new()))
    } else {
        Cond::Or(v)
    }
}

fn by_dir(dir: Dir, src: Cond, dst: Cond) -> Cond {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::Either => Cond::Or(vec![src, dst]),
        Dir::Both => Cond::And(vec![src, dst]),
    }
}

fn ethertype(t: u16) -> Cond {
    Cond::Atom(Atom::EtherType(t))
}

fn field(base: Base, off: u16, size: u8, test: Test) -> Cond {
    Cond::Atom(Atom::field(base, off, size, test))
}

/// A byte string compared in 4- and 2-byte pieces (MAC addresses).
fn bytes_eq(base: Base, off: u16, bytes: &[u8]) -> Cond {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = bytes.len() - i;
        let (size, v) = if rest >= 4 {
            (
                4,
                u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]),
            )
        } else if rest >= 2 {
            (2, u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]])))
        } else {
            (1, u32::from(bytes[i]))
        };
        parts.push(field(base, off + i as u16, size, Test::Eq(v)));
        i += size as usize;
    }
    and(parts)
}

/// An address under a prefix: 4-byte words, masked; every word is loaded
/// (a fully masked word still needs its bytes in the frame).
fn prefix_eq(off: u16, addr: &[u8], prefix: u8) -> Cond {
    let words = addr.len() / 4;
    let mut parts = Vec::with_capacity(words);
    for w in 0..words {
        let bits_before = 32 * w as u32;
        let p = u32::from(prefix).saturating_sub(bits_before).min(32);
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        let v = u32::from_be_bytes([
            addr[4 * w],
            addr[4 * w + 1],
            addr[4 * w + 2],
            addr[4 * w + 3],
        ]);
        parts.push(Cond::Atom(Atom::Field {
            base: Base::L3,
            off: off + 4 * w as u16,
            size: 4,
            mask,
            test: Test::Eq(v & mask),
        }));
    }
    and(parts)
}

fn one_of(base: Base, off: u16, values: &[u8]) -> Cond {
    or(values
        .iter()
        .map(|&v| field(base, off, 1, Test::Eq(u32::from(v))))
        .collect())
}

/// Lowers one primitive.
pub(crate) fn primitive(p: &Primitive) -> Cond {
    match *p {
        Primitive::Ether { dir, mac } => by_dir(
            dir,
            bytes_eq(Base::Frame, 6, &mac),
            bytes_eq(Base::Frame, 0, &mac),
        ),
        Primitive::Vlan(None) => Cond::Atom(Atom::Tagged),
        Primitive::Vlan(Some(id)) => Cond::Atom(Atom::VlanId(id)),
        Primitive::EtherType(t) => ethertype(t),
        Primitive::Proto { family, proto } => {
            let v4 = Cond::And(vec![
                ethertype(ETH_P_IP),
                field(Base::L3, 9, 1, Test::Eq(u32::from(proto))),
            ]);
            let v6 = Cond::And(vec![
                ethertype(ETH_P_IPV6),
                field(Base::L3, 6, 1, Test::Eq(u32::from(proto))),
            ]);
            match family {
                Family::Any => Cond::Or(vec![v4, v6]),
                Family::V4 => v4,
                Family::V6 => v6,
            }
        }
        Primitive::Net {
            dir,
            net:
                IpNet::V4 {
                    addr,
                    prefix,
                    scope,
                },
        } => {
            let a = addr.octets();
            let ip = || {
                Cond::And(vec![
                    ethertype(ETH_P_IP),
                    by_dir(dir, prefix_eq(12, &a, prefix), prefix_eq(16, &a, prefix)),
                ])
            };
            let arp = || {
                Cond::And(vec![
                    ethertype(ETH_P_ARP),
                    by_dir(dir, prefix_eq(14, &a, prefix), prefix_eq(24, &a, prefix)),
                ])
            };
            match scope {
                V4Scope::Ip => ip(),
                V4Scope::Arp => arp(),
                V4Scope::IpOrArp => Cond::Or(vec![ip(), arp()]),
            }
        }
        Primitive::Net {
            dir,
            net: IpNet::V6 { addr, prefix },
        } => {
            let a = addr.octets();
            Cond::And(vec![
                ethertype(ETH_P_IPV6),
                by_dir(dir, prefix_eq(8, &a, prefix), prefix_eq(24, &a, prefix)),
            ])
        }
        Primitive::Port { proto, dir, lo, hi } => {
            let test = if lo == hi {
                Test::Eq(u32::from(lo))
            } else {
                Test::Range(u32::from(lo), u32::from(hi))
            };
            let protos = proto.protocols();
            let v4 = Cond::And(vec![
                ethertype(ETH_P_IP),
                one_of(Base::L3, 9, protos),
                // Not a later fragment: offset bits zero.
                Cond::Atom(Atom::Field {
                    base: Base::L3,
                    off: 6,
                    size: 2,
                    mask: 0x1fff,
                    test: Test::Eq(0),
                }),
                by_dir(
                    dir,
                    field(Base::L4v4, 0, 2, test),
                    field(Base::L4v4, 2, 2, test),
                ),
            ]);
            let v6 = Cond::And(vec![
                ethertype(ETH_P_IPV6),
                one_of(Base::L3, 6, protos),
                by_dir(
                    dir,
                    field(Base::L4v6, 0, 2, test),
                    field(Base::L4v6, 2, 2, test),
                ),
            ]);
            Cond::Or(vec![v4, v6])
        }
        Primitive::Len { op, value } => Cond::Atom(Atom::Len(op, value)),
    }
}

/// Lowers an expression.
pub(crate) fn lower(e: &Expr) -> Cond {
    match e {
        Expr::Prim(p) => primitive(p),
        Expr::Not(e) => Cond::Not(Box::new(lower(e))),
        Expr::And(a, b) => Cond::And(vec![lower(a), lower(b)]),
        Expr::Or(a, b) => Cond::Or(vec![lower(a), lower(b)]),
    }
}

/// A formula after constant folding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Folded {
    /// Always true or always false.
    Const(bool),
    /// Depends on the packet.
    Cond(Cond),
}

/// Folds atoms whose value `konst` knows (e.g. `len >= 0`) into the
/// formula. The XDP verifier refuses unreachable instructions, so a back end
/// must not emit code for a branch that can never be taken.
pub(crate) fn fold(c: &Cond, konst: &impl Fn(&Atom) -> Option<bool>) -> Folded {
    match c {
        Cond::Atom(a) => match konst(a) {
            Some(v) => Folded::Const(v),
            None => Folded::Cond(c.clone()),
        },
        Cond::Not(inner) => match fold(inner, konst) {
            Folded::Const(v) => Folded::Const(!v),
            Folded::Cond(c) => Folded::Cond(Cond::Not(Box::new(c))),
        },
        Cond::And(cs) | Cond::Or(cs) => {
            let is_and = matches!(c, Cond::And(_));
            let mut kept = Vec::new();
            for c in cs {
                match fold(c, konst) {
                    // `false and …` / `true or …`: decided.
                    Folded::Const(v) if v != is_and => return Folded::Const(v),
                    // `true and x` is `x`; `false or x` is `x`.
                    Folded::Const(_) => {}
                    Folded::Cond(c) => kept.push(c),
                }
            }
            match kept.len() {
                0 => Folded::Const(is_and),
                1 => Folded::Cond(kept.pop().unwrap_or(Cond::And(Vec::new()))),
                _ if is_and => Folded::Cond(Cond::And(kept)),
                _ => Folded::Cond(Cond::Or(kept)),
            }
        }
    }
}

/// The `len` comparisons that hold for every frame, or for none, when
/// frames are at most `max` bytes long.
pub(crate) fn len_const(a: &Atom, max: u64) -> Option<bool> {
    let Atom::Len(op, v) = *a else { return None };
    let v = u64::from(v);
    match op {
        CmpOp::Ge if v == 0 => Some(true),
        CmpOp::Lt if v == 0 => Some(false),
        CmpOp::Ge | CmpOp::Eq if v > max => Some(false),
        CmpOp::Gt if v >= max => Some(false),
        CmpOp::Lt | CmpOp::Ne if v > max => Some(true),
        CmpOp::Le if v >= max => Some(true),
        _ => None,
    }
}

/// What a back end provides to [`gen`].
pub(crate) trait Emit {
    /// A jump target.
    type Label: Copy;
    /// A new, unbound label.
    fn new_label(&mut self) -> Self::Label;
    /// Binds a label to the next instruction.
    fn bind(&mut self, l: Self::Label);
    /// Code for one atom: jumps to `t` when it holds, to `f` otherwise.
    fn atom(&mut self, a: &Atom, t: Self::Label, f: Self::Label);
}

/// Short-circuit code for `c`: control reaches `t` when it holds, `f`
/// otherwise. Every jump goes forward.
pub(crate) fn gen<E: Emit>(e: &mut E, c: &Cond, t: E::Label, f: E::Label) {
    match c {
        Cond::Atom(a) => e.atom(a, t, f),
        Cond::Not(c) => gen(e, c, f, t),
        Cond::And(cs) | Cond::Or(cs) => {
            let is_and = matches!(c, Cond::And(_));
            let n = cs.len();
            if n == 0 {
                // Empty conjunction is true, empty disjunction false.
                let to = if is_and { t } else { f };
                let l = e.new_label();
                e.atom(&Atom::Len(CmpOp::Ge, 0), to, l);
                e.bind(l);
                return;
            }
            for (i, c) in cs.iter().enumerate() {
                if i + 1 == n {
                    gen(e, c, t, f);
                } else {
                    let next = e.new_label();
                    if is_and {
                        gen(e, c, next, f);
                    } else {
                        gen(e, c, t, next);
                    }
                    e.bind(next);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_cover_the_prefix_word_by_word() {
        let c = prefix_eq(
            8,
            &[
                0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            36,
        );
        let Cond::And(parts) = c else { panic!() };
        let masks: Vec<u32> = parts
            .iter()
            .map(|p| match p {
                Cond::Atom(Atom::Field { mask, .. }) => *mask,
                _ => panic!(),
            })
            .collect();
        assert_eq!(masks, [u32::MAX, 0xf000_0000, 0, 0]);
        let Cond::Atom(Atom::Field { test, .. }) = parts[1] else {
            panic!()
        };
        assert_eq!(test, Test::Eq(0xf000_0000));
    }

    #[test]
    fn folding_removes_constant_atoms() {
        let f = |s: &str| {
            fold(
                &lower(
                    &crate::filter::Filter::parse(s)
                        .unwrap()
                        .expr()
                        .unwrap()
                        .clone(),
                ),
                &|a| len_const(a, 0xffff),
            )
        };
        assert_eq!(f("len >= 0"), Folded::Const(true));
        assert_eq!(f("len > 70000 or len < 0"), Folded::Const(false));
        assert_eq!(f("not len > 65535"), Folded::Const(true));
        assert_eq!(f("tcp and len >= 0"), f("tcp"));
        assert_eq!(f("tcp or len >= 0"), Folded::Const(true));
        assert!(matches!(f("len == 0"), Folded::Cond(_)));
    }

    #[test]
    fn mac_is_two_loads() {
        let c = bytes_eq(Base::Frame, 6, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            c,
            Cond::And(vec![
                field(Base::Frame, 6, 4, Test::Eq(0x0102_0304)),
                field(Base::Frame, 10, 2, Test::Eq(0x0506)),
            ])
        );
    }
}
