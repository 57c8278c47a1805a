//! The datapath's maps and its load-time configuration. Userspace owns their contents.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use vtep_common::{
    drop::DropReason,
    maps::{
        DEFAULT_FDB_SIZE, DatapathConfig, EVENTS_BYTES, FdbEntry, FdbKey, FloodList, JUMP_SLOTS,
        MAX_DSTPORTS, MAX_DYNAMIC_VTEPS, MAX_NEXTHOPS, MAX_PORTS, MAX_PROXY, MAX_VNIS, MISS_KEYS,
        MissEvent, NextHopEntry, PortConfig, Proxy6Key, ProxyEntry, ProxyKey, VniConfig, VniStats,
    },
};

/// Filled by the loader (`EbpfLoader::override_global`); read-only once loaded.
#[unsafe(no_mangle)]
static CONFIG: DatapathConfig = DatapathConfig {
    local_ip: [0; 4],
    srcport_min: 0,
    srcport_max: 0,
    dstports: [[0; 2]; MAX_DSTPORTS],
};

/// The instance configuration. The volatile read keeps the compiler from folding the
/// placeholder values above into the code.
#[inline(always)]
pub fn config() -> DatapathConfig {
    unsafe { core::ptr::read_volatile(&raw const CONFIG) }
}

/// (VNI, MAC) → remote VTEP or local port. Capacity set at load time from `fdb_size`.
#[map]
pub static FDB: HashMap<FdbKey, FdbEntry> = HashMap::with_max_entries(DEFAULT_FDB_SIZE, 0);

/// Host-side port ifindex → its VNI and send parameters.
#[map]
pub static PORTS: HashMap<u32, PortConfig> = HashMap::with_max_entries(MAX_PORTS, 0);

/// VNI → receive parameters.
#[map]
pub static VNIS: HashMap<u32, VniConfig> = HashMap::with_max_entries(MAX_VNIS, 0);

/// VNI → remote VTEPs and local ports that get broadcast and unknown-unicast frames.
#[map]
pub static FLOOD: HashMap<u32, FloodList> = HashMap::with_max_entries(MAX_VNIS, 0);

/// Remote VTEP address → its resolved underlay next hop (see `NextHopEntry`).
#[map]
pub static NEXTHOPS: HashMap<[u8; 4], NextHopEntry> = HashMap::with_max_entries(MAX_NEXTHOPS, 0);

/// Programs the main programs continue in (`JUMP_*` slots), filled by the loader.
#[map]
pub static JUMP: ProgramArray = ProgramArray::with_max_entries(JUMP_SLOTS, 0);

/// Learned FDB entries per VNI, indexed by stats slot: the datapath adds on every entry it
/// learns, userspace sets the true count after each ageing sweep (which removes entries).
#[map]
pub static LEARNED: Array<u64> = Array::with_max_entries(MAX_VNIS, 0);

/// (VNI, IPv4) → MAC, for the ARP proxy.
#[map]
pub static PROXY: HashMap<ProxyKey, ProxyEntry> = HashMap::with_max_entries(MAX_PROXY, 0);

/// Remote VTEP address → when a station was last learned behind it (seconds), or `vtep fdb add`
/// named it. Written only when an entry is learned or moves; `vtep up` keeps these VTEPs' next
/// hops resolved, as it does for the configured ones (flood copies and ARP replies cannot wait
/// for resolution).
#[map]
pub static DYNAMIC_VTEPS: LruHashMap<[u8; 4], u32> =
    LruHashMap::with_max_entries(MAX_DYNAMIC_VTEPS, 0);

/// (VNI, IPv6) → MAC, for the proxy's neighbour advertisements.
#[map]
pub static PROXY6: HashMap<Proxy6Key, ProxyEntry> = HashMap::with_max_entries(MAX_PROXY, 0);

/// Miss events for userspace (`vtep monitor`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// When each miss (the event with `ifindex` zero as the key) was last reported, for the rate
/// limit.
#[map]
pub static MISS_SEEN: LruHashMap<MissEvent, u64> = LruHashMap::with_max_entries(MISS_KEYS, 0);

/// Per-VNI counters, indexed by the `stats_slot` userspace assigns each VNI.
#[map]
pub static VNI_STATS: PerCpuArray<VniStats> = PerCpuArray::with_max_entries(MAX_VNIS, 0);

/// Drop counters, indexed by `DropReason`.
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DropReason::COUNT, 0);

/// Counts one drop of `reason`.
#[inline(always)]
pub fn count_drop(reason: DropReason) {
    if let Some(counter) = DROPS.get_ptr_mut(reason as u32) {
        // Per-CPU slot: no other writer.
        unsafe { *counter += 1 };
    }
}

/// Which `VniStats` counter pair to bump.
#[derive(Clone, Copy)]
pub enum Traffic {
    Encap,
    Decap,
    Local,
    Flood,
    /// An ARP request or neighbour solicitation answered on the host.
    ProxyReply,
}

/// Adds one packet of `bytes` to the `what` counters of stats slot `slot`.
#[inline(always)]
pub fn count_traffic(slot: u32, what: Traffic, bytes: u32) {
    let Some(stats) = VNI_STATS.get_ptr_mut(slot) else {
        return;
    };
    // Per-CPU slot: no other writer.
    let stats = unsafe { &mut *stats };
    let bytes = u64::from(bytes);
    match what {
        Traffic::Encap => {
            stats.encap_packets += 1;
            stats.encap_bytes += bytes;
        }
        Traffic::Decap => {
            stats.decap_packets += 1;
            stats.decap_bytes += bytes;
        }
        Traffic::Local => {
            stats.local_packets += 1;
            stats.local_bytes += bytes;
        }
        Traffic::Flood => stats.flood_packets += 1,
        Traffic::ProxyReply => stats.proxy_replies += 1,
    }
}
