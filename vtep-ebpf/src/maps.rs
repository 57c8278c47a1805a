//! The datapath's maps and its load-time configuration (userspace owns their contents), and the
//! only code that touches map memory through pointers: lookups that copy a value out, the one
//! shared reference to a flood list, learning's in-place refresh, the counters and the scratch
//! buffer packet bytes are summed in.
//!
//! What a lookup returns lies in map memory, where other CPUs and userspace may change it while
//! the program reads it. The memory itself stays valid for the program's run: hash map elements
//! are preallocated (no map here sets `BPF_F_NO_PREALLOC`) and never freed while the map exists,
//! and array slots are fixed. But an element deleted or replaced on another CPU goes back to the
//! map's free list at once and may be reused for another key, so a reader can see a value change
//! under it, even halfway. Every value type is `#[repr(C)]` with integer and byte-array fields
//! only, so whatever bytes are read form a valid value. The datapath copies each value out once
//! (except the flood list, which is too large for the stack) and bounds every index by the array
//! length itself, so a torn read can pick a wrong target but never an out-of-bounds one.

use aya_ebpf::{
    bindings::bpf_fib_lookup,
    helpers::bpf_csum_diff,
    macros::map,
    maps::lpm_trie::Key,
    maps::{Array, DevMapHash, HashMap, LpmTrie, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::TcContext,
};
use vtep_common::{
    drop::DropReason,
    maps::{
        DEFAULT_FDB_SIZE, DatapathConfig, EVENTS_BYTES, FdbEntry, FdbKey, FloodList, JUMP_SLOTS,
        MAX_ACCEPT, MAX_DSTPORTS, MAX_DYNAMIC_VTEPS, MAX_NEXTHOPS, MAX_PORTS, MAX_PROXY, MAX_VNIS,
        MISS_KEYS, MissEvent, NextHopEntry, PortConfig, Proxy6Key, ProxyEntry, ProxyKey,
        RESOLVER_SLOTS, VniConfig, VniStats, VtepAddr,
    },
};

use crate::parse::{Packet, Plain, is_group_mac};

/// Filled by the loader (`EbpfLoader::override_global`); read-only once loaded.
// SAFETY: the loader finds the global by this unmangled name (`GLOBAL_CONFIG`); no other symbol
// has it.
#[unsafe(no_mangle)]
static CONFIG: DatapathConfig = DatapathConfig {
    local_ip: [0; 16],
    srcport_min: 0,
    srcport_max: 0,
    dstports: [[0; 2]; MAX_DSTPORTS],
    flags: 0,
};

/// [`DatapathConfig`] as the 4-byte words it is read in (its alignment is 4).
type ConfigWords = [u32; size_of::<DatapathConfig>() / 4];
const _: () = assert!(
    size_of::<ConfigWords>() == size_of::<DatapathConfig>()
        && align_of::<DatapathConfig>() == align_of::<ConfigWords>()
);

/// The instance configuration. The volatile read keeps the compiler from folding the
/// placeholder values above into the code.
#[inline(always)]
pub fn config() -> DatapathConfig {
    // Read as words: a volatile read of the struct loads (and spills) it byte by byte, which
    // with a 16-byte address took hundreds of bytes of the programs' 512-byte stack.
    // SAFETY: `CONFIG` is an aligned (as `ConfigWords`, asserted above), initialised static;
    // the loader sets its bytes before the object is loaded and the kernel keeps it read-only
    // afterwards, so nothing writes it while it is read.
    let words = unsafe { core::ptr::read_volatile((&raw const CONFIG).cast::<ConfigWords>()) };
    // SAFETY: `ConfigWords` has `DatapathConfig`'s size (asserted above) and any bytes are a
    // valid `DatapathConfig` (integers and byte arrays only).
    unsafe { core::mem::transmute::<ConfigWords, DatapathConfig>(words) }
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
pub static NEXTHOPS: HashMap<VtepAddr, NextHopEntry> = HashMap::with_max_entries(MAX_NEXTHOPS, 0);

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
pub static DYNAMIC_VTEPS: LruHashMap<VtepAddr, u32> =
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

/// The outer sources VXLAN is accepted from, when `DP_F_FILTER_SOURCES` is set: the prefixes of
/// `underlay.accept` and the host prefixes of known VTEPs (values `ACCEPT_*`, which only
/// userspace reads), keyed by `VtepAddr`: an IPv4 prefix /n is its IPv4-mapped address /96+n.
#[map]
pub static ACCEPT: LpmTrie<VtepAddr, u32> = LpmTrie::with_max_entries(MAX_ACCEPT, 0);

/// What `vtep up`'s resolver of remote VTEPs publishes and the commands tell it (`RESOLVER_*`
/// slots). Only userspace reads and writes it; it lives here so it is pinned with the rest.
#[map]
pub static RESOLVER: Array<u64> = Array::with_max_entries(RESOLVER_SLOTS, 0);

/// Port ifindex → the port, for the XDP program's redirects (`bpf_redirect_map` reaches an
/// interface only through a devmap). Userspace fills it beside `PORTS` when the XDP program is
/// attached; a port missing here is left to TC.
#[map]
pub static XDP_PORTS: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);

/// Slot 0: the MAC of the underlay interface the XDP program is attached to, the one frames to
/// this host carry (XDP has no `skb->pkt_type`). All zero until userspace fills it: then every
/// frame passes to TC.
#[map]
pub static XDP_UNDERLAY: Array<[u8; 6]> = Array::with_max_entries(1, 0);

/// The instance's segmenter, a veth pair (see `segment.rs`): slot `SEGMENTER_OUT`, the ifindex
/// of the end with segmentation offloads off, whose egress GSO frames are redirected to; slot
/// `SEGMENTER_BACK`, the other end, where the segments come back (0: no segmenter).
#[map]
pub static SEGMENTER: Array<u32> = Array::with_max_entries(2, 0);

/// Per-VNI counters, indexed by the `stats_slot` userspace assigns each VNI.
#[map]
pub static VNI_STATS: PerCpuArray<VniStats> = PerCpuArray::with_max_entries(MAX_VNIS, 0);

/// Drop counters, indexed by `DropReason`.
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DropReason::COUNT, 0);

