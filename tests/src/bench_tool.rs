//! What the bench tools in `src/bin` (`prog-cost`, `ageing-cost`) share: cleaning up their
//! namespace when a signal ends them, and keeping the measuring thread on one CPU.

use anyhow::{Context as _, Result};
use nix::{
    sched::{CpuSet, sched_setaffinity},
    sys::signal::{SigSet, Signal},
    unistd::Pid,
};

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and returns them. Called before any
/// other thread exists, so every thread inherits the mask and only [`remove_namespace_on`]'s
/// watcher takes them (a pending one waits for it).
pub fn block_exit_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block().context("blocking signals")?;
    Ok(set)
}

/// On any of `signals`, removes namespace `ns` and exits, saying so as `tool` (the fixture's
/// `Drop` does not run when a signal ends the process).
pub fn remove_namespace_on(tool: &'static str, signals: SigSet, ns: String) {
    std::thread::spawn(move || {
        if let Ok(sig) = signals.wait() {
            eprintln!("{tool}: {sig}, removing namespace {ns}");
            vtep_lab::delete_netns(&ns);
            std::process::exit(128 + sig as i32);
        }
    });
}

/// Keeps the calling thread on `cpu`, saying so as `tool`.
pub fn pin_to(tool: &str, cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))?;
    eprintln!("{tool}: measuring on CPU {cpu}");
    Ok(())
}
