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
