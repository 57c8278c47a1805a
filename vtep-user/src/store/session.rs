//! One connection to etcd and everything done over it: take (or keep) the lease, write this
//! host's records under it, list the prefix and watch it from the listed revision, keep the
//! lease alive, and publish changes of our own records. Any failure ends the session; the caller
//! ([`super::run`]) starts another after a backoff, which lists again: what changed meanwhile
//! (also behind a compacted watch) is then seen whole.

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use etcd_client::{
    Certificate, Client, ConnectOptions, EventType, GetOptions, Identity, PutOptions, TlsOptions,
    WatchOptions,
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    config::store::Store,
    store::{
        Published, Shared,
        records::Keys,
        view::{Entry, View},
    },
};

/// How long connecting and each request may take before the store counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How a session ended without an error.
pub enum Ended {
    /// Asked to stop; the lease was revoked (a full stop) or left to run out (a stop that keeps
    /// the datapath, for the next process to take over).
    Stopped,
}

/// Why a session ended with an error, for the caller's backoff.
pub enum Failure {
    /// The watch fell behind a compaction: list again at once.
    Compacted(i64),
    /// etcd could not be reached or failed a request: list again after a backoff.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl From<etcd_client::Error> for Failure {
    fn from(e: etcd_client::Error) -> Self {
        Self::Other(anyhow!(describe(&e)))
    }
}

/// An etcd error as a person reads it: a gRPC status says what failed in its message and why
/// in its source chain (a refused connection, a certificate the CA did not sign), whose last
/// link is the cause.
pub fn describe(e: &etcd_client::Error) -> String {
    let (mut out, mut source) = match e {
        etcd_client::Error::GRpcStatus(status) => (
            status.message().to_string(),
            std::error::Error::source(status),
        ),
        other => (other.to_string(), std::error::Error::source(other)),
    };
    let mut cause = None;
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = cause
        && !out.contains(&cause)
    {
        out.push_str(": ");
        out.push_str(&cause);
    }
    out
}

/// `error` with what it likely means over TLS. With TLS 1.3 a server that refuses the client's
/// certificate (or its lack of one) says so with an alert after the client considers the
/// handshake done, so what the client sees is its first request's connection closing.
pub fn with_hint(store: &Store, error: String) -> String {
    let closed = ["closed", "broken pipe", "canceled", "reset by peer"]
        .iter()
        .any(|w| error.to_lowercase().contains(w));
    if !store.tls() || error.to_lowercase().contains("certificate") || !closed {
        return error;
    }
    let which = if store.cert.is_some() {
        "check that store.cert is signed by a CA the etcd servers trust (--trusted-ca-file)"
    } else {
        "the etcd servers may require a client certificate (--client-cert-auth): set store.cert and store.key"
    };
    format!("{error} (the TLS connection was closed by the server: {which})")
}

/// Connects to `store`'s endpoints.
pub async fn connect(store: &Store) -> Result<Client> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), REQUEST_TIMEOUT)
        .with_keep_alive_while_idle(true);
    if store.tls() {
        let read = |field: &str, path: &std::path::Path| {
            std::fs::read(path)
                .with_context(|| format!("store.{field}: reading {}", path.display()))
        };
        let ca = store.ca.as_ref().context("store.ca: missing")?;
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read("ca", ca)?));
        if let (Some(cert), Some(key)) = (&store.cert, &store.key) {
            tls = tls.identity(Identity::from_pem(read("cert", cert)?, read("key", key)?));
        }
        options = options.with_tls(tls);
    }
    Client::connect(&store.endpoints, Some(options))
        .await
        .map_err(|e| anyhow!(describe(&e)))
}

/// What one session works with, kept across sessions.
pub struct Session<'a> {
    pub store: &'a Store,
    pub keys: &'a Keys,
    pub shared: &'a Shared,
    /// The lease of the last session, taken over when it is still alive (a reconnect, or a new
    /// process of an instance that kept its datapath).
    pub lease: Option<i64>,
    /// The last session got as far as listing (a later failure is not the handshake's).
    pub listed: bool,
}

