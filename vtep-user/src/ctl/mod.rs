pub mod fdb;
pub mod flood;
pub mod monitor;
pub mod proxy;
pub mod show;
