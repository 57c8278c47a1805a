//! The clock learned FDB entries are stamped with.

/// Seconds of `CLOCK_MONOTONIC`, the clock the datapath reads with `bpf_ktime_get_coarse_ns`
/// to stamp learned FDB entries (`FdbEntry::seen`).
pub fn monotonic_secs() -> u32 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u32
}

/// Nanoseconds of `CLOCK_MONOTONIC`: distinct for each call that matters here (a command
/// stamping a change).
pub fn monotonic_nanos() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
