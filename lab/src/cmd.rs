//! Running the system's tools (`ip`, `bridge`, `sysctl`, ...).

use std::process::{Command, Output};

use anyhow::{Context as _, Result, bail};

/// Runs `program args` and returns its output. Fails when it cannot be started or exits
/// non-zero; the error has the command line, the exit status and what it printed.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out)
}

/// `ip ARGS`, as [`run`].
pub fn ip(args: &[&str]) -> Result<Output> {
    run("ip", args)
}

/// `ip -n NS ARGS`: `ip` acting inside namespace `ns`, as [`run`].
pub fn ip_in(ns: &str, args: &[&str]) -> Result<Output> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Runs `program args` inside namespace `ns` and returns its output whatever its exit status.
/// Fails only when `ip netns exec` cannot be started.
pub fn ns_exec(ns: &str, program: &str, args: &[&str]) -> Result<Output> {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .with_context(|| format!("ip netns exec {ns} {program}"))
}

/// `sysctl -q -w SETTING...` inside namespace `ns` (settings as `key=value`), as [`run`].
pub fn sysctl(ns: &str, settings: &[&str]) -> Result<()> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-q", "-w"];
    args.extend_from_slice(settings);
    run("ip", &args).map(drop)
}
