//! The one verdict path: every drop is a `DropReason`, counted here and nowhere else. A program
//! returns `or_drop(result)` (the XDP program `xdp_or_drop(result)`); a copy that could not be
//! sent while the program goes on (one flood copy of many) is counted with `copy_dropped`. Once
//! a packet's VNI is known, the rest of its path runs inside `in_vni`, which counts its drop for
//! that VNI too (`vtep_vni_drops_total`): drops before that (malformed, a VNI not served) are
//! counted only by reason. The programs that have a traced variant (main.rs) go through
//! `or_drop_traced` and `xdp_or_drop_traced`, which also log the drop when built with `TRACED`
//! (see `trace.rs`). TC verdicts are the `i32` a classifier returns; the bindings' constant
//! types differ between the BPF target and the host (where clippy checks this crate), so they
//! are converted once here.

#![allow(clippy::unnecessary_cast)]

use aya_ebpf::{
    bindings::{TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    programs::{TcContext, XdpContext},
};
use vtep_common::{drop::DropReason, maps::HOOK_XDP};

use crate::{
    drop_monitor,
    maps::{count_drop, count_vni_drop},
    trace,
};

/// Hand the packet on: to the next program on the interface's TCX hook, or, after the last, to
/// the kernel as if no program ran (`TCX_NEXT`, the value of `TC_ACT_UNSPEC`). Not `TC_ACT_OK`,
/// which ends the chain: a second instance on the same underlay (another dstport) would never
/// see its VXLAN.
pub const PASS: i32 = TC_ACT_UNSPEC as i32;
/// Drop the packet (also: consume an original whose clones went out).
pub const SHOT: i32 = TC_ACT_SHOT as i32;
/// Send the packet where a redirect helper pointed it.
pub const REDIRECT: i32 = TC_ACT_REDIRECT as i32;

/// XDP: let the kernel build an skb and go on (to the TC program).
pub const XDP_PASS: u32 = xdp_action::XDP_PASS as u32;
/// XDP: drop the frame before an skb exists.
pub const XDP_DROP: u32 = xdp_action::XDP_DROP as u32;
/// XDP: send the frame where `bpf_redirect_map` pointed it.
pub const XDP_REDIRECT: u32 = xdp_action::XDP_REDIRECT as u32;

/// The verdict of TC program `hook`'s result: its own verdict, or a counted drop (sampled for
/// `vtep monitor --drops` when one listens).
#[inline(always)]
pub fn or_drop(ctx: &TcContext, hook: u32, result: Result<i32, DropReason>) -> i32 {
    result.unwrap_or_else(|reason| {
        count_drop(reason);
        drop_monitor::sample_tc(ctx, hook, reason);
        SHOT
    })
}

/// [`or_drop`] for the XDP program.
#[inline(always)]
pub fn xdp_or_drop(ctx: &XdpContext, result: Result<u32, DropReason>) -> u32 {
    result.unwrap_or_else(|reason| {
        count_drop(reason);
        drop_monitor::sample_xdp(ctx, HOOK_XDP, reason);
        XDP_DROP
    })
}

/// [`or_drop`] for a program built with `TRACED`: the drop is logged as well.
///
/// A wrapper, not a parameter of `or_drop`, so what calls `or_drop` alone compiles as it did
/// before the log existed.
#[inline(always)]
pub fn or_drop_traced<const TRACED: bool>(
    ctx: &TcContext,
    hook: u32,
    result: Result<i32, DropReason>,
) -> i32 {
    if let Err(reason) = result {
        trace::dropped::<TRACED>(hook, reason);
    }
    or_drop(ctx, hook, result)
}

/// [`xdp_or_drop`] for a program built with `TRACED`: the drop is logged as well.
#[inline(always)]
pub fn xdp_or_drop_traced<const TRACED: bool>(
    ctx: &XdpContext,
    result: Result<u32, DropReason>,
) -> u32 {
    if let Err(reason) = result {
        trace::dropped::<TRACED>(HOOK_XDP, reason);
    }
    xdp_or_drop(ctx, result)
}

/// `result`, the rest of the path of a packet of the VNI of stats slot `slot`, with its drop
/// (if it is one) counted for that VNI. The caller hands the drop on to `or_drop`. Costs
/// nothing on the way that does not drop.
#[inline(always)]
pub fn in_vni<T>(slot: u32, result: Result<T, DropReason>) -> Result<T, DropReason> {
    if let Err(reason) = result {
        count_vni_drop(slot, reason);
    }
    result
}

/// Counts a copy of a packet of the VNI of stats slot `slot` that the program at `hook` could
/// not send while it goes on with the others, and samples it for `vtep monitor --drops` when one
/// listens: the packet as it is then (a copy to a remote VTEP carries the outer headers it
/// would have gone with, MACs zero when it had no next hop). The flood logs it itself, with the
/// copy's destination (`trace::flood_to_port`, `trace::flood_to_vtep`).
#[inline(always)]
pub fn copy_dropped(ctx: &TcContext, hook: u32, slot: u32, reason: DropReason) {
    copy_lost(slot, reason);
    drop_monitor::sample_tc(ctx, hook, reason);
}

/// Counts a copy (VNI of stats slot `slot`) that could not be made at all, so there is nothing
/// to sample: see [`copy_dropped`].
#[inline(always)]
pub fn copy_lost(slot: u32, reason: DropReason) {
    count_drop(reason);
    count_vni_drop(slot, reason);
}

/// The verdict of a redirect helper that returned `ret`: `REDIRECT`, or `RedirectFailed` when
/// the kernel refused the redirect (it returns `TC_ACT_SHOT` then).
#[inline(always)]
pub fn redirected(ret: i64) -> Result<i32, DropReason> {
    if ret == REDIRECT as i64 {
        Ok(REDIRECT)
    } else {
        Err(DropReason::RedirectFailed)
    }
}
