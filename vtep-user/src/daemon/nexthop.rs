//! Keeping the underlay next hops of remote VTEPs resolved, and copying them into the
//! datapath's next-hop cache.
//!
//! Flood copies (ARP among them) and non-IP frames cannot wait for neighbour resolution in the
//! datapath, so the kernel is asked to keep each next hop resolved with a "managed" neighbour
//! entry. The resolved next hop (interface, both MACs) is then written to `NEXTHOPS`, so
//! encapsulation does not pay a FIB lookup per packet. Routes change and a link flap flushes
//! neighbours, so this is reconciled every second, not done once; a remote whose next hop is
//! not resolved has no cache entry and the datapath falls back to the FIB lookup.
//!
//! Only the VTEPs something names are kept ([`super::remotes`]), at most `underlay.max_remotes`;
//! when the last reference to one goes, so do the neighbour entry vtep made for it (unless
//! another kept VTEP goes through the same next hop) and its cache entry. A reconcile costs one
//! neighbour dump and at most [`ROUTE_CHECKS`] route lookups, however many VTEPs are kept: a
//! VTEP's route is looked up when it is new or its neighbour entry went missing, and otherwise
//! in turn with the others.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::{IpAddr, Ipv4Addr},
    ops::Bound,
};

use anyhow::Result;
use tracing::{debug, info, warn};
use vtep_common::maps::{
    NextHopEntry, RESOLVER_CHANGED, RESOLVER_DONE, RESOLVER_KEPT, RESOLVER_REFUSED, VtepAddr,
    vtep_addr, vtep_ip,
};

use crate::{
    ctl::stats::NextHopStates,
    daemon::{
        remotes::{self, References},
        undo::{Item, Undo},
    },
    datapath::{accept, loader::Datapath},
    sys::netlink::Net,
};

/// How long a reconcile that made neighbour entries waits for the kernel to resolve them:
/// up to `SETTLE_TRIES` looks, `SETTLE_STEP` apart.
const SETTLE_TRIES: usize = 10;
const SETTLE_STEP: std::time::Duration = std::time::Duration::from_millis(10);

/// Route lookups per reconcile: new VTEPs and those whose neighbour entry went missing first,
/// then the others in turn. With up to this many VTEPs, every route is checked every second.
pub const ROUTE_CHECKS: usize = 64;

/// How the kernel routes to one kept VTEP, as last looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Not looked up yet.
    Unknown,
    /// No route (looked up again in turn).
    Unreachable,
    /// On-link, but the network or broadcast address of the subnet: never resolved.
    SubnetEdge,
    Via {
        oif: u32,
        nexthop: IpAddr,
    },
}

/// What the resolver publishes in `RESOLVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Published {
    kept: u64,
    refused: u64,
    states: NextHopStates,
}

/// What changed since the last reconcile, read before anything walks the FDB (see
/// [`Resolver::changes`]).
#[derive(Debug, Default)]
pub struct Changes {
    /// VTEPs the datapath learned stations behind.
    noted: Vec<IpAddr>,
    /// References must be counted again: a `vtep fdb` command changed them, or they never were.
    recount: bool,
}

/// Keeps the next hops of the remote VTEPs something names resolved and cached, one
/// [`Resolver::reconcile`] at a time.
pub struct Resolver {
    /// `underlay.max_remotes`.
    cap: usize,
    /// The underlay is IPv6 (its neighbours are the kernel's IPv6 ones).
    ipv6: bool,
    /// Keep the allow-list's known VTEPs (`underlay.accept` has `known`) in step.
    accept_known: bool,
    /// The VTEPs kept, and their routes.
    kept: BTreeMap<IpAddr, Route>,
    /// Named VTEPs not kept for want of room.
    refused: HashSet<IpAddr>,
    /// VTEPs refused since start, each counted when it is refused anew.
    refused_total: u64,
    /// The `RESOLVER_CHANGED` value last acted on; `None` before the first count.
    changed_seen: Option<u64>,
    /// Where the last turn of route checks stopped.
    cursor: Option<IpAddr>,
    /// Neighbour entries this instance created (and recorded for removal).
    created: HashSet<(u32, IpAddr)>,
    /// What `NEXTHOPS` holds, so the map is written only on a change.
    cached: HashMap<IpAddr, NextHopEntry>,
    /// What `RESOLVER` was last given.
    published: Option<Published>,
    /// Kept VTEPs whose route is looked up first at the next reconcile: routes changed.
    stale: BTreeSet<IpAddr>,
}

