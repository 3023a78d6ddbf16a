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
//! | [`xsk_redirect_with`] | [`super::XskMap`], [`super::PerCpuArray`] if `max_len` | `xsk_redirect` plus a length limit and RX metadata |

use super::asm::{Asm, Code};
use super::btf::Btf;
use super::insn::{
    AluOp, Helper, Insn, JmpOp, Reg::*, Size, BPF_CALL, BPF_JMP, BPF_PSEUDO_KFUNC_CALL,
};
use super::prog::XdpAction;
use super::BpfError;

/// Offset of `data` in `struct xdp_md`.
const XDP_MD_DATA: i16 = 0;
/// Offset of `data_meta` in `struct xdp_md`.
const XDP_MD_DATA_META: i16 = 8;
/// Offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// Bytes of RX metadata [`xsk_redirect_with`] puts in front of a packet
/// (`bpf_xdp_adjust_meta(ctx, -32)`): in an AF_XDP frame they are the 32
/// bytes just before the packet data. Layout (native byte order):
///
/// | offset | type | field |
/// |---|---|---|
/// | 0 | u64 | RX timestamp (`bpf_xdp_metadata_rx_timestamp`) |
/// | 8 | u32 | RX hash (`bpf_xdp_metadata_rx_hash`) |
/// | 12 | u32 | RSS hash type (`enum xdp_rss_hash_type`) |
/// | 16 | i32 | the timestamp kfunc's return value (0, `-EOPNOTSUPP`, `-ENODATA`) |
/// | 20 | i32 | the hash kfunc's return value |
/// | 24 | u32 | packet length, all buffers (`bpf_xdp_get_buff_len`) |
/// | 28 | u32 | [`RX_META_MAGIC`] |
pub const RX_META_LEN: u32 = 32;

/// The last word of the RX metadata: marks it as written by this program.
pub const RX_META_MAGIC: u32 = 0x706b_6d64;

/// BTF ids of the XDP RX metadata kfuncs (kernel 6.3) in the running kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMetaKfuncs {
    /// `bpf_xdp_metadata_rx_timestamp(ctx, u64 *timestamp)`.
    pub rx_timestamp: u32,
    /// `bpf_xdp_metadata_rx_hash(ctx, u32 *hash, enum xdp_rss_hash_type *type)`.
    pub rx_hash: u32,
}

impl RxMetaKfuncs {
    /// Looks both kfuncs up in `btf`.
    ///
    /// # Errors
    /// [`BpfError::NoKfunc`] when one is missing (kernel before 6.3).
    pub fn from_btf(btf: &Btf) -> Result<RxMetaKfuncs, BpfError> {
        let id = |name: &'static str| {
            btf.func_id(name).ok_or(BpfError::NoKfunc {
                name,
                min_kernel: "6.3",
            })
        };
        Ok(RxMetaKfuncs {
            rx_timestamp: id("bpf_xdp_metadata_rx_timestamp")?,
            rx_hash: id("bpf_xdp_metadata_rx_hash")?,
        })
    }

    /// [`from_btf`](RxMetaKfuncs::from_btf) on the running kernel's BTF
    /// (`/sys/kernel/btf/vmlinux`).
    ///
    /// # Errors
    /// As [`Btf::vmlinux`] and [`from_btf`](RxMetaKfuncs::from_btf).
    pub fn vmlinux() -> Result<RxMetaKfuncs, BpfError> {
        RxMetaKfuncs::from_btf(&Btf::vmlinux()?)
    }
}

/// Options of [`xsk_redirect_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskRedirectOpts {
    /// Drop (`XDP_DROP`) packets longer than this many bytes, all buffers
    /// counted (`bpf_xdp_get_buff_len`, kernel 5.18), counting them in entry
    /// 0 of the [`super::PerCpuArray`] in map slot 1.
    pub max_len: Option<u32>,
    /// Ask the driver for the RX timestamp and hash and put them, with the
    /// kfuncs' answers, in [`RX_META_LEN`] bytes of metadata in front of
    /// the packet. The program must then be loaded device-bound
    /// ([`super::LoadOptions::dev_bound_ifindex`]) and attached in driver mode.
    pub rx_meta: Option<RxMetaKfuncs>,
}

/// A kfunc call: `call kfunc#id` (`BPF_PSEUDO_KFUNC_CALL`, BTF id of a
/// vmlinux function, `off` 0 = vmlinux).
fn kfunc_call(btf_id: u32) -> Insn {
    Insn::new(
        BPF_JMP | BPF_CALL,
        0,
        BPF_PSEUDO_KFUNC_CALL,
        0,
        btf_id as i32,
    )
}

