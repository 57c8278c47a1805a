//! Installs, once and idempotently, what a fresh machine lacks for building and testing vtep:
//! Debian packages the tests and demo use, the nightly toolchain's rust-src (the eBPF crate is
//! built with -Z build-std=core), and bpf-linker built against the nightly toolchain's own LLVM.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// Debian packages the namespace tests, the demo and the benchmark run (trafgen is in
/// netsniff-ng, taskset in util-linux; ethtool turns a test underlay's offloads off), the store's
/// tests run a throw-away etcd (etcd-server) with certificates from openssl, and the store client
/// is built with protoc (protobuf-compiler, and libprotobuf-dev for its well-known types); the
/// tests read etcd's keys through its JSON gateway with curl. The metrics tests check vtep's
/// `/metrics` with promtool and scrape it with a throw-away server on 127.0.0.1, both from
/// `prometheus`. (On a host run by systemd the package also enables its own service, on port
/// 9090 of every address; the tests never use it: `systemctl disable --now prometheus` if
/// unwanted.) The `man` tests lint the manual pages with mandoc and groff (groff-base) and read
/// them through `man -l` (man-db).
const PACKAGES: [&str; 17] = [
    "curl",
    "ethtool",
    "etcd-server",
    "openssl",
    "protobuf-compiler",
    "iproute2",
    "iputils-ping",
    "iperf3",
    "libprotobuf-dev",
    "tcpdump",
    "procps",
    "netsniff-ng",
    "prometheus",
    "util-linux",
    "mandoc",
    "groff-base",
    "man-db",
];
const TOOLCHAIN: &str = "nightly";
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn ensure() -> Result<()> {
    packages()?;
    rust_src()?;
    bpf_linker()
}

fn packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    cmd::status("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    let status = Command::new("apt-get")
        .args(&args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}

fn rust_src() -> Result<()> {
    let toolchains = cmd::output("rustup", &["toolchain", "list"])?;
    if !toolchains.lines().any(|l| l.starts_with(TOOLCHAIN)) {
        eprintln!("xtask: installing the {TOOLCHAIN} toolchain");
        cmd::status(
            "rustup",
            &["toolchain", "install", TOOLCHAIN, "--profile", "minimal"],
        )?;
    }
    let installed = cmd::output(
        "rustup",
        &["component", "list", "--installed", "--toolchain", TOOLCHAIN],
    )?;
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("xtask: adding rust-src to {TOOLCHAIN}");
        cmd::status(
            "rustup",
            &["component", "add", "rust-src", "--toolchain", TOOLCHAIN],
        )?;
    }
    Ok(())
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// The nightly toolchain's LLVM shared library (there is no LLVM package of the same major).
fn toolchain_libllvm() -> Result<PathBuf> {
    let sysroot = cmd::output("rustup", &["run", TOOLCHAIN, "rustc", "--print", "sysroot"])?;
    let lib = Path::new(sysroot.trim()).join("lib");
    for entry in std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("libLLVM.so.") {
            return Ok(path);
        }
    }
    bail!("no libLLVM.so.* in {}", lib.display())
}

/// bpf-linker must use the same LLVM major as the nightly rustc. It is built against the
/// toolchain's own libLLVM through a minimal "LLVM prefix" (a placeholder llvm-config, whose
/// presence is all the build checks, and lib/ links to the library); the prefix stays, as the
/// linker's RUNPATH, so it also runs outside `rustup run`.
fn bpf_linker() -> Result<()> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or(home()?.join(".cargo"));
    let linker = cargo_home.join("bin/bpf-linker");
    let works = Command::new(&linker)
        .arg("--version")
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        })
        .unwrap_or(false);
    let libllvm = toolchain_libllvm()?;
    let prefix = home()?.join(".local/share/vtep-llvm");
    let soname = libllvm.file_name().context("libLLVM name")?;
    std::fs::create_dir_all(prefix.join("bin"))?;
    std::fs::create_dir_all(prefix.join("lib"))?;
    let config = prefix.join("bin/llvm-config");
    if !config.exists() {
        std::fs::write(&config, "#!/bin/sh\nexit 0\n")?;
        cmd::status("chmod", &["+x", &config.to_string_lossy()])?;
    }
    for link in [
        prefix.join("lib/libLLVM.so"),
        prefix.join("lib").join(soname),
    ] {
        if std::fs::read_link(&link).ok().as_deref() != Some(libllvm.as_path()) {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&libllvm, &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
    }
    if works {
        return Ok(());
    }
    eprintln!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        libllvm.display()
    );
    let status = Command::new("cargo")
        .args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--force",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", &prefix)
        .status()
        .context("running cargo install bpf-linker")?;
    if !status.success() {
        bail!("building bpf-linker failed");
    }
    Ok(())
}

/// Installs Python module `module` (PyPI package `package`) when `python3` cannot import it.
pub fn python_module(module: &str, package: &str) -> Result<()> {
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    eprintln!("xtask: installing the Python package {package}");
    cmd::status("python3", &["-m", "pip", "install", "--quiet", package])
}
