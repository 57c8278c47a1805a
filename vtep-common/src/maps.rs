//! Keys and values of the datapath's maps, and the load-time configuration.
//!
//! Addresses and ports are stored in network byte order as byte arrays, exactly as they appear
//! in packets, so the datapath compares and copies them without conversion.

/// Map names, shared so the loader and the CLI find the same pins.
pub const MAP_FDB: &str = "FDB";
pub const MAP_PORTS: &str = "PORTS";
pub const MAP_VNIS: &str = "VNIS";
pub const MAP_FLOOD: &str = "FLOOD";
pub const MAP_VNI_STATS: &str = "VNI_STATS";
pub const MAP_DROPS: &str = "DROPS";
pub const MAP_VNI_DROPS: &str = "VNI_DROPS";
pub const MAP_NEXTHOPS: &str = "NEXTHOPS";
pub const MAP_JUMP: &str = "JUMP";
pub const MAP_LEARNED: &str = "LEARNED";
pub const MAP_EVENTS: &str = "EVENTS";
pub const MAP_PROXY: &str = "PROXY";
pub const MAP_PROXY6: &str = "PROXY6";
pub const MAP_DYNAMIC_VTEPS: &str = "DYNAMIC_VTEPS";
pub const MAP_ACCEPT: &str = "ACCEPT";
pub const MAP_RESOLVER: &str = "RESOLVER";
/// The version of what the pinned maps' keys and values mean. A `vtep up` adopts a kept
/// datapath (hitless restart or upgrade) only when its maps have this layout and each map the
/// type and sizes this build defines: bump it whenever a shared key or value type changes
/// meaning without changing size (a flag's bit, a field reused). Maps of counters only
/// (vtep-user's `RENEWABLE`) are exempt: an adopting build whose definition differs makes
/// them anew, so adding a counter or a drop reason needs no bump.
pub const LAYOUT: u32 = 3;
pub const MAP_XDP_PORTS: &str = "XDP_PORTS";
pub const MAP_XDP_UNDERLAY: &str = "XDP_UNDERLAY";
pub const MAP_SEGMENTER: &str = "SEGMENTER";
pub const MAP_DROP_MONITOR: &str = "DROP_MONITOR";
pub const MAP_DROP_SAMPLES: &str = "DROP_SAMPLES";
/// The bit of `skb->mark` the port program sets on a GSO frame it hands the segmenter (see
/// `SEGMENTER` in vtep-ebpf's maps), beside the ifindex of the port it came from: the segments
/// come back on the segmenter's other end carrying both.
pub const MARK_SEGMENTED: u32 = 0x8000_0000;
/// `SEGMENTER` slots: the end GSO frames are sent out of, and the end segments come back on.
pub const SEGMENTER_OUT: u32 = 0;
pub const SEGMENTER_BACK: u32 = 1;

/// Port flag: the interface is the segmenter's return end, not a port: a frame on it belongs to
/// the port its mark names (`MARK_SEGMENTED`).
pub const PORT_F_SEGMENTER: u32 = 4;
/// The read-only global the loader fills with [`DatapathConfig`].
pub const GLOBAL_CONFIG: &str = "CONFIG";

/// Default FDB capacity; `fdb_size` in the config changes it at load time.
pub const DEFAULT_FDB_SIZE: u32 = 65_536;
pub const MAX_VNIS: u32 = 4096;
pub const MAX_PORTS: u32 = 1024;
/// Head-end replication list length per VNI (remote VTEPs).
pub const MAX_FLOOD_REMOTES: usize = 32;
/// Local ports per VNI that receive flooded frames.
pub const MAX_FLOOD_PORTS: usize = 32;
/// Slots of the `JUMP` program array: programs the main programs continue in with a tail call.
/// The port program's flood path (head-end replication, one encapsulation per remote) is its
/// own program so each is verified within the kernel's complexity limit on its own.
pub const JUMP_PORT_FLOOD: u32 = 0;
pub const JUMP_SLOTS: u32 = 1;

