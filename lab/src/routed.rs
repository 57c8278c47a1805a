//! Scenario S4 (seed 001) built with the kernel as the article does it, for one host: a bridge
//! `br0` holding the gateway address of the host's workload subnet, the workload namespace
//! behind it (`int0`, default route via the gateway), a `vxlan0` device with the host's overlay
//! address, and the route to the far workload subnet via the far host's overlay address. The
//! namespace tests interoperate with it, `cargo xtask bench` compares vtep with it.

use anyhow::Result;

use crate::cmd::{ip_in, sysctl};

/// One host of the article's routed overlay.
pub struct ArticleHost<'a> {
    /// The host's namespace (its underlay is `eth0`).
    pub host: &'a str,
    /// The workload's namespace, which exists already.
    pub workload: &'a str,
    /// The gateway address on `br0` and the workload's address, both /24.
    pub gateway: &'a str,
    pub workload_ip: &'a str,
    /// The host's overlay address on `vxlan0` (/24), the VNI and its UDP port.
    pub overlay: &'a str,
    pub vni: u32,
    pub dstport: u16,
    /// The far host's underlay address, its overlay address, and its workload subnet.
    pub peer_underlay: &'a str,
    pub peer_overlay: &'a str,
    pub far_subnet: &'a str,
}

impl ArticleHost<'_> {
    /// Runs the article's commands (with IPv4 forwarding on, which the article's hosts had).
    /// Fails on the first command that fails.
    pub fn build(&self) -> Result<()> {
        let (h, ns1) = (self.host, self.workload);
        ip_in(h, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(h, &["link", "set", "br0", "up"])?;
        ip_in(
            h,
            &[
                "link", "add", "int0", "type", "veth", "peer", "name", "br-int0",
            ],
        )?;
        ip_in(h, &["link", "set", "int0", "netns", ns1])?;
        ip_in(ns1, &["link", "set", "int0", "up"])?;
        let workload = format!("{}/24", self.workload_ip);
        ip_in(ns1, &["addr", "add", &workload, "dev", "int0"])?;
        ip_in(
            ns1,
            &[
                "route",
                "add",
                "default",
                "via",
                self.gateway,
                "dev",
                "int0",
            ],
        )?;
        ip_in(h, &["link", "set", "br-int0", "master", "br0"])?;
        ip_in(h, &["link", "set", "br-int0", "up"])?;
        ip_in(
            h,
            &["addr", "add", &format!("{}/24", self.gateway), "dev", "br0"],
        )?;
        let (vni, dstport) = (self.vni.to_string(), self.dstport.to_string());
        ip_in(
            h,
            &[
                "link",
                "add",
                "vxlan0",
                "type",
                "vxlan",
                "id",
                &vni,
                "dstport",
                &dstport,
                "remote",
                self.peer_underlay,
                "dev",
                "eth0",
            ],
        )?;
        ip_in(
            h,
            &[
                "addr",
                "add",
                &format!("{}/24", self.overlay),
                "dev",
                "vxlan0",
            ],
        )?;
        ip_in(h, &["link", "set", "vxlan0", "up"])?;
        ip_in(
            h,
            &[
                "route",
                "add",
                self.far_subnet,
                "via",
                self.peer_overlay,
                "dev",
                "vxlan0",
            ],
        )?;
        sysctl(h, &["net.ipv4.ip_forward=1"])
    }
}
