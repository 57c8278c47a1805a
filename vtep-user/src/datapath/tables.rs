//! The contents of the datapath's maps, computed from a configuration and the interfaces it
//! resolved to, and written in one place: [`fill`] into empty maps at a fresh start, [`sync`]
//! into the maps of a running or adopted instance. Everything else is pure and unit-tested
//! without a kernel.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use anyhow::{Context as _, Result};
use aya::maps::MapError;
use vtep_common::maps::{
    DP_F_IPV6, DP_F_UDP6_ZERO_CSUM_TX, DatapathConfig, FDB_LOCAL, FDB_REMOTE, FdbEntry, FdbKey,
    FloodList, MAX_DSTPORTS, MAX_FLOOD_REMOTES, PORT_F_LEARN, PortConfig, Proxy6Key, ProxyEntry,
    ProxyKey, VNI_F_LEARN, VniConfig, VniStats, vtep_addr, vtep_ip,
};

use crate::{
    datapath::{loader::Datapath, maps::remove_where},
    mac::Mac,
};

/// A local port as the datapath sees it.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub ifindex: u32,
    /// `PORT_F_*`.
    pub flags: u32,
    /// The station behind the port, when vtep knows it (it made the workload).
    pub mac: Option<Mac>,
    /// Frames the XDP program redirects into the port arrive (vtep made its peer and turned
    /// GRO on there): the port goes into `XDP_PORTS`.
    pub xdp: bool,
}

/// Where an FDB entry points.
#[derive(Debug, Clone)]
pub enum Target {
    Remote(IpAddr),
    Port { ifindex: u32, flags: u32 },
}

/// A VNI's multicast group and how to send to it.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pub ip: IpAddr,
    pub ttl: u8,
    /// The underlay interface and its MAC.
    pub ifindex: u32,
    pub smac: Mac,
}

/// One VNI, resolved against the system.
#[derive(Debug, Clone)]
pub struct VniTable {
    pub id: u32,
    pub dstport: u16,
    pub ttl: u8,
    pub stats_slot: u32,
    pub remotes: Vec<IpAddr>,
    pub ports: Vec<Port>,
    /// Static entries from the config, in addition to the ports' own MACs.
    pub fdb: Vec<(Mac, Target)>,
    /// Whether the datapath learns MACs in this VNI.
    pub learning: bool,
    /// Cap on learned entries, 0 for none.
    pub max_learned: u32,
    /// `VNI_F_L2MISS`, `VNI_F_L3MISS`, `VNI_F_PROXY`.
    pub flags: u32,
    /// Static proxy entries (IPv4 for ARP, IPv6 for neighbour discovery): the config's and the
    /// local stations' own.
    pub proxy_entries: Vec<(IpAddr, Mac)>,
    /// Broadcast and unknown unicast go to this group instead of to `remotes`.
    pub group: Option<Group>,
}

impl VniTable {
    /// Every FDB entry of this VNI: the known stations behind local ports, then the static ones.
    pub fn fdb_entries(&self) -> Vec<(FdbKey, FdbEntry)> {
        let key = |mac: &Mac| FdbKey {
            vni: self.id,
            mac: mac.0,
            _pad: [0; 2],
        };
        let mut out: Vec<(FdbKey, FdbEntry)> = self
            .ports
            .iter()
            .filter_map(|p| p.mac.map(|m| (key(&m), local_entry(p.ifindex, p.flags))))
            .collect();
        for (mac, target) in &self.fdb {
            let entry = match target {
                Target::Remote(ip) => FdbEntry {
                    kind: FDB_REMOTE,
                    ifindex: 0,
                    remote: vtep_addr(*ip),
                    port_flags: 0,
                    flags: 0,
                    seen: 0,
                },
                Target::Port { ifindex, flags } => local_entry(*ifindex, *flags),
            };
            out.push((key(mac), entry));
        }
        out
    }

