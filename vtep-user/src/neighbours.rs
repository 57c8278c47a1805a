//! Keeping the underlay next hops of remote VTEPs resolved. Flood copies (ARP among them) and
//! non-IP frames cannot wait for neighbour resolution in the datapath, so the kernel is asked to
//! keep each next hop resolved with a "managed" neighbour entry. Routes change and a link flap
//! flushes neighbours, so this is reconciled periodically, not done once.

use std::{collections::HashSet, net::Ipv4Addr};

use anyhow::Result;
use tracing::{debug, warn};

use crate::{
    netlink::Net,
    undo::{Item, Undo},
};

pub struct Resolver {
    remotes: Vec<Ipv4Addr>,
    /// Entries this instance created (and recorded for removal).
    created: HashSet<(u32, Ipv4Addr)>,
}

impl Resolver {
    /// A resolver for `remotes` (duplicates are fine).
    pub fn new(mut remotes: Vec<Ipv4Addr>) -> Self {
        remotes.sort_unstable();
        remotes.dedup();
        Self {
            remotes,
            created: HashSet::new(),
        }
    }

    /// Makes sure every remote's next hop has a neighbour entry the kernel keeps resolved.
    /// Remotes without a route are skipped (and tried again next time). Fails only when the undo
    /// log cannot be written.
    pub async fn reconcile(&mut self, net: &Net, undo: &mut Undo) -> Result<()> {
        for &remote in &self.remotes {
            let (oif, nexthop) = match net.route_to(remote).await {
                Ok(Some(hop)) => hop,
                Ok(None) => {
                    debug!(%remote, "no route to remote VTEP");
                    continue;
                }
                Err(e) => {
                    warn!("{e:#}");
                    continue;
                }
            };
            match net.add_managed_neighbour(oif, nexthop).await {
                Ok(true) => {
                    debug!(%remote, %nexthop, oif, "keeping next hop resolved");
                    if self.created.insert((oif, nexthop)) {
                        undo.record(Item::Neighbour {
                            ifindex: oif,
                            ip: nexthop,
                        })?;
                    }
                }
                // An entry exists: the kernel resolves it on use, and it stays valid for the
                // datapath's lookups while it is.
                Ok(false) => {}
                Err(e) => {
                    warn!("cannot keep next hop {nexthop} of remote VTEP {remote} resolved: {e:#}")
                }
            }
        }
        Ok(())
    }
}
