//! What a scrape reports: the instance's maps read at that moment ([`Snapshot::read`]) and
//! written as Prometheus metric families ([`Snapshot`] is a `prometheus-client` collector).
//!
//! No counter or drop reason is named here. The per-VNI families come from
//! [`VniStats::COUNTERS`] (a counter `X_packets` or `X_bytes` is direction `X` of
//! `vtep_vni_packets_total` or `vtep_vni_bytes_total`; any other counter `C` is
//! `vtep_vni_C_total`), the drops from [`DropReason::ALL`], the HELP texts from their
//! descriptions: a counter added to either list is exported without an edit here, as it shows
//! in `vtep stats`.

use std::{collections::BTreeMap, fmt};

use anyhow::{Context as _, Result};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use vtep_common::{drop::DropReason, maps::VniStats};

use crate::{
    ctl::{
        show::{ORIGINS, Provenance},
        stats::{self, NextHopStates, Stats},
    },
    datapath::{batch, maps::Pinned},
    store::Status,
    sys::clock,
};

/// The value of `vtep_build_info`'s `version` label.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A per-VNI counter of [`VniStats::COUNTERS`] whose name ends so is a direction of a family
/// with that suffix: `encap_packets` is `vtep_vni_packets_total{direction="encap"}`.
const DIRECTION_SUFFIXES: [&str; 2] = ["_packets", "_bytes"];

/// Everything one scrape reports, read from the maps (and the store's status file) at once.
#[derive(Debug)]
pub struct Snapshot {
    /// What `vtep stats` prints: per-VNI counters, drops, remote VTEPs, the store's state.
    pub stats: Stats,
    /// FDB entries by origin ([`ORIGINS`]), every origin present.
    pub fdb: BTreeMap<&'static str, u64>,
    /// Proxy entries (IPv4 and IPv6) by origin, likewise.
    pub proxy: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    /// Reads instance `name`'s counters and tables. Fails when the instance's maps cannot be
    /// opened or read (it is stopping, or was removed).
    pub fn read(name: &str) -> Result<Self> {
        let stats = stats::read(name)?;
        let maps = Pinned::of(name);
        let now = clock::monotonic_secs();
        // Read thousands of entries per syscall: a scrape of a million-entry FDB costs what an
        // ageing sweep does, not five times more.
        let mut fdb = by_origin();
        batch::for_each(&maps.fdb()?, |_, e| {
            count(&mut fdb, Provenance::of(e.flags, e.seen, now).origin)
        })
        .context("reading FDB")?;
        let mut proxy = by_origin();
        batch::for_each(&maps.proxy()?, |_, e| {
            count(&mut proxy, Provenance::of(e.flags, e.seen, now).origin)
        })
        .context("reading the proxy table")?;
        batch::for_each(&maps.proxy6()?, |_, e| {
            count(&mut proxy, Provenance::of(e.flags, e.seen, now).origin)
        })
        .context("reading the IPv6 proxy table")?;
        Ok(Self { stats, fdb, proxy })
    }

    /// The snapshot in the Prometheus text format (version 0.0.4).
    pub fn to_text(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("writing to a String does not fail");
        text
    }
}

fn by_origin() -> BTreeMap<&'static str, u64> {
    ORIGINS.iter().map(|o| (*o, 0)).collect()
}

fn count(counts: &mut BTreeMap<&'static str, u64>, origin: &'static str) {
    *counts.entry(origin).or_default() += 1;
}

/// A per-VNI metric family: its name without `vtep_` and `_total`, and the counters it is
/// made of, with their direction label value when it has that label.
struct VniFamily {
    name: String,
    /// (index into [`VniStats::COUNTERS`], direction).
    members: Vec<(usize, Option<&'static str>)>,
}

/// The per-VNI counter families, in the order their first counter comes in
/// [`VniStats::COUNTERS`].
fn vni_families() -> Vec<VniFamily> {
    let mut families: Vec<VniFamily> = Vec::new();
    for (i, counter) in VniStats::COUNTERS.iter().enumerate() {
        let (name, direction) = DIRECTION_SUFFIXES
            .iter()
            .find_map(|suffix| {
                let direction = counter.name.strip_suffix(suffix)?;
                Some((format!("vni{suffix}"), Some(direction)))
            })
            .unwrap_or_else(|| (format!("vni_{}", counter.name), None));
        match families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.members.push((i, direction)),
            None => families.push(VniFamily {
                name,
                members: vec![(i, direction)],
            }),
        }
    }
    families
}

