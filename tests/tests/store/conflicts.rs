//! Two VTEPs claiming one MAC in one VNI (docs/store.md): the claim made first (the lowest
//! create revision) wins on every host alike, whatever was written last; when it goes, the
//! other takes over; and a MAC a host has locally always wins there.

use std::time::Duration;

use serde_json::json;
use vtep_tests::lab::Lab;

use crate::support::{
    A1, B1, Hosts, SETTLE, VNI, VTEPS, host_key, start_hosts, station_key, wait_until,
};

/// Two VTEPs that are no hosts of the lab; the test writes their records.
const FIRST: &str = "198.18.0.9";
const SECOND: &str = "198.18.0.8";
const MAC: &str = "02:00:00:00:0e:01";

/// Publishes `vtep` as a host of VNI 100.
fn put_host(h: &Hosts, vtep: &str) {
    let host = json!({"host": format!("ghost-{vtep}"), "vtep": vtep,
        "vnis": [{"vni": VNI, "dstport": 4789}]});
    h.etcd.put(&host_key(&h.prefix, vtep), &host.to_string());
}

/// Publishes `mac` (address `ip`) as a station behind `vtep`.
fn claim(h: &Hosts, vtep: &str, mac: &str, ip: &str) {
    let station = json!({"vni": VNI, "mac": mac, "vtep": vtep, "addresses": [ip]});
    h.etcd
        .put(&station_key(&h.prefix, vtep, mac), &station.to_string());
}

/// Where host `i` sends `mac` of VNI 100: the `dst` of its FDB row, if any.
fn dst(h: &Hosts, i: usize, mac: &str) -> Option<String> {
    h.fdb(i)
        .iter()
        .find(|r| r["mac"] == mac && r["vni"] == VNI)
        .and_then(|r| r["dst"].as_str().map(str::to_string))
}

/// Waits until both hosts send `mac` to `vtep`, then checks they still do half a second later
/// (no flapping between the claims); panics saying what each host does otherwise.
#[track_caller]
fn assert_both_send_to(h: &Hosts, mac: &str, vtep: &str, why: &str) {
    let both = |h: &Hosts| (0..2).all(|i| dst(h, i, mac).as_deref() == Some(vtep));
    let settled = wait_until(SETTLE, || both(h)).is_some() && {
        std::thread::sleep(Duration::from_millis(500));
        both(h)
    };
    assert!(
        settled,
        "{why}: {mac} should go to {vtep} on every host; a sends it to {:?}, b to {:?}",
        dst(h, 0, mac),
        dst(h, 1, mac)
    );
}

#[test]
fn the_first_claim_of_a_mac_wins_on_every_host() {
    let lab = Lab::new();
    let etcd = lab.etcd();
    let h = start_hosts(lab, etcd, &[&[A1], &[B1]], &["", ""]);
    put_host(&h, FIRST);
    put_host(&h, SECOND);
    claim(&h, FIRST, MAC, "192.0.2.99");
    claim(&h, SECOND, MAC, "192.0.2.99");
    assert_both_send_to(&h, MAC, FIRST, "two claims, the first one wins");
    // The claim made first is gone: the other one takes over.
    h.etcd.del(&station_key(&h.prefix, FIRST, MAC));
    assert_both_send_to(&h, MAC, SECOND, "the first claim went");
    // Claimed again, it is now the later claim: written last, it still does not win.
    claim(&h, FIRST, MAC, "192.0.2.99");
    assert_both_send_to(&h, MAC, SECOND, "the first claim came back, later");
}

/// A VTEP claiming the MAC of host a's workload: a keeps its own workload local (a MAC a host
/// has locally always wins there), and b keeps sending it to a, whose claim came first.
#[test]
fn a_local_mac_wins_over_a_claim_from_the_store() {
    let lab = Lab::new();
    let etcd = lab.etcd();
    let h = start_hosts(lab, etcd, &[&[A1], &[B1]], &["", ""]);
    put_host(&h, FIRST);
    claim(&h, FIRST, A1.mac, A1.ip());
    // Something to wait for that comes after the claim: a marker station of the same VTEP.
    claim(&h, FIRST, MAC, "192.0.2.99");
    assert_both_send_to(&h, MAC, FIRST, "the marker station");
    let rows = h.fdb(0);
    let own = rows
        .iter()
        .find(|r| r["mac"] == A1.mac && r["vni"] == VNI)
        .unwrap_or_else(|| panic!("host a lost its own workload to a claim: {rows:#?}"));
    assert!(
        own["port"].is_string() && own["origin"] != "store",
        "host a's own workload was replaced by another VTEP's claim: {own}"
    );
    assert_eq!(
        dst(&h, 1, A1.mac).as_deref(),
        Some(VTEPS[0]),
        "b followed a later claim of a1's MAC instead of a's, which came first"
    );
}
