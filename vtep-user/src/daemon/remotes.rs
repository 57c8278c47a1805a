//! Which remote VTEPs something names, and which of them `vtep up` keeps resolved.
//!
//! A flood list or a static or runtime FDB entry *lists* a VTEP; a learned FDB entry points at
//! the VTEP it was learned behind. References are counted by walking the FDB (the ageing
//! sweep's walk, or one of its own after a `vtep fdb` command said it changed something) and the
//! flood lists; between walks, the VTEPs the datapath has just learned stations behind arrive
//! through `DYNAMIC_VTEPS`. A VTEP nothing names any more is dropped at the next count.
//!
//! Anyone on the underlay can make the datapath learn a station behind any outer source, so the
//! VTEPs kept are bounded (`underlay.max_remotes`): listed ones first, then those kept already,
//! and the rest refused (and counted) until room frees up. [`admit`] is that whole policy, pure.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr},
};

use anyhow::{Context as _, Result};
use vtep_common::{
    maps::{FDB_F_LEARNED, FDB_REMOTE, FdbEntry, FloodList, MAX_FLOOD_REMOTES, vtep_addr, vtep_ip},
    wire::is_unicast_vtep,
};

use crate::datapath::{batch, loader::Datapath};

/// Why a VTEP is named; the stronger reason wins (`Listed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    /// Only learned FDB entries point at it.
    Learned,
    /// A flood list, or a static or runtime FDB entry, names it.
    Listed,
}

/// Every remote VTEP something names, with its strongest reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References(HashMap<IpAddr, Reference>);

impl References {
    /// Notes that `ip` is named for reason `why`; an address no VTEP can have (an empty list
    /// slot) is ignored.
    pub fn add(&mut self, ip: IpAddr, why: Reference) {
        if !is_unicast_vtep(&vtep_addr(ip), ip.is_ipv6()) {
            return;
        }
        let r = self.0.entry(ip).or_insert(why);
        *r = (*r).max(why);
    }

    /// Notes the VTEP FDB entry `entry` points at, if it points at one.
    pub fn add_fdb_entry(&mut self, entry: &FdbEntry) {
        if entry.kind != FDB_REMOTE {
            return;
        }
        let why = if entry.flags & FDB_F_LEARNED != 0 {
            Reference::Learned
        } else {
            Reference::Listed
        };
        self.add(vtep_ip(&entry.remote), why);
    }

    /// Notes the VTEPs of flood list `list`.
    pub fn add_flood_list(&mut self, list: &FloodList) {
        // A count from a map is data: never trust it to index.
        let n = (list.n_remotes as usize).min(MAX_FLOOD_REMOTES);
        for r in &list.remotes[..n] {
            self.add(vtep_ip(r), Reference::Listed);
        }
    }

    /// The VTEPs listed (not only learned).
    pub fn listed(&self) -> HashSet<IpAddr> {
        self.0
            .iter()
            .filter(|(_, r)| **r == Reference::Listed)
            .map(|(ip, _)| *ip)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The VTEPs the FDB of `dp` points at: one walk of the map, many entries per syscall. Fails
/// when it cannot be read.
pub fn count_fdb(dp: &mut Datapath) -> Result<References> {
    let mut refs = References::default();
    batch::for_each(&dp.fdb()?, |_, entry| refs.add_fdb_entry(entry)).context("reading the FDB")?;
    Ok(refs)
}

/// Adds the VTEPs of every flood list of `dp` to `refs`. Fails when the lists cannot be read.
pub fn count_flood_lists(dp: &mut Datapath, refs: &mut References) -> Result<()> {
    for item in dp.flood()?.iter() {
        let (_, list) = item.context("reading the flood lists")?;
        refs.add_flood_list(&list);
    }
    Ok(())
}

/// Which of the VTEPs `refs` names to keep resolved, at most `cap`: listed ones before learned
/// ones, among equals those `kept` already before new ones (a burst of new sources does not
/// push out VTEPs in use), then by address (so the choice is stable). Returns the VTEPs to keep
/// and those refused.
pub fn admit(
    refs: &References,
    kept: impl Fn(&IpAddr) -> bool,
    cap: usize,
) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut order: Vec<(Reference, bool, IpAddr)> =
        refs.0.iter().map(|(ip, r)| (*r, kept(ip), *ip)).collect();
    order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let ips = order.into_iter().map(|(_, _, ip)| ip);
    let mut admitted: Vec<IpAddr> = ips.collect();
    let refused = admitted.split_off(cap.min(admitted.len()));
    (admitted, refused)
}

/// Whether on-link VTEP `ip` is the network or broadcast address of one of `subnets` (address,
/// prefix length) of the interface it is reached on: no VTEP has those, and resolving one would
/// make the kernel ARP for a broadcast address.
pub fn is_subnet_edge(ip: Ipv4Addr, subnets: &[(Ipv4Addr, u8)]) -> bool {
    subnets.iter().any(|&(addr, len)| {
        // /31 and /32 have no network or broadcast address (RFC 3021).
        if len >= 31 {
            return false;
        }
        let mask = u32::MAX << (32 - u32::from(len));
        let net = u32::from(addr) & mask;
        let ip = u32::from(ip);
        ip & mask == net && (ip == net || ip == net | !mask)
    })
}

#[cfg(test)]
mod tests {
    use vtep_common::maps::{FDB_F_RUNTIME, FDB_LOCAL};

