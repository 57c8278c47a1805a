//! `cargo xtask demo --store`: scenario S5, many hosts programmed from one store. Three
//! simulated hosts on one underlay switch, a throw-away etcd on 127.0.0.1, vtep on each host
//! with a `[store]` section and one workload, and nothing remote in any config: every host
//! learns the others from etcd. Shows the keys, the FDB entries from the store, pings across
//! hosts, a workload added and removed at run time, a host's clean stop, then removes
//! everything, also when interrupted.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use vtep_lab::{Etcd, Lab, Vtep};

use crate::lab;

const VNI: u32 = 100;
const LEASE_TTL: u32 = 2;
/// How long the hosts may take to see a change from the store (it takes milliseconds).
const SETTLE: Duration = Duration::from_secs(10);

/// A host of the demo: namespace, vtep instance, underlay address, its workload.
struct Host {
    ns: String,
    name: String,
    vtep_ip: String,
    /// Workload namespace, address (no prefix length) and MAC.
    wl: String,
    wl_ip: String,
    wl_mac: String,
}

pub fn run(vtep: &Path) -> Result<()> {
    let prefix = format!("vds{:05}", std::process::id() % 100_000);
    let mut etcd_pid = None;
    lab::with_lab(&prefix, vtep, |lab| demo(lab, &mut etcd_pid))?;
    let mut left = vtep_lab::leftovers(&prefix);
    if let Some(pid) = etcd_pid
        && Path::new(&format!("/proc/{pid}")).exists()
    {
        left.push(format!("etcd (pid {pid})"));
    }
    if !left.is_empty() {
        bail!("left behind: {}", left.join(" "));
    }
    println!("removed the lab and etcd; nothing is left behind");
    Ok(())
}

