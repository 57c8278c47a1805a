#![no_std]
// The datapath is the `vtep` binary target; this library target exists so the workspace builds.
