//! The eBPF datapath as userspace sees it: loading and attaching the programs
//! ([`loader`]), the maps by name and type ([`maps`]), the map values a configuration
//! becomes ([`tables`]), the source-VTEP allow-list ([`accept`]), and reading and deleting
//! many map entries per syscall ([`batch`]), and the debug log ([`trace`]).

pub mod accept;
pub mod batch;
pub mod loader;
pub mod maps;
pub mod tables;
pub mod trace;
