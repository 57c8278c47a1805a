//! The ARP proxy's table of a running instance: `vtep neigh show`, `add` and `del`, shaped like
//! `ip neigh add IP lladdr MAC`. An entry is one map operation, checked before it is written, so
//! a refused command changes nothing. Entries for the instance's own workloads and host
//! interfaces come from the config and are not changed here.

use std::net::IpAddr;

use anyhow::{Context as _, Result, bail};
use aya::maps::{HashMap, MapData, MapError};
use serde::Serialize;
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_RUNTIME, MAP_PROXY, MAP_PROXY6, Proxy6Key, ProxyEntry, ProxyKey,
};

use crate::{
    cli::keywords as args,
    config::{check_mac, invalid, is_station_address},
    ctl::show::{self as live, Provenance, open},
    instance,
    mac::Mac,
    sys::clock,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
}

/// One change, parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub ip: IpAddr,
    pub vni: u32,
    /// `add` only.
    pub mac: Option<Mac>,
}

impl Request {
    /// Parses `IP` (IPv4 or IPv6) and keyword-value pairs in any order: `lladdr MAC` (add only)
    /// and `vni N`.
    pub fn parse(op: Op, ip: &str, words: &[String]) -> Result<Self> {
        let (command, allowed): (_, &[(&str, &str)]) = match op {
            Op::Add => ("vtep neigh add", &[("lladdr", "MAC"), ("vni", "N")]),
            Op::Del => ("vtep neigh del", &[("vni", "N")]),
        };
        let args = args::parse(command, allowed, words)?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| invalid("ip", format!("`{ip}` is not an IP address")))?;
        if !is_station_address(ip) {
            return Err(invalid("ip", format!("{ip} is not a station's address")).into());
        }
        let vni = args.vni()?;
        let mac = match op {
            Op::Del => None,
            Op::Add => {
                let mac = args.require("lladdr", "MAC")?;
                let mac = mac.parse::<Mac>().map_err(|e| invalid("lladdr", e))?;
                check_mac("lladdr", Some(mac))?;
                Some(mac)
            }
        };
        Ok(Self { op, ip, vni, mac })
    }
}

/// Applies `req` to the table of running instance `name`. `add` over a learned entry makes it
/// static; over a static one with another MAC it is refused (delete it first).
pub fn apply(name: &str, req: &Request) -> Result<()> {
    let dir = instance::pin_dir(name);
    live::require_vni(&dir, name, req.vni)?;
    match req.ip {
        IpAddr::V4(v4) => {
            let mut table: HashMap<MapData, ProxyKey, ProxyEntry> =
                HashMap::try_from(open(&dir, MAP_PROXY)?)?;
            let key = ProxyKey {
                vni: req.vni,
                ip: v4.octets(),
            };
            change(&mut table, key, req, name)
        }
        IpAddr::V6(v6) => {
            let mut table: HashMap<MapData, Proxy6Key, ProxyEntry> =
                HashMap::try_from(open(&dir, MAP_PROXY6)?)?;
            let key = Proxy6Key {
                vni: req.vni,
                ip: v6.octets(),
            };
            change(&mut table, key, req, name)
        }
    }
}

/// Applies `req` to the entry under `key` of `table` (IPv4 or IPv6).
fn change<K: aya::Pod>(
    table: &mut HashMap<MapData, K, ProxyEntry>,
    key: K,
    req: &Request,
    name: &str,
) -> Result<()> {
    let existing = match table.get(&key, 0) {
        Ok(e) => Some(e),
        Err(MapError::KeyNotFound) => None,
        Err(e) => return Err(e).context("reading the neighbour table"),
    };
    let (ip, vni) = (req.ip, req.vni);
    match (req.op, existing, req.mac) {
        (Op::Del, None, _) => bail!("ip: no entry for {ip} in VNI {vni}"),
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
            .with_context(|| format!("writing the neighbour table of instance `{name}`"))?,
    }
    Ok(())
}

/// One entry as `vtep neigh show` prints it.
#[derive(Debug, Serialize)]
pub struct NeighRow {
    pub ip: IpAddr,
    pub vni: u32,
    pub lladdr: Mac,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Every entry of instance `name` (IPv4, then IPv6), sorted by VNI then address.
pub fn show(name: &str) -> Result<Vec<NeighRow>> {
    let dir = instance::pin_dir(name);
    let now = clock::monotonic_secs();
    let v4: HashMap<MapData, ProxyKey, ProxyEntry> = HashMap::try_from(open(&dir, MAP_PROXY)?)?;
    let v6: HashMap<MapData, Proxy6Key, ProxyEntry> = HashMap::try_from(open(&dir, MAP_PROXY6)?)?;
    let mut rows = Vec::new();
    for item in v4.iter() {
        let (key, e) = item.context("reading the neighbour table")?;
        rows.push(row(IpAddr::from(key.ip), key.vni, &e, now));
    }
    for item in v6.iter() {
        let (key, e) = item.context("reading the IPv6 neighbour table")?;
        rows.push(row(IpAddr::from(key.ip), key.vni, &e, now));
    }
    rows.sort_by_key(|r| (r.vni, r.ip));
    Ok(rows)
}

fn row(ip: IpAddr, vni: u32, e: &ProxyEntry, now: u32) -> NeighRow {
    NeighRow {
        ip,
        vni,
        lladdr: Mac(e.mac),
        provenance: Provenance::of(e.flags, e.seen, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(op: Op, ip: &str, rest: &str) -> Result<Request> {
        let words: Vec<String> = rest.split_whitespace().map(String::from).collect();
        Request::parse(op, ip, &words)
    }

    #[test]
    fn add_takes_lladdr_and_vni_in_any_order() {
        let r = parse(Op::Add, "192.0.2.5", "vni 100 lladdr 02:00:00:00:00:05").unwrap();
        assert_eq!(r.mac, Some("02:00:00:00:00:05".parse().unwrap()));
        assert_eq!((r.ip, r.vni), ("192.0.2.5".parse().unwrap(), 100));
        let r6 = parse(Op::Add, "fd00::5", "lladdr 02:00:00:00:00:05 vni 100").unwrap();
        assert_eq!(r6.ip, "fd00::5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = |op, ip, rest| format!("{:#}", parse(op, ip, rest).expect_err("accepted"));
        assert!(e(Op::Add, "192.0.2.300", "lladdr 02:00:00:00:00:05 vni 1").contains("ip"));
        assert!(e(Op::Add, "224.0.0.1", "lladdr 02:00:00:00:00:05 vni 1").contains("ip"));
        assert!(e(Op::Add, "ff02::1", "lladdr 02:00:00:00:00:05 vni 1").contains("ip"));
        assert!(e(Op::Add, "192.0.2.5", "lladdr 01:00:5e:00:00:01 vni 1").contains("lladdr"));
        assert!(e(Op::Add, "192.0.2.5", "lladdr zz vni 1").contains("lladdr"));
        assert!(e(Op::Add, "192.0.2.5", "vni 1").contains("lladdr"));
        assert!(e(Op::Add, "192.0.2.5", "lladdr 02:00:00:00:00:05 vni 0").contains("vni"));
        assert!(e(Op::Del, "192.0.2.5", "lladdr 02:00:00:00:00:05 vni 1").contains("lladdr"));
    }
}
