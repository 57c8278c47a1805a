pub mod loader;
pub mod tables;
