//! What `vtep up` created, recorded as it goes (in memory and in a state file), so a failed
//! start, a normal stop and `vtep down` after a crash all remove exactly that.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::sys::{netlink::Net, netns, sysctl};

/// One thing vtep created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// A network namespace; deleting it also deletes the interfaces inside it.
    Netns(String),
    /// An interface in vtep's own namespace (deleting one end of a veth deletes both).
    Link(String),
    /// The managed kernel neighbour entry that keeps a remote VTEP's underlay next hop `ip`
    /// resolved on interface `ifindex`.
    Nexthop { ifindex: u32, ip: Ipv4Addr },
    /// The directory the maps are pinned in.
    Pins(PathBuf),
    /// A sysctl (key relative to /proc/sys) and the value to restore.
    Sysctl { key: String, value: String },
    /// A file vtep wrote (the instance info the CLI reads).
    File(PathBuf),
}

/// The undo log of one instance.
#[derive(Debug)]
pub struct Undo {
    path: PathBuf,
    items: Vec<Item>,
}

impl Undo {
    /// An empty log persisted at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            items: Vec::new(),
        }
    }

    /// The log a previous `vtep up` left at `path`, if any.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let items = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading state file {}", path.display()))?;
                Ok(Some(Self {
                    path: path.to_path_buf(),
                    items,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading state file {}", path.display())),
        }
    }

    /// What the log holds, oldest first.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Adds `item` and writes the log, so a crash right after still knows about it.
    pub fn record(&mut self, item: Item) -> Result<()> {
        self.items.push(item);
        self.persist()
    }

    /// Adds `added` and drops `removed` (gone from the system already), writing the log once:
    /// the resolver's neighbour entries come and go by the hundred. Changes nothing when both
    /// are empty.
    pub fn record_changes(&mut self, added: Vec<Item>, removed: &[Item]) -> Result<()> {
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.items.retain(|i| !removed.contains(i));
        self.items.extend(added);
        self.persist()
    }

    fn persist(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.items)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Removes everything recorded, newest first, then the state file. Keeps going past
    /// failures and returns them, so one stuck item does not leave the rest behind.
    pub async fn run(self, net: &Net) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        for item in self.items.iter().rev() {
            if let Err(e) = undo_one(net, item).await {
                errors.push(e.context(format!("removing {item:?}")));
            }
        }
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(anyhow::Error::from(e).context("removing state file"));
        }
        errors
    }
}

/// Removes what `item` records; what is gone already is fine.
async fn undo_one(net: &Net, item: &Item) -> Result<()> {
    match item {
        Item::Netns(name) => {
            if netns::exists(name) {
                netns::delete(name).await?;
            }
        }
        Item::Link(name) => {
            if let Some(link) = net.link(name).await? {
                net.del_link(link.index).await?;
            }
        }
        Item::Nexthop { ifindex, ip } => net.del_neighbour(*ifindex, *ip).await?,
        Item::Sysctl { key, value } => sysctl::restore(key, value)?,
        Item::File(path) => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        },
        Item::Pins(dir) => {
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", dir.display()));
                }
                _ => {}
            }
            // The shared parent goes with the last instance; it fails harmlessly while others
            // still have pins there.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
    Ok(())
}
