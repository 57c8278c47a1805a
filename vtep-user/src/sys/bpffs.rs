//! The BPF filesystem the maps are pinned in.

use anyhow::{Context as _, Result};

const BPFFS_ROOT: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Mounts the BPF filesystem at /sys/fs/bpf when nothing is mounted there, as systemd does on
/// most distributions. It stays mounted: other BPF tools share it.
/// Fails when the mount point cannot be examined or mounting fails.
pub fn ensure_mounted() -> Result<()> {
    let st =
        nix::sys::statfs::statfs(BPFFS_ROOT).with_context(|| format!("statfs {BPFFS_ROOT}"))?;
    if st.filesystem_type().0 as i64 == BPF_FS_MAGIC {
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
