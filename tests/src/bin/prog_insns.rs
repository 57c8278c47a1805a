//! prog-insns: how big each datapath program is once the kernel has verified it, for both
//! underlay families: the instructions the verifier processed (its complexity limit is
//! 1,000,000) and the instructions left after it removed dead code ("xlated"), and how much of
//! the debug log (`vtep up --trace-datapath`) is left in them: calls of the helpers that write a
//! record (`bpf_ringbuf_reserve`/`_discard` on the log's ring buffer) and references to the
//! log's maps. Loads the programs only (no namespace, nothing attached).
//!
//! Run as root: `cargo run -p vtep-tests --bin prog-insns [-- --trace | --trace-vni N |
//! --traced-off]` (default: the programs vtep loads with tracing off; `--trace-vni` implies
//! `--trace`; `--traced-off`: the `…_trace` programs with the global `TRACE` zero, which vtep
//! never loads, to see the verifier strip their log calls).

use anyhow::{Result, bail};
use vtep::datapath::trace::{Trace, parse_vni};
use vtep_tests::xlated::{Kallsyms, LogUse, load_each};

fn main() -> Result<()> {
    let (traced, trace) = parse_args()?;
    let syms = Kallsyms::read()?;
    println!(
        "programs: {}, tracing: {trace}",
        if traced { "…_trace" } else { "untraced" }
    );
    println!(
        "{:<24} {:>9} {:>8} {:>10} {:>9}",
        "program", "verified", "xlated", "log-calls", "log-refs"
    );
    let mut refused = 0;
    for ipv6 in [false, true] {
        for (name, prog) in load_each(ipv6, traced, trace.globals())? {
            match prog {
                Ok(prog) => {
                    let LogUse { calls, map_refs } = prog.log_use(&syms);
                    println!(
                        "{name:<24} {:>9} {:>8} {calls:>10} {map_refs:>9}",
                        prog.xlated.verified,
                        prog.xlated.len(),
                    );
                }
                Err(why) => {
                    refused += 1;
                    println!("{name:<24} refused: {why}");
                }
            }
        }
    }
    if refused > 0 {
        bail!("the kernel refused {refused} program(s)");
    }
    Ok(())
}

/// Which programs (traced or not) with which setting.
fn parse_args() -> Result<(bool, Trace)> {
    let mut args = std::env::args().skip(1);
    let parsed = match (args.next().as_deref(), args.next()) {
        (None, _) => (false, Trace::Off),
        (Some("--trace"), None) => (true, Trace::All),
        (Some("--trace-vni"), Some(v)) => {
            (true, Trace::Vni(parse_vni(&v).map_err(anyhow::Error::msg)?))
        }
        (Some("--traced-off"), None) => (true, Trace::Off),
        _ => bail!("usage: prog-insns [--trace | --trace-vni N | --traced-off]"),
    };
    Ok(parsed)
}
