//! `vtep workload add|del` and `vtep port add|del` on a running instance: a workload added on
//! one host is published and reached from the others, and leaves them when deleted; a wrong
//! one is refused naming what is wrong, and changes nothing; both work without a store. A port
//! added carries traffic to the other hosts, and what is behind it is learned, not published.

use std::time::Duration;

use serde_json::Value;
use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, ip, list_netns, ping, ping_with},
    output::{fdb_row, text},
};

use crate::support::{
    A1, A2, B1, C1, Hosts, LEASE_TTL, SETTLE, VNI, VTEPS, reachable_within, start_hosts,
    start_hosts_with, station_key, three_hosts, wait_until,
};

/// A workload added at run time on host a is in etcd, in the FDB of b and c (origin store, at
/// a's VTEP) and reached from their workloads; deleted, it leaves etcd and their FDBs, and
/// the namespace vtep made for it is gone from host a.
#[test]
fn runtime_workload_reaches_the_other_hosts_and_leaves_them_when_deleted() {
    let h = three_hosts();
    let a2 = h.wl_ns(A2);
    h.workload_add(0, A2);
    assert!(
        list_netns().contains(&a2),
        "workload add did not make namespace {a2}"
    );
    let key = station_key(&h.prefix, VTEPS[0], A2.mac);
    assert!(
        wait_until(SETTLE, || h.keys().iter().any(|(k, _)| *k == key)).is_some(),
        "the added workload was not published: no {key} in {:#?}",
        h.keys()
    );
    for (i, wl) in [(1, B1), (2, C1)] {
        h.wait_station(i, A2, VTEPS[0]);
        let ns = h.wl_ns(wl);
        assert!(
            reachable_within(&ns, A2.ip(), SETTLE).is_some(),
            "{} cannot reach the workload added on host a",
            wl.suffix
        );
    }
    // a's own workloads reach each other too (switched on the host).
    assert!(ping(&a2, A1.ip(), 2), "a2 cannot reach a1 on its own host");

    let out = h.cli(0, &["workload", "del", &a2]);
    assert!(
        out.status.success(),
        "workload del {a2}: {}",
        text(&out.stderr)
    );
    for i in [1, 2] {
        let gone = wait_until(SETTLE, || h.lacks_station(i, A2));
        assert!(
            gone.is_some(),
            "host {} still forwards to the deleted workload: {:#?}",
            h.ns[i],
            h.fdb(i)
        );
    }
    assert!(
        wait_until(SETTLE, || !h.keys().iter().any(|(k, _)| *k == key)).is_some(),
        "the deleted workload is still published: {key}"
    );
    assert!(
        !list_netns().contains(&a2),
        "workload del left the namespace {a2} vtep made"
    );
    assert!(
        h.lacks_station(0, A2),
        "a's FDB still has a2: {:#?}",
        h.fdb(0)
    );
}

/// What a refused change must leave as it was: host a's FDB, b's FDB, the lab's namespaces,
/// host a's interfaces and the store's keys.
fn state(h: &Hosts) -> Vec<(&'static str, String)> {
    let links: Value =
        serde_json::from_slice(&ip(&["-n", &h.ns[0], "-j", "link"]).stdout).expect("ip -j link");
    let mut names: Vec<&str> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    names.sort();
    vec![
        ("a's FDB", format!("{:#?}", h.fdb(0))),
        ("b's FDB", format!("{:#?}", h.fdb(1))),
        ("namespaces", format!("{:?}", h.lab.namespaces())),
        ("a's interfaces", format!("{names:?}")),
        ("keys", format!("{:#?}", h.keys())),
    ]
}