/// Remote VTEPs whose underlay next hop is cached.
pub const MAX_NEXTHOPS: u32 = 4096;
/// Distinct VXLAN UDP ports one instance listens on.
pub const MAX_DSTPORTS: usize = 4;

/// FDB entry kinds.
pub const FDB_REMOTE: u32 = 1;
pub const FDB_LOCAL: u32 = 2;

/// Port flag: the port is a veth whose peer lives in another network namespace, so frames for it
/// may enter that namespace directly with `bpf_redirect_peer` instead of crossing the veth.
pub const PORT_F_PEER: u32 = 1;

/// Port flag: vtep does not know the stations behind this port (an adopted interface), so the
/// datapath learns their MACs from the frames the port sends.
pub const PORT_F_LEARN: u32 = 2;

/// `FdbEntry::flags`: the datapath learned the entry from traffic. Learned entries move when the
/// MAC shows up elsewhere and age out; every other entry is static.
pub const FDB_F_LEARNED: u32 = 1;
/// `FdbEntry::flags`: `vtep fdb add` made the entry in the running instance; it is not from the
/// config. Only userspace reads it.
pub const FDB_F_RUNTIME: u32 = 2;
/// `FdbEntry::flags` and `ProxyEntry::flags`: the entry was programmed from the store (another
/// host's station); the datapath treats it as static. Only userspace reads it.
pub const FDB_F_STORE: u32 = 4;

/// `VniConfig::flags`: learn remote MACs from decapsulated frames and local MACs from ports
/// with `PORT_F_LEARN` (the kernel's `learning`).
pub const VNI_F_LEARN: u32 = 1;

/// `VniConfig::flags`: report unicast frames to unknown MACs from local ports (the kernel's
/// `l2miss`).
pub const VNI_F_L2MISS: u32 = 2;
/// `VniConfig::flags`: report ARP requests for unknown addresses (the kernel's `l3miss`).
pub const VNI_F_L3MISS: u32 = 4;

/// `VniConfig::flags`: answer ARP requests from local ports for addresses in `PROXY` on the
/// host instead of flooding them, and learn `PROXY` entries from ARP in decapsulated frames
/// (the kernel's `proxy`).
pub const VNI_F_PROXY: u32 = 8;

/// Remote VTEPs the config does not name (`DYNAMIC_VTEPS`): the datapath learned stations behind
/// them, or `vtep fdb add` pointed entries at them. `vtep up` keeps their next hops resolved like
/// the configured ones; the least recently noted go first.
pub const MAX_DYNAMIC_VTEPS: u32 = 4096;

/// Capacity of `ACCEPT`: the prefixes of `underlay.accept` plus, with `known`, every remote VTEP
/// a flood list or a static or runtime FDB entry names.
pub const MAX_ACCEPT: u32 = 16_384;
/// `ACCEPT` values: why a prefix is there. A prefix from `underlay.accept` stays for the
/// instance's life; a known VTEP's /32 goes when nothing names the VTEP any more.
pub const ACCEPT_PREFIX: u32 = 1;
pub const ACCEPT_KNOWN: u32 = 2;

/// `DatapathConfig::flags`: decapsulate only VXLAN whose outer source is in `ACCEPT`
/// (`underlay.accept`); the rest is dropped as `source_not_allowed` before anything is learned.
pub const DP_F_FILTER_SOURCES: u32 = 1;

