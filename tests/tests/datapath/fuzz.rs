//! A short fuzzing round: every datapath program on mutated packets, checked against the
//! invariants of `vtep_tests::fuzz` (`cargo xtask fuzz` runs long rounds). Fixed seeds, so a
//! failure here replays with `cargo xtask fuzz --packets N --seed S`.

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
