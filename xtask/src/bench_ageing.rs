//! `cargo xtask bench --ageing`: what one ageing sweep of the FDB costs at 1,000, 100,000 and
//! 1,000,000 entries, batched (vtep) against per-entry (before issue 13), from the
//! `ageing-cost` tool of the tests crate (tests/src/bin/ageing_cost.rs, which says how).

use std::{path::Path, process::Stdio};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::cmd;

/// Runs `ageing-cost` with `rounds` (sweeps per walk and size, more for small FDBs), prints a
/// table, and writes the tool's JSON to `json` when given. Fails when the tool does.
pub fn run(rounds: u32, json: Option<&Path>) -> Result<()> {
    let out = cmd::tests_tool("ageing-cost")
        .args(["--rounds", &rounds.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("running ageing-cost")?;
    if !out.status.success() {
        bail!("ageing-cost failed ({})", out.status);
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).context("parsing ageing-cost output")?;
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print_table(&report);
    Ok(())
}

fn print_table(r: &Value) {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nOne ageing sweep (medians; CPU = the sweeping thread's user + system time; 1 % of the \
         entries expired per sweep)\n"
    );
    println!(
        "| FDB entries | walk | wall | CPU | of which system | one core, a sweep every {} s |",
        r["interval_s"]
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: |");
    let empty = Vec::new();
    let sizes = r["sizes"].as_array().unwrap_or(&empty);
    for s in sizes {
        for walk in ["per_entry", "batched"] {
            let c = &s["sweep"][walk];
            println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.0} ms | {:.3} % |",
                s["entries"],
                walk.replace('_', "-"),
                f(c, "wall_ms"),
                f(c, "cpu_ms"),
                f(c, "sys_ms"),
                f(c, "core_percent_every_30s"),
            );
        }
    }
    println!(
        "\n| FDB entries | sweep CPU, per-entry / batched | count_fdb CPU, per-entry / batched | deleting the expired, per-entry / batched |"
    );
    println!("| ---: | ---: | ---: | ---: |");
    for s in sizes {
        let pair = |m: &str| {
            let (a, b) = (
                f(&s[m]["per_entry"], "cpu_ms"),
                f(&s[m]["batched"], "cpu_ms"),
            );
            format!("{a:.2} / {b:.2} ms ({:.1}×)", a / b)
        };
        println!(
            "| {} | {} | {} | {} ({} keys) |",
            s["entries"],
            pair("sweep"),
            pair("count_fdb"),
            pair("delete_expired"),
            s["expired_per_sweep"],
        );
    }
    if let Some(last) = sizes.last()
        && let Some(chunks) = last["walk_by_chunk"].as_object()
    {
        let row: Vec<String> = chunks
            .iter()
            .map(|(chunk, c)| format!("{chunk}: {:.2} ms", f(c, "cpu_ms")))
            .collect();
        println!(
            "\nA read-only batched walk of {} entries by chunk size (CPU): {}; vtep uses {}.",
            last["entries"],
            row.join(", "),
            r["chunk"]
        );
    }
    println!("rounds: {}", r["rounds"]);
}
