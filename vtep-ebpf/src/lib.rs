//! Empty: the datapath is the `vtep` binary target (`main.rs`); this library target exists so the
//! workspace builds.
#![no_std]
