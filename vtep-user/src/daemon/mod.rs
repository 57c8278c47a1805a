//! `vtep up`: check the whole configuration against the system ([`preflight`]), build what it
//! describes and load and attach the datapath ([`apply`], [`ports`]), run until told to stop
//! while following the underlay and the ports ([`links`]), keeping the remote VTEPs' next hops
//! resolved ([`nexthop`]) and ageing learned entries ([`ageing`]), then remove everything it
//! made ([`undo`], also what `vtep down` runs after a crash). The checks and the claim of the
//! instance's name happen under the lock of the [`registry`] of instances, which they are
//! checked against.

pub mod ageing;
mod apply;
mod control;
pub mod from_store;
pub mod links;
pub mod nexthop;
mod ports;
mod preflight;
pub mod registry;
pub mod remotes;
mod routing;
pub mod segmenter;
pub mod undo;

use anyhow::{Context as _, Result, bail};
use tracing::{info, warn};
use vtep_common::maps::RESOLVER_CHANGED;

use crate::{
    config::Config,
    daemon::{
        apply::Started,
        control::Additions,
        links::Notifications,
        preflight::Checked,
        undo::{Item, Undo},
    },
    datapath::trace::Trace,
    instance::{self, Namespace, ServedVni},
    metrics,
    store::{
        self,
        records::{HostRecord, HostVni},
    },
    sys::{
        bpffs,
        identity::{FileId, Process},
        netlink::Net,
        netns, notify,
    },
};

/// How often the remote VTEPs' next hops are checked (after a link flap or a route change).
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A started instance: what it runs and the undo log of what was made for it.
pub struct Running {
    net: Net,
    undo: Undo,
    up: Started,
    /// The config it runs, and where it was read from (a reload reads it again).
    config: Config,
    source: Source,
    /// How many reloads were asked for, for the outcome file `vtep reload` waits on.
    reloads: u64,
    /// `--keep` and the debug log, for every load of the programs.
    options: Options,
    /// The store client and what it programmed, with a `[store]`.
    store: Option<StoreLink>,
    /// The config as the file gives it; `config` is it with `additions`.
    file_config: Config,
    /// Workloads and ports added at run time (`vtep workload add`, `vtep port add`).
    additions: Additions,
    /// `/metrics`, with a `[metrics]`.
    metrics: Option<metrics::Server>,
}

/// A running store client and what the daemon wrote into the maps from its view.
struct StoreLink {
    client: store::Client,
    config: crate::config::store::Store,
    programmed: from_store::Programmed,
}

/// How `vtep up` runs its datapath, from its command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The datapath outlives the process (`--keep`).
    pub keep: bool,
    /// The debug log the programs are loaded with (`--trace-datapath`, `--trace-vni`): the
    /// same for every load of this process, the reloads' too.
    pub trace: Trace,
}

/// Where a config came from: the file and the text read from it.
#[derive(Clone)]
pub struct Source {
    pub path: std::path::PathBuf,
    pub text: String,
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

    /// Acts on a route or neighbour notification ([`routing`]): the kept VTEPs' routes are
    /// looked up again when routes changed, and the next-hop cache follows the neighbour table,
    /// now rather than at the next tick. Failures are logged: the next tick tries again.
    async fn follow_routing(&mut self, changed: routing::Changed) {
        if changed.routes {
            self.up.nexthops.routes_changed();
        }
        self.reconcile_nexthops().await;
    }

