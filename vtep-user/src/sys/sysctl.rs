//! Kernel parameters under /proc/sys (of the calling network namespace for net/*).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key)
}

/// The value of `key`; fails when it cannot be read (outside the initial network namespace some
/// keys are not there).
pub fn get(key: &str) -> Result<String> {
    let p = path(key);
    let v = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(v.trim().to_string())
}

/// Sets `key` to `value` and returns the previous value.
pub fn set(key: &str, value: &str) -> Result<String> {
    let p = path(key);
    let old = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    std::fs::write(&p, value).with_context(|| format!("writing {}", p.display()))?;
    Ok(old.trim().to_string())
}

/// Puts `key` back to `value`; a key that no longer exists (its interface is gone) is fine.
pub fn restore(key: &str, value: &str) -> Result<()> {
    let p = path(key);
    match std::fs::write(&p, value) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("writing {}", p.display()))
        }
        _ => Ok(()),
    }
}
