//! Network namespaces: entering one from a thread, a namespace removed on drop, and reading an
//! interface's state inside one.

use std::{fs::File, os::fd::AsFd, process::Command};

use anyhow::{Context as _, Result};
use nix::sched::{CloneFlags, setns};

use crate::cmd::{ip, ip_in, ns_exec, sysctl};

/// Runs `f` on a thread inside namespace `ns` and returns what `f` returns. Fails when the
/// namespace cannot be entered; a panic in `f` goes on in the caller, with its own message.
///
/// A thread of its own because a namespace belongs to a thread: sockets `f` opens stay in
/// `ns` when they are handed back.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let file = File::open(format!("/run/netns/{ns}")).with_context(|| format!("netns {ns}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering netns {ns}"))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Names of all namespaces in /run/netns.
pub fn list_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Creates namespace `name` with its loopback up. Fails when `ip` does.
pub(crate) fn add_netns(name: &str) -> Result<()> {
    ip(&["netns", "add", name])?;
    ip_in(name, &["link", "set", "lo", "up"]).map(drop)
}

/// Deletes namespace `name`, quietly: for cleanup, where there is nobody to tell.
pub fn delete_netns(name: &str) {
    let _ = Command::new("ip").args(["netns", "del", name]).status();
}

/// Turns IPv6 off in namespace `ns`, also for interfaces made later, so nothing there sends
/// router solicitations, MLD reports or DAD probes on its own: what counts packets or watches
/// learned entries age needs quiet stations.
pub fn no_ipv6(ns: &str) -> Result<()> {
    sysctl(
        ns,
        &[
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )
}

/// A permanent entry in namespace `ns`'s neighbour table: `addr` is at `mac` on `dev`, so
/// traffic to it needs no ARP. Fails when `ip` does.
pub fn static_neighbour(ns: &str, dev: &str, addr: &str, mac: &str) -> Result<()> {
    ip_in(
        ns,
        &[
            "neigh",
            "replace",
            addr,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ],
    )
    .map(drop)
}

/// Counter `counter` (e.g. `tx_packets`) of interface `ifname` in namespace `ns`, read from
/// /sys inside the namespace. Fails when it cannot be read.
pub fn if_counter(ns: &str, ifname: &str, counter: &str) -> Result<u64> {
    let path = format!("/sys/class/net/{ifname}/statistics/{counter}");
    let out = ns_exec(ns, "cat", &[&path])?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("{ns}: {path}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// `ip -j -s link show dev IFNAME` in namespace `ns`: the interface's JSON object (ifindex,
/// address, stats64, ...). Fails when `ip` does.
pub fn link(ns: &str, ifname: &str) -> Result<serde_json::Value> {
    let out = ip_in(ns, &["-j", "-s", "link", "show", "dev", ifname])?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing `ip -j link show`")?;
    Ok(v[0].clone())
}

/// A network namespace of its own, deleted on drop (also when a test fails).
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `<prefix><pid>-<n>` (`n` counts up within the process) with its
    /// loopback up. Fails when `ip` does.
    pub fn unique(prefix: &str) -> Result<Self> {
        let name = format!("{prefix}{}-{}", std::process::id(), crate::next_id());
        ip(&["netns", "add", &name])?;
        // From here on the namespace is removed whatever happens.
        let ns = Self { name };
        ip_in(&ns.name, &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` inside the namespace, as [`in_netns`].
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        in_netns(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_netns(&self.name);
    }
}
