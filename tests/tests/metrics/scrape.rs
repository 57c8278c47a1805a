//! Scraping `/metrics` of a running instance while traffic flows.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use vtep_common::{drop::DropReason, maps::VniStats};
use vtep_tests::{lab::ping_with, output::text};

use vtep_tests::{
    configs::{header, vni, workload},
    lab::Lab,
};

use crate::support::{
    A1_IP, ADDR_A, ADDR_B, B1_IP, MAC_A1, MAC_B1, VNI, config, get, metrics_section, pair,
    reachable, scrape, series, start_with_metrics,
};

/// Echoes a1 sends b1 between the scrapes.
const PINGS: u32 = 20;
/// The smallest frame an echo is: 14 (Ethernet) + 20 (IPv4) + 8 (ICMP) + 56 (ping's payload).
const ECHO_FRAME: f64 = 98.0;
const DIRECTIONS: [&str; 4] = ["encap", "decap", "local", "flood"];

#[test]
fn counters_follow_the_traffic_and_are_what_vtep_stats_prints() {
    let mut p = pair();
    assert!(reachable(&p.a1, B1_IP), "a1 cannot reach b1");
    let vni = VNI.to_string();
    let (a, b) = (scrape(p.a.port), scrape(p.b.port));
    for s in [&a, &b] {
        for direction in DIRECTIONS {
            s.value(
                "vtep_vni_packets_total",
                &[("vni", &vni), ("direction", direction)],
            );
        }
        // Every reason, also those that never happened.
        for reason in DropReason::ALL {
            s.value("vtep_drops_total", &[("reason", reason.name())]);
        }
    }

    assert!(
        ping_with(&p.a1, B1_IP, PINGS, "0.05", 2),
        "echoes lost a1 → b1"
    );
    let (a2, b2) = (scrape(p.a.port), scrape(p.b.port));
    let packets = |dir| [("vni", vni.as_str()), ("direction", dir)];
    let n = f64::from(PINGS);
    // a sends the requests and receives the replies; b the other way round.
    for (host, before, after) in [("a", &a, &a2), ("b", &b, &b2)] {
        for dir in ["encap", "decap"] {
            let grew = after.growth(before, "vtep_vni_packets_total", &packets(dir));
            assert!(
                grew >= n,
                "{host}: {dir} packets grew by {grew}, {PINGS} sent"
            );
            let bytes = after.growth(before, "vtep_vni_bytes_total", &packets(dir));
            assert!(
                bytes >= n * ECHO_FRAME,
                "{host}: {dir} bytes grew by {bytes}"
            );
        }
    }
    // a learned b1 behind b from the replies; a1's own entry is the config's.
    let origin = |o| [("origin", o)];
    assert!(a2.value("vtep_fdb_entries", &origin("learned")) >= 1.0);
    assert!(a2.value("vtep_fdb_entries", &origin("config")) >= 1.0);
    assert_eq!(a2.value("vtep_fdb_entries", &origin("store")), 0.0);
    assert!(a2.value("vtep_vni_learned_entries", &[("vni", &vni)]) >= 1.0);
    // b's next hop answered: resolved, and no VTEP in another state.
    assert_eq!(a2.value("vtep_remote_vteps", &[("state", "resolved")]), 1.0);
    for state in ["resolving", "unreachable", "pending"] {
        assert_eq!(a2.value("vtep_remote_vteps", &[("state", state)]), 0.0);
    }
    assert_eq!(a2.value("vtep_remote_vteps_refused_total", &[]), 0.0);
    assert_eq!(
        a2.value("vtep_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
    // No store in the config: no store series.
    assert!(!a2.text.contains("vtep_store_"), "{}", a2.text);

    // The same numbers as `vtep stats`: read before and after a scrape (a workload may send
    // something of its own meanwhile), each sample is between the two.
    let stats_before = p.lab.vtep(p.a.id).stats(&p.a.name);
    let s = scrape(p.a.port);
    let stats_after = p.lab.vtep(p.a.id).stats(&p.a.name);
    let within = |what: &str, got: f64, lo: &serde_json::Value, hi: &serde_json::Value| {
        let (lo, hi) = (lo.as_f64().unwrap(), hi.as_f64().unwrap());
        assert!(
            lo <= got && got <= hi,
            "{what}: {got} not within {lo}..={hi}"
        );
    };
    for reason in DropReason::ALL {
        let got = s.value("vtep_drops_total", &[("reason", reason.name())]);
        let key = reason.name();
        within(
            key,
            got,
            &stats_before["drops"][key],
            &stats_after["drops"][key],
        );
    }
    for counter in VniStats::COUNTERS {
        // The exporter's mapping, written out: the test must not share the code under test.
        let (name, labels) = match counter.name.rsplit_once('_') {
            Some((dir, kind @ ("packets" | "bytes"))) => (
                format!("vtep_vni_{kind}_total"),
                vec![("vni", vni.clone()), ("direction", dir.to_string())],
            ),
            _ => (
                format!("vtep_vni_{}_total", counter.name),
                vec![("vni", vni.clone())],
            ),
        };
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let got = s.value(&name, &labels);
        let at = |stats: &serde_json::Value| stats["vnis"][0][counter.name].clone();
        within(
            &series(&name, &labels),
            got,
            &at(&stats_before),
            &at(&stats_after),
        );
    }
    promtool_accepts(&s.text);

    // Only /metrics is served.
    let other = get(p.a.port, "/");
    assert!(other.status.starts_with("HTTP/1.1 404"), "{}", other.status);
}

/// `promtool check metrics` (its linter: naming, HELP, counters' `_total`) finds nothing in
/// `text`.
#[track_caller]
fn promtool_accepts(text_in: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; `cargo xtask setup` installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text_in.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics ({}): {}{}\n{text_in}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The remote VTEPs by the state of their next hop, and the drops of a VNI's packets under that
/// VNI (issue 13: drops were only counted globally, remote VTEPs only as kept): a's VNI 100
/// floods to b (resolved), to an on-link address nobody answers ARP for (resolving) and to one
/// it has no route to (unreachable). Every ARP a1 sends loses its copies to the last two, as
/// `nexthop_unresolved` and `no_route` of VNI 100; b is reached all the same.
#[test]
fn remote_vteps_by_next_hop_state_and_drops_by_vni() {
    const SILENT: &str = "198.18.0.99";
    const NO_ROUTE: &str = "203.0.113.9";
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let ha = start_with_metrics(&mut lab, &a, &name_a, |p| {
        header(&name_a, &metrics_section(p), "")
            + &vni(VNI, 4789, &[ADDR_B, SILENT, NO_ROUTE])
            + &workload(&a1, &format!("{A1_IP}/24"), MAC_A1)
    });
    lab.start_vtep(&b, &config(&name_b, "", ADDR_A, &b1, B1_IP, MAC_B1));
    assert!(reachable(&a1, B1_IP), "a1 cannot reach b1");

    // The states settle within a reconcile or two (the silent neighbour fails after the
    // kernel's ARP retries, and stays not resolved).
    let want = [
        ("resolved", 1),
        ("resolving", 1),
        ("unreachable", 1),
        ("pending", 0),
    ];
    let settled = (0..50).any(|_| {
        let remotes = lab.vtep(ha.id).stats(&name_a)["remotes"].clone();
        let ok = remotes["kept"] == 3 && want.iter().all(|(k, n)| remotes[*k] == *n);
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        ok
    });
    let stats = lab.vtep(ha.id).stats(&name_a);
    assert!(settled, "remote VTEPs by state: {}", stats["remotes"]);
    let s = scrape(ha.port);
    for (state, n) in want {
        assert_eq!(
            s.value("vtep_remote_vteps", &[("state", state)]),
            f64::from(n),
            "{state}"
        );
    }

    // A broadcast from a1 (ARP for an address nobody has) floods to all three remotes.
    let before = lab.vtep(ha.id).stats(&name_a);
    assert!(!ping_with(&a1, "192.0.2.99", 3, "0.2", 2));
    let after = lab.vtep(ha.id).stats(&name_a);
    let vni_drops = |stats: &serde_json::Value, reason: &str| {
        stats["vnis"][0]["drops_by_reason"][reason]
            .as_u64()
            .unwrap_or(0)
    };
    for reason in ["no_route", "nexthop_unresolved"] {
        let grew = vni_drops(&after, reason) - vni_drops(&before, reason);
        assert!(
            grew >= 3,
            "VNI {VNI}'s {reason} drops grew by {grew}: {after}"
        );
        // Each counted under the reason too, by which the VNI's are at most as many.
        assert!(after["drops"][reason].as_u64().unwrap() >= vni_drops(&after, reason));
    }
    assert_eq!(
        after["vnis"][0]["drops"].as_u64().unwrap(),
        after["vnis"][0]["drops_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    );
    let s = scrape(ha.port);
    let vni = VNI.to_string();
    let exported = s.value(
        "vtep_vni_drops_total",
        &[("vni", &vni), ("reason", "no_route")],
    );
    assert!(
        exported >= vni_drops(&after, "no_route") as f64,
        "{}",
        s.text
    );
    // No series for what VNI 100 never dropped.
    assert!(
        !s.text.contains(&format!(
            "vtep_vni_drops_total{{vni=\"{VNI}\",reason=\"unknown_vni\"}}"
        )),
        "{}",
        s.text
    );
    promtool_accepts(&s.text);

    // The text names the VNI beside the reason.
    let out = lab.vtep(ha.id).cli(&["stats", "-n", &name_a]);
    let text_out = text(&out.stdout);
    let line = text_out
        .lines()
        .find(|l| l.trim_start().starts_with("no_route"))
        .unwrap_or_else(|| panic!("{text_out}"));
    assert!(line.contains(&format!("(vni {VNI} ")), "{line}");
    assert!(
        text_out.contains("remotes: kept 3 (resolved 1, resolving 1, unreachable 1, pending 0)"),
        "{text_out}"
    );
}
