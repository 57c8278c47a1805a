//! prog-cost: what the decapsulation (`vtep_underlay`, and `vtep_underlay_xdp` in XDP) and
//! encapsulation (`vtep_port`) programs cost per packet by themselves, measured with
//! `BPF_PROG_TEST_RUN`, with a small (1,000 entries) and a large (1,000,000 entries) FDB.
//!
//! Prints one JSON object on stdout (medians in nanoseconds; logs go to stderr):
//! `{"decap_ns": N, "encap_ns": N, "xdp_decap_ns": N, "decap_ns_1m": N, "encap_ns_1m": N,
//! "xdp_decap_ns_1m": N, "floor_ns": N, "xdp_floor_ns": N, "decap_raw_ns": N,
//! "encap_raw_ns": N, "xdp_decap_raw_ns": N, "fdb_small": 1000, "fdb_large": 1000000,
//! "samples": N}`. An XDP test run has no skb to build, so the XDP program is measured net of
//! an empty XDP program (`xdp_floor_ns`), the TC programs net of an empty TC program.
//!
//! Both programs change the packet (encap grows it by 50 bytes, decap shrinks it), and with
//! `repeat > 1` the kernel runs the program again on the same, already changed skb, which
//! would measure another path from the second run on. So every sample is its own test run with
//! `repeat = 1`, on a fresh copy of the packet, and the raw number (`*_raw_ns`) is the median of
//! the durations the kernel measured around each run. A single run's duration includes what a
//! large repeat count would spread thin: the kernel's two clock reads and the run bracket
//! around the program. So an empty program (`r0 = 0; exit`) is measured the same way in the
//! same rounds (`floor_ns`), and `decap_ns`/`encap_ns` are the raw medians minus the floor:
//! the programs' own cost. Both datapaths (small and large FDB) stay loaded and the cases take
//! turns in rounds, so a slow phase of the machine affects them alike. The first run of each
//! case must give the expected verdict and output, and every run the expected verdict, or no
//! number is printed.
//!
//! Everything runs in a private network namespace ([`Fixture`]), removed at exit, also on an
//! error, a panic, SIGINT, SIGTERM or SIGHUP. Run as root:
//! `cargo run --release -p vtep-tests --bin prog-cost [-- --samples N] [--cpu N]` (`--cpu`
//! pins the measuring thread; `--samples` is the number of test runs per case, default
//! 200,000).

use std::{net::Ipv4Addr, process::ExitCode, time::Instant};

use anyhow::{Context as _, Result, bail, ensure};
use aya::programs::{TestRun, TestRunOptions};
use vtep::datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::{
    drop::DropReason,
    maps::{BPF_NOEXIST, DEFAULT_FDB_SIZE, FDB_REMOTE, FdbEntry, FdbKey, vtep_addr_v4},
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN, OVERHEAD_IPV4},
};
use vtep_lab::{ProgType, RawProgram};
use vtep_tests::{
    bench_tool::{block_exit_signals, pin_to, remove_namespace_on},
    fixture::{
        Fixture, NEIGH_MAC, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, TC_ACT_REDIRECT, TC_PASS, TTL,
        UL_MAC, VNI, WL0_MAC, XDP_DROP, XDP_PASS, XDP_REDIRECT, cache_next_hop, config, load_sized,
        skb_ctx, standard_vxlan, vxlan_to_us,
    },
    packet::{ETH_P_IP, IPPROTO_UDP, Ipv4, Mac, VXLAN_I, eth, parse_vxlan, udp, vxlan_header},
};

/// FDB entries in total (the fixture's own plus fillers) of the two runs.
const FDB_SMALL: u32 = 1_000;
const FDB_LARGE: u32 = 1_000_000;
/// FDB capacity for the large run; the small run has the default capacity.
const FDB_LARGE_CAPACITY: u32 = 1_100_000;
/// Test runs per case, and unmeasured runs before them.
const DEFAULT_SAMPLES: usize = 200_000;
const WARMUP: usize = 10_000;
/// The cases take turns in this many rounds, each measuring its share of the samples, so a
/// slow phase of the machine (other load) affects every case alike.
const ROUNDS: usize = 10;

