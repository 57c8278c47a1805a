//! The ageing sweep (`vtep::daemon::ageing`) over a loaded datapath's maps, at a size where the
//! batched walk (`vtep::datapath::batch`) runs many chunks: which entries go, the learned counts
//! it rewrites and the remote VTEPs it reports.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr},
};

use vtep::{
    daemon::{
        ageing::Ager,
        remotes::{self, Reference, References},
    },
    datapath::{batch, loader::Datapath},
    sys::clock::monotonic_secs,
};
use vtep_common::{
    maps::{
        BPF_NOEXIST, FDB_F_LEARNED, FDB_F_RUNTIME, FDB_REMOTE, FdbEntry, FdbKey, ProxyEntry,
        ProxyKey, vtep_addr_v4,
    },
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::fixture::{
    Fixture, PORT_IANA, REMOTE_IP, SLOT, TTL, UNRESOLVED_IP, UNROUTABLE_IP, VNI, config, load_sized,
};

/// Filler entries, and an FDB with room for them and the fixture's own.
const ENTRIES: u32 = 200_000;
const FDB_SIZE: u32 = 262_144;
/// The standard VNI's ageing in the sweeps here.
const AGEING: u32 = 300;
/// A VNI that does not learn (no ageing): its entries stay, whatever their stamps say.
const OTHER_VNI: u32 = 200;

/// The VTEPs the filler entries point at, by kind of entry.
const STATIC_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const FRESH_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const OLD_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
const OTHER_VNI_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 13);

/// The kinds of filler entry, in turn by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A config entry (no flags).
    Static,
    /// `vtep fdb add`: never aged, however old its stamp.
    Runtime,
    /// Learned half an ageing ago.
    Fresh,
    /// Learned longer ago than the ageing: the only kind that goes.
    Old,
    /// Learned long ago in a VNI that does not learn now (its ageing is unknown).
    OtherVni,
}

const KINDS: [Kind; 5] = [
    Kind::Static,
    Kind::Runtime,
    Kind::Fresh,
    Kind::Old,
    Kind::OtherVni,
];

fn kind(i: u32) -> Kind {
    KINDS[i as usize % KINDS.len()]
}

fn filler_key(i: u32) -> FdbKey {
    let b = i.to_be_bytes();
    FdbKey {
        vni: if kind(i) == Kind::OtherVni {
            OTHER_VNI
        } else {
            VNI
        },
        mac: [0x02, 0xfa, b[0], b[1], b[2], b[3]],
        _pad: [0; 2],
    }
}

fn filler_entry(i: u32, now: u32) -> FdbEntry {
    let (vtep, flags, seen) = match kind(i) {
        Kind::Static => (STATIC_VTEP, 0, 0),
        Kind::Runtime => (STATIC_VTEP, FDB_F_RUNTIME, 0),
        Kind::Fresh => (FRESH_VTEP, FDB_F_LEARNED, now.wrapping_sub(AGEING / 2)),
        Kind::Old => (OLD_VTEP, FDB_F_LEARNED, now.wrapping_sub(AGEING + 10)),
        Kind::OtherVni => (OTHER_VNI_VTEP, FDB_F_LEARNED, now.wrapping_sub(AGEING + 10)),
    };
    FdbEntry {
        kind: FDB_REMOTE,
        ifindex: 0,
        remote: vtep_addr_v4(vtep.octets()),
        port_flags: 0,
        flags,
        seen,
    }
}

/// The datapath with the standard VNI and an FDB of [`FDB_SIZE`], filled with the fixture's own
/// entries.
fn load(fx: &Fixture) -> Datapath {
    let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    load_sized(&cfg, &[fx.table(VNI, PORT_IANA, TTL)], FDB_SIZE)
}

/// Every FDB entry, read the way the batched walk replaced (one entry at a time): the check
/// does not go through the code under test.
fn fdb_by_entry(dp: &mut Datapath) -> HashMap<FdbKey, FdbEntry> {
    dp.fdb()
        .expect("FDB")
        .iter()
        .map(|r| r.expect("reading the FDB"))
        .collect()
}

fn ip(a: Ipv4Addr) -> IpAddr {
    a.into()
}

