//! `vtep vni show`: the VNIs of a running instance.

use anyhow::Result;
use clap::Subcommand;

use crate::{
    cli::{Show, render},
    ctl::show,
};

#[derive(Subcommand)]
pub enum Command {
    /// List the VNIs: UDP port, local ports, flood remotes, FDB entry count.
    Show(Show),
}

/// Prints the VNIs; fails when the instance does not run.
pub fn run(command: &Command) -> Result<()> {
    let Command::Show(args) = command;
    let rows = show::vnis(&args.instance.name()?)?;
    render::print(rows.as_slice(), args.format(), render::vnis)
}
