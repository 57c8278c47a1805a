//! `vtep reload`: make a running instance apply its config file as the file is now (SIGHUP to
//! its `vtep up`), and wait for the outcome, which the instance writes.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::{
    cli::Instance,
    config::Config,
    daemon::{ReloadOutcome, undo::Undo},
    instance::{self, Info},
};

/// How long a reload may take (it loads the programs through the verifier) before the command
/// gives up waiting; the instance goes on with it.
const WAIT: Duration = Duration::from_secs(120);

/// Signals the instance and prints what its reload came to. Fails when no instance of the name
/// runs, the config file given is not the one it runs or is invalid (checked here first, for
/// an immediate answer; nothing is signalled then), or the reload failed (the instance runs on
/// with what it had, or with what was applied, as the message says).
pub fn run(which: &Instance) -> Result<()> {
    let name = which.name()?;
    let Some(undo) = Undo::load(&instance::state_file(&name))? else {
        bail!("no running instance `{name}`: nothing to reload");
    };
    let owner = undo.state().owner;
    if owner.is_alive() && !undo.state().signals {
        bail!(
            "instance `{name}` runs an older `vtep up` (pid {}), which cannot reload (SIGHUP would end it); restart it with this vtep",
            owner.pid
        );
    }
    if !owner.is_alive() {
        bail!(
            "instance `{name}` is not running (its process {} is gone): `vtep up` starts it, adopting its datapath when that was kept",
            owner.pid
        );
    }
    let runs = Info::load(&name).ok().and_then(|i| i.config);
    if let Some(given) = &which.config {
        let given = std::path::absolute(given)?;
        if let Some(runs) = &runs
            && *runs != given
        {
            bail!(
                "instance `{name}` runs {}, not {}: a reload reads the file the instance was started with; edit that one",
                runs.display(),
                given.display()
            );
        }
    }
    if let Some(runs) = &runs {
        Config::load(runs)?;
    }
    let before = ReloadOutcome::load(&name).map_or(0, |o| o.generation);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(owner.pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("signalling `vtep up` (pid {})", owner.pid))?;
    let asked = Instant::now();
    loop {
        if let Some(outcome) = ReloadOutcome::load(&name).filter(|o| o.generation > before) {
            if outcome.ok {
                println!("{}", outcome.message);
                return Ok(());
            }
            bail!("reload failed: {}", outcome.message);
        }
        if asked.elapsed() > WAIT {
            bail!("instance `{name}` did not report its reload within {WAIT:?}; see its log");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
