//! The demo's and the benchmark's lab (the `vtep-lab` crate, shared with the namespace tests),
//! removed at the end, also on Ctrl-C.

use std::{
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context as _, Result};
use vtep_lab::{Lab, Vtep};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs `body` with a lab whose names start with `prefix`, whose hosts run `vtep` and have IPv6
/// off (nothing sends on its own during a measurement), then removes the lab; on Ctrl-C the lab
/// is removed and the process exits with 130.
pub fn with_lab(prefix: &str, vtep: &Path, body: impl FnOnce(&Lab) -> Result<()>) -> Result<()> {
    let lab = Lab::new(prefix, vtep)?.quiet_hosts();
    let remover = lab.remover();
    ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: removing the lab");
        remover.remove();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    let result = body(&lab);
    lab.remove();
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The handler removed the lab (remove() above waited for it) and exits; what `body`
        // saw is only the interruption.
        std::process::exit(130);
    }
    result
}

/// Starts vtep on `ns` with `config` (see [`Lab::start_vtep`]); prints its log once it is up
/// when `show` is set.
pub fn start_vtep(lab: &Lab, ns: &str, config: &str, show: bool) -> Result<Vtep> {
    let vtep = lab.start_vtep(ns, config)?;
    if show {
        print!("{}", vtep.log());
    }
    Ok(vtep)
}
