//! Changing the FDB of a running instance without restarting it: `vtep fdb add`, `replace` and
//! `del`. Everything is checked before the map is written, and a change is one map operation,
//! so a refused or failed command leaves the FDB as it was.
//!
//! Only remote entries can be changed. Local entries bind a station to one of the instance's own
//! ports, which the config describes and `vtep up` built; pointing one elsewhere or deleting it
//! would cut a local workload off until the next restart.

use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{HashMap, MapData, MapError, MapInfo};
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_RUNTIME, FDB_LOCAL, FDB_REMOTE, FdbEntry, FdbKey, MAP_DYNAMIC_VTEPS,
    MAP_FDB,
};

use crate::{
    cli::keywords as args,
    config::{check_mac, check_remote, invalid},
    ctl::show::{self as live, ifname, open},
    instance,
    mac::Mac,
    sys::clock,
};

/// `BPF_NOEXIST`: the update fails with `EEXIST` instead of overwriting.
const BPF_NOEXIST: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create an entry; an existing one must already say the same.
    Add,
    /// Create an entry or change where an existing remote one points.
    Replace,
    Del,
}

impl Op {
    fn command(self) -> &'static str {
        match self {
            Op::Add => "vtep fdb add",
            Op::Replace => "vtep fdb replace",
            Op::Del => "vtep fdb del",
        }
    }
}

/// One change, parsed from the command line and checked as far as possible without the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub mac: Mac,
    pub vni: u32,
    /// The remote VTEP (`add` and `replace` only).
    pub dst: Option<Ipv4Addr>,
}

impl Request {
    /// Parses `MAC` and the words after it: keyword-value pairs in any order, as in
    /// `bridge fdb add MAC dev vxlan0 dst IP`. `add` and `replace` take `dst IP` and `vni N`,
    /// `del` takes `vni N`.
    pub fn parse(op: Op, mac: &str, words: &[String]) -> Result<Self> {
        let allowed: &[(&str, &str)] = match op {
            Op::Add | Op::Replace => &[("dst", "IP"), ("vni", "N")],
            Op::Del => &[("vni", "N")],
        };
        let args = args::parse(op.command(), allowed, words)?;
        let mac = mac.parse::<Mac>().map_err(|e| invalid("mac", e))?;
        check_mac("mac", Some(mac))?;
        let vni = args.vni()?;
        let dst = match op {
            Op::Del => None,
            Op::Add | Op::Replace => Some(parse_dst(args.require("dst", "IP")?)?),
        };
        Ok(Self { op, mac, vni, dst })
    }

    fn key(&self) -> FdbKey {
        FdbKey {
            vni: self.vni,
            mac: self.mac.0,
            _pad: [0; 2],
        }
    }
}

/// A remote VTEP address as `dst IP` gives it. Our own address is known only from the
/// instance; see `apply`.
pub(crate) fn parse_dst(dst: &str) -> Result<Ipv4Addr> {
    let ip = dst
        .parse::<Ipv4Addr>()
        .map_err(|_| invalid("dst", format!("`{dst}` is not an IPv4 address")))?;
    check_remote("dst", ip, None)?;
    Ok(ip)
}

/// What a request does to the entry under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Create the entry; the key must still be free when it is written.
    Create(FdbEntry),
    Overwrite(FdbEntry),
    Delete,
    /// The entry already is what was asked for.
    Nothing,
}

/// Why a request is refused, given the entry under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    LocalPort { ifindex: u32 },
    PointsElsewhere { dst: Ipv4Addr },
    Missing,
}

/// The remote entry `vtep fdb add` writes.
fn runtime_entry(dst: Ipv4Addr) -> FdbEntry {
    FdbEntry {
        kind: FDB_REMOTE,
        ifindex: 0,
        remote: dst.octets(),
        port_flags: 0,
        flags: FDB_F_RUNTIME,
        seen: 0,
    }
}

fn decide(req: &Request, existing: Option<FdbEntry>) -> Result<Action, Refusal> {
    match (req.op, existing, req.dst) {
        // What the datapath learned gives way to what the operator says, as in the kernel.
        (Op::Del, Some(e), _) if e.flags & FDB_F_LEARNED != 0 => Ok(Action::Delete),
        (_, Some(e), Some(dst)) if e.flags & FDB_F_LEARNED != 0 => {
            Ok(Action::Overwrite(runtime_entry(dst)))
        }
        (_, Some(e), _) if e.kind == FDB_LOCAL => Err(Refusal::LocalPort { ifindex: e.ifindex }),
        (Op::Del, Some(_), _) => Ok(Action::Delete),
        (Op::Del, None, _) => Err(Refusal::Missing),
        (_, _, None) => unreachable!("add and replace always have a dst"),
        // Same target: leave it, also its origin (re-adding a config entry does not make it a
        // runtime one).
        (_, Some(e), Some(dst)) if e.remote == dst.octets() => Ok(Action::Nothing),
        (Op::Add, Some(e), _) => Err(Refusal::PointsElsewhere {
            dst: Ipv4Addr::from(e.remote),
        }),
        (_, Some(_), Some(dst)) => Ok(Action::Overwrite(runtime_entry(dst))),
        (_, None, Some(dst)) => Ok(Action::Create(runtime_entry(dst))),
    }
}

