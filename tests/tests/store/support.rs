//! What the store tests share: the workloads they place, configs with a `[store]` section and
//! nothing remote, hosts started on one etcd, and reading what each host programmed from it.

use std::{
    collections::BTreeSet,
    process::Output,
    time::{Duration, Instant},
};

use serde_json::Value;
use vtep_tests::{
    configs,
    lab::{Etcd, Lab, ping_with},
    output::text,
};

pub const VNI: u32 = 100;
/// Seconds a host's records outlive a crash: the shortest lease a config allows, so an expiry
/// shows within a test's patience.
pub const LEASE_TTL: u64 = 2;
/// The hosts' underlay addresses (the lab's), which are their VTEPs in the store's keys.
pub const VTEPS: [&str; 3] = ["198.18.0.1", "198.18.0.2", "198.18.0.3"];
/// How long hosts may take to see each other's records after they start, or a change: a watch
/// delivers in milliseconds; seconds of slack for a loaded machine.
pub const SETTLE: Duration = Duration::from_secs(10);

/// A workload the tests place on a host: the suffix of its namespace's name (the lab's prefix
/// goes before it), its address with prefix length, its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wl {
    pub suffix: &'static str,
    pub addr: &'static str,
    pub mac: &'static str,
}

impl Wl {
    /// The address without the prefix length.
    pub fn ip(&self) -> &'static str {
        self.addr.split('/').next().expect("an address")
    }
}

pub const A1: Wl = Wl {
    suffix: "a1",
    addr: "192.0.2.11/24",
    mac: "02:00:00:00:0a:01",
};
pub const A2: Wl = Wl {
    suffix: "a2",
    addr: "192.0.2.12/24",
    mac: "02:00:00:00:0a:02",
};
pub const B1: Wl = Wl {
    suffix: "b1",
    addr: "192.0.2.21/24",
    mac: "02:00:00:00:0b:01",
};
pub const C1: Wl = Wl {
    suffix: "c1",
    addr: "192.0.2.31/24",
    mac: "02:00:00:00:0c:01",
};
pub const C2: Wl = Wl {
    suffix: "c2",
    addr: "192.0.2.32/24",
    mac: "02:00:00:00:0c:02",
};

/// A `[store]` section: `endpoint`, key prefix `prefix`, the shortest lease, host name `host`,
/// then `extra` lines (TLS files).
pub fn store_section(endpoint: &str, prefix: &str, host: &str, extra: &str) -> String {
    store_section_ttl(endpoint, prefix, host, LEASE_TTL, extra)
}

/// As [`store_section`], with a lease of `lease_ttl` seconds.
pub fn store_section_ttl(
    endpoint: &str,
    prefix: &str,
    host: &str,
    lease_ttl: u64,
    extra: &str,
) -> String {
    format!(
        "[store]\nendpoints = [\"{endpoint}\"]\nprefix = \"{prefix}\"\nlease_ttl = {lease_ttl}\n\
         host = \"{host}\"\n{extra}\n"
    )
}

/// A config of instance `name` on `eth0` with store section `store` and VNI 100 with the ARP
/// proxy on and workloads `wls` (namespaces named with `lab`'s prefix). No `remotes`, no
/// `[[vni.fdb]]`: everything remote comes from the store.
pub fn store_config(lab: &Lab, name: &str, store: &str, wls: &[Wl]) -> String {
    store_config_proxy(lab, name, store, wls, true)
}

/// As [`store_config`], the ARP proxy on or off as `proxy` says.
pub fn store_config_proxy(lab: &Lab, name: &str, store: &str, wls: &[Wl], proxy: bool) -> String {
    let mut cfg = configs::header(name, "", "")
        + store
        + &format!("[[vni]]\nid = {VNI}\nproxy = {proxy}\n\n");
    for wl in wls {
        cfg += &configs::workload(&lab.name(wl.suffix), wl.addr, wl.mac);
    }
    cfg
}

/// The key of host `vtep`'s record under `prefix`.
pub fn host_key(prefix: &str, vtep: &str) -> String {
    format!("{prefix}/v1/hosts/{vtep}")
}

/// The key of `mac` of VNI 100 behind `vtep` under `prefix`.
pub fn station_key(prefix: &str, vtep: &str, mac: &str) -> String {
    format!("{prefix}/v1/stations/{vtep}/{VNI}/{mac}")
}

