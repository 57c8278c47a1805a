//! Standing labs for running the example configs by hand (`cargo xtask lab up|down|status`):
//! the hosts a scenario's `examples/sN-*.toml` expect, as network namespaces `lab-sN-a`,
//! `lab-sN-b`, … with the underlay `eth0` and the addresses the configs name (198.18.0.1, .2,
//! .3), and for S5 the etcd its configs name (127.0.0.1:23790). Unlike a [`crate::Lab`], a
//! standing lab outlives the process that made it: what it made is recorded in a state file
//! (`/run/vtep-lab/sN.json`), and [`down`] removes exactly that (namespaces by name and inode,
//! etcd by pid and start time, its data directory), after stopping the `vtep` instances that
//! run in those namespaces (SIGTERM to a running one, `vtep down` for what one left).
//!
//! [`up`] also returns the [`Plan`]: the commands to run each example by hand, which the tests
//! run as printed.

use std::{
    fmt::Write as _,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    os::unix::{fs::MetadataExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use nix::{
    sys::{
        signal::{Signal, kill},
        wait::{WaitPidFlag, waitpid},
    },
    unistd::Pid,
};
use serde_json::{Value, json};

use crate::cmd::{ip, ip_in};

/// Where standing labs keep their state files (and S5 its etcd's data and log): in /run, so
/// that a reboot, which removes the namespaces, removes the record of them too.
pub const STATE_DIR: &str = "/run/vtep-lab";
/// The client port of the S5 lab's etcd on 127.0.0.1, which `examples/s5-host-*.toml` name.
pub const S5_ETCD_PORT: u16 = 23790;
/// The peer port of that etcd (127.0.0.1 too).
pub const S5_ETCD_PEER_PORT: u16 = 23800;
/// Where vtep keeps its instances' state files.
const VTEP_STATE_DIR: &str = "/run/vtep";
/// Where vtep pins an instance's maps.
const VTEP_PIN_ROOT: &str = "/sys/fs/bpf/vtep";
/// How long a running `vtep up` gets to stop after SIGTERM before it is killed.
const VTEP_STOP_LIMIT: Duration = Duration::from_secs(30);
/// How long etcd gets to stop after SIGTERM, and to answer after its start.
const ETCD_STOP_LIMIT: Duration = Duration::from_secs(10);
const ETCD_START_LIMIT: Duration = Duration::from_secs(15);

/// The scenarios of the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    S1,
    S2,
    S3,
    S4,
    S5,
}

/// One host of a scenario: its letter, its underlay address, and the example config it runs
/// with the instance and workload namespaces that config names.
struct HostSpec {
    letter: &'static str,
    underlay: &'static str,
    example: &'static str,
    instance: &'static str,
    /// (namespace, address) of each workload.
    workloads: &'static [(&'static str, &'static str)],
}

const A: &str = "198.18.0.1";
const B: &str = "198.18.0.2";
const C: &str = "198.18.0.3";

const S1_HOSTS: &[HostSpec] = &[
    HostSpec {
        letter: "a",
        underlay: A,
        example: "s1-host-a.toml",
        instance: "s1a",
        workloads: &[],
    },
    HostSpec {
        letter: "b",
        underlay: B,
        example: "s1-host-b.toml",
        instance: "s1b",
        workloads: &[],
    },
];
const S2_HOSTS: &[HostSpec] = &[
    HostSpec {
        letter: "a",
        underlay: A,
        example: "s2-host-a.toml",
        instance: "s2a",
        workloads: &[("s2-a1", "192.0.2.11"), ("s2-a2", "192.0.2.12")],
    },
    HostSpec {
        letter: "b",
        underlay: B,
        example: "s2-host-b.toml",
        instance: "s2b",
        workloads: &[("s2-b1", "192.0.2.21"), ("s2-b2", "192.0.2.22")],
    },
];
const S3_HOSTS: &[HostSpec] = &[
    HostSpec {
        letter: "a",
        underlay: A,
        example: "s3-host-a.toml",
        instance: "s3a",
        workloads: &[("s3-a", "192.0.2.11")],
    },
    HostSpec {
        letter: "b",
        underlay: B,
        example: "s3-host-b.toml",
        instance: "s3b",
        workloads: &[("s3-b", "192.0.2.21")],
    },
    HostSpec {
        letter: "c",
        underlay: C,
        example: "s3-host-c.toml",
        instance: "s3c",
        workloads: &[("s3-c", "192.0.2.31")],
    },
];
const S4_HOSTS: &[HostSpec] = &[
    HostSpec {
        letter: "a",
        underlay: A,
        example: "s4-host-a.toml",
        instance: "s4a",
        workloads: &[("s4-a-ns1", "10.1.5.10")],
    },
    HostSpec {
        letter: "b",
        underlay: B,
        example: "s4-host-b.toml",
        instance: "s4b",
        workloads: &[("s4-b-ns1", "10.1.8.10")],
    },
];
/// The other S4 pair (VNI 10 on 8472), for the same hosts, one pair at a time.
const S4_VYOS_HOSTS: &[HostSpec] = &[
    HostSpec {
        letter: "a",
        underlay: A,
        example: "s4-vyos-host-a.toml",
        instance: "s4va",
        workloads: &[("s4-a-ns1", "10.1.5.10")],
    },
    HostSpec {
        letter: "b",
        underlay: B,
        example: "s4-vyos-host-b.toml",
        instance: "s4vb",
        workloads: &[("s4-b-ns1", "10.1.8.10")],
    },
];
const S5_HOSTS: &[HostSpec] = &[
    HostSpec {
        letter: "a",
        underlay: A,
        example: "s5-host-a.toml",
        instance: "s5a",
        workloads: &[("s5-a1", "192.0.2.11")],
    },
    HostSpec {
        letter: "b",
        underlay: B,
        example: "s5-host-b.toml",
        instance: "s5b",
        workloads: &[("s5-b1", "192.0.2.21")],
    },
    HostSpec {
        letter: "c",
        underlay: C,
        example: "s5-host-c.toml",
        instance: "s5c",
        workloads: &[("s5-c1", "192.0.2.31")],
    },
];
/// The workload the S5 walkthrough adds at run time on host c, and its VNI.
const S5_RUNTIME: (&str, &str, &str) = ("s5-c2", "192.0.2.32", "02:00:00:00:0c:02");
const S5_VNI: &str = "500";

impl Scenario {
    pub const ALL: [Self; 5] = [Self::S1, Self::S2, Self::S3, Self::S4, Self::S5];

    /// `s1` … `s5`: the command's argument, and part of every name.
    pub fn id(self) -> &'static str {
        match self {
            Self::S1 => "s1",
            Self::S2 => "s2",
            Self::S3 => "s3",
            Self::S4 => "s4",
            Self::S5 => "s5",
        }
    }

    /// `s2`, `S2` or `2`. Fails, naming the scenarios there are, on anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim().to_ascii_lowercase();
        let t = t.strip_prefix('s').unwrap_or(&t);
        Self::ALL
            .into_iter()
            .find(|s| &s.id()[1..] == t)
            .with_context(|| format!("no scenario `{text}`: there are s1, s2, s3, s4 and s5"))
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::S1 => "S1, point-to-point: an overlay address on each of two hosts",
            Self::S2 => "S2, workloads across hosts: two workloads on each of two hosts, one VNI",
            Self::S3 => {
                "S3, flood-and-learn: three hosts with flood lists only (learning, ARP proxy)"
            }
            Self::S4 => "S4, routed overlay: two hosts, each the gateway of its own subnet",
            Self::S5 => "S5, many hosts from one store: three hosts programmed from an etcd",
        }
    }

    fn hosts(self) -> &'static [HostSpec] {
        match self {
            Self::S1 => S1_HOSTS,
            Self::S2 => S2_HOSTS,
            Self::S3 => S3_HOSTS,
            Self::S4 => S4_HOSTS,
            Self::S5 => S5_HOSTS,
        }
    }

    /// Every host spec the scenario's examples have (S4: both pairs).
    fn all_specs(self) -> impl Iterator<Item = &'static HostSpec> {
        let extra: &[HostSpec] = if self == Self::S4 { S4_VYOS_HOSTS } else { &[] };
        self.hosts().iter().chain(extra)
    }

    /// The namespace of host `letter`: `lab-s2-a`.
    pub fn host_ns(self, letter: &str) -> String {
        format!("lab-{}-{letter}", self.id())
    }

    /// The namespaces the lab makes: its hosts, and for three hosts the underlay switch
    /// `lab-sN-sw`.
    pub fn namespaces(self) -> Vec<String> {
        let mut v: Vec<String> = self
            .hosts()
            .iter()
            .map(|h| self.host_ns(h.letter))
            .collect();
        if self.hosts().len() > 2 {
            v.push(self.host_ns("sw"));
        }
        v
    }

    /// The example config files the lab is for (relative to the workspace root).
    pub fn example_files(self) -> Vec<String> {
        self.all_specs()
            .map(|h| format!("examples/{}", h.example))
            .collect()
    }

    /// The instance names the examples give (`s2a`, …).
    pub fn instances(self) -> Vec<&'static str> {
        self.all_specs().map(|h| h.instance).collect()
    }

    /// The workload namespaces the examples (and the walkthrough's runtime workload) make.
    pub fn workload_namespaces(self) -> Vec<&'static str> {
        let mut v: Vec<&str> = self
            .all_specs()
            .flat_map(|h| h.workloads.iter().map(|w| w.0))
            .collect();
        if self == Self::S5 {
            v.push(S5_RUNTIME.0);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The state file of this scenario's lab under `state_dir`.
    pub fn state_file(self, state_dir: &Path) -> PathBuf {
        state_dir.join(format!("{}.json", self.id()))
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One command of the walkthrough: its words (the first a program, relative to the workspace
/// root when it is `target/...`) and what it shows.
#[derive(Debug, Clone)]
pub struct Step {
    pub argv: Vec<String>,
    pub note: String,
}

impl Step {
    fn new(argv: Vec<String>, note: &str) -> Self {
        Self {
            argv,
            note: note.to_string(),
        }
    }

    /// The command line as printed (no word needs quoting).
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

/// The commands to run a scenario's examples by hand, from the workspace root, as root.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// The workspace root the commands run from.
    pub root: PathBuf,
    /// `vtep --netns HOST up -c EXAMPLE`, one per host: each runs until Ctrl-C.
    pub start: Vec<Step>,
    /// Pings between workloads (or host overlay addresses) that answer once every `vtep up`
    /// said it is up.
    pub pings: Vec<Step>,
    /// Commands that show what vtep did (FDB, counters, interfaces).
    pub look: Vec<Step>,
    /// More to try: (heading, commands).
    pub more: Vec<(String, Vec<Step>)>,
}

impl Plan {
    fn new(scenario: Scenario, root: &Path, vtep: &Path) -> Self {
        let bin = vtep
            .strip_prefix(root)
            .unwrap_or(vtep)
            .display()
            .to_string();
        let w = Words { bin };
        let start = scenario
            .hosts()
            .iter()
            .map(|h| {
                let file = format!("examples/{}", h.example);
                let note = format!("host {}: runs until Ctrl-C", h.letter.to_ascii_uppercase());
                w.vtep(&scenario.host_ns(h.letter), &["up", "-c", &file], &note)
            })
            .collect();
        let (pings, look, more) = match scenario {
            Scenario::S1 => w.s1(),
            Scenario::S2 => w.s2(),
            Scenario::S3 => w.s3(),
            Scenario::S4 => w.s4(),
            Scenario::S5 => w.s5(),
        };
        Self {
            scenario,
            root: root.to_path_buf(),
            start,
            pings,
            look,
            more,
        }
    }

    /// The walkthrough as `cargo xtask lab up` prints it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let step = |s: &mut String, st: &Step| {
            let _ = writeln!(s, "    # {}", st.note);
            let _ = writeln!(s, "    {}", st.line());
        };
        let _ = writeln!(
            s,
            "From the workspace root, as root:\n\n    cd {}\n",
            self.root.display()
        );
        let _ = writeln!(
            s,
            "1. Start vtep on each host with its example config, each in a terminal of its own:"
        );
        for st in &self.start {
            step(&mut s, st);
        }
        let _ = writeln!(s, "   (wait for `vtep is up` on each)\n\n2. Ping:");
        for st in &self.pings {
            step(&mut s, st);
        }
        let _ = writeln!(s, "\n3. Look at what vtep did:");
        for st in &self.look {
            step(&mut s, st);
        }
        for (i, (heading, steps)) in self.more.iter().enumerate() {
            let _ = writeln!(s, "\n{}. Then {heading}:", i + 4);
            for st in steps {
                step(&mut s, st);
            }
        }
        let _ = writeln!(
            s,
            "\n{}. Stop each vtep with Ctrl-C (it removes what it made), then remove the lab:\n    \
             cargo xtask lab down {}\n   \
             (`lab down` also stops vteps still running in the lab, and cleans up after crashed \
             ones)",
            self.more.len() + 4,
            self.scenario
        );
        s
    }
}

/// The pings, the commands to look, and more to try of a scenario's [`Plan`].
type Walkthrough = (Vec<Step>, Vec<Step>, Vec<(String, Vec<Step>)>);

/// Makes the steps of a [`Plan`]: `bin` is the vtep binary as printed.
struct Words {
    bin: String,
}

impl Words {
    /// `vtep --netns NS ARGS`.
    fn vtep(&self, ns: &str, args: &[&str], note: &str) -> Step {
        let mut argv = vec![self.bin.clone(), "--netns".into(), ns.into()];
        argv.extend(args.iter().map(|s| s.to_string()));
        Step::new(argv, note)
    }

    /// Any other command.
    fn cmd(&self, args: &[&str], note: &str) -> Step {
        Step::new(args.iter().map(|s| s.to_string()).collect(), note)
    }

    /// Three pings from namespace `from` to `to`.
    fn ping(&self, from: &str, to: &str, note: &str) -> Step {
        self.cmd(&["ip", "netns", "exec", from, "ping", "-c", "3", to], note)
    }

    /// tcpdump of VXLAN to `port` on the underlay of host namespace `ns`.
    fn tcpdump(&self, ns: &str, port: &str, note: &str) -> Step {
        let args = [
            "ip", "netns", "exec", ns, "tcpdump", "-ni", "eth0", "udp", "port", port,
        ];
        self.cmd(&args, note)
    }

    fn s1(&self) -> Walkthrough {
        let s = Scenario::S1;
        let (a, b) = (s.host_ns("a"), s.host_ns("b"));
        let name = S1_HOSTS[0].instance;
        let pings = vec![
            self.ping(
                &a,
                "192.0.2.2",
                "host A's vxlan1 to host B's, across the tunnel",
            ),
            self.ping(&b, "192.0.2.1", "and back"),
        ];
        let look = vec![
            self.cmd(
                &["ip", "-n", &a, "addr", "show", "vxlan1"],
                "the overlay address vtep put on host A",
            ),
            self.vtep(
                &a,
                &["vni", "show", "-n", name],
                "VNI 1, its UDP port, flood list",
            ),
            self.vtep(
                &a,
                &["fdb", "show", "-n", name],
                "host B's vxlan1 MAC, learned",
            ),
            self.vtep(&a, &["stats", "-n", name], "packets and drops per VNI"),
            self.tcpdump(
                &b,
                "4789",
                "the VXLAN on host B's underlay while a ping runs",
            ),
        ];
        (pings, look, Vec::new())
    }

    fn s2(&self) -> Walkthrough {
        let s = Scenario::S2;
        let (a, b) = (&S2_HOSTS[0], &S2_HOSTS[1]);
        let (ha, hb) = (s.host_ns("a"), s.host_ns("b"));
        let ([a1, a2], [b1, b2]) = (a.workloads, b.workloads) else {
            unreachable!("two workloads per host")
        };
        let pings = vec![
            self.ping(a1.0, b1.1, "workload a1 to b1, across hosts"),
            self.ping(b2.0, a2.1, "workload b2 to a2, across hosts"),
            self.ping(a1.0, a2.1, "a1 to a2: same host, stays local"),
        ];
        let look = vec![
            self.vtep(
                &ha,
                &["fdb", "show", "-n", a.instance],
                "the local workloads' ports and the configured remote MACs",
            ),
            self.vtep(
                &ha,
                &["stats", "-n", a.instance],
                "packets per VNI, drops by reason",
            ),
            self.cmd(
                &["ip", "-n", &ha, "-br", "link", "show"],
                "the workloads' host ends (s2-a1-h, s2-a2-h) beside eth0",
            ),
            self.tcpdump(
                &hb,
                "4789",
                "the VXLAN on host B's underlay while a ping runs",
            ),
        ];
        (pings, look, Vec::new())
    }

    fn s3(&self) -> Walkthrough {
        let s = Scenario::S3;
        let [a, b, c] = S3_HOSTS else {
            unreachable!("three hosts")
        };
        let ha = s.host_ns("a");
        let (wa, wb, wc) = (a.workloads[0], b.workloads[0], c.workloads[0]);
        let pings = vec![
            self.ping(
                wa.0,
                wb.1,
                "a to b: flooded to both VTEPs first, then learned",
            ),
            self.ping(wa.0, wc.1, "a to c"),
            self.ping(wb.0, wc.1, "b to c"),
        ];
        let look = vec![
            self.vtep(
                &ha,
                &["fdb", "show", "-n", a.instance],
                "b's and c's workload MACs, learned, with their age",
            ),
            self.vtep(
                &ha,
                &["neigh", "show", "-n", a.instance],
                "the ARP proxy's table",
            ),
            self.vtep(
                &ha,
                &["vni", "show", "-n", a.instance],
                "VNI 300's flood list: the other two VTEPs",
            ),
            self.vtep(
                &ha,
                &["stats", "-n", a.instance],
                "learned entries, ARP replies, drops",
            ),
        ];
        let more = vec![(
            "miss events: watch them in one terminal, ping an address nobody has in another"
                .to_string(),
            vec![
                self.vtep(
                    &ha,
                    &["monitor", "-n", a.instance],
                    "prints l2miss/l3miss events until Ctrl-C",
                ),
                self.cmd(
                    &["ip", "netns", "exec", wa.0, "ping", "-c", "1", "192.0.2.99"],
                    "an l3miss: nobody has 192.0.2.99",
                ),
            ],
        )];
        (pings, look, more)
    }

    fn s4(&self) -> Walkthrough {
        let s = Scenario::S4;
        let (a, b) = (&S4_HOSTS[0], &S4_HOSTS[1]);
        let (va, vb) = (&S4_VYOS_HOSTS[0], &S4_VYOS_HOSTS[1]);
        let (ha, hb) = (s.host_ns("a"), s.host_ns("b"));
        let (wa, wb) = (a.workloads[0], b.workloads[0]);
        let pings = vec![
            self.ping(
                wa.0,
                wb.1,
                "10.1.5.10 to 10.1.8.10: routed by host A, the tunnel, routed by host B",
            ),
            self.ping(wb.0, wa.1, "and back"),
        ];
        let look = vec![
            self.cmd(
                &["ip", "-n", &ha, "route"],
                "10.1.8.0/24 via 1.1.1.2 dev vxlan0: the config's [[route]]",
            ),
            self.cmd(
                &["ip", "-n", &ha, "addr", "show"],
                "br0 (the workloads' gateway, 10.1.5.1) and vxlan0 (1.1.1.1)",
            ),
            self.vtep(
                &ha,
                &["stats", "-n", a.instance],
                "packets per VNI (5: the local segment, 20: the tunnel)",
            ),
            self.tcpdump(
                &hb,
                "4789",
                "the inner frames carry the gateways' MACs and the workloads' IPs",
            ),
        ];
        let va_file = format!("examples/{}", va.example);
        let vb_file = format!("examples/{}", vb.example);
        let more = vec![(
            "the same overlay as the seed's VyOS routers build it (VNI 10 on UDP port 8472): \
             stop both vteps (Ctrl-C), then"
                .to_string(),
            vec![
                self.vtep(&ha, &["up", "-c", &va_file], "host A: runs until Ctrl-C"),
                self.vtep(&hb, &["up", "-c", &vb_file], "host B: runs until Ctrl-C"),
                self.ping(wa.0, wb.1, "the same ping"),
                self.tcpdump(&hb, "8472", "now on port 8472"),
            ],
        )];
        (pings, look, more)
    }

    fn s5(&self) -> Walkthrough {
        let s = Scenario::S5;
        let [a, b, c] = S5_HOSTS else {
            unreachable!("three hosts")
        };
        let (ha, hc) = (s.host_ns("a"), s.host_ns("c"));
        let (wa, wb, wc) = (a.workloads[0], b.workloads[0], c.workloads[0]);
        let (rt_ns, rt_ip, rt_mac) = S5_RUNTIME;
        let rt_addr = format!("{rt_ip}/24");
        let endpoint = format!("http://127.0.0.1:{S5_ETCD_PORT}");
        let fdb_a = ["fdb", "show", "-n", a.instance];
        let pings = vec![
            self.ping(
                wa.0,
                wb.1,
                "a1 to b1: no config names the other host, the store does",
            ),
            self.ping(wa.0, wc.1, "a1 to c1"),
            self.ping(wc.0, wb.1, "c1 to b1"),
        ];
        let look = vec![
            self.vtep(&ha, &fdb_a, "b1's and c1's MACs, origin store"),
            self.vtep(
                &ha,
                &["neigh", "show", "-n", a.instance],
                "their addresses in the ARP proxy, origin store",
            ),
            self.vtep(
                &ha,
                &["vni", "show", "-n", a.instance],
                "VNI 500's flood list: the VTEPs the store names",
            ),
            self.vtep(
                &ha,
                &["stats", "-n", a.instance],
                "the store: connected, its revision and record counts",
            ),
        ];
        let add = [
            "workload", "add", rt_ns, "vni", S5_VNI, "address", &rt_addr, "mac", rt_mac, "-n",
            c.instance,
        ];
        let more = vec![
            (
                "a workload added at run time on host C, published through the store".to_string(),
                vec![
                    self.vtep(
                        &hc,
                        &add,
                        "vtep makes namespace s5-c2 and its veth, and publishes the station",
                    ),
                    self.ping(
                        wa.0,
                        rt_ip,
                        "host A reaches it: its FDB entry came from the store",
                    ),
                    self.vtep(&ha, &fdb_a, "02:00:00:00:0c:02 to 198.18.0.3, origin store"),
                    self.vtep(
                        &hc,
                        &["workload", "del", rt_ns, "-n", c.instance],
                        "gone again, on every host",
                    ),
                ],
            ),
            (
                "the store itself (etcdctl is in the Debian package etcd-client)".to_string(),
                vec![self.cmd(
                    &[
                        "etcdctl",
                        "--endpoints",
                        &endpoint,
                        "get",
                        "--prefix",
                        "/vtep/v1/",
                    ],
                    "every host's record and station, under its lease",
                )],
            ),
            (
                "a host that stops: Ctrl-C the vtep of host B; its lease is revoked".to_string(),
                vec![self.vtep(&ha, &fdb_a, "b1's entry is gone")],
            ),
        ];
        (pings, look, more)
    }
}

/// What [`up`] made.
#[derive(Debug)]
pub struct Up {
    pub scenario: Scenario,
    pub state_file: PathBuf,
    /// Host namespaces with their underlay address (`lab-s2-a`, `198.18.0.1/24`); the switch
    /// of three hosts has none.
    pub hosts: Vec<(String, String)>,
    /// The etcd's client URL (S5).
    pub etcd: Option<String>,
    /// Things found that the printed commands will trip over (not refused: the lab is up).
    pub notes: Vec<String>,
    pub plan: Plan,
}

impl Up {
    /// What `cargo xtask lab up` prints.
    pub fn render(&self) -> String {
        let mut s = format!("lab {} is up: {}\n", self.scenario, self.scenario.title());
        for (ns, addr) in &self.hosts {
            if addr.is_empty() {
                let _ = writeln!(s, "  {ns}: the underlay switch (bridge br0)");
            } else {
                let _ = writeln!(s, "  {ns}: host, underlay eth0 {addr}");
            }
        }
        if let Some(etcd) = &self.etcd {
            let dir = self.state_file.with_file_name("s5-etcd");
            let _ = writeln!(s, "  etcd: {etcd} (log and data in {})", dir.display());
        }
        let _ = writeln!(s, "  recorded in {}\n", self.state_file.display());
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}\n");
        }
        s + &self.plan.render()
    }
}

