pub mod configs;
pub mod counters;
pub mod fixture;
pub mod fuzz;
pub mod lab;
pub mod output;
pub mod packet;
pub mod raw_socket;
