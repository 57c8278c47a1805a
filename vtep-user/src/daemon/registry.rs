//! The instances this host knows, read from /run/vtep: each state file says who owns the
//! instance (a live `vtep up`, or a crashed one), where it runs and what it made or adopted;
//! each info file what the instance serves (underlay, VNIs, UDP ports). `vtep up` checks a new
//! config against them and claims its name under [`lock`], so two starts cannot both pass.

use std::{fs::File, path::Path};

use anyhow::{Context as _, Result};
use nix::fcntl::{Flock, FlockArg};
use tracing::warn;

use crate::{
    daemon::undo::{State, Undo},
    instance::{Info, STATE_DIR},
};

/// Held while one `vtep up` checks the registry and claims its name; released on drop.
pub struct Lock(#[expect(dead_code, reason = "held for its drop")] Flock<File>);

/// Waits until no other `vtep up` checks or claims, then holds that off until the returned
/// lock is dropped. Fails when /run/vtep cannot be made or locked.
pub fn lock() -> Result<Lock> {
    std::fs::create_dir_all(STATE_DIR).with_context(|| format!("creating {STATE_DIR}"))?;
    // The directory itself is locked: no lock file to leave behind.
    let dir = File::open(STATE_DIR).with_context(|| format!("opening {STATE_DIR}"))?;
    Flock::lock(dir, FlockArg::LockExclusive)
        .map(Lock)
        .map_err(|(_, errno)| anyhow::Error::from(errno).context(format!("locking {STATE_DIR}")))
}

/// An instance with a state file.
pub struct Known {
    pub name: String,
    pub state: State,
    /// Whether its owner still runs; otherwise it crashed and `vtep down` is due.
    pub alive: bool,
    /// What it serves, for one whose datapath runs, that wrote it.
    pub info: Option<Info>,
}

impl Known {
    /// Whether its datapath runs: its owner does, or it was kept at a stop or a crash.
    pub fn forwards(&self) -> bool {
        self.alive || self.state.kept
    }

    /// How to refer to it in an error: its name and whether it runs.
    pub fn describe(&self) -> String {
        if self.alive {
            format!(
                "running instance `{}` (pid {})",
                self.name, self.state.owner.pid
            )
        } else if self.forwards() {
            format!(
                "stopped instance `{}` whose datapath is kept (start it again, or run `vtep down -n {}`)",
                self.name, self.name
            )
        } else {
            format!(
                "crashed instance `{}` (run `vtep down -n {}` first)",
                self.name, self.name
            )
        }
    }
}

/// Every instance with a state file in /run/vtep. A file that cannot be read is skipped with a
/// warning: it cannot name what it holds.
pub fn known() -> Vec<Known> {
    let Ok(entries) = std::fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        // Instance names have no dots: NAME.info.json is an info file.
        if name.contains('.') {
            continue;
        }
        match load(name, &entry.path()) {
            Ok(Some(known)) => out.push(known),
            Ok(None) => {}
            Err(e) => warn!("{e:#}"),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Instance `name` from its state file at `path`; `None` when it went away meanwhile.
fn load(name: &str, path: &Path) -> Result<Option<Known>> {
    let Some(undo) = Undo::load(path)? else {
        return Ok(None);
    };
    let state = undo.state().clone();
    let alive = state.owner.is_alive();
    let info = if alive || state.kept {
        Info::load(name).ok()
    } else {
        None
    };
    Ok(Some(Known {
        name: name.to_string(),
        state,
        alive,
        info,
    }))
}
