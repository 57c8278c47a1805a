//! A throw-away single-node etcd (v3 API) for the store tests, listening on 127.0.0.1 only, and
//! the TLS certificates to run it with client-certificate authentication.
//!
//! The tests read and write its keys through etcd's JSON gateway (`/v3/kv/...`) with curl: one
//! tool for plain and TLS endpoints alike (client certificates included), and nothing of the
//! product's own etcd client, which is what is under test.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::{cmd::run, free_port, server::ServerProcess};

/// How long etcd may take to answer after it was started.
const HEALTHY_LIMIT: Duration = Duration::from_secs(15);
/// How long a stopped etcd gets to exit before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// The longest one request to etcd may take: a test asking a stopped etcd fails fast.
const REQUEST_LIMIT: &str = "5";

/// PEM files for an etcd with TLS: a CA, a server certificate for 127.0.0.1 and a client
/// certificate it signed, and an unrelated CA that signed neither (a client trusting it must
/// refuse the server).
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub wrong_ca: PathBuf,
}

impl Certs {
    /// Generates the certificates (P-256 keys, valid for a day) with the openssl CLI into
    /// `dir`, which is created. Fails when openssl does.
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let p = |name: &str| dir.join(name);
        let certs = Self {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server-key.pem"),
            client_cert: p("client.pem"),
            client_key: p("client-key.pem"),
            wrong_ca: p("wrong-ca.pem"),
        };
        let ca_key = p("ca-key.pem");
        make_ca(&certs.ca, &ca_key, "vtep test CA")?;
        make_ca(&certs.wrong_ca, &p("wrong-ca-key.pem"), "vtep unrelated CA")?;
        // The server certificate is also etcd's client certificate when its gateway calls its
        // own gRPC server, hence clientAuth too. Go (etcd) and rustls (vtep) check the
        // subjectAltName, not the common name.
        let server_ext = p("server.ext");
        std::fs::write(
            &server_ext,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1\n",
        )?;
        make_signed(
            &certs.server_cert,
            &certs.server_key,
            "127.0.0.1",
            &server_ext,
            &certs.ca,
            &ca_key,
        )?;
        let client_ext = p("client.ext");
        std::fs::write(
            &client_ext,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )?;
        make_signed(
            &certs.client_cert,
            &certs.client_key,
            "vtep",
            &client_ext,
            &certs.ca,
            &ca_key,
        )?;
        Ok(certs)
    }
}

/// An EC P-256 key as PKCS#8 PEM (what openssl 3 writes), the form rustls and Go both read.
fn ec_key_args() -> [&'static str; 4] {
    ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
}

