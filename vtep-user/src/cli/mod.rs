//! The `vtep` command line: one module per subcommand, each holding its clap types beside its
//! handler. Handlers parse what clap leaves as words (`dst IP vni N`, see [`keywords`]), call
//! [`crate::daemon`] or [`crate::ctl`], and print through [`render`], the one place output is
//! formatted.

pub mod check;
pub mod down;
pub mod fdb;
pub mod keywords;
pub mod monitor;
pub mod neigh;
pub mod reload;
pub mod render;
pub mod stats;
pub mod up;
pub mod vni;
pub mod workload;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// A VXLAN tunnel endpoint whose datapath runs in eBPF.
///
/// `vtep up` builds what a config file describes (workload namespaces, veths, host
/// interfaces), attaches TC programs (and optionally an XDP program) that encapsulate and
/// decapsulate VXLAN (RFC 7348) in the kernel, with the FDB and the VNI table in BPF maps, and
/// keeps them filled. The other commands read and change a running instance, found by its name.
/// On the wire it is plain VXLAN: a vtep host talks to the kernel's vxlan driver, a switch, or
/// another vtep.
///
/// Output follows iproute2: -j prints one line of JSON, -p the same pretty-printed, and the
/// text uses the JSON's field names. Logs go to stderr; VTEP_LOG=debug shows more. Manual pages:
/// vtep(8), one per command (vtep-up(8), vtep-fdb(8), ...), and vtep.toml(5) for the config file.
#[derive(Parser)]
#[command(name = "vtep", version)]
pub struct Cli {
    /// Act in network namespace NAME (from /run/netns), like `ip -n NAME`.
    ///
    /// Unlike `ip netns exec`, it keeps the mount namespace, so the pinned maps under
    /// /sys/fs/bpf are the host's and every command sees the same instances; `ip netns exec NS
    /// vtep up` is refused for that reason, before anything changes. The commands that read an
    /// instance name its ports in the instance's own namespace, whichever one they run in.
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build what a config file describes, attach the datapath and run until stopped.
    ///
    /// In order: parse and validate the whole config, then check it against the host: the
    /// underlay and adopted interfaces exist, `underlay.local` is an address of the host,
    /// interfaces to create do not exist, and no other instance has the name or serves or
    /// holds what the config needs. Nothing changes until all of that passed; then the name is
    /// claimed by writing the instance's state file, /run/vtep/NAME.json, under a lock, so of
    /// two starts only one passes.
    ///
    /// Then it creates the host interfaces and workloads (namespace, veth pair, MAC, address,
    /// MTU of the underlay less 50, or 70 over IPv6, default route via `gateway`) and the
    /// `[[route]]`s, recording each in the state file as its undo log; loads the datapath and
    /// pins its maps in /sys/fs/bpf/vtep/NAME; asks the kernel to keep the next hop of every
    /// remote VTEP resolved (managed neighbour entries); turns IPv4 forwarding on for the ports
    /// (the datapath's FIB lookups need it); attaches the programs; joins the VNIs' multicast
    /// groups. Under systemd it then reports READY=1.
    ///
    /// While it runs it follows links, routes and neighbours through the kernel's
    /// notifications, keeps the next hops of the remote VTEPs something names resolved and
    /// copied into the datapath (at most `underlay.max_remotes`), and ages out learned
    /// entries. An underlay that is deleted is attached again when an interface of its name is
    /// back; a port that is gone is taken out of the datapath and shown by `vtep stats`.
    ///
    /// SIGINT or SIGTERM stop it: it detaches the programs and removes what it made, newest
    /// first (with --keep it leaves everything forwarding). SIGHUP reloads the config file, as
    /// `vtep reload` does; SIGUSR2 stops it once as --keep would. If the start fails, what was
    /// made is removed again and the error printed (exit status 1). After a crash, `vtep down`
    /// removes what is left, or, for an instance started with --keep, the next `vtep up`
    /// adopts it.
    #[command(after_long_help = up::EXAMPLES)]
    Up(up::UpArgs),
    /// Remove what a `vtep up` that crashed, or stopped keeping its datapath, left behind.
    ///
    /// Runs the instance's undo log (/run/vtep/NAME.json), newest first: the programs' pinned
    /// links and maps in /sys/fs/bpf/vtep/NAME, the veths, host interfaces and workload
    /// namespaces vtep created, its routes, and the sysctls it changed (restored). Each object
    /// is removed only while it is still the one vtep made (interfaces by ifindex and name,
    /// namespaces by inode and cookie): one whose name now belongs to something else is left
    /// alone with a log line, and an item that fails stays in the log for another `vtep down`.
    ///
    /// It acts in the network namespace the instance ran in, entering it by its name under
    /// /run/netns (or PID 1's, for the host's); when it cannot find it, it refuses and says to
    /// run `vtep --netns NS down` there. Interfaces of the same names in the caller's namespace
    /// are never touched.
    ///
    /// Refused, changing nothing, while the instance's `vtep up` runs: stop that process with
    /// SIGINT or SIGTERM instead, and it removes what it made. A kept instance (`vtep up
    /// --keep`, SIGUSR2) stops forwarding here. Prints how many items it removed, or that there
    /// was nothing to remove.
    Down(Instance),
    /// Make a running instance apply its config file as the file is now.
    ///
    /// Signals the instance's `vtep up` (SIGHUP, as `systemctl reload` does through the unit)
    /// and waits up to 120 s for its answer (/run/vtep/NAME.reload.json), which it prints. The
    /// instance reads again the file it was started with (`-c FILE` must name that one) and
    /// applies it in place: VNIs, remotes, FDB and proxy entries, workloads and ports added,
    /// changed or removed, `underlay.accept`, `max_remotes`, `[metrics]`, and the settings the
    /// programs are loaded with (`underlay.local`, `srcport`, the UDP ports), for which new
    /// programs replace the old ones in their links without a gap. What the change does not
    /// touch keeps forwarding.
    ///
    /// The file is checked here first: a config that is invalid or does not fit the system is
    /// refused naming the field, changing nothing. `name` and `fdb_size` cannot change in a
    /// reload. A failed reload exits with status 1; the instance runs on with what it had, or
    /// with what was applied, as the message says.
    Reload(Instance),
    /// Validate a config file, and with --system check it against this host, changing nothing.
    ///
    /// Without --system, the file alone is checked, as `vtep up` does first: every error names
    /// its field (`vni[1].id: 16777216 is outside 1..=16777215`) and, for syntax and type
    /// errors, its line; the store's TLS files must be readable. This needs neither root nor
    /// the host the config is for. A config is read up to 1 MiB.
    ///
    /// Prints `NAME: config ok (N VNI(s))`, and with --system `NAME: system ok: underlay ...`
    /// with what it found; exit status 1 and the first problem otherwise.
    #[command(after_long_help = check::EXAMPLES)]
    Check(check::Args),
    /// Forwarding database of a running instance: list it, change it without a restart.
    ///
    /// The FDB maps a station's MAC in a VNI to a remote VTEP, or to one of the instance's
    /// local ports. The changes take effect at once, the role `bridge fdb` plays for a kernel
    /// vxlan device, with its syntax: the MAC first, then keyword-value pairs in any order
    /// (`dst IP`, `vni N`; the VNI is always needed, as an instance serves many). Like `bridge`,
    /// they print nothing on success.
    ///
    /// Everything is checked before the map is written: a malformed MAC, a group or all-zero
    /// MAC (but for the flood list's 00:00:00:00:00:00), a VNI outside 1..=16777215 or not
    /// configured in the instance, a `dst` that is not unicast or is the instance's own VTEP
    /// address are refused with an error naming the value, exit status 1, the FDB unchanged. A
    /// full FDB (`fdb_size`) is an error too.
    ///
    /// Entries of the config's remote stations (`[[vni.fdb]]` with `dst`) can be replaced and
    /// deleted like runtime ones (a replaced one becomes a runtime entry). Local entries
    /// (workloads, host interfaces, `[[vni.fdb]]` with `port`) cannot be changed here: only the
    /// config ties a station to a port. Runtime changes live in the running datapath: a restart
    /// that keeps it (--keep) keeps them, a full stop and start begins again from the config.
    ///
    /// A remote VTEP a command names is kept resolved from then on, until no entry or flood
    /// list names it: `add`, `replace` and `append` wake `vtep up` (SIGUSR1) and return once
    /// its next hop is resolvable, at most 2 s later. With `underlay.accept = "known"` they
    /// accept the VTEP's traffic before they write.
    Fdb {
        #[command(subcommand)]
        command: fdb::Command,
    },
    /// The ARP/ND proxy's neighbour table of a running instance: list it, change it.
    ///
    /// For a VNI with `proxy = true`, an ARP request or IPv6 neighbour solicitation from a
    /// local port for an address in this table is answered on the host and not flooded. The
    /// table holds the workloads' and host interfaces' own addresses, `[[vni.neigh]]`, what
    /// `vtep neigh add` adds, what the store publishes, and, where the VNI learns, senders of
    /// ARP and targets of neighbour advertisements decapsulated from remote VTEPs (aged like
    /// FDB entries). The syntax is `ip neigh`'s: the address first, then keyword-value pairs in
    /// any order. Changes print nothing on success.
    Neigh {
        #[command(subcommand)]
        command: neigh::Command,
    },
    /// VNIs of a running instance: UDP port, local ports, flood list, FDB entries.
    Vni {
        #[command(subcommand)]
        command: vni::Command,
    },
    /// Print a running instance's miss events, or with --drops its dropped packets, as they
    /// happen.
    ///
    /// Miss events, for VNIs with `l2miss` or `l3miss`: a unicast frame from a local port to a
    /// MAC the FDB does not know (`l2miss vni N mac MAC port PORT`), or, with `proxy`, an ARP
    /// request for an address the neighbour table does not know (`l3miss vni N ip IP port
    /// PORT`), each at most once a second per VNI and MAC or address. Unlike the kernel, vtep
    /// reports l2miss also when it floods the frame to `remotes`. With -j, one JSON object per
    /// line: `event`, `vni`, `mac` or `ip`, `port`. The events go through one ring buffer: two
    /// monitors of one instance split them.
    ///
    /// With --drops, every packet the datapath drops, while the monitor runs: `drop REASON on
    /// PORT (HOOK) [vni N] [from|to VTEP] LEN bytes: SUMMARY`, where HOOK is the program that
    /// dropped it (`port`, `underlay` or `xdp`), VTEP the remote VTEP that sent it (`from`) or
    /// that a lost flood copy was for (`to`), and SUMMARY its headers in brief (for VXLAN to
    /// the instance's ports, the outer and inner ones). With -j: `reason`, `hook`,
    /// `port`, `vni`, `remote`, `len`, `summary`. The datapath samples the first 128 bytes of
    /// a drop only while a monitor renews its deadline (every second), at most --rate per
    /// second per CPU: without a monitor a drop costs one map read. A flood copy that cannot
    /// be sent is sampled as that copy (encapsulated for its remote VTEP) while the others go.
    /// The reasons are listed in vtep-stats(8).
    ///
    /// Runs until interrupted, --count events were printed, or the instance stops (an error).
    #[command(after_long_help = monitor::EXAMPLES)]
    Monitor(monitor::Args),
    /// Traffic and drop counters of a running instance, and the state of its links and store.
    ///
    /// A table with a row per VNI, headed by the counters' names as `-j` has them: packets and
    /// bytes encapsulated to remote VTEPs (`encap_`), decapsulated from them (`decap_`) and
    /// switched between local ports (`local_`), flooded frames, learned FDB entries, learns
    /// refused over `maxaddress`, proxy replies, the decapsulations XDP did (`decap_by_xdp`),
    /// the VNI's drops (`drops`; by reason in `-j`'s `drops_by_reason`). Then `drops:`, every
    /// reason with its count since the datapath was loaded (kept across restarts with --keep)
    /// and, in brackets, the VNIs of the packets it dropped; `remotes: kept N (resolved N,
    /// resolving N, unreachable N, pending N) refused N`, the remote VTEPs whose next hops are
    /// kept resolved, by the state of the next hop, and those refused over
    /// `underlay.max_remotes`; `links:`, the underlay (`up`, `down` or `missing`) and each port
    /// that is gone; and with a `[store]`, `store:` with the client's state (`connected` with
    /// the revision and the hosts and stations it sees, or `unreachable` with the failed
    /// attempts and the last error); and with an IPv6 underlay with UDP checksums, `segmenter:`
    /// with its two interfaces and the packets they dropped (none unless it was changed by
    /// hand). The counters' and drop reasons' meanings are in vtep-stats(8).
    #[command(
        override_usage = "vtep stats [-c FILE | -n NAME] [-j | -p]",
        after_long_help = stats::EXAMPLES
    )]
    Stats(Show),
    /// Workloads added to and removed from a running instance (a namespace with a veth into a
    /// VNI).
    ///
    /// What a container runtime's network plugin calls: the instance builds the workload as
    /// it builds a configured one, checking it like the config (errors name the command's
    /// keyword: `mac: 01:00:00:00:00:01 is a group address`), applies it as a reload without
    /// loading the programs again, and publishes its station in the store, if any. The command
    /// talks to the instance over its control socket (/run/vtep/NAME.sock, root only) and prints
    /// what the instance did. Runtime workloads stay across `vtep reload` and restarts that
    /// keep the datapath (/run/vtep/NAME.runtime.json), and are removed at the stop like
    /// everything vtep made.
    Workload {
        #[command(subcommand)]
        command: workload::WorkloadCommand,
    },
    /// Existing interfaces attached to or detached from a running instance's VNIs.
    ///
    /// `vtep port add` makes an interface that exists a port of a VNI, as `[[vni.port]]` does
    /// in the config: its traffic is switched and tunnelled, and the stations behind it are
    /// learned. Through the control socket, as `vtep workload`; the port stays across reloads
    /// and restarts that keep the datapath, and is detached at the stop (the interface stays).
    Port {
        #[command(subcommand)]
        command: workload::PortCommand,
    },
}

