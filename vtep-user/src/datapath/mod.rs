//! The eBPF datapath as userspace sees it: loading and attaching the programs
//! ([`loader`]), the maps by name and type ([`maps`]), the map values a configuration
//! becomes ([`tables`]), and the source-VTEP allow-list ([`accept`]).

pub mod accept;
pub mod loader;
pub mod maps;
pub mod tables;
