//! The next-hop cache `vtep up` keeps for the datapath follows the kernel's neighbour table.

use std::time::{Duration, Instant};

use vtep_tests::{
    lab::{cached_next_hop, ip, link, ping},
    output::text,
    packet::{Mac, mac},
};

use crate::{
    ADDR_B,
    support::{S2, assert_ping, s2},
};

/// The MAC and ifindex of `dev` in namespace `ns`.
fn link_of(ns: &str, dev: &str) -> (Mac, u32) {
    let v = link(ns, dev);
    (
        mac(v["address"].as_str().expect("address")),
        v["ifindex"].as_u64().expect("ifindex") as u32,
    )
}

#[test]
fn next_hop_cache_follows_a_changed_neighbour() {
    let S2 {
        lab: _lab,
        a,
        b,
        a1,
        name_a,
        ..
    } = s2();
    assert_ping(&a1, "192.0.2.21", 2);
    let (old_mac, _) = link_of(&b, "eth0");
    let (_, a_eth0) = link_of(&a, "eth0");
    let wait_for_cache = |want: Mac| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = cached_next_hop(&name_a, ADDR_B);
            if got == Some((a_eth0, want)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "host A caches {got:?} for {ADDR_B}, want (eth0 = {a_eth0}, {want})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for_cache(old_mac);

    let overlay_recovers = |why: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ping(&a1, "192.0.2.21", 1) {
            assert!(
                Instant::now() < deadline,
                "overlay a1 -> b1 dead 5 s after {why}; A's neighbours: [{}]",
                text(&ip(&["-n", &a, "neigh"]).stdout).trim()
            );
        }
    };

    // Host B's underlay interface gets another MAC and host A's neighbour entry learns it in
    // place (as from B's gratuitous ARP): encapsulated traffic must follow the kernel's table,
    // not keep going to the MAC that was cached.
    let mac_2 = "02:42:00:00:0b:02";
    ip(&["-n", &b, "link", "set", "dev", "eth0", "address", mac_2]);
    ip(&[
        "-n", &a, "neigh", "replace", ADDR_B, "lladdr", mac_2, "dev", "eth0", "nud", "stale",
    ]);
    overlay_recovers("B's MAC changed and A's neighbour entry was updated");
    wait_for_cache(mac(mac_2));

    // Again, but A's neighbour table forgets B (a flush): the cache entry must go, and the
    // kernel resolve B anew.
    let mac_3 = "02:42:00:00:0b:03";
    ip(&["-n", &b, "link", "set", "dev", "eth0", "address", mac_3]);
    ip(&["-n", &a, "neigh", "flush", "dev", "eth0"]);
    overlay_recovers("B's MAC changed and A's neighbours were flushed");
    wait_for_cache(mac(mac_3));
    assert_ping(&a1, "192.0.2.21", 2);
}

/// A route to a remote VTEP that moves to another next hop reaches the datapath's cache on the
/// kernel's route notification, not at the next once-a-second reconcile: three moves in a row,
/// each cached within 150 ms (with only the tick, each would be by chance about one time in
/// seven). The remote VTEP is B's loopback address, reachable via B or via host C, both on A's
/// underlay segment.
#[test]
fn next_hop_cache_follows_a_route_change_at_once() {
    let mut lab = vtep_tests::lab::Lab::new();
    let [a, b, c] = lab.three_hosts();
    let remote = "198.18.9.2";
    ip(&[
        "-n",
        &b,
        "addr",
        "add",
        &format!("{remote}/32"),
        "dev",
        "lo",
    ]);
    for host in [&b, &c] {
        vtep_tests::lab::sysctl(host, &["net.ipv4.ip_forward=1"]);
    }
    ip(&[
        "-n",
        &c,
        "route",
        "add",
        &format!("{remote}/32"),
        "via",
        "198.18.0.2",
    ]);
    ip(&[
        "-n",
        &a,
        "route",
        "add",
        &format!("{remote}/32"),
        "via",
        "198.18.0.2",
    ]);
    let name = lab.name("va");
    let config = vtep_tests::configs::header(&name, "", "local = \"198.18.0.1\"")
        + &vtep_tests::configs::vni(100, 4789, &[remote]);
    let _vtep = lab.start_vtep(&a, &config);
    let (_, a_eth0) = link_of(&a, "eth0");
    let (b_mac, _) = link_of(&b, "eth0");
    let (c_mac, _) = link_of(&c, "eth0");
    let cached_within = |want: Mac, limit: Duration| {
        let start = Instant::now();
        loop {
            if cached_next_hop(&name, remote) == Some((a_eth0, want)) {
                return Some(start.elapsed());
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    assert!(
        cached_within(b_mac, Duration::from_secs(5)).is_some(),
        "A never cached B as the next hop of {remote}: {:?}",
        cached_next_hop(&name, remote)
    );
    for (via, want) in [
        ("198.18.0.3", c_mac),
        ("198.18.0.2", b_mac),
        ("198.18.0.3", c_mac),
    ] {
        ip(&[
            "-n",
            &a,
            "route",
            "replace",
            &format!("{remote}/32"),
            "via",
            via,
        ]);
        let took = cached_within(want, Duration::from_millis(150));
        assert!(
            took.is_some(),
            "the route to {remote} moved to {via}, but 150 ms later A caches {:?} (want {want})",
            cached_next_hop(&name, remote)
        );
    }
}
