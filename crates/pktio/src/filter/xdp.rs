//! Filter → eBPF: an XDP program that steers matching packets into the
//! AF_XDP socket of their receive queue and lets everything else continue
//! into the kernel.
//!
//! ```c
//! // roughly what it generates, for `udp dst port 4242`
//! int filter(struct xdp_md *ctx) {
//!     void *data = ctx->data, *end = ctx->data_end;
//!     if (data + 14 > end) return XDP_PASS;       // a load past the end: miss
//!     if (ntohs(*(u16 *)(data + 12)) == 0x0800) {
//!         if (data + 24 > end) return XDP_PASS;
//!         if (*(u8 *)(data + 23) != 17) return XDP_PASS;
//!         // … not a later fragment, then the port behind the IHL
//!     } else …                                    // IPv6: next header, port at 54
//!     return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//! }
//! ```
//!
//! One block per node of the filter's decision graph (see the [module
//! docs](super)), in the graph's order, so every jump goes forward.
//! Registers: `r6` = data, `r7` = data_end; `r0`–`r3` are scratch. The
//! context pointer is spilled to the stack for the redirect at the end.
//! Every packet load is preceded by a comparison of `pointer + offset +
//! size` with `data_end`, which is what the verifier needs to accept it
//! (the IPv4 transport header is a bounded variable: IHL × 4 ≤ 60).

use super::ast::CmpOp;
use super::error::CompileError;
use super::lower::{full_mask, Atom, Base, Next, Test};
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

/// Frames are never longer than this in XDP (a page, or 64 KiB with
/// multi-buffer); `len` comparisons saturate here so packet pointer
/// arithmetic stays within what the verifier tracks.
const MAX_LEN: u32 = 0xffff;

const DATA: Reg = R6;
const END: Reg = R7;
/// The frame's length over all its buffers (`bpf_xdp_get_buff_len`), in a
/// program compiled for multi-buffer frames that compares `len`.
const LEN: Reg = R8;
const CTX_SPILL: i16 = -8;

struct Xdp {
    a: Asm,
    /// Where a load past the end of the frame goes.
    missed: Label,
    /// `len` is in [`LEN`] (multi-buffer), not `data_end - data`.
    len_in_reg: bool,
}

impl Xdp {
    /// `if (ptr + n > data_end) goto missed` (n ≥ 0).
    fn need(&mut self, ptr: Reg, n: u32) {
        self.a
            .mov64_reg(R1, ptr)
            .alu64_imm(AluOp::Add, R1, n as i32)
            .jmp_reg(JmpOp::Gt, R1, END, self.missed);
    }

    /// `len >= n`: to `t` if so, else to `f`.
    fn len_ge(&mut self, n: u64, t: Label, f: Label) {
        if n == 0 {
            self.a.ja(t);
        } else if self.len_in_reg {
            self.a
                .jmp_imm(JmpOp::Ge, LEN, n.min(i32::MAX as u64) as i32, t)
                .ja(f);
        } else {
            self.a
                .mov64_reg(R1, DATA)
                .alu64_imm(AluOp::Add, R1, n.min(u64::from(MAX_LEN)) as i32)
                .jmp_reg(JmpOp::Le, R1, END, t)
                .ja(f);
        }
    }

