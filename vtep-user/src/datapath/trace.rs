//! The datapath's debug log (`vtep up --trace-datapath [--trace-vni N]`): what it is set to at
//! load time ([`Trace`]), and the reader that turns the programs' aya-log records into vtep's
//! own log lines (target `vtep::datapath`, level INFO, so the default `VTEP_LOG=info` shows
//! them).
//!
//! Tracing is a property of the loaded programs, not of the maps: the loader writes it into
//! read-only globals (see vtep-ebpf trace.rs), so changing it means loading the programs again.
//! A reload reuses the running programs only when they were loaded with the same setting
//! ([`super::loader::Datapath::loaded_as`]); `vtep up` always loads its own programs, also when
//! it adopts a kept datapath, so the setting of the `vtep up` that runs is the one in force.

use std::{
    fmt::Write as _,
    os::fd::AsRawFd as _,
    sync::{Arc, Mutex},
};

use anyhow::{Context as _, Result, bail};
use aya::Ebpf;
use aya_log::EbpfLogger;
use tokio::io::{Interest, unix::AsyncFd};
use vtep_common::{
    drop::DropReason,
    maps::{HOOK_PORT, HOOK_UNDERLAY, HOOK_XDP},
    trace::{DROP_WORD, MAP_TRACE},
    wire::VNI_MAX,
};

/// What the datapath logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trace {
    /// Nothing: the log code is not even in the verified programs.
    #[default]
    Off,
    /// Every packet's fate.
    All,
    /// Only packets of this VNI (a drop before the VNI is known is not logged then).
    Vni(u32),
}

impl Trace {
    /// The setting `--trace-datapath` (`on`) and `--trace-vni` (`vni`) ask for. Fails, naming
    /// the option, when `vni` is no VNI (0, or more than 24 bits) or is given without `on`.
    pub fn from_flags(on: bool, vni: Option<u32>) -> Result<Self> {
        match (on, vni) {
            (false, None) => Ok(Self::Off),
            (true, None) => Ok(Self::All),
            (false, Some(_)) => bail!("--trace-vni: only with --trace-datapath"),
            (true, Some(vni)) => {
                check_vni(vni)?;
                Ok(Self::Vni(vni))
            }
        }
    }

    /// The values of the globals `TRACE` and `TRACE_VNI` (vtep_common::trace).
    pub fn globals(self) -> [u32; 2] {
        match self {
            Self::Off => [0, 0],
            Self::All => [1, 0],
            Self::Vni(vni) => [1, vni],
        }
    }

    pub fn is_on(self) -> bool {
        self != Self::Off
    }
}

impl std::fmt::Display for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::All => f.write_str("every VNI"),
            Self::Vni(vni) => write!(f, "VNI {vni}"),
        }
    }
}

/// Fails unless `vni` is a VNI: 1..=16777215.
fn check_vni(vni: u32) -> Result<()> {
    if let Some(problem) = vni_problem(vni) {
        bail!("--trace-vni: {problem}");
    }
    Ok(())
}

/// What is wrong with `vni` as a `--trace-vni`, if anything.
fn vni_problem(vni: u32) -> Option<String> {
    (vni == 0 || vni > VNI_MAX).then(|| {
        format!("{vni} is outside 1..=16777215 (leave --trace-vni out to trace every VNI)")
    })
}

/// The parser clap uses for `--trace-vni`: a number that is a VNI.
pub fn parse_vni(text: &str) -> std::result::Result<u32, String> {
    let vni: u32 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a VNI (1..=16777215)"))?;
    match vni_problem(vni) {
        Some(problem) => Err(problem),
        None => Ok(vni),
    }
}

/// A datapath log line as vtep prints it: the programs' record with drop reasons and hooks by
/// name (`drop 2 1 vni 200` becomes `drop unknown_vni (2) at underlay tc vni 200`, see
/// `vtep_common::trace`), and each local port's interface name, when `name` knows it, after its
/// index (`port 5 (vtep100p)`, also in a drop line's `copy to port 5`). Other records are
/// printed as they are.
pub fn render(record: &str, name: impl Fn(u32) -> Option<String>) -> String {
    let words: Vec<&str> = record.split(' ').collect();
    let mut out = String::with_capacity(record.len() + 32);
    let mut after_port = false;
    match words.as_slice() {
        [drop, reason, hook, rest @ ..] if *drop == DROP_WORD => {
            let reason_name = reason
                .parse::<u32>()
                .ok()
                .and_then(|r| DropReason::ALL.get(r as usize))
                .map_or("unknown reason", |r| r.name());
            let at = match hook.parse::<u32>() {
                Ok(HOOK_PORT) => "at port".to_string(),
                Ok(HOOK_UNDERLAY) => "at underlay tc".to_string(),
                Ok(HOOK_XDP) => "at underlay xdp".to_string(),
                _ => format!("at hook {hook}"),
            };
            let _ = write!(out, "drop {reason_name} ({reason}) {at}");
            for w in rest {
                out.push(' ');
                push_naming_ports(&mut out, w, &mut after_port, &name);
            }
        }
        _ => {
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                push_naming_ports(&mut out, w, &mut after_port, &name);
            }
        }
    }
    out
}

