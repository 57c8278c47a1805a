//! Simulated hosts for the demo and the benchmark: network namespaces joined by veth pairs and
//! `vtep` processes running "on" them. Everything carries one name prefix and is removed at the
//! end, also on Ctrl-C.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

struct State {
    prefix: String,
    dir: PathBuf,
    vtep: PathBuf,
    /// Running vteps: (namespace, instance name, process).
    vteps: Vec<(String, String, Child)>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs `body` with a lab whose names start with `prefix`, then removes the lab; on Ctrl-C the
/// lab is removed and the process exits with 130.
pub fn with_lab(prefix: &str, vtep: &Path, body: impl FnOnce(&Lab) -> Result<()>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("vtep-lab-{prefix}"));
    std::fs::create_dir_all(&dir)?;
    *STATE.lock().unwrap() = Some(State {
        prefix: prefix.to_string(),
        dir: dir.clone(),
        vtep: vtep.to_path_buf(),
        vteps: Vec::new(),
    });
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: removing the lab");
        cleanup();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    let lab = Lab {
        prefix: prefix.to_string(),
        dir,
        vtep: vtep.to_path_buf(),
    };
    let result = body(&lab);
    cleanup();
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The handler cleans up (cleanup() above waited for it) and exits; what `body` saw is
        // only the interruption.
        std::process::exit(130);
    }
    result
}

/// One side of a veth pair: namespace, interface name, address (CIDR) and MAC; empty address
/// or MAC leave the kernel's.
#[derive(Clone, Copy)]
pub struct End<'a> {
    pub ns: &'a str,
    pub ifname: &'a str,
    pub addr: &'a str,
    pub mac: &'a str,
}

/// Builds hosts. Cheap to pass around; the state to clean up lives in `STATE`.
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    pub vtep: PathBuf,
}

impl Lab {
    /// `<prefix><suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Creates namespace `<prefix><suffix>` with loopback up and IPv6 off (nothing sends on
    /// its own during a measurement); returns its name.
    pub fn host(&self, suffix: &str) -> Result<String> {
        let ns = self.name(suffix);
        cmd::status("ip", &["netns", "add", &ns])?;
        cmd::status("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        quiet_ipv6(&ns)?;
        Ok(ns)
    }

    /// Joins two namespaces with a veth pair of MTU `mtu`; see [`End`] for each side.
    pub fn wire(&self, a: End, b: End, mtu: u32) -> Result<()> {
        let (ta, tb) = (self.name("ta"), self.name("tb"));
        cmd::status(
            "ip",
            &["link", "add", &ta, "type", "veth", "peer", "name", &tb],
        )?;
        let mtu = mtu.to_string();
        for (end, tmp) in [(a, &ta), (b, &tb)] {
            let ns = end.ns;
            cmd::status("ip", &["link", "set", tmp, "netns", ns])?;
            cmd::status("ip", &["-n", ns, "link", "set", tmp, "name", end.ifname])?;
            cmd::status("ip", &["-n", ns, "link", "set", end.ifname, "mtu", &mtu])?;
            if !end.mac.is_empty() {
                cmd::status(
                    "ip",
                    &["-n", ns, "link", "set", end.ifname, "address", end.mac],
                )?;
            }
            if !end.addr.is_empty() {
                cmd::status(
                    "ip",
                    &["-n", ns, "addr", "add", end.addr, "dev", end.ifname],
                )?;
            }
            cmd::status("ip", &["-n", ns, "link", "set", end.ifname, "up"])?;
        }
        Ok(())
    }

    /// Starts `vtep up` in namespace `ns` with `config` (whose instance name is `name`) and
    /// waits until it is up; prints its log when `show` is set.
    pub fn start_vtep(&self, ns: &str, name: &str, config: &str, show: bool) -> Result<()> {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let log_path = self.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&self.vtep)
            .args(["--netns", ns, "up", "-c"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting vtep")?;
        let index = {
            let mut state = STATE.lock().unwrap();
            let vteps = &mut state.as_mut().expect("lab").vteps;
            vteps.push((ns.to_string(), name.to_string(), child));
            vteps.len() - 1
        };
        // The lock is only held briefly: the Ctrl-C handler needs it to clean up.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("vtep is up") {
                if show {
                    print!("{text}");
                }
                return Ok(());
            }
            let exited = STATE
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|s| s.vteps[index].2.try_wait().ok().flatten());
            if let Some(status) = exited {
                bail!("vtep on {ns} exited ({status}):\n{text}");
            }
            if Instant::now() > deadline {
                bail!("vtep on {ns} did not come up:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `vtep --netns ns ARGS`, returning its output.
    pub fn vtep_cli(&self, ns: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["--netns", ns];
        full.extend_from_slice(args);
        cmd::output(&self.vtep.to_string_lossy(), &full)
    }
}

/// Turns IPv6 off in namespace `ns`, so no router or neighbour solicitations run meanwhile.
pub fn quiet_ipv6(ns: &str) -> Result<()> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ])
        .stdout(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "disabling IPv6 in {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// True when `ip netns exec ns ping -c count addr` gets answers.
pub fn ping(ns: &str, addr: &str, count: u32, show: bool) -> Result<bool> {
    let count = count.to_string();
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-c", &count, "-i", "0.2", "-W", "2", addr,
        ])
        .output()?;
    if show {
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(out.status.success())
}

/// Namespaces, pins and state files named with `prefix` that still exist.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["/run/netns", "/sys/fs/bpf/vtep", "/run/vtep"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out
}

/// Stops the vteps (they remove what they made), runs `vtep down` for each in case one died
/// early, and removes every namespace of the lab. Safe to call twice, also at the same time:
/// the lock is held to the end, so a second caller returns only when everything is gone.
fn cleanup() {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut state) = guard.take() else {
        return;
    };
    for (_, _, child) in &mut state.vteps {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    for (ns, name, child) in &mut state.vteps {
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = Command::new(&state.vtep)
            .args(["--netns", ns, "down", "-n", name])
            .stdout(Stdio::null())
            .status();
    }
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&state.prefix) {
                let _ = Command::new("ip").args(["netns", "del", &name]).status();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&state.dir);
}
