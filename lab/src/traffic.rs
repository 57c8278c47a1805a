//! Traffic between namespaces: ping, and a TCP transfer that checks every byte.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    process::Output,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::{cmd::ns_exec, netns::in_netns};

/// `ping -c count -i interval -W wait ADDR` from namespace `ns`: its output (the demo shows it).
/// Fails only when it cannot be started.
pub fn ping_output(ns: &str, addr: &str, count: u32, interval: &str, wait: u32) -> Result<Output> {
    let (count, wait) = (count.to_string(), wait.to_string());
    ns_exec(
        ns,
        "ping",
        &["-c", &count, "-i", interval, "-W", &wait, addr],
    )
}

/// As [`ping_output`]: true when every echo was answered. Fails only when ping cannot be
/// started.
pub fn ping_with(ns: &str, addr: &str, count: u32, interval: &str, wait: u32) -> Result<bool> {
    Ok(ping_output(ns, addr, count, interval, wait)?
        .status
        .success())
}

/// True when `count` pings from `ns` to `addr`, 0.2 s apart, are all answered within 2 s each.
/// Fails only when ping cannot be started.
pub fn ping(ns: &str, addr: &str, count: u32) -> Result<bool> {
    ping_with(ns, addr, count, "0.2", 2)
}

/// A ping flow running in the background: `count` echoes `interval` apart from a namespace,
/// whose losses are read when it ends (what a restart or reload must not cause).
pub struct PingFlow {
    child: std::process::Child,
    count: u32,
}

/// What a [`PingFlow`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowResult {
    pub sent: u32,
    pub received: u32,
}

impl FlowResult {
    pub fn lost(&self) -> u32 {
        self.sent.saturating_sub(self.received)
    }
}

impl PingFlow {
    /// Starts `ping -q -c count -i interval -W 1 ADDR` in namespace `ns` (an interval under
    /// 0.2 s needs root). Fails when ping cannot be started.
    pub fn start(ns: &str, addr: &str, count: u32, interval: &str) -> Result<Self> {
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-q", "-n", "-c"])
            .arg(count.to_string())
            .args(["-i", interval, "-W", "1", addr])
            .stdout(std::process::Stdio::piped())
            // Not read: a full pipe would stop ping (one line per unreachable echo).
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting ping in {ns}"))?;
        Ok(Self { child, count })
    }

    /// Waits for the flow to end and returns how many echoes were sent and answered. Fails
    /// when ping's summary cannot be read.
    pub fn finish(mut self) -> Result<FlowResult> {
        let mut text = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut stdout, &mut text)
                .context("reading ping's output")?;
        }
        self.child.wait().context("waiting for ping")?;
        parse_ping_summary(&text)
            .filter(|r| r.sent == self.count)
            .ok_or_else(|| anyhow!("no summary of {} echoes from ping: {text}", self.count))
    }
}

impl Drop for PingFlow {
    /// A flow not waited for (its test failed first, or only needed it running) would go on
    /// for its whole count in a namespace the lab has removed: a test that stopped a 200 s
    /// flow early left it running into the tests after it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The "N packets transmitted, M received" line of ping's summary.
fn parse_ping_summary(text: &str) -> Option<FlowResult> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty());
    let sent = numbers.next()?.parse().ok()?;
    let received = numbers.next()?.parse().ok()?;
    Some(FlowResult { sent, received })
}

/// Deterministic test data: byte `i` of the stream.
fn pattern(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7);
    (x >> 32) as u8
}

/// Sends `len` bytes over TCP from namespace `client_ns` to `server_addr` (listening in
/// `server_ns`); returns how many bytes the server received intact before the first difference
/// (`len` when all arrived intact). Fails when a socket call fails, or when no data moves for
/// 30 s.
pub fn tcp_transfer(
    server_ns: &str,
    server_addr: SocketAddr,
    client_ns: &str,
    len: u64,
) -> Result<u64> {
    let listener = in_netns(server_ns, || TcpListener::bind(server_addr))?
        .with_context(|| format!("binding {server_addr} in {server_ns}"))?;
    let server = std::thread::spawn(move || -> Result<u64> {
        let (mut s, _) = listener.accept().context("accept")?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => n,
                Err(e) => bail!("server read after {got} bytes: {e}"),
            };
            for (k, b) in buf[..n].iter().enumerate() {
                if *b != pattern(got + k as u64) {
                    return Ok(got + k as u64);
                }
            }
            got += n as u64;
        }
    });
    // A failed client returns at once: the server may still wait for its connection.
    in_netns(client_ns, || -> Result<()> {
        let mut s = TcpStream::connect_timeout(&server_addr, Duration::from_secs(10))
            .with_context(|| format!("connecting to {server_addr} from {client_ns}"))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut sent = 0u64;
        while sent < len {
            let n = ((len - sent) as usize).min(buf.len());
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + k as u64);
            }
            s.write_all(&buf[..n])
                .with_context(|| format!("client write after {sent} bytes"))?;
            sent += n as u64;
        }
        Ok(())
    })??;
    server
        .join()
        .map_err(|_| anyhow!("TCP server thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary_is_read() {
        let text = "--- 10.0.0.2 ping statistics ---\n5000 packets transmitted, 4998 received, +2 errors, 0.04% packet loss, time 5012ms\n";
        assert_eq!(
            parse_ping_summary(text),
            Some(FlowResult {
                sent: 5000,
                received: 4998
            })
        );
        assert_eq!(parse_ping_summary("nothing"), None);
    }
}
