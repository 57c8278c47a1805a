//! The store over TLS with client certificates: hosts with the right CA and a client
//! certificate program each other; a host that does not trust etcd's certificate, or has no
//! client certificate, still starts but says the store is unreachable, and why.

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use vtep_tests::{
    lab::{Certs, Lab, ping},
    output::text,
};

use crate::support::{A1, B1, start_hosts, store_config, store_section};

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

/// Starts host a alone on a TLS etcd with `tls` lines in its `[store]` that etcd or vtep
/// must refuse, and watches `vtep stats` over its first attempts (the backoff starts at
/// 0.5 s: four attempts or more in 5 s). Asserts that vtep came up anyway, that every
/// attempt shows the store unreachable with an error naming the certificate problem (an
/// operator reads one of them, whichever is there when they look), in `vtep stats` text as
/// well, and that nothing of the host got into the store.
#[track_caller]
fn assert_refused_for_its_certificate(what: &str, tls: impl Fn(&Certs) -> String) {
    let mut lab = Lab::new();
    let certs = lab.certs();
    let etcd = lab.etcd_tls(&certs);
    let (a, _b) = lab.two_hosts();
    let prefix = format!("/{}", lab.name(""));
    let name = lab.name("va");
    let store = store_section(&etcd.endpoint(), &prefix, "a", &tls(&certs));
    let id = lab.start_vtep(&a, &store_config(&lab, &name, &store, &[A1]));
    // (failed attempts, error) as `vtep stats -j` showed them, each once.
    let mut seen: Vec<(u64, String)> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let store = lab.vtep(id).stats(&name)["store"].clone();
        if store["state"] == "unreachable" {
            let attempt = (
                store["failures"].as_u64().unwrap_or_default(),
                store["error"].as_str().unwrap_or_default().to_string(),
            );
            if !seen.contains(&attempt) {
                seen.push(attempt);
            }
        }
        sleep(Duration::from_millis(100));
    }
    assert!(
        seen.len() >= 2,
        "with {what}, `vtep stats` did not show the store unreachable over several attempts: \
         {seen:?}\nlog: {}",
        lab.vtep(id).log()
    );
    let vague: Vec<_> = seen
        .iter()
        .filter(|(_, e)| !e.to_lowercase().contains("certificate"))
        .collect();
    assert!(
        vague.is_empty(),
        "with {what}, `vtep stats` shows errors that do not name the certificate problem: \
         {vague:?} (all attempts: {seen:?})"
    );
    let out = lab.vtep(id).cli(&["stats", "-n", &name]);
    let stats = text(&out.stdout);
    assert!(
        stats
            .lines()
            .map(str::to_lowercase)
            .any(|l| l.contains("store") && l.contains("unreachable") && l.contains("certificate")),
        "with {what}, `vtep stats` has no store line saying unreachable, and why:\n{stats}"
    );
    let keys = etcd.keys(&prefix);
    assert!(
        keys.is_empty(),
        "with {what}, the host got into the store: {keys:#?}"
    );
}

/// A host whose `ca` did not sign etcd's certificate starts (the store is not needed to
/// forward), and `vtep stats` says the store is unreachable because of the certificate.
#[test]
fn wrong_ca_is_reported_as_a_certificate_problem() {
    assert_refused_for_its_certificate("a CA that did not sign etcd's certificate", |c| {
        tls_lines(&c.wrong_ca, c, true)
    });
}

/// A host without a client certificate, on an etcd that requires one, starts, and `vtep
/// stats` says the store is unreachable because of the certificate.
#[test]
fn missing_client_certificate_is_reported_as_a_certificate_problem() {
    assert_refused_for_its_certificate("no client certificate", |c| tls_lines(&c.ca, c, false));
}
