//! `vtep monitor --drops`: a packet the datapath drops shows up with its reason, where it came
//! from and what it carried, as it happens.

use std::time::Duration;

use serde_json::Value;
use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, ping_with, vtep_run},
    output::text,
};

/// Host a (VNI 100 to `remotes_a`, workload wa at 192.0.2.1) and host b (VNI `vni_b` to a,
/// workload wb at 192.0.2.2), and vtep a's instance name.
struct Hosts {
    lab: Lab,
    name_a: String,
    wa: String,
    wb: String,
}

fn two_hosts(remotes_a: &[&str], vni_b: u32) -> Hosts {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let (wa, wb) = (lab.name("wa"), lab.name("wb"));
    lab.start_vtep(
        &a,
        &(header(&name_a, "", "")
            + &vni(100, 4789, remotes_a)
            + &workload(&wa, "192.0.2.1/24", "02:00:00:00:0a:01")),
    );
    lab.start_vtep(
        &b,
        &(header(&name_b, "", "")
            + &vni(vni_b, 4789, &["198.18.0.1"])
            + &workload(&wb, "192.0.2.2/24", "02:00:00:00:0b:01")),
    );
    Hosts {
        lab,
        name_a,
        wa,
        wb,
    }
}

/// `vtep monitor --drops -j --count 1` on instance `name`, running until it has printed one.
fn one_drop(name: &str) -> std::thread::JoinHandle<Result<std::process::Output, String>> {
    let name = name.to_string();
    std::thread::spawn(move || {
        vtep_run(
            &["monitor", "--drops", "-j", "--count", "1", "-n", &name],
            Duration::from_secs(20),
        )
    })
}

/// Host b floods VNI 999 (its workload's ARP and IPv6 multicast), which host a does not serve: a's underlay program drops it as
/// `unknown_vni`, and the monitor on a says so with b as the remote VTEP and the VNI.
#[test]
fn monitor_drops_shows_an_unknown_vni_from_its_remote_vtep() {
    let Hosts {
        lab: _lab,
        name_a,
        wa: _,
        wb,
    } = two_hosts(&["198.18.0.2"], 999);
    let monitor = one_drop(&name_a);
    // b's ARP requests for 192.0.2.1 go to a in VNI 999 until the monitor has one.
    while !monitor.is_finished() {
        ping_with(&wb, "192.0.2.1", 1, "0.2", 1);
    }
    let out = monitor.join().unwrap().expect("vtep monitor --drops");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let drop: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(drop["event"], "drop", "{drop}");
    assert_eq!(drop["reason"], "unknown_vni", "{drop}");
    assert_eq!(drop["hook"], "underlay", "{drop}");
    assert_eq!(drop["port"], "eth0", "{drop}");
    assert_eq!(drop["vni"], 999, "{drop}");
    assert_eq!(drop["remote"], "198.18.0.2", "{drop}");
    let summary = drop["summary"].as_str().unwrap();
    // b's workload's frame (its ARP, or first its IPv6 multicast), inside VNI 999.
    assert!(
        summary.starts_with("vxlan 198.18.0.2 > 198.18.0.1:4789 vni 999: 02:00:00:00:0b:01 > "),
        "{summary}"
    );
    // The counters say the same.
    let stats = vtep_run(&["stats", "-j", "-n", &name_a], Duration::from_secs(10)).unwrap();
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(
        stats["drops"]["unknown_vni"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

/// A flood copy that cannot go shows up as the copy it was: host a floods VNI 100 to b and to
/// an address its underlay has no route to; the monitor shows the copy to that address `to` it,
/// encapsulated (VXLAN to it, with a's workload's frame inside), at a's workload port, while
/// the ping to b's workload is answered (its copy went).
#[test]
fn monitor_drops_shows_a_lost_flood_copy_with_the_remote_it_was_for() {
    const NOWHERE: &str = "203.0.113.9";
    let Hosts {
        lab: _lab,
        name_a,
        wa,
        wb: _,
    } = two_hosts(&["198.18.0.2", NOWHERE], 100);
    let monitor = one_drop(&name_a);
    // wa's ARP requests (each ping after a flush of its neighbours) are flooded until the
    // monitor has one lost copy.
    let mut answered = false;
    while !monitor.is_finished() {
        vtep_tests::lab::ip(&["-n", &wa, "neigh", "flush", "all"]);
        answered |= ping_with(&wa, "192.0.2.2", 1, "0.2", 1);
    }
    let out = monitor.join().unwrap().expect("vtep monitor --drops");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let drop: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(drop["reason"], "no_route", "{drop}");
    assert_eq!(drop["hook"], "port", "{drop}");
    assert_eq!(drop["vni"], 100, "{drop}");
    assert_eq!(drop["remote"], NOWHERE, "{drop}");
    let summary = drop["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!(
            "vxlan 198.18.0.1 > {NOWHERE}:4789 vni 100: 02:00:00:00:0a:01 > "
        )),
        "{summary}"
    );
    assert!(
        answered || ping_with(&wa, "192.0.2.2", 2, "0.2", 2),
        "the copy to b went"
    );
}
