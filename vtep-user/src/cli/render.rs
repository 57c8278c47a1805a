//! Everything `vtep` prints about a running instance, as text or JSON, in one place. Each text
//! function returns whole lines (each ending in a newline), for `print!`.

use anyhow::Result;
use serde::Serialize;

use crate::{
    ctl::{
        monitor::Event,
        show::{FdbRow, Provenance, ProxyRow, VniRow},
        stats::{NextHopStates, Stats, VniCounters},
    },
    instance::Links,
};

/// How a command prints what it read: text for people, JSON for scripts (compact, one line, or
/// pretty), with the same field names in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Pretty,
}

/// Prints `value` in `format`, text as `text` renders it. Fails only when the value cannot be
/// serialized.
pub fn print<T: Serialize + ?Sized>(
    value: &T,
    format: Format,
    text: impl FnOnce(&T) -> String,
) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(value)?),
        Format::Pretty => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Text => print!("{}", text(value)),
    }
    Ok(())
}

/// `vtep monitor --drops`: `drop REASON on PORT (HOOK)[ vni N][ from|to VTEP] LEN bytes:
/// SUMMARY`, `to` for a flood copy dropped at a port (encapsulated for that remote VTEP).
pub fn drop(d: &crate::ctl::drops::Drop) -> String {
    let vni = d.vni.map(|v| format!(" vni {v}")).unwrap_or_default();
    let way = if d.hook == "port" { "to" } else { "from" };
    let remote = d.remote.map(|r| format!(" {way} {r}")).unwrap_or_default();
    format!(
        "drop {} on {} ({}){vni}{remote} {} bytes: {}",
        d.reason, d.port, d.hook, d.len, d.summary
    )
}

/// `vtep fdb show`: `MAC vni N dst IP|port NAME STATE ORIGIN[ age Ns]`, like `bridge fdb show`.
pub fn fdb(rows: &[FdbRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let target = match (&r.dst, &r.port) {
            (Some(dst), _) => format!("dst {dst}"),
            (None, Some(port)) => format!("port {port}"),
            (None, None) => String::new(),
        };
        let p = provenance(&r.provenance);
        out += &format!("{} vni {} {target} {p}\n", r.mac, r.vni);
    }
    out
}

/// `vtep neigh show`: `IP vni N lladdr MAC STATE ORIGIN[ age Ns]`, like `ip neigh show`.
pub fn proxy(rows: &[ProxyRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let p = provenance(&r.provenance);
        out += &format!("{} vni {} lladdr {} {p}\n", r.ip, r.vni, r.lladdr);
    }
    out
}

/// `STATE ORIGIN`, then ` age Ns` for learned entries (the JSON's `age`): the end of an FDB or
/// proxy line.
fn provenance(p: &Provenance) -> String {
    let age = p.age.map(|a| format!(" age {a}s")).unwrap_or_default();
    format!("{} {}{age}", p.state, p.origin)
}

/// `vtep vni show`: a table with a header, `-` for an empty list.
pub fn vnis(rows: &[VniRow]) -> String {
    let mut out = format!(
        "{:>8} {:>7} {:>11}  {:<30} remotes\n",
        "vni", "dstport", "fdb_entries", "ports"
    );
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(",")
        }
    };
    for r in rows {
        out += &format!(
            "{:>8} {:>7} {:>11}  {:<30} {}\n",
            r.vni,
            r.dstport,
            r.fdb_entries,
            list(r.ports.clone()),
            list(r.remotes.iter().map(ToString::to_string).collect())
        );
    }
    out
}

/// One column of the `vtep stats` table: its heading, its width, and which of
/// [`VniCounters::fields`] it shows.
struct Column {
    heading: String,
    width: usize,
    field: usize,
}

