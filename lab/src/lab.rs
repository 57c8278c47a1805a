//! A set of simulated hosts under one name prefix, removed together.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::Signal;

use crate::{
    capture::Capture,
    cmd::{ip, ip_in, sysctl},
    etcd::{Certs, Etcd},
    lock,
    netns::{add_netns, delete_netns, list_netns, no_ipv6},
    prometheus::Prometheus,
    vtep::{STOP_LIMIT, Vtep},
};

/// The underlay addresses (CIDR) of hosts a, b and c: IPv4, and IPv6 (documentation prefix).
const UNDERLAY_V4: [&str; 3] = ["198.18.0.1/24", "198.18.0.2/24", "198.18.0.3/24"];
const UNDERLAY_V6: [&str; 3] = ["2001:db8::1/64", "2001:db8::2/64", "2001:db8::3/64"];

/// How long `vtep up` may take to say it is up.
const UP_LIMIT: Duration = Duration::from_secs(30);
/// Where vtep pins an instance's maps (a directory per instance) and keeps its state files.
const PIN_ROOT: &str = "/sys/fs/bpf/vtep";
const STATE_DIR: &str = "/run/vtep";

/// Simulated hosts: namespaces, the veths between them and the `vtep` processes on them, all
/// named with one prefix and removed when the lab is dropped or [`Lab::remove`]d.
pub struct Lab {
    prefix: String,
    dir: PathBuf,
    vtep_bin: PathBuf,
    /// Hosts made with IPv6 off (see [`Lab::quiet_hosts`]).
    quiet: bool,
    state: Arc<State>,
}

/// What removing the lab needs; shared with [`Remover`]s.
struct State {
    prefix: String,
    dir: PathBuf,
    /// The vteps started; None once the lab is removed.
    vteps: Mutex<Option<Vec<Vtep>>>,
    /// The etcds started, killed once the vteps have stopped (a vtep's clean stop deletes its
    /// records from etcd).
    etcds: Mutex<Vec<Etcd>>,
    /// The Prometheus servers started, killed with the etcds.
    prometheus: Mutex<Vec<Prometheus>>,
}

/// Removes a lab from another thread (a signal handler), as [`Lab::remove`].
#[derive(Clone)]
pub struct Remover(Arc<State>);

impl Remover {
    pub fn remove(&self) {
        self.0.remove();
    }
}

/// One end of a veth pair: namespace, interface name, address (CIDR) and MAC. An empty address
/// or MAC leaves the interface without an address or with the kernel's MAC.
#[derive(Clone, Copy)]
pub struct End<'a> {
    pub ns: &'a str,
    pub ifname: &'a str,
    pub addr: &'a str,
    pub mac: &'a str,
}

impl<'a> End<'a> {
    /// `ifname` in `ns` with address `addr` (CIDR, or empty) and the kernel's MAC.
    pub const fn new(ns: &'a str, ifname: &'a str, addr: &'a str) -> Self {
        Self {
            ns,
            ifname,
            addr,
            mac: "",
        }
    }
}

