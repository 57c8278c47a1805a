//! Types and constants shared by the eBPF datapath and the `vtep` program.
//!
//! Everything that crosses the kernel/user boundary is `#[repr(C)]` with explicit padding, so both
//! sides agree on the layout byte for byte; sizes are asserted at compile time.
#![cfg_attr(not(test), no_std)]

pub mod drop;
pub mod flow;
pub mod maps;
pub mod trace;
pub mod wire;