/// Slots of `RESOLVER`, an array only userspace reads and writes: what `vtep up`'s resolver
/// of remote VTEPs' next hops publishes, and what the commands that change a running instance
/// tell it.
///
/// `CLOCK_MONOTONIC` nanoseconds of the last `vtep fdb` command that changed which remote VTEPs
/// the FDB or a flood list names: a new value makes `vtep up` recount its references.
pub const RESOLVER_CHANGED: u32 = 0;
/// Remote VTEPs `vtep up` keeps resolved now.
pub const RESOLVER_KEPT: u32 = 1;
/// Remote VTEPs `vtep up` did not keep resolved because `underlay.max_remotes` were (counted once
/// each time a VTEP is refused anew).
pub const RESOLVER_REFUSED: u32 = 2;
/// The `RESOLVER_CHANGED` value whose recount `vtep up` finished (neighbour entries of new
/// VTEPs made): what a `vtep fdb` command waits for before it returns.
pub const RESOLVER_DONE: u32 = 3;
/// Of the kept VTEPs: those whose next hop is resolved and cached in `NEXTHOPS` (encapsulation
/// skips the FIB lookup).
pub const RESOLVER_RESOLVED: u32 = 4;
/// Of the kept VTEPs: those with a route whose next hop's neighbour entry is not resolved (yet,
/// or it failed): unicast goes through the kernel's neighbour layer, flood copies are dropped
/// as `nexthop_unresolved`.
pub const RESOLVER_RESOLVING: u32 = 5;
/// Of the kept VTEPs: those the kernel has no usable route to (no route, or the network or
/// broadcast address of an on-link subnet): their traffic is dropped as `no_route`.
pub const RESOLVER_UNREACHABLE: u32 = 6;
/// Of the kept VTEPs: those whose route was not looked up yet (new since the last reconcile).
pub const RESOLVER_PENDING: u32 = 7;
pub const RESOLVER_SLOTS: u32 = 8;

/// Capacity of `PROXY`.
pub const MAX_PROXY: u32 = 65_536;

/// `MissEvent::kind`.
pub const MISS_L2: u32 = 1;
pub const MISS_L3: u32 = 2;
/// One event per (kind, VNI, MAC or IP) at most this often, as the kernel's rate limit.
pub const MISS_INTERVAL_NS: u64 = 1_000_000_000;
/// Bytes of the `EVENTS` ring buffer.
pub const EVENTS_BYTES: u32 = 64 * 1024;
/// Keys the datapath remembers for rate-limiting miss events (least recently used go first).
pub const MISS_KEYS: u32 = 4096;

/// A learned entry's `seen` is rewritten only when it is at least this many seconds old, so a
/// flow writes its entry at most once a second, not per packet.
pub const FDB_REFRESH_S: u32 = 1;

/// `bpf_map_update_elem` flags (include/uapi/linux/bpf.h), as the `u64` both aya's and
/// aya-ebpf's map `insert` take: create only (fail with `EEXIST`), replace only.
pub const BPF_NOEXIST: u64 = 1;
pub const BPF_EXIST: u64 = 2;

/// A VTEP's underlay address: IPv6, or IPv4 as an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
/// RFC 4291 section 2.5.5.2). One type for both families keeps one set of maps and one key
/// layout; an instance's underlay is one family (`DP_F_IPV6`), so the datapath never has to tell
/// a mapped address from a native one on the wire.
pub type VtepAddr = [u8; 16];

/// The IPv4-mapped [`VtepAddr`] of `ip` (network order).
#[inline(always)]
pub const fn vtep_addr_v4(ip: [u8; 4]) -> VtepAddr {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ip[0], ip[1], ip[2], ip[3],
    ]
}

