//! The `vtep` program: configuration, system setup over netlink, the datapath loader and the
//! readers of a running instance. `main.rs` is the CLI on top.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod datapath;
pub mod instance;
pub mod mac;
pub mod sys;
