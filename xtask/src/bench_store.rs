//! `cargo xtask bench --store`: scenario S5 at scale. N simulated hosts (16 by default) on one
//! underlay switch, one throw-away etcd, vtep (the release build) on each host with a `[store]`
//! section and one workload. Measures, in this order:
//!
//! - how long a workload added or removed at run time (`vtep workload add|del`, on the hosts in
//!   turn) takes to reach (or leave) every other host's datapath FDB, the CPU the vteps spend
//!   on it, and etcd's puts, deletes and watch events per change;
//! - the same for a station record written or deleted straight into etcd (the store's part
//!   alone, without the adding host's work);
//! - the vteps' resident memory, and the keys under the prefix;
//! - with `--records` more station records in the store (a large view): the time to take them
//!   in, memory, and the latency and CPU of runtime workloads again;
//! - how long the entries of a killed vtep outlive it (three crashes), and `vtep down` after.
//!
//! The datapath side is read by the `store-watch` tool of the tests crate (it links vtep's
//! library; xtask must not): it opens the other hosts' pinned FDB maps, runs the change, and
//! polls the maps about every millisecond from just before the change starts.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use vtep_lab::{Etcd, Lab, Vtep, b64};

use crate::{
    bench::{median, round2},
    cmd, lab,
};

const VNI: u32 = 100;
/// Seconds a crashed host's records outlive it.
const LEASE_TTL: u32 = 3;
/// How long a change may take to reach every host before the bench calls it lost.
const CHANGE_LIMIT_MS: u64 = 10_000;
/// vteps started at once (each loads and verifies its programs).
const START_PARALLEL: usize = 4;
/// vteps killed, one after the other, to time their records' expiry.
const CRASHES: usize = 3;
/// Runtime workloads added and removed with the bulk records in the store.
const BULK_ADDS: usize = 10;
/// etcd's counters read around each change (etcd 3.4 names; `events` counts events sent to
/// watchers, `watch_msgs` the watch responses sent on gRPC streams).
const PUTS: &str = "etcd_mvcc_put_total";
const DELETES: &str = "etcd_mvcc_delete_total";
const EVENTS: &str = "etcd_debugging_mvcc_events_total";
const WATCHERS: &str = "etcd_debugging_mvcc_watcher_total";
const WATCH_MSGS: &str = "grpc_server_msg_sent_total{grpc_method=\"Watch\",grpc_service=\"etcdserverpb.Watch\",grpc_type=\"bidi_stream\"}";

pub struct Options {
    pub hosts: usize,
    pub adds: usize,
    /// Station records written straight into etcd for the bulk phase (0: none).
    pub records: usize,
    pub json: Option<PathBuf>,
}

/// One host of the bench: namespace, instance, VTEP, its workload's MAC, its vtep.
struct Host {
    ns: String,
    name: String,
    vtep_ip: String,
    mac: String,
    vtep: Vtep,
}

/// What store-watch reported for one change.
struct Watched {
    command_ms: f64,
    all_ms: f64,
    done_ms: Vec<f64>,
    /// When the adding host's own FDB had the workload (its local port), where watched.
    local_ms: Option<f64>,
}

impl Watched {
    /// When the first instance was as asked.
    fn first_ms(&self) -> f64 {
        self.done_ms.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// The instance names of `hosts` but `h`.
fn names_but<'a>(hosts: &'a [Host], h: &Host) -> Vec<&'a str> {
    hosts
        .iter()
        .filter(|o| o.ns != h.ns)
        .map(|o| o.name.as_str())
        .collect()
}

/// A curl command line that writes (`op` "put", with `value`) or deletes (`op`
/// "deleterange") `key` through `etcd`'s JSON gateway.
fn gateway(etcd: &Etcd, op: &str, key: &str, value: Option<&str>) -> Vec<String> {
    let mut body = format!("{{\"key\":\"{}\"", b64(key.as_bytes()));
    if let Some(v) = value {
        body += &format!(",\"value\":\"{}\"", b64(v.as_bytes()));
    }
    body += "}";
    [
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "5",
        "-X",
        "POST",
        &format!("{}/v3/kv/{op}", etcd.endpoint()),
        "-d",
        &body,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn run(vtep: &Path, opts: &Options) -> Result<()> {
    if !(2..=250).contains(&opts.hosts) {
        bail!("--hosts {}: 2 to 250", opts.hosts);
    }
    if opts.adds == 0 {
        bail!("--adds must be at least 1");
    }
    eprintln!("bench: building the store-watch tool");
    cmd::cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "vtep-tests",
        "--bin",
        "store-watch",
    ])?;
    let tool = cmd::workspace_root().join("target/release/store-watch");
    let prefix = format!("vsb{:05}", std::process::id() % 100_000);
    let mut report = None;
    let started = Instant::now();
    lab::with_lab(&prefix, vtep, |lab| {
        report = Some(bench(lab, vtep, &tool, opts)?);
        Ok(())
    })?;
    let mut report = report.expect("the bench ran");
    let left = vtep_lab::leftovers(&prefix);
    if !left.is_empty() {
        bail!("left behind: {}", left.join(" "));
    }
    report["total_s"] = json!(round2(started.elapsed().as_secs_f64()));
    print_table(&report);
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}

