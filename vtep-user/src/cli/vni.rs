//! `vtep vni show`: the VNIs of a running instance.

use anyhow::Result;
use clap::Subcommand;

use crate::{
    cli::{Show, render},
    ctl::show,
};

#[derive(Subcommand)]
pub enum Command {
    /// List the VNIs: UDP port, FDB entries, local ports, flood list.
    ///
    /// A table headed `vni dstport fdb_entries ports remotes`: the VXLAN UDP port of each VNI,
    /// its FDB entries (local and remote, learned included), its local ports by name (in the
    /// instance's namespace) and the remote VTEPs of its flood list (`-` for none), which
    /// `vtep fdb append` and `del` change. With -j, an array of objects with those keys.
    #[command(
        override_usage = "vtep vni show [-c FILE | -n NAME] [-j | -p]",
        after_long_help = "Examples:\n\n  vtep vni show -n dc1"
    )]
    Show(Show),
}

/// Prints the VNIs; fails when the instance does not run.
pub fn run(command: &Command) -> Result<()> {
    let Command::Show(args) = command;
    let rows = show::vnis(&args.instance.name()?)?;
    render::print(rows.as_slice(), args.format(), render::vnis)
}
