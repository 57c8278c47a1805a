//! The instance's side of `vtep workload` and `vtep port` ([`crate::ctl::runtime`]): the control
//! socket it listens on, and what was added at run time ([`Additions`]), which the instance runs
//! on top of its config file (also across reloads, and across a restart that keeps the
//! datapath: they are kept in `/run/vtep/NAME.runtime.json`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
};

use crate::{
    config::{AdoptedPort, Config, ConfigError, Workload, invalid},
    ctl::runtime::{MAX_LINE, PortSpec, Reply, Request, WorkloadSpec},
    instance,
};

/// What was added at run time, in the order it was added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Additions {
    pub workloads: Vec<WorkloadSpec>,
    pub ports: Vec<PortSpec>,
}

impl Additions {
    /// The file of instance `name`'s additions.
    pub fn path(name: &str) -> PathBuf {
        PathBuf::from(instance::STATE_DIR).join(format!("{name}.runtime.json"))
    }

    /// The additions a kept instance left, if any.
    pub fn load(name: &str) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(Self::path(name)).ok()?).ok()
    }

    /// Writes them (in place: the file keeps the identity the undo log recorded).
    pub fn write(&self, name: &str) -> Result<()> {
        let path = Self::path(name);
        std::fs::write(&path, serde_json::to_vec(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty() && self.ports.is_empty()
    }

    /// These additions with `req` applied, and what that does in words. Fails, naming the
    /// keyword, when `req` removes what was not added at run time (`file` is the config file's
    /// config, whose own workloads and ports only it changes).
    pub fn with(&self, req: &Request, file: &Config) -> Result<(Self, String), ConfigError> {
        let mut out = self.clone();
        let message = match req {
            Request::WorkloadAdd(w) => {
                out.workloads.push(w.clone());
                format!("workload {} added to VNI {}", w.netns, w.vni)
            }
            Request::PortAdd(p) => {
                out.ports.push(p.clone());
                format!("port {} added to VNI {}", p.interface, p.vni)
            }
            Request::WorkloadDel { netns } => {
                let before = out.workloads.len();
                out.workloads.retain(|w| &w.netns != netns);
                if out.workloads.len() == before {
                    let in_file = file
                        .vnis
                        .iter()
                        .any(|v| v.workloads.iter().any(|w| &w.netns == netns));
                    return Err(invalid(
                        "netns",
                        if in_file {
                            format!(
                                "the workload in `{netns}` is the config file's; remove it there and `vtep reload`"
                            )
                        } else {
                            format!("no workload in namespace `{netns}` was added at run time")
                        },
                    ));
                }
                format!("workload {netns} removed")
            }
            Request::PortDel { interface } => {
                let before = out.ports.len();
                out.ports.retain(|p| &p.interface != interface);
                if out.ports.len() == before {
                    let in_file = file
                        .vnis
                        .iter()
                        .any(|v| v.ports.iter().any(|p| &p.interface == interface));
                    return Err(invalid(
                        "interface",
                        if in_file {
                            format!(
                                "port `{interface}` is the config file's; remove it there and `vtep reload`"
                            )
                        } else {
                            format!("no port `{interface}` was added at run time")
                        },
                    ));
                }
                format!("port {interface} removed")
            }
        };
        Ok((out, message))
    }

    /// `file` with these additions in their VNIs, validated. Fails, naming the keyword of the
    /// addition that is wrong (`mac`, `address`, ...) or the config field, when the result is
    /// not a valid config.
    pub fn merged(&self, file: &Config) -> Result<Config, ConfigError> {
        let mut config = file.clone();
        // Where each addition lands, to name its fields as the command's keywords.
        let mut places = Vec::new();
        for w in &self.workloads {
            let (i, vni) = vni_of(&mut config, w.vni, "workload", &w.netns)?;
            places.push((format!("vni[{i}].workload[{}]", vni.workloads.len()), None));
            vni.workloads.push(workload(w)?);
        }
        for p in &self.ports {
            let (i, vni) = vni_of(&mut config, p.vni, "port", &p.interface)?;
            places.push((
                format!("vni[{i}].port[{}]", vni.ports.len()),
                Some("interface"),
            ));
            vni.ports.push(AdoptedPort {
                interface: p.interface.clone(),
            });
        }
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { field, reason } => {
                for (at, _) in &places {
                    if let Some(rest) = field.strip_prefix(at.as_str()) {
                        let keyword = rest.trim_start_matches('.');
                        let keyword = if keyword.is_empty() {
                            "interface"
                        } else {
                            keyword
                        };
                        return invalid(keyword.replace('_', "-"), reason);
                    }
                }
                ConfigError::Invalid { field, reason }
            }
            other => other,
        })?;
        Ok(config)
    }
}

/// Where the workload or port `req` adds is in `config` (`vni[0].workload[2]`), for naming its
/// fields as the command's keywords.
pub fn place(req: &Request, config: &Config) -> Option<String> {
    config.vnis.iter().enumerate().find_map(|(i, v)| match req {
        Request::WorkloadAdd(w) if v.id == w.vni => v
            .workloads
            .iter()
            .position(|x| x.netns == w.netns)
            .map(|j| format!("vni[{i}].workload[{j}]")),
        Request::PortAdd(p) if v.id == p.vni => v
            .ports
            .iter()
            .position(|x| x.interface == p.interface)
            .map(|j| format!("vni[{i}].port[{j}]")),
        _ => None,
    })
}

