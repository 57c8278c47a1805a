//! Simulated hosts for namespace tests: network namespaces joined by veth pairs, `vtep`
//! processes running "on" them, and helpers to drive traffic. Everything a `Lab` makes carries
//! its unique name prefix and is removed when the `Lab` is dropped, also after a failed test.

use std::{
    fs::File,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use nix::sched::{CloneFlags, setns};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `vtep` binary under test: `$VTEP_BIN`, else the workspace's debug build.
pub fn vtep_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VTEP_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/vtep");
    assert!(
        p.exists(),
        "{} missing: run `cargo xtask test` (it builds vtep first)",
        p.display()
    );
    p
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ip ARGS`, panicking on failure.
pub fn ip(args: &[&str]) -> Output {
    run("ip", args)
}

/// Runs `cmd args` inside namespace `ns`; returns its output whatever the exit status.
pub fn ns_exec(ns: &str, cmd: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, cmd])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec {ns} {cmd}: {e}"))
}

/// True when `count` pings from `ns` to `addr` are all answered.
pub fn ping(ns: &str, addr: &str, count: u32) -> bool {
    ping_with(ns, addr, count, "0.2", 2)
}

/// `ping -c count -i interval -W wait` from `ns` to `addr`: true when every echo was answered.
pub fn ping_with(ns: &str, addr: &str, count: u32, interval: &str, wait: u32) -> bool {
    let (count, wait) = (count.to_string(), wait.to_string());
    ns_exec(
        ns,
        "ping",
        &["-c", &count, "-i", interval, "-W", &wait, "-q", addr],
    )
    .status
    .success()
}

/// Runs `f` on a thread inside namespace `ns` and returns its result.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("netns {ns}: {e}"));
    std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// The kernel's own VTEP on host `host`, as the seeds build it: vxlan device `vx0` (VNI `vni`,
/// `dstport`, from `local` over `eth0`, learning as by default) in bridge `br0` with a veth
/// into namespace `workload` (its `eth0`: `mac`, `cidr`, MTU 1450), and one flood entry
/// (`bridge fdb append 00:00:00:00:00:00`) per address in `flood`.
pub struct KernelVtep<'a> {
    pub vni: u32,
    pub dstport: u16,
    pub local: &'a str,
    pub flood: &'a [&'a str],
    pub workload: &'a str,
    pub mac: &'a str,
    pub cidr: &'a str,
}

impl KernelVtep<'_> {
    pub fn build(&self, host: &str) {
        let (id, port) = (self.vni.to_string(), self.dstport.to_string());
        ip(&[
            "-n", host, "link", "add", "vx0", "type", "vxlan", "id", &id, "dstport", &port,
            "local", self.local, "dev", "eth0",
        ]);
        for dst in self.flood {
            run(
                "bridge",
                &[
                    "-n",
                    host,
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    "vx0",
                    "dst",
                    dst,
                ],
            );
        }
        ip(&["-n", host, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", host, "link", "set", "vx0", "master", "br0"]);
        ip(&[
            "-n",
            host,
            "link",
            "add",
            "wbh",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.workload,
        ]);
        ip(&[
            "-n", host, "link", "set", "wbh", "mtu", "1450", "master", "br0",
        ]);
        for dev in ["vx0", "wbh", "br0"] {
            ip(&["-n", host, "link", "set", dev, "up"]);
        }
        ip(&[
            "-n",
            self.workload,
            "link",
            "set",
            "eth0",
            "address",
            self.mac,
            "mtu",
            "1450",
            "up",
        ]);
        ip(&["-n", self.workload, "addr", "add", self.cidr, "dev", "eth0"]);
    }
}

/// Turns IPv6 off in namespace `ns` (for interfaces made from now on too), so nothing there
/// sends router solicitations, MLD reports or DAD probes on its own: tests that count packets
/// or watch learned entries age need quiet stations.
pub fn no_ipv6(ns: &str) {
    for key in [
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ] {
        let out = ns_exec(ns, "sysctl", &["-q", "-w", key]);
        assert!(out.status.success(), "sysctl {key} in {ns}");
    }
}

/// Statistics of one interface inside a namespace, from /sys (read inside the namespace).
pub fn if_counter(ns: &str, ifname: &str, counter: &str) -> u64 {
    let path = format!("/sys/class/net/{ifname}/statistics/{counter}");
    let out = ns_exec(ns, "cat", &[&path]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{ns}: {path}"))
}

/// A set of simulated hosts with a unique name prefix.
pub struct Lab {
    pub prefix: String,
    dir: PathBuf,
    vteps: Vec<Vtep>,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    /// A new, empty lab. The prefix is short because interface names hold 15 characters, and
    /// of fixed width (8 characters) so that no lab's prefix starts another's: with "t123451"
    /// and "t1234512", dropping the first lab would remove the second one's namespaces.
    pub fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("t{:05}{:02}", std::process::id() % 100_000, n % 100);
        let dir = std::env::temp_dir().join(format!("vtep-lab-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            prefix,
            dir,
            vteps: Vec::new(),
        }
    }

    /// `prefix` + `suffix`: names of namespaces and interfaces of this lab.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Creates namespace `<prefix><suffix>` with loopback up; returns its name.
    pub fn host(&self, suffix: &str) -> String {
        let ns = self.name(suffix);
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// Joins hosts `a` and `b` with a veth pair named `ifname` on both sides, addressed
    /// `a_addr` and `b_addr` (CIDR), MTU `mtu`.
    pub fn wire(&self, a: &str, a_addr: &str, b: &str, b_addr: &str, ifname: &str, mtu: u32) {
        let (ta, tb) = (self.name("wa"), self.name("wb"));
        ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb]);
        ip(&["link", "set", &ta, "netns", a]);
        ip(&["link", "set", &tb, "netns", b]);
        let mtu = mtu.to_string();
        for (ns, tmp, addr) in [(a, &ta, a_addr), (b, &tb, b_addr)] {
            ip(&["-n", ns, "link", "set", tmp, "name", ifname]);
            ip(&["-n", ns, "link", "set", ifname, "mtu", &mtu]);
            ip(&["-n", ns, "addr", "add", addr, "dev", ifname]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
    }

    /// The usual two hosts: `<prefix>a` (198.18.0.1) and `<prefix>b` (198.18.0.2) joined by
    /// an `eth0` underlay with MTU 1500.
    pub fn two_hosts(&self) -> (String, String) {
        let a = self.host("a");
        let b = self.host("b");
        self.wire(&a, "198.18.0.1/24", &b, "198.18.0.2/24", "eth0", 1500);
        (a, b)
    }

    /// Three hosts `<prefix>a`, `<prefix>b`, `<prefix>c` (198.18.0.1, .2, .3) on one underlay
    /// segment: each host's `eth0` (MTU 1500) is a veth into switch namespace `<prefix>sw`,
    /// whose bridge joins ports `p0`, `p1`, `p2` (host a, b, c).
    pub fn three_hosts(&self) -> [String; 3] {
        let sw = self.host("sw");
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        let hosts = ["a", "b", "c"].map(|s| self.host(s));
        for (i, host) in hosts.iter().enumerate() {
            let (t_host, t_sw) = (self.name("wa"), self.name("wb"));
            ip(&[
                "link", "add", &t_host, "type", "veth", "peer", "name", &t_sw,
            ]);
            ip(&["link", "set", &t_host, "netns", host]);
            ip(&["link", "set", &t_sw, "netns", &sw]);
            let addr = format!("198.18.0.{}/24", i + 1);
            ip(&["-n", host, "link", "set", &t_host, "name", "eth0"]);
            ip(&["-n", host, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", host, "link", "set", "eth0", "up"]);
            let port = format!("p{i}");
            ip(&["-n", &sw, "link", "set", &t_sw, "name", &port]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
        }
        hosts
    }

    /// Writes `text` to a file of this lab and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Starts `vtep up` in namespace `host` with config `toml`, waiting until it reports that it
    /// is up. Panics with vtep's output when it does not come up.
    pub fn start_vtep(&mut self, host: &str, toml: &str) -> usize {
        let id = self.vteps.len();
        let config = self.file(&format!("vtep{id}.toml"), toml);
        let log = self.dir.join(format!("vtep{id}.log"));
        let vtep = Vtep::start(host, &config, &log).unwrap_or_else(|e| panic!("{e}"));
        self.vteps.push(vtep);
        id
    }

    pub fn vtep(&mut self, id: usize) -> &mut Vtep {
        &mut self.vteps[id]
    }

    /// Namespaces whose name starts with this lab's prefix.
    pub fn namespaces(&self) -> Vec<String> {
        list_netns()
            .into_iter()
            .filter(|n| n.starts_with(&self.prefix))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for v in &mut self.vteps {
            let _ = v.stop();
        }
        for ns in self.namespaces() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        // A vtep killed before its cleanup leaves pins and a state file named after the
        // instance; test configs name instances after the lab prefix.
        if let Ok(entries) = std::fs::read_dir("/sys/fs/bpf/vtep") {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir("/sys/fs/bpf/vtep");
        if let Ok(entries) = std::fs::read_dir("/run/vtep") {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Names of all namespaces in /run/netns.
pub fn list_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A running `vtep up`.
pub struct Vtep {
    child: Option<Child>,
    log: PathBuf,
    pub host: String,
}

impl Vtep {
    /// Starts `vtep --netns host up -c config` and waits for "vtep is up" in its log.
    pub fn start(host: &str, config: &Path, log: &Path) -> Result<Self, String> {
        let out = File::create(log).unwrap();
        let child = Command::new(vtep_bin())
            .args(["--netns", host, "up", "-c"])
            .arg(config)
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .map_err(|e| format!("spawning vtep: {e}"))?;
        let mut vtep = Self {
            child: Some(child),
            log: log.to_path_buf(),
            host: host.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if vtep.log().contains("vtep is up") {
                return Ok(vtep);
            }
            if let Some(status) = vtep.child.as_mut().unwrap().try_wait().unwrap() {
                vtep.child = None;
                return Err(format!(
                    "vtep exited ({status}) before coming up:\n{}",
                    vtep.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("vtep did not come up in 30 s:\n{}", vtep.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything vtep printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGINT and waits for vtep to exit; returns its exit status (None if it was not
    /// running). Kills it after 20 s.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.stop_with(nix::sys::signal::Signal::SIGINT)
    }

    /// Like [`Vtep::stop`], with another signal (SIGTERM).
    pub fn stop_with(
        &mut self,
        signal: nix::sys::signal::Signal,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills vtep with SIGKILL, as a crash would (no cleanup runs), and waits for it; returns
    /// its exit status (None if it was not running).
    pub fn kill(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// `vtep --netns host ARGS` (a CLI command against this running instance).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(vtep_bin())
            .args(["--netns", &self.host])
            .args(args)
            .output()
            .expect("running vtep")
    }

    /// `vtep fdb show -j` of instance `name`, parsed.
    pub fn fdb(&self, name: &str) -> Vec<serde_json::Value> {
        let out = self.cli(&["fdb", "show", "-n", name, "-j"]);
        assert!(
            out.status.success(),
            "vtep fdb show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("fdb show JSON")
    }

    /// `vtep stats -j` of instance `name`, parsed.
    pub fn stats(&self, name: &str) -> serde_json::Value {
        let out = self.cli(&["stats", "-n", name, "-j"]);
        assert!(
            out.status.success(),
            "vtep stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }
}

impl Drop for Vtep {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Deterministic test data: byte `i` of the stream.
fn pattern(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7);
    (x >> 32) as u8
}

/// Sends `len` bytes over TCP from namespace `client_ns` to `server_addr` (listening in
/// `server_ns`) and returns how many bytes the server received intact before the first
/// difference (== `len` when all arrived intact).
pub fn tcp_transfer(server_ns: &str, server_addr: SocketAddr, client_ns: &str, len: u64) -> u64 {
    let listener = in_netns(server_ns, move || {
        TcpListener::bind(server_addr).expect("bind")
    });
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => n,
                Err(e) => panic!("server read after {got} bytes: {e}"),
            };
            for (k, b) in buf[..n].iter().enumerate() {
                if *b != pattern(got + k as u64) {
                    return got + k as u64;
                }
            }
            got += n as u64;
        }
    });
    in_netns(client_ns, move || {
        let mut s =
            TcpStream::connect_timeout(&server_addr, Duration::from_secs(10)).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut sent = 0u64;
        while sent < len {
            let n = ((len - sent) as usize).min(buf.len());
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + k as u64);
            }
            s.write_all(&buf[..n]).expect("client write");
            sent += n as u64;
        }
    });
    server.join().expect("server thread")
}

/// A packet capture with tcpdump inside a namespace.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing on `ifname` in `ns` with BPF filter `filter`, into a file of `lab`.
    pub fn start(lab: &Lab, ns: &str, ifname: &str, filter: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let file = lab.dir.join(format!("cap{n}.pcap"));
        // --immediate-mode: otherwise libpcap hands packets over in blocks (TPACKET_V3) and the
        // last ones before the SIGINT of `frames` are lost.
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "--immediate-mode",
                "-U",
                "-n",
                "-i",
                ifname,
                "-w",
            ])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        // tcpdump says "listening on" once the socket is open.
        let mut cap = Self { child, file };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cap.file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = &mut cap;
        cap
    }

    /// Stops the capture and returns the captured frames.
    pub fn frames(mut self) -> Vec<Vec<u8>> {
        std::thread::sleep(Duration::from_millis(300));
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
        parse_pcap(&std::fs::read(&self.file).expect("pcap file"))
    }
}

/// Frames of a classic pcap file (little-endian, as tcpdump writes here).
pub fn parse_pcap(data: &[u8]) -> Vec<Vec<u8>> {
    assert!(data.len() >= 24, "pcap too short");
    assert_eq!(
        &data[0..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "unexpected pcap magic"
    );
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16;
        if off + incl > data.len() {
            break;
        }
        frames.push(data[off..off + incl].to_vec());
        off += incl;
    }
    frames
}
