//! Failures the store must ride out (docs/store.md, "Failures"): a host that crashes (its
//! records expire with its lease), a host that stops (its records go at once), etcd gone for a
//! while (traffic keeps flowing, changes meanwhile catch up), and a host whose watch fell
//! behind a compaction (it re-lists and ends up with what the store holds).

use std::{
    collections::BTreeSet,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::{Value, json};
use vtep_tests::{
    lab::{Lab, PingFlow, ping},
    output::text,
};

use crate::support::{
    A1, B1, C1, C2, Hosts, LEASE_TTL, SETTLE, VNI, VTEPS, host_key, reachable_within, start_hosts,
    start_hosts_ttl, station_key, three_hosts, wait_until,
};

/// Host a is killed with SIGKILL (no cleanup runs, its lease is not revoked): its workload
/// leaves b's and c's FDB once the lease expires, within `lease_ttl` + 1 s.
#[test]
fn crashed_host_stations_expire_within_the_lease() {
    let mut h = three_hosts();
    // The bound docs/store.md sets is the lease plus a second (etcd revokes expired leases
    // every 500 ms, the watch delivers the deletes, the hosts remove the entries). 300 ms more
    // for how this test sees it: each poll runs `vtep fdb show` on two hosts (~100 ms
    // together here), so the moment is seen up to a poll late.
    let limit = Duration::from_secs(LEASE_TTL + 1) + Duration::from_millis(300);
    let start = Instant::now();
    h.lab.vtep(h.ids[0]).kill();
    let gone = wait_until(limit * 3, || {
        h.lacks_station(1, A1) && h.lacks_station(2, A1)
    });
    let Some(gone) = gone else {
        panic!(
            "a crashed host's workload stayed in the others' FDBs for {:?} (lease {LEASE_TTL} \
             s): traffic to it is sent to a dead host.\nb: {:#?}\nkeys: {:#?}",
            start.elapsed(),
            h.fdb(1),
            h.keys()
        )
    };
    eprintln!("a crashed host's workload left the others' FDBs {gone:?} after the kill");
    assert!(
        gone <= limit,
        "a crashed host's workload left the others' FDBs after {gone:?}, more than the lease \
         ({LEASE_TTL} s) + 1 s"
    );
    assert_eq!(
        h.keys_of(VTEPS[0]),
        Vec::<String>::new(),
        "the crashed host's records are still in etcd after its lease expired"
    );
    for i in [1, 2] {
        let flood = h.flood_list(i);
        assert!(
            !flood.contains(VTEPS[0]),
            "host {} still floods to the crashed host: {flood:?}",
            h.ns[i]
        );
    }
    // The hosts that live still reach each other.
    assert!(ping(&h.wl_ns(B1), C1.ip(), 2), "b1 cannot reach c1");
}

/// Host a stops cleanly (SIGTERM): its lease is revoked, so its records leave etcd at once
/// (within a second, not a lease later) and its workload leaves b's and c's FDB.
#[test]
fn clean_stop_deletes_the_host_records_at_once() {
    let mut h = three_hosts();
    assert!(!h.keys_of(VTEPS[0]).is_empty(), "host a published nothing");
    let start = Instant::now();
    h.lab.vtep_ref(h.ids[0]).signal(Signal::SIGTERM);
    let gone = wait_until(Duration::from_secs(10), || h.keys_of(VTEPS[0]).is_empty());
    let Some(gone) = gone else {
        panic!(
            "10 s after SIGTERM host a's records are still in etcd: {:#?}\nlog: {}",
            h.keys_of(VTEPS[0]),
            h.log(0)
        )
    };
    eprintln!("host a's records left etcd {gone:?} after SIGTERM");
    assert!(
        gone < Duration::from_secs(1),
        "host a's records left etcd {gone:?} after its clean stop: not at once (lease not \
         revoked, left to expire)"
    );
    let left = wait_until(Duration::from_secs(1), || {
        h.lacks_station(1, A1) && h.lacks_station(2, A1)
    });
    assert!(
        left.is_some(),
        "a second after host a's records left etcd the others still forward to its workload: \
         b {:#?}\nc {:#?}",
        h.fdb(1),
        h.fdb(2)
    );
    let status = h.lab.vtep(h.ids[0]).wait(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "vtep on a exited {status:?} after SIGTERM, {:?} after it: {}",
        start.elapsed(),
        h.log(0)
    );
}

/// `vtep stats -j`'s store state of every host, for messages.
fn states(h: &Hosts) -> Vec<Value> {
    (0..h.ns.len()).map(|i| h.store_status(i)).collect()
}

/// etcd is stopped for 10 s while a1 pings b1 every 10 ms: not one echo is lost (the datapath
/// keeps what the store gave it), every host says the store is unreachable, and a workload
/// added on c meanwhile works there at once and reaches a and b once etcd is back.
#[test]
fn etcd_outage_loses_no_traffic_and_changes_meanwhile_catch_up() {
    let h = three_hosts();
    // 1300 echoes, 13 s at least (ping is slower than its interval on a busy machine): 1 s
    // before the outage, its 10 s, and the return.
    let flow = PingFlow::start(&h.wl_ns(A1), B1.ip(), 1300, "0.01").expect("ping flow");
    sleep(Duration::from_secs(1));
    h.etcd.stop();
    let down = Instant::now();
    let seen = wait_until(Duration::from_secs(5), || {
        (0..3).all(|i| h.store_status(i)["state"] == "unreachable")
    });
    assert!(
        seen.is_some(),
        "5 s into the etcd outage not every host says the store is unreachable: {:#?}",
        states(&h)
    );
    let out = h.cli(0, &["stats"]);
    let stats = text(&out.stdout);
    assert!(
        stats
            .lines()
            .any(|l| l.contains("store") && l.contains("unreachable")),
        "`vtep stats` does not say the store is unreachable:\n{stats}"
    );
    // A change while etcd is away applies on the host at once.
    h.workload_add(2, C2);
    assert!(
        ping(&h.wl_ns(C2), C1.ip(), 2),
        "a workload added during the outage cannot reach its own host's"
    );
    sleep((down + Duration::from_secs(10)).saturating_duration_since(Instant::now()));
    h.etcd.restart();
    let back = Instant::now();
    // The store is retried with a backoff doubling from 0.5 s to at most 5 s (README; code:
    // MAX_BACKOFF), so the next try comes at most 5 s after etcd returns; then the host lists,
    // publishes, and the others' watches deliver at once. 5 s more for a loaded machine.
    let reconnect = Duration::from_secs(10);
    let connected = wait_until(reconnect, || {
        (0..3).all(|i| h.store_status(i)["state"] == "connected")
    });
    assert!(
        connected.is_some(),
        "{reconnect:?} after etcd returned not every host is connected: {:#?}",
        states(&h)
    );
    eprintln!(
        "every host connected {:?} after etcd returned",
        back.elapsed()
    );
    for (i, wl) in [(0, A1), (1, B1)] {
        let got = wait_until(reconnect, || h.has_station(i, C2, VTEPS[2]));
        eprintln!(
            "the workload added during the outage reached {} {:?} after etcd returned",
            h.ns[i],
            back.elapsed()
        );
        assert!(
            got.is_some(),
            "the workload added on c during the outage never reached host {}'s FDB ({:?} \
             after etcd returned): {:#?}",
            h.ns[i],
            back.elapsed(),
            h.fdb(i)
        );
        assert!(
            reachable_within(&h.wl_ns(wl), C2.ip(), SETTLE).is_some(),
            "{} cannot reach the workload added during the outage",
            wl.suffix
        );
    }
    // The flow ran across the outage and the return (it ends a few seconds after).
    let result = flow.finish().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        result.lost(),
        0,
        "{} of {} echoes a1 -> b1 lost around a 10 s etcd outage: the datapath did not keep \
         what the store had given it",
        result.lost(),
        result.sent
    );
    // What was there before the outage is still there.
    assert!(ping(&h.wl_ns(A1), C1.ip(), 2), "a1 cannot reach c1");
}

