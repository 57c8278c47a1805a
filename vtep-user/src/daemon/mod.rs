//! `vtep up`: check the whole configuration against the system ([`preflight`]), build what it
//! describes and load and attach the datapath ([`apply`], [`ports`]), run until told to stop
//! while following the underlay and the ports ([`links`]), keeping the remote VTEPs' next hops
//! resolved ([`nexthop`]) and ageing learned entries ([`ageing`]), then remove everything it
//! made ([`undo`], also what `vtep down` runs after a crash).

pub mod ageing;
mod apply;
pub mod links;
pub mod nexthop;
mod ports;
mod preflight;
pub mod undo;

use anyhow::{Context as _, Result, bail};
use tracing::{info, warn};

use crate::{
    config::Config,
    daemon::{apply::Started, links::Notifications, undo::Undo},
    instance,
    sys::{bpffs, netlink::Net},
};

/// How often the remote VTEPs' next hops are checked (after a link flap or a route change).
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A started instance: what it runs and the undo log of what was made for it.
pub struct Running {
    net: Net,
    undo: Undo,
    up: Started,
}

impl Running {
    /// Re-checks what the kernel may have undone meanwhile (the next hops of remote VTEPs, and
    /// the underlay and the ports when the safety net's check is due) and ages learned FDB
    /// entries when a sweep is due. Fails only when the undo log cannot be written.
    pub async fn reconcile(&mut self) -> Result<()> {
        if self.up.links.due() {
            self.follow_links().await;
        }
        let up = &mut self.up;
        up.nexthops
            .reconcile(&self.net, &mut up.datapath, &mut self.undo)
            .await?;
        if let Err(e) = up.ager.tick(&mut up.datapath) {
            warn!("ageing the FDB: {e:#}");
        }
        Ok(())
    }

    /// Acts on interfaces that went or came back (see [`links`]); when something changed, the
    /// next hops are re-checked at once, so none stays cached on a gone underlay. Failures are
    /// logged: the next call tries again.
    async fn follow_links(&mut self) {
        let up = &mut self.up;
        match up.links.reconcile(&self.net, &mut up.datapath).await {
            Ok(true) => {
                if let Err(e) = up
                    .nexthops
                    .reconcile(&self.net, &mut up.datapath, &mut self.undo)
                    .await
                {
                    warn!("{e:#}");
                }
            }
            Ok(false) => {}
            Err(e) => warn!("following the underlay and ports: {e:#}"),
        }
    }

    /// Detaches the datapath and removes everything `start` created. Returns what could not
    /// be removed.
    pub async fn stop(self) -> Vec<anyhow::Error> {
        drop(self.up.datapath);
        self.undo.run(&self.net).await
    }
}

/// Validates `config` against the system, then applies it. Fails, changing nothing, when
/// /sys/fs/bpf is not the host's (`ip netns exec`): other commands could never find the
/// instance. On any later failure everything created so far is removed again before the error
/// is returned.
pub async fn start(config: &Config) -> Result<Running> {
    bpffs::require_hosts()?;
    let net = Net::connect()?;
    let checked = preflight::check(&net, config).await?;
    let mut undo = Undo::new(instance::state_file(&config.name));
    match apply::apply(&net, config, &checked, &mut undo).await {
        Ok(up) => Ok(Running { net, undo, up }),
        Err(e) => {
            for err in undo.run(&net).await {
                warn!("cleanup after failed start: {err:#}");
            }
            Err(e)
        }
    }
}

/// Runs `config` until SIGINT or SIGTERM. Fails when the start fails (having removed what it
/// made) or something could not be removed at the stop.
pub async fn run(config: &Config) -> Result<()> {
    // Handlers first: a signal that arrives while starting must still end in a clean stop,
    // not in the default action that kills the process half-way.
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let mut running = start(config).await?;
    // Subscribed after the start: what the start itself did to the interfaces is known.
    let mut link_changes = Notifications::subscribe();
    info!(name = %config.name, "vtep is up; SIGINT or SIGTERM stops it");
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Err(e) = running.reconcile().await {
                    warn!("{e:#}");
                }
            }
            () = link_changes.next() => running.follow_links().await,
        }
    }
    info!("stopping");
    let errors = running.stop().await;
    for e in &errors {
        warn!("{e:#}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{} item(s) could not be removed", errors.len())
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the returned future completes on either.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
