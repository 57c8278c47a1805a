//! `cargo xtask fuzz --packets N [--seed S] [--program NAME]...`: every datapath program (or
//! the ones named, e.g. `vtep_port6`) through BPF_PROG_TEST_RUN on N mutated packets each,
//! checking the invariants in `vtep_tests::fuzz`. Exits 1 on a violation, printing how to replay
//! it.

use std::process::ExitCode;

use vtep_tests::fuzz::{Program, fuzz};

fn main() -> ExitCode {
    let mut packets = 1_000_000u64;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut programs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let number = value.as_deref().and_then(|v| v.parse().ok());
        match (
            arg.as_str(),
            number,
            value.as_deref().and_then(Program::named),
        ) {
            ("--packets", Some(v), _) => packets = v,
            ("--seed", Some(v), _) => seed = v,
            ("--program", _, Some(p)) => programs.push(p),
            _ => {
                let names: Vec<_> = Program::ALL.iter().map(|p| p.name()).collect();
                eprintln!(
                    "usage: fuzz [--packets N] [--seed S] [--program NAME]... (NAME: {})",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if programs.is_empty() {
        programs = Program::ALL.to_vec();
    }
    let mut failed = false;
    for program in programs {
        let start = std::time::Instant::now();
        let r = fuzz(program, packets, seed);
        println!(
            "{}: {} packets in {:.1} s (seed {seed}): {} passed, {} dropped, {} redirected, {} refused by the kernel; {} encapsulations checked ({} with a wrong inner checksum); {} invariant violations",
            program.name(),
            r.packets,
            start.elapsed().as_secs_f64(),
            r.passed,
            r.dropped,
            r.redirected,
            r.refused,
            r.encapsulated,
            r.inner_checksum_wrong,
            r.failures.len()
        );
        for f in &r.failures {
            println!("{f}");
        }
        failed |= !r.failures.is_empty();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
