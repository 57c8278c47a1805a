//! Loading the datapath object, attaching its programs and pinning its maps (reached through
//! the accessors in [`super::maps`]).
//!
//! The attachments are TCX links held here, not by the programs: the next programs, of a
//! reload, take the links over and replace the program in each atomically
//! (`bpf_link_update`), so no packet meets an interface without one. When the datapath is to
//! outlive the process (`vtep up --keep`, a stop that keeps it), the links and the tail-call
//! table are pinned beside the maps ([`Datapath::pin_links`]), and the `vtep up` that adopts
//! the pins takes the links over the same way.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, ProgramArray},
    programs::{
        SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
        xdp::XdpLink,
    },
};
use tracing::info;
use vtep_common::{
    maps::{
        DP_F_IPV6, DatapathConfig, GLOBAL_CONFIG, JUMP_PORT_FLOOD, MAP_DROP_MONITOR,
        MAP_DROP_SAMPLES, MAP_DROPS, MAP_FDB, MAP_JUMP, MAP_RESOLVER, MAP_VNI_DROPS, MAP_VNI_STATS,
    },
    trace::{GLOBAL_TRACE, GLOBAL_TRACE_VNI, MAP_TRACE, TRACE_OFF_BYTES},
};

use crate::datapath::{
    maps::PINNED,
    trace::{self, Trace},
};

/// The compiled datapath (vtep-ebpf), built by this crate's build script.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vtep"));

/// Program on the ingress of every local port.
pub const PROG_PORT: &str = "vtep_port";
/// The port program's flood path, entered by tail call through `JUMP` (never attached).
pub const PROG_PORT_FLOOD: &str = "vtep_port_flood";
/// Program on the ingress of the underlay interface.
pub const PROG_UNDERLAY: &str = "vtep_underlay";
/// XDP program on the underlay interface, in front of [`PROG_UNDERLAY`] (`underlay.xdp`).
pub const PROG_UNDERLAY_XDP: &str = "vtep_underlay_xdp";

/// The object's name of the program in `role` (one of the `PROG_*` names, which are the IPv4
/// underlay's, untraced) for an IPv6 underlay (`ipv6`) or an IPv4 one, with the debug log
/// (`traced`, `--trace-datapath`) or without: the object has each program twice, and each
/// twice again (see vtep-ebpf main.rs); a datapath loads one family's, traced or not.
pub fn program_name(role: &str, ipv6: bool, traced: bool) -> Result<&'static str> {
    Ok(match (role, ipv6, traced) {
        (PROG_PORT, false, false) => PROG_PORT,
        (PROG_PORT, true, false) => "vtep_port6",
        (PROG_PORT, false, true) => "vtep_port_trace",
        (PROG_PORT, true, true) => "vtep_port6_trace",
        (PROG_PORT_FLOOD, false, false) => PROG_PORT_FLOOD,
        (PROG_PORT_FLOOD, true, false) => "vtep_port_flood6",
        (PROG_PORT_FLOOD, false, true) => "vtep_port_flood_trace",
        (PROG_PORT_FLOOD, true, true) => "vtep_port_flood6_trace",
        (PROG_UNDERLAY, false, false) => PROG_UNDERLAY,
        (PROG_UNDERLAY, true, false) => "vtep_underlay6",
        (PROG_UNDERLAY, false, true) => "vtep_underlay_trace",
        (PROG_UNDERLAY, true, true) => "vtep_underlay6_trace",
        (PROG_UNDERLAY_XDP, false, false) => PROG_UNDERLAY_XDP,
        (PROG_UNDERLAY_XDP, true, false) => "vtep_underlay_xdp6",
        (PROG_UNDERLAY_XDP, false, true) => "vtep_underlay_xdp_trace",
        (PROG_UNDERLAY_XDP, true, true) => "vtep_underlay_xdp6_trace",
        _ => bail!("no datapath program {role}"),
    })
}

