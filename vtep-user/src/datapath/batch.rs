//! Reading map entries (of a hash map or an array) and deleting hash-map entries many at a time (`BPF_MAP_LOOKUP_BATCH`,
//! `BPF_MAP_DELETE_BATCH`, Linux 5.6), which aya 0.14 does not offer. Walking a map through
//! aya's iterator costs two syscalls per entry (get-next-key, then lookup); a batch read copies
//! thousands of entries per syscall. An ageing sweep of a million-entry FDB took 1.8 s of CPU
//! the first way and 0.38 s this way on the machine of BENCHMARKS.md ("Ageing sweeps with
//! millions of entries"), where what remains is the kernel touching every entry.
//!
//! What a walk sees while the datapath writes the map: the kernel reads a hash map bucket by
//! bucket, each bucket under its lock, and hands back where to resume (the next bucket's
//! index). A key always hashes to the same bucket, so a walk reports it at most once, with its
//! value as it was when its bucket was read; an entry added or removed while the walk runs may
//! or may not be reported. Every caller here tolerates both: what it misses it sees at the next
//! walk. (The per-entry walk was worse here: get-next-key of a key deleted meanwhile starts
//! over from the map's first key, so entries could be seen twice.)

use std::{
    borrow::BorrowMut,
    io,
    mem::{MaybeUninit, size_of},
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
};

use aya::{
    Pod,
    maps::{HashMap, IterableMap, MapData},
};
use aya_obj::generated::{bpf_attr, bpf_cmd};

/// Entries a walk asks for per syscall: 52 bytes each in the FDB, so about 200 KiB of buffers.
/// Chunks from 64 to 16,384 measured the same: past a few dozen, the syscalls are not the cost.
pub const CHUNK: usize = 4096;

/// Calls `f` on every entry of `map`, reading [`CHUNK`] entries per syscall. Returns how many
/// entries it read. Fails when the kernel refuses a read (not for the map's end), or when `map`
/// is one the kernel cannot read in batches (Linux before 5.6).
pub fn for_each<K: Pod, V: Pod>(
    map: &impl IterableMap<K, V>,
    f: impl FnMut(&K, &V),
) -> io::Result<usize> {
    for_each_chunked(map, CHUNK, f)
}

/// As [`for_each`], asking for `chunk` entries per syscall at first; the chunk doubles whenever
/// one of the map's buckets holds more entries than it (the kernel never splits a bucket).
pub fn for_each_chunked<K: Pod, V: Pod>(
    map: &impl IterableMap<K, V>,
    chunk: usize,
    mut f: impl FnMut(&K, &V),
) -> io::Result<usize> {
    let fd = map.map().fd().as_fd();
    let mut chunk = chunk.clamp(1, u32::MAX as usize);
    let mut keys: Box<[MaybeUninit<K>]> = Box::new_uninit_slice(chunk);
    let mut values: Box<[MaybeUninit<V>]> = Box::new_uninit_slice(chunk);
    // Where to resume. A hash map's is a u32 (a bucket index), other maps' a key: room for
    // either, so a map type with a key-sized position could not write past it.
    let token_len = size_of::<K>().max(size_of::<u64>());
    let mut resume = vec![0u8; token_len];
    let mut next = vec![0u8; token_len];
    let mut started = false;
    let mut total = 0;
    loop {
        let (ret, count) = lookup_batch(
            fd,
            started.then_some(resume.as_slice()),
            &mut next,
            &mut keys,
            &mut values,
        );
        match ret {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                // Nothing was copied: one bucket holds more than `chunk` entries. Again from
                // the same place with room for it.
                chunk = chunk.saturating_mul(2).min(u32::MAX as usize);
                keys = Box::new_uninit_slice(chunk);
                values = Box::new_uninit_slice(chunk);
                continue;
            }
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            // Ok, or ENOENT: the map's end, with the last entries (possibly none) copied.
            _ => {}
        }
        if count > chunk {
            return Err(io::Error::other(format!(
                "BPF_MAP_LOOKUP_BATCH reported {count} entries for a buffer of {chunk}"
            )));
        }
        for (k, v) in keys[..count].iter().zip(&values[..count]) {
            // SAFETY: the kernel wrote the first `count` keys and values (`count <= chunk`,
            // checked above), each `size_of::<K>()` / `size_of::<V>()` bytes, which aya checked
            // are the map's key and value sizes; any bytes are a valid `Pod` value.
            let (k, v) = unsafe { (k.assume_init_ref(), v.assume_init_ref()) };
            f(k, v);
        }
        total += count;
        if ret.is_err() {
            return Ok(total);
        }
        std::mem::swap(&mut resume, &mut next);
        started = true;
    }
}

