//! The kernel's own VTEP, as the seeds build it: a vxlan device in a Linux bridge.

use anyhow::Result;

use crate::cmd::{ip_in, run};

/// The kernel's VTEP on a host: vxlan device `vx0` (VNI `vni`, `dstport`, from `local` over
/// `eth0`, learning as by default) in bridge `br0` with a veth `wbh` into namespace `workload`
/// (its `eth0`: `mac`, `cidr`, and the MTU the kernel gives `vx0`: the underlay's 1500 minus
/// VXLAN's 50 over IPv4, or 70 over IPv6), one flood entry (`bridge fdb append
/// 00:00:00:00:00:00`) per address in `flood`, and one static entry per (MAC, remote VTEP) in
/// `fdb`. With an IPv6 `local` the underlay is IPv6: `flood` and `fdb` name IPv6 VTEPs.
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

/// Options of the kernel's vxlan device beyond what [`KernelVtep`] always sets.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOptions<'a> {
    /// `remote ADDR`: the default destination (the kernel's own all-zeros entry).
    pub remote: Option<&'a str>,
    /// `group ADDR`: the multicast group for broadcast and unknown unicast, joined on `eth0`
    /// (`ff0e::…` on an IPv6 underlay).
    pub group: Option<&'a str>,
    /// `udp6zerocsumtx`: send zero UDP checksums over IPv6 (default: computed).
    pub udp6_zero_csum_tx: bool,
    /// `udp6zerocsumrx`: accept zero UDP checksums over IPv6 (default: dropped).
    pub udp6_zero_csum_rx: bool,
}

impl KernelOptions<'_> {
    /// The `ip link add … type vxlan` arguments for these options.
    fn args(&self) -> Vec<&str> {
        let mut args = Vec::new();
        if let Some(remote) = self.remote {
            args.extend(["remote", remote]);
        }
        if let Some(group) = self.group {
            args.extend(["group", group]);
        }
        if self.udp6_zero_csum_tx {
            args.push("udp6zerocsumtx");
        }
        if self.udp6_zero_csum_rx {
            args.push("udp6zerocsumrx");
        }
        args
    }
}

impl KernelVtep<'_> {
    /// Builds it on `host` (a namespace with an `eth0` underlay) into existing namespace
    /// `workload`. Fails when `ip` or `bridge` does.
    pub fn build(&self, host: &str) -> Result<()> {
        self.build_with(host, &KernelOptions::default())
    }

    /// The MTU of the workload's interface: the 1500-byte underlay's less VXLAN's overhead,
    /// 50 bytes over IPv4 and 70 over IPv6 (what the kernel gives `vx0`).
    pub fn workload_mtu(&self) -> u32 {
        if self.local.contains(':') { 1430 } else { 1450 }
    }

    /// As [`KernelVtep::build`], with `vx0` made with `options`. Fails when `ip` or `bridge`
    /// does.
    pub fn build_with(&self, host: &str, options: &KernelOptions) -> Result<()> {
        let (id, port) = (self.vni.to_string(), self.dstport.to_string());
        let mut add = vec![
            "link", "add", "vx0", "type", "vxlan", "id", &id, "dstport", &port, "local",
            self.local, "dev", "eth0",
        ];
        add.extend(options.args());
        ip_in(host, &add)?;
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
        let mtu = self.workload_mtu().to_string();
        ip_in(host, &["link", "set", "wbh", "mtu", &mtu, "master", "br0"])?;
        for dev in ["vx0", "wbh", "br0"] {
            ip_in(host, &["link", "set", dev, "up"])?;
        }
        ip_in(
            self.workload,
            &[
                "link", "set", "eth0", "address", self.mac, "mtu", &mtu, "up",
            ],
        )?;
        ip_in(self.workload, &["addr", "add", self.cidr, "dev", "eth0"]).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_vxlan_arguments() {
        assert!(KernelOptions::default().args().is_empty());
        let o = KernelOptions {
            remote: Some("2001:db8::2"),
            group: Some("ff0e::100"),
            udp6_zero_csum_tx: true,
            udp6_zero_csum_rx: true,
        };
        assert_eq!(
            o.args(),
            [
                "remote",
                "2001:db8::2",
                "group",
                "ff0e::100",
                "udp6zerocsumtx",
                "udp6zerocsumrx"
            ]
        );
    }

    #[test]
    fn the_workload_mtu_leaves_room_for_the_underlays_overhead() {
        let k = |local| KernelVtep {
            vni: 1,
            dstport: 4789,
            local,
            flood: &[],
            fdb: &[],
            workload: "w",
            mac: "02:00:00:00:00:01",
            cidr: "192.0.2.1/24",
        };
        assert_eq!(k("198.18.0.1").workload_mtu(), 1450);
        assert_eq!(k("2001:db8::1").workload_mtu(), 1430);
    }
}
