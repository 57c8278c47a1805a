//! Namespace tests of the store (scenario S5, docs/store.md): hosts whose configs name no
//! remote VTEP and no remote station, that publish their stations in etcd and program each
//! other from it. What a user of it expects: workloads on every host reach each other, with
//! ARP answered on the host, broadcasts flooded to the hosts the store names (`hosts`); a MAC
//! claimed twice goes where it was claimed first, on every host (`conflicts`); workloads and
//! ports added and removed at run time reach or leave the other hosts, and a wrong one is
//! refused changing nothing (`workloads`); a crashed host's stations expire within the lease,
//! a stopped host's leave at once, an etcd outage loses no traffic, and a host whose watch fell
//! behind a compaction catches up (`failures`); a restart that keeps the datapath keeps the
//! records, and runtime workloads live until the stop (`restart`); TLS with client
//! certificates, and certificate problems reported as such (`tls`); a wrong `[store]` section
//! refused before anything changes (`config`). `lab_etcd` checks the tests' own etcd tool.
//!
//! Every test builds its own hosts with a [`Lab`](vtep_tests::lab::Lab) and starts its own
//! etcd (on 127.0.0.1, killed with the lab); its etcd prefix is the lab's unique prefix, so
//! no two tests share a key even on one etcd. Underlay addresses are the lab's: host a
//! 198.18.0.1, b .2, c .3. The store client runs in the namespace `vtep` was started from
//! (this one), which is how it reaches etcd on 127.0.0.1 while the datapath is in the host's
//! namespace.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test store -- --test-threads=2`.

mod config;
mod conflicts;
mod failures;
mod hosts;
mod lab_etcd;
mod restart;
mod support;
mod tls;
mod workloads;
