//! ageing-cost: what one ageing sweep of the FDB costs, with 1,000, 100,000 and 1,000,000
//! entries, walked the way vtep does it (many entries per syscall, `vtep::datapath::batch`) and
//! the way it did before (two syscalls per entry: get-next-key, lookup; one delete per expired
//! entry), on the same sweep (`Ager::sweep_by`). `cargo xtask bench --ageing` runs it.
//!
//! Each FDB is one VNI (ageing 300 s): 20 % static entries, 79 % learned just now and 1 %
//! learned longer ago than the ageing, which each sweep removes and which are put back
//! (unmeasured) before the next, so every sweep does the same work. The two walks take turns,
//! sweep after sweep. Per sweep: wall time, and the measuring thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`: the scheduler's own account, in nanoseconds, of user and kernel
//! time, where `getrusage` counts in ticks), split into user and system time by `getrusage`
//! (`RUSAGE_THREAD`, tick-based: meaningful only for the large sizes). Reported: medians, and
//! the share of one core a sweep every 30 s (vtep's interval when the shortest ageing is 120 s
//! or more) costs. Also measured at each size, on the same maps: `remotes::count_fdb`
//! (one walk, no deletes) both ways, deleting the 1 % expired keys one syscall each against
//! batched, and a read-only batched walk by chunk size.
//!
//! Prints one JSON object on stdout (logs go to stderr). Runs in a private network namespace
//! ([`Fixture`]), removed at exit, also on an error, a panic, SIGINT, SIGTERM or SIGHUP. Run as
//! root: `cargo run --release -p vtep-tests --bin ageing-cost [-- --rounds N] [--cpu N]
//! [--sizes N,N,...]`.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use aya::{
    Pod,
    maps::{HashMap, MapData},
};
use nix::time::{ClockId, clock_gettime};
use serde_json::{Value, json};
use vtep::{
    daemon::{
        ageing::Ager,
        remotes::{self, References},
    },
    datapath::{batch, loader::Datapath, maps::Walk},
    sys::clock::monotonic_secs,
};
use vtep_common::{
    maps::{
        BPF_NOEXIST, DEFAULT_FDB_SIZE, FDB_F_LEARNED, FDB_REMOTE, FdbEntry, FdbKey, vtep_addr_v4,
    },
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    bench_tool::{block_exit_signals, pin_to, remove_namespace_on},
    fixture::{Fixture, PORT_IANA, SLOT, TTL, VNI, config, load_sized},
};

const DEFAULT_SIZES: [u32; 3] = [1_000, 100_000, 1_000_000];
const DEFAULT_ROUNDS: usize = 5;
const AGEING: u32 = 300;
/// vtep sweeps every quarter of the shortest ageing, at least every 30 s.
const INTERVAL_S: f64 = 30.0;
/// Chunk sizes the read-only walk is timed with.
const CHUNKS: [usize; 5] = [64, 256, 1_024, 4_096, 16_384];
/// Remote VTEPs the filler entries point at, in turn: a realistic spread for the reference
/// count (one set entry per VTEP, not per entry).
const VTEPS: u32 = 64;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "ageing-cost: {e:#}\nusage: ageing-cost [--rounds N] [--cpu N] [--sizes N,N,...]"
            );
            return ExitCode::from(2);
        }
    };
    // Blocked before any thread exists, so every thread inherits the mask and only the watcher
    // below takes these signals.
    let signals = match block_exit_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ageing-cost: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let fx = Fixture::named("vtage");
    remove_namespace_on("ageing-cost", signals, fx.ns().to_string());
    eprintln!("ageing-cost: namespace {}", fx.ns());
    let result = fx.run(|| {
        if let Some(cpu) = args.cpu {
            pin_to("ageing-cost", cpu)?;
        }
        let mut sizes = Vec::new();
        for &n in &args.sizes {
            sizes.push(bench_size(&fx, n, args.rounds)?);
        }
        Ok::<_, anyhow::Error>(json!({
            "interval_s": INTERVAL_S,
            "rounds": args.rounds,
            "chunk": batch::CHUNK,
            "sizes": sizes,
        }))
    });
    drop(fx);
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ageing-cost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    rounds: usize,
    cpu: Option<usize>,
    sizes: Vec<u32>,
}

