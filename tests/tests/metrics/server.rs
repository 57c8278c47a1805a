//! A real Prometheus server scraping `vtep up`.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::Value;
use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, Prometheus},
};

use crate::support::{A1_IP, ADDR_B, MAC_A1, VNI, metrics_section, scrape, start_with_metrics};

/// How long Prometheus may take to have scraped vtep (every second) and to answer with it.
const SCRAPED_WITHIN: Duration = Duration::from_secs(20);
/// A second VNI, so the series must be told apart by their `vni` label.
const VNI_2: u32 = 5000;

#[test]
fn prometheus_scrapes_vtep_and_queries_the_per_vni_series() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (a1, a2) = (lab.name("a1"), lab.name("a2"));
    let name = lab.name("va");
    let host = start_with_metrics(&mut lab, &a, &name, |port| {
        header(&name, &metrics_section(port), "")
            + &vni(VNI, 4789, &[ADDR_B])
            + &workload(&a1, &format!("{A1_IP}/24"), MAC_A1)
            + &vni(VNI_2, 8472, &[])
            + &workload(&a2, "198.51.100.12/24", "02:00:00:00:0a:02")
    });
    let target = format!("127.0.0.1:{}", host.port);
    let prometheus = lab.prometheus(std::slice::from_ref(&target));

    let want: BTreeSet<(String, String)> = [VNI, VNI_2]
        .iter()
        .flat_map(|v| ["encap", "decap", "local", "flood"].map(|d| (v.to_string(), d.to_string())))
        .collect();
    let deadline = Instant::now() + SCRAPED_WITHIN;
    let series = loop {
        let series = prometheus.query("vtep_vni_packets_total");
        let got: BTreeSet<(String, String)> = series
            .iter()
            .map(|s| {
                let label = |k: &str| s["metric"][k].as_str().unwrap_or_default().to_string();
                (label("vni"), label("direction"))
            })
            .collect();
        if got == want {
            break series;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has {got:?}, not {want:?}, after {SCRAPED_WITHIN:?}; targets: {:?}\n{}",
            prometheus.targets(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for s in &series {
        assert_eq!(s["metric"]["job"], "vtep", "{s}");
        assert_eq!(s["metric"]["instance"], target.as_str(), "{s}");
        assert_eq!(s["metric"]["__name__"], "vtep_vni_packets_total", "{s}");
    }
    // The target is healthy, and the scrape found what it expects of a counter's family.
    let targets = prometheus.targets();
    assert!(
        targets
            .iter()
            .any(|t| t["health"] == "up" && t["lastError"] == ""),
        "{targets:?}"
    );
    let up = prometheus.query("up{job=\"vtep\"}");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let drops = prometheus.query("vtep_drops_total");
    assert_eq!(
        drops.len(),
        vtep_common::drop::DropReason::ALL.len(),
        "{drops:?}"
    );
    dashboard_queries_work(&prometheus, &scrape(host.port).text);
}

/// Every panel query of docs/grafana-dashboard.json (its variables given values) is one
/// Prometheus accepts, and every query (the variables' too) names only metrics vtep serves: a
/// renamed metric would leave a panel empty without an error anywhere. The store's are served
/// only with a `[store]`, which this instance lacks; the unit tests of the exporter name those.
fn dashboard_queries_work(prometheus: &Prometheus, served: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for (expr, promql) in exprs {
        if promql {
            let promql = expr
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*")
                .replace("$vni", ".*");
            // Panics with Prometheus's answer when it refuses the query.
            prometheus.query(&promql);
        }
        for name in metric_names(&expr) {
            let known = served.contains(&format!("# TYPE {name} "))
                || (name.starts_with("vtep_store_") && !name.ends_with("_total"));
            assert!(
                known,
                "the dashboard queries {name}, which vtep does not serve: {expr}"
            );
        }
    }
}

/// The `expr` of every target in `v` (PromQL: true), and the query of every variable
/// (Grafana's `label_values`: false).
fn collect_exprs(v: &Value, out: &mut Vec<(String, bool)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push((s.clone(), true)),
                    ("definition", Value::String(s)) => out.push((s.clone(), false)),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The `vtep_*` metric names in query `expr`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("vtep_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}
