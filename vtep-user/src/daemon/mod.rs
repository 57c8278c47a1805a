//! `vtep up`: check the whole configuration against the system ([`preflight`]), build what it
//! describes and load and attach the datapath ([`apply`], [`ports`]), run until told to stop
//! while following the underlay and the ports ([`links`]), keeping the remote VTEPs' next hops
//! resolved ([`nexthop`]) and ageing learned entries ([`ageing`]), then remove everything it
//! made ([`undo`], also what `vtep down` runs after a crash). The checks and the claim of the
//! instance's name happen under the lock of the [`registry`] of instances, which they are
//! checked against.

pub mod ageing;
mod apply;
pub mod links;
pub mod nexthop;
mod ports;
mod preflight;
pub mod registry;
pub mod remotes;
pub mod undo;

use anyhow::{Context as _, Result, bail};
use tracing::{info, warn};

use crate::{
    config::Config,
    daemon::{
        apply::Started,
        links::Notifications,
        preflight::Checked,
        undo::{Item, Undo},
    },
    instance::{self, Namespace, ServedVni},
    sys::{
        bpffs,
        identity::{FileId, Process},
        netlink::Net,
        netns,
    },
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
    /// Re-checks what the kernel may have undone meanwhile (the next hops of the remote VTEPs
    /// still named, and the underlay and the ports when the safety net's check is due) and ages
    /// learned FDB entries when a sweep is due. Fails only when the undo log cannot be written.
    pub async fn reconcile(&mut self) -> Result<()> {
        if self.up.links.due() {
            self.follow_links().await;
        }
        let up = &mut self.up;
        // Before the sweep's walk of the FDB: what is learned after it stays noted.
        let changes = up.nexthops.changes(&mut up.datapath);
        let walked = up.ager.tick(&mut up.datapath).unwrap_or_else(|e| {
            warn!("ageing the FDB: {e:#}");
            None
        });
        up.nexthops
            .reconcile(&self.net, &mut up.datapath, &mut self.undo, changes, walked)
            .await
    }

    /// Acts on interfaces that went or came back (see [`links`]); when something changed, the
    /// next hops are re-checked at once, so none stays cached on a gone underlay. Failures are
    /// logged: the next call tries again.
    async fn follow_links(&mut self) {
        let up = &mut self.up;
        match up.links.reconcile(&self.net, &mut up.datapath).await {
            Ok(true) => {
                // The link state went into the info file, rewritten whole.
                let info = instance::info_file(up.links.instance());
                if let Err(e) = self.undo.file_rewritten(&info) {
                    warn!("{e:#}");
                }
                let changes = up.nexthops.changes(&mut up.datapath);
                if let Err(e) = up
                    .nexthops
                    .reconcile(&self.net, &mut up.datapath, &mut self.undo, changes, None)
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

/// What `vtep check --system` found: the checks `vtep up` makes before it changes anything
/// passed.
pub struct SystemChecked {
    pub underlay: String,
    pub mtu: u32,
    pub local: std::net::Ipv4Addr,
    /// Other instances with a state file (running or crashed), checked against.
    pub others: usize,
}

/// Runs the checks `vtep up` makes against the system, changing nothing. Fails with the first
/// problem, as `vtep up` would.
pub async fn check_system(config: &Config) -> Result<SystemChecked> {
    let net = Net::connect()?;
    let known = registry::known();
    let checked = preflight::check(&net, config, &known, &Namespace::current()?).await?;
    Ok(SystemChecked {
        underlay: checked.underlay.name,
        mtu: checked.underlay.mtu,
        local: checked.local,
        others: known.iter().filter(|k| k.name != config.name).count(),
    })
}

/// Validates `config` against the system and the other instances and takes its name: under
/// the registry's lock, so that of two starts only one passes. Returns the undo log, which
/// holds the owner and, as its first item, the info file for the other commands. Fails with
/// the first problem found, having changed nothing.
async fn claim(net: &Net, config: &Config) -> Result<(Checked, Undo, instance::Info)> {
    let _lock = registry::lock()?;
    let here = Namespace::current()?;
    let checked = preflight::check(net, config, &registry::known(), &here).await?;
    let mut undo = Undo::create(
        instance::state_file(&config.name),
        Process::current()?,
        here,
    )?;
    match write_info(config, &checked, &mut undo) {
        Ok(info) => Ok((checked, undo, info)),
        Err(e) => {
            for err in undo.run(net).await {
                warn!("cleanup after failed start: {err:#}");
            }
            Err(e)
        }
    }
}

/// Writes what the other commands need from the checks and this process, and what another
/// `vtep up` checks its config against (see [`instance::Info`]); returns it. Fails when it
/// cannot be written or the namespace examined.
fn write_info(config: &Config, checked: &Checked, undo: &mut Undo) -> Result<instance::Info> {
    let info = instance::Info {
        local: checked.local,
        accept_known: config.underlay.accept_rule().is_some_and(|r| r.known),
        pid: std::process::id(),
        netns: netns::entered().map(str::to_string),
        netns_inode: netns::inode(&netns::current_file()?)?,
        links: instance::Links::default(),
        underlay: checked.underlay.name.clone(),
        underlay_ifindex: checked.underlay.index,
        vnis: config
            .vnis
            .iter()
            .map(|v| ServedVni {
                vni: v.id,
                dstport: v.dstport,
            })
            .collect(),
    };
    info.write(&config.name)?;
    let path = instance::info_file(&config.name);
    let id = FileId::of(&path)?.with_context(|| format!("{} vanished", path.display()))?;
    undo.record(Item::File { path, id })?;
    Ok(info)
}

/// Validates `config` against the system, then applies it. Fails, changing nothing, when
/// /sys/fs/bpf is not the host's (`ip netns exec`): other commands could never find the
/// instance. On any later failure everything created so far is removed again before the error
/// is returned.
pub async fn start(config: &Config) -> Result<Running> {
    bpffs::require_hosts()?;
    let net = Net::connect()?;
    let (checked, mut undo, info) = claim(&net, config).await?;
    match apply::apply(&net, config, &checked, info, &mut undo).await {
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
