//! `vtep stats`: the counters of a running instance.

use anyhow::{Context as _, Result};

use crate::{
    cli::{Show, render},
    ctl::stats,
};

/// `vtep stats --help` ends with these (the man page's EXAMPLES).
pub const EXAMPLES: &str = "Examples:

  vtep stats -n dc1

The drop counters alone, with jq:

  vtep stats -n dc1 -j | jq .drops";

/// Prints the counters; fails when the instance does not run or its counters cannot be read.
pub fn run(args: &Show) -> Result<()> {
    let stats = stats::read(&args.instance.name()?).context("reading counters")?;
    render::print(&stats, args.format(), render::stats)
}
