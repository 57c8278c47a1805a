//! A wrong `[store]` section is a config error: `vtep check` and `vtep up` refuse it naming the
//! field, before anything changes (no namespace, interface, state file or pin, no key in etcd).

use std::{path::Path, time::Duration};

use vtep_tests::{
    lab::{Lab, ip, vtep_run},
    output::text,
};

use crate::support::{A1, SETTLE, VTEPS, host_key, store_config, store_section, wait_until};

/// What `vtep up` could change on host `ns`, and where an instance `name` keeps its state.
fn snapshot(lab: &Lab, ns: &str, name: &str) -> Vec<(&'static str, String)> {
    let cmd = |args: &[&str]| text(&ip(args).stdout);
    let exists = |p: String| format!("{p}: {}", Path::new(&p).exists());
    vec![
        ("links", cmd(&["-n", ns, "-o", "link"])),
        ("addresses", cmd(&["-n", ns, "-4", "-o", "addr"])),
        ("lab namespaces", format!("{:?}", lab.namespaces())),
        ("pins", exists(format!("/sys/fs/bpf/vtep/{name}"))),
        ("state", exists(format!("/run/vtep/{name}.json"))),
        ("socket", exists(format!("/run/vtep/{name}.sock"))),
    ]
}

#[test]
fn store_mistakes_are_refused_naming_the_field_and_change_nothing() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let etcd = lab.etcd();
    let certs = lab.certs();
    let prefix = format!("/{}", lab.name(""));
    let name = lab.name("va");
    let ep = etcd.endpoint();
    let https = ep.replace("http://", "https://");
    let cfg = |endpoint: &str, extra: &str| {
        store_config(
            &lab,
            &name,
            &store_section(endpoint, &prefix, "a", extra),
            &[A1],
        )
    };
    let good = cfg(&ep, "");
    let ca = format!("ca = \"{}\"\n", certs.ca.display());
    let key = format!("key = \"{}\"\n", certs.client_key.display());
    let missing = format!("/run/{}-missing/client.pem", lab.name(""));
    let endpoints = format!("endpoints = [\"{ep}\"]");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "malformed endpoint",
            cfg("http://127.0.0.1:notaport", ""),
            vec!["store.endpoints[0]", "notaport"],
        ),
        (
            "lease_ttl 0",
            good.replace("lease_ttl = 2", "lease_ttl = 0"),
            vec!["store.lease_ttl"],
        ),
        (
            "lease_ttl above an hour",
            good.replace("lease_ttl = 2", "lease_ttl = 3601"),
            vec!["store.lease_ttl", "3601"],
        ),
        (
            "missing client certificate file",
            cfg(&https, &format!("{ca}cert = \"{missing}\"\n{key}")),
            vec!["store.cert", &missing],
        ),
        ("https without a CA", cfg(&https, ""), vec!["store.ca"]),
        (
            "a CA for a plain http endpoint",
            cfg(&ep, &ca),
            vec!["store.ca"],
        ),
        (
            "http and https endpoints mixed",
            good.replace(&endpoints, &format!("endpoints = [\"{ep}\", \"{https}\"]")),
            vec!["store.endpoints"],
        ),
    ];
    let mut problems = Vec::new();
    for (what, cfg, want) in &cases {
        if cfg == &good {
            problems.push(format!(
                "{what}: the mistake was not written into the config"
            ));
            continue;
        }
        let path = lab.file(&format!("{}.toml", what.replace(' ', "-")), cfg);
        let path = path.to_str().expect("UTF-8 path");
        let before = snapshot(&lab, &a, &name);
        for args in [
            vec!["check", "-c", path],
            vec!["--netns", &a, "up", "-c", path],
        ] {
            let command = args[args.len() - 3];
            let out = match vtep_run(&args, Duration::from_secs(15)) {
                Ok(out) => out,
                Err(e) => {
                    problems.push(format!("{what}: `vtep {command}` took it: {e}"));
                    continue;
                }
            };
            let stderr = text(&out.stderr);
            if out.status.success() {
                problems.push(format!("{what}: `vtep {command}` accepted it: {stderr}"));
            }
            for w in want {
                if !stderr.contains(w) {
                    problems.push(format!(
                        "{what}: `vtep {command}` error does not name `{w}`: {stderr}"
                    ));
                }
            }
        }
        let after = snapshot(&lab, &a, &name);
        for ((part, b), (_, a)) in before.iter().zip(&after) {
            if a != b {
                problems.push(format!("{what}: {part} changed:\n{b}\n->\n{a}"));
            }
        }
        let keys = etcd.keys(&prefix);
        if !keys.is_empty() {
            problems.push(format!("{what}: keys written to etcd: {keys:#?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));

    // The good config passes and starts (publishing itself), so each refusal was its
    // mistake's.
    let path = lab.file("good.toml", &good);
    let out = vtep_run(
        &["check", "-c", path.to_str().unwrap()],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "vtep check refused the good config: {}",
        text(&out.stderr)
    );
    let id = lab.start_vtep(&a, &good);
    let key = host_key(&prefix, VTEPS[0]);
    assert!(
        wait_until(SETTLE, || etcd.keys(&prefix).iter().any(|(k, _)| *k == key)).is_some(),
        "the good config never published {key}: {:#?}",
        etcd.keys(&prefix)
    );
    let status = lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success(), "good config: vtep exited {status}");
}