/// Where a program of the datapath is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    /// The underlay interface with this index.
    Underlay(u32),
    /// The local port with this index.
    Port(u32),
    /// The XDP program on the underlay interface with this index.
    Xdp(u32),
}

impl Hook {
    /// The name of its link's pin: the interface's index is in it, so an adopting start knows
    /// which link is where.
    fn pin_name(self) -> String {
        match self {
            Self::Underlay(i) => format!("link-underlay-{i}"),
            Self::Port(i) => format!("link-port-{i}"),
            Self::Xdp(i) => format!("link-xdp-{i}"),
        }
    }

    /// The hook a pin of [`Hook::pin_name`] is for.
    fn from_pin_name(name: &str) -> Option<Self> {
        if let Some(i) = name.strip_prefix("link-underlay-") {
            return i.parse().ok().map(Self::Underlay);
        }
        if let Some(i) = name.strip_prefix("link-xdp-") {
            return i.parse().ok().map(Self::Xdp);
        }
        name.strip_prefix("link-port-")?
            .parse()
            .ok()
            .map(Self::Port)
    }
}

/// The loaded datapath. Dropping it closes its links; pinned ones stay attached (see
/// [`Datapath::detach_all`] for a full stop).
pub struct Datapath {
    /// `None` once [`Datapath::hand_over`] gave it to a successor.
    ebpf: Option<Ebpf>,
    /// What it was loaded with: a reload with the same needs no new load.
    loaded: Loaded,
    /// Every attachment, by where it is.
    links: BTreeMap<Hook, FdLink>,
    /// Where the maps are pinned, once [`Datapath::pin`] ran.
    pins: Option<PathBuf>,
    /// The links and the tail-call table are pinned there too.
    links_pinned: bool,
    /// The underlay is IPv6: the IPv6 programs are loaded (see [`program_name`]).
    ipv6: bool,
    /// The reader of the programs' log, once [`Datapath::start_log`] ran.
    log: Option<trace::Reader>,
}

/// What a datapath's programs were loaded with: the instance configuration, the FDB's capacity
/// and the debug log's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loaded {
    config: DatapathConfig,
    fdb_size: u32,
    trace: Trace,
}