    /// The VNI's flood list: every remote (or the group) and every local port.
    pub fn flood_list(&self) -> FloodList {
        let mut list = FloodList::default();
        for (slot, ip) in list.remotes.iter_mut().zip(&self.remotes) {
            *slot = vtep_addr(*ip);
        }
        for (slot, p) in list.ports.iter_mut().zip(&self.ports) {
            *slot = p.ifindex;
        }
        list.n_remotes = self.remotes.len() as u32;
        list.n_ports = self.ports.len() as u32;
        if let Some(g) = &self.group {
            list.group = vtep_addr(g.ip);
            list.group_ifindex = g.ifindex;
            list.group_smac = g.smac.0;
            list.group_ttl = g.ttl;
        }
        list
    }

    /// What the datapath needs about frames from `port`, one of this VNI's ports.
    pub fn port_config(&self, port: &Port) -> PortConfig {
        // Learning on a port is only needed when vtep does not know who is behind it; a
        // workload's own MAC is a static entry already.
        let learn = if self.learning && port.mac.is_none() {
            PORT_F_LEARN
        } else {
            0
        };
        PortConfig {
            vni: self.id,
            stats_slot: self.stats_slot,
            dstport: self.dstport.to_be_bytes(),
            ttl: self.ttl,
            _pad: 0,
            flags: port.flags | learn,
        }
    }

    /// The VNI's entry in `VNIS`.
    pub fn vni_config(&self) -> VniConfig {
        VniConfig {
            dstport: self.dstport.to_be_bytes(),
            _pad: [0; 2],
            stats_slot: self.stats_slot,
            flags: if self.learning { VNI_F_LEARN } else { 0 } | self.flags,
            max_learned: self.max_learned,
            group: self.group.map(|g| vtep_addr(g.ip)).unwrap_or_default(),
            _pad2: 0,
        }
    }
}

/// The FDB entry of a station behind local port `ifindex` (with its `PORT_F_*` `flags`).
fn local_entry(ifindex: u32, flags: u32) -> FdbEntry {
    FdbEntry {
        kind: FDB_LOCAL,
        ifindex,
        remote: [0; 16],
        port_flags: flags,
        flags: 0,
        seen: 0,
    }
}

/// The datapath's load-time configuration: the local VTEP address (its family is the
/// underlay's), the outer UDP source port range `srcport` (inclusive), the VXLAN ports to
/// accept (`dstports`, at most [`MAX_DSTPORTS`]; validation makes sure) and, over IPv6, whether
/// UDP checksums are left zero (`zero_csum_tx`).
pub fn datapath_config(
    local: IpAddr,
    srcport: [u16; 2],
    dstports: &[u16],
    zero_csum_tx: bool,
) -> DatapathConfig {
    let mut ports = [[0u8; 2]; MAX_DSTPORTS];
    for (slot, port) in ports.iter_mut().zip(dstports) {
        *slot = port.to_be_bytes();
    }
    DatapathConfig {
        local_ip: vtep_addr(local),
        srcport_min: srcport[0],
        srcport_max: srcport[1],
        dstports: ports,
        flags: match (local.is_ipv6(), zero_csum_tx) {
            (false, _) => 0,
            (true, false) => DP_F_IPV6,
            (true, true) => DP_F_IPV6 | DP_F_UDP6_ZERO_CSUM_TX,
        },
    }
}

/// Writes every VNI's entries into the datapath's maps. Fails at the first entry a map
/// refuses.
pub fn fill(dp: &mut Datapath, vnis: &[VniTable]) -> Result<()> {
    let lists: Vec<FloodList> = vnis.iter().map(VniTable::flood_list).collect();
    fill_with(dp, vnis, &lists)
}

