//! An eBPF assembler: builder methods named after the kernel's / libxdp's
//! instruction macros (`BPF_MOV64_IMM` → [`Asm::mov64_imm`], …), labels for
//! forward and backward jumps, and map-fd placeholders.
//!
//! Pure code: nothing here talks to the kernel. [`Asm::finish`] resolves the
//! labels and returns a [`Code`], which [`super::Program::load`] loads.
//!
//! # Map placeholders
//!
//! A program is usually written before its maps exist. [`Asm::ld_map_fd`]
//! therefore takes a *slot* number, not a file descriptor: it emits
//! `r = map_fd[slot] ll` (a 64-bit immediate load with
//! `src = BPF_PSEUDO_MAP_FD`) whose `imm` is the slot. At load time the
//! caller passes one map fd per slot and the loader writes the fds in.
//!
//! ```
//! use pktio::bpf::{Asm, Helper, JmpOp, Reg::*};
//!
//! let mut a = Asm::new();
//! let out = a.label();
//! a.ldx_mem(pktio::bpf::Size::W, R2, R1, 16) // r2 = ctx->rx_queue_index
//!     .jmp_imm(JmpOp::Gt, R2, 3, out)        // only queues 0..=3
//!     .ld_map_fd(R1, 0)                      // r1 = map_fd[0]
//!     .mov64_imm(R3, 2)                      // XDP_PASS if the slot is empty
//!     .call(Helper::REDIRECT_MAP)
//!     .exit()
//!     .bind(out)
//!     .mov64_imm(R0, 2)
//!     .exit();
//! let code = a.finish().expect("labels resolve");
//! assert_eq!(code.map_slots(), 1);
//! print!("{}", code.listing());
//! ```

use std::fmt;

use super::insn::*;

/// A jump target. Created by [`Asm::label`], placed by [`Asm::bind`]; a
/// label may be used before or after it is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// Why a program did not assemble.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsmError {
    /// A jump names a label that was never bound (or came from another assembler).
    #[error("the jump at instruction {at} targets label {label}, which is never bound")]
    UnboundLabel {
        /// The label.
        label: Label,
        /// Slot index of the first jump that uses it.
        at: usize,
    },
    /// [`Asm::bind`] was called twice for one label.
    #[error("label {label} is bound twice (at instructions {first} and {second})")]
    LabelBoundTwice {
        /// The label.
        label: Label,
        /// Where it was bound first.
        first: usize,
        /// Where it was bound again.
        second: usize,
    },
    /// A jump distance does not fit the 16-bit offset.
    #[error(
        "the jump at instruction {at} to instruction {target} is out of range \
         (offset {offset} does not fit in 16 bits)"
    )]
    JumpOutOfRange {
        /// Slot index of the jump.
        at: usize,
        /// Slot index of the target.
        target: usize,
        /// The offset that did not fit.
        offset: i64,
    },
    /// A label bound after the last instruction is the target of a jump.
    #[error(
        "the jump at instruction {at} targets label {label}, bound after the last \
         instruction: add the instructions it should jump to"
    )]
    JumpPastEnd {
        /// The label.
        label: Label,
        /// Slot index of the jump.
        at: usize,
    },
    /// A byte-order conversion to a width other than 16, 32 or 64.
    #[error("the byte-order conversion at instruction {at} is to {bits} bits; use 16, 32 or 64")]
    BadEndianWidth {
        /// Slot index of the conversion.
        at: usize,
        /// The width asked for.
        bits: u32,
    },
    /// An atomic operation on 8 or 16 bits (only 32 and 64 exist).
    #[error("the atomic operation at instruction {at} is on {size:?}; use Size::W or Size::DW")]
    BadAtomicSize {
        /// Slot index of the operation.
        at: usize,
        /// The size asked for.
        size: Size,
    },
    /// [`Code::from_bytes`] got a length that is not a multiple of 8.
    #[error("{len} bytes is not a whole number of 8-byte instructions")]
    TruncatedInsn {
        /// The byte length.
        len: usize,
    },
}

/// An assembled program: instructions with map slots still as placeholders,
/// and a name (shown by `bpftool prog`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Code {
    insns: Vec<Insn>,
    name: String,
}

