//! TC verdicts as the `i32` a classifier returns. The bindings' constant types differ between
//! the BPF target and the host (where clippy checks this crate), so they are converted once here.

#![allow(clippy::unnecessary_cast)]

use aya_ebpf::bindings::{TC_ACT_OK, TC_ACT_SHOT};
use vtep_common::drop::DropReason;

use crate::maps::count_drop;

/// Let the kernel handle the packet as if no program ran.
pub const PASS: i32 = TC_ACT_OK as i32;
/// Drop the packet (also: consume an original whose clones went out).
pub const SHOT: i32 = TC_ACT_SHOT as i32;

/// The verdict of a program's result: its own verdict, or a counted drop.
#[inline(always)]
pub fn or_drop(result: Result<i32, DropReason>) -> i32 {
    result.unwrap_or_else(|reason| {
        count_drop(reason);
        SHOT
    })
}
