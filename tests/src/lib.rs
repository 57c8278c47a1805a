pub mod configs;
pub mod fixture;
pub mod lab;
pub mod packet;
