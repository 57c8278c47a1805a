//! Namespace tests of `[metrics]` (issue 13): `vtep up` serving `GET /metrics` for Prometheus.
//! What a user of it expects: the per-VNI counters move with the traffic sent, every drop
//! reason is there, the numbers are the ones `vtep stats` prints and `promtool check metrics`
//! accepts the text (`scrape`); a real Prometheus server scrapes it and answers queries with
//! the per-VNI series (`server`); a wrong `metrics.listen`, or one whose port is taken, is
//! refused naming the field before anything changes, and a reload moves or ends the listener
//! (`listen`).
//!
//! Every test builds its own hosts with a [`Lab`](vtep_tests::lab::Lab) and runs the real
//! `vtep` binary; vtep listens on 127.0.0.1 of the namespace it was started from (this one),
//! on a port free when the test picked it. The Prometheus server a test starts listens on
//! 127.0.0.1 too, and is killed with the lab, also when the test fails.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test metrics -- --test-threads=2`. `promtool` and `prometheus` come from the Debian
//! package `prometheus` (`cargo xtask setup` installs it).

mod listen;
mod scrape;
mod server;
mod support;
