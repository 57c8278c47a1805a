//! Changing the FDB of a running instance without restarting it: `vtep fdb add`, `replace` and
//! `del`. Everything is checked before the map is written, and a change is one map operation,
//! so a refused or failed command leaves the FDB as it was. [`decide`] is the whole policy, as a
//! pure table tested without a kernel.
//!
//! Only remote entries can be changed. Local entries bind a station to one of the instance's own
//! ports, which the config describes and `vtep up` built; pointing one elsewhere or deleting it
//! would cut a local workload off until the next restart.

use std::net::IpAddr;

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{MapError, MapInfo};
use vtep_common::maps::{
    BPF_NOEXIST, FDB_F_LEARNED, FDB_F_RUNTIME, FDB_LOCAL, FDB_REMOTE, FdbEntry, FdbKey, MAP_FDB,
    RESOLVER_CHANGED, RESOLVER_DONE, vtep_addr, vtep_ip,
};

use crate::{
    config::fields::check_remote,
    ctl::{PortNames, require_vni},
    daemon::undo::Undo,
    datapath::{accept, maps::Pinned},
    instance,
    mac::Mac,
    sys::clock,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create an entry; an existing one must already say the same.
    Add,
    /// Create an entry or change where an existing remote one points.
    Replace,
    Del,
}

/// One change, checked as far as possible without the instance (the MAC is a station's, `dst` a
/// unicast address; see `cli::fdb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub mac: Mac,
    pub vni: u32,
    /// The remote VTEP (`add` and `replace` only).
    pub dst: Option<IpAddr>,
}

impl Request {
    fn key(&self) -> FdbKey {
        FdbKey {
            vni: self.vni,
            mac: self.mac.0,
            _pad: [0; 2],
        }
    }
}

/// What a request does to the entry under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Create the entry; the key must still be free when it is written.
    Create(FdbEntry),
    Overwrite(FdbEntry),
    Delete,
    /// The entry already is what was asked for.
    Nothing,
}

/// Why a request is refused, given the entry under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    LocalPort { ifindex: u32 },
    PointsElsewhere { dst: IpAddr },
    Missing,
}

/// The remote entry `vtep fdb add` writes.
fn runtime_entry(dst: IpAddr) -> FdbEntry {
    FdbEntry {
        kind: FDB_REMOTE,
        ifindex: 0,
        remote: vtep_addr(dst),
        port_flags: 0,
        flags: FDB_F_RUNTIME,
        seen: 0,
    }
}

/// What `req` does given the entry `existing` under its key, or why it is refused. The policy:
/// what the datapath learned gives way to the operator, local (port) entries are refused, `add`
/// never moves an entry, and asking for what already is changes nothing.
fn decide(req: &Request, existing: Option<FdbEntry>) -> Result<Action, Refusal> {
    match (req.op, existing, req.dst) {
        // What the datapath learned gives way to what the operator says, as in the kernel.
        (Op::Del, Some(e), _) if e.flags & FDB_F_LEARNED != 0 => Ok(Action::Delete),
        (_, Some(e), Some(dst)) if e.flags & FDB_F_LEARNED != 0 => {
            Ok(Action::Overwrite(runtime_entry(dst)))
        }
        (_, Some(e), _) if e.kind == FDB_LOCAL => Err(Refusal::LocalPort { ifindex: e.ifindex }),
        (Op::Del, Some(_), _) => Ok(Action::Delete),
        (Op::Del, None, _) => Err(Refusal::Missing),
        (_, _, None) => unreachable!("add and replace always have a dst"),
        // Same target: leave it, also its origin (re-adding a config entry does not make it a
        // runtime one).
        (_, Some(e), Some(dst)) if e.remote == vtep_addr(dst) => Ok(Action::Nothing),
        (Op::Add, Some(e), _) => Err(Refusal::PointsElsewhere {
            dst: vtep_ip(&e.remote),
        }),
        (_, Some(_), Some(dst)) => Ok(Action::Overwrite(runtime_entry(dst))),
        (_, None, Some(dst)) => Ok(Action::Create(runtime_entry(dst))),
    }
}

/// Whether a request changed the FDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    Unchanged,
}