/// [`fill`], with each VNI's flood list given (`lists`, in the order of `vnis`).
fn fill_with(dp: &mut Datapath, vnis: &[VniTable], lists: &[FloodList]) -> Result<()> {
    for (vni, list) in vnis.iter().zip(lists) {
        let at = || format!("VNI {}", vni.id);
        dp.vnis()?
            .insert(vni.id, vni.vni_config(), 0)
            .with_context(at)?;
        dp.flood()?.insert(vni.id, list, 0).with_context(at)?;
        for port in &vni.ports {
            dp.ports()?
                .insert(port.ifindex, vni.port_config(port), 0)
                .with_context(at)?;
            if port.xdp {
                dp.xdp_ports()?
                    .insert(port.ifindex, port.ifindex, None, 0)
                    .with_context(|| format!("XDP_PORTS of {}", at()))?;
            }
        }
        let mut fdb = dp.fdb()?;
        for (key, entry) in vni.fdb_entries() {
            fdb.insert(key, entry, 0)
                .with_context(|| format!("FDB of {}", at()))?;
        }
        for (ip, mac) in &vni.proxy_entries {
            let entry = ProxyEntry {
                mac: mac.0,
                ..Default::default()
            };
            let vni = vni.id;
            match ip {
                IpAddr::V4(ip) => {
                    let key = ProxyKey {
                        vni,
                        ip: ip.octets(),
                    };
                    dp.proxy()?.insert(key, entry, 0)
                }
                IpAddr::V6(ip) => {
                    let key = Proxy6Key {
                        vni,
                        ip: ip.octets(),
                    };
                    dp.proxy6()?.insert(key, entry, 0)
                }
            }
            .with_context(|| format!("proxy table of {}", at()))?;
        }
    }
    Ok(())
}

/// The stats slot of each of `vnis` (in order): a VNI the datapath serves already keeps its
/// slot (`serving`: VNI → slot), so its counters and learned count carry on; a new one takes
/// the lowest slot no VNI keeps.
pub fn assign_slots(vnis: &[u32], serving: &HashMap<u32, u32>) -> Vec<u32> {
    let mut taken: HashSet<u32> = vnis
        .iter()
        .filter_map(|v| serving.get(v).copied())
        .collect();
    let mut next = 0;
    vnis.iter()
        .map(|v| match serving.get(v) {
            Some(slot) => *slot,
            None => {
                while taken.contains(&next) {
                    next += 1;
                }
                taken.insert(next);
                next
            }
        })
        .collect()
}

/// The flood list's remotes after a reload: `config`'s, then those added at run time (`vtep fdb
/// append`: in `current` but not in what the previous config listed, `old_config`), at most
/// [`MAX_FLOOD_REMOTES`].
pub fn merged_remotes(config: &[IpAddr], current: &[IpAddr], old_config: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = config.to_vec();
    for ip in current {
        if !old_config.contains(ip) && !out.contains(ip) {
            out.push(*ip);
        }
    }
    out.truncate(MAX_FLOOD_REMOTES);
    out
}

/// VNI → stats slot of the VNIs the datapath serves. Fails when `VNIS` cannot be read.
pub fn serving(dp: &mut Datapath) -> Result<HashMap<u32, u32>> {
    let vnis = dp.vnis()?;
    let mut out = HashMap::new();
    for item in vnis.iter() {
        let (vni, config) = item.context("reading VNIS")?;
        out.insert(vni, config.stats_slot);
    }
    Ok(out)
}

