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

/// Finds advice for the first `SysError` in an error chain.
pub fn hint_for(e: &anyhow::Error) -> Option<&'static str> {
    e.chain()
        .find_map(|c| c.downcast_ref::<pktio::SysError>())
        .and_then(|s| s.hint())
}
