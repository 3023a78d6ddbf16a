//! eBPF instructions: the 8-byte encoding, the opcode constants, and a
//! readable listing in the style of `bpftool prog dump xlated`.
//!
//! This module is pure (no system calls). The constants carry their kernel
//! names from `include/uapi/linux/bpf_common.h` and `include/uapi/linux/bpf.h`
//! (tag `v6.18`) so they can be checked against the headers line by line; the
//! typed front ([`Reg`], [`Size`], [`AluOp`], [`JmpOp`], [`Helper`]) is what
//! [`super::asm::Asm`] takes.
//!
//! An instruction is `code:8, dst:4, src:4, off:16, imm:32` in host byte
//! order; `BPF_LD | BPF_IMM | BPF_DW` (a 64-bit immediate load) takes two
//! slots, the second holding the upper 32 bits in its `imm`.

use std::fmt;

// --- instruction classes (code & 0x07) ---
/// Class: legacy and 64-bit immediate loads.
pub const BPF_LD: u8 = 0x00;
/// Class: load from memory into a register.
pub const BPF_LDX: u8 = 0x01;
/// Class: store an immediate into memory.
pub const BPF_ST: u8 = 0x02;
/// Class: store a register into memory (and atomics).
pub const BPF_STX: u8 = 0x03;
/// Class: 32-bit arithmetic.
pub const BPF_ALU: u8 = 0x04;
/// Class: 64-bit jumps, calls, exit.
pub const BPF_JMP: u8 = 0x05;
/// Class: 32-bit jumps.
pub const BPF_JMP32: u8 = 0x06;
/// Class: 64-bit arithmetic.
pub const BPF_ALU64: u8 = 0x07;

// --- size (code & 0x18), for load/store classes ---
/// Size: 32 bits.
pub const BPF_W: u8 = 0x00;
/// Size: 16 bits.
pub const BPF_H: u8 = 0x08;
/// Size: 8 bits.
pub const BPF_B: u8 = 0x10;
/// Size: 64 bits.
pub const BPF_DW: u8 = 0x18;

// --- mode (code & 0xe0), for load/store classes ---
/// Mode: immediate (with `BPF_LD | BPF_DW`: 64-bit immediate load).
pub const BPF_IMM: u8 = 0x00;
/// Mode: legacy packet access at an absolute offset.
pub const BPF_ABS: u8 = 0x20;
/// Mode: legacy packet access at a register-relative offset.
pub const BPF_IND: u8 = 0x40;
/// Mode: memory at `reg + off`.
pub const BPF_MEM: u8 = 0x60;
/// Mode: sign-extending memory load (cpu v4).
pub const BPF_MEMSX: u8 = 0x80;
/// Mode: atomic read-modify-write (`imm` holds the operation).
pub const BPF_ATOMIC: u8 = 0xc0;

// --- ALU operations (code & 0xf0) ---
/// `dst += src`.
pub const BPF_ADD: u8 = 0x00;
/// `dst -= src`.
pub const BPF_SUB: u8 = 0x10;
/// `dst *= src`.
pub const BPF_MUL: u8 = 0x20;
/// `dst /= src` (unsigned; signed with `off = 1`).
pub const BPF_DIV: u8 = 0x30;
/// `dst |= src`.
pub const BPF_OR: u8 = 0x40;
/// `dst &= src`.
pub const BPF_AND: u8 = 0x50;
/// `dst <<= src`.
pub const BPF_LSH: u8 = 0x60;
/// `dst >>= src` (logical).
pub const BPF_RSH: u8 = 0x70;
/// `dst = -dst`.
pub const BPF_NEG: u8 = 0x80;
/// `dst %= src` (unsigned; signed with `off = 1`).
pub const BPF_MOD: u8 = 0x90;
/// `dst ^= src`.
pub const BPF_XOR: u8 = 0xa0;
/// `dst = src`.
pub const BPF_MOV: u8 = 0xb0;
/// `dst >>= src` (arithmetic).
pub const BPF_ARSH: u8 = 0xc0;
/// Byte-order conversion (`imm` = 16, 32 or 64).
pub const BPF_END: u8 = 0xd0;

