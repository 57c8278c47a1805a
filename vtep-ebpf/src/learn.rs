//! Learning from traffic. Stations (`FDB`): a frame's source MAC teaches where that station is,
//! a remote VTEP (from decapsulated frames) or a local port (from ports with `PORT_F_LEARN`).
//! Static entries are never touched. A known, unmoved entry is rewritten at most once every
//! `FDB_REFRESH_S` (its `seen` stamp, for ageing in userspace), so steady traffic does not write
//! the map per packet. Overlay addresses of the proxy (`PROXY`, `PROXY6`) follow the same rules.
//!
//! Every CPU learns at once, often the same station (one flow's packets spread over CPUs). When
//! they write the same key:
//! - A new or moved entry is one map update, which links a whole new element into the hash
//!   bucket under the bucket's lock: the last writer wins, and a lookup on another CPU finds the
//!   old element or the new one, never a mix (a reader still holding the old element: see
//!   `maps.rs`).
//! - A new entry is inserted with `BPF_NOEXIST`: of two CPUs learning the same MAC at once, one
//!   insert succeeds and the other fails, so the entry is counted once in `LEARNED`, with an
//!   atomic add because every CPU shares that counter. `maxaddress` is checked before the
//!   insert, so CPUs learning different MACs at the same moment may pass it together and
//!   overshoot it by one entry each; userspace sets the true count after each ageing sweep.
//! - A move is an update with `BPF_EXIST`: if userspace aged the entry out meanwhile, it fails,
//!   and the station's next frame learns it anew.
//! - A refresh stores only the `seen` stamp in place (one aligned 4-byte store): CPUs refreshing
//!   the same entry write the same second, and a stamp that lands in an element another CPU has
//!   just replaced goes with it (the replacement has a stamp of its own).

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, maps::HashMap};
use vtep_common::{
    maps::{
        BPF_EXIST, BPF_NOEXIST, DP_F_IPV6, FDB_F_LEARNED, FDB_LOCAL, FDB_REFRESH_S, FDB_REMOTE,
        FdbEntry, FdbKey, ProxyEntry, VniConfig, VtepAddr,
    },
    wire::is_unicast_vtep,
};

use crate::{
    maps::{self, DYNAMIC_VTEPS, Element, FDB},
    parse::is_group_mac,
};

/// Where a learned station is.
#[derive(Clone, Copy)]
pub enum Station {
    Remote(VtepAddr),
    Port { ifindex: u32, port_flags: u32 },
}

/// Learns that `mac` in VNI `vni` is at `station`. `vni_config` gives the VNI's configuration;
/// it is only needed, and only called, when a new entry is to be learned.
#[inline(always)]
pub fn learn(
    vni: u32,
    vni_config: impl FnOnce() -> Option<VniConfig>,
    mac: &[u8; 6],
    station: Station,
) {
    // Group addresses are destinations only, and an all-zero source is no station; nor is a
    // VTEP address that no unicast packet can go back to (a forged outer source).
    if is_group_mac(mac) || *mac == [0; 6] {
        return;
    }
    if let Station::Remote(ip) = station
        && !is_unicast_vtep(&ip, maps::config().flags & DP_F_IPV6 != 0)
    {
        return;
    }
    let key = FdbKey {
        vni,
        mac: *mac,
        _pad: [0; 2],
    };
    match maps::element(&FDB, &key) {
        Some(existing) => refresh_or_move(existing, &key, station),
        None => learn_new(&key, vni_config, station),
    }
}

/// Refreshes the stamp of the learned entry `existing` of `key` when the station is still where
/// it says, or moves the entry to `station`. Leaves static entries alone.
#[inline(always)]
fn refresh_or_move(existing: Element<FdbEntry>, key: &FdbKey, station: Station) {
    let current = existing.read();
    if current.flags & FDB_F_LEARNED == 0 {
        return;
    }
    let now = now_secs();
    if is_at(&current, station) {
        if is_stale(current.seen, now) {
            existing.set_seen(now);
        }
        return;
    }
    if FDB.insert(key, entry(station, now), BPF_EXIST).is_ok() {
        note_vtep(station, now);
    }
}

/// Adds the entry for `key` at `station`, unless its VNI holds `maxaddress` learned entries
/// (counted as `learn_refused`) or the FDB is full (the station stays unknown and its frames
/// flood).
#[inline(always)]
fn learn_new(key: &FdbKey, vni_config: impl FnOnce() -> Option<VniConfig>, station: Station) {
    let now = now_secs();
    let Some(vcfg) = vni_config() else {
        return;
    };
    let Some(count) = maps::learned_count(vcfg.stats_slot) else {
        return;
    };
    if vcfg.max_learned != 0 && count.get() >= u64::from(vcfg.max_learned) {
        maps::count_learn_refused(vcfg.stats_slot);
        return;
    }
    if FDB.insert(key, entry(station, now), BPF_NOEXIST).is_ok() {
        count.add_one();
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
            remote: [0; 16],
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
    if let Some(existing) = maps::element(table, &key) {
        let current = existing.read();
        if current.flags & FDB_F_LEARNED == 0 {
            return;
        }
        if current.mac == *mac {
            let now = now_secs();
            if is_stale(current.seen, now) {
                existing.set_seen(now);
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

/// True when a `seen` stamp is old enough at `now` to be rewritten.
#[inline(always)]
fn is_stale(seen: u32, now: u32) -> bool {
    now.wrapping_sub(seen) >= FDB_REFRESH_S
}

/// Seconds of the kernel's monotonic clock (coarse: a tick's resolution is plenty here).
#[inline(always)]
fn now_secs() -> u32 {
    // SAFETY: the helper takes no arguments and only reads the clock.
    (unsafe { bpf_ktime_get_coarse_ns() } / 1_000_000_000) as u32
}