impl Code {
    /// Wraps instructions as they are (no labels to resolve). Map loads must
    /// carry slot numbers in `imm`, as [`Asm::ld_map_fd`] emits them.
    pub fn from_insns(insns: Vec<Insn>) -> Code {
        Code {
            insns,
            name: String::new(),
        }
    }

    /// Decodes instructions from their byte form (host byte order).
    ///
    /// # Errors
    ///
    /// [`AsmError::TruncatedInsn`] if `bytes` is not a multiple of 8 long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Code, AsmError> {
        if bytes.len() % 8 != 0 {
            return Err(AsmError::TruncatedInsn { len: bytes.len() });
        }
        let insns = bytes
            .chunks_exact(8)
            .map(|c| Insn::from_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(Code::from_insns(insns))
    }

    /// The instructions (a 64-bit load counts as two).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Number of instruction slots.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether there are no instructions.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The bytes `BPF_PROG_LOAD` reads (host byte order).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.insns.iter().flat_map(Insn::to_bytes).collect()
    }

    /// A bpftool-style listing; see [`Listing`].
    pub fn listing(&self) -> Listing<'_> {
        Listing(&self.insns)
    }

    /// How many map fds the loader needs: one more than the highest slot
    /// used by a map load (0 if none).
    pub fn map_slots(&self) -> usize {
        self.map_loads()
            .map(|(_, slot)| slot as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// `(slot index of the instruction, map slot)` of every map load.
    pub(crate) fn map_loads(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.insns
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_ld_imm64() && i.src() == BPF_PSEUDO_MAP_FD)
            .map(|(at, i)| (at, i.imm as u32))
    }

    /// The program name (may be empty).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the program name. The kernel keeps 15 characters of
    /// `[A-Za-z0-9_.]`; others are replaced with `_` at load.
    pub fn with_name(mut self, name: &str) -> Code {
        self.name = name.to_owned();
        self
    }
}

#[derive(Debug)]
struct Fixup {
    at: usize,
    label: Label,
}

/// The assembler. Methods append one instruction (two for 64-bit loads) and
/// return `&mut Self` for chaining; misuse that can only be detected later
/// (unbound labels, distances) is reported by [`Asm::finish`].
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<Fixup>,
    error: Option<AsmError>,
}

impl Asm {
    /// An empty program.
    pub fn new() -> Asm {
        Asm::default()
    }

