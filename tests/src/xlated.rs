//! What the kernel made of a loaded program: its instructions after verification
//! ("xlated": the verifier has removed the code it proved dead and rewritten helper calls and map
//! references), how many it verified, and which of the object's maps and which kernel helper
//! functions the remaining code still reaches. `bpftool prog dump xlated` shows the same; aya
//! 0.14's `ProgramInfo` gives the counts but not the instructions, so they are read here with
//! `BPF_OBJ_GET_INFO_BY_FD`.
//!
//! How a dumped instruction names what it reaches (kernel/bpf/syscall.c,
//! `bpf_insn_prepare_dump`): a map reference (`ld_imm64` with `src_reg` `BPF_PSEUDO_MAP_FD` or
//! `BPF_PSEUDO_MAP_VALUE`) carries the map's id in `imm`; a helper call (`call` with `src_reg`
//! 0) carries the helper's kernel function as an offset from `__bpf_call_base`, which
//! /proc/kallsyms resolves for root (with `kptr_restrict` below 2).

use std::{
    collections::HashMap,
    io,
    mem::size_of,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_prog_info};
use vtep::datapath::loader::{
    Datapath, OBJECT, PROG_PORT, PROG_PORT_FLOOD, PROG_UNDERLAY, PROG_UNDERLAY_XDP, object_loader,
    program_name,
};
use vtep_common::{
    maps::DEFAULT_FDB_SIZE,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};

/// One BPF instruction as the kernel dumps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst_reg: u8,
    pub src_reg: u8,
    pub off: i16,
    pub imm: i32,
}

/// `BPF_JMP | BPF_CALL`, and `BPF_LD | BPF_IMM | BPF_DW` (a 64-bit immediate over two slots).
const CALL: u8 = 0x85;
const LD_IMM64: u8 = 0x18;
/// `src_reg` of an `ld_imm64` that refers to a map, or to a map's value (include/uapi/linux/bpf.h).
const PSEUDO_MAP_FD: u8 = 1;
const PSEUDO_MAP_VALUE: u8 = 2;

/// A loaded program as the kernel holds it.
#[derive(Debug, Clone)]
pub struct Xlated {
    /// Instructions the verifier processed (its complexity measure, at most 1,000,000).
    pub verified: u32,
    pub insns: Vec<Insn>,
}

impl Xlated {
    /// Reads the program behind `fd`. Fails when the kernel refuses the info (not a program,
    /// or the caller may not dump it).
    pub fn of(fd: BorrowedFd<'_>) -> io::Result<Self> {
        // First the lengths, then the instructions into a buffer of that length.
        let info = prog_info(fd, None)?;
        let mut raw = vec![0u64; info.xlated_prog_len as usize / size_of::<u64>()];
        let info = prog_info(fd, Some(&mut raw))?;
        if info.xlated_prog_len as usize != raw.len() * size_of::<u64>() {
            return Err(io::Error::other("the program changed between two reads"));
        }
        let insns = raw
            .iter()
            .map(|w| {
                let b = w.to_ne_bytes();
                Insn {
                    code: b[0],
                    // Little-endian: dst_reg in the low nibble.
                    dst_reg: b[1] & 0x0f,
                    src_reg: b[1] >> 4,
                    off: i16::from_ne_bytes([b[2], b[3]]),
                    imm: i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                }
            })
            .collect();
        Ok(Self {
            verified: info.verified_insns,
            insns,
        })
    }

    /// How many instruction slots the program has after verification (an `ld_imm64` takes two).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// How many instructions refer to the map with id `map_id`.
    pub fn map_refs(&self, map_id: u32) -> usize {
        self.insns
            .iter()
            .filter(|i| {
                i.code == LD_IMM64
                    && (i.src_reg == PSEUDO_MAP_FD || i.src_reg == PSEUDO_MAP_VALUE)
                    && i.imm as u32 == map_id
            })
            .count()
    }

    /// How many helper calls go to a kernel function named in `functions` (see [`Kallsyms`]).
    pub fn helper_calls(&self, syms: &Kallsyms, functions: &[&str]) -> usize {
        self.insns
            .iter()
            .filter(|i| i.code == CALL && i.src_reg == 0)
            .filter(|i| syms.helper(i.imm).is_some_and(|f| functions.contains(&f)))
            .count()
    }
}

/// The kernel functions behind BPF helpers, from /proc/kallsyms.
pub struct Kallsyms {
    /// Offset from `__bpf_call_base` → function name.
    by_offset: HashMap<i64, String>,
}

