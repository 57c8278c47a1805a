pub mod configs;
pub mod fixture;
pub mod lab;
pub mod output;
pub mod packet;
