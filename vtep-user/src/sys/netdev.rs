//! What an interface's driver can do with XDP, from the kernel's `netdev` generic-netlink family
//! (`xdp-features`, Linux 6.3+): the one question `vtep up` asks before it attaches the XDP
//! program in native mode. Two requests on a raw `NETLINK_GENERIC` socket (resolve the family,
//! get the device); small enough not to need a generic-netlink crate.

use std::{io, os::fd::AsRawFd as _, os::fd::FromRawFd as _, os::fd::OwnedFd};

use anyhow::{Result, anyhow, bail};

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
/// `NETDEV_XDP_ACT_BASIC`: the driver runs XDP programs (native mode).
pub const XDP_ACT_BASIC: u64 = 1;
/// `NETDEV_XDP_ACT_NDO_XMIT`: frames can be redirected into the device.
pub const XDP_ACT_NDO_XMIT: u64 = 4;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;

/// The `NETDEV_XDP_ACT_*` bits the driver of interface `ifindex` supports, or `None` when this
/// kernel cannot tell (no `netdev` family). Fails when the socket cannot be used or the kernel
/// refuses the request (no such interface).
pub fn xdp_features(ifindex: u32) -> Result<Option<u64>> {
    let socket = open()?;
    let Some(family) = family_id(&socket, "netdev")? else {
        return Ok(None);
    };
    let reply = request(
        &socket,
        family,
        NETDEV_CMD_DEV_GET,
        &attr(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes()),
    )?
    .ok_or_else(|| anyhow!("interface {ifindex}: no such device"))?;
    let bytes = find_attr(&reply, NETDEV_A_DEV_XDP_FEATURES)
        .ok_or_else(|| anyhow!("the kernel's netdev reply has no xdp-features"))?;
    let bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("xdp-features is not 8 bytes"))?;
    Ok(Some(u64::from_ne_bytes(bytes)))
}

fn open() -> Result<OwnedFd> {
    // SAFETY: creating a socket has no memory-safety preconditions; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_GENERIC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: `fd` was just returned by socket() and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The id of generic-netlink family `name`, or `None` when the kernel has no such family.
fn family_id(socket: &OwnedFd, name: &str) -> Result<Option<u16>> {
    let mut name = name.as_bytes().to_vec();
    name.push(0);
    let Some(reply) = request(
        socket,
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        &attr(CTRL_ATTR_FAMILY_NAME, &name),
    )?
    else {
        return Ok(None);
    };
    let id = find_attr(&reply, CTRL_ATTR_FAMILY_ID)
        .and_then(|b| b.get(..2))
        .ok_or_else(|| anyhow!("the kernel's family reply has no id"))?;
    Ok(Some(u16::from_ne_bytes([id[0], id[1]])))
}

/// A netlink attribute: length, type, value, padded to 4 bytes.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut out = Vec::with_capacity(len.next_multiple_of(4));
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(len.next_multiple_of(4), 0);
    out
}

/// The value of the first attribute of type `kind` in `attrs`.
fn find_attr(mut attrs: &[u8], kind: u16) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let this = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if this == kind {
            return Some(&attrs[4..len]);
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    None
}

/// Sends generic-netlink command `cmd` with attributes `attrs` to family `family`; returns the
/// reply's attributes, or `None` when the kernel answers ENOENT or ENODEV. Fails on other errors.
fn request(socket: &OwnedFd, family: u16, cmd: u8, attrs: &[u8]) -> Result<Option<Vec<u8>>> {
    let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    msg.extend_from_slice(&[cmd, 1, 0, 0]); // genl command, version, reserved
    msg.extend_from_slice(attrs);
    // SAFETY: `msg` is valid for reads of its length; the kernel is the default destination of
    // an unconnected netlink socket.
    let sent = unsafe { libc::send(socket.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let mut buf = vec![0u8; 16384];
    // SAFETY: `buf` is valid for writes of its length.
    let got = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if got < 0 {
        return Err(io::Error::last_os_error().into());
    }
    buf.truncate(got as usize);
    if buf.len() < NLMSG_HDRLEN {
        bail!("short netlink reply");
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == NLMSG_ERROR {
        let errno = buf
            .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
            .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        return match errno {
            libc::ENOENT | libc::ENODEV => Ok(None),
            0 => Ok(Some(Vec::new())),
            e => Err(io::Error::from_raw_os_error(e).into()),
        };
    }
    let total = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(buf.len());
    Ok(Some(buf[NLMSG_HDRLEN + GENL_HDRLEN..total].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_found_again() {
        let mut attrs = attr(7, b"abcde");
        assert_eq!(attrs.len(), 12);
        attrs.extend(attr(3, &42u64.to_ne_bytes()));
        assert_eq!(find_attr(&attrs, 7), Some(&b"abcde"[..]));
        assert_eq!(find_attr(&attrs, 3), Some(&42u64.to_ne_bytes()[..]));
        assert_eq!(find_attr(&attrs, 9), None);
    }
}