/// VNI `id` of `config` and its index; fails naming `vni` when the config has no such VNI.
fn vni_of<'a>(
    config: &'a mut Config,
    id: u32,
    what: &str,
    name: &str,
) -> Result<(usize, &'a mut crate::config::Vni), ConfigError> {
    let instance = config.name.clone();
    config
        .vnis
        .iter_mut()
        .enumerate()
        .find(|(_, v)| v.id == id)
        .ok_or_else(|| {
            invalid(
                "vni",
                format!("VNI {id} (of {what} `{name}`) is not configured in instance `{instance}`"),
            )
        })
}

/// The config's workload for `w`; fails naming the keyword that does not parse.
fn workload(w: &WorkloadSpec) -> Result<Workload, ConfigError> {
    fn text(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim)
    }
    let address = match text(&w.address) {
        Some(a) => Some(a.parse().map_err(|e: String| invalid("address", e))?),
        None => None,
    };
    let mac = match text(&w.mac) {
        Some(m) => Some(m.parse().map_err(|e: String| invalid("mac", e))?),
        None => None,
    };
    let gateway = match text(&w.gateway) {
        Some(g) => Some(
            g.parse()
                .map_err(|_| invalid("gateway", format!("`{g}` is not an IPv4 address")))?,
        ),
        None => None,
    };
    Ok(Workload {
        netns: w.netns.clone(),
        address,
        mac,
        interface: w.interface.clone().unwrap_or_else(|| "eth0".into()),
        host_interface: w.host_interface.clone(),
        gateway,
    })
}

/// The control socket, listening.
pub struct Control {
    listener: UnixListener,
}

impl Control {
    /// Listens on `path` (only root may connect): a socket left there by a crashed process of
    /// this instance, whose name this process holds, is replaced.
    pub fn bind(path: &Path) -> Result<Self> {
        use std::os::unix::fs::FileTypeExt as _;
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
        Ok(Self { listener })
    }

    /// The next request and where to answer it; a connection that sends no readable request
    /// is answered with why and skipped.
    pub async fn next(&self) -> (Request, Answer) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::io::AsyncReadExt::take(&mut reader, MAX_LINE as u64).read_line(&mut line),
            )
            .await;
            let answer = Answer(reader.into_inner());
            match read {
                Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
                    Ok(req) => return (req, answer),
                    Err(e) => {
                        answer
                            .send(Err(anyhow::anyhow!("unreadable request: {e}")))
                            .await
                    }
                },
                _ => answer.send(Err(anyhow::anyhow!("no request"))).await,
            }
        }
    }
}

/// Where a request is answered.
pub struct Answer(UnixStream);

impl Answer {
    /// Sends the outcome; a command that went away meanwhile is not an error.
    pub async fn send(mut self, outcome: Result<String>) {
        let reply = match outcome {
            Ok(message) => Reply { ok: true, message },
            Err(e) => Reply {
                ok: false,
                message: format!("{e:#}"),
            },
        };
        let mut line = serde_json::to_vec(&reply).expect("serializable");
        line.push(b'\n');
        let _ = self.0.write_all(&line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Config {
        Config::parse(
            "name = \"t\"\n[underlay]\ninterface = \"eth0\"\n[[vni]]\nid = 5\n\
             [[vni.workload]]\nnetns = \"w0\"\nmac = \"02:00:00:00:00:01\"\n",
        )
        .unwrap()
    }

    fn spec(netns: &str, mac: &str) -> WorkloadSpec {
        WorkloadSpec {
            vni: 5,
            netns: netns.into(),
            address: Some("192.0.2.9/24".into()),
            mac: Some(mac.into()),
            interface: None,
            host_interface: None,
            gateway: None,
        }
    }

    fn field(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_addition_lands_in_its_vni_and_is_named_by_its_keywords() {
        let (adds, message) = Additions::default()
            .with(
                &Request::WorkloadAdd(spec("w1", "02:00:00:00:00:02")),
                &file(),
            )
            .unwrap();
        assert_eq!(message, "workload w1 added to VNI 5");
        let config = adds.merged(&file()).unwrap();
        assert_eq!(config.vnis[0].workloads.len(), 2);
        assert_eq!(config.vnis[0].workloads[1].netns, "w1");

        let bad_mac = Additions {
            workloads: vec![spec("w1", "01:00:00:00:00:02")],
            ..Default::default()
        };
        assert_eq!(field(bad_mac.merged(&file()).unwrap_err()), "mac");
        let unparsable = Additions {
            workloads: vec![spec("w1", "zz")],
            ..Default::default()
        };
        assert_eq!(field(unparsable.merged(&file()).unwrap_err()), "mac");
        let dup = Additions {
            workloads: vec![spec("w0", "02:00:00:00:00:03")],
            ..Default::default()
        };
        assert_eq!(field(dup.merged(&file()).unwrap_err()), "netns");
        let mut other_vni = spec("w2", "02:00:00:00:00:04");
        other_vni.vni = 6;
        let wrong = Additions {
            workloads: vec![other_vni],
            ..Default::default()
        };
        assert_eq!(field(wrong.merged(&file()).unwrap_err()), "vni");
    }

    #[test]
    fn only_what_was_added_at_run_time_is_removed() {
        let adds = Additions {
            workloads: vec![spec("w1", "02:00:00:00:00:02")],
            ..Default::default()
        };
        let del = |netns: &str| Request::WorkloadDel {
            netns: netns.into(),
        };
        let (left, _) = adds.with(&del("w1"), &file()).unwrap();
        assert!(left.is_empty());
        let e = adds.with(&del("w0"), &file()).unwrap_err();
        assert!(e.to_string().contains("config file's"), "{e}");
        assert_eq!(
            field(adds.with(&del("nope"), &file()).unwrap_err()),
            "netns"
        );
    }
}
