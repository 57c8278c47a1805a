//! The ethtool settings vtep changes, on the workload-side veth of a port it created: GRO, so
//! frames the XDP program redirects into the port are delivered (a veth hands XDP frames on only
//! to a peer with NAPI, which GRO turns on: `veth_gro_requested` in drivers/net/veth.c); and,
//! over an IPv6 underlay with UDP checksums, TSO and GSO off, so the workload's stack hands the
//! port segments the datapath can checksum (see the `gso_needs_checksum` drop reason). Through
//! the `SIOCETHTOOL` ioctl in the calling thread's network namespace.

use std::{io, os::fd::AsRawFd as _};

use anyhow::{Context as _, Result, bail};

/// `ETHTOOL_GGRO` / `ETHTOOL_SGRO` (include/uapi/linux/ethtool.h).
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;
/// `ETHTOOL_STSO` / `ETHTOOL_SGSO`, and their gets.
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_SGSO: u32 = 0x24;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Turns GRO on interface `ifname` on or off. Fails when there is no such interface or the
/// kernel refuses.
pub fn set_gro(ifname: &str, on: bool) -> Result<()> {
    let mut value = EthtoolValue {
        cmd: ETHTOOL_SGRO,
        data: u32::from(on),
    };
    ioctl(ifname, &mut value).with_context(|| format!("turning GRO on for `{ifname}`"))
}

/// Whether GRO is on for interface `ifname`. Fails when there is no such interface.
pub fn gro(ifname: &str) -> Result<bool> {
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GGRO,
        data: 0,
    };
    ioctl(ifname, &mut value).with_context(|| format!("reading GRO of `{ifname}`"))?;
    Ok(value.data != 0)
}

/// Turns TCP segmentation offload and generic segmentation offload of `ifname` off (`on`
/// false) or on. Fails when there is no such interface or the kernel refuses.
pub fn set_segmentation(ifname: &str, on: bool) -> Result<()> {
    for cmd in [ETHTOOL_STSO, ETHTOOL_SGSO] {
        let mut value = EthtoolValue {
            cmd,
            data: u32::from(on),
        };
        ioctl(ifname, &mut value)
            .with_context(|| format!("turning segmentation offloads of `{ifname}` {on}"))?;
    }
    Ok(())
}

/// Whether TSO or GSO is on for interface `ifname`. Fails when there is no such interface.
pub fn segmentation(ifname: &str) -> Result<bool> {
    let mut on = false;
    for cmd in [ETHTOOL_GTSO, ETHTOOL_GGSO] {
        let mut value = EthtoolValue { cmd, data: 0 };
        ioctl(ifname, &mut value)
            .with_context(|| format!("reading segmentation offloads of `{ifname}`"))?;
        on |= value.data != 0;
    }
    Ok(on)
}

fn ioctl(ifname: &str, value: &mut EthtoolValue) -> Result<()> {
    // SAFETY: `ifreq` is a C struct of integers, arrays and a union of those and pointers, for
    // which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= req.ifr_name.len() {
        bail!("interface name `{ifname}` is too long");
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = (value as *mut EthtoolValue).cast();
    // SAFETY: creating a socket has no memory-safety preconditions; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: `fd` was just returned by socket() and is owned by nothing else.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: SIOCETHTOOL reads the `ifreq` and, through `ifru_data`, the `ethtool_value` it
    // points to (and writes it back for a get); both live until the call returns.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if ret < 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}
