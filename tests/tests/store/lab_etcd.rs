//! The tests' own etcd (`vtep_lab::Etcd`), checked without vtep: the store tests judge vtep by
//! what this tool reads and writes, so it must read and write what etcd holds, survive the
//! restarts the outage test makes, and admit over TLS exactly the clients of its CA.

use vtep_tests::{
    lab::{Lab, run_limited},
    output::text,
};

/// Keys written are read back (under their prefix only), deleted ones go, data and ports
/// survive a stop and restart, and a compaction takes effect.
#[test]
fn etcd_reads_writes_and_keeps_its_data_across_a_restart() {
    let lab = Lab::new();
    let etcd = lab.etcd();
    let p = format!("/{}", lab.name(""));
    let r1 = etcd.put(&format!("{p}/a"), "{\"x\": 1}");
    let r2 = etcd.put(&format!("{p}/b"), "two");
    etcd.put(&format!("{p}x/outside"), "not under the prefix");
    assert!(r2 > r1, "revisions {r1} then {r2}");
    assert_eq!(
        etcd.keys(&format!("{p}/")),
        vec![
            (format!("{p}/a"), "{\"x\": 1}".to_string()),
            (format!("{p}/b"), "two".to_string())
        ]
    );
    assert_eq!(etcd.del(&format!("{p}/a")), 1);
    assert_eq!(etcd.del(&format!("{p}/a")), 0);
    let endpoint = etcd.endpoint();
    etcd.stop();
    etcd.restart();
    assert_eq!(etcd.endpoint(), endpoint, "the restart moved etcd");
    assert_eq!(
        etcd.keys(&format!("{p}/")),
        vec![(format!("{p}/b"), "two".to_string())],
        "the data did not survive the restart"
    );
    let rev = etcd.revision();
    etcd.compact(rev);
    assert!(
        etcd.log().contains("compact"),
        "etcd did not log the compaction"
    );
}

/// With TLS, a client with the CA and a client certificate is served; one that trusts
/// another CA, and one without a client certificate, are refused.
#[test]
fn tls_etcd_admits_only_clients_with_a_certificate_of_its_ca() {
    let lab = Lab::new();
    let certs = lab.certs();
    let etcd = lab.etcd_tls(&certs);
    let p = format!("/{}", lab.name(""));
    etcd.put(&format!("{p}/k"), "v");
    assert_eq!(etcd.keys(&p), vec![(format!("{p}/k"), "v".to_string())]);
    let url = format!("{}/v3/kv/range", etcd.endpoint());
    let curl = |ca: &std::path::Path, client: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "5", "--cacert"]).arg(ca);
        if client {
            cmd.arg("--cert")
                .arg(&certs.client_cert)
                .arg("--key")
                .arg(&certs.client_key);
        }
        cmd.args([url.as_str(), "-d", "{\"key\": \"AA==\"}"]);
        run_limited(cmd, std::time::Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"))
    };
    let ok = curl(&certs.ca, true);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let wrong_ca = curl(&certs.wrong_ca, true);
    assert!(
        !wrong_ca.status.success(),
        "a client trusting another CA was served: {}",
        text(&wrong_ca.stdout)
    );
    let no_cert = curl(&certs.ca, false);
    assert!(
        !no_cert.status.success(),
        "a client without a certificate was served: {}",
        text(&no_cert.stdout)
    );
}
