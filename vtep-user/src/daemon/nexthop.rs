//! Keeping the underlay next hops of remote VTEPs resolved, and copying them into the
//! datapath's next-hop cache.
//!
//! Flood copies (ARP among them) and non-IP frames cannot wait for neighbour resolution in the
//! datapath, so the kernel is asked to keep each next hop resolved with a "managed" neighbour
//! entry. The resolved next hop (interface, both MACs) is then written to `NEXTHOPS`, so
//! encapsulation does not pay a FIB lookup per packet. Routes change and a link flap flushes
//! neighbours, so this is reconciled periodically, not done once; a remote whose next hop is
//! not resolved has no cache entry and the datapath falls back to the FIB lookup.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
};

use anyhow::Result;
use tracing::{debug, warn};
use vtep_common::maps::NextHopEntry;

use crate::{
    daemon::undo::{Item, Undo},
    datapath::loader::Datapath,
    sys::netlink::Net,
};

/// Keeps the next hops of a set of remote VTEPs resolved and cached, one [`Resolver::reconcile`]
/// at a time.
pub struct Resolver {
    remotes: Vec<Ipv4Addr>,
    /// Entries this instance created (and recorded for removal).
    created: HashSet<(u32, Ipv4Addr)>,
    /// What `NEXTHOPS` holds, so the map is written only on a change.
    cached: HashMap<Ipv4Addr, NextHopEntry>,
}

impl Resolver {
    /// A resolver for `remotes` (duplicates are fine).
    pub fn new(mut remotes: Vec<Ipv4Addr>) -> Self {
        remotes.sort_unstable();
        remotes.dedup();
        Self {
            remotes,
            created: HashSet::new(),
            cached: HashMap::new(),
        }
    }

    /// Makes sure every remote's next hop has a neighbour entry the kernel keeps resolved, and
    /// that the datapath's next-hop cache holds exactly the resolved ones. Remotes without a
    /// route are skipped (and tried again next time). Fails only when the undo log cannot be
    /// written.
    pub async fn reconcile(
        &mut self,
        net: &Net,
        datapath: &mut Datapath,
        undo: &mut Undo,
    ) -> Result<()> {
        self.add_dynamic_vteps(datapath);
        let resolved = match net.resolved_neighbours().await {
            Ok(n) => n,
            Err(e) => {
                warn!("{e:#}");
                HashMap::new()
            }
        };
        let mut smacs = HashMap::new();
        let mut wanted = HashMap::new();
        for remote in self.remotes.clone() {
            let Some((oif, nexthop)) = route(net, remote).await else {
                continue;
            };
            self.keep_resolved(net, undo, remote, oif, nexthop).await?;
            let Some(&dmac) = resolved.get(&(oif, nexthop)) else {
                continue;
            };
            if let Some(smac) = link_mac(net, oif, &mut smacs).await {
                wanted.insert(
                    remote,
                    NextHopEntry {
                        ifindex: oif,
                        dmac,
                        smac,
                    },
                );
            }
        }
        self.sync_cache(datapath, wanted);
        Ok(())
    }

    /// Adds the remote VTEPs the datapath learned stations behind to those kept resolved.
    fn add_dynamic_vteps(&mut self, datapath: &mut Datapath) {
        let map = match datapath.dynamic_vteps() {
            Ok(m) => m,
            Err(e) => {
                warn!("learned VTEPs: {e:#}");
                return;
            }
        };
        for key in map.keys().flatten() {
            let ip = Ipv4Addr::from(key);
            if !self.remotes.contains(&ip) {
                debug!(remote = %ip, "learned a remote VTEP");
                self.remotes.push(ip);
            }
        }
    }

    async fn keep_resolved(
        &mut self,
        net: &Net,
        undo: &mut Undo,
        remote: Ipv4Addr,
        oif: u32,
        nexthop: Ipv4Addr,
    ) -> Result<()> {
        match net.add_managed_neighbour(oif, nexthop).await {
            Ok(true) => {
                debug!(%remote, %nexthop, oif, "keeping next hop resolved");
                if self.created.insert((oif, nexthop)) {
                    undo.record(Item::Nexthop {
                        ifindex: oif,
                        ip: nexthop,
                    })?;
                }
            }
            // An entry exists: the kernel resolves it on use, and it stays valid for the
            // datapath's lookups while it is.
            Ok(false) => {}
            Err(e) => {
                warn!("cannot keep next hop {nexthop} of remote VTEP {remote} resolved: {e:#}")
            }
        }
        Ok(())
    }

    /// Writes the changed entries of `wanted` to `NEXTHOPS` and removes the ones no longer
    /// resolved. A failed write leaves the remote uncached (the datapath's FIB lookup serves it).
    fn sync_cache(&mut self, datapath: &mut Datapath, wanted: HashMap<Ipv4Addr, NextHopEntry>) {
        let mut map = match datapath.nexthops() {
            Ok(m) => m,
            Err(e) => {
                warn!("next-hop cache: {e:#}");
                return;
            }
        };
        let gone: Vec<Ipv4Addr> = self
            .cached
            .keys()
            .filter(|ip| !wanted.contains_key(ip))
            .copied()
            .collect();
        for ip in gone {
            if let Err(e) = map.remove(&ip.octets()) {
                warn!("next-hop cache: removing {ip}: {e}");
            }
            debug!(remote = %ip, "next hop no longer resolved");
            self.cached.remove(&ip);
        }
        for (ip, entry) in wanted {
            if self.cached.get(&ip) == Some(&entry) {
                continue;
            }
            match map.insert(ip.octets(), entry, 0) {
                Ok(()) => {
                    debug!(remote = %ip, ifindex = entry.ifindex, "next hop cached");
                    self.cached.insert(ip, entry);
                }
                Err(e) => {
                    warn!("next-hop cache: writing {ip}: {e}");
                    // Whatever the map holds for it is no longer trusted.
                    let _ = map.remove(&ip.octets());
                    self.cached.remove(&ip);
                }
            }
        }
    }
}

/// The output interface and next hop of `remote`, or `None` (logged) when there is no route or
/// the lookup failed.
async fn route(net: &Net, remote: Ipv4Addr) -> Option<(u32, Ipv4Addr)> {
    match net.route_to(remote).await {
        Ok(Some(hop)) => Some(hop),
        Ok(None) => {
            debug!(%remote, "no route to remote VTEP");
            None
        }
        Err(e) => {
            warn!("{e:#}");
            None
        }
    }
}

/// The MAC of interface `index`, looked up once per reconcile (`known`); `None` (logged) when
/// the interface is gone or the lookup failed.
async fn link_mac(
    net: &Net,
    index: u32,
    known: &mut HashMap<u32, Option<[u8; 6]>>,
) -> Option<[u8; 6]> {
    if let Some(mac) = known.get(&index) {
        return *mac;
    }
    let mac = match net.link_by_index(index).await {
        Ok(link) => link.map(|l| l.mac),
        Err(e) => {
            warn!("{e:#}");
            None
        }
    };
    known.insert(index, mac);
    mac
}
