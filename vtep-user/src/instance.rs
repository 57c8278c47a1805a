//! Where a running instance keeps what other `vtep` commands read.

use std::path::PathBuf;

/// Maps of instance `name` are pinned here.
pub fn pin_dir(name: &str) -> PathBuf {
    PathBuf::from("/sys/fs/bpf/vtep").join(name)
}

/// The undo log of instance `name`.
pub fn state_file(name: &str) -> PathBuf {
    PathBuf::from("/run/vtep").join(format!("{name}.json"))
}

const BPFFS_ROOT: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Mounts the BPF filesystem at /sys/fs/bpf when nothing is mounted there, as systemd does on
/// most distributions. It stays mounted: other BPF tools share it.
pub fn ensure_bpffs() -> anyhow::Result<()> {
    use anyhow::Context as _;
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
