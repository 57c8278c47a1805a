//! The store over TLS with client certificates: hosts with the right CA and a client
//! certificate program each other; a host that does not trust etcd's certificate, or has no
//! client certificate, still starts but says the store is unreachable, and why.

use std::time::Duration;

use vtep_tests::{
    lab::{Certs, Lab, ping},
    output::text,
};

use crate::support::{
    A1, B1, C1, VTEPS, start_hosts, store_config, store_rows, store_section, wait_until,
};

/// `[store]` lines for TLS: CA `ca`, and the client certificate of `certs` unless `client`
/// is false.
fn tls_lines(ca: &std::path::Path, certs: &Certs, client: bool) -> String {
    let mut s = format!("ca = \"{}\"\n", ca.display());
    if client {
        s += &format!(
            "cert = \"{}\"\nkey = \"{}\"\n",
            certs.client_cert.display(),
            certs.client_key.display()
        );
    }
    s
}

/// Two hosts reach etcd over TLS (`https://` endpoint, the CA that signed etcd's certificate,
/// a client certificate etcd requires) and their workloads reach each other from what they
/// published.
#[test]
fn hosts_with_client_certificates_program_each_other_over_tls() {
    let lab = Lab::new();
    let certs = lab.certs();
    let etcd = lab.etcd_tls(&certs);
    assert!(
        etcd.endpoint().starts_with("https://"),
        "{}",
        etcd.endpoint()
    );
    let tls = tls_lines(&certs.ca, &certs, true);
    let h = start_hosts(lab, etcd, &[&[A1], &[B1]], &[&tls, &tls]);
    assert!(
        ping(&h.wl_ns(A1), B1.ip(), 2),
        "a1 cannot reach b1 over a store reached with TLS"
    );
    assert_eq!(
        h.store_status(0)["state"],
        "connected",
        "{}",
        h.store_status(0)
    );
}

/// A host whose `ca` is not the one that signed etcd's certificate, and one without a client
/// certificate (etcd requires one), both start (the store is not needed to forward) and
/// `vtep stats` says the store is unreachable with an error that names the certificate
/// problem; neither gets into the store, so the good host never hears of their workloads.
#[test]
fn wrong_ca_or_missing_client_certificate_is_reported_as_such() {
    let mut lab = Lab::new();
    let certs = lab.certs();
    let etcd = lab.etcd_tls(&certs);
    let [a, b, c] = lab.three_hosts();
    let prefix = format!("/{}", lab.name(""));
    let hosts = [
        ("a", &a, A1, tls_lines(&certs.ca, &certs, true)),
        ("b", &b, B1, tls_lines(&certs.wrong_ca, &certs, true)),
        ("c", &c, C1, tls_lines(&certs.ca, &certs, false)),
    ];
    let mut started = Vec::new();
    for (host, ns, wl, tls) in &hosts {
        let name = lab.name(&format!("v{host}"));
        let store = store_section(&etcd.endpoint(), &prefix, host, tls);
        let id = lab.start_vtep(ns, &store_config(&lab, &name, &store, &[*wl]));
        started.push((id, name));
    }
    let (id_a, name_a) = started[0].clone();
    for (what, (id, name)) in [
        ("a CA that did not sign etcd's certificate", &started[1]),
        ("no client certificate", &started[2]),
    ] {
        let unreachable = wait_until(Duration::from_secs(10), || {
            lab.vtep(*id).stats(name)["store"]["state"] == "unreachable"
        });
        let store = lab.vtep(*id).stats(name)["store"].clone();
        assert!(
            unreachable.is_some(),
            "with {what}, `vtep stats` does not say the store is unreachable: {store}\nlog: {}",
            lab.vtep(*id).log()
        );
        let said = store.to_string().to_lowercase();
        assert!(
            said.contains("certificate"),
            "with {what}, the store's error in `vtep stats` does not name the certificate \
             problem: {store}"
        );
        let out = lab.vtep(*id).cli(&["stats", "-n", name]);
        let stats = text(&out.stdout);
        assert!(
            stats
                .lines()
                .any(|l| l.contains("store") && l.contains("unreachable")),
            "with {what}, `vtep stats` has no store line saying unreachable:\n{stats}"
        );
    }
    let keys = etcd.keys(&prefix);
    let of_a = |k: &str| k.ends_with(VTEPS[0]) || k.contains(&format!("{}/", VTEPS[0]));
    assert!(
        !keys.is_empty() && keys.iter().all(|(k, _)| of_a(k)),
        "host a, and only host a, must be in the store: {keys:#?}"
    );
    let rows = lab.vtep(id_a).fdb(&name_a);
    assert!(
        store_rows(&rows).is_empty(),
        "host a got entries from hosts that could not reach the store: {rows:#?}"
    );
}
