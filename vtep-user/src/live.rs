//! Reading a running instance's state from its pinned maps: `vtep fdb show` and `vtep stats`.

use std::{net::Ipv4Addr, path::Path};

use anyhow::{Context as _, Result, anyhow};
use aya::maps::{HashMap, Map, MapData, PerCpuArray};
use serde::Serialize;
use vtep_common::{
    drop::DropReason,
    maps::{
        FDB_LOCAL, FdbEntry, FdbKey, MAP_DROPS, MAP_FDB, MAP_VNI_STATS, MAP_VNIS, VniConfig,
        VniStats,
    },
};

use crate::{instance, mac::Mac};

fn open(dir: &Path, name: &str) -> Result<Map> {
    let path = dir.join(name);
    let data = MapData::from_pin(&path).with_context(|| {
        format!(
            "no running instance here: cannot open {} (is `vtep up` running with this name?)",
            path.display()
        )
    })?;
    Ok(Map::from_map_data(data)?)
}

/// One FDB entry as `vtep fdb show` prints it.
#[derive(Debug, Serialize)]
pub struct FdbRow {
    pub mac: Mac,
    pub vni: u32,
    /// Remote VTEP, for remote entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Ipv4Addr>,
    /// Local port name, for local entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    pub state: &'static str,
}

/// Every FDB entry of instance `name`, sorted by VNI then MAC.
pub fn fdb(name: &str) -> Result<Vec<FdbRow>> {
    let dir = instance::pin_dir(name);
    let map: HashMap<MapData, FdbKey, FdbEntry> = HashMap::try_from(open(&dir, MAP_FDB)?)?;
    let mut rows = Vec::new();
    for item in map.iter() {
        let (key, entry) = item.context("reading FDB")?;
        let local = entry.kind == FDB_LOCAL;
        rows.push(FdbRow {
            mac: Mac(key.mac),
            vni: key.vni,
            dst: (!local).then(|| Ipv4Addr::from(entry.remote)),
            port: local.then(|| ifname(entry.ifindex)),
            // Learning does not exist yet: every entry comes from configuration.
            state: "static",
        });
    }
    rows.sort_by_key(|r| (r.vni, r.mac.0));
    Ok(rows)
}

fn ifname(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("if{index}"))
}

/// Counters of one VNI, summed over CPUs.
#[derive(Debug, Serialize, Default, Clone, PartialEq, Eq)]
pub struct VniCounters {
    pub vni: u32,
    pub encap_packets: u64,
    pub encap_bytes: u64,
    pub decap_packets: u64,
    pub decap_bytes: u64,
    pub local_packets: u64,
    pub local_bytes: u64,
    pub flood_packets: u64,
}

impl VniCounters {
    fn new(vni: u32, s: &VniStats) -> Self {
        Self {
            vni,
            encap_packets: s.encap_packets,
            encap_bytes: s.encap_bytes,
            decap_packets: s.decap_packets,
            decap_bytes: s.decap_bytes,
            local_packets: s.local_packets,
            local_bytes: s.local_bytes,
            flood_packets: s.flood_packets,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub vnis: Vec<VniCounters>,
    /// Drop counters by reason name, every reason present.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

/// The counters of instance `name`.
pub fn stats(name: &str) -> Result<Stats> {
    let dir = instance::pin_dir(name);
    let vnis: HashMap<MapData, u32, VniConfig> = HashMap::try_from(open(&dir, MAP_VNIS)?)?;
    let per_vni: PerCpuArray<MapData, VniStats> =
        PerCpuArray::try_from(open(&dir, MAP_VNI_STATS)?)?;
    let drops: PerCpuArray<MapData, u64> = PerCpuArray::try_from(open(&dir, MAP_DROPS)?)?;

    let mut out = Vec::new();
    for item in vnis.iter() {
        let (vni, cfg) = item.context("reading VNIs")?;
        let mut sum = VniStats::default();
        for s in per_vni
            .get(&cfg.stats_slot, 0)
            .context("reading VNI counters")?
            .iter()
        {
            sum.accumulate(s);
        }
        out.push(VniCounters::new(vni, &sum));
    }
    out.sort_by_key(|c| c.vni);
    let mut by_reason = std::collections::BTreeMap::new();
    for reason in DropReason::ALL {
        let n: u64 = drops
            .get(&(reason as u32), 0)
            .map_err(|e| anyhow!("reading drop counters: {e}"))?
            .iter()
            .sum();
        by_reason.insert(reason.name(), n);
    }
    Ok(Stats {
        vnis: out,
        drops: by_reason,
    })
}
