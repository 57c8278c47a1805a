//! `[store]`: the etcd cluster the instance publishes its stations in and programs remote ones
//! from (scenario S5; see docs/store.md). Checked like the rest of the config, every error naming
//! its field; that the certificate files can be read is checked with the system
//! ([`Store::check_files`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, invalid};

/// Shortest `lease_ttl`: etcd grants no lease shorter than about its election timeout times 1.5
/// (1.5 s by default) and rounds shorter ones up.
pub const MIN_LEASE_TTL: u32 = 2;
/// Longest `lease_ttl`: an hour; longer would leave a crashed host's stations in every FDB for
/// longer than anyone waits.
pub const MAX_LEASE_TTL: u32 = 3600;
/// Most endpoints a config may list.
const MAX_ENDPOINTS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// etcd client URLs, `http://HOST:PORT` or `https://HOST:PORT`, one scheme for all.
    pub endpoints: Vec<String>,
    /// Every key vtep writes or reads is under it.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Seconds a host's records outlive it when it stops without revoking them (a crash).
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: u32,
    /// The name this host publishes (default: the system's hostname).
    pub host: Option<String>,
    /// TLS: the CA certificate (PEM) the servers' certificates are checked against.
    pub ca: Option<PathBuf>,
    /// TLS client certificate (PEM), with `key`.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
}

fn default_prefix() -> String {
    "/vtep".into()
}

fn default_lease_ttl() -> u32 {
    10
}

impl Store {
    /// Whether the endpoints are `https://`.
    pub fn tls(&self) -> bool {
        self.endpoints.iter().any(|e| e.starts_with("https://"))
    }

    /// Checks what can be checked without the system. Fails with the first problem, naming its
    /// field.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() {
            return Err(invalid(
                "store.endpoints",
                "lists no etcd endpoint (`[\"http://HOST:2379\"]`)",
            ));
        }
        if self.endpoints.len() > MAX_ENDPOINTS {
            return Err(invalid(
                "store.endpoints",
                format!("at most {MAX_ENDPOINTS} endpoints"),
            ));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            check_endpoint(&format!("store.endpoints[{i}]"), e)?;
        }
        let tls = self.tls();
        // The first endpoint sets the scheme; the first that differs is named.
        let first = self.endpoints[0].starts_with("https://");
        if let Some(i) = self
            .endpoints
            .iter()
            .position(|e| e.starts_with("https://") != first)
        {
            return Err(invalid(
                format!("store.endpoints[{i}]"),
                "mixes http:// and https:// endpoints; use one scheme for all",
            ));
        }
        check_prefix(&self.prefix)?;
        if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&self.lease_ttl) {
            return Err(invalid(
                "store.lease_ttl",
                format!(
                    "{} is not within {MIN_LEASE_TTL}..={MAX_LEASE_TTL} seconds",
                    self.lease_ttl
                ),
            ));
        }
        if let Some(host) = &self.host {
            check_host(host)?;
        }
        match (tls, &self.ca, &self.cert, &self.key) {
            (false, Some(_), _, _) | (false, _, Some(_), _) | (false, _, _, Some(_)) => {
                let field = if self.ca.is_some() {
                    "store.ca"
                } else if self.cert.is_some() {
                    "store.cert"
                } else {
                    "store.key"
                };
                Err(invalid(
                    field,
                    "is a TLS setting, but the endpoints are http://; use https:// endpoints",
                ))
            }
            (true, None, _, _) => Err(invalid(
                "store.ca",
                "https:// endpoints need the CA that signed the etcd servers' certificates",
            )),
            (true, _, Some(_), None) => Err(invalid(
                "store.key",
                "missing: a client certificate (`cert`) needs its private key",
            )),
            (true, _, None, Some(_)) => Err(invalid(
                "store.cert",
                "missing: a private key (`key`) needs its client certificate",
            )),
            _ => Ok(()),
        }
    }

    /// Checks that the TLS files can be read (what `vtep up` and `vtep check` need before
    /// anything changes). Fails naming the field of the first that cannot.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for (field, path) in [
            ("store.ca", &self.ca),
            ("store.cert", &self.cert),
            ("store.key", &self.key),
        ] {
            if let Some(path) = path {
                check_readable(field, path)?;
            }
        }
        Ok(())
    }
}

