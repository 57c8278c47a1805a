//! Reading a running instance's state from its pinned maps: `vtep fdb show`, `vtep vni show`
//! and `vtep stats`.

use std::{net::Ipv4Addr, path::Path};

use anyhow::{Context as _, Result, anyhow};
use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray};
use serde::Serialize;
use vtep_common::{
    drop::DropReason,
    maps::{
        FDB_F_LEARNED, FDB_F_RUNTIME, FDB_LOCAL, FdbEntry, FdbKey, FloodList, MAP_DROPS, MAP_FDB,
        MAP_FLOOD, MAP_LEARNED, MAP_PORTS, MAP_VNI_STATS, MAP_VNIS, PortConfig, VniConfig,
        VniStats,
    },
};

use crate::{instance, mac::Mac};

pub(crate) fn open(dir: &Path, name: &str) -> Result<Map> {
    let path = dir.join(name);
    let data = MapData::from_pin(&path).with_context(|| {
        format!(
            "no running instance here: cannot open {} (is `vtep up` running with this name?)",
            path.display()
        )
    })?;
    Ok(Map::from_map_data(data)?)
}

/// Fails, naming the field, unless VNI `vni` is configured in instance `name` (pins in `dir`).
pub(crate) fn require_vni(dir: &Path, name: &str, vni: u32) -> Result<()> {
    let vnis: HashMap<MapData, u32, VniConfig> = HashMap::try_from(open(dir, MAP_VNIS)?)?;
    match vnis.get(&vni, 0) {
        Ok(_) => Ok(()),
        Err(aya::maps::MapError::KeyNotFound) => Err(crate::config::invalid(
            "vni",
            format!("VNI {vni} is not configured in instance `{name}`"),
        )
        .into()),
        Err(e) => Err(e).context("reading VNIs"),
    }
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
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// How an FDB or proxy entry came to be, from its `FDB_F_*` flags.
#[derive(Debug, Serialize)]
pub struct Provenance {
    /// "static" (never moves or ages) or "learned".
    pub state: &'static str,
    /// "config" (made by `vtep up` from the config), "runtime" (a `vtep fdb` or `vtep neigh`
    /// command) or "learned" (the datapath, from traffic).
    pub origin: &'static str,
    /// Learned entries: seconds since traffic last confirmed the entry (within a second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u64>,
}

impl Provenance {
    /// From an entry's `flags` and `seen` stamp, at monotonic second `now`.
    pub fn of(flags: u32, seen: u32, now: u32) -> Self {
        let learned = flags & FDB_F_LEARNED != 0;
        Self {
            state: if learned { "learned" } else { "static" },
            origin: if learned {
                "learned"
            } else if flags & FDB_F_RUNTIME != 0 {
                "runtime"
            } else {
                "config"
            },
            age: learned.then(|| u64::from(now.saturating_sub(seen))),
        }
    }

    /// ` used Ns` for learned entries, as `bridge fdb show -s` says it.
    pub fn used(&self) -> String {
        self.age.map(|a| format!(" used {a}s")).unwrap_or_default()
    }
}

/// Every FDB entry of instance `name`, sorted by VNI then MAC.
pub fn fdb(name: &str) -> Result<Vec<FdbRow>> {
    let dir = instance::pin_dir(name);
    let map: HashMap<MapData, FdbKey, FdbEntry> = HashMap::try_from(open(&dir, MAP_FDB)?)?;
    let mut rows = Vec::new();
    let now = crate::sys::clock::monotonic_secs();
    for item in map.iter() {
        let (key, entry) = item.context("reading FDB")?;
        let local = entry.kind == FDB_LOCAL;
        rows.push(FdbRow {
            mac: Mac(key.mac),
            vni: key.vni,
            dst: (!local).then(|| Ipv4Addr::from(entry.remote)),
            port: local.then(|| ifname(entry.ifindex)),
            provenance: Provenance::of(entry.flags, entry.seen, now),
        });
    }
    rows.sort_by_key(|r| (r.vni, r.mac.0));
    Ok(rows)
}

/// The name of interface `index` in this namespace, or `if<index>` when it is gone.
pub(crate) fn ifname(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("if{index}"))
}

