//! The kernel's own VTEP, as the seeds build it: a vxlan device in a Linux bridge.

use anyhow::Result;

use crate::cmd::{ip_in, run};

/// The kernel's VTEP on a host: vxlan device `vx0` (VNI `vni`, `dstport`, from `local` over
/// `eth0`, learning as by default) in bridge `br0` with a veth `wbh` into namespace `workload`
/// (its `eth0`: `mac`, `cidr`, MTU 1450, the underlay's 1500 minus VXLAN's 50), one flood entry
/// (`bridge fdb append 00:00:00:00:00:00`) per address in `flood`, and one static entry per
/// (MAC, remote VTEP) in `fdb`.
pub struct KernelVtep<'a> {
    pub vni: u32,
    pub dstport: u16,
    pub local: &'a str,
    pub flood: &'a [&'a str],
    pub fdb: &'a [(&'a str, &'a str)],
    pub workload: &'a str,
    pub mac: &'a str,
    pub cidr: &'a str,
}

impl KernelVtep<'_> {
    /// Builds it on `host` (a namespace with an `eth0` underlay) into existing namespace
    /// `workload`. Fails when `ip` or `bridge` does.
    pub fn build(&self, host: &str) -> Result<()> {
        let (id, port) = (self.vni.to_string(), self.dstport.to_string());
        ip_in(
            host,
            &[
                "link", "add", "vx0", "type", "vxlan", "id", &id, "dstport", &port, "local",
                self.local, "dev", "eth0",
            ],
        )?;
        let flood = self.flood.iter().map(|dst| ("00:00:00:00:00:00", *dst));
        for (mac, dst) in flood.chain(self.fdb.iter().copied()) {
            run(
                "bridge",
                &["-n", host, "fdb", "append", mac, "dev", "vx0", "dst", dst],
            )?;
        }
        ip_in(host, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(host, &["link", "set", "vx0", "master", "br0"])?;
        ip_in(
            host,
            &[
                "link",
                "add",
                "wbh",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.workload,
            ],
        )?;
        ip_in(
            host,
            &["link", "set", "wbh", "mtu", "1450", "master", "br0"],
        )?;
        for dev in ["vx0", "wbh", "br0"] {
            ip_in(host, &["link", "set", dev, "up"])?;
        }
        ip_in(
            self.workload,
            &[
                "link", "set", "eth0", "address", self.mac, "mtu", "1450", "up",
            ],
        )?;
        ip_in(self.workload, &["addr", "add", self.cidr, "dev", "eth0"]).map(drop)
    }
}