impl Datapath {
    /// Loads the object with `config`, an FDB of `fdb_size` entries and the debug log set to
    /// `trace`, and loads its programs into the kernel (the verifier runs here). With `reuse`,
    /// the maps are the ones pinned there (an instance's state: FDB, counters, next hops),
    /// which the caller has checked are what this build defines ([`check_compatible`], before
    /// anything changed). Nothing is attached yet, and nobody reads the log until
    /// [`Datapath::start_log`].
    pub fn load(
        config: &DatapathConfig,
        fdb_size: u32,
        reuse: Option<&Path>,
        trace: Trace,
    ) -> Result<Self> {
        let globals = trace.globals();
        let mut loader = object_loader(config, fdb_size, &globals);
        if let Some(dir) = reuse {
            renew_stale(dir, fdb_size)?;
            for name in PINNED {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut ebpf = loader.load(OBJECT).context("loading the datapath object")?;
        let ipv6 = config.flags & DP_F_IPV6 != 0;
        for role in [PROG_PORT, PROG_PORT_FLOOD, PROG_UNDERLAY] {
            let name = program_name(role, ipv6, trace.is_on())?;
            classifier(&mut ebpf, name)?
                .load()
                .with_context(|| format!("loading program {name}"))?;
        }
        // Before anything is attached: a port program without its flood path would drop every
        // broadcast.
        let flood_fd = classifier(
            &mut ebpf,
            program_name(PROG_PORT_FLOOD, ipv6, trace.is_on())?,
        )?
        .fd()
        .context("flood program fd")?
        .try_clone()
        .context("duplicating the flood program fd")?;
        let mut jump: ProgramArray<&mut MapData> = ProgramArray::try_from(
            ebpf.map_mut(MAP_JUMP)
                .ok_or_else(|| anyhow!("datapath object has no map {MAP_JUMP}"))?,
        )?;
        jump.set(JUMP_PORT_FLOOD, &flood_fd, 0)
            .context("installing the flood program")?;
        Ok(Self {
            ebpf: Some(ebpf),
            loaded: Loaded {
                config: *config,
                fdb_size,
                trace,
            },
            links: BTreeMap::new(),
            pins: None,
            links_pinned: false,
            ipv6,
            log: None,
        })
    }

    /// The object's name of its program in `role` (its family's, traced or not).
    fn program_name(&self, role: &str) -> Result<&'static str> {
        program_name(role, self.ipv6, self.loaded.trace.is_on())
    }

    /// The debug log's setting the programs were loaded with.
    pub fn trace(&self) -> Trace {
        self.loaded.trace
    }

    /// Starts writing the programs' log records into vtep's log (target `vtep::datapath`), on
    /// the caller's tokio runtime, until the datapath is dropped; nothing to do when it was
    /// loaded with tracing off. Fails when the log cannot be opened, or was taken already
    /// ([`Datapath::take_log`]).
    pub fn start_log(&mut self) -> Result<()> {
        if !self.loaded.trace.is_on() || self.log.is_some() {
            return Ok(());
        }
        let reader = trace::Reader::start(self.ebpf()?)?;
        self.log = Some(reader);
        Ok(())
    }

    /// The programs' log, to read when the caller wants (the tests, after each run) instead of
    /// into vtep's log ([`Datapath::start_log`] has nothing to read afterwards). Fails when the
    /// log was taken already.
    pub fn take_log(&mut self) -> Result<trace::Lines> {
        trace::Lines::open(self.ebpf()?)
    }

    /// Takes over the links pinned in `dir` by the datapath of a stopped instance: the next
    /// [`Datapath::attach_port`] and [`Datapath::attach_underlay`] on their interfaces
    /// replace the program in them. Fails when a pin cannot be opened.
    pub fn adopt_links(&mut self, dir: &Path) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let Some(hook) = entry.file_name().to_str().and_then(Hook::from_pin_name) else {
                continue;
            };
            let pinned = PinnedLink::from_pin(entry.path())
                .with_context(|| format!("opening link {}", entry.path().display()))?;
            self.links.insert(hook, FdLink::from(pinned));
            self.links_pinned = true;
        }
        Ok(())
    }

    /// Whether it was loaded with `config`, an FDB of `fdb_size` and the debug log set to
    /// `trace`, and is still here: then a reload can go on with it ([`Datapath::hand_over`])
    /// instead of loading (and verifying) the same programs again. Programs loaded with another
    /// trace setting are not the same programs: tracing is decided at load time.
    pub fn loaded_as(&self, config: &DatapathConfig, fdb_size: u32, trace: Trace) -> bool {
        let wanted = Loaded {
            config: *config,
            fdb_size,
            trace,
        };
        self.ebpf.is_some() && self.loaded == wanted
    }

    /// Moves everything (the object, its links, the reader of its log) into a new value,
    /// leaving this one empty: a reload goes on with the same programs, and gives it back
    /// ([`Datapath::take_back`]) when it fails before the new config is in place.
    pub fn hand_over(&mut self) -> Datapath {
        Datapath {
            ebpf: self.ebpf.take(),
            loaded: self.loaded,
            links: std::mem::take(&mut self.links),
            pins: self.pins.clone(),
            links_pinned: self.links_pinned,
            ipv6: self.ipv6,
            log: self.log.take(),
        }
    }

    /// Takes back what [`Datapath::hand_over`] moved out.
    pub fn take_back(&mut self, mut successor: Datapath) {
        self.ebpf = successor.ebpf.take();
        self.links = std::mem::take(&mut successor.links);
        self.links_pinned = successor.links_pinned;
        self.log = successor.log.take();
    }

    /// The object; fails once it was handed over.
    fn ebpf(&mut self) -> Result<&mut Ebpf> {
        self.ebpf
            .as_mut()
            .ok_or_else(|| anyhow!("the datapath was handed to a reload"))
    }

    /// Takes over the links of `old`, the datapath a reload replaces (see
    /// [`Datapath::adopt_links`]).
    pub fn take_links(&mut self, old: &mut Datapath) {
        self.links.append(&mut old.links);
    }

    /// The ports that have a link: after [`Datapath::adopt_links`], those of the stopped
    /// instance.
    pub fn port_hooks(&self) -> Vec<u32> {
        self.links
            .keys()
            .filter_map(|h| match h {
                Hook::Port(i) => Some(*i),
                Hook::Underlay(_) | Hook::Xdp(_) => None,
            })
            .collect()
    }

    /// Attaches the decapsulation program to the ingress of `ifname` (index `ifindex`):
    /// replacing the program in the link there, or, on another interface (the underlay
    /// changed, or was deleted and is back with a new index), closing that link and making a
    /// new one.
    pub fn attach_underlay(&mut self, ifname: &str, ifindex: u32) -> Result<()> {
        self.detach_where(|h| matches!(h, Hook::Underlay(i) if i != ifindex));
        self.attach(
            self.program_name(PROG_UNDERLAY)?,
            Hook::Underlay(ifindex),
            ifname,
        )
    }

    /// Attaches the XDP program to `ifname` (index `ifindex`, MAC `mac`) in `mode`, loading it
    /// first (only instances with `underlay.xdp` pay for its verification): replacing the
    /// program in the link there, or, on another interface, closing that link and making a new
    /// one. Call it after the TC programs are attached: it passes everything it does not finish
    /// to them. Fails when the kernel refuses the program or the attachment (a driver without
    /// native XDP asked for [`XdpMode::Driver`]).
    pub fn attach_xdp(
        &mut self,
        ifname: &str,
        ifindex: u32,
        mac: [u8; 6],
        mode: XdpMode,
    ) -> Result<()> {
        self.xdp_underlay()?
            .set(0, mac, 0)
            .context("writing the underlay's MAC for the XDP program")?;
        self.detach_where(|h| matches!(h, Hook::Xdp(i) if i != ifindex));
        let hook = Hook::Xdp(ifindex);
        let held = self.links.remove(&hook);
        let replacing = held.is_some();
        let program = self.xdp_program()?;
        let id = match held {
            Some(link) => {
                let link = XdpLink::try_from(link)
                    .with_context(|| format!("the XDP link on {ifname} is not an XDP link"))?;
                program.attach_to_link(link).with_context(|| {
                    format!("replacing the XDP program on {ifname} with {PROG_UNDERLAY_XDP}")
                })?
            }
            None => program.attach(ifname, mode).with_context(|| {
                format!("attaching {PROG_UNDERLAY_XDP} to {ifname} ({mode:?} mode)")
            })?,
        };
        let link = FdLink::try_from(program.take_link(id)?).with_context(|| {
            format!("the XDP link on {ifname} is not a BPF link (a kernel before 5.9?)")
        })?;
        self.hold(hook, link, replacing)
    }

    /// Detaches the XDP program from the underlay, if it is attached (a reload that turned
    /// `underlay.xdp` off).
    pub fn detach_xdp(&mut self) {
        self.detach_where(|h| matches!(h, Hook::Xdp(_)));
    }

    /// The XDP program, loaded into the kernel on first use (for `BPF_PROG_TEST_RUN` too).
    pub fn xdp_program(&mut self) -> Result<&mut Xdp> {
        let name = self.program_name(PROG_UNDERLAY_XDP)?;
        let prog: &mut Xdp = self
            .ebpf()?
            .program_mut(name)
            .ok_or_else(|| anyhow!("program {name} missing"))?
            .try_into()?;
        if prog.fd().is_err() {
            prog.load()
                .with_context(|| format!("loading program {name}"))?;
        }
        Ok(prog)
    }

    /// Attaches the port program to the ingress of `ifname` (index `ifindex`), replacing the
    /// program in its link when it has one.
    pub fn attach_port(&mut self, ifname: &str, ifindex: u32) -> Result<()> {
        self.attach(self.program_name(PROG_PORT)?, Hook::Port(ifindex), ifname)
    }

    fn attach(&mut self, prog: &str, hook: Hook, ifname: &str) -> Result<()> {
        let held = self.links.remove(&hook);
        let program = match self.ebpf.as_mut() {
            Some(ebpf) => classifier(ebpf, prog)?,
            None => bail!("the datapath was handed to a reload"),
        };
        let replacing = held.is_some();
        let id = match held {
            Some(link) => {
                let link = SchedClassifierLink::try_from(link)
                    .with_context(|| format!("the link on {ifname} is not a TCX link"))?;
                program
                    .attach_to_link(link)
                    .with_context(|| format!("replacing the program on {ifname} with {prog}"))?
            }
            None => program
                .attach(ifname, TcAttachType::Ingress)
                .with_context(|| format!("attaching {prog} to {ifname}"))?,
        };
        let link = FdLink::try_from(program.take_link(id)?)
            .with_context(|| format!("the link of {prog} on {ifname} is not a TCX link"))?;
        self.hold(hook, link, replacing)
    }

    /// Keeps `link`, just made or (`replacing`) updated in place, at `hook`, pinning a new one
    /// when links are pinned: a link updated in place is the one its pin holds already.
    fn hold(&mut self, hook: Hook, link: FdLink, replacing: bool) -> Result<()> {
        let link = if self.links_pinned && !replacing {
            self.pin_link(hook, link)?
        } else {
            link
        };
        self.links.insert(hook, link);
        Ok(())
    }

    /// Pins `link`, at `hook`, in the pin directory (in place of a pin left by a link whose
    /// interface went away); returns it.
    fn pin_link(&self, hook: Hook, link: FdLink) -> Result<FdLink> {
        let dir = self
            .pins
            .as_ref()
            .ok_or_else(|| anyhow!("the datapath is not pinned yet"))?;
        let path = dir.join(hook.pin_name());
        let _ = std::fs::remove_file(&path);
        Ok(FdLink::from(
            link.pin(&path)
                .with_context(|| format!("pinning {}", path.display()))?,
        ))
    }

    /// Pins the links and the tail-call table (`on`: the datapath outlives the process, for a
    /// `vtep up` to adopt) or removes their pins (the process's end detaches it). Call once
    /// every link runs this datapath's programs: a table only a program refers to is emptied
    /// by the kernel, so until then the previous datapath's pinned table serves its programs.
    /// The links are pinned before the table is swapped. Fails when a pin cannot be made or
    /// removed; a link whose pin failed is closed (aya's `FdLink::pin` takes it), which
    /// detaches it unless it was pinned before.
    pub fn pin_links(&mut self, on: bool) -> Result<()> {
        let dir = self
            .pins
            .clone()
            .ok_or_else(|| anyhow!("the datapath is not pinned yet"))?;
        let hooks: Vec<Hook> = self.links.keys().copied().collect();
        for hook in hooks {
            let path = dir.join(hook.pin_name());
            match on {
                // Adopted or pinned before: the pin holds this very link.
                true if path.exists() => {}
                true => {
                    let link = self.links.remove(&hook).expect("listed");
                    let link = self.pin_link(hook, link)?;
                    self.links.insert(hook, link);
                }
                false => remove_pin(&path)?,
            }
        }
        let jump = dir.join(MAP_JUMP);
        remove_pin(&jump)?;
        if on {
            self.ebpf()?
                .map(MAP_JUMP)
                .ok_or_else(|| anyhow!("map {MAP_JUMP} missing"))?
                .pin(&jump)
                .with_context(|| format!("pinning {}", jump.display()))?;
        }
        self.links_pinned = on;
        Ok(())
    }

    /// Detaches the program at `hook` (an adopted port no longer used, a gone underlay): its
    /// pin, if any, goes and its link is closed.
    pub fn detach(&mut self, hook: Hook) {
        if let Some(dir) = &self.pins {
            let _ = remove_pin(&dir.join(hook.pin_name()));
        }
        self.links.remove(&hook);
    }

    /// Detaches every program (a full stop): no packet meets them after this returns.
    pub fn detach_all(&mut self) {
        self.detach_where(|_| true);
    }

    /// Detaches every program whose hook `stale` picks.
    fn detach_where(&mut self, stale: impl Fn(Hook) -> bool) {
        let hooks: Vec<Hook> = self.links.keys().copied().filter(|h| stale(*h)).collect();
        for hook in hooks {
            self.detach(hook);
        }
    }

    /// The loaded program in `role` (a `PROG_*` name: this datapath's family's program in that
    /// role), for `BPF_PROG_TEST_RUN`.
    pub fn program(&mut self, role: &str) -> Result<&mut SchedClassifier> {
        let name = self.program_name(role)?;
        classifier(self.ebpf()?, name)
    }

    /// Pins every map under `dir` so `vtep fdb show` and `vtep stats` can read them (maps the
    /// load reused are there already); links attached from now on are pinned there too.
    pub fn pin(&mut self, dir: &Path) -> Result<()> {
        // Another instance that stops removes the shared parent directory when it is empty;
        // if that races with creating ours, try again.
        let mut attempt = 0;
        loop {
            match self.try_pin_maps(dir) {
                Err(e) if attempt < 3 && !dir.exists() => {
                    tracing::debug!("pinning raced with a cleanup, retrying: {e:#}");
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(()) => break,
            }
        }
        self.pins = Some(dir.to_path_buf());
        Ok(())
    }

    fn try_pin_maps(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for name in PINNED {
            let path = dir.join(name);
            if path.exists() {
                // Reused by the load (the caller checked the directory is the instance's).
                continue;
            }
            let map = self
                .ebpf
                .as_ref()
                .and_then(|e| e.map(name))
                .ok_or_else(|| anyhow!("map {name} missing"))?;
            map.pin(&path)
                .with_context(|| format!("pinning {name} in {}", dir.display()))?;
        }
        Ok(())
    }

    /// Map `name` of the loaded object; the typed accessors are in [`super::maps`].
    pub(super) fn map_mut(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.ebpf()?
            .map_mut(name)
            .ok_or_else(|| anyhow!("map {name} missing"))
    }
}