/// Applies `req` to the FDB of running instance `name`. Fails, changing nothing, when the
/// instance does not run, the VNI is not configured in it, `dst` is its own address, [`decide`]
/// refuses, the FDB is full, or the entry kept changing under the command.
pub fn apply(name: &str, req: &Request) -> Result<Outcome> {
    let maps = Pinned::of(name);
    require_vni(&maps, req.vni)?;
    let info = match req.dst {
        Some(dst) => {
            let info = instance::Info::load(name)?;
            check_remote("dst", dst, Some(info.local), info.local.is_ipv6())?;
            Some(info)
        }
        None => None,
    };

    let mut fdb = maps.fdb()?;
    let key = req.key();
    // Another command may change the same key between the lookup and the write; `Create`
    // writes only if the key is still free, and a lost race is decided again on what won.
    for _ in 0..3 {
        let existing = match fdb.get(&key, 0) {
            Ok(e) => Some(e),
            Err(MapError::KeyNotFound) => None,
            Err(e) => return Err(e).context("reading the FDB"),
        };
        let action = decide(req, existing).map_err(|r| refusal(name, req, r))?;
        if let (Action::Create(_) | Action::Overwrite(_), Some(dst), Some(info)) =
            (action, req.dst, &info)
        {
            accept_vtep(&maps, info, dst)?;
        }
        let result = match action {
            Action::Nothing => return Ok(Outcome::Unchanged),
            Action::Create(entry) => fdb.insert(key, entry, BPF_NOEXIST),
            Action::Overwrite(entry) => fdb.insert(key, entry, 0),
            Action::Delete => fdb.remove(&key),
        };
        let Err(e) = result else {
            let new_vtep = match action {
                Action::Create(_) | Action::Overwrite(_) => req.dst,
                _ => None,
            };
            note_change(&maps, new_vtep)?;
            return Ok(Outcome::Changed);
        };
        match errno(&e) {
            Some(libc::EEXIST) | Some(libc::ENOENT) => continue,
            Some(libc::E2BIG) => {
                let size = MapInfo::from_pin(maps.path(MAP_FDB))
                    .map(|i| i.max_entries().to_string())
                    .unwrap_or_else(|_| "?".into());
                bail!(
                    "the FDB of instance `{name}` is full ({size} entries); delete entries or \
                     raise `fdb_size` in its config"
                );
            }
            _ => {
                return Err(e).with_context(|| format!("writing the FDB of instance `{name}`"));
            }
        }
    }
    bail!("the FDB entry kept changing under this command; try again")
}

/// How long a `vtep fdb` command waits for the instance to act on its change.
const RECOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Tells the running instance that the remote VTEPs its FDB or flood lists name changed; it
/// counts them again at its next reconcile (within a second), resolving the new ones and letting
/// go of those no longer named. When the change names `new_vtep` and the instance has no next
/// hop cached for it, SIGUSR1 wakes its `vtep up` at once and this waits (up to
/// [`RECOUNT_WAIT`]) until that recount is done, the VTEP's next hop resolved and cached: its
/// first flood copy is then not dropped as unresolved. Only an owner whose state file says it
/// acts on SIGUSR1 is signalled (to an older `vtep up` the signal would be fatal). Fails when
/// the instance's state cannot be written.
pub(super) fn note_change(maps: &Pinned, new_vtep: Option<IpAddr>) -> Result<()> {
    let stamp = clock::monotonic_nanos();
    maps.resolver()?
        .set(RESOLVER_CHANGED, stamp, 0)
        .context("telling the instance about the change")?;
    let Some(ip) = new_vtep else {
        return Ok(());
    };
    if maps.nexthops()?.get(&vtep_addr(ip), 0).is_ok() {
        return Ok(());
    }
    let Ok(Some(undo)) = Undo::load(&instance::state_file(maps.name())) else {
        return Ok(());
    };
    // The owner as the state file names it (pid and start time): never a process that took
    // over a dead owner's pid.
    let owner = undo.state().owner;
    if !undo.state().signals || !owner.is_alive() {
        return Ok(());
    }
    let pid = nix::unistd::Pid::from_raw(owner.pid as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1);
    let asked = std::time::Instant::now();
    // Until the recount is done and the next hop is cached: a recount that started the
    // neighbour's resolution can end before the kernel has the answer, under load long enough
    // for the first flood copy to be dropped (`fdb_append_and_del_change_the_flood_list_of_a_
    // running_instance` failed so in CI).
    let key = vtep_addr(ip);
    while asked.elapsed() < RECOUNT_WAIT {
        let recounted =
            matches!(maps.resolver()?.get(&RESOLVER_DONE, 0), Ok(done) if done >= stamp);
        if recounted && maps.nexthops()?.get(&key, 0).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Counted at its next reconcile anyway.
    Ok(())
}

/// Accepts traffic from remote VTEP `dst` before an entry names it, when the instance accepts
/// only the VTEPs it knows (`info`); `vtep up` removes it once nothing names `dst`. Fails when
/// the allow-list is full.
pub(super) fn accept_vtep(maps: &Pinned, info: &instance::Info, dst: IpAddr) -> Result<()> {
    if info.accept_known {
        accept::add_known(&mut maps.accept()?, dst)?;
    }
    Ok(())
}

/// The errno behind a map error, when there is one.
fn errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        MapError::KeyNotFound => Some(libc::ENOENT),
        _ => None,
    }
}