// --- jump operations (code & 0xf0) ---
/// Unconditional jump.
pub const BPF_JA: u8 = 0x00;
/// Jump if `==`.
pub const BPF_JEQ: u8 = 0x10;
/// Jump if `>` (unsigned).
pub const BPF_JGT: u8 = 0x20;
/// Jump if `>=` (unsigned).
pub const BPF_JGE: u8 = 0x30;
/// Jump if `dst & src != 0`.
pub const BPF_JSET: u8 = 0x40;
/// Jump if `!=`.
pub const BPF_JNE: u8 = 0x50;
/// Jump if `>` (signed).
pub const BPF_JSGT: u8 = 0x60;
/// Jump if `>=` (signed).
pub const BPF_JSGE: u8 = 0x70;
/// Call a helper (`imm` = helper id).
pub const BPF_CALL: u8 = 0x80;
/// Return `r0`.
pub const BPF_EXIT: u8 = 0x90;
/// Jump if `<` (unsigned).
pub const BPF_JLT: u8 = 0xa0;
/// Jump if `<=` (unsigned).
pub const BPF_JLE: u8 = 0xb0;
/// Jump if `<` (signed).
pub const BPF_JSLT: u8 = 0xc0;
/// Jump if `<=` (signed).
pub const BPF_JSLE: u8 = 0xd0;

// --- source (code & 0x08) ---
/// Operand is the 32-bit immediate.
pub const BPF_K: u8 = 0x00;
/// Operand is the source register.
pub const BPF_X: u8 = 0x08;
/// With `BPF_END`: convert to little-endian.
pub const BPF_TO_LE: u8 = 0x00;
/// With `BPF_END`: convert to big-endian.
pub const BPF_TO_BE: u8 = 0x08;

// --- atomic operations (imm of BPF_STX | BPF_ATOMIC) ---
/// With an atomic op: also load the old value into `src`.
pub const BPF_FETCH: i32 = 0x01;
/// Atomic exchange.
pub const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
/// Atomic compare-and-exchange against `r0`.
pub const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;

// --- pseudo sources ---
/// `src` of a 64-bit immediate load whose `imm` is a map fd.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `src` of a 64-bit immediate load: address of a map value (fd + offset).
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
/// `src` of a call to another BPF function (`imm` = relative offset).
pub const BPF_PSEUDO_CALL: u8 = 1;
/// `src` of a call to a kernel function (`imm` = BTF id).
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

/// The opcode of a 64-bit immediate load (two slots).
pub const LD_IMM64: u8 = BPF_LD | BPF_IMM | BPF_DW;

pub use crate::sys::bpf::Insn;

/// Decoding an instruction's opcode.
impl Insn {
    /// Instruction class (`code & 0x07`): [`BPF_LD`] … [`BPF_ALU64`].
    pub const fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// ALU or jump operation (`code & 0xf0`).
    pub const fn op(&self) -> u8 {
        self.code & 0xf0
    }

    /// Operand source (`code & 0x08`): [`BPF_K`] or [`BPF_X`].
    pub const fn source(&self) -> u8 {
        self.code & 0x08
    }

    /// Access size of a load/store (`code & 0x18`).
    pub const fn size(&self) -> u8 {
        self.code & 0x18
    }

    /// Addressing mode of a load/store (`code & 0xe0`).
    pub const fn mode(&self) -> u8 {
        self.code & 0xe0
    }

    /// Whether this is the first slot of a 64-bit immediate load.
    pub const fn is_ld_imm64(&self) -> bool {
        self.code == LD_IMM64
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {} }}",
            self.code,
            self.dst(),
            self.src(),
            self.off,
            self.imm
        )
    }
}

/// One instruction in bpftool's notation, e.g. `r2 = *(u32 *)(r1 + 16)`.
///
/// A 64-bit immediate load needs its second slot to show the full value; use
/// [`Listing`] for whole programs. Alone, it shows the low half only.
impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_insn(f, self, None)
    }
}