/// A VTEP that is no host of the lab: records the test writes itself (without a lease), so it
/// alone decides when they change.
const GHOST: &str = "198.18.0.9";
const G1: &str = "02:00:00:00:09:01";
const G2: &str = "02:00:00:00:09:02";
const G3: &str = "02:00:00:00:09:03";

/// Writes the ghost VTEP's station `mac` (address 192.0.2.`last`).
fn put_ghost_station(h: &Hosts, mac: &str, last: u8) {
    let value =
        json!({"vni": VNI, "mac": mac, "vtep": GHOST, "addresses": [format!("192.0.2.{last}")]});
    h.etcd
        .put(&station_key(&h.prefix, GHOST, mac), &value.to_string());
}

/// Publishes the ghost host with stations G1 and G2, and waits until host a has both.
fn ghost_with_two_stations(h: &Hosts) {
    let ghost = json!({"host": "ghost", "vtep": GHOST, "vnis": [{"vni": VNI, "dstport": 4789}]});
    h.etcd.put(&host_key(&h.prefix, GHOST), &ghost.to_string());
    put_ghost_station(h, G1, 91);
    put_ghost_station(h, G2, 92);
    assert!(
        wait_until(SETTLE, || has_ghost(h, G1) && has_ghost(h, G2)).is_some(),
        "host a never got the ghost host's stations: {:#?}",
        h.fdb(0)
    );
}

