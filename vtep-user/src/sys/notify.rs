//! The service manager's readiness protocol (`sd_notify`): with `NOTIFY_SOCKET` set, as systemd
//! sets it for a `Type=notify` unit, `vtep up` says when it is ready (the datapath attached and
//! forwarding), reloading and stopping. Without it, nothing is sent.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (`READY=1`, `RELOADING=1`, ...) to the service manager, if there is one. A
/// manager that is gone is not vtep's problem: failures are logged at debug level.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket: named by what follows the `@`.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::debug!("telling the service manager {state:?}: {e}");
    }
}

/// `RELOADING=1` with the monotonic time systemd wants beside it (`Type=notify-reload`).
pub fn reloading() {
    let usec = crate::sys::clock::monotonic_nanos() / 1000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}
