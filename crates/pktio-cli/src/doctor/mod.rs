//! `pktio doctor`: read the host's network tuning. (In progress.)

use std::process::ExitCode;

/// Arguments of `pktio doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

/// Runs `pktio doctor`.
pub fn run(_a: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("doctor is not implemented yet")
}