/// The error that tells the user why `req` to instance `name` was refused.
fn refusal(name: &str, req: &Request, r: Refusal) -> anyhow::Error {
    let (mac, vni) = (req.mac, req.vni);
    match r {
        Refusal::LocalPort { ifindex } => anyhow!(
            "mac: {mac} in VNI {vni} is a station behind local port `{}`; local entries come \
             from the config and are not changed at run time",
            PortNames::of(name).name(ifindex)
        ),
        Refusal::PointsElsewhere { dst } => {
            anyhow!("mac: {mac} in VNI {vni} already goes to {dst}; `vtep fdb replace` changes it")
        }
        Refusal::Missing => anyhow!("mac: no entry for {mac} in VNI {vni}"),
    }
}

#[cfg(test)]
mod tests {
    use vtep_common::maps::vtep_addr_v4;

    use super::*;

    const MAC: &str = "02:00:00:00:00:02";

    fn request(op: Op, dst: Option<[u8; 4]>) -> Request {
        Request {
            op,
            mac: MAC.parse().unwrap(),
            vni: 100,
            dst: dst.map(IpAddr::from),
        }
    }

    fn config_remote(ip: [u8; 4]) -> FdbEntry {
        FdbEntry {
            kind: FDB_REMOTE,
            ifindex: 0,
            remote: vtep_addr_v4(ip),
            port_flags: 0,
            flags: 0,
            seen: 0,
        }
    }

    const LOCAL: FdbEntry = FdbEntry {
        kind: FDB_LOCAL,
        ifindex: 7,
        remote: [0; 16],
        port_flags: 1,
        flags: 0,
        seen: 0,
    };

    #[test]
    fn add_creates_or_keeps_but_never_moves() {
        let a = [198, 18, 0, 2];
        let b = [198, 18, 0, 3];
        let add = request(Op::Add, Some(a));
        assert_eq!(
            decide(&add, None),
            Ok(Action::Create(runtime_entry(a.into())))
        );
        assert_eq!(decide(&add, Some(config_remote(a))), Ok(Action::Nothing));
        assert_eq!(
            decide(&add, Some(runtime_entry(a.into()))),
            Ok(Action::Nothing)
        );
        assert_eq!(
            decide(&add, Some(config_remote(b))),
            Err(Refusal::PointsElsewhere { dst: b.into() })
        );
        assert_eq!(
            decide(&add, Some(LOCAL)),
            Err(Refusal::LocalPort { ifindex: 7 })
        );
    }

    #[test]
    fn replace_moves_remote_entries_only() {
        let a = [198, 18, 0, 2];
        let replace = request(Op::Replace, Some(a));
        assert_eq!(
            decide(&replace, Some(config_remote([198, 18, 0, 3]))),
            Ok(Action::Overwrite(runtime_entry(a.into())))
        );
        assert_eq!(
            decide(&replace, None),
            Ok(Action::Create(runtime_entry(a.into())))
        );
        assert_eq!(
            decide(&replace, Some(config_remote(a))),
            Ok(Action::Nothing)
        );
        assert_eq!(
            decide(&replace, Some(LOCAL)),
            Err(Refusal::LocalPort { ifindex: 7 })
        );
    }

    #[test]
    fn del_removes_remote_entries_only() {
        let del = request(Op::Del, None);
        assert_eq!(decide(&del, None), Err(Refusal::Missing));
        assert_eq!(
            decide(&del, Some(config_remote([198, 18, 0, 2]))),
            Ok(Action::Delete)
        );
        assert_eq!(
            decide(&del, Some(LOCAL)),
            Err(Refusal::LocalPort { ifindex: 7 })
        );
    }
}
