//! Commands against a running instance, through the maps it pinned: read its tables and counters
//! ([`show`], [`stats`], [`monitor`]) and change its FDB, flood lists and proxy table without a
//! restart ([`fdb`], [`flood`], [`proxy`]). A change is checked completely, then made in one map
//! operation, so a refused command leaves the instance as it was.
//!
//! Nothing here knows the command line: each change takes a `Request` that `cli` parsed (or an
//! agent built), and each reader returns rows that `cli` renders.

pub mod drops;
pub mod fdb;
pub mod flood;
pub mod monitor;
pub mod proxy;
pub mod runtime;
pub mod show;
pub mod stats;

use anyhow::{Context as _, Result};
use aya::maps::MapError;

use crate::{config::invalid, datapath::maps::Pinned, instance, sys::ifnames::IfNames};

/// Fails, naming the field, unless VNI `vni` is configured in the instance of `maps`.
fn require_vni(maps: &Pinned, vni: u32) -> Result<()> {
    match maps.vnis()?.get(&vni, 0) {
        Ok(_) => Ok(()),
        Err(MapError::KeyNotFound) => Err(invalid(
            "vni",
            format!("VNI {vni} is not configured in instance `{}`", maps.name()),
        )
        .into()),
        Err(e) => Err(e).context("reading VNIs"),
    }
}

/// The names of an instance's ports, as its own network namespace knows them: the ifindexes
/// in its maps mean nothing in the caller's (the host's, or another `--netns`).
struct PortNames(Option<IfNames>);

impl PortNames {
    /// The names in the namespace of instance `name` (from its info file). When that cannot be
    /// found, a warning says so and every port is called `if<index>`, never by a name from
    /// another namespace.
    fn of(name: &str) -> Self {
        let names =
            instance::Info::load(name).and_then(|info| IfNames::in_netns(info.open_netns(name)?));
        match names {
            Ok(names) => Self(Some(names)),
            Err(e) => {
                tracing::warn!("port names of instance `{name}` unknown: {e:#}");
                Self(None)
            }
        }
    }

    /// The names in the calling thread's namespace (where the instance is loaded, in tests).
    fn here() -> Self {
        Self(IfNames::here().ok())
    }

    /// The name of port `index`, or `if<index>` when it has none (it is gone).
    fn name(&self, index: u32) -> String {
        self.0
            .as_ref()
            .and_then(|n| n.name(index))
            .unwrap_or_else(|| format!("if{index}"))
    }
}