/// Overlay addresses of the workloads behind port0 and behind the remote VTEP.
const WL0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const REMOTE_WL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("prog-cost: {e:#}\nusage: prog-cost [--samples N] [--cpu N] [--stages]");
            return ExitCode::from(2);
        }
    };
    // Blocked before any thread exists, so every thread inherits the mask and only the watcher
    // below takes these signals (a pending one waits for it).
    let signals = match block_exit_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("prog-cost: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let fx = Fixture::named("vtbench");
    remove_namespace_on("prog-cost", signals, fx.ns().to_string());
    eprintln!("prog-cost: namespace {}", fx.ns());
    let result = fx.run(|| {
        if let Some(cpu) = args.cpu {
            pin_to("prog-cost", cpu)?;
        }
        if args.stages {
            stages(&fx, args.samples)
        } else {
            bench(&fx, args.samples)
        }
    });
    drop(fx);
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prog-cost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line: `[--samples N] [--cpu N] [--stages]`.
struct Args {
    samples: usize,
    cpu: Option<usize>,
    /// Measure the XDP program by how far it gets instead (see [`stages`]).
    stages: bool,
}

fn parse_args() -> Result<Args> {
    let mut parsed = Args {
        samples: DEFAULT_SAMPLES,
        cpu: None,
        stages: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Result<usize> {
            let n = args
                .next()
                .with_context(|| format!("{what} needs a number"))?;
            n.parse().with_context(|| format!("{what} {n}"))
        };
        match arg.as_str() {
            "--samples" => {
                parsed.samples = number("--samples")?;
                ensure!(parsed.samples > 0, "--samples must be positive");
            }
            "--cpu" => parsed.cpu = Some(number("--cpu")?),
            "--stages" => parsed.stages = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(parsed)
}

/// Runs every case; returns the JSON report.
fn bench(fx: &Fixture, samples: usize) -> Result<String> {
    let encap_in = inner_frame(REMOTE_WL_MAC, WL0_MAC, WL0_IP, REMOTE_WL_IP);
    let decap_inner = inner_frame(WL0_MAC, REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP);
    let decap_in = standard_vxlan(&decap_inner);
    let check_encap = |out: &[u8]| -> Result<()> {
        ensure!(
            out.len() == encap_in.len() + OVERHEAD_IPV4,
            "encap output is {} bytes, want {} (the inner frame + {OVERHEAD_IPV4})",
            out.len(),
            encap_in.len() + OVERHEAD_IPV4
        );
        let v = parse_vxlan(out).map_err(anyhow::Error::msg)?;
        ensure!(
            v.eth.destination == NEIGH_MAC.0,
            "encap output goes to {:02x?}, want the neighbour's MAC {NEIGH_MAC}",
            v.eth.destination
        );
        ensure!(
            v.inner == encap_in,
            "encap output does not carry the inner frame unchanged"
        );
        Ok(())
    };
    let check_decap = |out: &[u8]| -> Result<()> {
        ensure!(
            out == decap_inner.as_slice(),
            "decap output ({} bytes) is not the inner frame ({} bytes)",
            out.len(),
            decap_inner.len()
        );
        Ok(())
    };
    // What a test run costs around a program that does nothing: the empty program on the
    // decap packet (it passes it unchanged).
    let check_floor = |out: &[u8]| -> Result<()> {
        ensure!(out == decap_in.as_slice(), "passed frame was changed");
        Ok(())
    };
    let empty =
        RawProgram::returning(ProgType::Tc, TC_PASS as i32).context("loading the empty program")?;
    let empty_xdp = RawProgram::returning(ProgType::Xdp, XDP_PASS as i32)
        .context("loading the empty XDP program")?;

    let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    let table = fx.table(VNI, PORT_IANA, TTL);
    let fixed = table.fdb_entries().len() as u32;
    // Both datapaths stay loaded, so the cases can take turns (see `ROUNDS`).
    let mut dps = Vec::new();
    for (total, capacity) in [
        (FDB_SMALL, DEFAULT_FDB_SIZE),
        (FDB_LARGE, FDB_LARGE_CAPACITY),
    ] {
        eprintln!("prog-cost: loading a datapath (FDB capacity {capacity})");
        let mut dp = load_sized(&cfg, std::slice::from_ref(&table), capacity);
        fill_fdb(&mut dp, total - fixed).context("filling the FDB")?;
        // As `vtep up` does once the remote's neighbour is resolved, and when it attaches the
        // XDP program.
        cache_next_hop(&mut dp, REMOTE_IP, fx.ul0, NEIGH_MAC, UL_MAC);
        dp.xdp_underlay()?.set(0, UL_MAC.0, 0)?;
        eprintln!("prog-cost: its FDB holds {total} entries");
        dps.push(dp);
    }
    let floor_samples = samples.div_ceil(4);
    let probes = [
        Probe {
            name: "floor: an empty program",
            prog: Runner::Raw(&empty),
            ifindex: fx.ul0,
            pkt: &decap_in,
            verdict: TC_PASS,
            check: &check_floor,
            samples: floor_samples,
        },
        Probe {
            name: "decap",
            prog: Runner::Tc(PROG_UNDERLAY),
            ifindex: fx.ul0,
            pkt: &decap_in,
            verdict: TC_ACT_REDIRECT,
            check: &check_decap,
            samples,
        },
        Probe {
            name: "encap",
            prog: Runner::Tc(PROG_PORT),
            ifindex: fx.port0,
            pkt: &encap_in,
            verdict: TC_ACT_REDIRECT,
            check: &check_encap,
            samples,
        },
        Probe {
            name: "XDP floor: an empty XDP program",
            prog: Runner::RawXdp(&empty_xdp),
            ifindex: fx.ul0,
            pkt: &decap_in,
            verdict: XDP_PASS,
            check: &check_floor,
            samples: floor_samples,
        },
        Probe {
            name: "XDP decap",
            prog: Runner::Xdp,
            ifindex: fx.ul0,
            pkt: &decap_in,
            verdict: XDP_REDIRECT,
            check: &check_decap,
            samples,
        },
    ];
    let mut cases: Vec<Case> = [FDB_SMALL, FDB_LARGE]
        .iter()
        .enumerate()
        .flat_map(|(dp, fdb)| {
            probes.iter().map(move |probe| Case {
                name: format!("{} (FDB {fdb})", probe.name),
                dp,
                probe,
                durations: Vec::with_capacity(probe.samples),
            })
        })
        .collect();
    let medians = measure(&mut dps, &mut cases)?;
    let [
        floor,
        decap_raw,
        encap_raw,
        xdp_floor,
        xdp_decap_raw,
        floor_1m,
        decap_raw_1m,
        encap_raw_1m,
        xdp_floor_1m,
        xdp_decap_raw_1m,
    ] = medians[..]
    else {
        unreachable!("ten cases");
    };
    // The program's own cost: what a run takes beyond an empty program's run (of its type),
    // measured in the same rounds.
    let (decap, encap) = (decap_raw - floor, encap_raw - floor);
    let (decap_1m, encap_1m) = (decap_raw_1m - floor_1m, encap_raw_1m - floor_1m);
    let (xdp_decap, xdp_decap_1m) = (xdp_decap_raw - xdp_floor, xdp_decap_raw_1m - xdp_floor_1m);
    // Written by hand to keep the documented key order (serde_json sorts keys).
    Ok(format!(
        "{{\"decap_ns\": {decap:.1}, \"encap_ns\": {encap:.1}, \"xdp_decap_ns\": {xdp_decap:.1}, \
         \"decap_ns_1m\": {decap_1m:.1}, \"encap_ns_1m\": {encap_1m:.1}, \
         \"xdp_decap_ns_1m\": {xdp_decap_1m:.1}, \"floor_ns\": {floor:.1}, \
         \"xdp_floor_ns\": {xdp_floor:.1}, \"decap_raw_ns\": {decap_raw:.1}, \
         \"encap_raw_ns\": {encap_raw:.1}, \"xdp_decap_raw_ns\": {xdp_decap_raw:.1}, \
         \"fdb_small\": {FDB_SMALL}, \"fdb_large\": {FDB_LARGE}, \"samples\": {samples}}}"
    ))
}

/// Where the XDP decapsulation program's time goes: the program on packets that end it after
/// successive stages, each net of an empty XDP program measured in the same rounds (FDB of
/// 1,000 entries). Returns the JSON report: `{"not_ours_ns": N, "unknown_vni_ns": N,
/// "flood_ns": N, "decap_ns": N, "decap_no_learning_ns": N, "xdp_floor_ns": N, "samples": N}`, where not-ours is another
/// UDP port (parsed up to the outer UDP header), unknown-VNI adds the VNI lookup and the drop
/// count, flood adds the outer checks and the FDB lookup of the inner destination (passed to
/// TC, nothing learned), and decap is the whole path (learning, `bpf_xdp_adjust_head`, the MTU
/// check, the counters, the devmap redirect), and once more in a VNI that does not learn.
fn stages(fx: &Fixture, samples: usize) -> Result<String> {
    let inner = inner_frame(WL0_MAC, REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP);
    let unknown_dst = inner_frame(
        Mac([0x02, 0xee, 0, 0, 0, 1]),
        REMOTE_WL_MAC,
        REMOTE_WL_IP,
        WL0_IP,
    );
    let not_ours = vxlan_to_us(9999, vxlan_header(VXLAN_I, VNI), &inner);
    let unknown_vni = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI + 1), &inner);
    let flood = standard_vxlan(&unknown_dst);
    let decap = standard_vxlan(&inner);
    let empty_xdp = RawProgram::returning(ProgType::Xdp, XDP_PASS as i32)
        .context("loading the empty XDP program")?;
    let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    let table = fx.table(VNI, PORT_IANA, TTL);
    // The same datapath, and one whose VNI does not learn: what learning costs.
    let mut quiet = table.clone();
    quiet.learning = false;
    let mut dps = Vec::new();
    for t in [&table, &quiet] {
        let mut dp = load_sized(&cfg, std::slice::from_ref(t), DEFAULT_FDB_SIZE);
        let fixed = t.fdb_entries().len() as u32;
        fill_fdb(&mut dp, FDB_SMALL - fixed).context("filling the FDB")?;
        cache_next_hop(&mut dp, REMOTE_IP, fx.ul0, NEIGH_MAC, UL_MAC);
        dp.xdp_underlay()?.set(0, UL_MAC.0, 0)?;
        dps.push(dp);
    }
    let unchanged = |pkt: &[u8]| {
        let pkt = pkt.to_vec();
        move |out: &[u8]| -> Result<()> {
            ensure!(out == pkt.as_slice(), "the frame was changed");
            Ok(())
        }
    };
    let (c_not_ours, c_unknown, c_flood, c_floor) = (
        unchanged(&not_ours),
        unchanged(&unknown_vni),
        unchanged(&flood),
        unchanged(&decap),
    );
    let c_decap = |out: &[u8]| -> Result<()> {
        ensure!(
            out == inner.as_slice(),
            "decap output is not the inner frame"
        );
        Ok(())
    };
    let probe = |name, prog, pkt, verdict, check| Probe {
        name,
        prog,
        ifindex: fx.ul0,
        pkt,
        verdict,
        check,
        samples,
    };
    let probes = [
        probe(
            "XDP floor",
            Runner::RawXdp(&empty_xdp),
            &decap,
            XDP_PASS,
            &c_floor,
        ),
        probe("not ours", Runner::Xdp, &not_ours, XDP_PASS, &c_not_ours),
        probe(
            "unknown VNI",
            Runner::Xdp,
            &unknown_vni,
            XDP_DROP,
            &c_unknown,
        ),
        probe("flood", Runner::Xdp, &flood, XDP_PASS, &c_flood),
        probe("decap", Runner::Xdp, &decap, XDP_REDIRECT, &c_decap),
        probe(
            "decap, no learning",
            Runner::Xdp,
            &decap,
            XDP_REDIRECT,
            &c_decap,
        ),
    ];
    let last = probes.len() - 1;
    let mut cases: Vec<Case> = probes
        .iter()
        .enumerate()
        .map(|(i, probe)| Case {
            name: probe.name.to_string(),
            dp: usize::from(i == last),
            probe,
            durations: Vec::with_capacity(samples),
        })
        .collect();
    let medians = measure(&mut dps, &mut cases)?;
    let [floor, not_ours, unknown_vni, flood, decap, no_learning] = medians[..] else {
        unreachable!("six cases");
    };
    Ok(format!(
        "{{\"not_ours_ns\": {:.1}, \"unknown_vni_ns\": {:.1}, \"flood_ns\": {:.1}, \
         \"decap_ns\": {:.1}, \"decap_no_learning_ns\": {:.1}, \"xdp_floor_ns\": {floor:.1}, \
         \"samples\": {samples}}}",
        not_ours - floor,
        unknown_vni - floor,
        flood - floor,
        decap - floor,
        no_learning - floor,
    ))
}

/// Runs every case (in its datapath of `dps`) through a warm-up, then [`ROUNDS`] rounds in
/// which the cases take turns, each measuring its share of its samples; returns each case's
/// median in nanoseconds, in order.
fn measure(dps: &mut [Datapath], cases: &mut [Case]) -> Result<Vec<f64>> {
    for case in cases.iter_mut() {
        run_case(&mut dps[case.dp], case, WARMUP, 0)?;
    }
    for round in 0..ROUNDS {
        for case in cases.iter_mut() {
            // This round's share of the samples, after a short warm-up: the other cases ran
            // in between.
            let total = case.probe.samples;
            let n = total * (round + 1) / ROUNDS - total * round / ROUNDS;
            run_case(&mut dps[case.dp], case, WARMUP / 10, n)?;
        }
    }
    Ok(cases.iter_mut().map(Case::report).collect())
}

/// A 60-byte Ethernet/IPv4/UDP frame (18 bytes of payload), the smallest Ethernet frame
/// without padding.
fn inner_frame(dst: Mac, src: Mac, src_ip: Ipv4Addr, dst_ip: Ipv4Addr) -> Vec<u8> {
    let payload = [0x5a; 18];
    let frame = eth(
        dst,
        src,
        ETH_P_IP,
        &Ipv4::new(src_ip, dst_ip, IPPROTO_UDP).build(&udp(src_ip, dst_ip, 40000, 7000, &payload)),
    );
    debug_assert_eq!(frame.len(), 60);
    frame
}

/// Adds `n` entries for distinct MACs (02:fd:xx:xx:xx:xx) in VNI 100, all behind the remote
/// VTEP.
fn fill_fdb(dp: &mut Datapath, n: u32) -> Result<()> {
    let mut fdb = dp.fdb()?;
    let entry = FdbEntry {
        kind: FDB_REMOTE,
        ifindex: 0,
        remote: vtep_addr_v4(REMOTE_IP.octets()),
        port_flags: 0,
        flags: 0,
        seen: 0,
    };
    let start = Instant::now();
    for i in 0..n {
        let b = i.to_be_bytes();
        let key = FdbKey {
            vni: VNI,
            mac: [0x02, 0xfd, b[0], b[1], b[2], b[3]],
            _pad: [0; 2],
        };
        fdb.insert(key, entry, BPF_NOEXIST)
            .with_context(|| format!("filler entry {i}"))?;
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "prog-cost:   {} of {n} filler entries ({:.1} s)",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Which program a probe runs.
enum Runner<'a> {
    /// A TC program of the datapath, by name.
    Tc(&'static str),
    /// The datapath's XDP program.
    Xdp,
    /// A program loaded from instructions: the empty TC program, which takes the skb context.
    Raw(&'a RawProgram),
    /// The empty XDP program, which (as the datapath's) runs without a context.
    RawXdp(&'a RawProgram),
}

/// A program run on a packet, and what it must give.
struct Probe<'a> {
    name: &'static str,
    prog: Runner<'a>,
    /// The interface the packet arrives on (TC programs only: XDP test runs take no context).
    ifindex: u32,
    pkt: &'a [u8],
    /// The verdict every run must give.
    verdict: u32,
    /// What the output of the first run must pass.
    check: &'a dyn Fn(&[u8]) -> Result<()>,
    /// Runs to measure in all.
    samples: usize,
}

/// A probe in one of the datapaths, and the durations measured so far.
struct Case<'a> {
    name: String,
    /// Index of the datapath.
    dp: usize,
    probe: &'a Probe<'a>,
    durations: Vec<u64>,
}

impl Case<'_> {
    /// Logs the distribution to stderr; returns the median in nanoseconds.
    fn report(&mut self) -> f64 {
        let d = &mut self.durations;
        d.sort_unstable();
        let median = median(d);
        let pct = |p: usize| d[(d.len() - 1) * p / 100];
        // The kernel's clock may tick coarsely (10 ns on AMD Zen), which quantizes the median;
        // the mean of the middle 90% resolves finer.
        let middle = &d[d.len() / 20..d.len() - d.len() / 20];
        let trimmed_mean = middle.iter().sum::<u64>() as f64 / middle.len() as f64;
        eprintln!(
            "prog-cost: {}: median {median:.1} ns (trimmed mean {trimmed_mean:.1}, min {}, \
             p10 {}, p90 {}, p99 {}; {} runs)",
            self.name,
            d[0],
            pct(10),
            pct(90),
            pct(99),
            d.len()
        );
        median
    }
}

/// Runs `case` `warmup + n` times, one packet per test run, and keeps the last `n`
/// kernel-measured durations. Fails when a verdict is not the case's, or when the first run
/// of the case does not give the output it checks.
fn run_case(dp: &mut Datapath, case: &mut Case, warmup: usize, n: usize) -> Result<()> {
    let (name, probe) = (&case.name, case.probe);
    let prog = match probe.prog {
        Runner::Tc(p) => p,
        Runner::Xdp => "the XDP program",
        Runner::Raw(_) | Runner::RawXdp(_) => "the empty program",
    };
    let ctx = skb_ctx(probe.ifindex);
    let mut out = vec![0u8; 4096];
    let drops_before = drop_counts(dp)?;
    let summary = |r: aya::programs::TestRunResult| {
        (
            r.return_value,
            r.data_size_out,
            r.duration.as_nanos() as u64,
        )
    };
    let mut run_once: Box<RunOnce> = match probe.prog {
        Runner::Tc(p) => {
            let program = dp.program(p)?;
            Box::new(move |out| {
                Ok(summary(program.test_run(opts(
                    probe.pkt,
                    out,
                    Some(&ctx),
                ))?))
            })
        }
        Runner::Xdp => {
            let program = dp.xdp_program()?;
            Box::new(move |out| Ok(summary(program.test_run(opts(probe.pkt, out, None))?)))
        }
        Runner::Raw(p) => Box::new(move |out| p.test_run(probe.pkt, out, &ctx)),
        Runner::RawXdp(p) => Box::new(move |out| p.test_run(probe.pkt, out, &[])),
    };
    let first = case.durations.is_empty() && warmup + n > 0;
    let mut wrong = None;
    for i in 0..warmup + n {
        let (verdict, size_out, duration) =
            run_once(&mut out).with_context(|| format!("{name}: BPF_PROG_TEST_RUN of {prog}"))?;
        if verdict != probe.verdict {
            wrong = Some(verdict);
            break;
        }
        if i == 0 && first {
            (probe.check)(&out[..size_out as usize])
                .with_context(|| format!("{name}: first run"))?;
        }
        if i >= warmup {
            case.durations.push(duration);
        }
    }
    drop(run_once);
    if let Some(got) = wrong {
        let after = drop_counts(dp)?;
        let moved: Vec<&str> = DropReason::ALL
            .iter()
            .filter(|r| after[**r as usize] != drops_before[**r as usize])
            .map(|r| r.name())
            .collect();
        bail!(
            "{name}: {prog} returned verdict {got}, want {}; drops counted: {moved:?}",
            probe.verdict
        );
    }
    Ok(())
}

/// What one test run gave: verdict, output size, duration in ns.
type RunSummary = (u32, u32, u64);
/// One test run, its output written to the buffer given.
type RunOnce<'a> = dyn FnMut(&mut [u8]) -> Result<RunSummary> + 'a;

/// Options for one test run of `pkt` (output to `out`, context `ctx`).
fn opts<'a>(pkt: &'a [u8], out: &'a mut [u8], ctx: Option<&'a [u8]>) -> TestRunOptions<'a> {
    TestRunOptions {
        data_in: Some(pkt),
        data_out: Some(out),
        ctx_in: ctx,
        repeat: 1,
        ..Default::default()
    }
}

/// The drop counters, summed over CPUs, by reason.
fn drop_counts(dp: &mut Datapath) -> Result<Vec<u64>> {
    let map = dp.drops()?;
    DropReason::ALL
        .iter()
        .map(|r| Ok(map.get(&(*r as u32), 0)?.iter().sum()))
        .collect()
}

/// The median of sorted, non-empty `v`.
fn median(v: &[u64]) -> f64 {
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid] as f64
    } else {
        (v[mid - 1] + v[mid]) as f64 / 2.0
    }
}
