//! What the metrics tests share: configs with a `[metrics]` section, hosts started with them,
//! and scraping `/metrics` over plain TCP (nothing of the product's own HTTP code).

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, free_port, ping_with},
    output::text,
};

pub const VNI: u32 = 100;
pub const ADDR_A: &str = "198.18.0.1";
pub const ADDR_B: &str = "198.18.0.2";
pub const A1_IP: &str = "192.0.2.11";
pub const B1_IP: &str = "192.0.2.21";
pub const MAC_A1: &str = "02:00:00:00:0a:01";
pub const MAC_B1: &str = "02:00:00:00:0b:01";

/// A `[metrics]` section listening on 127.0.0.1:`port`.
pub fn metrics_section(port: u16) -> String {
    format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n")
}

/// The config of instance `name` with `top` (a `[metrics]` section, or nothing) and VNI 100
/// flooding to `remote`, with workload `wl` at `addr`/24 and `mac`.
pub fn config(name: &str, top: &str, remote: &str, wl: &str, addr: &str, mac: &str) -> String {
    header(name, top, "") + &vni(VNI, 4789, &[remote]) + &workload(wl, &format!("{addr}/24"), mac)
}

/// A running instance with metrics: its number in the lab, its name, its metrics port.
pub struct Host {
    pub id: usize,
    pub name: String,
    pub port: u16,
}

/// Starts `vtep up` in `ns` with config `make(port)` for a port free a moment ago.
pub fn start_with_metrics(
    lab: &mut Lab,
    ns: &str,
    name: &str,
    make: impl Fn(u16) -> String,
) -> Host {
    let port = free_port();
    let id = lab.start_vtep(ns, &make(port));
    Host {
        id,
        name: name.to_string(),
        port,
    }
}

/// Hosts a and b with workloads a1 and b1 on VNI 100, flooding to each other, each vtep
/// serving metrics.
pub struct Pair {
    pub lab: Lab,
    pub a1: String,
    pub a: Host,
    pub b: Host,
}

pub fn pair() -> Pair {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let ha = start_with_metrics(&mut lab, &a, &name_a, |p| {
        config(&name_a, &metrics_section(p), ADDR_B, &a1, A1_IP, MAC_A1)
    });
    let hb = start_with_metrics(&mut lab, &b, &name_b, |p| {
        config(&name_b, &metrics_section(p), ADDR_A, &b1, B1_IP, MAC_B1)
    });
    Pair {
        lab,
        a1,
        a: ha,
        b: hb,
    }
}

/// True once one echo from `ns` to `addr` is answered, in at most 20 tries of a second each.
pub fn reachable(ns: &str, addr: &str) -> bool {
    (0..20).any(|_| ping_with(ns, addr, 1, "0.2", 1))
}

/// An HTTP answer: status line, headers (lower-case names), body.
pub struct Answer {
    pub status: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Sends `request` (a whole HTTP/1.1 request) to 127.0.0.1:`port` and reads the answer to
/// the end (the server closes the connection). Panics when nothing answers within 10 s.
#[track_caller]
pub fn exchange(port: u16, request: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading from 127.0.0.1:{port}: {e}"));
    let raw = text(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of the head in {raw:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `GET path` of 127.0.0.1:`port`.
#[track_caller]
pub fn get(port: u16, path: &str) -> Answer {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: vtep-tests\r\n\r\n"),
    )
}

/// What one scrape of `/metrics` gave: the text, and each sample by its series
/// ([`series`]).
pub struct Scrape {
    pub text: String,
    pub samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// The value of `name` with `labels`; panics, showing the text, when it is missing.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series(name, labels);
        *self
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("{key} missing from /metrics:\n{}", self.text))
    }

    /// How much `name` with `labels` grew from `before` to this scrape.
    #[track_caller]
    pub fn growth(&self, before: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels) - before.value(name, labels)
    }
}

/// Scrapes `/metrics` of 127.0.0.1:`port`; panics unless it answers 200 in the Prometheus
/// text format.
#[track_caller]
pub fn scrape(port: u16) -> Scrape {
    let answer = get(port, "/metrics");
    assert_eq!(answer.status, "HTTP/1.1 200 OK", "{}", answer.body);
    let content_type = answer
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "Content-Type: {content_type}"
    );
    let samples = answer
        .body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (s, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample {l:?}"));
            let value = v.parse().unwrap_or_else(|_| panic!("value of {l:?}"));
            (canonical(s), value)
        })
        .collect();
    Scrape {
        text: answer.body,
        samples,
    }
}

/// A series as `name{k="v",...}` with the labels sorted by name: how [`Scrape`] keys samples.
pub fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// Sample `s` (`name{k="v",...}` as printed) in the form of [`series`]. Label values here
/// hold no `",` of their own.
fn canonical(s: &str) -> String {
    let Some((name, rest)) = s.split_once('{') else {
        return s.to_string();
    };
    let inner = rest.strip_suffix('}').unwrap_or(rest);
    let mut labels: Vec<String> = inner
        .split("\",")
        .map(|l| format!("{}\"", l.trim_end_matches('"')))
        .collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}