    /// Slots emitted so far (the index the next instruction gets).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether nothing was emitted yet.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    fn fail(&mut self, error: AsmError) {
        self.error.get_or_insert(error);
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label((self.labels.len() - 1) as u32)
    }

    /// Binds `label` to the next instruction emitted.
    pub fn bind(&mut self, label: Label) -> &mut Self {
        let here = self.insns.len();
        match self.labels.get_mut(label.0 as usize) {
            Some(Some(first)) => {
                let first = *first;
                self.fail(AsmError::LabelBoundTwice {
                    label,
                    first,
                    second: here,
                });
            }
            Some(slot) => *slot = Some(here),
            // A label from another assembler: any jump to it is unbound here.
            None => {}
        }
        self
    }

    /// A new label bound to the next instruction (for backward jumps).
    pub fn here(&mut self) -> Label {
        let label = self.label();
        self.bind(label);
        label
    }

    /// Appends a raw instruction.
    pub fn insn(&mut self, insn: Insn) -> &mut Self {
        self.insns.push(insn);
        self
    }

    fn alu(&mut self, class: u8, op: AluOp, dst: Reg, src: u8, source: u8, imm: i32) -> &mut Self {
        self.insn(Insn::new(
            class | op.code() | source,
            dst.index(),
            src,
            0,
            imm,
        ))
    }

    /// `dst = imm` (64-bit, `imm` sign-extended). `BPF_MOV64_IMM`.
    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.alu64_imm(AluOp::Mov, dst, imm)
    }

    /// `dst = src` (64-bit). `BPF_MOV64_REG`.
    pub fn mov64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.alu64_reg(AluOp::Mov, dst, src)
    }

    /// `wdst = imm` (32-bit, upper half zeroed). `BPF_MOV32_IMM`.
    pub fn mov32_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.alu32_imm(AluOp::Mov, dst, imm)
    }

    /// `wdst = wsrc` (32-bit, upper half zeroed). `BPF_MOV32_REG`.
    pub fn mov32_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.alu32_reg(AluOp::Mov, dst, src)
    }

    /// `dst op= imm` (64-bit). `BPF_ALU64_IMM`.
    pub fn alu64_imm(&mut self, op: AluOp, dst: Reg, imm: i32) -> &mut Self {
        self.alu(BPF_ALU64, op, dst, 0, BPF_K, imm)
    }

    /// `dst op= src` (64-bit). `BPF_ALU64_REG`.
    pub fn alu64_reg(&mut self, op: AluOp, dst: Reg, src: Reg) -> &mut Self {
        self.alu(BPF_ALU64, op, dst, src.index(), BPF_X, 0)
    }

    /// `wdst op= imm` (32-bit). `BPF_ALU32_IMM`.
    pub fn alu32_imm(&mut self, op: AluOp, dst: Reg, imm: i32) -> &mut Self {
        self.alu(BPF_ALU, op, dst, 0, BPF_K, imm)
    }

    /// `wdst op= wsrc` (32-bit). `BPF_ALU32_REG`.
    pub fn alu32_reg(&mut self, op: AluOp, dst: Reg, src: Reg) -> &mut Self {
        self.alu(BPF_ALU, op, dst, src.index(), BPF_X, 0)
    }

    /// `dst = to_{le,be}{bits}(dst)`: byte-order conversion, `bits` 16, 32
    /// or 64. `BPF_ENDIAN`. A packet's big-endian field loaded into a
    /// register becomes a host-order number with `ByteOrder::Be`.
    pub fn endian(&mut self, order: ByteOrder, dst: Reg, bits: u32) -> &mut Self {
        if !matches!(bits, 16 | 32 | 64) {
            let at = self.len();
            self.fail(AsmError::BadEndianWidth { at, bits });
        }
        let source = match order {
            ByteOrder::Le => BPF_TO_LE,
            ByteOrder::Be => BPF_TO_BE,
        };
        self.insn(Insn::new(
            BPF_ALU | BPF_END | source,
            dst.index(),
            0,
            0,
            bits as i32,
        ))
    }

    /// `dst = be16(dst)`: network ↔ host order of a 16-bit value.
    pub fn be16(&mut self, dst: Reg) -> &mut Self {
        self.endian(ByteOrder::Be, dst, 16)
    }

    /// `dst = be32(dst)`: network ↔ host order of a 32-bit value.
    pub fn be32(&mut self, dst: Reg) -> &mut Self {
        self.endian(ByteOrder::Be, dst, 32)
    }

    /// `dst = *(size *)(src + off)`. `BPF_LDX_MEM`.
    pub fn ldx_mem(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.insn(Insn::new(
            BPF_LDX | BPF_MEM | size.code(),
            dst.index(),
            src.index(),
            off,
            0,
        ))
    }

    /// `*(size *)(dst + off) = src`. `BPF_STX_MEM`.
    pub fn stx_mem(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.insn(Insn::new(
            BPF_STX | BPF_MEM | size.code(),
            dst.index(),
            src.index(),
            off,
            0,
        ))
    }

    /// `*(size *)(dst + off) = imm`. `BPF_ST_MEM`.
    pub fn st_mem(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.insn(Insn::new(
            BPF_ST | BPF_MEM | size.code(),
            dst.index(),
            0,
            off,
            imm,
        ))
    }

    /// `lock *(size *)(dst + off) += src`: atomic add, `size` W or DW.
    /// `BPF_ATOMIC_OP(size, BPF_ADD, …)`.
    pub fn atomic_add(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        if !matches!(size, Size::W | Size::DW) {
            let at = self.len();
            self.fail(AsmError::BadAtomicSize { at, size });
        }
        self.insn(Insn::new(
            BPF_STX | BPF_ATOMIC | size.code(),
            dst.index(),
            src.index(),
            off,
            i32::from(BPF_ADD),
        ))
    }

    /// `dst = imm` with a full 64-bit immediate (two slots). `BPF_LD_IMM64`.
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) -> &mut Self {
        self.insn(Insn::new(LD_IMM64, dst.index(), 0, 0, imm as u32 as i32))
            .insn(Insn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32))
    }

    /// `dst = map_fd[slot] ll`: the address of the map the loader puts in
    /// `slot` (two slots). `BPF_LD_MAP_FD` with a placeholder instead of the fd.
    pub fn ld_map_fd(&mut self, dst: Reg, slot: u32) -> &mut Self {
        self.insn(Insn::new(
            LD_IMM64,
            dst.index(),
            BPF_PSEUDO_MAP_FD,
            0,
            slot as i32,
        ))
        .insn(Insn::new(0, 0, 0, 0, 0))
    }

    fn jump(&mut self, insn: Insn, target: Label) -> &mut Self {
        self.fixups.push(Fixup {
            at: self.insns.len(),
            label: target,
        });
        self.insn(insn)
    }

    /// `if dst op imm goto target` (64-bit compare). `BPF_JMP_IMM`.
    pub fn jmp_imm(&mut self, op: JmpOp, dst: Reg, imm: i32, target: Label) -> &mut Self {
        self.jump(
            Insn::new(BPF_JMP | op.code() | BPF_K, dst.index(), 0, 0, imm),
            target,
        )
    }

    /// `if dst op src goto target` (64-bit compare). `BPF_JMP_REG`.
    pub fn jmp_reg(&mut self, op: JmpOp, dst: Reg, src: Reg, target: Label) -> &mut Self {
        self.jump(
            Insn::new(BPF_JMP | op.code() | BPF_X, dst.index(), src.index(), 0, 0),
            target,
        )
    }

    /// `if wdst op imm goto target` (32-bit compare). `BPF_JMP32_IMM`.
    pub fn jmp32_imm(&mut self, op: JmpOp, dst: Reg, imm: i32, target: Label) -> &mut Self {
        self.jump(
            Insn::new(BPF_JMP32 | op.code() | BPF_K, dst.index(), 0, 0, imm),
            target,
        )
    }

    /// `if wdst op wsrc goto target` (32-bit compare). `BPF_JMP32_REG`.
    pub fn jmp32_reg(&mut self, op: JmpOp, dst: Reg, src: Reg, target: Label) -> &mut Self {
        self.jump(
            Insn::new(
                BPF_JMP32 | op.code() | BPF_X,
                dst.index(),
                src.index(),
                0,
                0,
            ),
            target,
        )
    }

    /// `goto target`. `BPF_JMP_A`.
    pub fn ja(&mut self, target: Label) -> &mut Self {
        self.jump(Insn::new(BPF_JMP | BPF_JA, 0, 0, 0, 0), target)
    }

    /// `call helper` (arguments in `r1`–`r5`, result in `r0`, `r1`–`r5`
    /// clobbered). `BPF_EMIT_CALL`.
    pub fn call(&mut self, helper: Helper) -> &mut Self {
        self.insn(Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, helper.0 as i32))
    }

    /// `exit`: return `r0`. `BPF_EXIT_INSN`.
    pub fn exit(&mut self) -> &mut Self {
        self.insn(Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0))
    }

    /// Resolves every jump and returns the program.
    ///
    /// # Errors
    ///
    /// The first misuse recorded while building (a label bound twice, a bad
    /// conversion width or atomic size), else the first jump to an unbound
    /// label, past the end, or farther than a 16-bit offset reaches.
    pub fn finish(mut self) -> Result<Code, AsmError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let len = self.insns.len();
        for Fixup { at, label } in &self.fixups {
            let (at, label) = (*at, *label);
            let target = self
                .labels
                .get(label.0 as usize)
                .copied()
                .flatten()
                .ok_or(AsmError::UnboundLabel { label, at })?;
            if target >= len {
                return Err(AsmError::JumpPastEnd { label, at });
            }
            let offset = target as i64 - (at as i64 + 1);
            self.insns[at].off = i16::try_from(offset).map_err(|_| AsmError::JumpOutOfRange {
                at,
                target,
                offset,
            })?;
        }
        Ok(Code::from_insns(self.insns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Reg::*;

    #[test]
    fn forward_and_backward_labels() {
        let mut a = Asm::new();
        let top = a.here();
        let out = a.label();
        a.mov64_imm(R0, 0) // 0
            .jmp_imm(JmpOp::Eq, R1, 0, out) // 1 -> 4: off +2
            .alu64_imm(AluOp::Add, R0, 1) // 2
            .ja(top) // 3 -> 0: off -4
            .bind(out)
            .exit(); // 4
        let code = a.finish().unwrap();
        assert_eq!(code.insns()[1].off, 2);
        assert_eq!(code.insns()[3].off, -4);
        assert_eq!(
            code.listing().to_string(),
            "   0: (b7) r0 = 0\n   1: (15) if r1 == 0 goto +2\n   2: (07) r0 += 1\n   \
             3: (05) goto -4\n   4: (95) exit\n"
        );
    }

    #[test]
    fn jumps_count_both_slots_of_a_64_bit_load() {
        let mut a = Asm::new();
        let out = a.label();
        a.ja(out).ld_imm64(R1, u64::MAX).bind(out).exit();
        let code = a.finish().unwrap();
        assert_eq!(code.len(), 4);
        assert_eq!(code.insns()[0].off, 2);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let nowhere = a.label();
        a.mov64_imm(R0, 1).jmp_imm(JmpOp::Ne, R0, 0, nowhere).exit();
        assert_eq!(
            a.finish(),
            Err(AsmError::UnboundLabel {
                label: nowhere,
                at: 1
            })
        );
    }

    #[test]
    fn label_from_another_assembler_is_unbound() {
        let mut other = Asm::new();
        let _ = other.label();
        let foreign = other.label();
        let mut a = Asm::new();
        a.ja(foreign).bind(foreign).exit();
        assert!(matches!(
            a.finish(),
            Err(AsmError::UnboundLabel { at: 0, .. })
        ));
    }

    #[test]
    fn binding_twice_is_an_error() {
        let mut a = Asm::new();
        let l = a.here();
        a.exit().bind(l).exit();
        assert_eq!(
            a.finish(),
            Err(AsmError::LabelBoundTwice {
                label: l,
                first: 0,
                second: 1
            })
        );
    }

    #[test]
    fn jump_past_the_end_is_an_error() {
        let mut a = Asm::new();
        let end = a.label();
        a.ja(end).exit().bind(end);
        assert_eq!(a.finish(), Err(AsmError::JumpPastEnd { label: end, at: 0 }));
    }

    #[test]
    fn jump_out_of_range_is_an_error() {
        let mut a = Asm::new();
        let far = a.label();
        a.ja(far);
        for _ in 0..40_000 {
            a.mov64_imm(R0, 0);
        }
        a.bind(far).exit();
        assert_eq!(
            a.finish(),
            Err(AsmError::JumpOutOfRange {
                at: 0,
                target: 40_001,
                offset: 40_000
            })
        );
        // The largest forward distance that fits still assembles.
        let mut a = Asm::new();
        let edge = a.label();
        a.ja(edge);
        for _ in 0..i16::MAX {
            a.mov64_imm(R0, 0);
        }
        a.bind(edge).exit();
        assert_eq!(a.finish().unwrap().insns()[0].off, i16::MAX);
    }

    #[test]
    fn bad_widths_are_errors() {
        let mut a = Asm::new();
        a.endian(ByteOrder::Be, R1, 8).exit();
        assert_eq!(a.finish(), Err(AsmError::BadEndianWidth { at: 0, bits: 8 }));
        let mut a = Asm::new();
        a.exit().atomic_add(Size::H, R1, R2, 0);
        assert_eq!(
            a.finish(),
            Err(AsmError::BadAtomicSize {
                at: 1,
                size: Size::H
            })
        );
    }

    #[test]
    fn map_slots_and_bytes() {
        let mut a = Asm::new();
        a.ld_map_fd(R1, 0).ld_map_fd(R2, 2).mov64_imm(R0, 0).exit();
        let code = a.finish().unwrap();
        assert_eq!(code.map_slots(), 3);
        assert_eq!(code.map_loads().collect::<Vec<_>>(), [(0, 0), (2, 2)]);
        assert_eq!(Code::from_bytes(&code.to_bytes()).unwrap(), code);
        assert_eq!(
            Code::from_bytes(&[0; 12]),
            Err(AsmError::TruncatedInsn { len: 12 })
        );
        let no_maps = Code::from_insns(vec![Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)]);
        assert_eq!(no_maps.map_slots(), 0);
    }

    #[test]
    fn libxdp_names_encode_like_the_kernel_macros() {
        // Opcode bytes as the kernel's BPF_* macros produce them.
        let mut a = Asm::new();
        a.mov64_imm(R3, 2) // b7
            .mov64_reg(R6, R1) // bf
            .mov32_imm(R2, 5) // b4
            .mov32_reg(R2, R3) // bc
            .alu64_imm(AluOp::Add, R2, -4) // 07
            .alu64_reg(AluOp::Sub, R2, R3) // 1f
            .alu32_imm(AluOp::And, R2, 1) // 54
            .alu32_reg(AluOp::Or, R2, R3) // 4c
            .ldx_mem(Size::H, R2, R1, 12) // 69
            .stx_mem(Size::DW, R10, R1, -8) // 7b
            .st_mem(Size::W, R10, -4, 0) // 62
            .atomic_add(Size::DW, R0, R1, 0) // db
            .be16(R2) // dc
            .call(Helper::REDIRECT_MAP) // 85
            .exit(); // 95
        let code = a.finish().unwrap();
        let codes: Vec<u8> = code.insns().iter().map(|i| i.code).collect();
        assert_eq!(
            codes,
            [
                0xb7, 0xbf, 0xb4, 0xbc, 0x07, 0x1f, 0x54, 0x4c, 0x69, 0x7b, 0x62, 0xdb, 0xdc, 0x85,
                0x95
            ]
        );
    }

    // --- property tests: build → encode → bytes → decode → same operations ---

    /// A builder call with jumps pointing at slot indices of `Bind` markers.
    #[derive(Clone, Debug, PartialEq)]
    enum Op {
        Alu64Imm(AluOp, Reg, i32),
        Alu64Reg(AluOp, Reg, Reg),
        Alu32Imm(AluOp, Reg, i32),
        Alu32Reg(AluOp, Reg, Reg),
        Ldx(Size, Reg, Reg, i16),
        Stx(Size, Reg, Reg, i16),
        St(Size, Reg, i16, i32),
        LdImm64(Reg, u64),
        LdMapFd(Reg, u32),
        Endian(ByteOrder, Reg, u32),
        JmpImm(JmpOp, Reg, i32, usize),
        JmpReg(JmpOp, Reg, Reg, usize),
        Jmp32Imm(JmpOp, Reg, i32, usize),
        Ja(usize),
        Call(u32),
        Exit,
    }

    fn reg() -> impl Strategy<Value = Reg> {
        prop::sample::select(vec![R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10])
    }
    fn size() -> impl Strategy<Value = Size> {
        prop::sample::select(vec![Size::B, Size::H, Size::W, Size::DW])
    }
    fn alu() -> impl Strategy<Value = AluOp> {
        prop::sample::select(AluOp::ALL.to_vec())
    }
    fn jmp() -> impl Strategy<Value = JmpOp> {
        prop::sample::select(JmpOp::ALL.to_vec())
    }

    /// `label` is an index into the label table, resolved modulo its size.
    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (alu(), reg(), any::<i32>()).prop_map(|(o, d, i)| Op::Alu64Imm(o, d, i)),
            (alu(), reg(), reg()).prop_map(|(o, d, s)| Op::Alu64Reg(o, d, s)),
            (alu(), reg(), any::<i32>()).prop_map(|(o, d, i)| Op::Alu32Imm(o, d, i)),
            (alu(), reg(), reg()).prop_map(|(o, d, s)| Op::Alu32Reg(o, d, s)),
            (size(), reg(), reg(), any::<i16>()).prop_map(|(z, d, s, o)| Op::Ldx(z, d, s, o)),
            (size(), reg(), reg(), any::<i16>()).prop_map(|(z, d, s, o)| Op::Stx(z, d, s, o)),
            (size(), reg(), any::<i16>(), any::<i32>()).prop_map(|(z, d, o, i)| Op::St(z, d, o, i)),
            (reg(), any::<u64>()).prop_map(|(d, i)| Op::LdImm64(d, i)),
            (reg(), 0u32..16).prop_map(|(d, s)| Op::LdMapFd(d, s)),
            (
                prop::sample::select(vec![ByteOrder::Le, ByteOrder::Be]),
                reg(),
                prop::sample::select(vec![16u32, 32, 64])
            )
                .prop_map(|(b, d, w)| Op::Endian(b, d, w)),
            (jmp(), reg(), any::<i32>(), any::<usize>())
                .prop_map(|(o, d, i, l)| Op::JmpImm(o, d, i, l)),
            (jmp(), reg(), reg(), any::<usize>()).prop_map(|(o, d, s, l)| Op::JmpReg(o, d, s, l)),
            (jmp(), reg(), any::<i32>(), any::<usize>())
                .prop_map(|(o, d, i, l)| Op::Jmp32Imm(o, d, i, l)),
            any::<usize>().prop_map(Op::Ja),
            any::<u32>().prop_map(Op::Call),
            Just(Op::Exit),
        ]
    }

    fn emit(a: &mut Asm, op: &Op, labels: &[Label]) {
        let l = |i: usize| labels[i % labels.len()];
        match *op {
            Op::Alu64Imm(o, d, i) => a.alu64_imm(o, d, i),
            Op::Alu64Reg(o, d, s) => a.alu64_reg(o, d, s),
            Op::Alu32Imm(o, d, i) => a.alu32_imm(o, d, i),
            Op::Alu32Reg(o, d, s) => a.alu32_reg(o, d, s),
            Op::Ldx(z, d, s, o) => a.ldx_mem(z, d, s, o),
            Op::Stx(z, d, s, o) => a.stx_mem(z, d, s, o),
            Op::St(z, d, o, i) => a.st_mem(z, d, o, i),
            Op::LdImm64(d, i) => a.ld_imm64(d, i),
            Op::LdMapFd(d, s) => a.ld_map_fd(d, s),
            Op::Endian(b, d, w) => a.endian(b, d, w),
            Op::JmpImm(o, d, i, t) => a.jmp_imm(o, d, i, l(t)),
            Op::JmpReg(o, d, s, t) => a.jmp_reg(o, d, s, l(t)),
            Op::Jmp32Imm(o, d, i, t) => a.jmp32_imm(o, d, i, l(t)),
            Op::Ja(t) => a.ja(l(t)),
            Op::Call(h) => a.call(Helper(h)),
            Op::Exit => a.exit(),
        };
    }

    fn reg_of(n: u8) -> Reg {
        [R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10][n as usize]
    }
    fn size_of_code(code: u8) -> Size {
        [Size::W, Size::H, Size::B, Size::DW][(code as usize >> 3) & 3]
    }
    fn alu_of(code: u8) -> AluOp {
        *AluOp::ALL.iter().find(|o| o.code() == code & 0xf0).unwrap()
    }
    fn jmp_of(code: u8) -> JmpOp {
        *JmpOp::ALL.iter().find(|o| o.code() == code & 0xf0).unwrap()
    }

    /// Decodes instructions back into builder operations, with jump targets
    /// as absolute slot indices.
    fn decode(insns: &[Insn]) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut pc = 0;
        while pc < insns.len() {
            let i = insns[pc];
            let (d, s) = (reg_of(i.dst()), i.src());
            let target = (pc as i64 + 1 + i64::from(i.off)) as usize;
            let x = i.source() == BPF_X;
            let op = match i.class() {
                BPF_ALU64 if x => Op::Alu64Reg(alu_of(i.code), d, reg_of(s)),
                BPF_ALU64 => Op::Alu64Imm(alu_of(i.code), d, i.imm),
                BPF_ALU if i.op() == BPF_END => Op::Endian(
                    if x { ByteOrder::Be } else { ByteOrder::Le },
                    d,
                    i.imm as u32,
                ),
                BPF_ALU if x => Op::Alu32Reg(alu_of(i.code), d, reg_of(s)),
                BPF_ALU => Op::Alu32Imm(alu_of(i.code), d, i.imm),
                BPF_LDX => Op::Ldx(size_of_code(i.code), d, reg_of(s), i.off),
                BPF_STX => Op::Stx(size_of_code(i.code), d, reg_of(s), i.off),
                BPF_ST => Op::St(size_of_code(i.code), d, i.off, i.imm),
                BPF_LD if s == BPF_PSEUDO_MAP_FD => Op::LdMapFd(d, i.imm as u32),
                BPF_LD => Op::LdImm64(
                    d,
                    u64::from(i.imm as u32) | (u64::from(insns[pc + 1].imm as u32) << 32),
                ),
                BPF_JMP if i.op() == BPF_EXIT => Op::Exit,
                BPF_JMP if i.op() == BPF_CALL => Op::Call(i.imm as u32),
                BPF_JMP if i.op() == BPF_JA => Op::Ja(target),
                BPF_JMP if x => Op::JmpReg(jmp_of(i.code), d, reg_of(s), target),
                BPF_JMP => Op::JmpImm(jmp_of(i.code), d, i.imm, target),
                BPF_JMP32 => Op::Jmp32Imm(jmp_of(i.code), d, i.imm, target),
                _ => unreachable!("the builder never emits {i:?}"),
            };
            ops.push(op);
            pc += if i.is_ld_imm64() { 2 } else { 1 };
        }
        ops
    }

    proptest! {
        #[test]
        fn insn_bytes_round_trip(code: u8, dst in 0u8..16, src in 0u8..16, off: i16, imm: i32) {
            let insn = Insn::new(code, dst, src, off, imm);
            prop_assert_eq!((insn.dst(), insn.src(), insn.off, insn.imm), (dst, src, off, imm));
            prop_assert_eq!(Insn::from_bytes(insn.to_bytes()), insn);
            // Every instruction, valid or not, has a one-line listing.
            let text = insn.to_string();
            prop_assert!(!text.is_empty() && !text.contains('\n'));
        }

        #[test]
        fn build_encode_decode_round_trip(
            ops in prop::collection::vec(op(), 1..40),
            // Where each of 4 labels is bound: an index into `ops` (always
            // before some instruction, so never past the end).
            binds in prop::collection::vec(any::<prop::sample::Index>(), 4),
        ) {
            let mut a = Asm::new();
            let labels: Vec<Label> = (0..binds.len()).map(|_| a.label()).collect();
            let bind_at: Vec<usize> = binds.iter().map(|i| i.index(ops.len())).collect();
            let mut slot_of_op = Vec::new();
            for (n, op) in ops.iter().enumerate() {
                for (label, at) in labels.iter().zip(&bind_at) {
                    if *at == n {
                        a.bind(*label);
                    }
                }
                slot_of_op.push(a.len());
                emit(&mut a, op, &labels);
            }
            let code = a.finish().expect("in range, all bound");
            // Expected: the same ops with label indices turned into slots.
            let target = |t: usize| slot_of_op[bind_at[t % labels.len()]];
            let want: Vec<Op> = ops.iter().map(|op| match *op {
                Op::JmpImm(o, d, i, t) => Op::JmpImm(o, d, i, target(t)),
                Op::JmpReg(o, d, s, t) => Op::JmpReg(o, d, s, target(t)),
                Op::Jmp32Imm(o, d, i, t) => Op::Jmp32Imm(o, d, i, target(t)),
                Op::Ja(t) => Op::Ja(target(t)),
                ref other => other.clone(),
            }).collect();
            let decoded = Code::from_bytes(&code.to_bytes()).unwrap();
            prop_assert_eq!(&decoded, &code);
            prop_assert_eq!(decode(decoded.insns()), want);
            // The listing has one line per operation.
            prop_assert_eq!(code.listing().to_string().lines().count(), ops.len());
        }
    }
}