/// A whole program in bpftool's notation, one instruction per line with its
/// slot index and opcode:
///
/// ```text
///    0: (61) r2 = *(u32 *)(r1 + 16)
///    1: (18) r1 = map_fd[0] ll
///    3: (b7) r3 = 2
///    4: (85) call bpf_redirect_map#51
///    5: (95) exit
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a>(pub &'a [Insn]);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        while i < self.0.len() {
            let insn = &self.0[i];
            let next = if insn.is_ld_imm64() {
                self.0.get(i + 1)
            } else {
                None
            };
            write!(f, "{i:4}: ({:02x}) ", insn.code)?;
            write_insn(f, insn, next)?;
            writeln!(f)?;
            i += if insn.is_ld_imm64() { 2 } else { 1 };
        }
        Ok(())
    }
}

fn size_name(size: u8) -> &'static str {
    match size {
        BPF_W => "u32",
        BPF_H => "u16",
        BPF_B => "u8",
        _ => "u64",
    }
}

fn signed_size_name(size: u8) -> &'static str {
    match size {
        BPF_W => "s32",
        BPF_H => "s16",
        BPF_B => "s8",
        _ => "s64",
    }
}

/// `(r1 + 16)`, `(r10 - 8)`.
struct MemRef(u8, i16);

impl fmt::Display for MemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = i32::from(self.1);
        if off < 0 {
            write!(f, "(r{} - {})", self.0, -off)
        } else {
            write!(f, "(r{} + {})", self.0, off)
        }
    }
}

fn write_insn(f: &mut fmt::Formatter<'_>, insn: &Insn, next: Option<&Insn>) -> fmt::Result {
    let (dst, src) = (insn.dst(), insn.src());
    match insn.class() {
        BPF_ALU | BPF_ALU64 => write_alu(f, insn),
        BPF_JMP | BPF_JMP32 => write_jmp(f, insn),
        BPF_LDX => match insn.mode() {
            BPF_MEM => write!(
                f,
                "r{dst} = *({} *){}",
                size_name(insn.size()),
                MemRef(src, insn.off)
            ),
            BPF_MEMSX => write!(
                f,
                "r{dst} = *({} *){}",
                signed_size_name(insn.size()),
                MemRef(src, insn.off)
            ),
            _ => write_unknown(f, insn),
        },
        BPF_ST if insn.mode() == BPF_MEM => write!(
            f,
            "*({} *){} = {}",
            size_name(insn.size()),
            MemRef(dst, insn.off),
            insn.imm
        ),
        BPF_STX => match insn.mode() {
            BPF_MEM => write!(
                f,
                "*({} *){} = r{src}",
                size_name(insn.size()),
                MemRef(dst, insn.off)
            ),
            BPF_ATOMIC => write_atomic(f, insn),
            _ => write_unknown(f, insn),
        },
        BPF_LD => match (insn.mode(), insn.size()) {
            (BPF_IMM, BPF_DW) => write_ld_imm64(f, insn, next),
            (BPF_ABS, size) => write!(f, "r0 = *({} *)skb[{}]", size_name(size), insn.imm),
            (BPF_IND, size) => write!(f, "r0 = *({} *)skb[r{src} + {}]", size_name(size), insn.imm),
            _ => write_unknown(f, insn),
        },
        _ => write_unknown(f, insn),
    }
}

fn write_unknown(f: &mut fmt::Formatter<'_>, insn: &Insn) -> fmt::Result {
    write!(
        f,
        ".insn code={:#04x} dst=r{} src=r{} off={} imm={}",
        insn.code,
        insn.dst(),
        insn.src(),
        insn.off,
        insn.imm
    )
}

