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
