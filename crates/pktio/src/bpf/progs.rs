//! Ready-made XDP programs, generated with [`Asm`]. Each returns a [`Code`]
//! to load with [`super::Program::load_xdp`]; the doc of each says which
//! maps go in which slot.
//!
//! | generator | maps (slot 0) | does |
//! |---|---|---|
//! | [`xsk_redirect`] | [`super::XskMap`] | each packet to the socket of its receive queue, else `XDP_PASS` |
//! | [`xsk_redirect_all`] | [`super::XskMap`] | every packet to one socket, else `XDP_PASS` |
//! | [`xdp_pass`], [`xdp_drop`], [`xdp_tx`], [`xdp_return`] | none | one fixed verdict |
//! | [`count_then`] | [`super::PerCpuArray`] | counts packets in entry 0, then a fixed verdict |

use super::asm::{Asm, Code};
use super::insn::{AluOp, Helper, JmpOp, Reg::*, Size};
use super::prog::XdpAction;

/// Offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// Assembles a program that has no labels, or whose labels are all bound
/// by construction: that cannot fail.
fn fixed(a: Asm, name: &str) -> Code {
    match a.finish() {
        Ok(code) => code.with_name(name),
        // The generators below bind every label they use, before an
        // instruction, with short jumps; their unit tests assemble each one.
        Err(e) => unreachable!("built-in program {name} does not assemble: {e}"),
    }
}

/// The AF_XDP steering program: the equivalent of libxdp's default program,
///
/// ```c
/// return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
/// ```
///
/// A packet received on queue *q* goes to the socket in slot *q* of the
/// XSKMAP in map slot 0; if that slot is empty (or *q* ≥ the map size) the
/// packet continues to the network stack. Needs kernel 5.3 for the
/// fallback action in `bpf_redirect_map`'s flags.
pub fn xsk_redirect() -> Code {
    let mut a = Asm::new();
    a.ldx_mem(Size::W, R2, R1, XDP_MD_RX_QUEUE_INDEX)
        .ld_map_fd(R1, 0)
        .mov64_imm(R3, XdpAction::Pass.code() as i32)
        .call(Helper::REDIRECT_MAP)
        .exit();
    fixed(a, "pktio_xsk")
}

/// Every packet, whatever its receive queue, to the socket in slot `key` of
/// the XSKMAP in map slot 0; `XDP_PASS` while that slot is empty. For a
/// caller that wants one socket for the whole interface (note that an
/// AF_XDP socket only receives from the queue it is bound to: packets
/// arriving on other queues are dropped by the kernel's redirect).
pub fn xsk_redirect_all(key: u32) -> Code {
    let mut a = Asm::new();
    a.ld_map_fd(R1, 0)
        .mov32_imm(R2, key as i32)
        .mov64_imm(R3, XdpAction::Pass.code() as i32)
        .call(Helper::REDIRECT_MAP)
        .exit();
    fixed(a, "pktio_xsk_all")
}

/// `return action;` — no maps.
pub fn xdp_return(action: XdpAction) -> Code {
    let mut a = Asm::new();
    a.mov64_imm(R0, action.code() as i32).exit();
    let name = match action {
        XdpAction::Aborted => "pktio_aborted",
        XdpAction::Drop => "pktio_drop",
        XdpAction::Pass => "pktio_pass",
        XdpAction::Tx => "pktio_tx",
        XdpAction::Redirect => "pktio_redirect",
    };
    fixed(a, name)
}

/// `return XDP_PASS;` Attached to a veth, it enables the veth's NAPI (so it
/// can receive frames sent with `ndo_xdp_xmit`, e.g. by
/// [`super::Program::run_live_frames`] on its peer) without changing what
/// the stack sees.
pub fn xdp_pass() -> Code {
    xdp_return(XdpAction::Pass)
}

/// `return XDP_DROP;` The cheapest possible receive: the ceiling for
/// packets per second on an interface.
pub fn xdp_drop() -> Code {
    xdp_return(XdpAction::Drop)
}

/// `return XDP_TX;` Attached, it bounces every packet back out of the
/// interface; run with [`super::Program::run_live_frames`], it transmits
/// copies of a frame out of an interface (the xdp-trafficgen technique).
pub fn xdp_tx() -> Code {
    xdp_return(XdpAction::Tx)
}

/// Counts every packet in entry 0 of the per-CPU `u64` array in map slot 0
/// ([`super::PerCpuArray`]), then returns `action`:
///
/// ```c
/// __u32 key = 0;
/// __u64 *n = bpf_map_lookup_elem(&counters, &key);
/// if (n) *n += 1;
/// return action;
/// ```
pub fn count_then(action: XdpAction) -> Code {
    let mut a = Asm::new();
    let out = a.label();
    a.st_mem(Size::W, R10, -4, 0) // key = 0 on the stack
        .mov64_reg(R2, R10)
        .alu64_imm(AluOp::Add, R2, -4) // r2 = &key
        .ld_map_fd(R1, 0)
        .call(Helper::MAP_LOOKUP_ELEM)
        .jmp_imm(JmpOp::Eq, R0, 0, out) // no entry: skip the count
        .ldx_mem(Size::DW, R1, R0, 0)
        .alu64_imm(AluOp::Add, R1, 1)
        .stx_mem(Size::DW, R0, R1, 0) // per-CPU value: no atomic needed
        .bind(out)
        .mov64_imm(R0, action.code() as i32)
        .exit();
    fixed(a, "pktio_count")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(code: &Code) -> String {
        format!(
            "; {} ({} insns)\n{}",
            code.name(),
            code.len(),
            code.listing()
        )
    }

    #[test]
    fn xsk_redirect_listing() {
        let code = xsk_redirect();
        assert_eq!(code.map_slots(), 1);
        insta::assert_snapshot!(listing(&code));
    }

    #[test]
    fn xsk_redirect_all_listing() {
        let code = xsk_redirect_all(3);
        assert_eq!(code.map_slots(), 1);
        insta::assert_snapshot!(listing(&code));
        // Keys above i32::MAX are zero-extended by the 32-bit move.
        let high = xsk_redirect_all(u32::MAX);
        assert_eq!(high.insns()[2].imm as u32, u32::MAX);
    }

    #[test]
    fn fixed_verdict_listings() {
        let all = [xdp_pass(), xdp_drop(), xdp_tx()]
            .iter()
            .map(listing)
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(all);
        for code in [xdp_pass(), xdp_drop(), xdp_tx()] {
            assert_eq!(code.map_slots(), 0);
        }
    }

    #[test]
    fn count_then_listing() {
        let code = count_then(XdpAction::Drop);
        assert_eq!(code.map_slots(), 1);
        insta::assert_snapshot!(listing(&code));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn xsk_redirect_is_the_verified_hand_assembly() {
        // Byte for byte the program that loaded and steered traffic in the
        // feasibility check (shared/lab/afxdp-from-rust-notes.md), with the
        // map fd placeholder (slot 0) where the fd goes.
        assert_eq!(
            xsk_redirect().to_bytes(),
            [
                0x61, 0x12, 0x10, 0, 0, 0, 0, 0, // r2 = *(u32 *)(r1 + 16)
                0x18, 0x11, 0, 0, 0, 0, 0, 0, // r1 = map_fd[0] ll
                0, 0, 0, 0, 0, 0, 0, 0, //
                0xb7, 0x03, 0, 0, 2, 0, 0, 0, // r3 = 2
                0x85, 0, 0, 0, 51, 0, 0, 0, // call bpf_redirect_map#51
                0x95, 0, 0, 0, 0, 0, 0, 0, // exit
            ]
        );
    }
}
