//! Workloads and ports added to a running instance and removed again (`vtep workload add|del`,
//! `vtep port add|del`), the pattern a container runtime's network plugin calls. Unlike the other
//! commands, these build interfaces and namespaces, so the instance itself makes the change:
//! the command sends a [`Request`] over the instance's control socket and prints its [`Reply`].
//! The instance checks the change like a config (with these keywords as the field names), makes
//! it as a reload would, and publishes the new stations in the store; a refused change changes
//! nothing.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::instance;

/// How long a command waits for the instance's answer: building a namespace and a veth pair is
/// quick, but the instance may be busy with a reload.
const REPLY_WAIT: Duration = Duration::from_secs(60);
/// The longest request or reply line read (a reply is one message).
pub const MAX_LINE: usize = 64 * 1024;

/// The control socket of instance `name`.
pub fn socket(name: &str) -> PathBuf {
    PathBuf::from(instance::STATE_DIR).join(format!("{name}.sock"))
}

/// A workload as `vtep workload add` gives it: the config's `[[vni.workload]]` fields as text,
/// checked by the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    pub vni: u32,
    pub netns: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// An existing interface to adopt as a port, as `vtep port add` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub vni: u32,
    pub interface: String,
}

/// One change to a running instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    WorkloadAdd(WorkloadSpec),
    WorkloadDel { netns: String },
    PortAdd(PortSpec),
    PortDel { interface: String },
}

/// The instance's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// What was done, or why nothing was.
    pub message: String,
}

/// Sends `req` to running instance `name` and returns what it did. Fails with the instance's
/// reason when it refused, or when it does not run (or runs a vtep without control socket).
pub fn send(name: &str, req: &Request) -> Result<String> {
    let path = socket(name);
    let mut stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "instance `{name}` does not run here ({} {}); start it with `vtep up`",
            path.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist"
            } else {
                "refuses connections"
            }
        ),
        _ => anyhow::Error::new(e).context(format!("connecting to {}", path.display())),
    })?;
    stream.set_read_timeout(Some(REPLY_WAIT))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .with_context(|| format!("sending to instance `{name}`"))?;
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(stream, MAX_LINE as u64))
        .read_line(&mut reply)
        .with_context(|| format!("waiting for instance `{name}`'s answer"))?;
    if reply.is_empty() {
        bail!("instance `{name}` closed its control socket without an answer (see its log)");
    }
    let reply: Reply = serde_json::from_str(&reply)
        .with_context(|| format!("instance `{name}` answered something unreadable"))?;
    if reply.ok {
        Ok(reply.message)
    } else {
        bail!("{}", reply.message)
    }
}
