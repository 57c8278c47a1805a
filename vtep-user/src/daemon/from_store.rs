//! Writes what the store wants ([`crate::store::view::wanted`]) into the datapath's maps, and
//! removes what it no longer wants: FDB entries and proxy entries of origin store, and remote
//! VTEPs in the flood lists. Only what the store put there is ever changed or removed: an entry
//! from the config, a local port or a command under the same key wins and is left alone (the
//! store's entry is not made), and a learned one gives way. The flood lists are shared with the
//! config and `vtep fdb append`: the store removes only the remotes it added.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use anyhow::{Context as _, Result};
use aya::maps::MapError;
use tracing::{info, warn};
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_STORE, FDB_REMOTE, FdbEntry, FdbKey, MAX_FLOOD_REMOTES, Proxy6Key,
    ProxyEntry, ProxyKey, vtep_addr, vtep_ip,
};

use crate::{datapath::loader::Datapath, mac::Mac, store::view::Wanted};

/// What the store put into the maps, to change and remove exactly that.
#[derive(Debug, Default)]
pub struct Programmed {
    fdb: HashMap<(u32, Mac), IpAddr>,
    proxy: HashMap<(u32, IpAddr), Mac>,
    /// Per VNI, the remotes the store added to its flood list.
    flood: HashMap<u32, Vec<IpAddr>>,
    /// Conflicts already logged (each once while it lasts).
    conflicts: HashSet<String>,
    /// Keys a config or command entry holds, already logged.
    shadowed: HashSet<(u32, Mac)>,
}

/// What one pass changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub written: usize,
    pub removed: usize,
    /// The remote VTEPs the store's entries point at changed: the next hops need a recount.
    /// Not for every entry: a station behind a VTEP already referenced changes nothing there,
    /// and a recount walks the whole FDB.
    pub vteps: bool,
}

impl Programmed {
    /// Makes the maps hold `wanted`. With `full`, every wanted entry is checked against the map
    /// (after a reload rewrote the maps); otherwise only what differs from the last pass. Map
    /// errors are logged and the entry retried on the next full pass.
    pub fn apply(&mut self, dp: &mut Datapath, wanted: &Wanted, full: bool) -> Changes {
        let mut out = Changes::default();
        let before = self.vteps();
        for c in &wanted.conflicts {
            if self.conflicts.insert(c.clone()) {
                warn!("store conflict: {c}");
            }
        }
        self.conflicts.retain(|c| wanted.conflicts.contains(c));
        if let Err(e) = self.apply_fdb(dp, wanted, full, &mut out) {
            warn!("programming the FDB from the store: {e:#}");
        }
        if let Err(e) = self.apply_proxy(dp, wanted, full, &mut out) {
            warn!("programming the proxy table from the store: {e:#}");
        }
        if let Err(e) = self.apply_flood(dp, wanted, &mut out) {
            warn!("programming the flood lists from the store: {e:#}");
        }
        out.vteps = self.vteps() != before;
        out
    }

    /// The remote VTEPs the store's FDB entries and flood-list remotes point at.
    fn vteps(&self) -> HashSet<IpAddr> {
        self.fdb
            .values()
            .chain(self.flood.values().flatten())
            .copied()
            .collect()
    }

    fn apply_fdb(
        &mut self,
        dp: &mut Datapath,
        wanted: &Wanted,
        full: bool,
        out: &mut Changes,
    ) -> Result<()> {
        let mut fdb = dp.fdb()?;
        let key = |(vni, mac): (u32, Mac)| FdbKey {
            vni,
            mac: mac.0,
            _pad: [0; 2],
        };
        for k in gone(&self.fdb, &wanted.fdb) {
            self.fdb.remove(&k);
            self.shadowed.remove(&k);
            if let Ok(e) = fdb.get(&key(k), 0)
                && e.flags & FDB_F_STORE != 0
                && fdb.remove(&key(k)).is_ok()
            {
                out.removed += 1;
            }
        }
        let mut failed: Option<(usize, String)> = None;
        for (&k, &vtep) in &wanted.fdb {
            if !full && self.fdb.get(&k) == Some(&vtep) {
                continue;
            }
            let current = match fdb.get(&key(k), 0) {
                Ok(e) => Some(e),
                Err(MapError::KeyNotFound) => None,
                Err(e) => return Err(e).context("reading the FDB"),
            };
            match current {
                Some(e) if e.flags & FDB_F_STORE != 0 && e.remote == vtep_addr(vtep) => {}
                Some(e) if e.flags & (FDB_F_STORE | FDB_F_LEARNED) == 0 => {
                    // The config's, a local port's or a command's: it wins.
                    self.fdb.remove(&k);
                    if self.shadowed.insert(k) {
                        info!(
                            "store: VNI {} MAC {} of VTEP {vtep} is not used: this host has an entry of its own for it",
                            k.0, k.1
                        );
                    }
                    continue;
                }
                _ => {
                    let entry = FdbEntry {
                        kind: FDB_REMOTE,
                        ifindex: 0,
                        remote: vtep_addr(vtep),
                        port_flags: 0,
                        flags: FDB_F_STORE,
                        seen: 0,
                    };
                    match fdb.insert(key(k), entry, 0) {
                        Ok(()) => {
                            out.written += 1;
                        }
                        Err(e) => {
                            // Logged once per pass (a full FDB refuses every one of them).
                            failed.get_or_insert((0, e.to_string())).0 += 1;
                            continue;
                        }
                    }
                }
            }
            self.fdb.insert(k, vtep);
        }
        if let Some((n, e)) = failed {
            warn!(
                "store: {n} FDB entries could not be written ({e}); a full FDB takes no more (raise `fdb_size`); tried again on the next change"
            );
        }
        Ok(())
    }

