//! The store (scenario S5, docs/store.md): this instance publishes its host and stations in etcd
//! and learns every other instance's, so that many hosts program each other without FDB entries
//! in any config. The keys and values are [`records`]; a connection to etcd is a [`session`];
//! what the datapath should hold from what was read is [`view`] (pure); writing it into the maps
//! is the daemon's (`daemon::from_store`), on its own loop.
//!
//! The client runs on a thread of its own with its own runtime, in the network namespace vtep
//! was started from (see [`crate::sys::netns::enter_origin_for_thread`]). It never blocks the
//! daemon: the daemon hands it what to publish and reads the latest view through watch
//! channels, and the datapath forwards with what it has while etcd is away.

pub mod records;
mod session;
pub mod view;

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    config::store::Store,
    instance,
    store::{
        records::{HostRecord, Keys, StationRecord},
        session::{Ended, Failure, Session},
        view::View,
    },
};

/// First wait after a failure; doubled after each further one up to [`MAX_BACKOFF`] (or a third
/// of the lease, if shorter). The
/// longest wait bounds how long a host stays behind once etcd is back; at one small request per
/// host per wait, even thousands of hosts retrying do not load a recovering cluster much.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// While etcd stays unreachable with the same error, it is logged again at most this often.
const RELOG_EVERY: Duration = Duration::from_secs(60);
/// How long a full stop waits for the lease to be revoked before it goes on without.
const REVOKE_WAIT: Duration = Duration::from_secs(3);

/// What this instance publishes: its host record and its stations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub host: HostRecord,
    pub stations: Vec<StationRecord>,
}

/// The store client's state, as `vtep stats` shows it: `/run/vtep/NAME.store.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `connecting`, `connected` or `unreachable`.
    pub state: String,
    pub endpoints: Vec<String>,
    /// Seconds since the epoch at which `state` began.
    pub since: u64,
    /// Why it is unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds until the next attempt, when unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// The revision last seen.
    pub revision: i64,
    /// What the view holds (all hosts, this one included).
    pub hosts: usize,
    pub stations: usize,
    /// Failed attempts since the last success.
    pub failures: u64,
    /// The lease this host's records are under (hex, as etcdctl shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

impl Status {
    /// The status file of instance `name`.
    pub fn path(name: &str) -> PathBuf {
        PathBuf::from(instance::STATE_DIR).join(format!("{name}.store.json"))
    }

    /// Seconds from epoch second `since` until now.
    pub fn age(since: u64) -> u64 {
        now().saturating_sub(since)
    }

