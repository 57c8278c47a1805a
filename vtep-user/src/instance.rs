//! Where a running instance keeps what other `vtep` commands read: the contract between the
//! daemon, which writes these, and `ctl` and `vtep down`, which read them.

use std::path::PathBuf;

use crate::sys::netns::{self, NetnsId};

/// Maps of instance `name` are pinned here.
pub fn pin_dir(name: &str) -> PathBuf {
    PathBuf::from("/sys/fs/bpf/vtep").join(name)
}

/// Where instances keep their state and info files.
pub const STATE_DIR: &str = "/run/vtep";

/// The undo log of instance `name`.
pub fn state_file(name: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{name}.json"))
}

/// What a running instance resolved at start that its maps do not hold, for the commands that
/// change it: `/run/vtep/NAME.info.json`. Instance names have no dots, so this never collides
/// with another instance's state file.
pub fn info_file(name: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{name}.info.json"))
}

/// The network namespace an instance runs in: its identity, and a name it has under
/// /run/netns (the `--netns` one), if any, to enter it by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Namespace {
    pub name: Option<String>,
    pub id: NetnsId,
}

impl Namespace {
    /// The calling thread's namespace. Fails when /proc cannot be read.
    pub fn current() -> anyhow::Result<Self> {
        let id = netns::current()?;
        Ok(Self {
            name: netns::name_of(id),
            id,
        })
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "network namespace `{name}`"),
            None => write!(f, "the unnamed network namespace {}", self.id),
        }
    }
}

/// The contents of [`info_file`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Info {
    /// The local VTEP address (from the config or the underlay interface), which `vtep fdb
    /// add` refuses as a remote.
    pub local: std::net::IpAddr,
    /// `underlay.accept` includes `known`: `vtep fdb` adds the remote VTEPs it names to the
    /// allow-list.
    #[serde(default)]
    pub accept_known: bool,
    /// The underlay interface (in the namespace of the instance's state file), by name and
    /// index: what another `vtep up` on the same interface must not overlap.
    #[serde(default)]
    pub underlay: String,
    #[serde(default)]
    pub underlay_ifindex: u32,
    /// The VNIs the instance decapsulates, each with its UDP port.
    #[serde(default)]
    pub vnis: Vec<ServedVni>,
    /// The process of `vtep up`.
    #[serde(default)]
    pub pid: u32,
    /// The `--netns` the instance was started with, if any.
    #[serde(default)]
    pub netns: Option<String>,
    /// The inode of the instance's network namespace: the ifindexes in its maps mean something
    /// only there, so commands resolve port names in the namespace with this inode.
    #[serde(default)]
    pub netns_inode: u64,
    /// The config file the instance runs (absolute), which a reload reads again.
    #[serde(default)]
    pub config: Option<std::path::PathBuf>,
    /// The interfaces the instance depends on, as it last saw them (it rewrites this file when
    /// one goes or comes back).
    #[serde(default)]
    pub links: Links,
}

/// A VNI and the UDP port it is received on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServedVni {
    pub vni: u32,
    pub dstport: u16,
}

/// The state of the interfaces an instance depends on, for `vtep stats` and `vtep fdb show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Links {
    pub underlay: Underlay,
    /// Local ports that are gone (a workload namespace deleted by hand): removed from the
    /// datapath, not recreated until a reload or a restart.
    pub missing_ports: Vec<MissingPort>,
}

/// The underlay interface and whether the datapath can use it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Underlay {
    pub name: String,
    /// "up", "down" (no carrier or set down) or "missing" (no interface of that name; the
    /// instance waits for one and attaches to it).
    pub state: String,
}

/// A local port that is gone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MissingPort {
    /// The port's interface name (the host end of a workload's veth).
    pub port: String,
    pub vni: u32,
    /// The workload namespace the port led into, for a workload's port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The station behind it, when vtep made it (its FDB entry went with the port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<crate::mac::Mac>,
}

impl Info {
    /// Writes the info of instance `name`, whole or not at all (readers never see half a file);
    /// fails when the file cannot be written.
    pub fn write(&self, name: &str) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let path = info_file(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// The network namespace of instance `name`, open: the one of its process, else the one
    /// its `--netns` names, whichever has the recorded inode. Fails when neither has (the
    /// process and the namespace are gone).
    pub fn open_netns(&self, name: &str) -> anyhow::Result<std::fs::File> {
        use crate::sys::netns;
        let candidates = [
            Some(std::path::PathBuf::from(format!(
                "/proc/{}/ns/net",
                self.pid
            ))),
            self.netns.as_deref().map(netns::path),
        ];
        for path in candidates.into_iter().flatten() {
            if let Ok(file) = std::fs::File::open(&path)
                && netns::inode(&file).ok() == Some(self.netns_inode)
            {
                return Ok(file);
            }
        }
        anyhow::bail!("the network namespace of instance `{name}` is gone")
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
