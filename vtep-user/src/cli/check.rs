//! `vtep check -c FILE`: validate a config without touching the system.

use anyhow::Result;

use crate::{cli::ConfigFile, config::Config};

/// Prints `NAME: ok (N VNI(s))`; fails with the config's first problem.
pub fn run(file: &ConfigFile) -> Result<()> {
    let config = Config::load(&file.config)?;
    println!("{}: ok ({} VNI(s))", config.name, config.vnis.len());
    Ok(())
}