/// Drop counters of the drops a served VNI's packets took, indexed by stats slot times
/// `DropReason::COUNT` plus the reason. Shared by every CPU (added to atomically): drops are
/// the slow path, and a per-CPU copy of 4,096 VNIs by every reason would cost each CPU 650 KiB.
#[map]
pub static VNI_DROPS: Array<u64> = Array::with_max_entries(MAX_VNIS * DropReason::COUNT, 0);

/// Scratch space for the parameters of a FIB lookup (`nexthop.rs`): 64 bytes the port
/// programs' call chains cannot spare on their 512-byte stack. Per CPU: a program runs on one
/// CPU, unpreempted, and uses it for one lookup at a time.
#[map]
pub static FIB_SCRATCH: PerCpuArray<bpf_fib_lookup> = PerCpuArray::with_max_entries(1, 0);

/// Scratch space for the outer headers the flood path writes for each copy (`flood.rs`): 84
/// bytes over IPv6 that the flood program, with the checksum's subprograms on top, has no
/// stack for. Per CPU, as `FIB_SCRATCH`; 8-byte words, so it is aligned for any header.
#[map]
static HEADERS_SCRATCH: PerCpuArray<[u64; 12]> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's [`HEADERS_SCRATCH`], as outer headers of type `T`. Only the flood path takes it,
/// once per run: the one reference to it while the program runs.
#[inline(always)]
pub fn headers_scratch<T: Plain>() -> Option<&'static mut T> {
    const { assert!(size_of::<T>() <= size_of::<[u64; 12]>()) };
    let p = HEADERS_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: the value is this CPU's, big enough for `T` (asserted), 8-byte aligned, and any
    // bytes are a valid `T: Plain`; nothing else uses it while the program runs (one program
    // runs per CPU at a time, unpreempted, and it takes the reference once, or, in the flood
    // program, once before the copies to remote VTEPs and once in each copy's global function,
    // after the previous reference's last use).
    Some(unsafe { &mut *p.cast::<T>() })
}

/// Bytes of packet [`packet_sum`] sums per call: even, so every chunk of a segment starts on
/// one of its 16-bit words, and a multiple of 4 as `bpf_csum_diff` wants.
pub const SUM_CHUNK: u32 = 256;

/// Scratch space for one chunk of packet bytes being summed, plus the zero padding of a last
/// chunk whose length is not a multiple of 4. Per CPU: a program runs on one CPU, unpreempted.
#[map]
static SUM_SCRATCH: PerCpuArray<[u8; SUM_CHUNK as usize + 4]> = PerCpuArray::with_max_entries(1, 0);

