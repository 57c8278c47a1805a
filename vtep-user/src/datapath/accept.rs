//! The source-VTEP allow-list (`ACCEPT`, `underlay.accept`): an LPM trie of the prefixes VXLAN
//! is accepted from. The config's prefixes stay for the instance's life (`ACCEPT_PREFIX`); with
//! `known`, every VTEP a flood list or a static or runtime FDB entry names has a /32 of its own
//! (`ACCEPT_KNOWN`), which `vtep fdb` adds before its change and `vtep up` removes once nothing
//! names the VTEP any more. A /32 the config lists keeps its `ACCEPT_PREFIX`.

use std::{borrow::BorrowMut, collections::HashSet, net::Ipv4Addr};

use anyhow::{Context as _, Result};
use aya::maps::{LpmTrie, MapData, MapError, lpm_trie::Key};
use vtep_common::maps::{ACCEPT_KNOWN, ACCEPT_PREFIX, BPF_NOEXIST};

use crate::config::AcceptRule;

/// The allow-list map, however it was opened.
pub type Accept<T> = LpmTrie<T, [u8; 4], u32>;

fn key(ip: Ipv4Addr, len: u8) -> Key<[u8; 4]> {
    Key::new(u32::from(len), ip.octets())
}

/// Writes the prefixes of `rule` and the /32s of the `known` VTEPs (when `rule` accepts known
/// ones). Fails when the map refuses an entry.
pub fn fill<T: BorrowMut<MapData>>(
    map: &mut Accept<T>,
    rule: &AcceptRule,
    known: impl IntoIterator<Item = Ipv4Addr>,
) -> Result<()> {
    for net in &rule.prefixes {
        map.insert(&key(net.addr, net.prefix), ACCEPT_PREFIX, 0)
            .with_context(|| format!("adding {net} to the allow-list"))?;
    }
    if rule.known {
        for ip in known {
            add_known(map, ip)?;
        }
    }
    Ok(())
}

/// Accepts VTEP `ip` as known; a /32 already there (known, or a prefix of the config) stays as
/// it is. Fails when the map is full.
pub fn add_known<T: BorrowMut<MapData>>(map: &mut Accept<T>, ip: Ipv4Addr) -> Result<()> {
    match map.insert(&key(ip, 32), ACCEPT_KNOWN, BPF_NOEXIST) {
        Ok(()) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("adding remote VTEP {ip} to the allow-list")),
    }
}

/// Makes the known /32s exactly `known`: adds the missing ones, removes those of VTEPs no longer
/// named. Returns how many it removed. Fails when the map cannot be read or written.
pub fn sync_known<T: BorrowMut<MapData>>(
    map: &mut Accept<T>,
    known: &HashSet<Ipv4Addr>,
) -> Result<usize> {
    let mut present = HashSet::new();
    let mut stale = Vec::new();
    for item in map.iter() {
        let (k, value) = item.context("reading the allow-list")?;
        if value != ACCEPT_KNOWN || k.prefix_len() != 32 {
            continue;
        }
        let ip = Ipv4Addr::from(k.data());
        if known.contains(&ip) {
            present.insert(ip);
        } else {
            stale.push(ip);
        }
    }
    for ip in known.difference(&present) {
        add_known(map, *ip)?;
    }
    for ip in &stale {
        match map.remove(&key(*ip, 32)) {
            Ok(()) | Err(MapError::KeyNotFound) => {}
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("removing {ip} from the allow-list")),
        }
    }
    Ok(stale.len())
}

/// Removes from the allow-list what `rule` (none: any source is accepted) no longer has: the
/// prefixes it does not list, and the known VTEPs' /32s unless it accepts known ones (the
/// resolver keeps those in step). A reload calls it once the programs of the new rule run,
/// having added the new rule's entries before ([`fill`]). Fails when the map cannot be read or
/// written.
pub fn remove_stale<T: BorrowMut<MapData>>(
    map: &mut Accept<T>,
    rule: Option<&AcceptRule>,
) -> Result<()> {
    let empty = AcceptRule::default();
    let rule = rule.unwrap_or(&empty);
    let prefixes: HashSet<(Ipv4Addr, u8)> =
        rule.prefixes.iter().map(|n| (n.addr, n.prefix)).collect();
    let mut stale = Vec::new();
    for item in map.iter() {
        let (k, value) = item.context("reading the allow-list")?;
        let entry = (Ipv4Addr::from(k.data()), k.prefix_len() as u8);
        let keep = match value {
            ACCEPT_PREFIX => prefixes.contains(&entry),
            _ => rule.known,
        };
        if !keep {
            stale.push(entry);
        }
    }
    for (ip, len) in stale {
        match map.remove(&key(ip, len)) {
            Ok(()) | Err(MapError::KeyNotFound) => {}
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing {ip}/{len} from the allow-list"));
            }
        }
    }
    Ok(())
}
