//! Prometheus metrics of a running instance (`[metrics]`; docs/metrics.md): `vtep up` serves
//! `GET /metrics` in the Prometheus text format, read from the instance's maps at each scrape
//! ([`Snapshot`]) by a small HTTP responder ([`http`]) on a task of its own, so a scrape (or a
//! client that never finishes its request) never holds up the daemon's loop.
//!
//! The socket is bound in the network namespace `vtep` was started from, as the store's
//! connections are made from there: with `vtep --netns NS up` the datapath is NS's, the
//! management network Prometheus scrapes over the caller's. It is bound before anything
//! changes (a port in use fails the start with nothing to undo) and closed at the stop.

mod collect;
mod http;

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, Result};
use tracing::info;

pub use collect::Snapshot;

use crate::{config::invalid, sys::netns};

/// Binds `addr` (`metrics.listen`) in the namespace `vtep` was started from, for [`Server`].
/// Fails naming `metrics.listen` when the address cannot be bound (in use, or not an address
/// of the host).
pub fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    // A socket belongs to the namespace of the thread that makes it; the thread is left
    // behind in that namespace and ends here.
    let bound = std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter_origin_for_thread()?;
            std::net::TcpListener::bind(addr).map_err(anyhow::Error::from)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    let listener = bound.map_err(|e| {
        let hint = match e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
            Some(std::io::ErrorKind::AddrInUse) => {
                "; another process (another instance's metrics?) listens there"
            }
            Some(std::io::ErrorKind::AddrNotAvailable) => "; it is not an address of this host",
            _ => "",
        };
        invalid(
            "metrics.listen",
            format!("cannot listen on {addr}: {e:#}{hint}"),
        )
    })?;
    listener
        .set_nonblocking(true)
        .context("metrics: making the socket non-blocking")?;
    tokio::net::TcpListener::from_std(listener).context("metrics: handing the socket to tokio")
}

/// `/metrics` being served; dropping it closes the socket and ends the connections being
/// served.
pub struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves instance `name`'s metrics on `listener` (from [`bind`]).
    pub fn start(listener: tokio::net::TcpListener, name: &str) -> Self {
        // Never fails for a bound socket; the unspecified address would only make the next
        // reload bind again.
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let task = tokio::spawn(http::serve(listener, Arc::from(name)));
        info!("metrics: serving http://{addr}/metrics");
        Self { addr, task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
