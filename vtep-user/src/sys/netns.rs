//! Named network namespaces (`/run/netns/NAME`, as `ip netns` keeps them) and netlink
//! connections inside them.

use std::{
    fs::File,
    os::{fd::AsFd, unix::fs::MetadataExt as _},
    path::PathBuf,
    sync::OnceLock,
};

use anyhow::{Context as _, Result};
use nix::sched::{CloneFlags, setns};

use crate::sys::netlink::Net;

const NETNS_DIR: &str = "/run/netns";

/// The namespace [`enter_for_process`] entered, for the instance's info file.
static ENTERED: OnceLock<String> = OnceLock::new();

/// Where `ip netns` keeps namespace `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Whether namespace `name` exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Opens namespace `name`, for moving links into it or entering it.
pub fn open(name: &str) -> Result<File> {
    File::open(path(name)).with_context(|| format!("network namespace `{name}` not found"))
}

/// Creates namespace `name` like `ip netns add`.
pub async fn create(name: &str) -> Result<()> {
    rtnetlink::NetworkNamespace::add(name.to_string())
        .await
        .with_context(|| format!("creating network namespace `{name}`"))
}

/// Deletes namespace `name` like `ip netns del`; the kernel removes its interfaces once no
/// process holds it.
pub async fn delete(name: &str) -> Result<()> {
    rtnetlink::NetworkNamespace::del(name.to_string())
        .await
        .with_context(|| format!("deleting network namespace `{name}`"))
}

/// Moves the calling thread (before any other thread exists: the whole process) into
/// namespace `name`, like `ip -n NAME`. Unlike `ip netns exec` it keeps the mount namespace, so
/// /sys/fs/bpf stays the host's.
pub fn enter_for_process(name: &str) -> Result<()> {
    let file = open(name)?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering network namespace `{name}`"))?;
    let _ = ENTERED.set(name.to_string());
    Ok(())
}

/// The namespace the process entered with `--netns`, if it did.
pub fn entered() -> Option<&'static str> {
    ENTERED.get().map(String::as_str)
}

/// The calling thread's network namespace, open (for [`inode`]).
pub fn current() -> Result<File> {
    File::open("/proc/thread-self/ns/net").context("opening the current network namespace")
}

/// What identifies the namespace open as `file` (its nsfs inode) for as long as it exists,
/// whatever it is called. Fails when `file` cannot be examined.
pub fn inode(file: &File) -> Result<u64> {
    Ok(file
        .metadata()
        .context("examining a network namespace")?
        .ino())
}

/// A netlink connection whose socket lives in namespace `name`: a socket belongs to the
/// namespace of the thread that opened it, so it is opened on a short-lived thread that entered
/// the namespace.
pub fn connect_in(name: &str) -> Result<Net> {
    let file = open(name)?;
    let runtime = tokio::runtime::Handle::current();
    let name_owned = name.to_string();
    let (conn, handle) = std::thread::spawn(move || -> Result<_> {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering network namespace `{name_owned}`"))?;
        let _guard = runtime.enter();
        let (conn, handle, _) = rtnetlink::new_connection().context("opening netlink socket")?;
        Ok((conn, handle))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))??;
    tokio::spawn(conn);
    Ok(Net::new(handle))
}
