//! `cargo xtask demo`: two simulated hosts in network namespaces, joined by an underlay veth,
//! each with two workloads on one VNI; vtep on both; pings and a TCP transfer across the
//! overlay; vtep's counters; then everything is removed, also when interrupted.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result, bail};

use vtep_lab::Lab;

use crate::lab;

const VNI: u32 = 100;

struct Host {
    ns: String,
    /// Instance name of its vtep.
    name: String,
    peer_ip: &'static str,
    /// 1 on host A, 2 on host B: the third octet of workload MACs, the tens of workload IPs.
    id: u8,
    peer_id: u8,
}

pub fn run(vtep: &Path) -> Result<()> {
    let prefix = format!("vd{}", std::process::id() % 100_000);
    lab::with_lab(&prefix, vtep, demo)?;
    let left = vtep_lab::leftovers(&prefix);
    if !left.is_empty() {
        bail!("left behind: {}", left.join(" "));
    }
    println!("removed the lab; nothing is left behind");
    Ok(())
}

fn demo(lab: &Lab) -> Result<()> {
    step("building two hosts joined by an underlay veth (198.18.0.0/24, MTU 1500)");
    let (a, b) = lab.two_hosts_named("-hostA", "-hostB")?;
    let hosts = [
        Host {
            ns: a,
            name: lab.name("a"),
            peer_ip: "198.18.0.2",
            id: 1,
            peer_id: 2,
        },
        Host {
            ns: b,
            name: lab.name("b"),
            peer_ip: "198.18.0.1",
            id: 2,
            peer_id: 1,
        },
    ];

    step(&format!(
        "starting vtep on both hosts (VNI {VNI}, two workloads each)"
    ));
    let mut vteps = Vec::new();
    for h in &hosts {
        let config = host_config(lab, h);
        println!("--- config of {} ---\n{config}", h.ns);
        vteps.push(lab::start_vtep(lab, &h.ns, &config, true)?);
    }

    let ws = |host: u8, n: u8| lab.name(&format!("-{}{n}", if host == 1 { 'a' } else { 'b' }));
    let ip_of = |host: u8, n: u8| format!("192.0.2.{host}{n}");
    step("pinging across the overlay and on the same host");
    for ((fh, fw), (th, tw)) in [((1, 1), (2, 1)), ((2, 2), (1, 2)), ((1, 1), (1, 2))] {
        let (src, dst) = (ws(fh, fw), ip_of(th, tw));
        println!("$ ip netns exec {src} ping -c 3 {dst}");
        let ping = vtep_lab::ping_output(&src, &dst, 3, "0.2", 2)?;
        print!("{}", String::from_utf8_lossy(&ping.stdout));
        if !ping.status.success() {
            bail!("ping {src} -> {dst} failed");
        }
    }

    step("a 3-second TCP transfer (iperf3) from workload a1 to workload b1, across hosts");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ws(2, 1), "iperf3", "-s", "-1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting iperf3 server")?;
    std::thread::sleep(Duration::from_millis(500));
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ws(1, 1),
            "iperf3",
            "-c",
            &ip_of(2, 1),
            "-t",
            "3",
            "-f",
            "g",
        ])
        .output()?;
    let _ = server.wait();
    print!("{}", String::from_utf8_lossy(&client.stdout));
    if !client.status.success() {
        bail!("iperf3 failed: {}", String::from_utf8_lossy(&client.stderr));
    }

    for (h, vtep) in hosts.iter().zip(&vteps) {
        step(&format!("vtep stats and fdb on {}", h.ns));
        print!("{}", vtep.output(&["stats", "-n", &h.name])?);
        print!("{}", vtep.output(&["fdb", "show", "-n", &h.name])?);
    }
    step("stopping vtep (it removes the workloads it created) and removing the hosts");
    Ok(())
}

fn host_config(lab: &Lab, h: &Host) -> String {
    let letter = if h.id == 1 { 'a' } else { 'b' };
    let mut s = format!(
        "name = \"{}\"\n\n[underlay]\ninterface = \"eth0\"\n\n[[vni]]\nid = {VNI}\nremotes = [\"{}\"]\n",
        h.name, h.peer_ip
    );
    for n in 1..=2 {
        s += &format!(
            "\n[[vni.workload]]\nnetns = \"{}\"\naddress = \"192.0.2.{}{n}/24\"\nmac = \"02:00:00:00:0{}:0{n}\"\n",
            lab.name(&format!("-{letter}{n}")),
            h.id,
            h.id
        );
    }
    for n in 1..=2 {
        s += &format!(
            "\n[[vni.fdb]]\nmac = \"02:00:00:00:0{}:0{n}\"\ndst = \"{}\"\n",
            h.peer_id, h.peer_ip
        );
    }
    s
}

fn step(what: &str) {
    println!("\n=== {what}");
}
