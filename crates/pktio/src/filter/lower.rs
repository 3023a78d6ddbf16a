//! The filter's decision graph: what the evaluator walks and the compilers
//! emit, so the three cannot drift apart.
//!
//! A filter is first *lowered* to a formula of atoms, each atom one load of
//! a packet field and one comparison, in the order libpcap's code generator
//! (`gencode.c`) tests them. The formula is then turned into a reduced
//! decision graph ([`Dag`]), as libpcap's optimizer does with its code:
//!
//! - an atom whose outcome is known on the way to it (the same field was
//!   compared with the same value before, or found equal to another value)
//!   is not tested again;
//! - a test both of whose outcomes lead to the same place is dropped, load
//!   and all (`ip or not ip` reads nothing and accepts every frame, as
//!   `tcpdump -d` shows).
//!
//! Which loads a packet goes through matters because, as in classic BPF, a
//! load beyond the captured bytes rejects the packet outright, whatever the
//! rest of the filter says (even under `not`).
//!
//! Offsets are fixed when the filter is lowered: the network header is at
//! 14, plus 4 for every `vlan` primitive written before (libpcap's
//! `off_linkpl` / `off_linktype`). Only the IPv4 transport header moves at
//! run time (IHL × 4).

use super::ast::*;

/// Where a field's offset counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Base {
    /// The start of the frame.
    Frame,
    /// The IPv4 transport header of an IPv4 header at this frame offset:
    /// `l3 + 4 × (frame[l3] & 0xf)` (libpcap's `ldxb 4*([l3]&0xf)`).
    L4v4(u16),
}

/// A comparison of a loaded (and masked) field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Test {
    /// `== v`
    Eq(u32),
    /// `lo <= field <= hi`
    Range(u32, u32),
}

impl Test {
    pub(crate) fn holds(self, v: u32) -> bool {
        match self {
            Test::Eq(k) => v == k,
            Test::Range(lo, hi) => (lo..=hi).contains(&v),
        }
    }
}

/// One test the generated code makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Atom {
    /// The packet's length on the wire compared with a number.
    Len(CmpOp, u32),
    /// `(field & mask)` passes `test`. A field not in the captured bytes
    /// rejects the packet.
    Field {
        /// Where `off` counts from.
        base: Base,
        /// Offset from `base`.
        off: u16,
        /// 1, 2 or 4 bytes, big-endian.
        size: u8,
        /// Applied before the test (all ones: no mask; 0: nothing to load).
        mask: u32,
        /// The comparison.
        test: Test,
    },
}

/// What two atoms must share to test the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Value {
    Len,
    Field(Base, u16, u8, u32),
}

impl Atom {
    fn value(&self) -> Value {
        match *self {
            Atom::Len(..) => Value::Len,
            Atom::Field {
                base,
                off,
                size,
                mask,
                ..
            } => Value::Field(base, off, size, mask),
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// libpcap's `Q_OR` tests the source first, `Q_AND` too.
fn by_dir(dir: Dir, src: Cond, dst: Cond) -> Cond {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::Either => Cond::Or(vec![src, dst]),
        Dir::Both => Cond::And(vec![src, dst]),
    }
}

fn field(base: Base, off: u16, size: u8, test: Test) -> Cond {
    masked(base, off, size, full_mask(size), test)
}

fn masked(base: Base, off: u16, size: u8, mask: u32, test: Test) -> Cond {
    Cond::Atom(Atom::Field {
        base,
        off,
        size,
        mask,
        test,
    })
}

fn eq(off: u16, size: u8, v: u32) -> Cond {
    field(Base::Frame, off, size, Test::Eq(v))
}

/// A MAC address as libpcap's `gen_bcmp` compares it: the last four bytes
/// first, then the first two.
fn mac_eq(off: u16, mac: &[u8; 6]) -> Cond {
    Cond::And(vec![
        eq(
            off + 2,
            4,
            u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]),
        ),
        eq(off, 2, u32::from(u16::from_be_bytes([mac[0], mac[1]]))),
    ])
}

