//! `cargo xtask lab`: a standing lab for running the example configs by hand
//! (`vtep_lab::scenario`). Each test brings a scenario's lab up, runs the example configs with
//! vtep exactly as `lab up` prints them, checks the printed pings answer, takes the lab down
//! with vteps still running in it (and one crashed), and checks nothing is left: namespaces,
//! vtep state files and pins, the lab's state file, the etcd.
//!
//! The names are the examples' own (`lab-s2-a`, `s2-a1`, instance `s2a`), not a test prefix:
//! the test refuses to run while a user has the same scenario's lab up.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test lab -- --test-threads=2`.

mod scenarios;
