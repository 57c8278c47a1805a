//! `vtep down`: remove what a `vtep up` that did not stop cleanly left behind, from its undo log,
//! in the network namespace the instance ran in. An instance whose `vtep up` still runs is
//! refused: that process owns it, and removing its objects under it would leave its datapath
//! attached and its own cleanup removing a successor's objects.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::{
    cli::Instance,
    daemon::{registry, undo::Undo},
    instance::{self, Namespace},
    sys::{netlink::Net, netns},
};

/// Runs the instance's undo log, printing each item that could not be removed; fails when any
/// could not, when the instance's `vtep up` still runs, or when the instance's namespace is
/// not this one and cannot be entered. No log is not an error: there is nothing to remove.
pub async fn run(which: &Instance) -> Result<()> {
    let name = which.name()?;
    // Held throughout: a `vtep up` adopting the instance meanwhile would take over a log whose
    // objects are being removed.
    let _lock = registry::lock()?;
    let path = instance::state_file(&name);
    let Some(undo) = Undo::load(&path)? else {
        println!("nothing to remove for instance `{name}`");
        return Ok(());
    };
    let owner = undo.state().owner;
    if owner.is_alive() {
        bail!(
            "instance `{name}` is running: `vtep up` (pid {}) holds it; stop that process (SIGINT or SIGTERM) and it removes what it made",
            owner.pid
        );
    }
    let n = undo.items().len();
    let errors = match place(&name, &undo.state().netns)? {
        None => undo.run(&Net::connect()?).await,
        Some(ns) => run_inside(&ns, undo)??,
    };
    for e in &errors {
        eprintln!("vtep: {e:#}");
    }
    if !errors.is_empty() {
        bail!("{} of {n} item(s) could not be removed", errors.len());
    }
    println!("removed {n} item(s) of instance `{name}`");
    Ok(())
}

/// Where the undo log of instance `name`, which ran in namespace `ns`, must run: `None` for
/// here (this is that namespace), else a path to enter it by. Fails, saying how to run `vtep
/// down` instead, when it is another namespace that cannot be found: its interfaces must not be
/// looked for under their names here.
fn place(name: &str, ns: &Namespace) -> Result<Option<PathBuf>> {
    if netns::current()? == ns.id {
        return Ok(None);
    }
    if let Some(path) = netns::find(ns.id, ns.name.as_deref()) {
        tracing::info!(
            "instance `{name}` ran in {ns}: removing its objects there ({})",
            path.display()
        );
        return Ok(Some(path));
    }
    let how = match &ns.name {
        Some(ns_name) => format!("`vtep --netns {ns_name} down -n {name}` once it is back"),
        None => format!("`vtep down -n {name}` inside it (e.g. `nsenter --net=/proc/PID/ns/net`)"),
    };
    bail!(
        "instance `{name}` ran in {ns}, which is not this network namespace and was not found under /run/netns; nothing removed. Run {how}"
    )
}

/// Runs `undo` on a thread inside the namespace `ns` opens, with a runtime of its own (netlink
/// sockets and /proc/sys/net are the opening thread's namespace's). Returns what `Undo::run`
/// returns; fails when the namespace cannot be entered or the runtime made.
fn run_inside(ns: &std::path::Path, undo: Undo) -> Result<Result<Vec<anyhow::Error>>> {
    netns::run_in(ns, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async { Ok(undo.run(&Net::connect()?).await) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{identity::FileId, netns::NetnsId};

    /// Bug (issue 9): `vtep down` run in another namespace than the instance's removed that
    /// namespace's interfaces of the same names. A namespace that is not here and cannot be
    /// found is refused, saying how to do it instead.
    #[test]
    fn a_namespace_that_is_not_here_and_cannot_be_found_is_refused() {
        let gone = Namespace {
            name: Some("vtep-test-no-such-ns".into()),
            id: NetnsId {
                file: FileId { dev: 0, ino: 1 },
                cookie: 0,
            },
        };
        let e = place("x", &gone).unwrap_err().to_string();
        assert!(
            e.contains("vtep --netns vtep-test-no-such-ns down -n x"),
            "{e}"
        );
        assert!(e.contains("nothing removed"), "{e}");
        let here = Namespace::current().unwrap();
        assert_eq!(place("x", &here).unwrap(), None);
    }
}