/// The IPv4 address an IPv4-mapped [`VtepAddr`] holds, or `None` for an IPv6 address.
#[inline(always)]
pub fn vtep_addr_as_v4(a: &VtepAddr) -> Option<[u8; 4]> {
    (a[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).then_some([a[12], a[13], a[14], a[15]])
}

/// The [`VtepAddr`] of `ip`: IPv4 mapped, IPv6 as it is.
#[inline(always)]
pub const fn vtep_addr(ip: core::net::IpAddr) -> VtepAddr {
    match ip {
        core::net::IpAddr::V4(v4) => vtep_addr_v4(v4.octets()),
        core::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address a [`VtepAddr`] holds: IPv4 for an IPv4-mapped one, IPv6 otherwise.
#[inline(always)]
pub fn vtep_ip(a: &VtepAddr) -> core::net::IpAddr {
    match vtep_addr_as_v4(a) {
        Some(v4) => core::net::IpAddr::from(v4),
        None => core::net::IpAddr::from(*a),
    }
}

/// Whether `a` is unset (all zeroes: no group, no address).
#[inline(always)]
pub fn vtep_addr_is_zero(a: &VtepAddr) -> bool {
    u128::from_ne_bytes(*a) == 0
}

/// `DatapathConfig::flags`: the underlay is IPv6: encapsulation writes outer IPv6 and
/// decapsulation takes only IPv6 outer headers (one family per instance).
pub const DP_F_IPV6: u32 = 2;
/// `DatapathConfig::flags`: send IPv6 VXLAN with a zero UDP checksum (the kernel's
/// `udp6zerocsumtx`, RFC 6935), for peers that accept it: vtep, or a kernel driver with
/// `udp6zerocsumrx`. Without it every packet carries a valid checksum.
pub const DP_F_UDP6_ZERO_CSUM_TX: u32 = 4;

/// Load-time configuration of one instance, a read-only global of the eBPF object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatapathConfig {
    /// The local VTEP address: outer source on send, outer destination we accept.
    pub local_ip: VtepAddr,
    /// Outer UDP source port range, inclusive, host byte order.
    pub srcport_min: u16,
    pub srcport_max: u16,
    /// UDP destination ports (network order) that carry VXLAN for us; unused slots are zero.
    pub dstports: [[u8; 2]; MAX_DSTPORTS],
    /// `DP_F_*`.
    pub flags: u32,
}

/// FDB key: a MAC address within a VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdbKey {
    pub vni: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Where frames to an FDB key go: a remote VTEP (`kind == FDB_REMOTE`, `remote`) or a local
/// port (`kind == FDB_LOCAL`, `ifindex`, `port_flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEntry {
    pub kind: u32,
    pub ifindex: u32,
    pub remote: VtepAddr,
    pub port_flags: u32,
    /// `FDB_F_*`.
    pub flags: u32,
    /// Learned entries: when traffic last confirmed the entry, in seconds of the kernel's
    /// monotonic clock (`bpf_ktime_get_coarse_ns`, `CLOCK_MONOTONIC`). Zero for static entries.
    pub seen: u32,
}

/// How to reach one remote VTEP on the underlay, keyed by its [`VtepAddr`].
/// Userspace copies it from the kernel's route and (resolved) neighbour entry, so encapsulation
/// skips a FIB lookup per packet; a remote without an entry takes the FIB lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextHopEntry {
    /// Underlay interface to send on.
    pub ifindex: u32,
    /// The next hop's MAC (outer destination) and the interface's own (outer source).
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
}

/// A local port: the host-side interface whose ingress carries a workload's frames. Keyed by
/// ifindex. The VNI's send parameters are copied here so encapsulation needs one lookup less.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortConfig {
    pub vni: u32,
    /// Index into `VNI_STATS`.
    pub stats_slot: u32,
    /// Outer UDP destination port, network order.
    pub dstport: [u8; 2],
    pub ttl: u8,
    pub _pad: u8,
    /// `PORT_F_*` of this port itself (used when flooding back into it is needed elsewhere).
    pub flags: u32,
}

/// A VNI this host terminates. Keyed by VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VniConfig {
    /// The UDP port this VNI is received on, network order.
    pub dstport: [u8; 2],
    pub _pad: [u8; 2],
    /// Index into `VNI_STATS` and `LEARNED`.
    pub stats_slot: u32,
    /// `VNI_F_*`.
    pub flags: u32,
    /// Most learned entries this VNI may hold; 0 for no limit (the kernel's `maxaddress`).
    pub max_learned: u32,
    /// The multicast group this VNI's broadcast and unknown unicast are sent to and received
    /// on; zero without one.
    pub group: VtepAddr,
    pub _pad2: u32,
}

/// Everything a broadcast, multicast or unknown-unicast frame of one VNI is copied to: the remote
/// VTEPs (head-end replication) and the local ports. Keyed by VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodList {
    pub n_remotes: u32,
    pub n_ports: u32,
    pub remotes: [VtepAddr; MAX_FLOOD_REMOTES],
    /// Ifindexes of the local ports that get a copy (the host end of a workload's veth, a port
    /// interface), entered at egress so the copy crosses the veth.
    pub ports: [u32; MAX_FLOOD_PORTS],
    /// With a multicast group (non-zero), frames from local ports go to it in one copy,
    /// instead of one copy per remote: sent on `group_ifindex` from `group_smac` with outer TTL
    /// `group_ttl`.
    pub group: VtepAddr,
    pub group_ifindex: u32,
    pub group_smac: [u8; 6],
    pub group_ttl: u8,
    pub _pad: u8,
}

