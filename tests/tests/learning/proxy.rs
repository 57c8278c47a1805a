//! The ARP and neighbour discovery proxy of a running instance: answers on the host, reports
//! unknown addresses, and `vtep neigh` changes its table.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::ArpOperation;
use serde_json::Value;
use vtep_tests::{
    configs::{fdb, header, vni, workload},
    lab::{Capture, Lab, ip, ns_exec, ping},
    output::text,
    packet::{arp_of, parse_vxlan, solicitation_target},
};

use crate::{
    ADDR, IP, MAC, VNI,
    monitor::{start_monitor, stop_monitor},
    support::{config, ping_quick, quiet},
};

/// Captures the VXLAN packets host a sends.
fn capture_vxlan_from_a(lab: &Lab, a: &str) -> Capture {
    lab.capture(
        a,
        "eth0",
        &format!("udp dst port 4789 and src host {}", ADDR[0]),
    )
}

/// The frame inside VXLAN packet `f`.
fn inner_of(f: &[u8]) -> &[u8] {
    parse_vxlan(f)
        .unwrap_or_else(|e| panic!("not VXLAN: {e}: {f:02x?}"))
        .inner
}

#[test]
fn arp_proxy_answers_known_addresses_on_the_host_and_reports_unknown_ones() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    let neigh = format!(
        "[[vni.neigh]]\nip = \"{}\"\nmac = \"{}\"\n\n",
        IP[1], MAC[1]
    );
    let va = lab.start_vtep(
        &a,
        &config(
            &lab,
            0,
            2,
            "proxy = true\nl3miss = true\n",
            &(fdb(MAC[1], ADDR[1]) + &neigh),
        ),
    );
    lab.start_vtep(&b, &config(&lab, 1, 2, "", ""));
    let name_a = lab.name("v0");
    let w0 = lab.name("w0");

    // a's workload resolves b's address: answered on host a, nothing crosses the underlay but
    // the unicast ping itself.
    let cap = capture_vxlan_from_a(&lab, &a);
    assert!(ping(&w0, IP[1], 2), "ping through the proxied ARP");
    let frames = cap.frames();
    assert!(!frames.is_empty(), "the pings went out as VXLAN");
    let target: Ipv4Addr = IP[1].parse().unwrap();
    for f in &frames {
        // (a's answer to b's own request for a's address is unicast and may well cross.)
        let arp_request_for_b = arp_of(inner_of(f)).is_some_and(|arp| {
            arp.operation == ArpOperation::REQUEST && arp.target_ipv4_addr() == target
        });
        assert!(!arp_request_for_b, "a's ARP request left host a: {f:02x?}");
    }
    let stats = lab.vtep(va).stats(&name_a);
    let v = &stats["vnis"][0];
    assert!(v["proxy_replies"].as_u64().unwrap() >= 1, "{stats}");
    let answered = text(&ip(&["-n", &w0, "neigh", "show", IP[1]]).stdout);
    assert!(
        answered.contains(MAC[1]),
        "a's workload learned {}: {answered}",
        MAC[1]
    );

    // An address nobody knows: flooded and reported.
    let monitor = start_monitor(&a, &name_a);
    let _ = ping_quick(&w0, "192.0.2.99", 1);
    let events = stop_monitor(monitor);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "l3miss" && e["ip"] == "192.0.2.99" && e["vni"] == VNI),
        "no l3miss for 192.0.2.99: {events:?}"
    );

    // An agent answers it: the next request is answered on the host.
    let unknown_mac = "02:00:00:00:0d:99";
    let vtep = lab.vtep(va);
    let out = vtep.cli(&[
        "neigh",
        "add",
        "192.0.2.99",
        "lladdr",
        unknown_mac,
        "vni",
        "300",
        "-n",
        &name_a,
    ]);
    assert!(out.status.success(), "neigh add: {}", text(&out.stderr));
    let before = text(&vtep.cli(&["neigh", "show", "-n", &name_a, "-j"]).stdout);
    for (args, problem) in [
        (
            vec![
                "neigh",
                "add",
                "192.0.2.98",
                "lladdr",
                "zz:00",
                "vni",
                "300",
            ],
            "lladdr",
        ),
        (
            vec![
                "neigh",
                "add",
                "192.0.2.98",
                "lladdr",
                unknown_mac,
                "vni",
                "301",
            ],
            "VNI 301",
        ),
        (
            vec![
                "neigh",
                "add",
                "192.0.2.300",
                "lladdr",
                unknown_mac,
                "vni",
                "300",
            ],
            "ip",
        ),
        (vec!["neigh", "del", IP[0], "vni", "300"], "config"),
    ] {
        let mut full = args.clone();
        full.extend(["-n", &name_a]);
        let out = vtep.cli(&full);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            text(&out.stderr).contains(problem),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let after = text(&vtep.cli(&["neigh", "show", "-n", &name_a, "-j"]).stdout);
    assert_eq!(before, after, "refused commands changed the table");
    let rows: Vec<Value> = serde_json::from_str(&after).unwrap();
    assert!(
        rows.iter().any(|r| r["ip"] == "192.0.2.99"
            && r["lladdr"] == unknown_mac
            && r["origin"] == "runtime"),
        "{rows:?}"
    );
    let _ = ping_quick(&w0, "192.0.2.99", 1);
    let resolved = text(&ip(&["-n", &w0, "neigh", "show", "192.0.2.99"]).stdout);
    assert!(resolved.contains(unknown_mac), "{resolved}");
}

#[test]
fn proxy_answers_ipv6_neighbour_solicitations_on_the_host() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (w0, w1) = (lab.name("w0"), lab.name("w1"));
    let (ip6_0, ip6_1) = ("fd00::11", "fd00::21");
    let neigh = format!("[[vni.neigh]]\nip = \"{ip6_1}\"\nmac = \"{}\"\n\n", MAC[1]);
    for (i, host) in [&a, &b].into_iter().enumerate() {
        let extra = if i == 0 { "proxy = true\n" } else { "" };
        let tail = if i == 0 {
            fdb(MAC[1], ADDR[1]) + &neigh
        } else {
            fdb(MAC[0], ADDR[0])
        };
        let cfg = header(&lab.name(&format!("v{i}")), "", "")
            + &vni(VNI, 4789, &[ADDR[1 - i]])
            + extra
            + "\n"
            + &workload(
                &lab.name(&format!("w{i}")),
                &format!("{}/24", IP[i]),
                MAC[i],
            )
            + &tail;
        lab.start_vtep(host, &cfg);
    }
    for (w, addr) in [(&w0, ip6_0), (&w1, ip6_1)] {
        ip(&[
            "-n",
            w,
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
    }
    let cap = capture_vxlan_from_a(&lab, &a);
    let ok = ns_exec(&w0, "ping", &["-6", "-c", "2", "-W", "2", "-q", ip6_1])
        .status
        .success();
    assert!(ok, "ping6 a -> b through the proxied solicitation");
    let target: Ipv6Addr = ip6_1.parse().unwrap();
    for f in cap.frames() {
        let solicit_for_b = solicitation_target(inner_of(&f)) == Some(target);
        assert!(
            !solicit_for_b,
            "a's solicitation for b left host a: {f:02x?}"
        );
    }
    let learned = text(&ip(&["-n", &w0, "-6", "neigh", "show", ip6_1]).stdout);
    assert!(learned.contains(MAC[1]), "{learned}");
}