/// The steering program with options: [`xsk_redirect`], plus
///
/// ```c
/// if (opts.max_len && bpf_xdp_get_buff_len(ctx) > max_len) {
///     counters[0]++;                       // map slot 1, per CPU
///     return XDP_DROP;
/// }
/// if (opts.rx_meta && bpf_xdp_adjust_meta(ctx, -32) == 0) {
///     struct meta *m = (void *)(long)ctx->data_meta;
///     if ((void *)(m + 1) <= (void *)(long)ctx->data) {
///         m->ts = 0; m->hash = 0; m->hash_type = 0;
///         m->ts_err = bpf_xdp_metadata_rx_timestamp(ctx, &m->ts);
///         m->hash_err = bpf_xdp_metadata_rx_hash(ctx, &m->hash, &m->hash_type);
///         m->len = bpf_xdp_get_buff_len(ctx);
///         m->magic = RX_META_MAGIC;
///     }
/// }
/// return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
/// ```
///
/// Maps: slot 0 the XSKMAP, slot 1 (only with `max_len`) a per-CPU array
/// of at least one `u64`. Load it with `BPF_F_XDP_HAS_FRAGS` for
/// multi-buffer sockets ([`super::LoadOptions::frags`]).
pub fn xsk_redirect_with(opts: &XskRedirectOpts) -> Code {
    let mut a = Asm::new();
    let redirect = a.label();
    let drop = a.label();
    a.mov64_reg(R6, R1);
    if let Some(max) = opts.max_len {
        a.call(Helper::XDP_GET_BUFF_LEN).jmp_imm(
            JmpOp::Gt,
            R0,
            max.min(i32::MAX as u32) as i32,
            drop,
        );
    }
    if let Some(k) = opts.rx_meta {
        a.mov64_reg(R1, R6)
            .mov64_imm(R2, -(RX_META_LEN as i32))
            .call(Helper::XDP_ADJUST_META)
            .jmp_imm(JmpOp::Ne, R0, 0, redirect)
            // Packet pointers are reloaded after adjust_meta.
            .ldx_mem(Size::W, R7, R6, XDP_MD_DATA_META)
            .ldx_mem(Size::W, R8, R6, XDP_MD_DATA)
            .mov64_reg(R1, R7)
            .alu64_imm(AluOp::Add, R1, RX_META_LEN as i32)
            .jmp_reg(JmpOp::Gt, R1, R8, redirect)
            .st_mem(Size::DW, R7, 0, 0)
            .st_mem(Size::W, R7, 8, 0)
            .st_mem(Size::W, R7, 12, 0)
            .mov64_reg(R1, R6)
            .mov64_reg(R2, R7)
            .insn(kfunc_call(k.rx_timestamp))
            .stx_mem(Size::W, R7, R0, 16)
            .mov64_reg(R1, R6)
            .mov64_reg(R2, R7)
            .alu64_imm(AluOp::Add, R2, 8)
            .mov64_reg(R3, R7)
            .alu64_imm(AluOp::Add, R3, 12)
            .insn(kfunc_call(k.rx_hash))
            .stx_mem(Size::W, R7, R0, 20)
            .mov64_reg(R1, R6)
            .call(Helper::XDP_GET_BUFF_LEN)
            .stx_mem(Size::W, R7, R0, 24)
            .st_mem(Size::W, R7, 28, RX_META_MAGIC as i32);
    }
    a.bind(redirect)
        .ldx_mem(Size::W, R2, R6, XDP_MD_RX_QUEUE_INDEX)
        .ld_map_fd(R1, 0)
        .mov64_imm(R3, XdpAction::Pass.code() as i32)
        .call(Helper::REDIRECT_MAP)
        .exit();
    if opts.max_len.is_some() {
        let out = a.label();
        a.bind(drop)
            .st_mem(Size::W, R10, -4, 0)
            .mov64_reg(R2, R10)
            .alu64_imm(AluOp::Add, R2, -4)
            .ld_map_fd(R1, 1)
            .call(Helper::MAP_LOOKUP_ELEM)
            .jmp_imm(JmpOp::Eq, R0, 0, out)
            .ldx_mem(Size::DW, R1, R0, 0)
            .alu64_imm(AluOp::Add, R1, 1)
            .stx_mem(Size::DW, R0, R1, 0)
            .bind(out)
            .mov64_imm(R0, XdpAction::Drop.code() as i32)
            .exit();
    }
    let name = match (opts.max_len.is_some(), opts.rx_meta.is_some()) {
        (false, false) => "pktio_xsk",
        (true, false) => "pktio_xsk_len",
        (false, true) => "pktio_xsk_meta",
        (true, true) => "pktio_xsk_lenmeta",
    };
    match a.finish() {
        Ok(code) => code.with_name(name),
        // An unbound `drop` label when max_len is None is never jumped to;
        // the assembler only checks labels that are used.
        Err(e) => unreachable!("built-in program {name} does not assemble: {e}"),
    }
}

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
    fn xsk_redirect_with_options_listing() {
        let plain = xsk_redirect_with(&XskRedirectOpts::default());
        assert_eq!(plain.map_slots(), 1);
        let limited = xsk_redirect_with(&XskRedirectOpts {
            max_len: Some(4000),
            rx_meta: None,
        });
        assert_eq!(limited.map_slots(), 2);
        let meta = xsk_redirect_with(&XskRedirectOpts {
            max_len: Some(9014),
            rx_meta: Some(RxMetaKfuncs {
                rx_timestamp: 1111,
                rx_hash: 2222,
            }),
        });
        assert_eq!(meta.map_slots(), 2);
        let kfuncs: Vec<i32> = meta
            .insns()
            .iter()
            .filter(|i| i.code == (BPF_JMP | BPF_CALL) && i.src() == BPF_PSEUDO_KFUNC_CALL)
            .map(|i| i.imm)
            .collect();
        assert_eq!(kfuncs, [1111, 2222]);
        insta::assert_snapshot!([plain, limited, meta]
            .iter()
            .map(listing)
            .collect::<Vec<_>>()
            .join("\n"));
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
