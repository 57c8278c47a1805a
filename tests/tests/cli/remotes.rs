//! Remote VTEPs named at run time (issue 9 item 1): `vtep up` keeps one resolved while an FDB
//! entry or a flood list names it and lets it go when the last one goes; with
//! `underlay.accept = "known"`, `vtep fdb` changes which VTEPs are accepted.

use std::time::{Duration, Instant};

use vtep_tests::{
    configs::{self, vni, workload},
    lab::{Lab, cached_next_hop, ip, managed_neighbours as managed},
    output::text,
};

use crate::{
    ADDR_A, ADDR_B, MAC_A1, MAC_B1, VNI, header,
    support::{drops, fdb_cmd, ping_fast, static_neighbour, vtep_ok},
};

const STATION: &str = "02:00:00:00:0d:01";
const ZEROS: &str = "00:00:00:00:00:00";

/// Waits up to 4 s (a few reconciles) for `ok`; panics with `what` and `state()` otherwise.
#[track_caller]
fn within_seconds(what: &str, mut ok: impl FnMut() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(4);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: {}", state());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bug: a remote VTEP named at run time stayed resolved (a managed neighbour entry the
/// kernel keeps probing, a next-hop cache entry) after `fdb replace`, `fdb del` or a flood-list
/// `del` took its last reference away, until the next restart. A neighbour entry vtep did not
/// make is never removed.
#[test]
fn remote_vteps_removed_at_run_time_stop_being_resolved() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let a1 = lab.name("a1");
    let name = lab.name("va");
    let cfg =
        header(&name, "") + &vni(VNI, 4789, &[ADDR_B]) + &workload(&a1, "192.0.2.11/24", MAC_A1);
    let id = lab.start_vtep(&a, &cfg);
    let neighbours = || text(&ip(&["-n", &a, "neigh"]).stdout);
    let has = |ip: &str| managed(&a).iter().any(|m| m == ip);

    vtep_ok(
        &mut lab,
        id,
        &name,
        &fdb_cmd("add", STATION, "198.18.0.3", "100"),
    );
    within_seconds(
        "198.18.0.3 not kept resolved after fdb add",
        || has("198.18.0.3"),
        neighbours,
    );
    vtep_ok(
        &mut lab,
        id,
        &name,
        &fdb_cmd("replace", STATION, "198.18.0.4", "100"),
    );
    within_seconds(
        "fdb replace: 198.18.0.3 still resolved or 198.18.0.4 not",
        || !has("198.18.0.3") && has("198.18.0.4"),
        neighbours,
    );
    vtep_ok(&mut lab, id, &name, &["fdb", "del", STATION, "vni", "100"]);
    within_seconds(
        "198.18.0.4 still resolved after fdb del",
        || !has("198.18.0.4"),
        neighbours,
    );

    vtep_ok(
        &mut lab,
        id,
        &name,
        &fdb_cmd("append", ZEROS, "198.18.0.5", "100"),
    );
    within_seconds(
        "198.18.0.5 not resolved after append",
        || has("198.18.0.5"),
        neighbours,
    );
    vtep_ok(
        &mut lab,
        id,
        &name,
        &fdb_cmd("del", ZEROS, "198.18.0.5", "100"),
    );
    within_seconds(
        "198.18.0.5 still resolved after flood-list del",
        || !has("198.18.0.5"),
        neighbours,
    );

    // A VTEP whose neighbour entry the operator made: cached while named, uncached after, and
    // the operator's entry stays.
    static_neighbour(&a, "198.18.0.6", "02:00:00:00:0e:06");
    vtep_ok(
        &mut lab,
        id,
        &name,
        &fdb_cmd("add", STATION, "198.18.0.6", "100"),
    );
    let cached = || cached_next_hop(&name, "198.18.0.6").is_some();
    within_seconds("198.18.0.6 not cached", cached, neighbours);
    vtep_ok(&mut lab, id, &name, &["fdb", "del", STATION, "vni", "100"]);
    within_seconds(
        "198.18.0.6 still cached after fdb del",
        || !cached(),
        neighbours,
    );
    assert!(
        neighbours().contains("198.18.0.6 dev eth0 lladdr 02:00:00:00:0e:06 PERMANENT"),
        "the operator's neighbour entry was removed: {}",
        neighbours()
    );
    let remotes = lab.vtep(id).stats(&name)["remotes"].clone();
    assert_eq!(remotes["kept"], 1, "only the configured VTEP: {remotes}");
}

/// With `underlay.accept = "known"`, a VTEP is accepted once `vtep fdb append` names it, and
/// dropped again (as `source_not_allowed`) once `vtep fdb del` takes its last reference away.
#[test]
fn accept_known_follows_the_vteps_named_at_run_time() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    // A names no VTEP: it accepts nobody's VXLAN until one is named.
    let va = lab.start_vtep(
        &a,
        &(configs::header(&name_a, "", "accept = \"known\"")
            + &vni(VNI, 4789, &[])
            + &workload(&a1, "192.0.2.11/24", MAC_A1)),
    );
    let _vb = lab.start_vtep(
        &b,
        &(header(&name_b, "")
            + &vni(VNI, 4789, &[ADDR_A])
            + &workload(&b1, "192.0.2.21/24", MAC_B1)),
    );
    static_neighbour(&a1, "192.0.2.21", MAC_B1);
    static_neighbour(&b1, "192.0.2.11", MAC_A1);

    let refused_before = drops(&mut lab, va, &name_a, "source_not_allowed");
    assert!(
        !ping_fast(&b1, "192.0.2.11", 2),
        "A accepted B before B was named"
    );
    assert!(drops(&mut lab, va, &name_a, "source_not_allowed") >= refused_before + 2);

    vtep_ok(
        &mut lab,
        va,
        &name_a,
        &fdb_cmd("append", ZEROS, ADDR_B, "100"),
    );
    assert!(
        ping_fast(&b1, "192.0.2.11", 3),
        "B's VXLAN not accepted once named"
    );

    vtep_ok(&mut lab, va, &name_a, &fdb_cmd("del", ZEROS, ADDR_B, "100"));
    // Within a reconcile or two B's /32 goes: pings fail again, counted.
    let deadline = Instant::now() + Duration::from_secs(4);
    while ping_fast(&b1, "192.0.2.11", 1) {
        assert!(
            Instant::now() < deadline,
            "B still accepted after its last reference went"
        );
    }
    let refused = drops(&mut lab, va, &name_a, "source_not_allowed");
    assert!(!ping_fast(&b1, "192.0.2.11", 2));
    assert!(drops(&mut lab, va, &name_a, "source_not_allowed") >= refused + 2);
}
