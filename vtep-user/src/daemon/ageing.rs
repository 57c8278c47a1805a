//! Ageing learned FDB entries: the datapath stamps a learned entry when traffic confirms it (at
//! most once a second); entries whose stamp is older than their VNI's `ageing` are removed here.
//! The sweep also recounts the learned entries per VNI, which the datapath's `maxaddress` check
//! reads (it only ever adds to the count), and the remote VTEPs the entries it keeps point at,
//! which the resolver of next hops keeps (see `remotes`).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use tracing::debug;
use vtep_common::maps::FDB_F_LEARNED;

use crate::{
    daemon::remotes::References,
    datapath::{
        loader::Datapath,
        maps::{Batched, Walk},
    },
    sys::clock,
};

/// Sweeps run at least this often, and at most once a second.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(30);
const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

struct VniAgeing {
    ageing: u32,
    stats_slot: u32,
}

pub struct Ager {
    vnis: HashMap<u32, VniAgeing>,
    every: Duration,
    last: Option<Instant>,
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub removed: usize,
    /// Learned entries left, by stats slot.
    pub learned: HashMap<u32, u64>,
    /// The remote VTEPs the entries left point at.
    pub remotes: References,
}

impl Ager {
    /// An ager for the learning VNIs `vnis`: (VNI, its stats slot, its `ageing` in seconds).
    pub fn new(vnis: impl IntoIterator<Item = (u32, u32, u32)>) -> Self {
        let vnis: HashMap<u32, VniAgeing> = vnis
            .into_iter()
            .map(|(vni, stats_slot, ageing)| (vni, VniAgeing { ageing, stats_slot }))
            .collect();
        // A quarter of the shortest ageing: an entry goes within 25 % of its time (plus the
        // datapath's one-second stamp resolution).
        let shortest = vnis.values().map(|v| v.ageing).min().unwrap_or(u32::MAX);
        let every = Duration::from_secs(u64::from(shortest / 4))
            .clamp(MIN_SWEEP_INTERVAL, MAX_SWEEP_INTERVAL);
        Self {
            vnis,
            every,
            last: None,
        }
    }

    /// Sweeps when the last sweep is `every` ago. Call often (every second). Returns the
    /// remote VTEPs the FDB points at when it swept, `None` when it did not.
    pub fn tick(&mut self, dp: &mut Datapath) -> Result<Option<References>> {
        if self.vnis.is_empty() || self.last.is_some_and(|t| t.elapsed() < self.every) {
            return Ok(None);
        }
        self.last = Some(Instant::now());
        let sweep = self.sweep(dp)?;
        if sweep.removed > 0 {
            debug!(removed = sweep.removed, "aged out learned FDB entries");
        }
        Ok(Some(sweep.remotes))
    }

    /// Whether an entry of `vni` with `flags` and stamp `seen` is learned and too old.
    fn expired(&self, vni: u32, flags: u32, seen: u32, now: u32) -> bool {
        flags & FDB_F_LEARNED != 0
            && self
                .vnis
                .get(&vni)
                .is_some_and(|v| now.wrapping_sub(seen) > v.ageing)
    }

    /// Removes the learned entries older than their VNI's ageing and rewrites the learned
    /// counts. The tables are read and the expired entries removed many per syscall. Fails at
    /// the first table that cannot be read or written.
    pub fn sweep(&self, dp: &mut Datapath) -> Result<Sweep> {
        self.sweep_by(dp, &Batched)
    }

    /// As [`Self::sweep`], walking the tables with `walk`: the bench compares walks on the
    /// same sweep.
    pub fn sweep_by(&self, dp: &mut Datapath, walk: &impl Walk) -> Result<Sweep> {
        let now = clock::monotonic_secs();
        let mut learned: HashMap<u32, u64> =
            self.vnis.values().map(|v| (v.stats_slot, 0)).collect();
        let mut remotes = References::default();
        let mut removed = walk
            .remove_where(dp.fdb()?, |key, entry| {
                if self.expired(key.vni, entry.flags, entry.seen, now) {
                    return true;
                }
                remotes.add_fdb_entry(entry);
                if entry.flags & FDB_F_LEARNED != 0
                    && let Some(vni) = self.vnis.get(&key.vni)
                {
                    *learned.entry(vni.stats_slot).or_default() += 1;
                }
                false
            })
            .context("ageing the FDB")?;
        // Learned proxy entries age with their VNI's FDB entries.
        removed += walk
            .remove_where(dp.proxy()?, |key, e| {
                self.expired(key.vni, e.flags, e.seen, now)
            })
            .context("ageing the proxy table")?;
        removed += walk
            .remove_where(dp.proxy6()?, |key, e| {
                self.expired(key.vni, e.flags, e.seen, now)
            })
            .context("ageing the IPv6 proxy table")?;
        let mut counts = dp.learned()?;
        for (slot, n) in &learned {
            counts
                .set(*slot, n, 0)
                .with_context(|| format!("writing the learned count of slot {slot}"))?;
        }
        Ok(Sweep {
            removed,
            learned,
            remotes,
        })
    }
}