fn write_ld_imm64(f: &mut fmt::Formatter<'_>, insn: &Insn, next: Option<&Insn>) -> fmt::Result {
    let dst = insn.dst();
    match (insn.src(), next) {
        (BPF_PSEUDO_MAP_FD, _) => write!(f, "r{dst} = map_fd[{}] ll", insn.imm),
        (BPF_PSEUDO_MAP_VALUE, Some(hi)) => {
            write!(f, "r{dst} = map_value[{}] + {} ll", insn.imm, hi.imm)
        }
        (0, Some(hi)) => {
            let value = u64::from(insn.imm as u32) | (u64::from(hi.imm as u32) << 32);
            write!(f, "r{dst} = {value:#x} ll")
        }
        (0, None) => write!(f, "r{dst} = {:#x} ll (low half)", insn.imm as u32),
        (pseudo, _) => write!(f, "r{dst} = pseudo{pseudo}[{}] ll", insn.imm),
    }
}

fn write_alu(f: &mut fmt::Formatter<'_>, insn: &Insn) -> fmt::Result {
    let r = if insn.class() == BPF_ALU64 { 'r' } else { 'w' };
    let (dst, src) = (insn.dst(), insn.src());
    let signed = insn.off == 1;
    let sym = match insn.op() {
        BPF_END => {
            return if insn.class() == BPF_ALU64 {
                write!(f, "r{dst} = bswap{} r{dst}", insn.imm)
            } else {
                let order = if insn.source() == BPF_TO_BE {
                    "be"
                } else {
                    "le"
                };
                write!(f, "r{dst} = {order}{} r{dst}", insn.imm)
            };
        }
        BPF_NEG => return write!(f, "{r}{dst} = -{r}{dst}"),
        BPF_ADD => "+=",
        BPF_SUB => "-=",
        BPF_MUL => "*=",
        BPF_DIV if signed => "s/=",
        BPF_DIV => "/=",
        BPF_OR => "|=",
        BPF_AND => "&=",
        BPF_LSH => "<<=",
        BPF_RSH => ">>=",
        BPF_MOD if signed => "s%=",
        BPF_MOD => "%=",
        BPF_XOR => "^=",
        BPF_MOV => "=",
        BPF_ARSH => "s>>=",
        _ => return write_unknown(f, insn),
    };
    if insn.source() == BPF_X {
        if insn.op() == BPF_MOV && insn.off != 0 {
            write!(f, "{r}{dst} = (s{}){r}{src}", insn.off)
        } else {
            write!(f, "{r}{dst} {sym} {r}{src}")
        }
    } else {
        write!(f, "{r}{dst} {sym} {}", insn.imm)
    }
}

fn write_jmp(f: &mut fmt::Formatter<'_>, insn: &Insn) -> fmt::Result {
    let r = if insn.class() == BPF_JMP { 'r' } else { 'w' };
    let (dst, src) = (insn.dst(), insn.src());
    let sym = match insn.op() {
        BPF_JA if insn.class() == BPF_JMP32 => return write!(f, "gotol {:+}", insn.imm),
        BPF_JA => return write!(f, "goto {:+}", insn.off),
        BPF_EXIT => return write!(f, "exit"),
        BPF_CALL => {
            return match src {
                BPF_PSEUDO_CALL => write!(f, "call pc{:+}", insn.imm),
                BPF_PSEUDO_KFUNC_CALL => write!(f, "call kfunc#{}", insn.imm),
                _ => match Helper(insn.imm as u32).name() {
                    Some(name) => write!(f, "call bpf_{name}#{}", insn.imm),
                    None => write!(f, "call #{}", insn.imm),
                },
            };
        }
        BPF_JEQ => "==",
        BPF_JGT => ">",
        BPF_JGE => ">=",
        BPF_JSET => "&",
        BPF_JNE => "!=",
        BPF_JSGT => "s>",
        BPF_JSGE => "s>=",
        BPF_JLT => "<",
        BPF_JLE => "<=",
        BPF_JSLT => "s<",
        BPF_JSLE => "s<=",
        _ => return write_unknown(f, insn),
    };
    if insn.source() == BPF_X {
        write!(f, "if {r}{dst} {sym} {r}{src} goto {:+}", insn.off)
    } else {
        write!(f, "if {r}{dst} {sym} {} goto {:+}", insn.imm, insn.off)
    }
}