/// True when host a has the ghost's station `mac` from the store.
fn has_ghost(h: &Hosts, mac: &str) -> bool {
    h.store_rows(0)
        .contains(&(mac.to_string(), u64::from(VNI), GHOST.to_string()))
}

/// The changes host a misses while it is behind: G2 deleted, G3 added, and more history
/// after them; then everything up to now compacted away.
fn change_and_compact(h: &Hosts) {
    h.etcd.del(&station_key(&h.prefix, GHOST, G2));
    put_ghost_station(h, G3, 93);
    let ghost = |n: usize| {
        json!({"host": format!("ghost{n}"), "vtep": GHOST, "vnis": [{"vni": VNI, "dstport": 4789}]})
            .to_string()
    };
    let history: Vec<_> = (0..20)
        .map(|n| (host_key(&h.prefix, GHOST), ghost(n)))
        .collect();
    h.etcd.put_many(&history);
    h.etcd.compact(h.etcd.revision());
}

/// The store's view for host a: every station of another VTEP in VNI 100.
fn store_view_for_a(h: &Hosts) -> BTreeSet<(String, u64, String)> {
    h.keys()
        .iter()
        .filter_map(|(_, v)| serde_json::from_str::<Value>(v).ok())
        .filter(|v| v["mac"].is_string() && v["vtep"] != VTEPS[0] && v["vni"] == VNI)
        .map(|v| {
            (
                v["mac"].as_str().unwrap_or_default().to_string(),
                u64::from(VNI),
                v["vtep"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until host a's store entries are the store's view (with G3 in it); panics saying
/// what a lacks or has too much, with its log, when they are not within `limit`.
#[track_caller]
fn assert_a_catches_up(h: &Hosts, how: &str, limit: Duration) {
    let caught_up = wait_until(limit, || {
        let want = store_view_for_a(h);
        want.contains(&(G3.to_string(), u64::from(VNI), GHOST.to_string()))
            && h.store_rows(0) == want
    });
    eprintln!("host a matched the store {caught_up:?} after {how}");
    if caught_up.is_none() {
        let got = h.store_rows(0);
        panic!(
            "host a's FDB does not match the store {limit:?} after {how} ({}{}):\nstore \
             entries {got:#?}\nstore {:#?}\nlog: {}",
            if got.iter().any(|r| r.0 == G2) {
                "the deleted station is still there, traffic to it goes to a stale VTEP; "
            } else {
                ""
            },
            if got.iter().any(|r| r.0 == G3) {
                ""
            } else {
                "the new station is missing"
            },
            store_view_for_a(h),
            h.log(0)
        );
    }
}

/// True while process `pid` has an established TCP connection to 127.0.0.1:`port` (the store
/// client runs in the namespace vtep was started from: this one).
fn connected_to(pid: u32, port: u16) -> bool {
    let out = Command::new("ss")
        .args(["-Htnp", "state", "established", "dst", "127.0.0.1"])
        .args(["dport", "=", &format!(":{port}")])
        .output()
        .expect("ss");
    text(&out.stdout).contains(&format!("pid={pid},"))
}

/// Stops host a's vtep with SIGSTOP; the guard sends SIGCONT when dropped, so a test that
/// fails meanwhile does not leave it stopped (the lab's cleanup asks it to stop cleanly).
fn pause_a(h: &Hosts) -> Resume {
    let pid = h.lab.vtep_ref(h.ids[0]).pid().expect("vtep on a runs");
    assert!(
        connected_to(pid, h.etcd.port()),
        "vtep on a has no connection to etcd"
    );
    h.lab.vtep_ref(h.ids[0]).signal(Signal::SIGSTOP);
    Resume(pid)
}

struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(Pid::from_raw(self.0 as i32), Signal::SIGCONT);
    }
}

/// Host a's watch falls behind a compacted revision while its connection stays up: its vtep
/// is paused (SIGSTOP) and etcd sends its watch more than the client's HTTP/2 window takes
/// (2 MiB of changes to a key vtep ignores, then hundreds more), so the watch stalls and
/// etcd marks it a slow watcher; meanwhile a station a has is deleted, another added, and
/// the history compacted past all of it. Resumed, a's watch is told it was compacted
/// (nothing else ends its session: the lease outlives the pause); a must list again and end
/// up with what the store holds: the deleted station gone from its FDB, the new one there.
#[test]
fn live_watch_behind_a_compaction_lists_again() {
    let lab = Lab::new();
    let etcd = lab.etcd();
    // A lease far longer than the pause: the compaction alone must bring a up to date.
    let h = start_hosts_ttl(lab, etcd, &[&[A1], &[B1]], &["", ""], 60);
    ghost_with_two_stations(&h);
    let resume = pause_a(&h);
    let filler = format!("{}/v1/filler", h.prefix);
    let big = "x".repeat(64 << 10);
    h.etcd.put_many(&vec![(filler.clone(), big); 48]);
    h.etcd.put_many(&vec![(filler, "x".to_string()); 300]);
    let slow = "etcd_debugging_mvcc_slow_watcher_total";
    assert!(
        wait_until(Duration::from_secs(10), || h.etcd.metric(slow) >= 1.0).is_some(),
        "etcd has no slow watcher after 3 MiB of changes to a paused vtep's watch: the test \
         could not make the watch fall behind"
    );
    change_and_compact(&h);
    let behind = h.etcd.metric(slow);
    drop(resume);
    // The compacted watch is reported as soon as a reads its watch again, and listing takes
    // milliseconds (~0.1 s here). 2 s is slack for a loaded machine, and short of what a host
    // that ignores the compaction shows: its cancelled watch is silent, and it catches up
    // only when something else ends its session (5.8-8 s in a mutation check, by chance).
    let limit = Duration::from_secs(2);
    assert_a_catches_up(&h, "its live watch fell behind a compaction", limit);
    assert!(
        behind >= 1.0,
        "a's watch caught up before the compaction: the test did not make it fall behind"
    );
    // The lease held: a's records never left, b still reaches a1.
    assert!(h.has_station(1, A1, VTEPS[0]), "b lost a1: {:#?}", h.fdb(1));
    assert!(
        ping(&h.wl_ns(A1), B1.ip(), 2),
        "a1 cannot reach b1 after host a caught up"
    );
}

/// Host a is cut off (paused until etcd drops its connection) while a station it has is
/// deleted, another added and the history compacted: it cannot resume its watch where it
/// was, and its lease expired meanwhile. Resumed, it reconnects, lists again and ends up with
/// what the store holds, and publishes its workload again under a new lease.
///
/// etcd pings idle clients every second here and drops those that do not answer within a
/// second (`--grpc-keepalive-*`): a paused process answers nothing, so etcd closes its
/// connection.
#[test]
fn host_cut_off_while_the_history_was_compacted_catches_up() {
    let lab = Lab::new();
    let etcd = lab.etcd_with(
        None,
        &[
            "--grpc-keepalive-interval=1s",
            "--grpc-keepalive-timeout=1s",
        ],
    );
    let h = start_hosts(lab, etcd, &[&[A1], &[B1]], &["", ""]);
    ghost_with_two_stations(&h);
    let pid = h.lab.vtep_ref(h.ids[0]).pid().expect("vtep on a runs");
    let resume = pause_a(&h);
    let dropped = wait_until(Duration::from_secs(15), || {
        !connected_to(pid, h.etcd.port())
    });
    assert!(
        dropped.is_some(),
        "etcd kept the connection of the paused vtep for 15 s: the test cannot cut it off"
    );
    change_and_compact(&h);
    drop(resume);
    assert_a_catches_up(&h, "it was cut off while the history was compacted", SETTLE);
    // Its lease expired while it was paused: it published its workload again.
    h.wait_station(1, A1, VTEPS[0]);
    assert!(
        ping(&h.wl_ns(A1), B1.ip(), 2),
        "a1 cannot reach b1 after host a caught up"
    );
}