#[test]
fn sweep_of_200k_entries_removes_exactly_the_old_learned_ones_and_recounts() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load(&fx);
        let own = fdb_by_entry(&mut dp);
        let now = monotonic_secs();
        let mut fdb = dp.fdb().expect("FDB");
        for i in 0..ENTRIES {
            fdb.insert(filler_key(i), filler_entry(i, now), BPF_NOEXIST)
                .unwrap_or_else(|e| panic!("filler entry {i}: {e}"));
        }
        // Learned proxy entries age with the FDB's: old, fresh and static ones in turn.
        let mut proxy = dp.proxy().expect("PROXY");
        for i in 0..3_000u32 {
            let (flags, seen) = match i % 3 {
                0 => (FDB_F_LEARNED, now.wrapping_sub(AGEING + 10)),
                1 => (FDB_F_LEARNED, now.wrapping_sub(AGEING / 2)),
                _ => (0, 0),
            };
            let key = ProxyKey {
                vni: VNI,
                ip: [10, 9, (i >> 8) as u8, i as u8],
            };
            let entry = ProxyEntry {
                mac: [0x02, 0xfb, 0, 0, (i >> 8) as u8, i as u8],
                _pad: [0; 2],
                flags,
                seen,
            };
            proxy.insert(key, entry, BPF_NOEXIST).expect("proxy entry");
        }
        // A count the datapath ran up: the sweep writes the true one.
        dp.learned()
            .expect("LEARNED")
            .set(SLOT, 7, 0)
            .expect("count");

        let ager = Ager::new([(VNI, SLOT, AGEING)]);
        let sweep = ager.sweep(&mut dp).expect("sweep");

        let old = (0..ENTRIES).filter(|&i| kind(i) == Kind::Old).count();
        let fresh = (0..ENTRIES).filter(|&i| kind(i) == Kind::Fresh).count() as u64;
        assert_eq!(sweep.removed, old + 1_000, "FDB and proxy entries removed");
        assert_eq!(sweep.learned, HashMap::from([(SLOT, fresh)]));
        assert_eq!(dp.learned().expect("LEARNED").get(&SLOT, 0).unwrap(), fresh);

        let left = fdb_by_entry(&mut dp);
        let mut expected = own.clone();
        expected.extend(
            (0..ENTRIES)
                .filter(|&i| kind(i) != Kind::Old)
                .map(|i| (filler_key(i), filler_entry(i, now))),
        );
        assert_eq!(left.len(), expected.len());
        assert!(
            left == expected,
            "the FDB left is not the old minus the old learned entries"
        );

        let proxy_left: HashSet<u32> = dp
            .proxy()
            .expect("PROXY")
            .iter()
            .map(|r| r.expect("reading PROXY"))
            .map(|(k, _)| u32::from(k.ip[2]) << 8 | u32::from(k.ip[3]))
            .collect();
        assert_eq!(proxy_left, (0..3_000).filter(|i| i % 3 != 0).collect());

        // The fixture's static entries and the static and runtime fillers list their VTEPs;
        // learned entries left name theirs; the VTEP only old entries pointed at is gone.
        let mut refs = References::default();
        for listed in [REMOTE_IP, UNROUTABLE_IP, UNRESOLVED_IP, STATIC_VTEP] {
            refs.add(ip(listed), Reference::Listed);
        }
        refs.add(ip(FRESH_VTEP), Reference::Learned);
        refs.add(ip(OTHER_VNI_VTEP), Reference::Learned);
        assert_eq!(sweep.remotes, refs);
        assert_eq!(remotes::count_fdb(&mut dp).expect("count_fdb"), refs);

        // Nothing more is old: the next sweep removes nothing and counts the same.
        let again = ager.sweep(&mut dp).expect("second sweep");
        assert_eq!(again.removed, 0);
        assert_eq!(again.learned, sweep.learned);
    });
}

/// A walk that starts with a chunk smaller than a bucket must grow it (the kernel answers
/// ENOSPC and copies nothing) and still read every entry once; deleting skips keys gone
/// already (the kernel stops a delete batch at the first missing key).
#[test]
fn batch_walk_reads_every_entry_once_and_delete_skips_missing_keys() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load(&fx);
        let own = fdb_by_entry(&mut dp).len();
        let now = monotonic_secs();
        let mut fdb = dp.fdb().expect("FDB");
        for i in 0..ENTRIES {
            fdb.insert(filler_key(i), filler_entry(i, now), BPF_NOEXIST)
                .unwrap_or_else(|e| panic!("filler entry {i}: {e}"));
        }
        let mut seen = HashMap::new();
        let n = batch::for_each_chunked(&fdb, 1, |k, e| {
            assert!(seen.insert(*k, *e).is_none(), "{k:?} read twice");
        })
        .expect("batch walk");
        assert_eq!(n, ENTRIES as usize + own);
        assert_eq!(seen.len(), n);
        for i in (0..ENTRIES).step_by(997) {
            assert_eq!(seen.get(&filler_key(i)), Some(&filler_entry(i, now)));
        }

        // Every other key of the first 2,000 twice over, so half the keys of the second
        // batch call are gone by then, and keys never there.
        let mut keys: Vec<FdbKey> = (0..2_000).step_by(2).map(filler_key).collect();
        keys.extend((0..2_000).map(filler_key));
        keys.extend((ENTRIES..ENTRIES + 10).map(filler_key));
        let deleted = batch::delete(&mut fdb, &keys).expect("batch delete");
        assert_eq!(deleted, 2_000);
        let left = batch::for_each(&fdb, |k, _| {
            let i = u32::from_be_bytes([k.mac[2], k.mac[3], k.mac[4], k.mac[5]]);
            assert!(k.mac[1] != 0xfa || i >= 2_000, "{k:?} not deleted");
        })
        .expect("walk after delete");
        assert_eq!(left, ENTRIES as usize - 2_000 + own);
        assert_eq!(batch::delete(&mut fdb, &[]).expect("empty delete"), 0);
    });
}