/// An address under a prefix, word by word from the first; a word the
/// prefix does not reach is not loaded (libpcap leaves it out, or its
/// optimizer folds `and #0` away).
fn prefix_eq(off: u16, addr: &[u8], prefix: u8) -> Cond {
    let words = addr.len() / 4;
    let mut parts = Vec::with_capacity(words);
    for w in 0..words {
        let bits_before = 32 * w as u32;
        let p = u32::from(prefix).saturating_sub(bits_before).min(32);
        if p == 0 {
            continue;
        }
        let mask = u32::MAX << (32 - p);
        let v = u32::from_be_bytes([
            addr[4 * w],
            addr[4 * w + 1],
            addr[4 * w + 2],
            addr[4 * w + 3],
        ]);
        parts.push(masked(
            Base::Frame,
            off + 4 * w as u16,
            4,
            mask,
            Test::Eq(v & mask),
        ));
    }
    and(parts)
}

/// EtherTypes libpcap's `vlan` accepts as a tag: 802.1Q, 802.1ad, and the
/// pre-standard QinQ 0x9100.
pub(crate) const VLAN_TPIDS: [u16; 3] = [ETH_P_8021Q, ETH_P_8021AD, 0x9100];

/// Lowers one primitive, at `shift` bytes of VLAN tags (4 per `vlan`
/// before it).
fn primitive(p: &Primitive, shift: u16) -> Cond {
    let lt = 12 + shift; // the EtherType field
    let l3 = 14 + shift; // the network header
    let etype = |t: u16| eq(lt, 2, u32::from(t));
    let v6_next = |proto: u8| eq(l3 + 6, 1, u32::from(proto));
    match *p {
        Primitive::Ether { dir, mac } => by_dir(dir, mac_eq(6, &mac), mac_eq(0, &mac)),
        Primitive::Vlan(id) => {
            let tpid = Cond::Or(VLAN_TPIDS.iter().map(|&t| etype(t)).collect());
            match id {
                None => tpid,
                Some(id) => Cond::And(vec![
                    tpid,
                    masked(Base::Frame, l3, 2, 0x0fff, Test::Eq(u32::from(id))),
                ]),
            }
        }
        Primitive::EtherType(t) => etype(t),
        Primitive::Proto { family, proto } => {
            let v4 = Cond::And(vec![etype(ETH_P_IP), eq(l3 + 9, 1, u32::from(proto))]);
            // libpcap also looks behind one fragment header (44).
            let v6 = Cond::And(vec![
                etype(ETH_P_IPV6),
                Cond::Or(vec![
                    v6_next(proto),
                    Cond::And(vec![v6_next(44), eq(l3 + 40, 1, u32::from(proto))]),
                ]),
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
                    etype(ETH_P_IP),
                    by_dir(
                        dir,
                        prefix_eq(l3 + 12, &a, prefix),
                        prefix_eq(l3 + 16, &a, prefix),
                    ),
                ])
            };
            // ARP and RARP: sender and target protocol addresses.
            let arp = |t: u16| {
                Cond::And(vec![
                    etype(t),
                    by_dir(
                        dir,
                        prefix_eq(l3 + 14, &a, prefix),
                        prefix_eq(l3 + 24, &a, prefix),
                    ),
                ])
            };
            match scope {
                V4Scope::Ip => ip(),
                V4Scope::Arp => arp(ETH_P_ARP),
                V4Scope::IpOrArp => Cond::Or(vec![ip(), arp(ETH_P_ARP), arp(ETH_P_RARP)]),
            }
        }
        Primitive::Net {
            dir,
            net: IpNet::V6 { addr, prefix },
        } => {
            let a = addr.octets();
            Cond::And(vec![
                etype(ETH_P_IPV6),
                by_dir(
                    dir,
                    prefix_eq(l3 + 8, &a, prefix),
                    prefix_eq(l3 + 24, &a, prefix),
                ),
            ])
        }
        Primitive::Port { proto, dir, lo, hi } => {
            let test = if lo == hi {
                Test::Eq(u32::from(lo))
            } else {
                Test::Range(u32::from(lo), u32::from(hi))
            };
            let ports = |base: Base, at: u16| {
                by_dir(dir, field(base, at, 2, test), field(base, at + 2, 2, test))
            };
            let v4 = Cond::And(vec![
                etype(ETH_P_IP),
                Cond::Or(
                    proto
                        .protocols()
                        .iter()
                        .map(|&p| {
                            Cond::And(vec![
                                eq(l3 + 9, 1, u32::from(p)),
                                // Not a later fragment: offset bits zero.
                                masked(Base::Frame, l3 + 6, 2, 0x1fff, Test::Eq(0)),
                                ports(Base::L4v4(l3), 0),
                            ])
                        })
                        .collect(),
                ),
            ]);
            // IPv6: the fixed header's next header only.
            let v6 = Cond::And(vec![
                etype(ETH_P_IPV6),
                Cond::Or(
                    proto
                        .protocols()
                        .iter()
                        .map(|&p| Cond::And(vec![v6_next(p), ports(Base::Frame, l3 + 40)]))
                        .collect(),
                ),
            ]);
            Cond::Or(vec![v4, v6])
        }
        Primitive::Len { op, value } => Cond::Atom(Atom::Len(op, value)),
    }
}

