//! AF_PACKET sockets for the live tests: send a frame out of an interface (a VLAN-tagged one,
//! a spoofed VXLAN packet), receive what arrives on one with the VLAN tag the kernel keeps
//! outside the packet.

use crate::packet::vlan_id;

/// `PACKET_AUXDATA` (linux/if_packet.h): `recvmsg` then reports the VLAN tag the kernel holds
/// outside the packet, in a `tpacket_auxdata` (tp_status at offset 0, tp_vlan_tci at 16).
const PACKET_AUXDATA: libc::c_int = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const PACKET_OUTGOING: u8 = 4;

/// A raw socket on one interface of the calling thread's namespace.
pub struct RawSocket {
    fd: std::os::fd::OwnedFd,
    ifindex: u32,
}

/// A frame a [`RawSocket`] received, and the VLAN tag the kernel kept outside it, if any.
pub struct Received {
    pub frame: Vec<u8>,
    offloaded_tci: Option<u16>,
}

impl Received {
    /// The VLAN id the frame carries on the wire: offloaded, or in the packet itself.
    pub fn outer_vlan(&self) -> Option<u16> {
        if let Some(tci) = self.offloaded_tci {
            return Some(tci & 0x0fff);
        }
        vlan_id(&self.frame)
    }
}

impl RawSocket {
    pub fn open(ifindex: u32) -> Self {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain socket calls on a descriptor this function owns; every pointer passed
        // is to a live local of the size given.
        unsafe {
            let raw = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            );
            assert!(
                raw >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = ifindex as i32;
            let r = libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let one: libc::c_int = 1;
            let r = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_AUXDATA,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
            assert_eq!(r, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            let r = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            assert_eq!(r, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
            Self { fd, ifindex }
        }
    }

    /// Transmits `frame` (a complete Ethernet frame) out of the interface.
    pub fn send(&self, frame: &[u8]) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `open`.
        unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex as i32;
            sll.sll_halen = 6;
            let r = libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                r,
                frame.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// The next frame the interface received (not one it sent) that `want` accepts, or None
    /// after a second without one.
    pub fn recv(&self, want: impl Fn(&[u8]) -> bool) -> Option<Received> {
        use std::os::fd::AsRawFd;
        loop {
            let mut buf = vec![0u8; 4096];
            let mut cmsg = [0u64; 16];
            // SAFETY: as in `open`; the kernel writes at most the lengths given.
            let (n, sll, msg) = unsafe {
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_name = (&raw mut sll).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                msg.msg_iov = &raw mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = cmsg.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&cmsg);
                let n = libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0);
                (n, sll, msg)
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "recvmsg: {err}");
                return None;
            }
            buf.truncate(n as usize);
            if sll.sll_pkttype == PACKET_OUTGOING || !want(&buf) {
                continue;
            }
            let mut offloaded_tci = None;
            // SAFETY: walking the control messages the kernel wrote into `cmsg`.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                        let data = libc::CMSG_DATA(c);
                        let status = data.cast::<u32>().read_unaligned();
                        let tci = data.add(16).cast::<u16>().read_unaligned();
                        if status & TP_STATUS_VLAN_VALID != 0 {
                            offloaded_tci = Some(tci);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&raw const msg, c);
                }
            }
            return Some(Received {
                frame: buf,
                offloaded_tci,
            });
        }
    }
}
