//! A server process a lab starts and owns (etcd, Prometheus): waited for until it answers,
//! stopped or killed on demand, and killed when the lab lets go of it.

use std::{
    process::Child,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use nix::{sys::signal::Signal, unistd::Pid};

use crate::lock;

/// The process, `None` while it is not running.
#[derive(Default)]
pub(crate) struct ServerProcess(Mutex<Option<Child>>);

impl ServerProcess {
    /// Takes `child` as the running process. Fails when one runs already, naming `what`.
    pub fn set(&self, what: &str, child: Child) -> Result<()> {
        let mut slot = lock(&self.0);
        if slot.is_some() {
            bail!("{what} is running already");
        }
        *slot = Some(child);
        Ok(())
    }

    /// Whether a process was started and not stopped since.
    pub fn is_set(&self) -> bool {
        lock(&self.0).is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        lock(&self.0).as_ref().map(Child::id)
    }

    /// Checks `answers` every `step` until it is true. Fails, naming `what` and with `log()`,
    /// when the process exits first or does not answer within `limit`.
    pub fn wait_answering(
        &self,
        what: &str,
        limit: Duration,
        step: Duration,
        answers: impl Fn() -> bool,
        log: impl Fn() -> String,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if answers() {
                return Ok(());
            }
            let exited = lock(&self.0)
                .as_mut()
                .map(|c| c.try_wait().ok().flatten().is_some())
                .unwrap_or(true);
            if exited {
                *lock(&self.0) = None;
                bail!("{what} exited before it answered:\n{}", log());
            }
            if Instant::now() > deadline {
                bail!("{what} did not answer within {limit:?}:\n{}", log());
            }
            std::thread::sleep(step);
        }
    }

    /// Stops it with SIGTERM, killed after `limit`, and waits for it. Nothing happens when it
    /// is not running.
    pub fn stop(&self, limit: Duration) {
        let Some(mut child) = lock(&self.0).take() else {
            return;
        };
        let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&self) {
        if let Some(mut child) = lock(&self.0).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