/// A self-signed CA certificate `cert` with its key `key`.
fn make_ca(cert: &Path, key: &Path, cn: &str) -> Result<()> {
    let mut args = vec!["req", "-x509", "-nodes", "-days", "1"];
    args.extend(ec_key_args());
    args.extend(["-keyout", path_str(key)?, "-out", path_str(cert)?]);
    let subj = format!("/CN={cn}");
    args.extend([
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run("openssl", &args).map(drop)
}

/// A certificate `cert` (key `key`) for `cn` with the extensions in file `ext`, signed by CA
/// `ca` (key `ca_key`).
fn make_signed(
    cert: &Path,
    key: &Path,
    cn: &str,
    ext: &Path,
    ca: &Path,
    ca_key: &Path,
) -> Result<()> {
    let csr = cert.with_extension("csr");
    let subj = format!("/CN={cn}");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(ec_key_args());
    args.extend([
        "-keyout",
        path_str(key)?,
        "-out",
        path_str(&csr)?,
        "-subj",
        &subj,
    ]);
    run("openssl", &args)?;
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            path_str(&csr)?,
            "-CA",
            path_str(ca)?,
            "-CAkey",
            path_str(ca_key)?,
            "-CAcreateserial",
            "-extfile",
            path_str(ext)?,
            "-out",
            path_str(cert)?,
        ],
    )
    .map(drop)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

/// A single-node etcd on 127.0.0.1 (client and peer ports free when it started), its data and
/// log in a directory of its own. Cheap to clone: clones are handles of one process, killed
/// when the last is dropped (a [`crate::Lab`] that started it keeps one and kills it when it
/// is removed, after its vteps have stopped).
#[derive(Clone)]
pub struct Etcd(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    tls: Option<Certs>,
    /// More arguments of etcd (the start's).
    extra: Vec<String>,
    /// None while it is stopped.
    child: ServerProcess,
}

impl Etcd {
    /// Starts etcd with plain HTTP, data and log in `dir`, and waits until it answers. Fails,
    /// with its log, when it does not within 15 s.
    pub fn start(dir: &Path) -> Result<Self> {
        Self::start_with(dir, None, &[])
    }

    /// As [`Etcd::start`], with TLS: the server certificate of `certs`, and only clients with
    /// a certificate of `certs.ca` admitted (`--client-cert-auth`).
    pub fn start_tls(dir: &Path, certs: &Certs) -> Result<Self> {
        Self::start_with(dir, Some(certs), &[])
    }

    /// As [`Etcd::start`] or [`Etcd::start_tls`], with `extra` arguments of etcd (e.g.
    /// `--grpc-keepalive-interval=1s`).
    pub fn start_with(dir: &Path, tls: Option<&Certs>, extra: &[&str]) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // The ports were free a moment ago; another process may take one before etcd binds
        // it. Then etcd exits at once, and new ports are tried.
        let mut last = None;
        for _ in 0..3 {
            let etcd = Self(Arc::new(Inner {
                dir: dir.to_path_buf(),
                client_port: free_port()?,
                peer_port: free_port()?,
                tls: tls.cloned(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
                child: ServerProcess::default(),
            }));
            match etcd.spawn().and_then(|()| etcd.wait_healthy()) {
                Ok(()) => return Ok(etcd),
                Err(e) if etcd.log().contains("address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    /// The client URL, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.0.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.0.client_port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.0.client_port
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.child.pid()
    }

    /// Everything etcd logged so far (all its starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.0.dir.join("etcd.log")
    }

    /// Starts the process, its output appended to the log.
    fn spawn(&self) -> Result<()> {
        if self.0.child.is_set() {
            bail!("etcd is running already");
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("opening {}", self.log_path().display()))?;
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.0.peer_port);
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", "t", "--data-dir"])
            .arg(self.0.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(["--logger", "zap", "--log-outputs", "stderr"]);
        if let Some(certs) = &self.0.tls {
            cmd.arg("--cert-file")
                .arg(&certs.server_cert)
                .arg("--key-file")
                .arg(&certs.server_key)
                .arg("--trusted-ca-file")
                .arg(&certs.ca)
                .arg("--client-cert-auth");
        }
        cmd.args(&self.0.extra);
        let child = cmd
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting etcd")?;
        self.0.child.set("etcd", child)
    }

    /// Waits until etcd answers a read. Fails, with its log, when it exits first or does not
    /// answer within 15 s.
    fn wait_healthy(&self) -> Result<()> {
        self.0.child.wait_answering(
            "etcd",
            HEALTHY_LIMIT,
            Duration::from_millis(50),
            || self.revision().is_ok(),
            || self.log(),
        )
    }

    /// Stops etcd with SIGTERM (killed after 10 s) and waits for it; its data stays for
    /// [`Etcd::restart`]. Nothing happens when it is stopped already.
    pub fn stop(&self) {
        self.0.child.stop(STOP_LIMIT);
    }

    /// Kills etcd with SIGKILL and waits for it (data stays).
    pub fn kill(&self) {
        self.0.child.kill();
    }

    /// Starts a stopped etcd again on the same ports with the same data, and waits until it
    /// answers. Fails, with its log, when it does not.
    pub fn restart(&self) -> Result<()> {
        self.spawn()?;
        self.wait_healthy()
    }

    /// The keys under `prefix` with their values, sorted by key. Fails when etcd does not
    /// answer.
    pub fn keys(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let reply = self.request(
            "kv/range",
            json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))}),
        )?;
        let mut kvs = Vec::new();
        for kv in reply["kvs"].as_array().into_iter().flatten() {
            let field = |name: &str| -> Result<String> {
                let text = kv[name].as_str().unwrap_or_default();
                Ok(String::from_utf8_lossy(&unb64(text)?).into_owned())
            };
            kvs.push((field("key")?, field("value")?));
        }
        kvs.sort();
        Ok(kvs)
    }

    /// Writes `value` under `key` (no lease: it stays until deleted); returns the revision.
    /// Fails when etcd does not answer.
    pub fn put(&self, key: &str, value: &str) -> Result<i64> {
        let reply = self.request(
            "kv/put",
            json!({"key": b64(key.as_bytes()), "value": b64(value.as_bytes())}),
        )?;
        header_revision(&reply)
    }

    /// Writes every `(key, value)` of `kvs` in turn (each a revision of its own), through one
    /// curl process and connection: hundreds of changes in a moment. Returns the last
    /// revision. Fails when etcd refuses one.
    pub fn put_many(&self, kvs: &[(String, String)]) -> Result<i64> {
        let dir = self.0.dir.join(format!("puts{}", crate::next_id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let url = format!("{}/v3/kv/put", self.endpoint());
        let tls = self.tls_args()?;
        let mut args: Vec<String> = Vec::new();
        for (i, (key, value)) in kvs.iter().enumerate() {
            // In a file: a value can be longer than one command-line argument may be.
            let body = dir.join(format!("{i}.json"));
            let json = json!({"key": b64(key.as_bytes()), "value": b64(value.as_bytes())});
            std::fs::write(&body, json.to_string())?;
            if i > 0 {
                args.push("--next".into());
            }
            args.extend(["-sS", "--max-time", "30", "-X", "POST"].map(String::from));
            args.extend(tls.iter().cloned());
            args.extend([url.clone(), "-d".into(), format!("@{}", path_str(&body)?)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run("curl", &args);
        let _ = std::fs::remove_dir_all(&dir);
        let out = out?;
        let mut last = None;
        for reply in serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>() {
            let reply = reply.context("etcd's replies to the puts")?;
            if let Some(error) = reply.get("error") {
                bail!("etcd refused a put: {error}");
            }
            last = Some(header_revision(&reply)?);
        }
        last.context("no reply to the puts")
    }

    /// Writes every `(key, value)` of `kvs` in one transaction (one revision; etcd takes 128
    /// operations per transaction by default). Returns the revision. Fails when etcd refuses.
    pub fn put_txn(&self, kvs: &[(String, String)]) -> Result<i64> {
        let ops: Vec<Value> = kvs
            .iter()
            .map(|(key, value)| {
                json!({"request_put": {"key": b64(key.as_bytes()), "value": b64(value.as_bytes())}})
            })
            .collect();
        header_revision(&self.request("kv/txn", json!({"success": ops}))?)
    }

    /// The value of metric `name` (a Prometheus gauge or counter without labels) on etcd's
    /// `/metrics`. Fails when etcd does not answer or has no such metric.
    pub fn metric(&self, name: &str) -> Result<f64> {
        let url = format!("{}/metrics", self.endpoint());
        let mut args = vec!["-sS".to_string(), "--max-time".into(), REQUEST_LIMIT.into()];
        args.extend(self.tls_args()?);
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run("curl", &args)?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .with_context(|| format!("no metric {name} on {}/metrics", self.endpoint()))
    }

    /// curl's arguments for this etcd's TLS: its CA, and the client certificate.
    fn tls_args(&self) -> Result<Vec<String>> {
        let Some(certs) = &self.0.tls else {
            return Ok(Vec::new());
        };
        Ok(vec![
            "--cacert".into(),
            path_str(&certs.ca)?.into(),
            "--cert".into(),
            path_str(&certs.client_cert)?.into(),
            "--key".into(),
            path_str(&certs.client_key)?.into(),
        ])
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1). Fails when etcd does not
    /// answer.
    pub fn del(&self, key: &str) -> Result<u64> {
        self.deleted(json!({"key": b64(key.as_bytes())}))
    }

    /// Deletes the keys from `key` up to, not including, `end`; returns how many were
    /// deleted. Fails when etcd does not answer.
    pub fn del_range(&self, key: &str, end: &str) -> Result<u64> {
        self.deleted(json!({"key": b64(key.as_bytes()), "range_end": b64(end.as_bytes())}))
    }

    /// The count of keys a `kv/deleterange` of `body` deleted.
    fn deleted(&self, body: Value) -> Result<u64> {
        let reply = self.request("kv/deleterange", body)?;
        Ok(reply["deleted"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// The store's current revision. Fails when etcd does not answer.
    pub fn revision(&self) -> Result<i64> {
        let reply = self.request("kv/range", json!({"key": b64(b"\0")}))?;
        header_revision(&reply)
    }

    /// Compacts the history up to revision `rev` (physically: done when this returns): a
    /// watch resuming from an older revision is told it was compacted. Fails when etcd
    /// refuses.
    pub fn compact(&self, rev: i64) -> Result<()> {
        self.request(
            "kv/compaction",
            json!({"revision": rev.to_string(), "physical": true}),
        )
        .map(drop)
    }

    /// POSTs `body` to the gateway's `/v3/PATH` and returns the JSON reply. Fails when curl
    /// does, or etcd answers with an error.
    fn request(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/v3/{path}", self.endpoint());
        let body = body.to_string();
        let tls = self.tls_args()?;
        let mut args = vec!["-sS", "--max-time", REQUEST_LIMIT, "-X", "POST"];
        args.extend(tls.iter().map(String::as_str));
        args.extend([url.as_str(), "-d", &body]);
        let out = run("curl", &args)?;
        let reply: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "etcd's reply to {path}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        if let Some(error) = reply.get("error") {
            bail!("etcd refused {path} {body}: {error}");
        }
        Ok(reply)
    }
}

/// The revision in a reply's header (a string: the gateway writes 64-bit numbers so).
fn header_revision(reply: &Value) -> Result<i64> {
    reply["header"]["revision"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no revision in {reply}"))
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte
/// incremented (bytes 0xff dropped first), as etcdctl's `--prefix` does; `\0` (every key)
/// for an empty or all-0xff prefix.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding: how the gateway carries keys and values (also the store
/// bench's writes through it).
pub fn b64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of standard base64 `text`. Fails on a character outside the alphabet.
fn unb64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = B64
            .iter()
            .position(|x| *x == c)
            .with_context(|| format!("`{}` in base64 {text}", c as char))?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_known_text() {
        assert_eq!(b64(b"/t/a"), "L3QvYQ==");
        assert_eq!(b64(b"xyz"), "eHl6");
        assert_eq!(b64(b"ab"), "YWI=");
        assert_eq!(b64(b""), "");
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            assert_eq!(unb64(&b64(&data)).unwrap(), data);
        }
        assert!(unb64("a*b").is_err());
    }

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end("/t/"), b"/t0");
        assert_eq!(prefix_end(""), b"\0");
    }
}