/// The columns of `vtep stats`, made from [`VniCounters::fields`]: `vni`, the traffic counters
/// (`_packets`, `_bytes`), the learned-entry count, then the other counters. A counter added to
/// [`vtep_common::maps::VniStats`] gets a column headed by its name without an edit here.
fn stats_columns() -> Vec<Column> {
    let names: Vec<&str> = VniCounters::default().fields().map(|(n, _)| n).collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    // A stable sort: each group keeps the order of the list.
    order.sort_by_key(|&i| match names[i] {
        "vni" => 0,
        n if n.ends_with("_packets") || n.ends_with("_bytes") => 1,
        "learned" => 2,
        _ => 3,
    });
    order
        .into_iter()
        .map(|field| {
            let name = names[field];
            let heading = stats_heading(name);
            let width = match name {
                "vni" => 8,
                n if n.ends_with("_bytes") => 14,
                n if n.ends_with("_packets") => 12,
                _ => 9,
            };
            Column {
                width: width.max(heading.len()),
                heading,
                field,
            }
        })
        .collect()
}

/// The heading over counter `name`: its name, as the JSON has it.
fn stats_heading(name: &str) -> String {
    name.to_string()
}

/// `vtep stats`: a row of counters per VNI, every drop reason with its count, the remote VTEPs
/// kept resolved, then the state of the underlay and the ports that are gone.
pub fn stats(stats: &Stats) -> String {
    let columns = stats_columns();
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = columns
            .iter()
            .zip(cells)
            .map(|(c, cell)| format!("{cell:>w$}", w = c.width))
            .collect();
        cells.join(" ") + "\n"
    };
    let mut out = line(columns.iter().map(|c| c.heading.clone()).collect());
    for v in &stats.vnis {
        let values: Vec<u64> = v.fields().map(|(_, value)| value).collect();
        out += &line(
            columns
                .iter()
                .map(|c| values[c.field].to_string())
                .collect(),
        );
    }
    out += "drops:\n";
    for (reason, n) in &stats.drops {
        // Which VNIs' packets these were (drops before the VNI is known are in none).
        let by_vni: Vec<String> = stats
            .vnis
            .iter()
            .filter_map(|v| Some(format!("vni {} {}", v.vni, v.drops.get(reason)?)))
            .collect();
        let by_vni = match by_vni.is_empty() {
            true => String::new(),
            false => format!(" ({})", by_vni.join(", ")),
        };
        out += &format!("  {reason:<18} {n}{by_vni}\n");
    }
    let r = &stats.remotes;
    let states: Vec<String> = NextHopStates::NAMES
        .iter()
        .zip(r.states.values())
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    out += &format!(
        "remotes: kept {} ({}) refused {} (remote VTEPs kept resolved, by next-hop state; refused over underlay.max_remotes)\n",
        r.kept,
        states.join(", "),
        r.refused
    );
    if let Some(links) = &stats.links {
        out += &self::links(links);
    }
    if let Some(s) = &stats.segmenter {
        out += &format!(
            "segmenter: {} {} dropped {}\n",
            s.interfaces[0], s.interfaces[1], s.dropped
        );
    }
    if let Some(store) = &stats.store {
        out += &self::store(store);
    }
    out
}

/// The `store:` line of `vtep stats`: the client's state and what it sees.
fn store(s: &crate::store::Status) -> String {
    let since = crate::store::Status::age(s.since);
    let mut out = format!(
        "store: {} ({}) for {since}s",
        s.state,
        s.endpoints.join(",")
    );
    match s.state.as_str() {
        "connected" => {
            out += &format!(
                ", revision {}, {} host(s), {} station(s)",
                s.revision, s.hosts, s.stations
            )
        }
        _ => {
            if let Some(e) = &s.error {
                out += &format!(", {} failed attempt(s), last: {e}", s.failures);
            }
            if let Some(ms) = s.retry_in_ms {
                out += &format!(", next attempt within {:.1}s", ms as f64 / 1000.0);
            }
        }
    }
    out + "\n"
}

/// The `links:` section of `vtep stats`: `underlay NAME STATE`, then a line per gone port.
fn links(links: &Links) -> String {
    let mut out = "links:\n".to_string();
    let u = &links.underlay;
    if !u.name.is_empty() {
        out += &format!("  underlay {} {}\n", u.name, u.state);
    }
    for p in &links.missing_ports {
        let netns = p
            .netns
            .as_ref()
            .map(|ns| format!(", workload namespace {ns}"))
            .unwrap_or_default();
        out += &format!("  port {} missing (vni {}{netns})\n", p.port, p.vni);
    }
    out
}

