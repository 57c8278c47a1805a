//! Commands against a running instance, through the maps it pinned: read its tables and counters
//! ([`show`], [`stats`], [`monitor`]) and change its FDB, flood lists and proxy table without a
//! restart ([`fdb`], [`flood`], [`proxy`]). A change is checked completely, then made in one map
//! operation, so a refused command leaves the instance as it was.
//!
//! Nothing here knows the command line: each change takes a `Request` that `cli` parsed (or an
//! agent built), and each reader returns rows that `cli` renders.

pub mod fdb;
pub mod flood;
pub mod monitor;
pub mod proxy;
pub mod show;
pub mod stats;

use anyhow::{Context as _, Result};
use aya::maps::MapError;

use crate::{config::invalid, datapath::maps::Pinned};

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

/// The name of interface `index` in this namespace, or `if<index>` when it is gone.
fn ifname(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("if{index}"))
}
