//! The eBPF datapath as userspace sees it: loading and attaching the programs
//! ([`loader`]), the maps by name and type ([`maps`]), and the map values a configuration
//! becomes ([`tables`]).

pub mod loader;
pub mod maps;
pub mod tables;
