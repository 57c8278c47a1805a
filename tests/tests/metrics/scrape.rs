//! Scraping `/metrics` of a running instance while traffic flows.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use vtep_common::{drop::DropReason, maps::VniStats};
use vtep_tests::{lab::ping_with, output::text};

use crate::support::{B1_IP, VNI, get, pair, reachable, scrape, series};

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
    assert_eq!(a2.value("vtep_remote_vteps", &[("state", "kept")]), 1.0);
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
