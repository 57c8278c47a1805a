//! `vtep down`: remove what a `vtep up` that did not stop cleanly left behind, from its undo log.

use anyhow::{Result, bail};

use crate::{cli::Instance, daemon::undo::Undo, instance, sys::netlink::Net};

/// Runs the instance's undo log, printing each item that could not be removed; fails when any
/// could not. No log is not an error: there is nothing to remove.
pub async fn run(which: &Instance) -> Result<()> {
    let name = which.name()?;
    let path = instance::state_file(&name);
    let Some(undo) = Undo::load(&path)? else {
        println!("nothing to remove for instance `{name}`");
        return Ok(());
    };
    let n = undo.items().len();
    let errors = undo.run(&Net::connect()?).await;
    for e in &errors {
        eprintln!("vtep: {e:#}");
    }
    if !errors.is_empty() {
        bail!("{} of {n} item(s) could not be removed", errors.len());
    }
    println!("removed {n} item(s) of instance `{name}`");
    Ok(())
}
