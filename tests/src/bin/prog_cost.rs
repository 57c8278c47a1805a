//! prog-cost: what the decapsulation (`vtep_underlay`) and encapsulation (`vtep_port`) programs
//! cost per packet by themselves, measured with `BPF_PROG_TEST_RUN`, with a small (1,000
//! entries) and a large (1,000,000 entries) FDB.
//!
//! Prints one JSON object on stdout (medians in nanoseconds; logs go to stderr):
//! `{"decap_ns": N, "encap_ns": N, "decap_ns_1m": N, "encap_ns_1m": N, "floor_ns": N,
//! "decap_raw_ns": N, "encap_raw_ns": N, "fdb_small": 1000, "fdb_large": 1000000, "samples": N}`.
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
use nix::{
    sched::{CpuSet, sched_setaffinity},
    sys::signal::{SigSet, Signal},
    unistd::Pid,
};
use vtep::datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::{
    drop::DropReason,
    maps::{BPF_NOEXIST, DEFAULT_FDB_SIZE, FDB_REMOTE, FdbEntry, FdbKey},
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN, OVERHEAD_IPV4},
};
use vtep_tests::{
    fixture::{
        Fixture, NEIGH_MAC, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, TC_ACT_OK, TC_ACT_REDIRECT, TTL,
        UL_MAC, VNI, WL0_MAC, cache_next_hop, config, load_sized, skb_ctx, standard_vxlan,
    },
    packet::{ETH_P_IP, IPPROTO_UDP, Ipv4, Mac, eth, parse_vxlan, udp},
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
            eprintln!("prog-cost: {e:#}\nusage: prog-cost [--samples N] [--cpu N]");
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
    remove_namespace_on(signals, fx.ns().to_string());
    eprintln!("prog-cost: namespace {}", fx.ns());
    let result = fx.run(|| {
        if let Some(cpu) = args.cpu {
            pin_to(cpu)?;
        }
        bench(&fx, args.samples)
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

/// The command line: `[--samples N] [--cpu N]`.
struct Args {
    samples: usize,
    cpu: Option<usize>,
}

fn parse_args() -> Result<Args> {
    let mut parsed = Args {
        samples: DEFAULT_SAMPLES,
        cpu: None,
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
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(parsed)
}

fn block_exit_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block().context("blocking signals")?;
    Ok(set)
}

/// On any of `signals`, removes namespace `ns` and exits (the fixture's `Drop` does not run
/// when a signal ends the process).
fn remove_namespace_on(signals: SigSet, ns: String) {
    std::thread::spawn(move || {
        if let Ok(sig) = signals.wait() {
            eprintln!("prog-cost: {sig}, removing namespace {ns}");
            vtep_lab::delete_netns(&ns);
            std::process::exit(128 + sig as i32);
        }
    });
}

/// Keeps the calling thread on `cpu`.
fn pin_to(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))?;
    eprintln!("prog-cost: measuring on CPU {cpu}");
    Ok(())
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
    let empty = EmptyProgram::load().context("loading the empty program")?;

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
        // As `vtep up` does once the remote's neighbour is resolved.
        cache_next_hop(&mut dp, REMOTE_IP, fx.ul0, NEIGH_MAC, UL_MAC);
        eprintln!("prog-cost: its FDB holds {total} entries");
        dps.push(dp);
    }
    let floor_samples = samples.div_ceil(4);
    let probes = [
        Probe {
            name: "floor: an empty program",
            prog: None,
            ifindex: fx.ul0,
            pkt: &decap_in,
            verdict: TC_ACT_OK,
            check: &check_floor,
            samples: floor_samples,
        },
        Probe {
            name: "decap",
            prog: Some(PROG_UNDERLAY),
            ifindex: fx.ul0,
            pkt: &decap_in,
            verdict: TC_ACT_REDIRECT,
            check: &check_decap,
            samples,
        },
        Probe {
            name: "encap",
            prog: Some(PROG_PORT),
            ifindex: fx.port0,
            pkt: &encap_in,
            verdict: TC_ACT_REDIRECT,
            check: &check_encap,
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
    for case in &mut cases {
        run_case(&mut dps[case.dp], &empty, case, WARMUP, 0)?;
    }
    for round in 0..ROUNDS {
        for case in &mut cases {
            // This round's share of the samples, after a short warm-up: the other cases ran
            // in between.
            let total = case.probe.samples;
            let n = total * (round + 1) / ROUNDS - total * round / ROUNDS;
            run_case(&mut dps[case.dp], &empty, case, WARMUP / 10, n)?;
        }
    }
    let medians: Vec<f64> = cases.iter_mut().map(Case::report).collect();
    let [
        floor,
        decap_raw,
        encap_raw,
        floor_1m,
        decap_raw_1m,
        encap_raw_1m,
    ] = medians[..]
    else {
        unreachable!("six cases");
    };
    // The program's own cost: what a run takes beyond an empty program's run, measured in the
    // same rounds.
    let (decap, encap) = (decap_raw - floor, encap_raw - floor);
    let (decap_1m, encap_1m) = (decap_raw_1m - floor_1m, encap_raw_1m - floor_1m);
    // Written by hand to keep the documented key order (serde_json sorts keys).
    Ok(format!(
        "{{\"decap_ns\": {decap:.1}, \"encap_ns\": {encap:.1}, \"decap_ns_1m\": {decap_1m:.1}, \
         \"encap_ns_1m\": {encap_1m:.1}, \"floor_ns\": {floor:.1}, \"decap_raw_ns\": {decap_raw:.1}, \
         \"encap_raw_ns\": {encap_raw:.1}, \"fdb_small\": {FDB_SMALL}, \"fdb_large\": {FDB_LARGE}, \
         \"samples\": {samples}}}"
    ))
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
        remote: REMOTE_IP.octets(),
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

/// A program run on a packet, and what it must give.
struct Probe<'a> {
    name: &'static str,
    /// The datapath program, or `None` for the empty program.
    prog: Option<&'static str>,
    /// The interface the packet arrives on.
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
fn run_case(
    dp: &mut Datapath,
    empty: &EmptyProgram,
    case: &mut Case,
    warmup: usize,
    n: usize,
) -> Result<()> {
    let (name, probe) = (&case.name, case.probe);
    let prog = probe.prog.unwrap_or("the empty program");
    let ctx = skb_ctx(probe.ifindex);
    let mut out = vec![0u8; 4096];
    let drops_before = drop_counts(dp)?;
    let mut program = match probe.prog {
        Some(p) => Some(dp.program(p)?),
        None => None,
    };
    let first = case.durations.is_empty() && warmup + n > 0;
    let mut wrong = None;
    for i in 0..warmup + n {
        let run = match program.as_mut() {
            Some(program) => program
                .test_run(TestRunOptions {
                    data_in: Some(probe.pkt),
                    data_out: Some(&mut out),
                    ctx_in: Some(&ctx),
                    repeat: 1,
                    ..Default::default()
                })
                .map(|r| {
                    (
                        r.return_value,
                        r.data_size_out,
                        r.duration.as_nanos() as u64,
                    )
                })
                .map_err(anyhow::Error::from),
            None => empty.test_run(probe.pkt, &mut out, &ctx),
        };
        let (verdict, size_out, duration) =
            run.with_context(|| format!("{name}: BPF_PROG_TEST_RUN of {prog}"))?;
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

/// A TC program that returns `TC_ACT_OK` and does nothing else (`r0 = 0; exit`), loaded
/// directly with bpf(2): what a `BPF_PROG_TEST_RUN` costs around any program (the kernel's
/// clock reads, the run bracket, the context conversion) is measured on it and subtracted.
struct EmptyProgram {
    fd: std::os::fd::OwnedFd,
}

impl EmptyProgram {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
    /// `union bpf_attr` is larger than what either command uses; the rest stays zero.
    const ATTR_LEN: usize = 160;

    fn load() -> Result<Self> {
        // mov64 r0, 0; exit
        let insns: [u64; 2] = [0xb7, 0x95];
        let license = c"GPL";
        let mut attr = [0u8; Self::ATTR_LEN];
        attr[0..4].copy_from_slice(&Self::BPF_PROG_TYPE_SCHED_CLS.to_ne_bytes());
        attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
        attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        // SAFETY: the instructions (2 of them, as stored) and the license string are locals
        // that live until the call returns.
        let fd = unsafe { Self::bpf(Self::BPF_PROG_LOAD, &mut attr) }.context("BPF_PROG_LOAD")?;
        // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        Ok(Self { fd })
    }

    /// bpf(2) command `cmd` with `attr`; returns what the call returns (a descriptor for a
    /// load). Fails with the call's error.
    ///
    /// # Safety
    ///
    /// Every pointer in `attr` points to a live buffer at least as long as the length stored
    /// next to it, writable where the kernel writes (the output and context of a test run).
    unsafe fn bpf(
        cmd: libc::c_long,
        attr: &mut [u8; Self::ATTR_LEN],
    ) -> std::io::Result<libc::c_long> {
        // SAFETY: `attr` is a live, writable buffer of the length given, as large as what
        // either command reads; the caller vouches for the pointers inside it.
        let ret =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), Self::ATTR_LEN as u32) };
        if ret < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ret)
    }

    /// One test run on `pkt` with context `ctx`: (verdict, output size, duration in ns).
    fn test_run(&self, pkt: &[u8], out: &mut [u8], ctx: &[u8]) -> Result<(u32, u32, u64)> {
        use std::os::fd::AsRawFd as _;
        let mut attr = [0u8; Self::ATTR_LEN];
        let put32 = |a: &mut [u8; Self::ATTR_LEN], off: usize, v: u32| {
            a[off..off + 4].copy_from_slice(&v.to_ne_bytes())
        };
        let put64 = |a: &mut [u8; Self::ATTR_LEN], off: usize, v: u64| {
            a[off..off + 8].copy_from_slice(&v.to_ne_bytes())
        };
        // struct { prog_fd, retval, data_size_in, data_size_out, data_in, data_out, repeat,
        // duration, ctx_size_in, ctx_size_out, ctx_in, ctx_out, ... } (include/uapi/linux/bpf.h)
        put32(&mut attr, 0, self.fd.as_raw_fd() as u32);
        put32(&mut attr, 8, pkt.len() as u32);
        put32(&mut attr, 12, out.len() as u32);
        put64(&mut attr, 16, pkt.as_ptr() as u64);
        put64(&mut attr, 24, out.as_mut_ptr() as u64);
        put32(&mut attr, 32, 1);
        put32(&mut attr, 40, ctx.len() as u32);
        put64(&mut attr, 48, ctx.as_ptr() as u64);
        // SAFETY: `pkt`, `out` and `ctx` are borrowed for the call, with their own lengths
        // stored; the kernel writes at most `out.len()` bytes of output.
        unsafe { Self::bpf(Self::BPF_PROG_TEST_RUN, &mut attr) }.context("BPF_PROG_TEST_RUN")?;
        let get32 = |off: usize| u32::from_ne_bytes(attr[off..off + 4].try_into().unwrap());
        Ok((get32(4), get32(12), u64::from(get32(36))))
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