    fn apply_proxy(
        &mut self,
        dp: &mut Datapath,
        wanted: &Wanted,
        full: bool,
        out: &mut Changes,
    ) -> Result<()> {
        for k in gone(&self.proxy, &wanted.proxy) {
            self.proxy.remove(&k);
            if proxy_change(dp, k, None)? {
                out.removed += 1;
            }
        }
        for (&k, &mac) in &wanted.proxy {
            if !full && self.proxy.get(&k) == Some(&mac) {
                continue;
            }
            if proxy_change(dp, k, Some(mac))? {
                out.written += 1;
            }
            self.proxy.insert(k, mac);
        }
        Ok(())
    }

    fn apply_flood(&mut self, dp: &mut Datapath, wanted: &Wanted, out: &mut Changes) -> Result<()> {
        let mut flood = dp.flood()?;
        let vnis: HashSet<u32> = self
            .flood
            .keys()
            .chain(wanted.flood.keys())
            .copied()
            .collect();
        for vni in vnis {
            let want = wanted.flood.get(&vni).map(Vec::as_slice).unwrap_or(&[]);
            let ours = self.flood.remove(&vni).unwrap_or_default();
            let mut list = match flood.get(&vni, 0) {
                Ok(list) => list,
                // The VNI went (a reload): nothing of ours is left in it.
                Err(MapError::KeyNotFound) => continue,
                Err(e) => return Err(e).context("reading the flood list"),
            };
            let n = (list.n_remotes as usize).min(MAX_FLOOD_REMOTES);
            let current: Vec<IpAddr> = list.remotes[..n].iter().map(vtep_ip).collect();
            // Ours that are no longer wanted go; the others' stay.
            let mut remotes: Vec<IpAddr> = current
                .iter()
                .filter(|ip| !ours.contains(ip) || want.contains(ip))
                .copied()
                .collect();
            let mut added: Vec<IpAddr> = ours
                .iter()
                .filter(|ip| want.contains(ip))
                .copied()
                .collect();
            for ip in want {
                if remotes.contains(ip) {
                    continue;
                }
                if remotes.len() == MAX_FLOOD_REMOTES {
                    warn!(
                        "store: VNI {vni}'s flood list is full ({MAX_FLOOD_REMOTES} remote VTEPs); VTEP {ip} gets no broadcast from this host (use a multicast group for VNIs this large)"
                    );
                    break;
                }
                remotes.push(*ip);
                added.push(*ip);
            }
            if remotes != current {
                list.remotes = [[0; 16]; MAX_FLOOD_REMOTES];
                for (slot, ip) in list.remotes.iter_mut().zip(&remotes) {
                    *slot = vtep_addr(*ip);
                }
                list.n_remotes = remotes.len() as u32;
                flood
                    .insert(vni, list, 0)
                    .with_context(|| format!("writing VNI {vni}'s flood list"))?;
                out.written += 1;
            }
            if !added.is_empty() {
                self.flood.insert(vni, added);
            }
        }
        Ok(())
    }
}

/// The keys of `programmed` that `wanted` no longer has.
fn gone<K: Copy + Eq + std::hash::Hash, V>(
    programmed: &HashMap<K, V>,
    wanted: &HashMap<K, V>,
) -> Vec<K> {
    programmed
        .keys()
        .filter(|k| !wanted.contains_key(k))
        .copied()
        .collect()
}

/// Writes (`Some`) or removes (`None`) the store's proxy entry `(vni, ip)`, unless the entry
/// there is not the store's or a learned one. Returns whether the map changed.
fn proxy_change(dp: &mut Datapath, (vni, ip): (u32, IpAddr), mac: Option<Mac>) -> Result<bool> {
    match ip {
        IpAddr::V4(v4) => {
            let key = ProxyKey {
                vni,
                ip: v4.octets(),
            };
            change(&mut dp.proxy()?, key, mac)
        }
        IpAddr::V6(v6) => {
            let key = Proxy6Key {
                vni,
                ip: v6.octets(),
            };
            change(&mut dp.proxy6()?, key, mac)
        }
    }
}

fn change<K: aya::Pod>(
    map: &mut aya::maps::HashMap<&mut aya::maps::MapData, K, ProxyEntry>,
    key: K,
    mac: Option<Mac>,
) -> Result<bool> {
    let current = match map.get(&key, 0) {
        Ok(e) => Some(e),
        Err(MapError::KeyNotFound) => None,
        Err(e) => return Err(e).context("reading the proxy table"),
    };
    let ours_or_learned = |e: &ProxyEntry| e.flags & (FDB_F_STORE | FDB_F_LEARNED) != 0;
    match (current, mac) {
        (Some(e), None) if e.flags & FDB_F_STORE != 0 => {
            map.remove(&key).context("removing a proxy entry")?;
            Ok(true)
        }
        (None, None) | (Some(_), None) => Ok(false),
        (Some(e), Some(mac)) if e.flags & FDB_F_STORE != 0 && e.mac == mac.0 => Ok(false),
        (Some(e), Some(_)) if !ours_or_learned(&e) => Ok(false),
        (_, Some(mac)) => {
            let entry = ProxyEntry {
                mac: mac.0,
                _pad: [0; 2],
                flags: FDB_F_STORE,
                seen: 0,
            };
            map.insert(key, entry, 0).context("writing a proxy entry")?;
            Ok(true)
        }
    }
}