fn demo(lab: &Lab, etcd_pid: &mut Option<u32>) -> Result<()> {
    step("building three hosts on one underlay switch (198.18.0.1, .2, .3 /24, MTU 1500)");
    let ns = lab.three_hosts()?;
    let hosts: Vec<Host> = ns
        .iter()
        .zip(["a", "b", "c"])
        .enumerate()
        .map(|(i, (ns, letter))| Host {
            ns: ns.clone(),
            name: lab.name(letter),
            vtep_ip: format!("198.18.0.{}", i + 1),
            wl: lab.name(&format!("-{letter}1")),
            wl_ip: format!("192.0.2.{}1", i + 1),
            wl_mac: format!("02:00:00:00:0{}:01", i + 1),
        })
        .collect();

    step("starting a throw-away etcd on 127.0.0.1 (single node, plain HTTP)");
    let etcd = lab.start_etcd()?;
    *etcd_pid = etcd.pid();
    let prefix = format!("/{}", lab.prefix());
    println!(
        "etcd {} (pid {}), key prefix {prefix}",
        etcd.endpoint(),
        etcd.pid().unwrap_or_default()
    );

    step(&format!(
        "starting vtep on each host: a [store] section, VNI {VNI}, one workload; no remotes and no fdb entries"
    ));
    let mut vteps = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let config = config(h, &etcd, &prefix);
        println!("--- config of {} ---\n{config}", h.ns);
        vteps.push(lab::start_vtep(lab, &h.ns, &config, i == 0)?);
    }

    step("waiting until every host has the other hosts' workloads from the store");
    let start = Instant::now();
    for (h, v) in hosts.iter().zip(&vteps) {
        for other in hosts.iter().filter(|o| o.ns != h.ns) {
            wait_for(v, &h.name, &other.wl_mac, Some(&other.vtep_ip))?;
        }
    }
    println!(
        "every host has both others' workloads after {} ms",
        start.elapsed().as_millis()
    );

    step(&format!("the keys in etcd under {prefix}"));
    show_keys(&etcd, &prefix)?;

    let (a, va) = (&hosts[0], &vteps[0]);
    step(&format!(
        "vtep fdb show on {}: its own workload, and the others' from the store",
        a.ns
    ));
    println!("$ vtep --netns {} fdb show -n {}", a.ns, a.name);
    print!("{}", va.output(&["fdb", "show", "-n", &a.name])?);
    println!(
        "$ vtep --netns {} stats -n {} -j   (its store object)",
        a.ns, a.name
    );
    let stats = va.json(&["stats", "-n", &a.name, "-j"])?;
    println!("{}", serde_json::to_string_pretty(&stats["store"])?);

    step("pinging between workloads across hosts");
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        ping(&hosts[from].wl, &hosts[to].wl_ip, true)?;
    }

    let (b, vb) = (&hosts[1], &vteps[1]);
    let new_wl = lab.name("-b2");
    let (new_ip, new_mac) = ("192.0.2.22", "02:00:00:00:02:02");
    step(&format!("adding a workload on {} at run time", b.ns));
    let add = [
        "workload",
        "add",
        new_wl.as_str(),
        "vni",
        "100",
        "address",
        "192.0.2.22/24",
        "mac",
        new_mac,
        "-n",
        b.name.as_str(),
    ];
    println!("$ vtep --netns {} {}", b.ns, add.join(" "));
    let start = Instant::now();
    print!("{}", vb.output(&add)?);
    for (h, v) in hosts.iter().zip(&vteps).filter(|(h, _)| h.ns != b.ns) {
        wait_for(v, &h.name, new_mac, Some(&b.vtep_ip))?;
    }
    println!(
        "hosts {} and {} have it after {} ms (from the start of the command)",
        hosts[0].ns,
        hosts[2].ns,
        start.elapsed().as_millis()
    );
    show_keys(&etcd, &format!("{prefix}/v1/stations/{}/", b.vtep_ip))?;
    let c = &hosts[2];
    println!("$ vtep --netns {} fdb show -n {}", c.ns, c.name);
    print!("{}", vteps[2].output(&["fdb", "show", "-n", &c.name])?);
    ping(&a.wl, new_ip, true)?;
    ping(&c.wl, new_ip, true)?;

    step(&format!("removing that workload from {}", b.ns));
    let del = ["workload", "del", new_wl.as_str(), "-n", b.name.as_str()];
    println!("$ vtep --netns {} {}", b.ns, del.join(" "));
    let start = Instant::now();
    print!("{}", vb.output(&del)?);
    for (h, v) in hosts.iter().zip(&vteps).filter(|(h, _)| h.ns != b.ns) {
        wait_gone(v, &h.name, new_mac)?;
    }
    println!(
        "gone from {} and {} after {} ms",
        hosts[0].ns,
        hosts[2].ns,
        start.elapsed().as_millis()
    );
    show_keys(&etcd, &format!("{prefix}/v1/stations/{}/", b.vtep_ip))?;
    println!("$ vtep --netns {} fdb show -n {}", c.ns, c.name);
    print!("{}", vteps[2].output(&["fdb", "show", "-n", &c.name])?);
    println!("(a ping to {new_ip} is not answered any more:)");
    ping(&a.wl, new_ip, false)?;

    step(&format!(
        "stopping vtep on {} cleanly: it revokes its lease, so its keys go at once",
        c.ns
    ));
    let start = Instant::now();
    let status = vteps[2].stop();
    println!("vtep on {} exited ({status:?})", c.ns);
    for (h, v) in hosts.iter().zip(&vteps).take(2) {
        wait_gone(v, &h.name, &c.wl_mac)?;
    }
    println!(
        "{}'s workload is gone from {} and {} after {} ms",
        c.ns,
        hosts[0].ns,
        hosts[1].ns,
        start.elapsed().as_millis()
    );
    show_keys(&etcd, &prefix)?;

    step("stopping vtep on the other hosts, stopping etcd and removing the hosts");
    Ok(())
}

