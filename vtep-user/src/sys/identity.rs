//! What tells a kernel object from another one of the same name: a file's device and inode (a
//! network namespace's nsfs file, a pin directory, a state file), a process's pid and start
//! time. Names are reused (a namespace deleted and added again by hand, a pid after a reboot or
//! a wrap-around); these are not, for as long as the object lives.

use std::{os::unix::fs::MetadataExt as _, path::Path};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// The identity of a file: its device and inode. For `/run/netns/NAME` or `/proc/…/ns/net`
/// this is the network namespace itself (what `ip netns identify` compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// The identity of the file at `path` (following symlinks), or `None` when there is none.
    /// Fails when it exists but cannot be examined.
    pub fn of(path: &Path) -> Result<Option<Self>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(Self {
                dev: m.dev(),
                ino: m.ino(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("examining {}", path.display())),
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// A process: its pid and its start time (clock ticks after boot, field 22 of
/// `/proc/PID/stat`), so that a later process given the same pid is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub start: u64,
}

impl Process {
    /// The calling process. Fails when /proc cannot be read.
    pub fn current() -> Result<Self> {
        let pid = std::process::id();
        Self::running(pid)?
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat does not describe this process"))
    }

    /// The process `pid` while it runs; `None` when there is none, or only its zombie is left.
    /// Fails when its stat file exists but cannot be read or parsed.
    pub fn running(pid: u32) -> Result<Option<Self>> {
        let path = format!("/proc/{pid}/stat");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        };
        let (state, start) = parse_stat(&text).with_context(|| format!("parsing {path}"))?;
        // A zombie (Z) or a process being reaped (X) holds nothing any more.
        Ok((state != 'Z' && state != 'X').then_some(Self { pid, start }))
    }

    /// Whether this very process still runs (same pid, same start time).
    pub fn is_alive(&self) -> bool {
        matches!(Self::running(self.pid), Ok(Some(p)) if p == *self)
    }
}

/// The state letter and the start time of a `/proc/PID/stat` line. The command name (field 2)
/// is in parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`. `None` when the line is not one.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Field 3 is the state; start time is field 22, i.e. 19 further on.
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 200 0 0 0 3 1 0 0 20 0 3 0 \
                    987654 12345678 900 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 987_654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Process::current().unwrap();
        assert!(me.is_alive());
        let reused = Process {
            start: me.start + 1,
            ..me
        };
        assert!(
            !reused.is_alive(),
            "a pid with another start time is another process"
        );
    }
}