/// `http://HOST:PORT` or `https://HOST:PORT`, HOST a name or an address (IPv6 in brackets), no
/// path.
fn check_endpoint(field: &str, e: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| invalid(field, format!("`{e}` is not an etcd endpoint: {why}"));
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('@') {
        return Err(bad("give HOST:PORT only, without a path or user"));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address in brackets lacks its `]`"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address in the brackets"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("no :PORT after the address"))?;
            (addr, port)
        }
        None => rest
            .rsplit_once(':')
            .ok_or_else(|| bad("no :PORT (etcd's client port is usually 2379)"))?,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok {
        return Err(bad("the host is not a name or an address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("the port is not within 1..=65535")),
    }
}

/// A key prefix: `/` and then path segments of safe characters, no trailing `/`.
fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = prefix.starts_with('/')
        && prefix.len() <= 128
        && !prefix.ends_with('/')
        && !prefix.contains("//")
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "store.prefix",
            format!(
                "`{prefix}` is not a key prefix: `/` and then segments of letters, digits, \
                 `-`, `_` and `.`, no trailing `/` (at most 128 characters)"
            ),
        ))
    }
}

/// A host name to publish: what a hostname may hold.
fn check_host(host: &str) -> Result<(), ConfigError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "store.host",
            format!("`{host}` is not a host name (letters, digits, `.`, `-`, `_`)"),
        ))
    }
}

fn check_readable(field: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::File::open(path) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Ok(()),
        Ok(_) => Err(invalid(field, format!("{} is not a file", path.display()))),
        Err(e) => Err(invalid(
            field,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(endpoints: &[&str]) -> Store {
        Store {
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            prefix: default_prefix(),
            lease_ttl: default_lease_ttl(),
            host: None,
            ca: None,
            cert: None,
            key: None,
        }
    }

    fn field_of(s: &Store) -> String {
        match s.check() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn endpoints_are_urls_with_a_port() {
        for ok in [
            "http://127.0.0.1:2379",
            "https://etcd-1.example:2379/",
            "http://[2001:db8::1]:2379",
        ] {
            let mut s = store(&[ok]);
            if ok.starts_with("https") {
                s.ca = Some("/ca.pem".into());
            }
            assert!(s.check().is_ok(), "{ok} refused");
        }
        for bad in [
            "127.0.0.1:2379",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://h:2379/v3",
            "http://[2001:db8::1:2379",
            "ftp://h:1",
            "http://:2379",
        ] {
            assert_eq!(field_of(&store(&[bad])), "store.endpoints[0]", "{bad}");
        }
        assert_eq!(field_of(&store(&[])), "store.endpoints");
    }

    #[test]
    fn tls_settings_go_with_https_endpoints() {
        let mut s = store(&["http://h:2379", "https://g:2379"]);
        s.ca = Some("/ca".into());
        assert_eq!(field_of(&s), "store.endpoints[1]");
        let mut s = store(&["http://h:2379"]);
        s.cert = Some("/c".into());
        assert_eq!(field_of(&s), "store.cert");
        let mut s = store(&["https://h:2379"]);
        assert_eq!(field_of(&s), "store.ca");
        s.ca = Some("/ca".into());
        s.cert = Some("/c".into());
        assert_eq!(field_of(&s), "store.key");
        s.key = Some("/k".into());
        assert!(s.check().is_ok());
    }

    #[test]
    fn lease_ttl_prefix_and_host_are_bounded() {
        let mut s = store(&["http://h:2379"]);
        s.lease_ttl = 0;
        assert_eq!(field_of(&s), "store.lease_ttl");
        s.lease_ttl = 2;
        for bad in ["vtep", "/vtep/", "/a//b", "/a b", ""] {
            s.prefix = bad.into();
            assert_eq!(field_of(&s), "store.prefix", "{bad:?}");
        }
        s.prefix = "/dc1/vtep".into();
        s.host = Some("a/b".into());
        assert_eq!(field_of(&s), "store.host");
    }

    #[test]
    fn missing_tls_files_are_named() {
        let mut s = store(&["https://h:2379"]);
        s.ca = Some("/proc/self/status".into());
        s.cert = Some("/nonexistent/vtep-client.pem".into());
        s.key = Some("/proc/self/status".into());
        match s.check_files() {
            Err(ConfigError::Invalid { field, reason }) => {
                assert_eq!(field, "store.cert");
                assert!(reason.contains("/nonexistent/vtep-client.pem"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
