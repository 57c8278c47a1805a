//! A short fuzzing round: every datapath program, for an IPv4 and an IPv6 underlay, on mutated
//! packets, checked against the invariants of `vtep_tests::fuzz` (`cargo xtask fuzz` runs long
//! rounds). Fixed seeds, so a failure here replays with
//! `cargo xtask fuzz --packets N --seed S --program NAME`.

use vtep_tests::fuzz::{Program, fuzz};

/// Packets per program and seed: a few seconds each.
const PACKETS: u64 = 20_000;

fn round(program: Program) {
    for seed in [1, 0x5eed] {
        let r = fuzz(program, PACKETS, seed);
        assert!(
            r.failures.is_empty(),
            "{} invariant violations:\n{}",
            r.failures.len(),
            r.failures.join("\n")
        );
        // The mutations reach the verdicts the program gives, or the round proves little.
        assert!(r.dropped > 0 && r.redirected > 0, "{r:?}");
        assert!(r.refused < r.packets / 4, "most mutations ran: {r:?}");
        // The port programs' encapsulations were checked; over IPv6 also some whose inner
        // checksum the mutations made wrong (the outer one then follows the headers' rule).
        if matches!(program, Program::Port | Program::Port6) {
            assert!(r.encapsulated > 0, "{r:?}");
        }
        if matches!(program, Program::Port6 | Program::PortFlood6) {
            assert!(r.encapsulated > 0 && r.inner_checksum_wrong > 0, "{r:?}");
        }
    }
}

#[test]
fn fuzz_underlay_program() {
    round(Program::Underlay);
}

#[test]
fn fuzz_underlay_xdp_program() {
    round(Program::UnderlayXdp);
}

#[test]
fn fuzz_port_program() {
    round(Program::Port);
}

#[test]
fn fuzz_port_flood_program() {
    round(Program::PortFlood);
}

#[test]
fn fuzz_underlay6_program() {
    round(Program::Underlay6);
}

#[test]
fn fuzz_underlay_xdp6_program() {
    round(Program::UnderlayXdp6);
}

#[test]
fn fuzz_port6_program() {
    round(Program::Port6);
}

#[test]
fn fuzz_port_flood6_program() {
    round(Program::PortFlood6);
}