    use super::*;

    fn ip(last: u8) -> IpAddr {
        Ipv4Addr::new(198, 18, 0, last).into()
    }

    fn remote(last: u8, flags: u32) -> FdbEntry {
        FdbEntry {
            kind: FDB_REMOTE,
            remote: vtep_addr(ip(last)),
            flags,
            ..Default::default()
        }
    }

    #[test]
    fn the_strongest_reference_wins_and_local_entries_name_no_vtep() {
        let mut refs = References::default();
        refs.add_fdb_entry(&remote(2, FDB_F_LEARNED));
        refs.add_fdb_entry(&remote(2, FDB_F_RUNTIME));
        refs.add_fdb_entry(&remote(3, FDB_F_LEARNED));
        refs.add_fdb_entry(&FdbEntry {
            kind: FDB_LOCAL,
            ifindex: 7,
            ..Default::default()
        });
        let mut list = FloodList {
            n_remotes: 1,
            ..Default::default()
        };
        list.remotes[0] = vtep_addr(ip(4));
        // A count past the array is not trusted, and empty slots name no VTEP.
        list.n_remotes = 1000;
        refs.add_flood_list(&list);
        assert_eq!(refs.listed(), HashSet::from([ip(2), ip(4)]));
        assert_eq!(refs.len(), 3);
    }

    /// The bug this pins: the set of resolved VTEPs only grew, so spoofed sources filled it
    /// without bound. Now it is capped, listed VTEPs always get their place, and VTEPs kept
    /// already are not pushed out by new ones.
    #[test]
    fn admission_is_capped_listed_first_then_those_kept() {
        let mut refs = References::default();
        for last in 10..20 {
            refs.add(ip(last), Reference::Learned);
        }
        refs.add(ip(200), Reference::Listed);
        let kept_before = [ip(15), ip(16)];
        let (kept, refused) = admit(&refs, |ip| kept_before.contains(ip), 4);
        assert_eq!(kept, [ip(200), ip(15), ip(16), ip(10)]);
        assert_eq!(refused.len(), 7);
        assert!(!refused.contains(&ip(200)));

        let (kept, refused) = admit(&refs, |_| false, 100);
        assert_eq!((kept.len(), refused.len()), (11, 0));
    }

    #[test]
    fn network_and_broadcast_addresses_of_the_subnet_are_never_vteps() {
        let subnets = [(Ipv4Addr::new(198, 18, 0, 1), 24)];
        assert!(is_subnet_edge(Ipv4Addr::new(198, 18, 0, 0), &subnets));
        assert!(is_subnet_edge(Ipv4Addr::new(198, 18, 0, 255), &subnets));
        assert!(!is_subnet_edge(Ipv4Addr::new(198, 18, 0, 2), &subnets));
        assert!(!is_subnet_edge(Ipv4Addr::new(198, 18, 1, 255), &subnets));
        let p2p = [(Ipv4Addr::new(198, 18, 0, 0), 31)];
        assert!(!is_subnet_edge(Ipv4Addr::new(198, 18, 0, 1), &p2p));
    }
}
