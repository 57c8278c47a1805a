//! `vtep stats`: the counters of a running instance.

use anyhow::{Context as _, Result};

use crate::{
    cli::{Show, render},
    ctl::stats,
};

/// Prints the counters; fails when the instance does not run or its counters cannot be read.
pub fn run(args: &Show) -> Result<()> {
    let stats = stats::read(&args.instance.name()?).context("reading counters")?;
    render::print(&stats, args.format(), render::stats)
}
