//! The kernel's route and neighbour notifications (RTNLGRP_IPV4_ROUTE, _IPV6_ROUTE, _NEIGH): a
//! route to a remote VTEP that changes, or its next hop's neighbour entry that resolves or
//! fails, reaches the datapath's next-hop cache at once instead of at the next once-a-second
//! reconcile, which stays as the safety net (a lost notification, a failed subscription).

use std::time::Duration;

use futures::StreamExt as _;
use rtnetlink::{
    MulticastGroup,
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::RouteNetlinkMessage,
};
use tracing::warn;

/// How long a burst of notifications is gathered into one wake-up: a route flap or a link
/// going down brings dozens within a millisecond or two.
const GATHER: Duration = Duration::from_millis(5);
/// How long a failed subscription waits before it is made again.
const RESUBSCRIBE: Duration = Duration::from_secs(10);

type Message = (
    NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
);

/// What a wake-up brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// A route was added, changed or removed: the kept VTEPs' routes are looked up again.
    pub routes: bool,
    /// A neighbour entry changed: the cache is brought in line with the table.
    pub neighbours: bool,
}

pub struct RoutingEvents {
    rx: Option<futures::channel::mpsc::UnboundedReceiver<Message>>,
}

impl RoutingEvents {
    /// Subscribes; a subscription that cannot be made is logged and tried again by
    /// [`RoutingEvents::next`] (the periodic reconcile covers the meantime).
    pub fn subscribe() -> Self {
        let groups = [
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
            MulticastGroup::Neigh,
        ];
        match rtnetlink::new_multicast_connection(&groups) {
            Ok((conn, _handle, rx)) => {
                tokio::spawn(conn);
                Self { rx: Some(rx) }
            }
            Err(e) => {
                warn!("cannot follow route notifications (checking once a second): {e}");
                Self { rx: None }
            }
        }
    }

    /// Waits for a route or neighbour notification, then gathers the rest of its burst. A
    /// subscription that ended or could not be made is made again later, which is a wake-up
    /// that says both changed (what happened meanwhile is unknown).
    pub async fn next(&mut self) -> Changed {
        loop {
            let Some(rx) = &mut self.rx else {
                tokio::time::sleep(RESUBSCRIBE).await;
                *self = Self::subscribe();
                if self.rx.is_some() {
                    return Changed {
                        routes: true,
                        neighbours: true,
                    };
                }
                continue;
            };
            let Some(first) = rx.next().await else {
                warn!("route notifications ended; subscribing again in {RESUBSCRIBE:?}");
                self.rx = None;
                continue;
            };
            let mut changed = Changed::default();
            note(&mut changed, &first);
            let deadline = tokio::time::Instant::now() + GATHER;
            while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, rx.next()).await {
                note(&mut changed, &msg);
            }
            if changed != Changed::default() {
                return changed;
            }
        }
    }
}

/// Notes what `msg` is about.
fn note(changed: &mut Changed, (msg, _): &Message) {
    if let NetlinkPayload::InnerMessage(inner) = &msg.payload {
        match inner {
            RouteNetlinkMessage::NewRoute(_) | RouteNetlinkMessage::DelRoute(_) => {
                changed.routes = true
            }
            RouteNetlinkMessage::NewNeighbour(_) | RouteNetlinkMessage::DelNeighbour(_) => {
                changed.neighbours = true
            }
            _ => {}
        }
    }
}