impl Resolver {
    /// A resolver keeping at most `cap` VTEPs of an IPv6 (`ipv6`) or IPv4 underlay, and the
    /// allow-list's known VTEPs when `accept_known`. It knows of no VTEP before its first
    /// reconcile counts them.
    pub fn new(cap: u32, ipv6: bool, accept_known: bool) -> Self {
        Self {
            cap: cap as usize,
            ipv6,
            accept_known,
            kept: BTreeMap::new(),
            refused: HashSet::new(),
            refused_total: 0,
            changed_seen: None,
            cursor: None,
            created: HashSet::new(),
            cached: HashMap::new(),
            published: None,
            stale: BTreeSet::new(),
        }
    }

    /// The kernel's routes changed: every kept VTEP's route is looked up again, first thing at
    /// the next reconcile (up to [`ROUTE_CHECKS`] of them, the rest in the reconciles after),
    /// while the datapath goes on with the next hops it has meanwhile.
    pub fn routes_changed(&mut self) {
        self.stale = self.kept.keys().copied().collect();
    }

    /// Gives this resolver new limits (a reload) and has it count again: what it keeps beyond
    /// a lower `cap` goes.
    pub fn set_limits(&mut self, cap: u32, accept_known: bool) {
        self.cap = cap as usize;
        self.accept_known = accept_known;
        self.changed_seen = None;
    }

    /// Takes over what a stopped instance's resolver left: the neighbour entries its undo log
    /// (`items`, taken over) records as made, and the next-hop cache in `datapath`'s pinned
    /// map, which stays as it is until a reconcile finds otherwise.
    pub fn adopt(&mut self, datapath: &mut Datapath, items: &[Item]) {
        for item in items {
            if let Item::Nexthop { ifindex, ip } = item {
                self.created.insert((*ifindex, *ip));
            }
        }
        match datapath.nexthops() {
            Ok(map) => {
                for (ip, entry) in map.iter().flatten() {
                    self.cached.insert(vtep_ip(&ip), entry);
                }
            }
            Err(e) => warn!("next-hop cache: {e:#}"),
        }
    }

    /// Takes the VTEPs the datapath noted (emptying `DYNAMIC_VTEPS`) and whether references must
    /// be counted again. Call before anything walks the FDB in the same reconcile: a station
    /// learned after the walk is then still noted for the next one. Read errors are logged.
    pub fn changes(&mut self, dp: &mut Datapath) -> Changes {
        let mut out = Changes {
            noted: Vec::new(),
            recount: self.changed_seen.is_none(),
        };
        match dp.resolver().and_then(|r| Ok(r.get(&RESOLVER_CHANGED, 0)?)) {
            Ok(v) if Some(v) != self.changed_seen => {
                self.changed_seen = Some(v);
                out.recount = true;
            }
            Ok(_) => {}
            Err(e) => warn!("resolver state: {e:#}"),
        }
        match dp.dynamic_vteps() {
            Ok(mut map) => {
                let keys: Vec<VtepAddr> = map.keys().flatten().collect();
                for key in &keys {
                    // Gone already (evicted) is fine: the key was read.
                    let _ = map.remove(key);
                }
                out.noted = keys.iter().map(vtep_ip).collect();
            }
            Err(e) => warn!("learned VTEPs: {e:#}"),
        }
        out
    }