impl Default for FloodList {
    fn default() -> Self {
        Self {
            n_remotes: 0,
            n_ports: 0,
            remotes: [[0; 16]; MAX_FLOOD_REMOTES],
            ports: [0; MAX_FLOOD_PORTS],
            group: [0; 16],
            group_ifindex: 0,
            group_smac: [0; 6],
            group_ttl: 0,
            _pad: 0,
        }
    }
}

/// `PROXY` key: an IPv4 address within a VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProxyKey {
    pub vni: u32,
    /// Network order.
    pub ip: [u8; 4],
}

/// `PROXY6` key: an IPv6 address within a VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Proxy6Key {
    pub vni: u32,
    pub ip: [u8; 16],
}

/// The MAC an overlay IPv4 (`PROXY`) or IPv6 (`PROXY6`) address resolves to, for the proxy.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyEntry {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
    /// `FDB_F_LEARNED` (from an ARP packet) or `FDB_F_RUNTIME` (`vtep neigh add`); 0 for the
    /// config's and the workloads' own.
    pub flags: u32,
    /// Learned entries: as `FdbEntry::seen`.
    pub seen: u32,
}

/// What the datapath did not know, sent to userspace through `EVENTS` (`vtep monitor`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MissEvent {
    /// `MISS_L2` (`mac` unknown) or `MISS_L3` (`ip` unknown).
    pub kind: u32,
    pub vni: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
    /// IPv4 address, network order (`MISS_L3`).
    pub ip: [u8; 4],
    /// The local port the frame came from.
    pub ifindex: u32,
}

/// `DROP_MONITOR` slots: until when (monotonic ns) a `vtep monitor --drops` listens, which it
/// pushes forward every second (so a monitor that died stops sampling within seconds), and the
/// most samples each CPU sends per second.
pub const DROP_MONITOR_UNTIL: u32 = 0;
pub const DROP_MONITOR_RATE: u32 = 1;
pub const DROP_MONITOR_SLOTS: u32 = 2;
/// Bytes of the `DROP_SAMPLES` ring buffer.
pub const DROP_SAMPLES_BYTES: u32 = 256 * 1024;
/// The most packet bytes a drop sample carries: the outer and inner headers of a VXLAN packet.
pub const DROP_SAMPLE_BYTES: usize = 128;

/// `DropSample::hook`: which program dropped the packet.
pub const HOOK_PORT: u32 = 0;
pub const HOOK_UNDERLAY: u32 = 1;
pub const HOOK_XDP: u32 = 2;

/// A dropped packet, sampled for `vtep monitor --drops` (`DROP_SAMPLES`): why, where, and its
/// first bytes, which userspace parses for the summary (VNI, remote VTEP, addresses).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropSample {
    /// `DropReason` as u32.
    pub reason: u32,
    /// `HOOK_*`.
    pub hook: u32,
    /// The interface the packet arrived on (a port, or the underlay).
    pub ifindex: u32,
    /// The packet's length.
    pub len: u32,
    /// How many of `bytes` are the packet's.
    pub caplen: u32,
    pub _pad: u32,
    pub bytes: [u8; DROP_SAMPLE_BYTES],
}

impl Default for DropSample {
    fn default() -> Self {
        Self {
            reason: 0,
            hook: 0,
            ifindex: 0,
            len: 0,
            caplen: 0,
            _pad: 0,
            bytes: [0; DROP_SAMPLE_BYTES],
        }
    }
}

/// A per-VNI counter's name and meaning, for `vtep stats` and its JSON (and later metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VniCounter {
    /// The field name, which is also the key `vtep stats -j` prints.
    pub name: &'static str,
    /// One sentence saying what it counts (the field's doc comment).
    pub help: &'static str,
}

