//! The debug log (`vtep up --trace-datapath`): with tracing on, each crafted packet gives the
//! line that says what happened to it, and the same verdict and bytes as with tracing off; a
//! VNI filter logs only its VNI; with tracing off, no program vtep loads has a log call left in
//! what the kernel runs (read back from the kernel: the xlated instructions), and with tracing
//! on every program still passes the verifier.
//!
//! Each comparison loads two datapaths into the same namespace, one traced and one not, and
//! runs the same packet through both: the kernel's own result is the reference for "the same".

use crate::frames::wl0_arp_broadcast;
use vtep::datapath::{
    loader::{Datapath, PROG_PORT, PROG_UNDERLAY},
    tables::VniTable,
    trace::Trace,
};
use vtep_common::{
    drop::DropReason,
    maps::VNI_F_PROXY,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    fixture::{
        Fixture, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, Run, TC_ACT_REDIRECT, TC_ACT_SHOT, TTL,
        UNROUTABLE_IP, VNI, WL0_MAC, WL1_MAC, XDP_DROP, XDP_REDIRECT, config, load_traced,
        test_run, xdp_test_run,
    },
    fixture6::{REMOTE_IP6, config6, fixture6, table6},
    packet::{BROADCAST, VXLAN_I, vxlan_header},
    xlated::{Kallsyms, load_each, programs},
};

use crate::{
    REMOTE_WL_IP, UNKNOWN_VNI,
    frames::{remote_udp_frame, standard_vxlan, vxlan_to_us, wl0_udp_frame, wl0_udp6_frame},
};

/// The standard datapath (VNI 100: port0, port1, REMOTE_IP) loaded with tracing `trace`.
fn standard_traced(fx: &Fixture, trace: Trace) -> Datapath {
    let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    load_traced(&cfg, &[fx.table(VNI, PORT_IANA, TTL)], trace)
}

/// Runs WL0's ARP broadcast through the port program of the standard datapath with `change`
/// made to its table, traced for every VNI; returns the verdict and the lines logged.
fn broadcast_traced(fx: &Fixture, change: impl FnOnce(&mut VniTable)) -> (u32, Vec<String>) {
    let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    let mut table = fx.table(VNI, PORT_IANA, TTL);
    change(&mut table);
    let mut dp = load_traced(&cfg, &[table], Trace::All);
    let mut log = dp.take_log().expect("the traced log");
    let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_broadcast());
    (run.verdict, log.take())
}

/// Runs `run` on an untraced and a traced (`trace`) standard datapath, checks that both give
/// the same verdict and bytes, that the untraced one logged nothing, and returns the traced
/// run's verdict and the lines it logged.
fn traced_and_not(
    fx: &Fixture,
    trace: Trace,
    run: impl Fn(&mut Datapath) -> Run,
) -> (u32, Vec<String>) {
    let mut plain = standard_traced(fx, Trace::Off);
    let mut traced = standard_traced(fx, trace);
    let mut plain_log = plain.take_log().expect("the untraced log");
    let mut log = traced.take_log().expect("the traced log");
    let (a, b) = (run(&mut plain), run(&mut traced));
    assert_eq!(
        (a.verdict, &a.out),
        (b.verdict, &b.out),
        "tracing changed the verdict or the bytes"
    );
    assert_eq!(
        plain_log.take(),
        Vec::<String>::new(),
        "untraced, yet logged"
    );
    (b.verdict, log.take())
}

#[test]
fn a_frame_to_a_remote_vtep_logs_its_port_vni_destination_and_vtep() {
    let fx = Fixture::new();
    fx.run(|| {
        let frame = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| {
            test_run(dp, PROG_PORT, fx.port0, &frame)
        });
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(
            lines,
            [format!(
                "port {} vni {VNI} dst {REMOTE_WL_MAC} -> vtep {REMOTE_IP}",
                fx.port0
            )]
        );
    });
}

