//! The `vtep` program: configuration, system setup over netlink, the datapath loader and the
//! readers of a running instance. `main.rs` is the CLI on top.

pub mod ageing;
pub mod args;
pub mod clock;
pub mod config;
pub mod fdb;
pub mod flood_list;
pub mod instance;
pub mod live;
pub mod loader;
pub mod mac;
pub mod monitor;
pub mod neigh;
pub mod neighbours;
pub mod netlink;
pub mod netns;
pub mod sysctl;
pub mod tables;
pub mod undo;
pub mod up;