/// One VNI as `vtep vni show` prints it.
#[derive(Debug, Serialize)]
pub struct VniRow {
    pub vni: u32,
    pub dstport: u16,
    /// Local ports of the VNI, by name.
    pub ports: Vec<String>,
    /// Remote VTEPs that get the VNI's broadcast, multicast and unknown-unicast frames.
    pub remotes: Vec<Ipv4Addr>,
    /// FDB entries of the VNI, local and remote.
    pub fdb_entries: u64,
}

/// Every VNI of instance `name`, sorted by VNI.
pub fn vnis(name: &str) -> Result<Vec<VniRow>> {
    let dir = instance::pin_dir(name);
    let vnis: HashMap<MapData, u32, VniConfig> = HashMap::try_from(open(&dir, MAP_VNIS)?)?;
    let ports: HashMap<MapData, u32, PortConfig> = HashMap::try_from(open(&dir, MAP_PORTS)?)?;
    let flood: HashMap<MapData, u32, FloodList> = HashMap::try_from(open(&dir, MAP_FLOOD)?)?;
    let fdb: HashMap<MapData, FdbKey, FdbEntry> = HashMap::try_from(open(&dir, MAP_FDB)?)?;

    let mut rows = Vec::new();
    for item in vnis.iter() {
        let (vni, cfg) = item.context("reading VNIs")?;
        let remotes = match flood.get(&vni, 0) {
            // The count is data from a map: never trust it to index.
            Ok(list) => list.remotes[..(list.n_remotes as usize).min(list.remotes.len())]
                .iter()
                .map(|ip| Ipv4Addr::from(*ip))
                .collect(),
            Err(aya::maps::MapError::KeyNotFound) => Vec::new(),
            Err(e) => return Err(e).context("reading flood lists"),
        };
        rows.push(VniRow {
            vni,
            dstport: u16::from_be_bytes(cfg.dstport),
            ports: Vec::new(),
            remotes,
            fdb_entries: 0,
        });
    }
    rows.sort_by_key(|r| r.vni);
    let row = |rows: &[VniRow], vni: u32| rows.binary_search_by_key(&vni, |r| r.vni).ok();
    for item in ports.iter() {
        let (ifindex, port) = item.context("reading ports")?;
        if let Some(i) = row(&rows, port.vni) {
            rows[i].ports.push(ifname(ifindex));
        }
    }
    for item in fdb.keys() {
        let key = item.context("reading FDB")?;
        if let Some(i) = row(&rows, key.vni) {
            rows[i].fdb_entries += 1;
        }
    }
    for r in &mut rows {
        r.ports.sort();
    }
    Ok(rows)
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
    pub learn_refused: u64,
    pub proxy_replies: u64,
    /// Learned FDB entries (as of the last ageing sweep, plus what was learned since).
    pub learned: u64,
}

impl VniCounters {
    fn new(vni: u32, s: &VniStats, learned: u64) -> Self {
        Self {
            vni,
            encap_packets: s.encap_packets,
            encap_bytes: s.encap_bytes,
            decap_packets: s.decap_packets,
            decap_bytes: s.decap_bytes,
            local_packets: s.local_packets,
            local_bytes: s.local_bytes,
            flood_packets: s.flood_packets,
            learn_refused: s.learn_refused,
            proxy_replies: s.proxy_replies,
            learned,
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
    let learned: Array<MapData, u64> = Array::try_from(open(&dir, MAP_LEARNED)?)?;

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
        let n = learned.get(&cfg.stats_slot, 0).unwrap_or(0);
        out.push(VniCounters::new(vni, &sum, n));
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