/// A description from a doc comment (lines joined with their leading spaces) as one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The HELP of a family: of its one counter, or (by direction) `what`, then each direction's.
fn vni_family_help(family: &VniFamily) -> String {
    match family.members.as_slice() {
        [(i, None)] => format!("Per VNI: {}", one_line(VniStats::COUNTERS[*i].help)),
        members => {
            let what = if family.name.ends_with("_bytes") {
                "Bytes"
            } else {
                "Frames"
            };
            let parts: Vec<String> = members
                .iter()
                .map(|(i, d)| {
                    format!(
                        "{}: {}",
                        d.unwrap_or_default(),
                        one_line(VniStats::COUNTERS[*i].help)
                    )
                })
                .collect();
            format!("{what} per VNI by direction. {}", parts.join(" "))
        }
    }
}

fn drops_help() -> String {
    let parts: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| format!("{}: {}", r.name(), one_line(r.help())))
        .collect();
    format!(
        "Packets the datapath dropped, by reason. {}",
        parts.join(" ")
    )
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let vnis = &self.stats.vnis;
        for family in vni_families() {
            let name = format!("vtep_{}", family.name);
            let help = vni_family_help(&family);
            let mut m = enc.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for v in vnis {
                let values = v.counters.values();
                for (i, direction) in &family.members {
                    let mut labels = vec![("vni", v.vni.to_string())];
                    if let Some(d) = direction {
                        labels.push(("direction", d.to_string()));
                    }
                    ConstCounter::new(values[*i]).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let mut m = enc.encode_descriptor(
            "vtep_vni_learned_entries",
            "Per VNI: learned FDB entries (as of the last ageing sweep, plus what was learned \
             since).",
            None,
            MetricType::Gauge,
        )?;
        for v in vnis {
            ConstGauge::new(v.learned).encode(m.encode_family(&[("vni", v.vni.to_string())])?)?;
        }

        let help = drops_help();
        let mut m = enc.encode_descriptor("vtep_drops", &help, None, MetricType::Counter)?;
        for reason in DropReason::ALL {
            let n = self.stats.drops.get(reason.name()).copied().unwrap_or(0);
            ConstCounter::new(n).encode(m.encode_family(&[("reason", reason.name())])?)?;
        }
        // Only the (VNI, reason) pairs that dropped something: every reason for each of
        // thousands of VNIs would be tens of thousands of series that stay zero.
        let mut m = enc.encode_descriptor(
            "vtep_vni_drops",
            "Per VNI: packets of the VNI the datapath dropped, by reason (the reasons of \
             vtep_drops_total; a series appears at its first drop). Drops before the VNI is \
             known, such as unknown_vni or a truncated VXLAN header, are in vtep_drops_total only.",
            None,
            MetricType::Counter,
        )?;
        for v in vnis {
            for (reason, n) in &v.drops {
                let labels = [("vni", v.vni.to_string()), ("reason", reason.to_string())];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }

        for (name, help, counts) in [
            (
                "vtep_fdb_entries",
                "FDB entries by origin: config (vtep up, from the config), runtime (vtep fdb), \
                 store (other hosts' stations), learned (from traffic).",
                &self.fdb,
            ),
            (
                "vtep_proxy_entries",
                "ARP/ND proxy entries (IPv4 and IPv6) by origin: config (the config and the \
                 workloads), runtime (vtep neigh), store (other hosts' stations), learned (from \
                 ARP and ND in decapsulated frames).",
                &self.proxy,
            ),
        ] {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (origin, n) in counts {
                ConstGauge::new(*n).encode(m.encode_family(&[("origin", *origin)])?)?;
            }
        }

        let remotes = &self.stats.remotes;
        let mut m = enc.encode_descriptor(
            "vtep_remote_vteps",
            "Remote VTEPs whose underlay next hops vtep keeps resolved (at most \
             underlay.max_remotes), by the state of the next hop: resolved (cached, encapsulation \
             skips the FIB lookup), resolving (a route, its neighbour not resolved: flood copies \
             to it are dropped), unreachable (no usable route), pending (not looked up yet).",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in NextHopStates::NAMES.iter().zip(remotes.states.values()) {
            ConstGauge::new(n).encode(m.encode_family(&[("state", *state)])?)?;
        }
        ConstCounter::new(remotes.refused).encode(enc.encode_descriptor(
            "vtep_remote_vteps_refused",
            "Remote VTEPs not kept resolved because underlay.max_remotes were (each counted when \
             refused anew).",
            None,
            MetricType::Counter,
        )?)?;

        if let Some(store) = &self.stats.store {
            encode_store(&mut enc, store)?;
        }
        if let Some(segmenter) = &self.stats.segmenter {
            ConstCounter::new(segmenter.dropped).encode(enc.encode_descriptor(
                "vtep_segmenter_dropped",
                "Packets the segmenter's veth ends dropped (an IPv6 underlay with UDP checksums \
                 splits GSO frames there). It drops nothing as vtep made it: a count means lost \
                 frames, its MTU or offloads changed by hand.",
                None,
                MetricType::Counter,
            )?)?;
        }

        let mut m = enc.encode_descriptor(
            "vtep_build_info",
            "The vtep build serving these metrics (always 1).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1).encode(m.encode_family(&[("version", VERSION)])?)?;
        Ok(())
    }
}

/// The store client's state: only for an instance with a `[store]`.
fn encode_store(enc: &mut DescriptorEncoder, store: &Status) -> fmt::Result {
    let gauges: [(&str, &str, i64); 5] = [
        (
            "vtep_store_up",
            "Whether the store client is connected to etcd (1) or not (0: connecting, or \
             unreachable and retrying).",
            i64::from(store.state == "connected"),
        ),
        (
            "vtep_store_failed_attempts",
            "Failed attempts to reach etcd since the last success.",
            i64::try_from(store.failures).unwrap_or(i64::MAX),
        ),
        (
            "vtep_store_hosts",
            "Hosts in the store's view, this one included.",
            i64::try_from(store.hosts).unwrap_or(i64::MAX),
        ),
        (
            "vtep_store_stations",
            "Stations in the store's view, this host's included.",
            i64::try_from(store.stations).unwrap_or(i64::MAX),
        ),
        (
            "vtep_store_revision",
            "The etcd revision the store client saw last.",
            store.revision,
        ),
    ];
    for (name, help, value) in gauges {
        ConstGauge::new(value).encode(enc.encode_descriptor(
            name,
            help,
            None,
            MetricType::Gauge,
        )?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use vtep_common::maps::VniStats;

    use super::*;
    use crate::ctl::stats::{RemoteVteps, VniCounters};

    fn snapshot(store: Option<Status>) -> Snapshot {
        let mut drops = BTreeMap::new();
        for r in DropReason::ALL {
            drops.insert(r.name(), 0);
        }
        drops.insert("unknown_vni", 3);
        let mut fdb = by_origin();
        fdb.insert("config", 2);
        fdb.insert("learned", 1);
        Snapshot {
            stats: Stats {
                vnis: vec![
                    VniCounters {
                        vni: 100,
                        counters: VniStats {
                            encap_packets: 5,
                            encap_bytes: 500,
                            flood_packets: 2,
                            learn_refused: 1,
                            ..Default::default()
                        },
                        learned: 4,
                        drops: BTreeMap::from([("no_route", 6), ("inner_too_big", 1)]),
                    },
                    VniCounters {
                        vni: 5000,
                        counters: VniStats::default(),
                        learned: 0,
                        drops: BTreeMap::new(),
                    },
                ],
                drops,
                remotes: RemoteVteps {
                    kept: 2,
                    refused: 7,
                    states: NextHopStates {
                        resolved: 1,
                        resolving: 0,
                        unreachable: 1,
                        pending: 0,
                    },
                },
                links: None,
                store,
                segmenter: None,
            },
            fdb,
            proxy: by_origin(),
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn per_vni_counters_are_families_by_direction() {
        let text = snapshot(None).to_text();
        let samples = lines(&text);
        for want in [
            r#"vtep_vni_packets_total{vni="100",direction="encap"} 5"#,
            r#"vtep_vni_packets_total{vni="100",direction="flood"} 2"#,
            r#"vtep_vni_packets_total{vni="5000",direction="local"} 0"#,
            r#"vtep_vni_bytes_total{vni="100",direction="encap"} 500"#,
            r#"vtep_vni_learn_refused_total{vni="100"} 1"#,
            r#"vtep_vni_proxy_replies_total{vni="5000"} 0"#,
            r#"vtep_vni_learned_entries{vni="100"} 4"#,
        ] {
            assert!(samples.contains(&want), "{want} missing:\n{text}");
        }
        // flood has no byte counter: no made-up series.
        assert!(!text.contains(r#"vtep_vni_bytes_total{vni="100",direction="flood"}"#));
        assert!(text.contains("# TYPE vtep_vni_packets_total counter\n"));
        assert!(text.contains("# TYPE vtep_vni_learned_entries gauge\n"));
    }

    /// Every counter of the list `vtep stats` prints is exported, once per VNI: none is left
    /// out or invented.
    #[test]
    fn every_vni_counter_is_exported_once_per_vni() {
        let text = snapshot(None).to_text();
        let per_vni = |vni: &str| {
            lines(&text)
                .iter()
                .filter(|l| l.starts_with("vtep_vni_") && !l.starts_with("vtep_vni_learned"))
                .filter(|l| !l.starts_with("vtep_vni_drops"))
                .filter(|l| l.contains(&format!("vni=\"{vni}\"")))
                .count()
        };
        assert_eq!(per_vni("100"), VniStats::COUNTERS.len());
        assert_eq!(per_vni("5000"), VniStats::COUNTERS.len());
    }

    #[test]
    fn every_drop_reason_is_present_with_its_help() {
        let text = snapshot(None).to_text();
        for r in DropReason::ALL {
            let value = if r.name() == "unknown_vni" { 3 } else { 0 };
            let want = format!("vtep_drops_total{{reason=\"{}\"}} {value}", r.name());
            assert!(lines(&text).contains(&want.as_str()), "{want} missing");
        }
        let help = text
            .lines()
            .find(|l| l.starts_with("# HELP vtep_drops_total "))
            .expect("HELP of the drops");
        assert!(help.contains(&one_line(DropReason::GsoNeedsChecksum.help())));
    }

    /// A VNI's drops are exported by reason, only the pairs that dropped something.
    #[test]
    fn per_vni_drops_are_exported_where_they_happened() {
        let text = snapshot(None).to_text();
        let samples = lines(&text);
        for want in [
            r#"vtep_vni_drops_total{vni="100",reason="no_route"} 6"#,
            r#"vtep_vni_drops_total{vni="100",reason="inner_too_big"} 1"#,
        ] {
            assert!(samples.contains(&want), "{want} missing:\n{text}");
        }
        let series = samples
            .iter()
            .filter(|l| l.starts_with("vtep_vni_drops_total"));
        assert_eq!(series.count(), 2, "{text}");
        assert!(text.contains("# TYPE vtep_vni_drops_total counter\n"));
    }

    #[test]
    fn tables_remotes_and_build_are_gauges_with_every_label_value() {
        let text = snapshot(None).to_text();
        let samples = lines(&text);
        for want in [
            r#"vtep_fdb_entries{origin="config"} 2"#,
            r#"vtep_fdb_entries{origin="runtime"} 0"#,
            r#"vtep_fdb_entries{origin="store"} 0"#,
            r#"vtep_fdb_entries{origin="learned"} 1"#,
            r#"vtep_proxy_entries{origin="config"} 0"#,
            r#"vtep_remote_vteps{state="resolved"} 1"#,
            r#"vtep_remote_vteps{state="resolving"} 0"#,
            r#"vtep_remote_vteps{state="unreachable"} 1"#,
            r#"vtep_remote_vteps{state="pending"} 0"#,
            "vtep_remote_vteps_refused_total 7",
        ] {
            assert!(samples.contains(&want), "{want} missing:\n{text}");
        }
        assert!(samples.contains(&format!("vtep_build_info{{version=\"{VERSION}\"}} 1").as_str()));
        // No store: no store series at all, rather than a misleading 0. No segmenter either.
        assert!(!text.contains("vtep_store_"), "{text}");
        assert!(!text.contains("vtep_segmenter_"), "{text}");
    }

    #[test]
    fn the_segmenter_is_reported_when_there_is_one() {
        let mut s = snapshot(None);
        s.stats.segmenter = Some(crate::ctl::stats::Segmenter {
            interfaces: ["vgso1o".into(), "vgso1b".into()],
            dropped: 544,
        });
        let text = s.to_text();
        assert!(
            lines(&text).contains(&"vtep_segmenter_dropped_total 544"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE vtep_segmenter_dropped_total counter\n"),
            "{text}"
        );
    }

    #[test]
    fn the_store_is_reported_when_there_is_one() {
        let status = Status {
            state: "connected".into(),
            revision: 42,
            hosts: 3,
            stations: 9,
            failures: 0,
            ..Default::default()
        };
        let text = snapshot(Some(status.clone())).to_text();
        for want in [
            "vtep_store_up 1",
            "vtep_store_failed_attempts 0",
            "vtep_store_hosts 3",
            "vtep_store_stations 9",
            "vtep_store_revision 42",
        ] {
            assert!(lines(&text).contains(&want), "{want} missing:\n{text}");
        }
        let down = Status {
            state: "unreachable".into(),
            failures: 4,
            ..status
        };
        let text = snapshot(Some(down)).to_text();
        assert!(lines(&text).contains(&"vtep_store_up 0"));
        assert!(lines(&text).contains(&"vtep_store_failed_attempts 4"));
    }

    /// What the Prometheus naming conventions ask: counters end in `_total`, nothing else
    /// does, every family has a HELP and a TYPE, names are snake case under `vtep_`.
    #[test]
    fn names_follow_the_conventions() {
        let text = snapshot(Some(Status::default())).to_text();
        let mut families = 0;
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut words = line.split(' ').skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(name.starts_with("vtep_"), "{line}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{line}"
            );
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} lacks HELP"
            );
            families += 1;
        }
        assert!(families >= 15, "{text}");
    }
}