fn parse_args() -> Result<Args> {
    let mut parsed = Args {
        rounds: DEFAULT_ROUNDS,
        cpu: None,
        sizes: DEFAULT_SIZES.to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{what} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                parsed.rounds = value("--rounds")?.parse().context("--rounds")?;
                ensure!(parsed.rounds > 0, "--rounds must be positive");
            }
            "--cpu" => parsed.cpu = Some(value("--cpu")?.parse().context("--cpu")?),
            "--sizes" => {
                parsed.sizes = value("--sizes")?
                    .split(',')
                    .map(|n| n.trim().replace('_', "").parse())
                    .collect::<Result<_, _>>()
                    .context("--sizes")?;
                ensure!(
                    parsed.sizes.iter().all(|&n| n >= 100),
                    "sizes must be at least 100"
                );
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/// What one measured operation cost the calling thread.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    wall: Duration,
    cpu: Duration,
    user: Duration,
    sys: Duration,
}

/// The calling thread's CPU time (precise), and its user and system time (in ticks).
fn thread_times() -> (Duration, Duration, Duration) {
    let cpu = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    // SAFETY: `rusage` is a C struct of integers, for which all-zero bytes are valid, and
    // getrusage writes one `rusage` into the one we pass, which lives across the call.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is valid on Linux, so the call cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (Duration::from(cpu), tv(ru.ru_utime), tv(ru.ru_stime))
}

fn measure<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Cost)> {
    let (cpu0, user0, sys0) = thread_times();
    let start = Instant::now();
    let out = f()?;
    let wall = start.elapsed();
    let (cpu1, user1, sys1) = thread_times();
    Ok((
        out,
        Cost {
            wall,
            cpu: cpu1 - cpu0,
            user: user1 - user0,
            sys: sys1 - sys0,
        },
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Medians of `costs` in milliseconds, and the share of one core (per cent) the CPU time costs
/// once every [`INTERVAL_S`].
fn summary(costs: &[Cost]) -> Value {
    let m = |f: fn(&Cost) -> Duration| median(costs.iter().map(|c| ms(f(c))).collect());
    let cpu = m(|c| c.cpu);
    json!({
        "wall_ms": m(|c| c.wall),
        "cpu_ms": cpu,
        "user_ms": m(|c| c.user),
        "sys_ms": m(|c| c.sys),
        "core_percent_every_30s": cpu / 1e3 / INTERVAL_S * 100.0,
        "samples": costs.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// The walks.

/// The walk the batched one replaced (vtep's `remove_where` before issue 13), kept here as the
/// baseline: aya's iterator (get-next-key, then lookup, per entry), then one delete per expired
/// entry.
struct PerEntry;

impl Walk for PerEntry {
    fn remove_where<K: Pod, V: Pod>(
        &self,
        mut table: HashMap<&mut MapData, K, V>,
        mut expired: impl FnMut(&K, &V) -> bool,
    ) -> Result<usize> {
        let mut stale = Vec::new();
        for item in table.iter() {
            let (key, value) = item?;
            if expired(&key, &value) {
                stale.push(key);
            }
        }
        Ok(stale.iter().filter(|k| table.remove(k).is_ok()).count())
    }
}

/// `remotes::count_fdb` as it was: aya's iterator.
fn count_fdb_per_entry(dp: &mut Datapath) -> Result<References> {
    let mut refs = References::default();
    for item in dp.fdb()?.iter() {
        let (_, entry) = item?;
        refs.add_fdb_entry(&entry);
    }
    Ok(refs)
}

// ---------------------------------------------------------------------------------------------
// The FDB.

/// Filler entry `i` of a set of `n`: 1 % learned long ago (expired), 20 % static, the rest
/// learned at `now`, behind one of [`VTEPS`] remote VTEPs.
fn filler(i: u32, n: u32, now: u32) -> (FdbKey, FdbEntry) {
    let b = i.to_be_bytes();
    let key = FdbKey {
        vni: VNI,
        mac: [0x02, 0xfc, b[0], b[1], b[2], b[3]],
        _pad: [0; 2],
    };
    let (flags, seen) = if is_expired(i, n) {
        (FDB_F_LEARNED, now.wrapping_sub(AGEING + 10))
    } else if i.is_multiple_of(5) {
        (0, 0)
    } else {
        (FDB_F_LEARNED, now)
    };
    let vtep = [198, 18, 1, (i % VTEPS) as u8 + 10];
    let entry = FdbEntry {
        kind: FDB_REMOTE,
        ifindex: 0,
        remote: vtep_addr_v4(vtep),
        port_flags: 0,
        flags,
        seen,
    };
    (key, entry)
}

/// Whether filler `i` of `n` is one of the 1 % expired ones (spread over the whole set).
fn is_expired(i: u32, n: u32) -> bool {
    let every = (n / (n / 100).max(1)).max(1);
    i % every == 1
}

fn insert(dp: &mut Datapath, entries: impl Iterator<Item = (FdbKey, FdbEntry)>) -> Result<()> {
    let mut fdb = dp.fdb()?;
    for (k, e) in entries {
        fdb.insert(k, e, 0)
            .with_context(|| format!("inserting {k:?}"))?;
    }
    Ok(())
}

/// Puts the expired entries back (what the last sweep removed), stamped long ago again.
fn refill_expired(dp: &mut Datapath, n: u32) -> Result<usize> {
    let now = monotonic_secs();
    let expired: Vec<_> = (0..n)
        .filter(|&i| is_expired(i, n))
        .map(|i| filler(i, n, now))
        .collect();
    let count = expired.len();
    insert(dp, expired.into_iter())?;
    Ok(count)
}

fn fdb_len(dp: &mut Datapath) -> Result<usize> {
    Ok(batch::for_each(&dp.fdb()?, |_, _| {})?)
}

/// Every measurement at FDB size `n`.
fn bench_size(fx: &Fixture, n: u32, rounds: usize) -> Result<Value> {
    let capacity = DEFAULT_FDB_SIZE.max(n + n / 10);
    let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    let mut dp = load_sized(&cfg, &[fx.table(VNI, PORT_IANA, TTL)], capacity);
    let own = fdb_len(&mut dp)?;
    eprintln!("ageing-cost: {n} entries (FDB of {capacity}): filling");
    let start = Instant::now();
    let now = monotonic_secs();
    {
        let mut fdb = dp.fdb()?;
        for i in 0..n {
            let (k, e) = filler(i, n, now);
            fdb.insert(k, e, BPF_NOEXIST)
                .with_context(|| format!("filler entry {i}"))?;
        }
    }
    eprintln!(
        "ageing-cost:   filled in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let total = fdb_len(&mut dp)?;
    ensure!(total == own + n as usize, "the FDB holds {total} entries");

    let ager = Ager::new([(VNI, SLOT, AGEING)]);
    // Small FDBs sweep in microseconds: more sweeps per round for a steadier median.
    let reps = (200_000 / n as usize).clamp(1, 50);
    let mut costs: [Vec<Cost>; 2] = Default::default();
    let mut expected = None;
    for round in 0..rounds {
        for _ in 0..reps {
            for (which, cost) in costs.iter_mut().enumerate() {
                let refilled = refill_expired(&mut dp, n)?;
                let (sweep, c) = measure(|| {
                    if which == 0 {
                        ager.sweep_by(&mut dp, &PerEntry)
                    } else {
                        ager.sweep(&mut dp)
                    }
                })?;
                ensure!(
                    sweep.removed == refilled,
                    "a sweep removed {} entries, not the {refilled} expired",
                    sweep.removed
                );
                // Both walks must do the same sweep.
                let outcome = (sweep.learned, sweep.remotes);
                match &expected {
                    None => expected = Some(outcome),
                    Some(e) => ensure!(*e == outcome, "the two walks swept differently"),
                }
                cost.push(c);
            }
        }
        eprintln!(
            "ageing-cost:   round {}: per-entry {:.1} ms CPU, batched {:.1} ms CPU",
            round + 1,
            ms(costs[0].last().map_or(Duration::ZERO, |c| c.cpu)),
            ms(costs[1].last().map_or(Duration::ZERO, |c| c.cpu)),
        );
    }

    let mut counts: [Vec<Cost>; 2] = Default::default();
    for _ in 0..rounds * reps {
        let (a, ca) = measure(|| count_fdb_per_entry(&mut dp))?;
        let (b, cb) = measure(|| remotes::count_fdb(&mut dp))?;
        ensure!(a == b, "count_fdb differs between the walks");
        ensure!(
            a.len() >= VTEPS as usize,
            "count_fdb found {} VTEPs",
            a.len()
        );
        counts[0].push(ca);
        counts[1].push(cb);
    }

    // Deleting the expired keys alone, one syscall each against batched.
    let keys: Vec<FdbKey> = (0..n)
        .filter(|&i| is_expired(i, n))
        .map(|i| filler(i, n, now).0)
        .collect();
    let mut deletes: [Vec<Cost>; 2] = Default::default();
    for _ in 0..rounds * reps {
        for (which, cost) in deletes.iter_mut().enumerate() {
            refill_expired(&mut dp, n)?;
            let mut fdb = dp.fdb()?;
            let (deleted, c) = measure(|| {
                if which == 0 {
                    Ok(keys.iter().filter(|k| fdb.remove(k).is_ok()).count())
                } else {
                    Ok(batch::delete(&mut fdb, &keys)?)
                }
            })?;
            ensure!(deleted == keys.len(), "deleted {deleted} of {}", keys.len());
            cost.push(c);
        }
    }

    // The chunk sizes take turns, as the walks do.
    let mut by_chunk: Vec<Vec<Cost>> = vec![Vec::new(); CHUNKS.len()];
    for _ in 0..rounds * reps {
        for (chunk, cs) in CHUNKS.iter().zip(&mut by_chunk) {
            let fdb = dp.fdb()?;
            let (seen, c) = measure(|| Ok(batch::for_each_chunked(&fdb, *chunk, |_, _| {})?))?;
            ensure!(seen == total - keys.len(), "a walk read {seen} entries");
            cs.push(c);
        }
    }
    let by_chunk: serde_json::Map<String, Value> = CHUNKS
        .iter()
        .zip(&by_chunk)
        .map(|(chunk, cs)| (chunk.to_string(), summary(cs)))
        .collect();

    let remotes = expected.map_or(0, |(_, r)| r.len());
    // A spot check that the sweeps kept what they should: every VTEP still referenced.
    ensure!(
        remotes == VTEPS as usize + 3,
        "the sweep reported {remotes} VTEPs"
    );
    Ok(json!({
        "entries": n,
        "capacity": capacity,
        "expired_per_sweep": keys.len(),
        "sweep": { "per_entry": summary(&costs[0]), "batched": summary(&costs[1]) },
        "count_fdb": { "per_entry": summary(&counts[0]), "batched": summary(&counts[1]) },
        "delete_expired": { "per_entry": summary(&deletes[0]), "batched": summary(&deletes[1]) },
        "walk_by_chunk": by_chunk,
    }))
}