/// Appends word `w` of a record to `out`, and after the index of a port (`after_port`: the
/// word before was `port`) the interface name `name` gives it.
fn push_naming_ports(
    out: &mut String,
    w: &str,
    after_port: &mut bool,
    name: impl Fn(u32) -> Option<String>,
) {
    out.push_str(w);
    if *after_port && let Some(n) = w.parse().ok().and_then(name) {
        let _ = write!(out, " ({n})");
    }
    *after_port = w == "port";
}

/// The interface name of `ifindex` in this namespace (where the ports of vtep's instance are).
fn ifname(ifindex: u32) -> Option<String> {
    nix::net::if_::if_indextoname(ifindex)
        .ok()
        .and_then(|n| n.into_string().ok())
}

/// Hands the records aya-log reads to `tracing`, rendered.
struct ToTracing;

impl log::Log for ToTracing {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = render(&record.args().to_string(), ifname);
        tracing::info!(target: "vtep::datapath", "{line}");
    }

    fn flush(&self) {}
}

/// The datapath's log read on demand, rendered without interface names: what the tests read
/// after each `BPF_PROG_TEST_RUN`.
pub struct Lines {
    logger: EbpfLogger<Collect>,
    lines: Arc<Mutex<Vec<String>>>,
}

/// Keeps the records aya-log reads.
struct Collect(Arc<Mutex<Vec<String>>>);

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = render(&record.args().to_string(), |_| None);
        self.0.lock().expect("not poisoned").push(line);
    }

    fn flush(&self) {}
}

impl Lines {
    /// Takes the log of `ebpf` (its `AYA_LOGS` ring buffer). Fails when the object has no log
    /// map (taken already).
    pub fn open(ebpf: &mut Ebpf) -> Result<Self> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let logger = EbpfLogger::init_with_logger(ebpf, Collect(lines.clone()))
            .with_context(|| format!("opening the datapath's log ({MAP_TRACE})"))?;
        Ok(Self { logger, lines })
    }

    /// The lines written since the last call, oldest first.
    pub fn take(&mut self) -> Vec<String> {
        self.logger.flush();
        std::mem::take(&mut *self.lines.lock().expect("not poisoned"))
    }
}

/// A running reader of the datapath's log; it stops when dropped (with the datapath that holds
/// it).
pub struct Reader {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reader {
    /// Starts reading the log of `ebpf` (its `AYA_LOGS` ring buffer, which it takes) into
    /// vtep's log, on the tokio runtime of the caller. Fails when the object has no log map
    /// (taken already) or the runtime cannot watch it.
    pub fn start(ebpf: &mut Ebpf) -> Result<Self> {
        let logger = EbpfLogger::init_with_logger(ebpf, ToTracing)
            .with_context(|| format!("opening the datapath's log ({MAP_TRACE})"))?;
        let fd = logger.as_raw_fd();
        // SAFETY: the logger owns the ring buffer's map fd, which stays open, and is the fd
        // `as_raw_fd` returns, until the logger is dropped (with the `AsyncFd` that owns it).
        let mut logger = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
            .with_context(|| format!("watching the datapath's log (fd {fd})"))?;
        let task = tokio::spawn(async move {
            loop {
                let Ok(mut ready) = logger.readable_mut().await else {
                    tracing::warn!("the datapath's log cannot be read any more");
                    return;
                };
                ready.get_inner_mut().flush();
                ready.clear_ready();
            }
        });
        Ok(Self { task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_a_setting_and_bad_vnis_are_refused_by_name() {
        assert_eq!(Trace::from_flags(false, None).unwrap(), Trace::Off);
        assert_eq!(Trace::from_flags(true, None).unwrap(), Trace::All);
        assert_eq!(Trace::from_flags(true, Some(100)).unwrap(), Trace::Vni(100));
        assert_eq!(Trace::Vni(100).globals(), [1, 100]);
        assert_eq!(Trace::Off.globals(), [0, 0]);
        for bad in [0, 16_777_216] {
            let e = Trace::from_flags(true, Some(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("--trace-vni: ") && e.contains("1..=16777215"),
                "{e}"
            );
        }
        assert!(Trace::from_flags(false, Some(100)).is_err());
        assert_eq!(parse_vni("16777215"), Ok(16_777_215));
        assert!(parse_vni("0").unwrap_err().contains("outside 1..=16777215"));
        assert!(parse_vni("x").unwrap_err().contains("not a VNI"));
    }

    #[test]
    fn drop_lines_name_reason_and_hook_and_ports_get_their_names() {
        let names = |i: u32| (i == 5).then(|| "vtep100p".to_string());
        assert_eq!(
            render("drop 2 1 vni 200", names),
            "drop unknown_vni (2) at underlay tc vni 200"
        );
        assert_eq!(
            render("drop 8 0 vni 100", names),
            "drop no_route (8) at port vni 100"
        );
        assert_eq!(
            render("drop 99 7 vni 0", names),
            "drop unknown reason (99) at hook 7 vni 0"
        );
        assert_eq!(
            render("port 5 vni 100 dst 02:00:00:00:02:00 -> port 6", names),
            "port 5 (vtep100p) vni 100 dst 02:00:00:00:02:00 -> port 6"
        );
        // A flood copy's drop names the port it was for.
        assert_eq!(
            render("drop 17 0 vni 100 copy to port 5", names),
            "drop inner_too_big (17) at port vni 100 copy to port 5 (vtep100p)"
        );
        assert_eq!(
            render("flood vni 100 -> port 5", names),
            "flood vni 100 -> port 5 (vtep100p)"
        );
    }
}