/// Runs `command`; fails with what went wrong, for `main` to print.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Up(args) => up::run(&args).await,
        Command::Down(instance) => down::run(&instance).await,
        Command::Reload(instance) => reload::run(&instance),
        Command::Check(args) => check::run(&args).await,
        Command::Fdb { command } => fdb::run(command),
        Command::Neigh { command } => neigh::run(command),
        Command::Vni { command } => vni::run(&command),
        Command::Monitor(args) => monitor::run(&args),
        Command::Stats(show) => stats::run(&show),
        Command::Workload { command } => workload::run_workload(command),
        Command::Port { command } => workload::run_port(command),
    }
}

/// The config file of `vtep up` and `vtep check`.
#[derive(Args)]
pub struct ConfigFile {
    /// The instance's config file (TOML, see vtep.toml(5)).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Which instance: by its config file or its name.
#[derive(Args)]
pub struct Instance {
    /// The instance's config file; its `name` says which instance.
    #[arg(short, long, value_name = "FILE", conflicts_with = "name")]
    pub config: Option<PathBuf>,
    /// The instance's name (default "vtep", as a config without `name` has it).
    ///
    /// A name a config may give: 1 to 64 of [A-Za-z0-9_-].
    #[arg(short, long)]
    pub name: Option<String>,
}

impl Instance {
    /// The instance's name; fails when the config file given cannot be loaded, or `--name` is
    /// not a name a config may give (it becomes part of paths: `-n ../x` must not reach out).
    pub fn name(&self) -> Result<String> {
        Ok(match (&self.config, &self.name) {
            (Some(path), _) => Config::load(path)?.name,
            (None, Some(name)) => {
                crate::config::fields::check_instance_name("--name", name)?;
                name.clone()
            }
            (None, None) => "vtep".to_string(),
        })
    }
}

/// The arguments of the commands that print a running instance's state.
#[derive(Args)]
pub struct Show {
    #[command(flatten)]
    pub instance: Instance,
    /// JSON output in one line, with the field names the text uses, as `ip -j`.
    #[arg(short, long)]
    pub json: bool,
    /// JSON output, pretty-printed, as `ip -j -p` (implies --json).
    #[arg(short, long)]
    pub pretty: bool,
}

impl Show {
    /// How to print what was read.
    pub fn format(&self) -> render::Format {
        match (self.json, self.pretty) {
            (_, true) => render::Format::Pretty,
            (true, false) => render::Format::Json,
            (false, false) => render::Format::Text,
        }
    }
}
