//! Filter → eBPF: an XDP program that steers matching packets into the
//! AF_XDP socket of their receive queue and lets everything else continue
//! into the kernel.
//!
//! ```c
//! // roughly what it generates
//! int filter(struct xdp_md *ctx) {
//!     void *data = ctx->data, *end = ctx->data_end;
//!     u32 etype = NONE, vlan = UNTAGGED, l3 = 14;
//!     if (data + 14 <= end) {
//!         u16 t = ntohs(*(u16 *)(data + 12));
//!         if (t == 0x8100 || t == 0x88a8) {
//!             vlan = TAG_UNKNOWN;
//!             if (data + 16 <= end) vlan = ntohs(*(u16 *)(data + 14));
//!             if (data + 18 <= end) { etype = ntohs(*(u16 *)(data + 16)); l3 = 18; }
//!         } else etype = t;
//!     }
//!     if (<the filter, every load after `if (p + n > end) goto miss`>)
//!         return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//!     return XDP_PASS;
//! }
//! ```
//!
//! Registers: `r6` = data, `r7` = data_end, `r8` = L3 offset (14 or 18),
//! `r9` = EtherType (or `0x10000` when the frame is too short to have one),
//! `r5` = the VLAN tag (`0x10000` untagged, `0x30000` tagged but cut short).
//! `r0`–`r4` are scratch. The context pointer is spilled to the stack for
//! the redirect at the end. Every packet load is preceded by a comparison of
//! `pointer + offset + size` with `data_end`, which is what the verifier
//! needs to accept it (the L3 and L4 offsets are bounded variables: 14 or
//! 18, plus IHL × 4 ≤ 60).

use super::ast::{CmpOp, ETH_P_8021AD, ETH_P_8021Q};
use super::error::CompileError;
use super::lower::{fold, full_mask, gen, len_const, lower, Atom, Base, Emit, Folded, Test};
use super::Filter;
use crate::bpf::insn::{AluOp, Helper, JmpOp, Reg, Reg::*, Size};
use crate::bpf::{progs, Asm, Code, Label, XdpAction};

/// What the program does with a packet the filter matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMatch {
    /// `bpf_redirect_map(map slot 0, ctx->rx_queue_index, XDP_PASS)`: into
    /// the AF_XDP socket of the packet's queue (an [`crate::bpf::XskMap`] in
    /// map slot 0), or on to the stack when that queue has no socket.
    Redirect,
    /// Return a fixed action (for tests with `BPF_PROG_TEST_RUN`, where a
    /// redirect to an empty map would look like a miss).
    Return(XdpAction),
}

/// `ctx->data`, `ctx->data_end`, `ctx->rx_queue_index` (`struct xdp_md`).
const XDP_MD_DATA: i16 = 0;
const XDP_MD_DATA_END: i16 = 4;
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// `r9` when the frame has no EtherType.
const ETYPE_NONE: i32 = 0x1_0000;
/// `r5` for an untagged frame.
const VLAN_NONE: i32 = 0x1_0000;
/// `r5` for a tagged frame whose TCI is cut off.
const VLAN_UNKNOWN: i32 = 0x3_0000;
/// Mask keeping the VLAN ID and the "no tag" bit of `r5`.
const VLAN_ID_MASK: i32 = 0x1_0fff;
/// Frames are never longer than this in XDP (a page, or 64 KiB with
/// multi-buffer); `len` comparisons saturate here so packet pointer
/// arithmetic stays within what the verifier tracks.
const MAX_LEN: u32 = 0xffff;

const DATA: Reg = R6;
const END: Reg = R7;
const L3: Reg = R8;
const ETYPE: Reg = R9;
const VLAN: Reg = R5;
const CTX_SPILL: i16 = -8;

struct Xdp {
    a: Asm,
}

impl Xdp {
    /// `if (data + n > data_end) goto f` (n ≥ 0).
    fn need(&mut self, ptr: Reg, n: u32, f: Label) {
        self.a
            .mov64_reg(R1, ptr)
            .alu64_imm(AluOp::Add, R1, n as i32)
            .jmp_reg(JmpOp::Gt, R1, END, f);
    }

    /// `len >= n`: to `t` if so, else to `f`.
    fn len_ge(&mut self, n: u64, t: Label, f: Label) {
        if n == 0 {
            self.a.ja(t);
        } else if n > u64::from(MAX_LEN) {
            self.a.ja(f);
        } else {
            self.a
                .mov64_reg(R1, DATA)
                .alu64_imm(AluOp::Add, R1, n as i32)
                .jmp_reg(JmpOp::Le, R1, END, t)
                .ja(f);
        }
    }
}

impl Emit for Xdp {
    type Label = Label;

    fn new_label(&mut self) -> Label {
        self.a.label()
    }

    fn bind(&mut self, l: Label) {
        self.a.bind(l);
    }

