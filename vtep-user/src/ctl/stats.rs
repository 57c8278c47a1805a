//! `vtep stats`: a running instance's per-VNI counters and drop counters, summed over CPUs.
//!
//! Nothing here names a counter or a drop reason: both come from the lists in vtep-common
//! ([`VniStats::COUNTERS`], [`DropReason::ALL`]), so a counter added there shows up in the JSON
//! and the text output without an edit here.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow};
use serde::{Serialize, ser::SerializeMap as _};
use vtep_common::{
    drop::DropReason,
    maps::{
        RESOLVER_KEPT, RESOLVER_PENDING, RESOLVER_REFUSED, RESOLVER_RESOLVED, RESOLVER_RESOLVING,
        RESOLVER_UNREACHABLE, VniStats,
    },
};

use crate::{
    datapath::{batch, maps::Pinned},
    instance,
};

/// The counters of one VNI, summed over CPUs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VniCounters {
    pub vni: u32,
    pub counters: VniStats,
    /// Learned FDB entries (as of the last ageing sweep, plus what was learned since).
    pub learned: u64,
    /// The VNI's packets dropped, by reason name; only reasons that dropped some. A drop
    /// before the VNI is known (a malformed header, a VNI not served) is in no VNI's.
    pub drops: BTreeMap<&'static str, u64>,
}

impl VniCounters {
    /// Every value as (its name, the value): `vni`, each of [`VniStats::COUNTERS`], `learned`,
    /// `drops` (all reasons together). The JSON object and the text table are both made from
    /// this.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let counters = VniStats::COUNTERS
            .iter()
            .map(|c| c.name)
            .zip(self.counters.values());
        std::iter::once(("vni", u64::from(self.vni)))
            .chain(counters)
            .chain([
                ("learned", self.learned),
                ("drops", self.drops.values().sum()),
            ])
    }
}

/// An object keyed by [`VniCounters::fields`], in that order, then `drops_by_reason`.
impl Serialize for VniCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.fields() {
            map.serialize_entry(name, &value)?;
        }
        map.serialize_entry("drops_by_reason", &self.drops)?;
        map.end()
    }
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub vnis: Vec<VniCounters>,
    /// Drop counters by reason name, every reason present.
    pub drops: BTreeMap<&'static str, u64>,
    pub remotes: RemoteVteps,
    /// The underlay's state and the ports that are gone, as the instance last saw them; absent
    /// when its info file cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<instance::Links>,
    /// The store client's state, for an instance with a `[store]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::store::Status>,
    /// The segmenter's interfaces and what they dropped, for an instance that has one (an IPv6
    /// underlay with UDP checksums).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmenter: Option<Segmenter>,
}

/// The segmenter of an instance (the veth pair GSO frames are split through, see README) and
/// the packets its two ends dropped, as the kernel counts them. Nothing is dropped there unless
/// something is wrong with it: its MTU changed by hand, its offloads turned back on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segmenter {
    /// Its out and return ends.
    pub interfaces: [String; 2],
    /// Packets both ends dropped, sending and receiving, since they were made.
    pub dropped: u64,
}

impl Segmenter {
    /// The segmenter of instance `name` in its namespace, `None` when it has none or its
    /// namespace cannot be read.
    fn read(name: &str) -> Option<Self> {
        let info = instance::Info::load(name).ok()?;
        let dropped = crate::sys::ifstats::dropped_in(info.open_netns(name).ok()?).ok()?;
        let interfaces = crate::daemon::segmenter::names(name);
        let mut sum = 0;
        for end in &interfaces {
            let d = dropped.get(end)?;
            sum += d.rx + d.tx;
        }
        Some(Self {
            interfaces,
            dropped: sum,
        })
    }
}

/// The remote VTEPs whose next hops the instance keeps resolved.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteVteps {
    /// VTEPs kept resolved now (at most `underlay.max_remotes`).
    pub kept: u64,
    /// VTEPs not kept because `underlay.max_remotes` were, since the start (each counted when
    /// refused anew).
    pub refused: u64,
    /// The kept VTEPs by the state of their underlay next hop.
    #[serde(flatten)]
    pub states: NextHopStates,
}

/// Kept remote VTEPs by the state of their underlay next hop, as `vtep up` last looked
/// (`RESOLVER_*`); they add up to the kept VTEPs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NextHopStates {
    /// Next hop resolved and cached: encapsulation skips the FIB lookup.
    pub resolved: u64,
    /// A route, but its next hop's neighbour entry is not resolved (yet, or it failed).
    pub resolving: u64,
    /// No usable route (none, or an on-link network or broadcast address).
    pub unreachable: u64,
    /// Not looked up yet (new since the last reconcile).
    pub pending: u64,
}

