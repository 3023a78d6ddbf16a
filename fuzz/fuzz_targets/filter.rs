//! The capture filter: arbitrary text through the parser, and whatever it
//! accepts through both compilers.
//!
//! - parsing never panics, and an accepted filter prints (canonical form)
//!   to text that parses back to the same syntax tree;
//! - the XDP program assembles with every jump inside the program and an
//!   `exit` at the end;
//! - the classic BPF program passes the checks the kernel's
//!   `bpf_check_classic` makes (jumps in range, scratch slots below 16, no
//!   division by a zero constant, a `ret` at the end), and, run by a small
//!   interpreter on frames from the input (no VLAN tag in the metadata, as
//!   for a frame whose tag stayed in its bytes), agrees with the reference
//!   evaluator, `Filter::matches`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pktio::bpf::insn::{BPF_CALL, BPF_EXIT, BPF_JMP, BPF_JMP32};
use pktio::filter::{Filter, SockFilter};

#[derive(Debug)]
struct Input {
    text: String,
    frames: Vec<Vec<u8>>,
    snaplen: u32,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // Mostly filter-like words, so that the parser gets past the lexer.
        const WORDS: &[&str] = &[
            "ip",
            "ip6",
            "arp",
            "tcp",
            "udp",
            "icmp",
            "icmp6",
            "vlan",
            "host",
            "net",
            "port",
            "portrange",
            "src",
            "dst",
            "and",
            "or",
            "not",
            "(",
            ")",
            "&&",
            "||",
            "!",
            "len",
            "less",
            "greater",
            "proto",
            "ether",
            "broadcast",
            "multicast",
            "198.18.0.1",
            "198.18.0.0/15",
            "10.0.0.0/8",
            "2001:db8::1",
            "fe80::/10",
            "0",
            "1",
            "53",
            "4242",
            "65535",
            "65536",
            "1-1024",
            "[",
            "]",
            ":",
            "=",
            "==",
            "!=",
            "<",
            ">",
            "<=",
            ">=",
            "&",
            "|",
            "+",
            "-",
            "*",
            "/",
            "0x800",
            "12",
            "2",
            "4",
            "tcp[13]",
            "ip[8]",
            "udp[0:2]",
            "02:00:c6:12:00:01",
        ];
        let mut text = String::new();
        let n = u.int_in_range(0..=24)?;
        for _ in 0..n {
            if u.ratio(1, 8)? {
                let s: &str = u.arbitrary()?;
                text.push_str(s);
            } else {
                text.push_str(u.choose(WORDS)?);
            }
            if u.ratio(7, 8)? {
                text.push(' ');
            }
        }
        Ok(Input {
            text,
            frames: u.arbitrary()?,
            snaplen: u.arbitrary()?,
        })
    }
}

// Classic BPF opcode parts (<linux/bpf_common.h>, <linux/filter.h>).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const SKF_AD_OFF: i64 = -0x1000;
const SKF_AD_VLAN_TAG: i64 = 44;
const SKF_AD_VLAN_TAG_PRESENT: i64 = 48;

/// What the kernel's `bpf_check_classic` would refuse, if anything.
fn check_classic(p: &[SockFilter]) -> Result<(), String> {
    if p.is_empty() || p.len() > 4096 {
        return Err(format!("{} instructions", p.len()));
    }
    for (pc, i) in p.iter().enumerate() {
        let class = i.code & 0x07;
        let mode = i.code & 0xe0;
        match class {
            LD | LDX if mode == 0x60 && i.k >= 16 => return Err(format!("{pc}: M[{}]", i.k)),
            ST | STX if i.k >= 16 => return Err(format!("{pc}: M[{}]", i.k)),
            ALU if i.code & 0x08 == 0 && matches!(i.code & 0xf0, 0x30 | 0x90) && i.k == 0 => {
                return Err(format!("{pc}: division by constant 0"))
            }
            JMP => {
                let rest = p.len() - pc - 1;
                if i.code & 0xf0 == 0x00 {
                    if i.k as usize >= rest {
                        return Err(format!("{pc}: ja past the end"));
                    }
                } else if usize::from(i.jt) >= rest || usize::from(i.jf) >= rest {
                    return Err(format!("{pc}: jump past the end"));
                }
            }
            _ => {}
        }
    }
    match p.last() {
        Some(i) if i.code & 0x07 == RET => Ok(()),
        _ => Err("does not end with ret".into()),
    }
}