    fn atom(&mut self, atom: &Atom, t: Label, f: Label) {
        match *atom {
            Atom::Len(op, v) => {
                let v = u64::from(v);
                match op {
                    CmpOp::Ge => self.len_ge(v, t, f),
                    CmpOp::Gt => self.len_ge(v + 1, t, f),
                    CmpOp::Lt => self.len_ge(v, f, t),
                    CmpOp::Le => self.len_ge(v + 1, f, t),
                    CmpOp::Eq | CmpOp::Ne => {
                        let (yes, no) = if op == CmpOp::Eq { (t, f) } else { (f, t) };
                        let at_least = self.a.label();
                        self.len_ge(v, at_least, no);
                        self.a.bind(at_least);
                        self.len_ge(v + 1, no, yes);
                    }
                }
            }
            Atom::Tagged => {
                self.a.jmp_imm(JmpOp::Ne, VLAN, VLAN_NONE, t).ja(f);
            }
            Atom::VlanId(id) => {
                self.a
                    .mov64_reg(R0, VLAN)
                    .alu64_imm(AluOp::And, R0, VLAN_ID_MASK)
                    .jmp_imm(JmpOp::Eq, R0, i32::from(id), t)
                    .ja(f);
            }
            Atom::EtherType(et) => {
                self.a.jmp_imm(JmpOp::Eq, ETYPE, i32::from(et), t).ja(f);
            }
            Atom::Field {
                base,
                off,
                size,
                mask,
                test,
            } => {
                let end = u32::from(off) + u32::from(size);
                // r2 = the base pointer (or `data` itself).
                let (ptr, off) = match base {
                    Base::Frame => (DATA, off),
                    Base::L3 => {
                        self.a.mov64_reg(R2, DATA).alu64_reg(AluOp::Add, R2, L3);
                        (R2, off)
                    }
                    Base::L4v6 => {
                        self.a.mov64_reg(R2, DATA).alu64_reg(AluOp::Add, R2, L3);
                        (R2, off + 40)
                    }
                    Base::L4v4 => {
                        self.a.mov64_reg(R2, DATA).alu64_reg(AluOp::Add, R2, L3);
                        self.need(R2, 1, f);
                        self.a
                            .ldx_mem(Size::B, R3, R2, 0)
                            .alu64_imm(AluOp::And, R3, 0x0f)
                            .alu64_imm(AluOp::Lsh, R3, 2)
                            .alu64_reg(AluOp::Add, R2, R3);
                        (R2, off)
                    }
                };
                let end = if base == Base::L4v6 { end + 40 } else { end };
                self.need(ptr, end, f);
                if mask == 0 {
                    // Nothing to compare: the bytes being there is all.
                    self.a.ja(t);
                    return;
                }
                let sz = match size {
                    1 => Size::B,
                    2 => Size::H,
                    _ => Size::W,
                };
                self.a.ldx_mem(sz, R0, ptr, off as i16);
                match size {
                    2 => {
                        self.a.be16(R0);
                    }
                    4 => {
                        self.a.be32(R0);
                    }
                    _ => {}
                }
                if mask != full_mask(size) {
                    self.a.alu32_imm(AluOp::And, R0, mask as i32);
                }
                match test {
                    Test::Eq(v) => {
                        self.a.jmp32_imm(JmpOp::Eq, R0, v as i32, t).ja(f);
                    }
                    Test::Range(lo, hi) => {
                        self.a
                            .jmp32_imm(JmpOp::Lt, R0, lo as i32, f)
                            .jmp32_imm(JmpOp::Gt, R0, hi as i32, f)
                            .ja(t);
                    }
                }
            }
        }
    }
}