fn bench(lab: &Lab, vtep: &Path, tool: &Path, opts: &Options) -> Result<Value> {
    let n = opts.hosts;
    eprintln!("bench: {n} hosts on one underlay switch, one etcd");
    let namespaces = lab.hosts_on_switch(n)?;
    let etcd = lab.start_etcd()?;
    let prefix = format!("/{}", lab.prefix());

    let start = Instant::now();
    let hosts = start_hosts(lab, &namespaces, &etcd, &prefix)?;
    let up_s = start.elapsed().as_secs_f64();
    // Every host has every workload: its own (local) and the others' (from the store).
    let all_keys: Vec<String> = hosts.iter().map(|h| format!("{VNI}/{}", h.mac)).collect();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let converged = watch(tool, true, &all_keys, &names, 30_000, &["true"])?;
    let converged_s = up_s + converged.all_ms / 1e3;
    eprintln!(
        "bench: {n} vteps up after {up_s:.1} s, every host has every workload after {converged_s:.1} s"
    );

    let keys_before = etcd.keys(&prefix)?;
    let watchers = etcd.metric(WATCHERS)?;

    // Runtime workloads: added on one host (in turn), until every other host's FDB has it;
    // removed, until none has it.
    let cx = Cx {
        lab,
        vtep,
        tool,
        etcd: &etcd,
        hosts: &hosts,
    };
    let before = counters(&etcd)?;
    let AddDel {
        add,
        del,
        add_counts,
        del_counts,
        adder_cpu,
        receiver_cpu,
    } = add_del(&cx, opts.adds, 1)?;
    let after = counters(&etcd)?;

    // The store's part alone: a station record of host 1 written straight into etcd (curl to
    // its JSON gateway; no workload is made), until every other host's FDB has it; deleted,
    // until none has it.
    let mut put = Vec::new();
    let mut put_del = Vec::new();
    let (h1, others) = (&hosts[0], names_but(&hosts, &hosts[0]));
    for k in 0..opts.adds {
        let mac = format!("02:00:00:02:{:02x}:{:02x}", k / 256, k % 256);
        let key = format!("{prefix}/v1/stations/{}/{VNI}/{mac}", h1.vtep_ip);
        let value = format!(
            "{{\"vni\":{VNI},\"mac\":\"{mac}\",\"vtep\":\"{}\",\"addresses\":[\"192.0.2.{}\"]}}",
            h1.vtep_ip,
            100 + k % 150
        );
        settle(&hosts)?;
        let w = watch(
            tool,
            true,
            &[format!("{VNI}/{mac}@{}", h1.vtep_ip)],
            &others,
            CHANGE_LIMIT_MS,
            &gateway(&etcd, "put", &key, Some(&value)),
        )
        .with_context(|| format!("a put of {key}"))?;
        put.push(w);
        settle(&hosts)?;
        let w = watch(
            tool,
            false,
            &[format!("{VNI}/{mac}")],
            &others,
            CHANGE_LIMIT_MS,
            &gateway(&etcd, "deleterange", &key, None),
        )
        .with_context(|| format!("a delete of {key}"))?;
        put_del.push(w);
    }
    eprintln!(
        "bench: {} puts straight into etcd: every other host after {:.1} ms (median); deletes {:.1} ms",
        opts.adds,
        median(&put.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
        median(&put_del.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
    );

    // Resident memory once every host has seen every change.
    let idle = idle_cpu_ms_per_s(&hosts)?;
    let mut rss = Vec::new();
    let mut hwm = Vec::new();
    for h in &hosts {
        let pid = h.vtep.pid().context("a vtep exited")?;
        rss.push(proc_status_kib(pid, "VmRSS")?);
        hwm.push(proc_status_kib(pid, "VmHWM")?);
    }
    let etcd_rss = etcd
        .pid()
        .map(|p| proc_status_kib(p, "VmRSS"))
        .transpose()?;

    let bulk = match opts.records {
        0 => None,
        records => Some(bulk(&cx, &prefix, records, opts.adds.min(BULK_ADDS))?),
    };

    // Crashes: the last hosts' vteps killed one after the other; their records go when their
    // lease runs out. `vtep down` then removes what each left.
    let mut crashes = Vec::new();
    for victim in hosts.iter().rev().take(CRASHES.min(n - 1)) {
        let alive = &hosts[..n - 1 - crashes.len()];
        let others: Vec<&str> = alive.iter().map(|o| o.name.as_str()).collect();
        let pid = victim.vtep.pid().context("the victim's vtep exited")?;
        let crash = watch(
            tool,
            false,
            &[format!("{VNI}/{}", victim.mac)],
            &others,
            u64::from(LEASE_TTL) * 1000 + CHANGE_LIMIT_MS,
            &["kill", "-9", &pid.to_string()],
        )
        .with_context(|| format!("the entries of crashed {}", victim.ns))?;
        victim.vtep.kill(); // reaps it
        let down = victim
            .vtep
            .output(&["down", "-n", &victim.name])
            .context("vtep down after the crash")?;
        eprintln!(
            "bench: kill -9 of the vtep on {}: its workload gone from the {} others after {:.0} ms; vtep down: {}",
            victim.ns,
            others.len(),
            crash.all_ms,
            down.trim()
        );
        if Path::new("/sys/fs/bpf/vtep").join(&victim.name).exists() {
            bail!("vtep down left the pins of {} behind", victim.name);
        }
        crashes.push(crash);
    }

    let stations = keys_before
        .iter()
        .filter(|(k, _)| k.contains("/v1/stations/"))
        .count();
    let host_keys = keys_before
        .iter()
        .filter(|(k, _)| k.contains("/v1/hosts/"))
        .count();
    let per = |counts: &BTreeMap<&str, f64>, what: &str| {
        round2(counts.get(what).copied().unwrap_or(0.0) / opts.adds as f64)
    };
    let lease_ms = f64::from(LEASE_TTL) * 1e3;
    let bulk_json = bulk.map(|b| {
        json!({
            "records": b.records,
            "load_s": round2(b.load_ms / 1e3),
            "stations_in_view": b.stations_seen,
            "idle_cpu_ms_per_s": round2(b.idle),
            "rss_kib": {"median": median(&b.rss), "max": b.rss.iter().copied().fold(0.0, f64::max)},
            "add_all_ms": stats(&b.add.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
            "add_first_ms": stats(&b.add.iter().map(Watched::first_ms).collect::<Vec<_>>()),
            "add_local_ms": stats(&b.add.iter().filter_map(|w| w.local_ms).collect::<Vec<_>>()),
            "add_command_ms": stats(&b.add.iter().map(|w| w.command_ms).collect::<Vec<_>>()),
            "del_all_ms": stats(&b.del.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
            "adder_cpu_ms": stats(&b.adder_cpu),
            "receiver_cpu_ms": stats(&b.receiver_cpu),
            "remove_s": round2(b.remove_ms / 1e3),
        })
    });
    Ok(json!({
        "hosts": n,
        "adds": opts.adds,
        "lease_ttl_s": LEASE_TTL,
        "machine": machine(),
        "etcd": etcd_version(),
        "start": {"up_s": round2(up_s), "converged_s": round2(converged_s)},
        "add_all_ms": stats(&add.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
        "add_command_ms": stats(&add.iter().map(|w| w.command_ms).collect::<Vec<_>>()),
        "add_first_ms": stats(&add.iter().map(Watched::first_ms).collect::<Vec<_>>()),
        "add_local_ms": stats(&add.iter().filter_map(|w| w.local_ms).collect::<Vec<_>>()),
        "add_per_host_ms": stats(&add.iter().flat_map(|w| w.done_ms.clone()).collect::<Vec<_>>()),
        "del_all_ms": stats(&del.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
        "del_command_ms": stats(&del.iter().map(|w| w.command_ms).collect::<Vec<_>>()),
        "adder_cpu_ms": stats(&adder_cpu),
        "receiver_cpu_ms": stats(&receiver_cpu),
        "store_put_all_ms": stats(&put.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
        "store_put_command_ms": stats(&put.iter().map(|w| w.command_ms).collect::<Vec<_>>()),
        "store_del_all_ms": stats(&put_del.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
        "crash_ms": stats(&crashes.iter().map(|w| w.all_ms).collect::<Vec<_>>()),
        "crash_minus_lease_ttl_ms": stats(&crashes.iter().map(|w| w.all_ms - lease_ms).collect::<Vec<_>>()),
        "crash_per_host_ms": crashes.iter().map(|w| w.done_ms.clone()).collect::<Vec<_>>(),
        "idle_cpu_ms_per_s": round2(idle),
        "rss_kib": {
            "median": median(&rss),
            "max": rss.iter().copied().fold(0.0, f64::max),
            "per_host": rss,
            "peak_max": hwm.iter().copied().fold(0.0, f64::max),
            "etcd": etcd_rss,
        },
        "keys": {
            "total": keys_before.len(),
            "host_keys": host_keys,
            "station_keys": stations,
            "host_keys_per_host": round2(host_keys as f64 / n as f64),
            "station_keys_per_workload": round2(stations as f64 / n as f64),
        },
        "etcd_per_add": {
            "puts": per(&add_counts, PUTS),
            "deletes": per(&add_counts, DELETES),
            "events": per(&add_counts, EVENTS),
            "watch_msgs": per(&add_counts, WATCH_MSGS),
        },
        "etcd_per_del": {
            "puts": per(&del_counts, PUTS),
            "deletes": per(&del_counts, DELETES),
            "events": per(&del_counts, EVENTS),
            "watch_msgs": per(&del_counts, WATCH_MSGS),
        },
        "etcd_whole_run": diff(&before, &after),
        "bulk": bulk_json,
        "watchers": watchers,
    }))
}

/// Adds `count` workloads at run time, on the hosts in turn, each until every other host's FDB
/// has it, and removes each again until none has it; workload namespaces and MACs are
/// numbered in series `series`.
fn add_del(cx: &Cx, count: usize, series: u8) -> Result<AddDel> {
    let Cx {
        lab,
        vtep,
        tool,
        etcd,
        hosts,
    } = *cx;
    let mut add = Vec::new();
    let mut del = Vec::new();
    let mut add_counts = BTreeMap::new();
    let mut del_counts = BTreeMap::new();
    let (mut adder_cpu, mut receiver_cpu) = (Vec::new(), Vec::new());
    for k in 0..count {
        let h = &hosts[k % hosts.len()];
        let others = names_but(hosts, h);
        let ns = lab.name(&format!("r{series}-{k}"));
        let mac = format!("02:00:00:{series:02x}:{:02x}:{:02x}", k / 256, k % 256);
        let addr = format!("192.0.2.{}/24", 100 + k % 150);
        let key = format!("{VNI}/{mac}@{}", h.vtep_ip);
        settle(hosts)?;
        let c0 = counters(etcd)?;
        let cpu0 = cpu_ns(hosts)?;
        // The adding host first, watched for its local entry.
        let watched: Vec<&str> = std::iter::once(h.name.as_str())
            .chain(others.iter().copied())
            .collect();
        let mut w = watch_with(
            tool,
            true,
            std::slice::from_ref(&key),
            &watched,
            Some(&h.name),
            CHANGE_LIMIT_MS,
            &vtep_cmd(
                vtep,
                h,
                &[
                    "workload", "add", &ns, "vni", "100", "address", &addr, "mac", &mac, "-n",
                    &h.name,
                ],
            ),
        )
        .with_context(|| format!("workload add {ns} on {}", h.ns))?;
        w.local_ms = Some(w.done_ms.remove(0));
        w.all_ms = w.done_ms.iter().copied().fold(0.0, f64::max);
        // Until every vtep has done all the change asked of it (what follows the FDB entry).
        settle(hosts)?;
        let c1 = counters_after(etcd, &c0, PUTS)?;
        let cpu1 = cpu_ns(hosts)?;
        accumulate(&mut add_counts, &c0, &c1);
        for (i, (a, b)) in cpu0.iter().zip(&cpu1).enumerate() {
            let ms = (b - a) as f64 / 1e6;
            if hosts[i].ns == h.ns {
                adder_cpu.push(ms);
            } else {
                receiver_cpu.push(ms);
            }
        }
        eprintln!(
            "bench: add {}/{count}: on {}, command {:.0} ms, local entry {:.1} ms, first other host {:.1} ms, every other host {:.1} ms",
            k + 1,
            h.ns,
            w.command_ms,
            w.local_ms.unwrap_or(f64::NAN),
            w.first_ms(),
            w.all_ms
        );
        add.push(w);
        let w = watch(
            tool,
            false,
            &[format!("{VNI}/{mac}")],
            &others,
            CHANGE_LIMIT_MS,
            &vtep_cmd(vtep, h, &["workload", "del", &ns, "-n", &h.name]),
        )
        .with_context(|| format!("workload del {ns} on {}", h.ns))?;
        let c2 = counters_after(etcd, &c1, DELETES)?;
        accumulate(&mut del_counts, &c1, &c2);
        eprintln!(
            "bench: del {}/{count}: command {:.0} ms, gone from every other host {:.1} ms",
            k + 1,
            w.command_ms,
            w.all_ms
        );
        del.push(w);
    }
    Ok(AddDel {
        add,
        del,
        add_counts,
        del_counts,
        adder_cpu,
        receiver_cpu,
    })
}

/// What [`add_del`] measured.
struct AddDel {
    add: Vec<Watched>,
    del: Vec<Watched>,
    /// etcd's counters' deltas over the adds and over the deletes.
    add_counts: BTreeMap<&'static str, f64>,
    del_counts: BTreeMap<&'static str, f64>,
    /// CPU time (ms) the adding host's vtep, and each other host's, spent per add (from just
    /// before the command until every vtep was idle again).
    adder_cpu: Vec<f64>,
    receiver_cpu: Vec<f64>,
}

/// What the phases work with.
#[derive(Clone, Copy)]
struct Cx<'a> {
    lab: &'a Lab,
    /// The vtep binary.
    vtep: &'a Path,
    /// The store-watch binary.
    tool: &'a Path,
    etcd: &'a Etcd,
    hosts: &'a [Host],
}

/// What the bulk phase measured.
struct Bulk {
    records: usize,
    load_ms: f64,
    stations_seen: u64,
    /// CPU per host and second with nothing changing (ms/s).
    idle: f64,
    rss: Vec<f64>,
    add: Vec<Watched>,
    del: Vec<Watched>,
    adder_cpu: Vec<f64>,
    receiver_cpu: Vec<f64>,
    remove_ms: f64,
}

/// The bulk phase: `records` station records, spread over the hosts' VTEPs, written straight
/// into etcd in transactions of 128 puts (etcd's default limit), until every host has them;
/// then the vteps' memory, `adds` runtime workloads added and removed as before (each change
/// now recomputed over the whole view), and the records deleted again (a range delete per
/// VTEP) until no host has them.
fn bulk(cx: &Cx, prefix: &str, records: usize, adds: usize) -> Result<Bulk> {
    let Cx {
        tool, etcd, hosts, ..
    } = *cx;
    const TXN_OPS: usize = 128;
    let n = hosts.len();
    let mac = |k: usize| format!("02:00:00:03:{:02x}:{:02x}", k / 256, k % 256);
    let owner = |k: usize| &hosts[k % n];
    let dir = format!("{prefix}/v1/stations/");
    eprintln!("bench: writing {records} station records straight into etcd");
    let start = Instant::now();
    for (t, chunk) in (0..records).collect::<Vec<_>>().chunks(TXN_OPS).enumerate() {
        let kvs: Vec<(String, String)> = chunk
            .iter()
            .map(|&k| {
                let h = owner(k);
                let key = format!("{dir}{}/{VNI}/{}", h.vtep_ip, mac(k));
                let value = json!({
                    "vni": VNI,
                    "mac": mac(k),
                    "vtep": h.vtep_ip,
                    "addresses": [format!("10.1.{}.{}", k / 256, k % 256)],
                })
                .to_string();
                (key, value)
            })
            .collect();
        etcd.put_txn(&kvs)
            .with_context(|| format!("transaction {t} of the bulk records"))?;
    }
    // Watches deliver in order, and each host programs from its whole view: once the last
    // record is everywhere, so is every one.
    let last = records - 1;
    let last_owner = owner(last);
    let others = names_but(hosts, last_owner);
    let written = start.elapsed().as_secs_f64() * 1e3;
    let w = watch(
        tool,
        true,
        &[format!("{VNI}/{}@{}", mac(last), last_owner.vtep_ip)],
        &others,
        60_000,
        &["true"],
    )
    .context("the bulk records")?;
    let load_ms = written + w.all_ms;
    let stations_seen =
        hosts[0].vtep.json(&["stats", "-n", &hosts[0].name, "-j"])?["store"]["stations"]
            .as_u64()
            .unwrap_or(0);
    eprintln!(
        "bench: {records} records on every host after {:.1} s; host 1's view holds {stations_seen} stations",
        load_ms / 1e3
    );
    let idle = idle_cpu_ms_per_s(hosts)?;
    let mut rss = Vec::new();
    for h in hosts {
        let pid = h.vtep.pid().context("a vtep exited")?;
        rss.push(proc_status_kib(pid, "VmRSS")?);
    }
    let AddDel {
        add,
        del,
        adder_cpu,
        receiver_cpu,
        ..
    } = add_del(cx, adds, 4)?;
    // A range delete per VTEP of its bulk records (their MACs share a prefix).
    let start = Instant::now();
    for h in hosts {
        let key = format!("{dir}{}/{VNI}/02:00:00:03:", h.vtep_ip);
        // ';' follows ':': the end of the range of every MAC under that prefix.
        let end = format!("{dir}{}/{VNI}/02:00:00:03;", h.vtep_ip);
        etcd.del_range(&key, &end)?;
    }
    let written = start.elapsed().as_secs_f64() * 1e3;
    let gone = watch(
        tool,
        false,
        &[format!("{VNI}/{}", mac(last))],
        &others,
        60_000,
        &["true"],
    )
    .context("removing the bulk records")?;
    let remove_ms = written + gone.all_ms;
    Ok(Bulk {
        records,
        load_ms,
        stations_seen,
        idle,
        rss,
        add,
        del,
        adder_cpu,
        receiver_cpu,
        remove_ms,
    })
}

/// Starts vtep on every host, a few at a time; returns the hosts in order.
fn start_hosts(lab: &Lab, namespaces: &[String], etcd: &Etcd, prefix: &str) -> Result<Vec<Host>> {
    let mut hosts = Vec::new();
    for (chunk_no, chunk) in namespaces.chunks(START_PARALLEL).enumerate() {
        let started: Vec<Result<Host>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(j, ns)| {
                    let i = chunk_no * START_PARALLEL + j + 1;
                    s.spawn(move || start_host(lab, ns, i, etcd, prefix))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| bail!("starting a vtep panicked"))
                })
                .collect()
        });
        for h in started {
            hosts.push(h?);
        }
        eprintln!("bench: {} of {} vteps up", hosts.len(), namespaces.len());
    }
    Ok(hosts)
}

/// Starts vtep on host `i` (1-based, 198.18.0.i) with workload `192.0.2.i`.
fn start_host(lab: &Lab, ns: &str, i: usize, etcd: &Etcd, prefix: &str) -> Result<Host> {
    let name = lab.name(&format!("v{i}"));
    let mac = format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256);
    let config = format!(
        "name = \"{name}\"\n\n[underlay]\ninterface = \"eth0\"\n\n[store]\nendpoints = [\"{}\"]\n\
         prefix = \"{prefix}\"\nlease_ttl = {LEASE_TTL}\n\n[[vni]]\nid = {VNI}\nproxy = true\n\n\
         [[vni.workload]]\nnetns = \"{}\"\naddress = \"192.0.2.{i}/24\"\nmac = \"{mac}\"\n",
        etcd.endpoint(),
        lab.name(&format!("w{i}")),
    );
    let vtep = lab::start_vtep(lab, ns, &config, false)?;
    Ok(Host {
        ns: ns.to_string(),
        name,
        vtep_ip: format!("198.18.0.{i}"),
        mac,
        vtep,
    })
}

/// `BIN --netns HOST ARGS` (vtep `bin`) against host `h`, as a command line.
fn vtep_cmd(bin: &Path, h: &Host, args: &[&str]) -> Vec<String> {
    let mut cmd = vec![
        bin.to_string_lossy().into_owned(),
        "--netns".to_string(),
        h.ns.clone(),
    ];
    cmd.extend(args.iter().map(|s| s.to_string()));
    cmd
}

/// Runs store-watch: `command` (a program and its arguments), then waits until every instance
/// of `instances` has (`present`) or lacks every key of `keys`. Fails, with its report, when
/// one did not within `limit_ms` or the command failed.
fn watch<S: AsRef<str>>(
    tool: &Path,
    present: bool,
    keys: &[String],
    instances: &[&str],
    limit_ms: u64,
    command: &[S],
) -> Result<Watched> {
    watch_with(tool, present, keys, instances, None, limit_ms, command)
}

/// As [`watch`], with `local` (one of `instances`) counting any entry of a key, its local port.
fn watch_with<S: AsRef<str>>(
    tool: &Path,
    present: bool,
    keys: &[String],
    instances: &[&str],
    local: Option<&str>,
    limit_ms: u64,
    command: &[S],
) -> Result<Watched> {
    let mut c = Command::new(tool);
    c.arg(if present { "present" } else { "absent" });
    for k in keys {
        c.args(["--key", k]);
    }
    if let Some(l) = local {
        c.args(["--local", l]);
    }
    c.args(["--timeout-ms", &limit_ms.to_string()]);
    c.args(instances);
    c.arg("--");
    c.args(command.iter().map(AsRef::as_ref));
    let out = c.output().context("running store-watch")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "store-watch printed {text:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if report["command_ok"] != true {
        bail!("the command failed: {}", report["command_output"]);
    }
    if !out.status.success() {
        bail!(
            "not every host was as asked ({}) within {limit_ms} ms: {report}",
            if present { "present" } else { "absent" }
        );
    }
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    Ok(Watched {
        command_ms: f(&report["command_ms"]),
        all_ms: f(&report["all_ms"]),
        local_ms: None,
        done_ms: report["done_ms"]
            .as_array()
            .map(|a| a.iter().map(f).collect())
            .unwrap_or_default(),
    })
}

/// The counters of etcd this bench follows.
fn counters(etcd: &Etcd) -> Result<BTreeMap<&'static str, f64>> {
    let mut m = BTreeMap::new();
    for name in [PUTS, DELETES, EVENTS, WATCH_MSGS] {
        m.insert(name, etcd.metric(name)?);
    }
    Ok(m)
}

