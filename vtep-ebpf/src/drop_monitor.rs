//! Samples of dropped packets for `vtep monitor --drops`: why, where, and the packet's first
//! bytes, through `DROP_SAMPLES`. Off unless a monitor listens (it keeps `DROP_MONITOR_UNTIL` in
//! the future), and then at most `DROP_MONITOR_RATE` samples per second per CPU, so a flood of
//! bad packets costs the monitor nothing it did not ask for. Nothing of this runs for a packet
//! that is not dropped; a dropped one pays one map read while nobody listens.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes, bpf_xdp_load_bytes},
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use vtep_common::{
    drop::DropReason,
    maps::{
        DROP_MONITOR_RATE, DROP_MONITOR_SLOTS, DROP_MONITOR_UNTIL, DROP_SAMPLE_BYTES,
        DROP_SAMPLES_BYTES, DropSample,
    },
};

/// `DROP_MONITOR_*`: written by `vtep monitor --drops`, read here.
#[map]
pub static DROP_MONITOR: Array<u64> = Array::with_max_entries(DROP_MONITOR_SLOTS, 0);

/// The samples, for userspace.
#[map]
pub static DROP_SAMPLES: RingBuf = RingBuf::with_byte_size(DROP_SAMPLES_BYTES, 0);

/// This CPU's rate window: when it began (ns) and the samples sent in it.
#[map]
static DROP_WINDOW: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

const SECOND_NS: u64 = 1_000_000_000;

/// Whether a sample may be sent now: a monitor listens and this CPU's window has room.
#[inline(always)]
fn admitted() -> bool {
    let until = DROP_MONITOR.get(DROP_MONITOR_UNTIL).copied().unwrap_or(0);
    if until == 0 {
        return false;
    }
    // SAFETY: the helper takes no arguments and only reads the clock.
    let now = unsafe { bpf_ktime_get_ns() };
    if now > until {
        return false;
    }
    let rate = DROP_MONITOR.get(DROP_MONITOR_RATE).copied().unwrap_or(0);
    let Some(window) = DROP_WINDOW.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's slot of a per-CPU array, aligned and mapped for the map's life; no
    // other run of the datapath uses it while this one runs on this CPU (see `count_drop`).
    let window = unsafe { &mut *window };
    if now.wrapping_sub(window[0]) >= SECOND_NS {
        window[0] = now;
        window[1] = 0;
    }
    if window[1] >= rate {
        return false;
    }
    window[1] += 1;
    true
}

/// Samples the packet of TC program `hook` that is dropped for `reason`, if a monitor listens.
/// Not inlined: one copy of the sampler per program, its stack its own.
#[inline(never)]
pub fn sample_tc(ctx: &TcContext, hook: u32, reason: DropReason) {
    // SAFETY: the context's skb is valid while the program runs.
    let (len, ifindex) = unsafe { ((*ctx.skb.skb).len, (*ctx.skb.skb).ifindex) };
    sample(reason, hook, ifindex, len, |to, n| {
        // SAFETY: `to` has room for `n` bytes (see `sample`); the helper copies the packet's
        // first `n` bytes there, and fails when it has fewer.
        unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), 0, to.cast(), n) }
    });
}

/// [`sample_tc`] for the XDP program.
#[inline(never)]
pub fn sample_xdp(ctx: &XdpContext, hook: u32, reason: DropReason) {
    // SAFETY: the context's xdp_md is valid while the program runs.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    sample(reason, hook, ifindex, crate::xdp_buff::len(ctx), |to, n| {
        // SAFETY: as in `sample_tc`, with the helper that copies from the frame.
        unsafe { bpf_xdp_load_bytes(ctx.ctx.cast(), 0, to.cast(), n) }
    });
}

/// Sends a sample of a `len`-byte packet that arrived on `ifindex`, its first bytes copied by
/// `load(to, n)` (0 on success), if a monitor listens and the rate allows.
#[inline(always)]
fn sample(
    reason: DropReason,
    hook: u32,
    ifindex: u32,
    len: u32,
    load: impl FnOnce(*mut u8, u32) -> i64,
) {
    if !admitted() {
        return;
    }
    let Some(mut entry) = DROP_SAMPLES.reserve::<DropSample>(0) else {
        return;
    };
    let sample = entry.as_mut_ptr();
    let caplen = (len as usize).min(DROP_SAMPLE_BYTES);
    // SAFETY: `sample` points at a reserved, writable `DropSample` in the ring buffer, which is
    // ours until submitted; `load` writes `caplen` (1..=DROP_SAMPLE_BYTES, checked) bytes into
    // its `bytes`, which has room for DROP_SAMPLE_BYTES.
    unsafe {
        (*sample).reason = reason as u32;
        (*sample).hook = hook;
        (*sample).ifindex = ifindex;
        (*sample).len = len;
        (*sample)._pad = 0;
        (*sample).caplen = 0;
        if caplen > 0
            && caplen <= DROP_SAMPLE_BYTES
            && load((*sample).bytes.as_mut_ptr(), caplen as u32) == 0
        {
            (*sample).caplen = caplen as u32;
        }
    }
    entry.submit(0);
}