    /// Re-checks the remote VTEPs' next hops now (not ageing); failures are logged.
    async fn reconcile_nexthops(&mut self) {
        let up = &mut self.up;
        let changes = up.nexthops.changes(&mut up.datapath);
        if let Err(e) = up
            .nexthops
            .reconcile(&self.net, &mut up.datapath, &mut self.undo, changes, None)
            .await
        {
            warn!("{e:#}");
        }
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
                self.reconcile_nexthops().await;
            }
            Ok(false) => {}
            Err(e) => warn!("following the underlay and ports: {e:#}"),
        }
    }

    /// Reads the config file again and applies it to the running instance (see
    /// [`apply::Base::Reload`]): what it does not change keeps forwarding throughout. Writes
    /// the outcome where `vtep reload` waits for it. A config that is invalid or does not fit
    /// the system changes nothing; one that fails half-way leaves the instance running with
    /// what was applied, logged.
    async fn reload(&mut self) {
        self.reloads += 1;
        let outcome = self.try_reload().await;
        match &outcome {
            Ok(()) => info!(
                config = %self.source.path.display(),
                "reloaded: the instance runs the config as it is now"
            ),
            Err(e) => warn!("reload failed: {e:#}"),
        }
        let report = ReloadOutcome {
            generation: self.reloads,
            ok: outcome.is_ok(),
            message: match outcome {
                Ok(()) => format!("reloaded {}", self.source.path.display()),
                Err(e) => format!("{e:#}"),
            },
        };
        if let Err(e) = report.write(&self.config.name, &mut self.undo) {
            warn!("writing the reload outcome: {e:#}");
        }
    }

    async fn try_reload(&mut self) -> Result<()> {
        let (file_config, text) = Config::load_with_text(&self.source.path)?;
        if file_config.name != self.config.name {
            bail!(
                "name: a reload cannot rename the instance (`{}` → `{}`); stop it and start the new one",
                self.config.name,
                file_config.name
            );
        }
        let config = self.additions.merged(&file_config).with_context(|| {
            "the workloads and ports added at run time do not fit the new config (`vtep workload del` or `vtep port del` them first)"
        })?;
        // Bound before anything changes, like at the start; served once the rest applied.
        let wanted = file_config.metrics.as_ref().map(|m| m.addr());
        let rebind = wanted != self.metrics.as_ref().map(metrics::Server::addr);
        let listener = match wanted {
            Some(addr) if rebind => Some(metrics::bind(addr)?),
            _ => None,
        };
        self.apply_config(config, Some(&text)).await?;
        if rebind {
            self.metrics = listener.map(|l| metrics::Server::start(l, &file_config.name));
        }
        self.file_config = file_config;
        self.source.text = text;
        Ok(())
    }

    /// Makes a workload or port change (`vtep workload`, `vtep port`): checked like a config,
    /// applied like a reload. Returns what was done; fails, changing nothing, when it is refused.
    async fn change(&mut self, req: &crate::ctl::runtime::Request) -> Result<String> {
        let (additions, message) = self.additions.with(req, &self.file_config)?;
        let config = additions.merged(&self.file_config)?;
        // The system's checks name the config field (`vni[0].port[1].interface`); the
        // command's user gave a keyword.
        let place = control::place(req, &config);
        if let Err(e) = self.apply_config(config, None).await {
            let text = format!("{e:#}");
            return Err(match place {
                Some(place) => anyhow::anyhow!(text.replace(&format!("{place}."), "")),
                None => e,
            });
        }
        let path = Additions::path(&self.config.name);
        let new_file = !path.exists();
        additions.write(&self.config.name)?;
        if new_file {
            record_file(&mut self.undo, path)?;
        }
        self.additions = additions;
        info!(name = %self.config.name, "{message}");
        Ok(message)
    }

    /// Applies `config` (the file's, with the additions) to the running instance, as a reload:
    /// what it does not change keeps forwarding. `text`, the file's, becomes the text a later
    /// adoption compares with. Fails, changing nothing, when the config does not fit the system.
    async fn apply_config(&mut self, config: Config, text: Option<&str>) -> Result<()> {
        let checked = {
            let _lock = registry::lock()?;
            let here = Namespace::current()?;
            preflight::check(
                &self.net,
                &config,
                &registry::known(),
                &here,
                Some(self.undo.state()),
            )
            .await?
        };
        // The running maps take a config of another `fdb_size` no better than a kept datapath.
        crate::datapath::loader::check_compatible(
            &instance::pin_dir(&config.name),
            config.fdb_size,
        )?;
        // The instance stays adoptable throughout: what a crash half-way leaves is recorded,
        // and the next start compares against the config it last ran whole.
        let info = write_info(&config, &self.source.path, &checked, &mut self.undo)?;
        let base = apply::Base::Reload {
            old: &self.config,
            previous: &mut self.up,
        };
        let result = apply::apply(
            &self.net,
            &config,
            &checked,
            info,
            &mut self.undo,
            base,
            self.options,
        )
        .await;
        match result {
            Ok(up) => {
                self.up = up;
                self.undo.mark_whole(text.unwrap_or(&self.source.text))?;
                self.config = config;
                self.follow_store_config()?;
                self.program_from_store(true).await;
                Ok(())
            }
            // The old config stays the one a later reload or adoption compares with: what was
            // made meanwhile is in the log either way.
            Err(e) => Err(e),
        }
    }

    /// Opens the control socket `vtep workload` and `vtep port` talk to; it is removed at the
    /// stop. Fails when it cannot be made.
    fn listen(&mut self) -> Result<control::Control> {
        let path = crate::ctl::runtime::socket(&self.config.name);
        let control = control::Control::bind(&path)?;
        record_file(&mut self.undo, path)?;
        Ok(control)
    }

    /// What this instance publishes in the store, from what it runs.
    fn published(&self) -> Option<store::Published> {
        let link = self.store.as_ref()?;
        let vtep = self.up.local.vtep?;
        let mut vnis: Vec<HostVni> = self
            .up
            .local
            .vnis
            .iter()
            .map(|(&vni, &(dstport, _))| HostVni { vni, dstport })
            .collect();
        vnis.sort_by_key(|v| v.vni);
        Some(store::Published {
            host: HostRecord {
                host: link.config.host.clone().unwrap_or_else(hostname),
                vtep,
                vnis,
            },
            stations: self.up.stations.clone(),
        })
    }

    /// Starts, stops or restarts the store client for `config` (a start, a reload); hands it
    /// what to publish. A store left (or changed) has its records revoked and what it
    /// programmed removed. Fails when the client cannot be started.
    fn follow_store_config(&mut self) -> Result<()> {
        let wanted = self.config.store.clone();
        if self.store.as_ref().map(|s| &s.config) != wanted.as_ref()
            && let Some(mut old) = self.store.take()
        {
            info!("store: leaving {}", old.config.endpoints.join(","));
            old.programmed
                .apply(&mut self.up.datapath, &store::view::Wanted::default(), true);
            old.client.stop(true);
        }
        if self.store.is_none()
            && let Some(config) = wanted
        {
            let vtep = self.up.local.vtep.context("no local VTEP address")?;
            let client = store::Client::start(&self.config.name, vtep, &config)?;
            record_file(&mut self.undo, store::Status::path(&self.config.name))?;
            self.store = Some(StoreLink {
                client,
                config,
                programmed: from_store::Programmed::default(),
            });
        }
        if let Some(p) = self.published() {
            self.store
                .as_ref()
                .expect("published has one")
                .client
                .publish(p);
        }
        Ok(())
    }

    /// A receiver of the store's views, when there is a store (again after each reload).
    fn store_views(&self) -> Option<tokio::sync::watch::Receiver<store::view::View>> {
        self.store.as_ref().map(|s| s.client.views())
    }

    /// Programs the datapath from the store's latest view: what changed since the last pass, or
    /// (`full`) everything, after the maps were rewritten. Remote VTEPs that came or went are
    /// resolved at once.
    async fn program_from_store(&mut self, full: bool) {
        let Some(link) = self.store.as_mut() else {
            return;
        };
        let view = link.client.view();
        let wanted = store::view::wanted(&view, &self.up.local);
        let changes = link.programmed.apply(&mut self.up.datapath, &wanted, full);
        if changes.vteps {
            // As `vtep fdb` does: the resolver counts the VTEPs again on its next pass.
            let stamp = crate::sys::clock::monotonic_nanos();
            if let Err(e) = self
                .up
                .datapath
                .resolver()
                .and_then(|mut r| Ok(r.set(RESOLVER_CHANGED, stamp, 0)?))
            {
                warn!("{e:#}");
            }
            if let Err(e) = self.reconcile().await {
                warn!("{e:#}");
            }
        }
    }

    /// Detaches the datapath and removes everything `start` created. Returns what could not
    /// be removed.
    pub async fn stop(mut self) -> Vec<anyhow::Error> {
        // First: a scrape meanwhile would only find the maps going.
        self.metrics = None;
        // Detached before the records are revoked: once the other hosts drop this host's
        // stations, a frame its workloads still sent would be learned there and forwarded to
        // a stopped host until it aged out.
        self.up.datapath.detach_all();
        if let Some(link) = self.store.take() {
            link.client.stop(true);
        }
        drop(self.up);
        self.undo.run(&self.net).await
    }

    /// Ends the process's part, leaving the datapath attached and forwarding and everything it
    /// made in place, for the next `vtep up` of the instance to adopt. Fails, having changed
    /// nothing, when the datapath cannot be pinned to outlive the process.
    pub fn keep(mut self) -> Result<()> {
        self.metrics = None;
        // The records stay under their lease, which the next process takes over.
        if let Some(link) = self.store.take() {
            link.client.stop(false);
        }
        if !self.options.keep {
            self.up.datapath.pin_links(true)?;
            self.undo.set_kept(true)?;
        }
        if self.up.datapath.trace().is_on() {
            warn!(
                "the kept datapath was loaded with --trace-datapath: it goes on writing its log, which nobody reads, until the next `vtep up` loads its own programs"
            );
        }
        // The links are pinned: closing them here detaches nothing.
        drop(self.up);
        self.undo.keep();
        Ok(())
    }
}