/// The counters once `counter` has moved on from `before` (etcd counts a request a moment after
/// its watchers were told, so right after a change it may not show yet), or after 1 s.
fn counters_after(
    etcd: &Etcd,
    before: &BTreeMap<&'static str, f64>,
    counter: &str,
) -> Result<BTreeMap<&'static str, f64>> {
    let deadline = Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let now = counters(etcd)?;
        if now.get(counter) > before.get(counter) || Instant::now() > deadline {
            return Ok(now);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn accumulate(
    into: &mut BTreeMap<&'static str, f64>,
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
) {
    for (k, v) in after {
        *into.entry(k).or_default() += v - before.get(k).copied().unwrap_or(0.0);
    }
}

fn diff(before: &BTreeMap<&'static str, f64>, after: &BTreeMap<&'static str, f64>) -> Value {
    let short = |k: &str| k.split('{').next().unwrap_or(k).to_string();
    json!(
        after
            .iter()
            .map(|(k, v)| (short(k), v - before.get(k).copied().unwrap_or(0.0)))
            .collect::<BTreeMap<_, _>>()
    )
}

/// CPU time a vtep uses per second with nothing changing (its housekeeping: lease keep-alives,
/// the once-a-second pass over its tables), averaged over every host and 3 s.
fn idle_cpu_ms_per_s(hosts: &[Host]) -> Result<f64> {
    settle(hosts)?;
    let (t0, c0) = (Instant::now(), cpu_ns(hosts)?.iter().sum::<u64>());
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (t1, c1) = (Instant::now(), cpu_ns(hosts)?.iter().sum::<u64>());
    Ok((c1 - c0) as f64 / 1e6 / (t1 - t0).as_secs_f64() / hosts.len() as f64)
}

/// Waits until the vteps are idle again (together less than 25 ms of CPU in 100 ms), for at
/// most 2 s: each change is measured on its own, not queued behind the last one's work.
fn settle(hosts: &[Host]) -> Result<()> {
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    let mut last: u64 = cpu_ns(hosts)?.iter().sum();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now: u64 = cpu_ns(hosts)?.iter().sum();
        if now - last < 25_000_000 || Instant::now() > deadline {
            return Ok(());
        }
        last = now;
    }
}

