//! Named network namespaces (`/run/netns/NAME`, as `ip netns` keeps them) and netlink
//! connections inside them.

use std::{
    fs::File,
    os::{
        fd::{AsFd, AsRawFd as _},
        unix::fs::MetadataExt as _,
    },
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context as _, Result};
use nix::sched::{CloneFlags, setns};
use serde::{Deserialize, Serialize};

use crate::sys::{identity::FileId, netlink::Net};

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

/// The identity of a network namespace: the inode of its nsfs file, which no other live
/// namespace has, and its cookie, which the kernel never gives another namespace (inode
/// numbers are reused once a namespace is gone: one deleted and added again by hand often gets
/// the old number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsId {
    pub file: FileId,
    pub cookie: u64,
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (cookie {})", self.file, self.cookie)
    }
}

/// `SO_NETNS_COOKIE` of asm-generic/socket.h (Linux 5.14), which the libc crate does not export
/// for every architecture.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the calling thread's network namespace. Fails when a socket cannot be opened
/// or the kernel has no namespace cookies (before 5.14; TCX needs 6.6 anyway).
fn cookie_here() -> Result<u64> {
    let sock = std::os::unix::net::UnixDatagram::unbound().context("opening a socket")?;
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `sock` is an open socket for the whole call; `cookie` and `len` are valid for
    // writes and `len` is the size of `cookie`, the u64 this option returns.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the namespace cookie");
    }
    Ok(cookie)
}

/// The identity of the namespace `ns` opens (a `/run/netns` entry or a `/proc/PID/ns/net`),
/// or `None` when there is no such file. Fails when it cannot be examined or entered.
pub fn id_at(ns: &Path) -> Result<Option<NetnsId>> {
    let Some(file) = FileId::of(ns)? else {
        return Ok(None);
    };
    let cookie = run_in(ns, cookie_here)??;
    Ok(Some(NetnsId { file, cookie }))
}

/// The identity of namespace `name`, or `None` when there is no such namespace. Fails when it
/// cannot be examined or entered.
pub fn id(name: &str) -> Result<Option<NetnsId>> {
    id_at(&path(name))
}

/// The identity of the calling thread's network namespace. Fails when /proc cannot be read.
pub fn current() -> Result<NetnsId> {
    let own = Path::new("/proc/thread-self/ns/net");
    let file = FileId::of(own)?.ok_or_else(|| anyhow::anyhow!("{} is missing", own.display()))?;
    Ok(NetnsId {
        file,
        cookie: cookie_here()?,
    })
}

/// Whether the namespace `ns` opens is the one with identity `id`.
fn is(ns: &Path, id: NetnsId) -> bool {
    // The inode first: cheap, and no other live namespace has it.
    matches!(FileId::of(ns), Ok(Some(file)) if file == id.file)
        && matches!(id_at(ns), Ok(Some(now)) if now == id)
}

/// A name under /run/netns of the namespace with identity `id`, if it has one.
pub fn name_of(id: NetnsId) -> Option<String> {
    let entries = std::fs::read_dir(NETNS_DIR).ok()?;
    entries.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        is(&e.path(), id).then_some(name)
    })
}

/// A path that opens the namespace with identity `id`: `/run/netns/NAME` of `name` when that
/// is still it, another name it has there, or PID 1's namespace (the host's, which has no
/// name). `None` when none of these is it.
pub fn find(id: NetnsId, name: Option<&str>) -> Option<PathBuf> {
    if let Some(name) = name
        && is(&path(name), id)
    {
        return Some(path(name));
    }
    if let Some(other) = name_of(id) {
        return Some(path(&other));
    }
    let host = PathBuf::from("/proc/1/ns/net");
    is(&host, id).then_some(host)
}

/// Runs `f` on a thread of its own inside the namespace `ns` opens (a `/run/netns` entry or a
/// `/proc/PID/ns/net`) and returns what it returns: netlink sockets it opens and the sysctls
/// under /proc/sys/net it writes are that namespace's. Fails when the namespace cannot be
/// entered.
pub fn run_in<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> Result<T> {
    let file = File::open(ns).with_context(|| format!("opening {}", ns.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering the network namespace of {}", ns.display()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
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
    // The caller's namespace stays reachable: the store is reached from there.
    let _ = ORIGIN.set(current_file()?);
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering network namespace `{name}`"))?;
    let _ = ENTERED.set(name.to_string());
    Ok(())
}

/// The namespace the process was started in, open, when it then entered another with
/// `--netns`.
static ORIGIN: std::sync::OnceLock<File> = std::sync::OnceLock::new();

/// Moves the calling thread back into the namespace the process was started in, when `--netns`
/// took it elsewhere; threads it starts afterwards are there too. The store client runs on
/// such a thread: with `vtep --netns NS up` the datapath is NS's, while the management network
/// etcd is reached over is the caller's. Fails when the namespace cannot be entered.
pub fn enter_origin_for_thread() -> Result<()> {
    if let Some(file) = ORIGIN.get() {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .context("entering the network namespace vtep was started in")?;
    }
    Ok(())
}

/// The namespace the process entered with `--netns`, if it did.
pub fn entered() -> Option<&'static str> {
    ENTERED.get().map(String::as_str)
}

/// The calling thread's network namespace, open (for [`inode`]).
pub fn current_file() -> Result<File> {
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