    /// The status of instance `name`, if it has a store. A read that meets the file half
    /// rewritten tries again.
    pub fn load(name: &str) -> Option<Self> {
        for _ in 0..3 {
            let bytes = std::fs::read(Self::path(name)).ok()?;
            if let Ok(s) = serde_json::from_slice(&bytes) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

/// What the daemon and the client thread share: the status (written to its file on each
/// change) and this host's VTEP.
pub struct Shared {
    name: String,
    vtep: IpAddr,
    status: Mutex<Status>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = status.state.clone();
        f(&mut status);
        if status.state != before {
            status.since = now();
        }
        // Written in place: the file keeps the identity the undo log recorded.
        let path = Status::path(&self.name);
        let write = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| {
                use std::io::Write as _;
                f.write_all(&serde_json::to_vec(&*status).expect("serializable"))
            });
        if let Err(e) = write {
            warn!("writing {}: {e}", path.display());
        }
    }

    fn connected(&self, revision: i64, (hosts, stations): (usize, usize)) {
        self.update(|s| {
            s.state = "connected".into();
            s.error = None;
            s.retry_in_ms = None;
            s.failures = 0;
            s.revision = revision;
            s.hosts = hosts;
            s.stations = stations;
        });
    }

    fn set_lease(&self, id: i64) {
        self.update(|s| s.lease = Some(format!("{id:x}")));
    }

    fn failures(&self) -> u64 {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .failures
    }

    fn vtep(&self) -> IpAddr {
        self.vtep
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The running store client.
pub struct Client {
    publish: watch::Sender<Option<Published>>,
    view: watch::Receiver<View>,
    /// `Some(true)`: stop and revoke the lease; `Some(false)`: stop and leave it to run out.
    stop: watch::Sender<Option<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Starts the client of instance `name` (VTEP `vtep`) for `store`: it connects in the
    /// background, and retries until it can. `status_path_created` is called with the status
    /// file once it exists, for the undo log. A lease a kept datapath's process left in the
    /// status file is taken over when etcd still has it. Fails only when the thread cannot be
    /// started or the status file written.
    pub fn start(name: &str, vtep: IpAddr, store: &Store) -> Result<Self> {
        let previous = Status::load(name);
        let lease = previous
            .as_ref()
            .and_then(|s| s.lease.as_deref())
            .and_then(|l| i64::from_str_radix(l, 16).ok());
        let path = Status::path(name);
        let status = Status {
            state: "connecting".into(),
            endpoints: store.endpoints.clone(),
            since: now(),
            lease: previous.and_then(|s| s.lease),
            ..Status::default()
        };
        std::fs::write(&path, serde_json::to_vec(&status)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            vtep,
            status: Mutex::new(status),
        });
        let (publish, publish_rx) = watch::channel(None);
        let (view_tx, view) = watch::channel(View::default());
        let (stop, stop_rx) = watch::channel(None);
        let store = store.clone();
        let thread = std::thread::Builder::new()
            .name("vtep-store".into())
            .spawn(move || {
                if let Err(e) = crate::sys::netns::enter_origin_for_thread() {
                    warn!("store: {e:#}; the store is not used");
                    return;
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        warn!("store: starting its runtime: {e}; the store is not used");
                        return;
                    }
                };
                runtime.block_on(run(store, shared, lease, publish_rx, view_tx, stop_rx));
            })
            .context("starting the store client's thread")?;
        Ok(Self {
            publish,
            view,
            stop,
            thread: Some(thread),
        })
    }

    /// Publishes `p` as this host's records (the client writes what changed).
    pub fn publish(&self, p: Published) {
        self.publish.send_if_modified(|old| {
            let changed = old.as_ref() != Some(&p);
            *old = Some(p);
            changed
        });
    }

    /// The latest view.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver that says when the view changes.
    pub fn views(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// Stops the client: with `revoke`, this host's records are deleted from the store at once
    /// (a full stop); without, they stay until the lease runs out or the next process of the
    /// instance takes the lease over (a stop that keeps the datapath).
    pub fn stop(mut self, revoke: bool) {
        let _ = self.stop.send(Some(revoke));
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + REVOKE_WAIT;
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            warn!("store: not answering; this host's records stay until their lease runs out");
        }
    }
}

/// The client's life: sessions, with a backoff after each failure, until stopped.
async fn run(
    store: Store,
    shared: Arc<Shared>,
    lease: Option<i64>,
    mut publish: watch::Receiver<Option<Published>>,
    view_tx: watch::Sender<View>,
    mut stop: watch::Receiver<Option<bool>>,
) {
    let keys = Keys::new(&store.prefix);
    let mut session = Session {
        store: &store,
        keys: &keys,
        shared: &shared,
        lease,
        listed: false,
    };
    // Never longer than a third of the lease (the keep-alive cadence), jitter included at most
    // half of it: when etcd comes back after an outage, every host is back before the leases
    // etcd restored run out, and none loses its records (and its entries on every other host)
    // for want of an attempt. A test caught a 5 s backoff against a 2 s lease doing just that.
    let max_backoff = MAX_BACKOFF
        .min(Duration::from_millis(u64::from(store.lease_ttl) * 1000 / 3))
        .max(FIRST_BACKOFF);
    let mut backoff = FIRST_BACKOFF;
    // The error last logged and when: an outage is one line a minute, not one per attempt.
    let mut logged: Option<(String, std::time::Instant)> = None;
    loop {
        if stop.borrow().is_some() {
            return;
        }
        let wait = match session.run(&mut publish, &view_tx, &mut stop).await {
            Ok(Ended::Stopped) => return,
            Err(Failure::Compacted(rev)) => {
                info!("store: the watch fell behind a compaction (revision {rev}); listing again");
                backoff = FIRST_BACKOFF;
                continue;
            }
            Err(Failure::Other(e)) => {
                let error = match session.listed {
                    true => format!("{e:#}"),
                    false => session::with_hint(&store, format!("{e:#}")),
                };
                let failures = shared.failures() + 1;
                if failures == 1 {
                    // Connected since the last one logged: this outage is news.
                    logged = None;
                }
                let quiet = logged
                    .as_ref()
                    .is_some_and(|(last, at)| *last == error && at.elapsed() < RELOG_EVERY);
                if !quiet {
                    warn!(
                        "store unreachable ({failures} attempt(s)): {error}; the datapath forwards with what it has; retrying every {MAX_BACKOFF:?} or so at most"
                    );
                    logged = Some((error.clone(), std::time::Instant::now()));
                }
                // Up to half as long again, at random: after an outage thousands of hosts
                // do not come back (and list the whole prefix) in the same instant.
                let jitter = u64::from(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos()),
                ) % (backoff.as_millis() as u64 / 2 + 1);
                let wait = backoff + Duration::from_millis(jitter);
                backoff = (backoff * 2).min(max_backoff);
                shared.update(|s| {
                    s.state = "unreachable".into();
                    s.error = Some(error);
                    s.retry_in_ms = Some(wait.as_millis() as u64);
                    s.failures += 1;
                });
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