/// Lowers an expression; `shift` counts the `vlan` primitives met so far,
/// in the order they are written (×4 bytes).
fn lower_at(e: &Expr, shift: &mut u16) -> Cond {
    match e {
        Expr::Prim(p) => {
            let c = primitive(p, *shift);
            if matches!(p, Primitive::Vlan(_)) {
                *shift = shift.saturating_add(4);
            }
            c
        }
        Expr::Not(e) => Cond::Not(Box::new(lower_at(e, shift))),
        Expr::And(a, b) => {
            let a = lower_at(a, shift);
            Cond::And(vec![a, lower_at(b, shift)])
        }
        Expr::Or(a, b) => {
            let a = lower_at(a, shift);
            Cond::Or(vec![a, lower_at(b, shift)])
        }
    }
}

/// Lowers an expression.
pub(crate) fn lower(e: &Expr) -> Cond {
    lower_at(e, &mut 0)
}

/// The `len` comparisons that hold for every packet, or for none, when
/// packets are at most `max` bytes long; and fields masked to nothing.
pub(crate) fn const_atom(a: &Atom, max: u64) -> Option<bool> {
    match *a {
        Atom::Field { mask: 0, test, .. } => Some(test.holds(0)),
        Atom::Field { .. } => None,
        Atom::Len(op, v) => {
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
    }
}

/// The longest packet: pcap's lengths are 32-bit (`len` comparisons beyond
/// it are constant).
pub(crate) const MAX_LEN: u64 = u32::MAX as u64;

/// Where a test leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Next {
    /// The packet matches.
    Accept,
    /// It does not.
    Reject,
    /// Test node `i` of [`Dag::nodes`].
    Node(u32),
}

/// One test: to `hi` when it holds, to `lo` otherwise (and a load beyond
/// the captured bytes rejects).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Node {
    pub(crate) atom: Atom,
    pub(crate) hi: Next,
    pub(crate) lo: Next,
}

/// A reduced decision graph. Nodes are in topological order: every edge
/// goes from a node to a later one, so code emitted in this order only
/// jumps forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dag {
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: Next,
}

/// The graph under construction: nodes as created, children before
/// parents, so every edge goes from a higher index to a lower one.
struct Builder {
    nodes: Vec<Node>,
}

/// Facts known on the way to a node: tests and their outcomes.
type Facts = Vec<(Atom, bool)>;

impl Builder {
    fn mk(&mut self, atom: Atom, hi: Next, lo: Next) -> Next {
        self.nodes.push(Node { atom, hi, lo });
        Next::Node(self.nodes.len() as u32 - 1)
    }