/// The loader of the datapath object with the instance configuration `config`, an FDB of
/// `fdb_size` entries and the trace globals `trace` ([`Trace::globals`]); its programs are
/// loaded one by one afterwards. [`Datapath::load`] uses it, and so does the tests' tool that
/// measures what each program costs the verifier.
pub fn object_loader<'a>(
    config: &'a DatapathConfig,
    fdb_size: u32,
    trace: &'a [u32; 2],
) -> EbpfLoader<'a> {
    let mut loader = EbpfLoader::new();
    loader
        .override_global(GLOBAL_CONFIG, config, true)
        .override_global(GLOBAL_TRACE, &trace[0], true)
        .override_global(GLOBAL_TRACE_VNI, &trace[1], true)
        .map_max_entries(MAP_FDB, fdb_size);
    if trace[0] == 0 {
        // Never written to then: the smallest ring buffer instead of 128 KiB per instance.
        loader.map_max_entries(MAP_TRACE, TRACE_OFF_BYTES);
    }
    loader
}

/// Removes pin `path`; gone already is fine.
fn remove_pin(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Maps that hold only counters, or what lives for a moment (the drop sampler's switch and
/// ring, the resolver's published counts): a build whose definition of one differs from the
/// kept datapath's (a counter added, a drop reason more), or that has one the kept datapath
/// lacks, makes it anew when it adopts the datapath ([`renew_stale`]). Those counters restart
/// at zero; the forwarding state (FDB, next hops, proxy tables) is kept, so such an upgrade
/// does not interrupt traffic. Every other map must match ([`check_compatible`]).
pub const RENEWABLE: [&str; 6] = [
    MAP_VNI_STATS,
    MAP_DROPS,
    MAP_VNI_DROPS,
    MAP_RESOLVER,
    MAP_DROP_MONITOR,
    MAP_DROP_SAMPLES,
];

/// Fails, saying which map differs and how, unless every map pinned in `dir` that is not
/// [`RENEWABLE`] has the type and sizes this build defines for it (the FDB holding `fdb_size`
/// entries): programs of this build must never read another build's values under their own
/// layout. The caller has checked the layout version ([`vtep_common::maps::LAYOUT`]) recorded
/// beside them.
pub fn check_compatible(dir: &Path, fdb_size: u32) -> Result<()> {
    let object = aya_obj::Object::parse(OBJECT).context("reading the datapath object")?;
    for name in PINNED.iter().filter(|n| !RENEWABLE.contains(n)) {
        if let Some(what) = pinned_differs(&object, dir, name, fdb_size)? {
            bail!("pinned map {name} has {what}");
        }
    }
    Ok(())
}

/// Removes the pins in `dir` of the [`RENEWABLE`] maps whose definition differs from this
/// build's, so loading makes them anew (a missing one is made anyway). Returns their names.
fn renew_stale(dir: &Path, fdb_size: u32) -> Result<Vec<&'static str>> {
    let object = aya_obj::Object::parse(OBJECT).context("reading the datapath object")?;
    let mut renewed = Vec::new();
    for name in RENEWABLE {
        if !dir.join(name).exists() {
            continue;
        }
        if let Some(what) = pinned_differs(&object, dir, name, fdb_size)? {
            info!(
                map = name,
                "the kept datapath's {name} has {what}: made anew, its counters restart at zero"
            );
            remove_pin(&dir.join(name))?;
            renewed.push(name);
        }
    }
    Ok(renewed)
}

/// How the map pinned as `name` in `dir` differs from `object`'s definition of it (the FDB
/// holding `fdb_size` entries), `None` when it does not. Fails when the pin cannot be opened.
fn pinned_differs(
    object: &aya_obj::Object,
    dir: &Path,
    name: &str,
    fdb_size: u32,
) -> Result<Option<String>> {
    let def = object
        .maps
        .get(name)
        .ok_or_else(|| anyhow!("datapath object has no map {name}"))?;
    let max_entries = if name == MAP_FDB {
        fdb_size
    } else {
        def.max_entries()
    };
    let path = dir.join(name);
    let info = MapData::from_pin(&path)
        .with_context(|| format!("opening {}", path.display()))?
        .info()
        .with_context(|| format!("reading {}", path.display()))?;
    let pinned = (
        info.map_type().map(|t| t as u32).unwrap_or(u32::MAX),
        info.key_size(),
        info.value_size(),
        info.max_entries(),
    );
    let wanted = (
        def.map_type(),
        def.key_size(),
        def.value_size(),
        max_entries,
    );
    if pinned == wanted {
        return Ok(None);
    }
    Ok(Some(if pinned.0 != wanted.0 {
        "another map type".to_string()
    } else if pinned.3 != wanted.3 && name == MAP_FDB {
        format!(
            "{} entries where fdb_size is {fdb_size} (fdb_size cannot change on a restart that keeps the datapath)",
            pinned.3
        )
    } else {
        format!(
            "key/value/entries {}/{}/{} where this build has {}/{}/{}",
            pinned.1, pinned.2, pinned.3, wanted.1, wanted.2, wanted.3
        )
    }))
}

/// The TC program `name` of the object; fails when it has none.
fn classifier<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut SchedClassifier> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing"))?;
    Ok(prog.try_into()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_read_back() {
        for hook in [Hook::Underlay(3), Hook::Port(4_000_000)] {
            assert_eq!(Hook::from_pin_name(&hook.pin_name()), Some(hook));
        }
        assert_eq!(Hook::from_pin_name("FDB"), None);
        assert_eq!(Hook::from_pin_name("link-port-x"), None);
    }
}
