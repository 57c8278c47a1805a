//! The store as this host sees it (every record under the prefix, with the revision that created
//! it) and what this host's datapath should hold from it ([`wanted`]): pure, tested without
//! etcd or a kernel.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
};

use crate::{
    mac::Mac,
    store::records::{Record, StationRecord},
};

/// A record and the etcd revision that created its key: the order claims were made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub record: Record,
    pub create_revision: i64,
}

/// Every valid record under the prefix, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub entries: BTreeMap<String, Entry>,
}

impl View {
    /// How many host and station records it holds.
    pub fn counts(&self) -> (usize, usize) {
        let hosts = self
            .entries
            .values()
            .filter(|e| matches!(e.record, Record::Host(_)))
            .count();
        (hosts, self.entries.len() - hosts)
    }
}

/// What this instance is, for [`wanted`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub vtep: Option<IpAddr>,
    /// VNI → (dstport, floods to a multicast group).
    pub vnis: HashMap<u32, (u16, bool)>,
    /// Stations behind this instance's own ports (they win over any claim from the store).
    pub stations: HashSet<(u32, Mac)>,
}

/// What the datapath should hold from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub fdb: HashMap<(u32, Mac), IpAddr>,
    pub proxy: HashMap<(u32, IpAddr), Mac>,
    /// Remote VTEPs per VNI for its flood list, sorted.
    pub flood: HashMap<u32, Vec<IpAddr>>,
    /// Claims that lost (for the log), sorted.
    pub conflicts: Vec<String>,
}

