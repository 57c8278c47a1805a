//! store-watch: how long a change takes to reach the datapaths of running instances. It opens
//! the pinned FDB maps of the instances named, runs a command (the change: `vtep workload add`,
//! `vtep workload del`, `kill -9 PID`), and from just before the command starts polls every map
//! about every millisecond until each holds the (VNI, MAC) keys asked for (`present`), or none
//! of them (`absent`); `cargo xtask bench --store` runs it.
//!
//! ```text
//! store-watch present|absent --key VNI/MAC[@VTEP]... [--local INSTANCE] [--timeout-ms N] INSTANCE... -- COMMAND [ARG...]
//! ```
//!
//! With `@VTEP` (an IPv4 or IPv6 address) a present key counts only as an entry to that remote
//! VTEP, except in the `--local` instance (also one of the instances watched), where any entry
//! counts: the host the station is on, whose entry is a local port. Prints one JSON object on stdout:
//! `{"command_ms": N, "command_ok": bool, "command_output": "...", "instances": [...],
//! "done_ms": [N or null per instance], "all_ms": N or null}`: milliseconds from just before the
//! command started until it exited, and until each instance's map (and the last of them) was as
//! asked; null when it was not within the timeout (default 10 s). Exits 0 when every instance
//! got there, 1 otherwise, 2 on a usage error. Run as root (the pins are root's).

use std::{
    net::IpAddr,
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::json;
use vtep::{datapath::maps::Pinned, mac::Mac};
use vtep_common::maps::{FDB_REMOTE, FdbKey, VtepAddr, vtep_addr};

const USAGE: &str = "usage: store-watch present|absent --key VNI/MAC[@VTEP]... [--local INSTANCE] \
                     [--timeout-ms N] INSTANCE... -- COMMAND [ARG...]";
/// How long to sleep between two polls of every map.
const POLL: Duration = Duration::from_millis(1);

struct Args {
    present: bool,
    keys: Vec<(FdbKey, Option<VtepAddr>)>,
    /// The instance where any entry of a key counts.
    local: Option<String>,
    timeout: Duration,
    instances: Vec<String>,
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("store-watch: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match watch(&args) {
        Ok((report, all)) => {
            println!("{report}");
            if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("store-watch: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let present = match args.next().as_deref() {
        Some("present") => true,
        Some("absent") => false,
        other => bail!("the first argument is present or absent, not {other:?}"),
    };
    let mut parsed = Args {
        present,
        keys: Vec::new(),
        local: None,
        timeout: Duration::from_secs(10),
        instances: Vec::new(),
        command: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--key" => {
                let key = args.next().context("--key needs VNI/MAC[@VTEP]")?;
                parsed.keys.push(parse_key(&key)?);
            }
            "--local" => parsed.local = Some(args.next().context("--local needs an instance")?),
            "--timeout-ms" => {
                let ms = args.next().context("--timeout-ms needs a number")?;
                parsed.timeout = Duration::from_millis(
                    ms.parse().with_context(|| format!("--timeout-ms {ms}"))?,
                );
            }
            "--" => {
                parsed.command = args.by_ref().collect();
                break;
            }
            other if other.starts_with('-') => bail!("unknown argument {other}"),
            name => parsed.instances.push(name.to_string()),
        }
    }
    ensure!(!parsed.keys.is_empty(), "no --key");
    ensure!(!parsed.instances.is_empty(), "no instance");
    ensure!(!parsed.command.is_empty(), "no command after --");
    Ok(parsed)
}

/// `VNI/MAC[@VTEP]`.
fn parse_key(text: &str) -> Result<(FdbKey, Option<VtepAddr>)> {
    let (key, vtep) = match text.split_once('@') {
        Some((k, v)) => {
            let ip: IpAddr = v.parse().with_context(|| format!("VTEP in {text}"))?;
            (k, Some(vtep_addr(ip)))
        }
        None => (text, None),
    };
    let (vni, mac) = key
        .split_once('/')
        .with_context(|| format!("{text} is not VNI/MAC"))?;
    let vni: u32 = vni.parse().with_context(|| format!("VNI in {text}"))?;
    let mac: Mac = mac.parse().map_err(anyhow::Error::msg)?;
    Ok((
        FdbKey {
            vni,
            mac: mac.0,
            _pad: [0; 2],
        },
        vtep,
    ))
}

/// Opens the maps, runs the command and polls; returns the report and whether every instance
/// got there.
fn watch(args: &Args) -> Result<(String, bool)> {
    let maps = args
        .instances
        .iter()
        .map(|name| Pinned::of(name).fdb())
        .collect::<Result<Vec<_>>>()?;
    let holds = |map: &aya::maps::HashMap<_, FdbKey, vtep_common::maps::FdbEntry>, local: bool| {
        args.keys.iter().all(|(key, vtep)| {
            let found = match map.get(key, 0) {
                Ok(entry) => {
                    local || vtep.is_none_or(|v| entry.kind == FDB_REMOTE && entry.remote == v)
                }
                Err(_) => false,
            };
            found == args.present
        })
    };
    let local: Vec<bool> = args
        .instances
        .iter()
        .map(|i| args.local.as_ref() == Some(i))
        .collect();
    let mut done: Vec<Option<Duration>> = vec![None; maps.len()];
    let start = Instant::now();
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", args.command[0]))?;
    let mut command_done = None;
    loop {
        let now = start.elapsed();
        for ((map, at), local) in maps.iter().zip(done.iter_mut()).zip(&local) {
            if at.is_none() && holds(map, *local) {
                *at = Some(now);
            }
        }
        if command_done.is_none() && child.try_wait()?.is_some() {
            command_done = Some(start.elapsed());
        }
        let all = done.iter().all(Option::is_some);
        if (all && command_done.is_some()) || now > args.timeout {
            break;
        }
        std::thread::sleep(POLL);
    }
    if command_done.is_none() {
        // Still running at the timeout: it is not what was measured any more.
        let _ = child.kill();
    }
    let output = child.wait_with_output()?;
    let command_ms = command_done.unwrap_or_else(|| start.elapsed());
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let all = done.iter().all(Option::is_some);
    let report = json!({
        "command_ms": ms(command_ms),
        "command_ok": output.status.success(),
        "command_output": format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        "instances": args.instances,
        "done_ms": done.iter().map(|d| d.map(ms)).collect::<Vec<_>>(),
        "all_ms": if all { done.iter().flatten().max().map(|d| ms(*d)) } else { None },
    });
    Ok((report.to_string(), all))
}
