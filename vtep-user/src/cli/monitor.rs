//! `vtep monitor`: print a running instance's miss events, or its dropped packets (`--drops`),
//! as they happen.

use std::io::Write as _;

use anyhow::Result;

use crate::{
    cli::{Instance, render},
    ctl::{drops::Drops, monitor::Events},
};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub instance: Instance,
    /// One JSON object per line instead of text.
    #[arg(short, long)]
    pub json: bool,
    /// Exit after printing N events (or drops).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Instead of miss events, the packets the datapath drops, sampled (see --rate).
    ///
    /// Each with its reason, the interface and program, the VNI and remote VTEP where the
    /// packet says, its length and a summary of its headers.
    #[arg(long)]
    pub drops: bool,
    /// With --drops: at most N samples per second per CPU (1..=100000).
    ///
    /// A flood of bad packets then costs the datapath and the monitor no more than this.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "drops",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rate: u64,
}

/// `vtep monitor --help` ends with these (the man page's EXAMPLES).
pub const EXAMPLES: &str = "Examples:

Watch instance dc1's miss events as JSON lines:

  vtep monitor -n dc1 -j

Print the next 10 packets instance dc1 drops:

  vtep monitor --drops -n dc1 --count 10";

/// Prints one line per event (a JSON object with `json`) until `count` were printed (at least
/// one), forever without it. Fails when the instance is not running or stops, or stdout is closed.
pub fn run(args: &Args) -> Result<()> {
    if args.drops {
        return run_drops(args);
    }
    let mut events = Events::open(&args.instance.name()?)?;
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    loop {
        let event = events.wait()?;
        let line = if args.json {
            serde_json::to_string(&event)?
        } else {
            render::event(&event)
        };
        writeln!(out, "{line}")?;
        out.flush()?;
        printed += 1;
        if args.count.is_some_and(|c| printed >= c) {
            return Ok(());
        }
    }
}

/// `vtep monitor --drops`: one line per sampled drop, as [`run`] prints events.
fn run_drops(args: &Args) -> Result<()> {
    let mut drops = Drops::open(&args.instance.name()?, args.rate)?;
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    loop {
        let drop = drops.wait()?;
        let line = if args.json {
            serde_json::to_string(&drop)?
        } else {
            render::drop(&drop)
        };
        writeln!(out, "{line}")?;
        out.flush()?;
        printed += 1;
        if args.count.is_some_and(|c| printed >= c) {
            return Ok(());
        }
    }
}