/// The identity of a namespace that a lab made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NsRecord {
    name: String,
    dev: u64,
    ino: u64,
}

/// The etcd a lab started.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EtcdRecord {
    pid: u32,
    start: u64,
    port: u16,
    dir: PathBuf,
}

/// The state file's contents: what a lab made, as it makes it.
#[derive(Debug, Clone)]
struct Record {
    scenario: Scenario,
    vtep: PathBuf,
    root: PathBuf,
    created: u64,
    namespaces: Vec<NsRecord>,
    etcd: Option<EtcdRecord>,
}

impl Record {
    fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario.id(),
            "vtep": self.vtep,
            "root": self.root,
            "created": self.created,
            "namespaces": self.namespaces.iter().map(|n| json!({
                "name": n.name, "dev": n.dev, "ino": n.ino,
            })).collect::<Vec<_>>(),
            "etcd": self.etcd.as_ref().map(|e| json!({
                "pid": e.pid, "start": e.start, "port": e.port, "dir": e.dir,
            })),
        })
    }

    fn from_json(v: &Value) -> Result<Self> {
        let s = |v: &Value, k: &str| -> Result<String> {
            v[k].as_str()
                .map(str::to_string)
                .with_context(|| format!("no `{k}`"))
        };
        let n = |v: &Value, k: &str| -> Result<u64> {
            v[k].as_u64().with_context(|| format!("no `{k}`"))
        };
        let mut namespaces = Vec::new();
        for ns in v["namespaces"].as_array().context("no `namespaces`")? {
            namespaces.push(NsRecord {
                name: s(ns, "name")?,
                dev: n(ns, "dev")?,
                ino: n(ns, "ino")?,
            });
        }
        let etcd = match &v["etcd"] {
            Value::Null => None,
            e => Some(EtcdRecord {
                pid: u32::try_from(n(e, "pid")?)?,
                start: n(e, "start")?,
                port: u16::try_from(n(e, "port")?)?,
                dir: s(e, "dir")?.into(),
            }),
        };
        Ok(Self {
            scenario: Scenario::parse(&s(v, "scenario")?)?,
            vtep: s(v, "vtep")?.into(),
            root: s(v, "root")?.into(),
            created: n(v, "created")?,
            namespaces,
            etcd,
        })
    }

    fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.to_json())?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let v: Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?;
                Self::from_json(&v)
                    .with_context(|| format!("reading {}", path.display()))
                    .map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Builds `scenario`'s lab and leaves it up: its host namespaces with `eth0` underlays, for S5