#[test]
fn a_frame_to_a_local_port_and_a_broadcast_log_where_they_go() {
    let fx = Fixture::new();
    fx.run(|| {
        let frame = wl0_udp_frame(WL1_MAC, 1000);
        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| {
            test_run(dp, PROG_PORT, fx.port0, &frame)
        });
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(
            lines,
            [format!(
                "port {} vni {VNI} dst {WL1_MAC} -> port {}",
                fx.port0, fx.port1
            )]
        );

        // The hand-over, then the traced flood program's copies: the other port, the remote.
        let arp = wl0_arp_broadcast();
        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| {
            test_run(dp, PROG_PORT, fx.port0, &arp)
        });
        assert_eq!(
            verdict, TC_ACT_SHOT,
            "the original is consumed by the flood"
        );
        assert_eq!(
            lines,
            [
                format!("port {} vni {VNI} dst {BROADCAST} -> flood", fx.port0),
                format!("flood vni {VNI} -> port {}", fx.port1),
                format!("flood vni {VNI} -> vtep {REMOTE_IP}"),
            ]
        );
    });
}

/// A flood copy that cannot go is logged with its reason and where it was for, and the flood
/// goes on with the others: a remote without a route, then one that works.
#[test]
fn a_flood_copy_that_cannot_go_logs_its_reason_and_destination() {
    let fx = Fixture::new();
    fx.run(|| {
        let (verdict, lines) = broadcast_traced(&fx, |t| {
            t.remotes = vec![UNROUTABLE_IP.into(), REMOTE_IP.into()];
        });
        assert_eq!(verdict, TC_ACT_SHOT);
        assert_eq!(
            lines,
            [
                format!("port {} vni {VNI} dst {BROADCAST} -> flood", fx.port0),
                format!("flood vni {VNI} -> port {}", fx.port1),
                format!(
                    "drop no_route ({}) at port vni {VNI} copy to vtep {UNROUTABLE_IP}",
                    DropReason::NoRoute as u32
                ),
                format!("flood vni {VNI} -> vtep {REMOTE_IP}"),
            ]
        );
    });
}

/// A request the ARP proxy answers is logged as answered, after the hand-over to the flood
/// program that answers it, and no copy of it goes anywhere.
#[test]
fn a_request_the_proxy_answers_logs_the_answer_and_no_copy() {
    let fx = Fixture::new();
    fx.run(|| {
        let (verdict, lines) = broadcast_traced(&fx, |t| {
            t.flags = VNI_F_PROXY;
            t.proxy_entries = vec![(REMOTE_WL_IP.into(), REMOTE_WL_MAC)];
        });
        assert_eq!(
            verdict, TC_ACT_REDIRECT,
            "the answer goes back out of port0"
        );
        let handed = format!("port {} vni {VNI} dst {BROADCAST}", fx.port0);
        assert_eq!(
            lines,
            [
                format!("{handed} -> flood"),
                format!("{handed} -> proxy answer")
            ]
        );
    });
}

#[test]
fn a_decapsulated_packet_logs_hook_vtep_vni_destination_and_port_in_tc_and_xdp() {
    let fx = Fixture::new();
    fx.run(|| {
        let pkt = standard_vxlan(&remote_udp_frame(WL0_MAC));
        let want = |hook: &str| {
            [format!(
                "decap {hook} from {REMOTE_IP} vni {VNI} dst {WL0_MAC} -> port {}",
                fx.port0
            )]
        };
        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| {
            test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt)
        });
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(lines, want("tc"));

        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| xdp_test_run(dp, &pkt));
        assert_eq!(verdict, XDP_REDIRECT);
        assert_eq!(lines, want("xdp"));
    });
}