/// One `vtep monitor` line: `l2miss vni N mac MAC port NAME` or `l3miss vni N ip IP port NAME`.
pub fn event(e: &Event) -> String {
    let what = match (&e.mac, &e.ip) {
        (Some(mac), _) => format!("mac {mac}"),
        (None, Some(ip)) => format!("ip {ip}"),
        (None, None) => String::new(),
    };
    format!("{} vni {} {what} port {}", e.event, e.vni, e.port)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use vtep_common::maps::VniStats;

    use super::*;
    use crate::ctl::stats::{NextHopStates, RemoteVteps};

    /// The `vtep stats` table is headed by the names `vtep stats -j` uses, as iproute2 keeps
    /// its text and JSON names alike.
    #[test]
    fn stats_text_keeps_its_layout() {
        let s = Stats {
            store: None,
            vnis: vec![VniCounters {
                vni: 100,
                counters: VniStats {
                    encap_packets: 1,
                    encap_bytes: 2,
                    decap_packets: 3,
                    decap_bytes: 4,
                    local_packets: 5,
                    local_bytes: 6,
                    flood_packets: 7,
                    learn_refused: 8,
                    proxy_replies: 9,
                    ..Default::default()
                },
                learned: 10,
                drops: BTreeMap::from([("no_route", 2)]),
            }],
            drops: BTreeMap::from([("no_route", 11), ("unknown_vni", 12)]),
            remotes: RemoteVteps {
                kept: 13,
                refused: 14,
                states: NextHopStates {
                    resolved: 10,
                    resolving: 1,
                    unreachable: 2,
                    pending: 0,
                },
            },
            links: None,
            segmenter: None,
        };
        // Headed by the JSON's names (`vtep stats -j`), each column as wide as its name.
        let header = format!(
            "{:>8} {:>13} {:>14} {:>13} {:>14} {:>13} {:>14} {:>13} {:>9} {:>13} {:>13} {:>12} {:>9}",
            "vni",
            "encap_packets",
            "encap_bytes",
            "decap_packets",
            "decap_bytes",
            "local_packets",
            "local_bytes",
            "flood_packets",
            "learned",
            "learn_refused",
            "proxy_replies",
            "decap_by_xdp",
            "drops"
        );
        let row = format!(
            "{:>8} {:>13} {:>14} {:>13} {:>14} {:>13} {:>14} {:>13} {:>9} {:>13} {:>13} {:>12} {:>9}",
            100, 1, 2, 3, 4, 5, 6, 7, 10, 8, 9, 0, 2
        );
        // The drops of a VNI's packets are named with the VNI; `unknown_vni` has none.
        let drops = "drops:\n  no_route           11 (vni 100 2)\n  unknown_vni        12\n";
        let remotes = "remotes: kept 13 (resolved 10, resolving 1, unreachable 2, pending 0) refused 14 (remote VTEPs kept resolved, by next-hop state; refused over underlay.max_remotes)\n";
        assert_eq!(stats(&s), format!("{header}\n{row}\n{drops}{remotes}"));
    }

    /// A gone underlay and a gone workload port are spelled out after the drops, then the
    /// segmenter's drops.
    #[test]
    fn stats_text_ends_with_the_links() {
        use crate::instance::{MissingPort, Underlay};
        let s = Stats {
            store: None,
            vnis: Vec::new(),
            drops: BTreeMap::new(),
            remotes: RemoteVteps::default(),
            links: Some(Links {
                underlay: Underlay {
                    name: "eth0".into(),
                    state: "missing".into(),
                },
                missing_ports: vec![MissingPort {
                    port: "w1-h".into(),
                    vni: 100,
                    netns: Some("w1".into()),
                    mac: None,
                }],
            }),
            segmenter: Some(crate::ctl::stats::Segmenter {
                interfaces: ["vgso1o".into(), "vgso1b".into()],
                dropped: 3,
            }),
        };
        assert!(
            stats(&s).ends_with(
                "drops:\nremotes: kept 0 (resolved 0, resolving 0, unreachable 0, pending 0) \
                 refused 0 (remote VTEPs kept resolved, by next-hop state; refused over \
                 underlay.max_remotes)\nlinks:\n  underlay eth0 missing\n  port w1-h missing (vni 100, workload \
                 namespace w1)\nsegmenter: vgso1o vgso1b dropped 3\n"
            ),
            "{}",
            stats(&s)
        );
    }
}
