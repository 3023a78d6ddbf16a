//! The assembler driven by arbitrary sequences of builder calls, labels
//! bound anywhere (or twice, or never) and jumps to any of them. `finish`
//! either names a problem or returns code whose every jump lands on an
//! instruction of the program, whose map slots are the ones loaded, and
//! whose bytes decode back to it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pktio::bpf::insn::{BPF_CALL, BPF_EXIT, BPF_JMP, BPF_JMP32, BPF_PSEUDO_MAP_FD};
use pktio::bpf::{AluOp, Asm, AsmError, ByteOrder, Code, Helper, JmpOp, Label, Reg, Size};

#[derive(Debug, Arbitrary)]
enum Op {
    NewLabel,
    Bind(u8),
    Alu64Imm(u8, u8, i32),
    Alu64Reg(u8, u8, u8),
    Alu32Imm(u8, u8, i32),
    Alu32Reg(u8, u8, u8),
    Endian(bool, u8, u32),
    Ldx(u8, u8, u8, i16),
    Stx(u8, u8, u8, i16),
    St(u8, u8, i16, i32),
    AtomicAdd(u8, u8, u8, i16),
    LdImm64(u8, u64),
    LdMapFd(u8, u8),
    JmpImm(u8, u8, i32, u8),
    JmpReg(u8, u8, u8, u8),
    Jmp32Imm(u8, u8, i32, u8),
    Ja(u8),
    Call(u32),
    Exit,
    /// Many plain instructions at once, to reach the 16-bit jump limit.
    Pad(u16),
}

const REGS: [Reg; 11] = [
    Reg::R0,
    Reg::R1,
    Reg::R2,
    Reg::R3,
    Reg::R4,
    Reg::R5,
    Reg::R6,
    Reg::R7,
    Reg::R8,
    Reg::R9,
    Reg::R10,
];
const SIZES: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];

fn reg(r: u8) -> Reg {
    REGS[usize::from(r) % REGS.len()]
}
fn size(s: u8) -> Size {
    SIZES[usize::from(s) % SIZES.len()]
}
fn alu(o: u8) -> AluOp {
    AluOp::ALL[usize::from(o) % AluOp::ALL.len()]
}
fn jmp(o: u8) -> JmpOp {
    JmpOp::ALL[usize::from(o) % JmpOp::ALL.len()]
}

fuzz_target!(|ops: Vec<Op>| {
    let mut a = Asm::new();
    // A label from another assembler: jumps to it must be reported unbound.
    let foreign = {
        let mut other = Asm::new();
        let _ = other.label();
        other.label()
    };
    let mut labels: Vec<Label> = vec![a.label(), foreign];
    let mut map_slots = 0usize;
    let pick = |labels: &Vec<Label>, i: u8| labels[usize::from(i) % labels.len()];
    for op in ops {
        match op {
            Op::NewLabel => labels.push(a.label()),
            Op::Bind(l) => {
                a.bind(pick(&labels, l));
            }
            Op::Alu64Imm(o, d, imm) => {
                a.alu64_imm(alu(o), reg(d), imm);
            }
            Op::Alu64Reg(o, d, s) => {
                a.alu64_reg(alu(o), reg(d), reg(s));
            }
            Op::Alu32Imm(o, d, imm) => {
                a.alu32_imm(alu(o), reg(d), imm);
            }
            Op::Alu32Reg(o, d, s) => {
                a.alu32_reg(alu(o), reg(d), reg(s));
            }
            Op::Endian(be, d, bits) => {
                let order = if be { ByteOrder::Be } else { ByteOrder::Le };
                a.endian(order, reg(d), bits);
            }
            Op::Ldx(s, d, src, off) => {
                a.ldx_mem(size(s), reg(d), reg(src), off);
            }
            Op::Stx(s, d, src, off) => {
                a.stx_mem(size(s), reg(d), reg(src), off);
            }
            Op::St(s, d, off, imm) => {
                a.st_mem(size(s), reg(d), off, imm);
            }
            Op::AtomicAdd(s, d, src, off) => {
                a.atomic_add(size(s), reg(d), reg(src), off);
            }
            Op::LdImm64(d, v) => {
                a.ld_imm64(reg(d), v);
            }
            Op::LdMapFd(d, slot) => {
                map_slots = map_slots.max(usize::from(slot) + 1);
                a.ld_map_fd(reg(d), u32::from(slot));
            }
            Op::JmpImm(o, d, imm, l) => {
                a.jmp_imm(jmp(o), reg(d), imm, pick(&labels, l));
            }
            Op::JmpReg(o, d, s, l) => {
                a.jmp_reg(jmp(o), reg(d), reg(s), pick(&labels, l));
            }
            Op::Jmp32Imm(o, d, imm, l) => {
                a.jmp32_imm(jmp(o), reg(d), imm, pick(&labels, l));
            }
            Op::Ja(l) => {
                a.ja(pick(&labels, l));
            }
            Op::Call(h) => {
                a.call(Helper(h));
            }
            Op::Exit => {
                a.exit();
            }
            Op::Pad(n) => {
                // Mostly short runs; now and then one long enough that a
                // jump over it needs more than 16 bits.
                let count = if n >= 0xff00 { 33_000 } else { n % 64 };
                for _ in 0..count {
                    a.mov64_imm(Reg::R0, 0);
                }
            }
        }
        if a.len() > 100_000 {
            break;
        }
    }
    let code = match a.finish() {
        Ok(c) => c,
        Err(e) => {
            // Every refusal explains itself.
            assert!(!e.to_string().is_empty());
            if let AsmError::JumpOutOfRange { offset, .. } = e {
                assert!(i16::try_from(offset).is_err());
            }
            return;
        }
    };
    let insns = code.insns();
    let mut i = 0;
    while i < insns.len() {
        let insn = &insns[i];
        let class = insn.class();
        if (class == BPF_JMP || class == BPF_JMP32)
            && insn.op() != BPF_CALL
            && insn.op() != BPF_EXIT
        {
            let target = i as i64 + 1 + i64::from(insn.off);
            assert!(
                (0..insns.len() as i64).contains(&target),
                "jump at {i} lands outside the program: {target}"
            );
        }
        i += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    assert_eq!(code.map_slots(), map_slots);
    assert!(insns
        .iter()
        .filter(|i| i.is_ld_imm64() && i.src() == BPF_PSEUDO_MAP_FD)
        .all(|i| (i.imm as u32 as usize) < map_slots));
    assert_eq!(Code::from_bytes(&code.to_bytes()).as_ref(), Ok(&code));
    if code.len() <= 1024 {
        let _ = code.listing().to_string();
    }
});