/// Runs a classic BPF program on `frame` as a packet socket would (no VLAN
/// metadata). `None` when it uses data this interpreter does not model.
fn run_classic(p: &[SockFilter], frame: &[u8]) -> Option<u32> {
    let (mut a, mut x, mut m) = (0u32, 0u32, [0u32; 16]);
    let load = |off: i64, size: usize| -> Result<u32, Option<u32>> {
        if off >= SKF_AD_OFF && off < 0 {
            return match off - SKF_AD_OFF {
                SKF_AD_VLAN_TAG | SKF_AD_VLAN_TAG_PRESENT => Ok(0),
                _ => Err(None),
            };
        }
        if off < 0 {
            return Err(None);
        }
        let off = off as usize;
        match frame.get(off..off + size) {
            Some(b) => Ok(b.iter().fold(0u32, |v, &c| v << 8 | u32::from(c))),
            // A load past the end ends the program with 0.
            None => Err(Some(0)),
        }
    };
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = *p.get(pc)?;
        pc += 1;
        let size = match i.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        match i.code & 0x07 {
            LD => {
                a = match i.code & 0xe0 {
                    0x00 => i.k,
                    0x20 => match load(i.k as i32 as i64, size) {
                        Ok(v) => v,
                        Err(r) => return r,
                    },
                    0x40 => match load(i64::from(x) + i64::from(i.k as i32), size) {
                        Ok(v) => v,
                        Err(r) => return r,
                    },
                    0x60 => m[i.k as usize & 15],
                    0x80 => frame.len() as u32,
                    _ => return None,
                }
            }
            LDX => {
                x = match i.code & 0xe0 {
                    0x00 => i.k,
                    0x60 => m[i.k as usize & 15],
                    0x80 => frame.len() as u32,
                    0xa0 => match load(i64::from(i.k), 1) {
                        Ok(v) => (v & 0x0f) * 4,
                        Err(r) => return r,
                    },
                    _ => return None,
                }
            }
            ST => m[i.k as usize & 15] = a,
            STX => m[i.k as usize & 15] = x,
            ALU => {
                let v = if i.code & 0x08 != 0 { x } else { i.k };
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(v),
                    0x10 => a.wrapping_sub(v),
                    0x20 => a.wrapping_mul(v),
                    0x30 => match a.checked_div(v) {
                        Some(q) => q,
                        None => return Some(0),
                    },
                    0x40 => a | v,
                    0x50 => a & v,
                    0x60 => a.checked_shl(v).unwrap_or(0),
                    0x70 => a.checked_shr(v).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => match a.checked_rem(v) {
                        Some(r) => r,
                        None => return Some(0),
                    },
                    0xa0 => a ^ v,
                    _ => return None,
                }
            }
            JMP => {
                let v = if i.code & 0x08 != 0 { x } else { i.k };
                let taken = match i.code & 0xf0 {
                    0x00 => {
                        pc += i.k as usize;
                        continue;
                    }
                    0x10 => a == v,
                    0x20 => a > v,
                    0x30 => a >= v,
                    0x40 => a & v != 0,
                    _ => return None,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            RET => return Some(if i.code & 0x18 == 0x10 { a } else { i.k }),
            MISC => {
                if i.code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
            _ => return None,
        }
    }
    None
}

fuzz_target!(|i: Input| {
    let f = match Filter::parse(&i.text) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // The canonical form parses back to the same tree.
    if let Some(e) = f.expr() {
        let canon = e.to_string();
        let again = Filter::parse(&canon)
            .unwrap_or_else(|err| panic!("{:?} printed as {canon:?}, which fails: {err}", i.text));
        assert_eq!(again.expr(), Some(e), "{:?} printed as {canon:?}", i.text);
    }

    if let Ok(code) = f.xdp_program() {
        let insns = code.insns();
        assert!(insns.last().is_some_and(|l| l.code == (BPF_JMP | BPF_EXIT)));
        let mut pc = 0;
        while pc < insns.len() {
            let insn = &insns[pc];
            let class = insn.class();
            if (class == BPF_JMP || class == BPF_JMP32)
                && insn.op() != BPF_CALL
                && insn.op() != BPF_EXIT
            {
                let t = pc as i64 + 1 + i64::from(insn.off);
                assert!((0..insns.len() as i64).contains(&t), "jump at {pc} to {t}");
            }
            pc += if insn.is_ld_imm64() { 2 } else { 1 };
        }
        let _ = code.listing().to_string();
    }

    let snaplen = i.snaplen.max(1);
    let Ok(prog) = f.cbpf_program(snaplen) else {
        return;
    };
    let insns = prog.insns();
    if let Err(e) = check_classic(insns) {
        panic!(
            "{:?}: the kernel would refuse the classic BPF program: {e}",
            i.text
        );
    }
    let _ = prog.listing().to_string();
    for frame in i.frames.iter().take(8) {
        let want = f.matches(frame);
        if let Some(r) = run_classic(insns, frame) {
            assert_eq!(
                r != 0,
                want,
                "{:?} on {frame:02x?}: classic BPF says {r}, the evaluator {want}",
                i.text
            );
        }
    }
});