/// What the last reload came to: `/run/vtep/NAME.reload.json`, which `vtep reload` waits on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReloadOutcome {
    /// Counts the reloads the process was asked for.
    pub generation: u64,
    pub ok: bool,
    pub message: String,
}

impl ReloadOutcome {
    /// The file of instance `name`'s outcomes.
    pub fn path(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(instance::STATE_DIR).join(format!("{name}.reload.json"))
    }

    /// The last outcome of instance `name`, if any.
    pub fn load(name: &str) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(Self::path(name)).ok()?).ok()
    }

    /// Writes it (whole, through a rename) and records the file for removal at the stop.
    fn write(&self, name: &str, undo: &mut Undo) -> Result<()> {
        let path = Self::path(name);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        record_file(undo, path)
    }
}

/// Records file `path`, just written, for removal at the stop: a new record, or the new
/// identity of one recorded before.
fn record_file(undo: &mut Undo, path: std::path::PathBuf) -> Result<()> {
    let id = FileId::of(&path)?.with_context(|| format!("{} vanished", path.display()))?;
    undo.record(Item::File {
        path: path.clone(),
        id,
    })?;
    undo.file_rewritten(&path)
}

/// What `vtep check --system` found: the checks `vtep up` makes before it changes anything
/// passed.
pub struct SystemChecked {
    pub underlay: String,
    pub mtu: u32,
    pub local: std::net::IpAddr,
    /// Other instances with a state file (running or crashed), checked against.
    pub others: usize,
    /// `metrics.listen`, which could be bound.
    pub metrics: Option<std::net::SocketAddr>,
}