/// The ones'-complement sum (32 bits, unfolded) of the `len` (1..=[`SUM_CHUNK`]) packet bytes at
/// `offset`, zero-padded to a multiple of 4; read through a scratch buffer, so the bytes may lie
/// in the packet's non-linear part. `None` when the packet is shorter or a helper fails.
#[inline(always)]
pub fn packet_sum(ctx: &impl Packet, offset: u32, len: u32) -> Option<u64> {
    // Only for the verifier: the copy and the padding below must fit the buffer.
    if len == 0 || len > SUM_CHUNK {
        return None;
    }
    let buf = SUM_SCRATCH.get_ptr_mut(0)?.cast::<u8>();
    // SAFETY: `buf` is this CPU's scratch value of SUM_CHUNK + 4 bytes, which nothing else uses
    // while the program runs; `len` <= SUM_CHUNK bytes are written to it.
    unsafe { ctx.load_bytes(offset, buf, len)? };
    // SAFETY: as above; `len + 4 <= SUM_CHUNK + 4`, so the four zero bytes stay inside.
    unsafe {
        buf.add(len as usize)
            .cast::<[u8; 4]>()
            .write_unaligned([0; 4])
    };
    let padded = (len + 3) & !3;
    // SAFETY: `padded` <= SUM_CHUNK + 4 bytes of `buf`, a multiple of 4; no `from` buffer.
    let sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, buf.cast(), padded, 0) };
    (sum >= 0).then_some(u64::from(sum as u32))
}

/// A copy of the value `map` holds for `key` (see the module doc for what a concurrent update
/// makes of it).
#[inline(always)]
pub fn get<K, V: Copy>(map: &HashMap<K, V>, key: &K) -> Option<V> {
    let value = map.get_ptr(key)?;
    // SAFETY: the kernel returned a pointer to the element, aligned for `V` and mapped for the
    // program's run; `V` is a plain map value, valid for any bytes (module doc).
    Some(unsafe { value.read() })
}

/// [`get`] for an LRU hash map.
#[inline(always)]
pub fn get_lru<K, V: Copy>(map: &LruHashMap<K, V>, key: &K) -> Option<V> {
    let value = map.get_ptr(key)?;
    // SAFETY: as in `get`.
    Some(unsafe { value.read() })
}

/// The FDB entry of unicast `mac` in VNI `vni`; `None` for an unknown MAC, and for group MACs,
/// which are never in the FDB (they are flooded).
#[inline(always)]
pub fn fdb_entry(vni: u32, mac: &[u8; 6]) -> Option<FdbEntry> {
    if is_group_mac(mac) {
        return None;
    }
    get(
        &FDB,
        &FdbKey {
            vni,
            mac: *mac,
            _pad: [0; 2],
        },
    )
}

/// Whether outer source `ip` is within a prefix of `ACCEPT`.
#[inline(always)]
pub fn source_allowed(ip: VtepAddr) -> bool {
    // Only presence matters: the value is never read.
    ACCEPT.get(Key::new(128, ip)).is_some()
}

/// Continues in the program in `JUMP` slot `slot` (a tail call): returns only when it could
/// not be entered (an empty slot).
#[inline(always)]
pub fn tail_call(ctx: &TcContext, slot: u32) {
    // SAFETY: the loader fills `JUMP` only with this object's TC programs, which take the same
    // context; on success control never comes back here, so the caller's code after the call
    // runs only when no program was entered.
    unsafe { JUMP.tail_call(ctx, slot) };
}

/// The flood list of VNI `vni`, where it lies: at 280 bytes it is too large to copy to the
/// 512-byte stack. Callers bound every index by the array length, not only by
/// `n_remotes`/`n_ports`, which may change under them (module doc).
#[inline(always)]
pub fn flood_list(vni: u32) -> Option<&'static FloodList> {
    // SAFETY: the element stays mapped for the program's run (module doc) and a `FloodList` is
    // valid for any bytes; userspace replaces a list with one whole-element update, so a reader
    // sees the old list, the new one or, if the element is reused at once, a mix of valid values.
    unsafe { FLOOD.get(vni) }
}

/// An element of a hash map where it lies, for learning, which reads it and refreshes its
/// `seen` stamp in place instead of writing the whole element per packet.
#[derive(Clone, Copy)]
pub struct Element<V>(*mut V);

/// The element `map` holds for `key`.
#[inline(always)]
pub fn element<K, V>(map: &HashMap<K, V>, key: &K) -> Option<Element<V>> {
    map.get_ptr_mut(key).map(Element)
}

impl<V: Copy> Element<V> {
    /// A copy of the element as it is now.
    #[inline(always)]
    pub fn read(self) -> V {
        // SAFETY: as in `get`: aligned, mapped for the run, any bytes a valid `V`.
        unsafe { self.0.read() }
    }
}

macro_rules! set_seen {
    ($($value:ty),+) => {$(
        impl Element<$value> {
            /// Rewrites the element's `seen` stamp: one aligned 4-byte store, so a reader sees
            /// the old stamp or the new one.
            #[inline(always)]
            pub fn set_seen(self, now: u32) {
                // SAFETY: `seen` is an aligned `u32` inside the element, which is mapped for the
                // run. Another CPU stamping the same element at once writes the same second. If
                // another CPU replaced or deleted the element meanwhile, the store lands in a
                // freed element, or in one reused for another key, whose stamp it sets to now:
                // ageing sees that entry a second fresher, and static entries' stamps are not read.
                unsafe { (&raw mut (*self.0).seen).write(now) }
            }
        }
    )+};
}
set_seen!(FdbEntry, ProxyEntry);