    fn node(&mut self, atom: Atom, t: Label, f: Label) {
        match atom {
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
            Atom::Field {
                base,
                off,
                size,
                mask,
                test,
            } => {
                let end = u32::from(off) + u32::from(size);
                let ptr = match base {
                    Base::Frame => DATA,
                    Base::L4v4(l3) => {
                        // r2 = data + l3 + 4 * (data[l3] & 0xf)
                        self.a
                            .mov64_reg(R2, DATA)
                            .alu64_imm(AluOp::Add, R2, i32::from(l3));
                        self.need(R2, 1);
                        self.a
                            .ldx_mem(Size::B, R3, R2, 0)
                            .alu64_imm(AluOp::And, R3, 0x0f)
                            .alu64_imm(AluOp::Lsh, R3, 2)
                            .alu64_reg(AluOp::Add, R2, R3);
                        R2
                    }
                };
                self.need(ptr, end);
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
                        // Comparisons the verifier knows the outcome of
                        // would leave code it refuses as unreachable.
                        if lo > 0 {
                            self.a.jmp32_imm(JmpOp::Lt, R0, lo as i32, f);
                        }
                        if hi < full_mask(size) {
                            self.a.jmp32_imm(JmpOp::Gt, R0, hi as i32, f);
                        }
                        self.a.ja(t);
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
/// The program is the filter's decision graph (see the [module
/// docs](super)); a load past the end of the frame is a miss for the whole
/// filter, as in classic BPF. XDP sees whole frames, so `len` is the
/// frame's length (linear data; comparisons saturate at 65535).
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
    compile_inner(filter, on_match, on_miss, false)
}

/// [`compile`] for a program loaded with `BPF_F_XDP_HAS_FRAGS`
/// ([`crate::bpf::LoadOptions::frags`]), which may see a frame spread
/// over several buffers. Direct packet access covers the first buffer
/// only: header loads are checked against its `data_end`, as in
/// [`compile`] (headers always sit in the first buffer, which holds
/// hundreds of bytes at least), but `len` is the whole frame's length,
/// `bpf_xdp_get_buff_len(ctx)`, read once at the start. Without a `len`
/// comparison in the filter the program is [`compile`]'s.
///
/// Minimum kernel: 5.18 (`BPF_F_XDP_HAS_FRAGS`, `bpf_xdp_get_buff_len`).
///
/// # Errors
/// As [`compile`].
pub fn compile_multi_buffer(
    filter: &Filter,
    on_match: OnMatch,
    on_miss: XdpAction,
) -> Result<Code, CompileError> {
    compile_inner(filter, on_match, on_miss, true)
}

fn compile_inner(
    filter: &Filter,
    on_match: OnMatch,
    on_miss: XdpAction,
    frags: bool,
) -> Result<Code, CompileError> {
    if filter.expr().is_none() && on_match == OnMatch::Redirect && on_miss == XdpAction::Pass {
        return Ok(progs::xsk_redirect());
    }
    let dag = filter.dag();
    let mut a = Asm::new();
    let matched = a.label();
    let missed = a.label();
    // The verifier refuses unreachable instructions: a constant filter gets
    // neither the graph nor the branch it never takes.
    match dag.constant() {
        Some(false) => {
            if on_match == OnMatch::Redirect {
                // Keep map slot 0, as the caller passes the XSKMAP.
                a.ld_map_fd(R1, 0);
            }
            a.mov64_imm(R0, on_miss.code() as i32).exit();
            return Ok(a.finish()?.with_name("pktio_filter"));
        }
        Some(true) => {
            if on_match == OnMatch::Redirect {
                a.stx_mem(Size::DW, R10, R1, CTX_SPILL);
            }
        }
        None => {
            if on_match == OnMatch::Redirect {
                a.stx_mem(Size::DW, R10, R1, CTX_SPILL);
            }
            let len_in_reg = frags && dag.nodes.iter().any(|n| matches!(n.atom, Atom::Len(..)));
            if len_in_reg {
                // r8 = bpf_xdp_get_buff_len(ctx); r1 = ctx again.
                a.mov64_reg(LEN, R1)
                    .call(Helper::XDP_GET_BUFF_LEN)
                    .mov64_reg(R1, LEN)
                    .mov64_reg(LEN, R0);
            }
            a.ldx_mem(Size::W, DATA, R1, XDP_MD_DATA)
                .ldx_mem(Size::W, END, R1, XDP_MD_DATA_END);
            let mut x = Xdp {
                a,
                missed,
                len_in_reg,
            };
            let labels: Vec<Label> = dag.nodes.iter().map(|_| x.a.label()).collect();
            let target = |n: Next| match n {
                Next::Accept => matched,
                Next::Reject => missed,
                Next::Node(i) => labels[i as usize],
            };
            if let Next::Node(i) = dag.root {
                if i != 0 {
                    x.a.ja(labels[i as usize]);
                }
            }
            for (i, n) in dag.nodes.iter().enumerate() {
                x.a.bind(labels[i]);
                x.node(n.atom, target(n.hi), target(n.lo));
            }
            a = x.a;
        }
    }
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
    if dag.constant().is_none() {
        a.bind(missed).mov64_imm(R0, on_miss.code() as i32).exit();
    }
    Ok(a.finish()?.with_name("pktio_filter"))
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
    fn multi_buffer_len_is_the_whole_frames() {
        // Without `len`, the frags-aware program is the plain one.
        let f = Filter::parse("udp dst port 4242").unwrap();
        assert_eq!(
            compile_multi_buffer(&f, OnMatch::Redirect, XdpAction::Pass).unwrap(),
            compile(&f, OnMatch::Redirect, XdpAction::Pass).unwrap()
        );
        // With it, the length comes from bpf_xdp_get_buff_len (all
        // buffers), not data_end - data (the first buffer).
        let f = Filter::parse("udp and greater 5000").unwrap();
        let plain = compile(&f, OnMatch::Redirect, XdpAction::Pass).unwrap();
        let mb = compile_multi_buffer(&f, OnMatch::Redirect, XdpAction::Pass).unwrap();
        assert!(!plain.listing().to_string().contains("xdp_get_buff_len"));
        let listing = mb.listing().to_string();
        assert!(listing.contains("xdp_get_buff_len"), "{listing}");
        assert!(listing.contains("5000"), "{listing}");
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
