//! The namespace lab of the namespace tests, `cargo xtask demo` and `cargo xtask bench`:
//! simulated hosts (network namespaces joined by veth pairs), `vtep` processes running on them,
//! traffic (ping, a checked TCP transfer), packet capture with tcpdump, and the kernel's own VTEP
//! (vxlan device in a bridge) to interoperate or compare with, and tiny BPF programs loaded from
//! instructions for the measurements, a throw-away etcd (with TLS certificates) for the
//! store, and a throw-away Prometheus for the metrics. Underlays are IPv4 (198.18.0.0/24) or IPv6
//! (2001:db8::/64): `two_hosts`/`three_hosts` and their `_ipv6` variants.
//!
//! Everything a [`Lab`] makes carries its name prefix and is removed when the lab is dropped or
//! [`Lab::remove`]d, also from a signal handler through a [`Remover`]. A [`Netns`] is a single
//! namespace removed on drop, for fixtures that need no more. A [`scenario`] lab is the
//! opposite: the hosts an example scenario needs, left up for running the examples by hand
//! (`cargo xtask lab up|down|status`), recorded in a state file and removed by `down`.
//!
//! Every fallible function returns an `anyhow` error that names the command and what it printed:
//! xtask reports it, the tests (`vtep_tests::lab`) turn it into a panic with that message. The
//! crate depends on nothing of vtep's, so xtask can build it before bpf-linker exists.

mod bpf;
mod capture;
mod cmd;
mod etcd;
mod kernel;
mod lab;
mod netns;
mod prometheus;
mod routed;
pub mod scenario;
mod server;
mod traffic;
mod vtep;

pub use bpf::{ProgType, RawProgram};
pub use capture::{Capture, parse_pcap};
pub use cmd::{ip, ip_in, ns_exec, run, sysctl};
pub use etcd::{Certs, Etcd, b64};
pub use kernel::{KernelOptions, KernelVtep};
pub use lab::{End, Lab, Remover, leftovers};
pub use netns::{
    Netns, delete_netns, if_counter, in_netns, link, list_netns, no_ipv6, static_neighbour,
};
pub use prometheus::Prometheus;
pub use routed::ArticleHost;
pub use traffic::{FlowResult, PingFlow, ping, ping_output, ping_with, tcp_transfer};
pub use vtep::Vtep;

/// A number unique within this process: part of the names of labs, namespaces and files.
fn next_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A TCP port of 127.0.0.1 free at the moment (for a server a test starts, or a `vtep`'s
/// `metrics.listen`). Fails when no socket can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    use anyhow::Context as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Locks `m` even when a thread panicked while holding it: the data here (process handles,
/// the list of what to clean up) stays valid, and cleanup after a failed test must still run.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
