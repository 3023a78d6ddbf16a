//! `pktio tcp-recv` / `pktio tcp-send`: the TCP receive benchmark engines. (In progress.)

use std::process::ExitCode;

/// Arguments of `pktio tcp-recv`.
#[derive(Debug, clap::Args)]
pub struct RecvArgs {}

/// Arguments of `pktio tcp-send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {}

/// Runs `pktio tcp-recv`.
pub fn recv(_a: RecvArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tcp-recv is not implemented yet")
}

/// Runs `pktio tcp-send`.
pub fn send(_a: SendArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tcp-send is not implemented yet")
}