impl Kallsyms {
    /// Reads /proc/kallsyms. Fails when it cannot be read or hides the addresses (not root, or
    /// `kernel.kptr_restrict` 2), since then no helper call can be named.
    pub fn read() -> io::Result<Self> {
        let text = std::fs::read_to_string("/proc/kallsyms")?;
        let mut syms = Vec::new();
        let mut base = None;
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(addr), Some(_kind), Some(name)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if name == "__bpf_call_base" {
                base = Some(addr);
            }
            // Helpers are in the core kernel image, whose lines have no `[module]`.
            if f.next().is_none() {
                syms.push((addr, name.to_string()));
            }
        }
        let base = base
            .filter(|b| *b != 0)
            .ok_or_else(|| io::Error::other("/proc/kallsyms hides __bpf_call_base"))?;
        let by_offset = syms
            .into_iter()
            .map(|(addr, name)| (addr.wrapping_sub(base) as i64, name))
            .collect();
        Ok(Self { by_offset })
    }

    /// The kernel function a dumped helper call's `imm` points at.
    pub fn helper(&self, imm: i32) -> Option<&str> {
        self.by_offset.get(&i64::from(imm)).map(String::as_str)
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD` of program `fd`, copying its xlated instructions into `insns`
/// when given (the kernel copies at most the buffer's length).
fn prog_info(fd: BorrowedFd<'_>, insns: Option<&mut [u64]>) -> io::Result<bpf_prog_info> {
    // SAFETY: `bpf_prog_info` and `bpf_attr` are bindings of kernel structs of integers (and
    // integer arrays and bitfields), for which all-zero bytes are valid; the kernel requires the
    // fields this command does not use to be zero.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    if let Some(buf) = insns {
        info.xlated_prog_len = size_of_val(buf) as u32;
        info.xlated_prog_insns = buf.as_mut_ptr() as u64;
    }
    // SAFETY: as above.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = size_of::<bpf_prog_info>() as u32;
    attr.info.info = std::ptr::from_mut(&mut info) as u64;
    // SAFETY: `attr` is a whole `bpf_attr` that lives across the call; the kernel writes at
    // most `info_len` bytes to `info`, a `bpf_prog_info` on this stack frame, and at most
    // `xlated_prog_len` bytes to `xlated_prog_insns`, a buffer of that length borrowed for the
    // call (or nothing, when the length is zero).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as libc::c_long,
            std::ptr::from_mut(&mut attr),
            size_of::<bpf_attr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

/// Map names (as the kernel keeps them, at most 15 bytes) of the maps the program behind
/// `info` was loaded with, by id.
pub fn map_names(info: &aya::programs::ProgramInfo) -> io::Result<HashMap<u32, String>> {
    let ids = info
        .map_ids()
        .map_err(io::Error::other)?
        .unwrap_or_default();
    let mut out = HashMap::new();
    for id in ids {
        let map = aya::maps::MapInfo::from_id(id).map_err(io::Error::other)?;
        out.insert(id, map.name_as_str().unwrap_or_default().to_string());
    }
    Ok(out)
}

/// The maps of the debug log (`vtep up --trace-datapath`), as the kernel names them (the first
/// 15 bytes): aya-log's ring buffer, and the slot the programs keep a packet's VNI in.
pub const LOG_MAPS: [&str; 2] = ["AYA_LOGS", "TRACE_PACKET_VN"];

/// The kernel function behind `bpf_ringbuf_reserve`, through which every log record is written.
const RINGBUF_RESERVE: &str = "bpf_ringbuf_reserve";

/// A program of a loaded datapath, as the kernel holds it.
pub struct Program {
    pub xlated: Xlated,
    /// The maps it was loaded with, by id.
    pub maps: HashMap<u32, String>,
    /// The kernel's hash of the instructions it was given (before verification, map references
    /// left out): two loads of the same program of the object have the same tag.
    pub tag: u64,
}

/// How much of the debug log a program has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogUse {
    /// Calls that reserve a log record (`bpf_ringbuf_reserve` on `AYA_LOGS`).
    pub calls: usize,
    /// Instructions that refer to a log map ([`LOG_MAPS`]).
    pub map_refs: usize,
}

impl Program {
    /// Reads the loaded program `fd` whose info is `info`.
    pub fn read(fd: BorrowedFd<'_>, info: &aya::programs::ProgramInfo) -> io::Result<Self> {
        Ok(Self {
            xlated: Xlated::of(fd)?,
            maps: map_names(info)?,
            tag: info.tag(),
        })
    }

    /// What of the debug log is left in it.
    pub fn log_use(&self, syms: &Kallsyms) -> LogUse {
        let ids = |names: &[&str]| -> Vec<u32> {
            self.maps
                .iter()
                .filter(|(_, n)| names.contains(&n.as_str()))
                .map(|(id, _)| *id)
                .collect()
        };
        let rings = ids(&LOG_MAPS[..1]);
        let map_refs = ids(&LOG_MAPS)
            .iter()
            .map(|id| self.xlated.map_refs(*id))
            .sum();
        let insns = &self.xlated.insns;
        let calls = insns
            .iter()
            .enumerate()
            .filter(|(_, i)| {
                i.code == CALL && i.src_reg == 0 && syms.helper(i.imm) == Some(RINGBUF_RESERVE)
            })
            // The map argument: what last wrote r1 before the call, in straight-line code as
            // the log macro makes it.
            .filter(|(at, _)| {
                insns[..*at]
                    .iter()
                    .rev()
                    .find(|i| i.dst_reg == 1 && writes_dst(i.code))
                    .is_some_and(|i| {
                        i.code == LD_IMM64
                            && i.src_reg == PSEUDO_MAP_FD
                            && rings.contains(&(i.imm as u32))
                    })
            })
            .count();
        LogUse { calls, map_refs }
    }
}

/// Whether an instruction with opcode `code` writes its destination register (loads and ALU
/// operations; not stores, jumps or calls).
fn writes_dst(code: u8) -> bool {
    // The class is the low 3 bits: LD 0, LDX 1, ST 2, STX 3, ALU 4, JMP 5, JMP32 6, ALU64 7.
    matches!(code & 0x07, 0 | 1 | 4 | 7)
}

/// Every program of `dp` (its family's), by role (`PROG_*`), as the kernel holds them; the XDP
/// program is loaded first if it is not yet.
pub fn programs(dp: &mut Datapath) -> anyhow::Result<Vec<(&'static str, Program)>> {
    let mut out = Vec::new();
    for role in [PROG_PORT, PROG_PORT_FLOOD, PROG_UNDERLAY] {
        let p = dp.program(role)?;
        out.push((role, Program::read(p.fd()?.as_fd(), &p.info()?)?));
    }
    let p = dp.xdp_program()?;
    out.push((
        PROG_UNDERLAY_XDP,
        Program::read(p.fd()?.as_fd(), &p.info()?)?,
    ));
    Ok(out)
}

/// Loads each program of the datapath of an IPv6 (`ipv6`) or IPv4 underlay on its own, the
/// traced (`traced`, `…_trace`) or the untraced ones, with the tests' configuration
/// (vtep_tests::fixture's or fixture6's, IPv6 with UDP checksums) and the trace globals
/// `globals` (`Trace::globals`; vtep sets them as it picks the programs, this may not): by name,
/// what the kernel made of it, or the end of the verifier's complaint (its size, stack and
/// complexity summary) when it refused it. Needs no namespace: nothing is attached.
pub fn load_each(
    ipv6: bool,
    traced: bool,
    globals: [u32; 2],
) -> anyhow::Result<Vec<(&'static str, Result<Program, String>)>> {
    let cfg = if ipv6 {
        crate::fixture6::config6(false)
    } else {
        crate::fixture::config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX)
    };
    let mut ebpf = object_loader(&cfg, DEFAULT_FDB_SIZE, &globals).load(OBJECT)?;
    let mut out = Vec::new();
    for role in [PROG_PORT, PROG_PORT_FLOOD, PROG_UNDERLAY, PROG_UNDERLAY_XDP] {
        let name = program_name(role, ipv6, traced)?;
        let prog = ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow::anyhow!("no program {name}"))?;
        let loaded = match prog {
            aya::programs::Program::SchedClassifier(p) => {
                p.load().map(|()| p.fd().map(|fd| (fd.as_fd(), p.info())))
            }
            aya::programs::Program::Xdp(p) => {
                p.load().map(|()| p.fd().map(|fd| (fd.as_fd(), p.info())))
            }
            _ => anyhow::bail!("{name} is neither TC nor XDP"),
        };
        let result = match loaded {
            Ok(Ok((fd, info))) => Ok(Program::read(fd, &info?)?),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(verifier_summary(&e)),
        };
        out.push((name, result));
    }
    Ok(out)
}

/// The last lines of the verifier's log in a load error: why, and the stack and complexity
/// summary.
fn verifier_summary(e: &aya::programs::ProgramError) -> String {
    let text = format!("{e:#}");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}
