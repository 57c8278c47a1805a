//! The debug log (`vtep up --trace-datapath`): one line per decision about a packet, through
//! aya-log. Where a frame from a local port goes (a remote VTEP, a local port, the flood path),
//! where a decapsulated frame goes and which hook (TC or XDP) decapsulated it, and every drop of
//! these programs with its reason (`verdict::or_drop_traced` calls [`dropped`]).
//!
//! Only the `…_trace` programs log (the functions here do nothing in a program built with
//! `TRACED` false, see main.rs), and they only while the read-only global `TRACE` is non-zero;
//! `TRACE_VNI` restricts the log to one VNI. The loader sets both before the programs are
//! loaded; aya freezes `.rodata`, so the verifier reads them as constants and removes the log
//! calls a setting rules out.
//!
//! The flood program logs each copy: to a local port, a remote VTEP or the group, or dropped
//! (`drop <reason> <hook> vni <vni> copy to …`, the frame itself goes on to the other copies).
//!
//! Each record is written by a global function (`trace_*`, C ABI, scalar arguments): the
//! verifier checks a global function once, on its own, and a call costs the caller a few
//! instructions, where inlined record code was walked again on every path that reaches it.
//!
//! The VNI filter needs the packet's VNI where a drop is counted, which the verdict path is not
//! given: [`note_vni`] keeps it in a per-CPU slot as soon as a program knows it (the port's VNI,
//! or the one in the VXLAN header), and each program's entry clears it ([`begin`]). A drop
//! before the VNI is known logs VNI 0, and only when no VNI filter is set.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use aya_log_ebpf::info;
use network_types::ip::Ipv6Hdr;
use vtep_common::{
    drop::DropReason,
    maps::{HOOK_XDP, VtepAddr},
};

use crate::encap::OuterIp;

/// Non-zero: log. Set by the loader (`GLOBAL_TRACE`); read-only once loaded.
// SAFETY: the loader finds the global by this unmangled name; no other symbol has it.
#[unsafe(no_mangle)]
static TRACE: u32 = 0;

/// Only this VNI (0: every VNI). Set by the loader (`GLOBAL_TRACE_VNI`); read-only once loaded.
// SAFETY: as for `TRACE`.
#[unsafe(no_mangle)]
static TRACE_VNI: u32 = 0;

/// The VNI of the packet this CPU runs a program for, once known (0 before).
#[map]
static TRACE_PACKET_VNI: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// The target the records carry (userspace logs them under its own, the same).
const TARGET: &str = "vtep::datapath";

/// Whether a program built with `TRACED` logs: the loader set the global `TRACE`. A volatile
/// read: the compiler must not fold the placeholder zero in; the verifier folds the loaded value
/// instead.
#[inline(always)]
fn on<const TRACED: bool>() -> bool {
    // SAFETY: an aligned, initialised static that the kernel keeps read-only once loaded.
    TRACED && unsafe { core::ptr::read_volatile(&raw const TRACE) != 0 }
}

/// Whether a line about VNI `vni` is to be logged (`TRACE` is on; checked by the callers).
#[inline(always)]
fn wanted(vni: u32) -> bool {
    // SAFETY: as in `on`.
    let only = unsafe { core::ptr::read_volatile(&raw const TRACE_VNI) };
    only == 0 || only == vni
}

/// Starts a program's run: no VNI known yet.
#[inline(always)]
pub fn begin<const TRACED: bool>() {
    if on::<TRACED>() {
        set_packet_vni(0);
    }
}

/// Notes that the packet belongs to VNI `vni`, for a drop line later in the run.
#[inline(always)]
pub fn note_vni<const TRACED: bool>(vni: u32) {
    if on::<TRACED>() {
        set_packet_vni(vni);
    }
}

#[inline(always)]
fn set_packet_vni(vni: u32) {
    if let Some(slot) = TRACE_PACKET_VNI.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU array, aligned and mapped for the map's life; no
        // other run of the datapath uses it while this one runs on this CPU (see `count_drop`).
        unsafe { *slot = vni };
    }
}

