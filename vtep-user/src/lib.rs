//! The `vtep` program, by which side of the tunnel and which phase of the program code belongs
//! to:
//!
//! - [`config`]: the configuration file, its schema and complete validation.
//! - [`daemon`]: what `vtep up` runs: checks against the system, ports, loading and attaching the
//!   datapath, the next-hop resolver, ageing, and the undo log `vtep down` also runs.
//! - [`datapath`]: the eBPF programs and maps seen from userspace, and the map values a config
//!   becomes.
//! - [`ctl`]: commands against a running instance, through its pinned maps.
//! - [`store`]: the etcd client that publishes this host's stations and reads the others'.
//! - [`metrics`]: `GET /metrics` for Prometheus, read from the maps at each scrape.
//! - [`cli`]: the command line: clap types, handlers, output.
//! - [`sys`]: the kernel interfaces (netlink, namespaces, sysctls, clock, bpffs).
//! - [`instance`]: where a running instance keeps what the other commands read; [`mac`]: MAC
//!   addresses as users write them.
//!
//! Two words are kept apart: *proxy* is the overlay side (the ARP/ND proxy table that answers
//! workloads; `vtep neigh` on the command line), *nexthop* the underlay side (the resolved next
//! hop towards a remote VTEP).

pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod datapath;
pub mod instance;
pub mod mac;
pub mod metrics;
pub mod store;
pub mod sys;