/// Host `h`'s config: `[store]` on `etcd` under `prefix`, VNI 100 with the ARP proxy, its
/// workload; nothing about the other hosts.
fn config(h: &Host, etcd: &Etcd, prefix: &str) -> String {
    format!(
        "name = \"{}\"\n\n[underlay]\ninterface = \"eth0\"\n\n[store]\nendpoints = [\"{}\"]\n\
         prefix = \"{prefix}\"\nlease_ttl = {LEASE_TTL}\nhost = \"{}\"\n\n[[vni]]\nid = {VNI}\nproxy = true\n\n\
         [[vni.workload]]\nnetns = \"{}\"\naddress = \"{}/24\"\nmac = \"{}\"\n",
        h.name,
        etcd.endpoint(),
        h.ns,
        h.wl,
        h.wl_ip,
        h.wl_mac
    )
}

/// The rows of `vtep fdb show -j` of instance `name`.
fn fdb(vtep: &Vtep, name: &str) -> Result<Vec<Value>> {
    let v = vtep.json(&["fdb", "show", "-n", name, "-j"])?;
    v.as_array()
        .cloned()
        .with_context(|| format!("vtep fdb show -j printed {v}, not an array"))
}

/// Whether instance `name` has `mac` in VNI 100 from the store (at `dst`, if given).
fn has_store_entry(vtep: &Vtep, name: &str, mac: &str, dst: Option<&str>) -> Result<bool> {
    Ok(fdb(vtep, name)?.iter().any(|r| {
        r["origin"] == "store"
            && r["mac"] == mac
            && r["vni"] == VNI
            && dst.is_none_or(|d| r["dst"] == d)
    }))
}

/// Waits until instance `name` has `mac` from the store; fails with its FDB after 10 s.
fn wait_for(vtep: &Vtep, name: &str, mac: &str, dst: Option<&str>) -> Result<()> {
    wait(
        || has_store_entry(vtep, name, mac, dst),
        || {
            format!(
                "{name} did not get {mac} from the store within {SETTLE:?}:\n{}",
                vtep.output(&["fdb", "show", "-n", name])
                    .unwrap_or_default()
            )
        },
    )
}

/// Waits until instance `name` has no entry for `mac` in VNI 100.
fn wait_gone(vtep: &Vtep, name: &str, mac: &str) -> Result<()> {
    wait(
        || {
            Ok(!fdb(vtep, name)?
                .iter()
                .any(|r| r["mac"] == mac && r["vni"] == VNI))
        },
        || {
            format!(
                "{name} still has {mac} after {SETTLE:?}:\n{}",
                vtep.output(&["fdb", "show", "-n", name])
                    .unwrap_or_default()
            )
        },
    )
}

fn wait(mut cond: impl FnMut() -> Result<bool>, why: impl FnOnce() -> String) -> Result<()> {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if cond()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{}", why())
}

/// Prints the keys under `prefix` with their values.
fn show_keys(etcd: &Etcd, prefix: &str) -> Result<()> {
    println!("keys under {prefix} (read through etcd's JSON gateway):");
    let keys = etcd.keys(prefix)?;
    if keys.is_empty() {
        println!("(no keys)");
    }
    for (k, v) in keys {
        println!("{k}\n    {v}");
    }
    Ok(())
}

/// Pings `addr` three times from namespace `ns`, printing the output; fails unless the
/// result is as `expect` says (answered or not).
fn ping(ns: &str, addr: &str, expect: bool) -> Result<()> {
    println!("$ ip netns exec {ns} ping -c 3 {addr}");
    let out = vtep_lab::ping_output(ns, addr, 3, "0.2", 1)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if out.status.success() != expect {
        bail!(
            "ping {ns} -> {addr} {}",
            if expect {
                "was not answered"
            } else {
                "was answered"
            }
        );
    }
    Ok(())
}

fn step(what: &str) {
    println!("\n=== {what}");
}