impl NextHopStates {
    /// The `RESOLVER` slot of each state, in the order of [`Self::values`] and [`Self::NAMES`].
    pub const SLOTS: [u32; 4] = [
        RESOLVER_RESOLVED,
        RESOLVER_RESOLVING,
        RESOLVER_UNREACHABLE,
        RESOLVER_PENDING,
    ];
    /// The states' names (the JSON keys, the metric's `state` label).
    pub const NAMES: [&'static str; 4] = ["resolved", "resolving", "unreachable", "pending"];

    pub const fn values(&self) -> [u64; 4] {
        [
            self.resolved,
            self.resolving,
            self.unreachable,
            self.pending,
        ]
    }
}

/// The counters of instance `name`, VNIs sorted, with the state of its links. Fails when the
/// instance does not run or a counter map cannot be read.
pub fn read(name: &str) -> Result<Stats> {
    let maps = Pinned::of(name);
    let (vnis, per_vni, drops, learned, resolver) = (
        maps.vnis()?,
        maps.vni_stats()?,
        maps.drops()?,
        maps.learned()?,
        maps.resolver()?,
    );
    let vni_drops = vni_drops(&maps)?;

    let mut out = Vec::new();
    for item in vnis.iter() {
        let (vni, cfg) = item.context("reading VNIs")?;
        let mut counters = VniStats::default();
        for s in per_vni
            .get(&cfg.stats_slot, 0)
            .context("reading VNI counters")?
            .iter()
        {
            counters.accumulate(s);
        }
        out.push(VniCounters {
            vni,
            counters,
            learned: learned.get(&cfg.stats_slot, 0).unwrap_or(0),
            drops: vni_drops.get(&cfg.stats_slot).cloned().unwrap_or_default(),
        });
    }
    out.sort_by_key(|c| c.vni);
    let mut by_reason = BTreeMap::new();
    for reason in DropReason::ALL {
        let n: u64 = drops
            .get(&(reason as u32), 0)
            .map_err(|e| anyhow!("reading drop counters: {e}"))?
            .iter()
            .sum();
        by_reason.insert(reason.name(), n);
    }
    let slot = |i| {
        resolver
            .get(&i, 0)
            .context("reading the resolver's counters")
    };
    Ok(Stats {
        vnis: out,
        drops: by_reason,
        remotes: RemoteVteps {
            kept: slot(RESOLVER_KEPT)?,
            refused: slot(RESOLVER_REFUSED)?,
            states: NextHopStates {
                resolved: slot(RESOLVER_RESOLVED)?,
                resolving: slot(RESOLVER_RESOLVING)?,
                unreachable: slot(RESOLVER_UNREACHABLE)?,
                pending: slot(RESOLVER_PENDING)?,
            },
        },
        links: instance::Info::load(name).ok().map(|i| i.links),
        store: crate::store::Status::load(name),
        segmenter: Segmenter::read(name),
    })
}

/// The non-zero per-VNI drop counters, by stats slot then reason name: the whole array in a
/// few syscalls (4,096 slots by every reason).
fn vni_drops(maps: &Pinned) -> Result<BTreeMap<u32, BTreeMap<&'static str, u64>>> {
    let mut out: BTreeMap<u32, BTreeMap<&'static str, u64>> = BTreeMap::new();
    batch::for_each(&maps.vni_drops()?, |index: &u32, n: &u64| {
        let reasons = DropReason::COUNT;
        if *n != 0
            && let Some(reason) = DropReason::ALL.get((index % reasons) as usize)
        {
            out.entry(index / reasons)
                .or_default()
                .insert(reason.name(), *n);
        }
    })
    .context("reading per-VNI drop counters")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vtep stats -j` keeps the keys (and their order) it had before the counters came from
    /// one list; the namespace tests and users' scripts read them.
    #[test]
    fn json_keys_are_the_counter_names() {
        let v = VniCounters {
            vni: 7,
            counters: VniStats {
                encap_packets: 1,
                proxy_replies: 2,
                ..Default::default()
            },
            learned: 3,
            drops: [("no_route", 4), ("inner_too_big", 1)]
                .into_iter()
                .collect(),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"vni":7,"encap_packets":1,"encap_bytes":0,"decap_packets":0,"decap_bytes":0,"local_packets":0,"local_bytes":0,"flood_packets":0,"learn_refused":0,"proxy_replies":2,"decap_by_xdp":0,"learned":3,"drops":5,"drops_by_reason":{"inner_too_big":1,"no_route":4}}"#
        );
    }
}
