pub mod lab;
pub mod packet;