/// CPU time each host's vtep has used so far (all its threads), in nanoseconds.
fn cpu_ns(hosts: &[Host]) -> Result<Vec<u64>> {
    hosts
        .iter()
        .map(|h| {
            let pid = h.vtep.pid().context("a vtep exited")?;
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
                .with_context(|| format!("reading /proc/{pid}/task"))?;
            Ok(tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum())
        })
        .collect()
}

/// Field `field` (VmRSS, VmHWM) of process `pid`'s status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Median, mean, 99th percentile (nearest rank) and max of `v`, and the samples.
fn stats(v: &[f64]) -> Value {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    json!({
        "median": round2(median(&s)),
        "mean": round2(s.iter().sum::<f64>() / s.len().max(1) as f64),
        "p99": round2(rank(0.99)),
        "max": round2(*s.last().unwrap_or(&f64::NAN)),
        "n": s.len(),
        "samples": v.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
    })
}

/// CPU model, CPUs and kernel of this machine.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({"cpu": cpu, "cpus": cpus, "kernel": kernel.trim()})
}

fn etcd_version() -> String {
    Command::new("etcd")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("etcd Version: ")
                .to_string()
        })
        .unwrap_or_default()
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let n = r["hosts"].as_u64().unwrap_or(0);
    let o = n.saturating_sub(1);
    println!(
        "\nmany hosts from one store: {n} hosts on one underlay, one etcd {}, lease_ttl {} s, {} changes of each kind (rotating hosts)",
        r["etcd"].as_str().unwrap_or("?"),
        r["lease_ttl_s"],
        r["adds"]
    );
    println!("{:<56} {:>8} {:>8} {:>8}", "(ms)", "median", "p99", "max");
    for (label, key) in [
        (
            format!("workload add -> in all {o} other FDBs"),
            "add_all_ms",
        ),
        ("  -> in the first other FDB".to_string(), "add_first_ms"),
        (
            "  -> in the adding host's own FDB".to_string(),
            "add_local_ms",
        ),
        ("  the add command returned".to_string(), "add_command_ms"),
        (
            format!("workload del -> gone from all {o} others"),
            "del_all_ms",
        ),
        ("  the del command returned".to_string(), "del_command_ms"),
        (
            format!("station put straight into etcd -> in all {o} FDBs"),
            "store_put_all_ms",
        ),
        ("  curl returned".to_string(), "store_put_command_ms"),
        (
            format!("station deleted in etcd -> gone from all {o}"),
            "store_del_all_ms",
        ),
        (
            "kill -9 of a vtep -> its workload gone from all others".to_string(),
            "crash_ms",
        ),
        (
            "  the same, less the lease TTL".to_string(),
            "crash_minus_lease_ttl_ms",
        ),
    ] {
        let s = &r[key];
        println!(
            "{label:<56} {:>8.1} {:>8.1} {:>8.1}",
            f(&s["median"]),
            f(&s["p99"]),
            f(&s["max"])
        );
    }
    println!(
        "CPU per workload add: the adding host's vtep {:.1} ms, each other host's {:.2} ms (means); idle: {:.2} ms/s per vtep",
        f(&r["adder_cpu_ms"]["mean"]),
        f(&r["receiver_cpu_ms"]["mean"]),
        f(&r["idle_cpu_ms_per_s"])
    );
    let b = &r["bulk"];
    if !b.is_null() {
        let g = |k: &str, m: &str| f(&b[k][m]);
        println!(
            "with {} more station records in the store ({:.1} s to write them and reach every host; {} stations in host 1's view):",
            b["records"],
            f(&b["load_s"]),
            b["stations_in_view"]
        );
        println!(
            "{:<56} {:>8.1} {:>8.1} {:>8.1}",
            format!("  workload add -> in all {o} other FDBs"),
            g("add_all_ms", "median"),
            g("add_all_ms", "p99"),
            g("add_all_ms", "max")
        );
        for (label, key) in [
            ("    -> in the first other FDB", "add_first_ms"),
            ("    -> in the adding host's own FDB", "add_local_ms"),
            ("    the add command returned", "add_command_ms"),
        ] {
            println!(
                "{label:<56} {:>8.1} {:>8.1} {:>8.1}",
                g(key, "median"),
                g(key, "p99"),
                g(key, "max")
            );
        }
        println!(
            "{:<56} {:>8.1} {:>8.1} {:>8.1}",
            format!("  workload del -> gone from all {o} others"),
            g("del_all_ms", "median"),
            g("del_all_ms", "p99"),
            g("del_all_ms", "max")
        );
        println!(
            "  CPU per workload add: the adding host's vtep {:.1} ms, each other host's {:.2} ms (means); idle: {:.2} ms/s per vtep",
            g("adder_cpu_ms", "mean"),
            g("receiver_cpu_ms", "mean"),
            f(&b["idle_cpu_ms_per_s"])
        );
        println!(
            "  vtep VmRSS with them: median {:.1} MiB, max {:.1} MiB; removing them all took {:.1} s",
            g("rss_kib", "median") / 1024.0,
            g("rss_kib", "max") / 1024.0,
            f(&b["remove_s"])
        );
    }
    let m = &r["rss_kib"];
    println!(
        "vtep resident memory (VmRSS): median {:.1} MiB, max {:.1} MiB (peak {:.1} MiB); etcd {:.1} MiB",
        f(&m["median"]) / 1024.0,
        f(&m["max"]) / 1024.0,
        f(&m["peak_max"]) / 1024.0,
        f(&m["etcd"]) / 1024.0
    );
    let k = &r["keys"];
    println!(
        "etcd keys under the prefix: {} ({} host keys = {} per host, {} station keys = {} per workload)",
        k["total"],
        k["host_keys"],
        k["host_keys_per_host"],
        k["station_keys"],
        k["station_keys_per_workload"]
    );
    let a = &r["etcd_per_add"];
    println!(
        "etcd per workload add: {} put(s), {} watch events sent, {} watch responses ({} watchers)",
        a["puts"], a["events"], a["watch_msgs"], r["watchers"]
    );
    let d = &r["etcd_per_del"];
    println!(
        "etcd per workload del: {} delete(s), {} watch events sent, {} watch responses",
        d["deletes"], d["events"], d["watch_msgs"]
    );
    println!(
        "start: {n} vteps up in {} s, every host had every workload at {} s; whole bench {} s",
        r["start"]["up_s"], r["start"]["converged_s"], r["total_s"]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_of_few_samples_is_the_max() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = stats(&v);
        assert_eq!(s["p99"], 20.0);
        assert_eq!(s["median"], 10.5);
        assert_eq!(s["max"], 20.0);
    }
}