fn write_atomic(f: &mut fmt::Formatter<'_>, insn: &Insn) -> fmt::Result {
    let (dst, src) = (insn.dst(), insn.src());
    let size = size_name(insn.size());
    let mem = MemRef(dst, insn.off);
    let bits = if insn.size() == BPF_DW { "64" } else { "" };
    let name = match insn.imm & !BPF_FETCH {
        x if x == i32::from(BPF_ADD) => "add",
        x if x == i32::from(BPF_OR) => "or",
        x if x == i32::from(BPF_AND) => "and",
        x if x == i32::from(BPF_XOR) => "xor",
        _ => "",
    };
    match insn.imm {
        BPF_XCHG => write!(f, "r{src} = atomic{bits}_xchg(({size} *){mem}, r{src})"),
        BPF_CMPXCHG => write!(f, "r0 = atomic{bits}_cmpxchg(({size} *){mem}, r0, r{src})"),
        imm if !name.is_empty() && imm & BPF_FETCH != 0 => write!(
            f,
            "r{src} = atomic{bits}_fetch_{name}(({size} *){mem}, r{src})"
        ),
        _ if !name.is_empty() => {
            let sym = match name {
                "add" => "+=",
                "or" => "|=",
                "and" => "&=",
                _ => "^=",
            };
            write!(f, "lock *({size} *){mem} {sym} r{src}")
        }
        _ => write_unknown(f, insn),
    }
}

/// A BPF register. `R0` holds return values, `R1`–`R5` call arguments
/// (`R1` = context on entry), `R6`–`R9` are callee-saved, `R10` is the
/// read-only frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reg {
    /// Return value.
    R0 = 0,
    /// Argument 1; the context pointer on entry.
    R1,
    /// Argument 2.
    R2,
    /// Argument 3.
    R3,
    /// Argument 4.
    R4,
    /// Argument 5.
    R5,
    /// Callee-saved.
    R6,
    /// Callee-saved.
    R7,
    /// Callee-saved.
    R8,
    /// Callee-saved.
    R9,
    /// Frame pointer (read-only; the stack is the 512 bytes below it).
    R10,
}

impl Reg {
    /// The frame pointer, [`Reg::R10`].
    pub const FP: Reg = Reg::R10;

    /// The register number.
    pub const fn index(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.index())
    }
}

/// A memory access size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// 8 bits ([`BPF_B`]).
    B,
    /// 16 bits ([`BPF_H`]).
    H,
    /// 32 bits ([`BPF_W`]).
    W,
    /// 64 bits ([`BPF_DW`]).
    DW,
}

impl Size {
    /// The size bits of the opcode.
    pub const fn code(self) -> u8 {
        match self {
            Size::B => BPF_B,
            Size::H => BPF_H,
            Size::W => BPF_W,
            Size::DW => BPF_DW,
        }
    }

    /// Width in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
}

/// An arithmetic operation (`BPF_ALU` / `BPF_ALU64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=` (unsigned)
    Div,
    /// `|=`
    Or,
    /// `&=`
    And,
    /// `<<=`
    Lsh,
    /// `>>=` (logical)
    Rsh,
    /// `= -dst` (the operand is ignored)
    Neg,
    /// `%=` (unsigned)
    Mod,
    /// `^=`
    Xor,
    /// `=`
    Mov,
    /// `>>=` (arithmetic)
    Arsh,
}

impl AluOp {
    /// Every operation, for tests and tables.
    pub const ALL: [AluOp; 13] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];

    /// The operation bits of the opcode.
    pub const fn code(self) -> u8 {
        match self {
            AluOp::Add => BPF_ADD,
            AluOp::Sub => BPF_SUB,
            AluOp::Mul => BPF_MUL,
            AluOp::Div => BPF_DIV,
            AluOp::Or => BPF_OR,
            AluOp::And => BPF_AND,
            AluOp::Lsh => BPF_LSH,
            AluOp::Rsh => BPF_RSH,
            AluOp::Neg => BPF_NEG,
            AluOp::Mod => BPF_MOD,
            AluOp::Xor => BPF_XOR,
            AluOp::Mov => BPF_MOV,
            AluOp::Arsh => BPF_ARSH,
        }
    }
}

