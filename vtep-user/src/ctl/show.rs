//! Reading a running instance's tables: `vtep fdb show`, `vtep neigh show` (the proxy table) and
//! `vtep vni show`. Each returns rows sorted for display; `cli::render` prints them.

use std::net::IpAddr;

use anyhow::{Context as _, Result};
use aya::maps::MapError;
use serde::Serialize;
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_RUNTIME, FDB_F_STORE, FDB_LOCAL, ProxyEntry, vtep_ip,
};

use crate::{ctl::PortNames, datapath::maps::Pinned, instance, mac::Mac, sys::clock};

/// Every origin [`Provenance::of`] gives an entry (metrics report each, also at zero).
pub const ORIGINS: [&str; 4] = ["config", "runtime", "store", "learned"];

/// How an FDB or proxy entry came to be, from its `FDB_F_*` flags.
#[derive(Debug, Serialize)]
pub struct Provenance {
    /// "static" (never moves or ages), "learned", or "missing" (an FDB row for a station
    /// whose port is gone).
    pub state: &'static str,
    /// "config" (made by `vtep up` from the config), "runtime" (a `vtep fdb` or `vtep neigh`
    /// command), "store" (another host's station, from the store) or "learned" (the datapath,
    /// from traffic).
    pub origin: &'static str,
    /// Learned entries: seconds since traffic last confirmed the entry (within a second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u64>,
}

impl Provenance {
    /// From an entry's `flags` and `seen` stamp, at monotonic second `now`.
    pub fn of(flags: u32, seen: u32, now: u32) -> Self {
        let learned = flags & FDB_F_LEARNED != 0;
        Self {
            state: if learned { "learned" } else { "static" },
            origin: if learned {
                "learned"
            } else if flags & FDB_F_RUNTIME != 0 {
                "runtime"
            } else if flags & FDB_F_STORE != 0 {
                "store"
            } else {
                "config"
            },
            age: learned.then(|| u64::from(now.saturating_sub(seen))),
        }
    }
}

/// One FDB entry as `vtep fdb show` prints it.
#[derive(Debug, Serialize)]
pub struct FdbRow {
    pub mac: Mac,
    pub vni: u32,
    /// Remote VTEP, for remote entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    /// Local port name, for local entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Every FDB entry of instance `name`, with port names from the instance's namespace, and a
/// "missing" row for each station whose port is gone (its entry went with the port), sorted
/// by VNI then MAC. Fails when the instance does not run or its FDB cannot be read.
pub fn fdb(name: &str) -> Result<Vec<FdbRow>> {
    let map = Pinned::of(name).fdb()?;
    let names = PortNames::of(name);
    let mut rows = Vec::new();
    let now = clock::monotonic_secs();
    for item in map.iter() {
        let (key, entry) = item.context("reading FDB")?;
        let local = entry.kind == FDB_LOCAL;
        rows.push(FdbRow {
            mac: Mac(key.mac),
            vni: key.vni,
            dst: (!local).then(|| vtep_ip(&entry.remote)),
            port: local.then(|| names.name(entry.ifindex)),
            provenance: Provenance::of(entry.flags, entry.seen, now),
        });
    }
    let missing = instance::Info::load(name)
        .map(|i| i.links.missing_ports)
        .unwrap_or_default();
    for port in missing {
        let Some(mac) = port.mac else { continue };
        // The station may be known elsewhere by now (it moved, and traffic taught us).
        if rows.iter().any(|r| r.vni == port.vni && r.mac == mac) {
            continue;
        }
        rows.push(FdbRow {
            mac,
            vni: port.vni,
            dst: None,
            port: Some(port.port),
            provenance: Provenance {
                state: "missing",
                origin: "config",
                age: None,
            },
        });
    }
    rows.sort_by_key(|r| (r.vni, r.mac.0));
    Ok(rows)
}

/// One proxy entry as `vtep neigh show` prints it.
#[derive(Debug, Serialize)]
pub struct ProxyRow {
    pub ip: IpAddr,
    pub vni: u32,
    pub lladdr: Mac,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Every proxy entry of instance `name` (IPv4, then IPv6), sorted by VNI then address. Fails
/// when the instance does not run or a table cannot be read.
pub fn proxy(name: &str) -> Result<Vec<ProxyRow>> {
    let maps = Pinned::of(name);
    let now = clock::monotonic_secs();
    let row = |ip: IpAddr, vni: u32, e: ProxyEntry| ProxyRow {
        ip,
        vni,
        lladdr: Mac(e.mac),
        provenance: Provenance::of(e.flags, e.seen, now),
    };
    let mut rows = Vec::new();
    for item in maps.proxy()?.iter() {
        let (key, e) = item.context("reading the proxy table")?;
        rows.push(row(IpAddr::from(key.ip), key.vni, e));
    }
    for item in maps.proxy6()?.iter() {
        let (key, e) = item.context("reading the IPv6 proxy table")?;
        rows.push(row(IpAddr::from(key.ip), key.vni, e));
    }
    rows.sort_by_key(|r| (r.vni, r.ip));
    Ok(rows)
}

/// One VNI as `vtep vni show` prints it.
#[derive(Debug, Serialize)]
pub struct VniRow {
    pub vni: u32,
    pub dstport: u16,
    /// Local ports of the VNI, by name.
    pub ports: Vec<String>,
    /// Remote VTEPs that get the VNI's broadcast, multicast and unknown-unicast frames.
    pub remotes: Vec<IpAddr>,
    /// FDB entries of the VNI, local and remote.
    pub fdb_entries: u64,
}

/// Every VNI of instance `name`, sorted by VNI. Fails when the instance does not run or a map
/// cannot be read.
pub fn vnis(name: &str) -> Result<Vec<VniRow>> {
    let maps = Pinned::of(name);
    let (vnis, ports, flood, fdb) = (maps.vnis()?, maps.ports()?, maps.flood()?, maps.fdb()?);
    let names = PortNames::of(name);

    let mut rows = Vec::new();
    for item in vnis.iter() {
        let (vni, cfg) = item.context("reading VNIs")?;
        let remotes = match flood.get(&vni, 0) {
            // The count is data from a map: never trust it to index.
            Ok(list) => list.remotes[..(list.n_remotes as usize).min(list.remotes.len())]
                .iter()
                .map(vtep_ip)
                .collect(),
            Err(MapError::KeyNotFound) => Vec::new(),
            Err(e) => return Err(e).context("reading flood lists"),
        };
        rows.push(VniRow {
            vni,
            dstport: u16::from_be_bytes(cfg.dstport),
            ports: Vec::new(),
            remotes,
            fdb_entries: 0,
        });
    }
    rows.sort_by_key(|r| r.vni);
    let row = |rows: &[VniRow], vni: u32| rows.binary_search_by_key(&vni, |r| r.vni).ok();
    for item in ports.iter() {
        let (ifindex, port) = item.context("reading ports")?;
        if let Some(i) = row(&rows, port.vni) {
            rows[i].ports.push(names.name(ifindex));
        }
    }
    for item in fdb.keys() {
        let key = item.context("reading FDB")?;
        if let Some(i) = row(&rows, key.vni) {
            rows[i].fdb_entries += 1;
        }
    }
    for r in &mut rows {
        r.ports.sort();
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metrics list every origin from [`ORIGINS`]: an origin given but not listed would be
    /// counted under a label value no dashboard expects.
    #[test]
    fn every_origin_given_is_listed() {
        let mut given = std::collections::BTreeSet::new();
        for flags in 0..8 {
            given.insert(Provenance::of(flags, 0, 0).origin);
        }
        assert_eq!(given, ORIGINS.into_iter().collect());
    }
}
