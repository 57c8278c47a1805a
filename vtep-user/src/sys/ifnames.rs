//! Interface names as one network namespace knows them. An ifindex in a map means something only
//! in the namespace of the instance that wrote it; a command run from another namespace (the
//! host's, or another `--netns`) must ask that one.

use std::{
    ffi::CStr,
    fs::File,
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd},
};

use anyhow::{Context as _, Result, anyhow};
use nix::sched::{CloneFlags, setns};

/// Resolves ifindexes to names in the namespace it was opened for: it holds a socket made
/// there, and a socket answers `SIOCGIFNAME` in the namespace it was made in, whichever thread
/// asks. Interfaces made after it was opened are found too.
pub struct IfNames {
    sock: OwnedFd,
}

impl IfNames {
    /// Names in the namespace open as `netns` (a `/run/netns/NAME` or `/proc/PID/ns/net` file).
    /// The socket is made on a short-lived thread that entered it. Fails when the namespace
    /// cannot be entered or the socket made.
    pub fn in_netns(netns: File) -> Result<Self> {
        std::thread::spawn(move || -> Result<Self> {
            setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                .context("entering the instance's network namespace")?;
            Self::here()
        })
        .join()
        .map_err(|_| anyhow!("netns thread panicked"))?
    }

    /// Names in the calling thread's namespace. Fails when no socket can be made.
    pub fn here() -> Result<Self> {
        // SAFETY: plain socket(2) with constant arguments; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .context("opening a socket to look up interface names");
        }
        // SAFETY: `fd` is a socket just created and owned by nothing else.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { sock })
    }

    /// The name of interface `index`, or `None` when there is none (it is gone).
    pub fn name(&self, index: u32) -> Option<String> {
        // SAFETY: `ifreq` is plain old data; all zeros is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        req.ifr_ifru.ifru_ifindex = i32::try_from(index).ok()?;
        // SAFETY: SIOCGIFNAME reads the index from and writes a NUL-terminated name into
        // `req`, which lives for the call; the socket is open.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCGIFNAME, &mut req) };
        if rc != 0 {
            return None;
        }
        // SAFETY: on success the kernel wrote a NUL-terminated name of at most IFNAMSIZ bytes
        // into `ifr_name`; c_char and u8 have the same size.
        let bytes: &[u8; libc::IFNAMSIZ] = unsafe { &*req.ifr_name.as_ptr().cast() };
        let name = CStr::from_bytes_until_nul(bytes).ok()?;
        Some(name.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_index_1_and_a_missing_index_has_no_name() {
        let names = IfNames::here().unwrap();
        assert_eq!(names.name(1).as_deref(), Some("lo"));
        assert_eq!(names.name(u32::MAX), None);
        assert_eq!(names.name(0), None);
    }
}
