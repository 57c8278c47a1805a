//! `cargo xtask build | run | test | demo | bench | fuzz | lab | man`: the project's workflow. The demo,
//! the benchmark and `lab` build their hosts with the vtep-lab crate, which the namespace tests
//! use too.

mod bench;
mod bench_ageing;
mod bench_store;
mod cmd;
mod demo;
mod demo_store;
mod failover;
mod lab;
mod labcmd;
mod man;
mod setup;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the build needs (once), then build the eBPF object and the vtep binary.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build, then run vtep with the given arguments: `cargo xtask run -- up -c FILE`.
    Run {
        #[arg(long)]
        release: bool,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then run every test: unit, BPF_PROG_TEST_RUN datapath and namespace tests.
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then show VXLAN between two simulated hosts, and remove everything again.
    Demo {
        /// Instead, show scenario S5: three hosts programmed from one etcd (a `[store]` in
        /// each config, nothing remote), workloads added and removed at run time.
        #[arg(long)]
        store: bool,
    },
    /// A standing lab for running the examples by hand: `lab up s2` builds scenario S2's hosts
    /// (namespaces lab-s2-a, lab-s2-b) and prints the commands; `lab down` removes it.
    Lab {
        #[command(subcommand)]
        command: labcmd::LabCommand,
    },
    /// Measure vtep (TC, and with XDP decap) against the kernel vxlan driver + bridge, the
    /// floor (redirect-only programs) and a direct veth, interleaved.
    Bench {
        /// Interleaved rounds (kernel, vtep, vtep-xdp, floor, direct per round); medians are
        /// reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds per UDP and TCP measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// Write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<std::path::PathBuf>,
        /// Draw the comparison as a PNG to FILE.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
        /// Instead, measure scenario S4's routed path (one TCP stream between workloads in two
        /// subnets): the article's kernel setup against vtep with the example configs.
        #[arg(long)]
        routed: bool,
        /// Instead, measure over an IPv6 underlay: the kernel driver (UDP checksums on) against
        /// vtep with checksums and with `udp6_zero_csum_tx` (pps and TCP).
        #[arg(long, conflicts_with = "routed")]
        ipv6: bool,
        /// Instead, measure scenario S5 at scale (release build): hosts on one underlay and one
        /// etcd; how fast runtime workloads reach every other host's FDB, a crashed host's
        /// expiry, memory, and etcd keys and watch events per workload.
        #[arg(long, conflicts_with_all = ["routed", "ipv6", "failover", "ageing", "plot"])]
        store: bool,
        /// With --store: the number of hosts.
        #[arg(long, default_value_t = 16, requires = "store")]
        hosts: usize,
        /// With --store: workloads added (and removed) at run time, on the hosts in turn.
        #[arg(long, default_value_t = 20, requires = "store")]
        adds: usize,
        /// With --store: station records written straight into etcd for the bulk phase (the
        /// cost of a change with a large view); 0 skips it.
        #[arg(long, default_value_t = 10_000, requires = "store")]
        records: usize,
        /// Instead, measure what the kernel driver and vtep lose when the underlay path to the
        /// remote VTEP fails and its route moves to another router during a 1,000 pps flow.
        #[arg(long, conflicts_with_all = ["routed", "ipv6"])]
        failover: bool,
        /// Instead, measure what one ageing sweep of an FDB of 1,000, 100,000 and 1,000,000
        /// entries costs (wall and CPU time), batched against the per-entry walk it replaced
        /// (`--rounds` sweeps each, more for small FDBs; `--json` writes the tool's report).
        #[arg(long, conflicts_with_all = ["routed", "ipv6", "failover", "plot"])]
        ageing: bool,
    },
    /// Run every datapath program through BPF_PROG_TEST_RUN on mutated packets and check the
    /// invariants of tests/src/fuzz.rs; fails on a violation, printing how to replay it.
    Fuzz {
        /// Mutated packets per program.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// The mutations' random seed (default: from the clock; the report prints it).
        #[arg(long)]
        seed: Option<u64>,
        /// Only this program (its name in the object, e.g. `vtep_port6`); repeatable. Default:
        /// all, for both underlay families.
        #[arg(long = "program")]
        programs: Vec<String>,
    },
    /// Render the manual pages (vtep(8), vtep-up(8), ... one per subcommand, vtep.toml(5)) into
    /// dist/man from the command line's definition and the templates in docs/man. Run it after
    /// changing either, and commit the pages: the `man` tests fail while they are stale.
    Man {
        /// Also install them under PREFIX (man8/, man5/), mode 0644.
        #[arg(
            long,
            value_name = "PREFIX",
            num_args = 0..=1,
            default_missing_value = "/usr/local/share/man"
        )]
        install: Option<std::path::PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Build { release } => build(release).map(drop),
        Command::Run { release, args } => {
            let bin = build(release)?;
            cmd::exec(&bin, &args)
        }
        Command::Test { args } => {
            build(false)?;
            let mut cargo_args = vec!["--workspace", "--", "--test-threads=2"];
            cargo_args.extend(args.iter().map(String::as_str));
            cmd::cargo_test(&cargo_args)
        }
        Command::Fuzz {
            packets,
            seed,
            programs,
        } => {
            build(false)?;
            let mut fuzz = cmd::tests_tool("fuzz");
            fuzz.args(["--packets", &packets.to_string()]);
            if let Some(seed) = seed {
                fuzz.args(["--seed", &seed.to_string()]);
            }
            for program in &programs {
                fuzz.args(["--program", program]);
            }
            let status = fuzz.status()?;
            anyhow::ensure!(status.success(), "the fuzzer found violations ({status})");
            Ok(())
        }
        Command::Man { install } => man::run(install.as_deref()),
        Command::Lab { command } => {
            // Only `up` needs the binary built; `down` uses the one `up` recorded.
            let bin = match command {
                labcmd::LabCommand::Up { scenario } => {
                    // Refused before the build, which may take minutes.
                    vtep_lab::scenario::refuse_if_up(
                        scenario,
                        std::path::Path::new(vtep_lab::scenario::STATE_DIR),
                    )?;
                    build(false)?
                }
                _ => debug_bin(),
            };
            labcmd::run(command, &cmd::workspace_root(), &bin)
        }
        Command::Demo { store } => {
            let bin = build(false)?;
            if store {
                return demo_store::run(&bin);
            }
            demo::run(&bin)
        }
        Command::Bench {
            rounds,
            seconds,
            json,
            plot,
            routed,
            ipv6,
            failover,
            ageing,
            store,
            hosts,
            adds,
            records,
        } => {
            if store {
                // The control plane's speed and memory are the point: the optimised build.
                let bin = build(true)?;
                return bench_store::run(
                    &bin,
                    &bench_store::Options {
                        hosts,
                        adds,
                        records,
                        json,
                    },
                );
            }
            let bin = build(false)?;
            if ageing {
                return bench_ageing::run(rounds, json.as_deref());
            }
            if failover {
                return failover::run(&bin, rounds);
            }
            if routed {
                return bench::routed(&bin, rounds, seconds);
            }
            if ipv6 {
                return bench::ipv6(&bin, rounds, seconds);
            }
            bench::run(
                &bin,
                &bench::Options {
                    rounds,
                    seconds,
                    json,
                    plot,
                },
            )
        }
    }
}

/// Ensures the toolchain pieces, builds vtep and returns the binary's path.
fn build(release: bool) -> Result<std::path::PathBuf> {
    setup::ensure()?;
    let mut args = vec!["build", "--package", "vtep-user"];
    if release {
        args.push("--release");
    }
    cmd::cargo(&args)?;
    Ok(cmd::workspace_root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("vtep"))
}

/// Where `build(false)` puts the binary.
fn debug_bin() -> std::path::PathBuf {
    cmd::workspace_root().join("target/debug/vtep")
}
