//! What `vtep up` created, recorded as it goes (in memory and in a state file), so a failed
//! start, a normal stop and `vtep down` after a crash all remove exactly that.
//!
//! The state file also says who owns the instance (the `vtep up` process, by pid and start
//! time) and which network namespace it runs in, and every item records the identity of what
//! it names (a namespace's inode, an interface's index, a directory's inode), not just its
//! name: names are reused, by hand or by the next instance, and an object that is no longer the
//! one vtep made is left alone with a log line saying why.
//!
//! A stop that keeps the datapath (`vtep up --keep`, SIGUSR2), or a crash in keep mode, leaves
//! the log with an owner that no longer runs and a datapath that forwards on; when the start
//! had completed (`adoptable`), the next `vtep up` of the same instance takes the log over ([`Undo::take_over`]) with everything in it, reuses what
//! its config still wants and removes the rest ([`Undo::prune`]).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::{
    instance::Namespace,
    sys::{
        bpffs,
        identity::{FileId, Process},
        netlink::Net,
        netns::{self, NetnsId},
        sysctl,
    },
};

/// Whether vtep made an object or found it and used it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Made by vtep: removed again.
    Created,
    /// There before (a workload namespace that existed, an adopted port): never removed;
    /// recorded so that no other instance takes it while this one holds it.
    Adopted,
}

/// An interface of the instance's namespace: its name and its index, which the kernel does not
/// give to another interface while this one exists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkId {
    pub name: String,
    pub ifindex: u32,
}

/// One thing vtep created or uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// A named network namespace (`/run/netns/NAME`) with the identity it had; deleting it
    /// also deletes the interfaces inside it.
    Netns {
        name: String,
        id: NetnsId,
        origin: Origin,
    },
    /// An interface in the instance's namespace (deleting one end of a veth deletes both).
    Link {
        name: String,
        ifindex: u32,
        origin: Origin,
    },
    /// The managed kernel neighbour entry that keeps a remote VTEP's underlay next hop `ip`
    /// resolved on interface `ifindex`.
    Nexthop { ifindex: u32, ip: IpAddr },
    /// The directory the maps are pinned in.
    Pins { dir: PathBuf, id: FileId },
    /// A sysctl (key relative to /proc/sys) and the value to restore; `link` is the interface
    /// it belongs to, restored only while that is still the same interface.
    Sysctl {
        key: String,
        value: String,
        link: Option<LinkId>,
    },
    /// A file vtep wrote (the instance info the CLI reads).
    File { path: PathBuf, id: FileId },
    /// A route vtep added to the instance's namespace (`[[route]]`).
    Route {
        to: Ipv4Addr,
        prefix: u8,
        via: Ipv4Addr,
    },
}

impl Item {
    /// Whether `self` and `other` record the same object (whatever else they record: a
    /// sysctl's old value, an origin), so that recording it again keeps the first record.
    fn same_object(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Netns { name: a, id: i, .. }, Self::Netns { name: b, id: j, .. }) => {
                a == b && i == j
            }
            (
                Self::Link {
                    name: a,
                    ifindex: i,
                    ..
                },
                Self::Link {
                    name: b,
                    ifindex: j,
                    ..
                },
            ) => a == b && i == j,
            (
                Self::Sysctl {
                    key: a, link: i, ..
                },
                Self::Sysctl {
                    key: b, link: j, ..
                },
            ) => a == b && i == j,
            (Self::Pins { dir: a, .. }, Self::Pins { dir: b, .. }) => a == b,
            (Self::File { path: a, .. }, Self::File { path: b, .. }) => a == b,
            (a @ (Self::Nexthop { .. } | Self::Route { .. }), b) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Netns { name, .. } => write!(f, "namespace `{name}`"),
            Self::Link { name, ifindex, .. } => write!(f, "interface `{name}` (index {ifindex})"),
            Self::Nexthop { ifindex, ip } => write!(f, "neighbour {ip} on interface {ifindex}"),
            Self::Pins { dir, .. } => write!(f, "pins in {}", dir.display()),
            Self::Sysctl { key, .. } => write!(f, "sysctl {key}"),
            Self::File { path, .. } => write!(f, "file {}", path.display()),
            Self::Route { to, prefix, via } => write!(f, "route to {to}/{prefix} via {via}"),
        }
    }
}

