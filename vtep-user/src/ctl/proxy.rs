//! Changing the ARP/ND proxy table of a running instance: `vtep neigh add` and `del`, shaped like
//! `ip neigh add IP lladdr MAC`. An entry is one map operation, checked before it is written, so
//! a refused command changes nothing. Entries for the instance's own workloads and host
//! interfaces come from the config and are not changed here.

use std::net::IpAddr;

use anyhow::{Context as _, Result, bail};
use aya::{
    Pod,
    maps::{HashMap, MapData, MapError},
};
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_RUNTIME, FDB_F_STORE, Proxy6Key, ProxyEntry, ProxyKey, VNI_F_PROXY,
};

use crate::{ctl::require_vni, datapath::maps::Pinned, mac::Mac};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
}

/// One change; `ip` is a station's address and `mac` a station MAC (see `cli::neigh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub ip: IpAddr,
    pub vni: u32,
    /// `add` only.
    pub mac: Option<Mac>,
}

/// Applies `req` to the table of running instance `name` (the IPv4 or the IPv6 one, by the
/// address). `add` over a learned entry makes it static; over a static one with another MAC it
/// is refused (delete it first). Fails, changing nothing, when the instance does not run, the VNI
/// is not configured, `del` finds no entry or the config's or the store's, or the map cannot be written.
pub fn apply(name: &str, req: &Request) -> Result<()> {
    let maps = Pinned::of(name);
    require_vni(&maps, req.vni)?;
    let vni = req.vni;
    // An entry in a VNI without the proxy would never answer anything: say so instead of
    // accepting it silently. (`del` stays allowed, to clean up.)
    if req.op == Op::Add {
        let config = maps.vnis()?.get(&vni, 0).context("reading VNIs")?;
        if config.flags & VNI_F_PROXY == 0 {
            bail!(
                "vni: VNI {vni} of instance `{name}` has no ARP/ND proxy (`proxy = true` in its \
                 config), so the entry would answer nothing"
            );
        }
    }
    match req.ip {
        IpAddr::V4(ip) => {
            let key = ProxyKey {
                vni,
                ip: ip.octets(),
            };
            change(&mut maps.proxy()?, key, req, name)
        }
        IpAddr::V6(ip) => {
            let key = Proxy6Key {
                vni,
                ip: ip.octets(),
            };
            change(&mut maps.proxy6()?, key, req, name)
        }
    }
}

/// Applies `req` to the entry under `key` of `table` (IPv4 or IPv6).
fn change<K: Pod>(
    table: &mut HashMap<MapData, K, ProxyEntry>,
    key: K,
    req: &Request,
    name: &str,
) -> Result<()> {
    let existing = match table.get(&key, 0) {
        Ok(e) => Some(e),
        Err(MapError::KeyNotFound) => None,
        Err(e) => return Err(e).context("reading the proxy table"),
    };
    let (ip, vni) = (req.ip, req.vni);
    match (req.op, existing, req.mac) {
        (Op::Del, None, _) => bail!("ip: no entry for {ip} in VNI {vni}"),
        (Op::Del, Some(e), _) if e.flags & FDB_F_STORE != 0 => bail!(
            "ip: {ip} in VNI {vni} is the store's (another host's station); it follows the \
             store, not commands"
        ),
        (Op::Del, Some(e), _) if e.flags & (FDB_F_LEARNED | FDB_F_RUNTIME) == 0 => bail!(
            "ip: {ip} in VNI {vni} is the config's (a workload or host interface of this \
             instance); it is not changed at run time"
        ),
        (Op::Del, Some(_), _) => table.remove(&key).context("deleting the entry")?,
        (Op::Add, _, None) => unreachable!("add has a MAC"),
        (Op::Add, Some(e), Some(mac)) if e.flags & FDB_F_LEARNED == 0 && e.mac != mac.0 => {
            bail!(
                "ip: {ip} in VNI {vni} already resolves to {}; delete it first",
                Mac(e.mac)
            )
        }
        (Op::Add, Some(e), Some(mac)) if e.flags & FDB_F_LEARNED == 0 && e.mac == mac.0 => {}
        (Op::Add, _, Some(mac)) => table
            .insert(
                key,
                ProxyEntry {
                    mac: mac.0,
                    _pad: [0; 2],
                    flags: FDB_F_RUNTIME,
                    seen: 0,
                },
                0,
            )
            .with_context(|| format!("writing the proxy table of instance `{name}`"))?,
    }
    Ok(())
}