    /// Brings the kept VTEPs up to date — from `walked` (the FDB's references, when the ageing
    /// sweep walked it this time), from a walk of its own when `changes` asks for one, or else
    /// by adding the noted VTEPs while there is room — then makes sure every kept VTEP's next hop
    /// has a neighbour entry the kernel keeps resolved, removes the entries made for VTEPs no
    /// longer kept, and makes the datapath's next-hop cache hold exactly the resolved ones.
    /// Fails only when the undo log cannot be written; the rest is logged and tried again next
    /// time.
    pub async fn reconcile(
        &mut self,
        net: &Net,
        datapath: &mut Datapath,
        undo: &mut Undo,
        changes: Changes,
        walked: Option<References>,
    ) -> Result<()> {
        let walked = match walked {
            Some(refs) => Some(refs),
            None if changes.recount => match remotes::count_fdb(datapath) {
                Ok(refs) => Some(refs),
                Err(e) => {
                    warn!("counting remote VTEPs: {e:#}");
                    // Counted again next time.
                    self.changed_seen = None;
                    None
                }
            },
            None => None,
        };
        match walked {
            Some(mut refs) => match remotes::count_flood_lists(datapath, &mut refs) {
                Ok(()) => self.recounted(datapath, &refs),
                Err(e) => {
                    warn!("counting remote VTEPs: {e:#}");
                    self.changed_seen = None;
                }
            },
            None => self.add_noted(&changes.noted),
        }
        self.publish(datapath);
        let table = match net.neighbours(self.ipv6).await {
            Ok(t) => t,
            Err(e) => {
                warn!("{e:#}");
                HashMap::new()
            }
        };
        let checked = self.check_routes(net, &table).await;
        let added = self
            .keep_resolved(net, datapath, undo, &table, &checked)
            .await?;
        if added > 0 {
            // Resolving takes the kernel one ARP exchange: wait for it (briefly, whatever the
            // answer), so the new VTEPs are cached before this returns and their first flood
            // copy is not dropped as unresolved.
            for attempt in 1..=SETTLE_TRIES {
                tokio::time::sleep(SETTLE_STEP).await;
                let Ok(now) = net.neighbours(self.ipv6).await else {
                    break;
                };
                let pending = self.created.iter().any(|hop| now.get(hop) == Some(&None));
                if !pending || attempt == SETTLE_TRIES {
                    self.keep_resolved(net, datapath, undo, &now, &checked)
                        .await?;
                    break;
                }
            }
        }
        // The states as this reconcile left them (the first publish, above, gave the counts
        // before the routes were looked up).
        self.publish(datapath);
        if let Some(seen) = self.changed_seen
            && let Err(e) = datapath
                .resolver()
                .and_then(|mut r| Ok(r.set(RESOLVER_DONE, seen, 0)?))
        {
            warn!("resolver state: {e:#}");
        }
        Ok(())
    }

    /// Keeps the VTEPs `refs` names, as [`remotes::admit`] picks them, and the allow-list's
    /// known VTEPs in step.
    fn recounted(&mut self, datapath: &mut Datapath, refs: &References) {
        let (admitted, refused) = remotes::admit(refs, |ip| self.kept.contains_key(ip), self.cap);
        let mut kept = BTreeMap::new();
        for ip in admitted {
            let route = self.kept.remove(&ip).unwrap_or(Route::Unknown);
            kept.insert(ip, route);
        }
        for ip in self.kept.keys() {
            debug!(remote = %ip, "remote VTEP no longer named");
        }
        self.kept = kept;
        let refused: HashSet<IpAddr> = refused.into_iter().collect();
        self.count_refused(refused.difference(&self.refused).count());
        self.refused = refused;
        if self.accept_known {
            let synced = datapath
                .accept()
                .and_then(|mut map| accept::sync_known(&mut map, &refs.listed()));
            match synced {
                Ok(0) => {}
                Ok(n) => info!(removed = n, "allow-list: VTEPs no longer named"),
                Err(e) => warn!("allow-list: {e:#}"),
            }
        }
    }

    /// Keeps the VTEPs `noted` (learned behind) while there is room; refuses the rest.
    fn add_noted(&mut self, noted: &[IpAddr]) {
        let mut refused = 0;
        for ip in noted {
            if self.kept.contains_key(ip) {
                continue;
            }
            if self.kept.len() < self.cap {
                debug!(remote = %ip, "learned a remote VTEP");
                self.kept.insert(*ip, Route::Unknown);
                self.refused.remove(ip);
            } else if self.refused.insert(*ip) {
                refused += 1;
            }
        }
        self.count_refused(refused);
    }

    fn count_refused(&mut self, n: usize) {
        if n > 0 {
            warn!(
                refused = n,
                max_remotes = self.cap,
                "not keeping more remote VTEPs resolved: underlay.max_remotes reached"
            );
            self.refused_total += n as u64;
        }
    }