    /// What the facts say about `a`: the same test made before, or the same
    /// value found equal to another constant (libpcap's `fold_edge`).
    fn decide(a: &Atom, known: &[(Atom, bool)]) -> Option<bool> {
        if let Some(v) = const_atom(a, MAX_LEN) {
            return Some(v);
        }
        let mine = a.value();
        for (k, v) in known {
            if k == a {
                return Some(*v);
            }
        }
        if let Atom::Field {
            test: Test::Eq(want),
            ..
        }
        | Atom::Len(CmpOp::Eq, want) = *a
        {
            for (k, v) in known {
                let other = match *k {
                    Atom::Field {
                        test: Test::Eq(o), ..
                    }
                    | Atom::Len(CmpOp::Eq, o) => o,
                    _ => continue,
                };
                if *v && k.value() == mine && other != want {
                    return Some(false);
                }
            }
        }
        None
    }

    /// The short-circuit graph: every atom where it is written, as
    /// libpcap's code generator lays out its blocks.
    fn plain(&mut self, c: &Cond, t: Next, f: Next) -> Next {
        match c {
            Cond::Atom(a) => match const_atom(a, MAX_LEN) {
                Some(true) => t,
                Some(false) => f,
                None => self.mk(*a, t, f),
            },
            Cond::Not(c) => self.plain(c, f, t),
            Cond::And(cs) => cs.iter().rev().fold(t, |t, c| self.plain(c, t, f)),
            Cond::Or(cs) => cs.iter().rev().fold(f, |f, c| self.plain(c, t, f)),
        }
    }

