//! The BPF filesystem the maps are pinned in.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::sys::identity::FileId;

const BPFFS_ROOT: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Whether the BPF filesystem is what /sys/fs/bpf shows: not under `ip netns exec`, which
/// mounts a fresh /sys without it. Fails when the mount point cannot be examined.
pub fn is_mounted() -> Result<bool> {
    let st =
        nix::sys::statfs::statfs(BPFFS_ROOT).with_context(|| format!("statfs {BPFFS_ROOT}"))?;
    Ok(st.filesystem_type().0 as i64 == BPF_FS_MAGIC)
}

/// Mounts the BPF filesystem at /sys/fs/bpf when nothing is mounted there, as systemd does on
/// most distributions. It stays mounted: other BPF tools share it.
/// Fails when the mount point cannot be examined or mounting fails.
pub fn ensure_mounted() -> Result<()> {
    if is_mounted()? {
        return Ok(());
    }
    nix::mount::mount(
        Some("bpffs"),
        BPFFS_ROOT,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting the BPF filesystem on {BPFFS_ROOT}"))
}

/// Creates directory `dir` (and its parents) for pins and returns its identity. Tries again
/// when another instance's cleanup removed the shared parent meanwhile (it removes it when it
/// looks empty). Fails when it cannot be made.
pub fn create_dir(dir: &Path) -> Result<FileId> {
    for _ in 0..3 {
        match std::fs::create_dir_all(dir) {
            Ok(()) => {
                if let Some(id) = FileId::of(dir)? {
                    return Ok(id);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!(
        "creating {}: its parent keeps disappearing (other instances cleaning up?)",
        dir.display()
    )
}

/// Why /sys/fs/bpf here is not the host's BPF filesystem, or `None` when it is (or nothing
/// says otherwise). Pins made in a private one are seen by no other `vtep` command: `ip netns
/// exec NS` gives the command a mount namespace with a /sys of its own (mounted with NS as its
/// source), where a new bpffs would be mounted. Without that mark, /sys/fs/bpf is compared with
/// PID 1's when the process may look at PID 1's root.
pub fn private_reason() -> Option<String> {
    if let Some(ns) = sys_of_ip_netns_exec() {
        return Some(format!(
            "this process runs under `ip netns exec {ns}`, which gives it a /sys, and so a \
             /sys/fs/bpf, of its own; use `vtep --netns {ns} ...` instead"
        ));
    }
    use std::os::unix::fs::MetadataExt as _;
    let ours = std::fs::metadata(BPFFS_ROOT).ok()?;
    let host = std::fs::metadata(format!("/proc/1/root{BPFFS_ROOT}")).ok()?;
    ((ours.dev(), ours.ino()) != (host.dev(), host.ino())).then(|| {
        "this process has a mount namespace with a /sys/fs/bpf of its own (not PID 1's); run \
         vtep in the host's mount namespace, with `vtep --netns NS ...` for another network \
         namespace"
            .to_string()
    })
}

/// Fails, saying why and what to run instead, when /sys/fs/bpf is not the host's (see
/// [`private_reason`]): an instance pinned there could be neither read nor cleaned up.
pub fn require_hosts() -> Result<()> {
    match private_reason() {
        Some(why) => anyhow::bail!(
            "{BPFFS_ROOT} is not the host's BPF filesystem: {why} (nothing was changed)"
        ),
        None => Ok(()),
    }
}

/// The namespace name `ip netns exec` mounted the current /sys with, if it did: it mounts sysfs
/// with the namespace's name as the source, where a boot mounts it as `sysfs`.
fn sys_of_ip_netns_exec() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let source = mountinfo.lines().rev().find_map(sysfs_source_at_sys)?;
    (source != "sysfs" && crate::sys::netns::exists(source)).then(|| source.to_string())
}

/// The source of a mountinfo `line` that mounts sysfs on /sys, if it is one. The format
/// (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTS`.
fn sysfs_source_at_sys(line: &str) -> Option<&str> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut rest = after.split(' ');
    (mount_point == "/sys" && rest.next()? == "sysfs").then_some(())?;
    rest.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_source_of_the_sysfs_on_sys() {
        let boot = "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw";
        let exec = "612 611 0:61 / /sys rw,relatime - sysfs t1234a rw";
        let other = "31 25 0:26 / /sys/fs/bpf rw,relatime shared:8 - bpf bpf rw,mode=700";
        assert_eq!(sysfs_source_at_sys(boot), Some("sysfs"));
        assert_eq!(sysfs_source_at_sys(exec), Some("t1234a"));
        assert_eq!(sysfs_source_at_sys(other), None);
    }
}