/// Whether a request changed the FDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Changed,
    Unchanged,
}

/// Applies `req` to the FDB of running instance `name`.
pub fn apply(name: &str, req: &Request) -> Result<Outcome> {
    let dir = instance::pin_dir(name);
    live::require_vni(&dir, name, req.vni)?;
    if let Some(dst) = req.dst {
        let info = instance::Info::load(name)?;
        check_remote("dst", dst, Some(info.local))?;
    }

    let mut fdb: HashMap<MapData, FdbKey, FdbEntry> = HashMap::try_from(open(&dir, MAP_FDB)?)?;
    let key = req.key();
    // Another command may change the same key between the lookup and the write; `Create`
    // writes only if the key is still free, and a lost race is decided again on what won.
    for _ in 0..3 {
        let existing = match fdb.get(&key, 0) {
            Ok(e) => Some(e),
            Err(MapError::KeyNotFound) => None,
            Err(e) => return Err(e).context("reading the FDB"),
        };
        let action = decide(req, existing).map_err(|r| refusal(req, r))?;
        if let (Action::Create(_) | Action::Overwrite(_), Some(dst)) = (action, req.dst) {
            note_vtep(&dir, dst)?;
        }
        let result = match action {
            Action::Nothing => return Ok(Outcome::Unchanged),
            Action::Create(entry) => fdb.insert(key, entry, BPF_NOEXIST),
            Action::Overwrite(entry) => fdb.insert(key, entry, 0),
            Action::Delete => fdb.remove(&key),
        };
        let Err(e) = result else {
            return Ok(Outcome::Changed);
        };
        match errno(&e) {
            Some(libc::EEXIST) | Some(libc::ENOENT) => continue,
            Some(libc::E2BIG) => {
                let size = MapInfo::from_pin(dir.join(MAP_FDB))
                    .map(|i| i.max_entries().to_string())
                    .unwrap_or_else(|_| "?".into());
                bail!(
                    "the FDB of instance `{name}` is full ({size} entries); delete entries or \
                     raise `fdb_size` in its config"
                );
            }
            _ => {
                return Err(e).with_context(|| format!("writing the FDB of instance `{name}`"));
            }
        }
    }
    bail!("the FDB entry kept changing under this command; try again")
}

/// Asks the running instance to keep remote VTEP `dst` resolved (see `DYNAMIC_VTEPS`): before
/// the entry exists, so frames that cannot wait for resolution find it resolved as soon as can be.
pub(crate) fn note_vtep(dir: &std::path::Path, dst: Ipv4Addr) -> Result<()> {
    let mut vteps: HashMap<MapData, [u8; 4], u32> =
        HashMap::try_from(open(dir, MAP_DYNAMIC_VTEPS)?)?;
    vteps
        .insert(dst.octets(), clock::monotonic_secs(), 0)
        .context("noting the remote VTEP")
}

fn errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        MapError::KeyNotFound => Some(libc::ENOENT),
        _ => None,
    }
}