    /// Writes the kept and refused counts, and the kept VTEPs by next-hop state, to `RESOLVER`
    /// for `vtep stats` and the metrics, when they changed.
    fn publish(&mut self, datapath: &mut Datapath) {
        let now = Published {
            kept: self.kept.len() as u64,
            refused: self.refused_total,
            states: self.states(),
        };
        if self.published == Some(now) {
            return;
        }
        let written = datapath.resolver().and_then(|mut map| {
            map.set(RESOLVER_KEPT, now.kept, 0)?;
            map.set(RESOLVER_REFUSED, now.refused, 0)?;
            for (slot, n) in NextHopStates::SLOTS.iter().zip(now.states.values()) {
                map.set(*slot, n, 0)?;
            }
            Ok(())
        });
        match written {
            Ok(()) => self.published = Some(now),
            Err(e) => warn!("resolver state: {e:#}"),
        }
    }

    /// The kept VTEPs by the state of their next hop, as last looked up.
    fn states(&self) -> NextHopStates {
        let mut states = NextHopStates::default();
        for (ip, route) in &self.kept {
            let n = match route {
                Route::Unknown => &mut states.pending,
                Route::Unreachable | Route::SubnetEdge => &mut states.unreachable,
                Route::Via { .. } if self.cached.contains_key(ip) => &mut states.resolved,
                Route::Via { .. } => &mut states.resolving,
            };
            *n += 1;
        }
        states
    }

    /// Looks up the routes of the VTEPs that need it most, at most [`ROUTE_CHECKS`], taking
    /// turns from where the last reconcile stopped: first new ones and those whose neighbour
    /// entry is not in `table` (flushed by a link flap, or refused by a full table), then the
    /// others. Returns the VTEPs looked up.
    async fn check_routes(
        &mut self,
        net: &Net,
        table: &HashMap<(u32, IpAddr), Option<[u8; 6]>>,
    ) -> HashSet<IpAddr> {
        self.stale.retain(|ip| self.kept.contains_key(ip));
        let mut due: Vec<IpAddr> = self.stale.iter().take(ROUTE_CHECKS).copied().collect();
        for ip in &due {
            self.stale.remove(ip);
        }
        let budget = ROUTE_CHECKS - due.len();
        if budget > 0 {
            let (more, cursor) = plan_route_checks(&self.kept, self.cursor, budget, |hop| {
                table.contains_key(&hop)
            });
            if cursor.is_some() {
                self.cursor = cursor;
            }
            due.extend(
                more.into_iter()
                    .filter(|ip| !due.contains(ip))
                    .collect::<Vec<_>>(),
            );
        }
        let mut subnets = HashMap::new();
        let mut checked = HashSet::new();
        for ip in due {
            let route = route(net, ip, &mut subnets).await;
            self.kept.insert(ip, route);
            checked.insert(ip);
        }
        checked
    }