/// Runs the checks `vtep up` makes against the system, changing nothing. Fails with the first
/// problem, as `vtep up` would.
pub async fn check_system(config: &Config) -> Result<SystemChecked> {
    let net = Net::connect()?;
    let known = registry::known();
    let here = Namespace::current()?;
    let own = adoptable_state(config, &known, &here)?;
    let checked = preflight::check(&net, config, &known, &here, own.as_ref()).await?;
    // Bound and let go at once: free now is all a check can say.
    let metrics = match &config.metrics {
        Some(m) => Some(metrics::bind(m.addr())?.local_addr()?),
        None => None,
    };
    Ok(SystemChecked {
        underlay: checked.underlay.name,
        mtu: checked.underlay.mtu,
        local: checked.local,
        others: known.iter().filter(|k| k.name != config.name).count(),
        metrics,
    })
}

/// The state of a stopped instance of `config`'s name that a start adopts, if there is one;
/// fails when there is one that cannot be adopted (see [`preflight::adoptable`]). A running
/// one is left to the checks, which refuse it.
fn adoptable_state(
    config: &Config,
    known: &[registry::Known],
    here: &Namespace,
) -> Result<Option<undo::State>> {
    match known.iter().find(|k| k.name == config.name) {
        Some(k) if !k.alive => {
            preflight::adoptable(&config.name, &k.state, here)?;
            Ok(Some(k.state.clone()))
        }
        _ => Ok(None),
    }
}

