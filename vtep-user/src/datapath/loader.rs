//! Loading the datapath object, attaching its programs and pinning its maps (reached through
//! the accessors in [`super::maps`]).

use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, ProgramArray},
    programs::{SchedClassifier, TcAttachType, Xdp, XdpMode, tc::SchedClassifierLinkId},
};
use vtep_common::maps::{DatapathConfig, GLOBAL_CONFIG, JUMP_PORT_FLOOD, MAP_FDB, MAP_JUMP};

use crate::datapath::maps::PINNED;

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

/// The loaded datapath. Dropping it detaches every program it attached.
pub struct Datapath {
    ebpf: Ebpf,
    /// The underlay program's attachment, replaced when the underlay is recreated.
    underlay_link: Option<SchedClassifierLinkId>,
}

impl Datapath {
    /// Loads the object with `config` and an FDB of `fdb_size` entries, and loads both programs
    /// into the kernel (the verifier runs here). Nothing is attached yet.
    pub fn load(config: &DatapathConfig, fdb_size: u32) -> Result<Self> {
        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_CONFIG, config, true)
            .map_max_entries(MAP_FDB, fdb_size)
            .load(OBJECT)
            .context("loading the datapath object")?;
        for name in [PROG_PORT, PROG_PORT_FLOOD, PROG_UNDERLAY] {
            classifier(&mut ebpf, name)?
                .load()
                .with_context(|| format!("loading program {name}"))?;
        }
        // Before anything is attached: a port program without its flood path would drop every
        // broadcast.
        let flood_fd = classifier(&mut ebpf, PROG_PORT_FLOOD)?
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
            ebpf,
            underlay_link: None,
        })
    }

    /// Attaches the decapsulation program to the ingress of `ifname`; called again when the
    /// underlay was deleted and an interface of its name is back, it releases the attachment
    /// to the old one.
    pub fn attach_underlay(&mut self, ifname: &str) -> Result<()> {
        let link = self.attach(PROG_UNDERLAY, ifname)?;
        if let Some(old) = self.underlay_link.replace(link) {
            // Its interface is gone; this only closes the link.
            let _ = classifier(&mut self.ebpf, PROG_UNDERLAY)?.detach(old);
        }
        Ok(())
    }

    /// Attaches the XDP program to `ifname` (MAC `mac`) in `mode`, loading it first (only
    /// instances with `underlay.xdp` pay for its verification). Call it after the TC programs
    /// are attached: it passes everything it does not finish to them. The attachment lives as
    /// long as the datapath. Fails when the kernel refuses the program or the attachment (a
    /// driver without native XDP asked for [`XdpMode::Driver`]).
    pub fn attach_xdp(&mut self, ifname: &str, mac: [u8; 6], mode: XdpMode) -> Result<()> {
        self.xdp_underlay()?
            .set(0, mac, 0)
            .context("writing the underlay's MAC for the XDP program")?;
        self.xdp_program()?
            .attach(ifname, mode)
            .with_context(|| format!("attaching {PROG_UNDERLAY_XDP} to {ifname} ({mode:?} mode)"))
            .map(drop)
    }

    /// The XDP program, loaded into the kernel on first use (for `BPF_PROG_TEST_RUN` too).
    pub fn xdp_program(&mut self) -> Result<&mut Xdp> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(PROG_UNDERLAY_XDP)
            .ok_or_else(|| anyhow!("program {PROG_UNDERLAY_XDP} missing"))?
            .try_into()?;
        if prog.fd().is_err() {
            prog.load()
                .with_context(|| format!("loading program {PROG_UNDERLAY_XDP}"))?;
        }
        Ok(prog)
    }

    /// Attaches the port program to the ingress of `ifname`.
    pub fn attach_port(&mut self, ifname: &str) -> Result<()> {
        self.attach(PROG_PORT, ifname).map(drop)
    }

    fn attach(&mut self, prog: &str, ifname: &str) -> Result<SchedClassifierLinkId> {
        classifier(&mut self.ebpf, prog)?
            .attach(ifname, TcAttachType::Ingress)
            .with_context(|| format!("attaching {prog} to {ifname}"))
    }

    /// A loaded program, for `BPF_PROG_TEST_RUN`.
    pub fn program(&mut self, name: &str) -> Result<&mut SchedClassifier> {
        classifier(&mut self.ebpf, name)
    }

    /// Pins every map under `dir` so `vtep fdb show` and `vtep stats` can read them.
    pub fn pin_maps(&self, dir: &Path) -> Result<()> {
        // Another instance that stops removes the shared parent directory when it is empty;
        // if that races with creating ours, try again.
        let mut attempt = 0;
        loop {
            match self.try_pin_maps(dir) {
                Err(e) if attempt < 3 && !dir.exists() => {
                    tracing::debug!("pinning raced with a cleanup, retrying: {e:#}");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn try_pin_maps(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for name in PINNED {
            let map = self
                .ebpf
                .map(name)
                .ok_or_else(|| anyhow!("map {name} missing"))?;
            map.pin(dir.join(name))
                .with_context(|| format!("pinning {name} in {}", dir.display()))?;
        }
        Ok(())
    }

    /// Map `name` of the loaded object; the typed accessors are in [`super::maps`].
    pub(super) fn map_mut(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("map {name} missing"))
    }
}

/// The TC program `name` of the object; fails when it has none.
fn classifier<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut SchedClassifier> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing"))?;
    Ok(prog.try_into()?)
}