impl Lab {
    /// An empty lab whose names start with `prefix` and whose hosts run `vtep_bin`. Its files
    /// (configs, logs, captures) go to a directory of its own under the temporary directory.
    /// Fails when that directory cannot be made.
    pub fn new(prefix: &str, vtep_bin: &Path) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("vtep-lab-{prefix}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            prefix: prefix.to_string(),
            dir: dir.clone(),
            vtep_bin: vtep_bin.to_path_buf(),
            quiet: false,
            state: Arc::new(State {
                prefix: prefix.to_string(),
                dir,
                vteps: Mutex::new(Some(Vec::new())),
                etcds: Mutex::new(Vec::new()),
                prometheus: Mutex::new(Vec::new()),
            }),
        })
    }

    /// As [`Lab::new`], with a prefix of its own: `tag`, the last 5 digits of the process id
    /// and 2 of a count. Short, because interface names hold 15 characters, and of fixed width,
    /// so that no lab's prefix starts another's: with "t123451" and "t1234512", removing the
    /// first lab would remove the second one's namespaces.
    pub fn unique(tag: &str, vtep_bin: &Path) -> Result<Self> {
        // A count of labs alone: two labs alive at once share a prefix only 100 labs apart.
        static LABS: AtomicU32 = AtomicU32::new(0);
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{tag}{:05}{:02}", std::process::id() % 100_000, n % 100);
        Self::new(&prefix, vtep_bin)
    }

    /// The lab, with IPv6 off in every host made from now on (see [`no_ipv6`]): for
    /// measurements, during which nothing should send on its own.
    pub fn quiet_hosts(mut self) -> Self {
        self.quiet = true;
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The directory of the lab's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `prefix` + `suffix`: names of namespaces, interfaces and instances of this lab.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Creates namespace `<prefix><suffix>` with its loopback up; returns its name. Fails when
    /// `ip` does.
    pub fn host(&self, suffix: &str) -> Result<String> {
        let ns = self.name(suffix);
        add_netns(&ns)?;
        if self.quiet {
            no_ipv6(&ns)?;
        }
        Ok(ns)
    }

    /// Joins ends `a` and `b` with a veth pair of MTU `mtu`, both up. An IPv6 address is added
    /// with `nodad` (and IPv6 turned on for that interface, also in a quiet host). Fails when
    /// `ip` does.
    pub fn wire(&self, a: End, b: End, mtu: u32) -> Result<()> {
        // Made under names of this lab in the caller's namespace, then moved and renamed: two
        // ends may have the same name in different namespaces.
        let (ta, tb) = (self.name("wa"), self.name("wb"));
        ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb])?;
        let mtu = mtu.to_string();
        for (end, tmp) in [(a, &ta), (b, &tb)] {
            let (ns, ifname) = (end.ns, end.ifname);
            ip(&["link", "set", tmp, "netns", ns])?;
            ip_in(ns, &["link", "set", tmp, "name", ifname])?;
            ip_in(ns, &["link", "set", ifname, "mtu", &mtu])?;
            if !end.mac.is_empty() {
                ip_in(ns, &["link", "set", ifname, "address", end.mac])?;
            }
            if end.addr.contains(':') {
                // IPv6 on this interface even in a quiet host, and without duplicate address
                // detection, so the address is usable at once (not "tentative").
                sysctl(ns, &[&format!("net.ipv6.conf.{ifname}.disable_ipv6=0")])?;
                ip_in(ns, &["addr", "add", end.addr, "dev", ifname, "nodad"])?;
            } else if !end.addr.is_empty() {
                ip_in(ns, &["addr", "add", end.addr, "dev", ifname])?;
            }
            ip_in(ns, &["link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// The usual two hosts: `<prefix>a` (198.18.0.1) and `<prefix>b` (198.18.0.2) joined by an
    /// `eth0` underlay with MTU 1500. Fails when `ip` does.
    pub fn two_hosts(&self) -> Result<(String, String)> {
        self.two_hosts_named("a", "b")
    }

    /// As [`Lab::two_hosts`], with hosts `<prefix><a>` and `<prefix><b>`. Fails when `ip`
    /// does.
    pub fn two_hosts_named(&self, a: &str, b: &str) -> Result<(String, String)> {
        self.two_hosts_with(a, b, UNDERLAY_V4)
    }

    /// The two hosts of [`Lab::two_hosts`] on an IPv6 underlay: `eth0` has 2001:db8::1/64 on
    /// `<prefix>a` and 2001:db8::2/64 on `<prefix>b` (no IPv4 address), usable at once (no
    /// duplicate address detection). Fails when `ip` does.
    pub fn two_hosts_ipv6(&self) -> Result<(String, String)> {
        self.two_hosts_with("a", "b", UNDERLAY_V6)
    }

    fn two_hosts_with(&self, a: &str, b: &str, addrs: [&str; 3]) -> Result<(String, String)> {
        let (a, b) = (self.host(a)?, self.host(b)?);
        self.wire(
            End::new(&a, "eth0", addrs[0]),
            End::new(&b, "eth0", addrs[1]),
            1500,
        )?;
        Ok((a, b))
    }

    /// Three hosts `<prefix>a`, `<prefix>b`, `<prefix>c` (198.18.0.1, .2, .3) on one underlay
    /// segment: each host's `eth0` (MTU 1500) is a veth into switch namespace `<prefix>sw`,
    /// whose bridge joins ports `p0`, `p1`, `p2` (host a, b, c). Fails when `ip` does.
    pub fn three_hosts(&self) -> Result<[String; 3]> {
        self.three_hosts_with(UNDERLAY_V4, &[])
    }

    /// The three hosts of [`Lab::three_hosts`] on an IPv6 underlay: 2001:db8::1/64, ::2, ::3 on
    /// their `eth0` (no IPv4 address, no duplicate address detection). The switch's bridge has
    /// multicast snooping off, so it floods IPv6 multicast (a VNI's group) to every port
    /// whatever MLD it saw or missed. Fails when `ip` does.
    pub fn three_hosts_ipv6(&self) -> Result<[String; 3]> {
        self.three_hosts_with(UNDERLAY_V6, &["mcast_snooping", "0"])
    }

    /// Three hosts with addresses `addrs` on a switch whose bridge gets `bridge_opts`.
    fn three_hosts_with(&self, addrs: [&str; 3], bridge_opts: &[&str]) -> Result<[String; 3]> {
        let sw = self.host("sw")?;
        let mut add = vec!["link", "add", "br0", "type", "bridge"];
        add.extend_from_slice(bridge_opts);
        ip_in(&sw, &add)?;
        ip_in(&sw, &["link", "set", "br0", "up"])?;
        let hosts = [self.host("a")?, self.host("b")?, self.host("c")?];
        for (i, host) in hosts.iter().enumerate() {
            let port = format!("p{i}");
            self.wire(
                End::new(host, "eth0", addrs[i]),
                End::new(&sw, &port, ""),
                1500,
            )?;
            ip_in(&sw, &["link", "set", &port, "master", "br0"])?;
        }
        Ok(hosts)
    }

    /// `n` hosts `<prefix>h1` .. `<prefix>hN` (198.18.0.1 .. 198.18.0.N, /24) on one underlay
    /// segment, as [`Lab::three_hosts`] with more ports: each host's `eth0` (MTU 1500) is a veth
    /// into switch namespace `<prefix>nsw`, whose bridge `br0` joins ports `p1` .. `pN`. Fails
    /// when `n` is 0 or above 250, or when `ip` does.
    pub fn hosts_on_switch(&self, n: usize) -> Result<Vec<String>> {
        if n == 0 || n > 250 {
            bail!("{n} hosts on a switch: 1 to 250 fit 198.18.0.0/24");
        }
        let sw = self.host("nsw")?;
        ip_in(&sw, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(&sw, &["link", "set", "br0", "up"])?;
        let mut hosts = Vec::with_capacity(n);
        for i in 1..=n {
            let host = self.host(&format!("h{i}"))?;
            let port = format!("p{i}");
            self.wire(
                End::new(&host, "eth0", &format!("198.18.0.{i}/24")),
                End::new(&sw, &port, ""),
                1500,
            )?;
            ip_in(&sw, &["link", "set", &port, "master", "br0"])?;
            hosts.push(host);
        }
        Ok(hosts)
    }

    /// Writes `text` to file `name` of the lab; returns its path. Fails when it cannot be
    /// written.
    pub fn file(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }

    /// Starts `vtep up` in namespace `host` with config `config` and waits until it says it is
    /// up. Fails, with vtep's output, when it exits before or is not up within 30 s.
    pub fn start_vtep(&self, host: &str, config: &str) -> Result<Vtep> {
        let config = self.file(&format!("vtep{}.toml", crate::next_id()), config)?;
        self.start_vtep_file(host, &config, &[])
    }

    /// As [`Lab::start_vtep`], with the config in file `config` (which a reload reads again)
    /// and `extra` arguments of `vtep up` (`--keep`).
    pub fn start_vtep_file(&self, host: &str, config: &Path, extra: &[&str]) -> Result<Vtep> {
        let id = crate::next_id();
        let vtep = Vtep::spawn(
            &self.vtep_bin,
            host,
            config,
            extra,
            &self.dir.join(format!("vtep{id}.log")),
        )?;
        // Noted before the wait, so that removing the lab meanwhile (Ctrl-C) stops it too.
        match lock(&self.state.vteps).as_mut() {
            Some(vteps) => vteps.push(vtep.clone()),
            None => {
                vtep.kill();
                bail!("the lab was removed");
            }
        }
        vtep.wait_up(UP_LIMIT)?;
        Ok(vtep)
    }

    /// Starts a single-node etcd on 127.0.0.1 with plain HTTP (see [`Etcd::start`]), its data
    /// and log in a directory of the lab; removing the lab kills it. Fails when it does not
    /// come up.
    pub fn start_etcd(&self) -> Result<Etcd> {
        self.start_etcd_with(None, &[])
    }

    /// As [`Lab::start_etcd`], with TLS and client-certificate authentication by `certs`.
    pub fn start_etcd_tls(&self, certs: &Certs) -> Result<Etcd> {
        self.start_etcd_with(Some(certs), &[])
    }

    /// As [`Lab::start_etcd`], with TLS by `tls` if given and `extra` arguments of etcd.
    pub fn start_etcd_with(&self, tls: Option<&Certs>, extra: &[&str]) -> Result<Etcd> {
        let dir = self.dir.join(format!("etcd{}", crate::next_id()));
        let etcd = Etcd::start_with(&dir, tls, extra)?;
        // Noted under the lock a removal holds throughout (vteps, then etcds), so a removal
        // meanwhile either kills it or leaves it to be killed here.
        let vteps = lock(&self.state.vteps);
        if vteps.is_none() {
            etcd.kill();
            bail!("the lab was removed");
        }
        lock(&self.state.etcds).push(etcd.clone());
        Ok(etcd)
    }

    /// Starts a Prometheus on 127.0.0.1 that scrapes `targets` every second (see
    /// [`Prometheus::start`]), its data in a directory of the lab; removing the lab kills it.
    /// Fails when it does not get ready.
    pub fn start_prometheus(&self, targets: &[String]) -> Result<Prometheus> {
        let dir = self.dir.join(format!("prometheus{}", crate::next_id()));
        let p = Prometheus::start(&dir, targets)?;
        // As for etcd: noted under the lock a removal holds.
        let vteps = lock(&self.state.vteps);
        if vteps.is_none() {
            p.kill();
            bail!("the lab was removed");
        }
        lock(&self.state.prometheus).push(p.clone());
        Ok(p)
    }

    /// TLS certificates for an etcd (see [`Certs::generate`]) in a directory of the lab.
    pub fn certs(&self) -> Result<Certs> {
        Certs::generate(&self.dir.join(format!("certs{}", crate::next_id())))
    }

    /// Starts capturing on `ifname` in namespace `ns` what BPF filter `filter` lets through,
    /// into a file of the lab; see [`Capture::start`] for when it fails.
    pub fn capture(&self, ns: &str, ifname: &str, filter: &str) -> Result<Capture> {
        let file = self.dir.join(format!("cap{}.pcap", crate::next_id()));
        Capture::start(&file, ns, ifname, filter)
    }

    /// Namespaces whose name starts with this lab's prefix.
    pub fn namespaces(&self) -> Vec<String> {
        list_netns()
            .into_iter()
            .filter(|n| n.starts_with(&self.prefix))
            .collect()
    }

    /// A handle that removes the lab from another thread.
    pub fn remover(&self) -> Remover {
        Remover(self.state.clone())
    }

    /// Stops the vteps (they remove what they made), then removes every namespace of the lab
    /// and the pins and state files a killed vtep left behind. Safe to call twice, also at the
    /// same time: a second caller returns only once everything is gone.
    pub fn remove(&self) {
        self.state.remove();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

impl State {
    fn remove(&self) {
        // Held to the end: see `Lab::remove`.
        let mut guard = lock(&self.vteps);
        let Some(vteps) = guard.take() else {
            return;
        };
        // Signalled together, so they clean up in parallel.
        for v in &vteps {
            v.signal(Signal::SIGINT);
        }
        for v in &vteps {
            v.wait_or_kill(STOP_LIMIT);
        }
        for etcd in lock(&self.etcds).drain(..) {
            etcd.kill();
        }
        for p in lock(&self.prometheus).drain(..) {
            p.kill();
        }
        for ns in prefixed("/run/netns", &self.prefix) {
            delete_netns(&ns.file_name().unwrap_or_default().to_string_lossy());
        }
        // A vtep killed before its cleanup leaves pins and state files named after its
        // instance; lab configs name instances with the lab's prefix.
        for pins in prefixed(PIN_ROOT, &self.prefix) {
            let _ = std::fs::remove_dir_all(pins);
        }
        let _ = std::fs::remove_dir(PIN_ROOT);
        for file in prefixed(STATE_DIR, &self.prefix) {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The entries of directory `dir` whose name starts with `prefix`.
fn prefixed(dir: &str, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Namespaces, pins and state files named with `prefix` that still exist.
pub fn leftovers(prefix: &str) -> Vec<String> {
    ["/run/netns", PIN_ROOT, STATE_DIR]
        .iter()
        .flat_map(|dir| prefixed(dir, prefix))
        .map(|p| p.display().to_string())
        .collect()
}