/// the etcd; recorded in `state_dir` as it goes. `root` is the workspace root (the examples
/// are there) and `vtep` the binary the printed commands run.
///
/// Refused, before anything changes, when not root, when the scenario's lab is up already,
/// when a namespace of its names exists (something else made it), and for S5 when the etcd's
/// ports are taken. When a step fails, what was made is removed again and the error returned.
pub fn up(scenario: Scenario, state_dir: &Path, root: &Path, vtep: &Path) -> Result<Up> {
    if !is_root() {
        bail!("`lab up` needs root: it makes network namespaces (run it with sudo, or as root)");
    }
    refuse_if_up(scenario, state_dir)?;
    let existing = crate::list_netns();
    for ns in scenario.namespaces() {
        if existing.contains(&ns) {
            bail!(
                "namespace `{ns}` exists, but lab {scenario} is not up (no {}): something else \
                 made it. If it is a leftover, remove it with `ip netns del {ns}`; nothing was \
                 changed",
                scenario.state_file(state_dir).display()
            );
        }
    }
    if scenario == Scenario::S5 {
        for port in [S5_ETCD_PORT, S5_ETCD_PEER_PORT] {
            if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
                bail!(
                    "127.0.0.1:{port} is taken ({e}), and the S5 lab's etcd needs it (the S5 \
                     examples name 127.0.0.1:{S5_ETCD_PORT}): `ss -ltnp 'sport = :{port}'` shows \
                     by what; nothing was changed"
                );
            }
        }
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let path = scenario.state_file(state_dir);
    // The claim: of two `lab up` at once, one makes the file.
    let claim = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    match claim {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another `lab up` made it meanwhile.
            refuse_if_up(scenario, state_dir)?;
            bail!("{} appeared and went again; try again", path.display());
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    let mut record = Record {
        scenario,
        vtep: vtep.to_path_buf(),
        root: root.to_path_buf(),
        created: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        namespaces: Vec::new(),
        etcd: None,
    };
    let built = record
        .write(&path)
        .and_then(|()| build(&mut record, &path, state_dir));
    if let Err(e) = built {
        let undone = take_down(&record, &path, &mut |_| {});
        return Err(match undone {
            Ok(()) => e.context(format!(
                "building lab {scenario} failed; removed what it had made"
            )),
            Err(u) => e.context(format!(
                "building lab {scenario} failed, and removing what it had made failed too ({u:#}); \
                 `cargo xtask lab down {scenario}` tries again"
            )),
        });
    }
    let hosts = scenario
        .hosts()
        .iter()
        .map(|h| (scenario.host_ns(h.letter), format!("{}/24", h.underlay)))
        .chain((scenario.hosts().len() > 2).then(|| (scenario.host_ns("sw"), String::new())))
        .collect();
    Ok(Up {
        scenario,
        state_file: path,
        hosts,
        etcd: record
            .etcd
            .as_ref()
            .map(|e| format!("http://127.0.0.1:{}", e.port)),
        notes: notes(scenario),
        plan: Plan::new(scenario, root, vtep),
    })
}

/// Fails, saying how to take it down, when `scenario`'s lab is up (its state file exists):
/// what `up` refuses first, and what a caller can check before it builds anything.
pub fn refuse_if_up(scenario: Scenario, state_dir: &Path) -> Result<()> {
    let path = scenario.state_file(state_dir);
    if !path.exists() {
        return Ok(());
    }
    let since = Record::load(&path)
        .ok()
        .flatten()
        .map(|r| format!(" (made {})", age(r.created)))
        .unwrap_or_default();
    bail!(
        "lab {scenario} is up already{since}, recorded in {}: take it down first with \
         `cargo xtask lab down {scenario}` (`cargo xtask lab status` shows what is up)",
        path.display()
    )
}

/// Makes the namespaces, the underlay and the etcd of `record`'s scenario, recording each in
/// `path` once it exists.
fn build(record: &mut Record, path: &Path, state_dir: &Path) -> Result<()> {
    let scenario = record.scenario;
    for ns in scenario.namespaces() {
        ip(&["netns", "add", &ns])?;
        let meta = std::fs::metadata(format!("/run/netns/{ns}"))
            .with_context(|| format!("namespace {ns}"))?;
        record.namespaces.push(NsRecord {
            name: ns.clone(),
            dev: meta.dev(),
            ino: meta.ino(),
        });
        record.write(path)?;
        ip_in(&ns, &["link", "set", "lo", "up"])?;
    }
    let hosts = scenario.hosts();
    let sw = scenario.host_ns("sw");
    if hosts.len() > 2 {
        ip_in(&sw, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(&sw, &["link", "set", "br0", "up"])?;
    }
    for (i, h) in hosts.iter().enumerate() {
        let ns = scenario.host_ns(h.letter);
        // Made in the namespaces directly: nothing of the lab ever is in the caller's.
        if hosts.len() > 2 {
            let port = format!("p{i}");
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &sw,
            ])?;
            ip_in(&sw, &["link", "set", &port, "master", "br0"])?;
            ip_in(&sw, &["link", "set", &port, "up"])?;
        } else if i == 0 {
            let peer = scenario.host_ns(hosts[1].letter);
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", "eth0",
                "netns", &peer,
            ])?;
        }
        ip_in(
            &ns,
            &["addr", "add", &format!("{}/24", h.underlay), "dev", "eth0"],
        )?;
        ip_in(&ns, &["link", "set", "eth0", "up"])?;
    }
    if scenario == Scenario::S5 {
        start_etcd(record, path, &state_dir.join("s5-etcd"))?;
    }
    Ok(())
}