/// What the state file holds: who owns the instance, where it runs, what it made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// The `vtep up` process; while it lives, nobody else removes anything of the instance.
    pub owner: Process,
    /// The network namespace the instance's interfaces, neighbour entries and sysctls are in.
    pub netns: Namespace,
    /// Oldest first.
    pub items: Vec<Item>,
    /// The start completed and no reload is under way: what the items record and the pinned
    /// datapath are a whole instance, which the next `vtep up` may adopt once the owner is gone.
    #[serde(default)]
    pub adoptable: bool,
    /// The datapath's links are pinned: it forwards on when the owner is gone (`vtep up
    /// --keep`, or a stop that kept it).
    #[serde(default)]
    pub kept: bool,
    /// The datapath layout the pinned maps have ([`vtep_common::maps::LAYOUT`]); a build with
    /// another one does not adopt them.
    #[serde(default)]
    pub layout: u32,
    /// The owner acts on SIGHUP (reload), SIGUSR1 (recount the remote VTEPs) and SIGUSR2 (stop
    /// keeping the datapath); a `vtep up` of an older build, which does not, is never sent them
    /// (their default action would end it).
    #[serde(default)]
    pub signals: bool,
    /// The config text the instance runs (its last successful start or reload): what a reload
    /// or an adopting start compares the new config with.
    #[serde(default)]
    pub config: Option<String>,
}

/// The undo log of one instance.
#[derive(Debug)]
pub struct Undo {
    path: PathBuf,
    state: State,
}

impl Undo {
    /// An empty log of an instance owned by `owner` in namespace `netns`, written to `path`
    /// at once: from then on the instance's name is taken. Fails when it cannot be written.
    pub fn create(path: PathBuf, owner: Process, netns: Namespace) -> Result<Self> {
        let undo = Self {
            path,
            state: State {
                owner,
                netns,
                items: Vec::new(),
                adoptable: false,
                kept: false,
                layout: vtep_common::maps::LAYOUT,
                signals: true,
                config: None,
            },
        };
        undo.persist()?;
        Ok(undo)
    }

    /// The log `old` of a stopped instance, taken over by `owner`: everything in it stays
    /// recorded (and is removed at this owner's full stop) until [`Undo::prune`] removes what
    /// the new config no longer wants. Fails when it cannot be written.
    pub fn take_over(path: PathBuf, old: State, owner: Process) -> Result<Self> {
        let undo = Self {
            path,
            state: State {
                owner,
                signals: true,
                // Still whole: a crash while adopting leaves it for the next start to adopt.
                ..old
            },
        };
        undo.persist()?;
        Ok(undo)
    }

    /// Marks the instance whole (its start or a reload completed), running config text
    /// `config`. Fails when the log cannot be written.
    pub fn mark_whole(&mut self, config: &str) -> Result<()> {
        self.state.adoptable = true;
        self.state.config = Some(config.to_string());
        self.persist()
    }

    /// Notes whether the datapath's links are pinned (see [`State::kept`]). Fails when the log
    /// cannot be written.
    pub fn set_kept(&mut self, kept: bool) -> Result<()> {
        self.state.kept = kept;
        self.persist()
    }

    /// Ends this process's ownership without removing anything: the datapath keeps forwarding,
    /// and the next `vtep up` of the instance adopts what the log records.
    pub fn keep(self) {}

    /// The log a previous `vtep up` left at `path`, if any. Fails when it cannot be read or is
    /// not a state file.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let state = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading state file {}", path.display()))?;
                Ok(Some(Self {
                    path: path.to_path_buf(),
                    state,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading state file {}", path.display())),
        }
    }

    /// What the state file holds.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// What the log holds, oldest first.
    pub fn items(&self) -> &[Item] {
        &self.state.items
    }

    /// Adds `item` and writes the log, so a crash right after still knows about it. An object
    /// recorded already keeps its first record (the value a sysctl had before vtep, the origin
    /// of what an adopted instance made). Fails when the log cannot be written.
    pub fn record(&mut self, item: Item) -> Result<()> {
        if self.state.items.iter().any(|i| i.same_object(&item)) {
            return Ok(());
        }
        self.state.items.push(item);
        self.persist()
    }

    /// Removes the recorded objects `unwanted` picks (what an adopting start or a reload no
    /// longer wants), newest first, and forgets them; what cannot be removed stays recorded and
    /// is returned as an error each.
    pub async fn prune(
        &mut self,
        net: &Net,
        unwanted: impl Fn(&Item) -> bool,
    ) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        let mut done = Vec::new();
        for item in self.state.items.iter().rev().filter(|i| unwanted(i)) {
            match undo_one(net, item).await {
                Ok(Outcome::Done) => done.push(item.clone()),
                Ok(Outcome::NotOurs(why)) => {
                    warn!("leaving {item} alone: {why}");
                    done.push(item.clone());
                }
                Err(e) => errors.push(e.context(format!("removing {item}"))),
            }
        }
        if !done.is_empty() {
            self.state.items.retain(|i| !done.contains(i));
            if let Err(e) = self.persist() {
                errors.push(e);
            }
        }
        errors
    }

