//! Where a running instance keeps what other `vtep` commands read: the contract between the
//! daemon, which writes these, and `ctl` and `vtep down`, which read them.

use std::path::PathBuf;

/// Maps of instance `name` are pinned here.
pub fn pin_dir(name: &str) -> PathBuf {
    PathBuf::from("/sys/fs/bpf/vtep").join(name)
}

/// The undo log of instance `name`.
pub fn state_file(name: &str) -> PathBuf {
    PathBuf::from("/run/vtep").join(format!("{name}.json"))
}

/// What a running instance resolved at start that its maps do not hold, for the commands that
/// change it: `/run/vtep/NAME.info.json`. Instance names have no dots, so this never collides
/// with another instance's state file.
pub fn info_file(name: &str) -> PathBuf {
    PathBuf::from("/run/vtep").join(format!("{name}.info.json"))
}

/// The contents of [`info_file`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Info {
    /// The local VTEP address (from the config or the underlay interface), which `vtep fdb
    /// add` refuses as a remote.
    pub local: std::net::Ipv4Addr,
    /// `underlay.accept` includes `known`: `vtep fdb` adds the remote VTEPs it names to the
    /// allow-list.
    #[serde(default)]
    pub accept_known: bool,
}

impl Info {
    /// Writes the info of instance `name`; fails when the file cannot be written.
    pub fn write(&self, name: &str) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let path = info_file(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The info of running instance `name`; fails, saying no such instance runs, without it.
    pub fn load(name: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let path = info_file(name);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "no running instance `{name}`: cannot read {} (is `vtep up` running with this name?)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
    }
}