/// `vtep workload add` refuses a VNI the instance does not serve, a malformed MAC and a
/// namespace that already holds one of its workloads: each exits non-zero naming the field
/// and the value, and changes nothing (no namespace, interface, FDB entry or key).
#[test]
fn wrong_runtime_workloads_are_refused_changing_nothing() {
    let lab = Lab::new();
    let etcd = lab.etcd();
    let h = start_hosts(lab, etcd, &[&[A1], &[B1]], &["", ""]);
    let (a1, a3) = (h.wl_ns(A1), h.lab.name("a3"));
    let cases: [(&str, Vec<&str>, Vec<&str>); 3] = [
        (
            "a VNI the instance does not serve",
            vec![
                "workload",
                "add",
                &a3,
                "vni",
                "999",
                "address",
                "192.0.2.13/24",
                "mac",
                "02:00:00:00:0a:03",
            ],
            vec!["vni:", "999"],
        ),
        (
            "a malformed MAC",
            vec![
                "workload",
                "add",
                &a3,
                "vni",
                "100",
                "address",
                "192.0.2.13/24",
                "mac",
                "02:00:00:00:0a",
            ],
            vec!["mac:", "02:00:00:00:0a"],
        ),
        (
            "a namespace that has a workload already",
            vec![
                "workload",
                "add",
                &a1,
                "vni",
                "100",
                "address",
                "192.0.2.13/24",
                "mac",
                "02:00:00:00:0a:03",
            ],
            vec!["netns:", &a1],
        ),
    ];
    let mut problems = Vec::new();
    for (what, args, want) in &cases {
        let before = state(&h);
        let out = h.cli(0, args);
        let stderr = text(&out.stderr);
        if out.status.success() {
            problems.push(format!("{what}: accepted: {}{stderr}", text(&out.stdout)));
        }
        for w in want {
            if !stderr.contains(w) {
                problems.push(format!("{what}: the error does not say `{w}`: {stderr}"));
            }
        }
        let after = state(&h);
        for ((part, b), (_, a)) in before.iter().zip(&after) {
            if a != b {
                problems.push(format!("{what}: {part} changed:\n{b}\n->\n{a}"));
            }
        }
        // A wrong change must not leave a workload half made, whatever the state shows.
        if list_netns().contains(&a3) {
            problems.push(format!("{what}: namespace {a3} was made"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // The existing workload is untouched and still reaches the other host.
    assert!(
        ping(&a1, B1.ip(), 2),
        "a1 lost its connectivity after refused adds"
    );
}

/// Without a `[store]` section (remotes in the config, learning), `vtep workload add` makes a
/// workload that reaches the other host, and `vtep workload del` removes it and the namespace
/// vtep made.
#[test]
fn runtime_workload_works_without_a_store() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let (a1, a2, b1) = (
        lab.name(A1.suffix),
        lab.name(A2.suffix),
        lab.name(B1.suffix),
    );
    let cfg_a =
        header(&name_a, "", "") + &vni(VNI, 4789, &[VTEPS[1]]) + &workload(&a1, A1.addr, A1.mac);
    let cfg_b =
        header(&name_b, "", "") + &vni(VNI, 4789, &[VTEPS[0]]) + &workload(&b1, B1.addr, B1.mac);
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    let out = lab.vtep(va).cli(&[
        "workload", "add", &a2, "vni", "100", "address", A2.addr, "mac", A2.mac, "-n", &name_a,
    ]);
    assert!(
        out.status.success(),
        "workload add without a store: {}{}",
        text(&out.stderr),
        lab.vtep(va).log()
    );
    assert!(
        reachable_within(&a2, B1.ip(), Duration::from_secs(5)).is_some(),
        "the workload added at run time cannot reach the other host's"
    );
    let rows = lab.vtep(va).fdb(&name_a);
    let row = fdb_row(&rows, A2.mac, VNI)
        .unwrap_or_else(|| panic!("the added workload is not in a's FDB: {rows:#?}"));
    assert_eq!(row["port"], format!("{a2}-h"), "{row}");

    let out = lab.vtep(va).cli(&["workload", "del", &a2, "-n", &name_a]);
    assert!(
        out.status.success(),
        "workload del without a store: {}",
        text(&out.stderr)
    );
    assert!(
        !list_netns().contains(&a2),
        "workload del left namespace {a2}"
    );
    let rows = lab.vtep(va).fdb(&name_a);
    assert!(
        fdb_row(&rows, A2.mac, VNI).is_none(),
        "the deleted workload is still in a's FDB: {rows:#?}"
    );
    assert!(ping(&a1, B1.ip(), 2), "a1 lost its connectivity");
}

/// `vtep port add` adopts an existing interface into VNI 100 on a running instance with a
/// store: the station behind it reaches the other host (its ARP flooded to the VTEPs the store
/// names) and is learned there, never published (vtep did not make it, so it does not know
/// it). `vtep port del` detaches it: the interface stays, and carries nothing any more.
#[test]
fn runtime_port_carries_traffic_and_its_stations_are_learned_not_published() {
    let lab = Lab::new();
    let etcd = lab.etcd();
    // The proxy off: the adopted station's address is in no store record, so its ARP (and
    // the answers to it) must cross as broadcasts and be learned.
    let h = start_hosts_with(lab, etcd, &[&[A1], &[B1]], &["", ""], LEASE_TTL, false);
    let (port, pw) = (h.lab.name("p"), h.lab.host("pw"));
    let (mac, addr) = ("02:00:00:00:0d:01", "192.0.2.41");
    ip(&[
        "-n", &h.ns[0], "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &pw,
    ]);
    ip(&["-n", &h.ns[0], "link", "set", &port, "mtu", "1450", "up"]);
    ip(&[
        "-n", &pw, "link", "set", "eth0", "address", mac, "mtu", "1450", "up",
    ]);
    ip(&[
        "-n",
        &pw,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        "eth0",
    ]);

    let out = h.cli(0, &["port", "add", &port, "vni", "100"]);
    assert!(out.status.success(), "port add: {}", text(&out.stderr));
    assert!(
        reachable_within(&pw, B1.ip(), SETTLE).is_some(),
        "the station behind the adopted port cannot reach b1"
    );
    let rows = h.fdb(1);
    let row = fdb_row(&rows, mac, VNI)
        .unwrap_or_else(|| panic!("b did not learn the adopted port's station: {rows:#?}"));
    assert_eq!(row["origin"], "learned", "{row}");
    assert_eq!(row["dst"], VTEPS[0], "{row}");
    let keys = h.keys();
    assert!(
        !keys.iter().any(|(k, _)| k.contains(mac)),
        "a station behind an adopted port was published: {keys:#?}"
    );

    let out = h.cli(0, &["port", "del", &port]);
    assert!(out.status.success(), "port del: {}", text(&out.stderr));
    let links = text(&ip(&["-n", &h.ns[0], "-o", "link", "show", &port]).stdout);
    assert!(
        links.contains(&port),
        "port del removed the interface it had adopted"
    );
    assert!(
        !ping_with(&pw, B1.ip(), 2, "0.2", 1),
        "the detached port still carries traffic to b1"
    );
}
