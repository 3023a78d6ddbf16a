//! A minimal BTF reader: the type id of a kernel function, by name, from
//! the kernel's own BTF (`/sys/kernel/btf/vmlinux`, kernel 5.4 with
//! `CONFIG_DEBUG_INFO_BTF`). That id is what a kfunc call instruction
//! carries (`BPF_PSEUDO_KFUNC_CALL`, `imm` = the `BTF_KIND_FUNC` id).
//!
//! Only the layout needed to walk the type section is decoded: the header,
//! each type's common part and the size of its kind-specific tail
//! (`include/uapi/linux/btf.h`, v6.18). Pure code; the file is read by
//! [`Btf::vmlinux`].

use std::collections::HashMap;

use super::BpfError;

/// `BTF_MAGIC`.
const MAGIC: u16 = 0xeb9f;

/// `BTF_KIND_FUNC`.
const KIND_FUNC: u32 = 12;

/// Why a BTF blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// Not BTF, or cut short.
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    /// A kind this reader does not know (a newer kernel's BTF).
    #[error("unknown BTF kind {kind} at type id {id}")]
    UnknownKind {
        /// The kind number.
        kind: u32,
        /// The type id.
        id: u32,
    },
}

/// The functions (`BTF_KIND_FUNC`) of a BTF blob, by name.
#[derive(Debug, Clone, Default)]
pub struct Btf {
    funcs: HashMap<String, u32>,
    types: u32,
}

