//! Running commands.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `program args`, failing when it fails.
pub fn status(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `program args` and returns its stdout, failing (with what it printed) when it fails.
pub fn output(program: &str, args: &[&str]) -> Result<String> {
    let out = vtep_lab::run(program, args)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo run --quiet --release -p vtep-tests --bin BIN --` in the workspace root: the tools the
/// tests crate ships (prog-cost, fuzz), built optimised; the caller adds arguments and runs it.
pub fn tests_tool(bin: &str) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "vtep-tests",
        "--bin",
        bin,
        "--",
    ])
    .current_dir(workspace_root());
    cmd
}

/// Runs cargo (the one running us) in the workspace root.
pub fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `bin args` with inherited stdio and exits with its status.
pub fn exec(bin: &Path, args: &[String]) -> Result<()> {
    let status = Command::new(bin)
        .args(args)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    std::process::exit(status.code().unwrap_or(1));
}

/// Runs `cargo test ARGS`, passing its output through, and ends with one line that totals every
/// test binary's result (`N passed, N failed, N skipped`), so a reader of the last line sees the
/// whole run rather than the last binary's.
pub fn cargo_test(args: &[&str]) -> Result<()> {
    use std::io::{BufRead as _, BufReader};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .arg("test")
        .args(args)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |what: &str| -> u64 {
                rest.split("; ")
                    .find_map(|part| {
                        part.trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. ")
                            .strip_suffix(what)
                    })
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
            skipped += count(" ignored");
        }
    }
    let status = child.wait()?;
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if !status.success() {
        bail!("`cargo test {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
