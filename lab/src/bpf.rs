//! Tiny BPF programs written as instructions and loaded with bpf(2), for measurements that need
//! a program doing (almost) nothing: the empty program a `BPF_PROG_TEST_RUN` is measured against
//! (prog-cost), and the benchmark's floor, whose programs only redirect. No object file, no
//! loader crate: the lab depends on nothing of vtep's.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, Result};
use nix::libc;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_FUNC_REDIRECT: i32 = 23;
const BPF_FUNC_REDIRECT_PEER: i32 = 155;
/// `union bpf_attr` is larger than what any command here uses; the rest stays zero.
const ATTR_LEN: usize = 160;

/// The program types used here.
#[derive(Clone, Copy, Debug)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SCHED_CLS`: a TC program.
    Tc = 3,
    /// `BPF_PROG_TYPE_XDP`.
    Xdp = 6,
}

/// A loaded program; unloaded when dropped (and no link holds it).
pub struct RawProgram {
    fd: OwnedFd,
}

/// `mov64 dst, imm`.
fn mov(dst: u8, imm: i32) -> u64 {
    0xb7 | (u64::from(dst) << 8) | (u64::from(imm as u32) << 32)
}

/// `call helper`.
fn call(helper: i32) -> u64 {
    0x85 | (u64::from(helper as u32) << 32)
}

const EXIT: u64 = 0x95;

impl RawProgram {
    /// A program of type `kind` that returns `verdict` and does nothing else.
    pub fn returning(kind: ProgType, verdict: i32) -> Result<Self> {
        Self::load(kind, &[mov(0, verdict), EXIT])
    }

    /// A TC program that redirects every packet to the egress of interface `ifindex`
    /// (`bpf_redirect`), or with `peer` into the peer of veth `ifindex` (`bpf_redirect_peer`).
    pub fn redirecting(ifindex: u32, peer: bool) -> Result<Self> {
        let helper = if peer {
            BPF_FUNC_REDIRECT_PEER
        } else {
            BPF_FUNC_REDIRECT
        };
        // The helper's return value (TC_ACT_REDIRECT, or TC_ACT_SHOT) is the verdict.
        Self::load(
            ProgType::Tc,
            &[mov(1, ifindex as i32), mov(2, 0), call(helper), EXIT],
        )
    }

    fn load(kind: ProgType, insns: &[u64]) -> Result<Self> {
        let license = c"GPL";
        let mut attr = [0u8; ATTR_LEN];
        attr[0..4].copy_from_slice(&(kind as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        // SAFETY: the instructions (as many as stored) and the license string live until the
        // call returns.
        let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }.context("BPF_PROG_LOAD")?;
        // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Self { fd })
    }

    /// Attaches the program to the TCX ingress of interface `ifindex` of the calling thread's
    /// network namespace; the attachment lasts as long as the returned link.
    pub fn attach_tcx_ingress(&self, ifindex: u32) -> Result<OwnedFd> {
        let mut attr = [0u8; ATTR_LEN];
        attr[0..4].copy_from_slice(&(self.fd.as_raw_fd() as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        attr[8..12].copy_from_slice(&BPF_TCX_INGRESS.to_ne_bytes());
        // SAFETY: no pointers in this command's attributes.
        let fd = unsafe { bpf(BPF_LINK_CREATE, &mut attr) }.context("BPF_LINK_CREATE")?;
        // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// One test run on `pkt` with context `ctx` (empty for none): (verdict, output size,
    /// duration in ns).
    pub fn test_run(&self, pkt: &[u8], out: &mut [u8], ctx: &[u8]) -> Result<(u32, u32, u64)> {
        let mut attr = [0u8; ATTR_LEN];
        let put32 = |a: &mut [u8; ATTR_LEN], off: usize, v: u32| {
            a[off..off + 4].copy_from_slice(&v.to_ne_bytes())
        };
        let put64 = |a: &mut [u8; ATTR_LEN], off: usize, v: u64| {
            a[off..off + 8].copy_from_slice(&v.to_ne_bytes())
        };
        // struct { prog_fd, retval, data_size_in, data_size_out, data_in, data_out, repeat,
        // duration, ctx_size_in, ctx_size_out, ctx_in, ctx_out, ... } (include/uapi/linux/bpf.h)
        put32(&mut attr, 0, self.fd.as_raw_fd() as u32);
        put32(&mut attr, 8, pkt.len() as u32);
        put32(&mut attr, 12, out.len() as u32);
        put64(&mut attr, 16, pkt.as_ptr() as u64);
        put64(&mut attr, 24, out.as_mut_ptr() as u64);
        put32(&mut attr, 32, 1);
        if !ctx.is_empty() {
            put32(&mut attr, 40, ctx.len() as u32);
            put64(&mut attr, 48, ctx.as_ptr() as u64);
        }
        // SAFETY: `pkt`, `out` and `ctx` are borrowed for the call, with their own lengths
        // stored; the kernel writes at most `out.len()` bytes of output.
        unsafe { bpf(BPF_PROG_TEST_RUN, &mut attr) }.context("BPF_PROG_TEST_RUN")?;
        let get32 = |off: usize| u32::from_ne_bytes(attr[off..off + 4].try_into().unwrap());
        Ok((get32(4), get32(12), u64::from(get32(36))))
    }
}

/// bpf(2) command `cmd` with `attr`; returns what the call returns (a descriptor for a load or
/// a link). Fails with the call's error.
///
/// # Safety
///
/// Every pointer in `attr` points to a live buffer at least as long as the length stored next to
/// it, writable where the kernel writes (the output and context of a test run).
unsafe fn bpf(cmd: libc::c_long, attr: &mut [u8; ATTR_LEN]) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable buffer of the length given, as large as what any
    // command here reads; the caller vouches for the pointers inside it.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), ATTR_LEN as u32) };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret)
}