/// One `BPF_MAP_LOOKUP_BATCH` on the map `fd`: up to `keys.len()` entries (`values` as long)
/// from the position `resume` (the start when `None`) into `keys` and `values`, the next
/// position into `next`. Returns the syscall's result and the count of entries the kernel
/// reports copied (also set with ENOENT at the end).
fn lookup_batch<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    resume: Option<&[u8]>,
    next: &mut [u8],
    keys: &mut [MaybeUninit<K>],
    values: &mut [MaybeUninit<V>],
) -> (io::Result<()>, usize) {
    debug_assert_eq!(keys.len(), values.len());
    // SAFETY: `bpf_attr` (aya-obj's binding of the kernel's `union bpf_attr`) holds only
    // integers, for which all-zero bytes are valid; the kernel requires every field this
    // command does not use to be zero.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.batch.in_batch = resume.map_or(0, |r| r.as_ptr() as u64);
    attr.batch.out_batch = next.as_mut_ptr() as u64;
    attr.batch.keys = keys.as_mut_ptr() as u64;
    attr.batch.values = values.as_mut_ptr() as u64;
    attr.batch.count = keys.len().min(values.len()) as u32;
    attr.batch.map_fd = fd.as_raw_fd() as u32;
    let ret = sys_bpf(bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr);
    // SAFETY: reading an integer field of a union of integers; the kernel writes the count it
    // copied there, on success and on ENOENT.
    let count = unsafe { attr.batch.count } as usize;
    (ret, count)
}

/// Deletes `keys` from `map`, as many per syscall as there are keys. Returns how many it
/// deleted: a key gone already (removed by someone else since it was read) is skipped. Fails
/// when the kernel refuses a delete for another reason.
pub fn delete<T: BorrowMut<MapData>, K: Pod, V: Pod>(
    map: &mut HashMap<T, K, V>,
    keys: &[K],
) -> io::Result<usize> {
    let fd = map.map().fd().as_fd();
    let mut rest = keys;
    let mut deleted = 0;
    while !rest.is_empty() {
        // SAFETY: as in `lookup_batch`: all-zero bytes are a valid `bpf_attr`, and required.
        let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
        attr.batch.keys = rest.as_ptr() as u64;
        attr.batch.count = rest.len().min(u32::MAX as usize) as u32;
        attr.batch.map_fd = fd.as_raw_fd() as u32;
        let ret = sys_bpf(bpf_cmd::BPF_MAP_DELETE_BATCH, &mut attr);
        // SAFETY: as in `lookup_batch`; the kernel writes how many keys it deleted before it
        // stopped.
        let done = (unsafe { attr.batch.count } as usize).min(rest.len());
        deleted += done;
        match ret {
            Ok(()) => break,
            // The kernel stops at the first key it cannot delete: skip it if it is gone.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                rest = rest.get(done + 1..).unwrap_or_default();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// The `bpf` syscall with `attr`; the error is the kernel's errno.
fn sys_bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<()> {
    // SAFETY: `attr` is a whole `bpf_attr` (the size passed) that lives across the call. The
    // batch commands read `batch.count` keys (and for a lookup write as many keys and values)
    // at the pointers in it, and read `in_batch` / write `out_batch`: every caller points them
    // at buffers of at least that many keys and values of the map's sizes, and positions of at
    // least the map's key size, borrowed for the whole call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            size_of::<bpf_attr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