/// Compiles `filter` into an XDP program. Map slot 0 is the XSKMAP when
/// `on_match` is [`OnMatch::Redirect`] (none otherwise); a packet the filter
/// does not match gets `on_miss`. An empty filter matches everything: with
/// `Redirect` that is exactly [`progs::xsk_redirect`].
///
/// Minimum kernel: 5.3 (`bpf_redirect_map` with a fallback action, 32-bit
/// jumps).
///
/// # Errors
/// [`CompileError::Asm`] if the program is too large for the 16-bit jump
/// offsets (far beyond what the verifier would accept anyway).
pub fn compile(
    filter: &Filter,
    on_match: OnMatch,
    on_miss: XdpAction,
) -> Result<Code, CompileError> {
    if filter.expr().is_none() && on_match == OnMatch::Redirect && on_miss == XdpAction::Pass {
        return Ok(progs::xsk_redirect());
    }
    let folded = match filter.expr() {
        Some(e) => fold(&lower(e), &|a| len_const(a, u64::from(MAX_LEN))),
        None => Folded::Const(true),
    };
    let mut x = Xdp { a: Asm::new() };
    let matched = x.a.label();
    let missed = x.a.label();
    // The verifier refuses unreachable instructions: a constant filter gets
    // neither the prologue nor the branch it never takes.
    let cond = match folded {
        Folded::Const(true) => None,
        Folded::Const(false) => {
            if on_match == OnMatch::Redirect {
                // Keep map slot 0, as the caller passes the XSKMAP.
                x.a.ld_map_fd(R1, 0);
            }
            x.a.mov64_imm(R0, on_miss.code() as i32).exit();
            return Ok(x.a.finish()?.with_name("pktio_filter"));
        }
        Folded::Cond(c) => Some(c),
    };
    if let Some(c) = &cond {
        prologue(&mut x.a, on_match == OnMatch::Redirect);
        gen(&mut x, c, matched, missed);
    } else if on_match == OnMatch::Redirect {
        x.a.stx_mem(Size::DW, R10, R1, CTX_SPILL);
    }
    let mut a = x.a;
    a.bind(matched);
    match on_match {
        OnMatch::Redirect => {
            a.ldx_mem(Size::DW, R1, R10, CTX_SPILL)
                .ldx_mem(Size::W, R2, R1, XDP_MD_RX_QUEUE_INDEX)
                .ld_map_fd(R1, 0)
                .mov64_imm(R3, XdpAction::Pass.code() as i32)
                .call(Helper::REDIRECT_MAP)
                .exit();
        }
        OnMatch::Return(action) => {
            a.mov64_imm(R0, action.code() as i32).exit();
        }
    }
    if cond.is_some() {
        a.bind(missed).mov64_imm(R0, on_miss.code() as i32).exit();
    }
    Ok(a.finish()?.with_name("pktio_filter"))
}

fn prologue(a: &mut Asm, spill_ctx: bool) {
    let done = a.label();
    let tagged = a.label();
    if spill_ctx {
        a.stx_mem(Size::DW, R10, R1, CTX_SPILL);
    }
    a.ldx_mem(Size::W, DATA, R1, XDP_MD_DATA)
        .ldx_mem(Size::W, END, R1, XDP_MD_DATA_END)
        .mov64_imm(ETYPE, ETYPE_NONE)
        .mov64_imm(VLAN, VLAN_NONE)
        .mov64_imm(L3, 14);
    let need = |a: &mut Asm, n: i32| {
        a.mov64_reg(R0, DATA)
            .alu64_imm(AluOp::Add, R0, n)
            .jmp_reg(JmpOp::Gt, R0, END, done);
    };
    need(a, 14);
    a.ldx_mem(Size::H, R0, DATA, 12)
        .be16(R0)
        .jmp_imm(JmpOp::Eq, R0, i32::from(ETH_P_8021Q), tagged)
        .jmp_imm(JmpOp::Eq, R0, i32::from(ETH_P_8021AD), tagged)
        .mov64_reg(ETYPE, R0)
        .ja(done)
        .bind(tagged)
        .mov64_imm(VLAN, VLAN_UNKNOWN);
    need(a, 16);
    a.ldx_mem(Size::H, VLAN, DATA, 14).be16(VLAN);
    need(a, 18);
    a.ldx_mem(Size::H, ETYPE, DATA, 16)
        .be16(ETYPE)
        .mov64_imm(L3, 18)
        .bind(done);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(filter: &str) -> String {
        let f = Filter::parse(filter).unwrap();
        let code = compile(&f, OnMatch::Redirect, XdpAction::Pass).unwrap();
        format!(
            "; {filter}\n; {} ({} insns, {} map)\n{}",
            code.name(),
            code.len(),
            code.map_slots(),
            code.listing()
        )
    }

    #[test]
    fn empty_filter_is_the_plain_redirect() {
        let f = Filter::parse("").unwrap();
        assert_eq!(
            compile(&f, OnMatch::Redirect, XdpAction::Pass).unwrap(),
            progs::xsk_redirect()
        );
        // The test variant of an empty filter matches everything.
        let code = compile(&f, OnMatch::Return(XdpAction::Drop), XdpAction::Pass).unwrap();
        assert_eq!(code.map_slots(), 0);
    }

    #[test]
    fn listing_udp_dst_port() {
        insta::assert_snapshot!(listing("udp dst port 4242"));
    }

    #[test]
    fn listing_vlan_host() {
        insta::assert_snapshot!(listing("vlan 100 and host 198.18.0.1"));
    }

    #[test]
    fn listing_ip6_net_len() {
        insta::assert_snapshot!(listing("ip6 net 2001:db8::/32 and not len > 1000"));
    }

    #[test]
    fn test_variant_has_no_map() {
        let f = Filter::parse("tcp or arp").unwrap();
        let code = compile(&f, OnMatch::Return(XdpAction::Drop), XdpAction::Pass).unwrap();
        assert_eq!(code.map_slots(), 0);
        let code = compile(&f, OnMatch::Redirect, XdpAction::Pass).unwrap();
        assert_eq!(code.map_slots(), 1);
    }
}
