//! The datapath's maps, each named once with its type: [`Datapath`] reaches them in the object
//! `vtep up` loaded, [`Pinned`] through the pins of a running instance, both with the same
//! accessor (`fdb()`, `proxy()`, ...), and [`PINNED`] is the list `vtep up` pins. A new map is
//! one line in the table below.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use aya::{
    Pod,
    maps::{Array, DevMapHash, HashMap, LpmTrie, Map, MapData, PerCpuArray, RingBuf},
};
use vtep_common::maps::{
    FdbEntry, FdbKey, FloodList, MAP_ACCEPT, MAP_DROP_MONITOR, MAP_DROP_SAMPLES, MAP_DROPS,
    MAP_DYNAMIC_VTEPS, MAP_EVENTS, MAP_FDB, MAP_FLOOD, MAP_LEARNED, MAP_NEXTHOPS, MAP_PORTS,
    MAP_PROXY, MAP_PROXY6, MAP_RESOLVER, MAP_SEGMENTER, MAP_VNI_DROPS, MAP_VNI_STATS, MAP_VNIS,
    MAP_XDP_PORTS, MAP_XDP_UNDERLAY, NextHopEntry, PortConfig, Proxy6Key, ProxyEntry, ProxyKey,
    VniConfig, VniStats, VtepAddr,
};

use crate::{
    datapath::{batch, loader::Datapath},
    instance,
    sys::bpffs,
};

/// The maps of a running instance, opened from their pins on each access.
pub struct Pinned {
    name: String,
    dir: PathBuf,
}

