//! The namespace lab for the namespace tests: `vtep-lab` (shared with `cargo xtask demo` and
//! `bench`) with the workspace's `vtep` binary, where every failure is a panic with the lab's
//! message instead of an error to pass on. Each lab has a unique prefix, so tests run in
//! parallel, and is removed on drop, also after a failed test.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use crate::output::text;

pub use vtep_lab::{
    ArticleHost, Certs, End, FlowResult, KernelOptions, KernelVtep, PingFlow, list_netns,
};

/// The value of `result`; panics with its error (and the error's causes) otherwise.
#[track_caller]
pub fn must<T>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}"))
}

/// The `vtep` binary under test: `$VTEP_BIN`, else the workspace's debug build.
pub fn vtep_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VTEP_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/vtep");
    assert!(
        p.exists(),
        "{} missing: run `cargo xtask test` (it builds vtep first)",
        p.display()
    );
    p
}

/// Runs `vtep ARGS` to completion (at most `limit`; a still-running `vtep` gets SIGINT and the
/// result is reported as an error with its output).
pub fn vtep_run(args: &[&str], limit: Duration) -> Result<Output, String> {
    let mut cmd = Command::new(vtep_bin());
    cmd.args(args);
    run_limited(cmd, limit)
}

/// Runs `cmd` to completion as [`vtep_run`] runs `vtep`: at most `limit`, then SIGINT and an
/// error with its output.
pub fn run_limited(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("waiting for the command").is_some() {
            return Ok(child.wait_with_output().expect("command output"));
        }
        if Instant::now() > deadline {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let out = child.wait_with_output().expect("command output");
            return Err(format!(
                "{what} still running after {limit:?}; stopped it. stdout: {} stderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command; panics with its output when it fails.
#[track_caller]
pub fn run(cmd: &str, args: &[&str]) -> Output {
    must(vtep_lab::run(cmd, args))
}

/// `ip ARGS`; panics when it fails.
#[track_caller]
pub fn ip(args: &[&str]) -> Output {
    must(vtep_lab::ip(args))
}

/// Runs `cmd args` inside namespace `ns`; returns its output whatever the exit status.
#[track_caller]
pub fn ns_exec(ns: &str, cmd: &str, args: &[&str]) -> Output {
    must(vtep_lab::ns_exec(ns, cmd, args))
}

/// `sysctl -w` of `settings` (`key=value`) inside namespace `ns`; panics when it fails.
#[track_caller]
pub fn sysctl(ns: &str, settings: &[&str]) {
    must(vtep_lab::sysctl(ns, settings))
}

/// True when `count` pings from `ns` to `addr` are all answered.
#[track_caller]
pub fn ping(ns: &str, addr: &str, count: u32) -> bool {
    must(vtep_lab::ping(ns, addr, count))
}

/// `ping -c count -i interval -W wait` from `ns` to `addr`: true when every echo was answered.
#[track_caller]
pub fn ping_with(ns: &str, addr: &str, count: u32, interval: &str, wait: u32) -> bool {
    must(vtep_lab::ping_with(ns, addr, count, interval, wait))
}

/// Runs `f` on a thread inside namespace `ns` and returns its result.
#[track_caller]
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    must(vtep_lab::in_netns(ns, f))
}

/// Turns IPv6 off in namespace `ns` (see `vtep_lab::no_ipv6`).
#[track_caller]
pub fn no_ipv6(ns: &str) {
    must(vtep_lab::no_ipv6(ns))
}

/// A permanent neighbour entry in namespace `ns`: `addr` is at `mac` on `dev`.
#[track_caller]
pub fn static_neighbour(ns: &str, dev: &str, addr: &str, mac: &str) {
    must(vtep_lab::static_neighbour(ns, dev, addr, mac))
}

/// Counter `counter` of interface `ifname` in namespace `ns`.
#[track_caller]
pub fn if_counter(ns: &str, ifname: &str, counter: &str) -> u64 {
    must(vtep_lab::if_counter(ns, ifname, counter))
}

/// `ip -j -s link show dev IFNAME` in namespace `ns`, parsed.
#[track_caller]
pub fn link(ns: &str, ifname: &str) -> serde_json::Value {
    must(vtep_lab::link(ns, ifname))
}

/// The addresses of the managed neighbour entries of namespace `ns`: the next hops `vtep up`
/// keeps resolved (and any other managed entry).
#[track_caller]
pub fn managed_neighbours(ns: &str) -> Vec<String> {
    let out = ip(&["-j", "-n", ns, "neigh", "show"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rows.iter()
        .filter(|r| r.get("managed").is_some())
        .filter_map(|r| r["dst"].as_str().map(str::to_string))
        .collect()
}

/// The next hop instance `name` has cached for remote VTEP `remote` (IPv4 or IPv6) in its
/// pinned `NEXTHOPS` map: (underlay ifindex, next hop MAC), or `None` when it has none.
#[track_caller]
pub fn cached_next_hop(name: &str, remote: &str) -> Option<(u32, crate::packet::Mac)> {
    let path = vtep::instance::pin_dir(name).join(vtep_common::maps::MAP_NEXTHOPS);
    let map = aya::maps::Map::from_map_data(
        aya::maps::MapData::from_pin(&path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display())),
    )
    .expect("NEXTHOPS map");
    let map: aya::maps::HashMap<_, vtep_common::maps::VtepAddr, vtep_common::maps::NextHopEntry> =
        aya::maps::HashMap::try_from(map).expect("NEXTHOPS is a hash map");
    let ip: std::net::IpAddr = remote.parse().expect("an IP address");
    map.get(&vtep_common::maps::vtep_addr(ip), 0)
        .ok()
        .map(|e| (e.ifindex, crate::packet::Mac(e.dmac)))
}

/// Sends `len` bytes over TCP from `client_ns` to `server_addr` in `server_ns`; returns how
/// many arrived intact before the first difference (see `vtep_lab::tcp_transfer`).
#[track_caller]
pub fn tcp_transfer(server_ns: &str, server_addr: SocketAddr, client_ns: &str, len: u64) -> u64 {
    must(vtep_lab::tcp_transfer(
        server_ns,
        server_addr,
        client_ns,
        len,
    ))
}

/// Simulated hosts with a unique name prefix (see `vtep_lab::Lab`), and the vteps running on
/// them by number.
pub struct Lab {
    lab: vtep_lab::Lab,
    vteps: Vec<Vtep>,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    /// A new, empty lab named `t<pid><n>`.
    pub fn new() -> Self {
        Self {
            lab: must(vtep_lab::Lab::unique("t", &vtep_bin())),
            vteps: Vec::new(),
        }
    }

    /// `prefix` + `suffix`: names of namespaces, interfaces and instances of this lab.
    pub fn name(&self, suffix: &str) -> String {
        self.lab.name(suffix)
    }

    /// Creates namespace `<prefix><suffix>` with loopback up; returns its name.
    #[track_caller]
    pub fn host(&self, suffix: &str) -> String {
        must(self.lab.host(suffix))
    }

    /// Joins `a` and `b` with a veth pair of MTU `mtu`.
    #[track_caller]
    pub fn wire(&self, a: End, b: End, mtu: u32) {
        must(self.lab.wire(a, b, mtu))
    }

    /// Hosts `<prefix>a` (198.18.0.1) and `<prefix>b` (198.18.0.2) on an `eth0` underlay.
    #[track_caller]
    pub fn two_hosts(&self) -> (String, String) {
        must(self.lab.two_hosts())
    }

    /// Hosts `<prefix>a`, `b`, `c` (198.18.0.1, .2, .3) on switch `<prefix>sw` (ports p0..p2).
    #[track_caller]
    pub fn three_hosts(&self) -> [String; 3] {
        must(self.lab.three_hosts())
    }

    /// Hosts `<prefix>a` (2001:db8::1) and `<prefix>b` (2001:db8::2) on an IPv6 `eth0`
    /// underlay (see `vtep_lab::Lab::two_hosts_ipv6`).
    #[track_caller]
    pub fn two_hosts_ipv6(&self) -> (String, String) {
        must(self.lab.two_hosts_ipv6())
    }

    /// Hosts `<prefix>a`, `b`, `c` (2001:db8::1, ::2, ::3) on switch `<prefix>sw`, whose
    /// bridge floods multicast (see `vtep_lab::Lab::three_hosts_ipv6`).
    #[track_caller]
    pub fn three_hosts_ipv6(&self) -> [String; 3] {
        must(self.lab.three_hosts_ipv6())
    }

    /// Writes `text` to a file of this lab and returns its path.
    #[track_caller]
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        must(self.lab.file(name, text))
    }

    /// Starts `vtep up` in namespace `host` with config `toml`, waiting until it is up; returns
    /// its number for [`Lab::vtep`]. Panics with vtep's output when it does not come up.
    #[track_caller]
    pub fn start_vtep(&mut self, host: &str, toml: &str) -> usize {
        self.vteps.push(Vtep(must(self.lab.start_vtep(host, toml))));
        self.vteps.len() - 1
    }

    /// As [`Lab::start_vtep`], with the config in file `config` (a reload reads it again) and
    /// `extra` arguments of `vtep up` (`--keep`).
    #[track_caller]
    pub fn start_vtep_file(&mut self, host: &str, config: &Path, extra: &[&str]) -> usize {
        self.vteps
            .push(Vtep(must(self.lab.start_vtep_file(host, config, extra))));
        self.vteps.len() - 1
    }

    /// As [`tcp_transfer`]; a failed transfer panics with [`Lab::explain`], so a stall can be
    /// told apart: counted by vtep, lost on an interface, or retransmitted in vain.
    #[track_caller]
    pub fn tcp_transfer(
        &self,
        server_ns: &str,
        server_addr: SocketAddr,
        client_ns: &str,
        len: u64,
    ) -> u64 {
        vtep_lab::tcp_transfer(server_ns, server_addr, client_ns, len)
            .unwrap_or_else(|e| panic!("{e:#}\n{}", self.explain()))
    }

    /// What the lab's instances and hosts counted: each instance's `vtep stats`, and each
    /// namespace's interface counters and TCP loss counters. For failure messages.
    pub fn explain(&self) -> String {
        let prefix = self.name("");
        let pins = vtep::instance::pin_dir(&prefix);
        let mut names: Vec<String> = pins
            .parent()
            .and_then(|d| std::fs::read_dir(d).ok())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        names.sort();
        let mut out = String::new();
        for name in names {
            let stats = std::process::Command::new(vtep_bin())
                .args(["stats", "-n", &name])
                .output();
            let text = match stats {
                Ok(o) => {
                    String::from_utf8_lossy(&o.stdout).into_owned()
                        + &String::from_utf8_lossy(&o.stderr)
                }
                Err(e) => e.to_string(),
            };
            out += &format!("--- vtep stats -n {name}\n{text}");
        }
        for ns in self.namespaces() {
            let links = ns_exec(&ns, "ip", &["-s", "link"]).stdout;
            let tcp = ns_exec(
                &ns,
                "nstat",
                &[
                    "-asz",
                    "TcpRetransSegs",
                    "TcpExtTCPTimeouts",
                    "TcpExtTCPLossProbes",
                ],
            );
            out += &format!(
                "--- {ns}: ip -s link\n{}--- {ns}: nstat\n{}",
                String::from_utf8_lossy(&links),
                String::from_utf8_lossy(&tcp.stdout)
            );
        }
        out
    }

    pub fn vtep(&mut self, id: usize) -> &mut Vtep {
        &mut self.vteps[id]
    }

    /// Vtep `id` for commands that only read or talk to it (`fdb`, `stats`, `cli`), so a
    /// helper holding the lab shared can run them.
    pub fn vtep_ref(&self, id: usize) -> &Vtep {
        &self.vteps[id]
    }

    /// Starts capturing on `ifname` in `ns` what BPF filter `filter` lets through.
    #[track_caller]
    pub fn capture(&self, ns: &str, ifname: &str, filter: &str) -> Capture {
        Capture(must(self.lab.capture(ns, ifname, filter)))
    }

    /// Namespaces whose name starts with this lab's prefix.
    pub fn namespaces(&self) -> Vec<String> {
        self.lab.namespaces()
    }

    /// A single-node etcd on 127.0.0.1 (plain HTTP), killed when the lab is removed, after
    /// its vteps have stopped.
    #[track_caller]
    pub fn etcd(&self) -> Etcd {
        Etcd(must(self.lab.start_etcd()))
    }

    /// As [`Lab::etcd`], with TLS and client-certificate authentication by `certs`.
    #[track_caller]
    pub fn etcd_tls(&self, certs: &Certs) -> Etcd {
        Etcd(must(self.lab.start_etcd_tls(certs)))
    }

    /// As [`Lab::etcd`], with TLS by `tls` if given and `extra` arguments of etcd.
    #[track_caller]
    pub fn etcd_with(&self, tls: Option<&Certs>, extra: &[&str]) -> Etcd {
        Etcd(must(self.lab.start_etcd_with(tls, extra)))
    }

    /// TLS certificates for an etcd and its clients, in a directory of the lab.
    #[track_caller]
    pub fn certs(&self) -> Certs {
        must(self.lab.certs())
    }

    /// A Prometheus on 127.0.0.1 scraping `targets` (`HOST:PORT`) every second as job `vtep`,
    /// killed when the lab is removed.
    #[track_caller]
    pub fn prometheus(&self, targets: &[String]) -> Prometheus {
        Prometheus(must(self.lab.start_prometheus(targets)))
    }
}

/// A throw-away Prometheus of a [`Lab`] (see `vtep_lab::Prometheus`); every failure is a
/// panic.
pub struct Prometheus(vtep_lab::Prometheus);

impl Prometheus {
    /// The series instant query `promql` returns, each with its `metric` labels and `value`.
    #[track_caller]
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        must(self.0.query(promql))
    }

    /// Its scrape targets, each with its `health` and `lastError`.
    #[track_caller]
    pub fn targets(&self) -> Vec<serde_json::Value> {
        must(self.0.targets())
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.0.log()
    }
}

/// A TCP port of 127.0.0.1 free at the moment.
#[track_caller]
pub fn free_port() -> u16 {
    must(vtep_lab::free_port())
}

/// A throw-away etcd of a [`Lab`] (see `vtep_lab::Etcd`); every failure is a panic.
pub struct Etcd(vtep_lab::Etcd);

impl Etcd {
    /// The client URL (`http://127.0.0.1:PORT`, `https://` with TLS).
    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Everything etcd logged so far.
    pub fn log(&self) -> String {
        self.0.log()
    }

    /// SIGTERM, and waits for it to exit; the data stays.
    pub fn stop(&self) {
        self.0.stop()
    }

    /// Starts it again on the same ports with the same data, waiting until it answers.
    #[track_caller]
    pub fn restart(&self) {
        must(self.0.restart())
    }

    /// Keys under `prefix` with their values, sorted by key.
    #[track_caller]
    pub fn keys(&self, prefix: &str) -> Vec<(String, String)> {
        must(self.0.keys(prefix))
    }

    /// Writes `value` under `key` without a lease; returns the revision.
    #[track_caller]
    pub fn put(&self, key: &str, value: &str) -> i64 {
        must(self.0.put(key, value))
    }

    /// Writes each `(key, value)` in turn (a revision each) through one connection; returns
    /// the last revision.
    #[track_caller]
    pub fn put_many(&self, kvs: &[(String, String)]) -> i64 {
        must(self.0.put_many(kvs))
    }

    /// Metric `name` (no labels) from etcd's `/metrics`.
    #[track_caller]
    pub fn metric(&self, name: &str) -> f64 {
        must(self.0.metric(name))
    }

    /// Deletes `key`; returns how many keys went (0 or 1).
    #[track_caller]
    pub fn del(&self, key: &str) -> u64 {
        must(self.0.del(key))
    }

    /// The current revision.
    #[track_caller]
    pub fn revision(&self) -> i64 {
        must(self.0.revision())
    }

    /// Compacts the history up to `rev`.
    #[track_caller]
    pub fn compact(&self, rev: i64) {
        must(self.0.compact(rev))
    }
}

/// A running `vtep up` of a [`Lab`].
pub struct Vtep(vtep_lab::Vtep);

impl Vtep {
    /// Everything vtep printed so far.
    pub fn log(&self) -> String {
        self.0.log()
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Sends SIGINT and waits for vtep to exit (kills it after 20 s); returns its exit status
    /// (None if it was not running).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.0.stop()
    }

    /// Like [`Vtep::stop`], with another signal (SIGTERM).
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> Option<ExitStatus> {
        self.0.stop_with(signal)
    }

    /// Sends `signal` without waiting.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        self.0.signal(signal)
    }

    /// Waits up to `limit` for vtep to exit (after a [`Vtep::signal`]), then kills it;
    /// returns its exit status (None if it was not running).
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.0.wait_or_kill(limit)
    }

    /// Kills vtep with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.0.kill()
    }

    /// `vtep --netns host ARGS` (a CLI command against this running instance).
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> Output {
        must(self.0.cli(args))
    }

    /// `vtep fdb show -j` of instance `name`, parsed.
    #[track_caller]
    pub fn fdb(&self, name: &str) -> Vec<serde_json::Value> {
        let rows = must(self.0.json(&["fdb", "show", "-n", name, "-j"]));
        rows.as_array().expect("fdb show rows").clone()
    }

    /// `vtep neigh show -j` (the proxy table) of instance `name`, parsed.
    #[track_caller]
    pub fn neigh(&self, name: &str) -> Vec<serde_json::Value> {
        let rows = must(self.0.json(&["neigh", "show", "-n", name, "-j"]));
        rows.as_array().expect("neigh show rows").clone()
    }

    /// `vtep stats -j` of instance `name`, parsed.
    #[track_caller]
    pub fn stats(&self, name: &str) -> serde_json::Value {
        must(self.0.json(&["stats", "-n", name, "-j"]))
    }
}

/// A running packet capture.
pub struct Capture(vtep_lab::Capture);

impl Capture {
    /// Stops the capture and returns the captured frames.
    #[track_caller]
    pub fn frames(self) -> Vec<Vec<u8>> {
        must(self.0.frames())
    }
}