/// Polls `cond` every 50 ms until it holds; returns how long that took, or None when it did
/// not within `limit`. The tests wait for what the store propagates this way, never for a
/// fixed time, so they are as quick as the product.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pings (one echo, 1 s to answer) from `ns` to `addr` until one is answered; how long it
/// took, or None after `limit`.
pub fn reachable_within(ns: &str, addr: &str, limit: Duration) -> Option<Duration> {
    wait_until(limit, || ping_with(ns, addr, 1, "0.2", 1))
}

/// The `(MAC, VNI, remote VTEP)` of the rows of `vtep fdb show -j` whose origin is the store.
pub fn store_rows(rows: &[Value]) -> BTreeSet<(String, u64, String)> {
    rows.iter()
        .filter(|r| r["origin"] == "store")
        .map(|r| {
            (
                r["mac"].as_str().unwrap_or_default().to_string(),
                r["vni"].as_u64().unwrap_or_default(),
                r["dst"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Hosts with a store: their lab, the etcd they share, their namespaces, instance names and
/// vteps. The etcd prefix is the lab's unique one.
pub struct Hosts {
    pub lab: Lab,
    pub etcd: Etcd,
    pub prefix: String,
    /// Host namespaces: a, b(, c).
    pub ns: Vec<String>,
    pub names: Vec<String>,
    pub ids: Vec<usize>,
}

/// Hosts a, b, c on one etcd with workloads a1, b1, c1; returns once every host's FDB has the
/// other hosts' workloads from the store.
pub fn three_hosts() -> Hosts {
    let lab = Lab::new();
    let etcd = lab.etcd();
    start_hosts(lab, etcd, &[&[A1], &[B1], &[C1]], &["", "", ""])
}

/// Starts one host per entry of `workloads` (2: the lab's two hosts, 3: its three) on `etcd`,
/// host i with workloads `workloads[i]` and `store_extra[i]` in its `[store]` (TLS files),
/// and waits until every host's FDB has every other host's workloads from the store.
pub fn start_hosts(lab: Lab, etcd: Etcd, workloads: &[&[Wl]], store_extra: &[&str]) -> Hosts {
    start_hosts_ttl(lab, etcd, workloads, store_extra, LEASE_TTL)
}

/// As [`start_hosts`], with leases of `lease_ttl` seconds.
pub fn start_hosts_ttl(
    lab: Lab,
    etcd: Etcd,
    workloads: &[&[Wl]],
    store_extra: &[&str],
    lease_ttl: u64,
) -> Hosts {
    start_hosts_with(lab, etcd, workloads, store_extra, lease_ttl, true)
}

/// As [`start_hosts_ttl`], the ARP proxy on or off as `proxy` says.
pub fn start_hosts_with(
    lab: Lab,
    etcd: Etcd,
    workloads: &[&[Wl]],
    store_extra: &[&str],
    lease_ttl: u64,
    proxy: bool,
) -> Hosts {
    let ns: Vec<String> = match workloads.len() {
        2 => {
            let (a, b) = lab.two_hosts();
            vec![a, b]
        }
        3 => lab.three_hosts().to_vec(),
        n => panic!("{n} hosts: the lab has 2 or 3"),
    };
    let prefix = format!("/{}", lab.name(""));
    let mut h = Hosts {
        names: ["a", "b", "c"][..ns.len()]
            .iter()
            .map(|s| lab.name(&format!("v{s}")))
            .collect(),
        lab,
        etcd,
        prefix,
        ns,
        ids: Vec::new(),
    };
    for i in 0..h.ns.len() {
        let store = store_section_ttl(
            &h.etcd.endpoint(),
            &h.prefix,
            ["a", "b", "c"][i],
            lease_ttl,
            store_extra[i],
        );
        let cfg = store_config_proxy(&h.lab, &h.names[i], &store, workloads[i], proxy);
        let ns = h.ns[i].clone();
        let id = h.lab.start_vtep(&ns, &cfg);
        h.ids.push(id);
    }
    for i in 0..h.ns.len() {
        for (j, wls) in workloads.iter().enumerate() {
            for wl in wls.iter().filter(|_| j != i) {
                h.wait_station(i, *wl, VTEPS[j]);
            }
        }
    }
    h
}

impl Hosts {
    /// The namespace of workload `wl`.
    pub fn wl_ns(&self, wl: Wl) -> String {
        self.lab.name(wl.suffix)
    }

    /// `vtep fdb show -j` of host `i`.
    pub fn fdb(&self, i: usize) -> Vec<Value> {
        let name = self.names[i].clone();
        self.lab.vtep_ref(self.ids[i]).fdb(&name)
    }

    /// Host `i`'s FDB entries from the store.
    pub fn store_rows(&self, i: usize) -> BTreeSet<(String, u64, String)> {
        store_rows(&self.fdb(i))
    }

    /// True when host `i`'s FDB has `wl`'s MAC in VNI 100 from the store, at `vtep`.
    pub fn has_station(&self, i: usize, wl: Wl, vtep: &str) -> bool {
        self.store_rows(i)
            .contains(&(wl.mac.to_string(), u64::from(VNI), vtep.to_string()))
    }

    /// True when host `i`'s FDB has no entry for `wl`'s MAC in VNI 100 at all.
    pub fn lacks_station(&self, i: usize, wl: Wl) -> bool {
        !self
            .fdb(i)
            .iter()
            .any(|r| r["mac"] == wl.mac && r["vni"] == VNI)
    }

    /// Waits until host `i`'s FDB has `wl` at `vtep` from the store; panics, with the FDB and
    /// the store's keys, when it does not within [`SETTLE`].
    #[track_caller]
    pub fn wait_station(&self, i: usize, wl: Wl, vtep: &str) -> Duration {
        match wait_until(SETTLE, || self.has_station(i, wl, vtep)) {
            Some(t) => t,
            None => panic!(
                "host {} never got {} ({}) at {vtep} from the store in {SETTLE:?}: the other \
                 hosts cannot reach it.\nfdb show: {:#?}\nkeys: {:#?}\nlog: {}",
                self.ns[i],
                wl.mac,
                wl.suffix,
                self.fdb(i),
                self.etcd.keys(&self.prefix),
                self.log(i)
            ),
        }
    }

    /// The flood list (remote VTEPs) of VNI 100 on host `i`, from `vtep vni show -j`.
    pub fn flood_list(&self, i: usize) -> BTreeSet<String> {
        let vnis = self
            .lab
            .vtep_ref(self.ids[i])
            .cli(&["vni", "show", "-j", "-n", &self.names[i]]);
        let vnis: Value = serde_json::from_slice(&vnis.stdout).unwrap_or_else(|e| {
            panic!("vni show -j of {}: {e}: {}", self.ns[i], text(&vnis.stderr))
        });
        vnis.as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["vni"] == VNI)
            .flat_map(|v| v["remotes"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect()
    }

    /// `vtep stats -j` of host `i`: its `store` object.
    pub fn store_status(&self, i: usize) -> Value {
        let name = self.names[i].clone();
        self.lab.vtep_ref(self.ids[i]).stats(&name)["store"].clone()
    }

    /// `vtep --netns HOST ARGS -n NAME` against host `i`'s instance, whatever its exit.
    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        let name = self.names[i].clone();
        all.extend(["-n", &name]);
        self.lab.vtep_ref(self.ids[i]).cli(&all)
    }

    /// `vtep workload add NETNS vni 100 address A mac M` for `wl` on host `i`; panics with
    /// its error when it fails.
    #[track_caller]
    pub fn workload_add(&self, i: usize, wl: Wl) {
        let ns = self.wl_ns(wl);
        let vni = VNI.to_string();
        let out = self.cli(
            i,
            &[
                "workload", "add", &ns, "vni", &vni, "address", wl.addr, "mac", wl.mac,
            ],
        );
        assert!(
            out.status.success(),
            "vtep workload add {ns} on {}: {}{}",
            self.ns[i],
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// The keys under this test's prefix.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.etcd.keys(&self.prefix)
    }

    /// The keys of host `vtep` (its record and its stations).
    pub fn keys_of(&self, vtep: &str) -> Vec<String> {
        let host = host_key(&self.prefix, vtep);
        let stations = format!("{}/v1/stations/{vtep}/", self.prefix);
        self.keys()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| *k == host || k.starts_with(&stations))
            .collect()
    }

    /// Host `i`'s vtep log.
    pub fn log(&self, i: usize) -> String {
        self.lab.vtep_ref(self.ids[i]).log()
    }
}