#[test]
fn a_drop_logs_its_reason_hook_and_vni_in_tc_and_xdp() {
    let fx = Fixture::new();
    fx.run(|| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, UNKNOWN_VNI), &inner);
        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| {
            test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt)
        });
        assert_eq!(verdict, TC_ACT_SHOT);
        assert_eq!(
            lines,
            [format!(
                "drop unknown_vni (2) at underlay tc vni {UNKNOWN_VNI}"
            )]
        );

        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| xdp_test_run(dp, &pkt));
        assert_eq!(verdict, XDP_DROP);
        assert_eq!(
            lines,
            [format!(
                "drop unknown_vni (2) at underlay xdp vni {UNKNOWN_VNI}"
            )]
        );

        // Before any VNI is known: an interface that is no port.
        let frame = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let (verdict, lines) = traced_and_not(&fx, Trace::All, |dp| {
            test_run(dp, PROG_PORT, fx.ul0, &frame)
        });
        assert_eq!(verdict, TC_ACT_SHOT);
        assert_eq!(lines, ["drop unknown_port (4) at port vni 0"]);
    });
}

#[test]
fn a_vni_filter_logs_its_vni_only() {
    let fx = Fixture::new();
    fx.run(|| {
        let to_remote = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let decap = standard_vxlan(&remote_udp_frame(WL0_MAC));
        let unknown = vxlan_to_us(
            PORT_IANA,
            vxlan_header(VXLAN_I, UNKNOWN_VNI),
            &remote_udp_frame(WL0_MAC),
        );
        let port = |pkt: &[u8], ifindex: u32, trace: Trace| {
            traced_and_not(&fx, trace, |dp| test_run(dp, PROG_PORT, ifindex, pkt)).1
        };
        let underlay = |pkt: &[u8], trace: Trace| {
            traced_and_not(&fx, trace, |dp| test_run(dp, PROG_UNDERLAY, fx.ul0, pkt)).1
        };
        let xdp =
            |pkt: &[u8], trace: Trace| traced_and_not(&fx, trace, |dp| xdp_test_run(dp, pkt)).1;

        // Filtering on another VNI: nothing of VNI 100, and no drop whose VNI is unknown.
        let other = Trace::Vni(UNKNOWN_VNI);
        assert!(port(&to_remote, fx.port0, other).is_empty());
        assert!(underlay(&decap, other).is_empty());
        assert!(xdp(&decap, other).is_empty());
        assert!(
            port(&to_remote, fx.ul0, other).is_empty(),
            "unknown_port, VNI 0"
        );
        // ... while that VNI's own packets are logged.
        assert_eq!(
            underlay(&unknown, other),
            [format!(
                "drop unknown_vni (2) at underlay tc vni {UNKNOWN_VNI}"
            )]
        );

        // Filtering on VNI 100: its packets are logged, another VNI's drop is not.
        let ours = Trace::Vni(VNI);
        assert_eq!(port(&to_remote, fx.port0, ours).len(), 1);
        assert_eq!(underlay(&decap, ours).len(), 1);
        assert_eq!(xdp(&decap, ours).len(), 1);
        assert!(underlay(&unknown, ours).is_empty());
    });
}

#[test]
fn over_an_ipv6_underlay_the_vtep_is_logged_as_ipv6() {
    let fx = fixture6();
    fx.run(|| {
        let tables = [table6(&fx, VNI, PORT_IANA, TTL)];
        let mut plain = load_traced(&config6(false), &tables, Trace::Off);
        let mut traced = load_traced(&config6(false), &tables, Trace::All);
        let mut log = traced.take_log().expect("the traced log");
        let frame = wl0_udp6_frame(REMOTE_WL_MAC);
        let (a, b) = (
            test_run(&mut plain, PROG_PORT, fx.port0, &frame),
            test_run(&mut traced, PROG_PORT, fx.port0, &frame),
        );
        assert_eq!((a.verdict, &a.out), (b.verdict, &b.out));
        assert_eq!(b.verdict, TC_ACT_REDIRECT);
        assert_eq!(
            log.take(),
            [format!(
                "port {} vni {VNI} dst {REMOTE_WL_MAC} -> vtep {REMOTE_IP6}",
                fx.port0
            )]
        );
    });
}