/// The VNI [`note_vni`] noted in this run, 0 when none.
#[inline(always)]
fn packet_vni() -> u32 {
    TRACE_PACKET_VNI.get(0).copied().unwrap_or(0)
}

// The global functions take scalars only (what a global function may be given besides the
// context): a MAC in the low 48 bits of a u64, an IPv4 address as a u32, an IPv6 address as two
// u64s, all in network byte order as they were in memory; two u32s in one u64 (`pair`) where
// five arguments would not do. Each returns 0: the verifier wants a global function to set R0.

#[inline(always)]
fn mac_word(mac: &[u8; 6]) -> u64 {
    let mut w = [0; 8];
    w[..6].copy_from_slice(mac);
    u64::from_ne_bytes(w)
}

#[inline(always)]
fn mac_of(word: u64) -> [u8; 6] {
    let w = word.to_ne_bytes();
    [w[0], w[1], w[2], w[3], w[4], w[5]]
}

#[inline(always)]
fn v4_word(a: &VtepAddr) -> u32 {
    u32::from_ne_bytes([a[12], a[13], a[14], a[15]])
}

#[inline(always)]
fn v6_words(a: &VtepAddr) -> (u64, u64) {
    let mut hi = [0; 8];
    let mut lo = [0; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    (u64::from_ne_bytes(hi), u64::from_ne_bytes(lo))
}

#[inline(always)]
fn v6_of(hi: u64, lo: u64) -> [u8; 16] {
    let mut a = [0; 16];
    a[..8].copy_from_slice(&hi.to_ne_bytes());
    a[8..].copy_from_slice(&lo.to_ne_bytes());
    a
}

#[inline(always)]
fn pair(a: u32, b: u32) -> u64 {
    u64::from(a) << 32 | u64::from(b)
}

#[inline(always)]
fn unpair(w: u64) -> (u32, u32) {
    ((w >> 32) as u32, w as u32)
}

/// A frame from local port `port` (VNI `vni`, destination `dst`) goes to remote VTEP `remote`
/// over an underlay of `I`'s family.
#[inline(always)]
pub fn to_remote<I: OuterIp, const TRACED: bool>(
    port: u32,
    vni: u32,
    dst: &[u8; 6],
    remote: &VtepAddr,
) {
    if !on::<TRACED>() {
        return;
    }
    // A constant condition: one family's call is compiled into each program.
    if I::LEN == Ipv6Hdr::LEN {
        let (hi, lo) = v6_words(remote);
        trace_to_remote6(pair(port, vni), mac_word(dst), hi, lo);
    } else {
        trace_to_remote4(pair(port, vni), mac_word(dst), v4_word(remote));
    }
}

// SAFETY: `no_mangle` keeps the function global (a BPF global function, see the module doc);
// no other symbol has its name.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_to_remote4(port_vni: u64, dst: u64, remote: u32) -> u32 {
    let (port, vni) = unpair(port_vni);
    if wanted(vni) {
        let (dst, remote) = (mac_of(dst), remote.to_ne_bytes());
        info!(&(), target: TARGET, "port {} vni {} dst {:mac} -> vtep {:i}", port, vni, dst, remote);
    }
    0
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_to_remote6(port_vni: u64, dst: u64, hi: u64, lo: u64) -> u32 {
    let (port, vni) = unpair(port_vni);
    if wanted(vni) {
        let (dst, remote) = (mac_of(dst), v6_of(hi, lo));
        info!(&(), target: TARGET, "port {} vni {} dst {:mac} -> vtep {:i}", port, vni, dst, remote);
    }
    0
}

/// A frame from local port `port` (VNI `vni`, destination `dst`) goes to local port `to`.
#[inline(always)]
pub fn to_port<const TRACED: bool>(port: u32, vni: u32, dst: &[u8; 6], to: u32) {
    if on::<TRACED>() {
        trace_to_port(pair(port, vni), mac_word(dst), to);
    }
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_to_port(port_vni: u64, dst: u64, to: u32) -> u32 {
    let (port, vni) = unpair(port_vni);
    if wanted(vni) {
        let dst = mac_of(dst);
        info!(&(), target: TARGET, "port {} vni {} dst {:mac} -> port {}", port, vni, dst, to);
    }
    0
}

/// A frame from local port `port` (VNI `vni`, destination `dst`) is flooded: to the VNI's
/// other local ports and its remote VTEPs or group.
#[inline(always)]
pub fn to_flood<const TRACED: bool>(port: u32, vni: u32, dst: &[u8; 6]) {
    if on::<TRACED>() {
        trace_to_flood(pair(port, vni), mac_word(dst), 0);
    }
}

/// An ARP request or neighbour solicitation from local port `port` (VNI `vni`, destination
/// `dst`) asked for an address the VNI's proxy table knows: answered on the host, back out of
/// the port, not flooded.
#[inline(always)]
pub fn to_proxy<const TRACED: bool>(port: u32, vni: u32, dst: &[u8; 6]) {
    if on::<TRACED>() {
        trace_to_flood(pair(port, vni), mac_word(dst), 1);
    }
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_to_flood(port_vni: u64, dst: u64, answered: u32) -> u32 {
    let (port, vni) = unpair(port_vni);
    if wanted(vni) {
        let dst = mac_of(dst);
        match answered {
            0 => info!(&(), target: TARGET, "port {} vni {} dst {:mac} -> flood", port, vni, dst),
            _ => info!(
                &(),
                target: TARGET,
                "port {} vni {} dst {:mac} -> proxy answer", port, vni, dst
            ),
        }
    }
    0
}

/// A VXLAN packet from remote VTEP `from` over `I`'s family, VNI `vni`, inner destination
/// `dst`, is decapsulated by the program at `hook` (`HOOK_UNDERLAY` or `HOOK_XDP`) for local
/// port `to`, or flooded to the VNI's local ports (`None`).
#[inline(always)]
pub fn decap<I: OuterIp, const TRACED: bool>(
    hook: u32,
    from: &VtepAddr,
    vni: u32,
    dst: &[u8; 6],
    to: Option<u32>,
) {
    if !on::<TRACED>() {
        return;
    }
    // Port 0 is no interface: it stands for the flood.
    let where_to = pair(hook, to.unwrap_or(0));
    if I::LEN == Ipv6Hdr::LEN {
        let (hi, lo) = v6_words(from);
        trace_decap6(where_to, vni, mac_word(dst), hi, lo);
    } else {
        trace_decap4(where_to, vni, mac_word(dst), v4_word(from));
    }
}

/// The line of [`decap`], for an outer source of either family (`from`, formatted by `{:i}`).
/// One format per (hook, target) shape: the format strings are constants, and a `&str`
/// argument would cost a copy loop the verifier walks byte by byte.
macro_rules! decap_line {
    ($hook_to:expr, $vni:expr, $dst:expr, $from:expr) => {{
        let (hook, to) = unpair($hook_to);
        let (vni, dst, from) = ($vni, mac_of($dst), $from);
        match (hook == HOOK_XDP, to) {
            (true, to) => info!(
                &(),
                target: TARGET,
                "decap xdp from {:i} vni {} dst {:mac} -> port {}", from, vni, dst, to
            ),
            // Only TC floods (XDP cannot clone).
            (false, 0) => info!(
                &(),
                target: TARGET,
                "decap tc from {:i} vni {} dst {:mac} -> flood", from, vni, dst
            ),
            (false, to) => info!(
                &(),
                target: TARGET,
                "decap tc from {:i} vni {} dst {:mac} -> port {}", from, vni, dst, to
            ),
        }
    }};
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_decap4(hook_to: u64, vni: u32, dst: u64, from: u32) -> u32 {
    if wanted(vni) {
        decap_line!(hook_to, vni, dst, from.to_ne_bytes());
    }
    0
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_decap6(hook_to: u64, vni: u32, dst: u64, hi: u64, lo: u64) -> u32 {
    if wanted(vni) {
        decap_line!(hook_to, vni, dst, v6_of(hi, lo));
    }
    0
}

/// What became of one flood copy, for the flood lines: sent (0), or dropped by the program at
/// `hook` for `reason` (`pair(reason + 1, hook)`).
#[inline(always)]
fn copy_outcome(dropped: Option<(u32, DropReason)>) -> u64 {
    match dropped {
        None => 0,
        Some((hook, reason)) => pair(reason as u32 + 1, hook),
    }
}

/// A flood copy of a frame of VNI `vni` to local port `to` went, or was dropped by the program
/// at `hook` for `reason` (`dropped`).
#[inline(always)]
pub fn flood_to_port<const TRACED: bool>(vni: u32, to: u32, dropped: Option<(u32, DropReason)>) {
    if on::<TRACED>() {
        trace_flood_port(pair(vni, to), copy_outcome(dropped));
    }
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_flood_port(vni_to: u64, outcome: u64) -> u32 {
    let (vni, to) = unpair(vni_to);
    if wanted(vni) {
        match unpair(outcome) {
            (0, _) => info!(&(), target: TARGET, "flood vni {} -> port {}", vni, to),
            (reason, hook) => info!(
                &(),
                target: TARGET,
                "drop {} {} vni {} copy to port {}", reason - 1, hook, vni, to
            ),
        }
    }
    0
}

/// A flood copy of a frame of VNI `vni` from a local port to remote VTEP `addr` (or multicast
/// group `addr` when `group`) over `I`'s family went, or was dropped (`dropped`, as in
/// [`flood_to_port`]).
#[inline(always)]
pub fn flood_to_vtep<I: OuterIp, const TRACED: bool>(
    vni: u32,
    addr: &VtepAddr,
    group: bool,
    dropped: Option<(u32, DropReason)>,
) {
    if !on::<TRACED>() {
        return;
    }
    let vni_group = pair(vni, u32::from(group));
    let outcome = copy_outcome(dropped);
    if I::LEN == Ipv6Hdr::LEN {
        let (hi, lo) = v6_words(addr);
        trace_flood6(vni_group, hi, lo, outcome);
    } else {
        trace_flood4(vni_group, v4_word(addr), outcome);
    }
}

/// The line of [`flood_to_vtep`], for an address of either family (`addr`, formatted by
/// `{:i}`); one format per shape, as in `decap_line`.
macro_rules! flood_line {
    ($vni_group:expr, $addr:expr, $outcome:expr) => {{
        let (vni, group) = unpair($vni_group);
        let addr = $addr;
        match (unpair($outcome), group != 0) {
            ((0, _), false) => info!(&(), target: TARGET, "flood vni {} -> vtep {:i}", vni, addr),
            ((0, _), true) => info!(&(), target: TARGET, "flood vni {} -> group {:i}", vni, addr),
            ((reason, hook), false) => info!(
                &(),
                target: TARGET,
                "drop {} {} vni {} copy to vtep {:i}", reason - 1, hook, vni, addr
            ),
            ((reason, hook), true) => info!(
                &(),
                target: TARGET,
                "drop {} {} vni {} copy to group {:i}", reason - 1, hook, vni, addr
            ),
        }
    }};
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_flood4(vni_group: u64, addr: u32, outcome: u64) -> u32 {
    if wanted(unpair(vni_group).0) {
        flood_line!(vni_group, addr.to_ne_bytes(), outcome);
    }
    0
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_flood6(vni_group: u64, hi: u64, lo: u64, outcome: u64) -> u32 {
    if wanted(unpair(vni_group).0) {
        flood_line!(vni_group, v6_of(hi, lo), outcome);
    }
    0
}

/// The program at `hook` drops the packet for `reason` (see `vtep_common::trace::DROP_WORD`).
#[inline(always)]
pub fn dropped<const TRACED: bool>(hook: u32, reason: DropReason) {
    if on::<TRACED>() {
        trace_dropped(reason as u32, hook);
    }
}

// SAFETY: as for `trace_to_remote4`.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn trace_dropped(reason: u32, hook: u32) -> u32 {
    let vni = packet_vni();
    if wanted(vni) {
        info!(&(), target: TARGET, "drop {} {} vni {}", reason, hook, vni);
    }
    0
}
