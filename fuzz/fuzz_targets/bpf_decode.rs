//! Arbitrary bytes as eBPF bytecode: `Code::from_bytes` takes whole 8-byte
//! instructions (or refuses a ragged tail), encoding gives the same bytes
//! back, and the bpftool-style listing renders every instruction — even
//! invalid opcodes and a 64-bit load cut off at the end — without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktio::bpf::{Code, Insn, Listing};

fuzz_target!(|data: &[u8]| {
    let code = match Code::from_bytes(data) {
        Ok(c) => c,
        Err(e) => {
            assert_ne!(data.len() % 8, 0, "refused whole instructions: {e}");
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(code.len(), data.len() / 8);
    assert_eq!(code.to_bytes(), data);
    for (insn, bytes) in code.insns().iter().zip(data.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        assert_eq!(Insn::from_bytes(b), *insn);
        assert_eq!(insn.to_bytes(), b);
        let _ = format!("{insn} {insn:?}");
        assert!(insn.dst() < 16 && insn.src() < 16);
    }
    let listing = Listing(code.insns()).to_string();
    // One line per instruction, a 64-bit load taking two slots.
    let lines = listing.lines().count();
    assert!(lines <= code.len() && (code.is_empty() || lines >= code.len().div_ceil(2)));
    let _ = code.map_slots();
});