/// What [`claim`] returns.
type Claimed = (
    Checked,
    Undo,
    instance::Info,
    Option<Option<Config>>,
    Option<tokio::net::TcpListener>,
);

/// Validates `config` against the system and the other instances and takes its name: under
/// the registry's lock, so that of two starts only one passes. A stopped instance of the same
/// name whose datapath was kept is taken over (its log, with everything it made). Returns the
/// undo log, which holds the owner and the info file for the other commands, the previous
/// config when one is adopted, and the socket `/metrics` is to be served on. Fails with the
/// first problem found, having changed nothing.
async fn claim(net: &Net, config: &Config, source: &std::path::Path) -> Result<Claimed> {
    let _lock = registry::lock()?;
    let here = Namespace::current()?;
    let known = registry::known();
    let own = adoptable_state(config, &known, &here)?;
    let checked = preflight::check(net, config, &known, &here, own.as_ref()).await?;
    // The last check: a port in use is refused before anything changes, and the socket stays
    // bound, so no one takes the port while the datapath comes up. After the other checks, so
    // a second start of a running instance is told that, not that its port is taken.
    let metrics = match &config.metrics {
        Some(m) => Some(metrics::bind(m.addr())?),
        None => None,
    };
    let path = instance::state_file(&config.name);
    let (mut undo, adopted) = match own {
        Some(state) => {
            // Before the log changes hands: a datapath this build cannot use is refused with
            // nothing changed.
            crate::datapath::loader::check_compatible(
                &instance::pin_dir(&config.name),
                config.fdb_size,
            )
            .with_context(|| {
                format!(
                    "the kept datapath of instance `{}` does not fit this config and vtep; run `vtep down -n {}` to remove it (this interrupts its traffic), then start again; it forwards on meanwhile",
                    config.name, config.name
                )
            })?;
            // A config the log holds that no longer parses (an older vtep's) only loses the
            // comparison: every port is made again.
            let old = state.config.as_deref().and_then(|t| Config::parse(t).ok());
            info!(
                name = %config.name,
                "adopting the datapath instance `{}` kept at its stop (pid {} is gone)",
                config.name,
                state.owner.pid
            );
            (
                Undo::take_over(path, state, Process::current()?)?,
                Some(old),
            )
        }
        None => (Undo::create(path, Process::current()?, here)?, None),
    };
    match write_info(config, source, &checked, &mut undo) {
        Ok(info) => Ok((checked, undo, info, adopted, metrics)),
        Err(e) if adopted.is_some() => Err(e),
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
fn write_info(
    config: &Config,
    source: &std::path::Path,
    checked: &Checked,
    undo: &mut Undo,
) -> Result<instance::Info> {
    let info = instance::Info {
        config: Some(source.to_path_buf()),
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
    record_file(undo, instance::info_file(&config.name))?;
    Ok(info)
}

/// Validates `config` against the system, then applies it: from scratch, or adopting the
/// datapath a stopped instance of the same name kept. Fails, changing nothing, when
/// /sys/fs/bpf is not the host's (`ip netns exec`): other commands could never find the
/// instance. On a later failure of a fresh start everything created so far is removed again
/// before the error is returned; a failed adoption leaves the kept datapath forwarding, to be
/// adopted by a later start or removed by `vtep down`.
pub async fn start(config: &Config, source: Source, options: Options) -> Result<Running> {
    bpffs::require_hosts()?;
    let net = Net::connect()?;
    // What an adopted instance's info file said, put back if the adoption fails: the other
    // commands and starts read what the kept datapath serves there.
    let kept_info = std::fs::read(instance::info_file(&config.name)).ok();
    let (checked, mut undo, info, adopted, listener) = claim(&net, config, &source.path).await?;
    // What the kept process added at run time is run again, on top of the config file.
    let mut additions = match adopted {
        Some(_) => Additions::load(&config.name).unwrap_or_default(),
        None => Additions::default(),
    };
    let file_config = config;
    let config = &match additions.merged(file_config) {
        Ok(merged) => merged,
        Err(e) => {
            warn!(
                "the workloads and ports added at run time do not fit the config any more ({e}); they are removed"
            );
            additions = Additions::default();
            file_config.clone()
        }
    };
    let base = match adopted.clone() {
        Some(old) => apply::Base::Adopt {
            old: old.map(|o| additions.merged(&o).unwrap_or(o)).map(Box::new),
        },
        None => apply::Base::Fresh,
    };
    match apply::apply(&net, config, &checked, info, &mut undo, base, options).await {
        Ok(up) => {
            undo.mark_whole(&source.text)?;
            let mut running = Running {
                net,
                undo,
                up,
                config: config.clone(),
                source,
                // An adopted instance's `vtep reload` waits for a generation above the last.
                reloads: ReloadOutcome::load(&config.name).map_or(0, |o| o.generation),
                options,
                store: None,
                file_config: file_config.clone(),
                additions,
                metrics: listener.map(|l| metrics::Server::start(l, &config.name)),
            };
            if !running.additions.is_empty() {
                // The file is the kept process's, recorded in the log it took over.
                if let Err(e) = running.additions.write(&config.name) {
                    warn!("{e:#}");
                }
            }
            // The datapath forwards already; a store that cannot be reached is retried.
            if let Err(e) = running.follow_store_config() {
                warn!("store: {e:#}");
            }
            Ok(running)
        }
        Err(e) if adopted.is_some() => {
            if let Some(bytes) = kept_info {
                let path = instance::info_file(&config.name);
                let restored = std::fs::write(&path, bytes)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| undo.file_rewritten(&path));
                if let Err(e) = restored {
                    warn!("restoring {}: {e:#}", path.display());
                }
            }
            undo.keep();
            Err(e.context(format!(
                "adopting the kept datapath of instance `{}` failed; it forwards on as it was (start again once fixed, or `vtep down -n {}` to remove it)",
                config.name, config.name
            )))
        }
        Err(e) => {
            for err in undo.run(&net).await {
                warn!("cleanup after failed start: {err:#}");
            }
            Err(e)
        }
    }
}

/// How `vtep up` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Remove everything.
    Full,
    /// Leave the datapath forwarding for the next `vtep up` to adopt.
    Keep,
}

/// Runs the config read from `source` until SIGINT or SIGTERM (a full stop, or one that keeps
/// the datapath with `options.keep`) or SIGUSR2 (a stop that keeps it); SIGHUP reloads the
/// config file. Fails when the start fails (having removed what it made) or something could not
/// be removed at a full stop.
pub async fn run(config: &Config, source: Source, options: Options) -> Result<()> {
    let keep = options.keep;
    // Handlers first: a signal that arrives while starting must still end in a clean stop,
    // not in the default action that kills the process half-way.
    let mut signals = Signals::install()?;
    let mut running = start(config, source, options).await?;
    // Open before "vtep is up": a `vtep workload add` right after it must find it.
    let control = match running.listen() {
        Ok(control) => control,
        Err(e) if keep => {
            // The datapath forwards on, for a start that can open it.
            running.keep()?;
            return Err(e);
        }
        Err(e) => {
            for err in running.stop().await {
                warn!("cleanup after failed start: {err:#}");
            }
            return Err(e);
        }
    };
    if options.trace.is_on() {
        info!(
            "tracing the datapath ({}): its lines are logged under the target vtep::datapath",
            options.trace
        );
    }
    // Subscribed after the start: what the start itself did to the interfaces is known.
    let mut link_changes = Notifications::subscribe();
    let mut routing_changes = routing::RoutingEvents::subscribe();
    info!(
        name = %config.name,
        "vtep is up; SIGINT or SIGTERM stops it{}, SIGUSR2 stops it keeping the datapath, SIGHUP reloads its config",
        if keep { " keeping the datapath" } else { "" }
    );
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    let mut views = running.store_views();
    // The datapath is attached and forwarding, the control socket open: ready.
    notify::notify(&format!(
        "READY=1\nMAINPID={}\nSTATUS=forwarding",
        std::process::id()
    ));
    let how = loop {
        tokio::select! {
            (req, answer) = control.next() => {
                let outcome = running.change(&req).await;
                if let Err(e) = &outcome {
                    warn!("refused: {e:#}");
                }
                answer.send(outcome).await;
                // A change may have (re)started nothing, but the store's receiver is cheap.
                views = running.store_views();
            }
            () = next_view(&mut views) => running.program_from_store(false).await,
            signal = signals.next() => match signal {
                Signal::Stop if keep => break Stop::Keep,
                Signal::Stop => break Stop::Full,
                Signal::StopKeeping => break Stop::Keep,
                Signal::Reload => {
                    notify::reloading();
                    running.reload().await;
                    notify::notify("READY=1");
                    views = running.store_views();
                }
                Signal::Recount => {
                    if let Err(e) = running.reconcile().await {
                        warn!("{e:#}");
                    }
                }
            },
            _ = tick.tick() => {
                if let Err(e) = running.reconcile().await {
                    warn!("{e:#}");
                }
            }
            () = link_changes.next() => running.follow_links().await,
            changed = routing_changes.next() => running.follow_routing(changed).await,
        }
    };
    notify::notify("STOPPING=1");
    if how == Stop::Keep {
        info!(
            "stopping; the datapath keeps forwarding until the next `vtep up` of this instance adopts it (`vtep down` removes it)"
        );
        // Unpinned links would die with the process and nothing would forward: say so.
        return running
            .keep()
            .context("keeping the datapath at the stop failed; run `vtep down` to clean up");
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

/// Waits until the store's view changed; forever without a store.
async fn next_view(views: &mut Option<tokio::sync::watch::Receiver<store::view::View>>) {
    match views {
        Some(rx) => {
            if rx.changed().await.is_err() {
                // The client's thread ended: nothing more comes.
                *views = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// The system's host name, published when `store.host` is not given.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// What a signal asks of `vtep up`.
enum Signal {
    /// SIGINT, SIGTERM.
    Stop,
    /// SIGUSR2.
    StopKeeping,
    /// SIGHUP.
    Reload,
    /// SIGUSR1, from a `vtep fdb` command that changed the remote VTEPs named: reconcile now.
    Recount,
}

/// The handlers of the signals `vtep up` acts on, installed at once.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("installing the {name} handler"))
        };
        Ok(Self {
            int: install(SignalKind::interrupt(), "SIGINT")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            usr1: install(SignalKind::user_defined1(), "SIGUSR1")?,
            usr2: install(SignalKind::user_defined2(), "SIGUSR2")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// The next signal.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Stop,
            _ = self.term.recv() => Signal::Stop,
            _ = self.usr1.recv() => Signal::Recount,
            _ = self.usr2.recv() => Signal::StopKeeping,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