impl Session<'_> {
    /// Runs a session until it fails or `stop` says so (true: revoke the lease).
    pub async fn run(
        &mut self,
        publish: &mut watch::Receiver<Option<Published>>,
        view_tx: &watch::Sender<View>,
        stop: &mut watch::Receiver<Option<bool>>,
    ) -> Result<Ended, Failure> {
        self.listed = false;
        let mut client = connect(self.store).await?;
        let lease = self.lease(&mut client).await?;
        let (mut keeper, mut alive) = client.lease_keep_alive(lease).await?;
        // Our own records, written under the lease (again: a lost or new lease lost them).
        let mut written: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let wanted = own_records(self.keys, &publish.borrow_and_update());
        self.write(&mut client, lease, &mut written, wanted).await?;

        let mut listed = client
            .get(self.keys.root(), Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = listed.header().map_or(0, |h| h.revision());
        let mut view = View::default();
        let mut refused = HashSet::new();
        for kv in listed.take_kvs() {
            self.apply_put(&mut view, &mut refused, &kv);
        }
        // Our own keys from before (a workload deleted while etcd was away) go now.
        let stale: Vec<String> = view
            .entries
            .keys()
            .filter(|k| k.starts_with(&self.own_prefix()) && !written.contains_key(*k))
            .cloned()
            .collect();
        for key in stale {
            client.delete(key.as_str(), None).await?;
        }
        view_tx.send_replace(view.clone());
        self.listed = true;
        let mut watch = client
            .watch(
                self.keys.root(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(revision + 1),
                ),
            )
            .await?;
        self.shared.connected(revision, view.counts());
        info!(
            endpoints = %self.store.endpoints.join(","),
            revision,
            "store: connected; listed {} host(s) and {} station(s)",
            view.counts().0,
            view.counts().1
        );
        let ttl = u64::from(self.store.lease_ttl);
        // A third of the lease: two keep-alives may be lost before it runs out.
        let mut tick = tokio::time::interval(Duration::from_millis(ttl * 1000 / 3));
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    let revoke = changed.is_err() || stop.borrow().unwrap_or(true);
                    if revoke {
                        client.lease_revoke(lease).await?;
                        self.lease = None;
                    }
                    return Ok(Ended::Stopped);
                }
                _ = tick.tick() => keeper.keep_alive().await?,
                reply = alive.message() => match reply? {
                    Some(r) if r.ttl() > 0 => {}
                    _ => {
                        self.lease = None;
                        return Err(anyhow!("the store's lease {lease:x} expired; registering again").into());
                    }
                },
                changed = publish.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let wanted = own_records(self.keys, &publish.borrow_and_update());
                    self.write(&mut client, lease, &mut written, wanted).await?;
                }
                message = watch.message() => {
                    let Some(resp) = message? else {
                        return Err(anyhow!("the store closed the watch").into());
                    };
                    if resp.compact_revision() > 0 {
                        return Err(Failure::Compacted(resp.compact_revision()));
                    }
                    if resp.canceled() {
                        return Err(anyhow!("the store cancelled the watch: {}", resp.cancel_reason()).into());
                    }
                    let mut changed = false;
                    for event in resp.events() {
                        let Some(kv) = event.kv() else { continue };
                        changed = true;
                        match event.event_type() {
                            EventType::Put => self.apply_put(&mut view, &mut refused, kv),
                            EventType::Delete => {
                                let key = String::from_utf8_lossy(kv.key()).into_owned();
                                view.entries.remove(&key);
                                refused.remove(&key);
                            }
                        }
                    }
                    if changed {
                        let revision = resp.header().map_or(0, |h| h.revision());
                        self.shared.connected(revision, view.counts());
                        view_tx.send_replace(view.clone());
                    }
                }
            }
        }
    }

    /// `PREFIX/v1/` keys of this host's own records start with one of these.
    fn own_prefix(&self) -> String {
        let vtep = self.shared.vtep();
        format!("{}stations/{vtep}/", self.keys.root())
    }

    /// The lease of the last session if etcd still has it, else a new one.
    async fn lease(&mut self, client: &mut Client) -> Result<i64, Failure> {
        if let Some(id) = self.lease {
            let ttl = client.lease_time_to_live(id, None).await?;
            if ttl.ttl() > 0 {
                return Ok(id);
            }
            warn!("store: the lease {id:x} ran out meanwhile; registering again");
        }
        let granted = client
            .lease_grant(i64::from(self.store.lease_ttl), None)
            .await?;
        self.lease = Some(granted.id());
        self.shared.set_lease(granted.id());
        Ok(granted.id())
    }

    /// Makes the store hold `wanted` of our own records: writes what is new or changed under
    /// `lease`, deletes what went.
    async fn write(
        &self,
        client: &mut Client,
        lease: i64,
        written: &mut BTreeMap<String, Vec<u8>>,
        wanted: BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Failure> {
        let gone: Vec<String> = written
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            client.delete(key.as_str(), None).await?;
            written.remove(&key);
        }
        for (key, value) in wanted {
            if written.get(&key) == Some(&value) {
                continue;
            }
            client
                .put(
                    key.as_str(),
                    value.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )
                .await?;
            written.insert(key, value);
        }
        Ok(())
    }

    /// Takes a put into `view`; a record that is not one vtep accepts is left out, and logged
    /// once per key.
    fn apply_put(
        &self,
        view: &mut View,
        refused: &mut HashSet<String>,
        kv: &etcd_client::KeyValue,
    ) {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        match self.keys.parse(&key, kv.value()) {
            Ok(record) => {
                refused.remove(&key);
                view.entries.insert(
                    key,
                    Entry {
                        record,
                        create_revision: kv.create_revision(),
                    },
                );
            }
            Err(why) => {
                view.entries.remove(&key);
                if refused.insert(key.clone()) {
                    warn!("store: ignoring {key}: {why}");
                }
            }
        }
    }
}

/// Our own records as keys and values.
fn own_records(keys: &Keys, published: &Option<Published>) -> BTreeMap<String, Vec<u8>> {
    let Some(p) = published else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    out.insert(
        keys.host(p.host.vtep),
        serde_json::to_vec(&p.host).expect("serializable"),
    );
    for s in &p.stations {
        out.insert(
            keys.station(s),
            serde_json::to_vec(s).expect("serializable"),
        );
    }
    out
}