    /// libpcap's branch optimizations (`opt_j`, `opt_root` in optimize.c),
    /// to a fixed point: an edge into a test whose outcome the facts on
    /// every path to the edge decide goes straight to that outcome; an
    /// edge into a test whose two outcomes lead to the same place skips
    /// it. The tests skipped are not made, so their loads are not either,
    /// except the very first test's: libpcap keeps the root block's loads
    /// unless the whole filter became a constant.
    fn optimize(&mut self, root: Next) -> Next {
        let Next::Node(r0) = root else { return root };
        loop {
            let n = self.nodes.len();
            let mut facts: Vec<Option<Facts>> = vec![None; n];
            facts[r0 as usize] = Some(Vec::new());
            for i in (0..n).rev() {
                let Some(f) = facts[i].clone() else { continue };
                let nd = self.nodes[i];
                for (child, o) in [(nd.hi, true), (nd.lo, false)] {
                    let Next::Node(c) = child else { continue };
                    let mut e = f.clone();
                    e.push((nd.atom, o));
                    let c = c as usize;
                    facts[c] = Some(match facts[c].take() {
                        None => e,
                        Some(old) => old.into_iter().filter(|x| e.contains(x)).collect(),
                    });
                }
            }
            let mut changed = false;
            for i in (0..n).rev() {
                let Some(f) = facts[i].clone() else { continue };
                for o in [true, false] {
                    let mut e = f.clone();
                    e.push((self.nodes[i].atom, o));
                    let start = if o {
                        self.nodes[i].hi
                    } else {
                        self.nodes[i].lo
                    };
                    let mut c = start;
                    while let Next::Node(ci) = c {
                        let nd = self.nodes[ci as usize];
                        if nd.hi == nd.lo {
                            c = nd.hi;
                            continue;
                        }
                        match Self::decide(&nd.atom, &e) {
                            Some(true) => c = nd.hi,
                            Some(false) => c = nd.lo,
                            None => break,
                        }
                    }
                    if c != start {
                        changed = true;
                        if o {
                            self.nodes[i].hi = c;
                        } else {
                            self.nodes[i].lo = c;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        // A test every value passes (`portrange 0-65535`) still loads its
        // field, but has one way out (XDP's verifier refuses code it can
        // tell is unreachable).
        for nd in &mut self.nodes {
            if let Atom::Field {
                mask,
                test: Test::Range(0, hi),
                ..
            } = nd.atom
            {
                if hi >= mask {
                    nd.lo = nd.hi;
                }
            }
        }
        let mut r = root;
        while let Next::Node(i) = r {
            let nd = self.nodes[i as usize];
            if nd.hi != nd.lo {
                break;
            }
            r = nd.hi;
        }
        match r {
            Next::Node(i) if i != r0 => {
                // The first test is gone but its load stays: a node whose
                // two outcomes are the same.
                let atom = self.nodes[r0 as usize].atom;
                self.nodes.push(Node { atom, hi: r, lo: r });
                Next::Node(self.nodes.len() as u32 - 1)
            }
            r => r,
        }
    }
}

impl Dag {
    /// The graph of an expression (`None`: the empty filter).
    pub(crate) fn build(e: Option<&Expr>) -> Dag {
        let Some(e) = e else {
            return Dag {
                nodes: Vec::new(),
                root: Next::Accept,
            };
        };
        let c = lower(e);
        let mut b = Builder { nodes: Vec::new() };
        let root = b.plain(&c, Next::Accept, Next::Reject);
        let root = b.optimize(root);
        b.into_dag(root)
    }

    /// The constant verdict of a graph without tests.
    pub(crate) fn constant(&self) -> Option<bool> {
        match self.root {
            Next::Accept => Some(true),
            Next::Reject => Some(false),
            Next::Node(_) => None,
        }
    }
}

impl Builder {
    /// Keeps the nodes reachable from `root`, parents before children.
    fn into_dag(self, root: Next) -> Dag {
        let n = self.nodes.len();
        // Children were created before their parents, so reverse creation
        // order is a topological order; keep the reachable ones.
        let mut reach = vec![false; n];
        if let Next::Node(i) = root {
            reach[i as usize] = true;
        }
        for i in (0..n).rev() {
            if reach[i] {
                for nx in [self.nodes[i].hi, self.nodes[i].lo] {
                    if let Next::Node(j) = nx {
                        reach[j as usize] = true;
                    }
                }
            }
        }
        let mut new_index = vec![u32::MAX; n];
        let mut order = Vec::new();
        for i in (0..n).rev() {
            if reach[i] {
                new_index[i] = order.len() as u32;
                order.push(i);
            }
        }
        let map = |x: Next| match x {
            Next::Node(i) => Next::Node(new_index[i as usize]),
            other => other,
        };
        Dag {
            nodes: order
                .iter()
                .map(|&i| {
                    let nd = self.nodes[i];
                    Node {
                        atom: nd.atom,
                        hi: map(nd.hi),
                        lo: map(nd.lo),
                    }
                })
                .collect(),
            root: map(root),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(s: &str) -> Dag {
        Dag::build(crate::filter::Filter::parse(s).unwrap().expr())
    }

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
        assert_eq!(masks, [u32::MAX, 0xf000_0000]);
    }

    #[test]
    fn tautologies_and_contradictions_load_nothing() {
        assert_eq!(dag("ip or not ip").constant(), Some(true));
        assert_eq!(dag("tcp or not tcp").constant(), Some(true));
        assert_eq!(dag("len >= 0").constant(), Some(true));
        assert_eq!(dag("tcp port 1 and udp port 2").constant(), Some(false));
        assert_eq!(dag("ip and ip6").constant(), Some(false));
        assert_eq!(dag("tcp and len >= 0"), dag("tcp"));
        assert!(dag("len == 0").constant().is_none());
    }

    #[test]
    fn the_graph_is_as_small_as_tcpdumps_code() {
        // tcpdump -d 'ip6 proto 6': 5 tests.
        assert_eq!(dag("ip6 proto 6").nodes.len(), 4);
        // `vlan 5 and ip`: the three TPIDs, the VID, the EtherType at 16.
        let d = dag("vlan 5 and ip");
        assert_eq!(d.nodes.len(), 5);
        assert!(d.nodes.iter().any(|n| matches!(
            n.atom,
            Atom::Field {
                off: 16,
                test: Test::Eq(0x800),
                ..
            }
        )));
    }

    #[test]
    fn edges_go_forward() {
        let d = dag(
            "(tcp or udp) and (port 53 or portrange 100-200) and not vlan 3 and host 198.18.0.1",
        );
        for (i, n) in d.nodes.iter().enumerate() {
            for nx in [n.hi, n.lo] {
                if let Next::Node(j) = nx {
                    assert!(j as usize > i);
                }
            }
        }
        assert_eq!(d.root, Next::Node(0));
    }
}
