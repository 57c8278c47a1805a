//! Learning from traffic. Stations (`FDB`): a frame's source MAC teaches where that station is, a remote VTEP (from
//! decapsulated frames) or a local port (from ports with `PORT_F_LEARN`). Static entries are
//! never touched. A known, unmoved entry is rewritten at most once every `FDB_REFRESH_S`
//! (its `seen` stamp, for ageing in userspace), so steady traffic does not write the map per
//! packet; a moved entry is replaced whole, so readers see the old or the new one, never a mix.
//! Overlay addresses of the proxy (`PROXY`, `PROXY6`) follow the same rules.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, maps::HashMap};
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_LOCAL, FDB_REFRESH_S, FDB_REMOTE, FdbEntry, FdbKey, ProxyEntry, VniConfig,
};
use vtep_common::wire::is_unicast_vtep_ipv4;

use crate::{
    maps::{DYNAMIC_VTEPS, FDB, LEARNED, VNI_STATS},
    parse::is_group_mac,
};

/// `bpf_map_update_elem` flags (include/uapi/linux/bpf.h).
const BPF_NOEXIST: u64 = 1;
const BPF_EXIST: u64 = 2;

/// Where a learned station is.
#[derive(Clone, Copy)]
pub enum Station {
    Remote([u8; 4]),
    Port { ifindex: u32, port_flags: u32 },
}

/// Learns that `mac` in VNI `vni` is at `station`. `vni_config` gives the VNI's configuration;
/// it is only needed, and only called, when a new entry is to be learned.
#[inline(always)]
pub fn learn<'a>(
    vni: u32,
    vni_config: impl FnOnce() -> Option<&'a VniConfig>,
    mac: &[u8; 6],
    station: Station,
) {
    // Group addresses are destinations only, and an all-zero source is no station; nor is a
    // VTEP address that no unicast packet can go back to (a forged outer source).
    if is_group_mac(mac) || *mac == [0; 6] {
        return;
    }
    if let Station::Remote(ip) = station
        && !is_unicast_vtep_ipv4(ip)
    {
        return;
    }
    let key = FdbKey {
        vni,
        mac: *mac,
        _pad: [0; 2],
    };
    if let Some(existing) = FDB.get_ptr_mut(key) {
        let existing = unsafe { &mut *existing };
        if existing.flags & FDB_F_LEARNED == 0 {
            return;
        }
        let now = now_secs();
        if is_at(existing, station) {
            if now.wrapping_sub(existing.seen) >= FDB_REFRESH_S {
                // One aligned 4-byte store: readers see the old or the new stamp.
                existing.seen = now;
            }
            return;
        }
        if FDB.insert(key, entry(station, now), BPF_EXIST).is_ok() {
            note_vtep(station, now);
        }
        return;
    }
    let now = now_secs();
    let Some(vcfg) = vni_config() else {
        return;
    };
    let Some(count) = LEARNED.get_ptr_mut(vcfg.stats_slot) else {
        return;
    };
    if vcfg.max_learned != 0 && unsafe { *count } >= u64::from(vcfg.max_learned) {
        if let Some(stats) = VNI_STATS.get_ptr_mut(vcfg.stats_slot) {
            // Per-CPU slot: no other writer.
            unsafe { (*stats).learn_refused += 1 };
        }
        return;
    }
    // NOEXIST: another CPU may have learned it meanwhile; then it is counted once, there. A
    // full FDB refuses the insert, and the station stays unknown (its frames flood).
    if FDB.insert(key, entry(station, now), BPF_NOEXIST).is_ok() {
        add_one(count);
        note_vtep(station, now);
    }
}

/// Tells userspace about the remote VTEP a station was just learned behind.
#[inline(always)]
fn note_vtep(station: Station, now: u32) {
    if let Station::Remote(ip) = station {
        let _ = DYNAMIC_VTEPS.insert(ip, now, 0);
    }
}

/// Adds one to a counter every CPU shares.
#[inline(always)]
fn add_one(count: *mut u64) {
    // The BPF target's `AtomicU64` has no `fetch_add` (no compare-and-swap in the base
    // instruction set); the intrinsic lowers to the `BPF_ATOMIC` add every supported kernel has.
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            count, 1,
        )
    };
    #[cfg(not(target_arch = "bpf"))]
    unsafe { core::sync::atomic::AtomicU64::from_ptr(count) }
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

#[inline(always)]
fn is_at(e: &FdbEntry, station: Station) -> bool {
    match station {
        Station::Remote(ip) => e.kind == FDB_REMOTE && e.remote == ip,
        Station::Port { ifindex, .. } => e.kind == FDB_LOCAL && e.ifindex == ifindex,
    }
}

#[inline(always)]
fn entry(station: Station, now: u32) -> FdbEntry {
    match station {
        Station::Remote(remote) => FdbEntry {
            kind: FDB_REMOTE,
            ifindex: 0,
            remote,
            port_flags: 0,
            flags: FDB_F_LEARNED,
            seen: now,
        },
        Station::Port {
            ifindex,
            port_flags,
        } => FdbEntry {
            kind: FDB_LOCAL,
            ifindex,
            remote: [0; 4],
            port_flags,
            flags: FDB_F_LEARNED,
            seen: now,
        },
    }
}

/// Learns that overlay address `key` of the proxy's table `table` (`PROXY` or `PROXY6`) is at
/// `mac`, with the same rules as stations: static entries are never changed, a known one is
/// rewritten only when its MAC changed (whole, by an update) or its stamp is a second old.
#[inline(always)]
pub fn learn_address<K>(table: &HashMap<K, ProxyEntry>, key: K, mac: &[u8; 6]) {
    if let Some(existing) = table.get_ptr_mut(&key) {
        let existing = unsafe { &mut *existing };
        if existing.flags & FDB_F_LEARNED == 0 {
            return;
        }
        if existing.mac == *mac {
            let now = now_secs();
            if now.wrapping_sub(existing.seen) >= FDB_REFRESH_S {
                existing.seen = now;
            }
            return;
        }
    }
    // New or moved. A full table refuses it (the address stays unknown and its requests flood).
    let _ = table.insert(
        key,
        ProxyEntry {
            mac: *mac,
            _pad: [0; 2],
            flags: FDB_F_LEARNED,
            seen: now_secs(),
        },
        0,
    );
}

/// Seconds of the kernel's monotonic clock (coarse: a tick's resolution is plenty here).
#[inline(always)]
fn now_secs() -> u32 {
    (unsafe { bpf_ktime_get_coarse_ns() } / 1_000_000_000) as u32
}
