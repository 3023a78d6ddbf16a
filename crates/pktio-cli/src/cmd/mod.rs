//! One module per subcommand.

pub mod bench;
pub mod capture;
pub mod doctor;
pub mod gen;
pub mod lab;
pub mod latency;
pub mod soak;
pub mod tcp;
pub mod xsk;

/// Finds advice for an error chain: for an interface whose XDP hook is
/// taken, the flags that do without XDP; else the advice of the first
/// `SysError` in the chain.
pub fn hint_for(e: &anyhow::Error) -> Option<&'static str> {
    let busy = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<pktio::bpf::BpfError>(),
            Some(pktio::bpf::BpfError::Busy { .. })
        )
    });
    if busy {
        return Some(
            "to run beside that program without XDP: rxdrop/txpush/l2fwd/bench with \
             --backend v3 (or v2, uring: AF_PACKET), capture without --steal",
        );
    }
    e.chain()
        .find_map(|c| c.downcast_ref::<pktio::SysError>())
        .and_then(|s| s.hint())
}
