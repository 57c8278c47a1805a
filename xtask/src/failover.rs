//! `cargo xtask bench --failover`: what a VTEP loses when its underlay path to a remote VTEP
//! fails and the route moves to another path, during a 1,000 pps flow. Host A reaches the remote
//! VTEP (B's 198.18.9.2 on its loopback) through router R1 (metric 10) or router R2 (metric
//! 20), both on A's underlay segment. At one second into the flow, R1's link towards B goes
//! down and A's route via R1 is withdrawn in the same instant, as a routing daemon would.
//! A runs the kernel's vxlan driver or vtep; B always the kernel driver (the return path is via
//! R2 throughout). Reported: echoes lost per round, medians.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use vtep_lab::{End, Lab, ip_in, sysctl};

use crate::lab;

const FLOW: u32 = 3000;
const INTERVAL: &str = "0.001";
const B_VTEP: &str = "198.18.9.2";
const A_VTEP: &str = "198.18.0.1";

/// Runs `rounds` rounds of the kernel driver and of vtep on A, interleaved.
pub fn run(vtep: &Path, rounds: u32) -> Result<()> {
    let prefix = format!("vf{}", std::process::id() % 100_000);
    let mut kernel = Vec::new();
    let mut ours = Vec::new();
    lab::with_lab(&prefix, vtep, |lab| {
        for round in 0..rounds {
            for variant in ["kernel", "vtep"] {
                let lost = one(lab, round, variant)?;
                println!("round {round} {variant:>6}: {lost} of {FLOW} echoes lost");
                match variant {
                    "kernel" => kernel.push(lost),
                    _ => ours.push(lost),
                }
            }
        }
        Ok(())
    })?;
    let median = |v: &mut Vec<u32>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    println!(
        "\nfailover at {} pps: echoes lost, median of {rounds}: kernel vxlan {}, vtep {}",
        1000,
        median(&mut kernel),
        median(&mut ours)
    );
    Ok(())
}

/// One round: builds the topology for `variant`, runs the flow, fails the path at 1 s, and
/// returns the echoes lost.
fn one(lab: &Lab, round: u32, variant: &str) -> Result<u32> {
    let tag = format!("{}{round}", &variant[..1]);
    let [a, r1, r2, b, sw] = ["a", "r1", "r2", "b", "sw"].map(|h| lab.host(&format!("{tag}{h}")));
    let [a, r1, r2, b, sw] = [a?, r1?, r2?, b?, sw?];
    ip_in(&sw, &["link", "add", "br0", "type", "bridge"])?;
    ip_in(&sw, &["link", "set", "br0", "up"])?;
    for (i, (host, addr)) in [
        (&a, "198.18.0.1/24"),
        (&r1, "198.18.0.11/24"),
        (&r2, "198.18.0.12/24"),
    ]
    .into_iter()
    .enumerate()
    {
        let port = format!("p{i}");
        lab.wire(End::new(host, "eth0", addr), End::new(&sw, &port, ""), 1500)?;
        ip_in(&sw, &["link", "set", &port, "master", "br0"])?;
    }
    lab.wire(
        End::new(&r1, "eth1", "198.18.3.1/24"),
        End::new(&b, "eth1", "198.18.3.2/24"),
        1500,
    )?;
    lab.wire(
        End::new(&r2, "eth1", "198.18.4.1/24"),
        End::new(&b, "eth2", "198.18.4.2/24"),
        1500,
    )?;
    for r in [&r1, &r2] {
        sysctl(r, &["net.ipv4.ip_forward=1"])?;
    }
    ip_in(
        &r1,
        &["route", "add", &format!("{B_VTEP}/32"), "via", "198.18.3.2"],
    )?;
    ip_in(
        &r2,
        &["route", "add", &format!("{B_VTEP}/32"), "via", "198.18.4.2"],
    )?;
    ip_in(&b, &["addr", "add", &format!("{B_VTEP}/32"), "dev", "lo"])?;
    ip_in(&b, &["route", "add", "198.18.0.0/24", "via", "198.18.4.1"])?;
    ip_in(
        &a,
        &[
            "route",
            "add",
            &format!("{B_VTEP}/32"),
            "via",
            "198.18.0.11",
            "metric",
            "10",
        ],
    )?;
    ip_in(
        &a,
        &[
            "route",
            "add",
            &format!("{B_VTEP}/32"),
            "via",
            "198.18.0.12",
            "metric",
            "20",
        ],
    )?;
    // B: the kernel driver with the overlay address on its device.
    kernel_vxlan(&b, B_VTEP, A_VTEP, "192.0.2.2/24")?;
    let _vtep = match variant {
        "kernel" => {
            kernel_vxlan(&a, A_VTEP, B_VTEP, "192.0.2.1/24")?;
            None
        }
        _ => {
            let config = format!(
                "name = \"{}\"\n[underlay]\ninterface = \"eth0\"\nlocal = \"{A_VTEP}\"\n\
                 [[vni]]\nid = 100\nremotes = [\"{B_VTEP}\"]\n[vni.host]\ninterface = \"vx0\"\n\
                 address = \"192.0.2.1/24\"\n",
                lab.name(&format!("{tag}v"))
            );
            Some(lab.start_vtep(&a, &config)?)
        }
    };
    // Both sides know each other's overlay MAC before the flow (no ARP during it).
    let warm = vtep_lab::ns_exec(
        &a,
        "ping",
        &["-c", "3", "-i", "0.2", "-W", "1", "-q", "192.0.2.2"],
    )?;
    if !warm.status.success() {
        bail!("{variant}: A cannot reach B before the failover");
    }
    let flow = Command::new("ip")
        .args(["netns", "exec", &a, "ping", "-q", "-i", INTERVAL, "-c"])
        .arg(FLOW.to_string())
        .args(["-W", "1", "192.0.2.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the flow")?;
    std::thread::sleep(Duration::from_secs(1));
    // R1 loses its way to B, and A's route via R1 is withdrawn.
    ip_in(&r1, &["link", "set", "eth1", "down"])?;
    ip_in(
        &a,
        &[
            "route",
            "del",
            &format!("{B_VTEP}/32"),
            "via",
            "198.18.0.11",
        ],
    )?;
    let out = flow.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let received = text
        .split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .with_context(|| format!("reading ping's summary: {text}"))?;
    Ok(FLOW - received)
}

/// The kernel's VTEP for VNI 100 on `ns` (`local` to `remote`), with overlay address `addr` on
/// its device.
fn kernel_vxlan(ns: &str, local: &str, remote: &str, addr: &str) -> Result<()> {
    ip_in(
        ns,
        &[
            "link", "add", "vx0", "type", "vxlan", "id", "100", "local", local, "remote", remote,
            "dstport", "4789",
        ],
    )?;
    ip_in(ns, &["addr", "add", addr, "dev", "vx0"])?;
    ip_in(ns, &["link", "set", "vx0", "up"])?;
    Ok(())
}