/// A conditional jump comparison (`BPF_JMP` / `BPF_JMP32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpOp {
    /// `==`
    Eq,
    /// `>` (unsigned)
    Gt,
    /// `>=` (unsigned)
    Ge,
    /// `dst & src != 0`
    Set,
    /// `!=`
    Ne,
    /// `>` (signed)
    Sgt,
    /// `>=` (signed)
    Sge,
    /// `<` (unsigned)
    Lt,
    /// `<=` (unsigned)
    Le,
    /// `<` (signed)
    Slt,
    /// `<=` (signed)
    Sle,
}

impl JmpOp {
    /// Every comparison, for tests and tables.
    pub const ALL: [JmpOp; 11] = [
        JmpOp::Eq,
        JmpOp::Gt,
        JmpOp::Ge,
        JmpOp::Set,
        JmpOp::Ne,
        JmpOp::Sgt,
        JmpOp::Sge,
        JmpOp::Lt,
        JmpOp::Le,
        JmpOp::Slt,
        JmpOp::Sle,
    ];

    /// The operation bits of the opcode.
    pub const fn code(self) -> u8 {
        match self {
            JmpOp::Eq => BPF_JEQ,
            JmpOp::Gt => BPF_JGT,
            JmpOp::Ge => BPF_JGE,
            JmpOp::Set => BPF_JSET,
            JmpOp::Ne => BPF_JNE,
            JmpOp::Sgt => BPF_JSGT,
            JmpOp::Sge => BPF_JSGE,
            JmpOp::Lt => BPF_JLT,
            JmpOp::Le => BPF_JLE,
            JmpOp::Slt => BPF_JSLT,
            JmpOp::Sle => BPF_JSLE,
        }
    }
}

/// Target byte order of a `BPF_END` conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Convert between host order and little-endian.
    Le,
    /// Convert between host order and big-endian (network order).
    Be,
}

/// A BPF helper function id (`enum bpf_func_id`, include/uapi/linux/bpf.h,
/// v6.18). Any id can be called; the named constants are the ones this crate
/// knows how to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Helper(pub u32);

impl Helper {
    /// `void *bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: Helper = Helper(1);
    /// `long bpf_map_update_elem(map, key, value, flags)`.
    pub const MAP_UPDATE_ELEM: Helper = Helper(2);
    /// `long bpf_map_delete_elem(map, key)`.
    pub const MAP_DELETE_ELEM: Helper = Helper(3);
    /// `u64 bpf_ktime_get_ns(void)`.
    pub const KTIME_GET_NS: Helper = Helper(5);
    /// `long bpf_trace_printk(fmt, fmt_size, ...)` (GPL only).
    pub const TRACE_PRINTK: Helper = Helper(6);
    /// `u32 bpf_get_prandom_u32(void)`.
    pub const GET_PRANDOM_U32: Helper = Helper(7);
    /// `u32 bpf_get_smp_processor_id(void)`.
    pub const GET_SMP_PROCESSOR_ID: Helper = Helper(8);
    /// `long bpf_redirect(ifindex, flags)`.
    pub const REDIRECT: Helper = Helper(23);
    /// `s64 bpf_csum_diff(from, from_size, to, to_size, seed)`.
    pub const CSUM_DIFF: Helper = Helper(28);
    /// `long bpf_xdp_adjust_head(xdp_md, delta)`.
    pub const XDP_ADJUST_HEAD: Helper = Helper(44);
    /// `long bpf_redirect_map(map, key, flags)`: the low two bits of `flags`
    /// are the action returned when the lookup fails (since 5.3).
    pub const REDIRECT_MAP: Helper = Helper(51);
    /// `long bpf_xdp_adjust_meta(xdp_md, delta)`.
    pub const XDP_ADJUST_META: Helper = Helper(54);
    /// `long bpf_xdp_adjust_tail(xdp_md, delta)`.
    pub const XDP_ADJUST_TAIL: Helper = Helper(65);
    /// `u64 bpf_xdp_get_buff_len(xdp_md)`.
    pub const XDP_GET_BUFF_LEN: Helper = Helper(188);
    /// `long bpf_xdp_load_bytes(xdp_md, offset, buf, len)`.
    pub const XDP_LOAD_BYTES: Helper = Helper(189);
    /// `long bpf_xdp_store_bytes(xdp_md, offset, buf, len)`.
    pub const XDP_STORE_BYTES: Helper = Helper(190);