/// Defines [`VniStats`] from one list: the struct's fields, [`VniStats::COUNTERS`] (names and
/// meanings in display order), [`VniStats::values`] and [`VniStats::accumulate`] all come from
/// it, so a new counter is one entry here plus the datapath code that bumps it.
macro_rules! vni_counters {
    ($( $(#[doc = $doc:literal])+ $field:ident, )+) => {
        /// Per-VNI traffic counters (a per-CPU array slot; userspace sums the CPUs).
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct VniStats {
            $( $(#[doc = $doc])+ pub $field: u64, )+
            /// Keeps the value's size fixed while counters are added (the map ABI).
            pub _reserved: u64,
        }

        impl VniStats {
            /// Every counter, in the order `values` returns them.
            pub const COUNTERS: [VniCounter; [$(stringify!($field)),+].len()] = [
                $( VniCounter { name: stringify!($field), help: concat!($($doc),+) }, )+
            ];

            /// The counters' values, in the order of [`Self::COUNTERS`].
            pub const fn values(&self) -> [u64; Self::COUNTERS.len()] {
                [$(self.$field),+]
            }

            /// Adds `other` (another CPU's slot) to these counters.
            pub fn accumulate(&mut self, other: &VniStats) {
                $( self.$field += other.$field; )+
            }
        }
    };
}

vni_counters! {
    /// Frames encapsulated and sent to a remote VTEP (each flood copy counts).
    encap_packets,
    /// Bytes of the frames counted by `encap_packets`, before encapsulation.
    encap_bytes,
    /// VXLAN packets decapsulated and delivered to a local port.
    decap_packets,
    /// Bytes of the inner frames counted by `decap_packets`.
    decap_bytes,
    /// Frames switched between two local ports without leaving the host.
    local_packets,
    /// Bytes of the frames counted by `local_packets`.
    local_bytes,
    /// Broadcast, multicast and unknown-unicast frames replicated (once per frame).
    flood_packets,
    /// MACs not learned because the VNI held `maxaddress` learned entries.
    learn_refused,
    /// ARP requests and IPv6 neighbour solicitations from local ports answered on the host
    /// (`proxy`).
    proxy_replies,
    /// Of `decap_packets`, those the XDP program decapsulated and redirected before an skb
    /// existed (the rest went through the TC program).
    decap_by_xdp,
}

const _: () = assert!(core::mem::size_of::<DatapathConfig>() == 32);
const _: () = assert!(core::mem::size_of::<FdbKey>() == 12);
const _: () = assert!(core::mem::size_of::<FdbEntry>() == 36);
const _: () = assert!(core::mem::size_of::<NextHopEntry>() == 16);
const _: () = assert!(core::mem::size_of::<PortConfig>() == 16);
const _: () = assert!(core::mem::size_of::<VniConfig>() == 36);
const _: () = assert!(
    core::mem::size_of::<FloodList>() == 8 + 16 * MAX_FLOOD_REMOTES + 4 * MAX_FLOOD_PORTS + 28
);
const _: () = assert!(core::mem::size_of::<VniStats>() == 88);
const _: () = assert!(core::mem::size_of::<ProxyKey>() == 8);
const _: () = assert!(core::mem::size_of::<ProxyEntry>() == 16);
const _: () = assert!(core::mem::size_of::<Proxy6Key>() == 20);
const _: () = assert!(core::mem::size_of::<MissEvent>() == 24);

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY (all impls): #[repr(C)], only integer and byte-array fields, no implicit padding
    // (sizes asserted above), so every bit pattern is valid.
    macro_rules! pod {
        ($($t:ty),*) => {$(
            unsafe impl aya::Pod for $t {}
            unsafe impl bytemuck::Zeroable for $t {}
            unsafe impl bytemuck::Pod for $t {}
        )*};
    }
    pod!(
        DatapathConfig,
        FdbKey,
        FdbEntry,
        MissEvent,
        ProxyEntry,
        ProxyKey,
        Proxy6Key,
        NextHopEntry,
        PortConfig,
        VniConfig,
        FloodList,
        VniStats
    );
}
