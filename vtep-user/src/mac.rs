//! MAC addresses as users write them: `02:00:00:00:00:01`, or iproute2's short form `2:0:0:0:0:1`.

use std::{fmt, str::FromStr};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 != 0
    }
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a MAC address (xx:xx:xx:xx:xx:xx)");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            // One or two hex digits per byte, as iproute2 takes them (`2:0:0:0:c:3`).
            if !(1..=2).contains(&part.len()) || !part.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: Mac = "02:aB:00:00:00:0f".parse().unwrap();
        assert_eq!(m.0, [0x02, 0xab, 0, 0, 0, 0x0f]);
        assert_eq!(m.to_string(), "02:ab:00:00:00:0f");
    }

    #[test]
    fn takes_the_short_forms_iproute2_takes() {
        let m: Mac = "2:0:0:0:c:3".parse().unwrap();
        assert_eq!(m.to_string(), "02:00:00:00:0c:03");
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "+2:00:00:00:00:00",
            "02::00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "0g:00:00:00:00:00",
            "2:00:00:00:00:000",
        ] {
            assert!(s.parse::<Mac>().is_err(), "{s} accepted");
        }
    }
}
