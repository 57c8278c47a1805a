//! What vtep keeps in etcd: the keys and their JSON values (docs/store.md). Under `PREFIX/v1/`:
//! `hosts/VTEP` for each instance, `stations/VTEP/VNI/MAC` for each station it made. A record
//! read from the store is checked like a config field before it is used: a store anyone can write
//! to must not be able to point an FDB entry at a multicast VTEP or a group MAC.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{config::fields::is_station_address, mac::Mac};

/// The version segment of every key: a later incompatible schema takes `v2` beside it.
const VERSION: &str = "v1";
/// Most addresses one station record may carry: a station has a few; a record with more is not
/// vtep's and would only fill the proxy table.
pub const MAX_ADDRESSES: usize = 16;

/// One VNI a host serves, and the UDP port it receives it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostVni {
    pub vni: u32,
    pub dstport: u16,
}

/// `hosts/VTEP`: an instance, by its underlay address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub host: String,
    pub vtep: IpAddr,
    pub vnis: Vec<HostVni>,
}

/// `stations/VTEP/VNI/MAC`: a station behind the VTEP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationRecord {
    pub vni: u32,
    #[serde(with = "mac_text")]
    pub mac: Mac,
    pub vtep: IpAddr,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// A record read back, by the kind of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Host(HostRecord),
    Station(StationRecord),
}

/// The keys of one store prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    /// `PREFIX/v1/`: everything vtep reads and writes.
    root: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            root: format!("{prefix}/{VERSION}/"),
        }
    }

    /// The prefix every key is under (what is listed and watched).
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn host(&self, vtep: IpAddr) -> String {
        format!("{}hosts/{vtep}", self.root)
    }

    pub fn station(&self, s: &StationRecord) -> String {
        format!("{}stations/{}/{}/{}", self.root, s.vtep, s.vni, s.mac)
    }

    /// The record a key and its value hold, or why they are not one vtep wrote: unknown keys,
    /// values that do not parse, and values that disagree with their key or name what no
    /// station or VTEP may be are all refused.
    pub fn parse(&self, key: &str, value: &[u8]) -> Result<Record, String> {
        let rest = key
            .strip_prefix(&self.root)
            .ok_or_else(|| "outside the prefix".to_string())?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["hosts", vtep] => {
                let r: HostRecord =
                    serde_json::from_slice(value).map_err(|e| format!("not a host record: {e}"))?;
                check_vtep(r.vtep)?;
                if vtep.parse::<IpAddr>().ok() != Some(r.vtep) {
                    return Err(format!("names VTEP {} under another key", r.vtep));
                }
                if r.vnis
                    .iter()
                    .any(|v| !(1..(1 << 24)).contains(&v.vni) || v.dstport == 0)
                {
                    return Err("names a VNI or dstport out of range".into());
                }
                if r.vnis.len() > vtep_common::maps::MAX_VNIS as usize {
                    return Err(format!(
                        "names {} VNIs, more than an instance serves",
                        r.vnis.len()
                    ));
                }
                Ok(Record::Host(r))
            }
            ["stations", vtep, vni, mac] => {
                let r: StationRecord = serde_json::from_slice(value)
                    .map_err(|e| format!("not a station record: {e}"))?;
                check_vtep(r.vtep)?;
                if vtep.parse::<IpAddr>().ok() != Some(r.vtep)
                    || vni.parse::<u32>().ok() != Some(r.vni)
                    || mac.parse::<Mac>().ok() != Some(r.mac)
                {
                    return Err("disagrees with its key".into());
                }
                if !(1..(1 << 24)).contains(&r.vni) {
                    return Err(format!("VNI {} is out of range", r.vni));
                }
                if r.mac.is_group() || r.mac.is_zero() {
                    return Err(format!("{} is not a station's MAC", r.mac));
                }
                if r.addresses.len() > MAX_ADDRESSES {
                    return Err(format!(
                        "carries {} addresses, more than the {MAX_ADDRESSES} a station may",
                        r.addresses.len()
                    ));
                }
                if let Some(a) = r.addresses.iter().find(|a| !is_station_address(**a)) {
                    return Err(format!("{a} is not a station's address"));
                }
                Ok(Record::Station(r))
            }
            _ => Err("not a key vtep writes".into()),
        }
    }
}

/// A remote VTEP from the store must be one vtep could send to.
fn check_vtep(ip: IpAddr) -> Result<(), String> {
    let addr = vtep_common::maps::vtep_addr(ip);
    if vtep_common::wire::is_unicast_vtep(&addr, ip.is_ipv6()) {
        Ok(())
    } else {
        Err(format!("{ip} is not a unicast VTEP address"))
    }
}

mod mac_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::mac::Mac;

    pub fn serialize<S: Serializer>(mac: &Mac, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(mac)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station() -> StationRecord {
        StationRecord {
            vni: 200,
            mac: "02:00:00:00:0a:01".parse().unwrap(),
            vtep: "198.18.0.1".parse().unwrap(),
            addresses: vec!["192.0.2.11".parse().unwrap()],
        }
    }

    #[test]
    fn a_station_round_trips_through_its_key() {
        let keys = Keys::new("/vtep");
        let s = station();
        let key = keys.station(&s);
        assert_eq!(key, "/vtep/v1/stations/198.18.0.1/200/02:00:00:00:0a:01");
        let value = serde_json::to_vec(&s).unwrap();
        assert_eq!(keys.parse(&key, &value), Ok(Record::Station(s)));
    }

    #[test]
    fn forged_records_are_refused() {
        let keys = Keys::new("/vtep");
        let s = station();
        let key = keys.station(&s);
        let mut group = s.clone();
        group.mac = "01:00:5e:00:00:01".parse().unwrap();
        let mut mcast_vtep = s.clone();
        mcast_vtep.vtep = "239.1.1.1".parse().unwrap();
        let mut loopback_addr = s.clone();
        loopback_addr.addresses = vec!["127.0.0.1".parse().unwrap()];
        let mut other_vni = s.clone();
        other_vni.vni = 201;
        for (what, key, r) in [
            ("group MAC", keys.station(&group), group),
            ("multicast VTEP", keys.station(&mcast_vtep), mcast_vtep),
            ("loopback address", key.clone(), loopback_addr),
            ("key of another VNI", key.clone(), other_vni),
        ] {
            let value = serde_json::to_vec(&r).unwrap();
            assert!(keys.parse(&key, &value).is_err(), "{what} accepted");
        }
        let mut many = s.clone();
        many.addresses = (0..=MAX_ADDRESSES as u8)
            .map(|i| IpAddr::from([192, 0, 2, i + 1]))
            .collect();
        assert!(
            keys.parse(&key, &serde_json::to_vec(&many).unwrap())
                .is_err(),
            "a station with more addresses than a station has"
        );
        assert!(keys.parse(&key, b"{").is_err());
        assert!(keys.parse("/vtep/v1/other/x", b"{}").is_err());
        assert!(keys.parse("/vtepx/v1/hosts/198.18.0.1", b"{}").is_err());
    }

    #[test]
    fn a_host_record_must_be_under_its_own_vtep() {
        let keys = Keys::new("/p");
        let h = HostRecord {
            host: "a".into(),
            vtep: "2001:db8::1".parse().unwrap(),
            vnis: vec![HostVni {
                vni: 7,
                dstport: 4789,
            }],
        };
        let value = serde_json::to_vec(&h).unwrap();
        assert_eq!(
            keys.parse(&keys.host(h.vtep), &value),
            Ok(Record::Host(h.clone()))
        );
        assert!(keys.parse("/p/v1/hosts/2001:db8::2", &value).is_err());
    }
}