fn rd32(b: &[u8], at: usize, le: bool) -> Result<u32, BtfError> {
    let s: [u8; 4] = b
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or(BtfError::Malformed("truncated"))?;
    Ok(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

impl Btf {
    /// Parses a BTF blob (either byte order, as the magic says).
    ///
    /// # Errors
    /// [`BtfError`] for a bad magic, a section outside the blob, a type
    /// record cut short, or a kind unknown to this reader.
    pub fn parse(b: &[u8]) -> Result<Btf, BtfError> {
        let le = match b.get(0..2) {
            Some([0x9f, 0xeb]) => true,
            Some([0xeb, 0x9f]) => false,
            _ => return Err(BtfError::Malformed("bad magic")),
        };
        debug_assert_eq!(MAGIC, 0xeb9f);
        let hdr_len = rd32(b, 4, le)? as usize;
        let type_off = rd32(b, 8, le)? as usize;
        let type_len = rd32(b, 12, le)? as usize;
        let str_off = rd32(b, 16, le)? as usize;
        let str_len = rd32(b, 20, le)? as usize;
        let types = b
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or(BtfError::Malformed("type section outside the blob"))?;
        let strs = b
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed("string section outside the blob"))?;
        let name = |off: u32| -> Option<&str> {
            let s = strs.get(off as usize..)?;
            let end = s.iter().position(|&c| c == 0)?;
            std::str::from_utf8(&s[..end]).ok()
        };
        let mut funcs = HashMap::new();
        let mut at = 0usize;
        let mut id = 0u32;
        while at < types.len() {
            id += 1;
            let name_off = rd32(types, at, le)?;
            let info = rd32(types, at + 4, le)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let tail = match kind {
                // INT: one u32 of encoding.
                1 => 4,
                // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
                2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
                // ARRAY: struct btf_array.
                3 => 12,
                // STRUCT, UNION: btf_member × vlen; DATASEC: btf_var_secinfo × vlen;
                // ENUM64: btf_enum64 × vlen.
                4 | 5 | 15 | 19 => 12 * vlen,
                // ENUM: btf_enum × vlen; FUNC_PROTO: btf_param × vlen.
                6 | 13 => 8 * vlen,
                // VAR: btf_var; DECL_TAG: btf_decl_tag.
                14 | 17 => 4,
                _ => return Err(BtfError::UnknownKind { kind, id }),
            };
            if kind == KIND_FUNC {
                if let Some(n) = name(name_off) {
                    funcs.entry(n.to_string()).or_insert(id);
                }
            }
            at += 12 + tail;
            if at > types.len() {
                return Err(BtfError::Malformed("type record cut short"));
            }
        }
        Ok(Btf { funcs, types: id })
    }

    /// Reads and parses the running kernel's BTF, `/sys/kernel/btf/vmlinux`.
    ///
    /// # Errors
    /// [`BpfError::Sys`] when the file cannot be read (a kernel built
    /// without `CONFIG_DEBUG_INFO_BTF`); [`BpfError::Btf`] when it does not parse.
    pub fn vmlinux() -> Result<Btf, BpfError> {
        const PATH: &str = "/sys/kernel/btf/vmlinux";
        let bytes = std::fs::read(PATH).map_err(|source| crate::SysError {
            call: "read(/sys/kernel/btf/vmlinux)",
            source,
        })?;
        Ok(Btf::parse(&bytes)?)
    }

    /// The type id of function `name`, if the BTF has one.
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.funcs.get(name).copied()
    }

    /// Number of types (the highest type id).
    pub fn type_count(&self) -> u32 {
        self.types
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian BTF blob: an INT, a FUNC_PROTO with one param, two
    /// FUNCs, a STRUCT with two members, an ENUM with one value.
    pub(crate) fn sample() -> Vec<u8> {
        let strs = b"\0int\0proto_arg\0bpf_xdp_metadata_rx_hash\0other\0s\0a\0b\0e\0V\0";
        let off = |s: &str| {
            let pos = strs
                .windows(s.len() + 1)
                .position(|w| w[..s.len()] == *s.as_bytes() && w[s.len()] == 0);
            pos.unwrap() as u32
        };
        let mut t: Vec<u32> = Vec::new();
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        // 1: INT "int", size 4, encoding.
        t.extend([off("int"), info(1, 0), 4, 32]);
        // 2: FUNC_PROTO returning 1, one param.
        t.extend([0, info(13, 1), 1, off("proto_arg"), 1]);
        // 3: FUNC bpf_xdp_metadata_rx_hash -> proto 2.
        t.extend([off("bpf_xdp_metadata_rx_hash"), info(12, 0), 2]);
        // 4: STRUCT s, two members.
        t.extend([off("s"), info(4, 2), 8, off("a"), 1, 0, off("b"), 1, 32]);
        // 5: ENUM e, one value.
        t.extend([off("e"), info(6, 1), 4, off("V"), 0]);
        // 6: FUNC other -> proto 2.
        t.extend([off("other"), info(12, 0), 2]);
        let types: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strs.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&types);
        b.extend_from_slice(strs);
        b
    }

    #[test]
    fn finds_functions_by_name() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.type_count(), 6);
        assert_eq!(btf.func_id("bpf_xdp_metadata_rx_hash"), Some(3));
        assert_eq!(btf.func_id("other"), Some(6));
        assert_eq!(btf.func_id("int"), None, "an INT is not a function");
        assert_eq!(btf.func_id("missing"), None);
    }

    #[test]
    fn refuses_broken_blobs() {
        assert_eq!(
            Btf::parse(b"nope").unwrap_err(),
            BtfError::Malformed("bad magic")
        );
        let mut short = sample();
        // Type section longer than the blob.
        short[12] = 0xff;
        assert!(Btf::parse(&short).is_err());
        let mut cut = sample();
        // Claim the type section ends in the middle of the last record.
        let tl = u32::from_le_bytes(cut[12..16].try_into().unwrap()) - 4;
        cut[12..16].copy_from_slice(&tl.to_le_bytes());
        assert_eq!(
            Btf::parse(&cut).unwrap_err(),
            BtfError::Malformed("type record cut short")
        );
        let mut unknown = sample();
        // Kind 31 on type 1.
        unknown[24 + 7] = 31;
        assert_eq!(
            Btf::parse(&unknown).unwrap_err(),
            BtfError::UnknownKind { kind: 31, id: 1 }
        );
    }

    #[test]
    fn running_kernel_has_the_xdp_metadata_kfuncs() {
        // Reading /sys/kernel/btf/vmlinux takes no privilege: a failure
        // is a failure.
        let btf = Btf::vmlinux().expect("the running kernel's BTF");
        assert!(btf.type_count() > 1000);
        let hash = btf.func_id("bpf_xdp_metadata_rx_hash");
        let ts = btf.func_id("bpf_xdp_metadata_rx_timestamp");
        assert!(
            hash.is_some() && ts.is_some() && hash != ts,
            "{hash:?} {ts:?}"
        );
    }
}
