//! `[metrics]`: where `vtep up` serves its counters to Prometheus (`GET /metrics`; see
//! docs/metrics.md). Without the section nothing listens. That the address can be bound is
//! checked with the system, by binding it ([`crate::metrics::bind`]).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::config::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// `ADDRESS:PORT` to listen on (`[ADDRESS]:PORT` for IPv6), in the network namespace
    /// `vtep` was started from, like the store's connections. Read it through
    /// [`Metrics::addr`].
    pub listen: String,
}

impl Metrics {
    /// The address to listen on. Only for a validated config.
    pub fn addr(&self) -> SocketAddr {
        parse_listen(&self.listen).expect("validated")
    }

    /// Checks what can be checked without the system. Fails naming `metrics.listen`.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        parse_listen(&self.listen)
            .map(drop)
            .map_err(|why| invalid("metrics.listen", why))
    }
}

/// `ADDRESS:PORT` with a port Prometheus can be told of: 0 (a port the kernel picks) is
/// refused, since no scrape job could name it.
fn parse_listen(listen: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        format!(
            "`{listen}` is not ADDRESS:PORT (`127.0.0.1:9470`, `[::1]:9470`; a host name is not \
             accepted)"
        )
    })?;
    if addr.port() == 0 {
        return Err(format!(
            "`{listen}` has port 0; give the port Prometheus scrapes"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(listen: &str) -> Result<(), ConfigError> {
        Metrics {
            listen: listen.into(),
        }
        .check()
    }

    #[test]
    fn listen_is_an_address_and_a_port() {
        for ok in [
            "127.0.0.1:9470",
            "0.0.0.0:1",
            "[::1]:9470",
            "[2001:db8::1]:65535",
        ] {
            assert!(check(ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "127.0.0.1",
            "localhost:9470",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "::1:9470",
            "http://127.0.0.1:9470",
            "127.0.0.1:9470/metrics",
            "",
        ] {
            match check(bad) {
                Err(ConfigError::Invalid { field, .. }) => {
                    assert_eq!(field, "metrics.listen", "{bad}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