    /// The helper's name without the `bpf_` prefix, if this crate knows it.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "map_lookup_elem",
            2 => "map_update_elem",
            3 => "map_delete_elem",
            5 => "ktime_get_ns",
            6 => "trace_printk",
            7 => "get_prandom_u32",
            8 => "get_smp_processor_id",
            23 => "redirect",
            28 => "csum_diff",
            44 => "xdp_adjust_head",
            51 => "redirect_map",
            54 => "xdp_adjust_meta",
            65 => "xdp_adjust_tail",
            188 => "xdp_get_buff_len",
            189 => "xdp_load_bytes",
            190 => "xdp_store_bytes",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(insn: Insn) -> String {
        insn.to_string()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn encodes_the_xsk_redirect_program_byte_for_byte() {
        // The hand-assembled program from the feasibility notes
        // (shared/lab/afxdp-from-rust-notes.md), map fd 7.
        let insns = [
            Insn::new(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 16, 0),
            Insn::new(LD_IMM64, 1, BPF_PSEUDO_MAP_FD, 0, 7),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 2),
            Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 51),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        assert_eq!(
            bytes,
            [
                0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, //
                0x18, 0x11, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
                0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, //
                0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, //
                0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn decodes_literal_bytes() {
        // r10 - 8 store: *(u64 *)(r10 - 8) = r1 ; 0x7b, dst 10, src 1, off -8.
        let insn = Insn::from_bytes([0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0]);
        assert_eq!(insn.code, BPF_STX | BPF_MEM | BPF_DW);
        assert_eq!((insn.dst(), insn.src(), insn.off, insn.imm), (10, 1, -8, 0));
        assert_eq!(text(insn), "*(u64 *)(r10 - 8) = r1");
        // A negative immediate: r0 = -1 (b7 00 .. ff ff ff ff).
        let insn = Insn::from_bytes([0xb7, 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(insn.imm, -1);
        assert_eq!(text(insn), "r0 = -1");
    }

    #[test]
    fn bytes_round_trip_and_registers_are_4_bits() {
        let insn = Insn::new(0xff, 0x1f, 0x2e, -12345, i32::MIN);
        assert_eq!((insn.dst(), insn.src()), (0x0f, 0x0e));
        assert_eq!(Insn::from_bytes(insn.to_bytes()), insn);
    }

    #[test]
    fn alu_listing() {
        let cases = [
            (Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 2), "r3 = 2"),
            (
                Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
                "r6 = r1",
            ),
            (Insn::new(BPF_ALU | BPF_MOV | BPF_K, 2, 0, 0, 7), "w2 = 7"),
            (
                Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
                "r2 += -4",
            ),
            (
                Insn::new(BPF_ALU64 | BPF_SUB | BPF_X, 2, 3, 0, 0),
                "r2 -= r3",
            ),
            (
                Insn::new(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, 255),
                "w1 &= 255",
            ),
            (
                Insn::new(BPF_ALU64 | BPF_LSH | BPF_K, 1, 0, 0, 8),
                "r1 <<= 8",
            ),
            (
                Insn::new(BPF_ALU64 | BPF_ARSH | BPF_X, 1, 2, 0, 0),
                "r1 s>>= r2",
            ),
            (
                Insn::new(BPF_ALU64 | BPF_DIV | BPF_X, 1, 2, 1, 0),
                "r1 s/= r2",
            ),
            (Insn::new(BPF_ALU64 | BPF_NEG, 4, 0, 0, 0), "r4 = -r4"),
            (
                Insn::new(BPF_ALU | BPF_END | BPF_TO_BE, 1, 0, 0, 16),
                "r1 = be16 r1",
            ),
            (
                Insn::new(BPF_ALU | BPF_END | BPF_TO_LE, 1, 0, 0, 32),
                "r1 = le32 r1",
            ),
            (
                Insn::new(BPF_ALU64 | BPF_END, 1, 0, 0, 64),
                "r1 = bswap64 r1",
            ),
            (
                Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 8, 0),
                "r1 = (s8)r2",
            ),
        ];
        for (insn, want) in cases {
            assert_eq!(text(insn), want, "{insn:?}");
        }
    }

    #[test]
    fn memory_listing() {
        let cases = [
            (
                Insn::new(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 16, 0),
                "r2 = *(u32 *)(r1 + 16)",
            ),
            (
                Insn::new(BPF_LDX | BPF_MEM | BPF_H, 3, 2, 12, 0),
                "r3 = *(u16 *)(r2 + 12)",
            ),
            (
                Insn::new(BPF_LDX | BPF_MEMSX | BPF_B, 3, 2, 0, 0),
                "r3 = *(s8 *)(r2 + 0)",
            ),
            (
                Insn::new(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0),
                "*(u32 *)(r10 - 4) = 0",
            ),
            (
                Insn::new(BPF_STX | BPF_MEM | BPF_B, 1, 5, 3, 0),
                "*(u8 *)(r1 + 3) = r5",
            ),
            (
                Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, 0),
                "lock *(u64 *)(r0 + 0) += r1",
            ),
            (
                Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 8, BPF_FETCH),
                "r1 = atomic64_fetch_add((u64 *)(r0 + 8), r1)",
            ),
            (
                Insn::new(BPF_STX | BPF_ATOMIC | BPF_W, 0, 1, 0, BPF_XCHG),
                "r1 = atomic_xchg((u32 *)(r0 + 0), r1)",
            ),
            (
                Insn::new(BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 12),
                "r0 = *(u16 *)skb[12]",
            ),
        ];
        for (insn, want) in cases {
            assert_eq!(text(insn), want, "{insn:?}");
        }
    }

    #[test]
    fn jump_listing() {
        let cases = [
            (
                Insn::new(BPF_JMP | BPF_JGT | BPF_X, 2, 3, 5, 0),
                "if r2 > r3 goto +5",
            ),
            (
                Insn::new(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3, 0),
                "if r0 == 0 goto +3",
            ),
            (
                Insn::new(BPF_JMP32 | BPF_JNE | BPF_K, 1, 0, -2, 7),
                "if w1 != 7 goto -2",
            ),
            (
                Insn::new(BPF_JMP | BPF_JSLE | BPF_X, 1, 2, 0, 0),
                "if r1 s<= r2 goto +0",
            ),
            (
                Insn::new(BPF_JMP | BPF_JSET | BPF_K, 1, 0, 1, 4),
                "if r1 & 4 goto +1",
            ),
            (Insn::new(BPF_JMP | BPF_JA, 0, 0, -7, 0), "goto -7"),
            (
                Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 51),
                "call bpf_redirect_map#51",
            ),
            (Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 9999), "call #9999"),
            (
                Insn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 4),
                "call pc+4",
            ),
            (Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0), "exit"),
        ];
        for (insn, want) in cases {
            assert_eq!(text(insn), want, "{insn:?}");
        }
    }

    #[test]
    fn ld_imm64_listing_joins_both_halves() {
        let prog = [
            Insn::new(LD_IMM64, 1, 0, 0, 0x5678_9abc_u32 as i32),
            Insn::new(0, 0, 0, 0, 0x1234),
            Insn::new(LD_IMM64, 1, BPF_PSEUDO_MAP_FD, 0, 0),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(
            Listing(&prog).to_string(),
            "   0: (18) r1 = 0x123456789abc ll\n   2: (18) r1 = map_fd[0] ll\n   4: (95) exit\n"
        );
        // Alone, the first slot says it is only half of the story.
        assert_eq!(text(prog[0]), "r1 = 0x56789abc ll (low half)");
    }

    #[test]
    fn unknown_opcodes_are_shown_raw() {
        assert_eq!(
            text(Insn::new(0xfe, 1, 2, 3, 4)),
            ".insn code=0xfe dst=r1 src=r2 off=3 imm=4"
        );
    }
}