/// With tracing off, vtep loads programs without log calls: none of what the kernel runs
/// reaches the log (no reserve on its ring buffer, no reference to its maps). The check is
/// shown to see log calls where there are some: in the traced programs.
#[test]
fn with_tracing_off_no_program_the_kernel_runs_has_a_log_call() {
    let syms = Kallsyms::read().expect("/proc/kallsyms");
    let fx = Fixture::new();
    fx.run(|| {
        for (trace, logs) in [(Trace::Off, false), (Trace::All, true)] {
            let mut dp = standard_traced(&fx, trace);
            for (role, prog) in programs(&mut dp).expect("the programs") {
                let used = prog.log_use(&syms);
                let expected = logs;
                assert_eq!(
                    used.calls > 0 && used.map_refs > 0,
                    expected,
                    "{role} with tracing {trace}: {used:?}"
                );
                if !expected {
                    assert_eq!(used.map_refs, 0, "{role} with tracing {trace}");
                }
            }
        }
    });
}

/// With tracing off, vtep loads the programs built without the log, not the traced ones (whose
/// log calls the verifier would strip, leaving a program that is still not the same): the
/// kernel's tags of what it loaded are those of the untraced programs of the object.
#[test]
fn with_tracing_off_vtep_loads_the_untraced_programs() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = standard_traced(&fx, Trace::Off);
        let loaded = programs(&mut dp).expect("the programs");
        let untraced = load_each(false, false, Trace::Off.globals()).expect("loading");
        let traced = load_each(false, true, Trace::Off.globals()).expect("loading");
        for ((role, prog), ((name, plain), (_, with_log))) in
            loaded.iter().zip(untraced.iter().zip(&traced))
        {
            let plain = plain.as_ref().expect("loads");
            let with_log = with_log.as_ref().expect("loads");
            assert_eq!(prog.tag, plain.tag, "{role}: not {name}");
            assert_ne!(prog.tag, with_log.tag, "{role}: the traced variant");
        }
    });
}

/// A reload reuses the running programs only when they were loaded with the same trace
/// setting: tracing is part of what was loaded.
#[test]
fn programs_loaded_with_another_trace_setting_are_not_reused() {
    let fx = Fixture::new();
    fx.run(|| {
        let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
        let size = vtep_common::maps::DEFAULT_FDB_SIZE;
        let dp = standard_traced(&fx, Trace::Vni(VNI));
        assert!(dp.loaded_as(&cfg, size, Trace::Vni(VNI)));
        for other in [Trace::Off, Trace::All, Trace::Vni(UNKNOWN_VNI)] {
            assert!(!dp.loaded_as(&cfg, size, other), "{other}");
        }
    });
}

/// The traced programs' log calls sit behind the read-only global `TRACE`: loaded with it zero
/// (which vtep never does), the verifier removes every one of them.
#[test]
fn the_traced_programs_lose_their_log_calls_to_the_verifier_when_trace_is_zero() {
    let syms = Kallsyms::read().expect("/proc/kallsyms");
    for ipv6 in [false, true] {
        for (name, prog) in load_each(ipv6, true, Trace::Off.globals()).expect("loading") {
            let prog = prog.unwrap_or_else(|e| panic!("{name} refused: {e}"));
            let used = prog.log_use(&syms);
            assert_eq!((used.calls, used.map_refs), (0, 0), "{name}");
        }
    }
}

/// With tracing on, every program of both families passes the verifier, whatever the filter.
#[test]
fn with_tracing_on_every_program_of_both_families_loads() {
    for trace in [Trace::All, Trace::Vni(VNI)] {
        for ipv6 in [false, true] {
            for (name, prog) in load_each(ipv6, true, trace.globals()).expect("loading") {
                if let Err(e) = prog {
                    panic!("{name} with tracing {trace} refused: {e}");
                }
            }
        }
    }
}