    /// Adds a managed neighbour entry for the next hop of every VTEP whose route was just
    /// `checked` and `table` lacks (so a full table costs at most [`ROUTE_CHECKS`] attempts),
    /// removes the entries this instance made that no kept VTEP goes through any more, and syncs
    /// the cache.
    async fn keep_resolved(
        &mut self,
        net: &Net,
        datapath: &mut Datapath,
        undo: &mut Undo,
        table: &HashMap<(u32, IpAddr), Option<[u8; 6]>>,
        checked: &HashSet<IpAddr>,
    ) -> Result<usize> {
        let mut failed = (0, None);
        let mut smacs = HashMap::new();
        let mut wanted = HashMap::new();
        let mut in_use = HashSet::new();
        let mut added = Vec::new();
        let hops: Vec<(IpAddr, u32, IpAddr)> = self
            .kept
            .iter()
            .filter_map(|(ip, route)| match route {
                Route::Via { oif, nexthop } => Some((*ip, *oif, *nexthop)),
                _ => None,
            })
            .collect();
        for (remote, oif, nexthop) in hops {
            in_use.insert((oif, nexthop));
            match table.get(&(oif, nexthop)) {
                // Being resolved, or failed: the kernel keeps trying a managed entry.
                Some(None) => {}
                Some(Some(dmac)) => {
                    if let Some(smac) = link_mac(net, oif, &mut smacs).await {
                        let entry = NextHopEntry {
                            ifindex: oif,
                            dmac: *dmac,
                            smac,
                        };
                        wanted.insert(remote, entry);
                    }
                }
                None if !checked.contains(&remote) => {}
                None => match net.add_managed_neighbour(oif, nexthop).await {
                    Ok(true) => {
                        debug!(%remote, %nexthop, oif, "keeping next hop resolved");
                        // Made again after a flush: recorded already.
                        if self.created.insert((oif, nexthop)) {
                            added.push(Item::Nexthop {
                                ifindex: oif,
                                ip: nexthop,
                            });
                        }
                    }
                    // An entry exists: the kernel resolves it on use, and it stays valid for
                    // the datapath's lookups while it is.
                    Ok(false) => {}
                    Err(e) => {
                        failed.0 += 1;
                        failed.1.get_or_insert(format!(
                            "next hop {nexthop} of remote VTEP {remote}: {e:#}"
                        ));
                    }
                },
            }
        }
        if let (n, Some(first)) = failed {
            // One line per reconcile, however many failed (a full neighbour table).
            warn!(
                failed = n,
                "cannot keep next hops resolved; the first: {first}"
            );
        }
        let unused: Vec<(u32, IpAddr)> = self
            .created
            .iter()
            .filter(|hop| !in_use.contains(*hop))
            .copied()
            .collect();
        let mut removed = Vec::new();
        for (oif, ip) in unused {
            match net.del_neighbour(oif, ip).await {
                Ok(()) => {
                    debug!(nexthop = %ip, oif, "next hop no longer needed");
                    self.created.remove(&(oif, ip));
                    removed.push(Item::Nexthop { ifindex: oif, ip });
                }
                Err(e) => warn!("{e:#}"),
            }
        }
        let n_added = added.len();
        undo.record_changes(added, &removed)?;
        self.sync_cache(datapath, wanted);
        Ok(n_added)
    }

    /// Writes the changed entries of `wanted` to `NEXTHOPS` and removes the others. A failed
    /// write leaves the remote uncached (the datapath's FIB lookup serves it).
    fn sync_cache(&mut self, datapath: &mut Datapath, wanted: HashMap<IpAddr, NextHopEntry>) {
        let mut map = match datapath.nexthops() {
            Ok(m) => m,
            Err(e) => {
                warn!("next-hop cache: {e:#}");
                return;
            }
        };
        let gone: Vec<IpAddr> = self
            .cached
            .keys()
            .filter(|ip| !wanted.contains_key(ip))
            .copied()
            .collect();
        for ip in gone {
            if let Err(e) = map.remove(&vtep_addr(ip)) {
                warn!("next-hop cache: removing {ip}: {e}");
            }
            debug!(remote = %ip, "next hop no longer cached");
            self.cached.remove(&ip);
        }
        for (ip, entry) in wanted {
            if self.cached.get(&ip) == Some(&entry) {
                continue;
            }
            match map.insert(vtep_addr(ip), entry, 0) {
                Ok(()) => {
                    debug!(remote = %ip, ifindex = entry.ifindex, "next hop cached");
                    self.cached.insert(ip, entry);
                }
                Err(e) => {
                    warn!("next-hop cache: writing {ip}: {e}");
                    // Whatever the map holds for it is no longer trusted.
                    let _ = map.remove(&vtep_addr(ip));
                    self.cached.remove(&ip);
                }
            }
        }
    }
}

