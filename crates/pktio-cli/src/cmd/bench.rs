//! `pktio bench`: the benchmark matrix. (In progress.)

use std::process::ExitCode;

/// Arguments of `pktio bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs `pktio bench`.
pub fn run(_a: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench is not implemented yet")
}