impl Pinned {
    /// The maps of instance `name`; nothing is opened yet.
    pub fn of(name: &str) -> Self {
        Self {
            name: name.to_string(),
            dir: instance::pin_dir(name),
        }
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where map `map` is pinned.
    pub fn path(&self, map: &str) -> PathBuf {
        self.dir.join(map)
    }

    /// Opens pinned map `map`; fails saying no instance of this name runs (in this mount
    /// namespace's bpffs) when the pin is missing, and which rights are missing when the kernel
    /// refuses.
    fn open(&self, map: &str) -> Result<Map> {
        let path = self.path(map);
        let data = MapData::from_pin(&path).map_err(|e| {
            let errno = match &e {
                aya::maps::MapError::SyscallError(s) => s.io_error.raw_os_error(),
                _ => None,
            };
            match errno {
                Some(libc::ENOENT) => {
                    // A command under `ip netns exec` looks into a bpffs of its own: say so,
                    // rather than suggest that nothing runs.
                    let hint = bpffs::private_reason().unwrap_or_else(|| {
                        "is `vtep up` running with this name? (One started under `ip netns \
                         exec` refuses to: `vtep --netns NS up` is how to run it in a namespace)"
                            .to_string()
                    });
                    anyhow::anyhow!(
                        "no running instance `{}`: nothing pinned at {}; {hint}",
                        self.name,
                        self.dir.display()
                    )
                }
                Some(libc::EPERM | libc::EACCES) => anyhow::anyhow!(
                    "permission denied opening {}: reading a running instance needs root (or \
                     CAP_BPF with CAP_NET_ADMIN)",
                    path.display()
                ),
                _ => anyhow::Error::new(e).context(format!("opening {}", path.display())),
            }
        })?;
        Ok(Map::from_map_data(data)?)
    }
}

/// Defines, from one list of `accessor: NAME => Kind<key and value types>`, [`PINNED`] and an
/// accessor of that name on [`Datapath`] (borrowing the loaded map) and on [`Pinned`] (owning
/// the opened pin). Each accessor fails when the map is missing or its key or value size differs
/// from the type's.
macro_rules! maps {
    ($( $(#[doc = $doc:literal])+ $accessor:ident: $name:ident => $kind:ident $(<$($param:ty),+>)?; )+) => {
        /// Every map `vtep up` pins, in pinning order.
        pub const PINNED: [&str; [$($name),+].len()] = [$($name),+];

        impl Datapath {
            $(
                $(#[doc = $doc])+
                pub fn $accessor(&mut self) -> Result<$kind<&mut MapData $($(, $param)+)?>> {
                    Ok($kind::try_from(self.map_mut($name)?)?)
                }
            )+
        }

        impl Pinned {
            $(
                $(#[doc = $doc])+
                pub fn $accessor(&self) -> Result<$kind<MapData $($(, $param)+)?>> {
                    Ok($kind::try_from(self.open($name)?)?)
                }
            )+
        }
    };
}

maps! {
    /// `FDB`: (VNI, MAC) → where frames to that station go.
    fdb: MAP_FDB => HashMap<FdbKey, FdbEntry>;
    /// `PORTS`: port ifindex → the VNI and send parameters of frames from it.
    ports: MAP_PORTS => HashMap<u32, PortConfig>;
    /// `VNIS`: the VNIs this host terminates.
    vnis: MAP_VNIS => HashMap<u32, VniConfig>;
    /// `FLOOD`: VNI → where its broadcast and unknown unicast go.
    flood: MAP_FLOOD => HashMap<u32, FloodList>;
    /// `NEXTHOPS`: remote VTEP → its resolved underlay next hop.
    nexthops: MAP_NEXTHOPS => HashMap<VtepAddr, NextHopEntry>;
    /// `LEARNED`: learned FDB entries per stats slot.
    learned: MAP_LEARNED => Array<u64>;
    /// `DYNAMIC_VTEPS`: remote VTEPs not in the config (learned or added) → when noted.
    dynamic_vteps: MAP_DYNAMIC_VTEPS => HashMap<VtepAddr, u32>;
    /// `EVENTS`: the ring buffer of miss events.
    events: MAP_EVENTS => RingBuf;
    /// `PROXY`: (VNI, IPv4) → MAC, the ARP proxy's table.
    proxy: MAP_PROXY => HashMap<ProxyKey, ProxyEntry>;
    /// `PROXY6`: (VNI, IPv6) → MAC, the neighbour-discovery proxy's table.
    proxy6: MAP_PROXY6 => HashMap<Proxy6Key, ProxyEntry>;
    /// `VNI_STATS`: per-CPU traffic counters per stats slot.
    vni_stats: MAP_VNI_STATS => PerCpuArray<VniStats>;
    /// `DROPS`: per-CPU drop counters by [`vtep_common::drop::DropReason`].
    drops: MAP_DROPS => PerCpuArray<u64>;
    /// `VNI_DROPS`: drop counters by stats slot and reason (slot × reasons + reason).
    vni_drops: MAP_VNI_DROPS => Array<u64>;
    /// `ACCEPT`: the outer sources VXLAN is accepted from (see [`super::accept`]).
    accept: MAP_ACCEPT => LpmTrie<VtepAddr, u32>;
    /// `RESOLVER`: what the resolver of remote VTEPs publishes and is told (`RESOLVER_*`).
    resolver: MAP_RESOLVER => Array<u64>;
    /// `XDP_PORTS`: port ifindex → the port, for the XDP program's redirects.
    xdp_ports: MAP_XDP_PORTS => DevMapHash;
    /// `XDP_UNDERLAY`: the underlay's MAC, for the XDP program.
    xdp_underlay: MAP_XDP_UNDERLAY => Array<[u8; 6]>;
    /// `SEGMENTER`: the segmenter's ifindex (slot 0), for GSO frames over an IPv6 underlay with
    /// UDP checksums.
    segmenter: MAP_SEGMENTER => Array<u32>;
    /// `DROP_MONITOR`: whether and how often dropped packets are sampled (`DROP_MONITOR_*`).
    drop_monitor: MAP_DROP_MONITOR => Array<u64>;
    /// `DROP_SAMPLES`: the ring buffer of sampled drops (`vtep monitor --drops`).
    drop_samples: MAP_DROP_SAMPLES => RingBuf;
}

/// Removes the entries of `table` that `expired` picks; returns how many it removed. The table
/// is read and the entries removed many per syscall ([`batch`]). Gone already (a `vtep fdb del`)
/// is fine; an entry traffic refreshed after it was read is lost here and learned again on its
/// next frame. Fails when the table cannot be read or an entry not removed.
pub fn remove_where<K: Pod, V: Pod>(
    mut table: aya::maps::HashMap<&mut MapData, K, V>,
    mut expired: impl FnMut(&K, &V) -> bool,
) -> Result<usize> {
    let mut stale = Vec::new();
    batch::for_each(&table, |key, value| {
        if expired(key, value) {
            stale.push(*key);
        }
    })
    .context("reading the map")?;
    batch::delete(&mut table, &stale).context("removing entries")
}

/// How a table is walked to remove entries from it, for code that is measured with another walk
/// too: [`Batched`] is [`remove_where`]; the ageing bench (tests/src/bin/ageing_cost.rs) keeps the
/// per-entry walk it replaced as its baseline.
pub trait Walk {
    /// As [`remove_where`].
    fn remove_where<K: Pod, V: Pod>(
        &self,
        table: aya::maps::HashMap<&mut MapData, K, V>,
        expired: impl FnMut(&K, &V) -> bool,
    ) -> Result<usize>;
}

/// [`remove_where`]: entries read and removed many per syscall.
pub struct Batched;

impl Walk for Batched {
    fn remove_where<K: Pod, V: Pod>(
        &self,
        table: aya::maps::HashMap<&mut MapData, K, V>,
        expired: impl FnMut(&K, &V) -> bool,
    ) -> Result<usize> {
        remove_where(table, expired)
    }
}