/// A counter every CPU adds to: a `u64` slot of an array (`LEARNED`, `VNI_DROPS`).
#[derive(Clone, Copy)]
pub struct SharedCounter(*mut u64);

/// The learned-entry count of stats slot `slot`.
#[inline(always)]
pub fn learned_count(slot: u32) -> Option<SharedCounter> {
    LEARNED.get_ptr_mut(slot).map(SharedCounter)
}

impl SharedCounter {
    /// The count now (other CPUs may be adding to it).
    #[inline(always)]
    pub fn get(self) -> u64 {
        // SAFETY: an aligned `u64` array slot, mapped for the map's life; an aligned 8-byte load
        // sees a concurrent atomic add or userspace write whole, before or after.
        unsafe { self.0.read_volatile() }
    }

    /// Adds one, atomically: every CPU adds to the same slot.
    #[inline(always)]
    pub fn add_one(self) {
        // The BPF target's `AtomicU64` has no `fetch_add` (no compare-and-swap in the base
        // instruction set); the intrinsic lowers to the `BPF_ATOMIC` add every supported kernel
        // has.
        #[cfg(target_arch = "bpf")]
        // SAFETY: an aligned `u64` slot, mapped for the map's life; the add is atomic.
        unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                self.0, 1,
            )
        };
        #[cfg(not(target_arch = "bpf"))]
        // SAFETY: as above; `AtomicU64` has the alignment and size of the `u64` slot.
        unsafe { core::sync::atomic::AtomicU64::from_ptr(self.0) }
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }
}

/// Adds one to the drop counter of `reason`. Only the verdict path (`verdict.rs`) calls it.
#[inline(always)]
pub fn count_drop(reason: DropReason) {
    if let Some(counter) = DROPS.get_ptr_mut(reason as u32) {
        // SAFETY: this CPU's slot of a per-CPU array, aligned and mapped for the map's life. The
        // program cannot migrate to another CPU while it runs, and no other run of the datapath
        // starts on this CPU before it ends (what it sends reaches an ingress hook again only
        // through a queue), so nothing else writes the slot meanwhile.
        unsafe { *counter += 1 };
    }
}

/// Adds one to the counter of `reason` drops of stats slot `slot`'s VNI.
#[inline(always)]
pub fn count_vni_drop(slot: u32, reason: DropReason) {
    // A mask, not a comparison: a branch on `slot` would leave the verifier two states of it
    // (in range, not) to carry through every later iteration of a flood loop, doubling the
    // states per copy until the flood program no longer loads. Userspace assigns slots below
    // MAX_VNIS, so the mask changes none.
    let index = (slot & (MAX_VNIS - 1)) * DropReason::COUNT + reason as u32;
    if let Some(counter) = VNI_DROPS.get_ptr_mut(index) {
        SharedCounter(counter).add_one();
    }
}

const _: () = assert!(MAX_VNIS.is_power_of_two());

/// Which `VniStats` counter pair to bump.
#[derive(Clone, Copy)]
pub enum Traffic {
    Encap,
    Decap,
    /// Decapsulated by the XDP program: `Decap`, and `decap_by_xdp`.
    DecapXdp,
    Local,
    Flood,
    /// An ARP request or neighbour solicitation answered on the host.
    ProxyReply,
}

/// Adds one packet of `bytes` to the `what` counters of stats slot `slot`.
#[inline(always)]
pub fn count_traffic(slot: u32, what: Traffic, bytes: u32) {
    with_vni_stats(slot, |stats| {
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
            Traffic::DecapXdp => {
                stats.decap_packets += 1;
                stats.decap_bytes += bytes;
                stats.decap_by_xdp += 1;
            }
            Traffic::Local => {
                stats.local_packets += 1;
                stats.local_bytes += bytes;
            }
            Traffic::Flood => stats.flood_packets += 1,
            Traffic::ProxyReply => stats.proxy_replies += 1,
        }
    });
}

/// Counts a MAC of stats slot `slot` not learned because its VNI is full (`maxaddress`).
#[inline(always)]
pub fn count_learn_refused(slot: u32) {
    with_vni_stats(slot, |stats| stats.learn_refused += 1);
}

/// Runs `update` on this CPU's `VNI_STATS` slot `slot`, if there is one.
#[inline(always)]
fn with_vni_stats(slot: u32, update: impl FnOnce(&mut VniStats)) {
    if let Some(stats) = VNI_STATS.get_ptr_mut(slot) {
        // SAFETY: as in `count_drop`: this CPU's slot, nothing else writes it during the run, so
        // the exclusive reference is not aliased while `update` holds it.
        update(unsafe { &mut *stats });
    }
}