    /// Adds `added` and drops `removed` (gone from the system already), writing the log once:
    /// the resolver's neighbour entries come and go by the hundred. Changes nothing when both
    /// are empty.
    pub fn record_changes(&mut self, added: Vec<Item>, removed: &[Item]) -> Result<()> {
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.state.items.retain(|i| !removed.contains(i));
        for item in added {
            if !self.state.items.iter().any(|i| i.same_object(&item)) {
                self.state.items.push(item);
            }
        }
        self.persist()
    }

    /// Notes that vtep wrote file `path`, recorded earlier, again (whole, through a rename, so
    /// under a new inode): it stays vtep's to remove. Fails when the file cannot be examined or
    /// the log written; a path never recorded is left as it is.
    pub fn file_rewritten(&mut self, path: &Path) -> Result<()> {
        let Some(now) = FileId::of(path)? else {
            return Ok(());
        };
        let mut changed = false;
        for item in &mut self.state.items {
            if let Item::File { path: p, id } = item
                && p == path
                && *id != now
            {
                *id = now;
                changed = true;
            }
        }
        if changed { self.persist() } else { Ok(()) }
    }

    fn persist(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.state)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Removes everything recorded that is still what vtep made, newest first, through `net`
    /// (a connection in the instance's namespace, which the caller makes sure this thread is
    /// in too). Keeps going past failures and returns them, so one stuck item does not leave
    /// the rest behind; the state file then keeps only the failed items, for a later `vtep
    /// down`, and is removed otherwise.
    pub async fn run(mut self, net: &Net) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        let mut failed = Vec::new();
        for item in self.state.items.iter().rev() {
            match undo_one(net, item).await {
                Ok(Outcome::Done) => {}
                Ok(Outcome::NotOurs(why)) => warn!("leaving {item} alone: {why}"),
                Err(e) => {
                    errors.push(e.context(format!("removing {item}")));
                    failed.push(item.clone());
                }
            }
        }
        if failed.is_empty() {
            if let Err(e) = std::fs::remove_file(&self.path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                errors.push(anyhow::Error::from(e).context("removing state file"));
            }
        } else {
            failed.reverse();
            self.state.items = failed;
            if let Err(e) = self.persist() {
                errors.push(e.context("keeping what failed in the state file"));
            }
        }
        errors
    }
}

/// What undoing an item came to, when it did not fail.
enum Outcome {
    /// Removed or restored; or gone already; or adopted, which stays.
    Done,
    /// The name now belongs to something vtep did not make: left as it is, for this reason.
    NotOurs(String),
}

/// Removes what `item` records if it is still what vtep made; what is gone already is fine.
/// Fails when removing it fails, or when it cannot be told whether it is still there.
async fn undo_one(net: &Net, item: &Item) -> Result<Outcome> {
    match item {
        Item::Netns {
            origin: Origin::Adopted,
            ..
        }
        | Item::Link {
            origin: Origin::Adopted,
            ..
        } => {}
        Item::Netns { name, id, .. } => match netns::id(name)? {
            Some(now) if now != *id => {
                return Ok(Outcome::NotOurs(format!(
                    "it was deleted and made again since vtep created it (it is {now}, vtep made {id})"
                )));
            }
            Some(_) => netns::delete(name).await?,
            None => {}
        },
        Item::Link { name, ifindex, .. } => {
            if let Some(why) = link_changed(net, name, *ifindex).await? {
                return Ok(Outcome::NotOurs(why));
            }
            net.del_link(*ifindex).await?;
        }
        Item::Nexthop { ifindex, ip } => net.del_neighbour(*ifindex, *ip).await?,
        Item::Route { to, prefix, via } => net.del_route((*to, *prefix), *via).await?,
        Item::Sysctl { key, value, link } => {
            if let Some(link) = link
                && let Some(why) = link_changed(net, &link.name, link.ifindex).await?
            {
                return Ok(Outcome::NotOurs(why));
            }
            sysctl::restore(key, value)?;
        }
        Item::File { path, id } => {
            if let Some(why) = replaced(path, *id)? {
                return Ok(Outcome::NotOurs(why));
            }
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", path.display()));
                }
                _ => {}
            }
        }
        Item::Pins { dir, id } => {
            if FileId::of(dir)?.is_none() && !bpffs::is_mounted()? {
                anyhow::bail!(
                    "{} cannot be seen here: /sys/fs/bpf is not the BPF filesystem (under `ip netns exec`? use `vtep --netns NAME down`)",
                    dir.display()
                );
            }
            if let Some(why) = replaced(dir, *id)? {
                return Ok(Outcome::NotOurs(why));
            }
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
    Ok(Outcome::Done)
}

