//! What the daemon writes into the maps from the store's view (`daemon::from_store`): entries of
//! origin store that the port program then sends by, and the rules that keep the config's,
//! the commands' and the other hosts' entries apart.

use std::{collections::HashMap, net::IpAddr};

use vtep::{
    daemon::from_store::Programmed,
    datapath::loader::{Datapath, PROG_PORT},
    mac::Mac,
    store::view::Wanted,
};
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_RUNTIME, FDB_F_STORE, FDB_REMOTE, FdbEntry, FdbKey, ProxyEntry, ProxyKey,
    vtep_addr, vtep_ip,
};
use vtep_tests::fixture::{REMOTE_IP, REMOTE_WL_MAC, TC_ACT_REDIRECT, VNI, test_run};

use crate::{
    checks::{Expect, check_encap, standard},
    frames::wl0_udp_frame,
};

const STORE_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x05, 0x01]);
const OTHER_VTEP: &str = "198.18.0.9";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(mac: Mac) -> FdbKey {
    FdbKey {
        vni: VNI,
        mac: mac.0,
        _pad: [0; 2],
    }
}

fn entry(dp: &mut Datapath, mac: Mac) -> Option<FdbEntry> {
    dp.fdb().unwrap().get(&key(mac), 0).ok()
}

fn flood_remotes(dp: &mut Datapath) -> Vec<IpAddr> {
    let list = dp.flood().unwrap().get(&VNI, 0).unwrap();
    list.remotes[..list.n_remotes as usize]
        .iter()
        .map(vtep_ip)
        .collect()
}

fn wanted(fdb: &[(Mac, &str)], flood: &[&str]) -> Wanted {
    Wanted {
        fdb: fdb.iter().map(|(m, v)| ((VNI, *m), ip(v))).collect(),
        flood: HashMap::from([(VNI, flood.iter().map(|v| ip(v)).collect())]),
        ..Wanted::default()
    }
}

#[test]
fn a_store_entry_sends_to_its_vtep_and_goes_when_the_store_drops_it() {
    standard(|fx, dp| {
        let mut programmed = Programmed::default();
        let changes = programmed.apply(dp, &wanted(&[(STORE_MAC, "198.18.0.2")], &[]), false);
        assert_eq!((changes.written, changes.vteps), (1, true), "{changes:?}");
        let e = entry(dp, STORE_MAC).expect("the store's entry is in the FDB");
        assert_eq!((e.kind, e.flags), (FDB_REMOTE, FDB_F_STORE));
        assert_eq!(e.remote, vtep_addr(REMOTE_IP.into()));

        let inner = wl0_udp_frame(STORE_MAC, 1000);
        let run = test_run(dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent to the store's VTEP");
        check_encap(&run.out, &inner, &Expect::standard());

        programmed.apply(dp, &Wanted::default(), false);
        assert!(
            entry(dp, STORE_MAC).is_none(),
            "left after the store dropped it"
        );
    });
}

#[test]
fn config_and_command_entries_win_over_the_store_and_learned_ones_give_way() {
    standard(|_fx, dp| {
        let learned = Mac([0x02, 0, 0, 0, 0x05, 0x02]);
        let runtime = Mac([0x02, 0, 0, 0, 0x05, 0x03]);
        let stale = |flags| FdbEntry {
            kind: FDB_REMOTE,
            remote: vtep_addr(ip("198.18.0.7")),
            flags,
            ..FdbEntry::default()
        };
        let mut fdb = dp.fdb().unwrap();
        fdb.insert(key(learned), stale(FDB_F_LEARNED), 0).unwrap();
        fdb.insert(key(runtime), stale(FDB_F_RUNTIME), 0).unwrap();
        let config_entry = entry(dp, REMOTE_WL_MAC).unwrap();

        let mut programmed = Programmed::default();
        let want = wanted(
            &[
                (REMOTE_WL_MAC, OTHER_VTEP),
                (learned, OTHER_VTEP),
                (runtime, OTHER_VTEP),
            ],
            &[],
        );
        programmed.apply(dp, &want, false);
        assert_eq!(
            entry(dp, REMOTE_WL_MAC),
            Some(config_entry),
            "config entry moved"
        );
        assert_eq!(
            entry(dp, runtime),
            Some(stale(FDB_F_RUNTIME)),
            "command's entry moved"
        );
        let taken = entry(dp, learned).unwrap();
        assert_eq!(
            (taken.flags, taken.remote),
            (FDB_F_STORE, vtep_addr(ip(OTHER_VTEP))),
            "the learned entry did not give way"
        );

        // A full pass (after a reload) and the store forgetting them: only its own entry goes.
        programmed.apply(dp, &want, true);
        programmed.apply(dp, &Wanted::default(), false);
        assert_eq!(entry(dp, REMOTE_WL_MAC), Some(config_entry));
        assert_eq!(entry(dp, runtime), Some(stale(FDB_F_RUNTIME)));
        assert!(entry(dp, learned).is_none());
    });
}

#[test]
fn the_store_adds_to_the_flood_list_and_removes_only_what_it_added() {
    standard(|_fx, dp| {
        let config_remote: IpAddr = REMOTE_IP.into();
        assert_eq!(flood_remotes(dp), vec![config_remote]);
        let mut programmed = Programmed::default();
        programmed.apply(dp, &wanted(&[], &["198.18.0.2", OTHER_VTEP]), false);
        assert_eq!(flood_remotes(dp), vec![config_remote, ip(OTHER_VTEP)]);
        programmed.apply(dp, &Wanted::default(), false);
        assert_eq!(
            flood_remotes(dp),
            vec![config_remote],
            "the config's remote must stay when the store no longer names it"
        );
    });
}

#[test]
fn store_proxy_entries_never_replace_the_configs_or_a_commands() {
    standard(|_fx, dp| {
        let pkey = |last| ProxyKey {
            vni: VNI,
            ip: [192, 0, 2, last],
        };
        let runtime = ProxyEntry {
            mac: [2, 0, 0, 0, 9, 9],
            flags: FDB_F_RUNTIME,
            ..ProxyEntry::default()
        };
        dp.proxy().unwrap().insert(pkey(30), runtime, 0).unwrap();
        let mut programmed = Programmed::default();
        let want = Wanted {
            proxy: HashMap::from([
                ((VNI, ip("192.0.2.30")), STORE_MAC),
                ((VNI, ip("192.0.2.31")), STORE_MAC),
            ]),
            ..Wanted::default()
        };
        programmed.apply(dp, &want, false);
        let proxy = dp.proxy().unwrap();
        assert_eq!(proxy.get(&pkey(30), 0).unwrap(), runtime);
        let ours = proxy.get(&pkey(31), 0).unwrap();
        assert_eq!((ours.mac, ours.flags), (STORE_MAC.0, FDB_F_STORE));
        programmed.apply(dp, &Wanted::default(), false);
        let proxy = dp.proxy().unwrap();
        assert_eq!(proxy.get(&pkey(30), 0).unwrap(), runtime);
        assert!(proxy.get(&pkey(31), 0).is_err(), "the store's entry stayed");
    });
}