/// Which of the `kept` VTEPs to look up the routes of, at most `budget`, taking turns after
/// `cursor`: first those whose route is not known or whose next hop has no neighbour entry
/// (`has_neighbour` says), then the others. Returns them and where the turn stopped (`None` when
/// nothing was picked).
fn plan_route_checks(
    kept: &BTreeMap<IpAddr, Route>,
    cursor: Option<IpAddr>,
    budget: usize,
    has_neighbour: impl Fn((u32, IpAddr)) -> bool,
) -> (Vec<IpAddr>, Option<IpAddr>) {
    // After the cursor to the end, then from the start up to and with the cursor.
    let (after, upto) = match cursor {
        Some(c) => (Bound::Excluded(c), Bound::Included(c)),
        None => (
            Bound::Unbounded,
            Bound::Excluded(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ),
    };
    let in_turn: Vec<(IpAddr, bool)> = kept
        .range((after, Bound::Unbounded))
        .chain(kept.range((Bound::Unbounded, upto)))
        .map(|(ip, route)| {
            let urgent = match route {
                Route::Unknown => true,
                Route::Via { oif, nexthop } => !has_neighbour((*oif, *nexthop)),
                Route::Unreachable | Route::SubnetEdge => false,
            };
            (*ip, urgent)
        })
        .collect();
    let mut picked = vec![false; in_turn.len()];
    let mut left = budget;
    // The turn moves on with the VTEPs looked up in turn, not with the urgent ones, which can
    // be anywhere (and stay urgent while their neighbour entry cannot be made).
    let mut last = [None, None];
    for (pass, urgent_pass) in [true, false].into_iter().enumerate() {
        for (i, (ip, urgent)) in in_turn.iter().enumerate() {
            if left > 0 && !picked[i] && *urgent == urgent_pass {
                picked[i] = true;
                left -= 1;
                last[pass] = Some(*ip);
            }
        }
    }
    let last = last[1].or(last[0]);
    let due = in_turn
        .iter()
        .zip(&picked)
        .filter(|(_, p)| **p)
        .map(|((ip, _), _)| *ip)
        .collect();
    (due, last)
}

/// How the kernel routes to `remote` now; the subnets of each output interface are looked up
/// once per reconcile (`subnets`). Lookup errors are logged and count as no route.
async fn route(
    net: &Net,
    remote: IpAddr,
    subnets: &mut HashMap<u32, Vec<(Ipv4Addr, u8)>>,
) -> Route {
    let (oif, nexthop) = match net.route_to(remote).await {
        Ok(Some(hop)) => hop,
        Ok(None) => {
            debug!(%remote, "no route to remote VTEP");
            return Route::Unreachable;
        }
        Err(e) => {
            warn!("{e:#}");
            return Route::Unreachable;
        }
    };
    // IPv6 has no broadcast address; its subnet-router anycast address answers neighbour
    // solicitations like any other.
    if let (true, IpAddr::V4(remote)) = (nexthop == remote, remote) {
        if let std::collections::hash_map::Entry::Vacant(slot) = subnets.entry(oif) {
            slot.insert(net.ipv4_subnets(oif).await.unwrap_or_else(|e| {
                warn!("{e:#}");
                Vec::new()
            }));
        }
        if remotes::is_subnet_edge(remote, &subnets[&oif]) {
            debug!(%remote, "remote VTEP is its subnet's network or broadcast address");
            return Route::SubnetEdge;
        }
    }
    Route::Via { oif, nexthop }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u16) -> IpAddr {
        Ipv4Addr::new(198, 18, (n >> 8) as u8, n as u8).into()
    }

    /// The bug this pins: the turn wrapped around to the VTEPs before the cursor but never to
    /// the cursor's own, so a lone VTEP without a route (a link flap) was never looked up again
    /// and the overlay stayed dead after the underlay came back.
    #[test]
    fn a_lone_vtep_without_a_route_is_looked_up_every_time() {
        let kept = BTreeMap::from([(ip(2), Route::Unreachable)]);
        let mut cursor = None;
        for _ in 0..3 {
            let (due, c) = plan_route_checks(&kept, cursor, ROUTE_CHECKS, |_| true);
            assert_eq!(due, [ip(2)]);
            cursor = c;
        }
    }

    /// Many VTEPs: those whose neighbour entry is missing come first, the others take turns,
    /// and every one is looked up within kept / budget reconciles.
    #[test]
    fn route_checks_are_bounded_urgent_first_and_all_take_turns() {
        let mut kept = BTreeMap::new();
        for n in 1..=100 {
            kept.insert(
                ip(n),
                Route::Via {
                    oif: 2,
                    nexthop: ip(n),
                },
            );
        }
        let missing = ip(90);
        let has = |(_, hop): (u32, IpAddr)| hop != missing;
        let (due, cursor) = plan_route_checks(&kept, None, 10, has);
        assert_eq!(due.len(), 10);
        assert!(
            due.contains(&missing),
            "the VTEP without neighbour entry first"
        );
        let mut seen: HashSet<IpAddr> = due.into_iter().collect();
        let mut cursor = cursor;
        for _ in 0..10 {
            let (due, c) = plan_route_checks(&kept, cursor, 10, has);
            assert!(due.len() <= 10);
            seen.extend(due);
            cursor = c;
        }
        assert_eq!(seen.len(), 100, "every VTEP looked up within 11 reconciles");
    }
}
