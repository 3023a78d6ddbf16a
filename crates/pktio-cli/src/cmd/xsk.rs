//! `pktio rxdrop | txpush | l2fwd`. (In progress.)

use std::process::ExitCode;

/// Arguments of `pktio rxdrop`.
#[derive(Debug, clap::Args)]
pub struct RxdropArgs {}
/// Arguments of `pktio txpush`.
#[derive(Debug, clap::Args)]
pub struct TxpushArgs {}
/// Arguments of `pktio l2fwd`.
#[derive(Debug, clap::Args)]
pub struct L2fwdArgs {}

/// Runs `pktio rxdrop`.
pub fn rxdrop(_a: RxdropArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// Runs `pktio txpush`.
pub fn txpush(_a: TxpushArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// Runs `pktio l2fwd`.
pub fn l2fwd(_a: L2fwdArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