/// What `local` programs from `view`: the other VTEPs' hosts that serve a VNI of ours on the
/// same dstport go into its flood list (unless it floods to a group); their stations in such a
/// VNI become FDB entries, and their addresses proxy entries. Of two claims on one MAC (or one
/// address) in a VNI, the older key wins (lowest create revision, then the lower VTEP), on every
/// host alike; a MAC of our own wins over any claim.
pub fn wanted(view: &View, local: &Local) -> Wanted {
    let mut out = Wanted::default();
    // VTEP → its VNIs' dstports, from the host records.
    let mut host_ports: HashMap<IpAddr, HashMap<u32, u16>> = HashMap::new();
    for e in view.entries.values() {
        if let Record::Host(h) = &e.record {
            host_ports
                .entry(h.vtep)
                .or_default()
                .extend(h.vnis.iter().map(|v| (v.vni, v.dstport)));
            if Some(h.vtep) == local.vtep {
                continue;
            }
            for v in &h.vnis {
                if local.vnis.get(&v.vni) == Some(&(v.dstport, false)) {
                    out.flood.entry(v.vni).or_default().push(h.vtep);
                }
            }
        }
    }
    for list in out.flood.values_mut() {
        list.sort();
        list.dedup();
    }
    // Stations of other VTEPs in our VNIs, on a dstport we receive it on too (a VTEP whose host
    // record is not seen yet is taken at its word).
    let usable = |s: &StationRecord| {
        Some(s.vtep) != local.vtep
            && local.vnis.get(&s.vni).is_some_and(|(port, _)| {
                host_ports
                    .get(&s.vtep)
                    .and_then(|v| v.get(&s.vni))
                    .is_none_or(|p| p == port)
            })
    };
    let mut claims: BTreeMap<(u32, Mac), Vec<(i64, &StationRecord)>> = BTreeMap::new();
    for e in view.entries.values() {
        if let Record::Station(s) = &e.record
            && usable(s)
        {
            claims
                .entry((s.vni, s.mac))
                .or_default()
                .push((e.create_revision, s));
        }
    }
    // (VNI, address) → its claims: (create revision, VTEP, MAC).
    type Claims = Vec<(i64, IpAddr, Mac)>;
    let mut address_claims: BTreeMap<(u32, IpAddr), Claims> = BTreeMap::new();
    for ((vni, mac), mut list) in claims {
        list.sort_by_key(|(rev, s)| (*rev, s.vtep));
        if local.stations.contains(&(vni, mac)) {
            for (_, s) in &list {
                out.conflicts.push(format!(
                    "VNI {vni} MAC {mac}: VTEP {} claims a station of this host; ignored",
                    s.vtep
                ));
            }
            continue;
        }
        let (rev, winner) = list[0];
        for (_, s) in &list[1..] {
            out.conflicts.push(format!(
                "VNI {vni} MAC {mac}: claimed by VTEP {} and, later, by VTEP {}; {} wins (the older claim)",
                winner.vtep, s.vtep, winner.vtep
            ));
        }
        out.fdb.insert((vni, mac), winner.vtep);
        for a in &winner.addresses {
            address_claims
                .entry((vni, *a))
                .or_default()
                .push((rev, winner.vtep, mac));
        }
    }
    for ((vni, ip), mut list) in address_claims {
        list.sort();
        let (_, vtep, mac) = list[0];
        for (_, other, other_mac) in &list[1..] {
            out.conflicts.push(format!(
                "VNI {vni} address {ip}: claimed by {mac} behind VTEP {vtep} and, later, by {other_mac} behind {other}; the older claim wins"
            ));
        }
        out.proxy.insert((vni, ip), mac);
    }
    out.conflicts.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{HostRecord, HostVni};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    fn host(view: &mut View, vtep: &str, vnis: &[(u32, u16)], rev: i64) {
        view.entries.insert(
            format!("h/{vtep}"),
            Entry {
                record: Record::Host(HostRecord {
                    host: vtep.into(),
                    vtep: ip(vtep),
                    vnis: vnis
                        .iter()
                        .map(|&(vni, dstport)| HostVni { vni, dstport })
                        .collect(),
                }),
                create_revision: rev,
            },
        );
    }

    fn station(view: &mut View, vtep: &str, vni: u32, m: &str, addrs: &[&str], rev: i64) {
        view.entries.insert(
            format!("s/{vtep}/{vni}/{m}"),
            Entry {
                record: Record::Station(StationRecord {
                    vni,
                    mac: mac(m),
                    vtep: ip(vtep),
                    addresses: addrs.iter().map(|a| ip(a)).collect(),
                }),
                create_revision: rev,
            },
        );
    }

    fn local() -> Local {
        Local {
            vtep: Some(ip("198.18.0.1")),
            vnis: HashMap::from([(200, (4789, false)), (300, (4789, true))]),
            stations: HashSet::from([(200, mac("02:00:00:00:0a:01"))]),
        }
    }

    #[test]
    fn other_hosts_stations_become_entries_and_their_vnis_flood_lists() {
        let mut v = View::default();
        host(&mut v, "198.18.0.1", &[(200, 4789)], 1);
        host(&mut v, "198.18.0.3", &[(200, 4789), (300, 4789)], 3);
        host(&mut v, "198.18.0.2", &[(200, 4789), (999, 4789)], 2);
        station(
            &mut v,
            "198.18.0.1",
            200,
            "02:00:00:00:0a:01",
            &["192.0.2.1"],
            4,
        );
        station(
            &mut v,
            "198.18.0.2",
            200,
            "02:00:00:00:0b:01",
            &["192.0.2.2"],
            5,
        );
        station(&mut v, "198.18.0.2", 999, "02:00:00:00:0b:02", &[], 6);
        let w = wanted(&v, &local());
        assert_eq!(
            w.flood,
            HashMap::from([(200, vec![ip("198.18.0.2"), ip("198.18.0.3")])]),
            "our own VTEP, VNIs we lack and a VNI flooding to a group stay out"
        );
        assert_eq!(
            w.fdb,
            HashMap::from([((200, mac("02:00:00:00:0b:01")), ip("198.18.0.2"))])
        );
        assert_eq!(
            w.proxy,
            HashMap::from([((200, ip("192.0.2.2")), mac("02:00:00:00:0b:01"))])
        );
        assert!(w.conflicts.is_empty(), "{:?}", w.conflicts);
    }

    #[test]
    fn a_vni_on_another_dstport_is_not_ours() {
        let mut v = View::default();
        host(&mut v, "198.18.0.2", &[(200, 8472)], 2);
        station(&mut v, "198.18.0.2", 200, "02:00:00:00:0b:01", &[], 5);
        let w = wanted(&v, &local());
        assert!(w.flood.is_empty() && w.fdb.is_empty(), "{w:?}");
    }

    #[test]
    fn the_older_claim_wins_and_our_own_stations_always_win() {
        let mut v = View::default();
        station(
            &mut v,
            "198.18.0.3",
            200,
            "02:00:00:00:0c:01",
            &["192.0.2.9"],
            9,
        );
        station(
            &mut v,
            "198.18.0.2",
            200,
            "02:00:00:00:0c:01",
            &["192.0.2.9"],
            7,
        );
        station(&mut v, "198.18.0.2", 200, "02:00:00:00:0a:01", &[], 3);
        let w = wanted(&v, &local());
        assert_eq!(
            w.fdb,
            HashMap::from([((200, mac("02:00:00:00:0c:01")), ip("198.18.0.2"))])
        );
        assert_eq!(w.conflicts.len(), 2, "{:?}", w.conflicts);
        assert!(w.conflicts.iter().any(|c| c.contains("198.18.0.2 wins")));
        assert!(
            w.conflicts
                .iter()
                .any(|c| c.contains("station of this host"))
        );
    }
}
