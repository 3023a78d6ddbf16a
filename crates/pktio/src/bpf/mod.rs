//! The XDP steering program, generated in Rust. (In progress on branch bpf.)

/// BPF errors.
#[derive(Debug, thiserror::Error)]
#[error("bpf")]
pub struct BpfError;
