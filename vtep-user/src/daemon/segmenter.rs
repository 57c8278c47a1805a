//! The segmenter of an instance whose underlay is IPv6 with UDP checksums: a veth pair in the
//! host namespace to whose one end (offloads off) the port programs send GSO frames, so the
//! kernel splits them before encapsulation; the segments come back on the other end, where the
//! port program takes them for the port's frames (why and how: vtep-ebpf `segment.rs`). One per
//! instance, created at start, kept by an adoption or a reload, removed at stop like the other
//! interfaces vtep creates.

use anyhow::{Result, bail};
use tracing::info;

use crate::{
    config::Config,
    daemon::{
        ports::kept_link,
        undo::{Item, Origin, Undo},
    },
    sys::{
        ethtool,
        netlink::{Link, LinkSettings, Net},
        sysctl,
    },
};

/// The MTU of both ends: the largest a veth takes (`ETH_MAX_MTU`). The out end splits a GSO
/// frame into segments of the port's size, and its peer drops any segment longer than its own
/// MTU (`is_skb_forwardable`): at the default 1,500, every GSO frame of a port above that size
/// was lost there, so bulk TCP over a jumbo IPv6 underlay ran on retransmissions. Nothing but
/// the ports' own frames enters it, each already within the underlay's limit.
const MTU: u32 = 65_535;

/// The two ends of a segmenter.
pub(super) struct Segmenter {
    /// Where GSO frames are sent: segmentation offloads off.
    pub out: Link,
    /// Where the segments arrive, with the port program attached.
    pub back: Link,
}

/// Whether instance `config` needs a segmenter: an IPv6 underlay that sends UDP checksums.
pub(super) fn needed(config: &Config) -> bool {
    config.underlay_ipv6() && !config.underlay.udp6_zero_csum_tx
}

/// The interface names of instance `instance`'s segmenter (out end, return end): `vgso`, a
/// hash of the instance name (names are longer than an interface name may be), and `o` or `b`.
pub fn names(instance: &str) -> [String; 2] {
    // FNV-1a, 32 bits: stable across builds, unlike the standard library's hasher.
    let hash = instance.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    [format!("vgso{hash:08x}o"), format!("vgso{hash:08x}b")]
}

/// The segmenter of instance `instance`: the one its undo log records, or a new one, recorded.
/// Fails when an interface of its names exists that the instance did not make, or the kernel
/// refuses to make or set it up.
pub(super) async fn ensure(net: &Net, instance: &str, undo: &mut Undo) -> Result<Segmenter> {
    let [out, back] = names(instance);
    if let (Some(o), Some(b)) = (
        kept_link(net, &out, undo).await?,
        kept_link(net, &back, undo).await?,
    ) {
        // One kept from a build that left the MTU at its default gets it now.
        for link in [&o, &b] {
            if link.mtu != MTU {
                net.configure(link.index, &settings()).await?;
            }
        }
        return Ok(Segmenter { out: o, back: b });
    }
    for name in [&out, &back] {
        if net.link(name).await?.is_some() {
            bail!(
                "interface `{name}` exists and is not this instance's; vtep makes it for the \
                 segmenter of instance `{instance}` (IPv6 underlay with UDP checksums)"
            );
        }
    }
    net.add_veth(&out, &back).await?;
    let mut ends = Vec::new();
    for name in [&out, &back] {
        let link = net.require_link(name).await?;
        undo.record(Item::Link {
            name: name.clone(),
            ifindex: link.index,
            origin: Origin::Created,
        })?;
        // Nothing but handed-over frames crosses it: no addresses, router solicitations or
        // MLD reports of its own.
        sysctl::set(&format!("net/ipv6/conf/{name}/disable_ipv6"), "1")?;
        ends.push(link);
    }
    // Off, so the kernel segments what is sent out of it (`validate_xmit_skb`).
    ethtool::set_segmentation(&out, false)?;
    for link in &ends {
        net.configure(link.index, &settings()).await?;
    }
    info!(segmenter = %out, "GSO frames are segmented through {out} before encapsulation");
    let back = ends.pop().expect("two ends");
    let out = ends.pop().expect("two ends");
    Ok(Segmenter { out, back })
}

/// Each end's settings: up, at [`MTU`].
fn settings() -> LinkSettings<'static> {
    LinkSettings {
        name: None,
        mac: None,
        mtu: Some(MTU),
        up: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_fit_an_interface_name_and_differ_per_instance() {
        let [out, back] = names("a-rather-long-instance-name-of-a-host");
        assert!(out.len() <= crate::config::fields::IFNAME_MAX, "{out}");
        assert_ne!(out, back);
        assert_ne!(names("a")[0], names("b")[0]);
        assert_eq!(names("a"), names("a"), "stable");
    }
}
