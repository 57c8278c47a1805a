//! Reporting what the datapath does not know (unknown unicast MACs, unknown ARP targets) to
//! userspace, so an agent can add the entries: the kernel's `l2miss`/`l3miss`. Each miss is
//! reported at most once per `MISS_INTERVAL_NS`; a full ring buffer drops the event, never the
//! frame.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use vtep_common::maps::{MISS_INTERVAL_NS, MissEvent};

use crate::maps::{self, EVENTS, MISS_SEEN};

/// Reports `event` unless the same miss was reported within the interval.
#[inline(always)]
pub fn report(event: MissEvent) {
    let key = MissEvent {
        ifindex: 0,
        ..event
    };
    // SAFETY: the helper takes no arguments and only reads the clock.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(last) = maps::get_lru(&MISS_SEEN, &key)
        && now.wrapping_sub(last) < MISS_INTERVAL_NS
    {
        return;
    }
    let _ = MISS_SEEN.insert(key, now, 0);
    let _ = EVENTS.output::<MissEvent>(&event, 0);
}