fn refusal(req: &Request, r: Refusal) -> anyhow::Error {
    let (mac, vni) = (req.mac, req.vni);
    match r {
        Refusal::LocalPort { ifindex } => anyhow!(
            "mac: {mac} in VNI {vni} is a station behind local port `{}`; local entries come \
             from the config and are not changed at run time",
            ifname(ifindex)
        ),
        Refusal::PointsElsewhere { dst } => {
            anyhow!("mac: {mac} in VNI {vni} already goes to {dst}; `vtep fdb replace` changes it")
        }
        Refusal::Missing => anyhow!("mac: no entry for {mac} in VNI {vni}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn parse(op: Op, mac: &str, rest: &str) -> Result<Request> {
        Request::parse(op, mac, &words(rest))
    }

    fn error(op: Op, mac: &str, rest: &str) -> String {
        format!("{:#}", parse(op, mac, rest).expect_err("accepted"))
    }

    const MAC: &str = "02:00:00:00:00:02";

    #[test]
    fn keywords_in_any_order() {
        let want = Request {
            op: Op::Add,
            mac: MAC.parse().unwrap(),
            vni: 100,
            dst: Some(Ipv4Addr::new(198, 18, 0, 2)),
        };
        assert_eq!(parse(Op::Add, MAC, "dst 198.18.0.2 vni 100").unwrap(), want);
        assert_eq!(parse(Op::Add, MAC, "vni 100 dst 198.18.0.2").unwrap(), want);
        let del = parse(Op::Del, MAC, "vni 100").unwrap();
        assert_eq!((del.vni, del.dst), (100, None));
    }

    #[test]
    fn malformed_arguments_are_named() {
        let e = error(Op::Add, MAC, "dst 198.18.0.2 vni 100 dev vx0");
        assert!(
            e.contains("`dev` is not an argument of `vtep fdb add`"),
            "{e}"
        );
        assert!(error(Op::Add, MAC, "vni 100 dst").contains("`dst` needs a value"));
        assert!(error(Op::Add, MAC, "vni 1 vni 2 dst 198.18.0.2").contains("`vni` is given twice"));
        assert!(error(Op::Add, MAC, "dst 198.18.0.2").contains("`vni N` is missing"));
        assert!(error(Op::Replace, MAC, "vni 100").contains("`dst IP` is missing"));
        let e = error(Op::Del, MAC, "vni 100 dst 198.18.0.2");
        assert!(
            e.contains("`dst` is not an argument of `vtep fdb del`"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_refused_like_the_config() {
        let e = error(Op::Add, "02:00:00:00:00", "dst 198.18.0.2 vni 100");
        assert!(
            e.starts_with("mac: `02:00:00:00:00` is not a MAC address"),
            "{e}"
        );
        let e = error(Op::Add, "01:00:5e:00:00:01", "dst 198.18.0.2 vni 100");
        assert_eq!(e, "mac: 01:00:5e:00:00:01 is a group address");
        let e = error(Op::Del, "ff:ff:ff:ff:ff:ff", "vni 100");
        assert_eq!(e, "mac: ff:ff:ff:ff:ff:ff is a group address");
        let e = error(Op::Add, "00:00:00:00:00:00", "dst 198.18.0.2 vni 100");
        assert!(
            e.starts_with("mac: 00:00:00:00:00:00 is not a station"),
            "{e}"
        );
        for vni in ["0", "16777216"] {
            let e = error(Op::Add, MAC, &format!("dst 198.18.0.2 vni {vni}"));
            assert_eq!(e, format!("vni: {vni} is outside 1..=16777215"));
        }
        assert!(error(Op::Add, MAC, "dst 198.18.0.2 vni x").starts_with("vni: `x` is not a VNI"));
        for dst in ["0.0.0.0", "224.0.0.5", "255.255.255.255", "127.0.0.1"] {
            let e = error(Op::Add, MAC, &format!("dst {dst} vni 100"));
            assert_eq!(e, format!("dst: {dst} is not a unicast address"));
        }
        let e = error(Op::Add, MAC, "dst 198.18.0.300 vni 100");
        assert_eq!(e, "dst: `198.18.0.300` is not an IPv4 address");
    }

    fn request(op: Op, dst: Option<[u8; 4]>) -> Request {
        Request {
            op,
            mac: MAC.parse().unwrap(),
            vni: 100,
            dst: dst.map(Ipv4Addr::from),
        }
    }

    fn config_remote(ip: [u8; 4]) -> FdbEntry {
        FdbEntry {
            kind: FDB_REMOTE,
            ifindex: 0,
            remote: ip,
            port_flags: 0,
            flags: 0,
            seen: 0,
        }
    }

    const LOCAL: FdbEntry = FdbEntry {
        kind: FDB_LOCAL,
        ifindex: 7,
        remote: [0; 4],
        port_flags: 1,
        flags: 0,
        seen: 0,
    };

    #[test]
    fn add_creates_or_keeps_but_never_moves() {
        let a = [198, 18, 0, 2];
        let b = [198, 18, 0, 3];
        let add = request(Op::Add, Some(a));
        assert_eq!(
            decide(&add, None),
            Ok(Action::Create(runtime_entry(a.into())))
        );
        assert_eq!(decide(&add, Some(config_remote(a))), Ok(Action::Nothing));
        assert_eq!(
            decide(&add, Some(runtime_entry(a.into()))),
            Ok(Action::Nothing)
        );
        assert_eq!(
            decide(&add, Some(config_remote(b))),
            Err(Refusal::PointsElsewhere { dst: b.into() })
        );
        assert_eq!(
            decide(&add, Some(LOCAL)),
            Err(Refusal::LocalPort { ifindex: 7 })
        );
    }

    #[test]
    fn replace_moves_remote_entries_only() {
        let a = [198, 18, 0, 2];
        let replace = request(Op::Replace, Some(a));
        assert_eq!(
            decide(&replace, Some(config_remote([198, 18, 0, 3]))),
            Ok(Action::Overwrite(runtime_entry(a.into())))
        );
        assert_eq!(
            decide(&replace, None),
            Ok(Action::Create(runtime_entry(a.into())))
        );
        assert_eq!(
            decide(&replace, Some(config_remote(a))),
            Ok(Action::Nothing)
        );
        assert_eq!(
            decide(&replace, Some(LOCAL)),
            Err(Refusal::LocalPort { ifindex: 7 })
        );
    }

    #[test]
    fn del_removes_remote_entries_only() {
        let del = request(Op::Del, None);
        assert_eq!(decide(&del, None), Err(Refusal::Missing));
        assert_eq!(
            decide(&del, Some(config_remote([198, 18, 0, 2]))),
            Ok(Action::Delete)
        );
        assert_eq!(
            decide(&del, Some(LOCAL)),
            Err(Refusal::LocalPort { ifindex: 7 })
        );
    }
}
