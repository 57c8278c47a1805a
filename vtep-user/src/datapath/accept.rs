//! The source-VTEP allow-list (`ACCEPT`, `underlay.accept`): an LPM trie of the prefixes VXLAN
//! is accepted from. The config's prefixes stay for the instance's life (`ACCEPT_PREFIX`); with
//! `known`, every VTEP a flood list or a static or runtime FDB entry names has a host prefix of
//! its own (`ACCEPT_KNOWN`), which `vtep fdb` adds before its change and `vtep up` removes once
//! nothing names the VTEP any more. A host prefix the config lists keeps its `ACCEPT_PREFIX`.
//! Keys are `VtepAddr`s: an IPv4 prefix /n is its IPv4-mapped address /96+n.

use std::{borrow::BorrowMut, collections::HashSet, net::IpAddr};

use anyhow::{Context as _, Result};
use aya::maps::{LpmTrie, MapData, MapError, lpm_trie::Key};
use vtep_common::maps::{ACCEPT_KNOWN, ACCEPT_PREFIX, BPF_NOEXIST, VtepAddr, vtep_addr, vtep_ip};

use crate::config::AcceptRule;

/// The allow-list map, however it was opened.
pub type Accept<T> = LpmTrie<T, VtepAddr, u32>;

/// The trie key of prefix `ip`/`len`.
fn key(ip: IpAddr, len: u8) -> Key<VtepAddr> {
    let mapped = if ip.is_ipv4() { 96 } else { 0 };
    Key::new(mapped + u32::from(len), vtep_addr(ip))
}

/// The prefix (address, length) a trie key holds.
fn prefix_of(k: &Key<VtepAddr>) -> (IpAddr, u8) {
    let ip = vtep_ip(&k.data());
    let mapped = if ip.is_ipv4() { 96 } else { 0 };
    (ip, k.prefix_len().saturating_sub(mapped) as u8)
}

/// The prefix length of one host: 32 or 128.
fn host_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Writes the prefixes of `rule` and the host prefixes of the `known` VTEPs (when `rule`
/// accepts known ones). Fails when the map refuses an entry.
pub fn fill<T: BorrowMut<MapData>>(
    map: &mut Accept<T>,
    rule: &AcceptRule,
    known: impl IntoIterator<Item = IpAddr>,
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

/// Accepts VTEP `ip` as known; a host prefix already there (known, or a prefix of the config)
/// stays as it is. Fails when the map is full.
pub fn add_known<T: BorrowMut<MapData>>(map: &mut Accept<T>, ip: IpAddr) -> Result<()> {
    match map.insert(&key(ip, host_len(ip)), ACCEPT_KNOWN, BPF_NOEXIST) {
        Ok(()) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("adding remote VTEP {ip} to the allow-list")),
    }
}

/// Makes the known host prefixes exactly `known`: adds the missing ones, removes those of VTEPs
/// no longer named. Returns how many it removed. Fails when the map cannot be read or written.
pub fn sync_known<T: BorrowMut<MapData>>(
    map: &mut Accept<T>,
    known: &HashSet<IpAddr>,
) -> Result<usize> {
    let mut present = HashSet::new();
    let mut stale = Vec::new();
    for item in map.iter() {
        let (k, value) = item.context("reading the allow-list")?;
        if value != ACCEPT_KNOWN || k.prefix_len() != 128 {
            continue;
        }
        let ip = vtep_ip(&k.data());
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
        match map.remove(&key(*ip, host_len(*ip))) {
            Ok(()) | Err(MapError::KeyNotFound) => {}
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("removing {ip} from the allow-list")),
        }
    }
    Ok(stale.len())
}

/// Removes from the allow-list what `rule` (none: any source is accepted) no longer has: the
/// prefixes it does not list, and the known VTEPs' host prefixes unless it accepts known ones (the
/// resolver keeps those in step). A reload calls it once the programs of the new rule run,
/// having added the new rule's entries before ([`fill`]). Fails when the map cannot be read or
/// written.
pub fn remove_stale<T: BorrowMut<MapData>>(
    map: &mut Accept<T>,
    rule: Option<&AcceptRule>,
) -> Result<()> {
    let empty = AcceptRule::default();
    let rule = rule.unwrap_or(&empty);
    let prefixes: HashSet<(IpAddr, u8)> =
        rule.prefixes.iter().map(|n| (n.addr, n.prefix)).collect();
    let mut stale = Vec::new();
    for item in map.iter() {
        let (k, value) = item.context("reading the allow-list")?;
        let entry = prefix_of(&k);
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
