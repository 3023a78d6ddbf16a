//! `pktio lab up | down | exec`. (In progress.)

use std::process::ExitCode;

/// Arguments of `pktio lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {}

/// Runs `pktio lab`.
pub fn run(_a: LabArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("lab is not implemented yet")
}