/// Starts the S5 etcd (its own process group, so it outlives us and no Ctrl-C of our terminal
/// reaches it), records it, and waits until it answers.
fn start_etcd(record: &mut Record, path: &Path, dir: &Path) -> Result<()> {
    // A data directory of a previous lab that was not removed (its lab's record lost): a new
    // cluster needs an empty one.
    if dir.exists() {
        bail!(
            "{} exists but no lab records it; remove it by hand if it is a leftover",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Recorded before the start, so that a failure from here on removes the directory.
    record.etcd = Some(EtcdRecord {
        pid: 0,
        start: 0,
        port: S5_ETCD_PORT,
        dir: dir.to_path_buf(),
    });
    record.write(path)?;
    let log_path = dir.join("etcd.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let client = format!("http://127.0.0.1:{S5_ETCD_PORT}");
    let peer = format!("http://127.0.0.1:{S5_ETCD_PEER_PORT}");
    let child = Command::new("etcd")
        .args(["--name", "vtep-lab", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("vtep-lab={peer}")])
        .args(["--logger", "zap", "--log-outputs", "stderr"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting etcd (Debian package etcd-server)")?;
    let pid = child.id();
    // Dropping the handle neither kills nor waits: etcd stays up after we exit.
    drop(child);
    let start = process_start(pid)?.context("etcd exited at once")?;
    record.etcd = Some(EtcdRecord {
        pid,
        start,
        port: S5_ETCD_PORT,
        dir: dir.to_path_buf(),
    });
    record.write(path)?;
    let deadline = Instant::now() + ETCD_START_LIMIT;
    loop {
        if etcd_healthy(S5_ETCD_PORT) {
            return Ok(());
        }
        reap(pid);
        if process_start(pid)? != Some(start) {
            bail!(
                "etcd exited before it answered:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "etcd did not answer on 127.0.0.1:{S5_ETCD_PORT} within {ETCD_START_LIMIT:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the etcd on 127.0.0.1:`port` answers its health check.
fn etcd_healthy(port: u16) -> bool {
    let ask = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1),
        )?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply)
    };
    ask().is_ok_and(|r| r.contains("\"health\":\"true\""))
}

/// What the printed commands will trip over: example workload namespaces or instances that
/// exist already.
fn notes(scenario: Scenario) -> Vec<String> {
    let mut notes = Vec::new();
    let existing = crate::list_netns();
    for ns in scenario.workload_namespaces() {
        if existing.iter().any(|e| e == ns) {
            notes.push(format!(
                "namespace `{ns}`, which an example config names as a workload, exists already: \
                 vtep adopts it instead of making it (and leaves it at its stop)"
            ));
        }
    }
    for name in scenario.instances() {
        let state = Path::new(VTEP_STATE_DIR).join(format!("{name}.json"));
        if state.exists() {
            notes.push(format!(
                "vtep instance `{name}` exists already ({}): `vtep up` with its example refuses \
                 until it is stopped or removed (`vtep down -n {name}`)",
                state.display()
            ));
        }
    }
    notes
}

/// A vtep instance (from its state file in /run/vtep) that runs in one of a lab's namespaces.
#[derive(Debug, Clone)]
struct Instance {
    name: String,
    netns: String,
    owner_pid: u32,
    owner_start: u64,
    kept: bool,
}

impl Instance {
    fn owner_alive(&self) -> bool {
        self.owner_pid != 0
            && process_start(self.owner_pid).ok().flatten() == Some(self.owner_start)
    }
}

/// The vtep instances whose state file says they run in one of `namespaces` (by name, and the
/// inode recorded when the lab made it).
fn instances_in(namespaces: &[NsRecord]) -> Vec<Instance> {
    let Ok(dir) = std::fs::read_dir(VTEP_STATE_DIR) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        // NAME.json; NAME.info.json and the other files of an instance have a second dot.
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        if name.contains('.') {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let Some(netns) = v["netns"]["name"].as_str() else {
            continue;
        };
        let ino = v["netns"]["id"]["file"]["ino"].as_u64();
        if !namespaces
            .iter()
            .any(|n| n.name == netns && ino.is_none_or(|i| i == n.ino))
        {
            continue;
        }
        found.push(Instance {
            name: name.to_string(),
            netns: netns.to_string(),
            owner_pid: v["owner"]["pid"].as_u64().unwrap_or(0) as u32,
            owner_start: v["owner"]["start"].as_u64().unwrap_or(0),
            kept: v["kept"].as_bool().unwrap_or(false),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Takes down `scenario`'s lab, or every lab that is up when None: see [`take_down`]. Says
/// what it does through `say`. A lab that is not up is said so and is no error. Fails when
/// something could not be removed (the state file then stays, for another `lab down`).
pub fn down(scenario: Option<Scenario>, state_dir: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    let scenarios: Vec<Scenario> = match scenario {
        Some(s) => vec![s],
        None => Scenario::ALL.to_vec(),
    };
    let mut any = false;
    let mut failed = Vec::new();
    for s in scenarios {
        let path = s.state_file(state_dir);
        let record = match Record::load(&path) {
            Ok(Some(r)) => r,
            Ok(None) => {
                if scenario.is_some() {
                    say(&format!("lab {s} is not up (no {})", path.display()));
                    stray(s, say);
                }
                continue;
            }
            Err(e) => {
                failed.push(format!("{e:#}"));
                continue;
            }
        };
        any = true;
        if !is_root() {
            bail!("`lab down` needs root: lab {s} is up, and it removes network namespaces");
        }
        say(&format!("taking down lab {s} ({})", s.title()));
        if let Err(e) = take_down(&record, &path, say) {
            failed.push(format!("lab {s}: {e:#}"));
        }
    }
    if scenario.is_none() && !any && failed.is_empty() {
        say(&format!(
            "no lab is up (no state file in {})",
            state_dir.display()
        ));
        for s in Scenario::ALL {
            stray(s, say);
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

/// Says which namespaces of `scenario`'s names exist although no lab records them.
fn stray(scenario: Scenario, say: &mut dyn FnMut(&str)) {
    let existing = crate::list_netns();
    let stray: Vec<String> = scenario
        .namespaces()
        .into_iter()
        .filter(|n| existing.contains(n))
        .collect();
    if !stray.is_empty() {
        say(&format!(
            "namespaces {} exist but no lab records them; left alone (`ip netns del NAME` \
             removes one)",
            stray.join(", ")
        ));
    }
}

/// Stops the vtep instances in `record`'s namespaces (SIGTERM to running owners, then `vtep
/// down` for what is left), stops its etcd and removes its data, removes its namespaces, then
/// the state file at `path`. Only what the record names, and only while it is still that
/// (namespace inode, process start time). Fails, keeping the state file, when something could
/// not be removed; when an instance could not be cleaned up, before anything else is removed
/// (`vtep down` needs the instance's namespace).
fn take_down(record: &Record, path: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    let mut failed: Vec<String> = Vec::new();
    let instances = instances_in(&record.namespaces);

    // Running instances first, all at once: each removes what it made at its stop.
    let running: Vec<&Instance> = instances.iter().filter(|i| i.owner_alive()).collect();
    for i in &running {
        say(&format!(
            "stopping vtep instance `{}` in {} (pid {}) with SIGTERM",
            i.name, i.netns, i.owner_pid
        ));
        let _ = kill(Pid::from_raw(i.owner_pid as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + VTEP_STOP_LIMIT;
    while running.iter().any(|i| i.owner_alive()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in running.iter().filter(|i| i.owner_alive()) {
        say(&format!(
            "vtep instance `{}` (pid {}) did not stop within {VTEP_STOP_LIMIT:?}: killing it",
            i.name, i.owner_pid
        ));
        let _ = kill(Pid::from_raw(i.owner_pid as i32), Signal::SIGKILL);
        let until = Instant::now() + Duration::from_secs(5);
        while i.owner_alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // What crashed, was killed or kept its datapath (`--keep`): `vtep down` removes it.
    for i in &instances {
        if !Path::new(VTEP_STATE_DIR)
            .join(format!("{}.json", i.name))
            .exists()
        {
            continue;
        }
        let why = if i.owner_alive() {
            "still running"
        } else if i.kept {
            "stopped keeping its datapath"
        } else {
            "not stopped cleanly"
        };
        say(&format!(
            "vtep instance `{}` in {} {why}: {} --netns {} down -n {}",
            i.name,
            i.netns,
            record.vtep.display(),
            i.netns,
            i.name
        ));
        match Command::new(&record.vtep)
            .args(["--netns", &i.netns, "down", "-n", &i.name])
            .env("NO_COLOR", "1")
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => failed.push(format!(
                "`vtep --netns {} down -n {}` failed ({}): {}",
                i.netns,
                i.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            )),
            Err(e) => failed.push(format!(
                "running {} for instance `{}`: {e} (build it with `cargo xtask build`, then \
                 `cargo xtask lab down` again)",
                record.vtep.display(),
                i.name
            )),
        }
    }

    // An instance not cleaned up needs its namespace for another `vtep down`: the rest stays.
    if !failed.is_empty() {
        bail!(
            "{}\n(left the lab as it is, {} included, for another `cargo xtask lab down {}`)",
            failed.join("\n"),
            path.display(),
            record.scenario
        );
    }

    // The etcd, after the vteps: their clean stops revoked their leases in it.
    if let Some(e) = &record.etcd {
        if e.pid != 0 && process_start(e.pid).ok().flatten() == Some(e.start) {
            say(&format!(
                "stopping etcd (pid {}, 127.0.0.1:{})",
                e.pid, e.port
            ));
            stop_process(e.pid, e.start);
            if process_start(e.pid).ok().flatten() == Some(e.start) {
                failed.push(format!("etcd (pid {}) did not stop", e.pid));
            }
        }
        // Only a directory of ours: under the state directory, named as we name it.
        let ours = path.parent().is_some_and(|d| e.dir == d.join("s5-etcd"));
        if ours && e.dir.exists() {
            say(&format!("removing {}", e.dir.display()));
            if let Err(err) = std::fs::remove_dir_all(&e.dir) {
                failed.push(format!("removing {}: {err}", e.dir.display()));
            }
        }
    }

    // The namespaces, each only while it is the one the lab made.
    for ns in &record.namespaces {
        let file = format!("/run/netns/{}", ns.name);
        match std::fs::metadata(&file) {
            Ok(m) if m.dev() == ns.dev && m.ino() == ns.ino => {
                say(&format!("removing namespace {}", ns.name));
                if let Err(e) = ip(&["netns", "del", &ns.name]) {
                    failed.push(format!("{e:#}"));
                }
            }
            Ok(_) => say(&format!(
                "leaving namespace {} alone: it was deleted and made again since the lab made it",
                ns.name
            )),
            Err(_) => {}
        }
    }

    if !failed.is_empty() {
        bail!(
            "{}\n(kept {} for another `cargo xtask lab down {}`)",
            failed.join("\n"),
            path.display(),
            record.scenario
        );
    }
    std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(tmp);
    if let Some(dir) = path.parent() {
        // Only when empty: another scenario's lab may be up.
        let _ = std::fs::remove_dir(dir);
    }
    say(&format!("lab {} is down", record.scenario));
    Ok(())
}

/// SIGTERM to process `pid` (start time `start`), SIGKILL if it still runs after 10 s.
fn stop_process(pid: u32, start: u64) {
    let alive = || process_start(pid).ok().flatten() == Some(start);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let deadline = Instant::now() + ETCD_STOP_LIMIT;
    while alive() && Instant::now() < deadline {
        reap(pid);
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        let until = Instant::now() + Duration::from_secs(5);
        while alive() && Instant::now() < until {
            reap(pid);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    reap(pid);
}

/// Reaps `pid` if it is our exited child (the etcd a `lab up` in this process started);
/// nothing otherwise.
fn reap(pid: u32) {
    let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
}

/// The start time (field 22 of /proc/PID/stat) of process `pid` while it runs; None when there
/// is none or only its zombie is left.
fn process_start(pid: u32) -> Result<Option<u64>> {
    let path = format!("/proc/{pid}/stat");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {path}")),
    };
    let rest = &text[text.rfind(')').with_context(|| format!("parsing {path}"))? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next().and_then(|f| f.chars().next());
    let start = fields
        .nth(18)
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("parsing {path}"))?;
    Ok((!matches!(state, Some('Z' | 'X'))).then_some(start))
}

/// Whether we run as root (/proc/self belongs to the effective user).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// "N s/min/h ago" for a unix time.
fn age(unix: u64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(unix);
    let s = now.saturating_sub(unix);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// What is up, as `cargo xtask lab status` prints it.
pub fn status(state_dir: &Path) -> Result<String> {
    let mut s = String::new();
    let existing = crate::list_netns();
    for scenario in Scenario::ALL {
        let path = scenario.state_file(state_dir);
        let Some(record) = Record::load(&path)? else {
            continue;
        };
        let _ = writeln!(
            s,
            "lab {scenario} is up (made {}): {}",
            age(record.created),
            scenario.title()
        );
        let _ = writeln!(s, "  state: {}", path.display());
        for ns in &record.namespaces {
            let there = if existing.contains(&ns.name) {
                ""
            } else {
                " (gone)"
            };
            let _ = writeln!(s, "  namespace {}{there}", ns.name);
        }
        if let Some(e) = &record.etcd {
            let state = if e.pid != 0 && process_start(e.pid).ok().flatten() == Some(e.start) {
                format!("running (pid {})", e.pid)
            } else {
                "not running".into()
            };
            let _ = writeln!(
                s,
                "  etcd http://127.0.0.1:{}: {state}, data in {}",
                e.port,
                e.dir.display()
            );
        }
        let instances = instances_in(&record.namespaces);
        if instances.is_empty() {
            let _ = writeln!(s, "  no vtep instance runs in it");
        }
        for i in instances {
            let state = if i.owner_alive() {
                format!("running (pid {})", i.owner_pid)
            } else if i.kept {
                "stopped, datapath kept".into()
            } else {
                "crashed (`lab down` cleans up after it)".into()
            };
            let _ = writeln!(s, "  vtep instance `{}` in {}: {state}", i.name, i.netns);
        }
    }
    if s.is_empty() {
        s = format!("no lab is up (no state file in {})\n", state_dir.display());
    }
    Ok(s)
}

/// What of `scenario`'s lab and examples still exists: host and workload namespaces, vtep
/// state files and pins of the examples' instances, the lab's state file and etcd directory.
/// Empty after a `lab down` that left nothing behind.
pub fn remains(scenario: Scenario, state_dir: &Path) -> Vec<String> {
    let existing = crate::list_netns();
    let mut left: Vec<String> = scenario
        .namespaces()
        .into_iter()
        .chain(scenario.workload_namespaces().into_iter().map(String::from))
        .filter(|n| existing.contains(n))
        .map(|n| format!("namespace {n}"))
        .collect();
    for name in scenario.instances() {
        for suffix in [
            ".json",
            ".info.json",
            ".runtime.json",
            ".store.json",
            ".sock",
        ] {
            let p = Path::new(VTEP_STATE_DIR).join(format!("{name}{suffix}"));
            if p.exists() {
                left.push(p.display().to_string());
            }
        }
        let pins = Path::new(VTEP_PIN_ROOT).join(name);
        if pins.exists() {
            left.push(pins.display().to_string());
        }
    }
    let mut files = vec![scenario.state_file(state_dir)];
    if scenario == Scenario::S5 {
        files.push(state_dir.join("s5-etcd"));
    }
    left.extend(
        files
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string()),
    );
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the tables give are the ones the example files have.
    #[test]
    fn tables_match_the_example_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for s in Scenario::ALL {
            for spec in s.all_specs() {
                let file = root.join("examples").join(spec.example);
                let text = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert!(
                    text.contains(&format!("name = \"{}\"", spec.instance)),
                    "{}: instance {}",
                    spec.example,
                    spec.instance
                );
                assert!(text.contains("interface = \"eth0\""), "{}", spec.example);
                // The local address, where the example names one, is the lab host's.
                if let Some(local) = text.lines().find_map(|l| l.strip_prefix("local = \"")) {
                    assert_eq!(
                        local.split('"').next(),
                        Some(spec.underlay),
                        "{}",
                        spec.example
                    );
                }
                let netns: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("netns = \""))
                    .map(|l| l.split('"').next().unwrap())
                    .collect();
                let want: Vec<&str> = spec.workloads.iter().map(|w| w.0).collect();
                assert_eq!(netns, want, "{}", spec.example);
                for (_, addr) in spec.workloads {
                    assert!(
                        text.contains(&format!("address = \"{addr}/")),
                        "{}: {addr}",
                        spec.example
                    );
                }
            }
        }
        let s5 = std::fs::read_to_string(root.join("examples/s5-host-a.toml")).unwrap();
        assert!(s5.contains(&format!("\"http://127.0.0.1:{S5_ETCD_PORT}\"")));
        assert!(s5.contains(&format!("id = {S5_VNI}")));
    }

    #[test]
    fn scenarios_parse_from_what_a_user_types() {
        assert_eq!(Scenario::parse("s2").unwrap(), Scenario::S2);
        assert_eq!(Scenario::parse("S5").unwrap(), Scenario::S5);
        assert_eq!(Scenario::parse("3").unwrap(), Scenario::S3);
        let e = Scenario::parse("s6").unwrap_err().to_string();
        assert!(e.contains("s1, s2, s3, s4 and s5"), "{e}");
    }

    #[test]
    fn the_record_round_trips() {
        let r = Record {
            scenario: Scenario::S5,
            vtep: "/w/target/debug/vtep".into(),
            root: "/w".into(),
            created: 42,
            namespaces: vec![NsRecord {
                name: "lab-s5-a".into(),
                dev: 4,
                ino: 4026532000,
            }],
            etcd: Some(EtcdRecord {
                pid: 7,
                start: 8,
                port: S5_ETCD_PORT,
                dir: "/run/vtep-lab/s5-etcd".into(),
            }),
        };
        let back = Record::from_json(&r.to_json()).unwrap();
        assert_eq!(back.namespaces, r.namespaces);
        assert_eq!(back.etcd, r.etcd);
        assert_eq!((back.scenario, back.created), (r.scenario, r.created));
    }

    #[test]
    fn the_plan_names_the_lab_hosts_and_the_examples() {
        let root = Path::new("/w");
        let plan = Plan::new(Scenario::S2, root, &root.join("target/debug/vtep"));
        assert_eq!(
            plan.start[0].line(),
            "target/debug/vtep --netns lab-s2-a up -c examples/s2-host-a.toml"
        );
        assert_eq!(
            plan.pings[0].line(),
            "ip netns exec s2-a1 ping -c 3 192.0.2.21"
        );
        let text = plan.render();
        assert!(
            text.contains("target/debug/vtep --netns lab-s2-a fdb show -n s2a"),
            "{text}"
        );
        assert!(text.contains("cargo xtask lab down s2"), "{text}");
        let s5 = Plan::new(Scenario::S5, root, &root.join("target/debug/vtep")).render();
        assert!(
            s5.contains("--netns lab-s5-c workload add s5-c2 vni 500 address 192.0.2.32/24"),
            "{s5}"
        );
    }
}
