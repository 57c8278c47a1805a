//! A `vtep up` process of a lab, and commands against it.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use nix::{sys::signal::Signal, unistd::Pid};

use crate::lock;

/// How long a stopped vtep gets to remove what it made before it is killed.
pub(crate) const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A running `vtep --netns HOST up`. Cheap to clone: clones are handles of the same process
/// (the lab keeps one to stop it when the lab is removed).
#[derive(Clone)]
pub struct Vtep(Arc<Inner>);

struct Inner {
    bin: PathBuf,
    host: String,
    log: PathBuf,
    /// None once it has exited and been reaped.
    child: Mutex<Option<Child>>,
}

impl Vtep {
    /// Starts `BIN --netns host up -c config` with its output going to `log`. Fails when it
    /// cannot be started.
    pub(crate) fn spawn(
        bin: &Path,
        host: &str,
        config: &Path,
        extra: &[&str],
        log: &Path,
    ) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(bin)
            .args(["--netns", host, "up", "-c"])
            .arg(config)
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self(Arc::new(Inner {
            bin: bin.to_path_buf(),
            host: host.to_string(),
            log: log.to_path_buf(),
            child: Mutex::new(Some(child)),
        })))
    }

    /// Waits until the log says "vtep is up". Fails, with the log, when vtep exits before or is
    /// not up within `limit`.
    pub(crate) fn wait_up(&self, limit: Duration) -> Result<()> {
        let host = &self.0.host;
        let deadline = Instant::now() + limit;
        loop {
            if self.log().contains("vtep is up") {
                return Ok(());
            }
            if let Some(status) = self.reap() {
                bail!(
                    "vtep on {host} exited ({status}) before coming up:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "vtep on {host} did not come up in {limit:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its process id while it runs (None once it has exited and been reaped).
    pub fn pid(&self) -> Option<u32> {
        lock(&self.0.child).as_ref().map(Child::id)
    }

    /// The namespace it runs in.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// Everything vtep printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.0.log).unwrap_or_default()
    }

    /// Sends SIGINT and waits for vtep to exit; returns its exit status (None if it was not
    /// running). Kills it after 20 s.
    pub fn stop(&self) -> Option<ExitStatus> {
        self.stop_with(Signal::SIGINT)
    }

    /// As [`Vtep::stop`], with another signal (SIGTERM).
    pub fn stop_with(&self, signal: Signal) -> Option<ExitStatus> {
        self.signal(signal);
        self.wait_or_kill(STOP_LIMIT)
    }

    /// Kills vtep with SIGKILL, as a crash would (no cleanup runs), and waits for it; returns
    /// its exit status (None if it was not running).
    pub fn kill(&self) -> Option<ExitStatus> {
        let mut child = lock(&self.0.child).take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Sends `signal` if vtep is running, without waiting.
    pub fn signal(&self, signal: Signal) {
        if let Some(child) = lock(&self.0.child).as_ref() {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// Waits up to `limit` for vtep to exit, then kills it; returns its exit status (None if
    /// it was not running).
    pub fn wait_or_kill(&self, limit: Duration) -> Option<ExitStatus> {
        let mut child = lock(&self.0.child).take()?;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    return child.wait().ok();
                }
            }
        }
    }

    /// The exit status if vtep has exited (it is reaped then).
    fn reap(&self) -> Option<ExitStatus> {
        let mut guard = lock(&self.0.child);
        let status = guard.as_mut()?.try_wait().ok()??;
        *guard = None;
        Some(status)
    }

    /// `vtep --netns HOST ARGS` (a command against this instance), whatever its exit status.
    /// Fails only when it cannot be started.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        Command::new(&self.0.bin)
            .args(["--netns", &self.0.host])
            .args(args)
            .output()
            .context("running vtep")
    }

    /// As [`Vtep::cli`]; returns what it printed on stdout, and fails (with its stderr) when it
    /// exits non-zero.
    pub fn output(&self, args: &[&str]) -> Result<String> {
        let out = self.cli(args)?;
        if !out.status.success() {
            bail!(
                "vtep {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// As [`Vtep::output`] for a command that prints JSON (`-j`), parsed.
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let text = self.output(args)?;
        serde_json::from_str(&text).with_context(|| format!("JSON of vtep {}", args.join(" ")))
    }
}