/// Why interface `name` with index `ifindex` is no longer the one vtep made (renamed, or the
/// name now another interface's); `None` when it still is, or is gone with no other under its
/// name (nothing to do then either: deleting a gone interface succeeds).
async fn link_changed(net: &Net, name: &str, ifindex: u32) -> Result<Option<String>> {
    if let Some(link) = net.link_by_index(ifindex).await? {
        return Ok((link.name != name).then(|| {
            format!(
                "interface {ifindex} is called `{}` now, not `{name}` as vtep made it",
                link.name
            )
        }));
    }
    Ok(net.link(name).await?.map(|other| {
        format!(
            "`{name}` is another interface now (index {}; vtep made index {ifindex})",
            other.index
        )
    }))
}

/// Why the file at `path` is no longer the one with identity `id` that vtep made; `None` when
/// it is, or is gone.
fn replaced(path: &Path, id: FileId) -> Result<Option<String>> {
    Ok(FileId::of(path)?
        .filter(|now| *now != id)
        .map(|now| format!("it was replaced since vtep made it (it is {now}, vtep made {id})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_file(dir: &Path) -> PathBuf {
        dir.join("x.json")
    }

    /// A temporary directory of this test process, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("vtep-undo-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn undo_at(path: PathBuf) -> Undo {
        let netns = Namespace {
            name: None,
            id: NetnsId {
                file: FileId { dev: 1, ino: 2 },
                cookie: 3,
            },
        };
        Undo::create(path, Process::current().unwrap(), netns).unwrap()
    }

    #[test]
    fn the_state_file_names_its_owner_and_reads_back() {
        let tmp = TempDir::new("owner");
        let mut undo = undo_at(state_file(&tmp.0));
        undo.record(Item::Link {
            name: "x-h".into(),
            ifindex: 7,
            origin: Origin::Created,
        })
        .unwrap();
        let back = Undo::load(&state_file(&tmp.0)).unwrap().unwrap();
        assert_eq!(back.state(), undo.state());
        assert_eq!(back.state().owner.pid, std::process::id());
    }

    /// An adopting start records again what the stopped instance recorded: the first record
    /// must stay, or the stop would restore a sysctl to vtep's own value, or keep a namespace
    /// vtep made as one it only adopted.
    #[test]
    fn recording_an_object_again_keeps_its_first_record() {
        let tmp = TempDir::new("dedupe");
        let mut undo = undo_at(state_file(&tmp.0));
        let link = Some(LinkId {
            name: "w1-h".into(),
            ifindex: 9,
        });
        let sysctl = |value: &str| Item::Sysctl {
            key: "net/ipv4/conf/w1-h/forwarding".into(),
            value: value.into(),
            link: link.clone(),
        };
        undo.record(sysctl("0")).unwrap();
        undo.record(sysctl("1")).unwrap();
        let netns = |origin| Item::Netns {
            name: "w1".into(),
            id: NetnsId {
                file: FileId { dev: 1, ino: 5 },
                cookie: 6,
            },
            origin,
        };
        undo.record(netns(Origin::Created)).unwrap();
        undo.record(netns(Origin::Adopted)).unwrap();
        assert_eq!(undo.items(), [sysctl("0"), netns(Origin::Created)]);
        // Another interface under the name is another object.
        let other = Item::Sysctl {
            key: "net/ipv4/conf/w1-h/forwarding".into(),
            value: "1".into(),
            link: Some(LinkId {
                name: "w1-h".into(),
                ifindex: 10,
            }),
        };
        undo.record(other.clone()).unwrap();
        assert_eq!(undo.items().len(), 3);
        let back = Undo::load(&state_file(&tmp.0)).unwrap().unwrap();
        assert_eq!(back.items(), undo.items());
    }

    /// Bug (issue 9): cleanup went by name only, so a stale log removed what had the name now.
    /// A file made again under the recorded name is left alone, and the log forgets it.
    #[tokio::test]
    async fn a_file_made_again_under_the_name_is_left_alone() {
        let tmp = TempDir::new("file");
        let (ours, theirs) = (tmp.0.join("ours"), tmp.0.join("theirs"));
        std::fs::write(&ours, "a").unwrap();
        std::fs::write(&theirs, "b").unwrap();
        let mut undo = undo_at(state_file(&tmp.0));
        for path in [&ours, &theirs] {
            let id = FileId::of(path).unwrap().unwrap();
            undo.record(Item::File {
                path: path.clone(),
                id,
            })
            .unwrap();
        }
        // Another file under the name; made before the old one goes, so it cannot get the old
        // one's inode.
        std::fs::write(tmp.0.join("new"), "c").unwrap();
        std::fs::rename(tmp.0.join("new"), &theirs).unwrap();
        let net = Net::connect().unwrap();
        let errors = undo.run(&net).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!ours.exists(), "what vtep made is removed");
        assert!(theirs.exists(), "what has its name now is not");
        assert!(!state_file(&tmp.0).exists());
    }
}