/// Makes the maps of a datapath that serves already (a reload, an adopted instance) hold what
/// `vnis` describes, without a moment in which a kept station or VNI is missing: entries are
/// written over, and only what the config no longer gives is removed. `old_remotes` is each
/// VNI's remotes as the previous config listed them (see [`merged_remotes`]). What the config
/// gives wins over a learned or runtime entry of the same key; learned and runtime entries
/// stay unless their VNI or port is gone. A VNI given a slot it did not have starts with zero
/// counters. Fails at the first map that cannot be read or written.
pub fn sync(
    dp: &mut Datapath,
    vnis: &[VniTable],
    old_remotes: &HashMap<u32, Vec<IpAddr>>,
) -> Result<()> {
    let before = serving(dp)?;
    let wanted: HashSet<u32> = vnis.iter().map(|v| v.id).collect();
    let ports: HashSet<u32> = vnis
        .iter()
        .flat_map(|v| v.ports.iter().map(|p| p.ifindex))
        .collect();
    for vni in vnis {
        if before.get(&vni.id) != Some(&vni.stats_slot) {
            let zero = vec![VniStats::default(); aya::util::nr_cpus().map_err(|(_, e)| e)?];
            dp.vni_stats()?
                .set(vni.stats_slot, aya::maps::PerCpuValues::try_from(zero)?, 0)
                .context("zeroing the VNI's counters")?;
            dp.learned()?
                .set(vni.stats_slot, 0, 0)
                .context("zeroing the VNI's learned count")?;
        }
    }
    // Written over first: nothing kept is ever missing.
    let mut lists = Vec::new();
    for vni in vnis {
        let current = match dp.flood()?.get(&vni.id, 0) {
            Ok(list) => list.remotes[..(list.n_remotes as usize).min(MAX_FLOOD_REMOTES)]
                .iter()
                .map(vtep_ip)
                .collect(),
            Err(MapError::KeyNotFound) => Vec::new(),
            Err(e) => return Err(e).context("reading the flood list"),
        };
        let old = old_remotes.get(&vni.id).map(Vec::as_slice).unwrap_or(&[]);
        let mut merged = vni.clone();
        merged.remotes = merged_remotes(&vni.remotes, &current, old);
        lists.push(merged.flood_list());
    }
    fill_with(dp, vnis, &lists)?;
    // Then what the config no longer gives, and what sends to a VNI or port no longer there.
    let fdb_wanted: HashSet<FdbKey> = vnis
        .iter()
        .flat_map(|v| v.fdb_entries().into_iter().map(|(k, _)| k))
        .collect();
    remove_where(dp.fdb()?, |k, e| {
        !wanted.contains(&k.vni)
            || (e.kind == FDB_LOCAL && !ports.contains(&e.ifindex))
            || (e.flags == 0 && !fdb_wanted.contains(k))
    })
    .context("FDB")?;
    let proxy_wanted: HashSet<(u32, IpAddr)> = vnis
        .iter()
        .flat_map(|v| v.proxy_entries.iter().map(|(ip, _)| (v.id, *ip)))
        .collect();
    remove_where(dp.proxy()?, |k, e| {
        !wanted.contains(&k.vni)
            || (e.flags == 0 && !proxy_wanted.contains(&(k.vni, IpAddr::from(k.ip))))
    })
    .context("PROXY")?;
    remove_where(dp.proxy6()?, |k, e| {
        !wanted.contains(&k.vni)
            || (e.flags == 0 && !proxy_wanted.contains(&(k.vni, IpAddr::from(k.ip))))
    })
    .context("PROXY6")?;
    remove_where(dp.ports()?, |ifindex, _| !ports.contains(ifindex)).context("PORTS")?;
    let xdp_ports: HashSet<u32> = vnis
        .iter()
        .flat_map(|v| v.ports.iter().filter(|p| p.xdp).map(|p| p.ifindex))
        .collect();
    let mut redirects = dp.xdp_ports()?;
    let stale: Vec<u32> = redirects
        .keys()
        .filter_map(Result::ok)
        .filter(|i| !xdp_ports.contains(i))
        .collect();
    for ifindex in stale {
        // Gone already is fine.
        let _ = redirects.remove(ifindex);
    }
    remove_where(dp.flood()?, |vni, _| !wanted.contains(vni)).context("FLOOD")?;
    remove_where(dp.vnis()?, |vni, _| !wanted.contains(vni)).context("VNIS")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use vtep_common::maps::{PORT_F_PEER, vtep_addr_v4};

    use super::*;

    fn table() -> VniTable {
        VniTable {
            id: 0xABCDEF,
            dstport: 8472,
            ttl: 9,
            stats_slot: 3,
            remotes: vec![
                Ipv4Addr::new(198, 18, 0, 2).into(),
                Ipv4Addr::new(198, 18, 0, 3).into(),
            ],
            ports: vec![
                Port {
                    name: "a".into(),
                    ifindex: 7,
                    flags: PORT_F_PEER,
                    mac: Some(Mac([2, 0, 0, 0, 0, 1])),
                    xdp: false,
                },
                Port {
                    name: "b".into(),
                    ifindex: 8,
                    flags: 0,
                    mac: None,
                    xdp: false,
                },
            ],
            fdb: vec![
                (
                    Mac([2, 0, 0, 0, 0, 9]),
                    Target::Remote(Ipv4Addr::new(198, 18, 0, 3).into()),
                ),
                (
                    Mac([2, 0, 0, 0, 0, 8]),
                    Target::Port {
                        ifindex: 8,
                        flags: 0,
                    },
                ),
            ],
            learning: true,
            max_learned: 0,
            flags: 0,
            proxy_entries: Vec::new(),
            group: None,
        }
    }

    #[test]
    fn kept_vnis_keep_their_stats_slots_and_new_ones_take_free_slots() {
        // VNI 20 went, 30 stays at slot 2, 40 and 50 are new.
        let serving = HashMap::from([(10, 0), (20, 1), (30, 2)]);
        assert_eq!(
            assign_slots(&[40, 30, 10, 50], &serving),
            [1, 2, 0, 3],
            "new VNIs fill the lowest free slots, around the kept ones"
        );
        assert_eq!(assign_slots(&[7, 8], &HashMap::new()), [0, 1]);
    }

    #[test]
    fn a_reload_keeps_remotes_added_at_run_time_and_drops_those_the_config_dropped() {
        let ip = |n| IpAddr::from(Ipv4Addr::new(198, 18, 0, n));
        // The old config listed 2 and 3; `fdb append` added 9; the new config lists 3 and 4.
        let merged = merged_remotes(&[ip(3), ip(4)], &[ip(2), ip(3), ip(9)], &[ip(2), ip(3)]);
        assert_eq!(merged, [ip(3), ip(4), ip(9)]);
        let many: Vec<IpAddr> = (0..40).map(ip).collect();
        assert_eq!(merged_remotes(&many, &[], &[]).len(), MAX_FLOOD_REMOTES);
    }

    #[test]
    fn fdb_holds_known_stations_and_static_entries() {
        let entries = table().fdb_entries();
        assert_eq!(entries.len(), 3, "port b has no known MAC, so no entry");
        let (k, e) = entries[0];
        assert_eq!((k.vni, k.mac), (0xABCDEF, [2, 0, 0, 0, 0, 1]));
        assert_eq!(
            (e.kind, e.ifindex, e.port_flags),
            (FDB_LOCAL, 7, PORT_F_PEER)
        );
        let (k, e) = entries[1];
        assert_eq!(k.mac, [2, 0, 0, 0, 0, 9]);
        assert_eq!(
            (e.kind, e.remote),
            (FDB_REMOTE, vtep_addr_v4([198, 18, 0, 3]))
        );
        assert_eq!((entries[2].1.kind, entries[2].1.ifindex), (FDB_LOCAL, 8));
    }

    #[test]
    fn flood_list_has_every_remote_and_port() {
        let list = table().flood_list();
        assert_eq!((list.n_remotes, list.n_ports), (2, 2));
        assert_eq!(
            list.remotes[..2],
            [vtep_addr_v4([198, 18, 0, 2]), vtep_addr_v4([198, 18, 0, 3])]
        );
        assert_eq!(list.ports[..2], [7, 8]);
    }

    #[test]
    fn port_config_carries_the_send_parameters() {
        let t = table();
        let pc = t.port_config(&t.ports[0]);
        assert_eq!(pc.vni, 0xABCDEF);
        assert_eq!(pc.dstport, 8472u16.to_be_bytes());
        assert_eq!((pc.ttl, pc.stats_slot, pc.flags), (9, 3, PORT_F_PEER));
    }
}
