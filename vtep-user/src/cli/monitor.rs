//! `vtep monitor`: print a running instance's miss events as they happen.

use std::io::Write as _;

use anyhow::Result;

use crate::{
    cli::{Instance, render},
    ctl::monitor::Events,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub instance: Instance,
    /// JSON lines.
    #[arg(short, long)]
    pub json: bool,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Prints one line per event (a JSON object with `json`) until `count` were printed (at least
/// one), forever without it. Fails when the instance is not running or stops, or stdout is closed.
pub fn run(args: &Args) -> Result<()> {
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
